package tollguard_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestQuotasAuditCountsRemovedLines: the audit's per-day counts were of
// the lines left, so lines created and removed the same day were never
// seen, over the daily quota or in a burst. They count, named as
// removed; --apply blocks the newest line that is still there.
func TestQuotasAuditCountsRemovedLines(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
	h.extension("r1", "acme", audT0.Add(-3*time.Hour), nil)
	h.extension("r2", "acme", audT0.Add(-2*time.Hour), nil)
	h.extension("a1", "acme", audT0.Add(-1*time.Hour), nil)
	h.extension("old", "acme", audT0.Add(-30*time.Hour), nil)
	for _, n := range []string{"r1", "r2", "old"} {
		if err := h.db.DeleteExtension(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	h.env.Settings.CreationAlert = 2

	run := h.run(tollguard.QuotasAudit{}, false)
	f := audFinding(t, run, "over_daily_quota", "account:acme")
	if f.Evidence["created_24h"] != 3 || !reflect.DeepEqual(f.Evidence["newest"], []string{"a1", "r2 (removed)"}) {
		t.Errorf("over daily quota: %+v", f)
	}
	if f := audFinding(t, run, "creation_burst", "account:acme"); !reflect.DeepEqual(f.Evidence["extensions"], []string{"a1", "r2 (removed)", "r1 (removed)"}) {
		t.Errorf("burst: %+v", f)
	}
	run = h.run(tollguard.QuotasAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"block ext:a1"}) {
		t.Errorf("actions %q", got)
	}
	// All that is left beyond the quota is blocked, but removed lines
	// are still a warning: someone created them.
	if f := audFinding(t, h.run(tollguard.QuotasAudit{}, false), "over_daily_quota", "account:acme"); f.Severity != tollguard.SeverityWarning || f.Fixable {
		t.Errorf("after the block: %+v", f)
	}
}

// TestQuotasAuditOnlyRemovedBeyondQuota: when every line beyond the
// daily quota was removed, the finding said "the rest are blocked",
// though there was no rest and the line left was never blocked.
func TestQuotasAuditOnlyRemovedBeyondQuota(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
	h.extension("a1", "acme", audT0.Add(-3*time.Hour), nil)
	h.extension("r1", "acme", audT0.Add(-1*time.Hour), nil)
	if err := h.db.DeleteExtension(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	f := audFinding(t, h.run(tollguard.QuotasAudit{}, false), "over_daily_quota", "account:acme")
	if f.Severity != tollguard.SeverityWarning || f.Fixable || strings.Contains(f.Message, "blocked") || !strings.Contains(f.Message, "1 of the newest beyond the quota was removed") {
		t.Errorf("finding %+v", f)
	}
}

// TestQuotasAuditCountsSameSecondRecreation: a line added, removed and
// added again within one second is two creations; the line left
// matched both records, so the audit counted one.
func TestQuotasAuditCountsSameSecondRecreation(t *testing.T) {
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
	at := audT0.Add(-time.Hour)
	h.extension("3001", "acme", at, nil)
	if err := h.db.DeleteExtension(context.Background(), "3001"); err != nil {
		t.Fatal(err)
	}
	h.extension("3001", "acme", at, nil)
	f := audFinding(t, h.run(tollguard.QuotasAudit{}, false), "over_daily_quota", "account:acme")
	if f.Evidence["created_24h"] != 2 || !reflect.DeepEqual(f.Evidence["newest"], []string{"3001"}) {
		t.Errorf("over daily quota: %+v", f)
	}
}
