package agi

import (
	"testing"

	"github.com/tollguard/tollguard"
)

// TestNANPOperatorThroughTheGate: a US phone dials 00 (the long-distance
// carrier's operator, who places calls anywhere billed to the line)
// through the include. The gate took it for an internal call and
// allowed it for two hours, free.
func TestNANPOperatorThroughTheGate(t *testing.T) {
	h := policyServer(t, "US", []testAccount{{id: "acme", country: "US", currency: "USD", ext: "1001"}}, nil)
	res := h.run(gated("00"))
	if res.Verdict() != "deny" || res.Reason() != string(tollguard.ReasonRateCeiling) || !res.Hangup {
		t.Errorf("US phone dialling 00: verdict %q reason %q hangup %v; commands %q", res.Verdict(), res.Reason(), res.Hangup, res.Commands)
	}
}
