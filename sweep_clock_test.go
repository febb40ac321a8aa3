package tollguard_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// restarted makes f's policy a daemon's after a restart, as serve builds
// it: the calls decided so far have no start on its monotonic clock, and
// its ClockWatch (on f's wall clock and *mono) trusts the wall clock now.
func restarted(f *fixture, mono *time.Duration) {
	w := &tollguard.ClockWatch{Now: func() time.Time { return f.now }, Mono: func() time.Duration { return *mono },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w.Start()
	f.p.Mono = func() time.Duration { return *mono }
	f.p.WallAhead = w.Ahead
}

var (
	chanUp   = func(context.Context, *tollguard.CallRecord) (bool, bool, error) { return true, true, nil }
	chanGone = func(context.Context, *tollguard.CallRecord) (bool, bool, error) { return false, true, nil }
)

// TestSweepAfterRestartAndClockStep: the sweep timed the calls decided
// before a restart (no monotonic start in the process) by the wall
// clock. Set a day ahead (`date -s`), it hung up such a call one minute
// into its ten as overrun, settled it at its full reservation without
// ARI, and charged one whose channel had gone its whole reservation.
// The serve's ClockWatch knows the step: the sweep takes it off their
// age, and still ends a call that does overrun.
func TestSweepAfterRestartAndClockStep(t *testing.T) {
	ctx := context.Background()
	t.Run("StillUp", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.MaxCallSecs = 600 })
		d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-1.1"}, tollguard.Allow, tollguard.ReasonOK)
		var mono time.Duration
		f.now = f.now.Add(30 * time.Second)
		restarted(f, &mono)
		mono += 30 * time.Second
		f.now = f.now.Add(24*time.Hour + 30*time.Second) // a minute into the call, the clock set a day ahead
		hangup := func(_ context.Context, c *tollguard.CallRecord) error {
			t.Errorf("call %d hung up one minute into its ten", c.ID)
			return nil
		}
		if r, err := f.p.Sweep(ctx, f.db, chanUp, hangup, 2*time.Minute); err != nil || len(r.Overran) != 0 || r.StillRunning != 1 {
			t.Errorf("sweep with ARI: %+v, %v", r, err)
		}
		if r, err := f.p.Sweep(ctx, f.db, nil, nil, 2*time.Minute); err != nil || r.SettledFull != 0 {
			t.Errorf("sweep without ARI: %+v, %v", r, err)
		}
		// Past MAXSEC + grace by the time elapsed: overrun, the step
		// still held.
		mono += 12 * time.Minute
		f.now = f.now.Add(12 * time.Minute)
		var hung []int64
		hangup = func(_ context.Context, c *tollguard.CallRecord) error { hung = append(hung, c.ID); return nil }
		r, err := f.p.Sweep(ctx, f.db, chanUp, hangup, 2*time.Minute)
		if err != nil || len(r.Overran) != 1 || len(hung) != 1 || r.Overran[0].Elapsed != 13*time.Minute {
			t.Errorf("sweep 13 minutes in: %+v, %v, hung up %v", r, err, hung)
		}
		if r, err := f.p.Sweep(ctx, f.db, nil, nil, 2*time.Minute); err != nil || r.SettledFull != 1 {
			t.Errorf("sweep without ARI 13 minutes in: %+v, %v", r, err)
		}
		if c, _ := f.db.Call(ctx, d.CallID); c.SettledBy != "sweep:maxsec" || c.Billsec != 600 {
			t.Errorf("call %+v; want settled at its MAXSEC", c)
		}
	})
	t.Run("Gone", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600 })
		d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-2.1"}, tollguard.Allow, tollguard.ReasonOK)
		var mono time.Duration
		f.now = f.now.Add(time.Minute)
		restarted(f, &mono)
		mono += time.Minute
		f.now = f.now.Add(24*time.Hour + time.Minute)
		sweepGone(t, f, d.CallID, func() {
			mono += 30 * time.Second
			f.now = f.now.Add(30 * time.Second)
		}, 120)
	})
	t.Run("StepCorrectedBetweenSightings", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600 })
		d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-3.1"}, tollguard.Allow, tollguard.ReasonOK)
		var mono time.Duration
		f.now = f.now.Add(time.Minute)
		restarted(f, &mono)
		mono += time.Minute
		f.now = f.now.Add(24*time.Hour + time.Minute)
		sweepGone(t, f, d.CallID, func() {
			mono += time.Minute
			f.now = f.now.Add(time.Minute - 24*time.Hour) // set right
		}, 120)
	})
	// A box that came up with its clock 200 days behind and synced
	// late: the step is held as any other, but the calls decided before
	// the reboot were stamped on the right clock, and are charged the
	// time they had, not that less 200 days.
	t.Run("BootedBehindSyncedLate", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600 })
		d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-4.1"}, tollguard.Allow, tollguard.ReasonOK)
		decided := f.now
		var mono time.Duration
		f.now = decided.Add(-200 * 24 * time.Hour)
		restarted(f, &mono)
		mono += time.Minute
		f.now = decided.Add(2 * time.Minute) // synced
		sweepGone(t, f, d.CallID, func() {
			if ahead := f.p.WallAhead(); ahead < 199*24*time.Hour {
				t.Fatalf("the watch holds %v ahead; want the 200 days' sync held", ahead)
			}
			mono += 30 * time.Second
			f.now = f.now.Add(30 * time.Second)
		}, 120)
	})
}

