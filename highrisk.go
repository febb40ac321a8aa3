package tollguard

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

//go:embed highrisk.csv
var defaultHighRiskCSV []byte

// DefaultHighRiskCSV returns the shipped high-risk list as CSV, with its
// header comment naming the sources: the template for an admin's own.
func DefaultHighRiskCSV() []byte { return bytes.Clone(defaultHighRiskCSV) }

var defaultHighRisk = sync.OnceValue(func() []HighRiskEntry {
	entries, err := ParseHighRiskCSV(bytes.NewReader(defaultHighRiskCSV))
	if err != nil {
		panic("tollguard: embedded highrisk.csv: " + err.Error()) // a test keeps this from shipping
	}
	return entries
})

// DefaultHighRisk returns the shipped high-risk destination list
// (highrisk.csv). The slice is the caller's own.
func DefaultHighRisk() []HighRiskEntry { return slices.Clone(defaultHighRisk()) }

var defaultHighRiskList = sync.OnceValue(func() *PrefixList { return NewPrefixList(defaultHighRisk()) })

// DefaultHighRiskList returns a matcher over DefaultHighRisk. It is
// shared and read-only.
func DefaultHighRiskList() *PrefixList { return defaultHighRiskList() }

// highRiskSep is the separator of a list whose first row is line: the
// one under which that row starts with a prefix or is a header. Counting
// separators alone took "881,Inmarsat; Iridium; Thuraya,ITU" for ';'.
func highRiskSep(line string) rune {
	guess := guessSep(line)
	for _, sep := range []rune{guess, ',', ';', '\t'} {
		cr := csv.NewReader(strings.NewReader(line))
		cr.Comma, cr.FieldsPerRecord, cr.TrimLeadingSpace, cr.LazyQuotes = sep, -1, true, true
		rec, err := cr.Read()
		if err != nil || len(rec) < 2 {
			continue
		}
		if _, msg := normPrefix(strings.TrimSpace(rec[0])); msg == "" {
			return sep
		}
		if _, ok := highRiskHeader(rec); ok {
			return sep
		}
	}
	return guess
}

// ParseHighRiskCSV reads a high-risk destination list: CSV with the
// columns prefix,description,source (in that order, or in any order
// under a header row naming them), separated by ',' or ';', "#"
// comment lines, and prefixes in
// E.164 form with or without "+". A rate deck is refused: a header
// naming a price column, or a price in the source column. It checks every row and returns one
// EINVALID error listing each bad one by line number; on error the list
// must not be used. A file with no rows is an empty list.
func ParseHighRiskCSV(r io.Reader) ([]HighRiskEntry, error) {
	br, err := bareCRLines(bufio.NewReaderSize(r, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("read high-risk list: %w", err)
	}
	if err := notText(br, "high-risk list"); err != nil {
		return nil, err
	}
	lines, err := firstLines(br, 50)
	if err != nil {
		return nil, fmt.Errorf("read high-risk list: %w", err)
	}
	sep := ','
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" && t[0] != '#' {
			sep = highRiskSep(l)
			break
		}
	}
	skipBOM(br)
	cr := csv.NewReader(br)
	cr.Comma = sep
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true

	bad := rowErrors{what: "high-risk list"}
	col := map[string]int{"prefix": 0, "description": 1, "source": 2}
	seen := make(map[string]int) // prefix → line
	var entries []HighRiskEntry
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, Errorf(EINVALID, "high-risk list: %v", err)
			}
			bad.add(pe.Line, "%v (quote fields that contain commas or quotes)", pe.Err)
			continue
		}
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			if name, ok := looksLikeDeckHeader(rec); ok {
				return nil, Errorf(EINVALID, "line %d: the header names a %q column: this looks like a rate deck, not a high-risk list "+
					"(columns prefix,description,source); import a rate deck with `tollguard rates import`", line, name)
			}
			if h, ok := highRiskHeader(rec); ok {
				col = h
				continue
			}
		}
		if blankRecord(rec) {
			continue
		}
		field := func(name string) string {
			if i := col[name]; i >= 0 && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		p, msg := normPrefix(field("prefix"))
		if msg != "" {
			bad.add(line, "%s", msg)
			continue
		}
		if prev, dup := seen[p]; dup {
			bad.add(line, "prefix %s is already on line %d; keep one of them", p, prev)
			continue
		}
		seen[p] = line
		desc, src := field("description"), field("source")
		if isPrice(src) {
			// A deck without a header: its third column is the rate.
			bad.add(line, "source %q is a price: is this a rate deck? A high-risk list has the columns prefix,description,source", src)
			continue
		}
		if len(desc) > maxDestination || len(src) > maxDestination {
			bad.add(line, "the description or source is over %d bytes long: is a quote left open on this line?", maxDestination)
			continue
		}
		if desc == "" {
			desc = "+" + p
		}
		entries = append(entries, HighRiskEntry{Prefix: p, Description: desc, Source: src})
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return entries, nil
}

