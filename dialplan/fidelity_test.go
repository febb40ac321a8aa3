package dialplan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The sim (dialplan_test.go) splits and judges text as Asterisk 22 does
// (asterisk_model_test.go); these pin that down, then run the include's
// header lines through it as an admin would write them.

func TestSeparateArgsAsAsterisk(t *testing.T) {
	for _, tt := range []struct {
		in     string
		delim  byte
		remove bool
		max    int
		want   []string
	}{
		{"a,b,c", ',', false, 100, []string{"a", "b", "c"}},
		{"", ',', false, 100, nil},                        // "1()": no argument at all
		{"a,", ',', false, 100, []string{"a", ""}},        // a trailing delimiter is one more
		{"a,,b", ',', false, 100, []string{"a", "", "b"}}, // empty in the middle
		{"0044(2002,1001", ',', false, 100, []string{"0044(2002,1001"}},
		{"0044[2002,1001", ',', false, 100, []string{"0044[2002,1001"}},
		{"0044)2002,1001", ',', false, 100, []string{"0044)2002", "1001"}}, // a ")" opens nothing
		{"[2001:db8::1]:5060,x", ',', false, 100, []string{"[2001:db8::1]:5060", "x"}},
		{`a"b,c"d,e`, ',', false, 100, []string{`a"b,c"d`, "e"}},
		{`a"b,c"d,e`, ',', true, 100, []string{"ab,cd", "e"}}, // quotes removed
		{`a\,b,c`, ',', false, 100, []string{`a\,b`, "c"}},    // raw: kept
		{`a\,b,c`, ',', true, 100, []string{"a,b", "c"}},      // removed
		{"a,b,c,d", ',', true, 2, []string{"a", "b,c,d"}},     // the last is the rest
		{`a,"b`, ',', true, 2, []string{"a", `"b`}},           // and is not scanned
		{`"^(1|2)#?$" 112`, '"', true, 3, []string{"", "^(1|2)#?$", " 112"}},
		{`"^[0-9\d]$" 1`, '"', true, 3, []string{"", "^[0-9d]$", " 1"}}, // REGEX drops the backslash
		{`"^(1$" 1`, '"', true, 3, []string{"", `^(1$" 1`}},             // an open ( hides the quote
		{"X=", '=', true, 2, []string{"X", ""}},
		{"X", '=', true, 2, []string{"X"}},
	} {
		if got := separateArgs(tt.in, tt.delim, tt.remove, tt.max); !slices.Equal(got, tt.want) {
			t.Errorf("separateArgs(%q, %q, %v, %d) = %q, want %q", tt.in, tt.delim, tt.remove, tt.max, got, tt.want)
		}
	}
}

