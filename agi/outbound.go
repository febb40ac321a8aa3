package agi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	cyagi "github.com/CyCoreSystems/agi"
	"github.com/tollguard/tollguard"
)

// Settlement.By values the server uses.
const (
	ByAGI          = "agi"            // the hangup script
	ByHangupInGate = "hangup_in_gate" // the caller hung up before the allow reached the dialplan
	ByDeadline     = "deadline"       // the allow came after the decision deadline; the call was denied
)

// outbound decides a call: agi_arg_1 is the dialled number, optional
// agi_arg_2 the extension and agi_arg_3 the caller's source address.
//
// This is the hot path. Decisions travel by pointer and the rare
// branches live in functions of their own, which keeps the session
// goroutine's stack from growing (and being copied) on every call.
func (s *Server) outbound(ctx context.Context, ss *session) {
	call, ok := readCall(ss)
	if !ok {
		return
	}
	// An include installed before the emergency script marks the numbers
	// on its emergency list: they are never hung up on here, and a
	// failed decision lets them through. (The include now records them
	// after they end instead: emergency.go.)
	emergency := queryFlag(ss.req.Query, "emergency")
	if call.Dialled == "" {
		s.deliver(ss, call, noNumber(ss, call), emergency, time.Now())
		return
	}
	s.decide(ctx, ss, call, emergency)
}

// readCall reads the call from the request: agi_arg_1 is the dialled
// number, optional agi_arg_2 the extension and agi_arg_3 the caller's
// source address. ok is false when the session ended while it read.
func readCall(ss *session) (call *tollguard.Call, ok bool) {
	req := ss.req
	call = &tollguard.Call{
		Account:  req.Vars["agi_accountcode"],
		Channel:  req.Vars["agi_channel"],
		UniqueID: req.Vars["agi_uniqueid"],
		Context:  req.Vars["agi_context"],
		Selftest: queryFlag(req.Query, "selftest"),
	}
	dialled, _ := req.arg(1)
	call.Dialled = strings.TrimSpace(dialled)
	if ext, _ := req.arg(2); strings.TrimSpace(ext) != "" {
		call.Extension = strings.TrimSpace(ext)
	} else {
		call.Extension = extensionFromChannel(call.Channel)
	}
	if src, ok := req.arg(3); ok {
		if rest, marked := strings.CutPrefix(strings.TrimSpace(src), tollguard.TransferSourcePrefix); marked {
			call.Transferred, src = true, rest
		}
		call.Remote = remoteOf(src)
	} else if name := remoteVariable(channelTech(call.Channel)); name != "" {
		// One round trip the include saves by passing arg 3.
		v, set, err := ss.get(name)
		if err != nil && ss.err != nil {
			endedBeforeDecision(ss, call, err)
			return nil, false
		}
		if set {
			call.Remote = remoteOf(v)
		}
	}
	return call, true
}

// remoteOf is the caller's address from what the dialplan gave. One that
// is not an address is kept as it came, so that an extension with an IP
// access list is denied rather than let through unchecked; only an empty
// one (no SIP peer: a Local channel) skips the check.
func remoteOf(s string) string {
	if a := parseRemote(s); a != "" {
		return a
	}
	return strings.TrimSpace(s)
}

func endedBeforeDecision(ss *session, call *tollguard.Call, err error) {
	if errors.Is(err, cyagi.ErrHangup) {
		ss.log().Info("caller hung up before the decision; nothing recorded",
			tollguard.LogExtension, call.Extension, tollguard.LogDest, call.Dialled)
		return
	}
	ss.log().Warn("FastAGI session failed before the decision; the include fails the call closed",
		tollguard.LogExtension, call.Extension, tollguard.LogDest, call.Dialled, tollguard.LogError, err)
}

func noNumber(ss *session, call *tollguard.Call) *tollguard.Decision {
	ss.log().Error("outbound request without a dialled number: use the tollguard include's AGI() line (tollguard dialplan), "+
		"or AGI(agi://<host>:4573/outbound,<number>[,<extension>[,<source>]]); denying",
		tollguard.LogExtension, call.Extension)
	d := errorDecision()
	return &d
}

