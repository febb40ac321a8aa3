// Package agitest is a fake Asterisk for testing FastAGI servers: it
// connects like res_agi, sends an env block built from real recordings
// (testdata/fastagi-sessions.raw.jsonl), and answers each command the
// way Asterisk 22 answered it in those recordings. It also has a load
// generator and a bare FastAGI server for benchmarks (load.go), and a
// fake tollguard.Gate (gate.go).
package agitest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Channel is a fake Asterisk channel that runs
// AGI(agi://host/<script>,<args>). Build one with PJSIP or Local, adjust
// its fields, then Run or Start it against a server.
type Channel struct {
	// Env is the env block sent on connect.
	Env Env
	// Vars answers GET VARIABLE and GET FULL VARIABLE: channel
	// variables and dialplan function values by name
	// ("CHANNEL(pjsip,remote_addr)"). Absent means unset.
	Vars map[string]string

	// NoMSet makes EXEC MSet answer "200 result=-2", as an Asterisk
	// without the MSet application would.
	NoMSet bool
	// HangupDuring makes the caller hang up while the server's n-th
	// command (1-based) runs: "HANGUP\n" follows the reply, and an
	// interrupted EXEC Wait answers "200 result=-1" first (recorded
	// session D).
	HangupDuring int
	// HangupDelay is how long after a reply the "HANGUP\n" line comes
	// (a HangupDuring hangup, HANGUP, EXEC Hangup). Asterisk sends it on
	// its own, about 45 ms later in the recordings (sessions B and D);
	// zero sends it in a second write at once, and HangupCoalesced in
	// the reply's own write, so a server meets all three.
	HangupDelay     time.Duration
	HangupCoalesced bool
	// HangupAtStart makes the caller hang up right after the env block
	// is sent, before the server's first command (recorded session C).
	HangupAtStart bool
	// Dead runs the AGI on a channel that had hung up before AGI()
	// started: a hangup handler, where the include makes its hangup and
	// emergency requests. res_agi (agi_exec) then runs the whole session
	// in dead mode and never reads the channel, so no "HANGUP" line comes
	// and AGISTATUS stays SUCCESS. Commands res_agi does not allow on a
	// dead channel (ANSWER, STREAM FILE, HANGUP) answer 511, as after a
	// hangup in sessions B-D.
	Dead bool
	// Chunk, if positive, splits every write into pieces of this many
	// bytes, ChunkDelay apart, so that the server sees split reads.
	Chunk      int
	ChunkDelay time.Duration // default 2ms when Chunk > 0

	// RawEnv, if not nil, is sent instead of Env (malformed requests).
	RawEnv []byte
	// CloseWrite shuts the sending side after the env block, so the
	// server reads EOF (an env block cut short).
	CloseWrite bool
	// Silent sends nothing at all: a peer that connects and stalls.
	Silent bool
}

// PJSIP returns the allowed PJSIP call of recorded session A (endpoint
// 1001 calling from 127.0.0.1:5072), dialling dialled.
func PJSIP(dialled string) *Channel {
	ch := &Channel{
		Env: mustRecordedEnv(SessionAllowed),
		// Values as Asterisk answered them in session A.
		Vars: map[string]string{
			"CHANNEL(pjsip,remote_addr)":    "127.0.0.1:5072",
			"CHANNEL(pjsip,local_addr)":     "127.0.0.1:5060",
			"CHANNEL(pjsip,call-id)":        "1-17461@127.0.0.1",
			"CHANNEL(endpoint)":             "1001",
			"CHANNEL(peerip)":               "", // chan_sip only: empty on PJSIP
			"PJSIP_HEADER(read,User-Agent)": "TollgateFixture-SIPp/3.6.1 (pbx-test; not-a-real-phone)",
			"PJSIP_HEADER(read,Contact)":    "<sip:1001@127.0.0.1:5072;transport=udp>",
			"CALLERID(num)":                 "1001",
		},
	}
	ch.SetDialled(dialled)
	return ch
}

// Local returns the Local channel of recorded session G (originated over
// ARI: no PJSIP peer, every pjsip lookup unset), dialling dialled.
func Local(dialled string) *Channel {
	ch := &Channel{
		Env: mustRecordedEnv(SessionLocal),
		Vars: map[string]string{
			"CHANNEL(peerip)": "",
			"CALLERID(num)":   "9999",
		},
	}
	ch.SetDialled(dialled)
	return ch
}

