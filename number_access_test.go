package tollguard_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// A carrier or feature code dialled before a number is acted on by the
// carrier, which connects what follows: the whole string is not the
// number libphonenumber may read it as.
func TestClassifyCodesBeforeANumber(t *testing.T) {
	tests := []struct {
		name    string
		dialled string
		plan    tollguard.NumberPlan
		why     string // in Number.Why
	}{
		// DE call-by-call: 01013 then the number, national or with 00.
		// Short enough, the whole reads as a possible DE number.
		{"DE call-by-call to Niue", "01013 00 683 123", planDE, "call-by-call"},
		{"DE call-by-call to Niue, 0100yy", "010011 00 683 123", planDE, "call-by-call"},
		{"DE call-by-call to a premium number", "01013 0900 12345", planDE, "call-by-call"},
		{"DE call-by-call national", "01013 030 123456", planDE, "call-by-call"},
		{"DE call-by-call code alone", "01013", planDE, "call-by-call"},
		{"DE call-by-call with +49", "+49 1013 00 683 123", planDE, "call-by-call"},
		{"DE call-by-call from GB", "0049 1013 00 683 123", planGB, "call-by-call"},
		// GB: 141 (withhold), 1470 (show) and carrier access codes, then
		// a number or short code. 1470 118118 is a valid Skye number.
		{"GB 141 then directory enquiries", "141 118118", planGB, "access code"},
		{"GB 1470 then directory enquiries", "1470 118118", planGB, "access code"},
		{"GB carrier access code then directory enquiries", "1899 118118", planGB, "access code"},
		{"GB 141 then a London number", "141 020 7946 0000", planGB, "access code"},
		{"GB 141 then an international number", "141 00 683 1234", planGB, "access code"},
		{"GB directory enquiries with a Reading number's length", "118118 1234", planGB, "access code"},
		// NANP dial-around: 101XXXX then the number.
		{"US dial-around then international", "1010288 011 44 20 7946 0000", planUS, "dial-around"},
		{"US dial-around then national", "10-10-288-1-212-555-0100", planUS, "dial-around"},
		{"US dial-around code alone", "1010288", planUS, "dial-around"},
		{"CA dial-around then international", "1010620 011 44 20 7946 0000", planCA, "dial-around"},
		// NANP 0+ and 01+ are operator-assisted calls. 01 682 12345
		// (the Cook Islands) read as +1 016 821 2345, a range newer than
		// the metadata, priced by the deck's +1 row.
		{"US operator-assisted international", "01 682 12345", planUS, "operator"},
		{"US operator-assisted, ten digits", "0 212 555 010", planUS, "operator"},
		{"CA operator-assisted international", "01 682 12345", planCA, "operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tollguard.Classify(tt.dialled, tt.plan, nil)
			if got.Class != tollguard.ClassUnknown || got.E164 != "" {
				t.Errorf("Class %s, E164 %q, want unknown and none (number %+v)", got.Class, got.E164, got)
			}
			if !strings.Contains(got.Why, tt.why) {
				t.Errorf("Why = %q, want it to name the %s", got.Why, tt.why)
			}
		})
	}

	// What stays as it was: short codes, the numbers themselves, and
	// codes too short to be more than an extension.
	keep := []struct {
		name    string
		dialled string
		plan    tollguard.NumberPlan
		want    tollguard.Class
		short   bool
	}{
		{"GB directory enquiries", "118118", planGB, tollguard.ClassNational, true},
		{"GB directory enquiries overdialled", "118118 1", planGB, tollguard.ClassNational, true},
		{"GB 141 alone is a short code", "141", planGB, tollguard.ClassNational, true},
		{"GB Skye with its national prefix", "01470 118118", planGB, tollguard.ClassNational, false},
		{"GB London in international form", "44 20 7946 0000", planGB, tollguard.ClassNational, false},
		{"GB four digits are an extension", "1899", planGB, tollguard.ClassInternal, false},
		{"DE Berlin", "030 123456", planDE, tollguard.ClassNational, false},
		{"DE directory enquiries", "11833", planDE, tollguard.ClassNational, true},
		{"DE four digits are an extension", "0101", planDE, tollguard.ClassInternal, false},
		{"US 11 digits", "1 212 555 0100", planUS, tollguard.ClassNational, false},
		{"GB to the US is no dial-around", "001 212 555 0100", planGB, tollguard.ClassInternational, false},
		{"US 011 is the international prefix", "011 682 12345", planUS, tollguard.ClassInternational, false},
		{"US 0 alone is the operator", "0", planUS, tollguard.ClassNational, true},
	}
	for _, tt := range keep {
		t.Run(tt.name, func(t *testing.T) {
			got := tollguard.Classify(tt.dialled, tt.plan, nil)
			if got.Class != tt.want || got.Short != tt.short || got.Why != "" {
				t.Errorf("Class %s, Short %v, Why %q; want %s, %v and no reason (number %+v)", got.Class, got.Short, got.Why, tt.want, tt.short, got)
			}
		})
	}
}

// The gate denies a carrier code before a number with the reason, even
// on an account whose whitelist allows its own country: 01013 00 683 123
// read as +49 1013 00683123 matched an allow rule of +49, and the
// call-by-call carrier connected Niue.
func TestGateDeniesCodesBeforeANumber(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "DE"}; a.Whitelist = true })
	if err := f.db.AddRule(ctx, &tollguard.Rule{Account: "acme", Prefix: "+49", Action: tollguard.RuleAllow}); err != nil {
		t.Fatal(err)
	}
	f.want(tollguard.Call{Dialled: "0301234567"}, tollguard.Allow, tollguard.ReasonWhitelist)
	d := f.want(tollguard.Call{Dialled: "0101300683123"}, tollguard.Deny, tollguard.ReasonDestinationDenied)
	if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last.Detail, "call-by-call") {
		t.Errorf("deny step %q does not say why", last.Detail)
	}

	f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "US"} })
	if err := f.db.AddRule(ctx, &tollguard.Rule{Account: "acme", Prefix: "+1", Action: tollguard.RuleAllow}); err != nil {
		t.Fatal(err)
	}
	f.want(tollguard.Call{Dialled: "2125550100"}, tollguard.Allow, tollguard.ReasonWhitelist)
	d = f.want(tollguard.Call{Dialled: "0168212345"}, tollguard.Deny, tollguard.ReasonDestinationDenied)
	if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last.Detail, "operator") {
		t.Errorf("deny step %q does not say why", last.Detail)
	}

	f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "GB"}; a.Whitelist = false })
	d = f.want(tollguard.Call{Dialled: "1470118118"}, tollguard.Deny, tollguard.ReasonDestinationDenied)
	if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last.Detail, "access code") {
		t.Errorf("deny step %q does not say why", last.Detail)
	}
}
