package tollguard_test

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestDuePurgeHeldAfterClockStep: a blocked line waits out its grace
// period (the admin's time to unblock it) before the stale audit deletes
// its PJSIP objects, and the grace went by the wall clock: set a year
// ahead, it ended every pending purge at the next run. While serve's
// ClockWatch (AuditEnv.PruneHeld) holds pruning, a purge due only by
// that clock waits, and the run says why; once the clock is back it is
// due at its own time, and once the step has lasted a day it goes.
func TestDuePurgeHeldAfterClockStep(t *testing.T) {
	ctx := context.Background()
	// setup blocks line 2002 as stale, its purge due in a day, and hands
	// the audits a clock watch on the harness's wall clock and a fake
	// monotonic one.
	setup := func(t *testing.T) (*audHarness, *time.Duration) {
		h := newAudHarness(t)
		h.fake.SetObject("auth", "2002", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "2002"}, {Attribute: "password", Value: "x"}}, true)
		h.fake.SetObject("aor", "2002", tollguard.ConfigObject{{Attribute: "max_contacts", Value: "1"}}, true)
		h.fake.SetObject("endpoint", "2002", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "2002"}, {Attribute: "aors", Value: "2002"}}, true)
		h.account("acme", nil)
		h.extension("2002", "acme", audT0.AddDate(0, -6, 0), nil)
		if _, err := h.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "2002", SetBy: "audit:stale", Reason: "stale"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.db.AddPendingPurge(ctx, tollguard.PendingPurge{Extension: "2002", Job: "stale", Reason: "stale",
			ScheduledAt: audT0.Add(-6 * 24 * time.Hour), DueAt: audT0.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		mono := new(time.Duration)
		w := &tollguard.ClockWatch{Now: h.clock, Mono: func() time.Duration { return *mono }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		w.Start()
		h.env.PruneHeld = w.PruneHeld
		return h, mono
	}
	purged := func(t *testing.T, h *audHarness, run *tollguard.AuditRun) bool {
		t.Helper()
		_, there := h.fake.Object("endpoint", "2002")
		acted := slices.Contains(audActions(run), "purge ext:2002")
		if acted == there {
			t.Fatalf("purge action %v, but endpoint 2002 still there: %v", acted, there)
		}
		return acted
	}
	held := func(run *tollguard.AuditRun) bool {
		return slices.ContainsFunc(run.Findings, func(f tollguard.AuditFinding) bool {
			return f.Subject == "ext:2002" && strings.Contains(f.Message, "stepped ahead")
		})
	}
	stepAYear := func(h *audHarness, mono *time.Duration) {
		h.advance(365*24*time.Hour + time.Hour)
		*mono += time.Hour
	}

	t.Run("HeldUntilCorrected", func(t *testing.T) {
		h, mono := setup(t)
		stepAYear(h, mono)
		run := h.run(tollguard.StaleAudit{}, true)
		if purged(t, h, run) || !held(run) {
			t.Fatalf("with the clock a year ahead: actions %q, findings %q; want the purge held and said so", audActions(run), audFindings(run))
		}
		// Set right: due in a day, as before the step.
		h.advance(time.Hour - 365*24*time.Hour)
		*mono += time.Hour
		if run := h.run(tollguard.StaleAudit{}, true); purged(t, h, run) || held(run) {
			t.Fatalf("clock back, purge not due: actions %q, findings %q", audActions(run), audFindings(run))
		}
		h.advance(24 * time.Hour)
		*mono += 24 * time.Hour
		if run := h.run(tollguard.StaleAudit{}, true); !purged(t, h, run) {
			t.Errorf("purge due by a clock in step not done: actions %q, findings %q", audActions(run), audFindings(run))
		}
	})
	t.Run("PurgedWhenTheStepStays", func(t *testing.T) {
		h, mono := setup(t)
		stepAYear(h, mono)
		if run := h.run(tollguard.StaleAudit{}, true); purged(t, h, run) {
			t.Fatal("purged with the clock a year ahead")
		}
		h.advance(24 * time.Hour)
		*mono += 24 * time.Hour
		if run := h.run(tollguard.StaleAudit{}, true); !purged(t, h, run) || held(run) {
			t.Errorf("step lasted a day: actions %q, findings %q; want the purge done", audActions(run), audFindings(run))
		}
	})
	t.Run("PurgedWithoutAClockWatch", func(t *testing.T) {
		h, mono := setup(t)
		h.env.PruneHeld = nil // `tollguard audit stale --apply` from the shell
		stepAYear(h, mono)
		if run := h.run(tollguard.StaleAudit{}, true); !purged(t, h, run) {
			t.Errorf("actions %q; want the purge done as before", audActions(run))
		}
	})
}

// TestStaleBlockHeldAfterClockStep: the stale audit blocks a line with no
// registration and no call for 60 days, and a clock set a year ahead
// made every line offline at that moment look so. While serve's
// ClockWatch holds pruning, such a line is only reported, saying why;
// once the step has lasted a day it is blocked as before.
func TestStaleBlockHeldAfterClockStep(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.fake.SetObject("auth", "2003", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "2003"}, {Attribute: "password", Value: "x"}}, true)
	h.fake.SetObject("aor", "2003", tollguard.ConfigObject{{Attribute: "max_contacts", Value: "1"}}, true)
	h.fake.SetObject("endpoint", "2003", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "2003"}, {Attribute: "aors", Value: "2003"}}, true)
	h.account("acme", nil)
	// Created and last seen a week ago: not stale by a clock in step.
	h.extension("2003", "acme", audT0.AddDate(0, 0, -7), nil)
	if err := h.db.TouchExtension(ctx, "2003", audT0.AddDate(0, 0, -7).Unix()); err != nil {
		t.Fatal(err)
	}
	mono := new(time.Duration)
	w := &tollguard.ClockWatch{Now: h.clock, Mono: func() time.Duration { return *mono }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w.Start()
	h.env.PruneHeld = w.PruneHeld
	blocked := func(t *testing.T) bool {
		t.Helper()
		bs, err := h.db.Blocks(ctx, tollguard.BlockExtension, "2003", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(bs, func(b tollguard.Block) bool { return b.ClearedAt.IsZero() })
	}
	h.advance(365*24*time.Hour + time.Hour)
	*mono += time.Hour
	run := h.run(tollguard.StaleAudit{}, true)
	if blocked(t) || !slices.ContainsFunc(run.Findings, func(f tollguard.AuditFinding) bool {
		return f.Subject == "ext:2003" && strings.Contains(f.Message, "stepped ahead") && !f.Fixable
	}) {
		t.Fatalf("with the clock a year ahead: blocked %v, findings %q; want 2003 only reported, saying why", blocked(t), audFindings(run))
	}
	h.advance(24 * time.Hour)
	*mono += 24 * time.Hour
	if run := h.run(tollguard.StaleAudit{}, true); !blocked(t) {
		t.Errorf("step lasted a day: actions %q, findings %q; want 2003 blocked as stale", audActions(run), audFindings(run))
	}
}

// TestQuotasClockBack: the daily quota counts lines created in the last
// 24 h, and a clock set back (a box without an RTC before its time
// sync) put every line created since that time "after a day ago": the
// audit blocked all but the quota's first few of a year's lines. A line
// created after the clock's now is of no known age: not counted, and
// the run warns about the clock.
func TestQuotasClockBack(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
	for i, n := range []string{"a1", "a2", "a3"} {
		h.extension(n, "acme", audT0.AddDate(0, -3*(i+1), 0), nil)
	}
	h.advance(-365 * 24 * time.Hour)
	run := h.run(tollguard.QuotasAudit{}, true)
	if got := strings.Join(audFindings(run), ","); strings.Contains(got, "over_daily_quota") || !strings.Contains(got, "clock clock warning") {
		t.Errorf("findings %q; want no over_daily_quota and a clock warning", got)
	}
	for _, n := range []string{"a1", "a2", "a3"} {
		if e, _ := h.db.Extension(ctx, n); e.Blocked {
			t.Errorf("%s blocked with the clock a year back: %s", n, e.BlockReason)
		}
	}
	if f := audFinding(t, run, "clock", "clock"); !reflect.DeepEqual(f.Evidence["extensions"], []string{"a1", "a2", "a3"}) {
		t.Errorf("clock finding evidence %v", f.Evidence)
	}
}
