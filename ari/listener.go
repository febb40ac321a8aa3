package ari

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"
	"golang.org/x/net/websocket"

	"github.com/tollguard/tollguard"
)

// Store is what the listener needs from storage; *store.DB implements it.
type Store interface {
	tollguard.RegistrationStore
	Extension(ctx context.Context, name string) (*tollguard.Extension, error) // ENOTFOUND
	Account(ctx context.Context, id string) (*tollguard.Account, error)       // ENOTFOUND
	TouchExtension(ctx context.Context, name string, t int64) error
	// CallByChannel returns the gate's newest record for a channel
	// uniqueid or linkedid, or nil.
	CallByChannel(ctx context.Context, uniqueID, linkedID string) (*tollguard.CallRecord, error)
	// Call returns the gate's record with id (TOLLGUARD_CALLID).
	Call(ctx context.Context, id int64) (*tollguard.CallRecord, error) // ENOTFOUND
	HighRiskList(ctx context.Context) ([]tollguard.HighRiskEntry, error)
	DetectorOverrides(ctx context.Context) (map[string]map[string]tollguard.DetectorRule, error)
}

// Settler settles a gated call; *tollguard.Policy implements it.
type Settler interface {
	Settle(ctx context.Context, s tollguard.Settlement) (changed bool, err error)
}

// Hooks observe the listener for metrics and health; every method must
// be quick and must not block. Embed NopHooks to implement a subset.
type Hooks interface {
	// Connection reports the events websocket going up (err nil) or down.
	Connection(connected bool, err error)
	// Event counts one frame by type (the types ari v5.3.1 knows,
	// "unknown" and "undecodable"); handled is false for types the
	// listener skips and for frames that do not decode.
	Event(typ string, handled bool)
	// Resynced reports a resynchronisation: what it found, or its error.
	Resynced(r ResyncReport)
	// Finding reports what a detector or the registration judge found.
	Finding(f tollguard.Finding)
	// Settled reports a settlement from events; changed is false when
	// the dialplan's own hangup request had settled it already, err set
	// when it failed (the sweep settles the call then).
	Settled(changed bool, err error)
}

// NopHooks ignores everything.
type NopHooks struct{}

func (NopHooks) Connection(bool, error)    {}
func (NopHooks) Event(string, bool)        {}
func (NopHooks) Resynced(ResyncReport)     {}
func (NopHooks) Finding(tollguard.Finding) {}
func (NopHooks) Settled(bool, error)       {}

// State is the connection's state, for /readyz and metrics.
type State struct {
	Connected      bool
	Since          time.Time // when the current state began
	LastError      string
	LastErrorAt    time.Time
	Reconnects     int // connections after the first
	Events         uint64
	Skipped        uint64 // frames of types the listener does not use
	Undecodable    uint64 // frames that are not events, or that ari v5.3.1 cannot decode
	LastResync     time.Time
	LastResyncErr  string
	ResyncContacts int
}

