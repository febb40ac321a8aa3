package tollguard

import (
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
	// Invalid is why the pattern does not compile: Asterisk's REGEX then
	// matches nothing, and every number waits for the gate.
	Invalid string
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
	// 999 that the pattern leaves to the gate.
	Missing map[string][]string
}

// CheckEmergencyPattern judges pattern (TOLLGUARD_EMERGENCY's value) for
// a PBX whose accounts are in countries (ISO 3166 codes).
func CheckEmergencyPattern(pattern string, countries []string) EmergencyPatternReport {
	r := EmergencyPatternReport{Pattern: dropBackslashes(pattern), Missing: map[string][]string{}}
	var cs []string
	for _, c := range countries {
		if c = strings.ToUpper(strings.TrimSpace(c)); c != "" && !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	slices.Sort(cs)
	var re *regexp.Regexp
	if r.Pattern != "" {
		var err error
		if re, err = compileEmergencyPattern(r.Pattern); err != nil {
			r.Invalid = err.Error()
		}
	}
	if re != nil {
		r.judgeMatched(cs)
	}
	for _, c := range cs {
		for _, n := range EmergencyNumbers(c) {
			if slices.Contains(universalEmergency[:], n) || (re != nil && re.MatchString(n)) || EmergencyPaidElsewhere(n, cs) != "" {
				continue
			}
			r.Missing[c] = append(r.Missing[c], n)
		}
	}
	return r
}

// EmergencyPatternMatches reports whether the include lets number past
// the gate with TOLLGUARD_EMERGENCY set to pattern; a pattern that does
// not compile matches nothing, as in Asterisk.
func EmergencyPatternMatches(pattern, number string) bool {
	if pattern == "" {
		return false
	}
	re, err := compileEmergencyPattern(dropBackslashes(pattern))
	return err == nil && re.MatchString(number)
}

// compileEmergencyPattern is what the include asks REGEX: ^(pattern)#?$,
// a POSIX extended regular expression.
func compileEmergencyPattern(pattern string) (*regexp.Regexp, error) {
	return regexp.CompilePOSIX("^(" + pattern + ")#?$")
}

// judgeMatched sorts the numbers the (valid) pattern matches.
func (r *EmergencyPatternReport) judgeMatched(countries []string) {
	re, err := syntax.Parse(r.Pattern, syntax.POSIX)
	if err != nil {
		r.Invalid = err.Error()
		return
	}
	matched, ok := patternNumbers(re.Simplify())
	if !ok {
		r.Unbounded, r.Toll = true, true
		return
	}
	var nums []string
	for _, m := range matched {
		if n, ok := anchoredNumber(m); ok {
			nums = appendNew(nums, n)
		}
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
// where it cannot match (a ^ after a digit, a $ before one).
func anchoredNumber(s string) (string, bool) {
	core := strings.TrimRight(strings.TrimLeft(s, anchorBegin), anchorEnd)
	return core, !strings.ContainsAny(core, anchorBegin+anchorEnd)
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

// dropBackslashes reads pattern as Asterisk's function arguments do: a
// backslash makes the next character literal and is itself dropped.
func dropBackslashes(pattern string) string {
	var b strings.Builder
	escaped := false
	for _, c := range pattern {
		if c == '\\' && !escaped {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(c)
	}
	return b.String()
}

// EmergencyPaidElsewhere says in which of countries emergency number n
// is a short code that costs money, or of unknown cost, rather than an
// emergency number ("premium in BE"); "" when in none. The include's
// list is one for the whole PBX, so such a number stays off it.
func EmergencyPaidElsewhere(n string, countries []string) string {
	for _, c := range countries {
		if IsEmergency(n, c) {
			continue
		}
		num := Classify(n, NumberPlan{Country: c}, nil)
		if num.Is(ClassPremium) || num.Short && num.Toll() {
			return fmt.Sprintf("%s in %s", num.Class, c)
		}
	}
	return ""
}
