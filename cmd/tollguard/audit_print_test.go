package main

import (
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestAuditReportSuggestsApplyOnlyWhereItActs: without ARI, `audit
// stale` told the admin to run it with --apply, which without ARI only
// reports the same again (the README says so); and pins with no
// voicemail source, or quotas with only unmanaged endpoints, suggested
// an --apply that would do nothing.
func TestAuditReportSuggestsApplyOnlyWhereItActs(t *testing.T) {
	const acts = "to act on what this audit may fix"
	for _, tc := range []struct {
		job     string
		ari     bool
		fixable bool
		want    string // "" for no hint at all
	}{
		{"stale", false, false, "`tollguard audit stale --apply` acts only with [ari] enabled"},
		{"tests", false, false, "`tollguard audit tests --apply` acts only with [ari] enabled"},
		{"passwords", false, false, "`tollguard audit passwords --apply` acts only with [ari] enabled"},
		{"stale", true, true, "run `tollguard audit stale --apply` " + acts},
		{"stale", true, false, ""},
		{"pins", false, true, "run `tollguard audit pins --apply` " + acts},
		{"pins", false, false, ""},
		{"quotas", false, true, "run `tollguard audit quotas --apply` " + acts},
		{"quotas", false, false, ""},
	} {
		var b strings.Builder
		printAuditRun(&b, &tollguard.AuditRun{Job: tc.job, Findings: []tollguard.AuditFinding{
			{Severity: tollguard.SeverityWarning, Check: "x", Subject: "ext:1001", Message: "m", Fixable: tc.fixable}}}, tc.ari)
		out := b.String()
		if tc.want == "" && strings.Contains(out, "--apply") || !strings.Contains(out, tc.want) {
			t.Errorf("audit %s (ari %v, fixable %v): want %q in:\n%s", tc.job, tc.ari, tc.fixable, tc.want, out)
		}
	}
}
