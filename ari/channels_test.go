package ari

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// The recorded allowed call: PJSIP/1001 dials 0044207946000 through a
// Local channel, answered at 00:59:24.132, destroyed at 00:59:27.644.
const (
	allowedCall  = "ari-events-outbound-call-allowed.jsonl"
	allowedID    = "pbx-test-1795395563.0"
	deniedCall   = "ari-events-outbound-call-denied.jsonl"
	deniedID     = "pbx-test-1795395577.3"
	agiDownCall  = "ari-events-agi-server-down.jsonl"
	agiDownID    = "pbx-test-1795395640.10"
	originated   = "ari-events-ari-originate.jsonl"
	originatedID = "pbx-test-1795395662.14" // the ;2 half, which ran the AGI
)

func TestChannelsNormalTraffic(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t).start()
	id := h.gateCall(allowedID, "1001", "0044207946000", tollguard.Allow)
	denied := h.gateCall(deniedID, "1001", "00252612345678", tollguard.Deny)
	h.gateCall("pbx-test-1795395839.3", "1001", "00991234567", tollguard.Allow)
	h.replay(allowedCall)
	h.replay(deniedCall)
	h.replay("ari-events-caller-hangup-mid-agi.jsonl")
	h.replay("ari-events-ari-hangup-active-call.jsonl")

	testutil.Eventually(t, waitLimit, "settlement", func() bool { return len(h.hooks.snapshot().settled) >= 1 })
	if f := h.hooks.snapshot().findings; len(f) != 0 {
		t.Errorf("normal traffic raised findings: %+v", f)
	}
	if a := h.alerts.all(); len(a) != 0 {
		t.Errorf("normal traffic raised alerts: %+v", a)
	}
	rec, err := h.db.Call(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// ANSWEREDTIME was 3 (ANSWEREDTIME_MS 3509); the events give
	// 3.512 s, and a started second is billed, as the hangup script does.
	if rec.SettledBy != "ari" || rec.Billsec != 4 || rec.DialStatus != "ANSWER" || !rec.SettledAt.Equal(time.Date(2026, 11, 23, 0, 59, 27, 0, time.UTC)) {
		t.Errorf("settled %+v", rec)
	}
	if rec.Charge != tollguard.Cost(rec.Rate, rec.Billing, 4, rec.Scale) {
		t.Errorf("charge %d, want %d", rec.Charge, tollguard.Cost(rec.Rate, rec.Billing, 4, rec.Scale))
	}
	if d, _ := h.db.Call(ctx, denied); !d.SettledAt.IsZero() {
		t.Errorf("a denied call was settled: %+v", d)
	}
	if st := h.l.Detectors.Stats(); st.Calls != 0 {
		t.Errorf("calls still tracked after every channel was destroyed: %+v", st)
	}
	if n := len(h.l.tr.chans); n != 0 {
		t.Errorf("%d channels still tracked", n)
	}
}

// TestPrettyPrintedEvents: with pretty = yes in ari.conf Asterisk
// indents every frame ("variable": "TOLLGUARD_CALLID"); the listener
// must read tollguard's variables from them as from compact frames. The
// call's channel has another uniqueid, so only TOLLGUARD_CALLID ties it
// to the channel's events.
func TestPrettyPrintedEvents(t *testing.T) {
	h := newHarness(t).start()
	id := h.gateCall("other-uniqueid", "1001", "0044207946000", tollguard.Allow)
	frames := fixture(t, allowedCall)
	varset := fmt.Sprintf(`{"type":"ChannelVarset","timestamp":"2026-11-23T00:59:23.081+0000","variable":"TOLLGUARD_CALLID","value":"%d","channel":{"id":"%s","name":"PJSIP/1001-00000000","state":"Ring","creationtime":"2026-11-23T00:59:23.062+0000"},"application":"tollguard"}`, id, allowedID)
	frames = append(frames[:7:7], append([][]byte{[]byte(varset)}, frames[7:]...)...)
	for i, f := range frames {
		var out bytes.Buffer
		if err := json.Indent(&out, f, "", "  "); err != nil {
			t.Fatal(err)
		}
		frames[i] = out.Bytes()
	}
	h.push(frames...)
	testutil.Eventually(t, waitLimit, "settled", func() bool { rec, _ := h.db.Call(context.Background(), id); return !rec.SettledAt.IsZero() })
	if rec, _ := h.db.Call(context.Background(), id); rec.Billsec != 4 || rec.SettledBy != "ari" {
		t.Errorf("%+v", rec)
	}
	if st := h.l.State(); st.Undecodable != 0 {
		t.Errorf("indented frames undecodable: %+v", st)
	}
	for in, want := range map[string]bool{
		`{"variable":"TOLLGUARD_CALLID"}`: true, "{\n  \"variable\" :\t\"TOLLGUARD_REASON\"}": true,
		`{"variable":"ANSWEREDTIME_MS","value":""}`: true, `{"variable":"ANSWEREDTIME","value":"3"}`: false,
		`{"variable":"DIALSTATUS","value":"TOLLGUARD_X"}`: false, `{"value":"x","variable":"AGISTATUS"}`: false, `{"variable"`: false,
		`{"variable":"FORWARDERNAME","value":"PJSIP/1001-00000008"}`: true, `{"variable":"FORWARDERNAMES"}`: false,
	} {
		if containsVar([]byte(in)) != want {
			t.Errorf("containsVar(%s) = %v", in, !want)
		}
	}
}

// TestChannelsEndedWhileDisconnected: a call whose ChannelDestroyed came
// while the websocket was down is forgotten once the listener is back
// and Asterisk's channel list lacks it; kept, it would count as a call
// in progress for a day. A channel Asterisk still has is kept.
func TestChannelsEndedWhileDisconnected(t *testing.T) {
	h := newHarness(t).start()
	var frames [][]byte
	for _, f := range fixture(t, allowedCall) {
		if typ, _ := eventType(f); typ != "ChannelDestroyed" {
			frames = append(frames, f)
		}
	}
	h.push(frames...)
	if st := h.l.Detectors.Stats(); st.Calls != 1 {
		t.Fatalf("calls tracked before the drop: %+v", st)
	}
	h.fake.Drop() // the destroys happen while nobody listens
	h.waitConnected(2)
	testutil.Eventually(t, waitLimit, "the ended call forgotten", func() bool { return h.l.Detectors.Stats().Calls == 0 })
	if !strings.Contains(h.logs.String(), "forgot channels that ended while their events were not seen") {
		t.Errorf("not logged:\n%s", h.logs.String())
	}
	if r := h.fake.RequestsMatching(http.MethodGet, "/channels"); len(r) < 2 {
		t.Errorf("channel list asked %d times, want on each connection", len(r))
	}

	// Asterisk still has the channel: it stays tracked.
	h2 := newHarness(t).start()
	h2.fake.SetChannel(allowedID, "PJSIP/1001-00000000")
	h2.push(frames...)
	h2.fake.Drop()
	h2.waitConnected(2)
	// Its two Local halves are gone from the list and forgotten.
	testutil.Eventually(t, waitLimit, "the Local halves forgotten", func() bool {
		return strings.Contains(h2.logs.String(), `forgot channels that ended while their events were not seen" channels=2`)
	})
	if st := h2.l.Detectors.Stats(); st.Calls != 1 {
		t.Errorf("a call Asterisk still has was forgotten: %+v", st)
	}
}

