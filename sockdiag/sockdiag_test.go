package sockdiag_test

import (
	"net"
	"os"
	"testing"

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
		uid, err := sockdiag.PeerUID(conn)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if uid != uint32(os.Getuid()) {
			t.Errorf("%s: uid %d, want %d", addr, uid, os.Getuid())
		}
	}
}

// TestPeerUIDGone: once the client has gone, the lookup fails rather
// than naming someone.
func TestPeerUIDGone(t *testing.T) {
	client, conn, _ := pair(t, "127.0.0.1:0")
	client.(*net.TCPConn).SetLinger(0) // RST: the socket is gone at once
	client.Close()
	if uid, err := sockdiag.PeerUID(conn); err == nil {
		t.Errorf("lookup after the client closed: uid %d, no error", uid)
	}
}
