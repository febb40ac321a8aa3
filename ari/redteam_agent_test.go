package ari

import (
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// A phone writes its User-Agent, and Asterisk's registrar copies the
// whole header (res_pjsip_registrar.c: no length limit). A thief
// registering with a look-alike of the known phone's agent (a Cyrillic
// "е") must not get an alert that reads as the known phone again.
func TestNewUserAgentLookAlikeIsVisible(t *testing.T) {
	h := newHarness(t).start()
	const known = "Yealink SIP-T46S 66.86.0.15"
	const fake = "Y\u0435alink SIP-T46S 66.86.0.15" // Cyrillic е
	h.fake.Register("1001", "1001", uriHome, map[string]string{"user_agent": known}, true)
	testutil.Eventually(t, waitLimit, "first contact", func() bool { c, ok := h.contact(tollguard.ContactID("1001", uriHome)); return ok && c.Live })
	h.fake.Register("1001", "1001", "sip:1001@198.51.100.7:40313;transport=udp;x-ast-orig-host=192.168.1.5:5060", map[string]string{"user_agent": fake}, true)
	testutil.Eventually(t, waitLimit, "new_user_agent alert", func() bool { return len(h.alerts.kind(tollguard.AlertNewUserAgent)) == 1 })
	msg := h.alerts.kind(tollguard.AlertNewUserAgent)[0].Message
	if !strings.Contains(msg, `\u0435`) {
		t.Errorf("the look-alike agent reads as the known one: %s", msg)
	}
}

// A 60 kB User-Agent (one TCP REGISTER) is neither stored whole, for
// every re-registration to add another, nor copied into alerts.
func TestHugeUserAgentBounded(t *testing.T) {
	h := newHarness(t).start()
	h.fake.Register("1001", "1001", uriHome, map[string]string{"user_agent": "Yealink SIP-T46S 66.86.0.15"}, true)
	testutil.Eventually(t, waitLimit, "first contact", func() bool { c, ok := h.contact(tollguard.ContactID("1001", uriHome)); return ok && c.Live })
	huge := strings.Repeat("A", 60_000)
	uri := "sip:1001@198.51.100.7:40314;transport=udp;x-ast-orig-host=192.168.1.5:5060"
	h.fake.Register("1001", "1001", uri, map[string]string{"user_agent": huge}, true)
	testutil.Eventually(t, waitLimit, "new_user_agent alert", func() bool { return len(h.alerts.kind(tollguard.AlertNewUserAgent)) == 1 })
	if c, _ := h.contact(tollguard.ContactID("1001", uri)); len(c.UserAgent) > 300 {
		t.Errorf("stored a %d-byte user agent", len(c.UserAgent))
	}
	if msg := h.alerts.kind(tollguard.AlertNewUserAgent)[0].Message; len(msg) > 2000 {
		t.Errorf("a %d-byte alert message", len(msg))
	}
}
