package tollguard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// storeAlerter raises alerts in the harness's store under the default
// policy and counts the notices queued, as the daemon's dispatcher does.
type storeAlerter struct {
	db      *store.DB
	now     func() time.Time
	notices int
}

func (a *storeAlerter) Raise(ctx context.Context, al tollguard.Alert) error {
	res, err := a.db.RaiseAlert(ctx, al, tollguard.AlertPolicy{}, []string{"log"}, a.now())
	if res.Notice != nil {
		a.notices++
	}
	return err
}

// TestNightlyAuditDoesNotRenotify: the pins audit finds the same 50
// weak PINs every night. Before, each night raised 50 new alerts (the
// cool-down is 15 minutes) and mailed every one, acknowledged or not;
// now an unchanged finding is mailed once, and again only when it
// changes or a week (AuditRenotify) has passed. Each run still stores
// all its findings.
func TestNightlyAuditDoesNotRenotify(t *testing.T) {
	h := newAudHarness(t)
	alerter := &storeAlerter{db: h.db, now: h.clock}
	h.env.Alerter = alerter
	boxes := make([]tollguard.Mailbox, 50)
	for i := range boxes {
		boxes[i] = tollguard.Mailbox{Source: "test", Where: fmt.Sprintf("voicemail.conf:%d", i+10), Context: "default",
			Mailbox: fmt.Sprint(2000 + i), PIN: "1234"}
	}
	src := &failingBoxes{boxes: boxes}
	h.env.Mailboxes = []tollguard.MailboxSource{src}
	ctx := context.Background()

	night := func(want int) {
		t.Helper()
		before := alerter.notices
		run := h.run(tollguard.PINsAudit{}, false)
		if n := len(audFindings(run)); n != 50 {
			t.Fatalf("run stored %d findings, want 50", n)
		}
		if got := alerter.notices - before; got != want {
			t.Fatalf("%s: %d notices, want %d", h.clock().Format("Jan 2"), got, want)
		}
		h.advance(24 * time.Hour)
	}
	night(50)
	night(0)
	open, err := h.db.Alerts(ctx, store.AlertFilter{Unacked: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 50 {
		t.Fatalf("%d open alerts, want 50", len(open))
	}
	for _, a := range open[:10] {
		if _, _, err := h.db.AckAlert(ctx, a.ID, "admin", h.clock()); err != nil {
			t.Fatal(err)
		}
	}
	night(0) // acknowledged or not
	// Still weak, but a different finding.
	src.boxes[0].PIN = "0000"
	night(1)
	for h.clock().Before(audT0.Add(tollguard.AuditRenotify)) {
		night(0)
	}
	// A week after the first notice: a reminder for each of the 39 open
	// unchanged alerts; the 10 acknowledged ones wait a week from the ack.
	night(39)
}

// TestAuditFindingBackAfterARunWithoutIt: a finding one run did not see
// was fixed; when it comes back it is news, acknowledged or not, however
// long apart the runs (a weekly schedule, the autumn clock change).
func TestAuditFindingBackAfterARunWithoutIt(t *testing.T) {
	h := newAudHarness(t)
	alerter := &storeAlerter{db: h.db, now: h.clock}
	h.env.Alerter = alerter
	weak := []tollguard.Mailbox{{Source: "test", Where: "voicemail.conf:10", Context: "default", Mailbox: "2000", PIN: "1234"}}
	src := &failingBoxes{boxes: weak}
	h.env.Mailboxes = []tollguard.MailboxSource{src}
	run := func(want int) {
		t.Helper()
		before := alerter.notices
		h.run(tollguard.PINsAudit{}, false)
		if got := alerter.notices - before; got != want {
			t.Fatalf("%s: %d notices, want %d", h.clock().Format("Jan 2 15:04"), got, want)
		}
	}
	run(1)
	h.advance(25 * time.Hour) // the autumn clock change
	run(0)                    // still there: quiet
	src.boxes = nil           // fixed
	h.advance(24 * time.Hour)
	run(0)
	src.boxes = weak // and back, well within the week
	h.advance(24 * time.Hour)
	run(1)
}
