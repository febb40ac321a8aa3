package agi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	cyagi "github.com/CyCoreSystems/agi"

	"github.com/tollguard/tollguard"
)

// request is a parsed FastAGI request: the agi_* environment block that
// Asterisk sends first.
type request struct {
	Vars   map[string]string // agi_* keys, as the agi library parsed them
	Script string            // agi_network_script without "?query" or leading "/"
	Query  string            // what followed "?" in agi_network_script
	nonce  int               // the argument checkArgs found to be the include's random number
}

// arg returns agi_arg_n and whether Asterisk sent it at all. A present
// but empty argument is the dialplan saying "I looked and found
// nothing", so callers must not ask again.
func (r *request) arg(n int) (string, bool) {
	key := ""
	if n < len(argKeys) {
		key = argKeys[n]
	} else {
		key = "agi_arg_" + strconv.Itoa(n)
	}
	v, ok := r.Vars[key]
	return v, ok
}

var argKeys = [...]string{"agi_arg_0", "agi_arg_1", "agi_arg_2", "agi_arg_3", "agi_arg_4"}

// readEnv reads the env block through the agi library and checks that it
// was whole and well formed. The library itself stops silently at EOF,
// a deadline or a junk line, so the checks are made here from what the
// lineReader saw.
func readEnv(lr *lineReader, w io.Writer) (*cyagi.AGI, *request, error) {
	lr.capped, lr.envLeft = true, maxEnv
	a := cyagi.New(lr, w)
	lr.capped = false
	if !lr.blank || lr.lines == 0 {
		switch {
		case errors.Is(lr.err, errEnvTooLarge):
			return nil, nil, fmt.Errorf("env block is over %d bytes (%d lines read); Asterisk's is about 1 KiB", maxEnv, lr.lines)
		case errors.Is(lr.err, os.ErrDeadlineExceeded):
			return nil, nil, fmt.Errorf("no complete env block before the deadline (%d lines read)", lr.lines)
		case errors.Is(lr.err, errLineTooLong):
			return nil, nil, fmt.Errorf("line %d is longer than %d bytes", lr.lines+1, maxLine)
		case errors.Is(lr.err, io.EOF):
			return nil, nil, fmt.Errorf("connection closed before the env block ended (%d lines read)", lr.lines)
		case lr.err != nil:
			return nil, nil, fmt.Errorf("reading env block: %w", lr.err)
		default:
			// The scanner gave up on its own (e.g. a token over its limit).
			return nil, nil, fmt.Errorf("env block not terminated by an empty line (%d lines read)", lr.lines)
		}
	}
	req, err := checkEnv(a.Variables, lr.lines-1)
	if err != nil {
		// A caller field with a line break (Asterisk writes them raw)
		// adds lines that are no agi_* pair. The request URL comes
		// before them: when exactly one line is it, it is Asterisk's,
		// and the request is refused on it (forged), not dropped.
		if lr.env != nil {
			if script, ok := envScript(*lr.env); ok && printable(script) && rawQueryValue(queryOf(script), "a1") != "" {
				req := &request{Vars: a.Variables}
				req.Script, req.Query, _ = strings.Cut(strings.TrimLeft(script, "/"), "?")
				return a, req, &junkEnvError{err}
			}
		}
		return nil, nil, err
	}
	return a, req, nil
}

// junkEnvError is an env block that is whole but holds lines that are
// no agi_* pair; readEnv returns its request too.
type junkEnvError struct{ err error }

func (e *junkEnvError) Error() string { return e.err.Error() }
func (e *junkEnvError) Unwrap() error { return e.err }

func queryOf(script string) string {
	_, q, _ := strings.Cut(script, "?")
	return q
}

// envScript returns agi_network_script from a raw env block, read as the
// agi library reads each line (the text before the first ":", trimmed,
// is the key), and whether exactly one line gives it: a second one,
// from a caller field, may have replaced Asterisk's.
func envScript(raw []byte) (string, bool) {
	n, script := 0, ""
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "agi_network_script" {
			n++
			script = strings.TrimSpace(v)
		}
	}
	return script, n == 1
}

