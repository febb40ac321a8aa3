package agi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/sockdiag"
)

const msetAllow120 = "EXEC MSet TOLLGUARD_VERDICT=allow,TOLLGUARD_REASON=ok,TOLLGUARD_CAUSE=,TOLLGUARD_MAXSEC=120,TOLLGUARD_CALLID=42,TIMEOUT(absolute)=120"

func TestOutbound(t *testing.T) {
	t.Run("AllowsWithMaxSec", func(t *testing.T) {
		calls := make(chan tollguard.Call, 1)
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
				calls <- c
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 120, CallID: 42, Account: "acme"}, nil
			}
		})
		res := h.run(gated("0044207946000"))
		if want := []string{msetAllow120}; !reflect.DeepEqual(res.Commands, want) {
			t.Errorf("commands:\n got %q\nwant %q", res.Commands, want)
		}
		if res.Verdict() != "allow" || res.Reason() != "ok" || res.MaxSec() != "120" || res.CallID() != "42" ||
			res.Timeout() != "120" || res.Cause() != "" || res.Hangup || res.AGIStatus != "SUCCESS" {
			t.Errorf("result %+v", res)
		}
		c := recv(t, calls, "Decide")
		want := tollguard.Call{Extension: "1001", Dialled: "0044207946000", Remote: "127.0.0.1",
			Channel: "PJSIP/1001-00000000", UniqueID: "pbx-test-1795395563.0", Context: "from-internal"}
		if c != want {
			t.Errorf("call:\n got %+v\nwant %+v", c, want)
		}
		if e := h.logs.find("call allowed"); len(e) != 1 || e[0].Attrs[tollguard.LogCallID] != "42" || e[0].Attrs[tollguard.LogDest] != "0044207946000" ||
			e[0].Attrs[tollguard.LogAccount] != "acme" {
			t.Errorf("allow log: %+v", e)
		}
	})

	t.Run("ReadsSourceAddressWhenNotPassed", func(t *testing.T) {
		calls := make(chan tollguard.Call, 1)
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
				calls <- c
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 120, CallID: 42}, nil
			}
		})
		res := h.run(agitest.PJSIP("0044207946000")) // AGI(agi://.../outbound,${EXTEN}) as recorded
		want := []string{"GET VARIABLE CHANNEL(pjsip,remote_addr)", msetAllow120}
		if !reflect.DeepEqual(res.Commands, want) {
			t.Errorf("commands:\n got %q\nwant %q", res.Commands, want)
		}
		if c := recv(t, calls, "Decide"); c.Remote != "127.0.0.1" || c.Extension != "1001" {
			t.Errorf("remote %q extension %q", c.Remote, c.Extension)
		}
	})

	t.Run("AllowsWithoutLimit", func(t *testing.T) {
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonWhitelist, MaxSec: -1, CallID: 5}, nil
			}
		})
		res := h.run(gated("0044207946000"))
		if _, ok := res.Var("TIMEOUT(absolute)"); ok || res.MaxSec() != "" || res.Verdict() != "allow" || res.Reason() != "whitelist" {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("ZeroSecondAllowStillHasATimeout", func(t *testing.T) {
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 0, CallID: 5}, nil
			}
		})
		res := h.run(gated("0044207946000"))
		if res.Timeout() != "1" || res.MaxSec() != "0" {
			t.Errorf("TIMEOUT(absolute) %q MAXSEC %q: 0 would disable Asterisk's timeout", res.Timeout(), res.MaxSec())
		}
	})

	t.Run("LocalChannel", func(t *testing.T) {
		calls := make(chan tollguard.Call, 2)
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
				calls <- c
				return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonUnknownExtension}, nil
			}
		})
		res := h.run(agitest.Local("0044207946000"))
		if len(res.Commands) != 2 || !strings.HasPrefix(res.Commands[0], "EXEC MSet") {
			t.Errorf("a Local channel has no peer to ask about: commands %q", res.Commands)
		}
		if c := recv(t, calls, "Decide"); c.Extension != "" || c.Remote != "" || c.Channel != "Local/0044207946000@from-internal-00000003;2" {
			t.Errorf("call %+v", c)
		}
		ch := agitest.Local("0044207946000")
		ch.SetArgs("0044207946000", "1001", "") // the include's inherited extension, no source
		h.run(ch)
		if c := recv(t, calls, "Decide"); c.Extension != "1001" || c.Remote != "" {
			t.Errorf("call %+v", c)
		}
	})

	t.Run("OtherTechnologies", func(t *testing.T) {
		calls := make(chan tollguard.Call, 1)
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
				calls <- c
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1}, nil
			}
		})
		for _, tech := range []string{"SIP", "IAX2"} {
			ch := agitest.PJSIP("0044207946000")
			ch.SetChannel(tech + "/alice-phone-00000003")
			ch.Vars["CHANNEL(peerip)"] = "10.1.2.3"
			res := h.run(ch)
			if res.Commands[0] != "GET VARIABLE CHANNEL(peerip)" {
				t.Errorf("%s: commands %q", tech, res.Commands)
			}
			if c := recv(t, calls, "Decide"); c.Extension != "alice-phone" || c.Remote != "10.1.2.3" {
				t.Errorf("%s: call %+v", tech, c)
			}
		}
	})

	t.Run("SourceAddressForms", func(t *testing.T) {
		calls := make(chan tollguard.Call, 1)
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
				calls <- c
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1}, nil
			}
		})
		for src, want := range map[string]string{
			"[2001:db8::5]:5060": "2001:db8::5",
			"[::1]:5060":         "::1",
			"192.0.2.7":          "192.0.2.7",
			"":                   "",
			// Passed on as it came: the policy denies an extension with
			// an access list for it, instead of skipping the check.
			"not an address":    "not an address",
			"host.example:5060": "host.example:5060",
		} {
			ch := agitest.PJSIP("0044207946000")
			ch.SetArgs("0044207946000", "1001", src)
			res := h.run(ch)
			if len(res.Commands) != 1 {
				t.Errorf("%q: a passed source must not be asked for again: %q", src, res.Commands)
			}
			if c := recv(t, calls, "Decide"); c.Remote != want {
				t.Errorf("%q: remote %q, want %q", src, c.Remote, want)
			}
		}
		ch := agitest.PJSIP("0044207946000")
		ch.Vars["CHANNEL(pjsip,remote_addr)"] = "[2001:db8::9]:5061"
		h.run(ch)
		if c := recv(t, calls, "Decide"); c.Remote != "2001:db8::9" {
			t.Errorf("GET: remote %q", c.Remote)
		}
		ch = agitest.PJSIP("0044207946000")
		ch.Vars["CHANNEL(pjsip,remote_addr)"] = "junk"
		h.run(ch)
		if c := recv(t, calls, "Decide"); c.Remote != "junk" {
			t.Errorf("GET of no address: remote %q, want it passed on", c.Remote)
		}
		ch = agitest.PJSIP("0044207946000")
		delete(ch.Vars, "CHANNEL(pjsip,remote_addr)") // unset: 200 result=0
		h.run(ch)
		if c := recv(t, calls, "Decide"); c.Remote != "" {
			t.Errorf("unset: remote %q", c.Remote)
		}
	})

	t.Run("AccountCodeAndSelftest", func(t *testing.T) {
		calls := make(chan tollguard.Call, 1)
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
				calls <- c
				return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonSelftest}, nil
			}
		})
		ch := gated("0044207946000")
		ch.SetAccountCode("acme")
		ch.SetScript("outbound?selftest=1")
		res := h.run(ch)
		if c := recv(t, calls, "Decide"); c.Account != "acme" || !c.Selftest {
			t.Errorf("call %+v", c)
		}
		if res.Reason() != "selftest" {
			t.Errorf("reason %q", res.Reason())
		}
	})

	t.Run("NoDialledNumber", func(t *testing.T) {
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				t.Error("Decide called without a number")
				return tollguard.Decision{}, nil
			}
		})
		ch := agitest.PJSIP("0044207946000")
		ch.SetArgs()
		res := h.run(ch)
		if res.Verdict() != "deny" || res.Reason() != "error" || res.HangupCause != "34" {
			t.Errorf("result %+v", res)
		}
		if len(h.logs.find("without a dialled number")) != 1 {
			t.Error("no log telling the admin how to call the gate")
		}
	})
}

