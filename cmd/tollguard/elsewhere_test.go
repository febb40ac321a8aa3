package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestCallsRecordedElsewhere: call rows another process writes into the
// daemon's database are counted in a metric and logged once per sweep
// with what to check.
func TestCallsRecordedElsewhere(t *testing.T) {
	ctx := context.Background()
	app, db := openApp(t, filepath.Join(t.TempDir(), "tollguard.db"))
	other, err := store.Open(ctx, db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var logs bytes.Buffer
	d := &daemon{app: app, db: db, log: slog.New(slog.NewTextHandler(&logs, nil)), metrics: NewMetrics()}
	d.metrics.WatchStore(db)
	now := time.Now()
	attempts := func() {
		t.Helper()
		err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			_, _, _, err := tx.Attempts(ctx, "ext", "1001", tollguard.TallyNoSource, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var seen uint64
	attempts() // builds the tally
	d.warnCallsRecordedElsewhere(&seen)
	if logs.Len() != 0 {
		t.Fatalf("warned with no other writer: %s", logs.String())
	}
	if _, err := other.SQL().ExecContext(ctx, `INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason)
		VALUES (?, '1001', 'acme', '02079460000', 'national', 'deny', 'rate_limit')`, now.Unix()); err != nil {
		t.Fatal(err)
	}
	attempts() // finds the other process's row
	d.warnCallsRecordedElsewhere(&seen)
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "second tollguard serve") || !strings.Contains(out, "times=1") {
		t.Fatalf("log after another process's call: %q", out)
	}
	mfs, err := d.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "tollguard_calls_recorded_elsewhere_total" {
			got = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 1 {
		t.Fatalf("tollguard_calls_recorded_elsewhere_total = %v, want 1", got)
	}
	logs.Reset()
	d.warnCallsRecordedElsewhere(&seen)
	if logs.Len() != 0 {
		t.Fatalf("warned twice for one finding: %s", logs.String())
	}
}

// TestCheckSchema: a database migrated past what this binary knows (a
// newer CLI after an upgrade, the daemon not yet restarted) turns the
// daemon not ready, with a log line that says to restart it.
func TestCheckSchema(t *testing.T) {
	ctx := context.Background()
	app, db := openApp(t, filepath.Join(t.TempDir(), "tollguard.db"))
	var logs bytes.Buffer
	d := &daemon{app: app, db: db, log: slog.New(slog.NewTextHandler(&logs, nil)), health: NewHealth()}
	d.health.SetStore(true)
	d.checkSchema(ctx, store.LatestSchema())
	if logs.Len() != 0 || !d.health.report(false, time.Now()).Ready {
		t.Fatalf("current schema: log %q, report %+v", logs.String(), d.health.report(false, time.Now()))
	}
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	d.checkSchema(ctx, store.LatestSchema())
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "restart it") || !strings.Contains(out, "schema=999") {
		t.Errorf("log: %q", out)
	}
	// Not ready, and for the schema: the store itself is open (it said
	// store_open false, and the admin looked for a broken database).
	if r := d.health.report(false, time.Now()); r.Ready || r.Schema || !r.Store {
		t.Errorf("on a database migrated past this binary: %+v", r)
	}
}

// TestDestReloadFailureWarns: when reloading the rates, high-risk list
// and rules fails, calls go on with the data loaded before, and the
// daemon's sweep logs the failure once.
func TestDestReloadFailureWarns(t *testing.T) {
	ctx := context.Background()
	app, db := openApp(t, filepath.Join(t.TempDir(), "tollguard.db"))
	var logs bytes.Buffer
	d := &daemon{app: app, db: db, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := db.WarmGate(ctx); err != nil {
		t.Fatal(err)
	}
	// Break the next reload: its high-risk list is gone.
	if _, err := db.SQL().ExecContext(ctx, `DROP TABLE high_risk`); err != nil {
		t.Fatal(err)
	}
	if err := db.AddRule(ctx, &tollguard.Rule{Prefix: "+252", Action: tollguard.RuleDeny}); err != nil {
		t.Fatal(err)
	}
	var seen uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := db.Gate(dctx, true, func(tx tollguard.GateTx) error { return nil })
		cancel()
		if err != nil {
			t.Fatalf("a call failed while the reload failed; it should use the data loaded before: %v", err)
		}
		if n, _ := db.DestReloadFailures(); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken reload never failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.warnDestReloadFailures(&seen)
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "reloading the rate deck") || !strings.Contains(out, "high_risk") {
		t.Fatalf("log: %q", out)
	}
	logs.Reset()
	d.warnDestReloadFailures(&seen)
	if logs.Len() != 0 {
		t.Errorf("logged again with no new failure: %q", logs.String())
	}
}

// TestReadyWhileDeciding: /readyz turns not ready when the gate's
// decisions keep failing (the store locked or gone), and ready again
// once one succeeds or a minute passes without another failure.
func TestReadyWhileDeciding(t *testing.T) {
	h := NewHealth()
	h.SetStore(true)
	h.SetAGIBound(true)
	now := time.Now()
	for i := range failingDecisions {
		if !h.report(true, now).Ready {
			t.Fatalf("not ready after %d failed decisions", i)
		}
		h.Decided(tollguard.ReasonError, now)
	}
	if r := h.report(true, now); r.Ready || r.Deciding {
		t.Fatalf("ready while every decision fails: %+v", r)
	}
	h.Decided(tollguard.ReasonEmergency, now) // let through whatever the store says
	if h.report(true, now).Ready {
		t.Error("an emergency call made it ready")
	}
	if !h.report(true, now.Add(failingFor+time.Second)).Ready {
		t.Error("still not ready a minute after the last failure")
	}
	h.Decided(tollguard.ReasonOK, now)
	if !h.report(true, now).Ready {
		t.Error("not ready after a decision succeeded")
	}
}
