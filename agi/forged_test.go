package agi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

func TestCheckArgs(t *testing.T) {
	const n = "17344522091638820" // the include's random last argument
	for _, tc := range []struct {
		name    string
		query   string
		args    map[string]string // as the agi library parsed them: trimmed
		checked bool
		nonce   int    // the argument dropped as the nonce
		bad     string // part of the error; "" for none
	}{
		{name: "no copies", query: "", args: map[string]string{"agi_arg_1": "0044"}},
		{name: "flags only", query: "selftest=1", args: map[string]string{"agi_arg_1": "0044"}},
		{name: "equal", query: "a1=+4420&a2=1001&a3=[::1]:5060&a4=" + n, checked: true, nonce: 4,
			args: map[string]string{"agi_arg_1": "+4420", "agi_arg_2": "1001", "agi_arg_3": "[::1]:5060", "agi_arg_4": n}},
		{name: "with a flag", query: "selftest=1&a1=0044&a2=" + n, checked: true, nonce: 2,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_2": n}},
		// Asterisk may leave a trailing empty argument out.
		{name: "empty missing", query: "a1=0044&a2=&a3=" + n, checked: true, nonce: 3,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_3": n}},
		{name: "empty sent", query: "a1=0044&a2=&a3=" + n, checked: true, nonce: 3,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_2": "", "agi_arg_3": n}},
		// The agi library trims values; Gosub keeps a space after a comma.
		{name: "spaces", query: "a1=0044&a2= 1001&a3=" + n, checked: true, nonce: 3,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_2": "1001", "agi_arg_3": n}},
		{name: "differs", query: "a1=00900123456&a2=" + n, checked: true,
			args: map[string]string{"agi_arg_1": "442079460000", "agi_arg_2": n},
			bad:  `agi_arg_1 is "442079460000" but the request URL says "00900123456"`},
		{name: "missing", query: "a1=0044&a2=1001&a3=" + n, checked: true,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_3": n},
			bad:  `agi_arg_2 is "" but the request URL says "1001"`},
		{name: "extra", query: "a1=0044&a2=" + n, checked: true,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_2": n, "agi_arg_3": "1002"},
			bad:  "agi_arg_3 is not in the request URL"},
		{name: "twice", query: "a1=0044&a1=0045", checked: true, args: map[string]string{"agi_arg_1": "0044"},
			bad: "gives a1 twice"},
		// A forger who copies what it can know ends its copy before the
		// nonce.
		{name: "no nonce", query: "a1=0044&a2=1001&a3=" + n, checked: true,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_2": "1001"}, bad: "differs"},
		// RAND() without func_rand is empty: then a copy would pass.
		{name: "empty nonce", query: "a1=0044&a2=", checked: true,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_2": ""}, bad: "func_rand"},
		{name: "not a number", query: "a1=0044&a2=127.0.0.1:5072", checked: true,
			args: map[string]string{"agi_arg_1": "0044", "agi_arg_2": "127.0.0.1:5072"}, bad: "func_rand"},
		// "+" is not a space: the copies are compared undecoded.
		{name: "plus", query: "a1=+44&a2=" + n, checked: true, args: map[string]string{"agi_arg_1": "44", "agi_arg_2": n},
			bad: "differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &request{Vars: tc.args, Query: tc.query}
			checked, err := r.checkArgs()
			if checked != tc.checked {
				t.Errorf("checked %v, want %v", checked, tc.checked)
			}
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.bad == "differs" && err == nil, tc.bad != "" && tc.bad != "differs" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Errorf("error %v, want one with %q", err, tc.bad)
			}
			if err == nil && r.nonce != tc.nonce {
				t.Errorf("nonce argument %d, want %d", r.nonce, tc.nonce)
			}
		})
	}
}

// forge makes ch's caller ID end the env block early, as a From or
// Diversion header with encoded line breaks does on a real Asterisk
// (res_agi writes agi_callerid raw), with args as its own AGI()
// arguments. The rest of the real block follows the forged blank line.
func forge(ch *agitest.Channel, args ...string) {
	v := "1001"
	for i, a := range args {
		v += "\nagi_arg_" + string(rune('1'+i)) + ": " + a
	}
	ch.Env.Set("agi_callerid", v+"\n\n200 result=0")
}

// TestForgedRequests: a request whose arguments differ from the URL's
// copies is refused: the gate is not asked, a call is hung up (never an
// emergency call), a settlement is not made, and the admin is told.
func TestForgedRequests(t *testing.T) {
	settled := make(chan tollguard.Settlement, 4)
	h := startServer(t, func(s *Server) {
		g := s.Gate.(*agitest.Gate)
		g.DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
			t.Errorf("gate asked about a forged request: %+v", c)
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 3600, CallID: 42}, nil
		}
		g.SettleFunc = func(_ context.Context, st tollguard.Settlement) (bool, error) {
			settled <- st
			return true, nil
		}
	})

	t.Run("Outbound", func(t *testing.T) {
		ch := gated("00900123456") // premium
		forge(ch, "442079460000", "1001", "127.0.0.1:5072")
		res := h.run(ch)
		if !res.Hangup || res.HangupCause != "21" || res.Verdict() != "" {
			t.Fatalf("forged call: hangup %v cause %q verdict %q; commands %q", res.Hangup, res.HangupCause, res.Verdict(), res.Commands)
		}
		logs := h.logs.find("FastAGI request forged")
		if len(logs) != 1 || logs[0].Attrs[tollguard.LogDest] != "00900123456" || logs[0].Attrs[tollguard.LogExtension] != "1001" ||
			logs[0].Attrs[tollguard.LogReason] != "forged_request" || !strings.Contains(logs[0].Msg, "call hung up") {
			t.Errorf("log %+v", logs)
		}
	})

	t.Run("CopiedArguments", func(t *testing.T) {
		// The forger repeats the include's own arguments, which it can
		// know (its number, its endpoint, its address): the rest of the
		// real request then reads as replies, and an allow's reply
		// "lost" that way settled the call at 0 s. The random last
		// argument is what it cannot copy.
		ch := gated("00900123456")
		forge(ch, "00900123456", "1001", "127.0.0.1:5072")
		if res := h.run(ch); !res.Hangup || res.HangupCause != "21" || res.Verdict() != "" {
			t.Fatalf("copied arguments: hangup %v cause %q verdict %q", res.Hangup, res.HangupCause, res.Verdict())
		}
		hc := agitest.PJSIP("s")
		hc.SetIncludeArgs(tollguard.ScriptHangup, "42", "3600", "ANSWER", "3600000")
		forge(hc, "42", "0", "ANSWER", "0")
		h.run(hc)
	})

	t.Run("Emergency", func(t *testing.T) {
		// An emergency number (by the URL's copy, which a forger cannot
		// change) is never hung up: it is allowed, as the include, seeing
		// no verdict, would hang it up.
		ch := gated("112")
		forge(ch, "00900123456", "1001", "127.0.0.1:5072")
		if res := h.run(ch); res.Hangup || res.Verdict() != "allow" || res.Reason() != "emergency" {
			t.Fatalf("forged emergency request: hangup %v, verdict %q, commands %q", res.Hangup, res.Verdict(), res.Commands)
		}
		// Forged arguments naming 112 do not make a premium call one.
		ch = gated("00900123456")
		forge(ch, "112", "1001", "127.0.0.1:5072")
		if res := h.run(ch); !res.Hangup || res.HangupCause != "21" || res.Verdict() != "" {
			t.Fatalf("forged 112 on a premium call: hangup %v cause %q verdict %q", res.Hangup, res.HangupCause, res.Verdict())
		}
	})

	t.Run("Hangup", func(t *testing.T) {
		// Another call's id, settled at 0 seconds.
		ch := agitest.PJSIP("s")
		ch.SetIncludeArgs(tollguard.ScriptHangup, "42", "3600", "ANSWER")
		forge(ch, "1000", "0", "ANSWER")
		h.run(ch)
		ch = agitest.PJSIP("s")
		ch.SetIncludeArgs(tollguard.ScriptEmergency, "112", "1001", "127.0.0.1:5072", "60", "ANSWER", "1795392000")
		forge(ch, "112", "1001", "127.0.0.1:5072", "0", "ANSWER", "1795392000", "junk")
		h.run(ch)
		select {
		case st := <-settled:
			t.Fatalf("forged request settled %+v", st)
		default:
		}
	})

	if _, _, _, _, refused := h.metrics.snapshot(); refused[RefusedForged] != 7 {
		t.Errorf("refused %v, want 7 forged", refused)
	}

	t.Run("Honest", func(t *testing.T) {
		// The same requests, unforged, go through: with a "+" number,
		// and with the trailing empty argument Asterisk may leave out.
		h.gate.DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 60, CallID: 43}, nil
		}
		if res := h.run(gated("+442079460000")); res.Verdict() != "allow" {
			t.Errorf("+ number: verdict %q; log\n%s", res.Verdict(), h.logs.dump())
		}
		ch := gated("0044207946000")
		ch.SetScript("outbound?a1=0044207946000&a2=1001&a3=&a4=12345")
		ch.SetArgs("0044207946000", "1001", "", "12345")
		if res := h.run(ch); res.Verdict() != "allow" {
			t.Errorf("empty source left out: verdict %q", res.Verdict())
		}
		// Gosub keeps a space after a comma: Gosub(...(${EXTEN}, 1001)).
		ch = gated("0044207946000")
		ch.SetIncludeArgs(tollguard.ScriptOutbound, "0044207946000", " 1001", "127.0.0.1:5072")
		if res := h.run(ch); res.Verdict() != "allow" {
			t.Errorf("space in an argument: verdict %q", res.Verdict())
		}
		ch = agitest.PJSIP("s")
		ch.SetIncludeArgs(tollguard.ScriptHangup, "43", "30", "ANSWER")
		h.run(ch)
		if st := recv(t, settled, "Settle"); st.CallID != 43 || st.Billsec != 30 {
			t.Errorf("settled %+v", st)
		}
	})
}

