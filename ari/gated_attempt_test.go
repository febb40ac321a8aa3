package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// gateAnswer is the allow the gate's MSet puts on channel ch, in its
// order (TOLLGUARD_VERDICT, _REASON, _CAUSE, _MAXSEC, _CALLID): each a
// copy of verdict, the recorded ChannelVarset frame of the rig's decision
// variable, renamed. With callID 0 it is the include's own answer for an
// emergency number, MSet(TOLLGUARD_VERDICT=allow,TOLLGUARD_REASON=emergency).
func gateAnswer(t *testing.T, verdict []byte, ch any, reason tollguard.Reason, callID int64) [][]byte {
	t.Helper()
	vars := [][2]string{{tollguard.VarVerdict, "allow"}, {tollguard.VarReason, string(reason)}}
	if callID != 0 {
		maxsec := "3600"
		if reason == tollguard.ReasonEmergency {
			maxsec = ""
		}
		vars = append(vars, [2]string{tollguard.VarCause, ""}, [2]string{tollguard.VarMaxSec, maxsec}, [2]string{tollguard.VarCallID, strconv.FormatInt(callID, 10)})
	}
	var out [][]byte
	for _, kv := range vars {
		out = append(out, reframe(t, verdict, func(m map[string]any) {
			m["variable"], m["value"], m["channel"] = kv[0], kv[1], ch
		}))
	}
	return out
}