// checkEnv validates the parsed variables of an env block of n lines
// (without the closing empty line) and extracts the script name.
func checkEnv(vars map[string]string, n int) (*request, error) {
	if len(vars) != n {
		return nil, fmt.Errorf("env block has %d lines but %d distinct agi_key: value pairs", n, len(vars))
	}
	for k, v := range vars {
		if !validKey(k) {
			return nil, fmt.Errorf("env key %.40q is not an agi_* name", k)
		}
		if !acceptable(k, v) {
			return nil, fmt.Errorf("env value of %s holds control characters", k)
		}
	}
	script, ok := vars["agi_network_script"]
	if !ok {
		// Not FastAGI as Asterisk sends it; fall back to the request URL.
		u, ok := vars["agi_request"]
		if !ok {
			return nil, errors.New("env block has neither agi_network_script nor agi_request")
		}
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
			if j := strings.IndexByte(u, '/'); j >= 0 {
				script = u[j+1:]
			} else {
				script = ""
			}
		}
	}
	req := &request{Vars: vars}
	req.Script, req.Query, _ = strings.Cut(strings.TrimLeft(script, "/"), "?")
	return req, nil
}

// checkArgs compares the AGI() arguments with the copies the include
// puts in the script's query ("outbound?a1=...&a2=..."). Asterisk writes
// the query (agi_network_script, agi_request) before the caller's
// fields and the arguments after them, and it writes the caller ID, the
// caller name and the dialled and redirecting numbers raw. A phone whose
// From or Diversion header carries an encoded line break (%0A) can end
// the env block early and write agi_arg_N of its own: another number to
// decide, or another call id to settle at 0 seconds. Those come before
// the caller's fields, so they can't be forged.
//
// The include's last argument is a random number: a forger who copies
// the arguments it can know (its number, endpoint and address) still
// cannot end its copy with that one. So the last copy must be digits; an
// empty one (func_rand not loaded) would let a copy through. Copies are
// compared trimmed, as the agi library trims the env's values. An
// argument the include left empty may be missing altogether. A request
// without a1 in its query (an older include, or a hand-written AGI()
// line) is not checked: checked is false. A checked request's nonce is
// r.nonce, the number of its argument.
func (r *request) checkArgs() (checked bool, err error) {
	// On every call: no map and no split (argNumber caps N at 99).
	var buf [8]argCopy
	copies := buf[:0]
	for rest := r.Query; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		// Raw, not url.ParseQuery: a number's "+" must stay a "+".
		k, v, _ := strings.Cut(kv, "=")
		n, ok := argNumber(k, "a")
		if !ok {
			continue
		}
		if hasCopy(copies, n) {
			return true, fmt.Errorf("the request URL gives a%d twice", n)
		}
		if got, _ := r.arg(n); got != strings.TrimSpace(v) {
			return true, fmt.Errorf("agi_arg_%d is %.40q but the request URL says %.40q", n, got, v)
		}
		copies = append(copies, argCopy{n, v})
	}
	if len(copies) == 0 {
		return false, nil
	}
	last := slices.MaxFunc(copies, func(a, b argCopy) int { return a.n - b.n })
	if nonce := strings.TrimSpace(last.v); len(nonce) < 2 || !isDigits(nonce) {
		return true, fmt.Errorf("the last argument, a%d=%.40q, is not the include's random number: is Asterisk's func_rand module loaded (module show like func_rand)?", last.n, last.v)
	}
	for k := range r.Vars {
		if n, ok := argNumber(k, "agi_arg_"); ok && !hasCopy(copies, n) {
			return true, fmt.Errorf("agi_arg_%d is not in the request URL", n)
		}
	}
	r.nonce = last.n
	return true, nil
}