// SetDialled sets the dialled number as the recorded dialplan passed it:
// the extension, the DNID (PJSIP only) and agi_arg_1.
func (ch *Channel) SetDialled(dialled string) {
	ch.Env.Set("agi_extension", dialled)
	if v, _ := ch.Env.Get("agi_dnid"); v != "unknown" {
		ch.Env.Set("agi_dnid", dialled)
	}
	args := ch.Args()
	if len(args) == 0 {
		args = []string{dialled}
	} else {
		args[0] = dialled
	}
	if script, _ := ch.Env.Get("agi_network_script"); strings.Contains(script, "?a1=") {
		base, _, _ := strings.Cut(script, "?")
		ch.SetIncludeArgs(base, args[:len(args)-1]...) // keep the URL's copy in step, with a new nonce
		return
	}
	ch.SetArgs(args...)
}

// Args returns the agi_arg_N values in order.
func (ch *Channel) Args() []string {
	var args []string
	for i := 1; ; i++ {
		v, ok := ch.Env.Get(fmt.Sprintf("agi_arg_%d", i))
		if !ok {
			return args
		}
		args = append(args, v)
	}
}

// SetArgs replaces the AGI() arguments (agi_arg_1, ...), which Asterisk
// sends last.
func (ch *Channel) SetArgs(args ...string) {
	out := ch.Env[:0]
	for _, kv := range ch.Env {
		if !strings.HasPrefix(kv.Key, "agi_arg_") {
			out = append(out, kv)
		}
	}
	ch.Env = out
	for i, a := range args {
		ch.Env = append(ch.Env, EnvVar{fmt.Sprintf("agi_arg_%d", i+1), a})
	}
}

// SetIncludeArgs sets the script and its arguments as the tollguard
// include calls it: AGI(agi://127.0.0.1:4573/<script>?a1=<arg 1>&a2=...,
// <arg 1>,...,<nonce>), with a random last argument. The URL's copies
// come before the caller ID in the env block, and the server refuses a
// request whose two copies differ.
func (ch *Channel) SetIncludeArgs(script string, args ...string) {
	args = append(slices.Clip(args), strconv.FormatUint(rand.Uint64()>>2, 10))
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("a%d=%s", i+1, a)
	}
	if len(q) > 0 {
		script += "?" + strings.Join(q, "&")
	}
	ch.SetScript(script)
	ch.SetArgs(args...)
}

// SetScript sets the requested script (agi://127.0.0.1:4573/<script>).
func (ch *Channel) SetScript(script string) {
	ch.Env.Set("agi_network_script", script)
	ch.Env.Set("agi_request", "agi://127.0.0.1:4573/"+script)
}

// SetChannel sets the channel name and type ("SIP/1001-00000003").
func (ch *Channel) SetChannel(name string) {
	ch.Env.Set("agi_channel", name)
	tech, _, _ := strings.Cut(name, "/")
	ch.Env.Set("agi_type", tech)
}

// SetAccountCode sets agi_accountcode.
func (ch *Channel) SetAccountCode(code string) { ch.Env.Set("agi_accountcode", code) }

// Result is what a fake channel saw of one session.
type Result struct {
	Commands []string          // every command line the server sent, in order
	Set      map[string]string // variables the server set (SET VARIABLE, MSet, EXEC Set)
	Verbose  []string          // VERBOSE messages
	// HangupCause is the argument of EXEC Hangup; Hangup is true once
	// the server hung the channel up that way or with HANGUP.
	HangupCause string
	Hangup      bool
	// HungUp is true if the channel hung up during the session, by
	// the caller or by the server (never for a Dead channel).
	HungUp bool
	// AGIStatus is the AGISTATUS res_agi would set: SUCCESS, FAILURE
	// (the server sent a "failure" line) or HANGUP.
	AGIStatus string
	// Elapsed runs from connect to the server's close.
	Elapsed time.Duration
}

// Var returns a variable the server set.
func (r *Result) Var(name string) (string, bool) {
	v, ok := r.Set[name]
	return v, ok
}

// Verdict etc. return the gate's reply variables ("" if unset).
func (r *Result) Verdict() string { return r.Set["TOLLGUARD_VERDICT"] }
func (r *Result) Reason() string  { return r.Set["TOLLGUARD_REASON"] }
func (r *Result) Cause() string   { return r.Set["TOLLGUARD_CAUSE"] }
func (r *Result) MaxSec() string  { return r.Set["TOLLGUARD_MAXSEC"] }
func (r *Result) CallID() string  { return r.Set["TOLLGUARD_CALLID"] }
func (r *Result) Timeout() string { return r.Set["TIMEOUT(absolute)"] }