// decode returns a frame's JSON object.
func decode(t *testing.T, f []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// forwardedFlow rebuilds the recorded ARI originate as call k: an
// inbound call on trunk itsp to DID 442079460999, forwarded to number
// through Local/<number>@outbound-…;1 (Dial(Local/${FWD}@outbound/n)).
// The ;2 half runs the gate, as in the recording (as the extension
// whose forward it is, by Set(__TOLLGUARD_EXT=...) where it forwards),
// and it answers with callID (gateAnswer); the leg ;2 dials, in the recording
// Local/…@sink;1, is a trunk leg PJSIP/itsp-…, and the recorded ;2 half
// of that sink chain is left out. The inbound channel replaces the
// originate as the Dial's caller (the originate's Stasis frames are left
// out). Everything from the first hangup request on comes talk later.
// It returns the frames up to the answer and from the hangup on.
func forwardedFlow(t *testing.T, k int, number string, reason tollguard.Reason, callID int64, talk time.Duration) (answered, ended [][]byte) {
	t.Helper()
	const sinkTwo = "pbx-test-1795395663.16"
	in := fmt.Sprintf("fwd-%d.0", k)
	frames := rewrite(fixture(t, originated), 0,
		"Local/0044207946000@sink-00000004;1", fmt.Sprintf("PJSIP/itsp-%08x", 2*k+1), "0044207946000@sink", "0044207946000@itsp",
		"pbx-test-1795395662.13", fmt.Sprintf("fwd-%d.1", k), "pbx-test-1795395662.14", fmt.Sprintf("fwd-%d.2", k),
		"pbx-test-1795395663.15", fmt.Sprintf("fwd-%d.3", k),
		"from-internal-00000003", fmt.Sprintf("outbound-%08x", k), `"dialstring":"0044207946000@from-internal"`, `"dialstring":"0044207946000@outbound/n"`,
		`"context":"from-internal"`, `"context":"outbound"`, "0044207946000", number)
	// The inbound channel, from the recorded first channel.
	var inbound map[string]any
	if err := json.Unmarshal(mustJSON(t, decode(t, frames[0])["channel"]), &inbound); err != nil {
		t.Fatal(err)
	}
	inbound["id"], inbound["name"], inbound["state"] = in, fmt.Sprintf("PJSIP/itsp-%08x", 2*k), "Ring"
	setDialplan(inbound, "from-trunk", "442079460999")
	created := decode(t, frames[0])
	created["channel"] = inbound
	out := [][]byte{mustJSON(t, created)}
	var last map[string]any
	hangup := -1
	for _, f := range frames {
		m := decode(t, f)
		ch, _ := m["channel"].(map[string]any)
		switch {
		case ch != nil && ch["id"] == sinkTwo, m["type"] == "StasisStart", m["type"] == "StasisEnd":
			continue
		case m["type"] == "Dial" && m["caller"] == nil:
			caller := map[string]any{}
			json.Unmarshal(mustJSON(t, inbound), &caller)
			if m["dialstatus"] == "ANSWER" {
				caller["state"] = "Up"
			}
			m["caller"] = caller
			f = mustJSON(t, m)
		case m["type"] == "ChannelHangupRequest" && hangup < 0:
			hangup = len(out)
		case m["type"] == "ChannelDestroyed":
			last = m
		}
		out = append(out, f)
		if m["type"] == "ChannelVarset" && m["variable"] == "TOLLGATE_DECISION" && m["value"] == "allow" {
			out = append(out[:len(out)-1], gateAnswer(t, f, ch, reason, callID)...)
		}
	}
	if hangup < 0 || last == nil {
		t.Fatal("the recorded originate has no hangup")
	}
	// The inbound channel goes last, as the caller's did in the
	// recorded phone calls.
	gone := map[string]any{}
	json.Unmarshal(mustJSON(t, inbound), &gone)
	gone["state"] = "Up"
	last["channel"] = gone
	out = append(out, mustJSON(t, last))
	return out[:hangup], rewrite(out[hangup:], talk)
}

// TestForwardedCallIsAnAttempt: an inbound call forwarded out through a
// Local channel, whose ;2 half the gate allowed, is an attempt of the
// extension and account the gate judged: it counts once for bursts, is
// tracked while it lasts, and a long international one is reported.
// Before, only a phone's own channel was ever an attempt, so such calls
// (forwarding, follow-me to premium and IRSF numbers) were invisible to
// every detector.
func TestForwardedCallIsAnAttempt(t *testing.T) {
	const number = "00252612345678"
	trunk := func(h *harness) {
		h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
	}
	t.Run("LongInternational", func(t *testing.T) {
		h := newHarness(t)
		trunk(h)
		h.start()
		id := h.gateCall("fwd-0.2", "1002", number, tollguard.Allow)
		answered, ended := forwardedFlow(t, 0, number, tollguard.ReasonOK, id, 3*time.Hour)
		h.push(answered...)
		if st := h.l.Detectors.Stats(); st.Calls != 1 {
			t.Errorf("mid-call detector state %+v, want the call tracked", st)
		}
		if a := h.alerts.all(); len(a) != 0 {
			t.Fatalf("alerts before the call was long: %+v", a)
		}
		h.push(ended...)
		a := h.alerts.kind(tollguard.AlertLongCall)
		if len(a) != 1 || a[0].Subject != "account:acme" || !strings.Contains(a[0].Message, "+252612345678") || !strings.Contains(a[0].Message, "extension 1002") {
			t.Fatalf("alerts %+v; want one long_call for account acme", h.alerts.all())
		}
		if al := h.alerts.kind(tollguard.AlertUngated); len(al) != 0 {
			t.Errorf("a gated call alerted as ungated: %+v", al)
		}
		if st := h.l.Detectors.Stats(); st.Calls != 0 {
			t.Errorf("calls still tracked after every channel was destroyed: %+v", st)
		}
	})
	t.Run("LongInternationalInProgress", func(t *testing.T) {
		// The recorded answer is at 01:01:03; an hour of event clock
		// later, the tick finds the call still up.
		h := newHarness(t, withWallClock(time.Date(2026, 11, 23, 2, 1, 10, 0, time.UTC)))
		trunk(h)
		h.start()
		id := h.gateCall("fwd-0.2", "1002", number, tollguard.Allow)
		answered, _ := forwardedFlow(t, 0, number, tollguard.ReasonOK, id, 0)
		h.push(answered...)
		// The event clock moves with a repeat of the last state change
		// (a ChannelVarset that is none of tollguard's is not decoded).
		var up []byte
		for _, f := range answered {
			if typ, _ := eventType(f); typ == "ChannelStateChange" {
				up = f
			}
		}
		h.push(rewrite([][]byte{up}, time.Hour+5*time.Second)...)
		testutil.Eventually(t, waitLimit, "long_call alert from the tick", func() bool { return len(h.alerts.kind(tollguard.AlertLongCall)) == 1 })
	})
	t.Run("CountedOnce", func(t *testing.T) {
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectBurstExt: {Threshold: 2, Window: time.Hour, Action: tollguard.ActionAlert},
		}))
		trunk(h)
		h.start()
		for k := range 2 {
			id := h.gateCall(fmt.Sprintf("fwd-%d.2", k), "1002", number, tollguard.Allow)
			answered, ended := forwardedFlow(t, k, number, tollguard.ReasonOK, id, 0)
			h.push(rewrite(append(answered, ended...), time.Duration(k)*time.Minute)...)
			if a := h.alerts.kind(tollguard.AlertBurst); len(a) != k {
				t.Fatalf("after %d forwarded calls: burst alerts %+v, want %d (threshold 2)", k+1, h.alerts.all(), k)
			}
		}
		if a := h.alerts.kind(tollguard.AlertBurst); a[0].Subject != "ext:1002" || !strings.Contains(a[0].Message, "extension 1002: 2 forwarded or originated calls (no source address)") || !strings.Contains(a[0].Message, "calls from its phones are counted apart") {
			t.Errorf("burst alert %+v", a[0])
		}
	})
	t.Run("CountedApartFromThePhonesOwnCalls", func(t *testing.T) {
		// Anyone who rings 1002's forwarded number makes its forwarded
		// legs: they have their own burst window, as at the gate, so one
		// of them and one call from 1002's phone are no burst of two. A
		// burst of forwarded legs only alerts: blocking 1002 would lock
		// its phone out.
		ctx := context.Background()
		h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
			tollguard.DetectBurstExt: {Threshold: 2, Window: time.Hour, Action: tollguard.ActionBlockExtension},
		}))
		trunk(h)
		h.start()
		for k := range 2 {
			id := h.gateCall(fmt.Sprintf("fwd-%d.2", k), "1002", number, tollguard.Allow)
			answered, ended := forwardedFlow(t, k, number, tollguard.ReasonOK, id, 0)
			h.push(rewrite(append(answered, ended...), time.Duration(k)*time.Minute)...)
			if ext, err := h.db.Extension(ctx, "1002"); err != nil || ext.Blocked {
				t.Fatalf("after %d forwarded legs: 1002 %+v, %v; want it not blocked", k+1, ext, err)
			}
			h.gateCall(fmt.Sprintf("flow-%d.0", k), "1002", "x", tollguard.Allow)
			h.push(callFlow(t, k, "1002", fmt.Sprintf("00331234%05d", k*7777), time.Duration(k)*time.Minute)...)
			if a := h.alerts.kind(tollguard.AlertBurst); len(a) != 2*k {
				t.Fatalf("after %d forwarded legs and %d phone calls: burst alerts %+v, want %d (threshold 2, each counted apart)", k+1, k+1, h.alerts.all(), 2*k)
			}
		}
		a := h.alerts.kind(tollguard.AlertBurst)
		for i, want := range []string{"extension 1002: 2 forwarded or originated calls", "extension 1002: 2 calls from phones"} {
			if a[i].Subject != "ext:1002" || !strings.Contains(a[i].Message, want) {
				t.Errorf("burst alert %d: %+v, want %q", i, a[i], want)
			}
		}
		if !strings.Contains(a[0].Message, "alerted, not blocked") || a[0].Severity != tollguard.SeverityWarning {
			t.Errorf("forwarded burst alert %+v, want a warning that it was not blocked", a[0])
		}
		if ext, err := h.db.Extension(ctx, "1002"); err != nil || !ext.Blocked || ext.BlockedBy != "detector:burst_ext" {
			t.Errorf("after the phone's own burst: 1002 %+v, %v; want it blocked by burst_ext", ext, err)
		}
	})
}