func TestSettlementFromChannelDestroyed(t *testing.T) {
	ctx := context.Background()
	t.Run("AlreadySettledByTheDialplan", func(t *testing.T) {
		h := newHarness(t).start()
		id := h.gateCall(allowedID, "1001", "0044207946000", tollguard.Allow)
		if _, _, err := h.db.SettleCall(ctx, tollguard.Settlement{CallID: id, Billsec: 4, DialStatus: "ANSWER", By: "agi", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		h.replay(allowedCall)
		if rec, _ := h.db.Call(ctx, id); rec.SettledBy != "agi" || rec.Billsec != 4 {
			t.Errorf("the listener overrode the dialplan's settlement: %+v", rec)
		}
	})
	t.Run("ByCallIDVariable", func(t *testing.T) {
		// The gate sets TOLLGUARD_CALLID: the listener settles by it
		// without looking the channel up.
		h := newHarness(t).start()
		id := h.gateCall("other-uniqueid", "1001", "0044207946000", tollguard.Allow)
		frames := fixture(t, allowedCall)
		varset := fmt.Sprintf(`{"type":"ChannelVarset","timestamp":"2026-11-23T00:59:23.081+0000","variable":"TOLLGUARD_CALLID","value":"%d","channel":{"id":"%s","name":"PJSIP/1001-00000000","state":"Ring","creationtime":"2026-11-23T00:59:23.062+0000"},"application":"tollguard"}`, id, allowedID)
		frames = append(frames[:7:7], append([][]byte{[]byte(varset)}, frames[7:]...)...)
		h.push(frames...)
		testutil.Eventually(t, waitLimit, "settled", func() bool { rec, _ := h.db.Call(ctx, id); return !rec.SettledAt.IsZero() })
		if rec, _ := h.db.Call(ctx, id); rec.Billsec != 4 || rec.SettledBy != "ari" {
			t.Errorf("%+v", rec)
		}
	})
	t.Run("AfterTheGrace", func(t *testing.T) {
		h := newHarness(t, withConfig(func(c *Config) { c.SettleGrace = 300 * time.Millisecond }))
		h.start()
		id := h.gateCall(allowedID, "1001", "0044207946000", tollguard.Allow)
		h.replay(allowedCall)
		if rec, _ := h.db.Call(ctx, id); !rec.SettledAt.IsZero() {
			t.Fatal("settled before the grace period")
		}
		testutil.Eventually(t, waitLimit, "settled after the grace", func() bool { rec, _ := h.db.Call(ctx, id); return !rec.SettledAt.IsZero() })
	})
	t.Run("UnansweredIsFree", func(t *testing.T) {
		h := newHarness(t).start()
		id := h.gateCall("pbx-test-1795395604.4", "1001", "0033123456789", tollguard.Allow)
		h.replay("ari-events-caller-hangup-mid-agi.jsonl")
		testutil.Eventually(t, waitLimit, "settled", func() bool { rec, _ := h.db.Call(ctx, id); return !rec.SettledAt.IsZero() })
		if rec, _ := h.db.Call(ctx, id); rec.Billsec != 0 || rec.Charge != 0 {
			t.Errorf("%+v", rec)
		}
	})
	// The listener first sees the call mid-way (it reconnected, or
	// tollguard restarted, after the answer at frame 40): the caller's
	// channel is first seen at frame 52, Up, its answer unknown.
	midCall := fixture(t, allowedCall)[52:]
	t.Run("SeenMidCallBillsAnsweredTime", func(t *testing.T) {
		h := newHarness(t).start()
		id := h.gateCall(allowedID, "1001", "0044207946000", tollguard.Allow)
		h.push(midCall...)
		// ANSWEREDTIME_MS 3509 (frame 63), a started second billed.
		rec, _ := h.db.Call(ctx, id)
		if rec.SettledBy != "ari" || rec.Billsec != 4 || rec.DialStatus != "ANSWER" || rec.Charge != tollguard.Cost(rec.Rate, rec.Billing, 4, rec.Scale) {
			t.Errorf("settled %+v", rec)
		}
	})
	t.Run("SeenMidCallUnknownAnswerLeftOpen", func(t *testing.T) {
		// Without ANSWEREDTIME_MS (the Dial ran on another channel of
		// the call) nothing says how long it was answered: 0 s would
		// under-bill, so the hangup request or the sweep settles it.
		h := newHarness(t).start()
		id := h.gateCall(allowedID, "1001", "0044207946000", tollguard.Allow)
		var frames [][]byte
		for _, f := range midCall {
			if !bytes.Contains(f, []byte(`"ANSWEREDTIME`)) {
				frames = append(frames, f)
			}
		}
		h.push(frames...)
		if rec, _ := h.db.Call(ctx, id); !rec.SettledAt.IsZero() {
			t.Errorf("settled with an unknown answer time: %+v", rec)
		}
		if !strings.Contains(h.logs.String(), "its billed time is unknown") {
			t.Errorf("not logged:\n%s", h.logs.String())
		}
	})
	t.Run("SeenRingingUnansweredIsFree", func(t *testing.T) {
		// First seen before its answer, destroyed not Up: never answered.
		h := newHarness(t).start()
		id := h.gateCall("pbx-test-1795395604.4", "1001", "0033123456789", tollguard.Allow)
		frames := fixture(t, "ari-events-caller-hangup-mid-agi.jsonl")
		h.push(frames[1:]...)
		testutil.Eventually(t, waitLimit, "settled", func() bool { rec, _ := h.db.Call(ctx, id); return !rec.SettledAt.IsZero() })
		if rec, _ := h.db.Call(ctx, id); rec.Billsec != 0 || rec.Charge != 0 || rec.SettledBy != "ari" {
			t.Errorf("%+v", rec)
		}
	})
	t.Run("OriginatedLocalHalf", func(t *testing.T) {
		h := newHarness(t).start()
		id := h.gateCall(originatedID, "Local", "0044207946000", tollguard.Allow)
		h.replay(originated)
		testutil.Eventually(t, waitLimit, "settled", func() bool { rec, _ := h.db.Call(ctx, id); return !rec.SettledAt.IsZero() })
		if rec, _ := h.db.Call(ctx, id); rec.Billsec != 4 || rec.DialStatus != "ANSWER" {
			t.Errorf("%+v", rec)
		}
		if a := h.alerts.kind(tollguard.AlertUngated); len(a) != 0 {
			t.Errorf("a gated originate alerted: %+v", a)
		}
	})
}

func TestUngatedCalls(t *testing.T) {
	ctx := context.Background()
	t.Run("GateDown", func(t *testing.T) {
		// The AGI server was down and the recorded dialplan failed open.
		h := newHarness(t).start()
		h.replay(agiDownCall)
		a := h.alerts.kind(tollguard.AlertUngated)
		if len(a) != 1 || a[0].Subject != "ext:1001" || !strings.Contains(a[0].Message, "tollguard-outbound") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
		if ext, _ := h.db.Extension(ctx, "1001"); ext.Blocked {
			t.Error("one ungated call blocked the extension")
		}
	})
	t.Run("DialledDespiteDeny", func(t *testing.T) {
		h := newHarness(t).start()
		h.gateCall(agiDownID, "1001", "0044207946000", tollguard.Deny)
		h.replay(agiDownCall)
		a := h.alerts.kind(tollguard.AlertUngated)
		if len(a) != 1 || !strings.Contains(a[0].Message, "ignores TOLLGUARD_VERDICT") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
	t.Run("OriginatedWithoutGate", func(t *testing.T) {
		h := newHarness(t).start()
		h.replay(originated)
		a := h.alerts.kind(tollguard.AlertUngated)
		if len(a) != 1 || a[0].Subject != "context:from-internal" || a[0].Extension != "" {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
	t.Run("VerdictVariableCounts", func(t *testing.T) {
		h := newHarness(t).start()
		frames := fixture(t, agiDownCall)
		varset := `{"type":"ChannelVarset","timestamp":"2026-11-23T01:00:40.887+0000","variable":"TOLLGUARD_VERDICT","value":"allow","channel":{"id":"` + agiDownID + `","name":"PJSIP/1001-00000006","state":"Ring","creationtime":"2026-11-23T01:00:40.886+0000"},"application":"tollguard"}`
		h.push(append([][]byte{frames[0], []byte(varset)}, frames[1:]...)...)
		if a := h.alerts.all(); len(a) != 0 {
			t.Errorf("alerts %+v", a)
		}
	})
}

// callFlow rebuilds the recorded allowed call as call k from ext to num,
// shift later.
func callFlow(t *testing.T, k int, ext, num string, shift time.Duration) [][]byte {
	return rewrite(fixture(t, allowedCall), shift,
		"pbx-test-1795395563.0", fmt.Sprintf("flow-%d.0", k), "pbx-test-1795395564.1", fmt.Sprintf("flow-%d.1", k),
		"pbx-test-1795395564.2", fmt.Sprintf("flow-%d.2", k), "PJSIP/1001-", "PJSIP/"+ext+"-",
		"0044207946000", num, "sink-00000000", fmt.Sprintf("sink-%08x", k))
}

func deniedFlow(t *testing.T, k int, ext, num string, shift time.Duration) [][]byte {
	return rewrite(fixture(t, deniedCall), shift, deniedID, fmt.Sprintf("denied-%d.0", k), "PJSIP/1001-", "PJSIP/"+ext+"-", "00252612345678", num)
}

func TestChannelDetectors(t *testing.T) {
	ctx := context.Background()
	off := tollguard.DetectorRule{}
	t.Run("BurstPerExtension", func(t *testing.T) {
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectBurstExt: {Threshold: 4, Window: time.Minute, Action: tollguard.ActionAlert}, tollguard.DetectSweep: off,
		})).start()
		for k := 0; k < 3; k++ {
			h.gateCall(fmt.Sprintf("flow-%d.0", k), "1001", "x", tollguard.Allow)
			h.push(callFlow(t, k, "1001", fmt.Sprintf("004930123%04d", k*37), time.Duration(k)*5*time.Second)...)
		}
		if a := h.alerts.all(); len(a) != 0 {
			t.Fatalf("three calls alerted: %+v", a)
		}
		h.gateCall("flow-3.0", "1001", "x", tollguard.Allow)
		h.push(callFlow(t, 3, "1001", "0049301230999", 15*time.Second)...)
		a := h.alerts.kind(tollguard.AlertBurst)
		if len(a) != 1 || a[0].Subject != "ext:1001" || !strings.Contains(a[0].Message, "1001: 4 calls from phones") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
	t.Run("AFrameFromTheFutureIsNoBurst", func(t *testing.T) {
		// One call stamped decades ahead (a garbage frame) stayed in the
		// burst window for good, and three calls an hour apart made a
		// "burst" of four. A real burst after it still fires.
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectBurstExt: {Threshold: 4, Window: time.Minute, Action: tollguard.ActionAlert}, tollguard.DetectSweep: off,
		})).start()
		h.gateCall("flow-9.0", "1001", "x", tollguard.Allow)
		h.push(callFlow(t, 9, "1001", "0049301239999", 75*365*24*time.Hour)...)
		for k := 0; k < 3; k++ {
			h.gateCall(fmt.Sprintf("flow-%d.0", k), "1001", "x", tollguard.Allow)
			h.push(callFlow(t, k, "1001", fmt.Sprintf("004930123%04d", k*37), time.Duration(k)*time.Hour)...)
		}
		if a := h.alerts.all(); len(a) != 0 {
			t.Fatalf("three calls an hour apart after a garbage frame alerted: %+v", a)
		}
		for k := 3; k < 6; k++ {
			h.gateCall(fmt.Sprintf("flow-%d.0", k), "1001", "x", tollguard.Allow)
			h.push(callFlow(t, k, "1001", fmt.Sprintf("004930123%04d", k*37), 2*time.Hour+time.Duration(k)*5*time.Second)...)
		}
		if a := h.alerts.kind(tollguard.AlertBurst); len(a) != 1 || !strings.Contains(a[0].Message, "1001: 4 calls from phones") {
			t.Fatalf("four calls in 15 s: alerts %+v", h.alerts.all())
		}
	})
	t.Run("BurstPerAccount", func(t *testing.T) {
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectBurstAcct: {Threshold: 4, Window: time.Minute, Action: tollguard.ActionAlert}, tollguard.DetectSweep: off,
		})).start()
		for k := 0; k < 4; k++ {
			ext := []string{"1001", "1002"}[k%2]
			h.gateCall(fmt.Sprintf("flow-%d.0", k), ext, "x", tollguard.Allow)
			h.push(callFlow(t, k, ext, fmt.Sprintf("00331234%05d", k*7777), time.Duration(k)*time.Second)...)
		}
		if a := h.alerts.kind(tollguard.AlertBurst); len(a) != 1 || a[0].Subject != "account:acme" {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
	t.Run("SweepBlocksExtension", func(t *testing.T) {
		h := newHarness(t).start() // defaults: 5 numbers under one prefix in 10 minutes
		for k := 1; k <= 5; k++ {
			h.push(deniedFlow(t, k, "1002", fmt.Sprintf("0088216123%03d", k), time.Duration(k)*20*time.Second)...)
		}
		a := h.alerts.kind(tollguard.AlertSweep)
		if len(a) != 1 || a[0].Severity != tollguard.SeverityCritical || !strings.Contains(a[0].Message, "sequential") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
		ext, _ := h.db.Extension(ctx, "1002")
		if !ext.Blocked || ext.BlockedBy != "detector:sweep" {
			t.Fatalf("extension %+v", ext)
		}
		b, _ := h.db.Blocks(ctx, tollguard.BlockExtension, "1002", time.Time{})
		if len(b) != 1 || !strings.Contains(b[0].Evidence, "882161230") {
			t.Errorf("block %+v", b)
		}
	})
	t.Run("HighRiskBlocksInternational", func(t *testing.T) {
		h := newHarness(t).start() // defaults: 3 high-risk attempts in 10 minutes
		h.push(deniedFlow(t, 1, "1001", "00252612345678", 0)...)
		if acct, _ := h.db.Account(ctx, "acme"); acct.IntlBlock || len(h.alerts.all()) != 0 {
			t.Fatalf("one misdial acted: block %v alerts %+v", acct.IntlBlock, h.alerts.all())
		}
		h.push(deniedFlow(t, 2, "1001", "00252612345679", time.Minute)...)
		h.push(deniedFlow(t, 3, "1001", "00252612345680", 2*time.Minute)...)
		a := h.alerts.kind(tollguard.AlertHighRisk)
		if len(a) != 1 || a[0].Severity != tollguard.SeverityCritical {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
		acct, _ := h.db.Account(ctx, "acme")
		if !acct.IntlBlock || !strings.Contains(acct.IntlBlockReason, "high-risk") {
			t.Fatalf("account %+v", acct)
		}
		b, _ := h.db.Blocks(ctx, tollguard.BlockIntl, "acme", time.Time{})
		if len(b) != 1 || b[0].SetBy != "detector:high_risk" {
			t.Errorf("blocks %+v", b)
		}
	})
	t.Run("WhitelistedHighRiskDoesNotCount", func(t *testing.T) {
		h := newHarness(t).start()
		for k := 0; k < 4; k++ {
			frames := deniedFlow(t, k, "1001", "00252612345678", time.Duration(k)*time.Minute)
			reason := fmt.Sprintf(`{"type":"ChannelVarset","timestamp":"2026-11-23T00:59:37.519+0000","variable":"TOLLGUARD_REASON","value":"whitelist","channel":{"id":"denied-%d.0","name":"PJSIP/1001-00000001","state":"Ring","creationtime":"2026-11-23T00:59:37.510+0000"},"application":"tollguard"}`, k)
			h.push(append([][]byte{frames[0], []byte(reason)}, frames[1:]...)...)
		}
		if a := h.alerts.all(); len(a) != 0 {
			t.Errorf("whitelisted calls alerted: %+v", a)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectConcurrentExt: {Threshold: 3, Window: time.Minute, Action: tollguard.ActionAlert}, tollguard.DetectSweep: off,
		})).start()
		// Three calls set up at once (ChannelCreated only: still up).
		for k := 0; k < 3; k++ {
			h.push(callFlow(t, k, "1001", fmt.Sprintf("004930123%04d", k*91), time.Duration(k)*time.Second)[0])
		}
		a := h.alerts.kind(tollguard.AlertConcurrent)
		if len(a) != 1 || !strings.Contains(a[0].Message, "3 calls from phones (with a source address) in progress") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
	t.Run("LongInternational", func(t *testing.T) {
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectLongIntl: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert, Duration: 2 * time.Second},
		})).start()
		h.gateCall(allowedID, "1001", "0044207946000", tollguard.Allow)
		h.push(callFlow(t, 0, "1001", "0033123456789", 0)...) // answered 3.5 s
		a := h.alerts.kind(tollguard.AlertLongCall)
		if len(a) != 1 || a[0].Subject != "account:acme" || !strings.Contains(a[0].Message, "+33123456789") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
	t.Run("LongInternationalInProgress", func(t *testing.T) {
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectLongIntl: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert, Duration: time.Hour},
		}), withWallClock(time.Date(2026, 11, 23, 2, 0, 5, 0, time.UTC))).start()
		// The call up to its answer: it is still going.
		h.gateCall("flow-0.0", "1001", "0033123456789", tollguard.Allow)
		frames := callFlow(t, 0, "1001", "0033123456789", 0)
		h.push(frames[:48]...)
		if a := h.alerts.all(); len(a) != 0 {
			t.Fatalf("alerts %+v", a)
		}
		// An hour of event clock later (a quiet PBX): the tick finds it.
		h.push([]byte(`{"type":"ChannelCreated","timestamp":"2026-11-23T02:00:00.000+0000","channel":{"id":"later.1","name":"PJSIP/9999-00000009","state":"Ring","creationtime":"2026-11-23T02:00:00.000+0000","dialplan":{"context":"from-internal","exten":"1002","priority":1}},"application":"tollguard"}`))
		testutil.Eventually(t, waitLimit, "long_call alert from the tick", func() bool { return len(h.alerts.kind(tollguard.AlertLongCall)) == 1 })
	})
	t.Run("TimestampsAheadOfTheClockIgnored", func(t *testing.T) {
		// Frames stamped 2 h and 25 h ahead of the wall clock (garbage,
		// or Asterisk's clock running fast until NTP steps it back) must
		// not move the detectors' clock: the call answered 36 s ago is
		// no long call, and still tracked.
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectLongIntl: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert, Duration: time.Hour},
		}), withWallClock(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC))).start()
		h.gateCall("flow-0.0", "1001", "0033123456789", tollguard.Allow)
		frames := callFlow(t, 0, "1001", "0033123456789", 0)
		h.push(frames[:48]...) // answered at 00:59:24, still up
		up := frames[34]       // a Local half's ChannelStateChange
		if typ, _ := eventType(up); typ != "ChannelStateChange" {
			t.Fatalf("frame 34 is a %s", typ)
		}
		// Each followed by a tick (every tickEvery).
		h.push(rewrite([][]byte{up}, 2*time.Hour, "flow-0.", "junk.")...)
		time.Sleep(tickEvery + 500*time.Millisecond)
		if a := h.alerts.kind(tollguard.AlertLongCall); len(a) != 0 {
			t.Errorf("a call answered 36 s ago reported long: %+v", a)
		}
		h.push(rewrite([][]byte{up}, 25*time.Hour, "flow-0.", "junk.")...)
		time.Sleep(tickEvery + 500*time.Millisecond)
		if st := h.l.Detectors.Stats(); st.Calls != 1 {
			t.Errorf("calls tracked %+v, want the call in progress", st)
		}
		if n := strings.Count(h.logs.String(), "ignoring ARI event timestamps ahead"); n != 1 {
			t.Errorf("warned %d times, want once:\n%s", n, h.logs.String())
		}
	})
	t.Run("EventsAheadAreTakenAtTheEventsClock", func(t *testing.T) {
		// What the tracker and the detectors see: an event dated far
		// ahead is taken at the events' clock (else its call's start
		// stays ahead and it is never forgotten or judged long), a
		// registration at the wall clock (else its line looks alive for
		// years). Events a little ahead are taken as dated.
		wall := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
		h := newHarness(t, withWallClock(wall))
		h.l.init()
		past := wall.Add(-10 * time.Second)
		if got := h.l.observeClock(past); !got.Equal(past) {
			t.Errorf("an event 10 s old taken at %v", got)
		}
		near := wall.Add(30 * time.Second)
		if got := h.l.observeClock(near); !got.Equal(near) {
			t.Errorf("an event 30 s ahead taken at %v", got)
		}
		for _, ahead := range []time.Duration{2 * time.Hour, 75 * 365 * 24 * time.Hour} {
			got := h.l.observeClock(wall.Add(ahead))
			if got.Before(near) || got.After(near.Add(5*time.Second)) {
				t.Errorf("an event %v ahead taken at %v, want the events' clock (about %v)", ahead, got, near)
			}
			if got := h.l.notAhead(wall.Add(ahead)); got.Before(wall) || got.After(wall.Add(5*time.Second)) {
				t.Errorf("a registration %v ahead taken at %v, want the wall clock", ahead, got)
			}
		}
		if got := h.l.notAhead(past); !got.Equal(past) {
			t.Errorf("a registration 10 s old taken at %v", got)
		}
	})
	_ = store.ContactFilter{}
}

