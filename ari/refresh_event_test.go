package ari

import (
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
)

// A REGISTER refreshing a contact (same Contact URI) is not silent in
// Asterisk 22: the registrar updates the contact in sorcery
// (res_pjsip_registrar.c register_aor_core: user_agent, expiration;
// not via_addr/via_port), and pjsip_options.c's contact observer
// (contact_observer_updated -> sip_options_contact_update_task) publishes
// the contact's current status again, which ARI sends as a
// ContactStatusChange of the usual shape with that status: Reachable,
// Unreachable, Unknown or NonQualified. No recording has one: the events
// these tests push follow the source, not a capture.

// TestRefreshEventUnreachableJudgesTheNewPhone: a contact qualify found
// Unreachable (the desk phone unplugged) is refreshed by another phone
// that copied its Contact; the event says Unreachable. tollguard judged
// only Reachable and NonQualified events, so the new user agent waited
// for the hourly resync.
func TestRefreshEventUnreachableJudgesTheNewPhone(t *testing.T) {
	for _, status := range []string{tollguard.ContactUnreachable, tollguard.ContactUnknown} {
		t.Run(status, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			const uri = "sip:1001@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062"
			id := h.registerLive("1001", uri, "Yealink SIP-T46U")
			h.push(mustJSON(t, aritest.ContactEvent("1001", "1001", uri, status, h.l.Now())))
			h.drainRegistrations()
			if c := h.mustContact(id); c.Status != status || !c.Live {
				t.Fatalf("after the %s qualify result the contact is %+v", status, c)
			}
			if a := h.alerts.all(); len(a) != 0 {
				t.Fatalf("alerts before the refresh %+v, want none", a)
			}

			// The refresh from another phone, as its event.
			h.fake.Register("1001", "1001", uri, map[string]string{"user_agent": "friendly-scanner"}, false)
			h.push(mustJSON(t, aritest.ContactEvent("1001", "1001", uri, status, h.l.Now())))
			h.drainRegistrations()
			if a := h.alerts.kind(tollguard.AlertNewUserAgent); len(a) != 1 || a[0].Extension != "1001" {
				t.Errorf("alerts after the refresh event %+v, want one new_user_agent for 1001", h.alerts.all())
			}
			if c := h.mustContact(id); c.UserAgent != "friendly-scanner" || c.Status != status || !c.Live {
				t.Errorf("the contact after the refresh event %+v", c)
			}
		})
	}
}

// TestQualifyResultOfAPermanentContactIsNotARegistration: a contact=
// in pjsip.conf has no sorcery object; its qualify results still only
// set a status.
func TestQualifyResultOfAPermanentContactIsNotARegistration(t *testing.T) {
	h := newHarness(t)
	h.start()
	const uri = "sip:trunk@203.0.113.9:5060"
	h.push(mustJSON(t, aritest.ContactEvent("1002", "1002", uri, tollguard.ContactUnreachable, h.l.Now())))
	h.drainRegistrations()
	if _, ok := h.contact(tollguard.ContactID("1002", uri)); ok {
		t.Error("a permanent contact's qualify result was recorded as a registration")
	}
	if a := h.alerts.all(); len(a) != 0 {
		t.Errorf("alerts %+v", a)
	}
}