// Listener watches Asterisk over ARI: it keeps the events websocket up,
// resynchronises registrations after every (re)connect and every
// Config.ResyncInterval (hourly by default), judges
// registrations, feeds channel events to the detectors, acts on what
// they find, and settles gated calls whose hangup request never came.
type Listener struct {
	Client    *Client
	Store     Store
	Settler   Settler              // nil: no settlement from events
	Responder *tollguard.Responder // blocks and alerts
	Detectors *tollguard.Detectors
	Logger    *slog.Logger
	Hooks     Hooks
	// DefaultPlan numbers calls that did not start on a known extension;
	// SetDefaultPlan replaces it while the listener runs.
	DefaultPlan tollguard.NumberPlan
	// ContactRetention prunes the addresses and user agents extensions
	// registered from, last seen longer ago than this (0: 180 days); they
	// stop counting as known.
	ContactRetention time.Duration
	// ContactGoneKept prunes contacts Asterisk removed (unregistered,
	// expired, replaced) this long ago (0: a day); what they registered
	// from stays in the history for ContactRetention.
	ContactGoneKept time.Duration
	// PruneHeld, when set, says when that pruning must wait: the wall
	// clock stepped ahead (tollguard.ClockWatch), and every phone's
	// address would age out of the history and alert as new.
	PruneHeld func() bool
	// Now is the wall clock for reconnect delays and the settle grace;
	// detectors run on the events' own timestamps.
	Now func() time.Time

	initOnce sync.Once
	plan     atomic.Pointer[tollguard.NumberPlan] // set by SetDefaultPlan
	log      *slog.Logger
	hooks    Hooks
	mu       sync.Mutex
	state    State
	sessions atomic.Int64
	noARI    noARIEpisode // owned by Run's goroutine

	regQ       chan regJob
	needResync atomic.Bool
	// regMu guards the contact events queued per endpoint and the
	// endpoints whose contacts are to be read again (enqueueContact).
	regMu     sync.Mutex
	regQueued map[string]int
	regReread map[string]bool
	replaced  atomic.Bool
	// storeRetries counts store failures that asked for a resync; a
	// resync that meets one puts the next off (resyncAfter, unix ns),
	// so that a store that stays broken is not retried every tick.
	storeRetries  atomic.Int64
	resyncAfter   atomic.Int64
	resyncBackoff time.Duration // owned by the registration goroutine
	// storeOKs counts registrations recorded; resyncPartial says the last
	// resync met a store failure with other rows recorded in it (a store
	// broken for some rows only): a later recorded registration is then
	// no sign that it recovered. Owned by the registration goroutine.
	storeOKs      int64
	resyncPartial bool

	// Owned by the dispatch goroutine.
	resyncAsked time.Time // when a resync was last queued
	tr          *tracker
	clockTS     time.Time // newest event timestamp
	clockWall   time.Time // when it arrived
	lastRefresh time.Time
	lastPrune   time.Time
	pending     []pendingSettle
	undecLogged time.Time
	undecCount  int
	ahead       logEvery // "timestamps ahead" warnings
	unknownSeen map[string]bool
	flood       logEvery // "events faster than handled": events folded
	drop        logEvery // "queue full": events dropped
}

// logEvery counts what a warning is about and lets it be logged at most
// once a period: a flood would otherwise write a line per event.
type logEvery struct {
	last  time.Time
	count int
}

// due counts one more, and reports whether the warning is due at now,
// with the count since the last one (which it then resets). A clock
// stepped back makes it due.
func (e *logEvery) due(now time.Time, period time.Duration) (int, bool) {
	e.count++
	if now.Sub(e.last) <= period && !now.Before(e.last) {
		return 0, false
	}
	n := e.count
	e.last, e.count = now, 0
	return n, true
}

// ResyncReport is what one registration resynchronisation did.
type ResyncReport struct {
	// Trigger is why it ran: ResyncConnect, ResyncPeriodic, or
	// ResyncRetry (after a store failure, a dropped event, or a pass
	// cut short by its time bound).
	Trigger string
	// Result is ResyncOK, ResyncPartial (cut short: some endpoints were
	// not read) or ResyncError (Err says why; nothing was judged).
	Result string
	// Contacts is how many live contacts it read (a pass continuing one
	// cut short reads only the endpoints left). New counts the
	// registrations the store did not hold live (no event told of them),
	// Changed the live ones with another address or user agent, Ended
	// those Asterisk no longer had.
	Contacts, New, Changed, Ended int
	Err                           error
}

// ResyncReport triggers and results.
const (
	ResyncConnect  = "connect"
	ResyncPeriodic = "periodic"
	ResyncRetry    = "retry"

	ResyncOK      = "ok"
	ResyncPartial = "partial"
	ResyncError   = "error"
)

// regJob is work for the registration goroutine.
type regJob struct {
	ev *ariv5.ContactStatusChange
	at time.Time
	// reread: read this endpoint's contacts again, in place of the
	// events it sent past its share of the queue (enqueueContact).
	reread string
	// endpoint: the endpoint an event or a reread counts against.
	endpoint string
	resync   bool
	// connect: the resync after a (re)connect. The others (periodic, after
	// a store failure or a dropped event) catch up quietly: their summary
	// is logged at INFO only when they changed something. Neither alerts
	// again for a contact already live, unchanged (observe).
	connect bool
	trigger string // ResyncReport.Trigger
}

type pendingSettle struct {
	due time.Time
	s   tollguard.Settlement
}

// noARIEpisode follows ARI's 404s for Asterisk's info (errNoARI) across
// retries. A restarting Asterisk answers them for a moment, until it
// loads res_ari; a wrong [ari] url answers them for good. An episode is
// logged once as either, then once more, as a wrong URL, if it lasts
// noARIPersist: a warning on every retry misled as much as a verdict on
// the first.
type noARIEpisode struct {
	since time.Time // the episode's first 404; zero: none under way
	firm  bool      // it lasted: reported as a wrong URL
}

