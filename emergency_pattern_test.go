package tollguard_test

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

func TestCheckEmergencyPattern(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
		countries     []string
		invalid       bool
		unbounded     bool
		unjudged      bool
		notEmergency  []string
		toll          bool
		paidElsewhere []string
		missing       map[string][]string
	}{
		// 999 and 112 after GB's caller ID codes 141 and 1470 wait for the
		// gate: the include lets only * and # codes through by itself.
		{name: "UnsetGB", countries: []string{"GB"}, missing: map[string][]string{"GB": {"141112", "141911", "141999", "1470112", "1470911", "1470999"}}},
		{name: "GBCallerIDCodes", pattern: "141112|141911|141999|1470112|1470911|1470999", countries: []string{"GB"}},
		// In DE 141999 is a local number, in AD premium-rate.
		{name: "GBCallerIDCodesAndDE", pattern: "110|141999", countries: []string{"GB", "DE"}, paidElsewhere: []string{"141999 (national in DE)"}},
		{name: "GBCallerIDCodesAndAD", pattern: "141999|1470112", countries: []string{"GB", "AD"},
			paidElsewhere: []string{"141999 (premium in AD)", "1470112 (of unknown cost in AD)"}, missing: map[string][]string{"AD": {"110", "116", "118"}}},
		{name: "GBCallerIDCodesForAD", pattern: "141999", countries: []string{"AD"}, notEmergency: []string{"141999"}, toll: true,
			missing: map[string][]string{"AD": {"110", "116", "118"}}},
		{name: "UnsetUSAndGB", countries: []string{"US", "GB"}},
		{name: "UnsetDE", countries: []string{"de"}, missing: map[string][]string{"DE": {"110"}}},
		{name: "UnsetFR", countries: []string{"FR"}, missing: map[string][]string{"FR": {"15", "17", "18", "114", "115", "119", "191", "196", "197", "116000"}}},
		{name: "WhatDialplanEmergencyPrints", pattern: "000|106|1831000|1831106|1831112|1831911|1831999|1832000|1832106|1832112|1832911|1832999", countries: []string{"AU"}},
		{name: "UnsetAU", pattern: "000|106", countries: []string{"AU"},
			missing: map[string][]string{"AU": {"1831000", "1831106", "1831112", "1831911", "1831999", "1832000", "1832106", "1832112", "1832911", "1832999"}}},
		{name: "ClassForTwo", pattern: "11[02]", countries: []string{"DE", "DE"}},
		// A backslash is dropped by Asterisk's argument parsing.
		{name: "Backslash", pattern: `11\0`, countries: []string{"DE"}},
		{name: "Star", pattern: "[0-9]*", countries: []string{"GB"}, unbounded: true, toll: true},
		{name: "DotStar", pattern: "110|0.*", countries: []string{"DE"}, unbounded: true, toll: true},
		{name: "TooMany", pattern: "[0-9]{4}", countries: []string{"GB"}, unbounded: true, toll: true, missing: map[string][]string{"GB": {"141112", "141911", "141999", "1470112", "1470911", "1470999"}}},
		{name: "NationalNumber", pattern: "110|5551234", countries: []string{"DE"}, notEmergency: []string{"5551234"}, toll: true},
		{name: "OptionalDigits", pattern: "110|0900[0-9]?", countries: []string{"DE"}, toll: true,
			notEmergency: []string{"0900", "09000", "09001", "09002", "09003", "09004", "09005", "09006", "09007", "09008", "09009"}},
		// US 100 and 101 are no emergency numbers there: past the gate.
		{name: "OtherCountrysNumbers", pattern: "100|101", countries: []string{"US"}, notEmergency: []string{"100", "101"}, toll: true, missing: map[string][]string{"US": {"1167112", "1167911", "1167999", "1182112", "1182911", "1182999"}}},
		{name: "EmergencyHerePremiumThere", pattern: "1414|143", countries: []string{"CH", "BE"}, paidElsewhere: []string{"1414 (premium in BE)"},
			missing: map[string][]string{"BE": {"100", "101"}, "CH": {"118", "144", "145", "147", "1415"}}},
		{name: "Invalid", pattern: "11(0", countries: []string{"DE"}, invalid: true, missing: map[string][]string{"DE": {"110"}}},
		// A ")" closes the include's group: ^(110)|.*)#?$ matches every
		// number that starts with 110 (glibc reads the unmatched ")" as a
		// character), and ^(110)|(112)#?$ every one that ends with 112 too.
		{name: "ClosesTheGroup", pattern: "110)|.*", countries: []string{"DE"}, unbounded: true, toll: true},
		{name: "ClosesTheGroupBalanced", pattern: "110)|(112", countries: []string{"DE"}, unbounded: true, toll: true},
		{name: "UnmatchedParenIsACharacter", pattern: "110|112)", countries: []string{"DE"}, missing: map[string][]string{"DE": {"110"}}},
		// glibc reads {,n} as {0,n} (Go as the characters "{,n}").
		{name: "IntervalWithoutMin", pattern: "110|[0-9]{,}", countries: []string{"DE"}, unbounded: true, toll: true},
		{name: "IntervalWithoutMinBounded", pattern: "110|0{,1}9", countries: []string{"DE"}, notEmergency: []string{"9", "09"}, toll: true},
		// What the two read differently, and the check cannot follow.
		{name: "RepeatOver1000", pattern: "110|[0-9]{1,1001}", countries: []string{"DE"}, unjudged: true},
		{name: "CollatingElement", pattern: "110|[[.0.]-[.9.]]*", countries: []string{"DE"}, unjudged: true},
		{name: "GNUEscape", pattern: `110|\\w*`, countries: []string{"DE"}, unjudged: true},
		{name: "QuoteEndsTheExpression", pattern: `1)" 1|(`, countries: []string{"DE"}, unjudged: true},
		// Inside [ ] a backslash is a character to glibc: digits of any length.
		{name: "BackslashInBracket", pattern: `110|[\\[:digit:]]*`, countries: []string{"DE"}, unbounded: true, toll: true},
		// glibc loses the anchors in a {m,n} repeat's copies: (1(2$)?){2} matches 1212.
		{name: "AnchorInInterval", pattern: "(1(2$)?){2}", countries: []string{"DE"}, unjudged: true},
		// Asterisk counts ( and [ to split REGEX's arguments, here one ( too many.
		{name: "ParenInBracket", pattern: "110|[(]", countries: []string{"DE"}, invalid: true, missing: map[string][]string{"DE": {"110"}}},
		{name: "DigitClass", pattern: "110|[[:digit:]]", countries: []string{"DE"}, toll: true, notEmergency: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tollguard.CheckEmergencyPattern(tc.pattern, tc.countries)
			if (r.Invalid != "") != tc.invalid || (r.Unjudged != "") != tc.unjudged || r.Unbounded != tc.unbounded || r.Toll != tc.toll {
				t.Errorf("invalid %q unjudged %q unbounded %v toll %v; want invalid %v unjudged %v unbounded %v toll %v", r.Invalid, r.Unjudged, r.Unbounded, r.Toll, tc.invalid, tc.unjudged, tc.unbounded, tc.toll)
			}
			if !reflect.DeepEqual(r.NotEmergency, tc.notEmergency) {
				t.Errorf("not emergency %q, want %q", r.NotEmergency, tc.notEmergency)
			}
			if !reflect.DeepEqual(r.PaidElsewhere, tc.paidElsewhere) {
				t.Errorf("paid elsewhere %q, want %q", r.PaidElsewhere, tc.paidElsewhere)
			}
			if tc.missing == nil {
				tc.missing = map[string][]string{}
			}
			if !reflect.DeepEqual(r.Missing, tc.missing) {
				t.Errorf("missing %q, want %q", r.Missing, tc.missing)
			}
		})
	}
}

func TestEmergencyPatternMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, number string
		want            bool
	}{
		{"", "112", false}, // unset: the include's own 112|911|999 are not its business
		{"000|106", "106", true},
		{"000|106", "106#", true},
		{"000|106", "1060", false},
		{"000|106", "0106", false},
		{`10\6`, "106", true},  // the backslash is dropped
		{"10(6", "106", false}, // does not compile: matches nothing
		{"00[0-9]*", "0099999999999", true},
		{"110)|.*", "1100252612345678", true}, // the ) closes the include's group: ^(110) then matches any number after 110
		{"110)|.*", "0099999999999", false},
		{"110|[0-9]{,}", "0099999999999", true}, // glibc reads {,} as a repeat
		{"110|1{1001}", "0099999999999", true},  // a count glibc takes and Go's parser refuses: cannot tell, so it counts
	} {
		if got := tollguard.EmergencyPatternMatches(tc.pattern, tc.number); got != tc.want {
			t.Errorf("EmergencyPatternMatches(%q, %q) = %v, want %v", tc.pattern, tc.number, got, tc.want)
		}
	}
}

// FuzzCheckEmergencyPattern: any text an admin can put in [globals] is
// judged without a panic; every number reported as let past the gate is
// one the include's REGEX would match, and every short one it matches
// is reported, or an emergency number there.
func FuzzCheckEmergencyPattern(f *testing.F) {
	for _, p := range []string{"", "000|106", "110|5551234", "[0-9]*", "11(0", `11\0`, "1414|14[0-9]", "(1|2){3}", "[^0-8]1", ".?1{2,3}", "(|){1000}",
		"110)|(112", "110|112)", "0{,1}9", "1$|^2", "(^1|2$)"} {
		f.Add(p, "DE")
	}
	short := []string{""}
	for range 3 {
		for _, s := range short {
			for _, c := range "0123456789*#+" {
				short = append(short, s+string(c))
			}
		}
	}
	f.Fuzz(func(t *testing.T, pattern, country string) {
		r := tollguard.CheckEmergencyPattern(pattern, []string{country})
		if r.Regex == "" || r.Unbounded { // unset, invalid or unjudged
			return
		}
		re, err := regexp.CompilePOSIX(r.Regex)
		if err != nil {
			t.Fatalf("%q compiled in the check but not here: %v", r.Regex, err)
		}
		for _, n := range r.NotEmergency {
			if !re.MatchString(n) && !re.MatchString(n+"#") {
				t.Fatalf("%q: reported %q, which it does not match", r.Regex, n)
			}
		}
		for _, s := range short {
			n := strings.TrimSuffix(s, "#")
			if n == "" || n == "#" || !re.MatchString(s) || slices.Contains(r.NotEmergency, n) || tollguard.IsEmergency(n, country) {
				continue
			}
			t.Fatalf("%q matches %q, not reported", r.Regex, s)
		}
	})
}

