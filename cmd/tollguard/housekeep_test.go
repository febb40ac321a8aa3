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

// TestHousekeepHeldAfterClockStep: the hourly rollup goes by the wall
// clock's age and cannot be undone. A clock set 200 days ahead (a
// mistaken `date -s`, a bad NTP server) rolled up every call's detail
// at the next hour, however soon it was set right. It is now held while
// the wall clock is ahead of the monotonic time elapsed, until the clock
// comes back or the step has lasted a day (a late sync: the clock is
// right then).
func TestHousekeepHeldAfterClockStep(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	// setup records calls placed 100 days, 89 days 23 hours, 10 days
	// and an hour before start, and runs housekeeping at start: it rolls
	// up the first (retention_days 90).
	setup := func(t *testing.T) *clockFixture {
		c := newCLI(t)
		c.seed()
		app, db := openApp(t, c.db)
		f := &clockFixture{wall: start}
		app.Now = func() time.Time { return f.wall }
		db.Now = app.Now
		for _, ago := range []time.Duration{100 * 24 * time.Hour, 90*24*time.Hour - time.Hour, 10 * 24 * time.Hour, time.Hour} {
			f.wall = start.Add(-ago)
			// From outside the allowed networks: denied, so never open.
			if dec, err := app.Policy(db).Decide(ctx, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "203.0.113.9"}); err != nil || dec.Allowed() {
				t.Fatalf("call: %+v %v; want it denied", dec, err)
			}
		}
		f.wall = start
		log := slog.New(slog.NewTextHandler(&f.logs, nil))
		f.d = &daemon{app: app, db: db, log: log,
			clock: &tollguard.ClockWatch{Now: app.Now, Mono: func() time.Duration { return f.mono }, Logger: log}}
		f.d.clock.Start()
		f.d.housekeep(ctx, f.wall, 90)
		f.want(t, 3, 1)
		return f
	}
	t.Run("StepForwardHeld", func(t *testing.T) {
		f := setup(t)
		f.step(time.Hour, 200*24*time.Hour+time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		f.want(t, 3, 1)
		if out := f.logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "the system clock moved 4800h0m0s ahead") ||
			!strings.Contains(out, "held_until=2027-06-12T13:00:00Z") {
			t.Errorf("no warning of the step: %q", out)
		}
		// Once per step.
		f.step(time.Hour, time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		f.want(t, 3, 1)
		if n := strings.Count(f.logs.String(), "the system clock moved"); n != 1 {
			t.Errorf("warned %d times of one step", n)
		}
	})
	t.Run("ResumesWhenCorrected", func(t *testing.T) {
		f := setup(t)
		f.step(time.Hour, 200*24*time.Hour+time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		f.step(time.Hour, time.Hour-200*24*time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		f.want(t, 2, 2) // the call of 89 days 23 hours before start is 90 days old now
		if out := f.logs.String(); !strings.Contains(out, "back in step") {
			t.Errorf("resuming not logged: %q", out)
		}
	})
	t.Run("ResumesWhenTheStepStays", func(t *testing.T) {
		f := setup(t)
		f.step(time.Hour, 200*24*time.Hour+time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		f.step(23*time.Hour, 23*time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		f.want(t, 3, 1)
		f.step(time.Hour, time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		f.want(t, 1, 3) // all but the newest
		if out := f.logs.String(); !strings.Contains(out, "stayed ahead; trusting it") {
			t.Errorf("resuming not logged: %q", out)
		}
	})
	t.Run("SmallStepsAndStepsBackPrune", func(t *testing.T) {
		f := setup(t)
		f.step(time.Hour, time.Hour+5*time.Minute) // under the tolerance
		f.d.housekeep(ctx, f.wall, 90)
		f.want(t, 2, 2)
		f.step(time.Hour, -30*24*time.Hour)
		f.d.housekeep(ctx, f.wall, 90)
		if out := f.logs.String(); strings.Contains(out, "level=WARN") {
			t.Errorf("warned: %q", out)
		}
	})
}

type clockFixture struct {
	d    *daemon
	wall time.Time
	mono time.Duration
	logs bytes.Buffer
}

// step moves the monotonic clock by mono and the wall clock by wall.
func (f *clockFixture) step(mono, wall time.Duration) {
	f.mono += mono
	f.wall = f.wall.Add(wall)
}

// want checks the calls left in the table, and those in monthly totals.
func (f *clockFixture) want(t *testing.T, calls, rolledUp int) {
	t.Helper()
	var n, r int
	q := f.d.db.SQL()
	if err := q.QueryRow(`SELECT COUNT(*) FROM calls`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := q.QueryRow(`SELECT COALESCE(SUM(calls), 0) FROM monthly_totals`).Scan(&r); err != nil {
		t.Fatal(err)
	}
	if n != calls || r != rolledUp {
		t.Errorf("%d calls in the table and %d rolled up; want %d and %d", n, r, calls, rolledUp)
	}
}
