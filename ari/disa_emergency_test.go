package ari

import (
	"context"
	"testing"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"

	"github.com/tollguard/tollguard"
)

// TestDISAEmergencyAfterUnansweredIntl: on a DISA line, an international
// number rings out unanswered, then the caller dials 999. The include
// clears the TOLLGUARD_* variables and sets the emergency allow itself
// (no gate record, no TOLLGUARD_CALLID). The emergency call's answer must
// not be taken as the international number's, nor its length raise
// long_intl.
func TestDISAEmergencyAfterUnansweredIntl(t *testing.T) {
	h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
		tollguard.DetectLongIntl: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert, Duration: time.Hour},
	}))
	tr, phone, t0 := disaLine(h)
	ctx := context.Background()
	ownLeg(t, h, tr, phone, "0033123456789", tollguard.ClassInternational, tollguard.ReasonOK, t0)
	trunk := tracerCh("d.2", "PJSIP/itsp-00000002", "Down", "from-internal", "")
	tr.created(ctx, trunk, t0.Add(time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *trunk, Dialstring: "0033123456789@itsp"}, t0.Add(time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *trunk, Dialstatus: "NOANSWER"}, t0.Add(30*time.Second))
	tr.destroyed(ctx, trunk, t0.Add(30*time.Second))
	// The include: clear, then the emergency allow of its own.
	at := t0.Add(40 * time.Second)
	for _, v := range []string{tollguard.VarVerdict, tollguard.VarReason, tollguard.VarCallID} {
		tr.varset(ctx, phone, v, "", at)
	}
	tr.varset(ctx, phone, tollguard.VarVerdict, string(tollguard.Allow), at)
	tr.varset(ctx, phone, tollguard.VarReason, string(tollguard.ReasonEmergency), at)
	trunk2 := tracerCh("d.3", "PJSIP/itsp-00000003", "Down", "from-internal", "")
	tr.created(ctx, trunk2, t0.Add(41*time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *trunk2, Dialstring: "999@itsp"}, t0.Add(41*time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *trunk2, Dialstatus: "ANSWER"}, t0.Add(45*time.Second))
	end := t0.Add(3 * time.Hour)
	trunk2.State, phone.State = "Up", "Up"
	tr.destroyed(ctx, trunk2, end)
	tr.destroyed(ctx, phone, end)
	if a := h.alerts.kind(tollguard.AlertLongCall); len(a) != 0 {
		t.Errorf("a long emergency call after an unanswered international number on a DISA line raised long_intl: %+v", a)
	}
}
