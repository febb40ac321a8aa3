package dialplan

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// prio is one priority of a parsed extension.
type prio struct {
	lineNo int
	label  string
	app    string
	args   string
	text   string
}

// parsed is the include as Asterisk's pbx_config would read it, for the
// subset of syntax it uses.
type parsed struct {
	contexts map[string]map[string][]prio // context -> extension -> priorities
	order    []string
}

func (p *parsed) label(ctx, ext, label string) (int, bool) {
	for i, pr := range p.contexts[ctx][ext] {
		if pr.label == label {
			return i, true
		}
	}
	return 0, false
}

// parse reads the include, failing the test on any line it does not
// understand.
func parse(t *testing.T, text string) *parsed {
	t.Helper()
	p, err := parseConf(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// parseConf reads text as Asterisk's config loader (main/config.c) and
// pbx_config would, for the subset of syntax the include uses, and
// returns an error for any line it does not understand.
func parseConf(text string) (*parsed, error) {
	p := &parsed{contexts: map[string]map[string][]prio{}}
	ctx, ext := "", ""
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		line := raw
		if j := strings.IndexByte(line, ';'); j >= 0 {
			if j > 0 && line[j-1] == '\\' {
				return nil, fmt.Errorf("line %d: escaped semicolons are not handled by this test", n)
			}
			// config.c:config_text_file_load: a first ";" that begins
			// ";--" opens a comment running over lines to "--;", and one
			// after "--" closes one even where none is open; either way
			// what follows is not read as this test reads it.
			if strings.HasPrefix(line[j:], ";--") && !strings.HasPrefix(line[j:], ";---") || strings.HasSuffix(line[:j], "--") {
				return nil, fmt.Errorf("line %d: \";--\" or \"--;\" is a block comment delimiter to Asterisk", n)
			}
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad context header %q", n, line)
			}
			ctx, ext = line[1:len(line)-1], ""
			if _, dup := p.contexts[ctx]; dup {
				return nil, fmt.Errorf("line %d: context %s defined twice", n, ctx)
			}
			p.contexts[ctx] = map[string][]prio{}
			p.order = append(p.order, ctx)
			continue
		}
		kind, rest, ok := strings.Cut(line, "=>")
		if !ok {
			return nil, fmt.Errorf("line %d: not exten/same: %q", n, line)
		}
		kind, rest = strings.TrimSpace(kind), strings.TrimSpace(rest)
		if ctx == "" {
			return nil, fmt.Errorf("line %d: outside any context", n)
		}
		var pr, app string
		switch kind {
		case "exten":
			parts := strings.SplitN(rest, ",", 3)
			if len(parts) != 3 {
				return nil, fmt.Errorf("line %d: exten needs extension,priority,application", n)
			}
			ext, pr, app = parts[0], parts[1], parts[2]
			if _, dup := p.contexts[ctx][ext]; dup {
				return nil, fmt.Errorf("line %d: extension %s restarted", n, ext)
			}
			if pr != "1" {
				return nil, fmt.Errorf("line %d: first priority %q, want 1", n, pr)
			}
		case "same":
			if ext == "" {
				return nil, fmt.Errorf("line %d: same => without an exten before it in [%s]", n, ctx)
			}
			parts := strings.SplitN(rest, ",", 2)
			if len(parts) != 2 {
				return nil, fmt.Errorf("line %d: same needs priority,application", n)
			}
			pr, app = parts[0], parts[1]
			if pr != "n" && !strings.HasPrefix(pr, "n(") {
				return nil, fmt.Errorf("line %d: priority %q, want n or n(label)", n, pr)
			}
		default:
			return nil, fmt.Errorf("line %d: unknown keyword %q", n, kind)
		}
		label := ""
		if i := strings.IndexByte(pr, '('); i >= 0 {
			if !strings.HasSuffix(pr, ")") {
				return nil, fmt.Errorf("line %d: bad label in %q", n, pr)
			}
			label = pr[i+1 : len(pr)-1]
			if _, dup := p.label(ctx, ext, label); dup {
				return nil, fmt.Errorf("line %d: label %s defined twice", n, label)
			}
		}
		open := strings.IndexByte(app, '(')
		if open < 0 || !strings.HasSuffix(app, ")") {
			return nil, fmt.Errorf("line %d: application without (arguments): %q", n, app)
		}
		if err := balanced(app); err != nil {
			return nil, fmt.Errorf("line %d: %v in %q", n, err, app)
		}
		p.contexts[ctx][ext] = append(p.contexts[ctx][ext], prio{
			lineNo: n, label: label, app: app[:open], args: app[open+1 : len(app)-1], text: line,
		})
	}
	return p, nil
}

// balanced checks (), [] and {} nesting.
func balanced(s string) error {
	var stack []byte
	pairs := map[byte]byte{')': '(', ']': '[', '}': '{'}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("unbalanced %q at %d", c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack)
	}
	return nil
}

var knownApps = []string{"NoOp", "Set", "MSet", "GotoIf", "Goto", "Gosub", "AGI", "Log", "Hangup", "Return"}

func TestIncludeSyntax(t *testing.T) {
	p := parse(t, Include)
	for _, ctx := range []string{ContextOutbound, ContextHangup, ContextEmergency, ContextCallee} {
		if _, ok := p.contexts[ctx]["s"]; !ok {
			t.Fatalf("context %s has no s extension", ctx)
		}
	}
	for _, ctx := range p.order {
		for ext, prios := range p.contexts[ctx] {
			for i, pr := range prios {
				where := fmt.Sprintf("[%s] line %d", ctx, pr.lineNo)
				if !slices.Contains(knownApps, pr.app) {
					t.Errorf("%s: application %s", where, pr.app)
				}
				// A line after an unconditional jump or end is reached
				// only through its label.
				if i > 0 && pr.label == "" {
					switch prev := prios[i-1]; prev.app {
					case "Goto", "Return", "Hangup":
						t.Errorf("%s: unreachable after %s (line %d)", where, prev.app, prev.lineNo)
					}
				}
				var targets []string
				switch pr.app {
				case "GotoIf":
					q := strings.LastIndexByte(pr.args, '?')
					if q < 0 {
						t.Errorf("%s: GotoIf without ?", where)
						continue
					}
					targets = strings.Split(pr.args[q+1:], ":")
				case "Goto":
					targets = []string{pr.args}
				case "Gosub":
					if !strings.Contains(pr.args, "${") {
						targets = []string{strings.SplitN(pr.args, "(", 2)[0]}
					}
				case "Set":
					if v, ok := strings.CutPrefix(pr.args, "CHANNEL(hangup_handler_push)="); ok {
						targets = []string{strings.SplitN(v, "(", 2)[0]}
					}
				}
				for _, target := range targets {
					parts := strings.Split(target, ",")
					switch len(parts) {
					case 1:
						if _, ok := p.label(ctx, ext, parts[0]); !ok {
							t.Errorf("%s: label %q does not exist", where, parts[0])
						}
					case 3:
						c, ok := p.contexts[parts[0]]
						if !ok || len(c[parts[1]]) == 0 || parts[2] != "1" {
							t.Errorf("%s: target %q does not exist", where, target)
						}
					default:
						t.Errorf("%s: target %q: use a label or context,exten,1", where, target)
					}
				}
				if strings.Contains(pr.text, "${IF(") {
					t.Errorf("%s: ${IF()} evaluates both branches; use GotoIf", where)
				}
				// MASTER_CHANNEL reads another channel, whose type the sim checks.
				if strings.Contains(strings.ReplaceAll(pr.text, "MASTER_CHANNEL(CHANNEL(pjsip,", ""), "CHANNEL(pjsip,") && pr.label != "pjsip" {
					t.Errorf("%s: CHANNEL(pjsip,...) outside the PJSIP-only branch", where)
				}
			}
			last := prios[len(prios)-1]
			if last.app != "Return" && last.app != "Hangup" && last.app != "Goto" {
				t.Errorf("[%s] %s: falls off its end after %s", ctx, ext, last.app)
			}
		}
	}
	// The hangup handler must end with Return(), the gate returns only
	// on an allow or for an emergency number.
	var returns []string
	prios := p.contexts[ContextOutbound]["s"]
	for i, pr := range prios {
		if pr.app == "Return" {
			at := pr.label
			if at == "" {
				at = prios[i-1].label
			}
			returns = append(returns, at)
		}
	}
	if !slices.Equal(returns, []string{"allowed", "emergency_dial"}) {
		t.Errorf("tollguard-outbound returns at %q, want only allowed and emergency_dial", returns)
	}
}

func TestIncludeNamesMatchConstants(t *testing.T) {
	allowed := []string{
		tollguard.VarVerdict, tollguard.VarReason, tollguard.VarCause, tollguard.VarMaxSec, tollguard.VarCallID,
		VarAGI, VarEmergency, VarDenyGosub, VarExtension, VarSource, VarSourceExtension, VarPhone, VarHandlerSet,
		VarEmergencyHandlerSet, VarEmergencyPending,
	}
	if VarEmergency != tollguard.EmergencyVar {
		t.Errorf("VarEmergency %s, but the coverage audit reads %s", VarEmergency, tollguard.EmergencyVar)
	}
	for _, name := range regexp.MustCompile(`TOLLGUARD_[A-Z_]+`).FindAllString(Include, -1) {
		if !slices.Contains(allowed, name) {
			t.Errorf("variable %s is neither a tollguard.Var* nor a dialplan.Var* constant", name)
		}
	}
	// The mark of a transfer by another phone, as the gate reads it.
	if !strings.Contains(Include, "Set(LOCAL(tg_src)="+tollguard.TransferSourcePrefix+"${tg_src})") {
		t.Errorf("the include does not mark a transfer's source with %q", tollguard.TransferSourcePrefix)
	}
	for _, name := range append(allowed, tollguard.VarAnsweredTime, tollguard.VarDialStatus) {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(Include) {
			t.Errorf("the include never uses %s", name)
		}
	}

	// Script names: AGI(${tg_agi}/<script>,...).
	p := parse(t, Include)
	seen := map[string]bool{}
	scripts := []string{tollguard.ScriptOutbound, tollguard.ScriptHangup, tollguard.ScriptEmergency}
	for _, ctx := range p.order {
		for _, pr := range slices.Concat(slices.Collect(maps.Values(p.contexts[ctx]))...) {
			if pr.app != "AGI" {
				continue
			}
			url := strings.SplitN(pr.args, ",", 2)[0]
			script, _, _ := strings.Cut(url[strings.LastIndexByte(url, '/')+1:], "?")
			if !slices.Contains(scripts, script) {
				t.Errorf("line %d: AGI script %q is not a tollguard.Script* constant", pr.lineNo, script)
			}
			seen[script] = true
			if !strings.HasPrefix(url, "${tg_agi}/") {
				t.Errorf("line %d: AGI URL %q does not use the configured server", pr.lineNo, url)
			}
		}
	}
	if len(seen) != len(scripts) {
		t.Errorf("scripts used: %v", seen)
	}
	if !strings.Contains(Include, "agi://127.0.0.1:4573") {
		t.Error("default FastAGI address missing")
	}
}