// TestGatedPhoneCallCountedOnce: a phone's own call is an attempt from
// its creation; the gate's answer on its channel must not count it again.
func TestGatedPhoneCallCountedOnce(t *testing.T) {
	h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
		tollguard.DetectBurstExt:  {Threshold: 2, Window: time.Hour, Action: tollguard.ActionAlert},
		tollguard.DetectBurstAcct: {Threshold: 2, Window: time.Hour, Action: tollguard.ActionAlert},
	})).start()
	for k := range 2 {
		num := fmt.Sprintf("00331234%05d", k*7777)
		id := h.gateCall(fmt.Sprintf("flow-%d.0", k), "1001", num, tollguard.Allow)
		var frames [][]byte
		for _, f := range callFlow(t, k, "1001", num, time.Duration(k)*time.Minute) {
			m := decode(t, f)
			if m["type"] == "ChannelVarset" && m["variable"] == "TOLLGATE_DECISION" && m["value"] == "allow" {
				frames = append(frames, gateAnswer(t, f, m["channel"], tollguard.ReasonOK, id)...)
				continue
			}
			frames = append(frames, f)
		}
		h.push(frames...)
		if a := h.alerts.kind(tollguard.AlertBurst); len(a) != 2*k {
			t.Fatalf("after %d gated calls: burst alerts %+v, want %d (threshold 2)", k+1, h.alerts.all(), 2*k)
		}
	}
	if st := h.l.Detectors.Stats(); st.Calls != 0 {
		t.Errorf("calls still tracked: %+v", st)
	}
}

