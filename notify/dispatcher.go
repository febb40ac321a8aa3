// Package notify raises alerts into the store's outbox and delivers them
// to the admin: the log, e-mail over SMTP, and a signed webhook.
//
// Raise writes the alert and its deliveries in one short transaction and
// returns; it never waits on a notifier. Run delivers from the outbox in
// the background, each notifier with its own bounded concurrency, and
// retries with exponential backoff. The outbox is in SQLite, so a
// restart or a mail server outage loses nothing: a new Dispatcher on the
// same database delivers what the old one left.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// Retry is the backoff for failed deliveries: Initial, doubling up to
// Max, plus up to 20% jitter; after MaxAttempts the delivery fails.
type Retry struct {
	Initial     time.Duration // default 10s, at least 1s
	Max         time.Duration // default 1h
	MaxAttempts int           // default 20 (about 12 hours with the defaults)
}

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = 10 * time.Second
	}
	if r.Initial < time.Second {
		r.Initial = time.Second // the outbox keeps whole seconds
	}
	if r.Max <= 0 {
		r.Max = time.Hour
	}
	if r.Max < r.Initial {
		r.Max = r.Initial
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 20
	}
	return r
}

// Delay is the wait after the given failed attempt (1 for the first).
func (r Retry) Delay(attempt int) time.Duration {
	r = r.withDefaults()
	d := r.Initial
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	if d > r.Max {
		d = r.Max
	}
	// Jitter, so that notifiers recovering together do not retry in lockstep.
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

// Options configures a Dispatcher. Zero values take the defaults.
type Options struct {
	Policy tollguard.AlertPolicy
	Retry  Retry
	// Concurrency is the deliveries in flight per notifier (default 2).
	Concurrency int
	// SendTimeout bounds one delivery (default 30s).
	SendTimeout time.Duration
	// PollInterval is the longest the worker sleeps between looks at the
	// outbox when nothing wakes it (default 5s).
	PollInterval time.Duration
	// Retention: alerts last seen longer ago, with nothing left to
	// deliver, are deleted (default 90 days; negative keeps them forever).
	Retention time.Duration
	// PruneHeld, when set, says when pruning must wait: the wall clock
	// stepped ahead (tollguard.ClockWatch), and would delete alerts by
	// an age they do not have.
	PruneHeld func() bool
	// ShutdownGrace is how long deliveries in flight may finish after
	// Run's context ends (default 5s).
	ShutdownGrace time.Duration

	Logger  *slog.Logger
	Metrics tollguard.AlertMetrics
	Now     func() time.Time
}

// Dispatcher is the alert subsystem: a tollguard.Alerter that stores and
// queues, and the worker that delivers.
type Dispatcher struct {
	db        *store.DB
	notifiers []tollguard.Notifier
	names     []string
	wake      map[string]chan struct{}
	// failing says whether a notifier is down (and at start): its next
	// success brings its backlog forward.
	failing map[string]*outage

	policy      tollguard.AlertPolicy
	retry       Retry
	concurrency int
	sendTimeout time.Duration
	lease       time.Duration
	poll        time.Duration
	retention   time.Duration
	pruneHeld   func() bool
	grace       time.Duration
	log         *slog.Logger
	metrics     tollguard.AlertMetrics
	now         func() time.Time

	running atomic.Bool
}

var _ tollguard.Alerter = (*Dispatcher)(nil)

// New returns a Dispatcher over db delivering to notifiers, whose names
// must be distinct.
func New(db *store.DB, opts Options, notifiers ...tollguard.Notifier) (*Dispatcher, error) {
	if err := opts.Policy.Validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		db:          db,
		notifiers:   notifiers,
		wake:        map[string]chan struct{}{},
		failing:     map[string]*outage{},
		policy:      opts.Policy.WithDefaults(),
		retry:       opts.Retry.withDefaults(),
		concurrency: opts.Concurrency,
		sendTimeout: opts.SendTimeout,
		poll:        opts.PollInterval,
		retention:   opts.Retention,
		pruneHeld:   opts.PruneHeld,
		grace:       opts.ShutdownGrace,
		log:         opts.Logger,
		metrics:     opts.Metrics,
		now:         opts.Now,
	}
	for _, n := range notifiers {
		name := n.Name()
		if name == "" {
			return nil, tollguard.Errorf(tollguard.EINVALID, "a notifier has no name")
		}
		if _, dup := d.wake[name]; dup {
			return nil, tollguard.Errorf(tollguard.EINVALID, "two notifiers are named %q", name)
		}
		d.wake[name] = make(chan struct{}, 1)
		d.failing[name] = new(outage)
		d.failing[name].down.Store(true) // at start: a backlog may wait
		d.names = append(d.names, name)
	}
	if d.concurrency <= 0 {
		d.concurrency = 2
	}
	if d.sendTimeout <= 0 {
		d.sendTimeout = 30 * time.Second
	}
	// A claim must outlive the slowest delivery, or a second worker
	// could send the same notice.
	d.lease = 2*d.sendTimeout + 10*time.Second
	if d.poll <= 0 {
		d.poll = 5 * time.Second
	}
	if d.retention == 0 {
		d.retention = 90 * 24 * time.Hour
	}
	if d.grace <= 0 {
		d.grace = 5 * time.Second
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.metrics == nil {
		d.metrics = tollguard.NopAlertMetrics{}
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// Notifiers returns the notifiers' names, in order.
func (d *Dispatcher) Notifiers() []string { return append([]string(nil), d.names...) }

// Policy returns the merge policy in force.
func (d *Dispatcher) Policy() tollguard.AlertPolicy { return d.policy }

// Raise stores one occurrence of a and queues its notice for every
// notifier, in one short IMMEDIATE transaction; delivery happens in Run.
// It never waits on a notifier. Kind and Subject (or Extension, or
// Account) are required; Severity defaults to warning. The occurrence is
// stamped with the dispatcher's clock: a's ID, times and count are
// ignored. Evidence should be a JSON object; anything else is kept as a
// JSON string. If the store refuses the write, the alert still goes to
// the log, and the error is returned.
func (d *Dispatcher) Raise(ctx context.Context, a tollguard.Alert) error {
	res, err := d.db.RaiseAlert(ctx, a, d.policy, d.names, d.now())
	if err != nil {
		d.log.Error("alert could not be stored or queued; this log line is its only record",
			tollguard.LogKind, a.Kind, tollguard.LogSeverity, a.Severity, tollguard.LogSubject, a.Subject,
			tollguard.LogExtension, a.Extension, tollguard.LogAccount, a.Account, "message", a.Message, "evidence", a.Evidence,
			tollguard.LogError, err)
		return fmt.Errorf("raise alert %s on %s: %w", a.Kind, a.Subject, err)
	}
	d.metrics.AlertRaised(res.State.Kind, res.State.Severity)
	if res.Notice != nil {
		d.Wake()
	}
	return nil
}

// Wake tells every notifier's worker to look at the outbox now.
func (d *Dispatcher) Wake() {
	for _, c := range d.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Run delivers the outbox until ctx ends, then lets deliveries in flight
// finish for up to ShutdownGrace and returns. It also fires due digests
// and prunes old alerts. Only one Run may be active per Dispatcher.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("notify: Run is already running")
	}
	defer d.running.Store(false)
	if gone, err := d.db.AbandonDeliveries(ctx, d.names, d.now()); err != nil {
		d.log.Error("could not check the outbox for removed notifiers. "+tollguard.CheckStore, tollguard.LogError, err)
	} else {
		// Each notice went to every notifier configured then, so the
		// ones still configured hold their own copies: handing these on
		// would send those twice.
		for name, n := range gone {
			d.metrics.NoticesAbandoned(name, n)
			d.log.Error("alert deliveries abandoned: their notifier is no longer configured; the notifiers still configured have their own copies (see tollguard alerts)",
				tollguard.LogNotifier, name, "deliveries", n)
		}
	}
	// Deliveries get their own context, cancelled ShutdownGrace after
	// ctx, so a shutdown does not cut a message off mid-send.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.NewTimer(d.grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSends()
		case <-sendCtx.Done():
		}
	})
	defer stopGrace()

	var wg sync.WaitGroup
	for _, n := range d.notifiers {
		wg.Go(func() { d.notifierLoop(ctx, sendCtx, n) })
	}
	wg.Go(func() { d.digestLoop(ctx) })
	wg.Wait()
	return nil
}

