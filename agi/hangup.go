package agi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	cyagi "github.com/CyCoreSystems/agi"
	"github.com/tollguard/tollguard"
)

// hangup settles a call from the include's hangup handler. The include
// passes agi_arg_1 = TOLLGUARD_CALLID, agi_arg_2 = ANSWEREDTIME,
// agi_arg_3 = DIALSTATUS and agi_arg_4 = ANSWEREDTIME_MS; what is not
// passed is read from the channel, which still answers GET VARIABLE
// after the hangup. ANSWEREDTIME is rounded down, so the milliseconds,
// rounded up, win when they are there: a started second is billed.
func (s *Server) hangup(ctx context.Context, ss *session) {
	req := ss.req
	rawID, ok := req.arg(1)
	if !ok {
		v, _, err := ss.get(tollguard.VarCallID)
		if err != nil {
			s.hangupFailed(ss, err)
			return
		}
		rawID = v
	}
	rawID = strings.TrimSpace(rawID)
	if rawID == "" {
		return // the gate recorded nothing for this channel
	}
	callID, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil || callID <= 0 {
		// Not under call_id, which is always a number: log indexes
		// type it.
		ss.log().Warn("hangup request with a malformed call id; nothing settled. TOLLGUARD_CALLID is set by tollguard only: "+
			"check that nothing in the dialplan sets it", "raw_call_id", rawID)
		return
	}

	dialStatus, ok := req.arg(3)
	if !ok {
		dialStatus, _, err = ss.get(tollguard.VarDialStatus)
		if err != nil {
			s.hangupFailed(ss, err)
			return
		}
	}
	dialStatus = strings.TrimSpace(dialStatus)

	billsec, known, err := answered(ss)
	if err != nil {
		s.hangupFailed(ss, err)
		return
	}
	if !known && (dialStatus == "" || strings.EqualFold(dialStatus, "ANSWER")) {
		// No ANSWEREDTIME (the Dial ran on another channel, or not at
		// all), and nothing says the call went unanswered: the channel's
		// own answered time.
		v, _, err := ss.get(tollguard.VarBillsec)
		if err != nil {
			s.hangupFailed(ss, err)
			return
		}
		billsec, _ = parseSeconds(v)
	}

	log := ss.log().With(tollguard.LogCallID, callID, LogBillsec, billsec, LogDialStatus, dialStatus)
	sctx, cancel := context.WithDeadline(ctx, ss.deadline)
	defer cancel()
	changed, err := s.Gate.Settle(sctx, tollguard.Settlement{
		CallID: callID, UniqueID: strings.TrimSpace(req.Vars["agi_uniqueid"]), Billsec: billsec, DialStatus: dialStatus, By: ByAGI, At: s.cfg.now(),
		// ANSWEREDTIME is the caller channel's up time (app_dial's
		// end_bridge_callback), as CDR(billsec) is: both count from an
		// answer before the gate (a DISA or IVR line). The store caps
		// them at the time since the decision, which the Dial followed.
		SinceDecision: true,
	})
	s.countSettle(ByAGI, changed, err)
	switch {
	case tollguard.ErrorCode(err) == tollguard.ENOTFOUND:
		log.Warn("hangup request for a call id the gate does not know; nothing settled",
			tollguard.LogError, tollguard.ErrorMessage(err))
	case tollguard.ErrorCode(err) == tollguard.ECONFLICT:
		// Call ids start again from a restored backup's: the call this
		// channel was told about is not in the database, and the id now
		// names another channel's call, which is left alone.
		log.Warn("hangup request for a call id the gate recorded for another channel; nothing settled (was the database restored from a backup while calls were up?)",
			tollguard.LogError, tollguard.ErrorMessage(err))
	case err != nil:
		settleFailed(log, err)
	case changed:
		// One per allowed call, as "call allowed": debug.
		log.Debug("call settled", LogChanged, true)
	default:
		// A repeated hangup request is unusual: worth a line.
		log.Info("call already settled; nothing changed", LogChanged, false)
	}
}

func (s *Server) hangupFailed(ss *session, err error) {
	if errors.Is(err, cyagi.ErrHangup) {
		err = errors.New("asterisk ended the session")
	}
	ss.log().Warn("hangup request failed before settling; the ARI listener or the sweep will settle the call",
		tollguard.LogError, err)
}

// parseSeconds reads ANSWEREDTIME or CDR(billsec): whole seconds,
// tolerating a fraction. known is false for "" and junk.
func parseSeconds(v string) (sec int64, known bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return max(n, 0), true
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && f < math.MaxInt32 {
		return max(int64(math.Ceil(f)), 0), true
	}
	return 0, false
}

// answered is the call's answered seconds, a started second counting:
// ANSWEREDTIME_MS (agi_arg_4) when the include passes it, else
// ANSWEREDTIME (agi_arg_2); a bare request (design.md's form) reads them
// from the channel. known is false when neither says.
func answered(ss *session) (sec int64, known bool, err error) {
	req := ss.req
	if ms, _ := req.arg(4); ms != "" {
		if sec, known = parseMillis(ms); known {
			return sec, true, nil
		}
	}
	if v, ok := req.arg(2); ok {
		sec, known = parseSeconds(v)
		return sec, known, nil
	}
	v, _, err := ss.get(tollguard.VarAnsweredTimeMS)
	if err != nil {
		return 0, false, err
	}
	if sec, known = parseMillis(v); known {
		return sec, true, nil
	}
	if v, _, err = ss.get(tollguard.VarAnsweredTime); err != nil {
		return 0, false, err
	}
	sec, known = parseSeconds(v)
	return sec, known, nil
}

// parseMillis reads ANSWEREDTIME_MS as seconds, a started second
// counting whole.
func parseMillis(v string) (sec int64, known bool) {
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	return tollguard.StartedSecondsMS(ms), true
}

// maxScriptShown is how much of an unknown script's name its console
// message shows.
const maxScriptShown = 200

// unknownScript answers a request for a script the gate does not have:
// a console message that says what to fix, then a "FAILURE" line, which
// res_agi turns into AGISTATUS=FAILURE.
func (s *Server) unknownScript(ss *session) {
	script := ss.req.Vars["agi_network_script"]
	ss.log().Warn("FastAGI request for an unknown script; answered with AGISTATUS=FAILURE",
		LogScript, script)
	// res_agi reads at most 2047 bytes of a command line and runs the
	// rest as a command of its own: the name is cut.
	shown := script
	if len(shown) > maxScriptShown {
		shown = shown[:maxScriptShown] + "..."
	}
	msg := fmt.Sprintf("tollguard: unknown FastAGI script %s; the scripts are %s, %s and %s "+
		"(agi://host:4573/%s), as the include calls them", strings.ReplaceAll(shown, `"`, "'"),
		tollguard.ScriptOutbound, tollguard.ScriptHangup, tollguard.ScriptEmergency, tollguard.ScriptOutbound)
	if err := ss.verbose(msg, 1); err != nil {
		return
	}
	ss.conn.Write([]byte("FAILURE\n"))
}