// queryFlag reports whether the script's query sets a flag
// ("outbound?selftest=1", "outbound?emergency=1").
//
// It scans the query in place: every request now carries the argument
// copies, and parsing them into a map per call cost allocations.
func queryFlag(query, name string) bool {
	v := rawQueryValue(query, name)
	if strings.ContainsAny(v, "%+") {
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
	}
	return v == "1" || v == "true" || v == "yes"
}

func errorDecision() tollguard.Decision {
	return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonError, Cause: tollguard.CauseNoCircuitAvailable, MaxSec: -1}
}

// replyReserve is the part of a session kept for answering Asterisk
// after the decision: two commands, each a local round trip.
const replyReserve = 100 * time.Millisecond

// decided is the gate's answer to a call.
type decided struct {
	d   tollguard.Decision
	err error
}

// decide asks the gate under DecisionTimeout and answers Asterisk.
//
// Decide runs on the session's own goroutine. If the deadline passes
// first, a watchdog answers instead: deny with cause 34 (or allow an
// emergency number), and it closes the connection so that Asterisk
// goes on with its dialplan at once. When the late Decide returns, an
// allow it recorded is settled, so that no reservation leaks, unless
// the watchdog let that call through (see late). A Decide
// that never returns holds its session slot, so MaxSessions bounds
// the goroutines a wedged store can pile up.
func (s *Server) decide(ctx context.Context, ss *session, call *tollguard.Call, emergency bool) {
	start := time.Now()
	// The answer must reach Asterisk before the session deadline closes
	// the connection: a session timeout close to the decision timeout
	// (or a slow env block) shortens the decision, not the answer.
	timeout := min(s.cfg.decisionTimeout, time.Until(ss.deadline)-replyReserve)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	watchdog := make(chan struct{})
	// What the watchdog answered, and whether the caller hung up as it
	// did (no call went out then); read after watchdog closes.
	var sent tollguard.Verdict
	var gone bool
	stop := context.AfterFunc(dctx, func() {
		defer close(watchdog)
		defer s.recoverPanic(ss, "decision watchdog")
		err := fmt.Errorf("no decision within %v: %w", max(timeout, 0), context.DeadlineExceeded)
		d := s.failed(ss, call, err, emergency)
		sent = d.Verdict
		s.deliver(ss, call, d, emergency, start)
		gone = ss.hungup
		ss.conn.Close() // the channel must not wait for the gate
	})
	res := &decided{}
	s.callDecide(dctx, call, res)
	if !stop() {
		// The deadline came first: the watchdog has the connection.
		<-watchdog
		s.late(ctx, call, res, sent, gone, time.Since(start))
		return
	}
	if res.err == nil && res.d.Verdict != tollguard.Allow && res.d.Verdict != tollguard.Deny {
		res.err = fmt.Errorf("gate returned verdict %q", res.d.Verdict)
	}
	if res.err != nil {
		s.deliver(ss, call, s.failed(ss, call, res.err, emergency), emergency, start)
		return
	}
	normalise(ss, &res.d)
	s.deliver(ss, call, &res.d, emergency, start)
}

// deliver reports and sends a decision.
func (s *Server) deliver(ss *session, call *tollguard.Call, d *tollguard.Decision, emergency bool, start time.Time) {
	took := time.Since(start)
	s.cfg.metrics.Decision(d.Verdict, d.Reason, took)
	s.answer(ss, call, d, emergency, took)
}

// failed is the answer when the gate could not decide.
func (s *Server) failed(ss *session, call *tollguard.Call, err error, emergency bool) *tollguard.Decision {
	attrs := []any{tollguard.LogExtension, call.Extension, tollguard.LogAccount, call.Account,
		tollguard.LogDest, call.Dialled, tollguard.LogError, tollguard.ErrorMessage(err)}
	if emergency || s.Gate.Emergency(call.Extension, call.Dialled) {
		ss.log().Warn("decision failed; emergency number allowed anyway", attrs...)
		return &tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonEmergency, MaxSec: -1}
	}
	// One line per 10 s, with how many it stood for: a store that fails
	// fails every call.
	if ok, n := s.failedLog.allow(time.Now()); ok {
		attrs = append(attrs, LogSuppressed, n)
		if errors.Is(err, context.DeadlineExceeded) {
			ss.log().Error("decision took too long; call denied with cause 34. "+
				"Check the store's health, or raise the decision timeout if the box is just slow", attrs...)
		} else {
			ss.log().Error("decision failed; call denied with cause 34. "+
				"Check the database: disk space, its file's permissions, `tollguard selftest`; /readyz says whether the gate decides", attrs...)
		}
	}
	d := errorDecision()
	return &d
}

