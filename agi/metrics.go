package agi

import (
	"sync"
	"time"

	"github.com/tollguard/tollguard"
)

// Metrics receives the server's measurements. The daemon adapts it to
// Prometheus; the server calls it inline, so implementations must be
// cheap and safe for concurrent use. Embed NopMetrics to implement only
// part of it.
type Metrics interface {
	// SessionStart and SessionEnd bracket every accepted session, so
	// their difference is the number of sessions in flight (at most
	// Server.MaxSessions; the overflow past it is counted by Refused).
	SessionStart()
	SessionEnd()
	// Decision reports one gate answer as sent to Asterisk (fallbacks
	// included) and the time spent deciding it (Gate.Decide, bounded by
	// DecisionTimeout).
	Decision(v tollguard.Verdict, r tollguard.Reason, took time.Duration)
	// Recorded reports an emergency call the emergency script recorded
	// after it ended: a gate answer like Decision's, but no caller waited
	// for it, so it has no place in the decision latency.
	Recorded(v tollguard.Verdict, r tollguard.Reason)
	// Settled reports a settle request the server made: by is
	// "agi", "emergency", "hangup_in_gate" or "deadline"; changed is
	// Gate.Settle's answer. SettleFailed reports one that failed (the
	// store, an unknown call id).
	Settled(by string, changed bool)
	SettleFailed(by string)
	// Refused reports a connection closed without serving it, or (with
	// RefusedOverflow) answered without asking the gate, one of the
	// Refused* reasons.
	Refused(reason string)
}

// Reasons passed to Metrics.Refused.
const (
	RefusedNotAllowed = "not_allowed" // the peer is outside Server.Allowed
	RefusedBusy       = "busy"        // MaxSessions reached: the overflow pool full too, or a hangup or emergency (record) request
	RefusedOverflow   = "overflow"    // MaxSessions reached: an outbound request answered without the gate (emergency allowed, else deny error, cause 34)
	RefusedMalformed  = "malformed"   // the env block was broken or incomplete
	RefusedForged     = "forged"      // the arguments differ from the copies in the request URL
	RefusedUnchecked  = "unchecked"   // no copies in the URL, with Server.RequireArgCopies
)

// RefusedReasons and SettledBy are the values Refused and Settled take,
// for metrics that show each at zero.
var (
	RefusedReasons = []string{RefusedNotAllowed, RefusedBusy, RefusedOverflow, RefusedMalformed, RefusedForged, RefusedUnchecked}
	SettledBy      = []string{ByAGI, ByEmergency, ByHangupInGate, ByDeadline}
)

// countSettle reports a settle request's outcome.
func (s *Server) countSettle(by string, changed bool, err error) {
	if err != nil {
		s.cfg.metrics.SettleFailed(by)
		return
	}
	s.cfg.metrics.Settled(by, changed)
}

// NopMetrics discards every measurement.
type NopMetrics struct{}

func (NopMetrics) SessionStart()                                               {}
func (NopMetrics) SessionEnd()                                                 {}
func (NopMetrics) Decision(tollguard.Verdict, tollguard.Reason, time.Duration) {}
func (NopMetrics) Recorded(tollguard.Verdict, tollguard.Reason)                {}
func (NopMetrics) Settled(string, bool)                                        {}
func (NopMetrics) SettleFailed(string)                                         {}
func (NopMetrics) Refused(string)                                              {}

var _ Metrics = NopMetrics{}

// logLimiter lets one log line through per interval and counts the
// ones it held back, so that a port scan cannot flood the log.
type logLimiter struct {
	every time.Duration

	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether to log now, and how many lines were suppressed
// since the last one that was logged.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(l.every)
	n := l.suppressed
	l.suppressed = 0
	return true, n
}
