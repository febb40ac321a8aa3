package tollguard

import (
	"regexp/syntax"
	"strings"
	"sync"
)

// prefixesClash reports why a plan's national and international
// prefixes cannot be told apart, or "". The international prefix is
// matched first (Classify), so it must not begin a nationally dialled
// number: DE with international prefix 01 would read 0151 2345678 as
// +51, Peru. 00 beside 0 is fine: no DE number begins with 0.
func prefixesClash(region, national, intl string) string {
	switch {
	case national == "" || intl == "" || len(national) == len(intl):
		return ""
	case strings.HasPrefix(national, intl):
		return "every number dialled with the national prefix would be read as international"
	case !strings.HasPrefix(intl, national):
		return ""
	}
	rest := intl[len(national):]
	pattern := regionMetadata()[region].GetGeneralDesc().GetNationalNumberPattern()
	if pattern == "" || !languageHasPrefix(pattern, rest) {
		return ""
	}
	return "numbers of " + region + " dialled nationally can begin with " + intl + " (the national prefix " + national + ", then " + rest + "…) and would be read as international"
}

// languageHasPrefix reports whether some string pattern matches whole
// begins with prefix, by running prefix through the pattern's automaton
// and seeing whether any path is still alive. libphonenumber's patterns
// are plain digit classes, groups and repeats, so a live path can
// always be completed.
func languageHasPrefix(pattern, prefix string) bool {
	prog := compiledPattern(pattern)
	if prog == nil {
		return true // an unreadable pattern: assume the worst
	}
	var add func(set map[uint32]bool, pc uint32)
	add = func(set map[uint32]bool, pc uint32) {
		if set[pc] {
			return
		}
		set[pc] = true
		switch i := &prog.Inst[pc]; i.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			add(set, i.Out)
			add(set, i.Arg)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			add(set, i.Out)
		}
	}
	cur := map[uint32]bool{}
	add(cur, uint32(prog.Start))
	for _, r := range prefix {
		next := map[uint32]bool{}
		for pc := range cur {
			i := &prog.Inst[pc]
			switch i.Op {
			case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
				if i.MatchRune(r) {
					add(next, i.Out)
				}
			}
		}
		cur = next
	}
	// A path that can read more, or that matches here: prefix is itself
	// a whole match (a deck row as long as a number), and begins itself.
	for pc := range cur {
		switch prog.Inst[pc].Op {
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL, syntax.InstMatch:
			return true
		}
	}
	return false
}

// compiledPatterns caches compiledPattern: a rate deck's import asks
// about each row's prefix, and compiling the few hundred patterns again
// for each made a 50,000-row deck take seconds.
var compiledPatterns sync.Map // pattern -> *syntax.Prog, nil if unreadable

// compiledPattern returns pattern's program, or nil if it does not
// compile. A program is only read once built, so one is shared.
func compiledPattern(pattern string) *syntax.Prog {
	if v, ok := compiledPatterns.Load(pattern); ok {
		return v.(*syntax.Prog)
	}
	var prog *syntax.Prog
	if re, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		prog, _ = syntax.Compile(re.Simplify())
	}
	compiledPatterns.Store(pattern, prog)
	return prog
}

// ownPrefixes names the prefixes a country's plan dials with.
func ownPrefixes(own NumberPlan) string {
	national, intl := own.NationalPrefix, own.IntlPrefix
	if national == "" {
		national = "none"
	}
	if intl == "" {
		intl = "any of the country's"
	}
	return own.Country + ": national " + national + ", international " + intl
}
