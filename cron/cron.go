// Package cron runs tollguard's scheduled audits on
// github.com/robfig/cron/v3. It is the one package that imports that
// dependency, in the style of one package per dependency (like store for
// SQLite, ari for ARI), so that its three traps are dealt with once:
//
//   - cron.New has no Recover: a panicking job kills the process. Here
//     every job runs inside SkipIfStillRunning and Recover, in that
//     order. The order matters: with Recover outside SkipIfStillRunning
//     (cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l))), a
//     panic unwinds past SkipIfStillRunning before it puts its token back,
//     and every later run of that job is skipped for good
//     (TestRecoverOutsideSkipLosesTheJob shows it).
//   - Parse("CRON_TZ=UTC") panics (upstream #554): Parse validates under
//     recover and returns an error instead.
//   - The library logs through its own interface: it is bridged to slog.
//
// The audits themselves live in the root package; serve wires them in.
package cron

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zone names in the config resolve even without the system's tzdata

	rcron "github.com/robfig/cron/v3"
)

// MinInterval is the shortest gap allowed between two runs of a job.
const MinInterval = time.Minute

// Parse validates a schedule: five fields (minute hour day-of-month
// month day-of-week), or a descriptor such as @daily or @every 6h, with
// an optional "CRON_TZ=Area/City " prefix. It never panics, and rejects
// schedules that would run more often than once a minute.
func Parse(spec string) (s rcron.Schedule, err error) {
	spec = strings.TrimSpace(spec)
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("schedule %q is not valid (write five fields such as \"30 2 * * *\", or @daily, @every 6h; a zone goes first as \"CRON_TZ=Europe/London 30 2 * * *\")", spec)
		}
	}()
	if spec == "" {
		return nil, fmt.Errorf("schedule is empty: write five fields such as \"30 2 * * *\", or @daily")
	}
	if (strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=")) && !strings.ContainsAny(spec, " \t") {
		// The library slices past the end here (upstream #554).
		return nil, fmt.Errorf("schedule %q: a zone needs the schedule after it, as \"CRON_TZ=Europe/London 30 2 * * *\"", spec)
	}
	s, err = rcron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v (write five fields such as \"30 2 * * *\", or @daily, @every 6h)", spec, err)
	}
	// Two consecutive runs from a fixed instant show the interval.
	ref := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	a := s.Next(ref)
	b := s.Next(a)
	if !a.IsZero() && !b.IsZero() && b.Sub(a) < MinInterval {
		return nil, fmt.Errorf("schedule %q runs every %s; audits may run at most once a minute", spec, b.Sub(a))
	}
	if a.IsZero() {
		return nil, fmt.Errorf("schedule %q never runs", spec)
	}
	return s, nil
}

// Next returns when spec runs next after from, with schedules that name
// no CRON_TZ read in loc, as the Scheduler reads them.
func Next(spec string, loc *time.Location, from time.Time) (time.Time, error) {
	s, err := Parse(spec)
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(from.In(loc)), nil
}

// Scheduler runs named jobs on their schedules in one time zone.
type Scheduler struct {
	c   *rcron.Cron
	log *slog.Logger
	loc *time.Location

	mu      sync.Mutex
	ctx     context.Context // jobs' context, set by Start
	entries map[string]rcron.EntryID
	specs   map[string]string
}

// New returns a stopped scheduler reading schedules in loc.
func New(loc *time.Location, log *slog.Logger) *Scheduler {
	if loc == nil {
		loc = time.Local
	}
	if log == nil {
		log = slog.Default()
	}
	l := slogLogger{log}
	return &Scheduler{
		c: rcron.New(
			rcron.WithLocation(loc),
			rcron.WithLogger(l),
			rcron.WithChain(rcron.SkipIfStillRunning(l), rcron.Recover(l)),
		),
		log: log, loc: loc, ctx: context.Background(),
		entries: map[string]rcron.EntryID{}, specs: map[string]string{},
	}
}

// Location is the zone schedules are read in.
func (s *Scheduler) Location() *time.Location { return s.loc }

// Add schedules job under name. The job gets the context Start was
// given, so it stops when the daemon does.
func (s *Scheduler) Add(name, spec string, job func(ctx context.Context)) error {
	sched, err := Parse(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.entries[name]; dup {
		return fmt.Errorf("%s is scheduled twice", name)
	}
	id := s.c.Schedule(sched, rcron.FuncJob(func() {
		s.mu.Lock()
		ctx := s.ctx
		s.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		s.log.Info("scheduled audit starting", "job", name)
		job(ctx)
	}))
	s.entries[name], s.specs[name] = id, spec
	return nil
}

// Start runs the scheduler until ctx ends or Stop is called.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.c.Start()
}

// Stop stops scheduling and returns a context that is done when the
// running jobs have returned.
func (s *Scheduler) Stop() context.Context { return s.c.Stop() }

// Entry is a scheduled job and when it runs next.
type Entry struct {
	Name string
	Spec string
	Next time.Time // zero until Start
}

// Entries lists the jobs by name.
func (s *Scheduler) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for name, id := range s.entries {
		out = append(out, Entry{Name: name, Spec: s.specs[name], Next: s.c.Entry(id).Next})
	}
	sortEntries(out)
	return out
}

// Run runs job name now, through the same wrappers (skip if still
// running, recover) as a scheduled run, and waits for it. For tests and
// "run now" triggers.
func (s *Scheduler) Run(name string) error {
	s.mu.Lock()
	id, ok := s.entries[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no job %s is scheduled", name)
	}
	s.c.Entry(id).WrappedJob.Run()
	return nil
}

func sortEntries(es []Entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Name < es[j-1].Name; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// slogLogger bridges robfig/cron's logger to slog. Its routine
// messages (schedule, wake, run) go to debug; a skipped run and a
// recovered panic are what an admin must see.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Info(msg string, kv ...any) {
	switch msg {
	case "skip":
		s.l.Warn("an audit was still running at its next scheduled time; this run was skipped (if it happens often, schedule it less often)", kv...)
	default:
		s.l.Debug("cron: "+msg, kv...)
	}
}

func (s slogLogger) Error(err error, msg string, kv ...any) {
	if msg == "panic" {
		s.l.Error("a scheduled audit crashed; tollguard keeps running and will run it again at its next time", append([]any{"err", err}, kv...)...)
		return
	}
	s.l.Error("cron: "+msg, append([]any{"err", err}, kv...)...)
}
