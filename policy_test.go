package tollguard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// A Friday afternoon in London.
var friday = time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)

type fixture struct {
	t   *testing.T
	db  *store.DB
	p   *tollguard.Policy
	now time.Time
}

// MustOpenDB opens a real SQLite file in t.TempDir().
func MustOpenDB(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newFixture seeds account acme (GB, GBP, 10.00 credit) with extension
// 1001 and a small rate deck.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, db: MustOpenDB(t), now: friday}
	f.db.Now = func() time.Time { return f.now }
	f.p = &tollguard.Policy{Now: func() time.Time { return f.now }, Store: f.db,
		DefaultPlan: tollguard.NumberPlan{Country: "GB"}, SelftestNumber: "0099999999999",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()
	a, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	a.Balance = 1000
	a.Zone = "Europe/London"
	if err := f.db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateExtension(ctx, &tollguard.Extension{Name: "1001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	f.rates(nil)
	if err := f.db.ReplaceHighRisk(ctx, tollguard.DefaultHighRisk()); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustAccount(t *testing.T, id string) *tollguard.Account {
	t.Helper()
	a, err := store.NewAccount(id, "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fixtureDeck is the fixture's rate deck, per minute by prefix.
var fixtureDeck = map[string]string{"44": "0.01", "447": "0.10", "449": "1.50", "33": "0.015", "1": "0.005", "49": "0.03",
	"252": "1.20", "881": "5.00", "4480": "0"}

// rates imports fixtureDeck with extra added, in place of the deck.
func (f *fixture) rates(extra map[string]string) {
	f.t.Helper()
	ctx := context.Background()
	imp, err := f.db.BeginRateImport(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, deck := range []map[string]string{fixtureDeck, extra} {
		for p, r := range deck {
			rate, err := tollguard.ParseRate(r)
			if err != nil {
				f.t.Fatal(err)
			}
			if err := imp.Add(ctx, tollguard.RateEntry{Prefix: p, Rate: rate}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	if err := imp.Commit(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) account(fn func(a *tollguard.Account)) {
	f.t.Helper()
	if _, err := f.db.UpdateAccount(context.Background(), "acme", func(a *tollguard.Account) error { fn(a); return nil }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) decide(c tollguard.Call) tollguard.Decision {
	f.t.Helper()
	if c.Extension == "" {
		c.Extension = "1001"
	}
	d, err := f.p.Decide(context.Background(), c)
	if err != nil {
		f.t.Fatalf("decide %+v: %v", c, err)
	}
	return d
}

func (f *fixture) want(c tollguard.Call, v tollguard.Verdict, r tollguard.Reason) tollguard.Decision {
	f.t.Helper()
	d := f.decide(c)
	if d.Verdict != v || d.Reason != r {
		f.t.Fatalf("%s dialling %s: got %s/%s, want %s/%s; steps %+v", c.Extension, c.Dialled, d.Verdict, d.Reason, v, r, d.Steps)
	}
	if v == tollguard.Deny && d.Cause != tollguard.CauseCallRejected {
		f.t.Fatalf("deny cause %d, want 21", d.Cause)
	}
	if d.CallID == 0 {
		f.t.Fatalf("decision was not recorded")
	}
	return d
}

func TestPolicy(t *testing.T) {
	allow, deny := tollguard.Allow, tollguard.Deny
	t.Run("AllowsNationalWithMaxsecAndReservation", func(t *testing.T) {
		f := newFixture(t)
		d := f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		// The default 2-hour cap at 0.01/min holds 1.20 of the 10.00.
		if d.MaxSec != 7200 || d.Reserve != 120 {
			t.Fatalf("maxsec %d reserve %d, want 7200 and 120", d.MaxSec, d.Reserve)
		}
		f.account(func(a *tollguard.Account) { a.MaxCallSecs = 0 })
		// Without a cap a call may hold all the credit that is left.
		if d := f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK); d.MaxSec != 52800 || d.Reserve != 880 {
			t.Fatalf("uncapped: maxsec %d reserve %d, want 52800 and 880", d.MaxSec, d.Reserve)
		}
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonNoCredit)
		c, err := f.db.Call(context.Background(), d.CallID)
		if err != nil || !c.Open() || c.E164 != "+442079460000" || c.Class != tollguard.ClassNational {
			t.Fatalf("recorded call %+v, %v", c, err)
		}
	})
	t.Run("CallCapTooSmallSaysSo", func(t *testing.T) {
		// The cap, not the credit, is what denies: the step says so.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.CallCap, a.NationalCeiling = 1, tollguard.NoCeiling }) // 0.01
		f.rates(map[string]string{"4420": "1.20"})
		d := f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonNoCredit)
		if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last.Detail, "the per-call cap 0.01 does not pay") || !strings.Contains(last.Detail, "--call-cap") {
			t.Errorf("step %+v", last)
		}
	})
	t.Run("CapsMaxsecByCallCapAndMaxCallSecs", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.CallCap = 50 })
		if d := f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK); d.MaxSec != 3000 || d.Reserve != 50 {
			t.Fatalf("call cap 0.50: maxsec %d reserve %d, want 3000 and 50", d.MaxSec, d.Reserve)
		}
		f.account(func(a *tollguard.Account) { a.MaxCallSecs = 600 })
		if d := f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK); d.MaxSec != 600 || d.Reserve != 10 {
			t.Fatalf("max 600s: maxsec %d reserve %d, want 600 and 10", d.MaxSec, d.Reserve)
		}
	})
	t.Run("EmergencyAlwaysAllowed", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) {
			a.Balance, a.IntlBlock, a.Whitelist, a.HoursSpec = 0, true, true, "mon 09:00-10:00"
			a.Limits = tollguard.Limits{ExtPerMinute: 1, ExtConcurrent: 1}
		})
		if _, err := f.db.Block(context.Background(), tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "admin", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		if err := f.db.AddRule(context.Background(), &tollguard.Rule{Prefix: "+9", Action: tollguard.RuleDeny}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"999", "112", "911", "999", "112"} {
			d := f.want(tollguard.Call{Dialled: n, Remote: "203.0.113.9"}, allow, tollguard.ReasonEmergency)
			if d.MaxSec != -1 {
				t.Fatalf("emergency maxsec %d, want no limit", d.MaxSec)
			}
		}
		f.want(tollguard.Call{Extension: "9999", Dialled: "999"}, allow, tollguard.ReasonEmergency)
	})
	t.Run("OnlyTheAccountsPlanNamesEmergencyNumbers", func(t *testing.T) {
		// The default country's emergency numbers are not the account's:
		// in a PBX serving several countries they can be short codes that
		// cost money (GB 100, the operator, is Belgium's fire brigade).
		f := newFixture(t)
		for _, tt := range []struct{ country, dialled string }{{"BE", "100"}, {"ZA", "10111"}, {"AT", "122"}} {
			f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: tt.country}})
			if d := f.decide(tollguard.Call{Dialled: tt.dialled}); d.Reason == tollguard.ReasonEmergency || d.Verdict != tollguard.Deny {
				t.Errorf("default country %s, GB account dialling %s: %s/%s, want a deny, not an emergency", tt.country, tt.dialled, d.Verdict, d.Reason)
			}
		}
		// The default country still numbers calls with no account.
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: "BE"}})
		f.want(tollguard.Call{Extension: "9999", Dialled: "100"}, allow, tollguard.ReasonEmergency)
	})
	t.Run("RecordedAsOfWhenPlaced", func(t *testing.T) {
		// A call recorded after it ended (the include's emergency calls)
		// carries when it was placed; a time to come is taken as now.
		f := newFixture(t)
		placed := f.now.Add(-20 * time.Minute)
		for _, tt := range []struct{ at, want time.Time }{
			{placed, placed}, {time.Time{}, f.now}, {f.now.Add(time.Hour), f.now},
		} {
			d := f.want(tollguard.Call{Dialled: "999", At: tt.at}, allow, tollguard.ReasonEmergency)
			rec, err := f.db.Call(context.Background(), d.CallID)
			if err != nil {
				t.Fatal(err)
			}
			if !rec.CreatedAt.Equal(tt.want) {
				t.Errorf("At %v: recorded at %v, want %v", tt.at, rec.CreatedAt, tt.want)
			}
		}
	})
	t.Run("EmergencyAllowedWhenStoreFails", func(t *testing.T) {
		f := newFixture(t)
		f.db.Close()
		d, err := f.p.Decide(context.Background(), tollguard.Call{Extension: "1001", Dialled: "999"})
		if err != nil || d.Verdict != allow || d.Reason != tollguard.ReasonEmergency {
			t.Fatalf("got %+v, %v", d, err)
		}
		if _, err := f.p.Decide(context.Background(), tollguard.Call{Extension: "1001", Dialled: "02079460000"}); err == nil {
			t.Fatal("a toll call with the store down must fail, so the gate fails closed")
		}
	})
	t.Run("EmergencyOfAnAccountsCountryWhenStoreFails", func(t *testing.T) {
		// Default country GB; a DE account has called since start. When
		// the store fails, 110 (DE police) is still an emergency number,
		// for that account's extension and for one the gate has not met.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "DE"} })
		if f.p.Emergency("1001", "110") {
			t.Fatal("110 is an emergency number before any DE account called: the case below proves nothing")
		}
		f.want(tollguard.Call{Dialled: "030123456"}, allow, tollguard.ReasonOK)
		if !f.p.Emergency("1001", "110") || !f.p.Emergency("9999", "110") {
			t.Error("110 not an emergency number after a DE account called")
		}
		f.db.Close()
		if d, err := f.p.Decide(context.Background(), tollguard.Call{Extension: "1001", Dialled: "110"}); err != nil || d.Reason != tollguard.ReasonEmergency {
			t.Fatalf("110 with the store down: %+v, %v", d, err)
		}
	})
	t.Run("AnotherCountrysEmergencyNumberIsNoneWhenStoreFails", func(t *testing.T) {
		// CH 1414 (Rega) is a BE premium short code. Once the BE
		// extension has called, the failure paths judge it by BE's plan,
		// as step 1 does: 1414 fails closed for it, and stays an
		// emergency number for the CH extension.
		f := newFixture(t)
		ctx := context.Background()
		for _, a := range []struct{ id, country, ext string }{{"brux", "BE", "2001"}, {"zurich", "CH", "3001"}} {
			acct, err := store.NewAccount(a.id, a.country, "EUR")
			if err != nil {
				t.Fatal(err)
			}
			acct.Balance, acct.Zone = 100000, "Europe/Zurich"
			if err := f.db.CreateAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			if err := f.db.CreateExtension(ctx, &tollguard.Extension{Name: a.ext, Account: a.id}); err != nil {
				t.Fatal(err)
			}
			f.decide(tollguard.Call{Extension: a.ext, Dialled: "1414"})
		}
		if d := f.decide(tollguard.Call{Extension: "2001", Dialled: "1414"}); d.Reason == tollguard.ReasonEmergency {
			t.Fatalf("1414 from BE: %s/%s, want no emergency", d.Verdict, d.Reason)
		}
		if f.p.Emergency("2001", "1414") || !f.p.Emergency("3001", "1414") {
			t.Errorf("Emergency(2001, 1414) %v, Emergency(3001, 1414) %v: want false, true", f.p.Emergency("2001", "1414"), f.p.Emergency("3001", "1414"))
		}
		// The default country's are always honoured (GB's 999 here): the
		// extension's entry may be stale once the store is down.
		if !f.p.Emergency("2001", "999") || !f.p.Emergency("2001", "112") {
			t.Error("the default country's emergency numbers not honoured for a BE extension")
		}
		f.db.Close()
		if d, err := f.p.Decide(ctx, tollguard.Call{Extension: "2001", Dialled: "1414"}); err == nil {
			t.Fatalf("1414 from BE with the store down: %+v, want an error (the call fails closed)", d)
		}
	})
	t.Run("ACallingCodesRowPricesItsMainRegionOnly", func(t *testing.T) {
		// The deck's "1" row (0.005, under the 0.02 ceiling) priced the
		// Bahamas and the Caymans as the US: allowed for two hours at a
		// price the carrier does not charge. Also whitelisted as "+1".
		// (Puerto Rico and the US Virgin Islands unlisted: the Bahamas
		// and the Caymans are on the default high-risk list now.)
		f := newFixture(t)
		f.want(tollguard.Call{Dialled: "0012015550123"}, allow, tollguard.ReasonOK) // US
		f.want(tollguard.Call{Dialled: "0015062345678"}, allow, tollguard.ReasonOK) // CA
		for _, num := range []string{"0017872345678", "0013407731234"} {
			d := f.want(tollguard.Call{Dialled: num}, deny, tollguard.ReasonRateCeiling)
			if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "has no rate in the rate deck") || !strings.Contains(last, "the deck's +1 row prices US and CA only") {
				t.Errorf("%s: %q", num, last)
			}
		}
		// A US number in a range newer than libphonenumber's metadata
		// (no region) is still the US's, from the US too.
		f.want(tollguard.Call{Dialled: "0019835550123"}, allow, tollguard.ReasonOK)
		f.account(func(a *tollguard.Account) { a.Plan, _ = tollguard.PlanFor("US") })
		f.want(tollguard.Call{Dialled: "19835550123"}, allow, tollguard.ReasonOK)
		f.account(func(a *tollguard.Account) { a.Plan, _ = tollguard.PlanFor("GB") })
		if err := f.db.AddRule(context.Background(), &tollguard.Rule{Prefix: "+1", Action: tollguard.RuleAllow}); err != nil {
			t.Fatal(err)
		}
		// +1 is the US's and Canada's rule: it does not whitelist the
		// Bahamas past the high-risk list (1242 is on it).
		d := f.want(tollguard.Call{Dialled: "0012423591234"}, deny, tollguard.ReasonHighRisk)
		if !slices.ContainsFunc(d.Steps, func(s tollguard.Step) bool {
			return s.Rule == "rules" && s.Detail == "allow rule +1 (global) is for US and CA, not BS (allow the region's own prefix to allow it)"
		}) {
			t.Errorf("steps %+v", d.Steps)
		}
		f.want(tollguard.Call{Dialled: "0012015550123"}, allow, tollguard.ReasonWhitelist)
		f.account(func(a *tollguard.Account) { a.Whitelist = true })
		d = f.want(tollguard.Call{Dialled: "0012423591234"}, deny, tollguard.ReasonNotWhitelisted)
		if last := d.Steps[len(d.Steps)-1].Detail; !strings.HasSuffix(last, "not on its whitelist: allow rule +1 (global) is for US and CA, not BS (allow the region's own prefix to allow it)") {
			t.Errorf("strict whitelist: %q", last)
		}
		f.account(func(a *tollguard.Account) { a.Whitelist = false })
		if err := f.db.AddRule(context.Background(), &tollguard.Rule{Prefix: "+1242", Action: tollguard.RuleAllow}); err != nil {
			t.Fatal(err)
		}
		d = f.want(tollguard.Call{Dialled: "0012423591234"}, deny, tollguard.ReasonRateCeiling)
		if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "whitelisted but has no rate") {
			t.Errorf("whitelisted: %q", last)
		}
		// A row of its own prices it, and the ceiling judges that price.
		f.rates(map[string]string{"1242": "0.015"})
		if d := f.want(tollguard.Call{Dialled: "0012423591234"}, allow, tollguard.ReasonWhitelist); d.Rate.String() != "0.015" {
			t.Errorf("rate %s", d.Rate)
		}
	})
	t.Run("EmergencyReadJudgesByTheStoredAccount", func(t *testing.T) {
		// EmergencyRead (the forged-request path's: the store is up)
		// judges by the account the store holds, without the default
		// country's numbers; an unknown extension, or the store down,
		// falls back to Emergency.
		f := newFixture(t)
		ctx := context.Background()
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: "CH"}})
		acct, err := store.NewAccount("brux", "BE", "EUR")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.CreateAccount(ctx, acct); err != nil {
			t.Fatal(err)
		}
		if err := f.db.CreateExtension(ctx, &tollguard.Extension{Name: "2001", Account: "brux"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			ext, num string
			want     bool
		}{
			{"2001", "1414", false}, // BE premium, though CH's Rega
			{"2001", "112", true},
			{"2001", "101", true},   // BE police
			{"1001", "1414", false}, // GB
			{"1001", "999", true},
			{"9999", "1414", true}, // unknown: the default country's
		} {
			if got := f.p.EmergencyRead(ctx, c.ext, c.num); got != c.want {
				t.Errorf("EmergencyRead(%s, %s) = %v, want %v", c.ext, c.num, got, c.want)
			}
		}
		f.db.Close()
		for _, num := range []string{"112", "1414", "02079460000"} {
			if got, want := f.p.EmergencyRead(ctx, "2001", num), f.p.Emergency("2001", num); got != want {
				t.Errorf("store down: EmergencyRead(2001, %s) = %v, want Emergency's %v", num, got, want)
			}
		}
	})
	t.Run("AStaleCountryStillHasTheDefaultCountrysEmergencyNumbers", func(t *testing.T) {
		// Default BE; acme was made GB by mistake and called, then was
		// corrected: with the store down, BE's 100 is still an
		// emergency number for its extension.
		f := newFixture(t)
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: "BE"}})
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		f.db.Close()
		if d, err := f.p.Decide(context.Background(), tollguard.Call{Extension: "1001", Dialled: "100"}); err != nil || d.Reason != tollguard.ReasonEmergency {
			t.Fatalf("BE 100 with the store down: %+v, %v", d, err)
		}
	})
	t.Run("LearnedCountriesBeforeAnyCall", func(t *testing.T) {
		// Right after a start no account has called: LearnCountries (the
		// daemon's, from the store) gives the failure paths every
		// account's country, and each extension's own. CH 1414 (Rega) is
		// a BE premium short code.
		f := newFixture(t)
		ctx := context.Background()
		var accts []*tollguard.Account
		var exts []*tollguard.Extension
		for _, a := range []struct{ id, country, ext string }{{"brux", "BE", "2001"}, {"zurich", "CH", "3001"}} {
			acct, err := store.NewAccount(a.id, a.country, "EUR")
			if err != nil {
				t.Fatal(err)
			}
			accts = append(accts, acct)
			exts = append(exts, &tollguard.Extension{Name: a.ext, Account: a.id})
		}
		if f.p.Emergency("3001", "1414") {
			t.Fatal("1414 an emergency number before anything was learned: the case below proves nothing")
		}
		f.p.LearnCountries(accts, exts)
		f.db.Close()
		if d, err := f.p.Decide(ctx, tollguard.Call{Extension: "3001", Dialled: "1414"}); err != nil || d.Reason != tollguard.ReasonEmergency {
			t.Errorf("CH 1414 from the CH account with the store down: %+v, %v", d, err)
		}
		if d, err := f.p.Decide(ctx, tollguard.Call{Extension: "2001", Dialled: "1414"}); err == nil {
			t.Errorf("1414 from the BE account with the store down: %+v, want an error (fail closed)", d)
		}
	})
	t.Run("LearningKeepsTheCountryOfAnExtensionTheStoreDoesNotList", func(t *testing.T) {
		// An unknown extension taken by the default account (BE), or a
		// call carrying an account code, is in no extension list:
		// only its decisions tell Emergency its country. The sweep's
		// learning must not forget it, or with the store down CH 1414
		// (a BE premium short code) goes through as an emergency call.
		f := newFixture(t)
		ctx := context.Background()
		var accts []*tollguard.Account
		for _, a := range []struct{ id, country string }{{"brux", "BE"}, {"zurich", "CH"}} {
			acct, err := store.NewAccount(a.id, a.country, "EUR")
			if err != nil {
				t.Fatal(err)
			}
			acct.Balance, acct.Zone = 100000, "Europe/Zurich"
			if err := f.db.CreateAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			accts = append(accts, acct)
		}
		f.p.AllowUnknown, f.p.DefaultAccount = true, "brux"
		f.decide(tollguard.Call{Extension: "7001", Dialled: "1414"})
		if f.p.Emergency("7001", "1414") {
			t.Fatal("CH 1414 an emergency number for a BE default-account extension before any learning: the case below proves nothing")
		}
		f.p.LearnCountries(accts, []*tollguard.Extension{{Name: "3001", Account: "zurich"}})
		if f.p.Emergency("7001", "1414") {
			t.Error("after the sweep's learning, CH 1414 is an emergency number for the BE default-account extension 7001")
		}
		f.db.Close()
		if d, err := f.p.Decide(ctx, tollguard.Call{Extension: "7001", Dialled: "1414"}); err == nil {
			t.Errorf("1414 from the BE default-account extension with the store down: %+v, want an error (fail closed)", d)
		}
	})
	t.Run("LearnedCountriesOfALargePBX", func(t *testing.T) {
		// More extensions than the decisions' cache holds: every one keeps
		// its own account's country (the map was cleared as it filled, and
		// a BE extension then got CH 1414), and a deleted account's country
		// goes at the next learning.
		f := newFixture(t)
		var accts []*tollguard.Account
		for _, a := range []struct{ id, country string }{{"brux", "BE"}, {"zurich", "CH"}} {
			acct, err := store.NewAccount(a.id, a.country, "EUR")
			if err != nil {
				t.Fatal(err)
			}
			accts = append(accts, acct)
		}
		var exts []*tollguard.Extension
		for i := range 20000 {
			exts = append(exts, &tollguard.Extension{Name: fmt.Sprintf("b%d", i), Account: "brux"})
		}
		exts = append(exts, &tollguard.Extension{Name: "3001", Account: "zurich"})
		f.p.LearnCountries(accts, exts)
		for _, e := range []string{"b0", "b9999", "b19999"} {
			if f.p.Emergency(e, "1414") {
				t.Errorf("BE extension %s: CH 1414 taken for an emergency number", e)
			}
		}
		if !f.p.Emergency("3001", "1414") {
			t.Error("CH extension 3001: 1414 not an emergency number")
		}
		f.p.LearnCountries(accts[:1], exts[:1])
		if f.p.Emergency("unknown", "1414") {
			t.Error("zurich deleted: its 1414 still an emergency number for an unknown extension")
		}
	})
	t.Run("DeniesUnknownExtension", func(t *testing.T) {
		f := newFixture(t)
		d := f.want(tollguard.Call{Extension: "2002", Dialled: "02079460000"}, deny, tollguard.ReasonUnknownExtension)
		if got := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(got, "add it with `tollguard ext add` if it is a phone") {
			t.Errorf("unknown extension: %q", got)
		}
		// No extension at all (a Local channel nothing named): the advice
		// is not to add "" to the store.
		d, err := f.p.Decide(context.Background(), tollguard.Call{Dialled: "02079460000"})
		if err != nil || d.Reason != tollguard.ReasonUnknownExtension || !strings.Contains(d.Steps[len(d.Steps)-1].Detail, "no extension named") {
			t.Errorf("no extension: %v %+v", err, d)
		}
		f.p.AllowUnknown, f.p.DefaultAccount = true, "acme"
		f.want(tollguard.Call{Extension: "2002", Dialled: "02079460000"}, allow, tollguard.ReasonOK)
	})
	t.Run("DeniesBlockedExtension", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.db.Block(context.Background(), tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "admin", Reason: "left the company"}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonBlockedExtension)
		if _, err := f.db.Unblock(context.Background(), tollguard.BlockExtension, "1001", "admin"); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
	})
	t.Run("IntlBlockOnlyInternational", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.db.Block(context.Background(), tollguard.Block{Kind: tollguard.BlockIntl, Subject: "acme", SetBy: "detector:burst", Reason: "burst"}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "0033123456789"}, deny, tollguard.ReasonIntlBlock)
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
	})
	t.Run("IPAccessList", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.db.UpdateExtension(context.Background(), "1001", func(e *tollguard.Extension) error {
			e.CIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "203.0.113.9"}, deny, tollguard.ReasonIPNotAllowed)
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "2001:db9::1"}, deny, tollguard.ReasonIPNotAllowed)
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "192.0.2.7"}, allow, tollguard.ReasonOK)
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "2001:db8::7"}, allow, tollguard.ReasonOK)
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "::ffff:192.0.2.7"}, allow, tollguard.ReasonOK)
		// A source that is no address is not a pass.
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "host.example:5060"}, deny, tollguard.ReasonIPNotAllowed)
		// A Local channel has no SIP peer to check.
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		// A transfer by another phone: the address is the transferred
		// phone's, in the call; the list holds against it.
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "192.0.2.7", Transferred: true}, allow, tollguard.ReasonOK)
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "203.0.113.9", Transferred: true}, deny, tollguard.ReasonIPNotAllowed)
		// Unless the admin wants such calls denied: forwarding set by
		// whoever knows the password would call out from anywhere.
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: "GB"}, ACLRequiresSource: true})
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonIPNotAllowed)
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "192.0.2.7"}, allow, tollguard.ReasonOK)
		// Nor is the phone that chose the number of a transfer known: a
		// stolen password on another phone transferring this one out.
		f.want(tollguard.Call{Dialled: "02079460000", Remote: "192.0.2.7", Transferred: true}, deny, tollguard.ReasonIPNotAllowed)
		f.want(tollguard.Call{Dialled: "999", Remote: "192.0.2.7", Transferred: true}, allow, tollguard.ReasonEmergency)
		f.want(tollguard.Call{Dialled: "999"}, allow, tollguard.ReasonEmergency)
		// An extension without a list is not affected.
		if _, err := f.db.UpdateExtension(context.Background(), "1001", func(e *tollguard.Extension) error {
			e.CIDRs = nil
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		// But its record still says whose address it was: the call is
		// charged to 1001, and another phone chose the number.
		d := f.want(tollguard.Call{Dialled: "02079460000", Remote: "192.0.2.7", Transferred: true}, allow, tollguard.ReasonOK)
		if i := slices.IndexFunc(d.Steps, func(s tollguard.Step) bool { return s.Rule == "ip_acl" }); i < 0 || !strings.Contains(d.Steps[i].Detail, "another phone transferred") {
			t.Errorf("a transfer to an extension without a list: steps %+v", d.Steps)
		}
	})
	t.Run("DenyRulesAndWhitelist", func(t *testing.T) {
		f := newFixture(t)
		ctx := context.Background()
		if err := f.db.AddRule(ctx, &tollguard.Rule{Prefix: "+4420", Action: tollguard.RuleDeny}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonDestinationDenied)
		f.account(func(a *tollguard.Account) { a.Whitelist = true })
		f.want(tollguard.Call{Dialled: "01614960000"}, deny, tollguard.ReasonNotWhitelisted)
		if err := f.db.AddRule(ctx, &tollguard.Rule{Account: "acme", Prefix: "+44161", Action: tollguard.RuleAllow}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "01614960000"}, allow, tollguard.ReasonWhitelist)
		// A whitelisted high-risk destination skips the class check; credit still applies.
		if err := f.db.AddRule(ctx, &tollguard.Rule{Account: "acme", Prefix: "+252", Action: tollguard.RuleAllow}); err != nil {
			t.Fatal(err)
		}
		d := f.want(tollguard.Call{Dialled: "00252612345678"}, allow, tollguard.ReasonWhitelist)
		if d.MaxSec <= 0 || d.Reserve <= 0 {
			t.Fatalf("whitelisted call must still reserve credit: %+v", d)
		}
		// A whitelist does not price: unrated, the call would be free and,
		// skipping the concurrency limits, unlimited in parallel.
		if err := f.db.AddRule(ctx, &tollguard.Rule{Account: "acme", Prefix: "+61", Action: tollguard.RuleAllow}); err != nil {
			t.Fatal(err)
		}
		d = f.want(tollguard.Call{Dialled: "0061291234567"}, deny, tollguard.ReasonRateCeiling)
		if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "whitelisted but has no rate") {
			t.Fatalf("unrated whitelisted denial says %q", last)
		}
		f.rates(map[string]string{"61": "0.02"})
		f.account(func(a *tollguard.Account) { a.Balance = 100000 }) // the +252 call holds the rest
		d = f.want(tollguard.Call{Dialled: "0061291234567"}, allow, tollguard.ReasonWhitelist)
		if d.MaxSec <= 0 || d.Reserve <= 0 {
			t.Fatalf("whitelisted call with a rate must reserve credit: %+v", d)
		}
	})
	t.Run("ClassAndCeiling", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Balance = 100000 })
		f.want(tollguard.Call{Dialled: "00252612345678"}, deny, tollguard.ReasonHighRisk)
		f.want(tollguard.Call{Dialled: "00881612345678"}, deny, tollguard.ReasonHighRisk)
		f.want(tollguard.Call{Dialled: "09061234567"}, deny, tollguard.ReasonPremium)
		f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonOK)         // 0.015 under 0.02
		f.want(tollguard.Call{Dialled: "004930123456"}, deny, tollguard.ReasonRateCeiling)  // 0.03 over 0.02
		f.want(tollguard.Call{Dialled: "07400123456"}, allow, tollguard.ReasonOK)           // 0.10 under 0.20
		f.want(tollguard.Call{Dialled: "0061291234567"}, deny, tollguard.ReasonRateCeiling) // not in the deck
		f.account(func(a *tollguard.Account) { a.InternationalCeiling = tollguard.NoCeiling })
		f.want(tollguard.Call{Dialled: "004930123456"}, allow, tollguard.ReasonOK)
	})
	t.Run("ShortCodes", func(t *testing.T) {
		f := newFixture(t)
		// Directory enquiries: libphonenumber does not know the cost, and
		// no E.164 form means the deck's +44 (or +441, Reading's +44118)
		// must not price it.
		for _, dialled := range []string{"118118", "118 500"} {
			d := f.want(tollguard.Call{Dialled: dialled}, deny, tollguard.ReasonRateCeiling)
			if d.Number.E164 != "" || !strings.Contains(d.Steps[len(d.Steps)-1].Detail, "GB short code of unknown cost") {
				t.Fatalf("%s: number %+v, steps %+v", dialled, d.Number, d.Steps)
			}
		}
		f.rates(map[string]string{"441": "0.01", "44118": "0.01"})
		f.want(tollguard.Call{Dialled: "118118"}, deny, tollguard.ReasonRateCeiling)
		// Free ones (Samaritans) go through at no charge.
		if d := f.want(tollguard.Call{Dialled: "116123"}, allow, tollguard.ReasonOK); d.Rate != 0 || d.Reserve != 0 {
			t.Fatalf("free short code: rate %s reserve %d", d.Rate, d.Reserve)
		}
		// As short as an extension, but operators the trunk would dial:
		// GB 100 and 155 (international) connect calls at their rates.
		for _, dialled := range []string{"100", "155"} {
			f.want(tollguard.Call{Dialled: dialled}, deny, tollguard.ReasonRateCeiling)
		}
		// Even when it is one of the account's extensions: a gate that
		// sees only trunk routes sees 100 bound for the trunk.
		if err := f.db.CreateExtension(context.Background(), &tollguard.Extension{Name: "100", Account: "acme"}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "100"}, deny, tollguard.ReasonRateCeiling)
		// Unless the dialplan gates internal calls too; extension-like
		// digits that are no short code stay internal.
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: f.p.DefaultPlan, InternalCallsGated: true})
		for _, dialled := range []string{"100", "2001"} {
			if d := f.want(tollguard.Call{Dialled: dialled}, allow, tollguard.ReasonOK); d.Number.Class != tollguard.ClassInternal || d.Reserve != 0 {
				t.Fatalf("%s: %+v reserving %d, want internal and free", dialled, d.Number, d.Reserve)
			}
		}
		// Not another account's extension: that tenant's "155" is
		// nothing to this one.
		if err := f.db.CreateAccount(context.Background(), mustAccount(t, "other")); err != nil {
			t.Fatal(err)
		}
		if err := f.db.CreateExtension(context.Background(), &tollguard.Extension{Name: "155", Account: "other"}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "155"}, deny, tollguard.ReasonRateCeiling)
		// One the admin lists as free goes through free.
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: "GB"}, FreeShortCodes: []string{"155"}})
		if d := f.want(tollguard.Call{Dialled: "155"}, allow, tollguard.ReasonOK); d.Number.Class != tollguard.ClassInternal || d.Reserve != 0 {
			t.Fatalf("listed free: %+v reserving %d", d.Number, d.Reserve)
		}
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: "GB"}, SelftestNumber: "0099999999999"})
		// Premium ones are premium.
		f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "FR"} })
		f.want(tollguard.Call{Dialled: "118712"}, deny, tollguard.ReasonPremium)
		f.want(tollguard.Call{Dialled: "3949"}, deny, tollguard.ReasonPremium)
	})
	t.Run("NationalNumbersAsShortAsExtensions", func(t *testing.T) {
		// An Andorran PBX with 6-digit extensions: 912345 is a premium
		// number there, not an extension, and passed as a free internal
		// call with no limit.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "AD", InternalMaxLen: 6} })
		f.want(tollguard.Call{Dialled: "912345"}, deny, tollguard.ReasonPremium)
		f.want(tollguard.Call{Dialled: "200200"}, allow, tollguard.ReasonOK) // no number there: internal
		// An extension of the account of that name, where the dialplan
		// gates internal calls too, is the extension.
		if err := f.db.CreateExtension(context.Background(), &tollguard.Extension{Name: "912345", Account: "acme"}); err != nil {
			t.Fatal(err)
		}
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: f.p.DefaultPlan, InternalCallsGated: true})
		if d := f.want(tollguard.Call{Dialled: "912345"}, allow, tollguard.ReasonOK); d.Number.Class != tollguard.ClassInternal || d.Reserve != 0 {
			t.Fatalf("extension 912345: %+v reserving %d, want internal and free", d.Number, d.Reserve)
		}
	})
	t.Run("AfterHours", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.HoursSpec = "mon-fri 09:00-17:30" })
		f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonOK)
		f.now = time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC) // Saturday
		f.want(tollguard.Call{Dialled: "0033123456789"}, deny, tollguard.ReasonAfterHours)
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		// 17:45 London in summer is 16:45 UTC: closed by local time.
		f.now = time.Date(2026, 7, 3, 16, 45, 0, 0, time.UTC)
		f.want(tollguard.Call{Dialled: "0033123456789"}, deny, tollguard.ReasonAfterHours)
	})
	t.Run("AGraceAsLongAsTheNightStillEndsTheCall", func(t *testing.T) {
		// 12 h nights and a 12 h grace bridge every break: the call
		// still ends 12 h after this evening's close, not a day later.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.HoursSpec, a.MaxCallSecs, a.Balance = "daily 08:00-20:00", 0, 1_000_000 })
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: f.p.DefaultPlan, AfterHoursGrace: 12 * time.Hour})
		f.now = time.Date(2026, 11, 20, 19, 0, 0, 0, time.UTC)
		if d := f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonOK); d.MaxSec != 13*3600 {
			t.Errorf("MAXSEC %d, want %d (the close at 20:00 plus 12 h)", d.MaxSec, 13*3600)
		}
	})
	t.Run("TheCloseInARepeatedHour", func(t *testing.T) {
		// New York's second 01:15 on its fall-back night: the 01:30
		// close was read as the first 01:30, so none was found and an
		// international call was allowed for two hours.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Zone, a.HoursSpec = "America/New_York", "daily 00:00-01:30" })
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: f.p.DefaultPlan})
		f.now = time.Date(2026, 11, 1, 6, 15, 0, 0, time.UTC)
		if d := f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonOK); d.MaxSec != 900 {
			t.Errorf("MAXSEC %d, want 900 (to the second 01:30)", d.MaxSec)
		}
	})
	t.Run("HolidaysAloneClose", func(t *testing.T) {
		// No hours (always open) but a holiday: closed on it, and a call
		// the evening before ends at midnight plus the grace.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Holidays = []string{"12-25"} })
		f.now = time.Date(2026, 12, 25, 14, 0, 0, 0, time.UTC)
		d := f.want(tollguard.Call{Dialled: "0033123456789"}, deny, tollguard.ReasonAfterHours)
		// The explanation names the holiday (it said "outside business
		// hours ()" for a schedule with no hours).
		if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "on a holiday (2026-12-25") {
			t.Errorf("holiday deny explained as %q", last)
		}
		f.now = time.Date(2026, 12, 24, 23, 50, 0, 0, time.UTC)
		if d := f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonOK); d.MaxSec != 600 {
			t.Errorf("the evening before: MAXSEC %d, want 600 (to midnight, no grace)", d.MaxSec)
		}
	})
	t.Run("AfterHoursClassesEndAtTheClose", func(t *testing.T) {
		// An international call started at 17:29 must not run through
		// the night: its MAXSEC ends at the close, plus the grace.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.HoursSpec = "mon-fri 09:00-17:30" })
		f.now = time.Date(2026, 11, 20, 17, 29, 0, 0, time.UTC)
		if d := f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonOK); d.MaxSec != 60 {
			t.Errorf("international at 17:29, no grace: MAXSEC %d, want 60", d.MaxSec)
		}
		f.p.Configure(tollguard.PolicySettings{DefaultPlan: f.p.DefaultPlan, AfterHoursGrace: 15 * time.Minute})
		if d := f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonOK); d.MaxSec != 960 {
			t.Errorf("international at 17:29, 15m grace: MAXSEC %d, want 960", d.MaxSec)
		}
		if d := f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK); d.MaxSec <= 960 {
			t.Errorf("national at 17:29: MAXSEC %d, want the account's limit, not the close", d.MaxSec)
		}
		if err := f.db.AddRule(context.Background(), &tollguard.Rule{Prefix: "+33", Action: tollguard.RuleAllow, Account: "acme"}); err != nil {
			t.Fatal(err)
		}
		if d := f.want(tollguard.Call{Dialled: "0033123456789"}, allow, tollguard.ReasonWhitelist); d.MaxSec <= 960 {
			t.Errorf("whitelisted international at 17:29: MAXSEC %d, want the schedule skipped", d.MaxSec)
		}
		// A free call closed after hours on a schedule open for days
		// still ends within the day every call is held to.
		f.account(func(a *tollguard.Account) {
			a.HoursSpec, a.MaxCallSecs = "mon-fri 00:00-24:00", 0
			a.AfterHours = append(a.AfterHours, tollguard.ClassTollFree)
		})
		f.now = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) // Monday
		if d := f.want(tollguard.Call{Dialled: "08001234567"}, allow, tollguard.ReasonOK); d.MaxSec < 1 || d.MaxSec > tollguard.MaxCallSecsLimit {
			t.Errorf("free call on Monday morning, open until Saturday: MAXSEC %d, want at most %d", d.MaxSec, tollguard.MaxCallSecsLimit)
		}
	})
	t.Run("RateLimits", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Limits.ExtPerMinute = 2 })
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonRateLimit)
		f.now = f.now.Add(61 * time.Second)
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		f.account(func(a *tollguard.Account) { a.Limits = tollguard.Limits{AcctPerHour: 4} })
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonRateLimit)
	})
	t.Run("Concurrency", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Limits.ExtConcurrent = 1 })
		d := f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonConcurrency)
		if _, err := f.p.Settle(context.Background(), tollguard.Settlement{CallID: d.CallID, Billsec: 30}); err != nil {
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
	})
	t.Run("EmergencyCallsDoNotUseTheLimits", func(t *testing.T) {
		// A caller who just rang 999 (still on it, or done) is not
		// refused the next ordinary call for it: emergency calls are
		// recorded but count neither as attempts nor as calls up. Before,
		// 999 then a national number was denied concurrency, then
		// rate_limit.
		f := newFixture(t)
		f.account(func(a *tollguard.Account) {
			a.Limits = tollguard.Limits{ExtPerMinute: 1, ExtConcurrent: 1, AcctPerMinute: 1, AcctConcurrent: 1}
		})
		f.want(tollguard.Call{Dialled: "999"}, allow, tollguard.ReasonEmergency)
		f.want(tollguard.Call{Dialled: "999"}, allow, tollguard.ReasonEmergency) // never refused either
		d := f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
		// The limits still hold for ordinary calls.
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonRateLimit)
		f.now = f.now.Add(61 * time.Second)
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonConcurrency)
		if _, err := f.p.Settle(context.Background(), tollguard.Settlement{CallID: d.CallID, Billsec: 30}); err != nil {
			t.Fatal(err)
		}
		// The first 999 call is still up, and another starts: neither
		// takes the one slot.
		f.now = f.now.Add(61 * time.Second)
		f.want(tollguard.Call{Dialled: "999"}, allow, tollguard.ReasonEmergency)
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
	})
	t.Run("NoCredit", func(t *testing.T) {
		f := newFixture(t)
		f.account(func(a *tollguard.Account) { a.Balance = 0 })
		f.want(tollguard.Call{Dialled: "02079460000"}, deny, tollguard.ReasonNoCredit)
		// Free numbers need no credit.
		d := f.want(tollguard.Call{Dialled: "08001234567"}, allow, tollguard.ReasonOK)
		if d.MaxSec != 7200 || d.Reserve != 0 {
			t.Fatalf("free call: maxsec %d reserve %d, want the 7200 s cap and nothing reserved", d.MaxSec, d.Reserve)
		}
		f.account(func(a *tollguard.Account) { a.CreditLimit = 100 })
		f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)
	})
	t.Run("Selftest", func(t *testing.T) {
		f := newFixture(t)
		f.want(tollguard.Call{Dialled: "0099999999999"}, deny, tollguard.ReasonSelftest)
	})
	// Steps 4 and 7 are listed as skipped when they do not apply, so a
	// dry run shows every step of the order.
	t.Run("ExplainListsSkippedSteps", func(t *testing.T) {
		f := newFixture(t)
		skipped := func(d tollguard.Decision) map[string]string {
			m := map[string]string{}
			for _, s := range d.Steps {
				if s.Result == "skip" {
					m[s.Rule] = s.Detail
				}
			}
			return m
		}
		d, err := f.p.Explain(context.Background(), tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.7"})
		if err != nil || d.Verdict != allow {
			t.Fatalf("explain: %+v %v", d, err)
		}
		got := skipped(d)
		if got["ip_acl"] != "extension 1001 has no IP access list" || got["hours"] != "account acme has no business hours or holidays set" {
			t.Fatalf("skipped steps %q; steps %+v", got, d.Steps)
		}
		f.account(func(a *tollguard.Account) { a.HoursSpec, a.AfterHours = "Mon-Fri 09:00-17:00", nil })
		d, _ = f.p.Explain(context.Background(), tollguard.Call{Extension: "1001", Dialled: "02079460000"})
		if got := skipped(d)["hours"]; got != "account acme closes no class outside business hours" {
			t.Fatalf("hours step %q; steps %+v", got, d.Steps)
		}
		f.account(func(a *tollguard.Account) { a.AfterHours = []tollguard.Class{tollguard.ClassInternational} })
		d, _ = f.p.Explain(context.Background(), tollguard.Call{Extension: "1001", Dialled: "02079460000"})
		if _, ok := skipped(d)["hours"]; ok {
			t.Fatalf("hours skipped with a schedule: %+v", d.Steps)
		}
	})
	t.Run("ExplainRecordsNothing", func(t *testing.T) {
		f := newFixture(t)
		d, err := f.p.Explain(context.Background(), tollguard.Call{Extension: "1001", Dialled: "00252612345678"})
		if err != nil || d.Verdict != deny || d.Reason != tollguard.ReasonHighRisk || d.CallID != 0 || len(d.Steps) < 3 {
			t.Fatalf("explain: %+v %v", d, err)
		}
		cs, _ := f.db.Calls(context.Background(), store.CallFilter{})
		if len(cs) != 0 {
			t.Fatalf("explain recorded %d calls", len(cs))
		}
	})
}