// Conn is a running fake channel.
type Conn struct {
	ch    *Channel
	conn  net.Conn
	start time.Time
	done  chan struct{}

	mu   sync.Mutex // guards st and writes to conn
	st   *state
	res  *Result
	err  error
	lean bool
}

// Run connects to addr, plays the session to its end (the server
// closing the connection) and returns what happened. ctx bounds it.
func (ch *Channel) Run(ctx context.Context, addr string) (*Result, error) {
	c, err := ch.Start(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx)
}

// Start connects to addr and plays the session in the background.
func (ch *Channel) Start(ctx context.Context, addr string) (*Conn, error) {
	env := ch.RawEnv
	if env == nil {
		env = ch.Env.Bytes()
	}
	return ch.start(ctx, addr, env, false)
}

var dialer net.Dialer

func (ch *Channel) start(ctx context.Context, addr string, env []byte, lean bool) (*Conn, error) {
	start := time.Now()
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{ch: ch, conn: conn, start: start, done: make(chan struct{}), lean: lean}
	c.st = newState(ch, lean)
	// The env block goes out before Start returns, so that a Hangup
	// called next lands after it.
	var werr error
	if !ch.Silent {
		werr = c.write(env)
		if werr == nil && ch.HangupAtStart && !c.st.dead {
			c.st.dead = true
			werr = c.write([]byte(asyncHangup))
		}
		if werr == nil && ch.CloseWrite {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				werr = cw.CloseWrite()
			}
		}
	}
	go c.loop(werr)
	return c, nil
}

// Hangup makes the caller hang up now: Asterisk sends its asynchronous
// "HANGUP" line (once). It returns when the line has been written.
func (c *Conn) Hangup() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.dead {
		return nil
	}
	c.st.dead = true
	return c.write([]byte("HANGUP\n"))
}

// Close drops the connection, as Asterisk does when the channel goes
// away with AGIEXITONHANGUP.
func (c *Conn) Close() error { return c.conn.Close() }

// Done is closed when the session has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Wait waits for the session's end and returns its result. If ctx ends
// first, the connection is closed and ctx's error returned.
func (c *Conn) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		c.conn.Close()
		<-c.done
		return nil, fmt.Errorf("server did not close the session: %w", ctx.Err())
	}
	return c.res, c.err
}

// write sends b, split as the channel asks. Callers hold c.mu.
func (c *Conn) write(b []byte) error {
	if c.ch.Chunk <= 0 {
		_, err := c.conn.Write(b)
		return err
	}
	delay := c.ch.ChunkDelay
	if delay <= 0 {
		delay = 2 * time.Millisecond
	}
	for len(b) > 0 {
		n := min(c.ch.Chunk, len(b))
		if _, err := c.conn.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if len(b) > 0 {
			time.Sleep(delay) // a slow sender, not synchronisation
		}
	}
	return nil
}

// maxCommand is the longest command line res_agi reads at once: fgets
// into its 2048-byte buffer (AGI_BUF_LEN) takes 2047 bytes, newline
// included, and runs what follows as the next command.
const maxCommand = 2047

func (c *Conn) loop(err error) {
	defer close(c.done)
	defer c.conn.Close()
	br := bufio.NewReaderSize(c.conn, 2048)
	for stop := false; err == nil && !stop; {
		var line string
		line, err = br.ReadString('\n')
		for err == nil && !stop && line != "" {
			n := min(len(line), maxCommand)
			stop, err = c.serve(strings.TrimRight(line[:n], "\r\n"))
			line = line[n:]
		}
	}
	if closedByPeer(err) {
		err = nil // the server closed the session: the normal end
	}
	c.mu.Lock()
	c.res = c.st.result()
	c.res.Elapsed = time.Since(c.start)
	c.err = err
	c.mu.Unlock()
}

// serve answers one command, and reports whether Asterisk would stop
// reading.
func (c *Conn) serve(cmd string) (stop bool, err error) {
	c.mu.Lock()
	out, stop := c.st.handle(cmd)
	var hangup []byte
	if bytes.HasSuffix(out, []byte(asyncHangup)) && len(out) > len(asyncHangup) && !c.st.ch.HangupCoalesced {
		out, hangup = out[:len(out)-len(asyncHangup)], out[len(out)-len(asyncHangup):]
	}
	if len(out) > 0 {
		if werr := c.write(out); werr != nil && !closedByPeer(werr) {
			err = werr
		}
	}
	c.mu.Unlock()
	if hangup != nil && err == nil {
		if d := c.st.ch.HangupDelay; d > 0 {
			time.Sleep(d)
		}
		c.mu.Lock()
		if werr := c.write(hangup); werr != nil && !closedByPeer(werr) {
			err = werr
		}
		c.mu.Unlock()
	}
	return stop, err
}

