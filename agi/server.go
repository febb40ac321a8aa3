// Package agi serves the tollguard call gate over FastAGI.
//
// Asterisk's dialplan include (package dialplan) asks it two things: the
// "outbound" script decides a call before it is dialled, and the
// "hangup" script settles it afterwards. The protocol work sits on
// github.com/CyCoreSystems/agi, with the server owning the listener,
// the deadlines and the reading of replies (see pitfalls.md).
package agi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollguard/tollguard"
)

// Defaults for the Server's zero fields.
const (
	DefaultMaxSessions     = 512
	DefaultSessionTimeout  = 5 * time.Second
	DefaultEnvTimeout      = time.Second
	DefaultDecisionTimeout = 300 * time.Millisecond
)

// DenyAction is what the gate does with a denied channel.
type DenyAction string

const (
	// DenyHangup hangs the channel up with the decision's cause
	// (EXEC Hangup <cause>), after setting the reply variables.
	DenyHangup DenyAction = "hangup"
	// DenyReturn only sets the reply variables and lets the dialplan
	// act on them, e.g. to play an announcement before hanging up.
	DenyReturn DenyAction = "return"
)

// Log keys the agi package adds to tollguard's Log* keys.
const (
	LogPeer       = "peer"     // the FastAGI client (Asterisk) address
	LogChannel    = "channel"  // agi_channel
	LogUniqueID   = "uniqueid" // agi_uniqueid
	LogScript     = "script"   // agi_network_script
	LogCause      = "cause"
	LogMaxSec     = "maxsec"
	LogBillsec    = tollguard.LogBillsec
	LogDialStatus = tollguard.LogDialStatus
	LogChanged    = "changed"
	LogTook       = "took"
	LogSuppressed = "suppressed" // log lines held back by rate limiting
)

// Server is the FastAGI server of the call gate. Set its fields before
// the first Serve and leave them alone after; zero fields get defaults.
// Serve may run on several listeners at once (IPv4 and IPv6).
type Server struct {
	Gate   tollguard.Gate
	Logger *slog.Logger // default slog.Default()

	// Allowed lists the networks FastAGI clients may connect from;
	// others are closed at once. Default: 127.0.0.1/32 and ::1/128.
	Allowed []netip.Prefix
	// ClientUIDs, if set, are the users a client on this host must run
	// as (Asterisk's): every local process connects from 127.0.0.1 or
	// the host's own addresses, and one posing as Asterisk could settle
	// calls at zero seconds. PeerUID finds the owner of the client's
	// socket, or reports that no socket on this host is the client's: a
	// client on another host (or in a container), checked by Allowed
	// alone. A loopback client must be found; one PeerUID cannot place
	// is refused.
	ClientUIDs []uint32
	PeerUID    func(net.Conn) (uid uint32, local bool, err error)
	// MaxSessions caps concurrent sessions. A connection beyond it is
	// answered by a small overflow pool that never asks the gate
	// (overflow.go): an emergency number is allowed, any other call
	// denied with reason error and cause 34; a settle request is closed
	// unserved. Past the overflow pool too, a connection is closed at
	// once (the include then fails the call closed).
	MaxSessions int
	// SessionTimeout bounds a whole session, from accept to close.
	SessionTimeout time.Duration
	// EnvTimeout bounds reading the env block, which Asterisk sends
	// as soon as it connects.
	EnvTimeout time.Duration
	// DecisionTimeout bounds Gate.Decide. Past it the call is denied
	// with reason error and cause 34, or allowed if it is an emergency
	// number.
	DecisionTimeout time.Duration
	// DenyAction is DenyHangup (default) or DenyReturn.
	DenyAction DenyAction
	// RequireArgCopies refuses requests without the URL's copies of
	// their arguments (request.checkArgs), as forged ones are: only the
	// current include's requests are served. Off, they are served with
	// an hourly warning, so that an upgrade of tollguard before its
	// include does not fail every call.
	RequireArgCopies bool
	// Metrics receives measurements; default NopMetrics.
	Metrics Metrics
	// Now is the clock for settlement times; default time.Now.
	Now func() time.Time

	once        sync.Once
	initErr     error
	cfg         config
	sem         chan struct{}
	overflowSem chan struct{} // overflowSessions slots for connections past MaxSessions
	noMSet      atomic.Bool   // a client answered EXEC MSet with "application not found" (logged once)

	refusedLog, busyLog, malformedLog, acceptLog, forgedLog, uncheckedLog logLimiter
	overflowLog, overflowEmergencyLog, overflowRefusedLog                 logLimiter
	// failedLog: a store that fails fails every call; one line per call
	// flooded journald, which then drops all of tollguard's lines.
	failedLog logLimiter
}