func TestSettle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := f.want(tollguard.Call{Dialled: "07400123456"}, tollguard.Allow, tollguard.ReasonOK) // 0.10/min
	changed, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 61, DialStatus: "ANSWER", By: "agi"})
	if err != nil || !changed {
		t.Fatalf("settle: %v %v", changed, err)
	}
	// 61 s at 0.10/min = 10.17p, rounded up to 11p.
	c, _ := f.db.Call(ctx, d.CallID)
	if c.Charge != 11 || c.Billsec != 61 || c.Open() {
		t.Fatalf("settled call %+v", c)
	}
	cr, _ := f.db.CreditOf(ctx, "acme")
	if cr.Balance != 989 || cr.Reserved != 0 {
		t.Fatalf("credit after settle %+v", cr)
	}
	// Settling again changes nothing.
	changed, err = f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 600, By: "ari"})
	if err != nil || changed {
		t.Fatalf("second settle changed=%v err=%v", changed, err)
	}
	if cr2, _ := f.db.CreditOf(ctx, "acme"); cr2.Balance != 989 {
		t.Fatalf("second settle charged again: %+v", cr2)
	}
	// A call past its limit is charged its reservation only.
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 60 })
	d = f.want(tollguard.Call{Dialled: "07400123456"}, tollguard.Allow, tollguard.ReasonOK)
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 7200}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.Charge != d.Reserve {
		t.Fatalf("over-long call charged %d, want its reservation %d", c.Charge, d.Reserve)
	}
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: 999999}); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatalf("unknown call: %v", err)
	}
	// The channel's own answered time (CDR(billsec): a DISA line answered
	// 5 minutes before the gate, its caller gone before the Dial) is
	// capped at the time since the decision; other seconds are not.
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600 })
	d = f.want(tollguard.Call{Dialled: "07400123456"}, tollguard.Allow, tollguard.ReasonOK)
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 305, By: "agi", At: f.now.Add(4500 * time.Millisecond), SinceDecision: true}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.Billsec != 5 {
		t.Fatalf("the channel's own 305 s billed as %d s, want the 5 s since the decision", c.Billsec)
	}
	d = f.want(tollguard.Call{Dialled: "07400123456"}, tollguard.Allow, tollguard.ReasonOK)
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 305, By: "agi", At: f.now.Add(5 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.Billsec != 305 {
		t.Fatalf("a Dial's answered 305 s billed as %d s", c.Billsec)
	}
	// A clock stepped back past the decision bounds nothing (it made the
	// cap 0 s).
	d = f.want(tollguard.Call{Dialled: "07400123456"}, tollguard.Allow, tollguard.ReasonOK)
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 305, By: "agi", At: f.now.Add(-time.Minute), SinceDecision: true}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.Billsec != 305 {
		t.Fatalf("settled with the clock stepped back: %d s, want the 305 s reported", c.Billsec)
	}
	// Settling a denied call is a no-op.
	dd := f.want(tollguard.Call{Dialled: "00252612345678"}, tollguard.Deny, tollguard.ReasonHighRisk)
	if changed, err := f.p.Settle(ctx, tollguard.Settlement{CallID: dd.CallID, Billsec: 60}); err != nil || changed {
		t.Fatalf("settling a denied call: %v %v", changed, err)
	}
}