// closedByPeer reports whether err is the server closing the connection
// (an RST counts: a server that closes with unread input sends one).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// state is res_agi's view of one session: the channel's variables, its
// liveness, and what the server did.
type state struct {
	ch      *Channel
	lean    bool // skip the per-command log (load generation)
	set     map[string]string
	dead    bool
	failure bool
	n       int // commands handled
	res     Result
}

func newState(ch *Channel, lean bool) *state {
	return &state{ch: ch, lean: lean, dead: ch.Dead}
}

func (st *state) lookup(name string) (string, bool) {
	if v, ok := st.set[name]; ok {
		return v, true
	}
	v, ok := st.ch.Vars[name]
	return v, ok
}

func (st *state) setVar(name, value string) {
	if st.set == nil {
		st.set = make(map[string]string, 8)
	}
	st.set[name] = value
}

func (st *state) result() *Result {
	r := st.res
	r.Set = st.set
	if !st.lean {
		r.Set = maps.Clone(st.set)
	}
	if r.Set == nil {
		r.Set = map[string]string{}
	}
	// A Dead channel hung up before the session: res_agi never saw it go.
	r.HungUp = st.dead && !st.ch.Dead
	switch {
	case st.failure:
		r.AGIStatus = "FAILURE"
	case r.HungUp:
		r.AGIStatus = "HANGUP"
	default:
		r.AGIStatus = "SUCCESS"
	}
	return &r
}

// Reply lines, as recorded (fastagi-session*.txt).
const (
	replyInvalid = "510 Invalid or unknown command\n"
	replyDead    = "511 Command Not Permitted on a dead channel or intercept routine\n"
	asyncHangup  = "HANGUP\n"
)

// usage is the text of a 520 reply. Only SET VARIABLE's was recorded
// (session A); the others are the commands' documented synopses.
var usage = map[string]string{
	"SET VARIABLE":      "Sets a variable to the current channel.",
	"GET VARIABLE":      "Gets a channel variable.",
	"GET FULL VARIABLE": "Evaluates a channel expression",
	"VERBOSE":           "Logs a message to the asterisk verbose log.",
	"EXEC":              "Executes a given Application",
	"STREAM FILE":       "Sends audio file on channel.",
}

func usageReply(cmd string) string {
	return "520-Invalid command syntax.  Proper usage follows:\n" + usage[cmd] + "\n520 End of proper usage.\n"
}

// commands res_agi knows, longest first so that "GET FULL VARIABLE"
// wins over a shorter match.
var commandNames = []string{
	"GET FULL VARIABLE", "GET VARIABLE", "SET VARIABLE", "STREAM FILE",
	"VERBOSE", "EXEC", "HANGUP", "ANSWER", "NOOP",
}

var commandWords = func() [][]string {
	out := make([][]string, len(commandNames))
	for i, name := range commandNames {
		out[i] = strings.Fields(name)
	}
	return out
}()

// handle answers one command line and reports whether Asterisk would
// stop reading (a "failure" line).
func (st *state) handle(line string) (out []byte, stop bool) {
	st.n++
	if !st.lean {
		st.res.Commands = append(st.res.Commands, line)
	}
	// res_agi checks this before parsing: a line starting with
	// "failure" ends the AGI with AGISTATUS=FAILURE.
	if len(line) >= 7 && strings.EqualFold(line[:7], "failure") {
		st.failure = true
		return nil, true
	}
	hangupNow := st.ch.HangupDuring > 0 && st.n == st.ch.HangupDuring && !st.dead
	reply := st.execute(ParseArgs(line), hangupNow)
	if hangupNow && !st.dead {
		st.dead = true
		reply += asyncHangup
	}
	return []byte(reply), false
}