// TestUngatedInternalCalls: internal calls through Local channels on
// numbers that do not look internal (a ring group on 12345, a 5-digit
// extension plan) raise no ungated_call; the same call answered by the
// Local chain itself (nothing it rang is ours) still does.
func TestUngatedInternalCalls(t *testing.T) {
	ctx := context.Background()
	const (
		caller, local1, local2, phone = "pbx-test-1795395640.10", "pbx-test-1795395640.11", "pbx-test-1795395640.12", "pbx-test-1795395640.13"
	)
	// ringGroup is the recorded fail-open call to num, whose Local
	// chain dials phone 1002 (a leg built from the recorded frames
	// with the Local ;2 half as the caller) and is answered by it.
	ringGroup := func(num string) [][]byte {
		frames := rewrite(fixture(t, agiDownCall), 0, "0044207946000", num)
		l1, l2, ph := "Local/"+num+"@sink-00000002;1", "Local/"+num+"@sink-00000002;2", "PJSIP/1002-00000007"
		leg := func(f []byte) []byte {
			s := strings.NewReplacer(local1, "PEERID", l1, "PEERNAME").Replace(string(f))
			s = strings.NewReplacer(caller, local2, "PJSIP/1001-00000006", l2).Replace(s)
			return []byte(strings.NewReplacer("PEERID", phone, "PEERNAME", ph).Replace(s))
		}
		var out [][]byte
		for _, f := range frames {
			var e struct {
				Type, Dialstatus string
				Channel          struct{ ID string }
			}
			json.Unmarshal(f, &e)
			switch {
			case e.Type == "ChannelCreated" && e.Channel.ID == local1:
				out = append(out, f, leg(f)) // the phone's leg, created Down
			case e.Type == "Dial" && e.Dialstatus == "ANSWER":
				out = append(out, leg(f), f) // the phone answers first
			case e.Type == "Dial":
				out = append(out, f, leg(f))
			default:
				out = append(out, f)
			}
		}
		return out
	}
	t.Run("RingGroup", func(t *testing.T) {
		h := newHarness(t).start()
		h.push(ringGroup("12345")...)
		if a := h.alerts.kind(tollguard.AlertUngated); len(a) != 0 {
			t.Fatalf("ring group on 12345 alerted: %+v", a)
		}
	})
	t.Run("FiveDigitExtension", func(t *testing.T) {
		h := newHarness(t)
		if err := h.db.CreateExtension(ctx, &tollguard.Extension{Name: "10020", Account: "acme"}); err != nil {
			t.Fatal(err)
		}
		h.start()
		h.push(rewrite(fixture(t, agiDownCall), 0, "0044207946000", "10020")...)
		if a := h.alerts.kind(tollguard.AlertUngated); len(a) != 0 {
			t.Fatalf("a call to extension 10020 alerted: %+v", a)
		}
	})
	t.Run("AnsweredByTheChain", func(t *testing.T) {
		h := newHarness(t).start()
		h.push(rewrite(fixture(t, agiDownCall), 0, "0044207946000", "12345")...)
		if a := h.alerts.kind(tollguard.AlertUngated); len(a) != 1 {
			t.Fatalf("alerts %+v; want the ungated call", h.alerts.all())
		}
	})
	t.Run("FeatureCodeAnsweredByTheChain", func(t *testing.T) {
		// *97 (voicemail) runs on the PBX: no trunk leg, so no number
		// sent out, and a feature code is no number to judge.
		h := newHarness(t).start()
		h.push(rewrite(fixture(t, agiDownCall), 0, "0044207946000", "*97")...)
		if a := h.alerts.kind(tollguard.AlertUngated); len(a) != 0 {
			t.Fatalf("*97 alerted: %+v", a)
		}
	})
}

