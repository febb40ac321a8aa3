package tollguard

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Column names a rate deck's header may use, normalised by deckColumn,
// best first: where a deck has two (code and prefix), the earlier wins.
var (
	deckPrefixNames = []string{"prefix", "prefixes", "dialcode", "dialcodes", "code", "codes",
		"diallingcode", "dialingcode", "destinationcode"}
	// A deck that splits the prefix in two (country code, area code)
	// has no one column to price by: an area code alone is another
	// country's prefix (UK 20 read as Egypt +20).
	deckSplitPrefixNames = []string{"areacode", "citycode", "countrycode", "cc", "ndc"}
	deckDestNames        = []string{"destination", "description", "country", "name", "destinationname", "countryname", "dest"}
	deckRateNames        = []string{"rate", "rateperminute", "rate/min", "ratepermin", "price", "priceperminute", "price/min",
		"pricepermin", "cost", "costperminute", "cost/min", "perminute", "permin"}
)

// deckHeaderLines is how far down the file ParseRateDeck looks for the
// header row: carrier exports often start with a title or a date.
const deckHeaderLines = 10

// ParseRateDeck reads a carrier-style rate deck as CSV and calls fn for
// each rate, in file order, with the line it is on.
//
// The header row names the columns, in any order and case: the prefix
// (prefix, code, dial code, dialcode, prefixes), the destination
// (destination, description, country, name; optional) and the
// per-minute price (rate, price, rate per minute, cost, rate/min; a unit
// in brackets saying per second is refused). A prefix split over a
// country-code and an area-code column is refused. Other columns
// (effective date, increments, ...) are ignored, and so are lines
// above the header (a title, a date). Fields are separated by ',' or
// ';' (or tabs), found from the header row; quoted fields, a UTF-8
// byte order mark and bare-CR line endings are fine. Prefixes may carry
// '+' and spaces ("+44 20"); a cell may list several, split by ',', ';'
// or '|' ("4420,4421"). The price is a decimal string, parsed with
// ParseRate: never a float. In a deck separated by ';' or tabs, a decimal comma ("0,0123") is read as a
// decimal point; a row with more non-empty fields than the header (a
// decimal comma splitting a price in a ',' deck) is a bad row. A prefix repeated with the same price is taken once; a
// prefix repeated with another price is an error, since which one is
// meant cannot be known.
//
// Every row is checked. Bad rows are collected (the first 50 listed) and
// returned as one EINVALID error naming each line and what is wrong.
// The contract with the caller is all or nothing: fn is called for the
// good rows in order until the first bad one is seen, and not after; so
// when ParseRateDeck returns an error, the caller must discard whatever
// fn did (the store calls it inside one transaction and rolls back).
// An error from fn stops the parse and is returned, wrapped with its
// line. A deck with no rates at all is an error.
func ParseRateDeck(r io.Reader, fn func(line int, e RateEntry) error) error {
	br, err := bareCRLines(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return fmt.Errorf("read rate deck: %w", err)
	}
	h, err := findDeckHeader(br)
	if err != nil {
		return err
	}
	skipBOM(br)
	for range h.line - 1 {
		if _, err := br.ReadString('\n'); err != nil {
			return fmt.Errorf("read rate deck: %w", err)
		}
	}
	cr := csv.NewReader(br)
	cr.Comma = h.sep
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil { // the header row itself
		return Errorf(EINVALID, "rate deck: line %d: the header row: %v", h.line, err)
	}

	type seenRate struct {
		line int
		rate Rate
	}
	seen := make(map[string]seenRate)
	bad := rowErrors{what: "rate deck"}
	rates := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("read rate deck: %w", err)
			}
			bad.add(pe.Line+h.line-1, "%v (quote fields that contain the separator or quotes)", pe.Err)
			continue
		}
		rl, _ := cr.FieldPos(0)
		line := rl + h.line - 1
		if blankRecord(rec) {
			continue
		}
		if extra := extraFields(rec, len(h.names)); extra != "" {
			// "1,USA,0,0080": a decimal comma in a comma deck splits
			// the price, and 0 would price the destination free.
			bad.add(line, "the row has %d fields, the header %d (extra %q): a decimal comma splits a price in a comma-separated deck; write prices with a decimal point, or separate the fields with ';'", len(rec), len(h.names), extra)
			continue
		}
		if len(rec) <= h.prefix || len(rec) <= h.rate {
			fields := "fields"
			if len(rec) == 1 {
				fields = "field"
			}
			col := max(h.prefix, h.rate)
			bad.add(line, "the row has %d %s, but the header puts %s in field %d", len(rec), fields, strings.TrimSpace(h.names[col]), col+1)
			continue
		}
		rate, msg := deckRate(rec[h.rate], h.sep)
		if msg != "" {
			bad.add(line, "%s", msg)
			continue
		}
		dest := ""
		if h.dest >= 0 && h.dest < len(rec) {
			dest = strings.TrimSpace(rec[h.dest])
		}
		if len(dest) > maxDestination {
			bad.add(line, "the destination is %d bytes long (at most %d): is a quote left open on this line?", len(dest), maxDestination)
			continue
		}
		prefixes := strings.FieldsFunc(rec[h.prefix], func(r rune) bool { return r == ',' || r == ';' || r == '|' })
		if len(prefixes) == 0 {
			bad.add(line, "prefix is empty")
			continue
		}
		for _, raw := range prefixes {
			p, msg := normPrefix(raw)
			if msg != "" {
				bad.add(line, "%s", msg)
				continue
			}
			if prev, dup := seen[p]; dup {
				if prev.rate != rate {
					bad.add(line, "prefix %s is also on line %d at %s, here at %s; give each prefix one rate (keep the rows of one effective date)", p, prev.line, prev.rate, rate)
				}
				continue
			}
			seen[p] = seenRate{line, rate}
			rates++
			if bad.n > 0 {
				continue // the import fails anyway: only keep checking
			}
			if err := fn(line, RateEntry{Prefix: p, Destination: dest, Rate: rate}); err != nil {
				return fmt.Errorf("rate deck line %d: %w", line, err)
			}
		}
	}
	if err := bad.err(); err != nil {
		return err
	}
	if rates == 0 {
		return Errorf(EINVALID, "rate deck: no rates below the header on line %d", h.line)
	}
	return nil
}

