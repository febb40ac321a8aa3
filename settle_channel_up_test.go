package tollguard_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// A route that dials again after an answered Dial (the g option) ends
// with the last Dial's NOANSWER and ANSWEREDTIME cleared: the channel's
// own up time is billed when it came up after the decision, not when a
// line answered before the gate (DISA) rang out.
func TestSettleBillsAChannelUpSinceAfterTheDecision(t *testing.T) {
	for _, tc := range []struct {
		name       string
		after, up  int64 // settled this long after the decision; the channel up this long
		wantBilled int64
	}{
		{"AnsweredDialThenAnUnansweredOne", 3600, 3000, 3000},
		{"DISALineAnsweredBeforeTheGate", 30, 40, 0},
		{"AnsweredJustBeforeTheGate", 30, 30, 0},
		{"NoUpTime", 30, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.account(func(a *tollguard.Account) { a.Balance = 1_000_000 })
			d := f.want(tollguard.Call{Dialled: "07400123456"}, tollguard.Allow, tollguard.ReasonOK)
			f.now = f.now.Add(time.Duration(tc.after) * time.Second)
			if _, err := f.p.Settle(context.Background(), tollguard.Settlement{CallID: d.CallID, ChannelUp: tc.up, DialStatus: "NOANSWER",
				By: "agi", SinceDecision: true}); err != nil {
				t.Fatal(err)
			}
			if c, _ := f.db.Call(context.Background(), d.CallID); c.Billsec != tc.wantBilled || (tc.wantBilled > 0) != (c.Charge > 0) {
				t.Fatalf("billed %d s, charged %d; want %d s", c.Billsec, c.Charge, tc.wantBilled)
			}
		})
	}
}