// TestUngatedFromUnknownEndpoints: a call that starts on an endpoint
// not in the store is judged when it dials a trunk (an outbound_auth, or
// no inbound auth): an unimported phone calling out, or an inbound call
// sent back out through a trunk. An inbound call to an unimported phone
// is not.
func TestUngatedFromUnknownEndpoints(t *testing.T) {
	// flow is the recorded fail-open call with its caller renamed from
	// and its outgoing leg renamed to the given endpoints.
	flow := func(from, to string) [][]byte {
		return rewrite(fixture(t, agiDownCall), 0, "PJSIP/1001-", "PJSIP/"+from+"-",
			"Local/0044207946000@sink-00000002;1", "PJSIP/"+to+"-00000007")
	}
	setup := func(t *testing.T) *harness {
		h := newHarness(t)
		h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
		h.fake.SetObject("endpoint", "gw", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "gw"}}, false)
		// Matched by address, no auth at all: an ATA as much as a trunk.
		h.fake.SetObject("endpoint", "ata", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: ""}, {Attribute: "outbound_auth", Value: ""}}, false)
		h.fake.SetObject("endpoint", "1005", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "1005"}}, false)
		return h.start()
	}
	for _, tc := range []struct {
		name, from, to, subject string
	}{
		{"UnimportedPhoneOut", "1005", "itsp", "endpoint:1005"},
		{"TrunkToTrunk", "itsp", "gw", "endpoint:itsp"},
		{"InboundToUnimportedPhone", "itsp", "1005", ""},
		{"InboundToAnIPMatchedDevice", "itsp", "ata", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t)
			h.push(flow(tc.from, tc.to)...)
			a := h.alerts.kind(tollguard.AlertUngated)
			if tc.subject == "" {
				if len(a) != 0 {
					t.Fatalf("alerted: %+v", a)
				}
				return
			}
			if len(a) != 1 || a[0].Subject != tc.subject || !strings.Contains(a[0].Message, "not an extension in tollguard's store") {
				t.Fatalf("alerts %+v", h.alerts.all())
			}
		})
	}
	t.Run("UnimportedPhoneCallerIDCode", func(t *testing.T) {
		h := setup(t)
		h.push(rewrite(flow("1005", "itsp"), 0, "0044207946000", "*670900123456")...)
		a := h.alerts.kind(tollguard.AlertUngated)
		if len(a) != 1 || a[0].Subject != "endpoint:1005" || !strings.Contains(a[0].Message, "dialled *670900123456 ") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
}

func TestNumberOf(t *testing.T) {
	for _, tc := range []struct{ tech, in, want string }{
		{"PJSIP", "0044207946000@itsp", "0044207946000"},              // PJSIP/number@endpoint
		{"PJSIP", "itsp/sip:0044207946000@10.0.0.1", "0044207946000"}, // PJSIP/endpoint/sip:number@host
		{"PJSIP", "itsp/sips:+44207946000@host", "+44207946000"},
		{"PJSIP", "1002", "1002"},
		{"PJSIP", "", ""},
		// The user part is percent-decoded, as the carrier reads it.
		{"PJSIP", "itsp/sip:%2331%23004412345@host", "#31#004412345"},
		{"PJSIP", "itsp/sip:%2A67%30900123456@host", "*670900123456"},
		{"PJSIP", "%2A670900123456@itsp", "*670900123456"},
		{"PJSIP", "itsp/sip:+44207946000@host", "+44207946000"}, // a + stays a +
		// pjsip decodes a URI's user and sends a % left on: the far end
		// decodes it again.
		{"PJSIP", "itsp/sip:%252A670900123456@host", "*670900123456"},
		// A bad escape leaves it as written.
		{"PJSIP", "itsp/sip:%zz0900123456@host", "%zz0900123456"},
		{"PJSIP", "itsp/sip:0900123456%2@host", "0900123456%2"},
		{"PJSIP", "itsp/sip:%25zz0900@host", "%zz0900"},
		// A number before the endpoint replaces the URI's user.
		{"PJSIP", "0900123456@itsp/sip:1002@host", "0900123456"},
		{"PJSIP", "%2A670900123456@itsp/sip:1002@host", "*670900123456"},
		{"PJSIP", "0900123456@itsp/itsp-aor", "0900123456"},
		// IAX2 sends the number as written, after the peer.
		{"IAX2", "peer/%2A670900123456", "%2A670900123456"},
		{"IAX2", "user@peer/0900123456", "0900123456"},
	} {
		if got := numberOf(tc.tech, tc.in); got != tc.want {
			t.Errorf("numberOf(%q, %q) = %q, want %q", tc.tech, tc.in, got, tc.want)
		}
	}
}

// TestInternalShortCodeCalls: calls between extensions whose names are
// also short codes of the country (FR 1050, premium as a short code)
// are internal calls to the detectors, as they are at the gate; before,
// three of them raised high_risk_attempts and blocked international
// calls on the account.
func TestInternalShortCodeCalls(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a, err := store.NewAccount("frco", "FR", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"1050", "1051"} {
		if err := h.db.CreateExtension(ctx, &tollguard.Extension{Name: name, Account: "frco"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := tollguard.Classify("1050", a.Plan, nil); !n.ExtensionLength || n.Class == tollguard.ClassInternal {
		t.Fatalf("1050 in FR classifies as %+v: the test proves nothing", n)
	}
	h.start()
	for k := range 4 {
		h.push(callFlow(t, k, "1051", "1050", time.Duration(k)*time.Minute)...)
	}
	if al := h.alerts.all(); len(al) != 0 {
		t.Fatalf("internal calls alerted: %+v", al)
	}
}

// TestShortNationalNumbersFromPhones: where whole national numbers are
// as short as extensions (LU 2201), a phone's calls to ones not in the
// store (queues, ring groups, another tenant's phones) are no attempts
// until the gate answers for them: five in a row raised concurrent and
// number_sweep, and the sweep blocked the phone.
func TestShortNationalNumbersFromPhones(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a, err := store.NewAccount("luco", "LU", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateExtension(ctx, &tollguard.Extension{Name: "1051", Account: "luco"}); err != nil {
		t.Fatal(err)
	}
	if n := tollguard.Classify("2201", a.Plan, nil); !n.ExtensionLength || n.Class == tollguard.ClassInternal {
		t.Fatalf("2201 in LU classifies as %+v: the test proves nothing", n)
	}
	h.start()
	// The phone's own leg rings and ends with no trunk leg and no gate
	// record: a call that stayed on the PBX.
	for k := range 5 {
		h.push(deniedFlow(t, k, "1051", fmt.Sprint(2201+k), time.Duration(k)*time.Minute)...)
	}
	if al := h.alerts.all(); len(al) != 0 {
		t.Fatalf("calls to short national numbers alerted: %+v", al)
	}
	// Through the gate to a trunk, they are attempts: a sweep is one.
	for k := 10; k < 15; k++ {
		num := fmt.Sprint(2201 + k)
		id := h.insertCall(&tollguard.CallRecord{CreatedAt: time.Now(), Extension: "1051", Account: "luco", Dialled: num, Class: tollguard.ClassNational,
			UniqueID: fmt.Sprintf("flow-%d.0", k), Channel: "PJSIP/1051", Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 3600, Scale: 2})
		// The gate's answer, as the include's SET VARIABLE shows it.
		frames := fixture(t, allowedCall)
		varset := fmt.Sprintf(`{"type":"ChannelVarset","timestamp":"2026-11-23T00:59:23.081+0000","variable":"TOLLGUARD_CALLID","value":"%d","channel":{"id":"%s","name":"PJSIP/1001-00000000","state":"Ring","creationtime":"2026-11-23T00:59:23.062+0000"},"application":"tollguard"}`, id, allowedID)
		frames = append(frames[:7:7], append([][]byte{[]byte(varset)}, frames[7:]...)...)
		h.push(rewrite(frames, time.Hour+time.Duration(k)*time.Minute,
			"pbx-test-1795395563.0", fmt.Sprintf("flow-%d.0", k), "pbx-test-1795395564.1", fmt.Sprintf("flow-%d.1", k),
			"pbx-test-1795395564.2", fmt.Sprintf("flow-%d.2", k), "PJSIP/1001-", "PJSIP/1051-",
			"0044207946000", num, "sink-00000000", fmt.Sprintf("sink-%08x", k))...)
	}
	if al := h.alerts.kind(tollguard.AlertSweep); len(al) != 1 {
		t.Fatalf("gated sweep of short national numbers: %+v", h.alerts.all())
	}
}

// reframe rewrites one recorded frame: edit changes its decoded JSON.
func reframe(t *testing.T, f []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	return mustJSON(t, m)
}

// setDialplan sets a channel object's dialplan context and extension.
func setDialplan(ch any, context, exten string) {
	dp := ch.(map[string]any)["dialplan"].(map[string]any)
	dp["context"], dp["exten"] = context, exten
}

// TestUngatedDialledOut: a call is judged by the number it sends to a
// trunk, not the one it was created with: a phone that dials a DISA
// code, or "9" for an outside line, and an originate to Local/1001 that
// runs an international number, all send it out with no gate.
func TestUngatedDialledOut(t *testing.T) {
	const trunkLeg = "PJSIP/itsp-00000007"
	// phoneOut is the recorded fail-open call, the phone having dialled
	// exten, whose dialplan, on dialplanExten, dials out (the Dial's
	// caller) to number@itsp straight from the phone's channel.
	phoneOut := func(t *testing.T, exten, dialplanExten, dialstring string) [][]byte {
		frames := rewrite(fixture(t, agiDownCall), 0, "Local/0044207946000@sink-00000002;1", trunkLeg)
		for i, f := range frames {
			typ, _ := eventType(f)
			switch {
			case i == 0:
				frames[i] = reframe(t, f, func(m map[string]any) { setDialplan(m["channel"], "from-internal", exten) })
			case typ == "Dial":
				frames[i] = reframe(t, f, func(m map[string]any) {
					setDialplan(m["caller"], "from-internal", dialplanExten)
					if m["dialstring"] != "" {
						m["dialstring"] = dialstring
					}
				})
			}
		}
		return frames
	}
	setup := func(t *testing.T) *harness {
		h := newHarness(t)
		h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
		return h.start()
	}
	for _, tc := range []struct {
		name, exten, dialplanExten, number string
		alert                              bool
		dialstring                         string // "": number@itsp
	}{
		{"Direct", "0044207946000", "0044207946000", "0044207946000", true, ""},
		{"DISACode", "3472", "0044207946000", "0044207946000", true, ""},
		{"OutsideLinePrefix", "90044207946000", "90044207946000", "0044207946000", true, ""},
		// The trunk leg's answer is judged by what the trunk was sent.
		{"OutsideLineTollFree", "908001234567", "908001234567", "08001234567", false, ""},
		{"DISACodeToEmergency", "3472", "999", "999", false, ""},
		// A caller ID code before the number: the carrier acts on the
		// code and connects the number, so the * or # hides nothing.
		{"CallerIDCode", "*670900123456", "*670900123456", "*670900123456", true, ""},
		{"CallerIDCodeHash", "#31#00252612345", "#31#00252612345", "#31#00252612345", true, ""},
		// The include dials *67 911 without the gate for any account,
		// this GB one too.
		{"CallerIDCodeEmergency", "*67911", "*67911", "*67911", false, ""},
		// A SIP URI's user is judged percent-decoded, as the carrier
		// gets it, not by the DISA code the call started on.
		{"CallerIDCodeInURI", "3472", "3472", "#31#00252612345", true, "itsp/sip:%2331%2300252612345@203.0.113.5"},
		{"EncodedDigitsInURI", "3472", "3472", "0044207946000", true, "itsp/sip:%30%30%344207946000@203.0.113.5"},
		{"DoubleEncodedInURI", "3472", "3472", "*670900123456", true, "itsp/sip:%252A670900123456@203.0.113.5"},
		{"EncodedNumberAtEndpoint", "3472", "3472", "*670900123456", true, "%2A670900123456@itsp"},
		{"CallerIDCodeEmergencyInURI", "*67911", "*67911", "*67911", false, "itsp/sip:%2A67911@203.0.113.5"},
		// chan_pjsip sends the number before the endpoint, not the
		// URI's user (here an extension of the account).
		{"NumberBeforeEndpointWins", "3472", "3472", "0044207946000", true, "0044207946000@itsp/sip:1002@203.0.113.5"},
		// A bad escape is no number: the extension dialled is judged.
		{"BadEscapeInURI", "0044207946000", "0044207946000", "0044207946000", true, "itsp/sip:%zz0044207946000@203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t)
			h.push(phoneOut(t, tc.exten, tc.dialplanExten, cmp.Or(tc.dialstring, tc.number+"@itsp"))...)
			a := h.alerts.kind(tollguard.AlertUngated)
			if !tc.alert {
				if len(a) != 0 {
					t.Fatalf("alerted: %+v", a)
				}
				return
			}
			if len(a) != 1 || a[0].Subject != "ext:1001" || !strings.Contains(a[0].Message, "dialled "+tc.number+" ") {
				t.Fatalf("alerts %+v; want one for %s", h.alerts.all(), tc.number)
			}
			if !strings.Contains(a[0].Message, "Add `Gosub(tollguard-outbound") || strings.Contains(a[0].Message, "302") {
				t.Errorf("no redirect here, the advice is the Gosub: %s", a[0].Message)
			}
		})
	}
	t.Run("PremiseOutsideLineTollFree", func(t *testing.T) {
		// The test above proves something only if the number dialled
		// would alert were it judged.
		if n := tollguard.Classify("908001234567", tollguard.NumberPlan{Country: "GB"}, nil); !n.Toll() {
			t.Fatalf("908001234567 classifies as %+v", n)
		}
	})
	t.Run("PremiseCallerIDCodeEmergency", func(t *testing.T) {
		// CallerIDCodeEmergency proves something only if a GB account's
		// *67911 is no emergency number to Classify alone.
		if n := tollguard.Classify("*67911", tollguard.NumberPlan{Country: "GB"}, nil); !n.Toll() {
			t.Fatalf("*67911 classifies as %+v", n)
		}
	})
	t.Run("OriginateLocalRunsAnotherNumber", func(t *testing.T) {
		// An originate to Local/1001@from-internal (its ;2 half runs
		// 1001) whose ;1 half, once answered, runs 0097221234567 and
		// dials the trunk: the recorded originate, renamed, and then the
		// ;1 half's Dial out, built from the recorded frames.
		frames := rewrite(fixture(t, originated), 0, "0044207946000@from-internal", "1001@from-internal")
		var out [][]byte
		var one, created, dial map[string]any
		for _, f := range frames {
			var m map[string]any
			if err := json.Unmarshal(f, &m); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"channel", "peer", "caller"} {
				if ch, ok := m[k].(map[string]any); ok && ch["dialplan"].(map[string]any)["context"] == "from-internal" {
					setDialplan(ch, "from-internal", "1001")
				}
			}
			out = append(out, mustJSON(t, m))
			switch {
			case m["type"] == "ChannelCreated" && created == nil:
				created = m
			case m["type"] == "Dial" && m["caller"] == nil && m["dialstatus"] == "ANSWER":
				one = m["peer"].(map[string]any)
				dial = m
			default:
				continue
			}
			if dial == nil {
				continue
			}
			// The originate answered: ;1 runs the number and dials out.
			var leg map[string]any
			json.Unmarshal(mustJSON(t, created["channel"]), &leg)
			leg["id"], leg["name"], leg["state"] = "itsp-leg.1", "PJSIP/itsp-0000000a", "Down"
			setDialplan(leg, "from-trunk", "s")
			created["channel"] = leg
			out = append(out, mustJSON(t, created))
			setDialplan(one, "from-internal", "0097221234567")
			for _, status := range []string{"", "ANSWER"} {
				dial["caller"], dial["peer"], dial["dialstatus"], dial["dialstring"] = one, leg, status, ""
				if status == "" {
					dial["dialstring"] = "0097221234567@itsp"
				}
				out = append(out, mustJSON(t, dial))
			}
			dial = nil
		}
		h := setup(t)
		h.push(out...)
		a := h.alerts.kind(tollguard.AlertUngated)
		if len(a) != 1 || a[0].Subject != "context:from-internal" || !strings.Contains(a[0].Message, "dialled 0097221234567 ") {
			t.Fatalf("alerts %+v", h.alerts.all())
		}
	})
}

// TestUngatedOriginatedToTrunk: an originate (ARI, AMI, a call file)
// straight to a trunk channel runs no dialplan, so no gate: its Dial has
// no caller and the trunk channel as its peer. It is judged by the Dial
// string's number.
func TestUngatedOriginatedToTrunk(t *testing.T) {
	// originate is the recorded originate's ;1 half alone (created
	// Down, a Dial with no caller, Up, ANSWER, destroyed), renamed to a
	// channel on endpoint ep, dialled with dialstring.
	originate := func(t *testing.T, ep, dialstring string) [][]byte {
		const one = "pbx-test-1795395662.13"
		var out [][]byte
		for _, f := range fixture(t, originated) {
			var e struct {
				Type    string
				Channel struct{ ID string }
				Peer    struct{ ID string }
				Caller  *struct{ ID string }
			}
			if err := json.Unmarshal(f, &e); err != nil {
				t.Fatal(err)
			}
			if e.Channel.ID == one || e.Type == "Dial" && e.Peer.ID == one && e.Caller == nil {
				out = append(out, f)
			}
		}
		if len(out) < 5 {
			t.Fatalf("the recorded originate has %d frames of its ;1 half", len(out))
		}
		return rewrite(out, 0, "Local/0044207946000@from-internal-00000003;1", "PJSIP/"+ep+"-00000009",
			`"dialstring":"0044207946000@from-internal"`, `"dialstring":"`+dialstring+`"`)
	}
	for _, tc := range []struct {
		name, ep, dialstring string
		alert                bool
		dialled              string // "": 00252612345678
	}{
		{"ToTrunk", "itsp", "00252612345678@itsp", true, ""},
		{"ToTrunkCallerIDCode", "itsp", "#31#00252612345678@itsp", true, "#31#00252612345678"},
		{"ToTrunkCallerIDCodeEmergency", "itsp", "*67911@itsp", false, ""},
		{"ToTrunkURI", "itsp", "itsp/sip:00252612345678@203.0.113.5", true, ""},
		// Percent-encoded, as the carrier gets it decoded.
		{"ToTrunkURIEncodedCallerIDCode", "itsp", "itsp/sip:%2331%2300252612345678@203.0.113.5", true, "#31#00252612345678"},
		{"ToTrunkURIEncodedDigits", "itsp", "itsp/sip:%30%30252612345678@203.0.113.5", true, ""},
		{"ToTrunkEncodedCallerIDCode", "itsp", "%2A6700252612345678@itsp", true, "*6700252612345678"},
		{"ToTrunkURIEncodedEmergency", "itsp", "itsp/sip:%2A67911@203.0.113.5", false, ""},
		{"ToTrunkURIBadEscape", "itsp", "itsp/sip:%2G00252612345678@203.0.113.5", false, ""},
		{"ToTrunkEmergency", "itsp", "999@itsp", false, ""},
		{"ToTrunkTollFree", "itsp", "08001234567@itsp", false, ""},
		{"ToOurPhone", "1001", "1001", false, ""},
		{"ToUnimportedPhone", "1005", "1005", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
			h.fake.SetObject("endpoint", "1005", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "1005"}}, false)
			h.start()
			h.push(originate(t, tc.ep, tc.dialstring)...)
			a := h.alerts.kind(tollguard.AlertUngated)
			if !tc.alert {
				if len(a) != 0 {
					t.Fatalf("alerted: %+v", a)
				}
				return
			}
			if len(a) != 1 || a[0].Subject != "context:from-internal" || !strings.Contains(a[0].Message, "dialled "+cmp.Or(tc.dialled, "00252612345678")+" ") {
				t.Fatalf("alerts %+v", h.alerts.all())
			}
			if st := h.l.Detectors.Stats(); st.Calls != 0 {
				t.Errorf("calls still tracked: %+v", st)
			}
		})
	}
}