// followMeFlow rebuilds the recorded allowed call as call k: phone 1001
// dials extension 1002 (internal, no gate), whose follow-me dials
// Local/<number>@followme-…/n; that ;2 half runs the gate (as 1002, by
// Set(__TOLLGUARD_EXT=1002) before the follow-me), which answers with
// callID, and what it reaches answers. The recording's gate frames on the
// phone's channel are moved to the ;2 half; everything from the first
// hangup request on comes talk later.
func followMeFlow(t *testing.T, k int, number string, callID int64, talk time.Duration) [][]byte {
	t.Helper()
	frames := rewrite(fixture(t, allowedCall), 0,
		"pbx-test-1795395563.0", fmt.Sprintf("fm-%d.0", k), "pbx-test-1795395564.1", fmt.Sprintf("fm-%d.1", k),
		"pbx-test-1795395564.2", fmt.Sprintf("fm-%d.2", k), "sink-00000000", fmt.Sprintf("followme-%08x", k),
		`"context":"sink"`, `"context":"followme"`, "@sink", "@followme")
	var out, gate [][]byte
	hangup := -1
	for _, f := range frames {
		m := decode(t, f)
		for _, key := range []string{"channel", "caller", "peer"} {
			if ch, ok := m[key].(map[string]any); ok && strings.HasPrefix(ch["name"].(string), "PJSIP/1001-") {
				setDialplan(ch, "from-internal", "1002")
			}
		}
		f = []byte(strings.ReplaceAll(string(mustJSON(t, m)), "0044207946000", number))
		m = decode(t, f)
		ch, _ := m["channel"].(map[string]any)
		switch {
		case m["type"] == "ChannelVarset" && m["variable"] == "TOLLGATE_DECISION":
			if m["value"] == "allow" {
				gate = append(gate, f)
			}
			continue
		case m["type"] == "ChannelHangupRequest" && hangup < 0:
			hangup = len(out)
		}
		out = append(out, f)
		// The ;2 half's first dialplan step: the gate runs there.
		if m["type"] == "ChannelDialplan" && ch["id"] == fmt.Sprintf("fm-%d.2", k) && len(gate) == 1 {
			out = append(out, gateAnswer(t, gate[0], ch, tollguard.ReasonOK, callID)...)
			gate = append(gate, nil)
		}
	}
	if hangup < 0 || len(gate) != 2 {
		t.Fatalf("the recorded call: hangup at %d, gate %d", hangup, len(gate))
	}
	return append(out[:hangup], rewrite(out[hangup:], talk)...)
}

// TestFollowMeOfInternalCall: an internal call (1001 to 1002) that 1002's
// follow-me sends out through a Local channel is an attempt once the gate
// answers on the Local ;2 half, counted once, against the extension and
// account the gate judged (1002, acme), not the caller.
func TestFollowMeOfInternalCall(t *testing.T) {
	const number = "0033123456789"
	h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
		tollguard.DetectBurstExt: {Threshold: 2, Window: time.Hour, Action: tollguard.ActionAlert},
		tollguard.DetectLongIntl: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert, Duration: time.Hour},
	})).start()
	for k := range 2 {
		id := h.gateCall(fmt.Sprintf("fm-%d.2", k), "1002", number, tollguard.Allow)
		h.push(followMeFlow(t, k, number, id, time.Duration(k)*2*time.Hour)...)
		if a := h.alerts.kind(tollguard.AlertBurst); len(a) != k {
			t.Fatalf("after %d follow-me calls: burst alerts %+v, want %d (threshold 2)", k+1, h.alerts.all(), k)
		}
	}
	if a := h.alerts.kind(tollguard.AlertBurst); a[0].Subject != "ext:1002" {
		t.Errorf("burst alert %+v, want it against 1002", a[0])
	}
	a := h.alerts.kind(tollguard.AlertLongCall)
	if len(a) != 1 || a[0].Subject != "account:acme" || !strings.Contains(a[0].Message, "+33123456789") || !strings.Contains(a[0].Message, "extension 1002") {
		t.Fatalf("alerts %+v; want one long_call for the follow-me to +33", h.alerts.all())
	}
	if st := h.l.Detectors.Stats(); st.Calls != 0 {
		t.Errorf("calls still tracked: %+v", st)
	}
}

// TestForwardedEmergencyCall: a forward to an emergency number is never
// an attempt, whether the include answered for it (no record, no
// TOLLGUARD_CALLID) or a dialplan asked the gate (a record with reason
// emergency): it is not tracked, counted or reported, however long.
func TestForwardedEmergencyCall(t *testing.T) {
	for _, asked := range []bool{false, true} {
		t.Run(fmt.Sprintf("GateAsked=%v", asked), func(t *testing.T) {
			h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
				tollguard.DetectBurstExt:  {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert},
				tollguard.DetectBurstAcct: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert},
			}))
			h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "itsp"}}, false)
			h.start()
			var id int64
			if asked {
				id = h.emergencyRecord("fwd-0.2", "1002", "999")
			}
			answered, ended := forwardedFlow(t, 0, "999", tollguard.ReasonEmergency, id, 3*time.Hour)
			h.push(answered...)
			if st := h.l.Detectors.Stats(); st.Calls != 0 {
				t.Errorf("an emergency call is tracked: %+v", st)
			}
			h.push(ended...)
			if f := h.hooks.snapshot().findings; len(f) != 0 {
				t.Errorf("findings on an emergency call: %+v", f)
			}
		})
	}
}

