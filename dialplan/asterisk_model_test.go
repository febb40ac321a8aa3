package dialplan

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// How Asterisk 22 itself splits and judges the text the include hands
// its applications and functions, for the sim (dialplan_test.go). Each
// names the C function it follows; none is a copy of it.

// separateArgs is main/app.c:__ast_app_separate_args. It splits buf at
// delim where no (, [ or " is open, into at most max arguments: the last
// one is the rest of the text, not scanned. With removeChars (the
// AST_STANDARD_APP_ARGS / AST_NONSTANDARD_APP_ARGS forms) quotes and a
// backslash before any character are removed from the scanned ones;
// without (the _RAW_ forms) a backslash only protects the next character.
// A delimiter at the very end makes one more, empty, argument; an empty
// buf has none.
func separateArgs(buf string, delim byte, removeChars bool, max int) []string {
	var out []string
	b := []byte(buf)
	i := 0
	paren, bracket, quote := 0, 0, false
	wasDelim := -1
	for len(out) < max-1 && i < len(b) {
		var arg []byte
		for ; i < len(b); i++ {
			c := b[i]
			switch {
			case c == '(':
				paren++
			case c == ')':
				if paren > 0 {
					paren--
				}
			case c == '[':
				bracket++
			case c == ']':
				if bracket > 0 {
					bracket--
				}
			case c == '"' && delim != '"':
				quote = !quote
				if removeChars {
					continue
				}
			case c == '\\':
				if removeChars {
					// The next character is kept as it is.
					i++
					if i < len(b) {
						arg = append(arg, b[i])
					}
					continue
				}
				arg = append(arg, c)
				i++
				if i < len(b) {
					arg = append(arg, b[i])
				}
				continue
			case c == delim && paren == 0 && !quote && bracket == 0:
				wasDelim = i
				i++
				goto next
			}
			arg = append(arg, c)
		}
	next:
		out = append(out, string(arg))
	}
	if i < len(b) || (i > 0 && i-1 == wasDelim) {
		out = append(out, string(b[i:]))
	}
	return out
}

// gosubArgs is apps/app_stack.c:gosub_exec's parse (and so a hangup or
// pre-dial handler's): the label is what comes before the first "(",
// the arguments what follows it up to the last ")", split raw.
func gosubArgs(data string) (label string, args []string) {
	label, parse, ok := strings.Cut(data, "(")
	if !ok {
		return label, nil
	}
	if i := strings.LastIndexByte(parse, ')'); i >= 0 {
		parse = parse[:i]
	}
	return label, separateArgs(parse, ',', false, 100)
}

// expandSubArgs is apps/app_stack.c:expand_gosub_args, which Dial's b()
// runs on its text (app_dial.c: ast_replace_subargument_delimiter, then
// ast_app_expand_sub_args, then ast_pre_call on each new channel, which
// runs gosub_exec). For a label that names context, exten and priority,
// as the include's do, it only drops empty arguments: "1()" becomes "1".
func expandSubArgs(data string) string {
	label, parse, _ := strings.Cut(data, "(")
	if i := strings.LastIndexByte(parse, ')'); i >= 0 {
		parse = parse[:i]
	}
	if parse == "" {
		return label
	}
	return label + "(" + parse + ")"
}

// leadingInt reads a number at the start of s as sscanf's "%30d" does in
// Asterisk's hands (glibc): blanks skipped, then a sign and digits, 30
// characters at most; strtol's value (LONG_MAX or LONG_MIN past a long)
// stored in an int, which keeps its low 32 bits. It returns nil when no
// digit was read, and the text after the number.
func leadingInt(s string) (*int, string) {
	i := len(s) - len(strings.TrimLeft(s, " \t\n\v\f\r"))
	j := i
	if j < len(s) && (s[j] == '-' || s[j] == '+') {
		j++
	}
	k := j
	for k < len(s) && k-i < 30 && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	if k == j {
		return nil, s
	}
	v, _ := new(big.Int).SetString(s[i:k], 10)
	switch {
	case v.Cmp(big.NewInt(math.MaxInt64)) > 0:
		v.SetInt64(math.MaxInt64)
	case v.Cmp(big.NewInt(math.MinInt64)) < 0:
		v.SetInt64(math.MinInt64)
	}
	n := int(int32(v.Int64()))
	return &n, s[k:]
}

// checkCondition is main/pbx.c:pbx_checkcondition: empty is false, text
// that sscanf's %d reads (leading blanks, a sign, digits; anything may
// follow) is that number, any other text is true.
func checkCondition(cond string) bool {
	if cond == "" {
		return false
	}
	if n, _ := leadingInt(cond); n != nil {
		return *n != 0
	}
	return true
}

// hangupCause is the cause pbx_builtins.c:pbx_builtin_hangup gives the
// channel for Hangup(data), on a channel that has none yet: what
// sscanf's %d reads if above 0, else 16 (normal clearing). Cause names
// (ast_str2cause) are not modeled: the include passes numbers.
func hangupCause(data string) string {
	if n, _ := leadingInt(data); n != nil && *n > 0 {
		return strconv.Itoa(*n)
	}
	return "16"
}

// replaceSubargumentDelimiter is main/app.c's
// ast_replace_subargument_delimiter: Dial's b() and B() take "^" for ",".
func replaceSubargumentDelimiter(s string) string {
	return strings.ReplaceAll(s, "^", ",")
}

