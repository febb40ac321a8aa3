package faulttest

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
)

// TestSystemdNotify runs `tollguard serve` as a Type=notify unit with
// WatchdogSec would: it says READY=1 (and the FastAGI port then
// accepts), feeds the watchdog while it serves, and says STOPPING=1 on
// SIGTERM. That READY comes after the listener is bound is the order
// of serve's code; this test sees the port once READY has come.
func TestSystemdNotify(t *testing.T) {
	sd := testutil.NewNotifySocket(t)
	next := sd.Next

	e := NewEnv(t, nil)
	e.Environ = []string{"NOTIFY_SOCKET=" + sd.Path, "WATCHDOG_USEC=600000"}
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

// TestAbortDiesBySignal: under GOTRACEBACK=crash, as the unit runs it,
// a watchdog's SIGABRT kills tollguard by signal, after a goroutine dump
// for the journal. Without it the Go runtime exits 2, the status the
// unit's RestartPreventExitStatus keeps down (a config error), and a
// frozen gate would stay down instead of restarting.
func TestAbortDiesBySignal(t *testing.T) {
	// No core file from the crash, here as in the unit (LimitCORE=0).
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_CORE, &old) })

	e := NewEnv(t, nil)
	e.Environ = []string{"GOTRACEBACK=crash"}
	d := e.Start()
	// The dump itself can end in a runtime "fatal error:" (Go 1.26.8
	// failed once in its hexdump of a goroutine at an unknown pc):
	// still a death by signal, which is what this test is about.
	d.crashing = true
	d.Signal(syscall.SIGABRT)
	if code := d.Wait(30 * time.Second); code != -1 {
		t.Fatalf("exit status %d after SIGABRT; want death by signal, which systemd restarts", code)
	}
	if d.Log.Count(func(l LogLine) bool { return strings.Contains(l.Raw, "goroutine ") }) == 0 {
		t.Error("no goroutine dump for the journal")
	}
}