// TestParallelCreditNeverOverspends runs 200 call attempts on one
// account at once: the reservations they hold, and then what they are
// charged, must never exceed the balance.
func TestParallelCreditNeverOverspends(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.Balance = 500; a.CallCap = 7 }) // 5.00; each call may reserve 7p
	const n = 200
	var wg sync.WaitGroup
	ds := make([]tollguard.Decision, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds[i], errs[i] = f.p.Decide(ctx, tollguard.Call{Extension: "1001", Dialled: "07400123456"})
		}()
	}
	wg.Wait()
	var reserved tollguard.Amount
	allowed := 0
	for i, d := range ds {
		if errs[i] != nil {
			t.Fatalf("attempt %d: %v (parallel decisions must not fail with 'database is locked')", i, errs[i])
		}
		switch {
		case d.Verdict == tollguard.Allow:
			allowed++
			reserved += d.Reserve
		case d.Reason != tollguard.ReasonNoCredit:
			t.Fatalf("attempt %d denied for %s", i, d.Reason)
		}
	}
	if reserved > 500 {
		t.Fatalf("%d calls reserved %d, more than the balance of 500", allowed, reserved)
	}
	// 71 calls of 7p, then one of 3p for what is left.
	if allowed != 72 || reserved != 500 {
		t.Fatalf("allowed %d calls reserving %d on 5.00 with a 7p cap, want 72 reserving 500", allowed, reserved)
	}
	// Settle them all at once, each at its full MAXSEC.
	for _, d := range ds {
		if d.Verdict != tollguard.Allow {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: d.MaxSec + 30, By: "agi"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	cr, err := f.db.CreditOf(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if cr.Balance < 0 || cr.Reserved != 0 || cr.OpenCalls != 0 {
		t.Fatalf("after settling: %+v", cr)
	}
	if spent := 500 - cr.Balance; spent != reserved {
		t.Fatalf("charged %d in all, want the %d reserved", spent, reserved)
	}
}

// TestParallelRateLimit: parallel attempts cannot slip past a limit,
// in either tally: the phones' own calls (with a source address) and
// forwarded or originated ones (without).
func TestParallelRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits tollguard.Limits
	}{
		{"Extension", tollguard.Limits{ExtPerMinute: 10}},
		{"Account", tollguard.Limits{AcctPerMinute: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.db.CreateExtension(context.Background(), &tollguard.Extension{Name: "1002", Account: "acme"}); err != nil {
				t.Fatal(err)
			}
			f.account(func(a *tollguard.Account) { a.Limits = tc.limits; a.Balance = 1_000_000 })
			var wg sync.WaitGroup
			var mu sync.Mutex
			allowed := map[string]int{}
			for i := range 120 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Half the calls come from the phone, half are forwarded
					// legs; with an account limit, of two extensions.
					c := tollguard.Call{Extension: "1001", Dialled: "02079460000"}
					if i%2 == 0 {
						c.Remote = "192.0.2.7"
					}
					if tc.limits.AcctPerMinute > 0 && i%4 >= 2 {
						c.Extension = "1002"
					}
					d, err := f.p.Decide(context.Background(), c)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed() {
						mu.Lock()
						allowed[tollguard.TallyOf(c.Remote).String()]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for _, tally := range []tollguard.Tally{tollguard.TallySourced, tollguard.TallyNoSource} {
				if n := allowed[tally.String()]; n != 10 {
					t.Errorf("%d %s allowed with a limit of 10 per minute", n, tally)
				}
			}
		})
	}
}

// TestForwardedLegsHaveTheirOwnAttemptTally: calls with no source
// address (an inbound call forwarded or followed out, an originate) are
// checked against and counted in a tally of their own. Counted with the
// phone's calls, anyone who rang a number forwarded to an outside one as
// often as its hourly limit kept the phone (or, with account limits,
// every phone of the account) from calling out for the hour.
func TestForwardedLegsHaveTheirOwnAttemptTally(t *testing.T) {
	const phone = "192.0.2.7"
	call := func(ext, remote string) tollguard.Call {
		return tollguard.Call{Extension: ext, Dialled: "02079460000", Remote: remote}
	}
	last := func(d tollguard.Decision) string { return d.Steps[len(d.Steps)-1].Detail }
	for _, tc := range []struct {
		name   string
		limits tollguard.Limits
		// the extension making the calls that use the limit up, and
		// the one calling after
		first, then string
		who         string
	}{
		{"Extension", tollguard.Limits{ExtPerHour: 3}, "1001", "1001", "extension 1001"},
		{"Account", tollguard.Limits{AcctPerHour: 3}, "1002", "1001", "account acme"},
	} {
		t.Run(tc.name+"ForwardedLegsDoNotLockThePhoneOut", func(t *testing.T) {
			f := newFixture(t)
			if err := f.db.CreateExtension(context.Background(), &tollguard.Extension{Name: "1002", Account: "acme"}); err != nil {
				t.Fatal(err)
			}
			f.account(func(a *tollguard.Account) { a.Limits = tc.limits; a.Balance = 1_000_000 })
			for i := range 3 {
				d := f.want(call(tc.first, ""), tollguard.Allow, tollguard.ReasonOK)
				want := fmt.Sprintf("counted among forwarded or originated calls (no source address): %s: %d in the last hour (limit 3, %d more after this call)", tc.who, i, 2-i)
				if got := d.Steps[len(d.Steps)-2].Detail; !strings.Contains(got, want) {
					t.Errorf("forwarded call %d explained as %q, want %q", i+1, got, want)
				}
				f.now = f.now.Add(time.Minute)
			}
			d := f.want(call(tc.then, phone), tollguard.Allow, tollguard.ReasonOK)
			want := "counted among calls from phones (with a source address): " + tc.who + ": 0 in the last hour (limit 3, 2 more after this call)"
			if got := d.Steps[len(d.Steps)-2].Detail; !strings.Contains(got, want) {
				t.Errorf("the phone's call explained as %q, want %q", got, want)
			}
			d = f.want(call(tc.first, ""), tollguard.Deny, tollguard.ReasonRateLimit)
			want = tc.who + ": 3 forwarded or originated calls (no source address) in the last hour (limit 3); calls from its phones are counted apart"
			if got := last(d); got != want {
				t.Errorf("the fourth forwarded call denied as %q, want %q", got, want)
			}
			// The denial was an attempt of its tally, not the phone's.
			f.want(call(tc.then, phone), tollguard.Allow, tollguard.ReasonOK)
			f.want(call(tc.then, phone), tollguard.Allow, tollguard.ReasonOK)
			d = f.want(call(tc.then, phone), tollguard.Deny, tollguard.ReasonRateLimit)
			want = tc.who + ": 3 calls from phones (with a source address) in the last hour (limit 3)"
			if got := last(d); got != want {
				t.Errorf("the phone's fourth call denied as %q, want %q", got, want)
			}
			// Over an hour on, both tallies have aged out.
			f.now = f.now.Add(time.Hour + time.Second)
			f.want(call(tc.first, ""), tollguard.Allow, tollguard.ReasonOK)
			f.want(call(tc.then, phone), tollguard.Allow, tollguard.ReasonOK)
		})
		t.Run(tc.name+"ThePhoneDoesNotStopForwarding", func(t *testing.T) {
			f := newFixture(t)
			if err := f.db.CreateExtension(context.Background(), &tollguard.Extension{Name: "1002", Account: "acme"}); err != nil {
				t.Fatal(err)
			}
			f.account(func(a *tollguard.Account) { a.Limits = tc.limits; a.Balance = 1_000_000 })
			for range 3 {
				f.want(call(tc.then, phone), tollguard.Allow, tollguard.ReasonOK)
			}
			f.want(call(tc.then, "2001:db8::7"), tollguard.Deny, tollguard.ReasonRateLimit) // another address, the same tally
			for range 3 {
				f.want(call(tc.first, ""), tollguard.Allow, tollguard.ReasonOK)
			}
			f.want(call(tc.first, ""), tollguard.Deny, tollguard.ReasonRateLimit)
			f.want(call(tc.then, phone), tollguard.Deny, tollguard.ReasonRateLimit)
		})
	}
}

func TestSweep(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 120 })
	lost := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-1.1"}, tollguard.Allow, tollguard.ReasonOK)
	gone := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-1.2"}, tollguard.Allow, tollguard.ReasonOK)
	live := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-1.3"}, tollguard.Allow, tollguard.ReasonOK)
	f.now = f.now.Add(60 * time.Second)
	alive := func(ctx context.Context, c *tollguard.CallRecord) (bool, bool, error) {
		switch c.UniqueID {
		case "pbx-1.2":
			return false, true, nil
		case "pbx-1.3":
			return true, true, nil
		}
		return false, false, nil // ARI cannot tell
	}
	var hungUp []int64
	hangup := func(ctx context.Context, c *tollguard.CallRecord) error {
		hungUp = append(hungUp, c.ID)
		return nil
	}
	// Seen gone the first time: left to the ARI listener, which knows
	// its answer, until a later sweep finds it gone still.
	r, err := f.p.Sweep(ctx, f.db, alive, hangup, 30*time.Second)
	if err != nil || r.SettledGone != 0 || r.GoneWaiting != 1 || r.StillRunning != 1 || len(hungUp) != 0 {
		t.Fatalf("first sweep %+v %v (hung up %v)", r, err, hungUp)
	}
	f.now = f.now.Add(30 * time.Second)
	r, err = f.p.Sweep(ctx, f.db, alive, hangup, 30*time.Second)
	if err != nil || r.SettledGone != 1 || r.GoneWaiting != 0 || r.SettledFull != 0 || r.StillRunning != 1 || len(r.Overran) != 0 || len(hungUp) != 0 {
		t.Fatalf("second sweep %+v %v (hung up %v)", r, err, hungUp)
	}
	if c, _ := f.db.Call(ctx, gone.CallID); c.Open() || c.Billsec != 60 || c.SettledBy != "sweep:gone" { // gone by its first sighting, at 60 s
		t.Fatalf("gone call %+v", c)
	}
	f.now = f.now.Add(61 * time.Second) // 151 s: past MAXSEC 120 + 30 s grace
	if r, err = f.p.Sweep(ctx, f.db, alive, hangup, 30*time.Second); err != nil || r.SettledFull != 1 {
		t.Fatalf("third sweep %+v %v", r, err)
	}
	// The live call is past its MAXSEC + grace too: TIMEOUT(absolute)
	// did not end it, so the sweep hangs it up, and leaves it open for
	// its hangup to settle at its real length.
	if len(r.Overran) != 1 || r.Overran[0].Call.ID != live.CallID || !r.Overran[0].HungUp ||
		len(hungUp) != 1 || hungUp[0] != live.CallID {
		t.Fatalf("overrun: %+v, hung up %v; want call %d hung up", r.Overran, hungUp, live.CallID)
	}
	if c, _ := f.db.Call(ctx, lost.CallID); c.Open() || c.Charge != lost.Reserve {
		t.Fatalf("lost call charged %d, want its full reservation %d", c.Charge, lost.Reserve)
	}
	if c, _ := f.db.Call(ctx, live.CallID); !c.Open() {
		t.Fatal("a call Asterisk still carries must stay open")
	}
	// A failed hangup is reported, and tried again at the next sweep.
	failed := errors.New("ARI down")
	r, err = f.p.Sweep(ctx, f.db, alive, func(context.Context, *tollguard.CallRecord) error { return failed }, 30*time.Second)
	if err != nil || len(r.Overran) != 1 || r.Overran[0].HungUp || !errors.Is(r.Overran[0].Err, failed) {
		t.Fatalf("failed hangup: %+v %v", r, err)
	}
}