// emergencyRecord records the gate's allow of an emergency number, as
// the gate does when a dialplan asks it about one.
func (h *harness) emergencyRecord(uniqueID, ext, dialled string) int64 {
	h.t.Helper()
	return h.insertCall(&tollguard.CallRecord{CreatedAt: time.Now(), Extension: ext, Account: "acme", Dialled: dialled, Class: tollguard.ClassEmergency,
		UniqueID: uniqueID, Channel: "Local/" + dialled, Verdict: tollguard.Allow, Reason: tollguard.ReasonEmergency, MaxSec: -1})
}

// TestNineForAnOutsideLine: a phone's call that starts on the route's
// prefix ("9" for an outside line) is an attempt from its creation under
// 90033..., which the detectors cannot take for international. When the
// gate answers, its number (0033..., as the include passed it) replaces
// that one, so the long international call is seen.
func TestNineForAnOutsideLine(t *testing.T) {
	h := newHarness(t, withRules(map[string]tollguard.DetectorRule{
		tollguard.DetectLongIntl: {Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert, Duration: 2 * time.Second},
	})).start()
	const num = "0033123456789"
	id := h.gateCall("flow-0.0", "1001", num, tollguard.Allow)
	var frames [][]byte
	for i, f := range callFlow(t, 0, "1001", num, 0) {
		m := decode(t, f)
		if m["type"] == "ChannelVarset" && m["variable"] == "TOLLGATE_DECISION" && m["value"] == "allow" {
			frames = append(frames, gateAnswer(t, f, m["channel"], tollguard.ReasonOK, id)...)
			continue
		}
		if i == 0 { // the phone's channel, created on what the phone dialled
			f = reframe(t, f, func(m map[string]any) { setDialplan(m["channel"], "from-internal", "9"+num) })
		}
		frames = append(frames, f)
	}
	h.push(frames...) // answered 3.5 s
	a := h.alerts.kind(tollguard.AlertLongCall)
	if len(a) != 1 || !strings.Contains(a[0].Message, "+33123456789") {
		t.Fatalf("alerts %+v", h.alerts.all())
	}
}

