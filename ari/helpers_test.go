package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

var _ Store = (*store.DB)(nil)

func newFake(t *testing.T) *aritest.Server {
	t.Helper()
	s, err := aritest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func testConfig(fake *aritest.Server) Config {
	return Config{
		URL: fake.URL, User: fake.User, Password: fake.Password,
		RequestTimeout: 2 * time.Second, DialTimeout: time.Second,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		PingInterval: 5 * time.Second, SettleGrace: -1,
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// openDB opens a real SQLite file with account acme (GB) and extensions
// 1001 and 1002.
func openDB(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	a.Balance = 100_000
	if err := db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"1001", "1002"} {
		if err := db.CreateExtension(ctx, &tollguard.Extension{Name: name, Account: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func setCIDRs(t *testing.T, db *store.DB, ext string, cidrs ...string) {
	t.Helper()
	_, err := db.UpdateExtension(context.Background(), ext, func(e *tollguard.Extension) error {
		e.CIDRs = nil
		for _, c := range cidrs {
			e.CIDRs = append(e.CIDRs, netip.MustParsePrefix(c))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// recAlerter records alerts; safe for concurrent use.
type recAlerter struct {
	mu     sync.Mutex
	alerts []tollguard.Alert
}

func (r *recAlerter) Raise(ctx context.Context, a tollguard.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
	return nil
}

func (r *recAlerter) all() []tollguard.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tollguard.Alert(nil), r.alerts...)
}

func (r *recAlerter) kind(kind string) []tollguard.Alert {
	var out []tollguard.Alert
	for _, a := range r.all() {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// recHooks records what the listener reports.
type recHooks struct {
	mu        sync.Mutex
	ups       int
	downs     []time.Time
	resyncs   int
	resyncErr error
	reports   []ResyncReport
	// settleErrs counts settlements from events that failed.
	settleErrs int
	settled    []bool
	findings   []tollguard.Finding
	events     map[string]int
	panicOn    string // an event type whose report panics, as a bug would
}

func (h *recHooks) Connection(up bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if up {
		h.ups++
	} else {
		h.downs = append(h.downs, time.Now())
	}
}

func (h *recHooks) Event(typ string, handled bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if typ == h.panicOn {
		panic("test: a bug met while handling " + typ)
	}
	if h.events == nil {
		h.events = map[string]int{}
	}
	h.events[typ]++
}

func (h *recHooks) Resynced(r ResyncReport) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resyncs++
	h.resyncErr = r.Err
	h.reports = append(h.reports, r)
}

func (h *recHooks) Finding(f tollguard.Finding) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.findings = append(h.findings, f)
}

func (h *recHooks) Settled(changed bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.settleErrs++
		return
	}
	h.settled = append(h.settled, changed)
}

func (h *recHooks) snapshot() recHooks {
	h.mu.Lock()
	defer h.mu.Unlock()
	return recHooks{ups: h.ups, downs: append([]time.Time(nil), h.downs...), resyncs: h.resyncs, resyncErr: h.resyncErr, reports: append([]ResyncReport(nil), h.reports...),
		settled: append([]bool(nil), h.settled...), settleErrs: h.settleErrs, findings: append([]tollguard.Finding(nil), h.findings...)}
}

// harness is a listener running against a fake ARI and a real SQLite
// store.
type harness struct {
	t      *testing.T
	fake   *aritest.Server
	db     *store.DB
	alerts *recAlerter
	hooks  *recHooks
	l      *Listener
	policy *tollguard.Policy // the listener's Settler
	logs   *testutil.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	now    func() time.Time // the listener's wall clock; nil: time.Now plus skew
	skew   atomic.Int64     // advance moves the harness's clocks by this
}

// advance moves the listener's wall clock ahead by d (with the default
// clock or withWallClock).
func (h *harness) advance(d time.Duration) { h.skew.Add(int64(d)) }

type harnessOpt func(*harness, *Config, *tollguard.DetectorSettings)

func withRules(rules map[string]tollguard.DetectorRule) harnessOpt {
	return func(_ *harness, _ *Config, s *tollguard.DetectorSettings) { s.Rules = rules }
}

func withConfig(f func(*Config)) harnessOpt {
	return func(_ *harness, c *Config, _ *tollguard.DetectorSettings) { f(c) }
}

// withWallClock runs the listener's wall clock from at, so that the
// recorded events' times relate to it as they did live.
func withWallClock(at time.Time) harnessOpt {
	return func(h *harness, _ *Config, _ *tollguard.DetectorSettings) {
		start := time.Now()
		h.now = func() time.Time { return at.Add(time.Since(start) + time.Duration(h.skew.Load())) }
	}
}

// newHarness builds the listener; start runs it.
func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, fake: newFake(t), db: openDB(t), alerts: &recAlerter{}, hooks: &recHooks{}, logs: &testutil.Buffer{}}
	cfg := testConfig(h.fake)
	var ds tollguard.DetectorSettings
	for _, o := range opts {
		o(h, &cfg, &ds)
	}
	if h.now == nil {
		h.now = func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }
	}
	det, err := tollguard.NewDetectors(ds)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	policy := &tollguard.Policy{Now: time.Now, Store: h.db, Logger: log}
	h.policy = policy
	h.l = &Listener{
		Client: newClient(t, cfg), Store: h.db, Settler: policy, Detectors: det,
		Responder: &tollguard.Responder{Alerter: h.alerts, Blocker: h.db, Logger: log},
		Logger:    log, Hooks: h.hooks, DefaultPlan: tollguard.NumberPlan{Country: "GB"}, Now: h.now,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("listener log:\n%s", h.logs.String())
		}
	})
	return h
}

func (h *harness) start() *harness {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.l.Run(ctx); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	}()
	h.t.Cleanup(h.stop)
	h.waitConnected(1)
	h.waitResyncs(1)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Error("listener did not stop within 10s of its context ending")
	}
	h.cancel = nil
}