func TestDenies(t *testing.T) {
	reasons := make(chan tollguard.Reason, 1)
	causes := make(chan int, 1)
	h := startServer(t, func(s *Server) {
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Deny, Reason: <-reasons, Cause: <-causes, CallID: 77, Account: "acme"}, nil
		}
	})
	for _, r := range tollguard.Reasons {
		if r == tollguard.ReasonOK || r == tollguard.ReasonEmergency || r == tollguard.ReasonWhitelist {
			continue // allow reasons
		}
		t.Run(string(r), func(t *testing.T) {
			want := "21"
			if r == tollguard.ReasonError {
				want = "34"
			}
			reasons <- r
			causes <- 0 // the gate leaves the cause to the default
			res := h.run(gated("00252612345678"))
			wantCmds := []string{
				"EXEC MSet TOLLGUARD_VERDICT=deny,TOLLGUARD_REASON=" + string(r) + ",TOLLGUARD_CAUSE=" + want + ",TOLLGUARD_MAXSEC=,TOLLGUARD_CALLID=77",
				"EXEC Hangup " + want,
			}
			if !reflect.DeepEqual(res.Commands, wantCmds) {
				t.Errorf("commands:\n got %q\nwant %q", res.Commands, wantCmds)
			}
			if res.Verdict() != "deny" || res.Reason() != string(r) || res.Cause() != want || res.HangupCause != want || res.AGIStatus != "HANGUP" {
				t.Errorf("result %+v", res)
			}
			if _, ok := res.Var("TIMEOUT(absolute)"); ok {
				t.Error("TIMEOUT(absolute) set on a deny")
			}
		})
	}
	t.Run("GateCause", func(t *testing.T) {
		reasons <- tollguard.ReasonNoCredit
		causes <- tollguard.CauseTemporaryFailure
		res := h.run(gated("00252612345678"))
		if res.Cause() != "41" || res.HangupCause != "41" {
			t.Errorf("cause %q hangup %q", res.Cause(), res.HangupCause)
		}
		// The account the gate resolved: the AGI accountcode is empty.
		// At info: denials are the policy at work (a scanned PBX denies
		// hundreds a minute), not warnings.
		if e := h.logs.find("call denied"); len(e) == 0 || e[len(e)-1].Attrs[tollguard.LogReason] != "no_credit" ||
			e[len(e)-1].Attrs[tollguard.LogAccount] != "acme" || e[len(e)-1].Level != slog.LevelInfo {
			t.Errorf("deny log %+v", e)
		}
	})
}

func TestDenyActionReturn(t *testing.T) {
	h := startServer(t, func(s *Server) {
		s.DenyAction = DenyReturn
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonAfterHours, CallID: 3}, nil
		}
	})
	res := h.run(gated("0033123456789"))
	if len(res.Commands) != 1 || res.Hangup || res.AGIStatus != "SUCCESS" {
		t.Errorf("return must leave the channel to the dialplan: commands %q, status %s", res.Commands, res.AGIStatus)
	}
	if res.Verdict() != "deny" || res.Reason() != "after_hours" || res.Cause() != "21" {
		t.Errorf("result %+v", res)
	}
}

func TestBadDenyAction(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Gate: &agitest.Gate{}, DenyAction: "playback"}
	if err := s.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "playback") {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener left open")
	}
}

