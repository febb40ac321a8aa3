package agi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

// ByEmergency settles an emergency call the emergency script recorded.
const ByEmergency = "emergency"

// emergency records an emergency call after it ended, from the hangup
// handler the include pushes instead of asking the gate first.
// agi_arg_1..3 are as for outbound (number, extension, source);
// agi_arg_4 is ANSWEREDTIME, agi_arg_5 DIALSTATUS and agi_arg_6 the
// Unix second the call was placed (${EPOCH} when the include let it
// through), which the record carries.
//
// Why after: once connected, Asterisk waits on a FastAGI session with
// no timeout, so a tollguard that is stopped or swapped out while the
// kernel still accepts its connections would hold a 112 call until the
// watchdog restarted it. Emergency numbers on the include's list never
// wait for tollguard; the gate still records each one (and charges it
// if the account's plan does not know it as an emergency number), so
// `tollguard calls` shows it. The server sets nothing on the channel,
// which has hung up (the include passes every argument, so it asks
// nothing either).
func (s *Server) emergency(ctx context.Context, ss *session) {
	call, ok := readCall(ss)
	if !ok {
		return
	}
	log := ss.log().With(tollguard.LogExtension, call.Extension, tollguard.LogDest, call.Dialled)
	call.At = placedAt(ss, s.cfg.now())
	if call.Dialled == "" {
		log.Error("emergency request without a dialled number: the include calls " +
			"AGI(agi://<host>:4573/emergency,<number>,<extension>,<source>,${ANSWEREDTIME},${DIALSTATUS},<placed at>) " +
			"from a hangup handler; nothing recorded")
		return
	}
	// The caller is gone: the decision may take the session's time.
	dctx, cancel := context.WithDeadline(ctx, ss.deadline)
	defer cancel()
	d, err := s.Gate.Decide(dctx, *call)
	if err == nil && d.Verdict != tollguard.Allow && d.Verdict != tollguard.Deny {
		err = fmt.Errorf("gate returned verdict %q", d.Verdict)
	}
	if err != nil {
		log.Error("could not record an emergency call that was dialled; it is missing from the call records",
			tollguard.LogError, tollguard.ErrorMessage(err))
		return
	}
	s.cfg.metrics.Recorded(d.Verdict, d.Reason)
	log = log.With(tollguard.LogCallID, d.CallID, tollguard.LogReason, string(d.Reason))
	// The include lets its own caller ID codes through before an
	// emergency number whatever the account's country, where the gate
	// knows each only in its own: a GB account's *67112 comes here,
	// and TOLLGUARD_EMERGENCY is not at fault.
	code := tollguard.DialplanCallerIDCode(call.Dialled)
	if d.Verdict != tollguard.Allow {
		if code != "" {
			log.Warn(callerIDCodeWhy(code) + "; recorded as denied, not charged. If the account's phones do use " + code +
				", check the account's country (tollguard account show) and that what follows the code is one of its emergency numbers")
			return
		}
		log.Warn("an emergency number on the include's list was dialled, but the gate would deny it; recorded as denied, not charged. " +
			"Check the emergency numbers of the account's numbering plan and the include's TOLLGUARD_EMERGENCY")
		return
	}
	if d.CallID == 0 {
		return // the store failed; the policy logged the emergency call it could not record
	}
	dialStatus, _ := ss.req.arg(5)
	dialStatus = strings.TrimSpace(dialStatus)
	rawSec, _ := ss.req.arg(4)
	billsec, _ := parseSeconds(rawSec)
	changed, err := s.Gate.Settle(dctx, tollguard.Settlement{
		CallID: d.CallID, Billsec: billsec, DialStatus: dialStatus, By: ByEmergency, At: s.cfg.now(),
		// ANSWEREDTIME is the caller channel's up time (see hangup): a
		// record dated when the call was placed caps it at the call's
		// length. One dated now (no placed time) would cap it at 0 s.
		SinceDecision: !call.At.IsZero(),
	})
	s.countSettle(ByEmergency, changed, err)
	if errors.Is(err, tollguard.ErrSettlementPending) {
		log.Info("recorded an emergency call but could not settle it; kept in memory and retried until the store takes it",
			LogBillsec, billsec, tollguard.LogError, tollguard.ErrorMessage(err))
		return
	}
	if err != nil {
		log.Error("recorded an emergency call but could not settle it; the sweep will settle it",
			LogBillsec, billsec, tollguard.LogError, tollguard.ErrorMessage(err))
		return
	}
	if d.Reason == tollguard.ReasonEmergency {
		log.Info("emergency call recorded after it ended", LogBillsec, billsec, LogDialStatus, dialStatus)
		return
	}
	if code != "" {
		log.Warn(callerIDCodeWhy(code)+"; recorded and charged as an ordinary call", LogBillsec, billsec, LogDialStatus, dialStatus)
		return
	}
	log.Warn("an emergency number on the include's list was dialled, but the gate does not know it as one; recorded and charged as an ordinary call. "+
		"Check the emergency numbers of the account's numbering plan", LogBillsec, billsec, LogDialStatus, dialStatus)
}

// callerIDCodeWhy says why the gate may not take an emergency number
// after code for one, with no advice to change TOLLGUARD_EMERGENCY. It
// cannot say which of the two it is: the account's country is not
// known here, and a US account's *67 000 (AU's 000, on a US and AU
// PBX's list) is denied though the US uses *67.
func callerIDCodeWhy(code string) string {
	return "the include let this through as an emergency number after the caller ID code " + code +
		" (it does so in every country, as no number begins with * or #), but the gate does not know the whole as an emergency number: " +
		code + " is a caller ID code in " + strings.Join(tollguard.CallerIDCodeCountries(code), " and ") +
		" only, before that country's own emergency numbers"
}

// maxRecordAge bounds how far back an emergency record may be dated: an
// emergency call ends within hours, and a start time older than that is
// not one.
const maxRecordAge = 24 * time.Hour

// placedAt reads agi_arg_6, the Unix second the call was placed. Absent,
// malformed, in the future or more than maxRecordAge ago, it is zero:
// the record is dated now.
func placedAt(ss *session, now time.Time) time.Time {
	v, _ := ss.req.arg(6)
	sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return time.Time{}
	}
	at := time.Unix(sec, 0)
	if at.After(now) || now.Sub(at) > maxRecordAge {
		return time.Time{}
	}
	return at
}
