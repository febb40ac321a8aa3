package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestServeHoldsRollupAfterClockStep: the clock watch was only tested
// on a daemon the test built, not as serve builds and starts it. Here
// serve runs its hourly housekeeping at start (a call past retention is
// rolled up), then the wall clock steps 30 minutes ahead (serve warns at
// once, though housekeeping is not due), then 200 days: serve warns, and
// the calls that step made old keep their detail, as do the audit runs
// a run stored then would have made old (serve hands its store the
// clock watch). The monotonic clock is the real one: it barely moves
// during the test.
func TestServeHoldsRollupAfterClockStep(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	c.seed()
	var step atomic.Int64 // how far the wall clock is set ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(step.Load())) }
	app, db := openApp(t, c.db)
	for _, ago := range []time.Duration{100 * 24 * time.Hour, 10 * 24 * time.Hour, time.Hour} {
		at := time.Now().Add(-ago)
		app.Now = func() time.Time { return at }
		db.Now = app.Now
		// From outside the allowed networks: denied, so never open.
		if dec, err := app.Policy(db).Decide(ctx, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "203.0.113.9"}); err != nil || dec.Allowed() {
			t.Fatalf("call: %+v %v; want it denied", dec, err)
		}
	}
	// 30 runs of an hourly audit, the last 30 hours.
	for h := 30; h > 0; h-- {
		at := time.Now().Add(-time.Duration(h) * time.Hour)
		if err := db.SaveAuditRun(ctx, &tollguard.AuditRun{Job: "quotas", Trigger: "cron", StartedAt: at, EndedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	app.Close()
	counts := func() (calls, rolledUp int) {
		t.Helper()
		st := openStore(t, c.db)
		defer st.Close()
		if err := st.SQL().QueryRow(`SELECT COUNT(*) FROM calls`).Scan(&calls); err != nil {
			t.Fatal(err)
		}
		if err := st.SQL().QueryRow(`SELECT COALESCE(SUM(calls), 0) FROM monthly_totals`).Scan(&rolledUp); err != nil {
			t.Fatal(err)
		}
		return calls, rolledUp
	}

	cfg := filepath.Join(t.TempDir(), "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nenabled = false\n[gate]\nsweep_interval = \"100ms\"\nretention_days = 90\n", c.db)), 0o600)
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	logs := &testutil.Buffer{}
	serveApp := NewApp(strings.NewReader(""), &bytes.Buffer{}, logs)
	serveApp.Now = clock
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	done := make(chan int, 1)
	go func() { done <- runApp(sctx, serveApp, []string{"--config", cfg, "serve"}) }()

	testutil.Eventually(t, 10*time.Second, "the call 100 days old rolled up", func() bool {
		n, r := counts()
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		default:
		}
		return n == 2 && r == 1
	})
	warned := func(ahead string) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, "a warning of the step", func() bool {
			return strings.Contains(logs.String(), "level=WARN msg=\"the system clock moved "+ahead+" ahead")
		})
	}
	// Housekeeping is not due for an hour: the sweep warns of the step
	// all the same.
	step.Store(int64(30 * time.Minute))
	warned("30m0s")
	step.Store(int64(200*24*time.Hour + 30*time.Minute))
	warned("4800h30m0s")
	// The sweep that warned then ran housekeeping, which logs nothing
	// when held: the calls must stay for a few sweeps more.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if n, r := counts(); n != 2 || r != 1 {
			t.Fatalf("%d calls in the table and %d rolled up after the clock stepped 200 days ahead; want 2 and 1:\n%s", n, r, logs.String())
		}
	}
	// A scheduled audit's run, stored through serve's store (serveApp.db,
	// opened before the logs read above were written).
	at := clock()
	if err := serveApp.db.SaveAuditRun(ctx, &tollguard.AuditRun{Job: "quotas", Trigger: "cron", StartedAt: at, EndedAt: at}); err != nil {
		t.Fatal(err)
	}
	if runs, err := serveApp.db.AuditRuns(ctx, "quotas", 100); err != nil || len(runs) != 31 {
		t.Errorf("%d audit runs after one stored with the clock 200 days ahead (%v); want all 31 kept", len(runs), err)
	}
	stopServe(t, cancel, done, logs, 15*time.Second)
}

// TestServeSweepAfterRestartAndClockStep: a call decided before serve
// started has no start on its monotonic clock, and the sweep timed it
// on the wall clock: set a day ahead, the call, 30 s into its 60, was
// settled at its full reservation (with ARI, hung up). serve hands the
// policy its clock watch, which knows the step.
func TestServeSweepAfterRestartAndClockStep(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	c.seed()
	c.ok("account", "set", "acme", "--max-call-secs", "60")
	app, db := openApp(t, c.db)
	decided := time.Now().Add(-30 * time.Second)
	app.Now = func() time.Time { return decided }
	db.Now = app.Now
	dec, err := app.Policy(db).Decide(ctx, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.10", UniqueID: "pbx-1.1"})
	if err != nil || !dec.Allowed() || dec.MaxSec != 60 {
		t.Fatalf("decision %+v %v; want allowed for 60 s", dec, err)
	}
	app.Close()

	cfg := filepath.Join(t.TempDir(), "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nenabled = false\n[gate]\nsweep_interval = \"100ms\"\n", c.db)), 0o600)
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	var step atomic.Int64
	logs := &testutil.Buffer{}
	serveApp := NewApp(strings.NewReader(""), &bytes.Buffer{}, logs)
	serveApp.Now = func() time.Time { return time.Now().Add(time.Duration(step.Load())) }
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	done := make(chan int, 1)
	go func() { done <- runApp(sctx, serveApp, []string{"--config", cfg, "serve"}) }()
	testutil.Eventually(t, 10*time.Second, "serve serving", func() bool { return strings.Contains(logs.String(), "tollguard serving") })

	step.Store(int64(24 * time.Hour))
	testutil.Eventually(t, 5*time.Second, "a warning of the step", func() bool {
		return strings.Contains(logs.String(), "the system clock moved 24h0m0s ahead")
	})
	// Sweeps every 100 ms: the call must stay open through a few.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if call, err := serveApp.db.Call(ctx, dec.CallID); err != nil || !call.Open() {
			t.Fatalf("call 30 s into its 60, the clock a day ahead: %+v %v; want it open\n%s", call, err, logs.String())
		}
	}
	stopServe(t, cancel, done, logs, 15*time.Second)
}