func (st *state) execute(argv []string, hangupNow bool) string {
	name := matchCommand(argv)
	switch name {
	case "GET VARIABLE":
		if len(argv) != 3 {
			return usageReply(name)
		}
		if v, ok := st.lookup(argv[2]); ok {
			return "200 result=1 (" + v + ")\n"
		}
		return "200 result=0\n"
	case "GET FULL VARIABLE":
		if len(argv) != 4 && len(argv) != 5 {
			return usageReply(name)
		}
		return "200 result=1 (" + st.substitute(argv[3]) + ")\n"
	case "SET VARIABLE":
		if len(argv) != 4 {
			return usageReply(name)
		}
		st.setVar(argv[2], argv[3])
		return "200 result=1\n"
	case "VERBOSE":
		if len(argv) < 2 {
			return usageReply(name)
		}
		if !st.lean {
			st.res.Verbose = append(st.res.Verbose, argv[1])
		}
		return "200 result=1\n"
	case "EXEC":
		if len(argv) < 2 {
			return usageReply(name)
		}
		data := ""
		if len(argv) >= 3 {
			data = argv[2]
		}
		return st.exec(argv[1], data, hangupNow)
	case "HANGUP":
		// Not one of res_agi's dead-channel commands.
		if st.dead {
			return replyDead
		}
		st.res.Hangup = true
		st.dead = true
		return "200 result=1\n" + asyncHangup
	case "ANSWER":
		if st.dead {
			return replyDead
		}
		return "200 result=0\n"
	case "STREAM FILE":
		if st.dead {
			return replyDead
		}
		if len(argv) < 4 {
			return usageReply(name)
		}
		return "200 result=0 endpos=0\n"
	case "NOOP":
		return "200 result=0\n"
	}
	return replyInvalid
}

// exec runs a dialplan application for EXEC. EXEC Hangup and EXEC MSet
// were not recorded: their replies are inferred from Asterisk's source
// (res_agi's handle_exec answers "200 result=<app's return>"; Hangup
// returns -1 and the channel then sends its HANGUP line, like the
// interrupted Wait of session D; MSet returns 0). An unknown
// application gives -2.
func (st *state) exec(app, data string, hangupNow bool) string {
	switch strings.ToLower(app) {
	case "wait":
		if hangupNow {
			return "200 result=-1\n" // interrupted, as in session D
		}
		return "200 result=0\n"
	case "hangup":
		st.res.Hangup = true
		st.res.HangupCause = data
		if st.dead {
			return "200 result=-1\n"
		}
		st.dead = true
		return "200 result=-1\n" + asyncHangup
	case "mset":
		if st.ch.NoMSet {
			return "200 result=-2\n"
		}
		for _, pair := range splitAppArgs(data, ',') {
			if k, v, ok := strings.Cut(pair, "="); ok && k != "" {
				st.setVar(k, v)
			}
		}
		return "200 result=0\n"
	case "set":
		if k, v, ok := strings.Cut(data, "="); ok && k != "" {
			st.setVar(k, v)
		}
		return "200 result=0\n"
	case "noop":
		return "200 result=0\n"
	}
	return "200 result=-2\n"
}

func matchCommand(argv []string) string {
	for i, name := range commandNames {
		words := commandWords[i]
		if len(argv) < len(words) {
			continue
		}
		match := true
		for i, w := range words {
			if !strings.EqualFold(argv[i], w) {
				match = false
				break
			}
		}
		if match {
			return name
		}
	}
	return ""
}

// substitute expands ${NAME} references the way GET FULL VARIABLE
// does; unset names expand to "".
func (st *state) substitute(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		depth, j := 0, i+2
		for ; j < len(s); j++ {
			if s[j] == '{' {
				depth++
			} else if s[j] == '}' {
				if depth == 0 {
					break
				}
				depth--
			}
		}
		if j >= len(s) {
			b.WriteString(s[i:])
			return b.String()
		}
		v, _ := st.lookup(st.substitute(s[i+2 : j]))
		b.WriteString(v)
		s = s[j+1:]
	}
}

// ParseArgs splits an AGI command line as res_agi's parse_args does:
// words separated by spaces or tabs, double quotes group words and are
// removed, a backslash makes the next character literal.
func ParseArgs(line string) []string {
	var argv []string
	var cur strings.Builder
	quoted, escaped, inWord := false, false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"' && !escaped:
			quoted = !quoted
			if quoted && !inWord {
				inWord = true
			}
		case (c == ' ' || c == '\t') && !quoted && !escaped:
			if inWord {
				argv = append(argv, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\' && !escaped:
			escaped = true
			continue
		default:
			inWord = true
			cur.WriteByte(c)
		}
		escaped = false
	}
	if inWord {
		argv = append(argv, cur.String())
	}
	return argv
}

// splitAppArgs splits application data on sep outside parentheses and
// quotes, as Asterisk's standard application argument parser does.
func splitAppArgs(s string, sep byte) []string {
	var out []string
	depth, quote, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quote = !quote
		case c == '(' && !quote:
			depth++
		case c == ')' && !quote && depth > 0:
			depth--
		case c == sep && depth == 0 && !quote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