func TestFailures(t *testing.T) {
	t.Run("EmergencyAllowedWhenGateFails", func(t *testing.T) {
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				return tollguard.Decision{}, tollguard.Errorf(tollguard.EUNAVAILABLE, "database is locked")
			}
		})
		res := h.run(gated("112"))
		if res.Verdict() != "allow" || res.Reason() != "emergency" || res.MaxSec() != "" || res.Hangup {
			t.Errorf("result %+v", res)
		}
		if _, ok := res.Var("TIMEOUT(absolute)"); ok {
			t.Error("emergency call limited")
		}
		res = h.run(gated("0044207946000"))
		if res.Verdict() != "deny" || res.Reason() != "error" || res.Cause() != "34" || res.HangupCause != "34" {
			t.Errorf("toll call: %+v", res)
		}
		if e := h.logs.find("decision failed; call denied"); len(e) != 1 || e[0].Attrs[tollguard.LogError] != "database is locked" {
			t.Errorf("error log %+v", e)
		}
		// A failing store fails every call: one line per 10 s, not two
		// per call (journald drops a flood, and all of tollguard's lines
		// with it). The denial itself is at debug.
		for range 20 {
			if res := h.run(gated("0044207946000")); res.Reason() != "error" {
				t.Fatalf("toll call: %+v", res)
			}
		}
		if e := h.logs.find("decision failed; call denied"); len(e) != 1 {
			t.Errorf("%d error lines for 21 failed calls, want 1", len(e))
		}
		for _, e := range h.logs.find("call denied") {
			if e.Msg == "call denied" && e.Level != slog.LevelDebug {
				t.Errorf("a failed call's denial logged at %v: %+v", e.Level, e)
			}
		}
	})

	t.Run("EmergencyAllowedWhenGateSlow", func(t *testing.T) {
		release := make(chan struct{})
		h := startServer(t, func(s *Server) {
			s.DecisionTimeout = 100 * time.Millisecond
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				<-release // ignores its context, like a wedged store
				return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonBlockedExtension}, nil
			}
		})
		defer close(release)
		res := h.run(gated("911"))
		if res.Verdict() != "allow" || res.Reason() != "emergency" {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("IncludeEmergencyList", func(t *testing.T) {
		// 000 is on the include's TOLLGUARD_EMERGENCY list, not in the
		// gate's plan: a failed decision lets it through, and a deny
		// never hangs it up.
		fail := true
		var mu sync.Mutex
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				mu.Lock()
				defer mu.Unlock()
				if fail {
					return tollguard.Decision{}, errors.New("store down")
				}
				return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonUnknownExtension, CallID: 3}, nil
			}
		})
		ch := gated("000")
		ch.SetScript("outbound?emergency=1")
		if res := h.run(ch); res.Verdict() != "allow" || res.Reason() != "emergency" {
			t.Errorf("failed decision: %+v", res)
		}
		mu.Lock()
		fail = false
		mu.Unlock()
		res := h.run(ch)
		if res.Verdict() != "deny" || res.Hangup || len(res.Commands) != 1 {
			t.Errorf("deny: %+v", res)
		}
		if len(h.logs.find("dials it anyway")) != 1 {
			t.Errorf("no warning:\n%s", h.logs.dump())
		}
		if res := h.run(gated("000")); res.Reason() != "unknown_extension" || !res.Hangup {
			t.Errorf("without the mark: %+v", res)
		}
	})

	t.Run("DeadlineDeniesAndSettlesLateAllow", func(t *testing.T) {
		release := make(chan struct{})
		settled := make(chan tollguard.Settlement, 1)
		h := startServer(t, func(s *Server) {
			s.DecisionTimeout = 100 * time.Millisecond
			g := s.Gate.(*agitest.Gate)
			g.DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				<-release
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 60, CallID: 7}, nil
			}
			g.SettleFunc = func(_ context.Context, s tollguard.Settlement) (bool, error) {
				settled <- s
				return true, nil
			}
		})
		start := time.Now()
		res := h.run(gated("0044207946000"))
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("answer took %v with a 100ms decision deadline", took)
		}
		if res.Verdict() != "deny" || res.Reason() != "error" || res.Cause() != "34" || res.HangupCause != "34" || res.CallID() != "" {
			t.Errorf("result %+v", res)
		}
		select {
		case s := <-settled:
			t.Fatalf("settled before the gate answered: %+v", s)
		default:
		}
		close(release)
		s := recv(t, settled, "settlement of the late allow")
		if s.CallID != 7 || s.Billsec != 0 || s.By != ByDeadline || s.At.IsZero() {
			t.Errorf("settlement %+v", s)
		}
		if len(h.logs.find("decision took too long")) != 1 {
			t.Errorf("no deadline log:\n%s", h.logs.dump())
		}
	})

	t.Run("LateDenyNeedsNoSettle", func(t *testing.T) {
		h, release, returned := lateGate(t, false,
			tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonHighRisk, CallID: 8},
			func(tollguard.Settlement) { t.Error("a late deny was settled") })
		res := h.run(gated("0044207946000"))
		if res.Reason() != "error" {
			t.Errorf("reason %q", res.Reason())
		}
		close(release)
		recv(t, returned, "Decide to return")
		h.stop() // waits for the goroutine that handled the late answer
		if len(h.logs.find("gate answered after the decision deadline; the call had been denied already")) != 1 {
			t.Errorf("no late-answer log:\n%s", h.logs.dump())
		}
	})

	t.Run("LateAnswerAfterAnEmergencyAllow", func(t *testing.T) {
		// The watchdog allowed an emergency number: the late log must not
		// say the call was denied.
		h, release, returned := lateGate(t, true,
			tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonEmergency, MaxSec: -1}, nil)
		if res := h.run(gated("110")); res.Verdict() != "allow" || res.Reason() != "emergency" {
			t.Errorf("result %+v", res)
		}
		close(release)
		recv(t, returned, "Decide to return")
		h.stop()
		if len(h.logs.find("the call had been allowed as an emergency number already")) != 1 {
			t.Errorf("late-answer log:\n%s", h.logs.dump())
		}
	})

	t.Run("LatePricedAllowAfterAnEmergencyAllowStaysOpen", func(t *testing.T) {
		// The watchdog let the number through as an emergency number by
		// the loose check (the default country's: AT 133), unlimited; the
		// account's plan prices it, and the late decision recorded it
		// as an ordinary call. That call is going out: settled at 0 s
		// now, it would cost nothing whatever its length.
		h, release, returned := lateGate(t, true, pricedAllow, func(s tollguard.Settlement) {
			t.Errorf("the late allow of a call that went out was settled: %+v", s)
		})
		if res := h.run(gated("133")); res.Verdict() != "allow" || res.Reason() != "emergency" || res.Timeout() != "" {
			t.Errorf("result %+v", res)
		}
		close(release)
		recv(t, returned, "Decide to return")
		h.stop()
		if e := h.logs.find("left open"); len(e) != 1 || e[0].Attrs[tollguard.LogCallID] != "9" {
			t.Errorf("late-answer log:\n%s", h.logs.dump())
		}
	})

	t.Run("LatePricedAllowAfterAnEmergencyAllowTheCallerHungUpOn", func(t *testing.T) {
		// As above, but the caller hung up while the watchdog answered:
		// the channel never dialled, so the late allow is settled at 0 s,
		// not left for the sweep to charge its reservation.
		settled := make(chan tollguard.Settlement, 1)
		h, release, returned := lateGate(t, true, pricedAllow, func(s tollguard.Settlement) { settled <- s })
		ch := gated("133")
		ch.HangupDuring, ch.HangupCoalesced = 1, true // "200 result=0\nHANGUP\n" to the watchdog's MSet
		h.run(ch)
		close(release)
		recv(t, returned, "Decide to return")
		if s := recv(t, settled, "settlement of the late allow"); s.CallID != 9 || s.Billsec != 0 || s.By != ByHangupInGate {
			t.Errorf("settlement %+v", s)
		}
		h.stop()
		if len(h.logs.find("left open")) != 0 {
			t.Errorf("late-answer log:\n%s", h.logs.dump())
		}
	})

	t.Run("GatePanics", func(t *testing.T) {
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				panic("boom")
			}
		})
		for range 2 { // and the server goes on serving
			res := h.run(gated("0044207946000"))
			if res.Reason() != "error" || res.HangupCause != "34" {
				t.Errorf("result %+v", res)
			}
		}
	})

	t.Run("GateReturnsNonsense", func(t *testing.T) {
		h := startServer(t, func(s *Server) {
			s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				return tollguard.Decision{Verdict: "maybe"}, nil
			}
		})
		if res := h.run(gated("0044207946000")); res.Verdict() != "deny" || res.Reason() != "error" {
			t.Errorf("result %+v", res)
		}
	})
}