// TestSweepGoneWaitSurvivesAFailedCheck: ARI failing to say between two
// sightings restarted the wait, so a gone call alternating with failed
// checks was never settled as gone, and fell to its full reservation.
// The charge runs to its first sighting, not to the sweep that settles.
func TestSweepGoneWaitSurvivesAFailedCheck(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600 })
	d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-3.1"}, tollguard.Allow, tollguard.ReasonOK)
	answers := []error{nil, errors.New("ARI timed out"), nil}
	asked := 0
	alive := func(ctx context.Context, c *tollguard.CallRecord) (bool, bool, error) {
		err := answers[asked]
		asked++
		return false, err == nil, err
	}
	f.now = f.now.Add(40 * time.Second)
	for i := range answers {
		r, err := f.p.Sweep(ctx, f.db, alive, nil, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if settled := r.SettledGone == 1; settled != (i == 2) {
			t.Fatalf("sweep %d: %+v", i+1, r)
		}
		f.now = f.now.Add(20 * time.Second)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.SettledBy != "sweep:gone" || c.Billsec != 40 {
		t.Fatalf("call %+v, want settled as gone at its first sighting, 40 s", c)
	}
}

// TestSweepForgetsSettledCalls: the sweep's first sightings kept every
// call settled since (by the sweep or by its hangup request during the
// wait) for the life of the process.
func TestSweepForgetsSettledCalls(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600; a.Balance = 1_000_000 })
	var ids []int64
	for i := range 10 {
		ids = append(ids, f.want(tollguard.Call{Dialled: "07400123456", UniqueID: fmt.Sprint("pbx-4.", i)}, tollguard.Allow, tollguard.ReasonOK).CallID)
	}
	gone := func(ctx context.Context, c *tollguard.CallRecord) (bool, bool, error) { return false, true, nil }
	f.now = f.now.Add(10 * time.Second)
	if r, err := f.p.Sweep(ctx, f.db, gone, nil, 30*time.Second); err != nil || r.GoneWaiting != 10 || tollguard.SweepSightings(f.p) != 10 {
		t.Fatalf("first sweep %+v %v, %d sightings", r, err, tollguard.SweepSightings(f.p))
	}
	for _, id := range ids[:5] { // their hangup requests come during the wait
		if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: id, Billsec: 5, By: "agi"}); err != nil {
			t.Fatal(err)
		}
	}
	f.now = f.now.Add(time.Minute)
	if r, err := f.p.Sweep(ctx, f.db, gone, nil, 30*time.Second); err != nil || r.SettledGone != 5 {
		t.Fatalf("second sweep %+v %v", r, err)
	}
	if n := tollguard.SweepSightings(f.p); n != 0 {
		t.Errorf("%d sightings kept with no call open", n)
	}
}