// TestEmergencyPaidElsewhere: a number stays off the include's list when
// another of the PBX's countries reads it as one that costs money. A
// caller ID code's form is as long as a number and is judged by whatever
// it reads as (GB 141999 is a Berlin number); a plain emergency number
// only where it is premium or a short code that costs money: ZA's 10111
// or FR's 116000 is no number in GB or the US, and left off it waited
// for the gate (hung up while tollguard was down).
func TestEmergencyPaidElsewhere(t *testing.T) {
	for _, tt := range []struct {
		n         string
		countries []string
		want      string // "" stays on the list; else a part of the reason
	}{
		{"10111", []string{"ZA", "GB"}, ""},
		{"10111", []string{"ZA", "US"}, ""},
		{"116000", []string{"FR", "US"}, ""},
		{"1414", []string{"CH", "BE"}, "BE"},
		{"141999", []string{"GB", "DE"}, "DE"},
		{"141999", []string{"GB", "AD"}, "premium in AD"},
		{"141999", []string{"GB", "US"}, "unknown cost in US"},
		{"141999", []string{"GB"}, ""},
	} {
		got := tollguard.EmergencyPaidElsewhere(tt.n, tt.countries)
		if (got == "") != (tt.want == "") || !strings.Contains(got, tt.want) {
			t.Errorf("EmergencyPaidElsewhere(%s, %v) = %q, want %q", tt.n, tt.countries, got, tt.want)
		}
	}
}
