package agi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	cyagi "github.com/CyCoreSystems/agi"
)

// session is one FastAGI connection after its env block.
type session struct {
	srv             *Server
	a               *cyagi.AGI
	lr              *lineReader
	conn            net.Conn
	req             *request
	peer            netip.Addr
	start, deadline time.Time

	err    error // set once nothing more may be sent: a hangup, a broken or desynchronised connection
	hungup bool  // Asterisk sent its asynchronous HANGUP line
	sent   int   // commands sent
	logger *slog.Logger
}

// log returns the session's logger, carrying the channel's identity.
func (ss *session) log() *slog.Logger {
	if ss.logger == nil {
		ss.logger = ss.srv.cfg.log.With(
			LogPeer, ss.peer.String(),
			LogChannel, ss.req.Vars["agi_channel"],
			LogUniqueID, ss.req.Vars["agi_uniqueid"],
		)
	}
	return ss.logger
}

// reply is a 200 reply to a command.
type reply struct {
	Result int    // "result=N"
	Value  string // the text in parentheses (or after the result), "" if none
}

// statusError is a reply with a status other than 200: 510 (unknown
// command), 511 (not allowed on a dead channel), 520 (usage). The
// session stays usable.
type statusError struct {
	Status int
	Line   string
}

func (e *statusError) Error() string { return fmt.Sprintf("asterisk answered %.120q", e.Line) }

// command sends one command line and reads its reply. Only one command
// is ever in flight: res_agi reads commands with fgets on a stdio
// stream after poll, so a second pipelined line can sit unseen in its
// buffer.
//
// A hangup (cyagi.ErrHangup) or a broken connection is final: command
// returns the same error for every later call without sending.
func (ss *session) command(cmd string) (reply, error) {
	if ss.err != nil {
		return reply{}, ss.err
	}
	ss.sent++
	lines := ss.lr.lines
	r := ss.a.Command(cmd)
	if r.Error == nil {
		if ss.lr.lines != lines+1 {
			// The scanner hands over a line cut short by EOF or a
			// deadline as if it were whole: don't act on it.
			ss.err = connError(ss.lr.err)
			if ss.err == nil {
				ss.err = errors.New("reply cut short")
			}
			return reply{}, ss.err
		}
		return reply{Result: r.Result, Value: r.Value}, nil
	}
	if errors.Is(r.Error, cyagi.ErrHangup) {
		ss.hungup = true
		ss.err = cyagi.ErrHangup
		return reply{}, ss.err
	}
	if ss.lr.err != nil {
		ss.err = connError(ss.lr.err)
		return reply{}, ss.err
	}
	// The library only parses "NNN result=..." lines; other statuses
	// reach us as its parse error, with the raw line in it.
	if raw, ok := strings.CutPrefix(r.Error.Error(), "failed to parse result: "); ok {
		return ss.statusReply(raw)
	}
	if r.Status >= 100 && r.Status <= 599 && r.Status != 200 {
		return reply{}, &statusError{Status: r.Status, Line: strconv.Itoa(r.Status) + " result=" + r.ResultString}
	}
	// A write error, or a 200 line with a result that is not a number:
	// either way the conversation can't go on.
	ss.err = fmt.Errorf("command %.40q: %w", cmd, r.Error)
	return reply{}, ss.err
}

// statusReply handles a reply line the library could not parse.
func (ss *session) statusReply(raw string) (reply, error) {
	if len(raw) < 4 || !isDigits(raw[:3]) || raw[0] < '1' || raw[0] > '5' || (raw[3] != ' ' && raw[3] != '-') {
		ss.err = fmt.Errorf("unparseable reply %.80q; the conversation is out of step", raw)
		return reply{}, ss.err
	}
	status, _ := strconv.Atoi(raw[:3])
	if raw[3] == '-' {
		// A multi-line reply ("520-Invalid command syntax...") ends
		// with a "520 " line. Skip to it so the next reply lines up.
		for i := 0; ; i++ {
			line, err := ss.lr.readLine()
			if err != nil {
				ss.err = connError(err)
				return reply{}, ss.err
			}
			if strings.HasPrefix(line, raw[:3]+" ") {
				break
			}
			if i >= 100 {
				ss.err = fmt.Errorf("multi-line %s reply did not end within 100 lines", raw[:3])
				return reply{}, ss.err
			}
		}
	}
	return reply{}, &statusError{Status: status, Line: raw}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// connError says in an admin's words why the connection failed.
func connError(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("asterisk closed the connection: %w", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no reply from asterisk before the session deadline: %w", err)
	case errors.Is(err, errLineTooLong):
		return fmt.Errorf("asterisk sent a line over %d bytes: %w", maxLine, err)
	}
	return err
}

// get reads a channel variable or function. ok is false when it is
// unset ("200 result=0"), which is not the same as empty
// ("200 result=1 ()").
func (ss *session) get(name string) (value string, ok bool, err error) {
	r, err := ss.command("GET VARIABLE " + name)
	if err != nil {
		return "", false, err
	}
	if r.Result != 1 {
		return "", false, nil
	}
	return r.Value, true, nil
}

// verbose writes msg to Asterisk's console at level.
func (ss *session) verbose(msg string, level int) error {
	_, err := ss.command("VERBOSE " + quote(msg) + " " + strconv.Itoa(level))
	return err
}