// argCopy is the request URL's copy aN=v of argument n.
type argCopy struct {
	n int
	v string
}

func hasCopy(copies []argCopy, n int) bool {
	return slices.ContainsFunc(copies, func(c argCopy) bool { return c.n == n })
}

// dropNonce removes the last argument of a checked request: the random
// number the include adds so that forged arguments cannot match the
// URL's copies. The scripts never see it.
func (r *request) dropNonce() {
	if r.nonce > 0 {
		delete(r.Vars, "agi_arg_"+strconv.Itoa(r.nonce))
	}
}

// argNumber parses prefix followed by a number from 1 to 99.
func argNumber(k, prefix string) (int, bool) {
	d, ok := strings.CutPrefix(k, prefix)
	if !ok || d == "" || len(d) > 2 || d[0] == '0' || !isDigits(d) {
		return 0, false
	}
	n, _ := strconv.Atoi(d)
	return n, true
}

func validKey(k string) bool {
	if !strings.HasPrefix(k, "agi_") || len(k) > 64 {
		return false
	}
	for i := 4; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// acceptable reports whether an env value may pass. What tollguard reads
// (the script, the arguments, the channel, account and context) must be
// printable. The rest is the caller's phone talking: Asterisk writes the
// caller ID name raw, and a TAB in a display name must not fail every
// call from that phone closed. Those need only be free of NUL.
func acceptable(k, v string) bool {
	switch k {
	case "agi_network_script", "agi_request", "agi_channel", "agi_uniqueid", "agi_accountcode", "agi_context":
		return printable(v)
	}
	if strings.HasPrefix(k, "agi_arg_") {
		return printable(v)
	}
	return !strings.ContainsRune(v, 0)
}

// printable reports whether s has no control characters. Invalid UTF-8
// is let through: a caller name in Latin-1 must not block a call.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// channelTech returns the technology of a channel name ("PJSIP" for
// "PJSIP/1001-0000002a").
func channelTech(channel string) string {
	tech, _, ok := strings.Cut(channel, "/")
	if !ok {
		return ""
	}
	return tech
}

// extensionFromChannel returns the endpoint behind a PJSIP, SIP or IAX2
// channel name: "PJSIP/1001-0000002a" gives "1001". Endpoint names may
// hold dashes, so the suffix is cut at the last one. Other technologies
// (Local, DAHDI, ...) have no endpoint and give "".
func extensionFromChannel(channel string) string {
	tech, rest, ok := strings.Cut(channel, "/")
	if !ok {
		return ""
	}
	switch strings.ToUpper(tech) {
	case "PJSIP", "SIP", "IAX2":
	default:
		return ""
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return ""
	}
	return rest[:i]
}

// remoteVariable is the channel function that gives the caller's source
// address for a technology, "" where there is none.
func remoteVariable(tech string) string {
	switch strings.ToUpper(tech) {
	case "PJSIP":
		return "CHANNEL(pjsip,remote_addr)"
	case "SIP", "IAX2":
		return "CHANNEL(peerip)"
	}
	return ""
}

// parseRemote turns what Asterisk reports as a source address
// ("127.0.0.1:5072", "[2001:db8::1]:5060", "10.0.0.7", "::1") into a
// bare IP. Anything else gives "".
func parseRemote(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return tollguard.SourceAddress(ap.Addr())
	}
	if host, port, err := net.SplitHostPort(s); err == nil && isDigits(port) {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil {
		return tollguard.SourceAddress(a)
	}
	return ""
}

// quote makes v one argument of an AGI command line, the way res_agi's
// parse_args reads it: wrapped in double quotes, with backslash and
// double quote escaped. Line breaks and other control characters would
// end or corrupt the command line, so they become spaces.
func quote(v string) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// msetSafe reports whether v can go into an MSet argument unquoted: no
// separators (",", "="), quotes, escapes, parentheses or spaces.
func msetSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '+') {
			return false
		}
	}
	return true
}