func (h *harness) waitConnected(n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.fake.WaitConnections(ctx, n); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) waitResyncs(n int) {
	h.t.Helper()
	testutil.Eventually(h.t, waitLimit, fmt.Sprintf("%d resynchronisations", n), func() bool { return h.hooks.snapshot().resyncs >= n })
}

// resyncEvery is the listener's resync interval in the tests (the
// default).
const resyncEvery = DefaultResyncInterval

// waitLimit bounds every wait for the listener.
const waitLimit = 10 * time.Second

// push sends frames and waits until the listener has counted them.
func (h *harness) push(frames ...[]byte) {
	h.t.Helper()
	before := h.l.State().Events
	for _, f := range frames {
		if h.fake.Push(f) == 0 {
			h.t.Fatal("no websocket connected to push to")
		}
	}
	want := before + uint64(len(frames))
	testutil.Eventually(h.t, waitLimit, fmt.Sprintf("%d events handled", len(frames)), func() bool { return h.l.State().Events >= want })
}

func (h *harness) replay(name string) {
	h.t.Helper()
	frames, err := aritest.FixtureEvents(name)
	if err != nil {
		h.t.Fatal(err)
	}
	h.push(frames...)
}

// registerLive registers ext's phone (endpoint and AOR ext) at uri
// with user agent ua, waits until the listener records the contact
// live, and returns its id.
func (h *harness) registerLive(ext, uri, ua string) string {
	h.t.Helper()
	id := h.fake.Register(ext, ext, uri, map[string]string{"user_agent": ua}, true)
	testutil.Eventually(h.t, waitLimit, "the registration recorded", func() bool {
		c, ok := h.contact(id)
		return ok && c.Live
	})
	return id
}

// liveContact returns the stored contact with id, if any.
func (h *harness) contact(id string) (tollguard.Contact, bool) {
	cs, err := h.db.Contacts(context.Background(), store.ContactFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c, true
		}
	}
	return tollguard.Contact{}, false
}

// gateCall records a gate decision for a channel, as the FastAGI gate
// does, and returns its id.
func (h *harness) gateCall(uniqueID, ext, dialled string, v tollguard.Verdict) int64 {
	h.t.Helper()
	r := &tollguard.CallRecord{CreatedAt: time.Now(), Extension: ext, Account: "acme", Dialled: dialled, Class: tollguard.ClassInternational,
		UniqueID: uniqueID, Channel: "PJSIP/" + ext, Verdict: v, Reason: tollguard.ReasonOK, MaxSec: 3600, Rate: 60_000, Reserve: 3600, Scale: 2}
	if v == tollguard.Deny {
		r.Reason, r.Cause, r.MaxSec, r.Reserve = tollguard.ReasonHighRisk, 21, 0, 0
	}
	return h.insertCall(r)
}

// insertCall records r as the gate would, and returns its id.
func (h *harness) insertCall(r *tollguard.CallRecord) int64 {
	h.t.Helper()
	ctx := context.Background()
	var id int64
	if err := h.db.Gate(ctx, false, func(tx tollguard.GateTx) error {
		var err error
		id, err = tx.InsertCall(ctx, r)
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// rewrite rebuilds a recorded flow with other channel ids, extension and
// number, shifted in time; pairs are old, new strings.
func rewrite(frames [][]byte, shift time.Duration, pairs ...string) [][]byte {
	out := make([][]byte, len(frames))
	for i, f := range frames {
		s := string(f)
		for j := 0; j+1 < len(pairs); j += 2 {
			s = strings.ReplaceAll(s, pairs[j], pairs[j+1])
		}
		if shift != 0 {
			s = tsPattern.ReplaceAllStringFunc(s, func(ts string) string {
				t, err := time.Parse("2006-01-02T15:04:05.000-0700", ts)
				if err != nil {
					return ts
				}
				return t.Add(shift).UTC().Format("2006-01-02T15:04:05.000-0700")
			})
		}
		out[i] = []byte(s)
	}
	return out
}

func fixture(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := aritest.FixtureEvents(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func aritestContactEvent(endpoint, aor, uri, status string) map[string]any {
	return aritest.ContactEvent(endpoint, aor, uri, status, time.Now())
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
