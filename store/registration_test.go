package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

var regT0 = time.Date(2026, 11, 23, 0, 58, 5, 0, time.UTC)

func regContact(ext, uri, ip, ua string, at time.Time) tollguard.Contact {
	return tollguard.Contact{ID: tollguard.ContactID(ext, uri), AOR: ext, Extension: ext, URI: uri, IP: ip, Port: 5060,
		AddrSource: tollguard.AddrRewritten, UserAgent: ua, Status: tollguard.ContactNonQualified, LastSeen: at}
}

func TestRegistrations(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)

	a := regContact("1001", "sip:1001@192.0.2.10:5060", "192.0.2.10", "Yealink", regT0)
	h, err := db.ObserveContact(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if h.Registered || h.Previous != nil || len(h.IPs) != 0 {
		t.Fatalf("first registration history: %+v", h)
	}

	t.Run("SeenAgainWhileLiveKeepsCount", func(t *testing.T) {
		a2 := a
		a2.LastSeen = regT0.Add(time.Minute)
		a2.UserAgent = "" // an event without the object keeps the known agent
		h, err := db.ObserveContact(ctx, a2)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Registered || h.Previous == nil || h.Previous.Count != 1 || h.IPs[0] != "192.0.2.10" || h.Agents[0] != "Yealink" {
			t.Fatalf("history: %+v", h)
		}
		cs, err := db.Contacts(ctx, store.ContactFilter{Extension: "1001"})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Count != 1 || cs[0].UserAgent != "Yealink" || !cs[0].LastSeen.Equal(regT0.Add(time.Minute)) || !cs[0].FirstSeen.Equal(regT0) || !cs[0].Live {
			t.Fatalf("contacts: %+v", cs)
		}
	})

	t.Run("GoneThenBack", func(t *testing.T) {
		was, err := db.ContactGone(ctx, a.ID, regT0.Add(2*time.Minute))
		if err != nil || !was {
			t.Fatalf("gone: %v %v", was, err)
		}
		if was, _ := db.ContactGone(ctx, a.ID, regT0.Add(3*time.Minute)); was {
			t.Error("removed twice")
		}
		live, err := db.LiveContacts(ctx)
		if err != nil || len(live) != 0 {
			t.Fatalf("live after removal: %v %v", live, err)
		}
		a3 := a
		a3.LastSeen = regT0.Add(time.Hour)
		if _, err := db.ObserveContact(ctx, a3); err != nil {
			t.Fatal(err)
		}
		cs, _ := db.Contacts(ctx, store.ContactFilter{Extension: "1001", Live: true})
		if len(cs) != 1 || cs[0].Count != 2 || !cs[0].RemovedAt.IsZero() {
			t.Fatalf("re-registered: %+v", cs)
		}
	})

	t.Run("HistoryNewestFirst", func(t *testing.T) {
		b := regContact("1001", "sip:1001@198.51.100.7:5062", "198.51.100.7", "Zoiper", regT0.Add(2*time.Hour))
		if _, err := db.ObserveContact(ctx, b); err != nil {
			t.Fatal(err)
		}
		c := regContact("1001", "sip:1001@203.0.113.1:5062", "203.0.113.1", "Zoiper", regT0.Add(3*time.Hour))
		h, err := db.ObserveContact(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.IPs) != 2 || h.IPs[0] != "198.51.100.7" || h.IPs[1] != "192.0.2.10" {
			t.Errorf("ips: %v", h.IPs)
		}
		if len(h.Agents) != 2 || h.Agents[0] != "Zoiper" {
			t.Errorf("agents: %v", h.Agents)
		}
		// Another extension's history is its own.
		h2, err := db.ObserveContact(ctx, regContact("1002", "sip:1002@203.0.113.1:5062", "203.0.113.1", "Zoiper", regT0))
		if err != nil || h2.Registered || len(h2.IPs) != 0 {
			t.Fatalf("1002: %+v %v", h2, err)
		}
	})

	t.Run("StatusAndPrune", func(t *testing.T) {
		if err := db.SetContactStatus(ctx, a.ID, tollguard.ContactUnreachable, regT0.Add(4*time.Hour)); err != nil {
			t.Fatal(err)
		}
		cs, _ := db.Contacts(ctx, store.ContactFilter{Extension: "1001", Live: true})
		found := false
		for _, c := range cs {
			if c.ID == a.ID {
				found = c.Status == tollguard.ContactUnreachable && c.Live
			}
		}
		if !found {
			t.Fatalf("status not kept on a live contact: %+v", cs)
		}
		old := regContact("1003", "sip:1003@192.0.2.99:5060", "192.0.2.99", "Old", regT0.Add(-400*24*time.Hour))
		older := regContact("1003", "sip:1003@192.0.2.98:5060", "192.0.2.98", "Older", regT0.Add(-500*24*time.Hour))
		for _, c := range []tollguard.Contact{older, old} {
			if _, err := db.ObserveContact(ctx, c); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ContactGone(ctx, c.ID, c.LastSeen.Add(100*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		n, err := db.PruneContacts(ctx, regT0.Add(-180*24*time.Hour), regT0.Add(-180*24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v", n, err)
		}
		live, _ := db.LiveContacts(ctx)
		if len(live) != 4 {
			t.Errorf("live contacts after prune: %d, want 4", len(live))
		}
		// The extension's newest contact stays: its next registration
		// is not its first (which is never alerted), and the old
		// address is the one it knows.
		h, err := db.ObserveContact(ctx, regContact("1003", "sip:1003@203.0.113.66:5060", "203.0.113.66", "friendly-scanner", regT0))
		if err != nil || !h.Registered || len(h.IPs) != 1 || h.IPs[0] != "192.0.2.99" {
			t.Fatalf("1003 after the prune: %+v, %v", h, err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		if _, err := db.ObserveContact(ctx, tollguard.Contact{URI: "sip:x@y"}); tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("err %v", err)
		}
	})
}

func TestDetectorOverrides(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	acct, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	r := tollguard.DetectorRule{Threshold: 50, Window: 2 * time.Minute, Action: tollguard.ActionAlert}
	if err := db.SetDetectorOverride(ctx, "acme", tollguard.DetectBurstExt, r); err != nil {
		t.Fatal(err)
	}
	long := tollguard.DetectorRule{Threshold: 2, Window: time.Hour, Action: tollguard.ActionIntlBlock, Duration: 30 * time.Minute}
	if err := db.SetDetectorOverride(ctx, "acme", tollguard.DetectLongIntl, long); err != nil {
		t.Fatal(err)
	}
	r.Threshold = 60
	if err := db.SetDetectorOverride(ctx, "acme", tollguard.DetectBurstExt, r); err != nil {
		t.Fatal(err)
	}
	got, err := db.DetectorOverrides(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["acme"][tollguard.DetectBurstExt] != r || got["acme"][tollguard.DetectLongIntl] != long || len(got["acme"]) != 2 {
		t.Fatalf("overrides: %+v", got)
	}
	if err := db.SetDetectorOverride(ctx, "nobody", tollguard.DetectBurstExt, r); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Errorf("unknown account: %v", err)
	}
	bad := tollguard.DetectorRule{Threshold: 1, Window: time.Minute, Action: tollguard.ActionBlockExtension}
	if err := db.SetDetectorOverride(ctx, "acme", tollguard.DetectSweep, bad); tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Errorf("block on one event accepted: %v", err)
	}
	if ok, err := db.ClearDetectorOverride(ctx, "acme", tollguard.DetectBurstExt); !ok || err != nil {
		t.Fatalf("clear: %v %v", ok, err)
	}
	got, _ = db.DetectorOverrides(ctx)
	if _, still := got["acme"][tollguard.DetectBurstExt]; still || len(got["acme"]) != 1 {
		t.Errorf("after clear: %+v", got)
	}
}
