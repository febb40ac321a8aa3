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
)

// TestHousekeepPrunesSnapshots: every purge stored a snapshot holding
// the extension's SIP password, and every finished purge stayed a row,
// forever. Serve's hourly housekeeping now drops an extension's
// snapshots once its last purge or restore is older than the restore
// window (at least stale_days), and finished purges as old; snapshots a
// restore or an open purge still needs stay.
func TestHousekeepPrunesSnapshots(t *testing.T) {
	ctx := context.Background()
	app, db := openApp(t, filepath.Join(t.TempDir(), "tollguard.db"))
	var logs bytes.Buffer
	d := &daemon{app: app, db: db, log: slog.New(slog.NewTextHandler(&logs, nil))}
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	ago := func(days int) time.Time { return now.AddDate(0, 0, -days) }
	endpoint := []tollguard.SnapshotObject{{Type: "auth", ID: "x", Fields: tollguard.ConfigObject{{Attribute: "password", Value: "s3cret-s3cret"}}},
		{Type: "endpoint", ID: "x"}}
	aorOnly := []tollguard.SnapshotObject{{Type: "aor", ID: "x"}}
	snap := func(ext string, taken time.Time, objs []tollguard.SnapshotObject) int64 {
		t.Helper()
		s := &tollguard.ExtensionSnapshot{Extension: ext, TakenAt: taken, Reason: "stale", Objects: objs}
		if err := db.SaveSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	purge := func(ext string, scheduled time.Time, done time.Time) {
		t.Helper()
		if _, err := db.AddPendingPurge(ctx, tollguard.PendingPurge{Extension: ext, Job: "stale", ScheduledAt: scheduled, DueAt: scheduled.AddDate(0, 0, 7)}); err != nil {
			t.Fatal(err)
		}
		if !done.IsZero() {
			if err := db.FinishPurge(ctx, ext, "purged", done); err != nil {
				t.Fatal(err)
			}
		}
	}

	snap("old", ago(200), endpoint) // past the window, never restored
	purge("old", ago(207), ago(200))
	id := snap("restored", ago(300), endpoint) // restored lately: the stale audit counts it
	if err := db.MarkSnapshotRestored(ctx, id, ago(10)); err != nil {
		t.Fatal(err)
	}
	snap("recent", ago(10), endpoint)
	purge("recent", ago(17), ago(10))
	snap("open", ago(250), aorOnly) // a purge that failed partway and is still pending
	purge("open", ago(257), time.Time{})
	snap("retried", ago(200), endpoint) // deleted the endpoint, then failed
	snap("retried", ago(150), aorOnly)  // the retry: restore needs both
	purge("retried", ago(207), ago(150))

	d.housekeep(ctx, now, 90)

	for ext, want := range map[string]int{"old": 0, "restored": 1, "recent": 1, "open": 1, "retried": 2} {
		got, err := db.Snapshots(ctx, ext)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Errorf("%s: %d snapshots after housekeeping, want %d", ext, len(got), want)
		}
	}
	var finished, open int
	if err := db.SQL().QueryRowContext(ctx, `SELECT COALESCE(SUM(done_at > 0), 0), COALESCE(SUM(done_at = 0), 0) FROM pending_purges`).Scan(&finished, &open); err != nil {
		t.Fatal(err)
	}
	if finished != 2 || open != 1 { // recent and retried; open
		t.Errorf("pending purges after housekeeping: %d finished, %d open; want 2 and 1", finished, open)
	}
	if out := logs.String(); !strings.Contains(out, "pruned old purge snapshots") || !strings.Contains(out, "snapshots=1") || !strings.Contains(out, "purges=1") {
		t.Errorf("housekeeping log: %q", out)
	}

	t.Run("KeepsRestoredForStaleDays", func(t *testing.T) {
		app.Config.Audit.StaleDays = 400
		defer func() { app.Config.Audit.StaleDays = 60 }()
		id := snap("slow", ago(400), endpoint)
		if err := db.MarkSnapshotRestored(ctx, id, ago(300)); err != nil {
			t.Fatal(err)
		}
		d.housekeep(ctx, now, 90)
		if got, err := db.LastRestored(ctx); err != nil || got["slow"].IsZero() {
			t.Errorf("a restore within stale_days (400) was forgotten: %v, %v", got, err)
		}
		d.housekeep(ctx, now.AddDate(0, 0, 101), 90)
		if got, err := db.Snapshots(ctx, "slow"); err != nil || len(got) != 0 {
			t.Errorf("snapshot restored 401 days ago kept with stale_days 400: %d, %v", len(got), err)
		}
	})
}
