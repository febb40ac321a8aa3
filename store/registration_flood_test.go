package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestRegistrationFloodStaysBounded: a thief with the password registers
// again and again, each time from a new contact and address with a new
// user agent, each replacing the last (max_contacts=1,
// remove_existing=yes). Each added a history row, kept 180 days, and
// each write read them all. The history keeps historyCap values of each
// kind per extension; a flood cannot push out the phones the extension
// really uses, and a value it pushed out alerts again as new.
func TestRegistrationFloodStaysBounded(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	day := 24 * time.Hour
	t0 := regT0
	const flood = 1000

	// The desk phone, in use for a month; it re-registers (a new NAT
	// binding each time, replaced by the thief's next) all through the
	// flood.
	desk := func(i int, at time.Time) tollguard.Contact {
		return regContact("1001", fmt.Sprintf("sip:1001@192.0.2.10:%d", 30000+i), "192.0.2.10", "Yealink SIP-T46S", at)
	}
	// A laptop softphone used for a week, quiet for three weeks since.
	laptop := regContact("1001", "sip:1001@198.51.100.7:40000", "198.51.100.7", "Zoiper rv2.10", t0.Add(-30*day))
	// A new phone, first seen during the flood and every 20 of its
	// registrations: fresh, but seen too often to be pushed out.
	newPhone := func(i int, at time.Time) tollguard.Contact {
		return regContact("1001", fmt.Sprintf("sip:1001@192.0.2.11:%d", 50000+i), "192.0.2.11", "Grandstream GXP2170", at)
	}
	thief := func(i int, at time.Time) tollguard.Contact {
		ip := fmt.Sprintf("100.%d.%d.%d", 64+i/65536, i/256%256, i%256)
		return regContact("1001", fmt.Sprintf("sip:1001@%s:%d", ip, 10000+i), ip, fmt.Sprintf("friendly-scanner/%d", i), at)
	}

	var prev string
	register := func(c tollguard.Contact) tollguard.ContactHistory {
		t.Helper()
		h, err := db.ObserveContact(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" {
			if _, err := db.ContactGone(ctx, prev, c.LastSeen); err != nil {
				t.Fatal(err)
			}
		}
		prev = c.ID
		return h
	}
	register(desk(0, t0.Add(-31*day)))
	register(laptop)
	laptop.LastSeen = t0.Add(-21 * day) // its last re-registration
	register(laptop)
	register(desk(1, t0))

	rows := func(kind string) int { t.Helper(); return historyRows(t, db, "1001", kind) }
	at := t0
	for i := 0; i < flood; i++ {
		at = t0.Add(time.Duration(i+1) * time.Second)
		register(thief(i, at))
		switch {
		case i%50 == 25:
			register(desk(i, at))
		case i >= 500 && i%20 == 10:
			register(newPhone(i, at))
		}
		if ips, agents := rows("ip"), rows("agent"); ips > store.HistoryCap || agents > store.HistoryCap {
			t.Fatalf("after %d registrations of the flood: %d addresses, %d user agents in the history; want at most %d each", i+1, ips, agents, store.HistoryCap)
		}
	}
	if ips, agents := rows("ip"), rows("agent"); ips != store.HistoryCap || agents != store.HistoryCap {
		t.Errorf("after the flood: %d addresses, %d user agents; want the cap, %d", ips, agents, store.HistoryCap)
	}

	// What the listener does for each registration: record it, judge it
	// against what was known before.
	judge := func(c tollguard.Contact) []string {
		t.Helper()
		h := register(c)
		var kinds []string
		for _, f := range tollguard.JudgeContact(nil, nil, h, c, c.LastSeen).Findings {
			kinds = append(kinds, f.Kind)
		}
		return kinds
	}
	at = at.Add(time.Second)
	if got := judge(desk(flood, at)); len(got) != 0 {
		t.Errorf("the desk phone, registering all through the flood, alerted %v after it", got)
	}
	if got := judge(newPhone(flood, at)); len(got) != 0 {
		t.Errorf("the new phone, registering every 20 of the flood's, alerted %v after it", got)
	}
	if got := judge(regContact("1001", "sip:1001@198.51.100.7:40001", "198.51.100.7", "Zoiper rv2.10", at)); len(got) != 0 {
		t.Errorf("the laptop softphone, quiet for three weeks, alerted %v after the flood", got)
	}
	if got := judge(thief(0, at)); len(got) != 2 || got[0] != tollguard.AlertNewIP || got[1] != tollguard.AlertNewUserAgent {
		t.Errorf("the flood's first address and user agent, pushed out, registering again: %v; want new_ip and new_user_agent", got)
	}
}