// TestDefaultPlanFollowsReload: serve reloads [gate] default_country on
// SIGHUP, but the listener kept numbering calls from endpoints not in
// the store with the start-up country: a US box that had started as GB
// saw 011 international calls as national ones. SetDefaultPlan now
// takes effect for the next call.
func TestDefaultPlanFollowsReload(t *testing.T) {
	h := newHarness(t)
	h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
	h.fake.SetObject("endpoint", "1005", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "1005"}}, false)
	h.start()
	h.l.SetDefaultPlan(tollguard.NumberPlan{Country: "US"})
	// The recorded fail-open call, from 1005 (not in the store) dialling
	// 011 44 20 7946 000: international from the US.
	h.push(rewrite(fixture(t, agiDownCall), 0, "PJSIP/1001-", "PJSIP/1005-",
		"Local/0044207946000@sink-00000002;1", "PJSIP/itsp-00000007", "0044207946000", "01144207946000")...)
	a := h.alerts.kind(tollguard.AlertUngated)
	if len(a) != 1 {
		t.Fatalf("want one ungated alert, got %+v", h.alerts.all())
	}
	var ev struct {
		E164 string `json:"e164"`
	}
	if err := json.Unmarshal([]byte(a[0].Evidence), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.E164 != "+44207946000" {
		t.Errorf("01144207946000 numbered as %q after the default country became US; want +44207946000", ev.E164)
	}
}

