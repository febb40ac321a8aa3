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
	"sync"
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
func (s *Server) outbound(ctx context.Context, ss *session) {
	req := ss.req
	call := tollguard.Call{
		Account:  req.Vars["agi_accountcode"],
		Channel:  req.Vars["agi_channel"],
		UniqueID: req.Vars["agi_uniqueid"],
		Context:  req.Vars["agi_context"],
		Selftest: queryFlag(req.Query, "selftest"),
	}
	// The include marks numbers on its own emergency list: they are
	// never hung up on here, and a failed decision lets them through.
	emergency := queryFlag(req.Query, "emergency")
	dialled, _ := req.arg(1)
	call.Dialled = strings.TrimSpace(dialled)
	if ext, _ := req.arg(2); strings.TrimSpace(ext) != "" {
		call.Extension = strings.TrimSpace(ext)
	} else {
		call.Extension = extensionFromChannel(call.Channel)
	}
	if src, ok := req.arg(3); ok {
		call.Remote = parseRemote(src)
	} else if name := remoteVariable(channelTech(call.Channel)); name != "" {
		// One round trip the include saves by passing arg 3.
		v, set, err := ss.get(name)
		switch {
		case errors.Is(err, cyagi.ErrHangup):
			ss.log().Info("caller hung up before the decision; nothing recorded",
				tollguard.LogExtension, call.Extension, tollguard.LogDest, call.Dialled)
			return
		case err != nil && ss.err != nil:
			ss.log().Warn("FastAGI session failed before the decision; the include fails the call closed",
				tollguard.LogExtension, call.Extension, tollguard.LogDest, call.Dialled, tollguard.LogError, err)
			return
		case set:
			call.Remote = parseRemote(v)
		}
	}

	var d tollguard.Decision
	start := time.Now()
	if call.Dialled == "" {
		ss.log().Error("outbound request without a dialled number: call AGI(agi://<host>:4573/outbound,<number>[,<extension>[,<source>]]), "+
			"as the tollguard include does; denying",
			tollguard.LogExtension, call.Extension)
		d = errorDecision()
	} else {
		d = s.decide(ctx, ss, call, emergency)
	}
	s.cfg.metrics.Decision(d.Verdict, d.Reason, time.Since(start))
	s.answer(ss, call, d, emergency, time.Since(start))
}

// queryFlag reports whether the script's query sets a flag
// ("outbound?selftest=1", "outbound?emergency=1").
func queryFlag(query, name string) bool {
	if query == "" {
		return false
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return false
	}
	v := q.Get(name)
	return v == "1" || v == "true" || v == "yes"
}

func errorDecision() tollguard.Decision {
	return tollguard.Decision{Verdict: tollguard.Deny, Reason: tollguard.ReasonError, Cause: tollguard.CauseNoCircuitAvailable, MaxSec: -1}
}

// pendingDecision hands a Decide result from its goroutine to the
// session, unless the session stopped waiting: then the goroutine owns
// the result and cleans up after it.
type pendingDecision struct {
	mu        sync.Mutex
	abandoned bool
	ch        chan decideResult // buffered: the goroutine never blocks
}

type decideResult struct {
	d   tollguard.Decision
	err error
}

// decide asks the gate under DecisionTimeout and turns a failure or a
// late answer into the fail-closed decision, or an allow for an
// emergency number (by the gate's plan, or by the include's list).
func (s *Server) decide(ctx context.Context, ss *session, call tollguard.Call, emergency bool) tollguard.Decision {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.decisionTimeout)
	defer cancel()
	p := &pendingDecision{ch: make(chan decideResult, 1)}
	ss.wg.Add(1)
	go s.runDecide(dctx, ss, call, p)

	var r decideResult
	select {
	case r = <-p.ch:
	case <-dctx.Done():
		p.mu.Lock()
		select {
		case r = <-p.ch: // it made it after all
		default:
			p.abandoned = true
			r.err = fmt.Errorf("no decision within %v: %w", s.cfg.decisionTimeout, dctx.Err())
		}
		p.mu.Unlock()
	}

	d := r.d
	if r.err == nil && d.Verdict != tollguard.Allow && d.Verdict != tollguard.Deny {
		r.err = fmt.Errorf("gate returned verdict %q", d.Verdict)
	}
	if r.err != nil {
		attrs := []any{tollguard.LogExtension, call.Extension, tollguard.LogAccount, call.Account,
			tollguard.LogDest, call.Dialled, tollguard.LogError, tollguard.ErrorMessage(r.err)}
		if emergency || s.Gate.Emergency(call.Dialled) {
			ss.log().Warn("decision failed; emergency number allowed anyway", attrs...)
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonEmergency, MaxSec: -1}
		}
		if errors.Is(r.err, context.DeadlineExceeded) {
			ss.log().Error("decision took too long; call denied with cause 34. "+
				"Check the store's health, or raise the decision timeout if the box is just slow", attrs...)
		} else {
			ss.log().Error("decision failed; call denied with cause 34", attrs...)
		}
		return errorDecision()
	}
	return normalise(ss, d)
}