// TestUncheckedRequestWarns: a request without the URL's copies (an
// include older than the check, or a hand-written AGI() line) is served,
// with a warning once an hour to install the current include.
func TestUncheckedRequestWarns(t *testing.T) {
	h := startServer(t, nil)
	for range 3 {
		ch := agitest.PJSIP("0044207946000")
		ch.SetArgs("0044207946000", "1001", "127.0.0.1:5072")
		if res := h.run(ch); res.Verdict() != "allow" {
			t.Fatalf("verdict %q", res.Verdict())
		}
	}
	if n := len(h.logs.find("without a copy of its arguments")); n != 1 {
		t.Errorf("%d warnings for 3 unchecked requests, want 1", n)
	}
	h.run(gated("0044207946000"))
	if n := len(h.logs.find("without a copy of its arguments")); n != 1 {
		t.Errorf("a checked request warned")
	}
}

// FuzzCheckArgs: the include's copies of honest arguments, with its
// random last one, always pass, and any forged argument (another value,
// a dropped or an added one, a replaced nonce) always fails, whatever
// the values hold, "+" and spaces included. An argument holding "&"
// cannot be copied into the URL and is not tried.
func FuzzCheckArgs(f *testing.F) {
	f.Add("0044207946000", "1001", "127.0.0.1:5072", "00900123456", uint8(0))
	f.Add("+442079460000", "", "[2001:db8::1]:5060", "+44 20", uint8(1))
	f.Add("42", " 3", "ANSWER", "0", uint8(2))
	f.Fuzz(func(t *testing.T, a1, a2, a3, forged string, which uint8) {
		args := []string{a1, a2, a3, "9182736450123"}
		for _, a := range args {
			if strings.ContainsAny(a, "&") {
				return
			}
		}
		vars := map[string]string{}
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = fmt.Sprintf("a%d=%s", i+1, a)
			vars[fmt.Sprintf("agi_arg_%d", i+1)] = strings.TrimSpace(a) // as the agi library parses the env
		}
		honest := &request{Vars: vars, Query: strings.Join(q, "&")}
		if checked, err := honest.checkArgs(); !checked || err != nil || honest.nonce != 4 {
			t.Fatalf("honest %q: checked %v, %v, nonce %d", honest.Query, checked, err, honest.nonce)
		}
		bad := &request{Vars: map[string]string{}, Query: honest.Query}
		for k, v := range vars {
			bad.Vars[k] = v
		}
		key := fmt.Sprintf("agi_arg_%d", int(which%4)+1)
		forged = strings.TrimSpace(forged)
		switch which / 4 % 3 {
		case 0: // another value
			if forged == bad.Vars[key] {
				return
			}
			bad.Vars[key] = forged
		case 1: // dropped: only a non-empty one can be told from empty
			if bad.Vars[key] == "" {
				return
			}
			delete(bad.Vars, key)
		case 2: // added
			bad.Vars["agi_arg_5"] = forged
		}
		if _, err := bad.checkArgs(); err == nil {
			t.Fatalf("forged %v with URL %q passed", bad.Vars, bad.Query)
		}
	})
}

