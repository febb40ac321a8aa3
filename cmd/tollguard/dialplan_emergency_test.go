package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestDialplanEmergency: the printed TOLLGUARD_EMERGENCY lets through
// exactly the country's emergency numbers the include does not know by
// itself, as the include's REGEX would read it.
func TestDialplanEmergency(t *testing.T) {
	c := newCLI(t)
	for _, tt := range []struct{ country, line string }{
		{"DE", "TOLLGUARD_EMERGENCY=110"},
		{"fr", "TOLLGUARD_EMERGENCY=15|17|18|114|115|119|191|196|197|116000"},
		// With the emergency numbers after AU's 1831 and 1832.
		{"AU", "TOLLGUARD_EMERGENCY=000|106|1831000|1831106|1831112|1831911|1831999|1832000|1832106|1832112|1832911|1832999"},
		{"NZ", "TOLLGUARD_EMERGENCY=111|0197111|0197112|0197911|0197999"},
		{"ZA", "TOLLGUARD_EMERGENCY=107|10111|10177"},
		{"AT", "TOLLGUARD_EMERGENCY=122|128|133|140|141|142|144|147"},
		{"BR", "TOLLGUARD_EMERGENCY=128|153|185|190|191|192|193|194|197|198|199"},
		// The emergency numbers after GB's and the NANP's caller ID codes
		// of digits: the include lets only * and # codes through.
		{"GB", "TOLLGUARD_EMERGENCY=141112|141911|141999|1470112|1470911|1470999"},
		{"US", "TOLLGUARD_EMERGENCY=1167112|1167911|1167999|1182112|1182911|1182999"},
		{"IE", ""},
	} {
		out := c.ok("dialplan", "emergency", tt.country)
		var got string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "TOLLGUARD_EMERGENCY=") {
				got = l
			}
		}
		if got != tt.line {
			t.Errorf("%s: %q, want %q:\n%s", tt.country, got, tt.line, out)
		}
		if got == "" {
			if !strings.Contains(out, "no TOLLGUARD_EMERGENCY needed") {
				t.Errorf("%s: %q", tt.country, out)
			}
			continue
		}
		// The include matches ^(${TOLLGUARD_EMERGENCY})$: every number
		// listed must be one the gate treats as an emergency, and no
		// longer or shorter string may match.
		re := regexp.MustCompile(`^(` + strings.TrimPrefix(got, "TOLLGUARD_EMERGENCY=") + `)$`)
		country := strings.ToUpper(tt.country)
		for _, n := range append(tollguard.EmergencyNumbers(country), tollguard.EmergencyCallerIDNumbers(country)...) {
			builtin := slices.Contains(tollguard.UniversalEmergencyNumbers(), n)
			if !builtin && !re.MatchString(n) {
				t.Errorf("%s: %s is not let through", country, n)
			}
		}
		for _, n := range []string{"1", "0", "1100", "00110", "+110"} {
			if re.MatchString(n) && !tollguard.IsEmergency(n, country) {
				t.Errorf("%s: %s would pass as an emergency number", country, n)
			}
		}
	}
	// The config's default country (GB) without an argument.
	if out := c.ok("dialplan", "emergency"); !strings.Contains(out, "Emergency numbers of GB beyond") || !strings.Contains(out, "141999") {
		t.Errorf("default country: %q", out)
	}
	var v emergencyView
	if err := json.Unmarshal([]byte(c.ok("dialplan", "emergency", "JP", "--json")), &v); err != nil ||
		v.Country != "JP" || v.Globals != "TOLLGUARD_EMERGENCY=110|118|119|184110|184112|184118|184119|184911|184999|186110|186112|186118|186119|186911|186999" ||
		strings.Join(v.Extra[:3], ",") != "110,118,119" {
		t.Errorf("--json: %+v %v", v, err)
	}
	// A country named twice is one country.
	v = emergencyView{}
	if err := json.Unmarshal([]byte(c.ok("dialplan", "emergency", "DE", "de", "--json")), &v); err != nil ||
		v.Country != "DE" || v.Globals != "TOLLGUARD_EMERGENCY=110" {
		t.Errorf("DE de --json: %+v %v", v, err)
	}
	if out := c.ok("dialplan", "emergency", "DE", "DE"); !strings.Contains(out, "Emergency numbers of DE beyond") {
		t.Errorf("DE DE:\n%s", out)
	}
	if code, _, errs := c.run("dialplan", "emergency", "XX"); code != 2 || !strings.Contains(errs, "ISO 3166") {
		t.Errorf("unknown country: exit %d, %q", code, errs)
	}
}