// TestSweepCountsOnlyWhatItSettled: a hangup request that settles a
// call while the sweep looks at it wins, and the sweep does not count
// (or warn about) a settlement it did not make.
func TestSweepCountsOnlyWhatItSettled(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-2.1"}, tollguard.Allow, tollguard.ReasonOK)
	f.now = f.now.Add(90 * time.Second)
	asked := 0
	alive := func(ctx context.Context, c *tollguard.CallRecord) (bool, bool, error) {
		// The hangup request lands while ARI is asked, the second time:
		// the first found it gone and waited.
		if asked++; asked == 2 {
			if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: c.ID, Billsec: 80, By: "agi"}); err != nil {
				t.Fatal(err)
			}
		}
		return false, true, nil
	}
	if r, err := f.p.Sweep(ctx, f.db, alive, nil, 30*time.Second); err != nil || r.GoneWaiting != 1 {
		t.Fatalf("first sweep %+v %v: want the call waiting", r, err)
	}
	f.now = f.now.Add(time.Minute)
	r, err := f.p.Sweep(ctx, f.db, alive, nil, 30*time.Second)
	if err != nil || r.SettledGone != 0 || asked != 2 {
		t.Fatalf("sweep %+v %v (asked %d): want nothing settled by it", r, err, asked)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.SettledBy != "agi" || c.Billsec != 80 {
		t.Fatalf("call %+v, want the hangup request's settlement", c)
	}
}

