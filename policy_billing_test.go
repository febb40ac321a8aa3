package tollguard_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// importDeck replaces the fixture's deck with entries.
func (f *fixture) importDeck(entries ...tollguard.RateEntry) {
	f.t.Helper()
	ctx := context.Background()
	imp, err := f.db.BeginRateImport(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range entries {
		if err := imp.Add(ctx, e); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := imp.Commit(); err != nil {
		f.t.Fatal(err)
	}
}

// TestBillingTerms: a deck's billing steps and connection fee bound the
// call (MAXSEC), its reservation and its charge, so credit runs out when
// the carrier's bill says it does, not later.
func TestBillingTerms(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	perMinute := tollguard.Billing{Initial: 60, Increment: 60, Connect: 50000} // 60/60 and 0.05 a call
	f.importDeck(
		tollguard.RateEntry{Prefix: "44", Rate: rate(t, "0.10"), Billing: perMinute},
		tollguard.RateEntry{Prefix: "4411", Rate: rate(t, "0.15"), Billing: tollguard.Billing{Initial: 60, Increment: 60, Connect: 100000}},
		tollguard.RateEntry{Prefix: "4416", Rate: rate(t, "0.10"), Billing: tollguard.Billing{Initial: 180, Increment: 60}},
		tollguard.RateEntry{Prefix: "44121", Rate: rate(t, "0.10"), Billing: tollguard.Billing{Initial: 60, Increment: 3600}},
	)
	f.account(func(a *tollguard.Account) { a.Balance = 100; a.NationalCeiling = rate(t, "0.20") })

	// 1.00: the fee leaves 0.95, nine whole minutes; the call ends 2 s
	// before the ninth runs out.
	d := f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
	if d.MaxSec != 9*60-2 || d.Reserve != 95 {
		t.Fatalf("MaxSec %d reserve %d, want 538 s and 95p; steps %+v", d.MaxSec, d.Reserve, d.Steps)
	}
	if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "0.10/min billed 60/60, 0.05 connection fee: up to 538s (set by available credit)") {
		t.Errorf("the credit step does not name the terms: %q", last)
	}

	// A new deck, by the second, before the call ends: the call is still
	// charged by the terms it was reserved with. 61 s is two minutes and
	// the fee: 25p.
	f.importDeck(tollguard.RateEntry{Prefix: "44", Rate: rate(t, "0.10")})
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 61, DialStatus: "ANSWER", By: "agi"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.db.Call(ctx, d.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Charge != 25 || c.Billing != perMinute {
		t.Fatalf("charged %d with terms %+v, want 25p by %+v", c.Charge, c.Billing, perMinute)
	}
	if cr, _ := f.db.CreditOf(ctx, "acme"); cr.Balance != 75 {
		t.Fatalf("balance %d, want 75", cr.Balance)
	}
	// An unanswered call pays no fee.
	f.importDeck(tollguard.RateEntry{Prefix: "44", Rate: rate(t, "0.10"), Billing: perMinute},
		tollguard.RateEntry{Prefix: "4411", Rate: rate(t, "0.15"), Billing: tollguard.Billing{Initial: 60, Increment: 60, Connect: 100000}},
		tollguard.RateEntry{Prefix: "4416", Rate: rate(t, "0.10"), Billing: tollguard.Billing{Initial: 180, Increment: 60}},
		tollguard.RateEntry{Prefix: "44121", Rate: rate(t, "0.10"), Billing: tollguard.Billing{Initial: 60, Increment: 3600}})
	d = f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 0, DialStatus: "NOANSWER", By: "agi"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.Charge != 0 {
		t.Fatalf("an unanswered call was charged %d", c.Charge)
	}

	// The ceiling (0.20/min) judges the dearest minute: 0.15 and a 0.10
	// fee is 0.25; 0.10 with a three-minute minimum is 0.30; 0.10 billed
	// 60/3600 is 3.05 a minute for a two-minute call.
	for _, dialled := range []string{"01134960000", "01619460000"} {
		d := f.want(tollguard.Call{Dialled: dialled}, tollguard.Deny, tollguard.ReasonRateCeiling)
		if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "its first minute costs") {
			t.Errorf("%s: the deny does not explain the first minute: %q", dialled, last)
		}
	}
	d = f.want(tollguard.Call{Dialled: "01214960000"}, tollguard.Deny, tollguard.ReasonRateCeiling)
	if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "a 2-minute call costs 3.05 a minute") {
		t.Errorf("60/3600: %q", last)
	}

	// A limit set by the maximum call length, not money, ends inside a
	// paid step too: 7200 s is a 60/60 boundary, 7198 is not.
	f.account(func(a *tollguard.Account) { a.Balance = 1_000_000; a.MaxCallSecs = 7200 })
	d = f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK)
	if d.MaxSec != 7198 || d.Reserve != tollguard.Cost(d.Rate, d.Billing, 7198, 2) {
		t.Fatalf("max call length 7200 on 60/60: MaxSec %d reserve %d, want 7198", d.MaxSec, d.Reserve)
	}
	if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "up to 7198s (set by the account's maximum call length)") {
		t.Errorf("the credit step does not say what set MAXSEC: %q", last)
	}
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 0, By: "agi"}); err != nil {
		t.Fatal(err)
	}

	// Too little for the fee and the first minute: denied for credit.
	f.account(func(a *tollguard.Account) { a.Balance = 14 })
	f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonNoCredit)
	f.account(func(a *tollguard.Account) { a.Balance = 15 })
	if d := f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonOK); d.MaxSec != 58 || d.Reserve != 15 {
		t.Fatalf("15p: MaxSec %d reserve %d, want 58 s and 15p", d.MaxSec, d.Reserve)
	}
}