// runDecide calls Gate.Decide. If the session gave up waiting, a late
// allow is settled at once so that its reservation does not leak.
func (s *Server) runDecide(ctx context.Context, ss *session, call tollguard.Call, p *pendingDecision) {
	defer ss.wg.Done()
	start := time.Now()
	var r decideResult
	func() {
		defer func() {
			if v := recover(); v != nil {
				r.err = fmt.Errorf("gate panicked: %v", v)
				s.cfg.log.Error("panic in Gate.Decide", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}()
		r.d, r.err = s.Gate.Decide(ctx, call)
	}()

	p.mu.Lock()
	abandoned := p.abandoned
	if !abandoned {
		p.ch <- r
	}
	p.mu.Unlock()
	if !abandoned {
		return
	}
	log := s.cfg.log.With(LogChannel, call.Channel, LogUniqueID, call.UniqueID,
		tollguard.LogExtension, call.Extension, tollguard.LogDest, call.Dialled, LogTook, time.Since(start))
	if r.err != nil || !r.d.Allowed() || r.d.CallID == 0 {
		log.Warn("gate answered after the decision deadline; the call had been denied already",
			tollguard.LogVerdict, string(r.d.Verdict), tollguard.LogError, tollguard.ErrorMessage(r.err))
		return
	}
	log.Warn("gate allowed the call after the decision deadline; the call had been denied already, settling its record",
		tollguard.LogCallID, r.d.CallID)
	s.settle(ctx, log, r.d.CallID, ByDeadline)
}

// normalise makes a decision safe to send: a deny always has a cause,
// an allow's limit is never 0 or negative in Asterisk's terms.
func normalise(ss *session, d tollguard.Decision) tollguard.Decision {
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
	return d
}

// answer sends the decision to Asterisk: the reply variables, then the
// hangup on a deny.
func (s *Server) answer(ss *session, call tollguard.Call, d tollguard.Decision, emergency bool, took time.Duration) {
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

	// Built only when a line is logged: an allow is logged at debug
	// level (the store keeps every decision), and this is the hot path.
	logCall := func(level slog.Level, msg string, extra ...slog.Attr) {
		ctx := context.Background()
		if !s.cfg.log.Enabled(ctx, level) {
			return
		}
		attrs := append([]slog.Attr{
			slog.String(tollguard.LogExtension, call.Extension),
			slog.String(tollguard.LogAccount, call.Account),
			slog.String(tollguard.LogDest, call.Dialled),
			slog.String(tollguard.LogRemote, call.Remote),
			slog.String(tollguard.LogVerdict, string(d.Verdict)),
			slog.String(tollguard.LogReason, string(d.Reason)),
			slog.Int64(tollguard.LogCallID, d.CallID),
			slog.Duration(LogTook, took),
		}, extra...)
		ss.log().LogAttrs(ctx, level, msg, attrs...)
	}
	err := s.setVars(ss, vars)
	if err == nil && ss.lr.pending("HANGUP") {
		// The HANGUP line came with the last reply: the channel is
		// gone, and a further command would read it as its reply.
		ss.hungup, ss.err = true, cyagi.ErrHangup
		err = ss.err
	}
	if err == nil && !allow && emergency {
		ss.log().Warn("the gate denied a number the dialplan lists as an emergency number; the dialplan dials it anyway. "+
			"Check the emergency numbers of the account's numbering plan and the include's TOLLGUARD_EMERGENCY",
			tollguard.LogDest, call.Dialled, tollguard.LogReason, string(d.Reason))
	} else if err == nil && !allow && s.cfg.denyAction == DenyHangup {
		var r reply
		r, err = ss.command("EXEC Hangup " + cause)
		if err == nil && r.Result == -2 {
			err = errors.New("asterisk has no Hangup application")
		}
	}
	switch {
	case errors.Is(err, cyagi.ErrHangup):
		// The caller went away while the gate was deciding. A deny
		// needs nothing more; an allow's reservation is released now
		// (the include's hangup handler may settle it too: that is
		// idempotent).
		if allow && d.CallID != 0 {
			logCall(slog.LevelInfo, "caller hung up during the gate session; settling the allowed call")
			s.settle(context.Background(), ss.log(), d.CallID, ByHangupInGate)
		} else {
			logCall(slog.LevelInfo, "caller hung up during the gate session")
		}
		return
	case err != nil:
		logCall(slog.LevelWarn, "could not deliver the decision to Asterisk; the include fails the call closed",
			slog.String(tollguard.LogError, err.Error()))
		if allow && d.CallID != 0 {
			s.settle(context.Background(), ss.log(), d.CallID, ByHangupInGate)
		}
		return
	}
	if allow {
		logCall(slog.LevelDebug, "call allowed", slog.Int64(LogMaxSec, d.MaxSec))
	} else {
		logCall(slog.LevelWarn, "call denied", slog.Int(LogCause, d.Cause))
	}
}

// setVars sets channel variables in one round trip with the MSet
// application, or, if this Asterisk has none, one SET VARIABLE each.
func (s *Server) setVars(ss *session, vars [][2]string) error {
	if !s.noMSet.Load() && allMSetSafe(vars) {
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
			ss.log().Warn("Asterisk has no MSet application (EXEC MSet answered result=-2); " +
				"setting the reply with one SET VARIABLE per variable from now on, which costs a round trip each")
		}
	}
	for _, kv := range vars {
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
	s.cfg.metrics.Settled(by, changed && err == nil)
	if err != nil {
		log.Error("settling the call failed; the ARI listener or the sweep will settle it",
			tollguard.LogCallID, callID, "by", by, tollguard.LogError, tollguard.ErrorMessage(err))
	}
}
