package agi

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

// TestBusyOverflow: with every session slot held by a wedged decision
// (a slow store, a fraud burst), a new request is still answered: an
// emergency number the gate knows (and the include did not) is allowed,
// anything else is denied with reason error and cause 34, a settle
// request is closed for the sweep, and forged requests are still
// refused. With the overflow pool full too, a connection is closed.
// Afterwards no slot and no goroutine is left behind.
func TestBusyOverflow(t *testing.T) {
	baseline := runtime.NumGoroutine()
	const wedged = "0044207946000"
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h := startServer(t, func(s *Server) {
		s.MaxSessions = 1
		s.EnvTimeout = 5 * time.Second // holds the silent connections below
		s.DecisionTimeout = 20 * time.Second
		s.SessionTimeout = 30 * time.Second
		g := s.Gate.(*agitest.Gate)
		g.DecideFunc = func(_ context.Context, c tollguard.Call) (tollguard.Decision, error) {
			if c.Dialled != wedged {
				t.Errorf("gate asked about %q while the server was busy", c.Dialled)
			} else {
				entered <- struct{}{}
				<-release
			}
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1}, nil
		}
		g.SettleFunc = func(_ context.Context, st tollguard.Settlement) (bool, error) {
			t.Errorf("settled %+v while the server was busy", st)
			return true, nil
		}
		// 110 is an emergency number the include does not know by itself.
		g.EmergencyFunc = func(d string) bool { return d == "110" || d == "112" }
	})
	first := h.start(gated(wedged))
	recv(t, entered, "the wedged Decide")

	t.Run("EmergencyAllowed", func(t *testing.T) {
		res := h.run(gated("110"))
		if res.Verdict() != "allow" || res.Reason() != "emergency" || res.Cause() != "" || res.MaxSec() != "" || res.Hangup {
			t.Errorf("110 while busy: verdict %q reason %q cause %q maxsec %q hangup %v; commands %q",
				res.Verdict(), res.Reason(), res.Cause(), res.MaxSec(), res.Hangup, res.Commands)
		}
		// An old include marks its emergency numbers in the URL.
		ch := agitest.PJSIP("106")
		ch.SetScript("outbound?emergency=1")
		ch.SetArgs("106", "1001")
		if res := h.run(ch); res.Verdict() != "allow" || res.Reason() != "emergency" || res.Hangup {
			t.Errorf("flagged 106 while busy: %+v", res)
		}
	})

	t.Run("TollDenied", func(t *testing.T) {
		for range 3 {
			res := h.run(gated("0044207946001"))
			if res.Verdict() != "deny" || res.Reason() != "error" || res.Cause() != "34" || !res.Hangup || res.HangupCause != "34" {
				t.Errorf("toll call while busy: verdict %q reason %q cause %q hangup %v (%q); commands %q",
					res.Verdict(), res.Reason(), res.Cause(), res.Hangup, res.HangupCause, res.Commands)
			}
		}
		// Three denies, one log line: an attack does not flood the log.
		if logs := h.logs.find("answered without asking the gate"); len(logs) != 1 {
			t.Errorf("%d overflow deny log lines, want 1:\n%s", len(logs), h.logs.dump())
		}
	})

	t.Run("SettleRefused", func(t *testing.T) {
		ch := agitest.PJSIP("s")
		ch.SetIncludeArgs(tollguard.ScriptHangup, "42", "30", "ANSWER", "30000")
		if res := h.run(ch); len(res.Commands) != 0 {
			t.Errorf("settle request while busy: commands %q", res.Commands)
		}
		if logs := h.logs.find("settle"); len(logs) == 0 {
			t.Errorf("refused settle not logged:\n%s", h.logs.dump())
		}
	})

	t.Run("ForgedRefused", func(t *testing.T) {
		ch := gated("00900123456")
		forge(ch, "110", "1001", "127.0.0.1:5072")
		res := h.run(ch)
		if !res.Hangup || res.HangupCause != "21" || res.Verdict() != "" {
			t.Errorf("forged request while busy: hangup %v cause %q verdict %q; commands %q", res.Hangup, res.HangupCause, res.Verdict(), res.Commands)
		}
	})

	t.Run("BothFull", func(t *testing.T) {
		// The sessions above give their slots back just after the
		// client sees them close.
		deadline := time.Now().Add(5 * time.Second)
		for len(h.srv.overflowSem) != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		var silent []*agitest.Conn
		for range overflowSessions {
			silent = append(silent, h.start(&agitest.Channel{Silent: true}))
		}
		deadline = time.Now().Add(5 * time.Second)
		for len(h.srv.overflowSem) < overflowSessions && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := len(h.srv.overflowSem); n != overflowSessions {
			t.Fatalf("%d overflow slots taken, want %d", n, overflowSessions)
		}
		res := h.run(gated("110"))
		if len(res.Commands) != 0 || res.Elapsed > 2*time.Second {
			t.Errorf("with both pools full: commands %q after %v", res.Commands, res.Elapsed)
		}
		if len(h.logs.find("too many sessions in flight")) == 0 {
			t.Errorf("no warning:\n%s", h.logs.dump())
		}
		for _, c := range silent {
			c.Close()
			recv(t, c.Done(), "a silent connection's end")
		}
	})

	close(release)
	if res := wait(t, first); res.Verdict() != "allow" {
		t.Errorf("wedged call: %+v", res)
	}
	// Each slot is given back just after its connection closes.
	deadline := time.Now().Add(5 * time.Second)
	for (len(h.srv.sem) != 0 || len(h.srv.overflowSem) != 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(h.srv.sem) != 0 || len(h.srv.overflowSem) != 0 {
		t.Errorf("slots left taken: %d sessions, %d overflow", len(h.srv.sem), len(h.srv.overflowSem))
	}
	if res := h.run(gated(wedged)); res.Verdict() != "allow" {
		t.Errorf("after the wedged session ended: %+v", res)
	}
	h.stop()
	inFlight, started, decisions, _, refused := h.metrics.snapshot()
	if inFlight != 0 || started != 2 {
		t.Errorf("sessions: in flight %d, started %d", inFlight, started)
	}
	if refused[RefusedOverflow] != 5 || refused[RefusedBusy] != 2 || refused[RefusedForged] != 1 || refused[RefusedMalformed] != overflowSessions {
		t.Errorf("refused %v", refused)
	}
	if decisions["allow/emergency"] != 2 || decisions["deny/error"] != 3 {
		t.Errorf("decisions %v", decisions)
	}
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before the test:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}