// TestBillingTermsNeverBlockEmergency: a connection fee on the whole
// country and no credit still let 999 and 112 through.
func TestBillingTermsNeverBlockEmergency(t *testing.T) {
	f := newFixture(t)
	f.importDeck(tollguard.RateEntry{Prefix: "44", Rate: rate(t, "5"), Billing: tollguard.Billing{Initial: 3600, Increment: 3600, Connect: 99000000}})
	f.account(func(a *tollguard.Account) { a.Balance = 0 })
	for _, n := range []string{"999", "112"} {
		f.want(tollguard.Call{Dialled: n}, tollguard.Allow, tollguard.ReasonEmergency)
	}
}

// TestDeckCurrency: a deck that says its currency prices only accounts
// in that currency; free numbers and emergency numbers are not money.
func TestDeckCurrency(t *testing.T) {
	f := newFixture(t) // acme holds GBP
	ctx := context.Background()
	imp, err := f.db.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []tollguard.RateEntry{{Prefix: "44", Rate: rate(t, "0.01")}, {Prefix: "4480", Rate: 0}, {Prefix: "252", Rate: rate(t, "1.20")}} {
		if err := imp.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	imp.SetCurrency("USD")
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	d := f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonRateCeiling)
	if last := d.Steps[len(d.Steps)-1]; last.Rule != "rate" || !strings.Contains(last.Detail, "priced in USD and account acme in GBP") {
		t.Errorf("deny step %+v", last)
	}
	f.want(tollguard.Call{Dialled: "08001234567"}, tollguard.Allow, tollguard.ReasonOK) // free
	f.want(tollguard.Call{Dialled: "999"}, tollguard.Allow, tollguard.ReasonEmergency)
	// The high-risk list and premium numbers keep their own reasons.
	f.want(tollguard.Call{Dialled: "00252612345678"}, tollguard.Deny, tollguard.ReasonHighRisk)
	f.want(tollguard.Call{Dialled: "09098790000"}, tollguard.Deny, tollguard.ReasonPremium)
	// A whitelist does not price it either.
	if err := f.db.AddRule(ctx, &tollguard.Rule{Action: tollguard.RuleAllow, Prefix: "4420"}); err != nil {
		t.Fatal(err)
	}
	f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonRateCeiling)
	if cur, err := f.db.DeckCurrency(ctx); err != nil || cur != "USD" {
		t.Fatalf("DeckCurrency %q, %v", cur, err)
	}

	// The same deck in the account's currency prices it.
	imp, _ = f.db.BeginRateImport(ctx)
	imp.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: rate(t, "0.01")})
	imp.Add(ctx, tollguard.RateEntry{Prefix: "4480", Rate: 0})
	imp.SetCurrency("GBP")
	if err := imp.Commit(); err != nil || imp.Unchanged() {
		t.Fatalf("a deck in another currency was taken for the same deck: %v", err)
	}
	f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Allow, tollguard.ReasonWhitelist)
}

// TestCeilingSeesEveryMinuteOfOddSteps: steps that do not divide a
// minute (20/50, 2/59) make the dearest minute a later one: on 0.10
// billed 20/50, a 3-minute call is billed 220 s, 0.1222 a minute, over a
// 0.12 ceiling that the first two minutes (0.1167, 0.10) stay under.
func TestCeilingSeesEveryMinuteOfOddSteps(t *testing.T) {
	f := newFixture(t)
	f.importDeck(tollguard.RateEntry{Prefix: "44", Rate: rate(t, "0.10"), Billing: tollguard.Billing{Initial: 20, Increment: 50}})
	f.account(func(a *tollguard.Account) { a.NationalCeiling = rate(t, "0.12") })
	d := f.want(tollguard.Call{Dialled: "02079460000"}, tollguard.Deny, tollguard.ReasonRateCeiling)
	if last := d.Steps[len(d.Steps)-1].Detail; !strings.Contains(last, "a 3-minute call costs 0.122223 a minute") {
		t.Errorf("20/50: %q", last)
	}
	for _, tt := range []struct {
		b    tollguard.Billing
		want tollguard.Rate
		at   int64
	}{
		{tollguard.Billing{Initial: 20, Increment: 50}, 122223, 3},
		{tollguard.Billing{Initial: 2, Increment: 59}, 132223, 3},
		{tollguard.Billing{Initial: 60, Increment: 70}, 114286, 7},
	} {
		if got, at := tt.b.DearestMinute(100_000); got != tt.want || at != tt.at {
			t.Errorf("0.10 billed %s: dearest minute %s at %d minutes, want %s at %d", tt.b.Steps(), got, at, tt.want, tt.at)
		}
	}
	// Terms whose pattern repeats only after thousands of minutes are
	// answered from a cache after the first time: the same answer as
	// every minute up to two days, checked one by one.
	for _, b := range []tollguard.Billing{{Initial: 59, Increment: 3599}, {Initial: 1, Increment: 3583, Connect: 20_000}} {
		const r = tollguard.Rate(100_000)
		want, wantAt := tollguard.Rate(0), int64(0)
		for k := int64(1); k <= 2880; k++ {
			micros := (int64(r)*b.Billed(60*k)+59)/60 + int64(b.Connect)
			if v := tollguard.Rate((micros + k - 1) / k); v > want {
				want, wantAt = v, k
			}
		}
		for range 2 {
			if got, at := b.DearestMinute(r); got != want || at != wantAt {
				t.Errorf("0.10 billed %s: dearest minute %s at %d minutes, want %s at %d", b.Steps(), got, at, want, wantAt)
			}
		}
	}
}