// noARIPersist is how long 404s go on before they mean a wrong [ari]
// url: Asterisk loads res_ari within seconds of its HTTP server.
const noARIPersist = time.Minute

// tickEvery is how often the dispatch loop checks timers.
const tickEvery = 2 * time.Second

// Resyncs that meet a store failure again wait from storeRetryMin,
// doubling up to storeRetryMax.
const (
	storeRetryMin = 30 * time.Second
	storeRetryMax = 5 * time.Minute
)

func (l *Listener) init() {
	l.initOnce.Do(func() {
		l.log = l.Logger
		if l.log == nil {
			l.log = slog.Default()
		}
		l.hooks = l.Hooks
		if l.hooks == nil {
			l.hooks = NopHooks{}
		}
		if l.Now == nil {
			l.Now = time.Now
		}
		if l.ContactGoneKept <= 0 {
			l.ContactGoneKept = 24 * time.Hour
		}
		if l.ContactRetention <= 0 {
			l.ContactRetention = 180 * 24 * time.Hour
		}
		if l.Responder == nil {
			l.Responder = &tollguard.Responder{Logger: l.log}
		}
		if l.Detectors == nil {
			l.Detectors, _ = tollguard.NewDetectors(tollguard.DetectorSettings{})
		}
		if l.DefaultPlan.Country == "" {
			l.DefaultPlan.Country = "GB"
		}
		l.regQ = make(chan regJob, regQueueSize)
		l.regQueued = make(map[string]int)
		l.regReread = make(map[string]bool)
		l.tr = newTracker(l)
		l.unknownSeen = make(map[string]bool)
		l.state.Since = l.Now()
	})
}

