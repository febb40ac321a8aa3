package ari

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"

	"github.com/tollguard/tollguard"
)

// ownLeg records the gate's decision for acme's 1001 on ch, as the
// include's Gosub on that channel does, and the variables it sets.
func ownLeg(t *testing.T, h *harness, tr *tracker, ch *ariv5.ChannelData, num string, class tollguard.Class, reason tollguard.Reason, at time.Time) {
	t.Helper()
	gatedAs(t, h, tr, ch, "1001", "acme", num, class, reason, at)
}

// disaLine: acme's phone 1001 calls the PBX's DISA (or an IVR's "dial
// out" option) on a short code, 3472, and tries numbers in turn on that
// one channel; each goes through the include, which settles the last and
// gates the next (a gate record each, as the include's own comments
// describe "an earlier number on a DISA line").
func disaLine(h *harness) (tr *tracker, phone *ariv5.ChannelData, t0 time.Time) {
	h.l.init()
	tr, t0 = h.l.tr, time.Now()
	phone = tracerCh("d.1", "PJSIP/1001-00000001", "Ring", "from-internal", "3472")
	tr.created(context.Background(), phone, t0)
	return tr, phone, t0
}

// TestDISATriesHighRiskInTurn: three high-risk numbers tried in turn on
// one DISA channel, each denied by the gate, are three high-risk
// attempts (the default rule: 3 in 10 minutes blocks international
// calls). The phone's attempt was renumbered instead, and a renumbered
// attempt counts again only when its first number did not: the second
// longIntlRule alerts on any international call of an hour or more.
func longIntlRule() harnessOpt {
	return withRules(map[string]tollguard.DetectorRule{
		tollguard.DetectLongIntl: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert, Duration: time.Hour},
	})
}

// dialLeg is the phone's Dial to a new peer channel: started at start,
// ended with status (ANSWER, NOANSWER...) at answer; an answered peer is
// Up. The caller destroys it.
func dialLeg(tr *tracker, phone *ariv5.ChannelData, id, name, dialstring, status string, start, answer time.Time) *ariv5.ChannelData {
	ctx := context.Background()
	peer := tracerCh(id, name, "Down", "from-internal", "")
	tr.created(ctx, peer, start)
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *peer, Dialstring: dialstring}, start)
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *peer, Dialstatus: status}, answer)
	if status == "ANSWER" {
		peer.State = "Up"
	}
	return peer
}

// and third went unseen.
func TestDISATriesHighRiskInTurn(t *testing.T) {
	h := newHarness(t)
	tr, phone, t0 := disaLine(h)
	for k, num := range []string{"00252612345670", "00881612345671", "00252612345672"} {
		ownLeg(t, h, tr, phone, num, tollguard.ClassHighRisk, tollguard.ReasonHighRisk, t0.Add(time.Duration(k)*10*time.Second))
	}
	if len(h.alerts.kind(tollguard.AlertHighRisk)) == 0 {
		t.Errorf("1001 tried three high-risk numbers on a DISA line: no high_risk alert: %+v", h.alerts.all())
	}
	// The records have no source address, but the call is its phone's
	// (TestDISASweep): the default rule's block stands.
	if acct, err := h.db.Account(context.Background(), "acme"); err != nil || !acct.IntlBlock {
		t.Errorf("1001 tried three high-risk numbers from its own phone: acme %+v, %v; want its international calls blocked", acct, err)
	}
}

// TestDISASweep: a number sweep on one DISA channel (…000 to …004, each
// a gate record) is a sweep; only the first number was ever counted. The
// records have no source address (as the include gates an IAX2 phone's
// calls through a Local channel), but the call started on 1001's own
// phone: the phone's call, so the sweep blocks it (the default rule) as
// it would any of its calls, not the alert of a forwarded leg's.
func TestDISASweep(t *testing.T) {
	h := newHarness(t)
	tr, phone, t0 := disaLine(h)
	for k := range 5 {
		num := fmt.Sprintf("0033123456%03d", k)
		ownLeg(t, h, tr, phone, num, tollguard.ClassInternational, tollguard.ReasonOK, t0.Add(time.Duration(k)*10*time.Second))
	}
	found := false
	for _, a := range h.alerts.kind(tollguard.AlertSweep) {
		found = found || strings.Contains(a.Subject, "1001")
	}
	if !found {
		t.Errorf("1001 swept five numbers in sequence on a DISA line: no sweep alert: %+v", h.alerts.all())
	}
	if n := h.l.Detectors.Stats().Calls; n != 1 {
		t.Errorf("%d calls tracked for one DISA channel trying numbers in turn, want 1", n)
	}
	if ext, err := h.db.Extension(context.Background(), "1001"); err != nil || !ext.Blocked || ext.BlockedBy != "detector:sweep" {
		t.Errorf("1001 swept five numbers from its own phone: %+v, %v; want it blocked by the sweep", ext, err)
	}
}

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

