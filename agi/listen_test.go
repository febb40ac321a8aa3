package agi

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// keepAlive reports SO_KEEPALIVE on the server side of a connection
// accepted from ln.
func keepAlive(t *testing.T, ln net.Listener) int {
	t.Helper()
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return on
}

func TestListenTurnsKeepAliveOff(t *testing.T) {
	// Go's default listener turns it on; the check below would see it.
	std, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if got := keepAlive(t, std); got == 0 {
		t.Fatal("net.Listen's connection has keep-alive off; this test cannot tell the difference")
	}
	ln, err := NewListener(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if got := keepAlive(t, ln); got != 0 {
		t.Errorf("SO_KEEPALIVE = %d on a FastAGI connection, want 0", got)
	}
}
