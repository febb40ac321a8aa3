package tollguard

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// OpenCallLister lists allowed calls that have not settled.
type OpenCallLister interface {
	OpenCallsBefore(ctx context.Context, t time.Time) ([]*CallRecord, error)
}

// ChannelChecker reports whether Asterisk still has a call's channel.
// known is false when Asterisk cannot be asked (ARI off or down).
type ChannelChecker func(ctx context.Context, c *CallRecord) (alive, known bool, err error)

// ChannelHanger hangs up a call's channel through Asterisk.
type ChannelHanger func(ctx context.Context, c *CallRecord) error

// SweepResult says what a sweep did, for the log.
type SweepResult struct {
	Checked      int
	SettledFull  int // past MAXSEC: charged the full reservation
	SettledGone  int // channel gone: charged the time elapsed, at most the reservation
	GoneWaiting  int // channel gone, first seen so: left to the ARI listener until the next sweep
	StillRunning int
	// Pending are the calls left open because their settlement waits in
	// memory for the store (settle_queue.go).
	Pending int
	// Overran are the calls Asterisk still carried past MAXSEC + grace.
	Overran []Overrun
}

// Overrun is a call found up past its MAXSEC + grace, and whether the
// sweep hung it up.
type Overrun struct {
	Call    *CallRecord
	Elapsed time.Duration // since its decision, as the sweep measured it
	HungUp  bool
	Err     error // why it was not
}

// StartedSeconds is d in billed seconds: a started second counts, as the
// hangup script bills ANSWEREDTIME_MS.
func StartedSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// StartedSecondsMS is StartedSeconds of ms milliseconds (ANSWEREDTIME_MS),
// without overflowing near 2^63 as (ms+999)/1000 or a Duration would.
func StartedSecondsMS(ms int64) int64 {
	sec := ms / 1000
	if ms%1000 != 0 {
		sec++
	}
	return sec
}

// DefaultOpenLimit is how long a call with no limit (a free call) may
// stay open before the sweep settles it.
const DefaultOpenLimit = 12 * time.Hour

// DefaultSweepGoneWait is Policy.SweepGoneWait's default: three times
// the ARI listener's default settle_grace.
const DefaultSweepGoneWait = 30 * time.Second