// TestSweepGoneChargeOnTheMonotonicClock: a call this process decided
// was timed on its monotonic clock for overruns, but a gone one was
// charged to its first sighting on the wall clock: set a day ahead
// before that sighting, it paid its whole reservation for a minute.
func TestSweepGoneChargeOnTheMonotonicClock(t *testing.T) {
	f := newFixture(t)
	var mono time.Duration
	f.p.Mono = func() time.Duration { return mono }
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600 })
	d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-5.1"}, tollguard.Allow, tollguard.ReasonOK)
	mono += time.Minute
	f.now = f.now.Add(24*time.Hour + time.Minute)
	sweepGone(t, f, d.CallID, func() {
		mono += 30 * time.Second
		f.now = f.now.Add(30 * time.Second)
	}, 60)
}

// sweepGone runs two sweeps that find call id's channel gone, between
// them (the gone wait) and after the first, and wants it charged billsec,
// to its first sighting.
func sweepGone(t *testing.T, f *fixture, id int64, between func(), billsec int64) {
	t.Helper()
	ctx := context.Background()
	if r, err := f.p.Sweep(ctx, f.db, chanGone, nil, 30*time.Second); err != nil || r.GoneWaiting != 1 {
		t.Fatalf("first sweep: %+v, %v", r, err)
	}
	between()
	if r, err := f.p.Sweep(ctx, f.db, chanGone, nil, 30*time.Second); err != nil || r.SettledGone != 1 {
		t.Fatalf("second sweep: %+v, %v", r, err)
	}
	if c, _ := f.db.Call(ctx, id); c.SettledBy != "sweep:gone" || c.Billsec != billsec {
		t.Errorf("call %+v; want charged %d s, to its first sighting", c, billsec)
	}
}

// TestClockWatchAhead: a nil watch (the CLI's) is never ahead; a step
// back is trusted at once.
func TestClockWatchAhead(t *testing.T) {
	var w *tollguard.ClockWatch
	if got := w.Ahead(); got != 0 {
		t.Errorf("nil watch ahead %v", got)
	}
	wall := friday
	var mono time.Duration
	w = &tollguard.ClockWatch{Now: func() time.Time { return wall }, Mono: func() time.Duration { return mono },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w.Start()
	mono, wall = time.Hour, wall.Add(25*time.Hour)
	if got := w.Ahead(); got != 24*time.Hour || !w.PruneHeld() {
		t.Errorf("a day's step: ahead %v, held %v", got, w.PruneHeld())
	}
	mono, wall = 2*time.Hour, wall.Add(-24*time.Hour)
	if got := w.Ahead(); got != 0 || w.PruneHeld() {
		t.Errorf("set back an hour too far: ahead %v, held %v", got, w.PruneHeld())
	}
}
