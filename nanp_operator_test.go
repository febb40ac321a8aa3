package tollguard_test

import (
	"testing"

	"github.com/tollguard/tollguard"
)

// TestNANPOperatorIsNotInternal: in the NANP, 0 reaches the local
// operator and 00 the long-distance carrier's operator, who places a
// call anywhere (international ones too) billed to the line. They are as
// short as an extension, but not N11 codes, so they were internal: the
// gate let "00" out to the trunk with no rate, no ceiling and no limit
// but the maximum call length. Like GB 100 and 155, they are short
// codes of unknown cost.
func TestNANPOperatorIsNotInternal(t *testing.T) {
	f := newFixture(t)
	f.account(func(a *tollguard.Account) { a.Plan, _ = tollguard.PlanFor("US") })
	for _, num := range []string{"00", "0", "00#"} {
		d := f.decide(tollguard.Call{Dialled: num})
		if d.Verdict != tollguard.Deny || d.Reason != tollguard.ReasonRateCeiling {
			t.Errorf("US account dialling %s (the operator): %s/%s (class %s, maxsec %d), want deny/rate_ceiling", num, d.Verdict, d.Reason, d.Number.Class, d.MaxSec)
		}
	}
	// Listed as carried free, it goes through.
	f.p.Configure(tollguard.PolicySettings{DefaultPlan: tollguard.NumberPlan{Country: "GB"}, FreeShortCodes: []string{"00"}})
	f.want(tollguard.Call{Dialled: "00"}, tollguard.Allow, tollguard.ReasonOK)
}