// config holds the Server's fields with defaults applied.
type config struct {
	log             *slog.Logger
	allowed         []netip.Prefix
	sessionTimeout  time.Duration
	envTimeout      time.Duration
	decisionTimeout time.Duration
	denyAction      DenyAction
	metrics         Metrics
	now             func() time.Time
}

func (s *Server) init() {
	c := config{
		log:             s.Logger,
		allowed:         s.Allowed,
		sessionTimeout:  s.SessionTimeout,
		envTimeout:      s.EnvTimeout,
		decisionTimeout: s.DecisionTimeout,
		denyAction:      s.DenyAction,
		metrics:         s.Metrics,
		now:             s.Now,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.allowed == nil {
		c.allowed = []netip.Prefix{
			netip.MustParsePrefix("127.0.0.1/32"),
			netip.MustParsePrefix("::1/128"),
		}
	}
	for i, p := range c.allowed {
		if !p.IsValid() {
			s.initErr = fmt.Errorf("agi: allowed network #%d is not a valid prefix", i+1)
			return
		}
	}
	if c.sessionTimeout <= 0 {
		c.sessionTimeout = DefaultSessionTimeout
	}
	if c.envTimeout <= 0 {
		c.envTimeout = DefaultEnvTimeout
	}
	if c.decisionTimeout <= 0 {
		c.decisionTimeout = DefaultDecisionTimeout
	}
	switch c.denyAction {
	case "":
		c.denyAction = DenyHangup
	case DenyHangup, DenyReturn:
	default:
		s.initErr = fmt.Errorf("agi: deny action %q: want %q or %q", c.denyAction, DenyHangup, DenyReturn)
		return
	}
	if c.metrics == nil {
		c.metrics = NopMetrics{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if s.Gate == nil {
		s.initErr = errors.New("agi: Server.Gate is nil")
		return
	}
	if len(s.ClientUIDs) > 0 && s.PeerUID == nil {
		s.initErr = errors.New("agi: Server.ClientUIDs needs PeerUID to find a client's user")
		return
	}
	n := s.MaxSessions
	if n <= 0 {
		n = DefaultMaxSessions
	}
	s.sem = make(chan struct{}, n)
	s.overflowSem = make(chan struct{}, overflowSessions)
	for _, l := range []*logLimiter{&s.refusedLog, &s.busyLog, &s.malformedLog, &s.acceptLog, &s.forgedLog,
		&s.overflowLog, &s.overflowEmergencyLog, &s.overflowRefusedLog, &s.failedLog} {
		l.every = 10 * time.Second
	}
	s.uncheckedLog.every = time.Hour
	s.cfg = c
}

// Serve accepts FastAGI connections on ln until ctx ends, then closes
// ln, waits for the sessions in flight (each bounded by SessionTimeout)
// and returns nil. It returns an error if the server is misconfigured
// or ln fails for good; ln is closed in every case.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.once.Do(s.init)
	if s.initErr != nil {
		ln.Close()
		return s.initErr
	}
	// Sessions end by SessionTimeout; a Decide that ignores its
	// deadline may not, so shutdown waits for those only so long.
	var wg serveGroups
	defer wg.wait(s.cfg.log, s.cfg.sessionTimeout+s.cfg.decisionTimeout)
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	// Sessions outlive ctx: a call being decided at shutdown still gets
	// its answer. They keep ctx's values.
	base := context.WithoutCancel(ctx)
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("agi: listener %s closed: %w", ln.Addr(), err)
			}
			// Out of file descriptors and the like: back off, as
			// net/http does, rather than spin or give up.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if ok, n := s.acceptLog.allow(time.Now()); ok {
				s.cfg.log.Warn("FastAGI accept failed; retrying", tollguard.LogError, err, "retry_in", delay, LogSuppressed, n)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		delay = 0
		s.accept(base, conn, &wg)
	}
}

