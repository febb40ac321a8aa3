package agi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/store"
)

// logEntry is one captured log record, attributes flattened to text.
type logEntry struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      *sync.Mutex
	entries *[]logEntry
	attrs   []slog.Attr
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: new(sync.Mutex), entries: new([]logEntry)}
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	e := logEntry{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		e.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		e.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	*h.entries = append(*h.entries, e)
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &h2
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// find returns the entries whose message contains substr.
func (h *logRecorder) find(substr string) []logEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logEntry
	for _, e := range *h.entries {
		if strings.Contains(e.Msg, substr) {
			out = append(out, e)
		}
	}
	return out
}

func (h *logRecorder) dump() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	for _, e := range *h.entries {
		fmt.Fprintf(&b, "%s %s %v\n", e.Level, e.Msg, e.Attrs)
	}
	return b.String()
}

// countingMetrics counts what the server reports.
type countingMetrics struct {
	mu        sync.Mutex
	inFlight  int
	started   int
	decisions map[string]int // "verdict/reason"
	recorded  map[string]int // "verdict/reason", emergency calls after they ended
	settled   map[string]int // by
	refused   map[string]int
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{decisions: map[string]int{}, recorded: map[string]int{}, settled: map[string]int{}, refused: map[string]int{}}
}

func (m *countingMetrics) SessionStart() {
	m.mu.Lock()
	m.inFlight++
	m.started++
	m.mu.Unlock()
}

func (m *countingMetrics) SessionEnd() {
	m.mu.Lock()
	m.inFlight--
	m.mu.Unlock()
}

func (m *countingMetrics) Decision(v tollguard.Verdict, r tollguard.Reason, _ time.Duration) {
	m.mu.Lock()
	m.decisions[string(v)+"/"+string(r)]++
	m.mu.Unlock()
}

func (m *countingMetrics) Recorded(v tollguard.Verdict, r tollguard.Reason) {
	m.mu.Lock()
	m.recorded[string(v)+"/"+string(r)]++
	m.mu.Unlock()
}

func (m *countingMetrics) Settled(by string, _ bool) {
	m.mu.Lock()
	m.settled[by]++
	m.mu.Unlock()
}

func (m *countingMetrics) SettleFailed(by string) {
	m.mu.Lock()
	m.settled[by+"/failed"]++
	m.mu.Unlock()
}

func (m *countingMetrics) Refused(reason string) {
	m.mu.Lock()
	m.refused[reason]++
	m.mu.Unlock()
}

func (m *countingMetrics) snapshot() (inFlight, started int, decisions, settled, refused map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := func(in map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range in {
			out[k] = v
		}
		return out
	}
	return m.inFlight, m.started, cp(m.decisions), cp(m.settled), cp(m.refused)
}

// harness is a real Server on an ephemeral loopback port.
type harness struct {
	t       *testing.T
	srv     *Server
	gate    *agitest.Gate
	logs    *logRecorder
	metrics *countingMetrics
	addr    string
	cancel  context.CancelFunc

	returned chan struct{} // closed when Serve has returned
	serveErr error         // what it returned
	stopOnce sync.Once
}

// startServer starts a server with a fake gate that allows everything;
// configure may change the server and the gate before it starts.
func startServer(t *testing.T, configure func(*Server)) *harness {
	t.Helper()
	h := &harness{t: t, gate: &agitest.Gate{}, logs: newLogRecorder(), metrics: newCountingMetrics()}
	h.srv = &Server{
		Gate:    h.gate,
		Logger:  slog.New(h.logs),
		Metrics: h.metrics,
		// Far from the default 300ms: a loaded CI box must not turn an
		// instant fake decision into a deadline deny. Deadline tests set
		// their own.
		DecisionTimeout: 5 * time.Second,
		SessionTimeout:  10 * time.Second,
	}
	if configure != nil {
		configure(h.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.returned = make(chan struct{})
	go func() {
		h.serveErr = h.srv.Serve(ctx, ln)
		close(h.returned)
	}()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", h.logs.dump())
		}
	})
	return h
}

// stop shuts the server down and waits for Serve to return.
func (h *harness) stop() {
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case <-h.returned:
			if h.serveErr != nil {
				h.t.Errorf("Serve: %v", h.serveErr)
			}
		case <-time.After(10 * time.Second):
			h.t.Error("Serve did not return after shutdown")
		}
	})
}

// run plays ch against the server to its end.
func (h *harness) run(ch *agitest.Channel) *agitest.Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ch.Run(ctx, h.addr)
	if err != nil {
		h.t.Fatalf("session: %v", err)
	}
	return res
}

func (h *harness) start(ch *agitest.Channel) *agitest.Conn {
	h.t.Helper()
	c, err := ch.Start(context.Background(), h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func wait(t *testing.T, c *agitest.Conn) *agitest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	return res
}

// recv receives from ch or fails the test after a while.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// gated returns a channel as the shipped include calls the gate: the
// dialled number, the extension and the source address as arguments,
// repeated in the URL.
func gated(dialled string) *agitest.Channel {
	ch := agitest.PJSIP(dialled)
	ch.SetIncludeArgs(tollguard.ScriptOutbound, dialled, "1001", "127.0.0.1:5072")
	return ch
}

// testAccount is an account of a policyServer's store, with 1000.00 of
// credit and one extension.
type testAccount struct {
	id, country, currency, ext string
	limits                     tollguard.Limits
}

// policyServer starts the server over the real policy on a SQLite store
// in t.TempDir() holding accts; prepare (may be nil) fills in more
// (rates) before the first call.
func policyServer(t *testing.T, defaultCountry string, accts []testAccount, prepare func(*store.DB)) *harness {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, a := range accts {
		acct, err := store.NewAccount(a.id, a.country, a.currency)
		if err != nil {
			t.Fatal(err)
		}
		acct.Balance, acct.Limits = 100000, a.limits
		if err := db.CreateAccount(ctx, acct); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateExtension(ctx, &tollguard.Extension{Name: a.ext, Account: a.id}); err != nil {
			t.Fatal(err)
		}
	}
	if prepare != nil {
		prepare(db)
	}
	p := &tollguard.Policy{Now: time.Now, Store: db, DefaultPlan: tollguard.NumberPlan{Country: defaultCountry},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return startServer(t, func(s *Server) { s.Gate = p })
}

// importRate makes db's rate deck one row: prefix at rate a minute.
func importRate(t *testing.T, db *store.DB, prefix, rate string) {
	t.Helper()
	ctx := context.Background()
	r, err := tollguard.ParseRate(rate)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := db.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := imp.Add(ctx, tollguard.RateEntry{Prefix: prefix, Rate: r}); err != nil {
		t.Fatal(err)
	}
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
}
