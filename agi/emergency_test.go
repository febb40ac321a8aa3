package agi

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/store"
)

// TestEmergencyScript: the include's hangup handler records a call to a
// number on its emergency list after the call, with the arguments
// AGI(…/emergency,<number>,<ext>,<source>,${ANSWEREDTIME},${DIALSTATUS}).
func TestEmergencyScript(t *testing.T) {
	var mu sync.Mutex
	var calls []tollguard.Call
	var settled []tollguard.Settlement
	decide := func(context.Context, tollguard.Call) (tollguard.Decision, error) {
		return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonEmergency, MaxSec: -1, CallID: 9}, nil
	}
	h := startServer(t, func(s *Server) {
		g := s.Gate.(*agitest.Gate)
		g.DecideFunc = func(ctx context.Context, c tollguard.Call) (tollguard.Decision, error) {
			mu.Lock()
			calls = append(calls, c)
			f := decide
			mu.Unlock()
			return f(ctx, c)
		}
		g.SettleFunc = func(_ context.Context, s tollguard.Settlement) (bool, error) {
			mu.Lock()
			settled = append(settled, s)
			mu.Unlock()
			return true, nil
		}
	})
	session := func(args ...string) *agitest.Result {
		ch := agitest.PJSIP("s")
		ch.Dead = true // a hangup handler's request
		ch.SetScript(tollguard.ScriptEmergency)
		ch.SetArgs(args...)
		return h.run(ch)
	}
	// reset sets the gate's answer and clears what it saw.
	reset := func(f func(context.Context, tollguard.Call) (tollguard.Decision, error)) {
		mu.Lock()
		decide, calls, settled = f, nil, nil
		mu.Unlock()
	}
	seen := func() ([]tollguard.Call, []tollguard.Settlement) {
		mu.Lock()
		defer mu.Unlock()
		return calls, settled
	}

	t.Run("RecordsAndSettles", func(t *testing.T) {
		res := session("999", "1001", "192.0.2.10:5060", "42", "ANSWER")
		if len(res.Commands) != 0 {
			t.Errorf("commands sent to a hung-up channel: %q", res.Commands)
		}
		c, s := seen()
		if len(c) != 1 || c[0].Dialled != "999" || c[0].Extension != "1001" || c[0].Remote != "192.0.2.10" {
			t.Errorf("decided %+v", c)
		}
		if len(s) != 1 || s[0].CallID != 9 || s[0].Billsec != 42 || s[0].DialStatus != "ANSWER" || s[0].By != ByEmergency {
			t.Errorf("settled %+v", s)
		}
		if e := h.logs.find("emergency call recorded after it ended"); len(e) != 1 || e[0].Attrs[LogBillsec] != "42" {
			t.Errorf("log:\n%s", h.logs.dump())
		}
		// Counted, but not as a decision a caller waited for.
		h.metrics.mu.Lock()
		rec, dec := h.metrics.recorded["allow/emergency"], len(h.metrics.decisions)
		h.metrics.mu.Unlock()
		if rec != 1 || dec != 0 {
			t.Errorf("metrics: recorded %d, decisions %d; want 1 and 0", rec, dec)
		}
	})
	t.Run("DatedWhenPlaced", func(t *testing.T) {
		// agi_arg_6 is ${EPOCH} from when the include let the call
		// through; junk, a time to come or one over a day old is ignored.
		now := time.Now()
		placed := now.Add(-10 * time.Minute).Truncate(time.Second)
		for _, tt := range []struct {
			arg  string
			want time.Time
		}{
			{strconv.FormatInt(placed.Unix(), 10), placed},
			{"", time.Time{}},
			{"soon", time.Time{}},
			{strconv.FormatInt(now.Add(time.Hour).Unix(), 10), time.Time{}},
			{strconv.FormatInt(now.Add(-25*time.Hour).Unix(), 10), time.Time{}},
		} {
			reset(decide)
			session("999", "1001", "", "42", "ANSWER", tt.arg)
			if c, _ := seen(); len(c) != 1 || !c[0].At.Equal(tt.want) {
				t.Errorf("agi_arg_6 %q: decided %+v, want At %v", tt.arg, c, tt.want)
			}
			// ANSWEREDTIME is the caller's up time: capped at the time
			// since the call was placed, when that is known.
			if _, s := seen(); len(s) != 1 || s[0].SinceDecision != !tt.want.IsZero() {
				t.Errorf("agi_arg_6 %q: settled %+v, want SinceDecision %v", tt.arg, s, !tt.want.IsZero())
			}
		}
	})
	t.Run("UnansweredOrJunkSecondsChargeNothing", func(t *testing.T) {
		reset(decide)
		session("112", "1001", "", "", "BUSY")
		session("112", "1001", "", "soon", "ANSWER")
		if _, s := seen(); len(s) != 2 || s[0].Billsec != 0 || s[0].DialStatus != "BUSY" || s[1].Billsec != 0 {
			t.Errorf("settled %+v", s)
		}
	})
	t.Run("NotAnEmergencyToTheGate", func(t *testing.T) {
		// On the include's list (000), not in the account's plan.
		reset(func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 600, CallID: 10}, nil
		})
		session("000", "1001", "", "30", "ANSWER")
		if _, s := seen(); len(s) != 1 || s[0].CallID != 10 || s[0].Billsec != 30 {
			t.Errorf("settled %+v", s)
		}
		if len(h.logs.find("does not know it as one; recorded and charged as an ordinary call")) != 1 {
			t.Errorf("log:\n%s", h.logs.dump())
		}
	})
	t.Run("DeniedIsRecordedNotSettled", func(t *testing.T) {
		reset(func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonBlockedExtension, CallID: 11}, nil
		})
		session("000", "1001", "", "30", "ANSWER")
		if _, s := seen(); len(s) != 0 {
			t.Errorf("a denied record was settled: %+v", s)
		}
		if len(h.logs.find("but the gate would deny it")) != 1 {
			t.Errorf("log:\n%s", h.logs.dump())
		}
	})
	t.Run("CallerIDCodeOfAnotherCountry", func(t *testing.T) {
		// The include lets *67 and #31# through before 112 in every
		// country; the gate knows *67 only in the NANP and #31# only in
		// AU and DE. TOLLGUARD_EMERGENCY has nothing to do with it.
		for _, tt := range []struct {
			dialled, code, countries string
			d                        tollguard.Decision
			want                     string
		}{
			{"*67112", "*67", "CA and US", tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonDestinationDenied, CallID: 12}, "recorded as denied, not charged"},
			{"#31#999", "#31#", "AU and DE", tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonDestinationDenied, CallID: 13}, "recorded as denied, not charged"},
			{"*82911", "*82", "CA and US", tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 600, CallID: 14}, "recorded and charged as an ordinary call"},
		} {
			reset(func(context.Context, tollguard.Call) (tollguard.Decision, error) { return tt.d, nil })
			session(tt.dialled, "1001", "", "30", "ANSWER")
			var e, other []logEntry
			for _, l := range h.logs.find("") {
				switch {
				case l.Attrs[tollguard.LogDest] != tt.dialled:
				case strings.Contains(l.Msg, "after the caller ID code "+tt.code+" (it does so in every country"):
					e = append(e, l)
				case strings.Contains(l.Msg, "Check the emergency numbers"):
					other = append(other, l)
				}
			}
			if len(e) != 1 || e[0].Level != slog.LevelWarn || !strings.Contains(e[0].Msg, tt.want) ||
				!strings.Contains(e[0].Msg, tt.code+" is a caller ID code in "+tt.countries+" only") || strings.Contains(e[0].Msg, "TOLLGUARD_EMERGENCY") {
				t.Errorf("%s: log:\n%s", tt.dialled, h.logs.dump())
			}
			if len(other) != 0 {
				t.Errorf("%s: told to check the include's list:\n%s", tt.dialled, h.logs.dump())
			}
		}
	})
	t.Run("StoreFailed", func(t *testing.T) {
		// The policy allows an emergency call it cannot record, with no
		// call id; and a gate error records nothing. Neither settles.
		reset(func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonEmergency, MaxSec: -1}, nil
		})
		session("999", "1001", "", "5", "ANSWER")
		reset(func(context.Context, tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{}, errors.New("database is locked")
		})
		session("999", "1001", "", "5", "ANSWER")
		if _, s := seen(); len(s) != 0 {
			t.Errorf("settled %+v", s)
		}
		if e := h.logs.find("could not record an emergency call"); len(e) != 1 || e[0].Attrs[tollguard.LogError] != "database is locked" {
			t.Errorf("log:\n%s", h.logs.dump())
		}
	})
	t.Run("NoNumber", func(t *testing.T) {
		reset(decide)
		session("", "1001", "", "5", "ANSWER")
		if c, _ := seen(); len(c) != 0 {
			t.Errorf("decided %+v", c)
		}
		if len(h.logs.find("emergency request without a dialled number")) != 1 {
			t.Errorf("log:\n%s", h.logs.dump())
		}
	})
}

