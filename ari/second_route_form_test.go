package ari

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestSecondRouteOtherFormCountsOnce: a phone's call to 0033..., whose
// first route's Dial fails, is gated again by a second route that passes
// the same number in the form its trunk wants (+33...). It is one call,
// one attempt: not a second one for the burst, sweep and high-risk
// detectors.
func TestSecondRouteOtherFormCountsOnce(t *testing.T) {
	h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
		tollguard.DetectBurstExt:  {Threshold: 2, Window: time.Hour, Action: tollguard.ActionAlert},
		tollguard.DetectBurstAcct: {Threshold: 2, Window: time.Hour, Action: tollguard.ActionAlert},
	}))
	h.l.init()
	tr, t0 := h.l.tr, time.Now()
	const num = "0033123456789"
	phone := tracerCh("p.1", "PJSIP/1001-00000001", "Ring", "from-internal", num)
	tr.created(context.Background(), phone, t0)
	ownLeg(t, h, tr, phone, num, tollguard.ClassInternational, tollguard.ReasonOK, t0)
	// The first trunk fails; the second route gates the E.164 form.
	ownLeg(t, h, tr, phone, "+33123456789", tollguard.ClassInternational, tollguard.ReasonOK, t0.Add(2*time.Second))
	if a := h.alerts.kind(tollguard.AlertBurst); len(a) != 0 {
		t.Errorf("one call to one number, gated by two routes in two forms, counted as two attempts: %+v", a)
	}
}
