package faulttest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/agi/agitest"
)

// emergencyChannel is the include's tollguard-emergency hangup handler
// recording a call to an emergency number after it ended:
// AGI(agi://…/emergency?a1=...,<number>,<ext>,<source>,<answered seconds>,
// <dial status>,<placed at>).
func emergencyChannel(ext, dialled string, billsec int, placed time.Time, seq int64) *agitest.Channel {
	ch := agitest.PJSIP("s")
	ch.Dead = true // the channel has hung up
	ch.SetIncludeArgs("emergency", dialled, ext, "127.0.0.1:5072", fmt.Sprint(billsec), "ANSWER", fmt.Sprint(placed.Unix()))
	ch.SetChannel(fmt.Sprintf("PJSIP/%s-%08x", ext, seq))
	ch.Env.Set("agi_uniqueid", uniqueID(seq))
	ch.Env.Set("agi_context", "tollguard-emergency")
	ch.Env.Set("agi_extension", "s")
	return ch
}

// TestEmergencyRecordedAfterTheCall: the include dials the numbers on
// its emergency list without asking tollguard, and records them from a
// hangup handler. The real daemon records such a call as allowed
// (reason emergency) and settles it at no charge, for an extension that
// is blocked on an account with no credit; it says nothing to the
// channel, which has hung up. A number on the include's list that the
// account's plan does not know as an emergency number is recorded as
// the gate would decide it, with a warning to fix the lists.
func TestEmergencyRecordedAfterTheCall(t *testing.T) {
	env := NewEnv(t, nil)
	env.Seed(testDeck, Account{ID: "broke", Extensions: []string{"1001"}})
	env.MustCLI("ext", "block", "1001", "--reason", "compromised")
	d := env.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	placed := time.Now().Add(-time.Minute).Truncate(time.Second)
	res, err := emergencyChannel("1001", "999", 42, placed, 1).Run(ctx, d.AGI)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commands) != 0 {
		t.Errorf("commands sent to a hung-up channel: %q", res.Commands)
	}
	// An ordinary number through the same script (the include's list
	// says 000; a GB account's plan does not).
	if _, err := emergencyChannel("1001", "000", 7, placed, 2).Run(ctx, d.AGI); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Log.WaitFor(ctx, msgIs("an emergency number on the include's list was dialled, but the gate would deny it; "+
		"recorded as denied, not charged. Check the emergency numbers of the account's numbering plan and the include's TOLLGUARD_EMERGENCY")); !ok {
		d.dump()
		t.Fatal("no warning for 000")
	}

	calls := env.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d call rows, want 2: %+v", len(calls), calls)
	}
	var id int64
	for _, c := range calls {
		switch c.UniqueID {
		case uniqueID(1):
			id = c.ID
			if c.Verdict != "allow" || c.Reason != "emergency" || c.Billsec != 42 || c.Charge != 0 ||
				!c.SettledAt.Valid || c.SettledBy != "emergency" {
				t.Errorf("999: %+v", c)
			}
		case uniqueID(2):
			if c.Verdict != "deny" || c.Reason != "blocked_extension" || c.Charge != 0 {
				t.Errorf("000: %+v", c)
			}
		default:
			t.Errorf("unexpected row %+v", c)
		}
	}
	if out := env.MustCLI("calls", "show", fmt.Sprint(id)); !strings.Contains(out, "emergency") {
		t.Errorf("calls show %d:\n%s", id, out)
	}
	// Dated when the call was placed, not when it was recorded.
	db := env.OpenDB()
	defer db.Close()
	var created int64
	if err := db.QueryRow(`SELECT created_at FROM calls WHERE id = ?`, id).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if created != placed.Unix() {
		t.Errorf("999 recorded at %d, want %d (when it was placed)", created, placed.Unix())
	}
}

// TestEmergencyRecordBilledTheCallOnly: a number on the include's list
// that the account's plan prices as an ordinary call is charged, and
// with ANSWEREDTIME (the caller channel's up time) it was charged for
// the channel's whole hour: 3600 s for a call placed a minute ago. It
// is capped at the time since the call was placed.
func TestEmergencyRecordBilledTheCallOnly(t *testing.T) {
	env := NewEnv(t, nil)
	env.Seed(testDeck, Account{ID: "acme", Credit: "100.00", Extensions: []string{"1001"}})
	d := env.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	placed := time.Now().Add(-60 * time.Second).Truncate(time.Second)
	if _, err := emergencyChannel("1001", numLeeds, 3600, placed, 1).Run(ctx, d.AGI); err != nil {
		t.Fatal(err)
	}
	calls := env.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d call rows: %+v", len(calls), calls)
	}
	for _, c := range calls {
		if c.Verdict != "allow" || !c.SettledAt.Valid || c.Billsec < 60 || c.Billsec > 62 {
			t.Errorf("billed %d s for a call placed 60 s ago: %+v", c.Billsec, c)
		}
	}
}

// TestEmergencyOfAnAccountsCountryWithTheStoreLockedAfterStart: the
// include dials 112, 911 and 999 by itself; a country's own emergency
// numbers (DE 110) wait for the gate unless the admin listed them in
// TOLLGUARD_EMERGENCY (and one that is a paid short code in another of
// the PBX's countries, CH 1414 beside BE, is left off that list on
// purpose). Right after a start, with the database locked by another
// writer past the decision deadline, the gate must still allow such a
// number for an account of that country: it must not depend on that
// account having placed a call since the start.
func TestEmergencyOfAnAccountsCountryWithTheStoreLockedAfterStart(t *testing.T) {
	env := NewEnv(t, nil) // default_country GB
	env.Seed(testDeck, Account{ID: "berlin", Flags: []string{"--country", "DE", "--currency", "EUR"}, Extensions: []string{"2001"}})
	d := env.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Another writer holds the database (a CLI import, a backup).
	conn, err := env.OpenDB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	res, err := gateChannel("2001", "110", 1).Run(ctx, d.AGI)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict() != "allow" || res.Reason() != "emergency" || res.Hangup {
		d.dump()
		t.Fatalf("110 (DE police) from a DE account with the store locked: verdict %q reason %q cause %q hangup %v",
			res.Verdict(), res.Reason(), res.Cause(), res.Hangup)
	}
	// A toll call in the same state still fails closed.
	res, err = gateChannel("2001", numLeeds, 2).Run(ctx, d.AGI)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict() == "allow" {
		t.Fatalf("toll call allowed with the store locked: %+v", res.Set)
	}
}