// TestEmergencyScriptCallerIDCodeThroughTheGate: a GB or FR account's
// *67112, which the include dials as 112 after a caller ID code in every
// country, through the real policy: recorded as denied, uncharged, with
// a warning that names the code and not TOLLGUARD_EMERGENCY.
func TestEmergencyScriptCallerIDCodeThroughTheGate(t *testing.T) {
	for _, country := range []string{"GB", "FR"} {
		t.Run(country, func(t *testing.T) {
			var db *store.DB
			h := policyServer(t, country, []testAccount{{id: "acme", country: country, currency: "EUR", ext: "1001"}},
				func(d *store.DB) { db = d })
			ch := agitest.PJSIP("s")
			ch.SetScript(tollguard.ScriptEmergency)
			ch.SetArgs("*67112", "1001", "", "30", "ANSWER")
			h.run(ch)
			calls, err := db.Calls(context.Background(), store.CallFilter{})
			if err != nil || len(calls) != 1 || calls[0].Dialled != "*67112" || calls[0].Verdict != tollguard.Deny {
				t.Fatalf("records %+v, %v", calls, err)
			}
			e := h.logs.find("after the caller ID code *67")
			if len(e) != 1 || !strings.Contains(e[0].Msg, "recorded as denied, not charged") || strings.Contains(e[0].Msg, "TOLLGUARD_EMERGENCY") {
				t.Errorf("log:\n%s", h.logs.dump())
			}
		})
	}
}

// TestEmergencyScriptCallerIDCodeOfTheAccountsCountry: a US account's
// *67 000, which the include dials as AU's 000 (on TOLLGUARD_EMERGENCY
// for a US and AU PBX) after *67: the US does use *67, so the warning
// must not say it does not; 000 is no US emergency number.
func TestEmergencyScriptCallerIDCodeOfTheAccountsCountry(t *testing.T) {
	h := policyServer(t, "AU", []testAccount{{id: "acme", country: "US", currency: "USD", ext: "1001"}}, nil)
	ch := agitest.PJSIP("s")
	ch.SetScript(tollguard.ScriptEmergency)
	ch.SetArgs("*67000", "1001", "", "30", "ANSWER")
	h.run(ch)
	e := h.logs.find("after the caller ID code *67")
	if len(e) != 1 || strings.Contains(e[0].Msg, "does not use *67") ||
		!strings.Contains(e[0].Msg, "*67 is a caller ID code in CA and US only, before that country's own emergency numbers") {
		t.Errorf("log:\n%s", h.logs.dump())
	}
}
