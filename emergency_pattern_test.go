package tollguard_test

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/tollguard/tollguard"
)

func TestCheckEmergencyPattern(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
		countries     []string
		invalid       bool
		unbounded     bool
		notEmergency  []string
		toll          bool
		paidElsewhere []string
		missing       map[string][]string
	}{
		{name: "UnsetGB", countries: []string{"GB"}},
		{name: "UnsetDE", countries: []string{"de"}, missing: map[string][]string{"DE": {"110"}}},
		{name: "UnsetFR", countries: []string{"FR"}, missing: map[string][]string{"FR": {"15", "17", "18", "114", "115", "119", "191", "196", "197", "116000"}}},
		{name: "WhatDialplanEmergencyPrints", pattern: "000|106", countries: []string{"AU"}},
		{name: "ClassForTwo", pattern: "11[02]", countries: []string{"DE", "DE"}},
		// A backslash is dropped by Asterisk's argument parsing.
		{name: "Backslash", pattern: `11\0`, countries: []string{"DE"}},
		{name: "Star", pattern: "[0-9]*", countries: []string{"GB"}, unbounded: true, toll: true},
		{name: "DotStar", pattern: "110|0.*", countries: []string{"DE"}, unbounded: true, toll: true},
		{name: "TooMany", pattern: "[0-9]{4}", countries: []string{"GB"}, unbounded: true, toll: true},
		{name: "NationalNumber", pattern: "110|5551234", countries: []string{"DE"}, notEmergency: []string{"5551234"}, toll: true},
		{name: "OptionalDigits", pattern: "110|0900[0-9]?", countries: []string{"DE"}, toll: true,
			notEmergency: []string{"0900", "09000", "09001", "09002", "09003", "09004", "09005", "09006", "09007", "09008", "09009"}},
		// US 100 and 101 are no emergency numbers there: past the gate.
		{name: "OtherCountrysNumbers", pattern: "100|101", countries: []string{"US"}, notEmergency: []string{"100", "101"}, toll: true},
		{name: "EmergencyHerePremiumThere", pattern: "1414|143", countries: []string{"CH", "BE"}, paidElsewhere: []string{"1414 (premium in BE)"},
			missing: map[string][]string{"BE": {"100", "101"}, "CH": {"118", "144", "145", "147", "1415"}}},
		{name: "Invalid", pattern: "11(0", countries: []string{"DE"}, invalid: true, missing: map[string][]string{"DE": {"110"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tollguard.CheckEmergencyPattern(tc.pattern, tc.countries)
			if (r.Invalid != "") != tc.invalid || r.Unbounded != tc.unbounded || r.Toll != tc.toll {
				t.Errorf("invalid %q unbounded %v toll %v; want invalid %v unbounded %v toll %v", r.Invalid, r.Unbounded, r.Toll, tc.invalid, tc.unbounded, tc.toll)
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
	} {
		if got := tollguard.EmergencyPatternMatches(tc.pattern, tc.number); got != tc.want {
			t.Errorf("EmergencyPatternMatches(%q, %q) = %v, want %v", tc.pattern, tc.number, got, tc.want)
		}
	}
}

// FuzzCheckEmergencyPattern: any text an admin can put in [globals] is
// judged without a panic, and every number reported as let past the gate
// is one the include's REGEX would match.
func FuzzCheckEmergencyPattern(f *testing.F) {
	for _, p := range []string{"", "000|106", "110|5551234", "[0-9]*", "11(0", `11\0`, "1414|14[0-9]", "(1|2){3}", "[^0-8]1", ".?1{2,3}", "(|){1000}"} {
		f.Add(p, "DE")
	}
	f.Fuzz(func(t *testing.T, pattern, country string) {
		r := tollguard.CheckEmergencyPattern(pattern, []string{country})
		if r.Invalid != "" || r.Unbounded {
			return
		}
		re, err := regexp.CompilePOSIX("^(" + r.Pattern + ")#?$")
		if err != nil {
			t.Fatalf("%q compiled in the check but not here: %v", r.Pattern, err)
		}
		for _, n := range r.NotEmergency {
			if !re.MatchString(n) {
				t.Fatalf("%q: reported %q, which it does not match", r.Pattern, n)
			}
		}
	})
}
