package ari

import (
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestHourlyResyncIsQuietUnlessSomethingChanged: the hourly resync reads
// every contact again. When Asterisk's contacts are what the events said,
// it raises no alert (not even again the warning a live contact raised
// when it registered) and logs nothing at INFO; a registration whose
// event was missed is judged (new_ip) and summed up in one INFO line.
func TestHourlyResyncIsQuietUnlessSomethingChanged(t *testing.T) {
	h := newHarness(t)
	setCIDRs(t, h.db, "1001", "192.0.2.0/24")
	h.start()
	// A private address outside 1001's access list: a warning, once.
	desk := h.fake.Register("1001", "1001", "sip:1001@192.168.1.20:5060", map[string]string{"user_agent": "Yealink"}, true)
	snom := h.fake.Register("1002", "1002", "sip:1002@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062", map[string]string{"user_agent": "Snom"}, true)
	testutil.Eventually(t, waitLimit, "both registrations recorded", func() bool {
		a, okA := h.contact(desk)
		b, okB := h.contact(snom)
		return okA && okB && a.Live && b.Live
	})
	h.drainRegistrations()
	if a := h.alerts.all(); len(a) != 1 || a[0].Kind != tollguard.AlertCredentialsCompromised {
		t.Fatalf("alerts after the registrations %+v, want the one access-list warning", a)
	}

	mark := len(h.logs.String())
	resyncs := h.hooks.snapshot().resyncs
	last := h.l.State().LastResync
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 1)
	if a := h.alerts.all(); len(a) != 1 {
		t.Errorf("the hourly resync with nothing changed raised alerts: %+v", a[1:])
	}
	logs := h.logs.String()[mark:]
	if strings.Contains(logs, "level=INFO") {
		t.Errorf("the hourly resync with nothing changed logged at INFO:\n%s", logs)
	}
	if !strings.Contains(logs, `level=DEBUG msg="registrations resynchronised; nothing changed" contacts=2`) {
		t.Errorf("no DEBUG summary of the hourly resync:\n%s", logs)
	}
	if st := h.l.State(); st.LastResync.Sub(last) < resyncEvery || st.LastResyncErr != "" || st.ResyncContacts != 2 {
		t.Errorf("state after the hourly resync %+v; the one before at %s", st, last)
	}

	// 1002 moved to another address and its event was lost.
	h.fake.Unregister("1002", "1002", "sip:1002@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062", false)
	moved := h.fake.Register("1002", "1002", "sip:1002@203.0.113.50:5062;x-ast-orig-host=10.0.0.2:5062", map[string]string{"user_agent": "Snom"}, false)
	mark = len(h.logs.String())
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 2)
	if a := h.alerts.kind(tollguard.AlertNewIP); len(a) != 1 || a[0].Extension != "1002" || len(h.alerts.all()) != 2 {
		t.Errorf("alerts after the missed move %+v, want one new_ip for 1002", h.alerts.all())
	}
	if c := h.mustContact(moved); !c.Live {
		t.Errorf("the moved contact not live: %+v", c)
	}
	if c := h.mustContact(snom); c.Live {
		t.Errorf("the old contact still live: %+v", c)
	}
	if r := h.hooks.snapshot().reports; len(r) < 3 ||
		r[0] != (ResyncReport{Trigger: ResyncConnect, Result: ResyncOK}) ||
		r[1] != (ResyncReport{Trigger: ResyncPeriodic, Result: ResyncOK, Contacts: 2}) ||
		r[2] != (ResyncReport{Trigger: ResyncPeriodic, Result: ResyncOK, Contacts: 2, New: 1, Ended: 1}) {
		t.Errorf("resync reports %+v, want the connect one, an unchanged hourly one, and one with a new and an ended registration", r)
	}
	logs = h.logs.String()[mark:]
	if n := strings.Count(logs, `level=INFO msg="registrations resynchronised`); n != 1 ||
		!strings.Contains(logs, `contacts=2 new=1 gone=1 ended_extensions=1002`) {
		t.Errorf("want one INFO summary of what the hourly resync changed:\n%s", logs)
	}
}

// TestHourlyResyncJudgesAChangedContact: Asterisk refreshes a contact in
// place (same URI, so the same id) with the user agent of the new
// REGISTER. When its event is lost (a full queue, a reconnect), the
// hourly resync is the first to see the new phone, so it must judge it:
// kept quiet as "already live", the agent went into the history
// unalerted, and no later pass could tell.
func TestHourlyResyncJudgesAChangedContact(t *testing.T) {
	h := newHarness(t)
	h.start()
	const uri = "sip:1001@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062"
	id := h.registerLive("1001", uri, "Yealink SIP-T46U")
	h.drainRegistrations()
	if a := h.alerts.all(); len(a) != 0 {
		t.Fatalf("alerts after the first registration %+v, want none", a)
	}

	// The refresh from another phone with the same Contact; its event lost.
	h.fake.Register("1001", "1001", uri, map[string]string{"user_agent": "friendly-scanner"}, false)
	mark := len(h.logs.String())
	resyncs := h.hooks.snapshot().resyncs
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 1)
	if a := h.alerts.kind(tollguard.AlertNewUserAgent); len(a) != 1 || a[0].Extension != "1001" {
		t.Errorf("alerts after the hourly resync %+v, want one new_user_agent for 1001", h.alerts.all())
	}
	if c := h.mustContact(id); c.UserAgent != "friendly-scanner" {
		t.Errorf("the contact's user agent after the hourly resync %q", c.UserAgent)
	}
	if r := h.hooks.snapshot().reports; r[len(r)-1] != (ResyncReport{Trigger: ResyncPeriodic, Result: ResyncOK, Contacts: 1, Changed: 1}) {
		t.Errorf("the hourly resync's report %+v, want one changed contact", r[len(r)-1])
	}
	if logs := h.logs.String()[mark:]; !strings.Contains(logs, `level=INFO msg="registrations resynchronised: Asterisk's contacts differed from what its events said" contacts=1 new=0 gone=0 ended_extensions="" changed=1`) {
		t.Errorf("want an INFO summary counting the changed contact:\n%s", logs)
	}

	// Unchanged since: the next hourly pass does not repeat it.
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 2)
	if a := h.alerts.all(); len(a) > 1 {
		t.Errorf("the second hourly resync alerted again: %+v", a[1:])
	}
}

// TestResyncIntervalConfigured: with ResyncInterval 10m ([ari]
// resync_interval), the periodic pass comes 10 minutes after the last,
// not an hour.
func TestResyncIntervalConfigured(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.ResyncInterval = 10 * time.Minute }))
	h.start()
	resyncs := h.hooks.snapshot().resyncs
	h.advance(5 * time.Minute)
	time.Sleep(2*tickEvery + 500*time.Millisecond)
	if n := h.hooks.snapshot().resyncs; n != resyncs {
		t.Fatalf("%d resyncs 5 minutes into a 10-minute interval", n-resyncs)
	}
	h.advance(5 * time.Minute)
	h.waitResyncs(resyncs + 1)
	if r := h.hooks.snapshot().reports; r[len(r)-1].Trigger != ResyncPeriodic {
		t.Errorf("the periodic pass reported %+v", r[len(r)-1])
	}
}
