package agi

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

// forged refuses a request whose arguments differ from the copies in its
// URL (request.checkArgs): a caller's field with a line break wrote part
// of the env block. Nothing in it can be trusted past the caller ID, and
// what follows on the connection is the rest of Asterisk's env block,
// not replies. A call is hung up, so that no earlier verdict on the
// channel lets it through; the include would fail it closed anyway. An
// emergency number (by the URL's copy, which is Asterisk's) is left to
// the include, which dials those whatever tollguard says.
func (s *Server) forged(ss *session, err error) {
	s.refuse(ss, err, RefusedForged, "forged_request", "FastAGI request forged: its arguments differ from the copies in the request URL, "+
		"so a caller ID, caller name or redirecting number on this channel holds a line break "+
		"(a phone's From, or a Diversion from either end of the call). ",
		". Find who sent it by the channel: block the extension if it is its phone (tollguard ext block); "+
			"if the error names func_rand, load that Asterisk module")
}

// refuse ends a request whose arguments cannot be trusted (see forged),
// counting it as refused (a Refused* reason) and logging why and what
// to do with reason (a log reason).
func (s *Server) refuse(ss *session, err error, refused, reason, why, todo string) {
	s.cfg.metrics.Refused(refused)
	req := ss.req
	num, ext := rawQueryValue(req.Query, "a1"), rawQueryValue(req.Query, "a2")
	// The URL's copy is the include's own number: Asterisk sends the URL
	// before any caller field, so a forger cannot change it.
	flagged := queryFlag(req.Query, "emergency")
	trusted := num != "" || flagged
	if num == "" {
		// No copies: the argument, trusted only to spare an emergency call.
		num, _ = req.arg(1)
	}
	emergency := req.Script == tollguard.ScriptOutbound && (flagged || s.emergencyRead(ext, num))
	hangup := req.Script == tollguard.ScriptOutbound && !emergency
	// An emergency number the include did not know by itself waits for
	// a verdict; without one the include hangs it up. Allowed only on
	// the trusted copy: the include dials its own number, so a forged
	// "112" must not buy a premium call an allow.
	allow := emergency && trusted
	var cmd string
	switch {
	case hangup:
		cmd = "EXEC Hangup 21\n"
	case allow:
		cmd = "EXEC MSet " + tollguard.VarVerdict + "=allow," + tollguard.VarReason + "=" + string(tollguard.ReasonEmergency) + "\n"
	}
	if cmd != "" {
		// Asterisk runs commands in order, whatever we have read.
		ss.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, werr := io.WriteString(ss.conn, cmd); werr != nil {
			hangup, allow = false, false
		}
	}
	if ok, n := s.forgedLog.allow(time.Now()); ok {
		what := "nothing settled or recorded; the ARI listener or the sweep settles the call"
		if req.Script == tollguard.ScriptOutbound {
			what = "call hung up"
			switch {
			case allow:
				what = "emergency number allowed"
			case !hangup:
				what = "call left to the include"
			}
		}
		ss.log().Error(why+what+todo,
			LogScript, req.Script, tollguard.LogExtension, ext, tollguard.LogDest, num,
			tollguard.LogReason, reason, tollguard.LogError, err.Error(), LogSuppressed, n)
	}
}

// unchecked warns, once an hour, of requests whose arguments the include
// did not copy into the request URL, so that checkArgs cannot tell a
// forged one.
func (s *Server) unchecked(ss *session) {
	if ok, n := s.uncheckedLog.allow(time.Now()); ok {
		ss.log().Warn("FastAGI request without a copy of its arguments in the URL: a caller ID with a line break could "+
			"forge them. Install the current include (tollguard dialplan > /etc/asterisk/tollguard.conf; dialplan reload)",
			LogScript, ss.req.Script, LogSuppressed, n)
	}
}

// rawQueryValue returns key's value in query, undecoded ("+" stays "+").
func rawQueryValue(query, key string) string {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// emergencyRead judges an emergency number for a refused request. The
// store is there to ask: whoever forged the request can send one at
// will, so the extension's account decides, as the gate's step 1 does,
// not the loose answer meant for when the store is down.
func (s *Server) emergencyRead(ext, num string) bool {
	er, ok := s.Gate.(tollguard.EmergencyReader)
	if !ok {
		return s.Gate.Emergency(ext, num)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.decisionTimeout)
	defer cancel()
	return er.EmergencyRead(ctx, ext, num)
}