// sim is a tiny interpreter for the include, enough to run its flows:
// variables with LOCAL frames and __ inheritance, the functions and
// expressions it uses, and the applications in knownApps.
type sim struct {
	t        *testing.T
	p        *parsed
	tech     string            // CHANNEL(channeltype)
	channel  map[string]string // CHANNEL(...) items
	vars     map[string]string // channel variables
	globals  map[string]string
	frames   []map[string]string // LOCAL variables, innermost last
	args     [][]string
	callerEx string // the extension that called the Gosub (STACK_PEEK)
	master   *sim   // MASTER_CHANNEL: the channel the call began on; nil is this one
	others   []*sim // IMPORT: other channels, found by CHANNEL(name)

	agi      func(s *sim, url string, args []string) // sets the reply variables
	agiCalls [][]string
	rands    int             // RAND() draws so far
	nonces   map[string]bool // the AGI requests' random last arguments
	handlers []string
	logs     []string
	hangup   string // cause, "" if the channel was not hung up
	returned bool
}

// simEpoch is ${EPOCH} in the sim: when the calls it runs were placed.
const simEpoch = "1795392000"

func newSim(t *testing.T, tech string) *sim {
	s := &sim{t: t, p: parse(t, Include), tech: tech, vars: map[string]string{}, globals: map[string]string{"EPOCH": simEpoch},
		// CHANNEL(state): an incoming channel, and a Local ;2 half
		// (core_local.c local_request), are Ring until answered.
		channel: map[string]string{"name": tech + "/1001-0000002a", "state": "Ring"}}
	switch tech {
	case "PJSIP":
		s.channel["pjsip,remote_addr"] = "192.0.2.10:5060"
		s.channel["endpoint"] = "1001"
	case "Local":
		s.channel["name"] = "Local/0044207946000@from-internal-00000003;2"
	}
	return s
}

func (s *sim) get(name string) string {
	for i := len(s.frames) - 1; i >= 0; i-- {
		if v, ok := s.frames[i][name]; ok {
			return v
		}
	}
	if v, ok := s.vars[name]; ok {
		return v
	}
	return s.globals[name]
}

func (s *sim) set(name, value string) {
	if local, ok := strings.CutPrefix(name, "LOCAL("); ok {
		s.frames[len(s.frames)-1][strings.TrimSuffix(local, ")")] = value
		return
	}
	if name == "CHANNEL(hangup_handler_push)" {
		s.handlers = append(s.handlers, value)
		return
	}
	s.vars[strings.TrimLeft(name, "_")] = value
}

// subst expands ${...} and $[...] as pbx_variables.c does: the end of
// each is found in the template (counting braces, or square brackets),
// its inner ones are expanded first, and what an expansion inserts is
// never scanned again, but is parsed as the enclosing name, function or
// expression.
func (s *sim) subst(in string) string {
	var out strings.Builder
	for i := 0; i < len(in); {
		if in[i] != '$' || i+1 >= len(in) || (in[i+1] != '{' && in[i+1] != '[') {
			out.WriteByte(in[i])
			i++
			continue
		}
		open, close := in[i+1], byte('}')
		if open == '[' {
			close = ']'
		}
		depth, k := 1, i+2
		for ; k < len(in) && depth > 0; k++ {
			switch {
			case in[k] == '$' && k+1 < len(in) && in[k+1] == open:
				depth++
				k++
			case in[k] == open:
				depth++
			case in[k] == close:
				depth--
			}
		}
		if depth != 0 {
			s.t.Fatalf("unterminated expansion in %q", in)
		}
		inner := s.subst(in[i+2 : k-1])
		if close == ']' {
			out.WriteString(s.expr(inner))
		} else {
			out.WriteString(s.function(inner))
		}
		i = k
	}
	return out.String()
}

// function evaluates the text of a ${...} once its inner ${...} are
// substituted, as pbx_variables.c does: parse_variable_name first takes
// a ":" outside parentheses for ${name:offset:length}, whatever text put
// it there (a caller's digits included), then the name or function is
// read and cut to the substring.
func (s *sim) function(e string) string {
	name, offset, length, cut := parseVariableName(e)
	v := s.read(name)
	if cut {
		v = substring(v, offset, length)
	}
	return v
}

// parseVariableName is pbx_variables.c's: a ":" at parenthesis depth 0
// ends the name, and the offset and length follow ("%d:%d", each
// optional; what does not read as a number stops them).
func parseVariableName(e string) (name string, offset, length int, cut bool) {
	parens := 0
	for i := 0; i < len(e); i++ {
		switch e[i] {
		case '(':
			parens++
		case ')':
			parens--
		case ':':
			if parens != 0 {
				continue
			}
			offset, length = 0, math.MaxInt32 // INT_MAX
			rest := e[i+1:]
			n, rest := leadingInt(rest)
			if n != nil {
				offset = *n
				if strings.HasPrefix(rest, ":") {
					if m, _ := leadingInt(rest[1:]); m != nil {
						length = *m
					}
				}
			}
			return e[:i], offset, length, true
		}
	}
	return e, 0, 0, false
}

// substring is pbx_variables.c's substring() (for an application's
// arguments; ast_str_substring elsewhere does the same): a negative
// offset counts from the end, and from the start when it reaches past
// it; a negative length leaves that many off the end.
func substring(v string, offset, length int) string {
	if offset < 0 {
		offset = max(len(v)+offset, 0)
	}
	if offset >= len(v) {
		return ""
	}
	v = v[offset:]
	if length < 0 {
		return v[:max(len(v)+length, 0)]
	}
	return v[:min(length, len(v))]
}

// setExisting sets name where it lives (a LOCAL in its frame, else the
// channel), as a function that writes a variable by name does.
func (s *sim) setExisting(name, value string) {
	for i := len(s.frames) - 1; i >= 0; i-- {
		if _, ok := s.frames[i][name]; ok {
			s.frames[i][name] = value
			return
		}
	}
	s.vars[name] = value
}

