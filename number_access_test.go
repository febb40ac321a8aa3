package tollguard_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

var (
	planCH = tollguard.NumberPlan{Country: "CH"}
	planNL = tollguard.NumberPlan{Country: "NL"}
	planAU = tollguard.NumberPlan{Country: "AU"}
	planRO = tollguard.NumberPlan{Country: "RO"}
	planJP = tollguard.NumberPlan{Country: "JP"}
	planNZ = tollguard.NumberPlan{Country: "NZ"}
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
		// Carrier selection codes dialled before the number. Each whole
		// string read as a number of the country (AT, CH, NL: possible
		// +43/+41/+31 numbers; AU, IT: +61/+39 numbers of no region; FR:
		// a Paris number; ES: a short code; PL, RO: possible numbers).
		{"AT carrier selection to Niue", "1012 00 683 123", planAT, "carrier selection"},
		{"AT carrier selection, three-digit operator code", "10123 00 683 1234", planAT, "carrier selection"},
		{"AT carrier selection then directory enquiries", "1012 118 877", planAT, "carrier selection"},
		{"CH carrier selection to Niue", "1077 00 683 123", planCH, "carrier selection"},
		{"CH carrier selection then a national number", "1087 0900 1234", planCH, "carrier selection"},
		{"NL carrier selection to Niue", "1688 0068312", planNL, "carrier selection"},
		{"NL carrier selection then a service number", "1688 1850", planNL, "carrier selection"},
		{"IT carrier selection to Niue", "1055 00683123", planIT, "carrier selection"},
		{"IT carrier selection then premium", "1055 892 123", planIT, "carrier selection"},
		{"IT carrier selection with +39", "+39 1055 00683123", planIT, "carrier selection"},
		{"AU override code then a Sydney number", "1414 02946000", planAU, "override code"},
		{"AU override code then 0011 to Niue", "1414 0011 683 1234", planAU, "override code"},
		{"FR carrier selection read as a Paris number", "1612 11811", planFR, "carrier selection"},
		{"ES carrier selection then directory enquiries", "1050 11818", planES, "carrier selection"},
		{"ES carrier selection, 107x", "1073 11888", planES, "carrier selection"},
		{"ES carrier selection with +34", "+34 1050 11818", planES, "carrier selection"},
		{"PL carrier selection then directory enquiries", "1033 118913", planPL, "carrier selection"},
		{"PL carrier selection with +48", "+48 1033 118913", planPL, "carrier selection"},
		{"RO carrier selection 10xy", "1012 11811", planRO, "carrier selection"},
		{"RO carrier selection 16xy then Bucharest", "1612 021 123 4567", planRO, "carrier selection"},
		// JP: 184 (withhold) and 186 (show) before the number, whole read
		// as a possible +81 number of no type: 184 0990 123456, a
		// premium-rate number, was national at the deck's +81 price.
		{"JP 184 then a premium number", "184 0990 123456", planJP, "caller ID code"},
		{"JP 186 then a premium number", "1860990123456", planJP, "caller ID code"},
		{"JP 184 then a Tokyo number", "184 03 1234 5678", planJP, "caller ID code"},
		{"JP 186 then a navi dial number", "186 0570 123 456", planJP, "caller ID code"},
		{"JP 184 then international", "184 010 44 20 7946 0000", planJP, "caller ID code"},
		{"JP 184 then directory enquiries", "184 104", planJP, "caller ID code"},
		// AU: 1831 (withhold) and 1832 (show) before a short code read
		// as a +61 number of no region, international at the deck's
		// +61 price; NZ: 0197 (withhold) before one as a +64 number.
		{"AU 1831 then a premium short code", "1831 1234", planAU, "caller ID code"},
		{"AU 1832 then directory enquiries", "1832 1223", planAU, "caller ID code"},
		{"AU 1831 then a 1300 number", "1831 1300 123 456", planAU, "caller ID code"},
		{"AU 1832 then a premium number", "1832 1900 123 456", planAU, "caller ID code"},
		{"NZ 0197 then directory enquiries", "0197 018", planNZ, "caller ID code"},
		{"NZ 0197 then a short code", "0197 555", planNZ, "caller ID code"},
		{"NZ 0197 then a premium number", "0197 0900 12345", planNZ, "caller ID code"},
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
		// Emergency numbers, short codes and numbers of the countries
		// with carrier selection codes.
		{"AT emergency 133", "133", planAT, tollguard.ClassEmergency, false},
		{"AT directory enquiries", "118877", planAT, tollguard.ClassNational, true},
		{"AT Vienna", "01 5880 0", planAT, tollguard.ClassNational, false},
		{"AT toll free", "0800 123 456", planAT, tollguard.ClassTollFree, false},
		{"AT four digits are an extension", "1012", planAT, tollguard.ClassInternal, false},
		{"CH emergency 1414 Rega", "1414", planCH, tollguard.ClassEmergency, false},
		{"CH directory enquiries", "1811", planCH, tollguard.ClassPremium, true},
		{"CH carrier selection code alone is a short code", "10741", planCH, tollguard.ClassNational, true},
		{"CH Zurich", "044 668 18 00", planCH, tollguard.ClassNational, false},
		{"CH toll free", "0800 123 456", planCH, tollguard.ClassTollFree, false},
		{"NL emergency 112", "112", planNL, tollguard.ClassEmergency, false},
		{"NL municipality 14020", "14020", planNL, tollguard.ClassNational, false},
		{"NL directory enquiries", "1850", planNL, tollguard.ClassNational, true},
		{"NL Amsterdam", "020 123 4567", planNL, tollguard.ClassNational, false},
		{"NL toll free", "0800 1234", planNL, tollguard.ClassTollFree, false},
		{"IT emergency 1530", "1530", planIT, tollguard.ClassEmergency, false},
		{"IT carrier selection code alone is a short code", "1055", planIT, tollguard.ClassNational, true},
		{"IT Rome", "06 1234 5678", planIT, tollguard.ClassNational, false},
		{"IT toll free", "800 123 456", planIT, tollguard.ClassTollFree, false},
		{"IT premium 892", "892 123", planIT, tollguard.ClassPremium, false},
		{"AU emergency 000", "000", planAU, tollguard.ClassEmergency, false},
		{"AU local rate 13", "13 12 34", planAU, tollguard.ClassNational, false},
		{"AU local rate 1300", "1300 123 456", planAU, tollguard.ClassNational, false},
		{"AU toll free 1800", "1800 123 456", planAU, tollguard.ClassTollFree, false},
		{"AU premium 1900", "1900 123 456", planAU, tollguard.ClassPremium, false},
		{"AU directory enquiries", "1223", planAU, tollguard.ClassNational, true},
		{"AU Sydney", "02 9460 0000", planAU, tollguard.ClassNational, false},
		{"AU international 0011", "0011 44 20 7946 0000", planAU, tollguard.ClassInternational, false},
		{"FR emergency 15", "15", planFR, tollguard.ClassEmergency, false},
		{"FR directory enquiries", "118 712", planFR, tollguard.ClassPremium, true},
		{"FR 3949", "3949", planFR, tollguard.ClassPremium, true},
		{"FR operator customer service 1014", "1014", planFR, tollguard.ClassPremium, true},
		{"FR Paris", "01 40 12 34 56", planFR, tollguard.ClassNational, false},
		{"FR toll free", "0800 12 34 56", planFR, tollguard.ClassTollFree, false},
		{"ES emergency 091", "091", planES, tollguard.ClassEmergency, false},
		{"ES directory enquiries", "11818", planES, tollguard.ClassPremium, true},
		{"ES customer service 1004", "1004", planES, tollguard.ClassNational, true},
		{"ES Madrid", "91 123 45 67", planES, tollguard.ClassNational, false},
		{"ES toll free", "900 123 456", planES, tollguard.ClassTollFree, false},
		{"PL emergency 997", "997", planPL, tollguard.ClassEmergency, false},
		{"PL directory enquiries", "118913", planPL, tollguard.ClassNational, true},
		{"PL Warsaw", "22 123 45 67", planPL, tollguard.ClassNational, false},
		{"PL toll free", "800 123 456", planPL, tollguard.ClassTollFree, false},
		{"RO emergency 112", "112", planRO, tollguard.ClassEmergency, false},
		{"RO directory enquiries", "118932", planRO, tollguard.ClassPremium, true},
		{"RO Bucharest", "021 123 4567", planRO, tollguard.ClassNational, false},
		{"RO toll free", "0800 123 456", planRO, tollguard.ClassTollFree, false},
		{"JP emergency 110", "110", planJP, tollguard.ClassEmergency, false},
		{"JP directory enquiries", "104", planJP, tollguard.ClassNational, true},
		{"JP Tokyo", "03 1234 5678", planJP, tollguard.ClassNational, false},
		{"JP premium", "0990 123 456", planJP, tollguard.ClassPremium, false},
		{"JP toll free", "0120 123 456", planJP, tollguard.ClassTollFree, false},
		{"JP international 010", "010 44 20 7946 0000", planJP, tollguard.ClassInternational, false},
		{"JP 184 alone is an extension", "184", planJP, tollguard.ClassInternal, false},
		{"AU 1831 alone is an extension", "1831", planAU, tollguard.ClassInternal, false},
		{"NZ emergency 111", "111", planNZ, tollguard.ClassEmergency, false},
		{"NZ directory enquiries", "018", planNZ, tollguard.ClassPremium, true},
		{"NZ Auckland", "09 300 1234", planNZ, tollguard.ClassNational, false},
		{"NZ mobile", "021 123 4567", planNZ, tollguard.ClassMobile, false},
		{"NZ toll free", "0800 123 456", planNZ, tollguard.ClassTollFree, false},
		{"NZ premium", "0900 12345", planNZ, tollguard.ClassPremium, false},
		{"NZ 0197 alone is an extension", "0197", planNZ, tollguard.ClassInternal, false},
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

	// A carrier selection code before a number whitelisted by its
	// country's rule. With a rate for the country, as a real deck has:
	// AU 1831 1234 read as +61 1831 1234 was allowed at it.
	f.rates(map[string]string{"61": "0.02", "64": "0.02", "81": "0.02"})
	for _, tt := range []struct{ country, prefix, number, evasion, why string }{
		{"AT", "+43", "01 5880 0", "1012 00 683 123", "carrier selection"},
		{"IT", "+39", "06 1234 5678", "1055 00683123", "carrier selection"},
		{"AU", "+61", "02 9460 0000", "1414 02946000", "override code"},
		{"JP", "+81", "03 1234 5678", "184 0990 123456", "caller ID code"},
		{"AU", "+61", "02 9460 0000", "1831 1234", "caller ID code"},
		{"NZ", "+64", "09 300 1234", "0197 018", "caller ID code"},
	} {
		// Credit enough for every allowed call, still in progress.
		f.account(func(a *tollguard.Account) {
			a.Plan = tollguard.NumberPlan{Country: tt.country}
			a.Whitelist = true
			a.Balance = 100000
		})
		if err := f.db.AddRule(ctx, &tollguard.Rule{Account: "acme", Prefix: tt.prefix, Action: tollguard.RuleAllow}); err != nil && tollguard.ErrorCode(err) != tollguard.ECONFLICT { // AU's twice
			t.Fatal(err)
		}
		f.want(tollguard.Call{Dialled: tt.number}, tollguard.Allow, tollguard.ReasonWhitelist)
		d = f.want(tollguard.Call{Dialled: tt.evasion}, tollguard.Deny, tollguard.ReasonDestinationDenied)
		if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last.Detail, tt.why) {
			t.Errorf("%s: deny step %q does not say why", tt.country, last.Detail)
		}
	}

	f.account(func(a *tollguard.Account) { a.Plan = tollguard.NumberPlan{Country: "GB"}; a.Whitelist = false })
	d = f.want(tollguard.Call{Dialled: "1470118118"}, tollguard.Deny, tollguard.ReasonDestinationDenied)
	if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last.Detail, "access code") {
		t.Errorf("deny step %q does not say why", last.Detail)
	}
}