// Sweep settles calls whose settlement never arrived (a crash, a lost
// FastAGI connection, a dialplan without the hangup handler), so that
// the balance never quietly forgets a call:
//   - a call whose channel Asterisk says is gone, and said so at an
//     earlier sweep at least SweepGoneWait before, is charged for the
//     time from the decision to that first sighting, which bounds its
//     real duration, capped at its reservation (the wait leaves the call
//     to the ARI listener, which bills it from its answer: charged from
//     the decision, a call never answered paid its ringing and its
//     connection fee);
//   - a call past its MAXSEC (plus grace) is charged its full
//     reservation: TIMEOUT(absolute) ended it by then at the latest.
//
// Calls Asterisk still carries are left to their hangup, unless they
// are past their MAXSEC plus grace: TIMEOUT(absolute), set at the
// decision, should have ended them, so something in the route cleared
// or changed it, and the call is spending money nobody reserved. With
// hangup (ARI), the sweep hangs them up; their hangup then settles them
// (the charge capped at the reservation).
func (p *Policy) Sweep(ctx context.Context, l OpenCallLister, alive ChannelChecker, hangup ChannelHanger, grace time.Duration) (SweepResult, error) {
	var r SweepResult
	// Settlements the store failed first: the sweep must not charge a
	// call whose real settlement only waits for the store. Their errors
	// were logged when they were kept.
	p.retryIdle(ctx)
	now := p.Now()
	open, err := l.OpenCallsBefore(ctx, now)
	if err != nil {
		return r, fmt.Errorf("list open calls: %w", err)
	}
	wait := p.SweepGoneWait
	if wait <= 0 {
		wait = DefaultSweepGoneWait
	}
	// Calls decided before this process have no monotonic start: their
	// age is on the wall clock, less how far it is ahead (WallAhead).
	ahead := time.Duration(0)
	if p.WallAhead != nil {
		ahead = p.WallAhead()
	}
	// Every open call keeps its first sighting unless this sweep finds it
	// up or settles it: one failed check (or a sweep stopped early) does
	// not restart the wait, and calls settled meanwhile, no longer open,
	// are dropped.
	p.sweepMu.Lock()
	gone := make(map[int64]time.Duration)
	for _, c := range open {
		if first, ok := p.sweepGone[c.ID]; ok {
			gone[c.ID] = first
		}
	}
	p.sweepMu.Unlock()
	defer func() {
		p.sweepMu.Lock()
		p.sweepGone = gone
		p.sweepMu.Unlock()
	}()
	for _, c := range open {
		r.Checked++
		if _, ok := p.settlementPending(c.ID); ok {
			r.Pending++
			continue
		}
		// No paid call runs past a day, whatever MAXSEC a row decided
		// before that limit carries (1.2e10 s overflowed the Duration,
		// negative, and the call counted as overrun at once).
		limit := time.Duration(min(c.MaxSec, MaxCallSecsLimit)) * time.Second
		if c.MaxSec < 0 {
			limit = DefaultOpenLimit
		}
		elapsed, ok := p.sinceDecided(c.ID) // a wall clock stepped forward is no overrun
		if !ok {
			elapsed = wallElapsed(now, c.CreatedAt, ahead)
		}
		if alive != nil {
			up, known, err := alive(ctx, c)
			if err == nil && known && up {
				delete(gone, c.ID)
				r.StillRunning++
				if c.MaxSec >= 0 && elapsed >= limit+grace {
					o := Overrun{Call: c, Elapsed: elapsed, Err: errors.New("no way to hang up calls")}
					if hangup != nil {
						o.Err = hangup(ctx, c)
						o.HungUp = o.Err == nil
					}
					r.Overran = append(r.Overran, o)
				}
				continue
			}
			if err == nil && known && !up {
				// Its age when first seen gone, measured as elapsed is
				// (not the wall clock's, which a step moves); less than
				// it now only if the clock went back.
				first, ok := gone[c.ID]
				if !ok || first > elapsed {
					first = elapsed
				}
				gone[c.ID] = first
				if elapsed-first < wait {
					r.GoneWaiting++
					continue
				}
				// Gone by when it was first seen so: the wait is not the
				// call's.
				billsec := StartedSeconds(first)
				if c.MaxSec >= 0 && billsec > c.MaxSec {
					billsec = c.MaxSec
				}
				// A hangup request may have settled it since the list was
				// read: count only the calls this sweep settled.
				changed, err := p.sweepSettle(ctx, Settlement{CallID: c.ID, Billsec: billsec, By: "sweep:gone", At: now})
				if err != nil {
					return r, err
				}
				delete(gone, c.ID) // settled, by this sweep or another
				if changed {
					r.SettledGone++
				}
				continue
			}
		}
		if elapsed < limit+grace {
			continue
		}
		// Its MAXSEC, or the time it has had if less (an old row's
		// MAXSEC may be years: billing it would take the whole balance).
		billsec := min(c.MaxSec, int64(elapsed/time.Second))
		if c.MaxSec < 0 {
			billsec = int64(limit / time.Second)
		}
		changed, err := p.sweepSettle(ctx, Settlement{CallID: c.ID, Billsec: billsec, By: "sweep:maxsec", At: now})
		if err != nil {
			return r, err
		}
		if changed {
			r.SettledFull++
		}
	}
	return r, nil
}

// sweepSettle settles a call the sweep judged, unless its real
// settlement was kept in memory meanwhile. A failed one is not kept:
// the next sweep judges the call again.
func (p *Policy) sweepSettle(ctx context.Context, s Settlement) (bool, error) {
	if _, ok := p.settlementPending(s.CallID); ok {
		return false, nil
	}
	_, changed, err := p.settleStored(ctx, s)
	return changed, err
}

// wallElapsed is the time since a decision stamped decided, on a wall
// clock ahead (ClockWatch.Ahead) of the time elapsed. A stamp from
// before the step is at least ahead old on it: counted without the
// step, a clock set a day ahead neither cuts a call decided before a
// restart as overrun nor charges it its whole reservation. A younger
// one was stamped after the step (or on a right clock, before a boot
// that came up behind and synced late) and is counted as is. When it
// cannot tell (a step that stayed longer than its size), it counts a
// call younger: hung up or charged late, never early.
func wallElapsed(now, decided time.Time, ahead time.Duration) time.Duration {
	d := now.Sub(decided)
	if ahead > 0 && d >= ahead {
		d -= ahead
	}
	return d
}
