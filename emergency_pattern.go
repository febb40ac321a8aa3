package tollguard

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// EmergencyVar is the dialplan global holding the include's extra
// emergency numbers, a regular-expression alternation (dialplan.VarEmergency).
const EmergencyVar = "TOLLGUARD_EMERGENCY"

// maxPatternNumbers is how many numbers a TOLLGUARD_EMERGENCY pattern
// may match before it counts as unbounded: every country's list together
// is a few dozen.
const maxPatternNumbers = 1000

// dialledAlphabet is what a dialled number holds once the include has
// checked it: what "." or a negated class can match there.
const dialledAlphabet = "0123456789*#+"

// EmergencyPatternReport judges the include's TOLLGUARD_EMERGENCY: every
// number it matches is dialled at once, without asking the gate (no
// credit, hours, destination or rate check), and every emergency number
// it leaves out waits for the gate, so it is hung up while tollguard is
// down.
type EmergencyPatternReport struct {
	Pattern string // as Asterisk's REGEX reads it (backslashes dropped)
	// Countries are the countries judged: upper case, each once, sorted.
	Countries []string
	// Regex is the include's whole expression, ^(Pattern)#?$, as glibc's
	// regcomp reads it, written in Go's syntax; "" when Invalid or
	// Unjudged.
	Regex string
	// Invalid is why the pattern does not compile: Asterisk's REGEX then
	// matches nothing, and every number waits for the gate.
	Invalid string
	// Unjudged is what in the pattern glibc and this check read
	// differently: it may let any number past the gate.
	Unjudged string
	// Unbounded: it matches numbers of any length, or more than
	// maxPatternNumbers of them.
	Unbounded bool
	// NotEmergency are numbers it matches that are an emergency number in
	// none of the countries; Toll says whether one of them could cost
	// money (not a free or internal short code in every country).
	NotEmergency []string
	Toll         bool
	// PaidElsewhere are emergency numbers of one country that cost money
	// in another: "1414 (premium in BE)".
	PaidElsewhere []string
	// Missing are each country's emergency numbers beyond 112, 911 and
	// 999 that the pattern leaves to the gate, with those after its
	// caller ID codes of digits (GB 141999).
	Missing map[string][]string
}

// CheckEmergencyPattern judges pattern (TOLLGUARD_EMERGENCY's value) for
// a PBX whose accounts are in countries (ISO 3166 codes).
func CheckEmergencyPattern(pattern string, countries []string) EmergencyPatternReport {
	r := EmergencyPatternReport{Pattern: pattern, Missing: map[string][]string{}}
	for _, c := range countries {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" && !slices.Contains(r.Countries, c) {
			r.Countries = append(r.Countries, c)
		}
	}
	slices.Sort(r.Countries)
	cs := r.Countries
	var re *regexp.Regexp
	if pattern != "" { // the include skips the REGEX for an empty value
		var parsed *syntax.Regexp
		if re, parsed = r.compile(pattern); re != nil {
			r.judgeMatched(parsed, cs)
		}
	}
	if r.Unjudged != "" {
		return r // which emergency numbers it holds is unknown too
	}
	for _, c := range cs {
		for _, n := range append(EmergencyNumbers(c), EmergencyCallerIDNumbers(c)...) {
			if slices.Contains(universalEmergency[:], n) || (re != nil && re.MatchString(n)) || EmergencyPaidElsewhere(n, cs) != "" {
				continue
			}
			r.Missing[c] = append(r.Missing[c], n)
		}
	}
	return r
}

// EmergencyPatternMatches reports whether the include lets number past
// the gate with TOLLGUARD_EMERGENCY set to pattern, read as
// CheckEmergencyPattern reads it. A pattern Asterisk cannot use matches
// nothing; one this check cannot follow (Unjudged) counts as a match.
func EmergencyPatternMatches(pattern, number string) bool {
	if pattern == "" {
		return false
	}
	var r EmergencyPatternReport
	re, _ := r.compile(pattern)
	return r.Unjudged != "" || (re != nil && re.MatchString(number))
}