// A plan's own national prefix (9 for an outside line, then 0: "90")
// is followed by a national number, which in GB, NL and FR can begin
// as a code dialled without it does: GB 0141 (Glasgow) is 90 141, NL
// 0162 is 90 162, FR 01 60 is 90 1 60. They were denied as codes. In
// the NANP no number begins with 0 or 1 after the prefix either.
func TestClassifyCodesAfterAPlanNationalPrefix(t *testing.T) {
	own := func(country, national, intl string) tollguard.NumberPlan {
		p := tollguard.NumberPlan{Country: country, NationalPrefix: national, IntlPrefix: intl}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		dialled string
		plan    tollguard.NumberPlan
		e164    string
	}{
		{"90 141 496 0000", own("GB", "90", "900"), "+441414960000"},
		{"90 1470 118118", own("GB", "90", "900"), "+441470118118"},
		{"90 162 123456", own("NL", "90", "900"), "+31162123456"},
		{"90 1 60 12 34 56", own("FR", "90", "900"), "+33160123456"},
	} {
		if got := tollguard.Classify(tt.dialled, tt.plan, nil); got.Class != tollguard.ClassNational || got.E164 != tt.e164 || got.Why != "" {
			t.Errorf("%s %q: %s %q (%q), want national %s", tt.plan.Country, tt.dialled, got.Class, got.E164, got.Why, tt.e164)
		}
	}
	// Without the plan's prefix, a code is still a code.
	for _, tt := range []struct {
		dialled string
		plan    tollguard.NumberPlan
		why     string
	}{
		{"141 020 7946 0000", own("GB", "90", "900"), "access code"},
		{"1633 00 44 20", own("FR", "90", "900"), "carrier selection"},
		{"91 01 682 12345", own("US", "91", "9011"), "operator"},
		{"91 1010288 011 44 20 7946 0000", own("US", "91", "9011"), "dial-around"},
	} {
		if got := tollguard.Classify(tt.dialled, tt.plan, nil); got.Class != tollguard.ClassUnknown || !strings.Contains(got.Why, tt.why) {
			t.Errorf("%s %q: %s (%q), want unknown naming the %s", tt.plan.Country, tt.dialled, got.Class, got.Why, tt.why)
		}
	}
}

