package tollguard

import (
	"log/slog"
	"sync"
	"time"
)

// ClockWatch notices the wall clock stepping away from the time elapsed
// on the monotonic clock (an NTP step, `date -s`, a box without an RTC
// synced late), so that the daemon holds what it deletes by wall-clock
// age: a clock set 200 days ahead for a minute would otherwise roll up
// every call's detail, which no correction brings back. serve hands its
// PruneHeld to each deleter: its housekeeping (rollup, snapshots), the
// alert dispatcher, the ARI listener (registrations), the store
// (audit runs, endpoint sightings) and the scheduled audits (due
// purges). The sweep takes its Ahead off the wall-clock age of calls
// decided before serve started, which have no monotonic start.
//
// The rule: pruning is held while the wall clock is more than
// Tolerance ahead of the time elapsed since it was last trusted, until
// either it comes back (a mistaken step, corrected) or it has stayed
// ahead for Persist of monotonic time (a genuine correction: a box that
// booted with a stale clock and synced late is then right, and only
// pruned a day late). Holding never loses data; pruning early does.
// A step back prunes less, not more: the clock is trusted at once.
type ClockWatch struct {
	Now    func() time.Time     // the wall clock; a monotonic reading in it is ignored
	Mono   func() time.Duration // the monotonic clock (MonotonicClock)
	Logger *slog.Logger

	// Tolerance is how far ahead the wall clock may get unnoticed;
	// zero is DefaultClockTolerance.
	Tolerance time.Duration
	// Persist is how long a step forward must last before pruning goes
	// by it; zero is DefaultClockPersist.
	Persist time.Duration

	mu      sync.Mutex
	started bool
	wall0   time.Time     // the wall clock when last trusted
	mono0   time.Duration // Mono then
	jump    time.Duration // how far ahead the held step is; 0: none
	jumpAt  time.Duration // Mono when it was seen
}

// DefaultClockTolerance is far above the steps NTP makes on a synced
// box (chrony and ntpd step under a second, and slew the rest, which
// moves both clocks), and far below the shortest retention (a day): a
// step under it prunes at most that much early.
const DefaultClockTolerance = 10 * time.Minute

// DefaultClockPersist gives an admin a day to see the warning and
// correct a mistaken step; a genuine one only delays pruning by it.
const DefaultClockPersist = 24 * time.Hour

// Start takes the wall clock as trusted now; the first PruneHeld does it
// otherwise.
func (w *ClockWatch) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.start()
}

func (w *ClockWatch) start() {
	if !w.started {
		w.started = true
		w.trust(w.Now().Round(0), w.Mono())
	}
}

func (w *ClockWatch) trust(wall time.Time, mono time.Duration) {
	w.wall0, w.mono0, w.jump = wall, mono, 0
}

// PruneHeld reports whether deleting or rolling up by wall-clock age
// must wait: the wall clock has stepped ahead of the monotonic time
// elapsed, lately. It logs a warning once per step, and when pruning
// resumes. Safe for concurrent use.
func (w *ClockWatch) PruneHeld() bool {
	if w == nil {
		return false
	}
	held, _ := w.check()
	return held
}

// Ahead is how far the wall clock is ahead of the time elapsed since it
// was last trusted, 0 when it is not ahead or is trusted again: what a
// wall-clock age of something stamped before the step overstates. It
// checks the clock as PruneHeld does (and warns alike). Safe for
// concurrent use; a nil ClockWatch is never ahead.
func (w *ClockWatch) Ahead() time.Duration {
	if w == nil {
		return 0
	}
	_, ahead := w.check()
	return ahead
}

// check says whether pruning is held, and how far ahead the clock is
// (zero once trusted).
func (w *ClockWatch) check() (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.start()
	tol, persist := w.Tolerance, w.Persist
	if tol <= 0 {
		tol = DefaultClockTolerance
	}
	if persist <= 0 {
		persist = DefaultClockPersist
	}
	wall, mono := w.Now().Round(0), w.Mono()
	ahead := wall.Sub(w.wall0) - (mono - w.mono0)
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	switch {
	case ahead < -tol:
		if w.jump != 0 {
			log.Info("the system clock moved back; rollup and pruning resume", "behind", (-ahead).Round(time.Second).String())
		}
		w.trust(wall, mono)
		return false, 0
	case ahead <= tol:
		if w.jump != 0 {
			log.Info("the system clock is back in step with the time elapsed; rollup and pruning resume")
			w.jump = 0
		}
		return false, max(ahead, 0)
	}
	// A step of its own (not the held one drifting by a little) is
	// warned about and waited for afresh.
	if d := ahead - w.jump; w.jump == 0 || d > tol || d < -tol {
		w.jump, w.jumpAt = ahead, mono
		log.Warn("the system clock moved "+ahead.Round(time.Second).String()+" ahead of the time elapsed since tollguard last trusted it; "+
			"rollup of old calls, pruning of old alerts, registrations, snapshots, audit runs and endpoint sightings, and the audits' purges and stale blocks that go by it are held until it is corrected, or for "+persist.String()+
			" if it stays (a late clock sync, a resume from suspend). Check NTP (timedatectl; chronyc tracking)",
			"ahead", ahead.Round(time.Second).String(), "held_until", wall.Add(persist).Format(time.RFC3339))
		return true, ahead
	}
	if mono-w.jumpAt < persist {
		return true, ahead
	}
	log.Info("the system clock stayed ahead; trusting it: rollup and pruning resume", "ahead", ahead.Round(time.Second).String(), "held", persist.String())
	w.trust(wall, mono)
	return false, 0
}
