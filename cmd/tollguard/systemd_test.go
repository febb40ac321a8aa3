package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSystemd is systemd's notify socket: it collects what the daemon
// sends.
type fakeSystemd struct {
	conn *net.UnixConn
	msgs chan string
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	// A short path: unix socket names are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "tgsd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSystemd{conn: conn, msgs: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(f.msgs)
				return
			}
			f.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return f
}

// next waits up to d for the next message ("" if none came).
func (f *fakeSystemd) next(d time.Duration) string {
	select {
	case m := <-f.msgs:
		return m
	case <-time.After(d):
		return ""
	}
}

// syncBuffer is a log buffer the watchdog goroutine writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestWatchdogFedWhileServing: the watchdog is fed while the FastAGI
// server serves, starves while it does not (so that systemd restarts a
// tollguard whose gate died), and is fed again once it serves.
func TestWatchdogFedWhileServing(t *testing.T) {
	sd := newFakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "60000") // 60 ms: pings every 20 ms
	t.Setenv("WATCHDOG_PID", "")
	var logs syncBuffer
	app := NewApp(nil, nil, nil)
	app.Config = DefaultConfig()
	d := &daemon{app: app, log: slog.New(slog.NewTextHandler(&logs, nil)), health: NewHealth()}
	d.health.SetAGIBound(true)
	ctx, cancel := context.WithCancel(context.Background())
	d.startWatchdog(ctx)
	defer func() { cancel(); d.wg.Wait() }()

	for i := range 3 {
		if m := sd.next(2 * time.Second); m != "WATCHDOG=1" {
			t.Fatalf("ping %d while serving: got %q", i, m)
		}
	}
	d.health.SetAGIBound(false)
	// At most one ping already on its way; then none.
	sd.next(100 * time.Millisecond)
	if m := sd.next(300 * time.Millisecond); m != "" {
		t.Fatalf("the watchdog was fed while the FastAGI server was down: %q", m)
	}
	if !strings.Contains(logs.String(), "FastAGI server is not serving") {
		t.Errorf("no log line says why the watchdog starves: %q", logs.String())
	}
	d.health.SetAGIBound(true)
	if m := sd.next(2 * time.Second); m != "WATCHDOG=1" {
		t.Fatalf("no ping once serving again: %q", m)
	}
}

// TestWatchdogOff: without WatchdogSec (no WATCHDOG_USEC), or for
// another process (WATCHDOG_PID), nothing is sent.
func TestWatchdogOff(t *testing.T) {
	for _, env := range [][2]string{{"", ""}, {"60000", "1"}} {
		sd := newFakeSystemd(t)
		t.Setenv("WATCHDOG_USEC", env[0])
		t.Setenv("WATCHDOG_PID", env[1])
		app := NewApp(nil, nil, nil)
		app.Config = DefaultConfig()
		d := &daemon{app: app, log: slog.New(slog.DiscardHandler), health: NewHealth()}
		d.health.SetAGIBound(true)
		ctx, cancel := context.WithCancel(context.Background())
		d.startWatchdog(ctx)
		if m := sd.next(200 * time.Millisecond); m != "" {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: sent %q", env[0], env[1], m)
		}
		cancel()
		d.wg.Wait()
	}
}