// accept screens a new connection and starts its session.
func (s *Server) accept(ctx context.Context, conn net.Conn, wg *serveGroups) {
	peer, ok := peerAddr(conn.RemoteAddr())
	if !ok || !s.allowedPeer(peer) {
		// Report before closing: whoever sees the close may look.
		s.cfg.metrics.Refused(RefusedNotAllowed)
		if ok, n := s.refusedLog.allow(time.Now()); ok {
			s.cfg.log.Warn("FastAGI connection refused: the peer is not in the allowed networks. "+
				"If this is your Asterisk, add its address to the gate's allowed networks; otherwise firewall the FastAGI port",
				append(peerAttrs(conn), "allowed", fmt.Sprint(s.cfg.allowed), LogSuppressed, n)...)
		}
		conn.Close()
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.overflow(conn, peer, wg)
		return
	}
	wg.sessions.Add(1)
	go func() {
		defer wg.sessions.Done()
		defer func() { <-s.sem }()
		if !s.allowedUser(conn, peer) {
			conn.Close()
			return
		}
		s.serveConn(ctx, conn, peer)
	}()
}

// peerAttrs logs a connection's peer as every line does (the address
// alone, under peer), with its port apart: the port finds a local
// process (ss -tnp).
func peerAttrs(conn net.Conn) []any {
	ip, ok := peerAddr(conn.RemoteAddr())
	if !ok {
		return []any{LogPeer, conn.RemoteAddr().String()}
	}
	attrs := []any{LogPeer, ip.String()}
	if t, tcp := conn.RemoteAddr().(*net.TCPAddr); tcp {
		attrs = append(attrs, "peer_port", t.Port)
	}
	return attrs
}

// allowedUser checks the owner of a client on this host against
// ClientUIDs, in the session's goroutine: the lookups are netlink round
// trips, which the accept loop must not wait on.
func (s *Server) allowedUser(conn net.Conn, peer netip.Addr) bool {
	if len(s.ClientUIDs) == 0 {
		return true
	}
	uid, local, err := s.PeerUID(conn)
	switch {
	case err == nil && !local && !peer.IsLoopback():
		return true // another host's Asterisk
	case err == nil && !local:
		err = errors.New("no socket on this host is the loopback client's")
	case err == nil && slices.Contains(s.ClientUIDs, uid):
		return true
	}
	s.cfg.metrics.Refused(RefusedNotAllowed)
	if ok, n := s.refusedLog.allow(time.Now()); ok {
		if err != nil {
			s.cfg.log.Error("FastAGI connection refused: cannot tell which local user connected, so it may not be Asterisk. "+
				"Allow AF_NETLINK in the unit's RestrictAddressFamilies, or empty [agi] allowed_users",
				append(peerAttrs(conn), tollguard.LogError, err.Error(), LogSuppressed, n)...)
		} else {
			s.cfg.log.Warn("FastAGI connection refused: a local process that is not Asterisk's user connected to the gate. "+
				"If Asterisk runs as another user, add it to [agi] allowed_users; otherwise find that process",
				append(peerAttrs(conn), "uid", uid, "allowed_uids", fmt.Sprint(s.ClientUIDs), LogSuppressed, n)...)
		}
	}
	return false
}