// deckHeader is where a deck's header row is and what it says.
type deckHeader struct {
	line               int  // 1-based line of the header row
	sep                rune // field separator
	prefix, dest, rate int  // column indexes; dest -1 if absent
	names              []string
}

// maxDestination bounds a destination name: carriers' longest are under
// a hundred bytes, and a cell of megabytes (an unclosed quote swallowing
// the rest of the file) would be carried into every later comparison.
const maxDestination = 256

// findDeckHeader looks at the first lines, without consuming them, for a
// row naming a prefix and a rate column under some separator.
func findDeckHeader(br *bufio.Reader) (deckHeader, error) {
	lines, err := firstLines(br, deckHeaderLines)
	if err != nil {
		return deckHeader{}, fmt.Errorf("read rate deck: %w", err)
	}
	for i, l := range lines {
		for _, sep := range []rune{guessSep(l), ',', ';', '\t'} {
			cr := csv.NewReader(strings.NewReader(l))
			cr.Comma = sep
			cr.LazyQuotes = true
			rec, err := cr.Read()
			if err != nil {
				continue
			}
			h := deckHeader{line: i + 1, sep: sep, names: rec}
			h.prefix = deckColumn(rec, deckPrefixNames)
			h.rate = deckColumn(rec, deckRateNames)
			h.dest = deckColumn(rec, deckDestNames)
			if h.prefix < 0 && h.rate >= 0 && deckColumn(rec, deckSplitPrefixNames) >= 0 {
				return deckHeader{}, Errorf(EINVALID, "rate deck: line %d: the prefix is split over columns (%s): give one prefix column with the whole prefix, country code and area code together (4420 for London)", i+1, strings.Join(rec, string(sep)))
			}
			if h.prefix >= 0 && h.rate >= 0 && h.prefix != h.rate {
				if msg := perMinuteUnit(rec[h.rate]); msg != "" {
					return deckHeader{}, Errorf(EINVALID, "rate deck: line %d: %s", i+1, msg)
				}
				return h, nil
			}
		}
	}
	if len(lines) == 0 {
		return deckHeader{}, Errorf(EINVALID, "rate deck: the file is empty")
	}
	return deckHeader{}, Errorf(EINVALID, "rate deck: no header row naming a prefix and a rate column in the first %d lines; "+
		"start the file with a header such as \"prefix,destination,rate\" (prefix may also be called code or dial code; rate may be price, cost or rate per minute)", deckHeaderLines)
}

// deckColumn returns the index of the first of names (best first) that
// the header has, or -1.
func deckColumn(header []string, names []string) int {
	norm := make([]string, len(header))
	for i, h := range header {
		norm[i] = normColumn(h)
	}
	for _, name := range names {
		for i, h := range norm {
			if h == name {
				return i
			}
		}
	}
	return -1
}

// normColumn lower-cases a header name and drops spaces, '_', '-', '.'
// and a trailing unit in brackets: "Rate Per Minute (GBP)" → "rateperminute".
func normColumn(s string) string {
	s = strings.ToLower(stripBOM(strings.TrimSpace(s)))
	if i := strings.IndexAny(s, "(["); i > 0 {
		s = s[:i]
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '_', '-', '.', '"':
			return -1
		}
		return r
	}, s)
}

// extraFields returns the non-empty fields of rec beyond the header's n,
// joined, or "" (trailing empty fields are a spreadsheet's habit).
func extraFields(rec []string, n int) string {
	if len(rec) <= n {
		return ""
	}
	var extra []string
	for _, f := range rec[n:] {
		if strings.TrimSpace(f) != "" {
			extra = append(extra, f)
		}
	}
	return strings.Join(extra, ",")
}

// perMinuteUnit says what is wrong with a rate column whose unit (in
// brackets, which normColumn drops) is not per minute: "Rate (per
// second)" read as per minute would charge a sixtieth.
func perMinuteUnit(name string) string {
	i := strings.IndexAny(name, "([")
	if i < 0 {
		return ""
	}
	unit := strings.ToLower(name[i:])
	if (strings.Contains(unit, "sec") || strings.Contains(unit, "/s)") || strings.Contains(unit, "/s]")) && !strings.Contains(unit, "60") {
		return fmt.Sprintf("the rate column %q is priced per second; tollguard takes prices per minute: multiply by 60 and name the column rate", strings.TrimSpace(name))
	}
	return ""
}

// deckRate parses a per-minute price cell, or says what is wrong with it.
func deckRate(s string, sep rune) (Rate, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, "rate is empty"
	}
	if len(s) > 32 {
		return 0, fmt.Sprintf("rate %q: too long for a price per minute", clip(s))
	}
	if sep != ',' && strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		s = strings.Replace(s, ",", ".", 1)
	}
	r, err := ParseRate(s)
	if err != nil {
		return 0, ErrorMessage(err)
	}
	return r, ""
}