// highRiskHeader maps a header row's column names, if rec is one: it
// names a prefix column and holds no number. A data row whose
// description is the word "prefix" ("79620,prefix,src") is data.
func highRiskHeader(rec []string) (map[string]int, bool) {
	col := map[string]int{"prefix": -1, "description": -1, "source": -1}
	for i, f := range rec {
		if strings.Trim(f, "+0123456789 ") == "" && strings.ContainsAny(f, "0123456789") {
			return nil, false
		}
		name := strings.ToLower(strings.TrimSpace(f))
		if j, ok := col[name]; ok && j < 0 {
			col[name] = i
		}
	}
	return col, col["prefix"] >= 0
}

// looksLikeDeckHeader reports a header row (no number-only field) that names a
// rate deck's price column, and that column's name.
func looksLikeDeckHeader(rec []string) (string, bool) {
	for _, f := range rec {
		if strings.Trim(f, "+0123456789 ") == "" && strings.ContainsAny(f, "0123456789") {
			return "", false
		}
	}
	for _, f := range rec {
		if slices.Contains(deckRateNames, normColumn(f)) {
			return strings.TrimSpace(f), true
		}
	}
	return "", false
}

// isPrice reports a decimal number with a fraction ("0.0100", "0,08"),
// which no source names.
func isPrice(s string) bool {
	i := strings.IndexAny(s, ".,")
	if i < 0 || i == len(s)-1 {
		return false
	}
	return strings.Trim(s[:i], "0123456789") == "" && strings.Trim(s[i+1:], "0123456789") == ""
}

func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// PrefixList is an in-memory longest-prefix matcher over high-risk
// entries. It implements HighRiskMatcher; a nil *PrefixList matches
// nothing. It is read-only once built, so safe for concurrent use.
type PrefixList struct {
	entries map[string]HighRiskEntry // by prefix
	maxLen  int
}

var _ HighRiskMatcher = (*PrefixList)(nil)

// NewPrefixList builds a matcher. Prefixes may carry a leading "+"; for
// a prefix given twice the later entry wins.
func NewPrefixList(entries []HighRiskEntry) *PrefixList {
	l := &PrefixList{entries: make(map[string]HighRiskEntry, len(entries))}
	for _, e := range entries {
		e.Prefix = strings.TrimPrefix(e.Prefix, "+")
		if e.Prefix == "" {
			continue
		}
		l.entries[e.Prefix] = e
		l.maxLen = max(l.maxLen, len(e.Prefix))
	}
	return l
}

// Len returns the number of prefixes.
func (l *PrefixList) Len() int {
	if l == nil {
		return 0
	}
	return len(l.entries)
}

// Lookup returns the entry with the longest prefix of e164 ("+1876...",
// or without the "+").
func (l *PrefixList) Lookup(e164 string) (HighRiskEntry, bool) {
	if l == nil {
		return HighRiskEntry{}, false
	}
	d := strings.TrimPrefix(e164, "+")
	// Try the longest candidate first; map lookups by a substring do not
	// allocate, so this costs at most maxLen lookups.
	for n := min(len(d), l.maxLen); n > 0; n-- {
		if e, ok := l.entries[d[:n]]; ok {
			return e, true
		}
	}
	return HighRiskEntry{}, false
}

// MatchHighRisk implements HighRiskMatcher.
func (l *PrefixList) MatchHighRisk(e164 string) (string, bool) {
	e, ok := l.Lookup(e164)
	if !ok {
		return "", false
	}
	if e.Description == "" {
		return "+" + e.Prefix, true // never "": Number.HighRisk "" means no match
	}
	return e.Description, true
}
