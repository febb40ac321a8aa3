package faulttest

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify runs `tollguard serve` as a Type=notify unit with
// WatchdogSec would: it says READY=1 once the FastAGI port answers, feeds
// the watchdog while it serves, and says STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "tgsd") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func(d time.Duration) string {
		conn.SetReadDeadline(time.Now().Add(d))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}

	e := NewEnv(t, nil)
	e.Environ = []string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=600000"}
	d := e.Start()
	if m := next(10 * time.Second); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	// Ready means the gate answers: the port accepts.
	c, err := net.DialTimeout("tcp", d.AGI, 5*time.Second)
	if err != nil {
		t.Fatalf("READY=1 sent, but the FastAGI port refuses: %v", err)
	}
	c.Close()
	for i := range 3 {
		if m := next(5 * time.Second); m != "WATCHDOG=1" {
			t.Fatalf("watchdog ping %d: %q", i, m)
		}
	}
	d.Signal(syscall.SIGTERM)
	for {
		m := next(10 * time.Second)
		if m == "STOPPING=1" {
			break
		}
		if m != "WATCHDOG=1" {
			t.Fatalf("after SIGTERM: %q, want STOPPING=1", m)
		}
	}
	if code := d.Wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