// compile reads pattern as the include's REGEX call does: Asterisk splits
// the function's argument first (regexArgs), then glibc compiles the
// expression (goSyntax). It sets r.Invalid or r.Unjudged, or returns the
// expression; Go's MatchString searches, as regexec does.
func (r *EmergencyPatternReport) compile(pattern string) (*regexp.Regexp, *syntax.Regexp) {
	args := regexArgs(`"^(` + pattern + `)#?$" 0`)
	if len(args) != 3 {
		r.Invalid = "an unbalanced ( or [: Asterisk cannot split REGEX's arguments"
		return nil, nil
	}
	r.Pattern = strings.TrimSuffix(strings.TrimPrefix(args[1], "^("), ")#?$")
	// The third is the string matched, after one space or tab REGEX
	// skips: the number unless a '"' split the expression early.
	str := args[2]
	if str != "" && (str[0] == ' ' || str[0] == '\t') {
		str = str[1:]
	}
	if str != "0" {
		r.Unjudged = `a " that ends REGEX's expression early`
		return nil, nil
	}
	expr, why := goSyntax(args[1])
	if why != "" {
		r.Unjudged = why
		return nil, nil
	}
	parsed, err := syntax.Parse(expr, syntax.POSIX)
	if err == nil && anchorInInterval(parsed) {
		// glibc copies a {m,n} repeat's expression and loses the anchors
		// in the copies: ^((0$)|1){2}$ matches 00.
		r.Unjudged = "a ^ or $ inside a {m,n} repeat"
		return nil, nil
	}
	if err == nil {
		var re *regexp.Regexp
		if re, err = regexp.CompilePOSIX(expr); err == nil {
			r.Regex = expr
			return re, parsed
		}
	}
	var serr *syntax.Error
	if errors.As(err, &serr) {
		switch serr.Code {
		case syntax.ErrInvalidRepeatSize: // glibc takes counts up to 32767
			r.Unjudged = fmt.Sprintf("a repeat count over 1000 (%s)", serr.Expr)
			return nil, nil
		case syntax.ErrLarge, syntax.ErrNestingDepth, syntax.ErrInvalidUTF8:
			r.Unjudged = fmt.Sprintf("what Go's parser refuses and glibc may take (%s)", serr.Code)
			return nil, nil
		}
	}
	r.Invalid = err.Error()
	return nil, nil
}

// anchorInInterval reports whether re holds a ^ or $ inside a {m,n}.
func anchorInInterval(re *syntax.Regexp) bool {
	if re.Op == syntax.OpRepeat {
		return hasAnchor(re.Sub[0])
	}
	return slices.ContainsFunc(re.Sub, anchorInInterval)
}

func hasAnchor(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return true
	}
	return slices.ContainsFunc(re.Sub, hasAnchor)
}