func TestCallerHangsUp(t *testing.T) {
	newHarness := func(t *testing.T) (*harness, chan tollguard.Settlement) {
		settled := make(chan tollguard.Settlement, 2)
		h := startServer(t, func(s *Server) {
			g := s.Gate.(*agitest.Gate)
			g.DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
				return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 120, CallID: 9}, nil
			}
			g.SettleFunc = func(_ context.Context, s tollguard.Settlement) (bool, error) {
				settled <- s
				return true, nil
			}
		})
		return h, settled
	}
	checkSettled := func(t *testing.T, settled chan tollguard.Settlement) {
		t.Helper()
		s := recv(t, settled, "settlement")
		if s.CallID != 9 || s.By != ByHangupInGate || s.Billsec != 0 {
			t.Errorf("settlement %+v", s)
		}
	}

	t.Run("WhileDeciding", func(t *testing.T) {
		entered := make(chan struct{})
		release := make(chan struct{})
		h, settled := newHarness(t)
		h.gate.DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			close(entered)
			<-release
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 120, CallID: 9}, nil
		}
		c := h.start(gated("0044207946000"))
		recv(t, entered, "Decide")
		if err := c.Hangup(); err != nil { // the caller CANCELs (session C)
			t.Fatal(err)
		}
		close(release)
		res := wait(t, c)
		if !res.HungUp || res.AGIStatus != "HANGUP" || len(res.Commands) > 1 {
			t.Errorf("result %+v", res)
		}
		checkSettled(t, settled)
	})

	// Asterisk's reply and its HANGUP line: in one TCP write (the
	// library's per-command scanner would drop the second line), or 45 ms
	// apart as recorded (the next command's reply is HANGUP).
	t.Run("ReplyAndHangup", func(t *testing.T) {
		for _, w := range hangupWrites {
			t.Run(w.name, func(t *testing.T) {
				h, settled := newHarness(t)
				ch := gated("0044207946000")
				ch.HangupDuring = 1 // "200 result=0\nHANGUP\n" to the MSet
				w.set(ch)
				res := h.run(ch)
				if len(res.Commands) != 1 {
					t.Errorf("commands %q", res.Commands)
				}
				if !w.late {
					checkSettled(t, settled)
					return
				}
				// The allow was the last command: the session ended before
				// the HANGUP line came, and the include's hangup handler
				// (pushed before the AGI) settles the call.
				select {
				case s := <-settled:
					t.Errorf("the server settled a call it saw no hangup of: %+v", s)
				case <-time.After(100 * time.Millisecond):
				}
			})
		}
	})

	t.Run("GetReplyAndHangup", func(t *testing.T) {
		for _, w := range hangupWrites {
			t.Run(w.name, func(t *testing.T) {
				calls := make(chan tollguard.Call, 1)
				h, settled := newHarness(t)
				h.gate.DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
					calls <- c
					return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 120, CallID: 9}, nil
				}
				ch := agitest.PJSIP("0044207946000")
				ch.HangupDuring = 1 // "200 result=1 (127.0.0.1:5072)\nHANGUP\n"
				w.set(ch)
				res := h.run(ch)
				if c := recv(t, calls, "Decide"); c.Remote != "127.0.0.1" {
					t.Errorf("remote %q", c.Remote)
				}
				if len(res.Commands) != 2 {
					t.Errorf("the HANGUP line must stop the session at the next command: %q", res.Commands)
				}
				checkSettled(t, settled)
			})
		}
	})

	t.Run("SetVariableReplyAndHangup", func(t *testing.T) {
		for _, w := range hangupWrites {
			t.Run(w.name, func(t *testing.T) {
				h, settled := newHarness(t)
				ch := gated("0044207946000")
				ch.NoMSet = true
				ch.HangupDuring = 2 // the first SET VARIABLE: "200 result=1\nHANGUP\n"
				w.set(ch)
				res := h.run(ch)
				// The first SET is not the verdict: the include, seeing none,
				// fails closed.
				want := []string{
					strings.Replace(msetAllow120, "CALLID=42", "CALLID=9", 1),
					`SET VARIABLE TOLLGUARD_REASON "ok"`,
					`SET VARIABLE TOLLGUARD_CAUSE ""`,
				}
				if !reflect.DeepEqual(res.Commands, want) {
					t.Errorf("commands:\n got %q\nwant %q", res.Commands, want)
				}
				checkSettled(t, settled)
			})
		}
	})

	t.Run("DeniedCallNeedsNoSettle", func(t *testing.T) {
		for _, w := range hangupWrites {
			t.Run(w.name, func(t *testing.T) {
				h, _ := newHarness(t)
				h.gate.DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
					return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonPremium, CallID: 10}, nil
				}
				h.gate.SettleFunc = func(context.Context, tollguard.Settlement) (bool, error) {
					t.Error("denied call settled")
					return false, nil
				}
				ch := gated("09061234567")
				ch.HangupDuring = 1
				w.set(ch)
				res := h.run(ch)
				// Seen with the MSet's reply, the hangup stops the
				// session; else EXEC Hangup goes to the dead channel,
				// where Asterisk runs it (EXEC is allowed there) to no
				// effect.
				want := []string{"EXEC MSet TOLLGUARD_VERDICT=deny,TOLLGUARD_REASON=premium,TOLLGUARD_CAUSE=21,TOLLGUARD_MAXSEC=,TOLLGUARD_CALLID=10"}
				if w.late {
					want = append(want, "EXEC Hangup 21")
				}
				if !reflect.DeepEqual(res.Commands, want) {
					t.Errorf("commands:\n got %q\nwant %q", res.Commands, want)
				}
			})
		}
	})

	t.Run("BeforeTheDecision", func(t *testing.T) {
		h, _ := newHarness(t)
		h.gate.DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			t.Error("Decide called for a call that hung up before it")
			return tollguard.Decision{}, nil
		}
		ch := agitest.PJSIP("0044207946000")
		ch.HangupAtStart = true
		res := h.run(ch)
		if len(res.Commands) != 1 {
			t.Errorf("commands %q", res.Commands)
		}
	})
}

