package ari

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// evChannel and evFrame build events in the shape of the recordings
// (testdata/ari-events-*.jsonl) for flows no recording has: a channel
// answered by the dialplan before its Dial, two calls on one channel.
func evChannel(id, name, state string, at time.Time) map[string]any {
	return map[string]any{"id": id, "name": name, "state": state,
		"caller": map[string]any{"name": "", "number": "1001"}, "connected": map[string]any{"name": "", "number": ""},
		"accountcode": "", "dialplan": map[string]any{"context": "from-internal", "exten": "0033123456789", "priority": 1},
		"creationtime": at.UTC().Format("2006-01-02T15:04:05.000-0700"), "language": "en"}
}

// settledCall waits until call id is settled, and returns its record.
func (h *harness) settledCall(id int64) *tollguard.CallRecord {
	h.t.Helper()
	ctx := context.Background()
	testutil.Eventually(h.t, waitLimit, "settled", func() bool { rec, _ := h.db.Call(ctx, id); return !rec.SettledAt.IsZero() })
	rec, err := h.db.Call(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return rec
}

func evFrame(t *testing.T, typ string, at time.Time, kv ...any) []byte {
	m := map[string]any{"type": typ, "timestamp": at.UTC().Format("2006-01-02T15:04:05.000-0700"), "application": "tollguard"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSettleUnansweredDialAfterEarlyAnswer: a caller channel answered by
// the dialplan (a DISA or IVR prompt) before a Dial that is never
// answered, its hangup request lost. The listener billed it from the
// channel's own answer: 65 s and their charge for a call never made.
func TestSettleUnansweredDialAfterEarlyAnswer(t *testing.T) {
	h := newHarness(t).start()
	id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	caller := "PJSIP/1001-00000009"
	peer := "PJSIP/trunk-0000000a"
	h.push(
		evFrame(t, "ChannelCreated", t0, "channel", evChannel("zz.1", caller, "Ring", t0)),
		evFrame(t, "ChannelStateChange", t0.Add(time.Second), "channel", evChannel("zz.1", caller, "Up", t0)),
		evFrame(t, "ChannelVarset", t0.Add(5*time.Second), "variable", "TOLLGUARD_CALLID", "value", strconv.FormatInt(id, 10), "channel", evChannel("zz.1", caller, "Up", t0)),
		evFrame(t, "ChannelCreated", t0.Add(5*time.Second), "channel", evChannel("zz.2", peer, "Down", t0.Add(5*time.Second))),
		evFrame(t, "Dial", t0.Add(5*time.Second), "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", evChannel("zz.1", caller, "Up", t0), "peer", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "Dial", t0.Add(65*time.Second), "dialstatus", "NOANSWER", "dialstring", "", "caller", evChannel("zz.1", caller, "Up", t0), "peer", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(65*time.Second), "cause", 16, "channel", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(66*time.Second), "cause", 16, "channel", evChannel("zz.1", caller, "Up", t0)),
	)
	rec := h.settledCall(id)
	if rec.Billsec != 0 || rec.Charge != 0 || rec.DialStatus != "NOANSWER" || rec.SettledBy != "ari" {
		t.Errorf("an unanswered Dial was billed: billsec %d charge %d (status %s)", rec.Billsec, rec.Charge, rec.DialStatus)
	}
}

// TestSettleSecondCallOnAChannel: the channel's first gated call was
// answered and settled by the include (settle_previous); the second on
// the same channel (a second route, the next number on a DISA line) is
// never answered and its hangup request is lost. The listener billed it
// from the first call's answer, as ANSWER.
func TestSettleSecondCallOnAChannel(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t).start()
	id1 := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	caller := "PJSIP/1001-00000009"
	p1, p2 := "PJSIP/trunk-0000000a", "PJSIP/trunk-0000000b"
	h.push(append(answeredDial(t, id1, t0, caller, p1),
		evFrame(t, "ChannelDestroyed", t0.Add(20*time.Second), "cause", 16, "channel", evChannel("zz.2", p1, "Up", t0)),
	)...)
	// The include settles call 1 (settle_previous) and clears the variables.
	if _, _, err := h.db.SettleCall(ctx, tollguard.Settlement{CallID: id1, Billsec: 10, DialStatus: "ANSWER", By: "agi", At: t0.Add(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	id2 := h.gateCall("zz.1", "1001", "0033123456780", tollguard.Allow)
	h.push(
		evFrame(t, "ChannelVarset", t0.Add(21*time.Second), "variable", "TOLLGUARD_CALLID", "value", "", "channel", evChannel("zz.1", caller, "Up", t0)),
		evFrame(t, "ChannelVarset", t0.Add(21*time.Second), "variable", "ANSWEREDTIME_MS", "value", "", "channel", evChannel("zz.1", caller, "Up", t0)),
		evFrame(t, "ChannelVarset", t0.Add(22*time.Second), "variable", "TOLLGUARD_CALLID", "value", strconv.FormatInt(id2, 10), "channel", evChannel("zz.1", caller, "Up", t0)),
		evFrame(t, "ChannelCreated", t0.Add(22*time.Second), "channel", evChannel("zz.3", p2, "Down", t0)),
		evFrame(t, "Dial", t0.Add(22*time.Second), "dialstatus", "", "dialstring", "0033123456780@trunk", "caller", evChannel("zz.1", caller, "Up", t0), "peer", evChannel("zz.3", p2, "Down", t0)),
		evFrame(t, "Dial", t0.Add(82*time.Second), "dialstatus", "NOANSWER", "dialstring", "", "caller", evChannel("zz.1", caller, "Up", t0), "peer", evChannel("zz.3", p2, "Down", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(82*time.Second), "cause", 16, "channel", evChannel("zz.3", p2, "Down", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(83*time.Second), "cause", 16, "channel", evChannel("zz.1", caller, "Up", t0)),
	)
	rec := h.settledCall(id2)
	if rec.Billsec != 0 || rec.Charge != 0 || rec.DialStatus != "NOANSWER" {
		t.Errorf("call 2 (never answered) billed from call 1's answer: billsec %d charge %d status %s", rec.Billsec, rec.Charge, rec.DialStatus)
	}
}

// TestSweepLeavesAGoneCallToTheListener: the listener holds its
// settlement (from the answer) for settle_grace; a sweep in that window
// found the channel gone and charged the unanswered call the time since
// the decision and its connection fee, and the listener's 0 s came too
// late. The sweep now waits for a second sighting.
func TestSweepLeavesAGoneCallToTheListener(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, withConfig(func(c *Config) { c.SettleGrace = 2 * time.Second }))
	h.start()
	r := &tollguard.CallRecord{CreatedAt: time.Now().Add(-40 * time.Second), Extension: "1001", Account: "acme", Dialled: "0033123456789",
		Class: tollguard.ClassInternational, UniqueID: "pbx-test-1795395604.4", Channel: "PJSIP/1001", Verdict: tollguard.Allow,
		Reason: tollguard.ReasonOK, MaxSec: 3600, Rate: 60_000, Billing: tollguard.Billing{Initial: 60, Increment: 60, Connect: 50_000}, Reserve: 3600, Scale: 2}
	id := h.insertCall(r)
	h.replay("ari-events-caller-hangup-mid-agi.jsonl") // never answered; ARI would settle 0 s after the grace
	policy := &tollguard.Policy{Now: time.Now, Store: h.db}
	gone := func(context.Context, *tollguard.CallRecord) (bool, bool, error) { return false, true, nil }
	if _, err := policy.Sweep(ctx, h.db, gone, nil, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	h.l.Flush(ctx)
	rec, _ := h.db.Call(ctx, id)
	if rec.Charge != 0 || rec.SettledBy != "ari" {
		t.Errorf("an unanswered call ARI had settled at 0 s was charged %d by %s", rec.Charge, rec.SettledBy)
	}
}

// TestSettleRingingThenMissedAnswer: Asterisk reports a Dial in progress
// (RINGING); the ANSWER event was missed (a reconnect) but the caller's
// own answer was seen. The first fix took RINGING for an end without an
// answer and billed the 300 s call 0 s; the caller's answer bills it.
func TestSettleRingingThenMissedAnswer(t *testing.T) {
	h := newHarness(t).start()
	id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	caller, peer := "PJSIP/1001-00000009", "PJSIP/trunk-0000000a"
	h.push(
		evFrame(t, "ChannelCreated", t0, "channel", evChannel("zz.1", caller, "Ring", t0)),
		evFrame(t, "ChannelVarset", t0.Add(time.Second), "variable", "TOLLGUARD_CALLID", "value", strconv.FormatInt(id, 10), "channel", evChannel("zz.1", caller, "Ring", t0)),
		evFrame(t, "ChannelCreated", t0.Add(time.Second), "channel", evChannel("zz.2", peer, "Down", t0.Add(time.Second))),
		evFrame(t, "Dial", t0.Add(time.Second), "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", evChannel("zz.1", caller, "Ring", t0), "peer", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "Dial", t0.Add(3*time.Second), "dialstatus", "RINGING", "dialstring", "", "caller", evChannel("zz.1", caller, "Ring", t0), "peer", evChannel("zz.2", peer, "Ringing", t0)),
		// The Dial's ANSWER at 10 s: missed.
		evFrame(t, "ChannelStateChange", t0.Add(10*time.Second), "channel", evChannel("zz.1", caller, "Up", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(310*time.Second), "cause", 16, "channel", evChannel("zz.2", peer, "Up", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(310*time.Second), "cause", 16, "channel", evChannel("zz.1", caller, "Up", t0)),
	)
	if rec := h.settledCall(id); rec.Billsec != 300 || rec.SettledBy != "ari" {
		t.Errorf("a 300 s answered call settled %d s by %s (status %q)", rec.Billsec, rec.SettledBy, rec.DialStatus)
	}
}

// secondLeg is the trunk leg of the two-Dial tests' second Dial (zz.3).
const secondLeg = "PJSIP/trunk-0000000b"

// answeredDial is a gated call (id) from caller, channel zz.1, made at
// t0 and answered by peer (zz.2) on the trunk ten seconds later: what
// the tests append its ends to.
func answeredDial(t *testing.T, id int64, t0 time.Time, caller, peer string) [][]byte {
	t.Helper()
	return [][]byte{
		evFrame(t, "ChannelCreated", t0, "channel", evChannel("zz.1", caller, "Ring", t0)),
		evFrame(t, "ChannelVarset", t0, "variable", "TOLLGUARD_CALLID", "value", strconv.FormatInt(id, 10), "channel", evChannel("zz.1", caller, "Ring", t0)),
		evFrame(t, "ChannelCreated", t0, "channel", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "Dial", t0, "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", evChannel("zz.1", caller, "Ring", t0), "peer", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "Dial", t0.Add(10*time.Second), "dialstatus", "ANSWER", "dialstring", "", "caller", evChannel("zz.1", caller, "Ring", t0), "peer", evChannel("zz.2", peer, "Up", t0)),
		evFrame(t, "ChannelStateChange", t0.Add(10*time.Second), "channel", evChannel("zz.1", caller, "Up", t0)),
	}
}

// gatedFirstBridge is the events of call id's first Dial, from t0: the
// caller (zz.1) gated, its Dial to the trunk (zz.2) answered at 10 s and
// ended at end s, when Dial sets ANSWEREDTIME_MS. ch is the caller
// channel in a state, at a time so many seconds after t0.
func gatedFirstBridge(t *testing.T, id int64, end int) (frames [][]byte, ch func(string) map[string]any, at func(int) time.Time) {
	t.Helper()
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	p1 := "PJSIP/trunk-0000000a"
	ch = func(state string) map[string]any { return evChannel("zz.1", "PJSIP/1001-00000009", state, t0) }
	at = func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	return [][]byte{
		evFrame(t, "ChannelCreated", t0, "channel", ch("Ring")),
		evFrame(t, "ChannelVarset", t0, "variable", "TOLLGUARD_CALLID", "value", strconv.FormatInt(id, 10), "channel", ch("Ring")),
		evFrame(t, "ChannelVarset", t0, "variable", "ANSWEREDTIME_MS", "value", "", "channel", ch("Ring")),
		evFrame(t, "ChannelCreated", t0, "channel", evChannel("zz.2", p1, "Down", t0)),
		evFrame(t, "Dial", t0, "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", ch("Ring"), "peer", evChannel("zz.2", p1, "Down", t0)),
		evFrame(t, "Dial", at(10), "dialstatus", "ANSWER", "dialstring", "", "caller", ch("Ring"), "peer", evChannel("zz.2", p1, "Up", t0)),
		evFrame(t, "ChannelStateChange", at(10), "channel", ch("Up")),
		evFrame(t, "ChannelDestroyed", at(end), "cause", 16, "channel", evChannel("zz.2", p1, "Up", t0)),
		evFrame(t, "ChannelVarset", at(end), "variable", "ANSWEREDTIME_MS", "value", strconv.Itoa((end-10)*1000), "channel", ch("Up")),
	}, ch, at
}

// TestSettleTwoDialsOfOneGatedCall: Dial with the g option goes on in
// the dialplan after the callee hangs up, and a second Dial follows on
// the same gated call; the hangup request is lost. The listener billed
// from the first answer to the channel's end, the minute between the
// Dials (a prompt, no call) included. It bills each Dial's answered
// time, from the Dial's answer to its bridge's end (ANSWEREDTIME_MS is
// the caller's up time, first answer included: 120 s for the second).
func TestSettleTwoDialsOfOneGatedCall(t *testing.T) {
	for _, lastVarset := range []bool{false, true} {
		t.Run(map[bool]string{false: "caller gone mid-bridge", true: "second Dial ended"}[lastVarset], func(t *testing.T) {
			h := newHarness(t).start()
			id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
			frames, ch, at := gatedFirstBridge(t, id, 40)
			frames = append(frames,
				// a minute of dialplan (a prompt), then the second Dial
				evFrame(t, "ChannelVarset", at(100), "variable", "ANSWEREDTIME_MS", "value", "", "channel", ch("Up")),
				evFrame(t, "ChannelCreated", at(100), "channel", evChannel("zz.3", secondLeg, "Down", at(100))),
				evFrame(t, "Dial", at(100), "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", ch("Up"), "peer", evChannel("zz.3", secondLeg, "Down", at(100))),
				evFrame(t, "Dial", at(110), "dialstatus", "ANSWER", "dialstring", "", "caller", ch("Up"), "peer", evChannel("zz.3", secondLeg, "Up", at(100))),
			)
			if lastVarset {
				frames = append(frames, evFrame(t, "ChannelVarset", at(130), "variable", "ANSWEREDTIME_MS", "value", "120000", "channel", ch("Up")))
			}
			frames = append(frames,
				evFrame(t, "ChannelDestroyed", at(130), "cause", 16, "channel", evChannel("zz.3", secondLeg, "Up", at(100))),
				evFrame(t, "ChannelDestroyed", at(130), "cause", 16, "channel", ch("Up")))
			h.push(frames...)
			rec := h.settledCall(id)
			if rec.Billsec != 50 || rec.DialStatus != "ANSWER" || rec.SettledBy != "ari" {
				t.Errorf("two Dials of 30 s and 20 s billed %d s (status %s, by %s), want 50 s", rec.Billsec, rec.DialStatus, rec.SettledBy)
			}
		})
	}
}

// TestSettleAnsweredDialThenUnansweredOne: the g option's second Dial
// rings out, and the hangup request is lost. The listener bills the
// first Dial's bridge, not the second Dial's ringing (its NOANSWER and
// the cleared ANSWEREDTIME_MS do not undo the first call).
func TestSettleAnsweredDialThenUnansweredOne(t *testing.T) {
	h := newHarness(t).start()
	id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	frames, ch, at := gatedFirstBridge(t, id, 3610)
	h.push(frames...)
	h.push(
		// the second Dial rings out (Dial clears ANSWEREDTIME_MS first)
		evFrame(t, "ChannelVarset", at(3611), "variable", "ANSWEREDTIME_MS", "value", "", "channel", ch("Up")),
		evFrame(t, "ChannelCreated", at(3611), "channel", evChannel("zz.3", secondLeg, "Down", at(3611))),
		evFrame(t, "Dial", at(3611), "dialstatus", "", "dialstring", "0033123456789@trunk2", "caller", ch("Up"), "peer", evChannel("zz.3", secondLeg, "Down", at(3611))),
		evFrame(t, "Dial", at(3641), "dialstatus", "NOANSWER", "dialstring", "", "caller", ch("Up"), "peer", evChannel("zz.3", secondLeg, "Down", at(3611))),
		evFrame(t, "ChannelDestroyed", at(3641), "cause", 19, "channel", evChannel("zz.3", secondLeg, "Down", at(3611))),
		evFrame(t, "ChannelDestroyed", at(3642), "cause", 16, "channel", ch("Up")),
	)
	if rec := h.settledCall(id); rec.Billsec != 3600 || rec.SettledBy != "ari" {
		t.Errorf("an hour answered, then a Dial that rang out: billed %d s (status %s, by %s), want 3600 s", rec.Billsec, rec.DialStatus, rec.SettledBy)
	}
}

// TestSettleEarlyAnsweredCaller: a DISA line answers the caller, who
// dials a number 9 s later; the hangup request is lost. Asterisk's
// ANSWEREDTIME_MS is the caller channel's up time (app_dial's
// end_bridge_callback), the 9 s before the Dial included: the bridge
// is billed from the Dial's answer instead. The g option's dialplan
// after the bridge is not billed either.
func TestSettleEarlyAnsweredCaller(t *testing.T) {
	h := newHarness(t).start()
	id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	caller, peer := "PJSIP/1001-00000009", "PJSIP/trunk-0000000a"
	ch := func(state string) map[string]any { return evChannel("zz.1", caller, state, t0) }
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	h.push(
		evFrame(t, "ChannelCreated", t0, "channel", ch("Ring")),
		evFrame(t, "ChannelStateChange", at(1), "channel", ch("Up")),
		evFrame(t, "ChannelVarset", at(10), "variable", "TOLLGUARD_CALLID", "value", strconv.FormatInt(id, 10), "channel", ch("Up")),
		evFrame(t, "ChannelVarset", at(10), "variable", "ANSWEREDTIME_MS", "value", "", "channel", ch("Up")),
		evFrame(t, "ChannelCreated", at(10), "channel", evChannel("zz.2", peer, "Down", at(10))),
		evFrame(t, "Dial", at(10), "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", ch("Up"), "peer", evChannel("zz.2", peer, "Down", at(10))),
		evFrame(t, "Dial", at(15), "dialstatus", "ANSWER", "dialstring", "", "caller", ch("Up"), "peer", evChannel("zz.2", peer, "Up", at(10))),
		evFrame(t, "ChannelDestroyed", at(75), "cause", 16, "channel", evChannel("zz.2", peer, "Up", at(10))),
		evFrame(t, "ChannelVarset", at(75), "variable", "ANSWEREDTIME_MS", "value", "74000", "channel", ch("Up")),
		// a prompt after the bridge (the g option), then the caller hangs up
		evFrame(t, "ChannelDestroyed", at(200), "cause", 16, "channel", ch("Up")),
	)
	rec := h.settledCall(id)
	if rec.Billsec != 60 || rec.DialStatus != "ANSWER" {
		t.Errorf("a 60 s bridge after an early answer billed %d s (status %s)", rec.Billsec, rec.DialStatus)
	}
}

// TestSettleSecondDialAnswerMissed: the second Dial's ANSWER event was
// missed across a reconnect, and its ANSWEREDTIME_MS (the caller's up
// time since the first answer, 120 s) was billed on top of the first
// bridge: 150 s for bridges of 30 s and 20 s. A bridge cannot have begun
// before its Dial: at most 30 s from the Dial to the varset.
func TestSettleSecondDialAnswerMissed(t *testing.T) {
	h := newHarness(t).start()
	id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	frames, ch, at := gatedFirstBridge(t, id, 40)
	h.push(frames...)
	h.push(
		evFrame(t, "ChannelCreated", at(100), "channel", evChannel("zz.3", secondLeg, "Down", at(100))),
		evFrame(t, "Dial", at(100), "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", ch("Up"), "peer", evChannel("zz.3", secondLeg, "Down", at(100))),
		// the Dial's ANSWER at 110 missed across a reconnect
		evFrame(t, "ChannelVarset", at(130), "variable", "ANSWEREDTIME_MS", "value", "120000", "channel", ch("Up")),
		evFrame(t, "ChannelDestroyed", at(130), "cause", 16, "channel", evChannel("zz.3", secondLeg, "Up", at(100))),
		evFrame(t, "ChannelDestroyed", at(130), "cause", 16, "channel", ch("Up")),
	)
	rec := h.settledCall(id)
	if rec.Billsec != 60 || rec.DialStatus != "ANSWER" {
		t.Errorf("bridges of 30 s and 20 s (the second's answer unseen) billed %d s, want 60 (30, and 30 from the Dial)", rec.Billsec)
	}
}

// failingSettler fails every settlement, as a store that cannot write.
type failingSettler struct{}

func (failingSettler) Settle(context.Context, tollguard.Settlement) (bool, error) {
	return false, tollguard.Errorf(tollguard.EUNAVAILABLE, "database is locked")
}

// TestSettleFailureReported: a settlement from events that failed was
// only logged; the hooks (tollguard_settle_failures_total{by="ari"})
// never heard of it.
func TestSettleFailureReported(t *testing.T) {
	h := newHarness(t)
	h.l.Settler = failingSettler{}
	h.start()
	id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	t0 := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	caller, peer := "PJSIP/1001-00000009", "PJSIP/trunk-0000000a"
	h.push(
		evFrame(t, "ChannelCreated", t0, "channel", evChannel("zz.1", caller, "Ring", t0)),
		evFrame(t, "ChannelVarset", t0, "variable", "TOLLGUARD_CALLID", "value", strconv.FormatInt(id, 10), "channel", evChannel("zz.1", caller, "Ring", t0)),
		evFrame(t, "ChannelCreated", t0, "channel", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "Dial", t0, "dialstatus", "", "dialstring", "0033123456789@trunk", "caller", evChannel("zz.1", caller, "Ring", t0), "peer", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "Dial", t0.Add(30*time.Second), "dialstatus", "NOANSWER", "dialstring", "", "caller", evChannel("zz.1", caller, "Ring", t0), "peer", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(30*time.Second), "cause", 16, "channel", evChannel("zz.2", peer, "Down", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(31*time.Second), "cause", 16, "channel", evChannel("zz.1", caller, "Ring", t0)),
	)
	testutil.Eventually(t, waitLimit, "the failed settlement reported", func() bool { return h.hooks.snapshot().settleErrs == 1 })
}

// TestSettleFromEventsDuringStoreOutage: the listener's settlement of a
// call whose hangup request was lost failed while another process held
// the database's write lock (as on a full disk): it is kept and retried,
// and the call is charged from its answer in the events, not left for
// the sweep to charge its full reservation.
func TestSettleFromEventsDuringStoreOutage(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t).start()
	id := h.gateCall("zz.1", "1001", "0033123456789", tollguard.Allow)
	release := testutil.HoldWriteLock(t, h.db.Path())
	t0 := time.Now().Add(-time.Minute)
	caller, peer := "PJSIP/1001-00000009", "PJSIP/trunk-0000000a"
	h.push(append(answeredDial(t, id, t0, caller, peer),
		evFrame(t, "ChannelDestroyed", t0.Add(40*time.Second), "cause", 16, "channel", evChannel("zz.2", peer, "Up", t0)),
		evFrame(t, "ChannelDestroyed", t0.Add(40*time.Second), "cause", 16, "channel", evChannel("zz.1", caller, "Up", t0)),
	)...)
	// The store gives up on the lock after its 5 s busy timeout.
	testutil.Eventually(t, waitLimit, "the failed settlement", func() bool { return h.hooks.snapshot().settleErrs > 0 })
	if n := h.policy.PendingSettlements(); n != 1 {
		t.Fatalf("%d settlements pending, want 1", n)
	}
	release()
	if left, err := h.policy.RetrySettlements(ctx); left != 0 || err != nil {
		t.Fatalf("retry: %d left, %v", left, err)
	}
	rec, err := h.db.Call(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.SettledBy != "ari" || rec.Billsec != 30 || rec.Charge != tollguard.Cost(rec.Rate, rec.Billing, 30, rec.Scale) {
		t.Fatalf("settled by %q, %d s, charged %d; want ari, 30 s from the answer", rec.SettledBy, rec.Billsec, rec.Charge)
	}
}