func (s *sim) read(e string) string {
	name, args, ok := strings.Cut(e, "(")
	if !ok {
		return s.get(e)
	}
	// func_args: the arguments end at the last ")".
	if i := strings.LastIndexByte(args, ')'); i >= 0 {
		args = args[:i]
	}
	switch name {
	case "LEN":
		return strconv.Itoa(len(args))
	case "REGEX":
		// func_strings.c:regex: the arguments split at '"' as
		// AST_NONSTANDARD_APP_ARGS does (backslashes dropped, nothing
		// split inside () or []) into exactly three: nothing, the
		// expression, and the rest (one leading blank skipped). Any
		// other count, or an expression regcomp rejects, is an error,
		// and a function's error inserts nothing.
		parts := separateArgs(args, '"', true, 3)
		if len(parts) != 3 {
			return ""
		}
		str := parts[2]
		if strings.HasPrefix(str, " ") || strings.HasPrefix(str, "\t") {
			str = str[1:]
		}
		re, err := regexp.CompilePOSIX(parts[1]) // REG_EXTENDED
		if err != nil {
			return ""
		}
		if re.MatchString(str) {
			return "1"
		}
		return "0"
	case "REPLACE":
		// REPLACE(varname,find-chars[,replace-char]): reads the variable
		// by name; an empty replace-char deletes.
		a := strings.SplitN(args, ",", 3)
		if len(a) < 2 || a[1] == "" {
			s.t.Fatalf("REPLACE(%s)", args)
		}
		with := ""
		if len(a) == 3 {
			with = a[2]
		}
		var b strings.Builder
		for _, r := range s.get(a[0]) {
			switch {
			case !strings.ContainsRune(a[1], r):
				b.WriteRune(r)
			case with != "":
				b.WriteString(with[:1])
			}
		}
		return b.String()
	case "FIELDQTY":
		// FIELDQTY(varname,delim): reads the variable by name.
		v, delim, _ := strings.Cut(args, ",")
		if delim == "" || strings.HasPrefix(delim, `\`) {
			s.t.Fatalf("FIELDQTY(%s): give a plain delimiter (an escaped one loses its backslash to the argument parser)", args)
		}
		if val := s.get(v); val != "" {
			return strconv.Itoa(strings.Count(val, delim[:1]) + 1)
		}
		return "0"
	case "SHIFT":
		// SHIFT(varname[,delimiter]) is func_strings.c shift_pop: the
		// variable read by name, up to its first delimiter (a comma
		// unless one is given); the variable keeps the rest, or "" when
		// there is no delimiter. An empty variable is an error: nothing
		// inserted, nothing changed.
		a := separateArgs(args, ',', true, 2)
		if len(a) == 0 || a[0] == "" {
			s.t.Fatalf("SHIFT(%s): no variable name", args)
		}
		delim := ","
		if len(a) > 1 && a[1] != "" {
			if strings.HasPrefix(a[1], `\`) {
				s.t.Fatalf("SHIFT(%s): an escaped delimiter (ast_get_encoded_char) is not simulated", args)
			}
			delim = a[1][:1]
		}
		v := s.get(a[0])
		if v == "" {
			return ""
		}
		first, rest, _ := strings.Cut(v, delim)
		s.setExisting(a[0], rest)
		return first
	case "FILTER":
		allowed, str, _ := strings.Cut(args, ",")
		// Asterisk's FILTER takes single characters and a-b ranges.
		keep := func(c byte) bool {
			for i := 0; i < len(allowed); i++ {
				if i+2 < len(allowed) && allowed[i+1] == '-' {
					if allowed[i] <= c && c <= allowed[i+2] {
						return true
					}
					i += 2
				} else if allowed[i] == c {
					return true
				}
			}
			return false
		}
		var b strings.Builder
		for i := 0; i < len(str); i++ {
			if keep(str[i]) {
				b.WriteByte(str[i])
			}
		}
		return b.String()
	case "STACK_PEEK":
		return s.callerEx
	case "CHANNEL":
		if args == "channeltype" {
			return s.tech
		}
		if strings.HasPrefix(args, "pjsip,") && s.tech != "PJSIP" {
			s.t.Errorf("CHANNEL(%s) read on a %s channel", args, s.tech)
		}
		return s.channel[args]
	case "LOCAL":
		return s.get(args)
	case "MASTER_CHANNEL":
		// ${args} evaluated on the master channel, or on this one when
		// it is the master or the master is gone (func_channel.c).
		if s.master != nil {
			return s.master.subst("${" + args + "}")
		}
		return s.subst("${" + args + "}")
	case "IMPORT":
		// IMPORT(channel,variable): the variable read on the channel of
		// that name, nothing when there is none (func_logic.c
		// import_helper). The include reads plain variables only.
		// import_helper substitutes "${<variable>}" on that channel:
		// anything but a plain name there (a function, or text after a
		// second comma) is evaluated on it, under its lock.
		name, v, _ := strings.Cut(args, ",")
		if !regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(v) {
			s.t.Errorf("IMPORT(%s): reads more than a plain variable on another channel", args)
		}
		for _, o := range s.others {
			if o.channel["name"] == name {
				return o.get(v)
			}
		}
		return ""
	case "RAND":
		if args != "0,2147483646" {
			s.t.Errorf("RAND(%s): want the whole positive range", args)
		}
		s.rands++
		return fmt.Sprintf("%d", 1000000+s.rands) // fresh each time, as Asterisk's
	}
	s.t.Fatalf("function %s not simulated", name)
	return ""
}

// expr evaluates a $[...] as ast_expr2 does, for the operators the
// include uses (exprLex, exprEval).
func (s *sim) expr(e string) string {
	toks, err := exprLex(e)
	if err != nil {
		s.t.Fatalf("expression %q: %v", e, err)
	}
	return exprEval(toks)
}

// gosubAt runs ctx's exten with args until Return or Hangup. As
// app_stack does, the new frame blanks the ARGn of the frame it nests
// in beyond its own. Only gosubData calls it: a frame is built from a
// Gosub's text as gosub_exec builds it, never from arguments a test
// chose (one empty argument for 1(), a frame Asterisk never makes).
func (s *sim) gosubAt(ctx, exten string, args ...string) {
	frame := map[string]string{}
	if len(s.frames) > 0 {
		for name := range s.frames[len(s.frames)-1] {
			if strings.HasPrefix(name, "ARG") {
				frame[name] = ""
			}
		}
	}
	for i, a := range args {
		frame[fmt.Sprintf("ARG%d", i+1)] = a
	}
	frame["ARGC"] = strconv.Itoa(len(args))
	s.frames = append(s.frames, frame)
	defer func() { s.frames = s.frames[:len(s.frames)-1] }()
	prios := s.p.contexts[ctx][exten]
	if len(prios) == 0 {
		s.t.Fatalf("no extension %s in [%s]", exten, ctx)
	}
	for pc, steps := 0, 0; pc < len(prios); steps++ {
		if steps > 1000 {
			s.t.Fatal("loop")
		}
		pr := prios[pc]
		pc++
		jump := func(label string) {
			i, ok := s.p.label(ctx, exten, label)
			if !ok {
				s.t.Fatalf("no label %s", label)
			}
			pc = i
		}
		switch pr.app {
		case "NoOp":
		case "Log":
			s.logs = append(s.logs, s.subst(pr.args))
		case "Set":
			name, value, _ := strings.Cut(pr.args, "=")
			s.set(s.subst(name), s.subst(value))
		case "MSet":
			// main/pbx_variables.c:pbx_builtin_setvar_multiple (Asterisk
			// 22; 24 was an old pbx_builtins.c's): split after
			// substitution into at most 99 pairs, then each at its
			// first "="; a pair without one is skipped.
			for _, kv := range separateArgs(s.subst(pr.args), ',', true, maxMSetPairs) {
				if pair := separateArgs(kv, '=', true, 2); len(pair) == 2 {
					s.set(pair[0], pair[1])
				}
			}
		case "GotoIf":
			// pbx_builtins.c:pbx_builtin_gotoif: the arguments once
			// substituted, split at their first "?" and then ":".
			cond, branches, _ := strings.Cut(s.subst(pr.args), "?")
			yes, no, _ := strings.Cut(branches, ":")
			if branch := map[bool]string{true: yes, false: no}[checkCondition(cond)]; branch != "" {
				jump(branch)
			}
		case "Goto":
			jump(pr.args)
		case "Gosub":
			s.gosubData(s.subst(pr.args))
		case "AGI":
			// res_agi.c:agi_exec_full: AST_STANDARD_APP_ARGS, up to
			// MAX_ARGS (128).
			args := separateArgs(s.subst(pr.args), ',', true, 128)
			args[0] = s.checkURLArgs(args[0], args[1:])
			args = s.checkNonce(args)
			s.agiCalls = append(s.agiCalls, args)
			if s.agi != nil {
				s.agi(s, args[0], args[1:])
			}
			if s.hangup != "" {
				return // the gate hung the channel up: the dialplan stops
			}
		case "Hangup":
			s.hangup = hangupCause(s.subst(pr.args))
			return
		case "Return":
			if len(s.frames) == 1 {
				s.returned = true
			}
			return
		default:
			s.t.Fatalf("application %s not simulated", pr.app)
		}
	}
	s.t.Fatalf("[%s] fell off its end", ctx)
}

// gosubData runs a Gosub's (or a hangup or pre-dial handler's)
// context,exten,priority(args), parsed as app_stack.c does (gosubArgs).
func (s *sim) gosubData(data string) {
	label, args := gosubArgs(data)
	parts := strings.Split(label, ",")
	if len(parts) != 3 || parts[2] != "1" {
		s.t.Fatalf("Gosub(%s): want context,exten,1", data)
	}
	s.gosubAt(parts[0], parts[1], args...)
}

// checkURLArgs checks that an AGI() line repeats its arguments in its
// URL, as a1=...&a2=..., exactly as tollguard's server compares them
// (agi.request.checkArgs), and returns the URL without them.
func (s *sim) checkURLArgs(url string, args []string) string {
	s.t.Helper()
	base, query, _ := strings.Cut(url, "?")
	var rest []string
	n := 0
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != fmt.Sprintf("a%d", n+1) {
			if kv != "" {
				rest = append(rest, kv)
			}
			continue
		}
		if n >= len(args) || v != args[n] {
			s.t.Errorf("AGI URL %s: a%d=%q, but the argument is %q", url, n+1, v, args[min(n, len(args)-1)])
		}
		n++
	}
	if n != len(args) {
		s.t.Errorf("AGI URL %s copies %d of its %d arguments", url, n, len(args))
	}
	if len(rest) > 0 {
		return base + "?" + strings.Join(rest, "&")
	}
	return base
}

// checkNonce checks that an AGI() line's last argument is a random
// number drawn for it alone (two RAND() draws, never one an earlier
// request used), and returns the arguments without it.
func (s *sim) checkNonce(args []string) []string {
	s.t.Helper()
	last := args[len(args)-1]
	if len(args) < 2 || !regexp.MustCompile(`^1\d{6}1\d{6}$`).MatchString(last) || s.nonces[last] {
		s.t.Errorf("AGI %q: the last argument is not a fresh random number", args)
		return args
	}
	if s.nonces == nil {
		s.nonces = map[string]bool{}
	}
	s.nonces[last] = true
	return args[:len(args)-1]
}

// call runs the include as an outbound route's
// `Gosub(tollguard-outbound,s,1(argText))` from extension exten, argText
// as it reads once substituted ("0044207946000,1001"): its arguments are
// gosub_exec's split of it, so 1() passes none.
func (s *sim) call(exten, argText string) {
	s.callData(exten, ContextOutbound+",s,1("+argText+")")
}

// callData runs `Gosub(data)` from the outbound extension exten.
func (s *sim) callData(exten, data string) {
	s.callerEx = exten
	s.returned, s.hangup, s.agiCalls = false, "", nil
	s.gosubData(data)
}

// runHandlers runs the pushed hangup handlers, as Asterisk does when the
// channel hangs up.
func (s *sim) runHandlers() {
	for i := len(s.handlers) - 1; i >= 0; i-- { // newest first, as Asterisk runs them
		s.gosubData(s.handlers[i])
	}
}

// answers returns an AGI callback that replies as the gate would.
func answers(verdict, reason, cause, callid string, hangupOnDeny bool) func(*sim, string, []string) {
	return func(s *sim, url string, _ []string) {
		if !strings.HasSuffix(url, "/outbound") {
			return // hangup and emergency set nothing
		}
		s.vars["TOLLGUARD_VERDICT"], s.vars["TOLLGUARD_REASON"] = verdict, reason
		s.vars["TOLLGUARD_CAUSE"], s.vars["TOLLGUARD_CALLID"] = cause, callid
		if verdict == "deny" && hangupOnDeny {
			s.hangup = cause
		}
	}
}

// dialled leaves ANSWEREDTIME and DIALSTATUS as a Dial that ended so
// would.
func (s *sim) dialled(answered, status string) {
	s.vars["ANSWEREDTIME"], s.vars["DIALSTATUS"] = answered, status
	s.vars["ANSWEREDTIME_MS"] = ""
	if answered != "" {
		s.vars["ANSWEREDTIME_MS"] = answered + "250" // Dial rounds ANSWEREDTIME down
	}
}

// hangupRan runs the hangup handlers and returns the AGI requests they
// made (ran).
func (s *sim) hangupRan() []string {
	s.agiCalls = nil
	s.runHandlers()
	return s.ran()
}

// ran returns the AGI requests the sim made, one string each, sorted.
func (s *sim) ran() []string {
	out := make([]string, len(s.agiCalls))
	for i, c := range s.agiCalls {
		out[i] = strings.Join(c, ",")
	}
	slices.Sort(out)
	return out
}

func TestIncludeBehaviour(t *testing.T) {
	t.Run("CalleeLimit", func(t *testing.T) {
		// The pre-dial handler puts the gate's MAXSEC on the trunk leg:
		// as a number, 0 as 1 (0 would be no limit), none when empty.
		// Empty, 1() passes no argument (ARGC 0), and an ARG1 the trunk
		// leg inherited (__ARG1) must not be taken for the limit; passed
		// (ARGC 1), the frame's ARG1 hides it. The sim gave 1() one empty
		// argument, so the ARGC check was never taken.
		cases := []struct{ maxsec, inherited, want string }{
			{"600", "", "600"}, {"1", "", "1"}, {"0", "", "1"}, {"", "", ""}, {"", "5", ""}, {"600", "5", "600"},
		}
		run := func(t *testing.T, include string) (failed []string) {
			for _, tt := range cases {
				s := newSim(t, "PJSIP")
				s.p = parse(t, include)
				if tt.inherited != "" {
					s.vars["ARG1"] = tt.inherited
				}
				s.gosubData(ContextCallee + ",s,1(" + tt.maxsec + ")")
				if got, set := s.vars["TIMEOUT(absolute)"]; got != tt.want || set != (tt.want != "") || s.hangup != "" {
					failed = append(failed, fmt.Sprintf("MAXSEC %q, inherited ARG1 %q: TIMEOUT(absolute) %q (set %v), hangup %q; want %q",
						tt.maxsec, tt.inherited, got, set, s.hangup, tt.want))
				}
			}
			return failed
		}
		for _, f := range run(t, Include) {
			t.Error(f)
		}
		// Each way of the ARGC check matters: without it, the inherited
		// ARG1 becomes the limit.
		check := `exten => s,1,GotoIf($["${ARGC}" = "" | "${ARGC}" = "0"]?done)` + "\n"
		i := strings.Index(Include, "["+ContextCallee+"]")
		j := strings.Index(Include[i:], check)
		if i < 0 || j < 0 {
			t.Fatalf("[%s] has no ARGC check %q", ContextCallee, check)
		}
		without := Include[:i+j] + "exten => s,1,NoOp()\n" + Include[i+j+len(check):]
		if failed := run(t, without); len(failed) != 1 || !strings.Contains(failed[0], `inherited ARG1 "5": TIMEOUT(absolute) "5"`) {
			t.Errorf("without the ARGC check, want only the inherited ARG1 taken for the limit; failures: %q", failed)
		}
		// The Dial line the header shows calls it with the gate's limit,
		// and ignores the far end's redirects (i), which Asterisk could
		// otherwise follow past the gate.
		want := "ib(" + ContextCallee + "^s^1(${" + tollguard.VarMaxSec + "}))"
		if !strings.Contains(Include, "Dial(PJSIP/${EXTEN}@trunk,,"+want+")") {
			t.Errorf("the header's Dial line does not use %s", want)
		}
	})
	t.Run("AllowReturns", func(t *testing.T) {
		s := newSim(t, "PJSIP")
		s.agi = answers("allow", "ok", "", "42", true)
		s.call("0044207946000", "0044207946000")
		if !s.returned || s.hangup != "" {
			t.Fatalf("returned %v hangup %q", s.returned, s.hangup)
		}
		want := []string{"agi://127.0.0.1:4573/outbound", "0044207946000", "1001", "192.0.2.10:5060"}
		if !slices.Equal(s.agiCalls[0], want) {
			t.Errorf("AGI %q, want %q", s.agiCalls[0], want)
		}
		if s.vars["TOLLGUARD_EXT"] != "1001" || s.vars["TOLLGUARD_SRC"] != "192.0.2.10:5060" || s.vars["TOLLGUARD_SRC_EXT"] != "1001" {
			t.Errorf("inherited variables %v", s.vars)
		}
		s.dialled("65", "ANSWER")
		s.agiCalls = nil
		s.runHandlers()
		want = []string{"agi://127.0.0.1:4573/hangup", "42", "65", "ANSWER", "65250"}
		if len(s.agiCalls) != 1 || !slices.Equal(s.agiCalls[0], want) {
			t.Errorf("settle %q, want %q", s.agiCalls, want)
		}
	})
	t.Run("DenyHangsUp", func(t *testing.T) {
		s := newSim(t, "PJSIP")
		s.agi = answers("deny", "premium", "21", "43", true)
		s.call("09061234567", "09061234567")
		if s.returned || s.hangup != "21" {
			t.Fatalf("returned %v hangup %q", s.returned, s.hangup)
		}
		s.agiCalls = nil
		s.runHandlers()
		if len(s.agiCalls) != 0 {
			t.Errorf("a denied call was settled: %q", s.agiCalls)
		}
	})
	t.Run("DenyReturnAction", func(t *testing.T) {
		for _, tt := range []struct{ cause, want, gosub string }{{"21", "21", ""}, {"", "21", ""}, {"41", "41", "tg-announce,s,1"}} {
			s := newSim(t, "PJSIP")
			s.globals["TOLLGUARD_DENY_GOSUB"] = tt.gosub
			if tt.gosub != "" {
				s.p.contexts["tg-announce"] = map[string][]prio{"s": {{app: "Log", args: "NOTICE,announce ${ARG1}"}, {app: "Return"}}}
			}
			s.agi = answers("deny", "after_hours", tt.cause, "44", false)
			s.call("0033123456789", "0033123456789")
			if s.returned || s.hangup != tt.want {
				t.Errorf("cause %q: returned %v hangup %q", tt.cause, s.returned, s.hangup)
			}
			if tt.gosub != "" && !slices.Contains(s.logs, "NOTICE,announce after_hours") {
				t.Errorf("announcement not played: %q", s.logs)
			}
		}
	})
	t.Run("NoDecisionFailsClosed", func(t *testing.T) {
		for _, status := range []string{"FAILURE", "SUCCESS"} {
			s := newSim(t, "PJSIP")
			s.vars["TOLLGUARD_VERDICT"] = "allow" // stale, from an earlier gate on this channel
			s.agi = func(s *sim, _ string, _ []string) { s.vars["AGISTATUS"] = status }
			s.call("0044207946000", "0044207946000")
			if s.returned || s.hangup != "34" {
				t.Errorf("%s: returned %v hangup %q", status, s.returned, s.hangup)
			}
		}
	})
	t.Run("BuiltInEmergencyNumbersAreTheUniversalOnes", func(t *testing.T) {
		// `tollguard dialplan emergency` prints the numbers beyond these.
		want := `REGEX("^(` + strings.Join(tollguard.UniversalEmergencyNumbers(), "|") + `)#?$" ${tg_num})`
		if !strings.Contains(Include, want) {
			t.Errorf("the include's built-in emergency numbers are not %s", want)
		}
		// After the caller ID codes tollguard lets through in every
		// country, as a bracket class: REGEX drops a backslash.
		var codes []string
		for _, c := range tollguard.DialplanCallerIDCodes() {
			codes = append(codes, strings.ReplaceAll(c, "*", "[*]"))
		}
		want = `REGEX("^(` + strings.Join(codes, "|") + `)(` + strings.Join(tollguard.UniversalEmergencyNumbers(), "|") + `)$" ${tg_num})`
		if !strings.Contains(Include, want) {
			t.Errorf("the include's caller ID codes before emergency numbers are not %s", want)
		}
	})
	t.Run("EmergencyNeverWaitsForTheGate", func(t *testing.T) {
		// Dialled at once, without a FastAGI session that a stopped
		// tollguard could hold; recorded by the hangup handler after.
		for _, tt := range []struct{ num, extra string }{{"112", ""}, {"999", ""}, {"911", "000|110"}, {"000", "000|110"}, {"999#", ""}, {"110#", "000|110"},
			// After a caller ID code that begins with * or #.
			{"*67911", ""}, {"*82911", ""}, {"#31#112", ""}, {"*31#112", "000|110"}, {"#31#999", ""}, {"*67112", ""},
			// And before a number of TOLLGUARD_EMERGENCY.
			{"*31#110", "000|110"}, {"#31#110", "000|110"}} {
			s := newSim(t, "PJSIP")
			s.globals["TOLLGUARD_EMERGENCY"] = tt.extra
			s.agi = func(s *sim, _ string, _ []string) { s.vars["AGISTATUS"] = "FAILURE" }
			s.call(tt.num, tt.num)
			if !s.returned || s.hangup != "" || len(s.agiCalls) != 0 {
				t.Errorf("%s: returned %v hangup %q AGI %q", tt.num, s.returned, s.hangup, s.agiCalls)
			}
			if s.vars["TOLLGUARD_VERDICT"] != "allow" || s.vars["TOLLGUARD_REASON"] != "emergency" || s.vars["TOLLGUARD_MAXSEC"] != "" {
				t.Errorf("%s: gate variables %v", tt.num, s.vars)
			}
			// Its first route fails; a second route dials it again.
			s.dialled("", "CONGESTION")
			s.call(tt.num, tt.num)
			if !s.returned || len(s.agiCalls) != 0 {
				t.Errorf("%s, second route: returned %v AGI %q", tt.num, s.returned, s.agiCalls)
			}
			s.dialled("42", "ANSWER")
			s.runHandlers()
			// Each Dial is recorded once, with its own seconds.
			want := []string{"agi://127.0.0.1:4573/emergency," + tt.num + ",1001,192.0.2.10:5060,,CONGESTION," + simEpoch,
				"agi://127.0.0.1:4573/emergency," + tt.num + ",1001,192.0.2.10:5060,42,ANSWER," + simEpoch}
			if got := s.ran(); !slices.Equal(got, want) {
				t.Errorf("%s: handlers %q ran %q, want %q", tt.num, s.handlers, got, want)
			}
		}
		// The gate judges anything else: more digits, a code of digits
		// (GB 141999 is a premium number in Andorra), a send key after a
		// code (a USSD string on a GSM trunk), a code before a number of
		// TOLLGUARD_EMERGENCY with a send key or more digits, two codes.
		for _, num := range []string{"1120", "*679111", "*67911#", "141999", "1470112", "1167911", "*67*67911", "**67911", "*31#110#", "*31#1100", "#31#0900123456", "*6911", "#31112", "141110"} {
			s := newSim(t, "PJSIP")
			s.globals["TOLLGUARD_EMERGENCY"] = "000|110"
			s.agi = func(s *sim, _ string, _ []string) {}
			s.call(num, num)
			if s.returned || len(s.agiCalls) != 1 || s.agiCalls[0][0] != "agi://127.0.0.1:4573/outbound" {
				t.Errorf("%s treated as emergency: %q", num, s.agiCalls)
			}
		}
		// On a Local channel (follow-me), with what the caller passed down.
		s := newSim(t, "Local")
		s.vars["TOLLGUARD_EXT"], s.vars["TOLLGUARD_SRC"], s.vars["TOLLGUARD_SRC_EXT"] = "1001", "192.0.2.10:5060", "1001"
		s.call("999", "999")
		s.runHandlers()
		want := []string{"agi://127.0.0.1:4573/emergency", "999", "1001", "192.0.2.10:5060", "", "", simEpoch}
		if !s.returned || len(s.agiCalls) != 1 || !slices.Equal(s.agiCalls[0], want) {
			t.Errorf("Local: returned %v AGI %q, want %q", s.returned, s.agiCalls, want)
		}
	})
	t.Run("EmergencyAfterAGatedCall", func(t *testing.T) {
		// A DISA line: an allowed call whose Dial failed, then 112 on the
		// same channel. 112 is dialled without a FastAGI request (a
		// stopped tollguard whose port accepts would hold it); the earlier
		// call is settled at hangup with its own Dial's seconds, and its
		// time limit must not cut 112 off.
		s := newSim(t, "PJSIP")
		s.agi = func(s *sim, url string, _ []string) {
			if strings.HasSuffix(url, "/outbound") {
				answers("allow", "ok", "", "50", true)(s, url, nil)
				s.vars["TOLLGUARD_MAXSEC"], s.vars["TIMEOUT(absolute)"] = "60", "60"
			}
		}
		s.call("0044207946000", "0044207946000")
		s.dialled("", "CONGESTION")
		s.call("112", "112")
		if !s.returned || len(s.agiCalls) != 0 {
			t.Fatalf("112: returned %v, AGI %q, want none", s.returned, s.agiCalls)
		}
		for name, want := range map[string]string{"TIMEOUT(absolute)": "0", "TOLLGUARD_MAXSEC": "", "TOLLGUARD_CALLID": "",
			"TOLLGUARD_VERDICT": "allow", "TOLLGUARD_REASON": "emergency", "ANSWEREDTIME": ""} {
			if got := s.vars[name]; got != want {
				t.Errorf("after 112's gate %s = %q, want %q", name, got, want)
			}
		}
		s.dialled("900", "ANSWER")
		want := []string{"agi://127.0.0.1:4573/emergency,112,1001,192.0.2.10:5060,900,ANSWER," + simEpoch,
			"agi://127.0.0.1:4573/hangup,50,,CONGESTION,"}
		if got := s.hangupRan(); !slices.Equal(got, want) {
			t.Errorf("handlers ran %q, want %q", got, want)
		}
	})
	t.Run("GatedCallAfterEmergency", func(t *testing.T) {
		// 112, then an ordinary call, then hangup or 999 on the same
		// channel: each emergency call is recorded once, with its own
		// seconds and time, and the pending handler with nothing pending
		// asks nothing.
		for _, then999 := range []bool{false, true} {
			s := newSim(t, "PJSIP")
			s.agi = answers("allow", "ok", "", "51", true)
			s.call("112", "112")
			s.dialled("300", "ANSWER")
			s.call("0044207946000", "0044207946000")
			if !s.returned || len(s.agiCalls) != 1 {
				t.Fatalf("returned %v AGI %q", s.returned, s.agiCalls)
			}
			s.dialled("5", "ANSWER")
			want := []string{"agi://127.0.0.1:4573/emergency,112,1001,192.0.2.10:5060,300,ANSWER," + simEpoch}
			if then999 {
				s.globals["EPOCH"] = "1795392600" // ten minutes on
				s.call("999", "999")
				if !s.returned || len(s.agiCalls) != 0 {
					t.Errorf("999: returned %v, ran %q, want nothing", s.returned, s.agiCalls)
				}
				s.dialled("600", "ANSWER")
				want = append(want, "agi://127.0.0.1:4573/emergency,999,1001,192.0.2.10:5060,600,ANSWER,1795392600")
			}
			// The ordinary call is settled once, with its own seconds.
			want = append(want, "agi://127.0.0.1:4573/hangup,51,5,ANSWER,5250")
			slices.Sort(want)
			if got := s.hangupRan(); !slices.Equal(got, want) {
				t.Errorf("then 999 %v: handlers ran %q, want %q", then999, got, want)
			}
		}
	})
	t.Run("EmergencyRecordFailureLogged", func(t *testing.T) {
		s := newSim(t, "PJSIP")
		s.call("999", "999")
		s.agi = func(s *sim, _ string, _ []string) { s.vars["AGISTATUS"] = "FAILURE" }
		s.runHandlers()
		if len(s.logs) != 1 || !strings.Contains(s.logs[0], "emergency call to 999") {
			t.Errorf("logs %q", s.logs)
		}
		s = newSim(t, "PJSIP")
		s.call("999", "999")
		s.agi = func(s *sim, _ string, _ []string) { s.vars["AGISTATUS"] = "SUCCESS" }
		s.runHandlers()
		if len(s.logs) != 0 {
			t.Errorf("logs %q", s.logs)
		}
	})
	t.Run("LocalChannelInherits", func(t *testing.T) {
		s := newSim(t, "Local")
		s.vars["TOLLGUARD_EXT"], s.vars["TOLLGUARD_SRC"], s.vars["TOLLGUARD_SRC_EXT"] = "1001", "192.0.2.10:5060", "1001" // from the PJSIP channel
		s.agi = answers("allow", "ok", "", "46", true)
		s.call("0044207946000", "0044207946000")
		want := []string{"agi://127.0.0.1:4573/outbound", "0044207946000", "1001", "192.0.2.10:5060"}
		if !s.returned || !slices.Equal(s.agiCalls[0], want) {
			t.Errorf("AGI %q, want %q", s.agiCalls, want)
		}
		s = newSim(t, "Local")
		s.agi = answers("allow", "ok", "", "47", true)
		s.call("0044207946000", "0044207946000,2002")
		if got := s.agiCalls[0]; got[2] != "2002" || got[3] != "" {
			t.Errorf("explicit extension: %q", got)
		}
	})
	t.Run("LocalChannelNamingAnotherExtensionInheritsNoSource", func(t *testing.T) {
		// The source passed down is 1001's phone's; the forward names
		// 2002 as the payer: 2002's access list must not be checked
		// against 1001's address.
		s := newSim(t, "Local")
		s.vars["TOLLGUARD_EXT"], s.vars["TOLLGUARD_SRC"], s.vars["TOLLGUARD_SRC_EXT"] = "1001", "192.0.2.10:5060", "1001"
		s.agi = answers("allow", "ok", "", "50", true)
		s.call("0044207946000", "0044207946000,2002")
		if got := s.agiCalls[0]; got[2] != "2002" || got[3] != "" {
			t.Errorf("explicit extension with an inherited source: %q", got)
		}
	})
	t.Run("LocalChannelTakesTheSourceOfThePhoneItBeganOn", func(t *testing.T) {
		// 1001 (set_var=__TOLLGUARD_EXT=1001) calls an internal number
		// that forwards out: no gate passed TOLLGUARD_SRC down, so the
		// source is the address of the phone the call began on, and
		// 1001's IP access list holds for a stolen password used from
		// elsewhere.
		for _, tt := range []struct {
			name     string
			tech, ep string // the master channel's; "" for no master
			ext      string // the master's TOLLGUARD_PHONE (its pjsip.conf set_var)
			want     string
		}{
			{"began on the paying phone", "PJSIP", "1001", "", "192.0.2.10:5060"},
			// An endpoint not named as its extension: set_var=TOLLGUARD_PHONE names it.
			// Its Local-channel routes skipped the access list, so a
			// stolen password used from anywhere went out through them.
			{"began on the paying phone, named otherwise", "PJSIP", "phone-abc", "1001", "192.0.2.10:5060"},
			{"began on another phone", "PJSIP", "1002", "", ""},
			{"began on another phone, named otherwise", "PJSIP", "phone-xyz", "2002", ""},
			{"began on a trunk (inbound, forwarded)", "PJSIP", "itsp", "", ""},
			{"began on a Local channel (an originate)", "Local", "", "1001", ""},
			{"no master channel", "", "", "", ""},
		} {
			s := newSim(t, "Local")
			s.vars["TOLLGUARD_EXT"] = "1001"
			if tt.tech != "" {
				s.master = newSim(t, tt.tech)
				if tt.ep != "" {
					s.master.channel["endpoint"] = tt.ep
				}
				if tt.ext != "" {
					s.master.vars["TOLLGUARD_PHONE"] = tt.ext
				}
			}
			s.agi = answers("allow", "ok", "", "49", true)
			s.call("0044207946000", "0044207946000")
			s.wantAsked(tt.name, "1001", tt.want)
		}
	})
	t.Run("ForwardingOnTheCallersChannelIsNotTheCallersPhone", func(t *testing.T) {
		// Another phone (2002, endpoint phone-xyz) rings 1001, whose
		// forward out runs on the caller's channel, as the header says:
		// Set(__TOLLGUARD_EXT=1001) before Dial(Local/...). That Set
		// writes the master channel's TOLLGUARD_EXT; taken as naming
		// the master's phone, 2002's address was 1001's source: denied
		// ip_not_allowed from outside 1001's list, and counted as 1001's
		// phone's own call from inside it.
		s := newSim(t, "Local")
		s.vars["TOLLGUARD_EXT"] = "1001"
		s.master = newSim(t, "PJSIP")
		s.master.channel["endpoint"] = "phone-xyz"
		s.master.channel["pjsip,remote_addr"] = "198.51.100.7:5060"
		s.master.vars["TOLLGUARD_PHONE"] = "2002" // its pjsip.conf set_var
		s.master.vars["TOLLGUARD_EXT"] = "1001"   // the forwarding's Set
		s.agi = answers("allow", "ok", "", "49", true)
		s.call("0044207946000", "0044207946000")
		s.wantAsked("forwarding on the caller's channel", "1001", "")
	})
	t.Run("ForwardingAfterTheCallersGateIsNotTheCallersSource", func(t *testing.T) {
		// With internal calls gated, 2002's own channel went through the
		// gate to ring 1001 and passed its address down; 1001's forward
		// out then runs on that channel: Set(__TOLLGUARD_EXT=1001) before
		// Dial(Local/...). The address passed down is 2002's, not 1001's.
		caller := newSim(t, "PJSIP")
		caller.channel["endpoint"] = "2002"
		caller.channel["pjsip,remote_addr"] = "198.51.100.7:5060"
		caller.agi = answers("allow", "ok", "", "51", true)
		caller.call("1001", "1001")
		if got := caller.agiCalls[0]; got[2] != "2002" || got[3] != "198.51.100.7:5060" {
			t.Fatalf("the internal call: AGI %q", got)
		}
		caller.set("__TOLLGUARD_EXT", "1001") // the forwarding's Set
		s := newSim(t, "Local")
		s.master = caller
		s.inherit(caller)
		s.agi = answers("allow", "ok", "", "52", true)
		s.call("0044207946000", "0044207946000")
		s.wantAsked("forwarding after the caller's gate", "1001", "")
		// 1001's own phone forwarding its own call keeps its address.
		own := newSim(t, "PJSIP")
		own.agi = answers("allow", "ok", "", "53", true)
		own.call("1002", "1002")
		own.set("__TOLLGUARD_EXT", "1001")
		s = newSim(t, "Local")
		s.inherit(own)
		s.agi = answers("allow", "ok", "", "54", true)
		s.call("0044207946000", "0044207946000")
		s.wantAsked("1001's own phone forwarding", "1001", "192.0.2.10:5060")
	})
	t.Run("KeypadTransferIsNotTheTransferredCallsPhone", func(t *testing.T) {
		// 2002 calls 1001 (no set_var of its own), which answers and
		// transfers with the keypad to an outside number. Asterisk runs
		// the transfer on a Local channel that carries what 1001's
		// channel inherited from 2002's: 2002's extension and, when
		// 2002's call went through the gate, its address. Taken as the
		// call's source, a stolen 1001 password passed 2002's access
		// list. The transferring phone is named in TRANSFERERNAME.
		caller := phone2002(t)
		caller.agi = answers("allow", "ok", "", "60", true)
		caller.call("1001", "1001")
		phone := newSim(t, "PJSIP") // 1001's channel, rung by 2002
		phone.channel["name"] = "PJSIP/1001-00000031"
		phone.inherit(caller)
		for _, tt := range []struct {
			name       string
			transferer *sim
			passedDown bool // 2002's call went through the gate
			want       string
		}{
			// The address is the transferred phone's (2002's own, in the
			// call), sent marked: 2002's list still holds against it, and
			// acl_requires_source denies it.
			{"gated call from another extension", phone, true, "xfer/198.51.100.7:5060"},
			{"ungated call from another extension (its set_var)", phone, false, "xfer/198.51.100.7:5060"},
			{"the caller's own phone transfers", caller, true, "198.51.100.7:5060"},
		} {
			s := newSim(t, "Local")
			s.master = caller
			s.others = []*sim{caller, phone}
			if tt.passedDown {
				s.inherit(tt.transferer)
			} else {
				s.vars["TOLLGUARD_EXT"] = "2002"
			}
			s.vars["TRANSFERERNAME"] = tt.transferer.channel["name"]
			s.agi = answers("allow", "ok", "", "61", true)
			s.call("0044207946000", "0044207946000")
			s.wantAsked(tt.name, "2002", tt.want)
		}
	})
	t.Run("KeypadTransferOfTheCallersOwnCall", func(t *testing.T) {
		// The phone that made the call (or is the paying extension's,
		// by set_var=TOLLGUARD_PHONE) transfers it: its source holds.
		for _, tt := range []struct {
			name, transferer, phoneVar, want string
		}{
			{"named as its extension", "PJSIP/1001-0000002a", "", "192.0.2.10:5060"},
			{"named otherwise, TOLLGUARD_PHONE", "PJSIP/phone-abc-0000002a", "1001", "192.0.2.10:5060"},
			{"named otherwise, no TOLLGUARD_PHONE", "PJSIP/phone-abc-0000002a", "", "xfer/192.0.2.10:5060"},
			{"the channel is gone", "PJSIP/phone-abc-0000002a", "-", "xfer/192.0.2.10:5060"},
			{"a Local channel transfers (no phone known)", "Local/1001@from-internal-00000003;1", "", "xfer/192.0.2.10:5060"},
		} {
			own := newSim(t, "PJSIP")
			own.channel["name"] = tt.transferer
			if tt.phoneVar != "" && tt.phoneVar != "-" {
				own.vars["TOLLGUARD_PHONE"] = tt.phoneVar
			}
			s := newSim(t, "Local")
			if tt.phoneVar != "-" {
				s.others = []*sim{own}
			}
			s.vars["TOLLGUARD_EXT"], s.vars["TOLLGUARD_SRC"], s.vars["TOLLGUARD_SRC_EXT"] = "1001", "192.0.2.10:5060", "1001"
			s.vars["TRANSFERERNAME"] = tt.transferer
			s.agi = answers("allow", "ok", "", "62", true)
			s.call("0044207946000", "0044207946000")
			s.wantAsked(tt.name, "1001", tt.want)
		}
	})
	t.Run("AttendedTransferIntoAnAnsweredRoute", func(t *testing.T) {
		// 1001 (set_var=__TOLLGUARD_EXT=1001) attended-transfers an
		// inbound caller with the keypad into an IVR. The IVR runs on the
		// transfer's Local ;2 half, which carries 1001's inherited
		// variables and TRANSFERERNAME, and which its Answer() made Up:
		// digits the caller entered that reached a plain outbound route
		// were gated as 1001. Straight from the trunk they are
		// unknown_extension. The transfer's own route to an outside
		// number runs before anything answers the channel: Ring.
		const warn = "WARNING,tollguard: a caller transferred by PJSIP/1001-00000001 dialled 0044207946000 on Local/0044207946000@from-internal-000000032 after something answered it - not charged to 1001."
		for _, tt := range []struct {
			name, transferer, state, args, ext string
			warned                             bool
		}{
			{"answered (an IVR)", "PJSIP/1001-00000001", "Up", "0044207946000", "", true},
			{"the transfer's own route", "PJSIP/1001-00000001", "Ring", "0044207946000", "1001", false},
			{"answered, the route names the extension", "PJSIP/1001-00000001", "Up", "0044207946000,1001", "1001", false},
			{"answered, no transfer (a forwarded or follow-me leg)", "", "Up", "0044207946000", "1001", false},
			{"answered, transferred by another phone", "PJSIP/1002-00000005", "Up", "0044207946000", "", true},
		} {
			s := newSim(t, "Local")
			s.vars["TOLLGUARD_EXT"] = "1001"
			if tt.transferer != "" {
				s.vars["TRANSFERERNAME"] = tt.transferer
			}
			s.channel["state"] = tt.state
			s.agi = answers("allow", "ok", "", "68", true)
			s.call("0044207946000", tt.args)
			s.wantAsked(tt.name, tt.ext, "")
			want := strings.Replace(warn, "PJSIP/1001-00000001", tt.transferer, 1)
			if tt.warned != (len(s.logs) == 1 && strings.HasPrefix(s.logs[0], want)) || !tt.warned && len(s.logs) != 0 {
				t.Errorf("%s: logs %q", tt.name, s.logs)
			}
		}
		// A caller's text in the transferer's name stays out of the log.
		s := newSim(t, "Local")
		s.vars["TOLLGUARD_EXT"] = "1001"
		s.vars["TRANSFERERNAME"] = "Local/0${SHELL(id)}\n;x@ctx-00000007;1"
		s.channel["state"] = "Up"
		s.agi = answers("allow", "ok", "", "69", true)
		s.call("0044207946000", "0044207946000")
		s.wantAsked("a Local transferer", "", "")
		if len(s.logs) != 1 || strings.ContainsAny(s.logs[0], "${}();\\\n") {
			t.Errorf("logs %q", s.logs)
		}
		// Emergency numbers are dialled at once and recorded as 1001's.
		s = newSim(t, "Local")
		s.vars["TOLLGUARD_EXT"] = "1001"
		s.vars["TRANSFERERNAME"] = "PJSIP/1001-00000001"
		s.channel["state"] = "Up"
		s.call("112", "112")
		if !s.returned || len(s.agiCalls) != 0 || len(s.logs) != 0 || !strings.HasPrefix(s.vars["TOLLGUARD_EMERGENCY_PENDING"], "112,1001,,") {
			t.Errorf("emergency: returned %v, AGI %q, logs %q, pending %q", s.returned, s.agiCalls, s.logs, s.vars["TOLLGUARD_EMERGENCY_PENDING"])
		}
	})
	t.Run("TransferNumberIsTheDigitsDialled", func(t *testing.T) {
		// 1001 (set_var=__TOLLGUARD_EXT=1001) transfers an inbound caller
		// with the keypad to an IVR at 500 that plays early media without
		// answering (Progress, Background with n): its Local ;2 half stays
		// Ring, and the digits the caller enters, sent into a plain
		// outbound route, were gated as 1001's. Asterisk names the
		// transfer's channel after the digits the phone dialled
		// (bridge_basic.c dial_transfer, core_local.c local_alloc):
		// the transfer's own route gates those digits, or their end (a
		// route that strips an access digit), never another number. A
		// blind transfer out of a bridge of three runs alike on a new
		// Local channel (bridge.c blind_transfer_bridge).
		const xferBy, ivr = "PJSIP/1001-00000001", "Local/500@from-internal-0000002b;2"
		for _, tt := range []struct {
			name     string
			variable string // TRANSFERERNAME, BLINDTRANSFER or none
			tech     string // "" is Local
			channel  string // the channel's name
			state    string
			num      string // the route's number
			args     string // the Gosub's arguments; "" is the number
			ext      string // the extension asked for
			warned   bool
		}{
			// The transfer's own route, charged to 1001.
			{"the phone's transfer to an outside number", "TRANSFERERNAME", "", "Local/0044207946000@from-internal-0000002b;2", "Ring", "0044207946000", "", "1001", false},
			{"an access digit the route strips (_9.)", "TRANSFERERNAME", "", "Local/90044207946000@from-internal-0000002b;2", "Ring", "0044207946000", "", "1001", false},
			{"a caller ID code the route strips (_*67.)", "TRANSFERERNAME", "", "Local/*670044207946000@from-internal-0000002b;2", "Ring", "0044207946000", "", "1001", false},
			{"a trailing # the route keeps", "TRANSFERERNAME", "", "Local/0044207946000#@from-internal-0000002b;2", "Ring", "0044207946000#", "", "1001", false},
			{"blind, out of a bridge of three", "BLINDTRANSFER", "", "Local/0044207946000@from-internal-0000002b;2", "Ring", "0044207946000", "", "1001", false},
			// The transferred caller dialling: no extension, one warning.
			{"an IVR playing early media", "TRANSFERERNAME", "", ivr, "Ring", "0044207946000", "", "", true},
			{"an IVR playing early media, reached blind", "BLINDTRANSFER", "", ivr, "Ring", "0044207946000", "", "", true},
			{"a number longer than the digits", "TRANSFERERNAME", "", "Local/7@from-internal-0000002b;2", "Ring", "0044207946000", "", "", true},
			{"the digits' start, not their end", "TRANSFERERNAME", "", "Local/00442079460001@from-internal-0000002b;2", "Ring", "0044207946000", "", "", true},
			{"a route that adds digits in front", "TRANSFERERNAME", "", "Local/02079460000@from-internal-0000002b;2", "Ring", "+442079460000", "", "", true},
			{"expression text at the digits' end", "TRANSFERERNAME", "", `Local/0044207946000" | "1@x-0000002b;2`, "Ring", "0044207946000", "", "", true},
			{"a name holding a function", "TRANSFERERNAME", "", "Local/0044207946000${SHELL(id)}@x-0000002b;2", "Ring", "0044207946000", "", "", true},
			{"a transfer's name on a channel that is no Local one", "TRANSFERERNAME", "DAHDI", "DAHDI/1-1", "Ring", "0044207946000", "", "", true},
			// Left as they were.
			{"the route names the extension", "TRANSFERERNAME", "", ivr, "Ring", "0044207946000", "0044207946000,1001", "1001", false},
			{"no transfer (a forwarding leg through an extension's context)", "", "", "Local/1002@from-internal-0000002b;2", "Ring", "0044207946000", "", "1001", false},
			{"blind, a Local leg Asterisk sent on from a call of two (answered)", "BLINDTRANSFER", "", "Local/1001@rg-member-0000002b;2", "Up", "0044207946000", "", "1001", false},
			{"blind, on a channel that is no Local one", "BLINDTRANSFER", "DAHDI", "DAHDI/1-1", "Ring", "0044207946000", "", "1001", false},
		} {
			tech := tt.tech
			if tech == "" {
				tech = "Local"
			}
			s := newSim(t, tech)
			s.channel["name"], s.channel["state"] = tt.channel, tt.state
			s.vars["TOLLGUARD_EXT"] = "1001"
			if tt.variable != "" {
				s.vars[tt.variable] = xferBy
			}
			args := tt.args
			if args == "" {
				args = tt.num
			}
			s.agi = answers("allow", "ok", "", "70", true)
			s.call(tt.num, args)
			s.wantAsked(tt.name, tt.ext, "")
			want := "WARNING,tollguard: a caller transferred by " + xferBy + " dialled " + tt.num + " on "
			if tt.warned != (len(s.logs) == 1 && strings.HasPrefix(s.logs[0], want)) || !tt.warned && len(s.logs) != 0 {
				t.Errorf("%s: logs %q", tt.name, s.logs)
			} else if tt.warned && (strings.ContainsAny(s.logs[0], "${}();\\\"|\n") || !strings.Contains(s.logs[0], "not charged to 1001")) {
				t.Errorf("%s: log %q", tt.name, s.logs[0])
			}
		}
		// Emergency numbers are dialled at once and recorded as 1001's.
		s := newSim(t, "Local")
		s.channel["name"] = ivr
		s.vars["TOLLGUARD_EXT"], s.vars["TRANSFERERNAME"] = "1001", xferBy
		s.call("112", "112")
		if !s.returned || len(s.agiCalls) != 0 || len(s.logs) != 0 || !strings.HasPrefix(s.vars["TOLLGUARD_EMERGENCY_PENDING"], "112,1001,,") {
			t.Errorf("emergency: returned %v, AGI %q, logs %q, pending %q", s.returned, s.agiCalls, s.logs, s.vars["TOLLGUARD_EMERGENCY_PENDING"])
		}
	})
	t.Run("TransferByALocalLegIsNoPhone", func(t *testing.T) {
		// 2002's gated call reaches 1001 through a Local leg that holds
		// the transfer feature (Queue(...,t) with Local members, or a Dial
		// with t ringing Local/1001@...): Asterisk names that Local
		// channel the transferer, not the phone behind it. Kept as the
		// call's source, 2002's address let a stolen 1001 password pass
		// 2002's access list. A blind transfer out of a bridge of three
		// (bridge.c blind_transfer_bridge) names the transferer in
		// BLINDTRANSFER only, on a Local channel that copies the
		// transferer's variables as the attended one does.
		caller := phone2002(t)
		caller.agi = answers("allow", "ok", "", "60", true)
		caller.call("1001", "1001")
		for _, tt := range []struct {
			name, variable, transferer, want string
		}{
			{"attended, by a queue's Local leg", "TRANSFERERNAME", "Local/1001@agents-00000005;1", "xfer/198.51.100.7:5060"},
			{"blind, by another phone", "BLINDTRANSFER", "PJSIP/1001-00000031", "xfer/198.51.100.7:5060"},
			{"blind, by a Local leg", "BLINDTRANSFER", "Local/1001@agents-00000005;1", "xfer/198.51.100.7:5060"},
			{"blind, by the caller's own phone", "BLINDTRANSFER", "PJSIP/2002-00000030", "198.51.100.7:5060"},
		} {
			s := newSim(t, "Local")
			s.master = caller
			s.others = []*sim{caller}
			s.inherit(caller)
			s.vars[tt.variable] = tt.transferer
			s.agi = answers("allow", "ok", "", "63", true)
			s.call("0044207946000", "0044207946000")
			s.wantAsked(tt.name, "2002", tt.want)
		}
	})
	t.Run("BlindTransferIsNotTheTransferredPhonesCall", func(t *testing.T) {
		// 1002 is on a call with 1001, which transfers it blind to an
		// outside number (keypad blindxfer, or a SIP REFER without
		// Replaces). Asterisk sends 1002's own channel to the number in
		// 1001's context (bridge_channel.c bridge_channel_blind_transfer,
		// ast_async_goto) and names the transferring channel on it in
		// BLINDTRANSFER (bridge.c set_transfer_variables_all); a REFER
		// also sets SIPTRANSFER=yes (res_pjsip_refer.c
		// refer_blind_callback). Judged from 1002's address, a stolen
		// 1001 password made calls that passed 1002's access list.
		for _, tt := range []struct {
			name       string
			ep         string // the transferred channel's endpoint
			transferer string // BLINDTRANSFER
			phoneVar   string // the transferer's TOLLGUARD_PHONE; "-": the channel is gone
			refer      bool
			want       string
		}{
			// Sent marked: 1002's list still holds against its own phone's
			// address, and acl_requires_source denies the call.
			{"keypad, another extension's phone", "1002", "PJSIP/1001-0000002a", "", false, "xfer/198.51.100.7:5060"},
			{"REFER, another extension's phone", "1002", "PJSIP/1001-0000002a", "", true, "xfer/198.51.100.7:5060"},
			{"a ring group's Local channel", "1002", "Local/1001@rg-member-00000003;1", "", false, "xfer/198.51.100.7:5060"},
			{"REFER from the far end of a trunk call", "1002", "PJSIP/itsp-00000004", "", true, "xfer/198.51.100.7:5060"},
			{"an inbound trunk call transferred", "itsp", "PJSIP/1001-0000002a", "", false, "xfer/198.51.100.7:5060"},
			{"another phone of the same extension", "1002", "PJSIP/1002-0000003b", "", false, "198.51.100.7:5060"},
			{"named otherwise, TOLLGUARD_PHONE", "1002", "PJSIP/phone-abc-0000002a", "1002", false, "198.51.100.7:5060"},
			{"named otherwise, another's TOLLGUARD_PHONE", "1002", "PJSIP/phone-abc-0000002a", "1001", false, "xfer/198.51.100.7:5060"},
			{"named otherwise, the channel is gone", "1002", "PJSIP/phone-abc-0000002a", "-", false, "xfer/198.51.100.7:5060"},
			{"not transferred", "1002", "", "", false, "198.51.100.7:5060"},
		} {
			xfer := newSim(t, "PJSIP")
			xfer.channel["name"] = tt.transferer
			if tt.phoneVar != "-" && tt.phoneVar != "" {
				xfer.vars["TOLLGUARD_PHONE"] = tt.phoneVar
			}
			s := newSim(t, "PJSIP")
			s.channel["name"] = "PJSIP/" + tt.ep + "-00000030"
			s.channel["endpoint"] = tt.ep
			s.channel["pjsip,remote_addr"] = "198.51.100.7:5060"
			if tt.phoneVar != "-" {
				s.others = []*sim{xfer}
			}
			if tt.transferer != "" {
				s.vars["BLINDTRANSFER"] = tt.transferer
			}
			if tt.refer {
				s.vars["SIPTRANSFER"] = "yes"
			}
			s.agi = answers("allow", "ok", "", "63", true)
			s.call("0044207946000", "0044207946000")
			s.wantAsked(tt.name, tt.ep, tt.want)
			// The address passed down to the Local channels it starts is
			// the phone's, unmarked (BLINDTRANSFER is not inherited): this
			// channel's own request, marked, comes before its Dial.
			if s.vars["TOLLGUARD_SRC"] != "198.51.100.7:5060" {
				t.Errorf("%s: passed down TOLLGUARD_SRC %q", tt.name, s.vars["TOLLGUARD_SRC"])
			}
		}
		// The route names the extension (an endpoint not named as it).
		s := newSim(t, "PJSIP")
		s.channel["endpoint"] = "phone-xyz"
		s.vars["BLINDTRANSFER"] = "PJSIP/1001-0000002a"
		s.agi = answers("allow", "ok", "", "65", true)
		s.call("0044207946000", "0044207946000,1002")
		s.wantAsked("extension named by the route", "1002", "xfer/192.0.2.10:5060")
	})
	t.Run("BlindTransferOfAnInboundCall", func(t *testing.T) {
		// A receptionist (1001) transfers an inbound call blind: it runs on
		// the trunk's channel, with BLINDTRANSFER naming 1001's channel.
		// The include does not take 1001 from that name: out of a call of
		// two, Asterisk sets BLINDTRANSFER on the transferring channel too,
		// to its BRIDGEPEER (bridge.c set_transfer_variables_all), so a
		// trunk's channel whose caller transferred 1001 away carries the
		// same name, and it stays until the next transfer or hangup (an
		// IVR the call was sent to earlier). Through a plain route the
		// trunk is the extension: denied unknown_extension. A route in
		// 1001's TRANSFER_CONTEXT names 1001 (the admin guide's recipe),
		// judged from the trunk's address: unmarked when 1001
		// transferred, marked otherwise.
		for _, tt := range []struct {
			name, transferer, args, ext, src string
		}{
			{"a plain route", "PJSIP/1001-0000001a", "0044207946000", "itsp", "xfer/203.0.113.5:5060"},
			{"an endpoint with '-' in its name", "PJSIP/front-desk-0000001a", "0044207946000", "itsp", "xfer/203.0.113.5:5060"},
			{"1001's transfer context names 1001", "PJSIP/1001-0000001a", "0044207946000,1001", "1001", "203.0.113.5:5060"},
			{"another phone sent it there", "PJSIP/1003-0000001b", "0044207946000,1001", "1001", "xfer/203.0.113.5:5060"},
			{"a Local channel sent it there", "Local/1001@rg-member-00000003;1", "0044207946000,1001", "1001", "xfer/203.0.113.5:5060"},
			{"a list of names (its own BRIDGEPEER out of a call of three)", "PJSIP/1001-0000001a,PJSIP/1003-0000001b", "0044207946000,1001", "1001", "xfer/203.0.113.5:5060"},
		} {
			s := newSim(t, "PJSIP")
			s.channel["name"] = "PJSIP/itsp-00000019"
			s.channel["endpoint"] = "itsp"
			s.channel["pjsip,remote_addr"] = "203.0.113.5:5060"
			s.vars["BLINDTRANSFER"] = tt.transferer
			s.agi = answers("allow", "ok", "", "67", true)
			s.call("0044207946000", tt.args)
			s.wantAsked(tt.name, tt.ext, tt.src)
		}
	})
	t.Run("BlindTransferOnALocalChannel", func(t *testing.T) {
		// A blind transfer reaches the route on a Local channel when the
		// transferred party is one (a follow-me leg), or when the bridge
		// holds more than two (bridge.c blind_transfer_bridge; the
		// keypad's blind_transfer_cb gives it the transferring phone's
		// inherited variables, and core_unreal.c ast_unreal_call_setup
		// copies BLINDTRANSFER to the ;2 half). 2002's follow-me rang
		// 1001, which transfers: 2002's extension, and 2002's phone as
		// the channel the call began on, are not 1001's.
		caller := phone2002(t)
		own := newSim(t, "PJSIP")
		own.channel["name"] = "PJSIP/2002-00000035"
		for _, tt := range []struct {
			name, transferer, attended, want string
		}{
			{"another extension's phone", "PJSIP/1001-00000031", "", "xfer/198.51.100.7:5060"},
			{"a Local channel", "Local/1001@rg-member-00000003;1", "", "xfer/198.51.100.7:5060"},
			{"the paying extension's phone", "PJSIP/2002-00000035", "", "198.51.100.7:5060"},
			{"the paying extension's phone, after another's attended transfer", "PJSIP/2002-00000035", "PJSIP/1001-00000031", "xfer/198.51.100.7:5060"},
		} {
			s := newSim(t, "Local")
			s.master = caller
			s.others = []*sim{caller, own}
			s.vars["TOLLGUARD_EXT"] = "2002" // 2002's set_var, inherited
			s.vars["BLINDTRANSFER"] = tt.transferer
			if tt.attended != "" {
				s.vars["TRANSFERERNAME"] = tt.attended
			}
			s.agi = answers("allow", "ok", "", "64", true)
			s.call("0044207946000", "0044207946000")
			s.wantAsked(tt.name, "2002", tt.want)
		}
	})
	t.Run("TransferersOwnChannelOutOfABridgeOfThree", func(t *testing.T) {
		// The transferring channel gets BLINDTRANSFER too: its own
		// BRIDGEPEER (bridge.c set_transfer_variables_all), which out of
		// a bridge of three or more is a list of names, a Local one's
		// holding the caller's text (set_bridge_peer_vars_multiparty).
		// Sent on by GOTO_ON_BLINDXFR (or Dial's g) to a gated route,
		// that text went into IMPORT, which substitutes ${<its rest>} on
		// the first channel named.
		peers := "PJSIP/1002-00000031,Local/0${SHELL(id)}@from-internal-00000007;1"
		for _, tech := range []string{"PJSIP", "Local"} {
			other := newSim(t, "PJSIP")
			other.channel["name"] = "PJSIP/1002-00000031"
			s := newSim(t, tech)
			s.others = []*sim{other}
			if tech == "Local" {
				s.vars["TOLLGUARD_EXT"], s.vars["TOLLGUARD_SRC"], s.vars["TOLLGUARD_SRC_EXT"] = "1001", "192.0.2.10:5060", "1001"
			}
			s.vars["BLINDTRANSFER"] = peers
			s.agi = answers("allow", "ok", "", "66", true)
			s.call("0044207946000", "0044207946000")
			s.wantAsked(tech, "1001", "xfer/192.0.2.10:5060")
		}
	})
	t.Run("InheritedARG2Ignored", func(t *testing.T) {
		// Called with one argument and no outer Gosub, Asterisk leaves
		// ARG2 unset in the frame: a channel variable ARG2 (inherited as
		// __ARG2 from the channel that started this one) showed through
		// and was checked instead of the caller's endpoint.
		for _, tech := range []string{"PJSIP", "Local"} {
			s := newSim(t, tech)
			s.vars["ARG2"] = "2002"
			s.vars["TOLLGUARD_EXT"] = "1001"
			s.agi = answers("allow", "ok", "", "53", true)
			s.call("0044207946000", "0044207946000")
			if len(s.agiCalls) != 1 || s.agiCalls[0][2] != "1001" {
				t.Errorf("%s: AGI %q, want extension 1001, not the inherited ARG2", tech, s.agiCalls)
			}
		}
		// Passed explicitly, it still names the extension.
		s := newSim(t, "PJSIP")
		s.vars["ARG2"] = "2002"
		s.agi = answers("allow", "ok", "", "54", true)
		s.call("0044207946000", "0044207946000,1003")
		if len(s.agiCalls) != 1 || s.agiCalls[0][2] != "1003" {
			t.Errorf("AGI %q, want extension 1003", s.agiCalls)
		}
	})
	t.Run("InheritedTransferMarkIgnored", func(t *testing.T) {
		// tg_xfer is read as a LOCAL only once set in the frame: before
		// that a channel variable of the name (inherited __tg_xfer, a
		// global) showed through and marked a phone's own call.
		for _, where := range []string{"channel", "global"} {
			s := newSim(t, "PJSIP")
			if where == "channel" {
				s.vars["tg_xfer"] = "1"
			} else {
				s.globals["tg_xfer"] = "1"
			}
			s.agi = answers("allow", "ok", "", "56", true)
			s.call("0044207946000", "0044207946000")
			if len(s.agiCalls) != 1 || s.agiCalls[0][3] != "192.0.2.10:5060" {
				t.Errorf("%s tg_xfer: AGI %q, want the unmarked source", where, s.agiCalls)
			}
		}
	})
	t.Run("NoNumberRefused", func(t *testing.T) {
		// Gosub(tollguard-outbound,s,1) without the number: ARG1 is
		// unset in the frame, and an inherited __ARG1 would show through
		// and be gated instead of what the phone dialled.
		for _, inherited := range []string{"", "0044207946000"} {
			s := newSim(t, "PJSIP")
			if inherited != "" {
				s.vars["ARG1"] = inherited
			}
			s.agi = answers("allow", "ok", "", "55", true)
			s.callData("00252612345678", ContextOutbound+",s,1")
			if s.returned || s.hangup != "28" || len(s.agiCalls) != 0 {
				t.Errorf("ARG1 %q: returned %v hangup %q AGI %q", inherited, s.returned, s.hangup, s.agiCalls)
			}
			if len(s.logs) != 1 || !strings.Contains(s.logs[0], "passed no number on PJSIP/1001-0000002a") {
				t.Errorf("ARG1 %q: logs %q", inherited, s.logs)
			}
		}
	})
	t.Run("ForgedArgumentsRefused", func(t *testing.T) {
		// The extension dialled, and the route's Gosub arguments it is
		// put in (the header's two forms).
		for exten, form := range map[string]string{
			"0044207946000,2002": "${EXTEN}", // a comma in the dialled extension
			// A single trailing comma left nothing after SHIFT's first
			// item: in the (${EXTEN},1001) form it blanked the admin's
			// ARG2, and the endpoint name was checked instead.
			"0044207946000,":  "${EXTEN},1001",
			"0044207946000, ": "${EXTEN},1001",
			"0044abc":         "${EXTEN}",
			"1\n[Nov 23] NOTICE Registration from '' failed for '192.0.2.9:5060'": "${EXTEN}",
			// ")" and ":" dialled by the phone (%29, %3A): inserted into
			// ${REGEX(... ${tg_num})}, they ended the function and cut
			// its answer, so the checks passed anything. The first was
			// even taken for an emergency number, dialled ungated.
			"112):0;00252612345678":  "${EXTEN}",
			"00252612345678):1":      "${EXTEN}",
			"0044207946000,1002,):1": "${EXTEN}", // a forged ARG2
			"0044207946000,1002):0":  "${EXTEN}",
			`0025261234567"x`:        "${EXTEN}",
			"00252612345678:0":       "${EXTEN}",
			"911):1(":                "${EXTEN}",
			// An empty one is no argument at all: refused as no number
			// (fidelity_test.go, EmptyExtensionIsNoArgument).
		} {
			s := newSim(t, "PJSIP")
			s.agi = answers("allow", "ok", "", "48", true)
			s.route(exten, form)
			if s.returned || s.hangup != "28" || len(s.agiCalls) != 0 {
				t.Errorf("%q: returned %v hangup %q AGI %q", exten, s.returned, s.hangup, s.agiCalls)
			}
			// The log line carries no byte of it but digits: no forged lines.
			if len(s.logs) != 1 || strings.ContainsAny(s.logs[0], "\n'") || !strings.Contains(s.logs[0], "malformed number (its digits: ") {
				t.Errorf("%q: logs %q", exten, s.logs)
			}
		}
	})
	t.Run("LocalChannelNameFiltered", func(t *testing.T) {
		// A route that does Dial(Local/${EXTEN}@outbound/n) names the
		// Local channel after the caller's raw text: the warnings print
		// the name, so a line break in it forged a log line.
		forged := "1\n[Nov 23 10:00:00] NOTICE[1234] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:x@192.0.2.9>' failed for '192.0.2.9:5060' - Wrong password"
		s := newSim(t, "Local")
		s.channel["name"] = "Local/" + forged + "@outbound-00000003;2"
		s.agi = answers("allow", "ok", "", "52", true)
		s.call(forged, forged)
		if s.hangup != "28" || len(s.logs) != 1 {
			t.Fatalf("hangup %q logs %q", s.hangup, s.logs)
		}
		if strings.ContainsAny(s.logs[0], "\n'<>[]") || !strings.Contains(s.logs[0], "on Local/1Nov231000") {
			t.Errorf("log %q: want the channel name without a line break or quote", s.logs[0])
		}
		// A no-decision warning, and an emergency call not recorded.
		s = newSim(t, "Local")
		s.channel["name"] = "Local/0044207946000\n[x]@outbound-00000004;2"
		s.agi = func(s *sim, _ string, _ []string) { s.vars["AGISTATUS"] = "FAILURE" }
		s.call("0044207946000", "0044207946000")
		logs := s.logs
		s = newSim(t, "Local")
		s.channel["name"] = "Local/0044207946000\n[x]@outbound-00000004;2"
		s.call("999", "999")
		s.agi = func(s *sim, _ string, _ []string) { s.vars["AGISTATUS"] = "FAILURE" }
		s.runHandlers()
		logs = append(logs, s.logs...)
		if len(logs) != 2 {
			t.Fatalf("logs %q", logs)
		}
		for _, l := range logs {
			if !strings.Contains(l, "on Local/0044207946000x@outbound-000000042 ") {
				t.Errorf("log %q: want the filtered channel name", l)
			}
		}
	})
	t.Run("HandlerPushedOnceAndPreviousCallSettled", func(t *testing.T) {
		s := newSim(t, "PJSIP")
		s.agi = answers("allow", "ok", "", "50", true)
		s.call("0044207946000", "0044207946000")
		s.vars["TOLLGUARD_MAXSEC"], s.vars["TIMEOUT(absolute)"] = "600", "600" // the first allow's limit
		s.dialled("", "CONGESTION")                                            // the first trunk failed
		s.agi = answers("allow", "ok", "", "51", true)
		s.call("0044207946000", "0044207946000") // the second route, allowed without a limit
		if got := s.vars["TIMEOUT(absolute)"]; got != "0" {
			t.Errorf("the first call's limit is still set for the second: TIMEOUT(absolute)=%q", got)
		}
		if len(s.handlers) != 1 {
			t.Errorf("handlers %q", s.handlers)
		}
		want := [][]string{
			{"agi://127.0.0.1:4573/hangup", "50", "", "CONGESTION", ""},
			{"agi://127.0.0.1:4573/outbound", "0044207946000", "1001", "192.0.2.10:5060"},
		}
		if !slices.EqualFunc(s.agiCalls, want, slices.Equal) {
			t.Errorf("AGI calls %q, want %q", s.agiCalls, want)
		}
		s.agiCalls = nil
		s.runHandlers()
		if len(s.agiCalls) != 1 || s.agiCalls[0][1] != "51" {
			t.Errorf("handler settled %q", s.agiCalls)
		}
	})
	t.Run("EarlierDialNotBilled", func(t *testing.T) {
		// An answered internal Dial on this channel before the gate (a
		// ring group that fell through to an outbound route) left
		// ANSWEREDTIME; this call never reached a Dial.
		s := newSim(t, "PJSIP")
		s.dialled("99", "ANSWER")
		s.vars["TIMEOUT(absolute)"] = "3600" // the admin's own limit, no earlier gate
		s.agi = answers("allow", "ok", "", "53", true)
		s.call("0044207946000", "0044207946000")
		if got := s.vars["TIMEOUT(absolute)"]; got != "3600" {
			t.Errorf("the admin's own TIMEOUT(absolute) was changed: %q", got)
		}
		s.agiCalls = nil
		s.runHandlers()
		want := []string{"agi://127.0.0.1:4573/hangup", "53", "", "", ""}
		if len(s.agiCalls) != 1 || !slices.Equal(s.agiCalls[0], want) {
			t.Errorf("settled %q, want %q", s.agiCalls, want)
		}
	})
	t.Run("ConfiguredServer", func(t *testing.T) {
		s := newSim(t, "SIP")
		s.globals["TOLLGUARD_AGI"] = "agi://10.0.0.5:4573"
		s.channel["peerip"], s.channel["peername"] = "192.0.2.11", "1003"
		s.agi = answers("allow", "ok", "", "52", true)
		s.call("0044207946000", "0044207946000")
		want := []string{"agi://10.0.0.5:4573/outbound", "0044207946000", "1003", "192.0.2.11"}
		if !slices.Equal(s.agiCalls[0], want) {
			t.Errorf("AGI %q, want %q", s.agiCalls[0], want)
		}
	})
}

// inherit gives s what a channel p starts (Local: forwarding) inherits
// of the variables the include sets with __ on p.
func (s *sim) inherit(p *sim) {
	for _, m := range regexp.MustCompile(`Set\(__(\w+)=`).FindAllStringSubmatch(Include, -1) {
		if v, ok := p.vars[m[1]]; ok {
			s.vars[m[1]] = v
		}
	}
}

// phone2002 is extension 2002's phone channel, from outside 1001's
// office: the other party of the transfer tests.
func phone2002(t *testing.T) *sim {
	s := newSim(t, "PJSIP")
	s.channel["name"] = "PJSIP/2002-00000030"
	s.channel["endpoint"] = "2002"
	s.channel["pjsip,remote_addr"] = "198.51.100.7:5060"
	return s
}

// wantAsked wants one gate request, for extension ext from source src
// (what names the case).
func (s *sim) wantAsked(what, ext, src string) {
	s.t.Helper()
	if len(s.agiCalls) != 1 || s.agiCalls[0][2] != ext || s.agiCalls[0][3] != src {
		s.t.Errorf("%s: AGI %q, want extension %s from %q", what, s.agiCalls, ext, src)
	}
}