// judgeMatched sorts the numbers the (valid) expression matches.
func (r *EmergencyPatternReport) judgeMatched(parsed *syntax.Regexp, countries []string) {
	matched, ok := patternNumbers(parsed.Simplify())
	if !ok {
		r.Unbounded, r.Toll = true, true
		return
	}
	var nums []string
	for _, m := range matched {
		n, ok, anchored := anchoredNumber(m)
		if !ok {
			continue
		}
		if !anchored {
			// regexec searches: a match not held by ^ and $ extends to
			// every number that contains it (a ")" in the value can
			// close the include's group, leaving ^(110)|... unanchored).
			r.Unbounded, r.Toll = true, true
			return
		}
		// The include's #? (the phone's send key): the same number.
		nums = appendNew(nums, strings.TrimSuffix(n, "#"))
	}
	slices.SortFunc(nums, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	for _, n := range nums {
		if n == "" || n == "#" {
			continue
		}
		emergency := false
		for _, c := range countries {
			emergency = emergency || IsEmergency(n, c)
		}
		if !emergency {
			r.NotEmergency = append(r.NotEmergency, n)
			r.Toll = r.Toll || len(countries) == 0
			for _, c := range countries {
				if num := Classify(n, NumberPlan{Country: c}, nil); num.Toll() || !num.Short {
					r.Toll = true
				}
			}
			continue
		}
		if why := EmergencyPaidElsewhere(n, countries); why != "" {
			r.PaidElsewhere = append(r.PaidElsewhere, n+" ("+why+")")
		}
	}
}

// patternNumbers lists the strings over dialledAlphabet that re matches;
// ok is false when they are unbounded or more than maxPatternNumbers.
func patternNumbers(re *syntax.Regexp) (nums []string, ok bool) {
	switch re.Op {
	case syntax.OpNoMatch:
		return nil, true
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpBeginLine, syntax.OpBeginText:
		return []string{anchorBegin}, true
	case syntax.OpEndLine, syntax.OpEndText:
		return []string{anchorEnd}, true
	case syntax.OpLiteral:
		for _, c := range re.Rune {
			if !strings.ContainsRune(dialledAlphabet, c) {
				return nil, true // no dialled number holds it
			}
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		var out []string
		for _, c := range dialledAlphabet {
			if re.Op != syntax.OpCharClass || inClass(re.Rune, c) {
				out = append(out, string(c))
			}
		}
		return out, true
	case syntax.OpCapture:
		return patternNumbers(re.Sub[0])
	case syntax.OpQuest:
		return patternRepeat(re.Sub[0], 0, 1)
	case syntax.OpRepeat:
		if re.Max < 0 {
			return patternUnbounded(re.Sub[0], re.Min)
		}
		return patternRepeat(re.Sub[0], re.Min, re.Max)
	case syntax.OpStar:
		return patternUnbounded(re.Sub[0], 0)
	case syntax.OpPlus:
		return patternUnbounded(re.Sub[0], 1)
	case syntax.OpConcat:
		out := []string{""}
		for _, sub := range re.Sub {
			part, ok := patternNumbers(sub)
			if !ok {
				return nil, false
			}
			if out, ok = concatNumbers(out, part); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			part, ok := patternNumbers(sub)
			if !ok {
				return nil, false
			}
			out = appendNew(out, part...)
			if len(out) > maxPatternNumbers {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

// patternUnbounded is sub repeated minN times or more: unbounded unless
// sub matches nothing, or nothing but the empty string (or anchors).
func patternUnbounded(sub *syntax.Regexp, minN int) ([]string, bool) {
	part, ok := patternNumbers(sub)
	if !ok {
		return nil, false
	}
	for _, p := range part {
		if strings.Trim(p, anchorBegin+anchorEnd) != "" {
			return nil, false
		}
	}
	if minN == 0 {
		return appendNew([]string{""}, part...), true
	}
	return part, true
}

// anchorBegin and anchorEnd stand for ^ and $ in the strings
// patternNumbers builds; anchoredNumber keeps those where they hold.
const anchorBegin, anchorEnd = "\x01", "\x02"

// anchoredNumber strips the anchors from s; ok is false when one stands
// where it cannot match (a ^ after a digit, a $ before one), anchored
// whether s holds both a ^ and a $ (else a search matches longer strings).
func anchoredNumber(s string) (core string, ok, anchored bool) {
	isChar := func(c rune) bool { return !strings.ContainsRune(anchorBegin+anchorEnd, c) }
	first, last := strings.IndexFunc(s, isChar), strings.LastIndexFunc(s, isChar)
	if first >= 0 && (strings.Contains(s[first:], anchorBegin) || strings.Contains(s[:last], anchorEnd)) {
		return "", false, false
	}
	anchored = strings.Contains(s, anchorBegin) && strings.Contains(s, anchorEnd)
	return strings.NewReplacer(anchorBegin, "", anchorEnd, "").Replace(s), true, anchored
}

// patternRepeat is sub repeated min to max times.
func patternRepeat(sub *syntax.Regexp, minN, maxN int) ([]string, bool) {
	part, ok := patternNumbers(sub)
	if !ok {
		return nil, false
	}
	var out []string
	cur := []string{""}
	for k := 0; k <= maxN; k++ {
		if k >= minN {
			out = appendNew(out, cur...)
		}
		if k < maxN {
			if cur, ok = concatNumbers(cur, part); !ok {
				return nil, false
			}
		}
	}
	return out, len(out) <= maxPatternNumbers
}

func concatNumbers(a, b []string) ([]string, bool) {
	if len(a)*len(b) > maxPatternNumbers {
		return nil, false
	}
	var out []string
	for _, x := range a {
		for _, y := range b {
			out = appendNew(out, x+y)
		}
	}
	return out, true
}

func appendNew(out []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func inClass(ranges []rune, c rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= c && c <= ranges[i+1] {
			return true
		}
	}
	return false
}

// regexArgs splits REGEX's argument as Asterisk does (AST_NONSTANDARD_APP_ARGS
// on '"' into three, main/app.c): a backslash is dropped and the character
// after it taken as it is; a '"' splits only outside ( ) and [ ], which
// are counted without regard to what they mean in a regular expression;
// the third argument is the rest, as it is.
func regexArgs(buf string) []string {
	var args []string
	paren, bracket, i, afterDelim := 0, 0, 0, -1
	for len(args) < 2 && i < len(buf) {
		var arg []byte
	scan:
		for ; i < len(buf); i++ {
			switch c := buf[i]; {
			case c == '(':
				paren++
			case c == ')' && paren > 0:
				paren--
			case c == '[':
				bracket++
			case c == ']' && bracket > 0:
				bracket--
			case c == '\\':
				if i++; i < len(buf) {
					arg = append(arg, buf[i])
				}
				continue
			case c == '"' && paren == 0 && bracket == 0:
				i++
				afterDelim = i
				break scan
			}
			arg = append(arg, buf[i])
		}
		args = append(args, string(arg))
	}
	if i < len(buf) || i == afterDelim {
		args = append(args, buf[i:])
	}
	return args
}

// goSyntax writes reg, a POSIX extended expression as glibc's regcomp
// reads it, in Go's regexp/syntax: an unmatched ) is an ordinary
// character to glibc, and {,n} is {0,n}. why names what the two read
// differently and this does not translate.
func goSyntax(reg string) (expr, why string) {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(reg); i++ {
		switch c := reg[i]; c {
		case '\\':
			// GNU \w, \s, \b, back-references.
			return "", `a backslash (\\ in the value)`
		case '[':
			end, why := bracketEnd(reg, i)
			if why != "" {
				return "", why
			}
			if end < 0 { // unterminated: both refuse it
				b.WriteString(reg[i:])
				return b.String(), ""
			}
			// Inside [ ], a backslash is a character to glibc, an escape to Go.
			b.WriteString(strings.ReplaceAll(reg[i:end+1], `\`, `\\`))
			i = end
			continue
		case '(':
			depth++
		case ')':
			if depth == 0 {
				b.WriteString(`\)`)
				continue
			}
			depth--
		case '{':
			if strings.HasPrefix(reg[i:], "{,") {
				b.WriteString("{0")
				continue
			}
		}
		b.WriteByte(reg[i])
	}
	return b.String(), ""
}

// bracketEnd returns the index of the ] that closes the bracket
// expression opening at reg[start], or -1.
func bracketEnd(reg string, start int) (int, string) {
	i := start + 1
	if i < len(reg) && reg[i] == '^' {
		i++
	}
	if i < len(reg) && reg[i] == ']' { // a literal ] when first
		i++
	}
	for ; i < len(reg); i++ {
		switch {
		case reg[i] == ']':
			return i, ""
		case strings.HasPrefix(reg[i:], "[.") || strings.HasPrefix(reg[i:], "[="):
			return -1, "a collating element or equivalence class ([. .] or [= =])"
		case strings.HasPrefix(reg[i:], "[:"):
			if end := strings.Index(reg[i+2:], ":]"); end >= 0 {
				i += 2 + end + 1
			}
		}
	}
	return -1, ""
}

// EmergencyPaidElsewhere says in which of countries emergency number n
// is a number that costs money, or of unknown cost, rather than an
// emergency number ("premium in BE", "national in DE"); "" when in none.
// The include's list is one for the whole PBX, so such a number stays
// off it. A caller ID code's form (GB 141999, 999 with the number
// withheld) is as long as a number: judged by whatever it reads as
// elsewhere (a local number in DE, premium-rate in AD). A plain one is
// left off only where it is premium or a short code that costs money
// or of unknown cost (BE 1414): elsewhere a string that short is no
// number a carrier connects (ZA 10111 in GB).
func EmergencyPaidElsewhere(n string, countries []string) string {
	form := false
	for _, c := range countries {
		if _, ok := callerIDEmergency(n, strings.ToUpper(strings.TrimSpace(c))); ok {
			form = true
			break
		}
	}
	for _, c := range countries {
		if IsEmergency(n, c) {
			continue
		}
		num := Classify(n, NumberPlan{Country: c}, nil)
		switch {
		case num.Is(ClassPremium):
			return fmt.Sprintf("%s in %s", ClassPremium, c)
		case !form && !num.Short:
		case num.Class == ClassUnknown:
			return "of unknown cost in " + c
		case num.Toll():
			return fmt.Sprintf("%s in %s", num.Class, c)
		}
	}
	return ""
}
