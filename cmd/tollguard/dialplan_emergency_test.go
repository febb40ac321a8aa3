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
		{"AU", "TOLLGUARD_EMERGENCY=000|106"},
		{"ZA", "TOLLGUARD_EMERGENCY=107|10111|10177"},
		{"AT", "TOLLGUARD_EMERGENCY=122|128|133|140|141|142|144|147"},
		{"BR", "TOLLGUARD_EMERGENCY=128|153|185|190|191|192|193|194|197|198|199"},
		{"GB", ""},
		{"US", ""},
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
		for _, n := range tollguard.EmergencyNumbers(country) {
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
	if out := c.ok("dialplan", "emergency"); !strings.Contains(out, "GB's emergency numbers") {
		t.Errorf("default country: %q", out)
	}
	var v emergencyView
	if err := json.Unmarshal([]byte(c.ok("dialplan", "emergency", "JP", "--json")), &v); err != nil ||
		v.Country != "JP" || v.Globals != "TOLLGUARD_EMERGENCY=110|118|119" || strings.Join(v.Extra, ",") != "110,118,119" {
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
