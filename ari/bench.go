package ari

import (
	"context"
	"embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tollguard/tollguard"
)

// benchdata holds two recorded call streams from Asterisk 22 (an allowed
// call and a denied one), the templates of the benchmark's traffic.
//
//go:embed benchdata/*.jsonl
var benchdata embed.FS

// HandleFrame decodes and dispatches one events websocket frame, as the
// reader does; for replay tools, benchmarks and fuzzing. Registration
// frames are queued for the registration goroutine, which only Run
// starts. Not safe for concurrent use with Run.
func (l *Listener) HandleFrame(ctx context.Context, frame []byte) {
	l.init()
	l.handleFrame(ctx, frame)
}

// Tick runs the listener's timers once (detectors' long calls and
// expiry, due settlements); for replay tools and tests.
func (l *Listener) Tick(ctx context.Context) {
	l.init()
	l.tick(ctx)
}

// BenchResult is what RunEventBenchDetail measured.
type BenchResult struct {
	Events       int
	EventsPerSec float64 // through decoding, call tracking and every detector
	HeapMB       float64 // live heap after a GC, at the end
	RSSMB        float64 // the process's resident set at the end (Linux; 0 elsewhere)
	Findings     int     // alerts raised
	Calls        int     // call flows
	Settled      int     // gated calls settled from ChannelDestroyed
	Kinds        map[string]int
}

// String is the line `make bench` prints.
func (r BenchResult) String() string {
	return fmt.Sprintf("ari events: %d events (%d calls) at %.0f events/s through decoding, call tracking and all detectors; heap %.1f MB, RSS %.1f MB after them",
		r.Events, r.Calls, r.EventsPerSec, r.HeapMB, r.RSSMB)
}