func peerAddr(a net.Addr) (netip.Addr, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(t.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func (s *Server) allowedPeer(ip netip.Addr) bool {
	for _, p := range s.cfg.allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// serveConn runs one FastAGI session and closes conn.
func (s *Server) serveConn(ctx context.Context, conn net.Conn, peer netip.Addr) {
	start := time.Now()
	lr := newLineReader(conn)
	s.cfg.metrics.SessionStart()
	defer func() {
		if v := recover(); v != nil {
			s.cfg.log.Error("panic in FastAGI session; connection closed (the include fails the call closed)",
				LogPeer, peer.String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		conn.Close()
		lr.release()
		s.cfg.metrics.SessionEnd()
	}()

	ss, ok := s.open(conn, lr, peer, start, start.Add(s.cfg.sessionTimeout))
	if !ok {
		return
	}
	switch ss.req.Script {
	case tollguard.ScriptOutbound:
		s.outbound(ctx, ss)
	case tollguard.ScriptHangup:
		s.hangup(ctx, ss)
	case tollguard.ScriptEmergency:
		s.emergency(ctx, ss)
	default:
		s.unknownScript(ss)
	}
}

// open reads the env block under the env deadline and screens the
// request: forged arguments, missing copies (request.checkArgs). ok is
// false when the request was refused; the caller closes conn. Past the
// env block, deadline bounds the session.
func (s *Server) open(conn net.Conn, lr *lineReader, peer netip.Addr, start, deadline time.Time) (ss *session, ok bool) {
	envDeadline := start.Add(s.cfg.envTimeout)
	if envDeadline.After(deadline) {
		envDeadline = deadline
	}
	conn.SetDeadline(envDeadline) // nothing is written before the env block is in
	a, req, err := readEnv(lr, conn)
	if junk := (*junkEnvError)(nil); errors.As(err, &junk) {
		conn.SetDeadline(deadline)
		s.forged(&session{srv: s, a: a, lr: lr, conn: conn, req: req, peer: peer, start: start, deadline: deadline}, err)
		return nil, false
	}
	if err != nil {
		s.cfg.metrics.Refused(RefusedMalformed)
		if ok, n := s.malformedLog.allow(time.Now()); ok {
			s.cfg.log.Warn("malformed FastAGI request; connection closed. Only Asterisk's AGI() should connect to this port",
				LogPeer, peer.String(), tollguard.LogError, err, LogSuppressed, n)
		}
		return nil, false
	}
	conn.SetDeadline(deadline)

	ss = &session{
		srv:      s,
		a:        a,
		lr:       lr,
		conn:     conn,
		req:      req,
		peer:     peer,
		start:    start,
		deadline: deadline,
	}
	switch checked, err := req.checkArgs(); {
	case err != nil:
		s.forged(ss, err)
		return nil, false
	case checked:
		req.dropNonce()
	case s.RequireArgCopies && req.Script != "":
		s.refuse(ss, errors.New("no a1=... in the request URL"), RefusedUnchecked, "unchecked_request",
			"FastAGI request refused: it has no copies of its arguments in its URL, and [agi] require_arg_copies is on. ",
			". Install the current include (tollguard dialplan > /etc/asterisk/tollguard.conf; dialplan reload), or use its AGI() lines")
		return nil, false
	case req.Script != "":
		s.unchecked(ss)
	}
	return ss, true
}

// serveGroups tracks the sessions of one Serve call.
type serveGroups struct {
	sessions sync.WaitGroup
}

// wait waits for the sessions. Each ends by its deadline unless it is
// stuck in a Gate.Decide that ignores its context; those are waited for
// only up to grace.
func (g *serveGroups) wait(log *slog.Logger, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		g.sessions.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Error("shutting down with sessions stuck in Gate.Decide past their deadline " +
			"(their calls were answered already); an allow they return late stays reserved until the sweep settles it")
	}
}

// recoverPanic logs a panic on a goroutine that serves ss besides its
// own, and closes the connection: the include fails the call closed.
func (s *Server) recoverPanic(ss *session, where string) {
	if v := recover(); v != nil {
		s.cfg.log.Error("panic in "+where+"; connection closed (the include fails the call closed)",
			LogPeer, ss.peer.String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		ss.conn.Close()
	}
}
