package agi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	cyagi "github.com/CyCoreSystems/agi"
	"github.com/tollguard/tollguard"
)

// overflowSessions bounds the connections answered past MaxSessions
// (Server.overflow). Each lasts one env block and two round trips,
// about a millisecond with a live Asterisk, so a few dozen answer
// thousands of calls a second; the bound only stops a flood of silent
// connections from taking a goroutine each. Not a setting: it never
// needs tuning with max_sessions, which is.
const overflowSessions = 32

// overflowReplyTimeout bounds an overflow session after its env block:
// two commands to a live Asterisk.
const overflowReplyTimeout = time.Second

// overflow answers a connection that came when all MaxSessions slots
// were taken, without asking the gate: a wedged store or a burst of
// calls holds them, and whatever holds them would hold this one too.
// Closing it unanswered would make the include hang up with cause 34,
// an emergency number too unless the include knows it by itself (the
// gate also knows the numbering plans' own). So an outbound request is
// answered as a failed decision is (Server.failed): an emergency number
// is allowed, anything else denied with reason error and cause 34. A
// hangup (settle) or emergency (record) request needs the store, so it
// is closed unserved as before. The call stays reserved until the ARI
// listener settles it from ChannelDestroyed, or the sweep: at the time
// since the decision (ringing included) or its full reservation, never
// less than it cost. Serving settles here instead would let a wedged
// store hold the overflow slots that emergency calls need.
// With the overflow pool full too, the connection is closed at once.
func (s *Server) overflow(conn net.Conn, peer netip.Addr, wg *serveGroups) {
	select {
	case s.overflowSem <- struct{}{}:
	default:
		s.cfg.metrics.Refused(RefusedBusy)
		if ok, n := s.busyLog.allow(time.Now()); ok {
			s.cfg.log.Warn("FastAGI connection closed: too many sessions in flight, and the overflow pool that answers "+
				"without the gate is full too. The dialplan include fails such calls closed (cause 34), emergency numbers "+
				"not in its list too. Raise the session limit if Asterisk really gates this many calls at once, "+
				"or find out why sessions are slow (a slow store?)",
				LogPeer, peer.String(), "max_sessions", cap(s.sem), "overflow_sessions", cap(s.overflowSem), LogSuppressed, n)
		}
		conn.Close()
		return
	}
	wg.sessions.Add(1)
	go func() {
		defer wg.sessions.Done()
		defer func() { <-s.overflowSem }()
		if !s.allowedUser(conn, peer) {
			conn.Close()
			return
		}
		s.serveOverflow(conn, peer)
	}()
}

// serveOverflow runs one overflow session (see overflow) and closes conn.
func (s *Server) serveOverflow(conn net.Conn, peer netip.Addr) {
	start := time.Now()
	lr := newLineReader(conn)
	defer func() {
		if v := recover(); v != nil {
			s.cfg.log.Error("panic in FastAGI overflow session; connection closed (the include fails the call closed)",
				LogPeer, peer.String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		conn.Close()
		lr.release()
	}()
	deadline := start.Add(min(s.cfg.sessionTimeout, s.cfg.envTimeout+overflowReplyTimeout))
	// The same checks as a session's: a forged request is refused here
	// too, not answered.
	ss, ok := s.open(conn, lr, peer, start, deadline)
	if !ok {
		return
	}
	if ss.req.Script != tollguard.ScriptOutbound {
		s.overflowRefused(ss)
		return
	}

	answered := time.Now()
	req := ss.req
	dialled, _ := req.arg(1)
	call := &tollguard.Call{Channel: req.Vars["agi_channel"], Dialled: strings.TrimSpace(dialled)}
	if ext, _ := req.arg(2); strings.TrimSpace(ext) != "" {
		call.Extension = strings.TrimSpace(ext)
	} else {
		call.Extension = extensionFromChannel(call.Channel)
	}
	// As outbound: an old include's flag, else the gate's numbering plans.
	flagged := queryFlag(req.Query, "emergency")
	d := errorDecision()
	if flagged || (call.Dialled != "" && s.Gate.Emergency(call.Extension, call.Dialled)) {
		d = tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonEmergency, MaxSec: -1}
	}
	s.cfg.metrics.Refused(RefusedOverflow)
	s.cfg.metrics.Decision(d.Verdict, d.Reason, time.Since(answered))
	err := s.send(ss, call, &d, flagged)
	if errors.Is(err, cyagi.ErrHangup) {
		err = nil // the caller hung up: nothing to say
	}
	attrs := []any{LogPeer, peer.String(), LogChannel, call.Channel, tollguard.LogExtension, call.Extension,
		tollguard.LogDest, call.Dialled, "max_sessions", cap(s.sem)}
	if err != nil {
		attrs = append(attrs, tollguard.LogError, err.Error())
	}
	if d.Allowed() {
		if ok, n := s.overflowEmergencyLog.allow(time.Now()); ok {
			s.cfg.log.Warn("too many sessions in flight: emergency number allowed without asking the gate, and not recorded. "+
				"Find out why sessions are slow (a slow store?), or raise the session limit",
				append(attrs, LogSuppressed, n)...)
		}
		return
	}
	if ok, n := s.overflowLog.allow(time.Now()); ok {
		s.cfg.log.Warn("too many sessions in flight: call answered without asking the gate, denied with reason error (cause 34), "+
			"and not recorded. Find out why sessions are slow (a slow store?), or raise the session limit if Asterisk "+
			"really gates this many calls at once",
			append(attrs, tollguard.LogReason, string(d.Reason), LogSuppressed, n)...)
	}
}

// overflowRefused closes a settle or record request that came when all
// session slots were taken: those need the store, which may be what
// holds the slots.
func (s *Server) overflowRefused(ss *session) {
	s.cfg.metrics.Refused(RefusedBusy)
	ok, n := s.overflowRefusedLog.allow(time.Now())
	if !ok {
		return
	}
	what := "request closed unserved"
	switch ss.req.Script {
	case tollguard.ScriptHangup:
		what = "hangup request closed unserved, nothing settled: the ARI listener or the sweep settles the call " +
			"at its time since the decision, or its full reservation"
	case tollguard.ScriptEmergency:
		what = "emergency call not recorded (the call itself went through)"
	}
	s.cfg.log.Warn("too many sessions in flight: FastAGI "+what+
		". Find out why sessions are slow (a slow store?), or raise the session limit",
		LogPeer, ss.peer.String(), LogScript, ss.req.Script, "max_sessions", cap(s.sem), LogSuppressed, n)
}