// State returns the connection state.
func (l *Listener) State() State {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

func (l *Listener) setState(f func(s *State)) {
	l.mu.Lock()
	f(&l.state)
	l.mu.Unlock()
}

// errReplaced: another client took the application name.
var errReplaced = errors.New("another ARI client connected with the same application name and took over its events")

// Run keeps the listener connected until ctx ends; it returns nil then.
// Connection failures are logged and retried with exponential backoff
// and jitter; they never end Run.
func (l *Listener) Run(ctx context.Context) error {
	l.init()
	if l.Client == nil || l.Store == nil {
		return tollguard.Errorf(tollguard.EINVALID, "ari listener needs a client and a store")
	}
	cfg := l.Client.Config()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.regLoop(ctx)
	}()
	defer wg.Wait()
	l.refresh(ctx)

	backoff := cfg.ReconnectMin
	for ctx.Err() == nil {
		started := l.Now()
		err := l.session(ctx)
		if ctx.Err() != nil {
			break
		}
		wait := backoff
		switch {
		case errors.Is(err, errReplaced):
			l.log.Error("ARI application taken over: another client connected with app="+cfg.App+
				" (a second tollguard, or another program using this name). Events now go there, not here. "+
				"Give each client its own application name ([ari] app); tollguard retries slowly", "app", cfg.App)
			wait = cfg.ReconnectMax
		case l.Now().Sub(started) > 30*time.Second:
			backoff = cfg.ReconnectMin // it was up for a while: start over
			wait = backoff
		}
		// Jitter: a random wait between half and all of the delay, so a
		// fleet of listeners does not reconnect in step.
		wait = wait/2 + rand.N(wait/2+1)
		backoff = min(backoff*2, cfg.ReconnectMax)
		level := slog.LevelWarn
		if errors.Is(err, errNoARI) {
			level = slog.LevelDebug // disconnected said it once for the episode
		}
		l.log.Log(ctx, level, "ARI events connection down; reconnecting", tollguard.LogError, tollguard.ErrorMessage(err), "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	l.setState(func(s *State) { s.Connected, s.Since = false, l.Now() })
	l.hooks.Connection(false, ctx.Err())
	return nil
}

// session runs one websocket connection until it fails.
func (l *Listener) session(ctx context.Context) (err error) {
	st, err := l.Client.dialEvents(ctx)
	if err != nil {
		return l.disconnected(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		st.close()
		wg.Wait()
		err = l.disconnected(err)
	}()
	n := l.sessions.Add(1)
	l.replaced.Store(false)
	l.setState(func(s *State) {
		s.Connected, s.Since = true, l.Now()
		if n > 1 {
			s.Reconnects++
		}
	})
	l.hooks.Connection(true, nil)
	l.log.Info("ARI events connected; resynchronising registrations", "url", redact(l.Client.EventsURL()), "connection", n)
	l.enqueue(regJob{resync: true, connect: true, trigger: ResyncConnect})

	frames := make(chan []byte, 4096)
	readErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			b, err := st.read()
			if err != nil {
				if errors.Is(err, websocket.ErrFrameTooLarge) {
					l.setStateCount(false, true) // skipped; the next read discards the rest
					continue
				}
				readErr <- err
				return
			}
			select {
			case frames <- b:
			case <-sctx.Done():
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		l.keepalive(sctx, st)
	}()

	// Channels that ended while no events came (before this connection,
	// or in frames that were lost) are found from Asterisk's list: now,
	// and every channelCheckEvery.
	present := make(chan channelList, 1)
	var asking bool
	var lastAsked time.Time
	ask := func() {
		asking, lastAsked = true, l.Now()
		wg.Add(1)
		go func(added uint64) {
			defer wg.Done()
			l.askChannels(sctx, present, added)
		}(l.tr.added)
	}
	ask()

	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for {
		select {
		case b := <-frames:
			l.handleFrame(ctx, b)
			if l.replaced.Load() {
				return errReplaced
			}
		case p := <-present:
			asking = false
			l.reconcileChannels(ctx, p)
		case err := <-readErr:
			// Events that arrived before the failure still count.
			for len(frames) > 0 {
				l.handleFrame(ctx, <-frames)
			}
			return fmt.Errorf("events websocket closed: %w", err)
		case <-tick.C:
			l.tick(ctx)
			if !asking && l.Now().Sub(lastAsked) >= channelCheckEvery {
				ask()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// channelCheckEvery is how often the tracked channels are checked
// against Asterisk's list while connected.
const channelCheckEvery = 15 * time.Minute

// channelList is Asterisk's channels, listed after the tracker had
// added its first added channels.
type channelList struct {
	ids   map[string]bool
	added uint64
	err   error
}

// askChannels lists Asterisk's channels off the event loop (a slow REST
// call must not hold events up) and hands the list to it.
func (l *Listener) askChannels(ctx context.Context, out chan<- channelList, added uint64) {
	p := channelList{added: added}
	ids, err := l.Client.ChannelIDs(ctx)
	p.err = err
	if err == nil {
		p.ids = make(map[string]bool, len(ids))
		for _, id := range ids {
			p.ids[id] = true
		}
	}
	select {
	case out <- p:
	case <-ctx.Done():
	}
}

// reconcileChannels forgets the tracked channels Asterisk no longer has:
// their ChannelDestroyed was missed, and kept, they would count as calls
// in progress for a day (concurrency, and a long-call alert for a call
// long over). A channel first seen since the list was asked for is kept:
// it may be newer than the list. Settling their gate records is the
// sweep's work, which asks Asterisk itself.
func (l *Listener) reconcileChannels(ctx context.Context, p channelList) {
	defer l.survive("checking tracked channels against Asterisk")
	if p.err != nil {
		if ctx.Err() == nil {
			l.log.Warn("could not list Asterisk's channels to find calls that ended unseen; trying again later", tollguard.LogError, tollguard.ErrorMessage(p.err))
		}
		return
	}
	gone := l.tr.reconcile(ctx, p.ids, p.added, l.eventClock())
	if gone > 0 {
		l.log.Info("forgot channels that ended while their events were not seen", "channels", gone)
	}
}

// keepalive pings the websocket and closes it when nothing, not even a
// pong, has come back for two intervals: a dead TCP peer otherwise goes
// unnoticed for many minutes.
func (l *Listener) keepalive(ctx context.Context, st *stream) {
	cfg := l.Client.Config()
	t := time.NewTicker(cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if idle := st.conn.idle(); idle > 2*cfg.PingInterval+cfg.RequestTimeout {
			l.log.Warn("ARI events websocket silent, not even answering pings; reconnecting", "silent_for", idle.Round(time.Second))
			st.conn.Close()
			return
		}
		if err := st.ping(cfg.RequestTimeout); err != nil {
			st.conn.Close()
			return
		}
	}
}

// disconnected records a failed or ended connection and returns its
// error as the admin should read it (judgeNoARI).
func (l *Listener) disconnected(err error) error {
	if err == nil {
		return nil
	}
	err = l.judgeNoARI(err)
	now := l.Now()
	l.setState(func(s *State) {
		if s.Connected {
			s.Since = now
		}
		s.Connected, s.LastError, s.LastErrorAt = false, tollguard.ErrorMessage(err), now
	})
	l.hooks.Connection(false, err)
	return err
}

// judgeNoARI follows a 404 episode (noARIEpisode), logs it when there is
// news, and returns the error to record: after noARIPersist, a wrong URL.
func (l *Listener) judgeNoARI(err error) error {
	if !errors.Is(err, errNoARI) {
		l.noARI = noARIEpisode{}
		return err
	}
	url := l.Client.Config().URL
	now := l.Now()
	switch {
	case l.noARI.since.IsZero():
		l.noARI.since = now
		l.log.Warn("ARI answers 404 for Asterisk's info: Asterisk may still be loading res_ari, or [ari] url is wrong; retrying",
			"url", url, tollguard.LogError, tollguard.ErrorMessage(err))
		return err
	case now.Sub(l.noARI.since) < noARIPersist:
		return err
	}
	lasted := now.Sub(l.noARI.since).Round(time.Second)
	firm := noARIError{tollguard.Errorf(tollguard.EUNAVAILABLE, "ARI has answered 404 for Asterisk's info for %s, longer than Asterisk takes to load res_ari: "+
		"[ari] url %s is not ARI's base URL: "+ariURLHint+" (asterisk -rx 'module show like res_ari'; ari.conf enabled=yes)", lasted, url)}
	if !l.noARI.firm {
		l.noARI.firm = true
		l.log.Error("[ari] url is not ARI's base URL; tollguard keeps retrying", "url", url, "for", lasted.String(), tollguard.LogError, firm.Error())
	}
	return firm
}

// regQueueSize is the registration queue's length; one endpoint may
// hold endpointQueued places of it.
const (
	regQueueSize   = 1024
	endpointQueued = 32
)

// enqueue hands work to the registration goroutine without ever
// blocking the events: when its queue is full the event is dropped and a
// resynchronisation, which finds what the event said, is due instead.
// It reports whether j was queued.
func (l *Listener) enqueue(j regJob) bool {
	select {
	case l.regQ <- j:
		if j.resync {
			l.resyncAsked = l.Now()
		}
		return true
	default:
		if !j.resync {
			if n, ok := l.drop.due(l.Now(), time.Minute); ok {
				l.log.Warn("registration queue full; dropping contact events, a resynchronisation will catch them up", "dropped", n)
			}
		}
		l.needResync.Store(true)
		return false
	}
}

// enqueueContact queues a contact event. One endpoint holds at most
// endpointQueued places: a phone REGISTERing as fast as Asterisk takes
// it (each refresh is an event) would otherwise fill the queue, and the
// events of other phones were dropped, waiting for a resync that waits
// for an empty queue. Past its share, an endpoint's events are folded
// into one read of its contacts, queued after the events it has, and so
// are all its events until that read starts.
func (l *Listener) enqueueContact(ev *ariv5.ContactStatusChange, at time.Time) {
	ep := ev.Endpoint.Resource
	j := regJob{ev: ev, at: at, endpoint: ep}
	if ep == "" {
		l.enqueue(j)
		return
	}
	l.regMu.Lock()
	if l.regReread[ep] {
		// Folded even when a place is free: queued behind the read,
		// it would take effect after events folded later.
		l.regMu.Unlock()
		l.folded(ep) // the read queued covers it
		return
	}
	if l.regQueued[ep] >= endpointQueued {
		l.regReread[ep] = true
		j = regJob{reread: ep, endpoint: ep}
	}
	l.regQueued[ep]++
	l.regMu.Unlock()
	if !l.enqueue(j) {
		l.dequeued(j)
	}
}

// dequeued releases j's place in its endpoint's share of the queue.
func (l *Listener) dequeued(j regJob) {
	if j.endpoint == "" {
		return
	}
	l.regMu.Lock()
	defer l.regMu.Unlock()
	if l.regQueued[j.endpoint]--; l.regQueued[j.endpoint] <= 0 {
		delete(l.regQueued, j.endpoint)
	}
	if j.reread != "" {
		delete(l.regReread, j.reread)
	}
}

// folded counts an event folded into a read of its endpoint's contacts,
// and says so once a minute.
func (l *Listener) folded(ep string) {
	if n, ok := l.flood.due(l.Now(), time.Minute); ok {
		l.log.Warn("registration events from one endpoint come faster than they can be handled (a phone, or someone with its password, REGISTERing in a loop?); its contacts are read again instead of each event",
			tollguard.LogExtension, ep, "folded", n)
	}
}

// eventClock is the events' clock: the newest event timestamp plus the
// wall time since it arrived.
func (l *Listener) eventClock() time.Time {
	now := l.Now()
	if l.clockTS.IsZero() {
		return now
	}
	return l.clockTS.Add(now.Sub(l.clockWall))
}

// maxClockLead is how far ahead of the wall clock an event timestamp may
// move the events' clock.
const maxClockLead = time.Minute

// observeClock moves the events' clock to ts, never back, and returns
// the time the event is taken at. A timestamp more than maxClockLead
// ahead of the wall clock is not taken: the event is taken at the
// events' clock instead. One garbage frame, or an Asterisk clock running
// fast until NTP steps it back, would otherwise move the clock forward
// for good, so that every international call in progress looked hours
// long and, past a day, every call was forgotten; and its date, handed
// to the detectors, would stay in their windows for years and make the
// ninth ordinary call a "burst". It is logged at most every 10 minutes.
func (l *Listener) observeClock(ts time.Time) time.Time {
	if ts.IsZero() {
		return ts
	}
	now := l.Now()
	if ahead := ts.Sub(now); ahead > maxClockLead {
		if n, ok := l.ahead.due(now, 10*time.Minute); ok {
			l.log.Warn("ignoring ARI event timestamps ahead of this machine's clock: the events are taken at this machine's time. A bad frame, or Asterisk's clock is ahead (check NTP on both machines)",
				"events", n, "event_time", ts.UTC(), "ahead", ahead.Round(time.Second))
		}
		return l.eventClock()
	}
	if ts.After(l.clockTS) {
		l.clockTS, l.clockWall = ts, now
	}
	return ts
}

// notAhead is ts, or the wall clock when ts is more than maxClockLead
// ahead of it: a registration dated in the future would keep a line
// looking alive for years.
func (l *Listener) notAhead(ts time.Time) time.Time {
	if now := l.Now(); ts.Sub(now) > maxClockLead {
		return now
	}
	return ts
}

// tick runs timers: detectors' long calls and expiry, due settlements,
// periodic refresh of overrides and the high-risk list, pruning.
func (l *Listener) tick(ctx context.Context) {
	defer l.survive("the listener's periodic work")
	now := l.eventClock()
	for _, f := range l.Detectors.Tick(now) {
		l.act(ctx, f)
	}
	l.tr.expire(now)
	l.settleDue(ctx, false)
	wall := l.Now()
	if wall.Sub(l.lastRefresh) > 5*time.Minute {
		l.refresh(ctx)
	}
	if wall.Sub(l.lastPrune) > time.Hour {
		l.lastPrune = wall
		if p, ok := l.Store.(interface {
			PruneContacts(ctx context.Context, gone, before time.Time) (int, error)
		}); ok && (l.PruneHeld == nil || !l.PruneHeld()) {
			// Removed contacts go within a day (a NATed phone makes one
			// per port rebind); what they registered from is kept longer.
			if n, err := p.PruneContacts(ctx, wall.Add(-l.ContactGoneKept), wall.Add(-l.ContactRetention)); err != nil {
				l.log.Error("pruning old registrations failed; it is tried again later. "+tollguard.CheckStore, tollguard.LogError, err)
			} else if n > 0 {
				l.log.Info("pruned old registrations", "contacts", n, "removed_before", l.ContactGoneKept.String(), "history_retention", l.ContactRetention.String())
			}
		}
	}
	// A clock stepped back resyncs once too, rather than not for as long.
	trigger := ResyncRetry
	if since := wall.Sub(l.resyncAsked); since >= l.Client.Config().ResyncInterval || since < 0 {
		l.needResync.Store(true)
		trigger = ResyncPeriodic
	}
	if l.needResync.Load() && len(l.regQ) == 0 && wall.UnixNano() >= l.resyncAfter.Load() {
		if l.needResync.CompareAndSwap(true, false) {
			l.enqueue(regJob{resync: true, trigger: trigger})
		}
	}
}

// refresh reloads per-account detector rules and the high-risk list.
func (l *Listener) refresh(ctx context.Context) {
	l.lastRefresh = l.Now()
	if o, err := l.Store.DetectorOverrides(ctx); err != nil {
		l.log.Error("reading detector overrides failed; keeping the previous ones. "+tollguard.CheckStore, tollguard.LogError, err)
	} else if err := l.Detectors.SetOverrides(o); err != nil {
		l.log.Warn(tollguard.ErrorMessage(err))
	}
	// The store's list, as the gate uses it (the store seeds it with the
	// default; an admin may have emptied it on purpose).
	if hr, err := l.Store.HighRiskList(ctx); err != nil {
		l.log.Error("reading the high-risk list failed; keeping the previous one. "+tollguard.CheckStore, tollguard.LogError, err)
	} else {
		l.tr.highRisk = tollguard.NewPrefixList(hr)
	}
}

// act carries out a finding.
func (l *Listener) act(ctx context.Context, f tollguard.Finding) {
	l.hooks.Finding(f)
	if err := l.Responder.Act(ctx, f); err != nil {
		l.log.Error("acting on a finding failed", "source", f.Source, tollguard.LogKind, f.Kind, tollguard.LogError, err)
	}
}

// settle queues a settlement from events, due after the grace period in
// which the dialplan's hangup request normally settles the call itself.
func (l *Listener) settle(ctx context.Context, s tollguard.Settlement) {
	if l.Settler == nil {
		return
	}
	var grace time.Duration
	if l.Client != nil {
		grace = l.Client.Config().SettleGrace
	}
	if grace <= 0 {
		l.settleNow(ctx, s)
		return
	}
	l.pending = append(l.pending, pendingSettle{due: l.Now().Add(grace), s: s})
	if len(l.pending) > 10_000 {
		l.settleDue(ctx, true)
	}
}

func (l *Listener) settleDue(ctx context.Context, all bool) {
	now := l.Now()
	keep := l.pending[:0]
	for _, p := range l.pending {
		if all || !now.Before(p.due) {
			l.settleNow(ctx, p.s)
			continue
		}
		keep = append(keep, p)
	}
	clear(l.pending[len(keep):])
	l.pending = keep
}

func (l *Listener) settleNow(ctx context.Context, s tollguard.Settlement) {
	changed, err := l.Settler.Settle(ctx, s)
	if errors.Is(err, tollguard.ErrSettlementPending) {
		l.log.Info("settling a call from ARI events failed; kept in memory and retried until the store takes it",
			tollguard.LogCallID, s.CallID, tollguard.LogError, err)
		l.hooks.Settled(false, err)
		return
	}
	if err != nil {
		l.log.Error("settling a call from ARI events failed; the sweep will settle it. "+tollguard.CheckStore, tollguard.LogCallID, s.CallID, tollguard.LogError, err)
		l.hooks.Settled(false, err)
		return
	}
	l.hooks.Settled(changed, nil)
	if changed {
		l.log.Warn("settled a call from ARI events: the dialplan's hangup request never came (check the hangup handler in the tollguard include)",
			tollguard.LogCallID, s.CallID, tollguard.LogBillsec, s.Billsec, tollguard.LogDialStatus, s.DialStatus)
	}
}

// Flush settles every pending settlement now (at shutdown, and in tests).
func (l *Listener) Flush(ctx context.Context) {
	l.settleDue(ctx, true)
}

// handleFrame decodes one websocket frame and dispatches it. Frames that
// are not events, or that ari v5.3.1 cannot decode (Asterisk 22 sends
// types it does not know: ChannelTransfer, RESTResponse,
// ApplicationRegistered, ...), are logged and skipped. Types the
// listener has no use for are skipped without a full decode.
func (l *Listener) handleFrame(ctx context.Context, b []byte) {
	l.init()
	defer l.survive("handling an ARI event")
	typ, ok := eventType(b)
	if !ok {
		l.undecodable(b, errors.New("not a JSON object with a type"))
		return
	}
	if !wanted(typ, b) {
		l.setStateCount(false, false)
		l.hooks.Event(typeLabel(typ), false)
		if !knownType(typ) && !l.unknownSeen[typ] && len(l.unknownSeen) < 100 {
			l.unknownSeen[typ] = true
			l.log.Info("ignoring an ARI event type this ari library does not know", "type", typ)
		}
		return
	}
	ev, err := ariv5.DecodeEvent(b)
	if err != nil {
		l.undecodable(b, err)
		return
	}
	l.dispatch(ctx, ev)
	// Counted once handled, so that "n events handled" means done.
	l.setStateCount(true, false)
	l.hooks.Event(typ, true)
}

// survive, deferred, turns a panic into an error log: a bug met by one
// event must not end the listener while its state still says connected
// (Run waits for the registration goroutine, so a panic there would
// never reach the daemon's recover).
func (l *Listener) survive(while string) {
	if v := recover(); v != nil {
		l.log.Error("panic in the ARI listener; it skipped this and goes on. This is a tollguard bug: please report it with this line",
			"while", while, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}

func (l *Listener) setStateCount(handled, undecodable bool) {
	l.mu.Lock()
	l.state.Events++
	switch {
	case undecodable:
		l.state.Undecodable++
	case !handled:
		l.state.Skipped++
	}
	l.mu.Unlock()
}

// undecodable logs a bad frame, at most every 10 seconds.
func (l *Listener) undecodable(b []byte, err error) {
	l.setStateCount(false, true)
	l.hooks.Event("undecodable", false)
	l.undecCount++
	if now := l.Now(); now.Sub(l.undecLogged) > 10*time.Second {
		sample := b
		if len(sample) > 200 {
			sample = sample[:200]
		}
		l.log.Warn("skipping ARI frames that do not decode as events", "count", l.undecCount, tollguard.LogError, err, "sample", string(sample))
		l.undecLogged, l.undecCount = now, 0
	}
}

// dispatch routes a decoded event.
func (l *Listener) dispatch(ctx context.Context, ev ariv5.Event) {
	switch e := ev.(type) {
	case *ariv5.ContactStatusChange:
		l.enqueueContact(e, l.notAhead(time.Time(e.Timestamp)))
	case *ariv5.ApplicationReplaced:
		l.replaced.Store(true)
	case *ariv5.ChannelCreated:
		l.tr.created(ctx, &e.Channel, l.observeClock(time.Time(e.Timestamp)))
	case *ariv5.ChannelStateChange:
		l.tr.stateChange(&e.Channel, l.observeClock(time.Time(e.Timestamp)))
	case *ariv5.Dial:
		l.tr.dial(ctx, e, l.observeClock(time.Time(e.Timestamp)))
	case *ariv5.ChannelVarset:
		l.tr.varset(ctx, &e.Channel, e.Variable, e.Value, l.observeClock(time.Time(e.Timestamp)))
	case *ariv5.ChannelDestroyed:
		l.tr.destroyed(ctx, &e.Channel, l.observeClock(time.Time(e.Timestamp)))
	}
}

// wanted reports whether the listener uses events of type typ. Of the
// many ChannelVarset events only tollguard's own variables matter.
func wanted(typ string, b []byte) bool {
	switch typ {
	case "ContactStatusChange", "ApplicationReplaced", "ChannelCreated", "ChannelStateChange", "Dial", "ChannelDestroyed":
		return true
	case "ChannelVarset":
		return containsVar(b)
	}
	return false
}

var knownTypes = func() map[string]bool {
	m := make(map[string]bool)
	for _, t := range []string{"ApplicationMoveFailed", "ApplicationReplaced", "BridgeAttendedTransfer", "BridgeBlindTransfer",
		"BridgeCreated", "BridgeDestroyed", "BridgeMerged", "BridgeVideoSourceChanged", "ChannelCallerId", "ChannelConnectedLine",
		"ChannelCreated", "ChannelDestroyed", "ChannelDialplan", "ChannelDtmfReceived", "ChannelEnteredBridge", "ChannelHangupRequest",
		"ChannelHold", "ChannelLeftBridge", "ChannelStateChange", "ChannelTalkingFinished", "ChannelTalkingStarted", "ChannelUnhold",
		"ChannelUserevent", "ChannelVarset", "ContactInfo", "ContactStatusChange", "DeviceStateChanged", "Dial", "EndpointStateChange",
		"MissingParams", "Peer", "PeerStatusChange", "PlaybackContinuing", "PlaybackFinished", "PlaybackStarted", "RecordingFailed",
		"RecordingFinished", "RecordingStarted", "StasisEnd", "StasisStart", "TextMessageReceived"} {
		m[t] = true
	}
	return m
}()

func knownType(t string) bool { return knownTypes[t] }

// typeLabel is a type for metrics: the ones ari v5.3.1 knows, else
// "unknown", so that a stream of odd types cannot grow a label set.
func typeLabel(t string) string {
	if knownTypes[t] {
		return t
	}
	return "unknown"
}

// SetDefaultPlan replaces DefaultPlan while the listener runs (serve's
// SIGHUP reload of [gate] default_country); calls already grouped keep
// the plan they started with.
func (l *Listener) SetDefaultPlan(p tollguard.NumberPlan) {
	if p.Country == "" {
		p.Country = "GB"
	}
	l.plan.Store(&p)
}

// CurrentDefaultPlan is the plan unknown extensions' calls are numbered
// with now: DefaultPlan, or what SetDefaultPlan set since.
func (l *Listener) CurrentDefaultPlan() tollguard.NumberPlan {
	if p := l.plan.Load(); p != nil {
		return *p
	}
	return l.DefaultPlan
}