// TestAnotherAccountsForwardIsNotTheCallers: acme's phone 1001 calls
// beta's DID (a national number), and beta's 2001 follows it out to
// high-risk numbers through Local channels, gated as 2001 and denied.
// The records' numbers replaced the caller's on acme's tracked call:
// three such calls blocked acme's international calls. Each record of
// another extension now counts as its own attempt, for its own account.
func TestAnotherAccountsForwardIsNotTheCallers(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	betaExtension(t, h, "2001")
	h.start()
	for k := range 3 {
		number := fmt.Sprintf("0025261234567%d", k) // Somalia: high-risk
		id := h.insertCall(&tollguard.CallRecord{CreatedAt: time.Now(), Extension: "2001", Account: "beta", Dialled: number,
			Class: tollguard.ClassHighRisk, UniqueID: fmt.Sprintf("fm-%d.2", k), Channel: "Local/" + number,
			Verdict: tollguard.Deny, Reason: tollguard.ReasonHighRisk, Cause: 21, Scale: 2})
		var frames [][]byte
		gated := false
		for _, f := range followMeFlow(t, k, number, id, 0) {
			m := decode(t, f)
			// The phone dialled beta's DID, not 1002.
			for _, key := range []string{"channel", "caller", "peer"} {
				if ch, ok := m[key].(map[string]any); ok && strings.HasPrefix(ch["name"].(string), "PJSIP/1001-") {
					setDialplan(ch, "from-internal", "02079460999")
				}
			}
			if m["type"] == "ChannelVarset" && strings.HasPrefix(m["variable"].(string), "TOLLGUARD_") {
				gated = true
				switch m["variable"] {
				case tollguard.VarVerdict:
					m["value"] = "deny"
				case tollguard.VarReason:
					m["value"] = string(tollguard.ReasonHighRisk)
				case tollguard.VarMaxSec:
					m["value"] = ""
				}
				frames = append(frames, mustJSON(t, m))
				continue
			}
			// After the deny nothing but the hangups.
			if gated && m["type"] != "ChannelHangupRequest" && m["type"] != "ChannelDestroyed" {
				continue
			}
			frames = append(frames, mustJSON(t, m))
		}
		h.push(frames...)
	}
	beta := false
	for _, a := range h.alerts.all() {
		if a.Account == "acme" || strings.Contains(a.Subject, "1001") {
			t.Errorf("alert against acme for beta's forwards: %s %s: %s", a.Kind, a.Subject, a.Message)
		}
		beta = beta || a.Kind == tollguard.AlertHighRisk && strings.Contains(a.Subject, "2001")
	}
	if !beta {
		t.Errorf("beta's 2001 forwarded to three high-risk numbers unseen: %+v", h.alerts.all())
	}
	acme, err := h.db.Account(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if acme.IntlBlock {
		t.Errorf("acme is blocked for international calls because beta's follow-me tried high-risk numbers: %s", acme.IntlBlockReason)
	}
	// Nor is beta: the follow-me's legs (no source address) are not its
	// phones' calls, though acme's phone started the call. Anyone who
	// rings the number dials what it follows to: an alert, saying why.
	beta2, err := h.db.Account(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if beta2.IntlBlock {
		t.Errorf("beta is blocked for international calls because its follow-me was rung: %s", beta2.IntlBlockReason)
	}
	for _, a := range h.alerts.kind(tollguard.AlertHighRisk) {
		if !strings.Contains(a.Message, "so alerted, not blocked: a forwarding or follow-me dials these") {
			t.Errorf("beta's follow-me alert %q does not say why it did not block", a.Message)
		}
	}
}

// TestAnotherExtensionsFollowMeCountsOnce: acme's 1001 calls beta's DID,
// and beta's 2002 follow-me tries four numbers in turn on one Local
// channel (a gate record each). Each record became an attempt of its
// own, all in progress until the call ended: a false "4 calls at once"
// for 2002. Records on one channel are one attempt at a time, each
// ending as the next is made.
func TestAnotherExtensionsFollowMeCountsOnce(t *testing.T) {
	h := newHarness(t)
	betaExtension(t, h, "2002")
	tr, _, _, l2, t0 := followMe(h, "s")
	for k, num := range []string{"07700900001", "07700900002", "02079460003", "02079460004"} {
		gateLeg(t, h, tr, l2, num, tollguard.ClassMobile, tollguard.ReasonOK, t0.Add(time.Duration(k)*30*time.Second))
	}
	if n := h.l.Detectors.Stats().Calls; n != 2 {
		t.Errorf("%d calls tracked for one inbound call and one follow-me, want 2", n)
	}
	for _, a := range h.alerts.all() {
		t.Errorf("alert for one follow-me trying its numbers in turn: %s %s: %s", a.Kind, a.Subject, a.Message)
	}
}

func tracerCh(id, name, state, ctx, exten string) *ariv5.ChannelData {
	return &ariv5.ChannelData{ID: id, Name: name, State: state, Dialplan: &ariv5.DialplanCEP{Context: ctx, Exten: exten}}
}

// betaExtension adds a second customer, beta, with extensions exts.
func betaExtension(t *testing.T, h *harness, exts ...string) {
	t.Helper()
	ctx := context.Background()
	b, err := store.NewAccount("beta", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.CreateAccount(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, ext := range exts {
		if err := h.db.CreateExtension(ctx, &tollguard.Extension{Name: ext, Account: "beta"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAnotherExtensionsFollowMeTriesHighRiskInTurn: one inbound call;
// beta's 2002 follow-me tries three high-risk numbers in turn, each
// denied. One attempt per extension renumbered counted only the first
// (a renumbered attempt is resolved again only when its first number
// did not count): three high-risk attempts are three.
func TestAnotherExtensionsFollowMeTriesHighRiskInTurn(t *testing.T) {
	h := newHarness(t)
	betaExtension(t, h, "2002")
	tr, _, _, l2, t0 := followMe(h, "s")
	for k, num := range []string{"00252612345670", "00252612345671", "00252612345672"} {
		gateLeg(t, h, tr, l2, num, tollguard.ClassHighRisk, tollguard.ReasonHighRisk, t0.Add(time.Duration(k)*5*time.Second))
	}
	beta := false
	for _, a := range h.alerts.all() {
		if a.Account == "acme" || strings.Contains(a.Subject, "1001") {
			t.Errorf("alert against the caller: %s %s", a.Kind, a.Subject)
		}
		beta = beta || a.Kind == tollguard.AlertHighRisk && strings.Contains(a.Subject, "2002")
	}
	if !beta {
		t.Errorf("2002's follow-me tried three high-risk numbers on one call: no high_risk alert: %+v", h.alerts.all())
	}
	if n := h.l.Detectors.Stats().Calls; n != 2 {
		t.Errorf("%d calls tracked, want 2 (the caller's, and 2002's follow-me)", n)
	}
}

// TestAnotherExtensionsUnansweredForwardEndsWithItsLeg: acme's 1001
// calls beta's DID; beta's ring group rings 2001's desk phone and 2002's
// follow-me to a French mobile (gated, allowed). The desk phone answers
// at once; the follow-me leg is cancelled, never answered. The desk
// phone's answer marked the follow-me answered, and it lasted as long
// as the call: a two-hour long_call for 2002. Another extension's
// attempt is answered by its own leg and ends with it.
func TestAnotherExtensionsUnansweredForwardEndsWithItsLeg(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	betaExtension(t, h, "2001", "2002")
	tr, phone, l1, l2, t0 := followMe(h, "0033612345678")
	desk := tracerCh("d.2", "PJSIP/2001-00000002", "Down", "from-internal", "s")
	tr.created(ctx, desk, t0)
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *desk, Dialstring: "2001"}, t0)
	gateLeg(t, h, tr, l2, "0033612345678", tollguard.ClassInternational, tollguard.ReasonOK, t0.Add(time.Second))
	// The desk phone answers; the follow-me leg is cancelled.
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *desk, Dialstatus: "ANSWER"}, t0.Add(5*time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *l1, Dialstatus: "CANCEL"}, t0.Add(5*time.Second))
	tr.destroyed(ctx, l2, t0.Add(5*time.Second))
	tr.destroyed(ctx, l1, t0.Add(5*time.Second))
	if n := h.l.Detectors.Stats().Calls; n != 1 {
		t.Errorf("%d calls tracked after the follow-me leg is gone, want 1 (the caller's)", n)
	}
	tr.destroyed(ctx, desk, t0.Add(2*time.Hour))
	tr.destroyed(ctx, phone, t0.Add(2*time.Hour))
	for _, a := range h.alerts.all() {
		if a.Kind == tollguard.AlertLongCall {
			t.Errorf("long-call alert for a forward that was never answered: %s %s: %s", a.Kind, a.Subject, a.Message)
		}
	}
	if n := h.l.Detectors.Stats().Calls; n != 0 {
		t.Errorf("%d calls still tracked", n)
	}
}

// gateLeg records the gate's answer for 2002 (beta) on ch, of class and
// reason (ok: an allow; else a deny, cause 21), and sets the variables
// as its MSet does.
func gateLeg(t *testing.T, h *harness, tr *tracker, ch *ariv5.ChannelData, num string, class tollguard.Class, reason tollguard.Reason, at time.Time) {
	t.Helper()
	gatedAs(t, h, tr, ch, "2002", "beta", num, class, reason, at)
}

// gatedAs records the gate's answer for ext on account acct on ch,
// of class and reason (ok: an allow; else a deny, cause 21), and sets
// the variables as its MSet does.
func gatedAs(t *testing.T, h *harness, tr *tracker, ch *ariv5.ChannelData, ext, acct, num string, class tollguard.Class, reason tollguard.Reason, at time.Time) {
	t.Helper()
	rec := &tollguard.CallRecord{CreatedAt: at, Extension: ext, Account: acct, Dialled: num, Class: class,
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

// followMe starts acme's 1001 calling beta's DID, which a follow-me
// takes out through a Local pair to number (the pair's l1 and l2); it
// returns the listener's tracker and the time it began.
func followMe(h *harness, number string) (tr *tracker, phone, l1, l2 *ariv5.ChannelData, t0 time.Time) {
	ctx := context.Background()
	h.l.init()
	tr, t0 = h.l.tr, time.Now()
	phone = tracerCh("p.1", "PJSIP/1001-00000001", "Ring", "from-internal", "02079460999")
	l1 = tracerCh("l.3", "Local/"+number+"@fm-00000001;1", "Down", "fm", number)
	l2 = tracerCh("l.4", "Local/"+number+"@fm-00000001;2", "Ring", "fm", number)
	for _, c := range []*ariv5.ChannelData{phone, l1, l2} {
		tr.created(ctx, c, t0)
	}
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *l1, Dialstring: number + "@fm"}, t0)
	return tr, phone, l1, l2, t0
}

// longCallAlerted reports a long_call alert for beta.
func longCallAlerted(h *harness) bool {
	for _, a := range h.alerts.kind(tollguard.AlertLongCall) {
		if strings.Contains(a.Subject, "beta") {
			return true
		}
	}
	return false
}

// TestAnotherExtensionsAnsweredFollowMeOutlivesItsLocalPair: FollowMe()
// without its l option dials Local/<number>@<ctx> with no /n: once the
// trunk answers, the Local pair is optimised away (both halves
// destroyed) while the inbound and trunk channels talk on for two
// hours. Ended with its gated channel, the answered follow-me left the
// concurrency counts and never raised long_call; an answered attempt
// lasts as long as the call.
func TestAnotherExtensionsAnsweredFollowMeOutlivesItsLocalPair(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	betaExtension(t, h, "2002")
	tr, phone, l1, l2, t0 := followMe(h, "0033612345678")
	trunk := tracerCh("t.5", "PJSIP/itsp-00000005", "Down", "from-trunk", "s")
	gateLeg(t, h, tr, l2, "0033612345678", tollguard.ClassInternational, tollguard.ReasonOK, t0.Add(time.Second))
	tr.created(ctx, trunk, t0.Add(time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *l2, Peer: *trunk, Dialstring: "0033612345678@itsp"}, t0.Add(time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *l2, Peer: *trunk, Dialstatus: "ANSWER"}, t0.Add(5*time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *l1, Dialstatus: "ANSWER"}, t0.Add(5*time.Second))
	// Local optimisation: the pair goes, the trunk joins the phone's bridge.
	tr.destroyed(ctx, l2, t0.Add(6*time.Second))
	tr.destroyed(ctx, l1, t0.Add(6*time.Second))
	if n := h.l.Detectors.Stats().Calls; n != 2 {
		t.Errorf("%d calls tracked mid-call, want 2 (the caller's and 2002's answered follow-me)", n)
	}
	tr.destroyed(ctx, trunk, t0.Add(2*time.Hour))
	tr.destroyed(ctx, phone, t0.Add(2*time.Hour))
	if !longCallAlerted(h) {
		t.Errorf("two-hour answered follow-me to +33: no long_call for beta: %+v", h.alerts.all())
	}
}

// TestAnotherExtensionsFollowMeRingingTwoLegs: FollowMe number=>A&B (or
// Dial(Local/A@fm/n&Local/B@fm/n)) rings two numbers at once for 2002,
// both gated. A answers; B's leg is cancelled. One attempt per extension
// moved to B's channel: A's answer was never credited, and B's end
// ended it. Each gated channel is its own attempt.
func TestAnotherExtensionsFollowMeRingingTwoLegs(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	betaExtension(t, h, "2002")
	h.l.init()
	tr := h.l.tr
	t0 := time.Now()
	phone := tracerCh("p.1", "PJSIP/1001-00000001", "Ring", "from-internal", "02079460999")
	a1 := tracerCh("l.3", "Local/0033612345678@fm-00000001;1", "Down", "fm", "0033612345678")
	a2 := tracerCh("l.4", "Local/0033612345678@fm-00000001;2", "Ring", "fm", "0033612345678")
	b1 := tracerCh("l.5", "Local/0033698765432@fm-00000002;1", "Down", "fm", "0033698765432")
	b2 := tracerCh("l.6", "Local/0033698765432@fm-00000002;2", "Ring", "fm", "0033698765432")
	ta := tracerCh("t.7", "PJSIP/itsp-00000007", "Down", "from-trunk", "s")
	tb := tracerCh("t.8", "PJSIP/itsp-00000008", "Down", "from-trunk", "s")
	for _, c := range []*ariv5.ChannelData{phone, a1, a2, b1, b2} {
		tr.created(ctx, c, t0)
	}
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *a1, Dialstring: "0033612345678@fm/n"}, t0)
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *b1, Dialstring: "0033698765432@fm/n"}, t0)
	gateLeg(t, h, tr, a2, "0033612345678", tollguard.ClassInternational, tollguard.ReasonOK, t0.Add(time.Second))
	gateLeg(t, h, tr, b2, "0033698765432", tollguard.ClassInternational, tollguard.ReasonOK, t0.Add(time.Second))
	tr.created(ctx, ta, t0.Add(time.Second))
	tr.created(ctx, tb, t0.Add(time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *a2, Peer: *ta, Dialstring: "0033612345678@itsp"}, t0.Add(time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *b2, Peer: *tb, Dialstring: "0033698765432@itsp"}, t0.Add(time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *a2, Peer: *ta, Dialstatus: "ANSWER"}, t0.Add(5*time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *a1, Dialstatus: "ANSWER"}, t0.Add(5*time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *phone, Peer: *b1, Dialstatus: "CANCEL"}, t0.Add(5*time.Second))
	tr.dial(ctx, &ariv5.Dial{Caller: *b2, Peer: *tb, Dialstatus: "CANCEL"}, t0.Add(5*time.Second))
	for _, c := range []*ariv5.ChannelData{tb, b2, b1} {
		tr.destroyed(ctx, c, t0.Add(5*time.Second))
	}
	if n := h.l.Detectors.Stats().Calls; n != 2 {
		t.Errorf("%d calls tracked mid-call, want 2 (the caller's and 2002's answered follow-me)", n)
	}
	for _, c := range []*ariv5.ChannelData{ta, a2, a1, phone} {
		tr.destroyed(ctx, c, t0.Add(2*time.Hour))
	}
	if !longCallAlerted(h) {
		t.Errorf("two-hour answered follow-me to +33: no long_call for beta: %+v", h.alerts.all())
	}
}