// TestGosubArgsAsAsterisk: a Gosub's (and Dial b()'s, once "^" is ","
// and expand_gosub_args has rebuilt it) arguments as
// apps/app_stack.c:gosub_exec makes them: after the first "(", up to
// the last ")", split raw; none without "(", and none for "()".
func TestGosubArgsAsAsterisk(t *testing.T) {
	for in, want := range map[string]string{"c,s,1()": "c,s,1", "c,s,1(600)": "c,s,1(600)", "c,s,1": "c,s,1", "c,s,1(,)": "c,s,1(,)"} {
		if got := expandSubArgs(in); got != want {
			t.Errorf("expandSubArgs(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tt := range []struct {
		data string
		want []string
	}{
		{"c,s,1", nil},
		{"c,s,1()", nil}, // ARGC 0, not one empty ARG1
		{"c,s,1( )", []string{" "}},
		{"c,s,1(,)", []string{"", ""}},
		{"c,s,1(600)", []string{"600"}},
		{"c,s,1(a(b),c)", []string{"a(b)", "c"}},
		{"c,s,1(a", []string{"a"}}, // no closing paren: logged, split all the same
	} {
		label, args := gosubArgs(tt.data)
		if label != "c,s,1" || !slices.Equal(args, tt.want) {
			t.Errorf("gosubArgs(%q) = %q, %q; want c,s,1, %q", tt.data, label, args, tt.want)
		}
	}
}

func TestCheckConditionAsAsterisk(t *testing.T) {
	for cond, want := range map[string]bool{
		"": false, "0": false, "1": true, "-1": true, "+0": false, " 1": true, " 0": false,
		"0abc": false, "2x": true, "abc": true, " ": true, "\t": true,
		"4294967296": false, // an int keeps the low 32 bits
	} {
		if got := checkCondition(cond); got != want {
			t.Errorf("checkCondition(%q) = %v, want %v", cond, got, want)
		}
	}
}

func TestExprAsAsterisk(t *testing.T) {
	for e, want := range map[string]string{
		`"00" = "0"`:                   "0", // quoted: compared as text, quotes and all
		`00 = 0`:                       "1", // bare numbers: compared as numbers
		`1.0 == 1`:                     "1",
		`3 != 0`:                       "1",
		`0 != 0`:                       "0",
		`"a b" = "a b"`:                "1",
		`"" = ""`:                      "1",
		`"PJSIP" != "PJSIP"`:           "0",
		`"" = "" | "1" = "0"`:          "1",
		`"1" = "" | "1" = "0"`:         "0",
		`"1" = "" || "1" = "1"`:        "1",
		`"a"b" = ""`:                   "0", // a quote inside a value: a syntax error, which is 0
		`"[2001:db8::1]:5060" = ""`:    "0",
		`"*67911#" != "*67911#"`:       "0",
		``:                             "",
		`"x"`:                          `"x"`,
		`= "a"`:                        "0",
		`"agi://127.0.0.1:4573" != ""`: "1",
	} {
		toks, err := exprLex(e)
		if err != nil {
			t.Errorf("$[%s]: %v", e, err)
			continue
		}
		if got := exprEval(toks); got != want {
			t.Errorf("$[%s] = %q, want %q", e, got, want)
		}
	}
	for _, e := range []string{`"a" =~ "b"`, `1 < 2`, `(1)`, `1 & 1`} {
		if _, err := exprLex(e); err == nil {
			t.Errorf("$[%s]: the model claims an operator it does not have", e)
		}
	}
}

func TestParseConfRejectsBlockComments(t *testing.T) {
	ok := "[c]\nexten => s,1,NoOp(x) ; a comment --- not a block\n same => n,Return() ;--- still one line\n"
	if _, err := parseConf(ok); err != nil {
		t.Fatalf("plain comments: %v", err)
	}
	for _, text := range []string{
		"[c]\nexten => s,1,NoOp(x) ;-- opens a block comment\n same => n,Return()\n",
		"[c]\nexten => s,1,NoOp(x --; closes one)\n same => n,Return()\n",
	} {
		if _, err := parseConf(text); err == nil {
			t.Errorf("%q: accepted, but Asterisk reads a block comment delimiter there", text)
		}
	}
}

// TestSimGotoIfAsAsterisk runs GotoIf lines as pbx_builtin_gotoif does:
// split at the first "?" of the substituted text, the condition judged
// by pbx_checkcondition.
func TestSimGotoIfAsAsterisk(t *testing.T) {
	for _, tt := range []struct{ cond, want string }{
		{"1", "yes"}, {"0", "no"}, {"", "no"}, {" 1", "yes"}, {" ", "yes"}, {"0abc", "no"}, {"abc", "yes"}, {"-2", "yes"},
	} {
		s := newSim(t, "PJSIP")
		s.vars["X"] = tt.cond
		s.p.contexts["t"] = map[string][]prio{"s": {
			{app: "GotoIf", args: "${X}?yes:no"},
			{label: "yes", app: "Log", args: "yes"}, {app: "Return"},
			{label: "no", app: "Log", args: "no"}, {app: "Return"},
		}}
		s.gosubData("t,s,1")
		if len(s.logs) != 1 || s.logs[0] != tt.want {
			t.Errorf("GotoIf(%q?yes:no) went %q, want %q", tt.cond, s.logs, tt.want)
		}
	}
}

// route runs the include's header line
// Gosub(tollguard-outbound,s,1(<form>)) for a dialled exten, ${EXTEN} in
// form substituted.
func (s *sim) route(exten, form string) {
	s.call(exten, strings.ReplaceAll(form, "${EXTEN}", exten))
}

func TestIncludeRouteArgumentsAsAsterisk(t *testing.T) {
	// The header's two route forms.
	for _, form := range []string{"${EXTEN}", "${EXTEN},1001"} {
		if !strings.Contains(Include, "Gosub(tollguard-outbound,s,1("+form+"))") {
			t.Fatalf("the header has no route Gosub(tollguard-outbound,s,1(%s))", form)
		}
	}
	t.Run("ForgedSplitsRefused", func(t *testing.T) {
		// A (, [ or " dialled by the phone keeps a comma from splitting
		// the Gosub's arguments: the admin's ARG2 joins the number.
		// REPLACE still finds the characters that are no digits.
		for _, exten := range []string{"0044(2002", "0044[2002", `0044"2002`, "0044,2002", "0044)2002", `0044\2002`, "0044,", "+44(", "112("} {
			for _, form := range []string{"${EXTEN}", "${EXTEN},1001"} {
				s := newSim(t, "PJSIP")
				s.agi = answers("allow", "ok", "", "60", true)
				s.route(exten, form)
				if s.returned || s.hangup != "28" || len(s.agiCalls) != 0 {
					t.Errorf("%q in %s: returned %v hangup %q AGI %q", exten, form, s.returned, s.hangup, s.agiCalls)
				}
			}
		}
	})
	t.Run("EmptyExtensionIsNoArgument", func(t *testing.T) {
		// 1() is no argument at all to gosub_exec: ARGC is 0.
		s := newSim(t, "PJSIP")
		s.agi = answers("allow", "ok", "", "61", true)
		s.route("", "${EXTEN}")
		if s.returned || s.hangup != "28" || len(s.logs) != 1 || !strings.Contains(s.logs[0], "passed no number") {
			t.Errorf("returned %v hangup %q logs %q", s.returned, s.hangup, s.logs)
		}
	})
	t.Run("AllowedNumbers", func(t *testing.T) {
		long := strings.Repeat("9", 79) // AST_MAX_EXTENSION less its NUL
		for _, exten := range []string{"0044207946000", "+442079460000", "*31#0044207946000", "0044207946000#", long} {
			for form, ext := range map[string]string{"${EXTEN}": "1001", "${EXTEN},1003": "1003"} {
				s := newSim(t, "PJSIP")
				s.agi = answers("allow", "ok", "", "62", true)
				s.route(exten, form)
				want := []string{"agi://127.0.0.1:4573/outbound", exten, ext, "192.0.2.10:5060"}
				if !s.returned || len(s.agiCalls) != 1 || !slices.Equal(s.agiCalls[0], want) {
					t.Errorf("%q in %s: returned %v AGI %q, want %q", exten, form, s.returned, s.agiCalls, want)
				}
			}
		}
	})
}

// TestIncludeIPv6Source: CHANNEL(pjsip,remote_addr) of a phone on IPv6
// is "[2001:db8::1]:5060" (dialplan_functions.c prints the address with
// brackets and port). The brackets and colons reach tollguard whole:
// as an AGI argument and its URL copy, passed down to Local channels,
// and through the emergency handler's Gosub arguments.
func TestIncludeIPv6Source(t *testing.T) {
	const addr = "[2001:db8::1]:5060"
	s := newSim(t, "PJSIP")
	s.channel["pjsip,remote_addr"] = addr
	s.agi = answers("allow", "ok", "", "70", true)
	s.call("0044207946000", "0044207946000")
	want := []string{"agi://127.0.0.1:4573/outbound", "0044207946000", "1001", addr}
	if !s.returned || len(s.agiCalls) != 1 || !slices.Equal(s.agiCalls[0], want) {
		t.Fatalf("AGI %q, want %q", s.agiCalls, want)
	}
	if s.vars["TOLLGUARD_SRC"] != addr {
		t.Errorf("TOLLGUARD_SRC %q", s.vars["TOLLGUARD_SRC"])
	}
	local := newSim(t, "Local")
	local.inherit(s)
	local.agi = answers("allow", "ok", "", "71", true)
	local.call("0033123456789", "0033123456789")
	if len(local.agiCalls) != 1 || local.agiCalls[0][3] != addr {
		t.Errorf("Local channel: AGI %q", local.agiCalls)
	}

	s = newSim(t, "PJSIP")
	s.channel["pjsip,remote_addr"] = addr
	s.call("112", "112")
	s.dialled("30", "ANSWER")
	want = []string{"agi://127.0.0.1:4573/emergency,112,1001," + addr + ",30,ANSWER," + simEpoch}
	if got := s.hangupRan(); !slices.Equal(got, want) {
		t.Errorf("emergency record %q, want %q", got, want)
	}
}

// TestIncludeHeaderDialLine runs the header's Dial line's b() option as
// app_dial does: the options split from Dial's arguments, b()'s "^"
// made ",", and the Gosub run on the new trunk channel, which inherits
// the caller's "__" variables but no Gosub stack.
func TestIncludeHeaderDialLine(t *testing.T) {
	line := regexp.MustCompile(`(?m)^;\s+same => n,(Dial\(.*\))$`).FindStringSubmatch(Include)
	if line == nil {
		t.Fatal("no Dial line in the header")
	}
	data := line[1][len("Dial(") : len(line[1])-1]
	for _, tt := range []struct {
		maxsec, inheritedARG1, want string
	}{
		{"600", "", "600"}, {"0", "", "1"}, {"", "", ""},
		// No limit, and the caller's channel carries an __ARG1 (set by
		// a dialplan of its own): inherited by the trunk leg, it showed
		// through the empty 1() and cut the call off at its value.
		{"", "5", ""},
		{"600", "5", "600"},
	} {
		caller := newSim(t, "PJSIP")
		caller.vars["TOLLGUARD_MAXSEC"] = tt.maxsec
		args := separateArgs(caller.subst(data), ',', true, 4) // Dial(peers,timeout,options,URL)
		if len(args) < 3 {
			t.Fatalf("Dial(%s): no options", data)
		}
		b, ok := dialOptionArg(args[2], 'b')
		if !ok {
			t.Fatalf("Dial options %q have no b()", args[2])
		}
		callee := newSim(t, "PJSIP")
		if tt.inheritedARG1 != "" {
			callee.vars["ARG1"] = tt.inheritedARG1
		}
		callee.gosubData(expandSubArgs(replaceSubargumentDelimiter(b)))
		if got, set := callee.vars["TIMEOUT(absolute)"]; got != tt.want || set != (tt.want != "") {
			t.Errorf("MAXSEC %q, inherited ARG1 %q: trunk leg TIMEOUT(absolute) %q (set %v), want %q",
				tt.maxsec, tt.inheritedARG1, got, set, tt.want)
		}
	}
}

// maxMSetPairs is how many pairs MSet takes in Asterisk 22
// (main/pbx_variables.c:pbx_builtin_setvar_multiple, pair[99]).
const maxMSetPairs = 99

// TestSimMSetAsAsterisk: MSet takes at most 99 pairs; the 99th holds
// the rest of the text. The sim took 24, an old pbx_builtins.c's limit,
// and would have failed an include MSet of 25 that Asterisk 22 runs.
// The include's MSets stay within the limit.
func TestSimMSetAsAsterisk(t *testing.T) {
	var pairs []string
	for i := 1; i <= maxMSetPairs+1; i++ {
		pairs = append(pairs, fmt.Sprintf("V%03d=", i))
	}
	s := newSim(t, "PJSIP")
	s.p.contexts["t"] = map[string][]prio{"s": {{app: "MSet", args: strings.Join(pairs, ",") + "1"}, {app: "Return"}}}
	s.gosubData("t,s,1")
	if got := s.vars["V025"]; got != "" {
		t.Errorf("the 25th pair's value %q, want it set empty", got)
	}
	if _, set := s.vars["V025"]; !set {
		t.Error("the 25th pair was not set")
	}
	if got, want := s.vars[fmt.Sprintf("V%03d", maxMSetPairs)], fmt.Sprintf(",V%03d=1", maxMSetPairs+1); got != want {
		t.Errorf("the 99th pair's value %q, want %q", got, want)
	}
	if _, set := s.vars[fmt.Sprintf("V%03d", maxMSetPairs+1)]; set {
		t.Error("a 100th pair was set")
	}
	for _, pr := range slices.Concat(slices.Collect(mapsValues(parse(t, Include).contexts))...) {
		if pr.app == "MSet" && len(separateArgs(pr.args, ',', true, maxMSetPairs+1)) > maxMSetPairs {
			t.Errorf("line %d: MSet with more than %d pairs", pr.lineNo, maxMSetPairs)
		}
	}
}

// mapsValues lists every extension's priorities of every context.
func mapsValues(contexts map[string]map[string][]prio) func(func([]prio) bool) {
	return func(yield func([]prio) bool) {
		for _, exts := range contexts {
			for _, prios := range exts {
				if !yield(prios) {
					return
				}
			}
		}
	}
}

func TestHangupCauseAsAsterisk(t *testing.T) {
	for data, want := range map[string]string{"21": "21", " 28": "28", "34x": "34", "": "16", "0": "16", "-3": "16", "busy": "16"} {
		if got := hangupCause(data); got != want {
			t.Errorf("Hangup(%s): cause %s, want %s", data, got, want)
		}
	}
}

// TestSimSubstringAsAsterisk: ${name:offset:length} as
// main/pbx_variables.c reads it for an application's arguments
// (parse_variable_name's sscanf "%30d:%30d", then substring()): a
// negative offset counts from the end and one past the start reads from
// the start, a negative length leaves that many off the end, what sscanf
// does not read stays 0 and INT_MAX. The include reads the end of a Local
// channel's digits so (${tg_dialled:-${LEN(${tg_num})}}).
func TestSimSubstringAsAsterisk(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{"${V:-13}", "0044207946000"},
		{"${V:-14}", "90044207946000"},
		{"${V:-99}", "90044207946000"}, // past the start: all of it, not nothing
		{"${V:-3}", "000"},
		{"${V:14}", ""},
		{"${V:99}", ""},
		{"${V:1:2}", "00"},
		{"${V:1:-1}", "004420794600"},
		{"${V:-3:-1}", "00"},
		{"${V:-3:-3}", ""},
		{"${V:-3:-9}", ""},
		{"${V:0:0}", ""},
		{"${V:0}", "90044207946000"},
		{"${V:}", "90044207946000"},
		{"${V:x}", "90044207946000"},         // no number: offset 0
		{"${V:2:x}", "044207946000"},         // no length: all the rest
		{"${V: -3}", "000"},                  // %d skips blanks
		{"${V:-3: 2}", "00"},                 // before the length too
		{"${V:-3 :2}", "000"},                // but ":" must follow the offset at once
		{"${V:+2}", "044207946000"},          // a sign is read
		{"${V:4294967297}", "0044207946000"}, // an int keeps the low 32 bits: 1
		{"${V:99999999999999999999}", "0"},   // past a long: LONG_MAX, as an int -1
		{"${V:0000000000000000000000000000001}", "90044207946000"}, // %30d reads 30 characters: 0
		{"${E:-3}", ""},
		{"${CHANNEL(name):6}", "0044207946000@from-internal-00000003;2"},
	} {
		s := newSim(t, "Local")
		s.vars["V"], s.vars["E"] = "90044207946000", ""
		if got := s.subst(tt.expr); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// TestSimShiftAsAsterisk: SHIFT as funcs/func_strings.c shift_pop runs
// it: up to the first delimiter (a comma, or the first character of the
// one given), the variable keeping the rest.
func TestSimShiftAsAsterisk(t *testing.T) {
	for _, tt := range []struct{ value, expr, want, left string }{
		{"a@b@c", "${SHIFT(V,@)}", "a", "b@c"},
		{"a@b,c", "${SHIFT(V)}", "a@b", "c"},
		{"a@b,c", "${SHIFT(V,)}", "a@b", "c"},
		{"a@b,c", "${SHIFT(V,@x)}", "a", "b,c"},
		{"abc", "${SHIFT(V,@)}", "abc", ""},
		{"@abc", "${SHIFT(V,@)}", "", "abc"},
		{"", "${SHIFT(V,@)}", "", ""},
	} {
		s := newSim(t, "Local")
		s.vars["V"] = tt.value
		if got := s.subst(tt.expr); got != tt.want || s.vars["V"] != tt.left {
			t.Errorf("V=%q: %s = %q leaving %q, want %q leaving %q", tt.value, tt.expr, got, s.vars["V"], tt.want, tt.left)
		}
	}
}
