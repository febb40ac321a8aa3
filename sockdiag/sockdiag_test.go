package sockdiag_test

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tollguard/tollguard/sockdiag"
)

// pair connects a client to a listener on addr and returns both ends;
// ok is false if addr cannot be listened on (no IPv6 loopback here).
func pair(t *testing.T, addr string) (client, server net.Conn, ok bool) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, false
	}
	defer ln.Close()
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server, true
}

// TestPeerUID: a loopback client's socket is owned by this process's
// user, on IPv4 and IPv6.
func TestPeerUID(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		_, conn, ok := pair(t, addr)
		if !ok {
			if addr == "127.0.0.1:0" {
				t.Fatal("cannot listen on 127.0.0.1")
			}
			continue
		}
		uid, local, err := sockdiag.PeerUID(conn)
		if err != nil || !local {
			t.Fatalf("%s: local %v, %v", addr, local, err)
		}
		if uid != uint32(os.Getuid()) {
			t.Errorf("%s: uid %d, want %d", addr, uid, os.Getuid())
		}
	}
}

// TestPeerUIDGone: a client that has gone, reset or closed at once
// (leaving a time-wait entry the kernel reports as uid 0), names no one,
// and does not pass for another host's: its address is this host's.
func TestPeerUIDGone(t *testing.T) {
	for _, reset := range []bool{true, false} {
		client, conn, _ := pair(t, "127.0.0.1:0")
		if reset {
			client.(*net.TCPConn).SetLinger(0) // RST: the socket is gone at once
		}
		client.Close()
		if !reset {
			conn.Read(make([]byte, 1)) // the FIN has arrived: the client waits in FIN-WAIT-2
		}
		// Local and not connected: not a remote client, and no one named.
		if uid, local, err := sockdiag.PeerUID(conn); !local || err == nil {
			t.Errorf("reset %v: after the client closed: uid %d local %v, %v; want local, with an error", reset, uid, local, err)
		}
	}
}

// inode is the socket inode behind c, from /proc/self/fd.
func inode(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	if _, err := fmt.Sscanf(link, "socket:[%d]", &n); err != nil {
		t.Fatalf("%s: %v", link, err)
	}
	return n
}

// TestPeerSocketExact: two clients from the same port on different
// loopback addresses (any local user can bind 127.0.0.2) are each found
// as themselves. A lookup filtered by ports alone, as a sock_diag dump
// is, took one for the other: a local user for Asterisk.
func TestPeerSocketExact(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	port := first.LocalAddr().(*net.TCPAddr).Port
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: port}}
	second, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("a second client from 127.0.0.2:%d: %v", port, err)
	}
	defer second.Close()
	for range 2 {
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := first
		if conn.RemoteAddr().(*net.TCPAddr).IP.Equal(net.IPv4(127, 0, 0, 2)) {
			client = second
		}
		_, got, _, err := sockdiag.PeerSocket(conn)
		if err != nil {
			t.Fatalf("%s: %v", conn.RemoteAddr(), err)
		}
		if want := inode(t, client); got != want {
			t.Errorf("%s: found socket %d, the client's is %d", conn.RemoteAddr(), got, want)
		}
	}
}

// TestPeerUIDDeviceBound: a client bound to a device (SO_BINDTODEVICE,
// which any user may set) is invisible to the exact lookup; it is still
// found as local, not taken for another host's.
func TestPeerUIDDeviceBound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), "lo") }); err != nil {
			return err
		}
		return serr
	}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("a client bound to lo: %v", err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	uid, local, err := sockdiag.PeerUID(conn)
	if err != nil || !local || uid != uint32(os.Getuid()) {
		t.Errorf("device-bound client: uid %d local %v, %v; want uid %d, local", uid, local, err, os.Getuid())
	}
}

// TestPeerUIDHostAddresses: a client from one of the host's own
// non-loopback addresses is local by the kernel's routing, and found.
// (On a host with no such address there is nothing to check.)
func TestPeerUIDHostAddresses(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		_, conn, ok := pair(t, net.JoinHostPort(ipn.IP.String(), "0"))
		if !ok {
			continue // an address that cannot be bound now (tentative)
		}
		uid, local, err := sockdiag.PeerUID(conn)
		if err != nil || !local || uid != uint32(os.Getuid()) {
			t.Errorf("client from %s: uid %d local %v, %v; want this user, local", conn.RemoteAddr(), uid, local, err)
		}
	}
}