// TestAllowOutOfStepLeftOpen: an allow whose reply comes back out of
// step may still have been set (Asterisk runs each command it reads), so
// the call is not settled at 0 s: its hangup settles it. Here a request
// from an include without the URL's copies, forged with the caller's
// own arguments: the rest of the real request reads as the MSet's reply.
func TestAllowOutOfStepLeftOpen(t *testing.T) {
	settled := make(chan tollguard.Settlement, 1)
	h := startServer(t, func(s *Server) {
		g := s.Gate.(*agitest.Gate)
		g.DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 3600, CallID: 42}, nil
		}
		g.SettleFunc = func(_ context.Context, st tollguard.Settlement) (bool, error) {
			settled <- st
			return true, nil
		}
	})
	ch := agitest.PJSIP("00900123456")
	ch.SetArgs("00900123456", "1001", "127.0.0.1:5072")
	// Asterisk's own line break after the caller ID ends the forgery.
	ch.Env.Set("agi_callerid", "1001\nagi_arg_1: 00900123456\nagi_arg_2: 1001\nagi_arg_3: 127.0.0.1:5072\n")
	res := h.run(ch)
	if res.Verdict() != "allow" {
		t.Fatalf("verdict %q: the test needs the allow sent", res.Verdict())
	}
	if len(h.logs.find("could not confirm that the allow reached Asterisk")) != 1 {
		t.Errorf("log:\n%s", h.logs.dump())
	}
	select {
	case st := <-settled:
		t.Fatalf("settled %+v: the allow may be dialling", st)
	default:
	}
}

