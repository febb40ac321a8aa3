package ari

import (
	"context"
	"fmt"
	"strconv"
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
	rec := &tollguard.CallRecord{CreatedAt: at, Extension: "1001", Account: "acme", Dialled: num, Class: class,
		UniqueID: ch.ID, Channel: ch.Name, Verdict: tollguard.Allow, Reason: reason, MaxSec: 7200, Scale: 2}
	if reason != tollguard.ReasonOK {
		rec.Verdict, rec.Cause, rec.MaxSec = tollguard.Deny, 21, 0
	}
	id := h.insertCall(rec)
	ctx := context.Background()
	tr.varset(ctx, ch, tollguard.VarVerdict, string(rec.Verdict), at)
	tr.varset(ctx, ch, tollguard.VarReason, string(reason), at)
	tr.varset(ctx, ch, tollguard.VarCallID, strconv.FormatInt(id, 10), at)
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
}

// TestDISASweep: a number sweep on one DISA channel (…000 to …004, each
// a gate record) is a sweep; only the first number was ever counted.
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
}