// dialOptionArg returns the argument of option o in a Dial options
// string, as main/app.c:parse_options reads it: from the "(" after the
// letter to its matching ")".
func dialOptionArg(opts string, o byte) (string, bool) {
	for i := 0; i < len(opts); i++ {
		c := opts[i]
		if i+1 >= len(opts) || opts[i+1] != '(' {
			continue
		}
		depth, j := 1, i+2
		for ; j < len(opts) && depth > 0; j++ {
			switch opts[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		if c == o {
			return opts[i+2 : j-1], true
		}
		i = j - 1
	}
	return "", false
}

// exprToken is one token of main/ast_expr2.fl, for the part of the
// grammar the include uses.
type exprToken struct {
	op   string // "|", "=", "!=", or "" for a value
	text string // a value's text; a quoted string keeps its quotes
	num  bool   // a value the lexer reads as a numeric string
}

var (
	exprNumber = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?`)
	// A bare word: ast_expr2.fl's ([a-zA-Z0-9\.';\\_^#@]|[\x80-\xff]|($[^{]))+,
	// less the bytes above 0x7f, which the sim never meets.
	exprWord = regexp.MustCompile(`^(?:[a-zA-Z0-9.';\\_^#@]|\$[^{])+`)
)

// exprLex tokenizes e as ast_expr2.fl does, for |, =, == and !=. It
// reports an operator it does not model, so that a test never passes on
// a guess.
func exprLex(e string) ([]exprToken, error) {
	var toks []exprToken
	for i := 0; i < len(e); {
		rest := e[i:]
		switch {
		case strings.ContainsRune(" \t\r\n", rune(e[i])):
			i++
		case strings.HasPrefix(rest, "||"):
			toks, i = append(toks, exprToken{op: "|"}), i+2
		case rest[0] == '|':
			toks, i = append(toks, exprToken{op: "|"}), i+1
		case strings.HasPrefix(rest, "=="):
			toks, i = append(toks, exprToken{op: "="}), i+2
		case strings.HasPrefix(rest, "!="):
			toks, i = append(toks, exprToken{op: "!="}), i+2
		case strings.HasPrefix(rest, "=~"):
			return nil, fmt.Errorf("=~ not simulated")
		case rest[0] == '=':
			toks, i = append(toks, exprToken{op: "="}), i+1
		case rest[0] == '"':
			// \"[^"]*\": the quotes stay part of the string. An
			// unterminated quote is no token of this rule.
			// A quote with none after it matches no rule: flex's
			// default rule echoes it and reads on.
			j := strings.IndexByte(rest[1:], '"')
			if j < 0 {
				i++
				continue
			}
			toks, i = append(toks, exprToken{text: rest[:j+2]}), i+j+2
		default:
			// flex takes the longest match: a word rule match that is
			// longer than the number rule's makes a string ("1a").
			n, w := exprNumber.FindString(rest), exprWord.FindString(rest)
			switch {
			case n != "" && len(n) >= len(w):
				toks, i = append(toks, exprToken{text: n, num: true}), i+len(n)
			case w != "":
				toks, i = append(toks, exprToken{text: w}), i+len(w)
			default:
				return nil, fmt.Errorf("character %q not simulated", rest[0])
			}
		}
	}
	return toks, nil
}

// exprEval evaluates what exprLex read as main/ast_expr2.y does: = and
// != bind tighter than |; a comparison is numeric when both sides are
// numeric strings (strtold) and byte-wise otherwise, quotes included;
// | gives its left side unless that is empty or zero. A syntax error
// gives "0" (ast_expr with no value); an empty expression gives "".
func exprEval(toks []exprToken) string {
	if len(toks) == 0 {
		return ""
	}
	type val struct {
		text string
		num  bool
	}
	isZeroOrNull := func(v val) bool {
		if v.text == "" {
			return true
		}
		if v.num {
			f, _, err := big.ParseFloat(v.text, 10, 64, big.ToNearestEven)
			return err == nil && f.Sign() == 0
		}
		return false
	}
	compare := func(a, b val) bool {
		if a.num && b.num {
			fa, _, errA := big.ParseFloat(a.text, 10, 64, big.ToNearestEven)
			fb, _, errB := big.ParseFloat(b.text, 10, 64, big.ToNearestEven)
			return errA == nil && errB == nil && fa.Cmp(fb) == 0
		}
		return a.text == b.text
	}
	truth := func(b bool) val {
		if b {
			return val{"1", true}
		}
		return val{"0", true}
	}
	pos := 0
	operand := func() (val, bool) {
		if pos >= len(toks) || toks[pos].op != "" {
			return val{}, false
		}
		pos++
		return val{toks[pos-1].text, toks[pos-1].num}, true
	}
	comparison := func() (val, bool) {
		v, ok := operand()
		if !ok {
			return val{}, false
		}
		for pos < len(toks) && (toks[pos].op == "=" || toks[pos].op == "!=") {
			op := toks[pos].op
			pos++
			w, ok := operand()
			if !ok {
				return val{}, false
			}
			v = truth(compare(v, w) == (op == "="))
		}
		return v, true
	}
	v, ok := comparison()
	if !ok {
		return "0"
	}
	for pos < len(toks) && toks[pos].op == "|" {
		pos++
		w, ok := comparison()
		if !ok {
			return "0"
		}
		if isZeroOrNull(v) {
			v = w
		}
	}
	if pos != len(toks) {
		return "0"
	}
	return v.text
}