// TestRegistrationFloodKeepsHalfEstablished: the bound's promise, on
// the database. An extension with 40 phones used for a month each and
// quiet since, and a new phone live since an hour (max_contacts=2), is
// flooded through its other slot. The new phone's values, in use, stay;
// so do the 32 most recently seen of the month-long ones, though two
// fresh values (the new phone's and the thief's current) are live.
func TestRegistrationFloodKeepsHalfEstablished(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	day := 24 * time.Hour
	t0 := regT0
	for i := 0; i < 40; i++ {
		c := regContact("1001", fmt.Sprintf("sip:1001@10.0.%d.1:5060", i), fmt.Sprintf("10.0.%d.1", i), fmt.Sprintf("Phone/%d", i), t0.Add(-60*day+time.Duration(i)*time.Minute))
		if _, err := db.ObserveContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ContactGone(ctx, c.ID, c.LastSeen.Add(30*day)); err != nil {
			t.Fatal(err)
		}
	}
	newPhone := regContact("1001", "sip:1001@192.0.2.99:5060", "192.0.2.99", "NewPhone/1.0", t0.Add(-time.Hour))
	if _, err := db.ObserveContact(ctx, newPhone); err != nil {
		t.Fatal(err)
	}
	prev := ""
	for i := 0; i < 300; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		ip := fmt.Sprintf("100.64.%d.%d", i/256, i%256)
		c := regContact("1001", fmt.Sprintf("sip:1001@%s:%d", ip, 10000+i), ip, fmt.Sprintf("friendly-scanner/%d", i), at)
		if _, err := db.ObserveContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		if prev != "" {
			if _, err := db.ContactGone(ctx, prev, at); err != nil {
				t.Fatal(err)
			}
		}
		prev = c.ID
	}
	for _, k := range []struct{ kind, newPhone string }{{"ip", newPhone.IP}, {"agent", newPhone.UserAgent}} {
		var total, established, kept int
		if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(last_seen - first_seen >= ?), 0), COALESCE(SUM(value = ?), 0)
			FROM registration_history WHERE extension = '1001' AND kind = ?`, int64(day/time.Second), k.newPhone, k.kind).Scan(&total, &established, &kept); err != nil {
			t.Fatal(err)
		}
		if total != store.HistoryCap || established != store.HistoryCap/2 || kept != 1 {
			t.Errorf("%s history after the flood: %d values, %d used over a day, new phone's kept: %d; want %d, %d, 1",
				k.kind, total, established, kept, store.HistoryCap, store.HistoryCap/2)
		}
	}
}

// TestHistoryFloodedBeforeTheCapTrimmedInBatches: an extension flooded
// before the cap holds a value per registration (86 000 a day at one a
// second). Its next registration evicted them all in its transaction:
// 1.2 s on the writer for 100 000 of each kind, which calls wait for
// (decision_timeout is 300 ms), where each registration took 0.1 s
// before. A registration leaves more than a batch too many to the
// prune, which reads them on a reader and evicts a batch a
// transaction; the desk phone stays known throughout, and a value seen
// again meanwhile stays.
func TestHistoryFloodedBeforeTheCapTrimmedInBatches(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	const batch, flooded = 10, 100
	store.SetTrimBatch(t, batch)
	day := 24 * time.Hour
	t0 := regT0
	desk := regContact("1001", "sip:1001@192.0.2.10:5060", "192.0.2.10", "Yealink SIP-T46S", t0.Add(-60*day))
	if _, err := db.ObserveContact(ctx, desk); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ContactGone(ctx, desk.ID, t0.Add(-day)); err != nil {
		t.Fatal(err)
	}
	// The flood, as the history kept it before the cap.
	for i := 0; i < flooded; i++ {
		at := t0.Add(-2*day + time.Duration(i)*time.Second).Unix()
		if _, err := db.SQL().ExecContext(ctx, `INSERT INTO registration_history(extension, kind, value, first_seen, last_seen)
			VALUES ('1001', 'ip', ?1, ?2, ?2), ('1001', 'agent', ?3, ?2, ?2)`, fmt.Sprintf("100.64.0.%d", i), at, fmt.Sprintf("friendly-scanner/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(kind string) int { t.Helper(); return historyRows(t, db, "1001", kind) }
	back := regContact("1001", "sip:1001@192.0.2.10:5061", "192.0.2.10", "Yealink SIP-T46S", t0)
	h, err := db.ObserveContact(ctx, back)
	if err != nil {
		t.Fatal(err)
	}
	if fs := tollguard.JudgeContact(nil, nil, h, back, t0).Findings; len(fs) != 0 {
		t.Errorf("the desk phone after the upgrade: %d findings (%s ...)", len(fs), fs[0].Kind)
	}
	if ips, agents := rows("ip"), rows("agent"); ips != 1+flooded || agents != 1+flooded {
		t.Errorf("after a registration: %d addresses, %d user agents; want %d each, left to the prune", ips, agents, 1+flooded)
	}
	// The flood's second address registers again while the prune
	// works: it was among those to go, but is in use again.
	again := regContact("1001", "sip:1001@100.64.0.1:7000", "100.64.0.1", "", t0.Add(time.Minute))
	store.SetAfterFloodRead(t, func(kind string) {
		if kind != "ip" {
			return
		}
		if _, err := db.ObserveContact(ctx, again); err != nil {
			t.Error(err)
		}
	})
	if _, err := db.PruneContacts(ctx, t0.Add(-day), t0.Add(-180*day)); err != nil {
		t.Fatal(err)
	}
	if ips, agents := rows("ip"), rows("agent"); ips != store.HistoryCap+1 || agents != store.HistoryCap {
		t.Errorf("after the prune: %d addresses, %d user agents; want %d (one seen again meanwhile) and %d", ips, agents, store.HistoryCap+1, store.HistoryCap)
	}
	var desks, oldest, seen int
	if err := db.SQL().QueryRowContext(ctx, `SELECT COALESCE(SUM(value IN ('192.0.2.10', 'Yealink SIP-T46S')), 0), COALESCE(SUM(value IN ('100.64.0.0', 'friendly-scanner/0')), 0),
		COALESCE(SUM(value = '100.64.0.1'), 0) FROM registration_history WHERE extension = '1001'`).Scan(&desks, &oldest, &seen); err != nil {
		t.Fatal(err)
	}
	if desks != 2 || oldest != 0 || seen != 1 {
		t.Errorf("after the prune: the desk phone's values %d of 2, the flood's oldest %d of 0, the one seen again %d of 1", desks, oldest, seen)
	}
}

// historyRows counts ext's registration history values of kind.
func historyRows(t *testing.T, db *store.DB, ext, kind string) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM registration_history WHERE extension = ? AND kind = ?`, ext, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