// TestRequireArgCopies: with RequireArgCopies, a request without the
// URL's copies is refused as a forged one is (an emergency number
// excepted); the include's requests are served.
func TestRequireArgCopies(t *testing.T) {
	h := startServer(t, func(s *Server) { s.RequireArgCopies = true })
	ch := agitest.PJSIP("0044207946000")
	ch.SetArgs("0044207946000", "1001", "127.0.0.1:5072")
	if res := h.run(ch); !res.Hangup || res.HangupCause != "21" || res.Verdict() != "" {
		t.Errorf("request without copies: hangup %v cause %q verdict %q", res.Hangup, res.HangupCause, res.Verdict())
	}
	if l := h.logs.find("require_arg_copies is on"); len(l) != 1 || l[0].Attrs[tollguard.LogReason] != "unchecked_request" {
		t.Errorf("log %+v", l)
	}
	ch = agitest.PJSIP("999")
	ch.SetArgs("999", "1001", "127.0.0.1:5072")
	if res := h.run(ch); res.Hangup {
		t.Error("an emergency number was hung up")
	}
	if res := h.run(gated("0044207946000")); res.Verdict() != "allow" {
		t.Errorf("the include's request: verdict %q", res.Verdict())
	}
	if _, _, _, _, refused := h.metrics.snapshot(); refused[RefusedUnchecked] != 2 || refused[RefusedForged] != 0 {
		t.Errorf("refused %v", refused)
	}
}

// TestForgedRequestJudgedByTheAccount: on a PBX whose default country is
// CH, a BE extension forges its request for 1414 (CH air rescue, a BE
// premium short code). The forged-request path took the loose answer
// meant for a store that is down (the default country's emergency
// numbers always count) and allowed the call, with no limit and no
// charge, whenever the phone sent a line break. The store is there to
// ask: the account's country decides, as the gate's step 1 does.
func TestForgedRequestJudgedByTheAccount(t *testing.T) {
	h := policyServer(t, "CH", []testAccount{{id: "brux", country: "BE", currency: "EUR", ext: "2001"}, {id: "zurich", country: "CH", currency: "EUR", ext: "3001"}}, nil)
	forged := func(num, ext string) *agitest.Result {
		ch := gated(num)
		ch.SetIncludeArgs(tollguard.ScriptOutbound, num, ext, "127.0.0.1:5072")
		forge(ch, num, ext, "127.0.0.1:5072")
		return h.run(ch)
	}
	if res := forged("1414", "2001"); !res.Hangup || res.Verdict() == "allow" {
		t.Errorf("forged 1414 from BE: hangup %v verdict %q commands %q", res.Hangup, res.Verdict(), res.Commands)
	}
	for _, c := range []struct{ num, ext string }{{"1414", "3001"}, {"112", "2001"}} {
		if res := forged(c.num, c.ext); res.Hangup || res.Verdict() != "allow" || res.Reason() != "emergency" {
			t.Errorf("forged %s from %s: hangup %v verdict %q commands %q", c.num, c.ext, res.Hangup, res.Verdict(), res.Commands)
		}
	}
}