func TestMSetFallback(t *testing.T) {
	h := startServer(t, func(s *Server) {
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 120, CallID: 42}, nil
		}
	})
	ch := gated("0044207946000")
	ch.NoMSet = true
	res := h.run(ch)
	// The verdict last: a session cut off part way leaves no "allow"
	// without its limit.
	sets := []string{
		`SET VARIABLE TOLLGUARD_REASON "ok"`,
		`SET VARIABLE TOLLGUARD_CAUSE ""`,
		`SET VARIABLE TOLLGUARD_MAXSEC "120"`,
		`SET VARIABLE TOLLGUARD_CALLID "42"`,
		`SET VARIABLE TIMEOUT(absolute) "120"`,
		`SET VARIABLE TOLLGUARD_VERDICT "allow"`,
	}
	if want := append([]string{msetAllow120}, sets...); !reflect.DeepEqual(res.Commands, want) {
		t.Errorf("commands:\n got %q\nwant %q", res.Commands, want)
	}
	if res.Verdict() != "allow" || res.Timeout() != "120" || res.CallID() != "42" {
		t.Errorf("result %+v", res)
	}
	// One client's "no MSet" changes nothing for the next: it gets MSet.
	res = h.run(gated("0044207946000"))
	if want := []string{msetAllow120}; !reflect.DeepEqual(res.Commands, want) {
		t.Errorf("second session:\n got %q\nwant %q", res.Commands, want)
	}
	res = h.run(ch)
	if n := len(h.logs.find("no MSet application")); n != 1 {
		t.Errorf("%d fallback warnings, want 1", n)
	}
}

func TestRefusesClientsOutsideAllowedNetworks(t *testing.T) {
	decided := make(chan struct{}, 100)
	h := startServer(t, func(s *Server) {
		s.Allowed = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			decided <- struct{}{}
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1}, nil
		}
	})
	const n = 20 // a scan
	for range n {
		res := h.run(gated("0044207946000"))
		if len(res.Commands) != 0 || res.Verdict() != "" {
			t.Fatalf("refused client got %+v", res)
		}
	}
	if len(decided) != 0 {
		t.Error("Decide called for a refused client")
	}
	logs := h.logs.find("connection refused")
	if len(logs) != 1 {
		t.Fatalf("%d refusal log lines for %d connections, want 1 (rate limited):\n%s", len(logs), n, h.logs.dump())
	}
	// The address under peer, as in every other line; the port apart.
	if logs[0].Attrs[LogPeer] != "127.0.0.1" || logs[0].Attrs["peer_port"] == "" {
		t.Errorf("refusal log without the peer address and port: %+v", logs[0])
	}
	if _, _, _, _, refused := h.metrics.snapshot(); refused[RefusedNotAllowed] != n {
		t.Errorf("refused metrics %v", refused)
	}
}

// endlessEnv is n distinct agi_* lines of 100 bytes, and no end: a
// local process posing as Asterisk to fill the server's memory.
func endlessEnv(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "agi_x%06d: %s\n", i, strings.Repeat("y", 88))
	}
	return b.Bytes()
}

