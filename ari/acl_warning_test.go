package ari

import (
	"testing"

	"github.com/tollguard/tollguard"
)

// TestAccessListWarningNotRepeatedForALiveContact: a phone registered
// with a private address outside its extension's list is warned about
// once. Its refresh events and the resync after Asterisk restarts judge
// it again, unchanged: no second warning (every phone's warning came
// again after each Asterisk restart). The same contact refreshed by
// another phone while tollguard was away is judged as new: the new
// user agent and the warning again.
func TestAccessListWarningNotRepeatedForALiveContact(t *testing.T) {
	h := newHarness(t)
	setCIDRs(t, h.db, "1001", "192.0.2.0/24")
	h.start()
	const uri = "sip:1001@192.168.1.20:5060"
	h.registerLive("1001", uri, "Yealink")
	h.drainRegistrations()
	if a := h.alerts.kind(tollguard.AlertCredentialsCompromised); len(a) != 1 || len(h.alerts.all()) != 1 {
		t.Fatalf("alerts after the registration %+v, want the one access-list warning", h.alerts.all())
	}

	// Refreshes: the contact's status again (pjsip_options.c), unchanged.
	for _, status := range []string{tollguard.ContactNonQualified, tollguard.ContactReachable, tollguard.ContactUnknown} {
		h.fake.Register("1001", "1001", uri, map[string]string{"user_agent": "Yealink"}, false)
		h.push(mustJSON(t, aritestContactEvent("1001", "1001", uri, status)))
	}
	h.drainRegistrations()
	if a := h.alerts.all(); len(a) != 1 {
		t.Errorf("refresh events of the unchanged contact alerted again: %+v", a[1:])
	}

	// Asterisk restarts; the contact survives it (astdb).
	resyncs := h.hooks.snapshot().resyncs
	if err := h.fake.Restart(); err != nil {
		t.Fatal(err)
	}
	h.waitConnected(2)
	h.waitResyncs(resyncs + 1)
	if a := h.alerts.all(); len(a) != 1 {
		t.Errorf("the resync after Asterisk restarted alerted again for the unchanged contact: %+v", a[1:])
	}

	// Away again; meanwhile another phone refreshes the same Contact.
	h.fake.Stop()
	h.fake.Register("1001", "1001", uri, map[string]string{"user_agent": "friendly-scanner"}, false)
	resyncs = h.hooks.snapshot().resyncs
	if err := h.fake.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitConnected(3)
	h.waitResyncs(resyncs + 1)
	if a := h.alerts.kind(tollguard.AlertNewUserAgent); len(a) != 1 {
		t.Errorf("new_user_agent alerts after the changed contact %+v, want one", h.alerts.all())
	}
	if a := h.alerts.kind(tollguard.AlertCredentialsCompromised); len(a) != 2 {
		t.Errorf("access-list warnings after the changed contact: %d, want 2 (it is judged as new): %+v", len(a), h.alerts.all())
	}
}

// TestAccessListTightenedWarnsAtTheHourlyResync: 1002 registered from a
// private address inside its list; the list is then tightened. The
// hourly resync warns about it (it kept quiet for every contact already
// live, so only the next reconnect did), once.
func TestAccessListTightenedWarnsAtTheHourlyResync(t *testing.T) {
	h := newHarness(t)
	setCIDRs(t, h.db, "1002", "10.0.0.0/8")
	h.start()
	h.registerLive("1002", "sip:1002@10.0.0.5:5060", "Snom")
	h.drainRegistrations()
	if a := h.alerts.all(); len(a) != 0 {
		t.Fatalf("alerts for a contact inside its list %+v", a)
	}

	setCIDRs(t, h.db, "1002", "192.0.2.0/24")
	resyncs := h.hooks.snapshot().resyncs
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 1)
	if a := h.alerts.kind(tollguard.AlertCredentialsCompromised); len(a) != 1 || a[0].Extension != "1002" || len(h.alerts.all()) != 1 {
		t.Fatalf("alerts after the list was tightened and the hourly resync ran %+v, want one access-list warning for 1002", h.alerts.all())
	}

	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 2)
	if a := h.alerts.all(); len(a) != 1 {
		t.Errorf("the next hourly resync warned again: %+v", a[1:])
	}

	// Tightened once more: the warning's networks changed, so again.
	setCIDRs(t, h.db, "1002", "192.0.2.0/25")
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 3)
	if a := h.alerts.kind(tollguard.AlertCredentialsCompromised); len(a) != 2 {
		t.Errorf("access-list warnings after the list changed again: %d, want 2: %+v", len(a), h.alerts.all())
	}
}
