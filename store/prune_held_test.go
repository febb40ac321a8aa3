package store_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// heldClock is a ClockWatch on a fake wall clock and a fake monotonic
// one, as serve hands the store its own.
type heldClock struct {
	wall  time.Time
	mono  time.Duration
	watch *tollguard.ClockWatch
}

func newHeldClock(start time.Time) *heldClock {
	c := &heldClock{wall: start}
	c.watch = &tollguard.ClockWatch{Now: func() time.Time { return c.wall }, Mono: func() time.Duration { return c.mono },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c.watch.Start()
	return c
}

// step moves the monotonic clock by mono and the wall clock by wall.
func (c *heldClock) step(mono, wall time.Duration) {
	c.mono += mono
	c.wall = c.wall.Add(wall)
}

func heldDB(t *testing.T, c *heldClock) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Now = func() time.Time { return c.wall }
	db.PruneHeld = c.watch.PruneHeld
	return db
}

// TestAuditRunsKeptAfterClockStep: storing a run deletes the job's runs
// more than 180 days older than its start, but for the latest 20. A
// clock set a year ahead made every run look old: the first hourly run
// after the step deleted all but 20 of each job's runs, which no
// correction brings back. While the serve's ClockWatch holds pruning,
// they stay; once the clock is back, or the step has lasted a day,
// runs past the retention go again, the latest 20 always kept.
func TestAuditRunsKeptAfterClockStep(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	save := func(t *testing.T, db *store.DB, at time.Time) {
		t.Helper()
		if err := db.SaveAuditRun(ctx, &tollguard.AuditRun{Job: "quotas", Trigger: "cron", StartedAt: at, EndedAt: at.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(t *testing.T, db *store.DB) int {
		t.Helper()
		var n int
		if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_runs WHERE job = 'quotas'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// setup stores 48 hourly runs of the last two days, then 10 of 200
	// days ago (stored after the others, so that nothing pruned them).
	setup := func(t *testing.T) (*store.DB, *heldClock) {
		c := newHeldClock(start)
		db := heldDB(t, c)
		for h := 48; h > 0; h-- {
			save(t, db, start.Add(-time.Duration(h)*time.Hour))
		}
		for d := 200; d > 190; d-- {
			save(t, db, start.AddDate(0, 0, -d))
		}
		if n := count(t, db); n != 58 {
			t.Fatalf("%d runs after setup, want 58", n)
		}
		return db, c
	}
	t.Run("HeldAYearAhead", func(t *testing.T) {
		db, c := setup(t)
		c.step(time.Hour, 365*24*time.Hour+time.Hour)
		save(t, db, c.wall)
		if n := count(t, db); n != 59 {
			t.Errorf("%d runs after a run stored with the clock a year ahead; want all 59 kept", n)
		}
		t.Run("PrunesWhenCorrected", func(t *testing.T) {
			c.step(time.Hour, time.Hour-365*24*time.Hour)
			save(t, db, c.wall)
			// The 10 runs of 200 days ago go; the rest are within 180 days.
			if n := count(t, db); n != 50 {
				t.Errorf("%d runs once the clock is back; want 50", n)
			}
		})
	})
	t.Run("PrunesWhenTheStepStays", func(t *testing.T) {
		db, c := setup(t)
		c.step(time.Hour, 365*24*time.Hour+time.Hour)
		save(t, db, c.wall)
		c.step(24*time.Hour, 24*time.Hour)
		save(t, db, c.wall)
		// Trusted: every run is older than 180 days but the latest 20.
		if n := count(t, db); n != 20 {
			t.Errorf("%d runs after the step lasted a day; want the latest 20", n)
		}
	})
	t.Run("LatestKeptWithoutAClockWatch", func(t *testing.T) {
		db, c := setup(t)
		db.PruneHeld = nil // the CLI's store
		c.step(time.Hour, 365*24*time.Hour+time.Hour)
		save(t, db, c.wall)
		if n := count(t, db); n != 20 {
			t.Errorf("%d runs; want the latest 20", n)
		}
	})
}

// TestSightingsKeptAfterClockStep: the inventory forgets an endpoint
// Asterisk has not listed for a week, and one listed again after that
// is new (the quotas audit counts it as created that day). A clock set
// a year ahead forgot every endpoint missing from one listing (a pjsip
// reload that failed): each came back as new. While serve's ClockWatch
// holds pruning they are kept; once the clock is back, forgetting goes
// on.
func TestSightingsKeptAfterClockStep(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c := newHeldClock(start)
	db := heldDB(t, c)
	sight := func(t *testing.T, names ...string) map[string]tollguard.EndpointSighting {
		t.Helper()
		got, err := db.SightEndpoints(ctx, names, c.wall)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	sight(t, "1001", "1002")
	c.step(time.Hour, 365*24*time.Hour+time.Hour)
	sight(t, "1001") // 1002 missing from this listing
	c.step(time.Hour, time.Hour-365*24*time.Hour)
	if got := sight(t, "1001", "1002")["1002"]; !got.FirstSeen.Equal(start) || !got.Baseline {
		t.Errorf("1002 after the clock came back: %+v; want first seen %s, as a baseline", got, start)
	}
	// In step again: a week unlisted forgets it.
	c.step(8*24*time.Hour, 8*24*time.Hour)
	sight(t, "1001")
	if got := sight(t, "1001", "1002")["1002"]; !got.FirstSeen.Equal(c.wall) || got.Baseline {
		t.Errorf("1002 listed again after a week missing: %+v; want first seen now (%s), not a baseline", got, c.wall)
	}
}