// RunEventBenchDetail pushes n events through a listener: call flows rebuilt
// from the recorded Asterisk 22 streams (19 allowed calls to one denied
// high-risk attempt), from 1,000 extensions on 200 accounts, with fresh channel ids,
// numbers and timestamps, over an in-memory store. It returns the events
// per second through decoding, call tracking and all detectors (the
// time spent building the frames is not counted) and the live heap
// after a GC at the end, which stays flat however large n is.
func RunEventBenchDetail(n int) BenchResult {
	l, store, alerts := newBenchListener()
	ctx := context.Background()
	gen := newFlowGen()
	var busy time.Duration
	events := 0
	for events < n {
		frames := gen.next(store)
		start := time.Now()
		for _, f := range frames {
			l.handleFrame(ctx, f)
		}
		events += len(frames)
		if gen.flows%500 == 0 {
			l.tick(ctx)
		}
		busy += time.Since(start)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return BenchResult{
		Events: events, EventsPerSec: float64(events) / busy.Seconds(), HeapMB: float64(ms.HeapAlloc) / (1 << 20), RSSMB: rssMB(),
		Findings: alerts.count(), Calls: gen.flows, Settled: store.settledCount(), Kinds: alerts.kinds,
	}
}

// rssMB reads VmRSS from /proc/self/status.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

func newBenchListener() (*Listener, *memStore, *memAlerter) {
	store := newMemStore()
	for i := 0; i < 1000; i++ {
		store.exts[fmt.Sprint(2000+i)] = &tollguard.Extension{Name: fmt.Sprint(2000 + i), Account: fmt.Sprint("acct", i%200)}
	}
	for i := 0; i < 200; i++ {
		store.accts[fmt.Sprint("acct", i)] = &tollguard.Account{ID: fmt.Sprint("acct", i), Plan: tollguard.NumberPlan{Country: "GB"}}
	}
	alerts := &memAlerter{}
	det, _ := tollguard.NewDetectors(tollguard.DetectorSettings{})
	l := &Listener{
		Store: store, Settler: store, Detectors: det,
		Responder: &tollguard.Responder{Alerter: alerts, Blocker: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	l.init()
	return l, store, alerts
}

// flowGen rebuilds recorded call flows with new ids, extension, number
// and timestamps.
type flowGen struct {
	templates [][]tmplLine
	flows     int
	clock     time.Time
	buf       []byte
}

type tmplLine struct {
	parts [][]byte // literal, slot, literal, slot, ...: odd entries are slot names
	dt    time.Duration
}

var tsPattern = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000`)

var (
	flowTemplatesOnce sync.Once
	flowTemplates     [][]tmplLine
)

func loadFlowTemplates() [][]tmplLine {
	flowTemplatesOnce.Do(func() {
		for _, f := range []struct {
			name    string
			ext     string
			num     string
			replace []string
		}{
			{"benchdata/ari-events-outbound-call-allowed.jsonl", "PJSIP/1001-00000000", "0044207946000",
				[]string{"pbx-test-1795395563.0", "{ID0}", "pbx-test-1795395564.1", "{ID1}", "pbx-test-1795395564.2", "{ID2}", "sink-00000000", "sink-{SEQ}"}},
			{"benchdata/ari-events-outbound-call-denied.jsonl", "PJSIP/1001-00000001", "00252612345678",
				[]string{"pbx-test-1795395577.3", "{ID0}"}},
		} {
			b, err := benchdata.ReadFile(f.name)
			if err != nil {
				panic("ari: embedded bench data: " + err.Error())
			}
			var lines []tmplLine
			var first time.Time
			for _, raw := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if ts := tsPattern.FindString(raw); ts != "" {
					t, _ := time.Parse("2006-01-02T15:04:05.000-0700", ts)
					if first.IsZero() {
						first = t
					}
					line := raw
					for i := 0; i < len(f.replace); i += 2 {
						line = strings.ReplaceAll(line, f.replace[i], f.replace[i+1])
					}
					line = strings.ReplaceAll(line, f.ext, "PJSIP/{EXT}-{SEQ}")
					line = strings.ReplaceAll(line, `"number":"1001"`, `"number":"{EXT}"`)
					line = strings.ReplaceAll(line, f.num, "{NUM}")
					line = tsPattern.ReplaceAllString(line, "{TS}")
					lines = append(lines, tmplLine{parts: splitSlots(line), dt: t.Sub(first)})
				}
			}
			flowTemplates = append(flowTemplates, lines)
		}
	})
	return flowTemplates
}

var slotPattern = regexp.MustCompile(`\{(ID0|ID1|ID2|EXT|NUM|SEQ|TS)\}`)

func splitSlots(line string) [][]byte {
	var parts [][]byte
	last := 0
	for _, m := range slotPattern.FindAllStringSubmatchIndex(line, -1) {
		parts = append(parts, []byte(line[last:m[0]]), []byte(line[m[2]:m[3]]))
		last = m[1]
	}
	return append(parts, []byte(line[last:]))
}

func newFlowGen() *flowGen {
	return &flowGen{templates: loadFlowTemplates(), clock: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
}

// next builds the next call flow's frames. It also records the gate's
// decision for allowed calls in the store, as the FastAGI gate would.
func (g *flowGen) next(store *memStore) [][]byte {
	g.flows++
	k := g.flows
	tmpl := g.templates[0]
	denied := k%20 == 0
	if denied {
		tmpl = g.templates[1]
	}
	ext := fmt.Sprint(2000 + int((uint64(k)*11400714819323198485)>>32)%1000)
	// Spread numbers: a national or international destination, rarely
	// the same twice, never a sweep.
	num := fmt.Sprintf("0033%09d", (k*104729)%1_000_000_000)
	if denied {
		num = fmt.Sprintf("00252%09d", (k*1299709)%1_000_000_000)
	}
	ids := [3]string{fmt.Sprintf("bench-%d.0", k), fmt.Sprintf("bench-%d.1", k), fmt.Sprintf("bench-%d.2", k)}
	seq := fmt.Sprintf("%08x", k)
	start := g.clock
	g.clock = g.clock.Add(40 * time.Millisecond) // 25 calls a second, from 1,000 phones
	if !denied {
		store.addCall(ids[0], ext)
	}
	g.buf = g.buf[:0]
	offsets := make([]int, 0, len(tmpl)+1)
	for _, line := range tmpl {
		offsets = append(offsets, len(g.buf))
		ts := start.Add(line.dt).Format("2006-01-02T15:04:05.000-0700")
		for i, p := range line.parts {
			if i%2 == 0 {
				g.buf = append(g.buf, p...)
				continue
			}
			switch string(p) {
			case "ID0":
				g.buf = append(g.buf, ids[0]...)
			case "ID1":
				g.buf = append(g.buf, ids[1]...)
			case "ID2":
				g.buf = append(g.buf, ids[2]...)
			case "EXT":
				g.buf = append(g.buf, ext...)
			case "NUM":
				g.buf = append(g.buf, num...)
			case "SEQ":
				g.buf = append(g.buf, seq...)
			case "TS":
				g.buf = append(g.buf, ts...)
			}
		}
	}
	offsets = append(offsets, len(g.buf))
	frames := make([][]byte, len(tmpl))
	for i := range frames {
		frames[i] = g.buf[offsets[i]:offsets[i+1]:offsets[i+1]]
	}
	return frames
}

// memStore is an in-memory Store, Settler and Blocker for the benchmark
// and the fuzz test. Calls it records are dropped once settled, so it
// stays small.
type memStore struct {
	mu       sync.Mutex
	exts     map[string]*tollguard.Extension
	accts    map[string]*tollguard.Account
	calls    map[string]*tollguard.CallRecord // by uniqueid
	byID     map[int64]*tollguard.CallRecord
	nextID   int64
	contacts map[string]tollguard.Contact
	blocks   int
	settled  int
}

func newMemStore() *memStore {
	return &memStore{exts: map[string]*tollguard.Extension{}, accts: map[string]*tollguard.Account{},
		calls: map[string]*tollguard.CallRecord{}, byID: map[int64]*tollguard.CallRecord{}, contacts: map[string]tollguard.Contact{}}
}

func (m *memStore) addCall(uniqueID, ext string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	r := &tollguard.CallRecord{ID: m.nextID, UniqueID: uniqueID, Extension: ext, Verdict: tollguard.Allow, MaxSec: -1}
	m.calls[uniqueID] = r
	m.byID[r.ID] = r
}

func (m *memStore) Extension(ctx context.Context, name string) (*tollguard.Extension, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.exts[name]; e != nil {
		c := *e
		return &c, nil
	}
	return nil, tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found", name)
}

func (m *memStore) Account(ctx context.Context, id string) (*tollguard.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.accts[id]; a != nil {
		c := *a
		return &c, nil
	}
	return nil, tollguard.Errorf(tollguard.ENOTFOUND, "account %q not found", id)
}

func (m *memStore) TouchExtension(ctx context.Context, name string, t int64) error { return nil }

func (m *memStore) CallByChannel(ctx context.Context, uniqueID, linkedID string) (*tollguard.CallRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range []string{uniqueID, linkedID} {
		if r := m.calls[id]; r != nil && id != "" {
			c := *r
			return &c, nil
		}
	}
	return nil, nil
}

func (m *memStore) Call(ctx context.Context, id int64) (*tollguard.CallRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.byID[id]; r != nil {
		c := *r
		return &c, nil
	}
	return nil, tollguard.Errorf(tollguard.ENOTFOUND, "call %d not found", id)
}

func (m *memStore) HighRiskList(ctx context.Context) ([]tollguard.HighRiskEntry, error) {
	return tollguard.DefaultHighRisk(), nil
}

func (m *memStore) DetectorOverrides(ctx context.Context) (map[string]map[string]tollguard.DetectorRule, error) {
	return nil, nil
}

func (m *memStore) Settle(ctx context.Context, s tollguard.Settlement) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.byID[s.CallID]
	if r == nil {
		return false, tollguard.Errorf(tollguard.ENOTFOUND, "call %d not found", s.CallID)
	}
	delete(m.byID, r.ID)
	delete(m.calls, r.UniqueID)
	m.settled++
	return true, nil
}

func (m *memStore) Block(ctx context.Context, b tollguard.Block) (tollguard.Block, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks++
	return b, nil
}

func (m *memStore) ObserveContact(ctx context.Context, c tollguard.Contact) (tollguard.ContactHistory, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var h tollguard.ContactHistory
	if p, ok := m.contacts[c.ID]; ok {
		h.Previous = &p
	}
	for _, o := range m.contacts {
		if o.Extension == c.Extension {
			h.Registered = true
			h.IPs = append(h.IPs, o.IP)
			h.Agents = append(h.Agents, o.UserAgent)
		}
	}
	c.Live = true
	if len(m.contacts) < 10_000 {
		m.contacts[c.ID] = c
	}
	return h, nil
}

func (m *memStore) ContactGone(ctx context.Context, id string, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.contacts[id]
	delete(m.contacts, id)
	return ok, nil
}

func (m *memStore) SetContactStatus(ctx context.Context, id, status string, at time.Time) error {
	return nil
}

func (m *memStore) LiveContacts(ctx context.Context) ([]tollguard.Contact, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tollguard.Contact
	for _, c := range m.contacts {
		out = append(out, c)
	}
	return out, nil
}

func (m *memStore) settledCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.settled
}

// memAlerter counts alerts.
type memAlerter struct {
	mu    sync.Mutex
	n     int
	kinds map[string]int
}

func (a *memAlerter) Raise(ctx context.Context, al tollguard.Alert) error {
	a.mu.Lock()
	a.n++
	if a.kinds == nil {
		a.kinds = map[string]int{}
	}
	a.kinds[al.Kind]++
	a.mu.Unlock()
	return nil
}

func (a *memAlerter) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}