// TestUngatedPhoneRedirect: a phone that answers a Dial's INVITE with a
// SIP 302 whose Contact user is a dial string (sip:PJSIP/NUMBER%40itsp@...)
// has app_dial call it itself (do_forward): no dialplan runs, so no gate.
// Here 1001 dials its own extension, its phone redirects, and Dial calls
// 00252612345678 on the trunk. The listener must alert the trunk leg as
// dialled without a gate record when its Dial begins, as for any ungated
// call, and say that a redirect made it (the context's route has the
// Gosub: "add it there" would mislead). do_forward sets FORWARDERNAME on
// the new leg, then publishes its Dial begin and the rung leg's Dial end
// (CANCEL, with forward) in an order app_dial versions do not agree on:
// the patch that read forward passed only with the end first. Both
// orders are replayed.
func TestUngatedPhoneRedirect(t *testing.T) {
	const (
		trunkLeg = "PJSIP/itsp-00000007"
		phoneLeg = "PJSIP/1001-00000008"
		number   = "00252612345678"
	)
	// frames replays the call; judged is the index of the last frame up
	// to the trunk leg's Dial begin.
	frames := func(t *testing.T, beginFirst bool) (out [][]byte, judged int) {
		var caller, leg, trunk map[string]any
		var ts any
		end := func() [][]byte {
			return [][]byte{
				mustJSON(t, map[string]any{"type": "Dial", "timestamp": ts, "caller": caller, "peer": leg, "dialstatus": "CANCEL",
					"forward": "PJSIP/" + number + "@itsp", "forwarded": trunk, "application": "tollguard"}),
				mustJSON(t, map[string]any{"type": "ChannelDestroyed", "timestamp": ts, "channel": leg, "cause": 16, "cause_txt": "Normal Clearing", "application": "tollguard"}),
			}
		}
		for i, f := range rewrite(fixture(t, agiDownCall), 0, "Local/0044207946000@sink-00000002;1", trunkLeg) {
			typ, _ := eventType(f)
			switch {
			case i == 0:
				f = reframe(t, f, func(m map[string]any) {
					setDialplan(m["channel"], "from-internal", "1001")
					caller = m["channel"].(map[string]any)
				})
			case typ == "ChannelCreated" && bytes.Contains(f, []byte(trunkLeg)):
				// Before the trunk leg: the Dial to 1001's phone, which
				// answers 302. Dial makes the trunk leg and marks it.
				leg = legLike(t, caller, "phone-leg.8", phoneLeg)
				var m map[string]any
				if err := json.Unmarshal(f, &m); err != nil {
					t.Fatal(err)
				}
				trunk, ts = m["channel"].(map[string]any), m["timestamp"]
				out = append(out,
					mustJSON(t, map[string]any{"type": "ChannelCreated", "timestamp": ts, "channel": leg, "application": "tollguard"}),
					mustJSON(t, map[string]any{"type": "Dial", "timestamp": ts, "caller": caller, "peer": leg, "dialstring": "1001", "dialstatus": "", "application": "tollguard"}),
					f)
				out = append(out, mustJSON(t, map[string]any{"type": "ChannelVarset", "timestamp": ts, "channel": trunk,
					"variable": "FORWARDERNAME", "value": phoneLeg, "application": "tollguard"}))
				if !beginFirst {
					out = append(out, end()...)
				}
				continue
			case typ == "Dial":
				begin := false
				f = reframe(t, f, func(m map[string]any) {
					setDialplan(m["caller"], "from-internal", "1001")
					if m["dialstring"] != "" {
						m["dialstring"], begin = number+"@itsp", true
					}
				})
				if begin {
					out = append(out, f)
					judged = len(out) - 1
					if beginFirst {
						out = append(out, end()...)
					}
					continue
				}
			}
			out = append(out, f)
		}
		return out, judged
	}
	for _, tc := range []struct {
		name       string
		beginFirst bool
	}{{"BeginThenCancel", true}, {"CancelThenBegin", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
			h.start()
			out, judged := frames(t, tc.beginFirst)
			h.push(out[:judged+1]...)
			check := func(when string) {
				t.Helper()
				a := h.alerts.kind(tollguard.AlertUngated)
				if len(a) != 1 || a[0].Subject != "ext:1001" || !strings.Contains(a[0].Message, "dialled "+number+" ") {
					t.Fatalf("%s: alerts %+v; want one ungated_call for %s", when, h.alerts.all(), number)
				}
				if m := a[0].Message; !strings.Contains(m, `SIP 302 naming the dial string "PJSIP/`+number+`@itsp"`) || !strings.Contains(m, "i option") || strings.Contains(m, "Add `Gosub") {
					t.Errorf("%s: the finding does not say a redirect made the call: %s", when, m)
				}
				if a[0].Evidence == "" || !strings.Contains(a[0].Evidence, `"redirect":"PJSIP/`+number+`@itsp"`) {
					t.Errorf("%s: evidence %s", when, a[0].Evidence)
				}
			}
			check("at the trunk leg's Dial begin")
			h.push(out[judged+1:]...)
			check("at the call's end")
		})
	}
}

