package tollguard_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestCoverageAuditEmergencyPattern reads TOLLGUARD_EMERGENCY from the
// dialplan through ARI (GET /asterisk/variable) and judges it for the
// accounts' countries and [gate] default_country.
func TestCoverageAuditEmergencyPattern(t *testing.T) {
	h := newAudHarness(t)
	h.env.Settings.DefaultCountry = "GB"
	a, err := store.NewAccount("berlin", "DE", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	const subj = "dialplan:" + tollguard.EmergencyVar
	for _, tc := range []struct {
		name, value string
		want        []string // subject and severity of each emergency_pattern finding
		msg         []string // in the findings' messages, in order
	}{
		// Unset: DE 110 waits for the gate (GB's are built in).
		{"Unset", "", []string{"/missing warning"}, []string{"DE 110", "hangs them up", "tollguard dialplan emergency DE GB"}},
		{"AsPrinted", "110", nil, nil},
		{"MatchesEverything", "110|[0-9]*", []string{" critical"}, []string{"any length", "without the gate"}},
		{"NationalNumber", "110|030123456", []string{" critical"}, []string{"not emergency numbers in DE, GB: 030123456"}},
		{"Invalid", "110|(", []string{" warning", "/missing warning"}, []string{"not a valid regular expression", "DE 110"}},
		// The ) closes the include's group: ^(110)|.*)#?$ lets every number
		// that starts with 110 past the gate.
		{"ClosesTheGroup", "110)|.*", []string{" critical"}, []string{"any length", "without the gate"}},
		{"Unjudged", "110|[0-9]{1,1001}", []string{" critical"}, []string{"a repeat count over 1000", "reads differently", "it may be every number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.fake.SetGlobal(tollguard.EmergencyVar, tc.value)
			h.fake.ResetRequests()
			run := h.run(tollguard.CoverageAudit{}, false)
			var got []string
			var msgs string
			for _, f := range run.Findings {
				if f.Check == tollguard.AuditCheckEmergencyPattern {
					sub, ok := strings.CutPrefix(f.Subject, subj)
					if !ok {
						t.Errorf("subject %q, want %q...", f.Subject, subj)
					}
					got = append(got, sub+" "+string(f.Severity))
					msgs += f.Message + "\n"
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("emergency_pattern findings %q, want %q:\n%s", got, tc.want, msgs)
			}
			rest := msgs
			for _, m := range tc.msg {
				i := strings.Index(rest, m)
				if i < 0 {
					t.Fatalf("messages lack %q (in order):\n%s", m, msgs)
				}
				rest = rest[i+len(m):]
			}
			if reqs := h.fake.RequestsMatching("GET", "/asterisk/variable"); len(reqs) != 1 {
				t.Errorf("%d reads of the global, want 1", len(reqs))
			}
		})
	}
	// Cannot read it: the audit fails, saying what it could not read.
	h.fake.Fault("GET", "/asterisk/variable", 500, "Internal Server Error", 1)
	run, err := tollguard.RunAudit(context.Background(), h.env, tollguard.CoverageAudit{}, false, "cli", nil)
	if err == nil || run == nil || !strings.Contains(run.Error, "read dialplan global "+tollguard.EmergencyVar+": Asterisk answered 500") {
		t.Errorf("a failed read of the global: err %v, run %+v", err, run)
	}
}

// TestCoverageAuditEmergencyPatternCallerIDCodes: the line `tollguard
// dialplan emergency GB` prints (999 and 112 after 141 and 1470) is
// GB's emergency numbers, not numbers past the gate; with an Andorran
// account it is flagged, as 141999 is premium-rate there, and for an
// Andorran PBX it is no emergency number at all.
func TestCoverageAuditEmergencyPatternCallerIDCodes(t *testing.T) {
	const line = "141112|141911|141999|1470112|1470911|1470999"
	h := newAudHarness(t)
	h.fake.SetGlobal(tollguard.EmergencyVar, line)
	findings := func() []string {
		var got []string
		for _, f := range h.run(tollguard.CoverageAudit{}, false).Findings {
			if f.Check == tollguard.AuditCheckEmergencyPattern {
				got = append(got, string(f.Severity)+" "+f.Subject+": "+f.Message)
			}
		}
		return got
	}
	h.env.Settings.DefaultCountry = "GB"
	if got := findings(); len(got) != 0 {
		t.Errorf("GB PBX: %q", got)
	}
	h.env.Settings.DefaultCountry = "AD"
	if got := findings(); len(got) != 2 || !strings.HasPrefix(got[0], "critical dialplan:"+tollguard.EmergencyVar+": ") ||
		!strings.Contains(got[0], "not emergency numbers in AD: 141112") || !strings.Contains(got[1], "/missing") {
		t.Errorf("AD PBX: %q", got)
	}
	h.env.Settings.DefaultCountry = "GB"
	a, err := store.NewAccount("andorra", "AD", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if got := findings(); len(got) != 2 || !strings.Contains(got[0], "/paid_elsewhere: ") || !strings.Contains(got[0], "141999 (premium in AD)") ||
		!strings.Contains(got[0], "1470112 (of unknown cost in AD)") || !strings.Contains(got[1], "AD 110, 116, 118") {
		t.Errorf("GB PBX with an AD account: %q", got)
	}
}
