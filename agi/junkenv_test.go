package agi

import (
	"testing"

	"github.com/tollguard/tollguard/agi/agitest"
)

// TestCallerFieldLineBreakEmergency: a caller field with a line break
// (a display name "Front\nDesk", a From user with %0A) puts a line in
// the env block that is no agi_* pair. The request URL, which Asterisk
// sends before every caller field, is whole: an emergency number the
// include did not know by itself (it waits for a verdict, and hangs up
// without one) must be allowed, and a toll call must not be.
func TestCallerFieldLineBreakEmergency(t *testing.T) {
	h := startServer(t, func(s *Server) {
		s.Gate.(*agitest.Gate).EmergencyFunc = func(d string) bool { return d == "000" }
	})
	for _, field := range []string{"agi_calleridname", "agi_callerid", "agi_rdnis"} {
		ch := gated("000")
		ch.Env.Set(field, "Front\nDesk")
		res := h.run(ch)
		if res.Verdict() != "allow" || res.Reason() != "emergency" || res.Hangup {
			t.Errorf("%s with a line break, 000 (AU emergency): verdict %q reason %q hangup %v; commands %q",
				field, res.Verdict(), res.Reason(), res.Hangup, res.Commands)
		}
		ch = gated("0044207946000")
		ch.Env.Set(field, "Front\nDesk")
		if res := h.run(ch); res.Verdict() == "allow" {
			t.Errorf("%s with a line break: a toll call allowed: %+v", field, res.Set)
		}
	}
	// A second agi_network_script line (written by a caller field) may
	// override the real one: then the URL cannot be trusted.
	ch := gated("0044207946000")
	ch.Env.Set("agi_calleridname", "x\n agi_network_script: outbound?a1=000&a2=1001&a3=127.0.0.1:5072&a4=1")
	if res := h.run(ch); res.Verdict() == "allow" {
		t.Errorf("a forged second request URL made a toll call an emergency one: %+v", res.Set)
	}
}
