package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/store"
)

// agreeWorld is a store holding accounts in several countries and
// zones, with every kind of rule the gate reads: business hours and
// holidays, low, zero and postpaid credit, per-call caps and lengths,
// ceilings under and over deck rates with fees and billing steps, allow
// and deny rules global and per account, a strict whitelist, an
// international block, a high-risk list, attempt and concurrency limits,
// IP access lists (v4, v6) and a blocked extension.
func agreeWorld(t *testing.T) (string, *store.DB) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rate := func(s string) tollguard.Rate {
		r, err := tollguard.ParseRate(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	acct := func(id, country, currency, zone string, set func(a *tollguard.Account)) {
		a, err := store.NewAccount(id, country, currency)
		if err != nil {
			t.Fatal(err)
		}
		a.Zone = zone
		set(a)
		if err := db.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	acct("uk", "GB", "GBP", "Europe/London", func(a *tollguard.Account) {
		a.HoursSpec, a.Holidays = "mon-fri 09:00-17:00", []string{"12-25"}
		a.Balance, a.CallCap = 400, 150
		a.Limits = tollguard.Limits{ExtPerMinute: 2, ExtPerHour: 6, AcctPerDay: 40, AcctConcurrent: 3}
	})
	acct("us", "US", "USD", "America/New_York", func(a *tollguard.Account) {
		a.Whitelist, a.CreditLimit = true, 300
		a.Limits = tollguard.Limits{AcctPerMinute: 3, ExtConcurrent: 2}
	})
	acct("de", "DE", "EUR", "Europe/Berlin", func(a *tollguard.Account) {
		a.Balance, a.HoursSpec = 3, "mon-sat 08:00-20:00"
		a.AfterHours = []tollguard.Class{tollguard.ClassMobile}
		a.Limits = tollguard.Limits{ExtPerHour: 4}
	})
	acct("fr", "FR", "EUR", "Europe/Paris", func(a *tollguard.Account) {
		a.Balance, a.MaxCallSecs = 100000, 300
		a.InternationalCeiling = rate("0.20")
		a.Limits = tollguard.Limits{ExtConcurrent: 1, AcctPerHour: 8}
	})
	acct("au", "AU", "AUD", "Australia/Sydney", func(a *tollguard.Account) {
		a.Balance = 0 // no credit at all
	})
	for _, e := range []tollguard.Extension{
		{Name: "1001", Account: "uk", CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}},
		{Name: "1002", Account: "uk"},
		{Name: "1003", Account: "uk"},
		{Name: "2001", Account: "us", CIDRs: []netip.Prefix{netip.MustParsePrefix("fe80::/10")}},
		{Name: "3001", Account: "de"},
		{Name: "4001", Account: "fr", CIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		{Name: "5001", Account: "au"},
	} {
		if err := db.CreateExtension(ctx, &e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1003", SetBy: "admin", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockIntl, Subject: "de", SetBy: "admin", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []tollguard.Rule{
		{Prefix: "+882", Action: tollguard.RuleDeny},
		{Prefix: "+4420794", Action: tollguard.RuleDeny, Account: "uk"},
		{Prefix: "+353", Action: tollguard.RuleAllow},
		{Prefix: "+1212", Action: tollguard.RuleAllow, Account: "us"},
		{Prefix: "+1", Action: tollguard.RuleAllow, Account: "us"},
		{Prefix: "+252", Action: tollguard.RuleAllow, Account: "fr"},
	} {
		if err := db.AddRule(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ReplaceHighRisk(ctx, []tollguard.HighRiskEntry{{Prefix: "252", Description: "Somalia"}, {Prefix: "5399", Description: "Cuba"}}); err != nil {
		t.Fatal(err)
	}
	imp, err := db.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []tollguard.RateEntry{
		{Prefix: "44", Rate: rate("0.01"), Billing: tollguard.Billing{Initial: 60, Increment: 60}},
		{Prefix: "447", Rate: rate("0.10"), Billing: tollguard.Billing{Initial: 60, Increment: 1, Connect: 5}},
		{Prefix: "449", Rate: rate("1.50")},
		{Prefix: "33", Rate: rate("0.02"), Billing: tollguard.Billing{Initial: 1, Increment: 1}},
		{Prefix: "336", Rate: rate("0.25"), Billing: tollguard.Billing{Initial: 30, Increment: 6}},
		{Prefix: "1", Rate: rate("0.01")},
		{Prefix: "1212", Rate: rate("0.005"), Billing: tollguard.Billing{Initial: 6, Increment: 6}},
		{Prefix: "49", Rate: rate("0.01"), Billing: tollguard.Billing{Initial: 60, Increment: 60}},
		{Prefix: "4915", Rate: rate("0.19")},
		{Prefix: "353", Rate: rate("0.30"), Billing: tollguard.Billing{Initial: 60, Increment: 60, Connect: 10}},
		{Prefix: "252", Rate: rate("1.00")},
		{Prefix: "61", Rate: rate("0.02")},
		{Prefix: "800", Rate: 0},
	} {
		if err := imp.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	return path, db
}

// agreeCall is one generated situation.
type agreeCall struct {
	ext, dialled, from string
	accountcode        string // the channel's CHANNEL(accountcode)
	transferred        bool
}

// Numbers as each extension's people would dial them: national, mobile,
// premium, international (priced, unpriced, high-risk, denied,
// whitelisted), emergency, short codes, garbage.
var agreeNumbers = map[string][]string{
	"uk": {"02079460000", "02079460123", "01632960000", "07700900123", "09098790000", "999", "112", "118118", "100", "1002",
		"0033142685300", "0033612345678", "001212555019", "00353123456789", "00252612345678", "0088212345678", "0061212345678", "12ab", ""},
	"us": {"2125550199", "3125550199", "911", "011442079460000", "01133142685300", "0113531234567", "411", "8005550199"},
	"de": {"030123456", "015112345678", "110", "112", "0044207946000", "00353123456789", "118", "0900123456"},
	"fr": {"0142685300", "0612345678", "112", "15", "00442079460000", "00252612345678", "0035312345678", "0015399123456", "3615"},
	"au": {"0212345678", "000", "0412345678", "0011442079460000"},
}

var agreeExts = map[string]string{"1001": "uk", "1002": "uk", "1003": "uk", "2001": "us", "3001": "de", "4001": "fr", "5001": "au", "9999": "uk"}

var agreeSources = []string{"", "", "192.0.2.7", "192.0.2.7", "198.51.100.4", "192.0.2.7", "203.0.113.9", "2001:db8::5", "2001:dba::1", "::ffff:192.0.2.7", "198.51.100.4", "fe80::1%eth0"}

func (g agreeCall) String() string {
	s := fmt.Sprintf("%s -> %q from %q", g.ext, g.dialled, g.from)
	if g.transferred {
		s += " transferred"
	}
	if g.accountcode != "" {
		s += " accountcode " + g.accountcode
	}
	return s
}

func genCall(r *rand.Rand) agreeCall {
	exts := []string{"1001", "1001", "1002", "1003", "2001", "3001", "4001", "4001", "5001", "9999"}
	ext := exts[r.Intn(len(exts))]
	nums := agreeNumbers[agreeExts[ext]]
	c := agreeCall{ext: ext, dialled: nums[r.Intn(len(nums))], from: agreeSources[r.Intn(len(agreeSources))]}
	c.transferred = c.from != "" && r.Intn(5) == 0
	if r.Intn(4) == 0 {
		c.accountcode = []string{"us", "fr", "nosuch"}[r.Intn(3)]
	}
	return c
}

// sameDecision compares what the gate answers Asterisk and records.
func sameDecision(dry, real tollguard.Decision) string {
	switch {
	case dry.Verdict != real.Verdict, dry.Reason != real.Reason, dry.Cause != real.Cause:
		return fmt.Sprintf("verdict %s/%s/%d, gate %s/%s/%d", dry.Verdict, dry.Reason, dry.Cause, real.Verdict, real.Reason, real.Cause)
	case dry.MaxSec != real.MaxSec, dry.Reserve != real.Reserve:
		return fmt.Sprintf("MAXSEC %d reserve %d, gate %d reserve %d", dry.MaxSec, dry.Reserve, real.MaxSec, real.Reserve)
	case dry.Number.Class != real.Number.Class, dry.Number.E164 != real.Number.E164, dry.Account != real.Account:
		return fmt.Sprintf("class %s %s account %s, gate %s %s %s", dry.Number.Class, dry.Number.E164, dry.Account, real.Number.Class, real.Number.E164, real.Account)
	case dry.Rate != real.Rate, dry.Billing != real.Billing:
		return fmt.Sprintf("rate %v %v, gate %v %v", dry.Rate, dry.Billing, real.Rate, real.Billing)
	case !reflect.DeepEqual(dry.Steps, real.Steps):
		return fmt.Sprintf("steps\n%v\ngate's\n%v", dry.Steps, real.Steps)
	}
	return ""
}

// TestCheckAgreesWithGate: over many generated calls, the dry run
// (Policy.Explain, `tollguard check`) gives the verdict, reason, cause,
// MAXSEC, reservation, class and steps the gate then gives the same
// call at the same time. The gate's decisions pile up attempts and
// calls in progress (some settled), and the clock runs through a day
// and a half of business hours, evenings and a holiday, so the limits
// are met at their edges.
func TestCheckAgreesWithGate(t *testing.T) {
	_, db := agreeWorld(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 24, 7, 55, 0, 0, time.UTC) // a Thursday; Christmas next
	p := &tollguard.Policy{Now: func() time.Time { return now }, Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		DefaultPlan: tollguard.NumberPlan{Country: "GB"}, AfterHoursGrace: 15 * time.Minute, AllowUnknown: true, DefaultAccount: "uk"}
	r := rand.New(rand.NewSource(1))
	var open []int64
	reasons := map[tollguard.Reason]int{}
	for i := 0; i < 1500; i++ {
		switch n := r.Intn(100); {
		case n < 2:
			now = now.Add(time.Duration(1+r.Intn(3)) * time.Hour)
		case n < 80:
			now = now.Add(time.Duration(r.Intn(20)) * time.Second)
		default:
			now = now.Add(time.Duration(r.Intn(300)) * time.Second)
		}
		g := genCall(r)
		c := tollguard.Call{Extension: g.ext, Dialled: g.dialled, Remote: g.from, Transferred: g.transferred, Account: g.accountcode}
		dry, err := p.Explain(ctx, c)
		if err != nil {
			t.Fatalf("%d %s: explain: %v", i, g, err)
		}
		// Twice: a dry run must not count itself as an attempt.
		if again, err := p.Explain(ctx, c); err != nil || sameDecision(dry, again) != "" {
			t.Fatalf("%d %s: a second dry run differs: %v %s", i, g, err, sameDecision(dry, again))
		}
		real, err := p.Decide(ctx, c)
		if err != nil {
			t.Fatalf("%d %s: decide: %v", i, g, err)
		}
		if diff := sameDecision(dry, real); diff != "" {
			t.Errorf("%d at %s, %s: dry run %s", i, now.Format(time.RFC3339), g, diff)
		}
		reasons[real.Reason]++
		if real.Allowed() && real.CallID != 0 {
			open = append(open, real.CallID)
		}
		// Settle some calls in progress, at some length.
		for len(open) > 0 && r.Intn(6) == 0 {
			k := r.Intn(len(open))
			if _, err := p.Settle(ctx, tollguard.Settlement{CallID: open[k], Billsec: int64(r.Intn(90)), By: "agi", At: now}); err != nil {
				t.Fatal(err)
			}
			open = append(open[:k], open[k+1:]...)
		}
	}
	// The generator must reach every rule, or the test proves little.
	for _, want := range tollguard.Reasons {
		if want == tollguard.ReasonSelftest || want == tollguard.ReasonError {
			continue
		}
		if reasons[want] == 0 {
			t.Errorf("no call decided with reason %s: %v", want, reasons)
		}
	}
	t.Logf("reasons: %v", reasons)
}

// TestCheckAgreesWithFastAGIGate: a sample of the generated calls, each
// judged first by `tollguard check --json` (its flags as an admin would
// give them) and then by the real gate, app.Policy over a FastAGI
// server as serve runs it, reached by the fake Asterisk client with the
// arguments the include sends. Both see the same database and config,
// and the gate's clock is check's --at.
func TestCheckAgreesWithFastAGIGate(t *testing.T) {
	path, db := agreeWorld(t)
	cfg := filepath.Join(t.TempDir(), "tollguard.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[gate]\ndefault_country = \"GB\"\nallow_unknown = true\ndefault_account = \"uk\"\n", path)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOLLGUARD_CONFIG", "")
	app := NewApp(nil, io.Discard, io.Discard)
	app.ConfigPath = cfg
	if err := app.Init(); err != nil {
		t.Fatal(err)
	}
	// A day ago: check's store reads the attempts on the wall clock, and
	// none may be dated ahead of it.
	var mu sync.Mutex
	now := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	db.Now = clock
	p := app.Policy(db)
	p.Now, p.Logger = clock, slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &agi.Server{Gate: p, Logger: p.Logger, DecisionTimeout: 5 * time.Second, SessionTimeout: 10 * time.Second, Now: clock}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	r := rand.New(rand.NewSource(2))
	for i := 0; i < 80; i++ {
		mu.Lock()
		now = now.Add(time.Duration(r.Intn(30)) * time.Second)
		at := now
		mu.Unlock()
		g := genCall(r)
		args := []string{"--config", cfg, "check", g.ext, g.dialled, "--at", at.Format(time.RFC3339), "--json"}
		src := ""
		if g.from != "" {
			args = append(args, "--from", g.from)
			src = net.JoinHostPort(g.from, "5060")
		}
		if g.accountcode != "" {
			args = append(args, "--accountcode", g.accountcode)
		}
		if g.transferred {
			args = append(args, "--transferred")
			src = tollguard.TransferSourcePrefix + src
		}
		out, errs, code := runCLI(t, args...)
		if g.dialled == "" {
			// No number: the gate denies with reason error, which check
			// says instead of judging an empty number.
			if code != exitUsage || !strings.Contains(errs, "deny (error), cause 34") {
				t.Errorf("%d %s: check exit %d: %s", i, g, code, errs)
			}
			ch := agitest.PJSIP("")
			ch.SetIncludeArgs(tollguard.ScriptOutbound, "", g.ext, src)
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := ch.Run(rctx, ln.Addr().String())
			rcancel()
			if err != nil || res.Reason() != "error" || res.Cause() != "34" {
				t.Errorf("%d %s: the gate: %v %v", i, g, err, res)
			}
			continue
		}
		if code != 0 {
			t.Errorf("%d %s: check exit %d: %s", i, g, code, errs)
			continue
		}
		var dry struct {
			Verdict, Reason, Class string
			Cause                  *int
			MaxSec                 *int64 `json:"maxsec"`
		}
		if err := json.Unmarshal([]byte(out), &dry); err != nil {
			t.Fatalf("%d %s: %v\n%s", i, g, err, out)
		}
		cause, maxsec := "", ""
		if dry.Cause != nil {
			cause = strconv.Itoa(*dry.Cause)
		}
		if dry.MaxSec != nil {
			maxsec = strconv.FormatInt(*dry.MaxSec, 10)
		}

		ch := agitest.PJSIP(g.dialled)
		ch.SetIncludeArgs(tollguard.ScriptOutbound, g.dialled, g.ext, src)
		ch.SetAccountCode(g.accountcode)
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := ch.Run(rctx, ln.Addr().String())
		rcancel()
		if err != nil {
			t.Fatalf("%d %s: session: %v", i, g, err)
		}
		if dry.Verdict != res.Verdict() || dry.Reason != res.Reason() || cause != res.Cause() || maxsec != res.MaxSec() {
			t.Errorf("%d at %s, %s: check says %s (%s) cause %q MAXSEC %q; the gate %s (%s) cause %q MAXSEC %q",
				i, at.Format(time.RFC3339), g, dry.Verdict, dry.Reason, cause, maxsec, res.Verdict(), res.Reason(), res.Cause(), res.MaxSec())
			continue
		}
		if id := res.CallID(); id != "" {
			n, _ := strconv.ParseInt(id, 10, 64)
			rec, err := db.Call(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			if string(rec.Class) != dry.Class {
				t.Errorf("%d %s: check says class %s, the gate recorded %s", i, g, dry.Class, rec.Class)
			}
		}
	}
}

// TestCheckSaysAttemptsLeft: the dry run does not count itself, and says
// how many calls each window has left after the one it judges, down to
// the last; the gate then allows exactly that many.
func TestCheckSaysAttemptsLeft(t *testing.T) {
	_, db := agreeWorld(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 23, 10, 0, 0, 0, time.UTC)
	p := &tollguard.Policy{Now: func() time.Time { return now }, Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c := tollguard.Call{Extension: "1002", Dialled: "01632960000", Remote: "192.0.2.7"}
	// uk: 2 a minute and 6 an hour for each extension, 40 a day for the account.
	for i, want := range []string{
		"extension 1002: 0 in the last minute (limit 2, 1 more after this call), extension 1002: 0 in the last hour (limit 6, 5 more after this call), account uk: 0 in the last day (limit 40, 39 more after this call)",
		"extension 1002: 1 in the last minute (limit 2, 0 more after this call), extension 1002: 1 in the last hour (limit 6, 4 more after this call), account uk: 1 in the last day (limit 40, 38 more after this call)",
	} {
		for range 2 {
			d, err := p.Explain(ctx, c)
			if err != nil || !d.Allowed() {
				t.Fatalf("call %d: %+v %v", i, d, err)
			}
			if got := stepDetail(d, "rate_limit"); !strings.HasSuffix(got, want) {
				t.Errorf("call %d: rate_limit step %q, want it to end %q", i, got, want)
			}
		}
		if d, err := p.Decide(ctx, c); err != nil || !d.Allowed() {
			t.Fatalf("call %d: %+v %v", i, d, err)
		}
		settleAll(t, p, db)
	}
	d, err := p.Explain(ctx, c)
	if err != nil || d.Reason != tollguard.ReasonRateLimit {
		t.Fatalf("third call in the minute: %+v %v", d, err)
	}
}

func stepDetail(d tollguard.Decision, rule string) string {
	for _, s := range d.Steps {
		if s.Rule == rule {
			return s.Detail
		}
	}
	return ""
}

// settleAll settles the calls in progress, unanswered.
func settleAll(t *testing.T, p *tollguard.Policy, db *store.DB) {
	t.Helper()
	open, err := db.CallsInProgress(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range open {
		if _, err := p.Settle(context.Background(), tollguard.Settlement{CallID: c.ID, By: "agi"}); err != nil {
			t.Fatal(err)
		}
	}
}