func TestMalformedEnvBlock(t *testing.T) {
	env := agitest.PJSIP("0044207946000").Env.Bytes()
	unterminated := env[:len(env)-1]
	tests := []struct {
		name    string
		channel agitest.Channel
		log     string
	}{
		{"EOFBeforeBlankLine", agitest.Channel{RawEnv: unterminated, CloseWrite: true}, "connection closed before the env block ended"},
		{"NoBlankLineBeforeDeadline", agitest.Channel{RawEnv: unterminated}, "deadline"},
		{"BinaryJunk", agitest.Channel{RawEnv: []byte("\x00\x01\xfe\xff junk\n\x16\x03\x01\x02\n\n")}, "lines but"},
		{"ControlCharacters", agitest.Channel{RawEnv: []byte("agi_network_script: outbound\nagi_arg_1: 00\x0144\n\n")}, "control characters"},
		{"HugeLine", agitest.Channel{RawEnv: []byte("agi_network_script: outbound\nagi_arg_1: " + strings.Repeat("9", 100000) + "\n\n")}, "longer than"},
		{"NotAgiKeys", agitest.Channel{RawEnv: []byte("GET / HTTP/1.1\nHost: example\n\n")}, "lines but"},
		{"NoScript", agitest.Channel{RawEnv: []byte("agi_network: yes\n\n")}, "neither agi_network_script"},
		{"EndlessEnv", agitest.Channel{RawEnv: endlessEnv(2000)}, "env block is over"},
	}
	h := startServer(t, func(s *Server) {
		s.EnvTimeout = 300 * time.Millisecond
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			t.Error("Decide called for a malformed request")
			return tollguard.Decision{}, nil
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.srv.malformedLog.mu.Lock()
			h.srv.malformedLog.next = time.Time{} // one log line per case
			h.srv.malformedLog.mu.Unlock()
			ch := tt.channel
			res := h.run(&ch)
			if len(res.Commands) != 0 {
				t.Errorf("commands %q", res.Commands)
			}
			logs := h.logs.find("malformed FastAGI request")
			if len(logs) == 0 || !strings.Contains(logs[len(logs)-1].Attrs[tollguard.LogError], tt.log) {
				t.Errorf("log %+v, want error containing %q", logs, tt.log)
			}
		})
	}
}

func TestWritesSplitAcrossReads(t *testing.T) {
	h := startServer(t, nil)
	ch := gated("0044207946000")
	ch.Chunk = 37 // the env block and every reply in 37-byte pieces
	if res := h.run(ch); res.Verdict() != "allow" || res.AGIStatus != "SUCCESS" {
		t.Errorf("result %+v", res)
	}
	ch = agitest.PJSIP("0044207946000")
	ch.Chunk = 5
	if res := h.run(ch); len(res.Commands) != 2 || res.Verdict() != "allow" {
		t.Errorf("result %+v", res)
	}
}

func TestSilentConnectionDoesNotDelayOthers(t *testing.T) {
	h := startServer(t, func(s *Server) { s.EnvTimeout = 2 * time.Second })
	silent := h.start(&agitest.Channel{Silent: true})
	half := h.start(&agitest.Channel{RawEnv: []byte("agi_network: yes\nagi_network_script: outb")})
	for range 5 {
		if res := h.run(gated("0044207946000")); res.Verdict() != "allow" {
			t.Fatalf("result %+v", res)
		}
	}
	for _, c := range []*agitest.Conn{silent, half} {
		select {
		case <-c.Done():
			t.Fatal("stalled connection closed before the env deadline: the test proves nothing")
		default:
		}
	}
	for _, c := range []*agitest.Conn{silent, half} {
		res := wait(t, c) // the server closes it at the env deadline
		if res.Elapsed < 2*time.Second {
			t.Errorf("closed after %v", res.Elapsed)
		}
	}
}

func TestMaxSessions(t *testing.T) {
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	h := startServer(t, func(s *Server) {
		s.MaxSessions = 2
		s.DecisionTimeout = 10 * time.Second
		s.SessionTimeout = 20 * time.Second
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			entered <- struct{}{}
			<-release
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1}, nil
		}
	})
	a := h.start(gated("0044207946000"))
	b := h.start(gated("0044207946000"))
	recv(t, entered, "first Decide")
	recv(t, entered, "second Decide")
	// The third is answered without the gate (TestBusyOverflow has more).
	res := h.run(gated("0044207946000"))
	if res.Verdict() != "deny" || res.Cause() != "34" || res.HangupCause != "34" || len(entered) != 0 {
		t.Errorf("third session: %+v", res)
	}
	if len(h.logs.find("too many sessions")) != 1 {
		t.Errorf("no warning:\n%s", h.logs.dump())
	}
	close(release)
	for _, c := range []*agitest.Conn{a, b} {
		if res := wait(t, c); res.Verdict() != "allow" {
			t.Errorf("result %+v", res)
		}
	}
	if res := h.run(gated("0044207946000")); res.Verdict() != "allow" {
		t.Errorf("after the others ended: %+v", res)
	}
	h.stop()
	inFlight, started, _, _, refused := h.metrics.snapshot()
	if inFlight != 0 || started != 3 || refused[RefusedOverflow] != 1 || refused[RefusedBusy] != 0 {
		t.Errorf("metrics: in flight %d, started %d, refused %v", inFlight, started, refused)
	}
}

func TestUnknownScript(t *testing.T) {
	h := startServer(t, nil)
	ch := gated("0044207946000")
	ch.SetScript("outbund")
	res := h.run(ch)
	if len(res.Commands) != 2 || res.Commands[1] != "FAILURE" || res.AGIStatus != "FAILURE" {
		t.Fatalf("result %+v", res)
	}
	v := res.Verbose[0]
	for _, want := range []string{"outbund", "outbound", "hangup", "emergency"} {
		if !strings.Contains(v, want) {
			t.Errorf("verbose %q lacks %q", v, want)
		}
	}
	if len(h.logs.find("unknown script")) != 1 {
		t.Error("no log")
	}
	// res_agi runs what follows the first 2047 bytes of a command line
	// as a command of its own: the name is cut in the message.
	ch.SetScript(strings.Repeat("x", 2500))
	if res := h.run(ch); len(res.Commands) != 2 || res.Commands[1] != "FAILURE" || !strings.Contains(res.Verbose[0], "xxx...") {
		t.Fatalf("long script name: commands %.80q", res.Commands)
	}
}