// TestDialplanEmergencySeveralCountries: one line for the PBX, without a
// number that is a paid short code in another of its countries (CH 1414,
// Rega, is premium in BE): the include would dial it for a BE account
// without asking the gate.
func TestDialplanEmergencySeveralCountries(t *testing.T) {
	c := newCLI(t)
	out := c.ok("dialplan", "emergency", "CH", "BE")
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "TOLLGUARD_EMERGENCY=") {
			line = l
		}
	}
	nums := strings.Split(strings.TrimPrefix(line, "TOLLGUARD_EMERGENCY="), "|")
	if slices.Contains(nums, "1414") || !slices.Contains(nums, "144") || !slices.Contains(nums, "100") {
		t.Errorf("CH and BE: %q", line)
	}
	if !strings.Contains(out, "1414 (premium in BE)") {
		t.Errorf("the number left off is not named:\n%s", out)
	}
	if out := c.ok("dialplan", "emergency", "GB", "DE"); !strings.Contains(out, "TOLLGUARD_EMERGENCY=110") {
		t.Errorf("GB and DE:\n%s", out)
	}
}

// TestDialplanEmergencyCallerIDCodes: GB 141 999 and 1470 112 wait for
// the gate unless the line holds them, so they were hung up while
// tollguard was down; but a code of digits and a number is a number
// elsewhere (AD 141999 is premium-rate, DE 141999 a local number), so
// with such a country they stay off it, and the output says why.
func TestDialplanEmergencyCallerIDCodes(t *testing.T) {
	c := newCLI(t)
	for _, tt := range []struct {
		countries []string
		line      string
		left      []string
	}{
		{[]string{"GB"}, "TOLLGUARD_EMERGENCY=141112|141911|141999|1470112|1470911|1470999", nil},
		{[]string{"CA"}, "TOLLGUARD_EMERGENCY=1167112|1167911|1167999|1182112|1182911|1182999", nil},
		{[]string{"GB", "AD"}, "TOLLGUARD_EMERGENCY=110|116|118", []string{"141999 (premium in AD)", "1470112 (of unknown cost in AD)"}},
		{[]string{"GB", "DE"}, "TOLLGUARD_EMERGENCY=110", []string{"141999 (national in DE)"}},
		{[]string{"US", "GB"}, "", []string{"1182911 (national in GB)", "141999 (of unknown cost in US)"}},
	} {
		out := c.ok(append([]string{"dialplan", "emergency"}, tt.countries...)...)
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "TOLLGUARD_EMERGENCY=") {
				line = l
			}
		}
		if line != tt.line {
			t.Errorf("%v: %q, want %q:\n%s", tt.countries, line, tt.line, out)
		}
		for _, l := range tt.left {
			if !strings.Contains(out, l) || !strings.Contains(out, "Left off") {
				t.Errorf("%v: %q not said to be left off:\n%s", tt.countries, l, out)
			}
		}
		if line == "" && (strings.Contains(out, "all built into") || !strings.Contains(out, "no TOLLGUARD_EMERGENCY needed")) {
			t.Errorf("%v: nothing left to list, but some left off:\n%s", tt.countries, out)
		}
		// What the line holds, the audit takes for emergency numbers of
		// these countries.
		if line != "" {
			rep := tollguard.CheckEmergencyPattern(strings.TrimPrefix(line, "TOLLGUARD_EMERGENCY="), tt.countries)
			if len(rep.NotEmergency) > 0 || len(rep.PaidElsewhere) > 0 || len(rep.Missing) > 0 {
				t.Errorf("%v: the audit judges %q: %+v", tt.countries, line, rep)
			}
		}
	}
}