// TestNoCapStillLimitsACall: an account with no call cap and a large
// balance gets a day at most per call. Before, MAXSEC came out at 1.2e10
// s, the sweep's Duration overflowed to a negative limit, and the first
// sweep charged the call its whole reservation: the whole balance.
func TestNoCapStillLimitsACall(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) {
		a.MaxCallSecs, a.Balance, a.InternationalCeiling = 0, 100_000_000, tollguard.NoCeiling // 1,000,000.00
	})
	d := f.want(tollguard.Call{Dialled: "0012125550123", UniqueID: "pbx-9.1"}, tollguard.Allow, tollguard.ReasonOK)
	if d.MaxSec != tollguard.MaxCallSecsLimit {
		t.Fatalf("MAXSEC %d with no cap; want the %d s limit", d.MaxSec, tollguard.MaxCallSecsLimit)
	}
	if d.Reserve != tollguard.Cost(5000, tollguard.Billing{}, tollguard.MaxCallSecsLimit, 2) {
		t.Fatalf("reserved %d; want a day at 0.005/min", d.Reserve)
	}
	// A free destination on an account capped past the limit (a row
	// from before it) is held to it too.
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 10 * tollguard.MaxCallSecsLimit })
	if d := f.want(tollguard.Call{Dialled: "08001234567", UniqueID: "pbx-9.2"}, tollguard.Allow, tollguard.ReasonOK); d.MaxSec != tollguard.MaxCallSecsLimit {
		t.Fatalf("free call MAXSEC %d; want %d", d.MaxSec, tollguard.MaxCallSecsLimit)
	}
	f.now = f.now.Add(2 * time.Minute)
	if r, err := f.p.Sweep(ctx, f.db, nil, nil, 2*time.Minute); err != nil || r.SettledFull != 0 {
		t.Fatalf("sweep after 2 min: %+v %v", r, err)
	}
	// Calls decided before the limit may carry any MAXSEC: the sweep
	// must not overflow on them, and holds them to the day too.
	old := &tollguard.CallRecord{ID: 1, UniqueID: "old", CreatedAt: f.now.Add(-2 * time.Minute), MaxSec: 12_000_000_000}
	alive := func(context.Context, *tollguard.CallRecord) (bool, bool, error) { return true, true, nil }
	var hung []int64
	hangup := func(_ context.Context, c *tollguard.CallRecord) error {
		hung = append(hung, c.MaxSec)
		return nil
	}
	if r, err := f.p.Sweep(ctx, openCalls{old}, alive, hangup, 2*time.Minute); err != nil || len(r.Overran) != 0 || r.StillRunning != 1 || len(hung) != 0 {
		t.Fatalf("sweep of a call with MAXSEC 1.2e10 after 2 min: %+v %v, hung up %v", r, err, hung)
	}
	old.CreatedAt = f.now.Add(-tollguard.MaxCallSecsLimit*time.Second - 3*time.Minute)
	if r, err := f.p.Sweep(ctx, openCalls{old}, alive, hangup, 2*time.Minute); err != nil || len(r.Overran) != 1 || len(hung) != 1 {
		t.Fatalf("sweep of a call with MAXSEC 1.2e10 after a day: %+v %v, hung up %v", r, err, hung)
	}
	// Without ARI it is settled at the day it had, not its MAXSEC.
	settled := &settleRecorder{GateStore: f.db}
	p := &tollguard.Policy{Now: f.p.Now, Store: settled, DefaultPlan: f.p.DefaultPlan, Logger: f.p.Logger}
	if r, err := p.Sweep(ctx, openCalls{old}, nil, nil, 2*time.Minute); err != nil || r.SettledFull != 1 ||
		len(settled.got) != 1 || settled.got[0].Billsec != tollguard.MaxCallSecsLimit+180 {
		t.Fatalf("sweep without ARI: %+v %v, settled %+v", r, err, settled.got)
	}
}

