package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// abandonedPins starts a daemon whose scheduled pins audit reads
// voicemail.conf from a FIFO nothing writes (a hung file system), runs
// it until it is abandoned at its deadline, and returns the daemon,
// its log, the database's path and a function that lets the file
// system answer.
func abandonedPins(t *testing.T) (d *daemon, logs *testutil.Buffer, dbPath string, answer func()) {
	t.Helper()
	dir := t.TempDir()
	fifo := hungVoicemailConf(t, dir)
	cfg, err := parseConfig("t.toml", "[audit]\nenabled = true\ntimeout = \"1s\"\n[audit.pins]\nvoicemail_conf = \""+fifo+"\"\n", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	dbPath = filepath.Join(dir, "tg.db")
	app := NewApp(strings.NewReader(""), &testutil.Buffer{}, &testutil.Buffer{})
	app.Config = cfg
	cfg.DB = dbPath
	logs = &testutil.Buffer{}
	app.Logger = slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(app.Close)
	db, err := app.Store(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d = &daemon{app: app, db: db, log: app.Logger, alerter: logAlerter{app.Logger}, metrics: NewMetrics()}
	s, err := newAuditScheduler(d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s.Start(ctx)
	d.goFunc("audits", func() { // as startCron
		<-ctx.Done()
		<-s.Stop().Done()
	})
	answered := false
	answer = func() {
		if answered {
			return
		}
		answered = true
		if err := os.WriteFile(fifo, []byte("[default]\n1001 => 1234,Bob\n"), 0o600); err != nil {
			t.Error(err)
		}
	}
	// The late run's goroutine ends before the test does.
	t.Cleanup(func() {
		answer()
		testutil.Eventually(t, 10*time.Second, "the late pins run to return", func() bool {
			return strings.Contains(logs.String(), "returned after tollguard stopped waiting")
		})
	})
	if err := s.Run("pins"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "nor stop within 1s of being cancelled") {
		t.Fatalf("the pins run was not abandoned at its deadline:\n%s", logs)
	}
	cancel() // shutdown begins: the scheduler stops
	return d, logs, dbPath, answer
}

// TestShutdownWaitsForAbandonedAudit: a scheduled audit abandoned at
// its deadline (stuck in a call that ignores cancellation) stores what
// it found and changed as a run of its own when it returns. serve did
// not wait for that at shutdown: the database closed first, and the
// late run, which may list purges or blocks it made, was only logged
// as "could not store the audit run". Now shutdown waits for it within
// serve's shutdown wait, and says which audit it gave up on.
func TestShutdownWaitsForAbandonedAudit(t *testing.T) {
	t.Run("LateRunStored", func(t *testing.T) {
		d, logs, dbPath, answer := abandonedPins(t)
		down := make(chan struct{})
		go func() {
			d.shutdown(30 * time.Second)
			close(down)
		}()
		// The file system answers once shutdown waits for the audit (or,
		// had it not waited, once the database is closed).
		testutil.Eventually(t, 20*time.Second, "shutdown to wait for the audit or finish", func() bool {
			select {
			case <-down:
				return true
			default:
				return strings.Contains(logs.String(), "waiting for an audit abandoned at its deadline")
			}
		})
		answer()
		select {
		case <-down:
		case <-time.After(20 * time.Second): // a hang, not a speed check
			t.Fatalf("shutdown did not finish once the audit returned:\n%s", logs)
		}
		testutil.Eventually(t, 10*time.Second, "the late pins run to return", func() bool {
			return strings.Contains(logs.String(), "returned after tollguard stopped waiting")
		})
		if out := logs.String(); strings.Contains(out, "could not store the audit run") || strings.Contains(out, "stopped waiting for audit") {
			t.Errorf("the late run was not stored:\n%s", out)
		}
		db, err := store.Open(context.Background(), dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		runs, err := db.AuditRuns(context.Background(), "pins", 10)
		if err != nil || len(runs) != 2 || !strings.Contains(runs[0].Error, "returned after tollguard stopped waiting") || len(runs[0].Findings) == 0 {
			t.Fatalf("pins runs %+v, %v; want the failed run and the late one with the weak PIN", runs, err)
		}
	})
	t.Run("GivesUpAtTheShutdownWait", func(t *testing.T) {
		d, logs, _, _ := abandonedPins(t)
		down := make(chan struct{})
		go func() {
			d.shutdown(200 * time.Millisecond)
			close(down)
		}()
		select {
		case <-down:
		case <-time.After(20 * time.Second): // a hang, not a speed check
			t.Fatalf("shutdown waited past its bound for an audit that never returns:\n%s", logs)
		}
		if d.app.db != nil {
			t.Error("the database is still open after shutdown")
		}
		out := logs.String()
		for _, w := range []string{"stopped waiting for audit pins", "job=pins", "reason=shutdown_wait_elapsed", "will not be stored", "tollguard audit pins"} {
			if !strings.Contains(out, w) {
				t.Errorf("log lacks %q:\n%s", w, out)
			}
		}
	})
}
