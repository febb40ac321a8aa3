package tollguard_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/store"
)

// audT0 is the audits' pinned "now" at the start of each test.
var audT0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func nil2rand() io.Reader { return rand.Reader }

// audHarness is an audit environment over a real SQLite store in a temp
// dir and the fixture-built fake ARI, reached over HTTP by the real ARI
// client.
type audHarness struct {
	t      *testing.T
	mu     sync.Mutex
	now    time.Time
	db     *store.DB
	fake   *aritest.Server
	ast    *ari.Client
	alerts *audAlerter
	env    *tollguard.AuditEnv
}

func newAudHarness(t *testing.T) *audHarness {
	t.Helper()
	h := &audHarness{t: t, now: audT0, alerts: &audAlerter{}}
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Now = h.clock
	h.db = db
	fake, err := aritest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	h.fake = fake
	c, err := ari.NewClient(ari.Config{URL: fake.URL, User: fake.User, Password: fake.Password, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h.ast = c
	h.env = &tollguard.AuditEnv{
		Now: h.clock, Store: db, Asterisk: c, Alerter: h.alerts,
		Settings: tollguard.DefaultAuditSettings(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return h
}

func (h *audHarness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *audHarness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

// account creates an account, letting fn set its quotas.
func (h *audHarness) account(id string, fn func(a *tollguard.Account)) {
	h.t.Helper()
	a, err := store.NewAccount(id, "GB", "GBP")
	if err != nil {
		h.t.Fatal(err)
	}
	a.SpendFactorPermil = 0
	if fn != nil {
		fn(a)
	}
	if err := h.db.CreateAccount(context.Background(), a); err != nil {
		h.t.Fatal(err)
	}
}

// extension records an extension in the store only.
func (h *audHarness) extension(name, account string, created time.Time, fn func(e *tollguard.Extension)) {
	h.t.Helper()
	e := &tollguard.Extension{Name: name, Account: account, CreatedAt: created, Managed: true}
	if fn != nil {
		fn(e)
	}
	if err := h.db.CreateExtension(context.Background(), e); err != nil {
		h.t.Fatal(err)
	}
}

func (h *audHarness) run(job tollguard.AuditJob, apply bool) *tollguard.AuditRun {
	h.t.Helper()
	run, err := tollguard.RunAudit(context.Background(), h.env, job, apply, "cli", nil)
	if err != nil {
		h.t.Fatalf("%s: %v", job.Name(), err)
	}
	return run
}

func (h *audHarness) object(typ, id string) tollguard.ConfigObject {
	h.t.Helper()
	o, ok := h.fake.Object(typ, id)
	if !ok {
		h.t.Fatalf("fake ARI has no %s/%s", typ, id)
	}
	return o
}

// writes lists the dynamic-config writes the fake served, as
// "PUT auth/1009".
func (h *audHarness) writes() []string {
	var out []string
	for _, r := range h.fake.Requests() {
		if r.Method == "GET" || !strings.HasPrefix(r.Path, "/asterisk/config/dynamic/res_pjsip/") {
			continue
		}
		out = append(out, r.Method+" "+strings.TrimPrefix(r.Path, "/asterisk/config/dynamic/res_pjsip/"))
	}
	return out
}

// findings returns "check subject severity" for each finding, sorted.
func audFindings(run *tollguard.AuditRun) []string {
	var out []string
	for _, f := range run.Findings {
		out = append(out, f.Check+" "+f.Subject+" "+string(f.Severity))
	}
	sort.Strings(out)
	return out
}

func audActions(run *tollguard.AuditRun) []string {
	var out []string
	for _, a := range run.Actions {
		s := a.Kind + " " + a.Subject
		if a.Err != "" {
			s += " FAILED"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func audFinding(t *testing.T, run *tollguard.AuditRun, check, subject string) tollguard.AuditFinding {
	t.Helper()
	for _, f := range run.Findings {
		if f.Check == check && f.Subject == subject {
			return f
		}
	}
	t.Fatalf("no %s finding for %s in %q", check, subject, audFindings(run))
	return tollguard.AuditFinding{}
}

type audAlerter struct {
	mu     sync.Mutex
	alerts []tollguard.Alert
}

func (a *audAlerter) Raise(ctx context.Context, al tollguard.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.alerts = append(a.alerts, al)
	return nil
}

func (a *audAlerter) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, al := range a.alerts {
		out = append(out, al.Kind+" "+al.Subject)
	}
	sort.Strings(out)
	return out
}

func (a *audAlerter) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.alerts = nil
}