// TestDISANextCallAfterUnansweredIntl: on a DISA line, an international
// number rings out unanswered, then the caller dials a number the
// detectors do not count, and talks three hours. Its answer and length
// must not be taken as the international number's (a false long_intl).
//   - Emergency: 999. The include clears the TOLLGUARD_* variables and
//     sets the emergency allow itself (no gate record, no
//     TOLLGUARD_CALLID).
//   - Internal: extension 1002, which the gate records as internal. That
//     record did not end the international attempt (only a counted
//     number or an emergency one did); an internal number now ends the
//     last attempt like any other next number.
func TestDISANextCallAfterUnansweredIntl(t *testing.T) {
	for _, tc := range []struct {
		name string
		// next gates the next number at at and returns its trunk leg,
		// answered at answer.
		next func(t *testing.T, h *harness, tr *tracker, phone *ariv5.ChannelData, at, answer time.Time) *ariv5.ChannelData
	}{
		{"Emergency", func(_ *testing.T, _ *harness, tr *tracker, phone *ariv5.ChannelData, at, answer time.Time) *ariv5.ChannelData {
			ctx := context.Background()
			// The include: clear, then the emergency allow of its own.
			for _, v := range []string{tollguard.VarVerdict, tollguard.VarReason, tollguard.VarCallID} {
				tr.varset(ctx, phone, v, "", at)
			}
			tr.varset(ctx, phone, tollguard.VarVerdict, string(tollguard.Allow), at)
			tr.varset(ctx, phone, tollguard.VarReason, string(tollguard.ReasonEmergency), at)
			return dialLeg(tr, phone, "d.3", "PJSIP/itsp-00000003", "999@itsp", "ANSWER", at.Add(time.Second), answer)
		}},
		{"Internal", func(t *testing.T, h *harness, tr *tracker, phone *ariv5.ChannelData, at, answer time.Time) *ariv5.ChannelData {
			ownLeg(t, h, tr, phone, "1002", tollguard.ClassInternal, tollguard.ReasonOK, at)
			return dialLeg(tr, phone, "d.3", "PJSIP/1002-00000003", "1002", "ANSWER", at.Add(time.Second), answer)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, longIntlRule())
			tr, phone, t0 := disaLine(h)
			ctx := context.Background()
			ownLeg(t, h, tr, phone, "0033123456789", tollguard.ClassInternational, tollguard.ReasonOK, t0)
			trunk := dialLeg(tr, phone, "d.2", "PJSIP/itsp-00000002", "0033123456789@itsp", "NOANSWER", t0.Add(time.Second), t0.Add(30*time.Second))
			tr.destroyed(ctx, trunk, t0.Add(30*time.Second))
			leg := tc.next(t, h, tr, phone, t0.Add(40*time.Second), t0.Add(45*time.Second))
			end := t0.Add(3 * time.Hour)
			phone.State = "Up"
			tr.destroyed(ctx, leg, end)
			tr.destroyed(ctx, phone, end)
			if a := h.alerts.kind(tollguard.AlertLongCall); len(a) != 0 {
				t.Errorf("a long %s call after an unanswered international number on a DISA line raised long_intl: %+v", strings.ToLower(tc.name), a)
			}
		})
	}
}

// TestDISAInternalBetweenNumbersKeepsCounts: an internal number dialled
// between toll numbers on a DISA line ends the last attempt; that must
// not reset what the detectors counted. Three high-risk numbers with an
// internal one after each still raise high_risk, five numbers in
// sequence still raise a sweep, and a two-hour international call ended
// by an internal number still raises long_intl.
func TestDISAInternalBetweenNumbersKeepsCounts(t *testing.T) {
	t.Run("HighRisk", func(t *testing.T) {
		h := newHarness(t)
		tr, phone, at := disaLine(h)
		for _, num := range []string{"00252612345670", "00881612345671", "00252612345672"} {
			ownLeg(t, h, tr, phone, num, tollguard.ClassHighRisk, tollguard.ReasonHighRisk, at)
			ownLeg(t, h, tr, phone, "1002", tollguard.ClassInternal, tollguard.ReasonOK, at.Add(5*time.Second))
			at = at.Add(10 * time.Second)
		}
		if len(h.alerts.kind(tollguard.AlertHighRisk)) == 0 {
			t.Errorf("three high-risk numbers with an internal one after each: no high_risk alert: %+v", h.alerts.all())
		}
	})
	t.Run("Sweep", func(t *testing.T) {
		h := newHarness(t)
		tr, phone, at := disaLine(h)
		for k := range 5 {
			ownLeg(t, h, tr, phone, fmt.Sprintf("0033123456%03d", k), tollguard.ClassInternational, tollguard.ReasonOK, at)
			ownLeg(t, h, tr, phone, "1002", tollguard.ClassInternal, tollguard.ReasonOK, at.Add(5*time.Second))
			at = at.Add(10 * time.Second)
		}
		found := false
		for _, a := range h.alerts.kind(tollguard.AlertSweep) {
			found = found || strings.Contains(a.Subject, "1001")
		}
		if !found {
			t.Errorf("five numbers in sequence with an internal one after each: no sweep alert: %+v", h.alerts.all())
		}
	})
	t.Run("LongIntl", func(t *testing.T) {
		h := newHarness(t, longIntlRule())
		tr, phone, t0 := disaLine(h)
		ctx := context.Background()
		ownLeg(t, h, tr, phone, "0033123456789", tollguard.ClassInternational, tollguard.ReasonOK, t0)
		trunk := dialLeg(tr, phone, "d.2", "PJSIP/itsp-00000002", "0033123456789@itsp", "ANSWER", t0.Add(time.Second), t0.Add(5*time.Second))
		tr.destroyed(ctx, trunk, t0.Add(2*time.Hour))
		ownLeg(t, h, tr, phone, "1002", tollguard.ClassInternal, tollguard.ReasonOK, t0.Add(2*time.Hour+10*time.Second))
		phone.State = "Up"
		tr.destroyed(ctx, phone, t0.Add(2*time.Hour+time.Minute))
		if len(h.alerts.kind(tollguard.AlertLongCall)) == 0 {
			t.Errorf("a two-hour international call, then an internal number: no long_intl: %+v", h.alerts.all())
		}
	})
}
