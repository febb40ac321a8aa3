package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestExtBlockHangsUpCallsInProgress: `ext block` ends the extension's
// calls in progress through ARI (not its emergency call); without ARI
// it says how many run on.
func TestExtBlockHangsUpCallsInProgress(t *testing.T) {
	fake := newFakeARI(t)
	c := newCLI(t)
	c.seed()
	decide := func(uid, dialled string) {
		t.Helper()
		liveCall(t, fake, c.db, tollguard.Call{Extension: "1001", Dialled: dialled, Remote: "192.0.2.10", UniqueID: uid})
	}
	decide("pbx-8.1", "02079460000")
	decide("pbx-8.2", "999")

	// Without ARI: nothing to hang up with, and the admin is told.
	out := c.ok("ext", "block", "1001", "--reason", "stolen phone")
	if !strings.Contains(out, "calls in progress that run on until their MAXSEC: 1") {
		t.Errorf("without ARI: %s", out)
	}
	c.ok("unblock", "1001")

	code, stdout, stderr := runWithARI(t, fake, c.db, "ext", "block", "1001", "--reason", "stolen phone")
	if code != 0 {
		t.Fatalf("ext block with ARI: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "calls in progress hung up: 1") {
		t.Errorf("with ARI: %s", stdout)
	}
	if fake.HasChannel("pbx-8.1") || !fake.HasChannel("pbx-8.2") {
		t.Errorf("want the national call hung up and the emergency call left: national up %v, emergency up %v",
			fake.HasChannel("pbx-8.1"), fake.HasChannel("pbx-8.2"))
	}
	if r := fake.RequestsMatching(http.MethodDelete, "/channels/"); len(r) != 1 {
		t.Errorf("hangups sent: %+v", r)
	}
}

// TestAccountIntlBlock: `account intl-block` sets the account's
// international block (the gate then denies international calls, and
// the block history records it) and hangs up its international calls in
// progress, not its national or emergency ones; `unblock --intl` lifts it.
func TestAccountIntlBlock(t *testing.T) {
	fake := newFakeARI(t)
	c := newCLI(t)
	c.seed()
	for uid, dialled := range map[string]string{"nat": "02079460000", "intl": "0033123456789", "sos": "112"} {
		liveCall(t, fake, c.db, tollguard.Call{Extension: "1001", Dialled: dialled, Remote: "192.0.2.10", UniqueID: uid})
	}
	if code, _, errs := c.run("account", "intl-block", "acme"); code != exitUsage || !strings.Contains(errs, "--reason is required") {
		t.Errorf("no reason: exit %d %s", code, errs)
	}
	if code, _, errs := c.run("account", "intl-block", "nope", "--reason", "x"); code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("unknown account: exit %d %s", code, errs)
	}

	code, stdout, stderr := runWithARI(t, fake, c.db, "account", "intl-block", "acme", "--reason", "IRSF suspected")
	if code != 0 {
		t.Fatalf("intl-block: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "calls in progress hung up: 1") {
		t.Errorf("intl-block said: %s", stdout)
	}
	if fake.HasChannel("intl") || !fake.HasChannel("nat") || !fake.HasChannel("sos") {
		t.Errorf("want only the international call hung up: intl %v nat %v sos %v", fake.HasChannel("intl"), fake.HasChannel("nat"), fake.HasChannel("sos"))
	}
	if out := c.ok("check", "1001", "0033123456789"); !strings.Contains(out, "intl_block") {
		t.Errorf("check after the block:\n%s", out)
	}
	// Who set it: the reason alone does not tell an admin's block from
	// a detector's.
	if out := c.ok("account", "show", "acme"); !strings.Contains(out, "IRSF suspected (by admin:"+adminName()+")") ||
		!strings.Contains(out, "international block history:") {
		t.Errorf("account show lacks the block and who set it:\n%s", out)
	}
	c.ok("unblock", "--intl", "acme")
	var shown struct {
		History []struct {
			SetBy     string `json:"set_by"`
			ClearedBy string `json:"cleared_by"`
		} `json:"intl_block_history"`
	}
	if err := json.Unmarshal([]byte(c.ok("account", "show", "acme", "--json")), &shown); err != nil ||
		len(shown.History) != 1 || shown.History[0].SetBy != "admin:"+adminName() || shown.History[0].ClearedBy == "" {
		t.Errorf("account show --json history %+v (%v)", shown.History, err)
	}
	if out := c.ok("check", "1001", "0033123456789"); strings.Contains(out, "intl_block") {
		t.Errorf("check after unblock:\n%s", out)
	}
}

// TestExtBlockHangupFails: when ARI cannot hang the calls up, the block
// stays set and the command fails, saying what to do.
func TestExtBlockHangupFails(t *testing.T) {
	fake := newFakeARI(t)
	c := newCLI(t)
	c.seed()
	fake.SetChannel("pbx-9.1", "PJSIP/1001-pbx-9.1")
	decideOn(t, c.db, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.10", UniqueID: "pbx-9.1"})
	fake.Close() // Asterisk unreachable
	code, stdout, stderr := runWithARI(t, fake, c.db, "ext", "block", "1001", "--reason", "stolen phone")
	if code == 0 || !strings.Contains(stderr, "could not be hung up: 1") || !strings.Contains(stderr, "hang them up in Asterisk") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if out := c.ok("ext", "show", "1001"); !strings.Contains(out, "stolen phone") {
		t.Errorf("the block was not kept:\n%s", out)
	}
}

// pendingPurges lists the purges pending in the database at path.
func pendingPurges(t *testing.T, path string) []tollguard.PendingPurge {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ps, err := db.PendingPurges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestUnblockCancelsPendingPurge: unblocking an extension during its
// purge's grace period cancels the purge (both spellings of the
// command), so a later block does not let it run; a new purge then
// gets a grace period of its own.
func TestUnblockCancelsPendingPurge(t *testing.T) {
	for _, unblock := range [][]string{{"unblock"}, {"ext", "unblock"}} {
		t.Run(strings.Join(unblock, "_"), func(t *testing.T) {
			c := newCLI(t)
			c.seed()
			c.ok("ext", "purge", "1001")
			if ps := pendingPurges(t, c.db); len(ps) != 1 {
				t.Fatalf("after purge: pending %+v", ps)
			}
			out := c.ok(append(unblock, "1001")...)
			if !strings.Contains(out, "extension 1001 unblocked") || !strings.Contains(out, "pending purge of 1001 cancelled") {
				t.Errorf("unblock output:\n%s", out)
			}
			if ps := pendingPurges(t, c.db); len(ps) != 0 {
				t.Fatalf("after unblock: pending %+v", ps)
			}
			c.ok("ext", "block", "1001", "--reason", "again")
			if ps := pendingPurges(t, c.db); len(ps) != 0 {
				t.Fatalf("after a new block: pending %+v", ps)
			}
			if out := c.ok(append(unblock, "1001")...); strings.Contains(out, "purge") {
				t.Errorf("unblock with no purge pending:\n%s", out)
			}
			c.ok("ext", "purge", "1001")
			if ps := pendingPurges(t, c.db); len(ps) != 1 || ps[0].ScheduledAt.Before(time.Now().Add(-time.Minute)) {
				t.Fatalf("second purge: pending %+v", ps)
			}
		})
	}
}

// TestUnblockAcknowledgesAlerts: unblocking acknowledges the subject's
// open detector alerts (not audit or spend findings), so a detector's block right after starts a new alert,
// notified at once, instead of joining the old one's digest.
func TestUnblockAcknowledgesAlerts(t *testing.T) {
	c := newCLI(t)
	c.seed()
	ctx := context.Background()
	db := openStore(t, c.db)
	raise := func(subject string) int64 {
		t.Helper()
		res, err := db.RaiseAlert(ctx, tollguard.Alert{Kind: tollguard.AlertBurst, Subject: subject, Extension: "1001", Account: "acme",
			Severity: tollguard.SeverityCritical, Message: "burst"}, tollguard.AlertPolicy{}, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return res.State.ID
	}
	ext, acct, other := raise("ext:1001"), raise("account:acme"), raise("ext:1002")
	// An audit finding about the line stays open: unblocking fixes no
	// weak password.
	res, err := db.RaiseAlert(ctx, tollguard.Alert{Kind: "audit_weak_password", Subject: "ext:1001", Extension: "1001", Account: "acme",
		Severity: tollguard.SeverityCritical, Message: "weak password"}, tollguard.AlertPolicy{}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	audit := res.State.ID
	// Nor is a spend warning about the account: lifting the
	// international block does nothing about this month's spend.
	res, err = db.RaiseAlert(ctx, tollguard.Alert{Kind: tollguard.AlertSpend, Subject: "account:acme", Account: "acme",
		Severity: tollguard.SeverityWarning, Message: "spend over threshold"}, tollguard.AlertPolicy{}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	spend := res.State.ID
	c.ok("ext", "block", "1001", "--reason", "burst")
	if out := c.ok("unblock", "1001"); !strings.Contains(out, "1 open alert(s) about ext:1001 acknowledged") {
		t.Errorf("unblock output:\n%s", out)
	}
	c.ok("account", "intl-block", "acme", "--reason", "burst")
	if out := c.ok("unblock", "--intl", "acme"); !strings.Contains(out, "1 open alert(s) about account:acme acknowledged") {
		t.Errorf("unblock --intl output:\n%s", out)
	}
	for id, acked := range map[int64]bool{ext: true, acct: true, other: false, audit: false, spend: false} {
		a, err := db.Alert(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := !a.AckedAt.IsZero(); got != acked {
			t.Errorf("alert %d (%s) acknowledged %v, want %v", id, a.Subject, got, acked)
		}
	}
}

// TestBlockTwice: blocking what is blocked keeps the first reason, and
// says so instead of confirming a block that changed nothing; the block
// is recorded as the admin's by name, as unblocking is.
func TestBlockTwice(t *testing.T) {
	c := newCLI(t)
	c.seed()
	if out := c.ok("ext", "block", "1001", "--reason", "stolen phone"); !strings.Contains(out, "blocked") || strings.Contains(out, "already") {
		t.Errorf("first block: %s", out)
	}
	out := c.ok("ext", "block", "1001", "--reason", "second thoughts")
	if !strings.Contains(out, "extension 1001 was already blocked by admin:"+adminName()) || !strings.Contains(out, ": stolen phone; that reason stays, and yours is added to the block history") {
		t.Errorf("second block: %s", out)
	}
	c.ok("account", "intl-block", "acme", "--reason", "IRSF suspected")
	if out := c.ok("account", "intl-block", "acme", "--reason", "again"); !strings.Contains(out, "account acme was already blocked for international calls: IRSF suspected; that reason stays") {
		t.Errorf("second intl block: %s", out)
	}
	if out := c.ok("ext", "show", "1001"); !strings.Contains(out, "stolen phone") || strings.Contains(out, " admin ") {
		t.Errorf("ext show:\n%s", out)
	}
}
