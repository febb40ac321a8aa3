package agi

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

// TestDecisionDeadlineAtTheSessionDeadline: with a session timeout no
// longer than the decision timeout (the config accepts them equal), a
// gate that misses its deadline must still be answered: an emergency
// number allowed, a toll call denied. The watchdog's answer came after
// the session deadline and was never written; the include then hung up
// both with cause 34.
func TestDecisionDeadlineAtTheSessionDeadline(t *testing.T) {
	h := startServer(t, func(s *Server) {
		s.SessionTimeout, s.DecisionTimeout = 400*time.Millisecond, 400*time.Millisecond
		g := s.Gate.(*agitest.Gate)
		g.EmergencyFunc = func(d string) bool { return d == "000" }
		g.DecideFunc = func(ctx context.Context, c tollguard.Call) (tollguard.Decision, error) {
			<-ctx.Done() // a locked store
			return tollguard.Decision{}, ctx.Err()
		}
	})
	res := h.run(gated("000"))
	if res.Verdict() != "allow" || res.Reason() != "emergency" {
		t.Errorf("000 past the decision deadline: verdict %q reason %q; commands %q", res.Verdict(), res.Reason(), res.Commands)
	}
	res = h.run(gated("0044207946000"))
	if res.Verdict() != "deny" || res.Cause() != "34" {
		t.Errorf("toll call past the decision deadline: verdict %q cause %q; commands %q", res.Verdict(), res.Cause(), res.Commands)
	}
}
