package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/store"
)

// TestScheduledPurgeHeldAfterClockStep: serve's scheduled stale audit
// deleted the PJSIP objects of every blocked line whose grace period a
// clock set a year ahead had ended. It now asks serve's ClockWatch, and
// the purge waits while the clock is ahead of the time elapsed.
func TestScheduledPurgeHeldAfterClockStep(t *testing.T) {
	ctx := context.Background()
	d := auditDaemon(t, t.TempDir(), "[audit]\nenabled = true\napply = [\"stale\"]\n", io.Discard)
	fake := newFakeARI(t)
	cl, err := ari.NewClient(ari.Config{URL: fake.URL, User: fake.User, Password: fake.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	d.asterisk = cl
	wall := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var mono time.Duration
	d.app.Now = func() time.Time { return wall }
	d.db.Now = d.app.Now
	d.clock = &tollguard.ClockWatch{Now: d.app.Now, Mono: func() time.Duration { return mono }, Logger: d.log}
	d.clock.Start()

	fake.SetObject("auth", "2002", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "2002"}, {Attribute: "password", Value: "x"}}, true)
	fake.SetObject("aor", "2002", tollguard.ConfigObject{{Attribute: "max_contacts", Value: "1"}}, true)
	fake.SetObject("endpoint", "2002", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "2002"}, {Attribute: "aors", Value: "2002"}}, true)
	acct, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := d.db.CreateExtension(ctx, &tollguard.Extension{Name: "2002", Account: "acme", CreatedAt: wall.AddDate(0, -6, 0), Managed: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "2002", SetBy: "audit:stale", Reason: "stale"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.AddPendingPurge(ctx, tollguard.PendingPurge{Extension: "2002", Job: "stale", Reason: "stale",
		ScheduledAt: wall.Add(-6 * 24 * time.Hour), DueAt: wall.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s, err := newAuditScheduler(d)
	if err != nil {
		t.Fatal(err)
	}
	wall, mono = wall.Add(365*24*time.Hour+time.Hour), mono+time.Hour
	if err := s.Run("stale"); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.Object("endpoint", "2002"); !ok {
		t.Fatal("the scheduled stale audit purged 2002 with the clock a year ahead")
	}
	// The step stays a day: the clock is trusted, the purge goes.
	wall, mono = wall.Add(24*time.Hour), mono+24*time.Hour
	if err := s.Run("stale"); err != nil {
		t.Fatal(err)
	}
	if _, ok := fake.Object("endpoint", "2002"); ok {
		t.Error("2002 not purged once the step had lasted a day")
	}
}
