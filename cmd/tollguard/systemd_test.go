package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

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
	// At most one ping already on its way; then none.
	sd.Next(100 * time.Millisecond)
	if m := sd.Next(300 * time.Millisecond); m != "" {
		t.Fatalf("the watchdog was fed while the FastAGI server was down: %q", m)
	}
	if !strings.Contains(logs.String(), "FastAGI server is not serving") {
		t.Errorf("no log line says why the watchdog starves: %q", logs.String())
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
		d := &daemon{app: app, log: slog.New(slog.DiscardHandler), health: NewHealth()}
		d.health.SetAGIBound(true)
		ctx, cancel := context.WithCancel(context.Background())
		d.startWatchdog(ctx)
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