// settleRecorder records settlements instead of making them.
type settleRecorder struct {
	tollguard.GateStore
	got []tollguard.Settlement
}

func (s *settleRecorder) SettleCall(_ context.Context, st tollguard.Settlement) (tollguard.CallRecord, bool, error) {
	s.got = append(s.got, st)
	return tollguard.CallRecord{ID: st.CallID}, true, nil
}

// openCalls lists fixed open calls.
type openCalls []*tollguard.CallRecord

func (o openCalls) OpenCallsBefore(context.Context, time.Time) ([]*tollguard.CallRecord, error) {
	return o, nil
}

// TestSweepLeavesCallsWithinTheirLimit: a call still up before its
// MAXSEC + grace (ringing, then talking within its credit) is not hung
// up.
func TestSweepLeavesCallsWithinTheirLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 120 })
	f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-2.1"}, tollguard.Allow, tollguard.ReasonOK)
	alive := func(context.Context, *tollguard.CallRecord) (bool, bool, error) { return true, true, nil }
	hangup := func(_ context.Context, c *tollguard.CallRecord) error {
		t.Errorf("hung up call %d (MAXSEC %d) after %v", c.ID, c.MaxSec, f.now.Sub(c.CreatedAt))
		return nil
	}
	f.now = f.now.Add(149 * time.Second) // MAXSEC 120 + grace 30, less a second
	if r, err := f.p.Sweep(ctx, f.db, alive, hangup, 30*time.Second); err != nil || r.StillRunning != 1 || len(r.Overran) != 0 {
		t.Fatalf("sweep %+v %v", r, err)
	}
}

