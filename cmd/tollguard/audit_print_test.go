package main

import (
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestAuditReportSuggestsApplyOnlyWhereItActs: without ARI, `audit
// stale` told the admin to run it with --apply, which without ARI only
// reports the same again (the README says so).
func TestAuditReportSuggestsApplyOnlyWhereItActs(t *testing.T) {
	for _, tc := range []struct {
		job  string
		ari  bool
		want string
	}{
		{"stale", false, "`tollguard audit stale --apply` acts only with [ari] enabled"},
		{"tests", false, "`tollguard audit tests --apply` acts only with [ari] enabled"},
		{"passwords", false, "`tollguard audit passwords --apply` acts only with [ari] enabled"},
		{"stale", true, "run `tollguard audit stale --apply` to act"},
		{"pins", false, "run `tollguard audit pins --apply` to act"},
		{"quotas", false, "run `tollguard audit quotas --apply` to act"},
	} {
		var b strings.Builder
		printAuditRun(&b, &tollguard.AuditRun{Job: tc.job, Findings: []tollguard.AuditFinding{
			{Severity: tollguard.SeverityWarning, Check: "x", Subject: "ext:1001", Message: "m"}}}, tc.ari)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("audit %s (ari %v): want %q in:\n%s", tc.job, tc.ari, tc.want, b.String())
		}
	}
}