func TestHangupScript(t *testing.T) {
	var mu sync.Mutex
	seen := map[int64]bool{}
	settled := make(chan tollguard.Settlement, 10)
	h := startServer(t, func(s *Server) {
		s.Gate.(*agitest.Gate).SettleFunc = func(_ context.Context, s tollguard.Settlement) (bool, error) {
			settled <- s
			if s.CallID == 404 {
				return false, tollguard.Errorf(tollguard.ENOTFOUND, "call 404 not found")
			}
			mu.Lock()
			defer mu.Unlock()
			changed := !seen[s.CallID]
			seen[s.CallID] = true
			return changed, nil
		}
	})
	hangup := func(args ...string) *agitest.Channel {
		ch := agitest.PJSIP("0044207946000")
		ch.Dead = true // run from a hangup handler
		ch.SetScript("hangup")
		ch.SetArgs(args...)
		return ch
	}
	check := func(t *testing.T, res *agitest.Result, commands int, want tollguard.Settlement) {
		t.Helper()
		if len(res.Commands) != commands {
			t.Errorf("commands %q", res.Commands)
		}
		s := recv(t, settled, "Settle")
		// SinceDecision: ANSWEREDTIME and CDR(billsec) are both the
		// caller channel's up time, capped at the time since the decision.
		if s.CallID != want.CallID || s.Billsec != want.Billsec || s.DialStatus != want.DialStatus || s.By != ByAGI || s.At.IsZero() ||
			!s.SinceDecision {
			t.Errorf("settlement %+v, want %+v", s, want)
		}
	}

	t.Run("FromArguments", func(t *testing.T) {
		check(t, h.run(hangup("42", "65", "ANSWER")), 0, tollguard.Settlement{CallID: 42, Billsec: 65, DialStatus: "ANSWER"})
		if e := h.logs.find("call settled"); len(e) != 1 || e[0].Attrs[tollguard.LogCallID] != "42" || e[0].Attrs[LogBillsec] != "65" {
			t.Errorf("log %+v", e)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		check(t, h.run(hangup("42", "65", "ANSWER")), 0, tollguard.Settlement{CallID: 42, Billsec: 65, DialStatus: "ANSWER"})
		if e := h.logs.find("already settled"); len(e) != 1 || e[0].Attrs[LogChanged] != "false" {
			t.Errorf("log %+v", e)
		}
	})
	t.Run("FromChannelVariables", func(t *testing.T) {
		ch := hangup()
		ch.Vars["TOLLGUARD_CALLID"] = "43"
		ch.Vars["ANSWEREDTIME"] = "12"
		ch.Vars["DIALSTATUS"] = "ANSWER"
		res := h.run(ch)
		want := []string{"GET VARIABLE TOLLGUARD_CALLID", "GET VARIABLE DIALSTATUS", "GET VARIABLE ANSWEREDTIME_MS", "GET VARIABLE ANSWEREDTIME"}
		if !reflect.DeepEqual(res.Commands, want) {
			t.Errorf("commands %q", res.Commands)
		}
		check(t, res, 4, tollguard.Settlement{CallID: 43, Billsec: 12, DialStatus: "ANSWER"})
		// With the milliseconds, a started second is billed.
		ch.Vars["ANSWEREDTIME_MS"] = "12345"
		check(t, h.run(ch), 3, tollguard.Settlement{CallID: 43, Billsec: 13, DialStatus: "ANSWER"})
	})
	t.Run("BillsecFallback", func(t *testing.T) {
		ch := hangup("44", "", "ANSWER")
		ch.Vars["CDR(billsec,f)"] = "30.250000"
		res := h.run(ch)
		if !reflect.DeepEqual(res.Commands, []string{"GET VARIABLE CDR(billsec,f)"}) {
			t.Errorf("commands %q", res.Commands)
		}
		check(t, res, 1, tollguard.Settlement{CallID: 44, Billsec: 31, DialStatus: "ANSWER"})
	})
	// An unanswered last Dial bills nothing, and CDR(billsec) is not
	// read: it is the channel's last CDR record's, which starts again
	// after each Dial (the dialplan after the first call, an announcement
	// that answered the channel after a ring-out, an emergency call that
	// followed on the channel), never this call's.
	t.Run("UnansweredReadsNoBillsec", func(t *testing.T) {
		ch := hangup("45", "", "NOANSWER")
		ch.Vars["CDR(billsec,f)"] = "5.000000"
		check(t, h.run(ch), 0, tollguard.Settlement{CallID: 45, DialStatus: "NOANSWER"})
	})
	t.Run("NoCallID", func(t *testing.T) {
		res := h.run(hangup("", "", ""))
		res2 := h.run(hangup()) // TOLLGUARD_CALLID unset on the channel
		if len(res.Commands) != 0 || len(res2.Commands) != 1 {
			t.Errorf("commands %q, %q", res.Commands, res2.Commands)
		}
		select {
		case s := <-settled:
			t.Errorf("settled %+v", s)
		default:
		}
	})
	t.Run("UnknownCallID", func(t *testing.T) {
		recvd := h.run(hangup("404", "3", "ANSWER"))
		_ = recvd
		recv(t, settled, "Settle")
		if len(h.logs.find("does not know")) != 1 {
			t.Errorf("log:\n%s", h.logs.dump())
		}
		// Counted as failed, not as a settle that changed nothing.
		if _, _, _, settled, _ := h.metrics.snapshot(); settled["agi/failed"] != 1 {
			t.Errorf("settled %v", settled)
		}
	})
	t.Run("MalformedCallID", func(t *testing.T) {
		h.run(hangup("12abc", "3", "ANSWER"))
		if len(h.logs.find("malformed call id")) != 1 {
			t.Errorf("log:\n%s", h.logs.dump())
		}
	})
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h := startServer(t, func(s *Server) {
		s.DecisionTimeout = 10 * time.Second
		s.SessionTimeout = 20 * time.Second
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			close(entered)
			<-release
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 30, CallID: 1}, nil
		}
	})
	c := h.start(gated("0044207946000"))
	recv(t, entered, "Decide")
	h.cancel()
	select {
	case <-h.returned:
		t.Fatalf("Serve returned (%v) with a session in flight", h.serveErr)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	res := wait(t, c)
	if res.Verdict() != "allow" || res.MaxSec() != "30" {
		t.Errorf("in-flight session cut short: %+v", res)
	}
	h.stop() // fails the test if Serve does not return nil
	if conn, err := net.Dial("tcp", h.addr); err == nil {
		conn.Close()
		t.Error("listener still open after shutdown")
	}
}

