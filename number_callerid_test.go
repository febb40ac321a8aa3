package tollguard_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// An emergency number dialled after a code that withholds or shows the
// caller's number (GB 141 999, US *67 911, DE #31# 110) is connected by
// the carrier to the emergency service: it is that emergency number.
// Anything else after the code stays the carrier's to connect, unknown.
func TestClassifyEmergencyAfterCallerIDCode(t *testing.T) {
	planFR := tollguard.NumberPlan{Country: "FR"}
	planJP := tollguard.NumberPlan{Country: "JP"}
	planNZ := tollguard.NumberPlan{Country: "NZ"}
	tests := []struct {
		dialled string
		plan    tollguard.NumberPlan
		want    bool // an emergency number
	}{
		// GB: 141 withholds, 1470 shows (Ofcom).
		{"141999", planGB, true},
		{"141 112", planGB, true},
		{"141911", planGB, true},
		{"1470999", planGB, true},
		{"1470 112", planGB, true},
		{"141 999#", planGB, true}, // the phone's send key
		{"141-999", planGB, true},
		// US and Canada: *67 withholds, *82 shows; 1167 and 1182 from a
		// rotary phone.
		{"*67911", planUS, true},
		{"*82911", planUS, true},
		{"*67 112", planUS, true},
		{"1167911", planUS, true},
		{"1182911", planUS, true},
		{"*67911", planCA, true},
		{"*82 911", planCA, true},
		// DE: #31# withholds, *31# shows (3GPP TS 22.030), before 112 and
		// 110, the police.
		{"*31#112", planDE, true},
		{"#31#112", planDE, true},
		{"#31#110", planDE, true},
		{"#31# 110", planDE, true},
		// AU: 1831 withholds, 1832 shows (ACMA); 1831 000 read as a
		// possible +61 number of no region.
		{"1831000", planAU, true},
		{"1831 000", planAU, true},
		{"1832 000", planAU, true},
		{"1831 112", planAU, true},
		{"1831106", planAU, true},
		// and from a mobile #31# withholds, *31# shows (ACMA's calling
		// number display pages): the include dials #31#000 by itself.
		{"#31#000", planAU, true},
		{"*31#000", planAU, true},
		{"#31# 112", planAU, true},
		// JP: 184 withholds, 186 shows.
		{"184110", planJP, true},
		{"184 119", planJP, true},
		{"186 110", planJP, true},
		{"186118", planJP, true},
		// NZ: 0197 withholds; 0197 111 read as a +64 number.
		{"0197111", planNZ, true},
		{"0197 111", planNZ, true},

		// Nothing but exactly an emergency number after the code.
		{"141 999 1", planGB, false},
		{"1419991", planGB, false},
		{"141 0900 123456", planGB, false},
		{"141 020 7946 0000", planGB, false},
		{"141 118118", planGB, false},
		{"141141999", planGB, false}, // two codes
		{"1470 141 999", planGB, false},
		{"141 00 112", planGB, false},
		{"141 +999", planGB, false},
		{"+141999", planGB, false},
		{"141", planGB, false},
		{"14999", planGB, false},
		{"*679111", planUS, false},
		{"*67 1 911", planUS, false},
		{"*67 011 44 20 7946 0000", planUS, false},
		{"**67911", planUS, false},
		{"*67*67911", planUS, false},
		{"*67", planUS, false},
		{"*31#1101", planDE, false},
		{"#31#0900 123456", planDE, false},
		{"#31##110", planDE, false},
		{"1831 02 9460 0000", planAU, false},
		{"1831 0011 44 20 7946 0000", planAU, false},
		{"1831 0001", planAU, false},
		{"184 0990 123456", planJP, false},
		{"184 010 44 20 7946 0000", planJP, false},
		{"0197 0900 12345", planNZ, false},
		{"01971111", planNZ, false},
		// After * or # codes, no trailing #: #31#110# or *67911# is a
		// supplementary service string (3GPP TS 22.030), not a call.
		{"#31#110#", planDE, false},
		{"*67911#", planUS, false},
		// Nor with white space after that # (cleanDialled trims it).
		{"*67911#\n", planUS, false},
		{"#31#110#\u00a0", planDE, false},
		{"*67911\n", planUS, true},
		// Only the account's country's codes and emergency numbers.
		{"*67911", planGB, false},
		{"141999", planUS, false},
		{"*31#112", planUS, false},
		{"#31#112", planFR, false},
		{"141110", planGB, false},   // 110 is no GB emergency number
		{"#31#999", planDE, true},   // 999 is one everywhere (IsEmergency)
		{"*67 110", planUS, false},  // nor 110 a US one
		{"1470 000", planGB, false}, // nor AU's 000 a GB one
		{"1831000", planGB, false},
		{"184110", planAU, false},
		{"0197111", planAU, false},
	}
	for _, tt := range tests {
		got := tollguard.Classify(tt.dialled, tt.plan, nil)
		if (got.Class == tollguard.ClassEmergency) != tt.want {
			t.Errorf("%s %q: class %s (%+v), want emergency %v", tt.plan.Country, tt.dialled, got.Class, got, tt.want)
		}
		if is := tollguard.IsEmergency(tt.dialled, tt.plan.Country); is != tt.want {
			t.Errorf("IsEmergency(%q, %s) = %v, want %v", tt.dialled, tt.plan.Country, is, tt.want)
		}
		if !tt.want {
			continue
		}
		// The record keeps what was dialled, which the trunk was sent;
		// Why names the emergency number and the code.
		if got.Dialled != tt.dialled || got.E164 != "" || !got.Is(tollguard.ClassEmergency) || got.Toll() || got.Counted() {
			t.Errorf("%q: %+v, want the dialled string kept, no E.164, neither toll nor counted", tt.dialled, got)
		}
		if !strings.Contains(got.Why, "emergency number") || !strings.Contains(got.Why, " after ") {
			t.Errorf("%q: Why %q does not name the emergency number and the code", tt.dialled, got.Why)
		}
		// Not that the service gets the number: in JP a call with 184
		// reaches it without the number in principle.
		if strings.Contains(got.Why, "gets it") || !strings.Contains(got.Why, "connects it to the emergency service") {
			t.Errorf("%q: Why %q, want it to say only that the carrier connects the emergency service", tt.dialled, got.Why)
		}
	}
	// Emergency first, whatever the plan takes as an extension.
	six := tollguard.NumberPlan{Country: "GB", InternalMaxLen: 7}
	if got := tollguard.Classify("141999", six, nil); got.Class != tollguard.ClassEmergency {
		t.Errorf("141999 with 7-digit extensions: %s, want emergency", got.Class)
	}
}