// As short as an extension, a caller ID code of digits before one of
// the short codes that cost money is the carrier's to connect, as that
// short code alone is: with 6-digit extensions GB 141 155 (withheld, to
// the international operator) was a free internal call with no limit,
// while 155 was gated. It is taken as internal only where it names one
// of the account's extensions and the dialplan gates internal calls.
func TestCallerIDCodeBeforeAShortCodeAsShortAsAnExtension(t *testing.T) {
	gb6 := tollguard.NumberPlan{Country: "GB", InternalMaxLen: 6}
	us7 := tollguard.NumberPlan{Country: "US", InternalMaxLen: 7}
	for _, tt := range []struct {
		dialled string
		plan    tollguard.NumberPlan
	}{
		{"141155", gb6}, {"141100", gb6}, {"141 123", gb6}, {"1470100", tollguard.NumberPlan{Country: "GB", InternalMaxLen: 7}},
		{"1167411", us7}, {"1182411", us7},
	} {
		got := tollguard.Classify(tt.dialled, tt.plan, nil)
		if got.Class != tollguard.ClassUnknown || !got.ExtensionLength || !strings.Contains(got.Why, "caller ID code") {
			t.Errorf("%s %q: %+v, want unknown, as short as an extension, with why", tt.plan.Country, tt.dialled, got)
		}
	}
	// Free short codes after the code, and other digits, stay internal.
	for _, dialled := range []string{"141105", "141234", "1410"} {
		if got := tollguard.Classify(dialled, gb6, nil); got.Class != tollguard.ClassInternal {
			t.Errorf("GB %q: %s, want internal", dialled, got.Class)
		}
	}

	f := newFixture(t)
	f.account(func(a *tollguard.Account) { a.Plan = gb6 })
	d := f.want(tollguard.Call{Dialled: "141155"}, tollguard.Deny, tollguard.ReasonDestinationDenied)
	if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last.Detail, "155") {
		t.Errorf("deny step %q does not name the short code", last.Detail)
	}
	f.want(tollguard.Call{Dialled: "141234"}, tollguard.Allow, tollguard.ReasonOK)
	if err := f.db.CreateExtension(context.Background(), &tollguard.Extension{Name: "141155", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	f.p.Configure(tollguard.PolicySettings{DefaultPlan: f.p.DefaultPlan, InternalCallsGated: true})
	if d := f.want(tollguard.Call{Dialled: "141155"}, tollguard.Allow, tollguard.ReasonOK); d.Number.Class != tollguard.ClassInternal {
		t.Errorf("extension 141155: %+v, want internal", d.Number)
	}
}

// TestNANPOperatorReasonNamesThePlansPrefixes: the reason for a NANP
// operator call tells the caller what to dial instead, with the
// prefixes the account's plan dials (9011 and 91 with 9 for an outside
// line), not the NANP's 011 and 1 when those are not what its phones
// dial.
func TestNANPOperatorReasonNamesThePlansPrefixes(t *testing.T) {
	for _, tt := range []struct {
		plan        tollguard.NumberPlan
		want, avoid string
	}{
		{planUS, "dial 011 for international calls, or the number with 1", ""},
		{tollguard.NumberPlan{Country: "US", IntlPrefix: "9011", NationalPrefix: "91"}, "dial 9011 for international calls, or the number with 91", "dial 011"},
		{tollguard.NumberPlan{Country: "CA", IntlPrefix: "00"}, "dial 00 for international calls, or the number with 1", "dial 011"},
	} {
		if err := tt.plan.Validate(); err != nil {
			t.Fatalf("%+v: %v", tt.plan, err)
		}
		for _, dialled := range []string{"0 212 555 010", "01 682 12345"} {
			n := tollguard.Classify(dialled, tt.plan, nil)
			if n.Class != tollguard.ClassUnknown || !strings.Contains(n.Why, tt.want) || tt.avoid != "" && strings.Contains(n.Why, tt.avoid) {
				t.Errorf("%s with %+v: %s %q, want %q", dialled, tt.plan, n.Class, n.Why, tt.want)
			}
		}
	}
}