// legLike is a new Down channel id/name copied from caller, in
// from-internal at s: a leg Dial makes to a phone.
func legLike(t *testing.T, caller map[string]any, id, name string) map[string]any {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(mustJSON(t, caller), &c); err != nil {
		t.Fatal(err)
	}
	c["id"], c["name"], c["state"] = id, name, "Down"
	setDialplan(c, "from-internal", "s")
	return c
}

// TestUngatedAfterRedirectToPhone: a 302 marks only the leg Dial made for
// it. Here 1001 dials 1002, whose phone redirects to PJSIP/1002 (a phone:
// not judged), that leg does not answer, and the dialplan then dials the
// trunk with no gate. That trunk leg is an ordinary ungated call: its
// finding must name no redirect and advise the Gosub, not the i option.
func TestUngatedAfterRedirectToPhone(t *testing.T) {
	const (
		trunkLeg = "PJSIP/itsp-00000007"
		number   = "00252612345678"
	)
	var out [][]byte
	var caller map[string]any
	for i, f := range rewrite(fixture(t, agiDownCall), 0, "Local/0044207946000@sink-00000002;1", trunkLeg) {
		typ, _ := eventType(f)
		switch {
		case i == 0:
			f = reframe(t, f, func(m map[string]any) {
				setDialplan(m["channel"], "from-internal", "1001")
				caller = m["channel"].(map[string]any)
			})
		case typ == "ChannelCreated" && bytes.Contains(f, []byte(trunkLeg)):
			var m map[string]any
			if err := json.Unmarshal(f, &m); err != nil {
				t.Fatal(err)
			}
			ts := m["timestamp"]
			rung, fwd := legLike(t, caller, "phone-leg.8", "PJSIP/1002-00000008"), legLike(t, caller, "fwd-leg.9", "PJSIP/1002-00000009")
			ev := func(m map[string]any) []byte {
				m["timestamp"], m["application"] = ts, "tollguard"
				return mustJSON(t, m)
			}
			out = append(out,
				ev(map[string]any{"type": "ChannelCreated", "channel": rung}),
				ev(map[string]any{"type": "Dial", "caller": caller, "peer": rung, "dialstring": "1002", "dialstatus": ""}),
				ev(map[string]any{"type": "ChannelCreated", "channel": fwd}),
				ev(map[string]any{"type": "ChannelVarset", "channel": fwd, "variable": "FORWARDERNAME", "value": "PJSIP/1002-00000008"}),
				ev(map[string]any{"type": "Dial", "caller": caller, "peer": rung, "dialstatus": "CANCEL", "forward": "PJSIP/1002", "forwarded": fwd}),
				ev(map[string]any{"type": "Dial", "caller": caller, "peer": fwd, "dialstring": "1002", "dialstatus": ""}),
				ev(map[string]any{"type": "ChannelDestroyed", "channel": rung, "cause": 16, "cause_txt": "Normal Clearing"}),
				ev(map[string]any{"type": "Dial", "caller": caller, "peer": fwd, "dialstatus": "NOANSWER"}),
				ev(map[string]any{"type": "ChannelDestroyed", "channel": fwd, "cause": 16, "cause_txt": "Normal Clearing"}),
			)
		case typ == "Dial":
			f = reframe(t, f, func(m map[string]any) {
				setDialplan(m["caller"], "from-internal", "1001")
				if m["dialstring"] != "" {
					m["dialstring"] = number + "@itsp"
				}
			})
		}
		out = append(out, f)
	}
	h := newHarness(t)
	h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
	h.start()
	h.push(out...)
	a := h.alerts.kind(tollguard.AlertUngated)
	if len(a) != 1 || !strings.Contains(a[0].Message, "dialled "+number+" ") {
		t.Fatalf("alerts %+v; want one ungated_call for %s", h.alerts.all(), number)
	}
	if m := a[0].Message; strings.Contains(m, "302") || !strings.Contains(m, "Add `Gosub") || strings.Contains(a[0].Evidence, `"redirect"`) {
		t.Errorf("an ordinary ungated call took an earlier leg's redirect: %s\nevidence %s", m, a[0].Evidence)
	}
}