// TestResponderHangsUpCallsInProgress: a new block ends the calls in
// progress it would have denied (a blocked extension's, an account's
// international ones), never an emergency call, and the alert says how
// many; a hangup that fails makes the alert critical.
func TestResponderHangsUpCallsInProgress(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.db.CreateExtension(ctx, &tollguard.Extension{Name: "1002", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	f.want(tollguard.Call{Extension: "1001", Dialled: "02079460000", UniqueID: "n1"}, tollguard.Allow, tollguard.ReasonOK)
	f.want(tollguard.Call{Extension: "1001", Dialled: "0033123456789", UniqueID: "i1"}, tollguard.Allow, tollguard.ReasonOK)
	f.want(tollguard.Call{Extension: "1001", Dialled: "999", UniqueID: "e1"}, tollguard.Allow, tollguard.ReasonEmergency)
	f.want(tollguard.Call{Extension: "1002", Dialled: "0033123456789", UniqueID: "i2"}, tollguard.Allow, tollguard.ReasonOK)

	act := func(action tollguard.Action, hangErr error) (hung []string, a tollguard.Alert) {
		t.Helper()
		al := &recAlerter{}
		r := &tollguard.Responder{Alerter: al, Blocker: f.db, Calls: f.db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Hangup: func(_ context.Context, c *tollguard.CallRecord) error {
				hung = append(hung, c.UniqueID)
				return hangErr
			}}
		fd := tollguard.Finding{Source: "detector:test", Kind: "burst", Severity: tollguard.SeverityWarning, Action: action,
			At: f.now, Account: "acme", Extension: "1001", Subject: "ext:1001", Message: "burst"}
		if err := r.Act(ctx, fd); err != nil {
			t.Fatal(err)
		}
		slices.Sort(hung)
		return hung, al.alerts[0]
	}
	hung, a := act(tollguard.ActionIntlBlock, nil)
	if !slices.Equal(hung, []string{"i1", "i2"}) || !strings.Contains(a.Message, "[2 calls in progress hung up]") {
		t.Errorf("intl block hung up %v; alert %q", hung, a.Message)
	}
	hung, a = act(tollguard.ActionBlockExtension, nil)
	if !slices.Equal(hung, []string{"i1", "n1"}) || !strings.Contains(a.Message, "[2 calls in progress hung up]") {
		t.Errorf("extension block hung up %v; alert %q", hung, a.Message)
	}
	hung, a = act(tollguard.ActionBlockExtension, errors.New("ARI down"))
	if len(hung) != 2 || a.Severity != tollguard.SeverityCritical || !strings.Contains(a.Message, "2 could NOT be hung up") {
		t.Errorf("failed hangups: tried %v; alert %s %q", hung, a.Severity, a.Message)
	}
}

// failingCalls cannot list calls in progress.
type failingCalls struct{ tollguard.LiveCalls }

func (failingCalls) CallsInProgress(context.Context, string, string) ([]*tollguard.CallRecord, error) {
	return nil, errors.New("disk I/O error")
}

// TestResponderCannotListCalls: when the calls a block should cut cannot
// be listed, the alert turns critical and says to check them by hand.
func TestResponderCannotListCalls(t *testing.T) {
	f := newFixture(t)
	al := &recAlerter{}
	r := &tollguard.Responder{Alerter: al, Blocker: f.db, Calls: failingCalls{f.db}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hangup: func(context.Context, *tollguard.CallRecord) error { return nil }}
	err := r.Act(context.Background(), tollguard.Finding{Source: "detector:test", Kind: "burst", Severity: tollguard.SeverityWarning,
		Action: tollguard.ActionBlockExtension, At: f.now, Account: "acme", Extension: "1001", Subject: "ext:1001", Message: "burst"})
	if err != nil {
		t.Fatal(err)
	}
	if a := al.alerts[0]; a.Severity != tollguard.SeverityCritical || !strings.Contains(a.Message, "could NOT be checked") || !strings.Contains(a.Message, "disk I/O error") {
		t.Errorf("alert %s %q", a.Severity, a.Message)
	}
}

// TestStepNumbers: every rule the policy explains has its place in the
// documented decision order, so `tollguard check` numbers it as the
// README does even when earlier steps were skipped.
func TestStepNumbers(t *testing.T) {
	for rule, want := range map[string]int{"emergency": 1, "selftest": 2, "extension": 2, "blocks": 3, "ip_acl": 4, "destination": 5,
		"rules": 5, "class": 6, "hours": 7, "rate_limit": 8, "concurrency": 8, "credit": 9, "nonsense": 0} {
		if got := (tollguard.Step{Rule: rule}).Number(); got != want {
			t.Errorf("step %q is number %d, want %d", rule, got, want)
		}
	}
	src, err := os.ReadFile("policy.go")
	if err != nil {
		t.Fatal(err)
	}
	ms := regexp.MustCompile(`(?:e\.step\(|e\.deny\([A-Za-z]+, |e\.allow\([A-Za-z]+, |lookupFailed\(e, )"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(ms) < 20 {
		t.Fatalf("found %d explained steps in policy.go; the pattern no longer matches how steps are written", len(ms))
	}
	for _, m := range ms {
		if (tollguard.Step{Rule: m[1]}).Number() == 0 {
			t.Errorf("policy.go explains a step %q with no number in the decision order (call.go stepOrder)", m[1])
		}
	}
}

// TestClockSteps: with a monotonic clock (as serve sets it), a wall
// clock stepped back during a call no longer cuts its bill (30 minutes
// answered, settled when the wall clock said 20 had passed: billed 20),
// and one stepped forward no longer makes the sweep hang up, or settle
// at its full reservation, a call one minute into its ten.
func TestClockSteps(t *testing.T) {
	ctx := context.Background()
	var mono time.Duration
	t.Run("BackDuringACall", func(t *testing.T) {
		f := newFixture(t)
		f.p.Mono = func() time.Duration { return mono }
		d := f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
		mono += 30 * time.Minute
		f.now = f.now.Add(20 * time.Minute) // 30 real minutes, the wall clock set back 10
		if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 1800, DialStatus: "ANSWER", By: "agi", At: f.now, SinceDecision: true}); err != nil {
			t.Fatal(err)
		}
		if c, _ := f.db.Call(ctx, d.CallID); c.Billsec != 1800 {
			t.Errorf("billed %d s, want the 1800 answered", c.Billsec)
		}
	})
	t.Run("ForwardDuringACall", func(t *testing.T) {
		f := newFixture(t)
		f.p.Mono = func() time.Duration { return mono }
		f.account(func(a *tollguard.Account) { a.MaxCallSecs = 600 })
		d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-1.1"}, tollguard.Allow, tollguard.ReasonOK)
		mono += time.Minute
		f.now = f.now.Add(time.Hour + time.Minute) // the wall clock jumps an hour
		alive := func(context.Context, *tollguard.CallRecord) (bool, bool, error) { return true, true, nil }
		hangup := func(_ context.Context, c *tollguard.CallRecord) error {
			t.Errorf("call %d hung up one minute into its ten", c.ID)
			return nil
		}
		if r, err := f.p.Sweep(ctx, f.db, alive, hangup, 2*time.Minute); err != nil || len(r.Overran) != 0 {
			t.Errorf("sweep with ARI: %+v, %v", r, err)
		}
		if r, err := f.p.Sweep(ctx, f.db, nil, nil, 2*time.Minute); err != nil || r.SettledFull != 0 {
			t.Errorf("sweep without ARI: %+v, %v", r, err)
		}
		if c, _ := f.db.Call(ctx, d.CallID); !c.Open() {
			t.Errorf("settled by %s at %d s", c.SettledBy, c.Billsec)
		}
		// Past its MAXSEC on the monotonic clock, it is overrun.
		mono += 12 * time.Minute
		if r, err := f.p.Sweep(ctx, f.db, nil, nil, 2*time.Minute); err != nil || r.SettledFull != 1 {
			t.Errorf("past MAXSEC: %+v, %v", r, err)
		}
	})
}

// TestPastDatedDecisionKeepsAttemptCounts: a call recorded after it
// ended (an emergency number on the include's list) is decided as of
// when it was placed; the attempt counts were rebuilt as of then, and
// every attempt since, moved back to that second, left the windows: the
// per-minute limit reset for everyone.
func TestPastDatedDecisionKeepsAttemptCounts(t *testing.T) {
	f := newFixture(t)
	f.account(func(a *tollguard.Account) { a.Limits.ExtPerMinute = 2 })
	placed := f.now
	f.now = f.now.Add(10 * time.Minute)
	f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
	f.now = f.now.Add(10 * time.Second)
	f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
	f.now = f.now.Add(10 * time.Second)
	f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonRateLimit)
	f.now = f.now.Add(10 * time.Second)
	f.decide(tollguard.Call{Dialled: "02079460001", At: placed})
	f.now = f.now.Add(10 * time.Second)
	f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonRateLimit)
}

// TestRollupKeepsTheLastDaysAttempts: serve rolls up calls older than
// retention_days, counted in the daemon's zone. With retention_days = 1
// on the day a DST change makes 23 hours, the cutoff fell inside the
// last 24 hours; the calls rolled up there no longer counted, and an
// extension at its daily limit could call again.
func TestRollupKeepsTheLastDaysAttempts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	f.account(func(a *tollguard.Account) { a.Limits.ExtPerDay = 3 })
	// A call three days before, which the rollup is for.
	f.now = time.Date(2026, 3, 26, 12, 0, 0, 0, london)
	old := f.want(tollguard.Call{Extension: "1001", Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
	// Three calls on Saturday morning, settled.
	f.now = time.Date(2026, 3, 28, 11, 20, 0, 0, london)
	for range 3 {
		d := f.want(tollguard.Call{Extension: "1001", Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
		for _, id := range []int64{d.CallID, old.CallID} {
			if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: id, Billsec: 10, By: "agi"}); err != nil {
				t.Fatal(err)
			}
		}
		f.now = f.now.Add(time.Minute)
	}
	// Sunday noon, after the clocks went forward: 23 h 40 min later,
	// and the day before is noon on Saturday, 23 hours before.
	f.now = time.Date(2026, 3, 29, 12, 0, 0, 0, london)
	f.want(tollguard.Call{Extension: "1001", Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonRateLimit)
	n, err := f.db.Rollup(ctx, f.now.AddDate(0, 0, -1), 0) // as serve's housekeeping does
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	f.want(tollguard.Call{Extension: "1001", Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonRateLimit)
	if n != 1 {
		t.Fatalf("rolled up %d calls, want the one of three days before", n)
	}
}