func (s *Server) callDecide(ctx context.Context, call *tollguard.Call, res *decided) {
	defer func() {
		if v := recover(); v != nil {
			res.err = fmt.Errorf("gate panicked: %v", v)
			s.cfg.log.Error("panic in Gate.Decide", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	res.d, res.err = s.Gate.Decide(ctx, *call)
}

// late handles a decision that came after the watchdog had answered.
// gone says the caller hung up as the watchdog answered: whatever it
// said, the channel dialled nothing.
func (s *Server) late(ctx context.Context, call *tollguard.Call, res *decided, sent tollguard.Verdict, gone bool, took time.Duration) {
	log := s.cfg.log.With(LogChannel, call.Channel, LogUniqueID, call.UniqueID,
		tollguard.LogExtension, call.Extension, tollguard.LogDest, call.Dialled, LogTook, took)
	// What the watchdog said: a deny, or an allow of an emergency number
	// (which no call row records).
	already, by := "denied", ByDeadline
	switch {
	case gone:
		already, by = "hung up by the caller", ByHangupInGate
	case sent == tollguard.Allow:
		already = "allowed as an emergency number"
	}
	d := &res.d
	if res.err != nil || !d.Allowed() || d.CallID == 0 {
		level := slog.LevelWarn
		if errors.Is(res.err, context.DeadlineExceeded) {
			level = slog.LevelDebug // the gate kept to its deadline, as it should
		}
		log.Log(ctx, level, "gate answered after the decision deadline; the call had been "+already+" already",
			tollguard.LogVerdict, string(d.Verdict), tollguard.LogError, tollguard.ErrorMessage(res.err))
		return
	}
	if sent == tollguard.Allow && !gone && d.Reason != tollguard.ReasonEmergency {
		// The watchdog let it through unlimited on the loose emergency
		// check, and the account's plan prices it: the call is going
		// out, and settled at 0 s now it would cost nothing. Its channel
		// carries no TOLLGUARD_CALLID, so no hangup request comes, and
		// the sweep cannot tell it is still up: the ARI listener finds
		// the record by the channel's uniqueid; without it the sweep
		// charges the reservation once MAXSEC has passed.
		log.Warn("gate allowed the call after the decision deadline as an ordinary call, but the deadline's answer had let it through already "+
			"as an emergency number, with no limit. Its record is left open: the ARI listener settles it when its channel ends, "+
			"at its length up to its reservation; without ARI the sweep charges the full reservation once its limit has passed. "+
			"The number is an emergency number only in another plan (the default country's, or another account's): "+
			"check the account's country, and why the store missed its deadline",
			tollguard.LogCallID, d.CallID, tollguard.LogAccount, d.Account, tollguard.LogReason, string(d.Reason), LogMaxSec, d.MaxSec)
		return
	}
	log.Warn("gate allowed the call after the decision deadline; the call had been "+already+" already, settling its record",
		tollguard.LogCallID, d.CallID)
	s.settle(ctx, log, d.CallID, by)
}

// normalise makes a decision safe to send: a deny always has a cause,
// an allow's limit is never 0 or negative in Asterisk's terms.
func normalise(ss *session, d *tollguard.Decision) {
	switch d.Verdict {
	case tollguard.Deny:
		if d.Cause <= 0 {
			d.Cause = tollguard.CauseCallRejected
			if d.Reason == tollguard.ReasonError {
				d.Cause = tollguard.CauseNoCircuitAvailable
			}
		}
	case tollguard.Allow:
		if d.MaxSec < -1 {
			ss.log().Error("gate allowed a call with a negative limit; treating it as zero seconds",
				LogMaxSec, d.MaxSec, tollguard.LogCallID, d.CallID)
			d.MaxSec = 0
		}
	}
}

// answer sends the decision to Asterisk (send) and logs it.
func (s *Server) answer(ss *session, call *tollguard.Call, d *tollguard.Decision, emergency bool, took time.Duration) {
	if err := s.send(ss, call, d, emergency); err != nil {
		s.undelivered(ss, call, d, err, took)
		return
	}
	switch {
	case d.Verdict == tollguard.Allow:
		s.logCall(ss, slog.LevelDebug, "call allowed", call, d, took, slog.Int64(LogMaxSec, d.MaxSec))
	case d.Reason == tollguard.ReasonError:
		// failed logged it, at most every 10 s.
		s.logCall(ss, slog.LevelDebug, "call denied", call, d, took, slog.Int(LogCause, d.Cause))
	default:
		// The policy at work, not a fault: info, as the config says. A
		// PBX being scanned denies hundreds a minute; the detectors'
		// alerts and the metrics are where patterns show.
		s.logCall(ss, slog.LevelInfo, "call denied", call, d, took, slog.Int(LogCause, d.Cause))
	}
}

// send sends the decision to Asterisk: the reply variables, then the
// hangup on a deny.
func (s *Server) send(ss *session, call *tollguard.Call, d *tollguard.Decision, emergency bool) error {
	allow := d.Verdict == tollguard.Allow
	cause, maxsec, callid := "", "", ""
	if !allow {
		cause = strconv.Itoa(d.Cause)
	}
	if allow && d.MaxSec >= 0 {
		maxsec = strconv.FormatInt(d.MaxSec, 10)
	}
	if d.CallID != 0 {
		callid = strconv.FormatInt(d.CallID, 10)
	}
	var buf [6][2]string
	vars := append(buf[:0],
		[2]string{tollguard.VarVerdict, string(d.Verdict)},
		[2]string{tollguard.VarReason, string(d.Reason)},
		[2]string{tollguard.VarCause, cause},
		[2]string{tollguard.VarMaxSec, maxsec},
		[2]string{tollguard.VarCallID, callid},
	)
	if allow && d.MaxSec >= 0 {
		// TIMEOUT(absolute)=0 would mean "no limit": a zero-second
		// allow gets the shortest limit Asterisk can express.
		vars = append(vars, [2]string{"TIMEOUT(absolute)", strconv.FormatInt(max(d.MaxSec, 1), 10)})
	}

	err := s.setVars(ss, vars)
	if err == nil && ss.lr.pending("HANGUP") {
		// The HANGUP line came with the last reply: the channel is
		// gone, and a further command would read it as its reply.
		ss.hungup, ss.err = true, cyagi.ErrHangup
		err = ss.err
	}
	if err == nil && !allow {
		err = s.deny(ss, call, d, cause, emergency)
	}
	return err
}

// deny ends a denied call: hang up with the cause, unless the dialplan
// is to act on the variables.
func (s *Server) deny(ss *session, call *tollguard.Call, d *tollguard.Decision, cause string, emergency bool) error {
	if emergency {
		ss.log().Warn("the gate denied a number the dialplan lists as an emergency number; the dialplan dials it anyway. "+
			"Check the emergency numbers of the account's numbering plan and the include's TOLLGUARD_EMERGENCY",
			tollguard.LogDest, call.Dialled, tollguard.LogReason, string(d.Reason))
		return nil
	}
	if s.cfg.denyAction != DenyHangup {
		return nil
	}
	r, err := ss.command("EXEC Hangup " + cause)
	if err == nil && r.Result == -2 {
		err = errors.New("asterisk has no Hangup application")
	}
	return err
}

// undelivered handles a decision that did not reach the dialplan.
func (s *Server) undelivered(ss *session, call *tollguard.Call, d *tollguard.Decision, err error, took time.Duration) {
	allow := d.Verdict == tollguard.Allow
	if errors.Is(err, cyagi.ErrHangup) {
		// The caller went away while the gate was deciding. A deny
		// needs nothing more; an allow's reservation is released now
		// (the include's hangup handler may settle it too: that is
		// idempotent).
		if allow && d.CallID != 0 {
			s.logCall(ss, slog.LevelInfo, "caller hung up during the gate session; settling the allowed call", call, d, took)
			s.settle(context.Background(), ss.log(), d.CallID, ByHangupInGate)
		} else {
			s.logCall(ss, slog.LevelInfo, "caller hung up during the gate session", call, d, took)
		}
		return
	}
	if allow && d.CallID != 0 {
		// Asterisk runs each command it reads whatever we make of its
		// replies: a reply lost to a deadline or read out of step does
		// not mean the allow was not set, and settling at 0 s here let
		// such a call go out free. The hangup handler settles it at its
		// real length; ARI or the sweep, if that never comes.
		s.logCall(ss, slog.LevelWarn, "could not confirm that the allow reached Asterisk; the call is left open for its hangup to settle",
			call, d, took, slog.String(tollguard.LogError, err.Error()))
		return
	}
	s.logCall(ss, slog.LevelWarn, "could not deliver the decision to Asterisk; the include fails the call closed",
		call, d, took, slog.String(tollguard.LogError, err.Error()))
}

// logCall logs a decision with the stable keys. Attributes are built
// only when the line is logged: an allow is logged at debug level (the
// store keeps every decision), and this is the hot path.
func (s *Server) logCall(ss *session, level slog.Level, msg string, call *tollguard.Call, d *tollguard.Decision, took time.Duration, extra ...slog.Attr) {
	ctx := context.Background()
	if !s.cfg.log.Enabled(ctx, level) {
		return
	}
	// The account the gate resolved (the store's, for a known
	// extension); the raw accountcode only when it resolved none.
	account := d.Account
	if account == "" {
		account = call.Account
	}
	attrs := append([]slog.Attr{
		slog.String(tollguard.LogExtension, call.Extension),
		slog.String(tollguard.LogAccount, account),
		slog.String(tollguard.LogDest, call.Dialled),
		slog.String(tollguard.LogRemote, call.Remote),
		slog.String(tollguard.LogVerdict, string(d.Verdict)),
		slog.String(tollguard.LogReason, string(d.Reason)),
		slog.Int64(tollguard.LogCallID, d.CallID),
		slog.Duration(LogTook, took),
	}, extra...)
	if call.Transferred {
		attrs = append(attrs, slog.Bool(tollguard.LogTransferred, true))
	}
	ss.log().LogAttrs(ctx, level, msg, attrs...)
}

// setVars sets channel variables in one round trip with the MSet
// application, or, if this Asterisk has none, one SET VARIABLE each.
//
// Each session tries MSet first: one client's "result=-2" (MSet is in
// Asterisk's core; a client without it is broken or hostile) must not
// switch every later call to the slow path. On that path the verdict is
// set last, so that a session cut off part way leaves no "allow" without
// its limit: without a verdict the include fails closed.
func (s *Server) setVars(ss *session, vars [][2]string) error {
	if allMSetSafe(vars) {
		var b strings.Builder
		b.Grow(160)
		b.WriteString("EXEC MSet ")
		for i, kv := range vars {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(kv[0])
			b.WriteByte('=')
			b.WriteString(kv[1])
		}
		r, err := ss.command(b.String())
		if err != nil {
			return err
		}
		if r.Result != -2 {
			return nil
		}
		if s.noMSet.CompareAndSwap(false, true) {
			ss.log().Warn("a FastAGI client has no MSet application (EXEC MSet answered result=-2; Asterisk has it built in): " +
				"its replies are set with one SET VARIABLE per variable, a round trip each; logged once")
		}
	}
	// send puts the verdict first (for MSet); here it goes last.
	for _, kv := range append(vars[1:len(vars):len(vars)], vars[0]) {
		if _, err := ss.command("SET VARIABLE " + kv[0] + " " + quote(kv[1])); err != nil {
			return err
		}
	}
	return nil
}

func allMSetSafe(vars [][2]string) bool {
	for _, kv := range vars {
		if !msetSafe(kv[1]) {
			return false
		}
	}
	return true
}

// settle settles an allowed call with no billed time.
func (s *Server) settle(ctx context.Context, log *slog.Logger, callID int64, by string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.sessionTimeout)
	defer cancel()
	changed, err := s.Gate.Settle(ctx, tollguard.Settlement{CallID: callID, By: by, At: s.cfg.now()})
	s.countSettle(by, changed, err)
	if err != nil {
		settleFailed(log, err, tollguard.LogCallID, callID, "by", by)
	}
}

// settleFailed logs a settlement that failed: one the policy kept in
// memory is a line per call (the policy warns for the outage), any
// other is left to the ARI listener or the sweep.
func settleFailed(log *slog.Logger, err error, attrs ...any) {
	attrs = append(attrs, tollguard.LogError, tollguard.ErrorMessage(err))
	if errors.Is(err, tollguard.ErrSettlementPending) {
		log.Info("settling the call failed; kept in memory and retried until the store takes it", attrs...)
		return
	}
	log.Error("settling the call failed; the ARI listener or the sweep will settle it", attrs...)
}