// The include lets its codes through before 112, 911 and 999 whatever
// the account's country: each must be some country's caller ID code,
// and none a string of digits, which in some country is a number that
// costs money (GB 141 999 is a premium-rate number in Andorra).
func TestDialplanCallerIDCodes(t *testing.T) {
	codes := tollguard.DialplanCallerIDCodes()
	if len(codes) == 0 {
		t.Fatal("no codes")
	}
	var sourced []string
	for _, c := range []string{"GB", "US", "CA", "DE"} {
		sourced = append(sourced, tollguard.CallerIDCodes(c)...)
	}
	for _, code := range codes {
		if !slices.Contains(sourced, code) {
			t.Errorf("%s is no country's caller ID code", code)
		}
		if code[0] != '*' && code[0] != '#' {
			t.Errorf("%s does not begin with * or #", code)
		}
	}
	for _, digits := range []struct{ dialled, country string }{{"141999", "AD"}, {"1182911", "NZ"}} {
		if n := tollguard.Classify(digits.dialled, tollguard.NumberPlan{Country: digits.country}, nil); !n.Is(tollguard.ClassPremium) {
			t.Errorf("%s in %s: %s, the reason GB's and the NANP's digit codes are not on the include's list", digits.dialled, digits.country, n.Class)
		}
	}
}
