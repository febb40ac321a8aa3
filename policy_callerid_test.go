package tollguard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestGateAllowsEmergencyAfterCallerIDCode: an emergency number dialled
// after the account's country's caller ID code (GB 141, US *67, DE
// #31#) is allowed before anything else, with no credit, the extension
// blocked and the schedule closed, with no limit; it is recorded as
// dialled, and counts for no attempt limit. Before, it was denied as an
// unknown destination.
func TestGateAllowsEmergencyAfterCallerIDCode(t *testing.T) {
	allow, deny := tollguard.Allow, tollguard.Deny
	ctx := context.Background()
	f := newFixture(t)
	f.account(func(a *tollguard.Account) {
		a.Balance, a.IntlBlock, a.Whitelist, a.HoursSpec = 0, true, true, "mon 09:00-10:00"
		a.Limits = tollguard.Limits{ExtPerMinute: 1, ExtConcurrent: 1, AcctPerMinute: 1, AcctConcurrent: 1}
	})
	if _, err := f.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "admin", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ country, dialled, number string }{
		{"GB", "141 999", "999"}, {"GB", "1470112", "112"},
		{"US", "*67911", "911"}, {"US", "*82911", "911"},
		{"DE", "#31#110", "110"}, {"DE", "*31#112", "112"},
	} {
		f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: tt.country} })
		for range 2 { // the second is no attempt over the limit either
			d := f.want(tollguard.Call{Dialled: tt.dialled, Remote: "203.0.113.9"}, allow, tollguard.ReasonEmergency)
			if d.MaxSec != -1 || d.Reserve != 0 {
				t.Fatalf("%s %s: MaxSec %d reserve %d, want no limit and nothing reserved", tt.country, tt.dialled, d.MaxSec, d.Reserve)
			}
			if len(d.Steps) != 1 || !strings.Contains(d.Steps[0].Detail, "emergency number "+tt.number) {
				t.Errorf("%s %s: steps %+v, want one naming %s", tt.country, tt.dialled, d.Steps, tt.number)
			}
			rec, err := f.db.Call(ctx, d.CallID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Dialled != tt.dialled || rec.Class != tollguard.ClassEmergency || rec.E164 != "" {
				t.Errorf("%s %s: recorded %q class %s E.164 %q, want the dialled string as emergency", tt.country, tt.dialled, rec.Dialled, rec.Class, rec.E164)
			}
		}
	}
	// What follows the code must be exactly an emergency number.
	f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "GB"} })
	for _, dialled := range []string{"141 999 1", "141 0900 123456"} {
		if d := f.decide(tollguard.Call{Dialled: dialled}); d.Verdict != deny || d.Reason == tollguard.ReasonEmergency {
			t.Errorf("%s: %s/%s, want a deny", dialled, d.Verdict, d.Reason)
		}
	}

	// Unblocked, with credit, open hours and no whitelist, a minute on
	// (the denials above were attempts): an emergency call leaves the
	// one-a-minute limit to an ordinary call.
	if _, err := f.db.Unblock(ctx, tollguard.BlockExtension, "1001", "admin"); err != nil {
		t.Fatal(err)
	}
	f.account(func(a *tollguard.Account) { a.Balance, a.HoursSpec, a.Whitelist = 1000, "", false })
	f.now = f.now.Add(61 * time.Second)
	f.want(tollguard.Call{Dialled: "141999"}, allow, tollguard.ReasonEmergency)
	f.want(tollguard.Call{Dialled: "02079460000"}, allow, tollguard.ReasonOK)

	// With the store down, the default country's codes still hold.
	f.db.Close()
	if d, err := f.p.Decide(ctx, tollguard.Call{Extension: "1001", Dialled: "141 999"}); err != nil || d.Verdict != allow || d.Reason != tollguard.ReasonEmergency {
		t.Fatalf("141 999 with the store down: %+v, %v", d, err)
	}
}