// notifierLoop claims n's due deliveries while it has free slots and
// sleeps until the next is due, a Raise wakes it, or a slot frees.
func (d *Dispatcher) notifierLoop(ctx, sendCtx context.Context, n tollguard.Notifier) {
	name := n.Name()
	slots := make(chan struct{}, d.concurrency)
	freed := make(chan struct{}, 1)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for ctx.Err() == nil {
		wait := d.poll
		if free := cap(slots) - len(slots); free > 0 {
			ds, err := d.db.ClaimDeliveries(ctx, name, d.now(), d.lease, free)
			if err != nil && ctx.Err() == nil {
				d.log.Error("could not read the alert outbox; alerts wait in it until it can be read. "+tollguard.CheckStore, tollguard.LogNotifier, name, tollguard.LogError, err)
			}
			for _, dl := range ds {
				slots <- struct{}{}
				inflight.Go(func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					d.deliver(sendCtx, n, dl)
				})
			}
			if err == nil && len(ds) == free {
				continue // there may be more due; claim as slots free
			}
			if err == nil && len(ds) < free {
				if next, ok, err := d.db.NextDeliveryDue(ctx, name); err == nil && ok {
					wait = min(wait, max(next.Sub(d.now()), 0))
				}
			}
			if wait == 0 {
				// Due within this second (the outbox keeps whole seconds).
				wait = 100 * time.Millisecond
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-d.wake[name]:
		case <-freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// digestLoop fires digests as they fall due, and prunes hourly.
func (d *Dispatcher) digestLoop(ctx context.Context) {
	var lastPrune time.Time
	for ctx.Err() == nil {
		if n, err := d.db.FireDigests(ctx, d.policy, d.names, d.now(), 100); err != nil {
			if ctx.Err() == nil {
				d.log.Error("could not queue alert digests. "+tollguard.CheckStore, tollguard.LogError, err)
			}
		} else if n > 0 {
			d.Wake()
		}
		if now := d.now(); d.retention > 0 && now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			if d.pruneHeld != nil && d.pruneHeld() {
				// Tried again in an hour.
			} else if n, err := d.db.PruneAlerts(ctx, now.Add(-d.retention)); err != nil {
				d.log.Error("could not prune old alerts; the alerts table grows until it succeeds. "+tollguard.CheckStore, tollguard.LogError, err)
			} else if n > 0 {
				d.log.Info("pruned old alerts", "alerts", n, "retention", d.retention)
			}
		}
		wait := d.poll
		if next, ok, err := d.db.NextDigestDue(ctx); err == nil && ok {
			wait = min(wait, max(next.Sub(d.now()), 100*time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// Outcome of one delivery attempt.
type Outcome int

const (
	Sent     Outcome = iota
	Retrying         // failed; due again later
	Failed           // failed for the last time
	Released         // interrupted by shutdown; due again at once
)

func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Retrying:
		return "retrying"
	case Failed:
		return "failed"
	case Released:
		return "released"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// deliver makes one attempt at dl and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, n tollguard.Notifier, dl store.Delivery) Outcome {
	name := n.Name()
	a := dl.Notice.Alert
	keys := []any{tollguard.LogNotifier, name, tollguard.LogAlertID, a.ID, tollguard.LogKind, a.Kind,
		tollguard.LogSeverity, a.Severity, tollguard.LogSubject, a.Subject, tollguard.LogExtension, a.Extension,
		tollguard.LogAccount, a.Account, "event", dl.Event, "attempt", dl.Attempts}
	var err error
	if dl.Attempts > d.retry.MaxAttempts {
		// Claims lapsed (the process died mid-send) until none were left.
		err = errors.New("interrupted too many times")
	} else {
		sctx, cancel := context.WithTimeout(ctx, d.sendTimeout)
		err = safeNotify(sctx, n, dl.Notice)
		cancel()
	}
	// The outcome is recorded even while shutting down.
	dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := d.now()
	var out Outcome
	var serr error
	switch {
	case err == nil:
		out, serr = Sent, d.db.DeliverySent(dbctx, dl, now)
		d.metrics.NotificationSent(name)
		if d.failing[name].recovered() {
			// It delivers again: what failed during the outage goes now,
			// not when each backoff (up to retry_max) runs out.
			if n, err := d.db.ExpediteDeliveries(dbctx, name, now); err != nil {
				d.log.Error("could not bring the alert backlog forward; it goes out as its retries fall due", append(keys, tollguard.LogError, err)...)
			} else if n > 0 {
				d.log.Info("notifier delivers again; sending its backlog now", tollguard.LogNotifier, name, "deliveries", n)
				select {
				case d.wake[name] <- struct{}{}:
				default:
				}
			}
		}
	case ctx.Err() != nil:
		out, serr = Released, d.db.DeliveryRelease(dbctx, dl, now)
		d.log.Warn("alert delivery interrupted by shutdown; it will be retried at the next start", append(keys, tollguard.LogError, err)...)
	case dl.Attempts >= d.retry.MaxAttempts:
		d.failing[name].failed(err)
		out, serr = Failed, d.db.DeliveryFailed(dbctx, dl, now, err.Error())
		d.metrics.NotifierFailed(name, true)
		d.log.Error("ALERT NOT DELIVERED: giving up after the last attempt; check the notifier's settings and `tollguard alerts`",
			append(keys, "message", a.Message, tollguard.LogError, err)...)
	default:
		d.failing[name].failed(err)
		delay := d.retry.Delay(dl.Attempts)
		out, serr = Retrying, d.db.DeliveryRetry(dbctx, dl, now.Add(delay), err.Error())
		d.metrics.NotifierFailed(name, false)
		d.log.Warn("alert delivery failed; will retry", append(keys, "retry_in", delay.Round(time.Second).String(), tollguard.LogError, err)...)
	}
	if serr != nil {
		d.log.Error("could not record an alert delivery's outcome", append(keys, "outcome", out, tollguard.LogError, serr)...)
	}
	return out
}

// safeNotify calls n.Notify, turning a panic into an error.
func safeNotify(ctx context.Context, n tollguard.Notifier, no tollguard.Notice) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("notifier %s panicked: %v", n.Name(), r)
		}
	}()
	return n.Notify(ctx, no)
}

// Pass counts what DeliverDue did.
type Pass struct {
	Digests  int // alerts whose digest was queued
	Sent     int
	Retrying int
	Failed   int
}

// DeliverDue fires due digests and makes one attempt at every delivery
// due now, for every notifier, and returns when they are done. Run does
// the same continuously; DeliverDue is for tests and one-shot tools.
func (d *Dispatcher) DeliverDue(ctx context.Context) (Pass, error) {
	var p Pass
	var err error
	p.Digests, err = d.db.FireDigests(ctx, d.policy, d.names, d.now(), 1000)
	if err != nil {
		return p, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, n := range d.notifiers {
		wg.Go(func() {
			for ctx.Err() == nil {
				ds, err := d.db.ClaimDeliveries(ctx, n.Name(), d.now(), d.lease, d.concurrency)
				if err != nil || len(ds) == 0 {
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					return
				}
				var batch sync.WaitGroup
				for _, dl := range ds {
					batch.Go(func() {
						out := d.deliver(ctx, n, dl)
						mu.Lock()
						switch out {
						case Sent:
							p.Sent++
						case Retrying:
							p.Retrying++
						case Failed:
							p.Failed++
						}
						mu.Unlock()
					})
				}
				batch.Wait()
			}
		})
	}
	wg.Wait()
	return p, errors.Join(errs...)
}

// TestResult is one notifier's answer to Test.
type TestResult struct {
	Notifier string
	Err      error
	Took     time.Duration
}

// Test sends a test notice through every notifier at once, bypassing the
// outbox, and reports each result, in the notifiers' order.
func (d *Dispatcher) Test(ctx context.Context, message string) []TestResult {
	return Test(ctx, message, d.sendTimeout, d.now(), d.notifiers...)
}

// Test sends a test notice through each of ns at once, each bounded by
// timeout, and reports each result in ns's order. It needs no store:
// `tollguard alerts test` runs it.
func Test(ctx context.Context, message string, timeout time.Duration, now time.Time, ns ...tollguard.Notifier) []TestResult {
	if message == "" {
		message = "Test alert from tollguard."
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	n := tollguard.Notice{Event: tollguard.NoticeTest, At: now, Alert: tollguard.Alert{
		Kind: tollguard.AlertTest, Severity: tollguard.SeverityInfo, Subject: "tollguard", Message: message,
		FirstSeen: now, LastSeen: now, Count: 1,
	}}
	out := make([]TestResult, len(ns))
	var wg sync.WaitGroup
	for i, nt := range ns {
		wg.Go(func() {
			start := time.Now()
			sctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := safeNotify(sctx, nt, n)
			out[i] = TestResult{Notifier: nt.Name(), Err: err, Took: time.Since(start)}
		})
	}
	wg.Wait()
	return out
}

// ErrRefused marks a notifier's error that is about the notice, not
// the notifier: its receiver answered and would not take that payload
// (a webhook's 4xx other than 408 and 429). Any other failure counts as
// the notifier being down.
var ErrRefused = errors.New("the receiver refused this notice")

// outage tells a notifier that is down from one notice it refuses. A
// failure that is not ErrRefused (a connection refused, a timeout, a 5xx,
// any mail failure) makes it down, and its first success then brings the
// backlog forward: a fraud alert must not wait out an hour's backoff
// after the receiver is back. A refused notice keeps its own backoff; it
// would otherwise be tried again after every other delivery, and given
// up after max_attempts of them.
type outage struct{ down atomic.Bool }

func (o *outage) failed(err error) {
	if !errors.Is(err, ErrRefused) {
		o.down.Store(true)
	}
}

// recovered reports whether the notifier was down, and clears it.
func (o *outage) recovered() bool { return o.down.Swap(false) }
