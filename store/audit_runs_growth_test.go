package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestAuditRunsStayBounded: every audit run is stored, the default
// schedules make 53 a day (quotas and spend hourly, five nightly), and
// none was ever deleted: the table grew for as long as tollguard ran.
// Runs past the retention go, but for each job's latest few.
func TestAuditRunsStayBounded(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const days = 240
	for h := 0; h < days*24; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		run := &tollguard.AuditRun{Job: "quotas", Trigger: "cron", StartedAt: at, EndedAt: at.Add(time.Second),
			Findings: []tollguard.AuditFinding{{Check: "over_quota", Severity: tollguard.SeverityWarning, Subject: "account:acme", Account: "acme",
				Message: fmt.Sprintf("account acme has 41 extensions, over its quota of 40 (run %d)", h)}}}
		if err := db.SaveAuditRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		if h%24 == 0 { // and a nightly job with nothing to say
			night := &tollguard.AuditRun{Job: "stale", Trigger: "cron", StartedAt: at, EndedAt: at}
			if err := db.SaveAuditRun(ctx, night); err != nil {
				t.Fatal(err)
			}
		}
	}
	var n, bytes int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(findings) + LENGTH(actions)), 0) FROM audit_runs`).Scan(&n, &bytes); err != nil {
		t.Fatal(err)
	}
	const retention = 180 * 24 * time.Hour // store.AuditRunRetention
	if store.AuditRunRetention != retention {
		t.Fatalf("retention %s, the test counts on %s", store.AuditRunRetention, retention)
	}
	keep := int64(retention/time.Hour) + int64(retention/(24*time.Hour)) + 2
	t.Logf("%d days: %d audit runs kept (%d KB of findings), want at most %d", days, n, bytes>>10, keep)
	if n > keep {
		t.Errorf("%d audit runs after %d days; want at most %d (the retention's)", n, days, keep)
	}
	runs, err := db.AuditRuns(ctx, "stale", 100)
	if err != nil || len(runs) == 0 || !runs[0].StartedAt.Equal(t0.Add((days-1)*24*time.Hour)) {
		t.Errorf("latest stale run lost: %v, %d runs", err, len(runs))
	}
}
