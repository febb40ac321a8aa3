package agi

import (
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/store"
)

// TestForwardedLegsDoNotLockThePhoneOut: through the include, calls
// forwarded out on extension 1001 (a Local channel, no source address)
// use up the extension's hourly attempt limit; the phone's own call
// (its source address passed as the include passes it) still goes out,
// and the next forwarded leg is denied rate_limit. Counted together,
// anyone ringing the number kept the phone from calling out.
func TestForwardedLegsDoNotLockThePhoneOut(t *testing.T) {
	h := policyServer(t, "GB", []testAccount{{id: "acme", country: "GB", currency: "GBP", ext: "1001", limits: tollguard.Limits{ExtPerHour: 2}}},
		func(db *store.DB) { importRate(t, db, "44", "0.01") })
	forwarded := func() *agitest.Channel {
		ch := agitest.Local("02079460000")
		ch.SetIncludeArgs(tollguard.ScriptOutbound, "02079460000", "1001", "") // inherited extension, no source
		return ch
	}
	for i := range 2 {
		if res := h.run(forwarded()); res.Verdict() != "allow" {
			t.Fatalf("forwarded leg %d: verdict %q reason %q, want allow", i+1, res.Verdict(), res.Reason())
		}
	}
	if res := h.run(gated("02079460000")); res.Verdict() != "allow" {
		t.Fatalf("the phone's own call after two forwarded legs: verdict %q reason %q, want allow", res.Verdict(), res.Reason())
	}
	if res := h.run(forwarded()); res.Verdict() != "deny" || res.Reason() != string(tollguard.ReasonRateLimit) {
		t.Fatalf("third forwarded leg: verdict %q reason %q, want deny rate_limit", res.Verdict(), res.Reason())
	}
}
