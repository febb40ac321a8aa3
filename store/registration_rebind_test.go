package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestNATRebindingStaysBounded: a phone behind NAT under
// rewrite_contact=yes gets a new contact URI each time its router
// rebinds the port, and Asterisk removes the old contact (Removed, on
// expiry or replacement). Each removed contact was kept 180 days as the
// history "new IP" and "new user agent" judge against: about 4 300 rows
// per phone at 24 rebinds a day. Removed contacts now go after a day,
// and the history is one row per extension and address or user agent,
// so what the phone registered from is still known.
func TestNATRebindingStaysBounded(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	const days = 30
	t0 := regT0
	// An earlier phone on another network, long gone (but within the
	// retention): its address must stay known.
	first := regContact("1001", "sip:1001@192.0.2.50:5060", "192.0.2.50", "Yealink SIP-T46S", t0.Add(-time.Hour))
	if _, err := db.ObserveContact(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ContactGone(ctx, first.ID, t0); err != nil {
		t.Fatal(err)
	}
	var prev tollguard.Contact
	for h := 0; h < days*24; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		c := regContact("1001", fmt.Sprintf("sip:1001@198.51.100.7:%d", 20000+h), "198.51.100.7", "Yealink SIP-T46S", at)
		if _, err := db.ObserveContact(ctx, c); err != nil {
			t.Fatal(err)
		}
		if prev.ID != "" {
			if _, err := db.ContactGone(ctx, prev.ID, at); err != nil { // Asterisk's Removed for the old binding
				t.Fatal(err)
			}
		}
		prev = c
		if h%24 == 23 { // the listener prunes hourly; daily is enough here
			if _, err := db.PruneContacts(ctx, at.Add(-24*time.Hour), at.Add(-180*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := db.Contacts(ctx, store.ContactFilter{Extension: "1001", Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) > 30 {
		t.Errorf("%d contact rows for one phone after %d days of hourly rebinds; want at most a day's", len(all), days)
	}
	live, err := db.Contacts(ctx, store.ContactFilter{Extension: "1001", Live: true})
	if err != nil || len(live) != 1 || live[0].ID != prev.ID {
		t.Errorf("live contacts %+v, %v; want the current binding", live, err)
	}
	// The next rebinding, and an attacker's registration, are judged
	// against everything the phone registered from.
	h, err := db.ObserveContact(ctx, regContact("1001", "sip:1001@203.0.113.66:5060", "203.0.113.66", "friendly-scanner", t0.AddDate(0, 0, days)))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Registered || !slices.Contains(h.IPs, "198.51.100.7") || !slices.Contains(h.IPs, "192.0.2.50") ||
		slices.Contains(h.IPs, "203.0.113.66") || !slices.Equal(h.Agents, []string{"Yealink SIP-T46S"}) {
		t.Errorf("history after the prunes: %+v; want both known addresses, the one user agent", h)
	}
}

// TestPruneContactsInBatches: the prune deletes in batches, each its own
// transaction; across batches each extension's newest contact (a live
// one first) still stays, and every other removed contact goes.
func TestPruneContactsInBatches(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	store.SetPruneBatch(t, 7)
	t0 := regT0
	newest := map[string]string{}
	for e := 0; e < 5; e++ {
		ext := fmt.Sprint(2000 + e)
		for i := 0; i < 12; i++ {
			at := t0.Add(time.Duration(i) * time.Hour)
			c := regContact(ext, fmt.Sprintf("sip:%s@198.51.100.%d:%d", ext, e, 20000+i), fmt.Sprintf("198.51.100.%d", e), "Yealink", at)
			if _, err := db.ObserveContact(ctx, c); err != nil {
				t.Fatal(err)
			}
			newest[ext] = c.ID
			// 2000 keeps a live contact: its oldest; the others are gone.
			if e == 0 && i == 0 {
				continue
			}
			if _, err := db.ContactGone(ctx, c.ID, at.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := db.PruneContacts(ctx, t0.AddDate(0, 0, 2), t0.AddDate(0, 0, -180))
	if err != nil || n != 5*11 {
		t.Fatalf("pruned %d, %v; want 55 (all but one contact of each of 5 extensions)", n, err)
	}
	for e := 0; e < 5; e++ {
		ext := fmt.Sprint(2000 + e)
		left, err := db.Contacts(ctx, store.ContactFilter{Extension: ext, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || (e > 0 && left[0].ID != newest[ext]) || (e == 0 && !left[0].Live) {
			t.Errorf("%s after the prune: %+v; want only its newest contact (2000: its live one)", ext, left)
		}
	}
}

// TestQuietLiveContactStaysKnownAfterRemoval: a desk phone's contact,
// live for longer than the history retention without an event (a quiet
// line on a stable ARI connection), had its address and user agent
// pruned from the history while a softphone on the same extension
// registered later; its contact kept them known while live. When the
// phone then unregistered (a holiday, a power cut), the removal only
// updated history rows that no longer existed, and a day later its
// contact went: its next registration, from its usual address, raised
// new_ip and new_user_agent. The removal records them again.
func TestQuietLiveContactStaysKnownAfterRemoval(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	t0 := regT0
	day := 24 * time.Hour
	const retention = 180 * 24 * time.Hour
	desk := regContact("1001", "sip:1001@192.0.2.10:5060", "192.0.2.10", "Yealink SIP-T46S", t0)
	if _, err := db.ObserveContact(ctx, desk); err != nil {
		t.Fatal(err)
	}
	soft := regContact("1001", "sip:1001@198.51.100.7:40000", "198.51.100.7", "Zoiper rv2.10", t0.Add(200*day))
	if _, err := db.ObserveContact(ctx, soft); err != nil {
		t.Fatal(err)
	}
	prune := func(now time.Time) {
		t.Helper()
		if _, err := db.PruneContacts(ctx, now.Add(-day), now.Add(-retention)); err != nil {
			t.Fatal(err)
		}
	}
	prune(t0.Add(200 * day))
	if _, err := db.ContactGone(ctx, desk.ID, t0.Add(201*day)); err != nil {
		t.Fatal(err)
	}
	prune(t0.Add(203 * day))
	h, err := db.ObserveContact(ctx, regContact("1001", "sip:1001@192.0.2.10:5060", "192.0.2.10", "Yealink SIP-T46S", t0.Add(204*day)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.IPs, "192.0.2.10") || !slices.Contains(h.Agents, "Yealink SIP-T46S") {
		t.Errorf("the desk phone's return 3 days after it unregistered: history %+v; want its address and user agent known", h)
	}
}

// TestPruneKeepsBothPhonesGoneInOneSecond: an extension's two phones
// unregistered while tollguard was down; the resync at its restart
// marked both gone in the same second. After the retention the prune
// keeps one contact (the lowest id) and, of each kind, one history
// value (the lowest value): another phone's when the ids and values
// sort apart. Registrations no longer read removed contacts, so the
// kept contact's phone, back after a seasonal closure, raised new_ip
// and new_user_agent. The prune keeps every value last seen in the
// newest second.
func TestPruneKeepsBothPhonesGoneInOneSecond(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	t0 := regT0
	day := 24 * time.Hour
	// The phone with the lower contact id gets the higher address and
	// user agent: the prune's two tie-breaks pick different phones.
	uris := []string{"sip:1001@192.0.2.10:5060", "sip:1001@198.51.100.7:40000"}
	slices.SortFunc(uris, func(a, b string) int {
		return strings.Compare(tollguard.ContactID("1001", a), tollguard.ContactID("1001", b))
	})
	phones := []tollguard.Contact{
		regContact("1001", uris[0], "198.51.100.7", "Zoiper rv2.10", t0),
		regContact("1001", uris[1], "192.0.2.10", "Yealink SIP-T46S", t0.Add(time.Hour)),
	}
	for _, p := range phones {
		if _, err := db.ObserveContact(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	restart := t0.Add(10 * day)
	for _, p := range phones {
		if _, err := db.ContactGone(ctx, p.ID, restart); err != nil {
			t.Fatal(err)
		}
	}
	now := restart.Add(181 * day)
	if _, err := db.PruneContacts(ctx, now.Add(-day), now.Add(-180*day)); err != nil {
		t.Fatal(err)
	}
	for i, p := range phones {
		back := regContact("1001", fmt.Sprintf("sip:1001@%s:%d", p.IP, 50000+i), p.IP, p.UserAgent, now.Add(time.Duration(i)*time.Minute))
		h, err := db.ObserveContact(ctx, back)
		if err != nil {
			t.Fatal(err)
		}
		if fs := tollguard.JudgeContact(nil, nil, h, back, back.LastSeen).Findings; len(fs) != 0 {
			t.Errorf("%s back after 181 idle days: %d findings (%s ...); known %v, %v", p.UserAgent, len(fs), fs[0].Kind, h.IPs, h.Agents)
		}
	}
}
