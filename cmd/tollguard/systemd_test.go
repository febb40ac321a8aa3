package main

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestWatchdogFedWhileServing: the watchdog is fed while the FastAGI
// server serves, starves while it does not (so that systemd restarts a
// tollguard whose gate died), and is fed again once it serves.
func TestWatchdogFedWhileServing(t *testing.T) {
	sd := testutil.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sd.Path)
	t.Setenv("WATCHDOG_USEC", "60000") // 60 ms: pings every 20 ms
	t.Setenv("WATCHDOG_PID", "")
	var logs testutil.Buffer
	app := NewApp(nil, nil, nil)
	app.Config = DefaultConfig()
	d := &daemon{app: app, log: slog.New(slog.NewTextHandler(&logs, nil)), health: NewHealth()}
	d.health.SetAGIBound(true)
	ctx, cancel := context.WithCancel(context.Background())
	d.startWatchdog(ctx)
	defer func() { cancel(); d.wg.Wait() }()

	for i := range 3 {
		if m := sd.Next(2 * time.Second); m != "WATCHDOG=1" {
			t.Fatalf("ping %d while serving: got %q", i, m)
		}
	}
	d.health.SetAGIBound(false)
	// Once the loop has noticed (it logs why), pings already sent are
	// drained, and then none may come.
	testutil.Eventually(t, 5*time.Second, "a log line saying why the watchdog starves", func() bool {
		return strings.Contains(logs.String(), "FastAGI server is not serving")
	})
	for i := 0; sd.Next(50*time.Millisecond) != ""; i++ {
		if i > 5 {
			t.Fatal("the watchdog is still being fed while the FastAGI server is down")
		}
	}
	if m := sd.Next(300 * time.Millisecond); m != "" {
		t.Fatalf("the watchdog was fed while the FastAGI server was down: %q", m)
	}
	d.health.SetAGIBound(true)
	if m := sd.Next(2 * time.Second); m != "WATCHDOG=1" {
		t.Fatalf("no ping once serving again: %q", m)
	}
}

// TestWatchdogOff: without WatchdogSec (no WATCHDOG_USEC), or for
// another process (WATCHDOG_PID), nothing is sent.
func TestWatchdogOff(t *testing.T) {
	for _, env := range [][2]string{{"", ""}, {"60000", "1"}} {
		sd := testutil.NewNotifySocket(t)
		t.Setenv("NOTIFY_SOCKET", sd.Path)
		t.Setenv("WATCHDOG_USEC", env[0])
		t.Setenv("WATCHDOG_PID", env[1])
		app := NewApp(nil, nil, nil)
		app.Config = DefaultConfig()
		var logs testutil.Buffer
		d := &daemon{app: app, log: slog.New(slog.NewTextHandler(&logs, nil)), health: NewHealth()}
		d.health.SetAGIBound(true)
		ctx, cancel := context.WithCancel(context.Background())
		d.startWatchdog(ctx)
		// The loop says when it starts, whatever its interval; a 60 ms
		// watchdog would also have pinged about ten times below.
		if strings.Contains(logs.String(), "feeding systemd's watchdog") {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: the watchdog loop started", env[0], env[1])
		}
		if m := sd.Next(200 * time.Millisecond); m != "" {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: sent %q", env[0], env[1], m)
		}
		cancel()
		d.wg.Wait()
	}
}

// TestNotifyFailureLoggedOnce: a notify socket that refuses is logged
// once, not at every watchdog ping, and its recovery is logged.
func TestNotifyFailureLoggedOnce(t *testing.T) {
	var logs testutil.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	t.Setenv("NOTIFY_SOCKET", t.TempDir()+"/nobody-listens")
	for range 3 {
		notifySystemd(log, "WATCHDOG=1")
	}
	if n := strings.Count(logs.String(), "could not notify systemd"); n != 1 {
		t.Fatalf("%d warnings for 3 failed pings, want 1:\n%s", n, logs.String())
	}
	sd := testutil.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sd.Path)
	notifySystemd(log, "WATCHDOG=1")
	if m := sd.Next(time.Second); m != "WATCHDOG=1" {
		t.Fatalf("got %q", m)
	}
	if !strings.Contains(logs.String(), "notifying systemd works again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestAGIServerFailureIsFatal: a FastAGI server that stops while the
// daemon runs (its listener failed) ends serve with an error, so the
// supervisor restarts tollguard; one stopped by shutdown does not.
func TestAGIServerFailureIsFatal(t *testing.T) {
	for _, shutdown := range []bool{false, true} {
		var logs testutil.Buffer
		d := &daemon{log: slog.New(slog.NewTextHandler(&logs, nil)), health: NewHealth(), fatal: make(chan error, 1)}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &agi.Server{Gate: &tollguard.Policy{}, Logger: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithCancel(context.Background())
		d.health.SetAGIBound(true)
		done := make(chan struct{})
		go func() { d.runAGI(ctx, srv, ln); close(done) }()
		if shutdown {
			cancel()
		} else {
			ln.Close() // the listener fails under the server
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("shutdown %v: the FastAGI server did not stop", shutdown)
		}
		cancel()
		var fatal error
		select {
		case fatal = <-d.fatal:
		default:
		}
		if shutdown && fatal != nil {
			t.Errorf("a shutdown was reported as fatal: %v", fatal)
		}
		if !shutdown && (fatal == nil || !strings.Contains(fatal.Error(), "FastAGI server stopped")) {
			t.Errorf("a failed listener was not fatal: %v (log %q)", fatal, logs.String())
		}
		if d.health.AGIServing() {
			t.Errorf("shutdown %v: still reported as serving", shutdown)
		}
	}
}