// TestShutdownWithWedgedGate: a Decide that ignores its deadline holds
// its session, but not the shutdown.
func TestShutdownWithWedgedGate(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{}, 1)
	h := startServer(t, func(s *Server) {
		s.DecisionTimeout = 50 * time.Millisecond
		s.SessionTimeout = 300 * time.Millisecond
		s.Gate.(*agitest.Gate).DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			entered <- struct{}{}
			<-release
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1}, nil
		}
	})
	if res := h.run(gated("0044207946000")); res.Reason() != "error" {
		t.Fatalf("result %+v", res)
	}
	recv(t, entered, "Decide")
	start := time.Now()
	h.stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	if len(h.logs.find("stuck in Gate.Decide")) != 1 {
		t.Errorf("no log:\n%s", h.logs.dump())
	}
}

func TestMetrics(t *testing.T) {
	h := startServer(t, func(s *Server) {
		s.Gate.(*agitest.Gate).DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
			if c.Dialled == "0900" {
				return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonPremium}, nil
			}
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 10, CallID: 1}, nil
		}
	})
	h.run(gated("0044207946000"))
	h.run(gated("0900"))
	hc := gated("1")
	hc.SetScript("hangup")
	hc.SetArgs("1", "5", "ANSWER")
	h.run(hc)
	h.stop()
	inFlight, started, decisions, settled, _ := h.metrics.snapshot()
	if inFlight != 0 || started != 3 {
		t.Errorf("in flight %d started %d", inFlight, started)
	}
	if !reflect.DeepEqual(decisions, map[string]int{"allow/ok": 1, "deny/premium": 1}) {
		t.Errorf("decisions %v", decisions)
	}
	if !reflect.DeepEqual(settled, map[string]int{"agi": 1}) {
		t.Errorf("settled %v", settled)
	}
}

// TestListenerFailure: Serve reports a listener that dies under it.
func TestListenerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- (&Server{Gate: &agitest.Gate{}}).Serve(context.Background(), ln) }()
	ln.Close()
	if err := recv(t, done, "Serve"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve = %v", err)
	}
}

// TestClientUIDs: with ClientUIDs set, a loopback client is served only
// if its socket belongs to one of them (checked through the kernel, as
// serve does), and refused when its owner cannot be found.
func TestClientUIDs(t *testing.T) {
	me := uint32(os.Getuid())
	for _, tt := range []struct {
		name  string
		uids  []uint32
		owner func(net.Conn) (uint32, bool, error)
		serve bool
		log   string
	}{
		{"AsteriskUser", []uint32{me + 1, me}, sockdiag.PeerUID, true, ""},
		{"AnotherUser", []uint32{me + 1}, sockdiag.PeerUID, false, "is not Asterisk's user"},
		{"OwnerUnknown", []uint32{me}, func(net.Conn) (uint32, bool, error) { return 0, false, errors.New("netlink: permission denied") }, false, "cannot tell which local user"},
		{"LoopbackNotFound", []uint32{me}, func(net.Conn) (uint32, bool, error) { return 0, false, nil }, false, "cannot tell which local user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startServer(t, func(s *Server) { s.ClientUIDs, s.PeerUID = tt.uids, tt.owner })
			res := h.run(gated("0044207946000"))
			if served := res.Verdict() != ""; served != tt.serve {
				t.Fatalf("served %v, want %v: %+v", served, tt.serve, res)
			}
			if tt.log != "" && len(h.logs.find(tt.log)) != 1 {
				t.Errorf("log:\n%s", h.logs.dump())
			}
		})
	}
}

// hangupWrites are the ways Asterisk's HANGUP line may follow a reply:
// with it, or on its own 45 ms later as recorded (late: a session that
// sends nothing more ends before it comes).
var hangupWrites = []struct {
	name string
	late bool
	set  func(*agitest.Channel)
}{
	{"OneWrite", false, func(ch *agitest.Channel) { ch.HangupCoalesced = true }},
	{"AsRecorded", true, func(ch *agitest.Channel) { ch.HangupDelay = 45 * time.Millisecond }},
}

// pricedAllow is a late decision recording an ordinary call (AT's 133
// priced by the account's plan).
var pricedAllow = tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 600, CallID: 9}

// lateGate starts a server whose gate answers d only once release is
// closed, past a 50 ms decision deadline; returned is closed when it
// has. emergency makes the loose emergency check say yes (the watchdog
// then allows); settle, if set, sees every settlement.
func lateGate(t *testing.T, emergency bool, d tollguard.Decision, settle func(tollguard.Settlement)) (h *harness, release, returned chan struct{}) {
	t.Helper()
	release, returned = make(chan struct{}), make(chan struct{})
	h = startServer(t, func(s *Server) {
		s.DecisionTimeout = 50 * time.Millisecond
		g := s.Gate.(*agitest.Gate)
		if emergency {
			g.EmergencyFunc = func(string) bool { return true }
		}
		g.DecideFunc = func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			defer close(returned)
			<-release
			return d, nil
		}
		if settle != nil {
			g.SettleFunc = func(_ context.Context, s tollguard.Settlement) (bool, error) {
				settle(s)
				return true, nil
			}
		}
	})
	return h, release, returned
}
