package tollguard

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Column names a rate deck's header may use, normalised by deckColumn,
// best first: where a deck has two (code and prefix), the earlier wins.
var (
	deckPrefixNames = []string{"prefix", "prefixes", "dialcode", "dialcodes", "code", "codes",
		"diallingcode", "dialingcode", "destinationcode"}
	// A deck that splits the prefix in two (country code, area code)
	// has no one column to price by: an area code alone is another
	// country's prefix (UK 20 read as Egypt +20).
	deckSplitPrefixNames = append([]string{"areacode", "citycode", "ndc"}, deckCountryCodeNames...)
	// A country code column, under the names carriers give it. Not "dial
	// code" or "dialling code" (often the whole prefix), "IDD" (also
	// the 00 dialled before it) nor "phone code" (also an area code).
	deckCountryCodeNames = []string{"countrycode", "cc", "countrycallingcode", "callingcode", "countryprefix",
		"countrydialcode", "countrydiallingcode", "countrydialingcode", "isdcode", "countryisdcode",
		"internationalcallingcode", "telephonecountrycode", "countryphonecode"}
	deckDestNames = []string{"destination", "description", "country", "name", "destinationname", "countryname", "dest"}
	deckRateNames = []string{"rate", "rateperminute", "rate/min", "ratepermin", "price", "priceperminute", "price/min",
		"pricepermin", "cost", "costperminute", "cost/min", "perminute", "permin"}
	// Billing steps: "60/60" in one column, or one figure for both.
	deckStepNames = []string{"billingincrement", "billingincrements", "increment", "increments",
		"billinginterval", "billingintervals", "billingterms", "billingstep", "billingsteps", "ratinginterval",
		"nextincrement", "subsequentincrement", "additionalincrement", "nextinterval", "subsequentinterval",
		"intervaln", "nextstep", "subsequentstep", "tarifficationstep", "billingblock", "tarification", "tariffication",
		"granularity", "min/inc", "min/incr", "init/incr", "init/inc", "initial/next", "initial/subsequent", "first/next",
		"billing", "interval", "intervals", "pulse", "subsequent", "next", "incr", "inc", "terms", "billingcycle"}
	// The first step, where a deck gives it in a column of its own.
	deckFirstNames = []string{"initialincrement", "initialinterval", "firstincrement", "firstinterval",
		"initialperiod", "firstperiod", "minduration", "minimumduration", "mindur", "minsec", "minsecs",
		"minimumseconds", "mintime", "minimaltime", "interval1", "firststep", "initialstep", "initialbillingtime",
		"initialblock", "min", "minimum", "minimal", "initial", "init", "first"}
	deckFeeNames = []string{"connectionfee", "connectfee", "connfee", "connectioncharge", "connectcharge", "conncharge",
		"connectioncost", "connectcost", "setupfee", "setupcharge", "setupcost", "callsetupfee", "flagfall",
		"connectionrate", "setuprate", "callfee", "percallfee", "percallcharge", "callcharge", "answerfee", "dialfee",
		"callsetup", "connection", "setup", "connect", "fee", "percall"}
	deckCurrencyNames = []string{"currency", "currencycode", "ccy", "billingcurrency"}
	// deckSoftNames are role names a deck may also give a column holding
	// something else ("Interval": peak; "Connection": mobile; "Setup": a
	// date). Such a column is read only when its first row parses, and
	// ignored otherwise, as before decks had billing terms.
	deckSoftNames = map[string]bool{"billing": true, "interval": true, "intervals": true, "pulse": true,
		"initial": true, "connection": true, "setup": true, "connect": true, "fee": true, "percall": true,
		"subsequent": true, "next": true, "incr": true, "inc": true, "terms": true, "billingcycle": true,
		"init": true, "first": true}
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
// per-minute price (rate, price, rate per minute, cost, rate/min). Two
// per-minute price columns are refused, since which one the carrier bills
// cannot be known; a price column per second, by its unit in brackets
// ("Rate (per second)") or its name ("rate/sec", "price per second"), is
// refused when it is the only one, and ignored beside a per-minute price.
// Optional columns give the carrier's billing terms: the steps (billing,
// increment, interval: "60/60", "30/6", or one figure for both), the
// first step on its own (initial increment, min duration, interval 1;
// the other column is then the later steps; 0 is no minimum) and a
// connection fee (connection fee, setup fee; empty is none). A deck without steps
// bills by the second. A header with a billing-like column tollguard
// does not read (a minimum charge, a second fee), steps in minutes, or a
// first step without the steps after it is refused: the deck would be
// billed otherwise than the carrier bills. A column with a bare name
// that may hold something else (Interval, Connection, Setup) is read as
// terms only when its first row parses as them. The deck's currency
// comes from a currency column (one ISO code for the whole deck; a cell
// that is not one, "$", is ignored) or the rate column's unit when it
// holds just a code ("Rate (USD)", "Price [eur/min]"), and is passed in
// each entry from the row that names it on; a deck that says neither
// leaves it empty. A prefix split over a
// country-code and an area-code column is refused, and so is a prefix
// that does not hold its row's country or area code column, or that
// begins with the country code's digits but reads as the part after it
// (nationalAfterCode: 727 beside 7 is Almaty, 7727) unless the area
// code column reads it as the code and the area. Other columns
// (effective date, ...) are ignored, and so are lines above the header
// (a title, a date). Fields are separated by ',' or
// ';' (or tabs), found from the header row; quoted fields, a UTF-8
// byte order mark and bare-CR line endings are fine. Prefixes may carry
// '+' and spaces ("+44 20"); a cell may list several, split by ',', ';'
// or '|' ("4420,4421"). The price is a decimal string, parsed with
// ParseRate: never a float. In a deck separated by ';' or tabs, a decimal comma ("0,0123") is read as a
// decimal point; a row with more non-empty fields than the header (a
// decimal comma splitting a price in a ',' deck) is a bad row. A prefix
// repeated with the same price and terms is taken once; a prefix
// repeated with another price or terms is an error, since which one is
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
	return ParseRateDeckIn(r, "", fn)
}

// ParseRateDeckIn is ParseRateDeck for a deck the admin says is priced
// in currency (an ISO code, or "" when not said). Every entry then
// carries currency; a rate column's unit or a currency column naming
// another code is an error.
func ParseRateDeckIn(r io.Reader, currency string, fn func(line int, e RateEntry) error) error {
	br, err := bareCRLines(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return fmt.Errorf("read rate deck: %w", err)
	}
	if err := notText(br, "rate deck"); err != nil {
		return err
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

	known := currency
	if known == "" {
		known = h.currency
	}
	if scale, err := CurrencyScale(known); err == nil && known != "" && scale == 0 {
		h.wholeUnits = true
	}
	soft := softState{undecided: map[int]bool{}, empty: map[int][]int{}, dropped: map[int]droppedCol{}}
	for _, i := range []int{h.step, h.first, h.fee} {
		if i >= 0 && deckSoftNames[normColumn(h.names[i])] {
			soft.undecided[i] = true
		}
	}
	h.soft = &soft
	deckCurrency, currencyLine := h.currency, h.line
	if currency != "" {
		if h.currency != "" && h.currency != currency {
			// A nightly import with --currency would otherwise take a
			// carrier's switch of currency silently.
			return Errorf(EINVALID, "rate deck: line %d: the rate column %q says %s, but the deck is imported as %s: import it with the currency it is in",
				h.line, strings.TrimSpace(h.names[h.rate]), h.currency, currency)
		}
		deckCurrency, currencyLine = currency, 0
	}
	type seenRate struct {
		line int
		rate Rate
		bill Billing
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
		if extra := extraFields(rec, h.fields(rec)); extra != "" {
			// "1,USA,0,0080": a decimal comma in a comma deck splits
			// the price, and 0 would price the destination free.
			bad.add(line, "the row has %d fields, the header %d (extra %q): a decimal comma splits a price in a comma-separated deck; write prices with a decimal point, or separate the fields with ';'", len(rec), h.fields(rec), extra)
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
		if !h.wholeUnits && deckCurrency == "" && h.cur >= 0 && h.cur < len(rec) {
			// A currency column names the deck's currency before the
			// soft columns are judged: in yen, a fee of 10 is a fee,
			// not a flag (as for "Rate (JPY)" or --currency JPY).
			if code, err := ParseCurrency(rec[h.cur]); err == nil {
				if scale, err := CurrencyScale(code); err == nil && scale == 0 {
					h.wholeUnits = true
				}
			}
		}
		if col := h.splitPrice(rec); col >= 0 {
			// "1,USA,0,0080,": a decimal comma split the price (or the
			// fee), and the next column (free text, or one the header
			// left unnamed) took the rest; 0 would price the USA free.
			bad.add(line, "%q is followed by %q: a decimal comma splits a price in a comma-separated deck; write prices with a decimal point (0 as 0.00), or separate the fields with ';'",
				strings.TrimSpace(rec[col]), strings.TrimSpace(rec[col+1]))
			continue
		}
		if i := h.shiftedTerms(rec); i >= 0 && h.step >= 0 && slices.Contains(deckStepNames, normColumn(h.names[i])) {
			// Named as steps too: "name it billing" did not help a
			// column named billing beside an increment column.
			bad.add(line, "the %q and %q columns both give billing steps (%q and %q): keep the one the carrier bills by and remove the other",
				strings.TrimSpace(h.names[h.step]), strings.TrimSpace(h.names[i]), strings.TrimSpace(field(rec, h.step)), strings.TrimSpace(rec[i]))
			continue
		} else if i >= 0 {
			bad.add(line, "the %s column, which tollguard does not read, holds billing steps %q: name it \"billing\", or if the columns are shifted, write prices with a decimal point",
				strings.TrimSpace(h.names[i]), strings.TrimSpace(rec[i]))
			continue
		}
		if msg := h.decideSoft(&soft, rec, line, &bad); msg != "" {
			return Errorf(EINVALID, "rate deck: line %d: %s", h.line, msg)
		}
		bill, msg := h.billing(rec)
		if msg != "" {
			bad.add(line, "%s", msg)
			continue
		}
		if h.cur >= 0 && h.cur < len(rec) {
			// A cell that is no ISO code ("$", "Euro") was ignored before
			// decks had a currency, and still is.
			if code, err := ParseCurrency(rec[h.cur]); err == nil {
				switch {
				case deckCurrency == "":
					deckCurrency, currencyLine = code, line
				case code != deckCurrency && currencyLine == 0:
					bad.add(line, "currency %s, but the deck is imported as %s", code, deckCurrency)
					continue
				case code != deckCurrency && currencyLine == h.line:
					bad.add(line, "currency %s, but the header's rate column %q says %s: one deck prices every account, so give it one currency",
						code, strings.TrimSpace(h.names[h.rate]), deckCurrency)
					continue
				case code != deckCurrency:
					bad.add(line, "currency %s, but line %d says %s: one deck prices every account, so give it one currency", code, currencyLine, deckCurrency)
					continue
				}
			}
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
			if msg := h.splitCode(rec, p); msg != "" {
				bad.add(line, "%s", msg)
				continue
			}
			if prev, dup := seen[p]; dup {
				if prev.rate != rate || prev.bill != bill {
					bad.add(line, "prefix %s is also on line %d at %s, here at %s; give each prefix one rate (keep the rows of one effective date)",
						p, prev.line, prev.bill.Price(prev.rate), bill.Price(rate))
				}
				continue
			}
			seen[p] = seenRate{line, rate, bill}
			rates++
			if bad.n > 0 {
				continue // the import fails anyway: only keep checking
			}
			if err := fn(line, RateEntry{Prefix: p, Destination: dest, Rate: rate, Billing: bill, Currency: deckCurrency}); err != nil {
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
	line               int    // 1-based line of the header row
	sep                rune   // field separator
	prefix, dest, rate int    // column indexes; dest -1 if absent
	step, first, fee   int    // billing columns, -1 if absent
	cur                int    // the currency column, -1 if absent
	wholeUnits         bool   // the deck's currency has no minor unit (yen)
	currency           string // from the rate column's unit, "" if none
	names              []string
	soft               *softState // while parsing rows
	// cc and area are a country- and an area-code column beside the
	// prefix, -1 if none. A row's prefix must hold their digits, or the
	// prefix is split over them (44 | 20 priced +20, Egypt). Both are
	// checked: the first one alone let 20 | 20 | 44 through.
	cc, area int
}

// unitCurrency returns the currency a column's unit names, when the
// unit holds just a code and words for "per minute" ("Rate (USD)",
// "Price [eur/min]", "Rate (per min, GBP)"), or "". A unit with other
// words is not a currency: "Rate (ALL IN)" is all-inclusive, not Albanian
// lek.
func unitCurrency(name string) string {
	i := strings.IndexAny(name, "([")
	if i < 0 {
		return ""
	}
	code := ""
	for _, w := range strings.FieldsFunc(name[i:], func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
	}) {
		switch strings.ToLower(w) {
		case "per", "min", "mins", "minute", "minutes":
			continue
		}
		if code != "" {
			return ""
		}
		code = w
	}
	if len(code) != 3 || notUnitCurrency[strings.ToUpper(code)] {
		return ""
	}
	c, err := ParseCurrency(code)
	if err != nil {
		return ""
	}
	return c
}

// notUnitCurrency are ISO codes that are also words a price column's
// unit may hold: "(ALL)" inclusive, "(STD)" standard, "(TOP)".
var notUnitCurrency = map[string]bool{"ALL": true, "STD": true, "TOP": true}

// unreadTerms says what is wrong with the header's billing columns: one
// that names a billing term tollguard does not read, one in minutes, or
// a first step with no later steps; "" when nothing is.
func (h deckHeader) unreadTerms() string {
	for i, name := range h.names {
		if h.reads(i) {
			continue
		}
		if billingTerm(name) && moneyTerm(name) {
			return fmt.Sprintf("column %q looks like a charge tollguard cannot bill (it bills a rate per minute in steps and one connection fee per call); "+
				"if it is 0 throughout, remove the column; if it is the connection fee, name it \"connection fee\" (one fee column only)", strings.TrimSpace(name))
		}
		if billingTerm(name) {
			return fmt.Sprintf("column %q looks like a billing term tollguard does not read, and the deck would be billed otherwise than the carrier bills; "+
				"name the steps \"billing\" (60/60), the first step \"min duration\", the fee \"connection fee\" (one column each), or remove the column", strings.TrimSpace(name))
		}
	}
	for _, i := range []int{h.step, h.first} {
		if i < 0 {
			continue
		}
		if j := strings.IndexAny(h.names[i], "(["); j >= 0 && inMinutes(h.names[i][j:]) {
			return fmt.Sprintf("the billing column %q is in minutes; tollguard takes billing steps in seconds (60/60): convert it and drop the unit", strings.TrimSpace(h.names[i]))
		}
	}
	if h.first >= 0 && h.step < 0 && !deckSoftNames[normColumn(h.names[h.first])] {
		return h.firstAlone()
	}
	if h.fee >= 0 {
		if msg := hundredthsUnit("fee", h.names[h.fee]); msg != "" {
			return msg
		}
	}
	return ""
}

func (h deckHeader) firstAlone() string {
	return fmt.Sprintf("the deck gives a first billing step (%q) but not the steps after it: add a billing column (60/60, or 60/1 for a minimum then by the second)", strings.TrimSpace(h.names[h.first]))
}

// inMinutes reports whether a unit in brackets says minutes and nothing
// else: "(min)", "[in minutes]"; not "(minimum/increment)", "(min/next)".
func inMinutes(unit string) bool {
	words := headerWords(unit)
	for _, w := range words {
		switch w {
		case "min", "mins", "minute", "minutes", "in":
		default:
			return false
		}
	}
	return len(words) > 0
}

// headerWords splits a header name into lower-case words of letters.
func headerWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r < 'a' || r > 'z' })
}

// billingTerm reports whether a column name names a billing term:
// steps, a minimum, a first period, a fee to connect. Names that say
// what kind of thing a column classifies ("Billing Code", "Connection
// Type", "Routing Step", "Contract Duration") are not terms.
func billingTerm(name string) bool {
	words := headerWords(name)
	has := map[string]bool{}
	for _, w := range words {
		switch w {
		case "code", "codes", "type", "zone", "region", "date", "name", "id", "group", "class", "category",
			"contract", "avg", "average", "routing", "route", "status", "description", "desc", "plan", "cycle",
			"acd", "asr", "pdd", "ner", "margin", "max", "maximum", "volume", "commitment", "quality",
			"peak", "offpeak", "band", "hours", "change", "dec":
			return false
		}
		has[w] = true
	}
	any := func(ws ...string) bool {
		for _, w := range ws {
			if has[w] {
				return true
			}
		}
		return false
	}
	switch {
	case any("rate", "price", "cost", "tariff") && any("min", "mins", "minute", "minutes"):
		return false // a price per minute: "Price/min", "Rate per min"
	case any("time") && any("interval") && !any("first", "initial", "init", "min", "minimum"):
		return false // a time band: "Time Interval" 08-18
	case any("increment", "increments", "interval", "intervals", "step", "steps", "pulse", "pulses", "rounding",
		"flagfall", "surcharge", "tariffication", "tarification", "granularity", "inc", "incr", "subsequent", "fee", "fees",
		"min", "minimum", "minimal", "charge", "charges"):
		return true
	case any("flat", "fixed") && any("rate", "price", "cost"):
		return true
	case any("first", "initial", "init") && any("duration", "dur", "sec", "secs", "seconds", "charge", "time", "period", "cost", "block", "next"):
		return true
	case any("connection", "connect", "conn", "setup", "set") && any("charge", "cost", "price", "rate"):
		return true
	case any("per") && any("call"), any("call", "flat", "fixed", "answer") && any("charge"):
		return true
	case any("billing") && any("unit", "units", "terms", "time", "seconds", "secs", "period", "periods", "block"):
		return true
	}
	return false
}

// moneyTerm reports whether a billing-term column holds money (a
// minimum charge, a fee), not seconds.
func moneyTerm(name string) bool {
	for _, w := range headerWords(name) {
		switch w {
		case "charge", "charges", "cost", "price", "fee", "fees", "amount":
			return true
		}
	}
	return false
}

// softState follows the role columns with a bare name that may hold
// something else ("Interval": peak; "Connection": mobile): each is read
// as terms once its first non-empty cell parses as them, and dropped
// (ignored, as before decks had terms) when that cell does not.
type softState struct {
	undecided map[int]bool  // soft role columns with only empty cells so far
	empty     map[int][]int // their lines with an empty cell, steps and first step only
	dropped   map[int]droppedCol
}

// droppedCol is the cell that showed a soft column holds no terms, and
// the role it was read for.
type droppedCol struct {
	line int
	cell string
	role *int
}

// decideSoft settles the soft columns on one row, adding bad rows for
// lines it now knows are wrong; it returns what makes the deck itself
// unreadable (a first step left without steps).
func (h *deckHeader) decideSoft(st *softState, rec []string, line int, bad *rowErrors) string {
	for _, role := range []*int{&h.step, &h.first, &h.fee} {
		i := *role
		if i < 0 || !st.undecided[i] {
			continue
		}
		s := field(rec, i)
		switch h.softVerdict(role, i, s) {
		case 0: // empty, or a zero fee: no evidence yet
			if s == "" && role != &h.fee { // an empty fee is none
				st.empty[i] = append(st.empty[i], line)
			}
		case 1:
			delete(st.undecided, i)
			for _, l := range st.empty[i] {
				bad.add(l, "the %s column is empty here, and holds billing terms on line %d: give them on every row", strings.TrimSpace(h.names[i]), line)
			}
		default:
			delete(st.undecided, i)
			st.dropped[i] = droppedCol{line, s, role}
			*role = -1
		}
	}
	for i, at := range st.dropped {
		if s := field(rec, i); s != "" && h.softVerdict(at.role, i, s) == 1 {
			bad.add(line, "the %s column holds %q here, billing terms, but %q on line %d: give the terms on every row, or none", strings.TrimSpace(h.names[i]), s, at.cell, at.line)
		}
	}
	if h.first >= 0 && !st.undecided[h.first] && h.step < 0 {
		return h.firstAlone()
	}
	return ""
}

// softVerdict judges one cell of a soft column in role (one of h.step,
// h.first, h.fee) at index i: 1 terms, -1 not terms, 0 no evidence (an
// empty cell, or a zero fee).
func (h *deckHeader) softVerdict(role *int, i int, s string) int {
	if s == "" {
		return 0
	}
	if j := strings.IndexAny(h.names[i], "(["); j >= 0 {
		// A unit of time longer than a minute: "Billing Cycle (days)".
		if slices.ContainsFunc(headerWords(h.names[i][j:]), func(w string) bool {
			switch w {
			case "d", "day", "days", "h", "hour", "hours", "week", "weeks", "month", "months", "year", "years":
				return true
			}
			return false
		}) {
			return -1
		}
	}
	switch role {
	case &h.step:
		// Names that often hold something else need "60/60" itself.
		if n := normColumn(h.names[i]); (n == "billingcycle" || n == "next" || n == "terms") && !billingCell(s) {
			return -1
		}
		if _, _, err := ParseBillingSteps(s); err != nil {
			if termish(s) {
				return 1 // terms tollguard cannot read: billing() refuses the row
			}
			return -1
		}
	case &h.first:
		if isZeroSeconds(s) {
			return 0
		}
		if _, err := parseStep(s); err != nil {
			return -1
		}
	default:
		// A fee looks like money: "0.05", not a flag "1" (but in a
		// currency of whole units, 10 is money).
		f, err := ParseFee(decimalComma(s, h.sep))
		if err != nil {
			if symbolMoney(s, h.sep) {
				return 1 // "$0.10": money tollguard cannot read; billing() refuses the row
			}
			return -1
		}
		if !strings.ContainsAny(s, ".,") && f != 0 && !h.wholeUnits {
			return -1
		}
		if f == 0 {
			return 0
		}
	}
	return 1
}

// symbolMoney reports whether a cell is a price with a currency symbol
// or code ("$0.10", "0.10 USD").
func symbolMoney(s string, sep rune) bool {
	t := strings.TrimSpace(strings.Trim(strings.TrimSpace(s), "$€£¥"))
	if f := strings.Fields(t); len(f) == 2 {
		if _, err := ParseCurrency(f[0]); err == nil {
			t = f[1]
		} else if _, err := ParseCurrency(f[1]); err == nil {
			t = f[0]
		}
	}
	_, err := ParseFee(decimalComma(t, sep))
	return err == nil && t != strings.TrimSpace(s)
}

// termish reports whether a cell looks like billing steps tollguard
// could not read ("1 min", "60x60"): digits, or a word of time.
func termish(s string) bool {
	t := strings.ToLower(s)
	return strings.ContainsAny(t, "0123456789") || strings.Contains(t, "min") || strings.Contains(t, "sec")
}

// field returns rec's cell i, trimmed, "" when the row is short or the
// cell says none.
func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return noneCell(rec[i])
}

// noneCell trims a cell and reads the words decks write for nothing
// ("-", "N/A", "none") as empty.
func noneCell(s string) string {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "-", "--", "—", "n/a", "na", "none", "nil", "null", "x":
		return ""
	}
	return t
}

// billingCell reports whether a cell reads as billing steps ("60/60").
func billingCell(s string) bool {
	_, _, err := ParseBillingSteps(s)
	return err == nil && strings.ContainsAny(s, "/+")
}

// billing reads a row's billing terms, or says what is wrong with them.
func (h deckHeader) billing(rec []string) (Billing, string) {
	b := Billing{Initial: 1, Increment: 1}
	if h.soft != nil {
		// Soft columns with only empty cells so far count as absent.
		for _, role := range []*int{&h.step, &h.first, &h.fee} {
			if h.soft.undecided[*role] {
				*role = -1
			}
		}
		if h.step < 0 && h.first >= 0 {
			return b, h.firstAlone()
		}
	}
	if h.step >= 0 {
		s := field(rec, h.step)
		if s == "" {
			return b, fmt.Sprintf("the billing increments (%s) are empty: give them (60/60, or 1/1 for per-second)", strings.TrimSpace(h.names[h.step]))
		}
		first, step, err := ParseBillingSteps(s)
		if err != nil {
			return b, ErrorMessage(err)
		}
		b.Initial, b.Increment = first, step
		if h.first >= 0 && !strings.ContainsAny(s, "/+-") {
			b.Initial = 0 // one figure beside a first-step column is the later steps
		}
	}
	if h.first >= 0 {
		s := field(rec, h.first)
		if s == "" {
			return b, fmt.Sprintf("the first billing step (%s) is empty: give it in seconds (60, or 1 for per-second)", strings.TrimSpace(h.names[h.first]))
		}
		if isZeroSeconds(s) {
			// No minimum: the steps column says the first step.
			if b.Initial == 0 {
				b.Initial = b.Increment
			}
			return h.fee1(b, field(rec, h.fee))
		}
		first, err := parseStep(s)
		if err != nil {
			return b, fmt.Sprintf("first billing step %q: %s", s, ErrorMessage(err))
		}
		if b.Initial > 0 && b.Initial != first && h.step >= 0 {
			return b, fmt.Sprintf("the first billing step is %d s, but the increments say %s: give one", first, field(rec, h.step))
		}
		b.Initial = first
	}
	return h.fee1(b, field(rec, h.fee))
}

// isZeroSeconds reports whether a first-step cell says no minimum: "0",
// "00", "0s".
func isZeroSeconds(s string) bool {
	t := strings.TrimSpace(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "s"))
	return t != "" && strings.Trim(t, "0") == ""
}

// fee1 adds a row's connection fee cell to b.
func (h deckHeader) fee1(b Billing, s string) (Billing, string) {
	if s != "" {
		if len(s) > 32 {
			return b, fmt.Sprintf("connection fee %q: too long for a price", clip(s))
		}
		f, err := ParseFee(decimalComma(s, h.sep))
		if err != nil {
			return b, "connection " + ErrorMessage(err)
		}
		b.Connect = f
	}
	return b, ""
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
			perMin, perSec := priceColumns(rec)
			h.rate = -1
			if len(perMin) > 0 {
				h.rate = perMin[0]
			}
			h.dest = deckColumn(rec, deckDestNames)
			h.step = deckColumn(rec, deckStepNames)
			h.first = deckColumn(rec, deckFirstNames)
			h.fee = deckColumn(rec, deckFeeNames)
			h.cur = deckColumn(rec, deckCurrencyNames)
			if h.prefix < 0 && len(perMin)+len(perSec) > 0 && deckColumn(rec, deckSplitPrefixNames) >= 0 {
				return deckHeader{}, Errorf(EINVALID, "rate deck: line %d: the prefix is split over columns (%s): give one prefix column with the whole prefix, country code and area code together (4420 for London)", i+1, strings.Join(rec, string(sep)))
			}
			h.cc, h.area = codeColumns(rec, h.prefix)
			if h.prefix >= 0 && len(perMin) > 1 {
				// Which one the carrier bills cannot be known: the
				// best-named column used to win silently.
				return deckHeader{}, Errorf(EINVALID, "rate deck: line %d: %s", i+1, twoPrices(rec, perMin))
			}
			if h.prefix >= 0 && h.rate < 0 && len(perSec) > 0 {
				return deckHeader{}, Errorf(EINVALID, "rate deck: line %d: %s", i+1, perSecondPrice(rec[perSec[0]]))
			}
			if h.prefix >= 0 && h.rate >= 0 && h.prefix != h.rate {
				if msg := hundredthsUnit("rate", rec[h.rate]); msg != "" {
					return deckHeader{}, Errorf(EINVALID, "rate deck: line %d: %s", i+1, msg)
				}
				h.currency = unitCurrency(rec[h.rate])
				if msg := h.unreadTerms(); msg != "" {
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

// codeColumns returns the columns, other than prefix, that name a part
// of a split prefix ("Country Code", "Area Code" beside "Prefix"): the
// first of each kind, or -1.
func codeColumns(header []string, prefix int) (cc, area int) {
	cc, area = -1, -1
	if prefix < 0 {
		return cc, area
	}
	for i, name := range header {
		if i == prefix {
			continue
		}
		// A second prefix-like name ("code" beside "prefix") is often a
		// carrier's own id: the better-named column wins, unchecked.
		switch n := normColumn(name); {
		case slices.Contains(deckCountryCodeNames, n):
			if cc < 0 {
				cc = i
			}
		case slices.Contains(deckSplitPrefixNames, n):
			if area < 0 {
				area = i
			}
		}
	}
	return cc, area
}

// codeCell returns the digits of a row's code column col, without a
// "+", or "" when there are none: an empty cell, or one that is not a
// code, says nothing. An area code written with its trunk 0 (020), a
// country code with the international prefix (0044), is the same code;
// so is one written with dashes, dots or brackets: 1-268 is Antigua,
// and ignored it let 268 beside it be priced as +268, Eswatini.
func codeCell(rec []string, col int) string {
	if col < 0 || col >= len(rec) {
		return ""
	}
	code := strings.TrimPrefix(strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '-', '.', '(', ')':
			return -1
		}
		return r
	}, rec[col]), "+")
	if !allDigits(code) {
		return ""
	}
	return strings.TrimLeft(code, "0")
}

// splitCode says what is wrong when a row's prefix p does not hold the
// codes in the header's code columns: the prefix is split over them, and
// alone it is another country's.
func (h deckHeader) splitCode(rec []string, p string) string {
	cc := codeCell(rec, h.cc)
	if cc != "" && !strings.HasPrefix(p, cc) && !nanpArea(p, cc) {
		name := strings.TrimSpace(h.names[h.cc])
		// 268 beside 1-268 is the code's end, not a number after it.
		whole := cc + p
		if strings.HasSuffix(cc, p) {
			whole = cc
		}
		return fmt.Sprintf("prefix %s does not begin with %s, the %q column's: is the prefix split over the two (alone, %s is another country's)? Give the whole prefix in one column (%s); if the %q column is for information only (a territory's own code beside the code it is dialled under), rename it", p, cc, name, p, whole, name)
	}
	area := codeCell(rec, h.area)
	// An area code column reading p as the code and the area (4912
	// beside 49 and 012) says p is whole, even where the numbering data
	// has no numbers (Germany's innovative services, (0)12).
	if cc != "" && p != cc+area && nationalAfterCode(cc, p) {
		// Almaty's 727 beside Kazakhstan's 7 begins with the code too,
		// and was priced as +7 27, where no number is.
		name := strings.TrimSpace(h.names[h.cc])
		return fmt.Sprintf("prefix %s begins with %s, the %q column's, but read whole it is +%s %s, where no number is, while +%s %s is: is the prefix split over the two? Give the whole prefix in one column (%s%s); if %s is whole (a range newer than tollguard's numbering data) or the %q column is for information only, rename that column",
			p, cc, name, cc, p[len(cc):], cc, p, cc, p, p, name)
	}
	if area == "" || strings.Contains(p[1:], area) {
		return ""
	}
	name := strings.TrimSpace(h.names[h.area])
	if !strings.HasPrefix(p, area) {
		return fmt.Sprintf("prefix %s does not hold %s, the %q column's: is the prefix split over the two? Give the whole prefix, country code and area code together, in one column (%s%s if %s is the country code); if the %q column is for information only, rename it", p, area, name, p, area, p, name)
	}
	// The area column gives the whole code (4420 beside 4420), country
	// code included, only if the row's country code vouches for it. Alone
	// the digits cannot tell: 20, 207 (020 7), 1876 (01876, Lochmaddy)
	// may be a UK area code without its 44, priced as Egypt or Jamaica.
	if cc != "" {
		return ""
	}
	// 9122 beside 91 is not the same, but as doubtful: 91 may be an
	// area code alone, or a country code under Area Code.
	same := fmt.Sprintf("prefix %s and the %q column's %s are the same", p, name, area)
	if area != p {
		same = fmt.Sprintf("prefix %s begins with the %q column's %s", p, name, area)
	}
	return same + ", and no country code column says the prefix is whole: is it an area code alone, its country code missing? Give the whole prefix, country code and area code together (4420 for London), or add a country code column; if the " + strconv.Quote(name) + " column is for information only, rename it"
}

// nationalAfterCode reports whether prefix p, which begins with the
// calling code cc, reads as the part of a number after cc rather than
// as a whole prefix: no number of cc goes on as p does after cc (727
// beside 7, read whole, is +7 27, where no number is), but some go on
// with p itself (+7 727, Almaty). 7495 beside 7 reads whole (+7 495,
// Moscow; no number is +7 7495); where both readings have numbers (777:
// +7 77 or +7 777) or neither, p is taken whole, as before.
func nationalAfterCode(cc, p string) bool {
	if len(cc) > 3 || len(p) <= len(cc) || !strings.HasPrefix(p, cc) {
		return false
	}
	if len(p) == len(cc)+1 && strings.ContainsRune(newerBlocks[cc], rune(p[len(cc)])) {
		return false
	}
	n, err := strconv.Atoi(cc)
	if err != nil {
		return false
	}
	regions := phonenumbers.GetRegionCodesForCountryCode(n)
	if len(regions) == 0 || slices.Contains(regions, "001") {
		return false // no code, or a non-geographic one: no metadata by region
	}
	under := func(digits string) bool {
		return slices.ContainsFunc(regions, func(r string) bool { return regionHasNumbersUnder(r, digits) })
	}
	// The first test spares the others for a code whose numbers never
	// begin with its own digits (44, 1), most of a deck.
	return under(cc) && under(p) && !under(p[len(cc):])
}

// newerBlocks are the one-digit blocks after a calling code that are
// newer than libphonenumber's data, so a prefix one digit past the code
// in one of them is whole: Kazakhstan's +7 0 and +7 6 (its 2024
// agreement with Russia). Elsewhere such a prefix is the part after the
// code as any other: 392 beside 39 is Italy's mobile +39 392, not +39 2.
var newerBlocks = map[string]string{"7": "06"}

// nanpArea reports whether code is the area code of the NANP prefix p
// (876 beside 1876): decks give the Caribbean's "country code" so, as
// others write 1-876.
func nanpArea(p, code string) bool {
	return len(code) == 3 && code[0] >= '2' && strings.HasPrefix(p, "1"+code)
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

// named is how many fields the header has up to its last named one: a
// spreadsheet's trailing separator adds an unnamed field, which would
// hide the extra field of a split price.
func (h deckHeader) named() int {
	n := len(h.names)
	for n > 0 && strings.TrimSpace(h.names[n-1]) == "" {
		n--
	}
	return n
}

// fields is how many fields a row may have: the header's, or for a row
// whose price is a whole number (a price split by a decimal comma shows
// so) the header's up to its last named field, since a spreadsheet's
// trailing separator would hide the split's extra field.
func (h deckHeader) fields(rec []string) int {
	if h.rate < len(rec) && wholeNumber(rec[h.rate]) {
		return h.named()
	}
	return len(h.names)
}

func wholeNumber(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// splitPrice returns the column of a comma deck's price (the rate, or the
// fee) that is a whole number followed by the digits of its fraction,
// the two halves of a price written with a decimal comma ("0,0080",
// "4,95"), or -1. The fraction is a cell of digits with a leading zero,
// or any digits in a column tollguard does not read.
func (h deckHeader) splitPrice(rec []string) int {
	if h.sep != ',' {
		return -1
	}
	for _, col := range []int{h.rate, h.fee} {
		if col < 0 || col+1 >= len(rec) || !wholeNumber(rec[col]) || !wholeNumber(rec[col+1]) {
			continue
		}
		next := strings.TrimSpace(rec[col+1])
		if h.wholeUnits {
			// Yen prices are whole numbers: only a field more than the
			// header shows a split.
			if len(rec) > len(h.names) {
				return col
			}
			continue
		}
		undecided := col+1 == h.fee && h.soft != nil && h.soft.undecided[col+1]
		if (len(next) > 1 && next[0] == '0') || !h.reads(col+1) || undecided || len(rec) > len(h.names) {
			return col
		}
	}
	return -1
}

// reads reports whether column i is one the parser reads.
func (h deckHeader) reads(i int) bool {
	return i == h.prefix || i == h.dest || i == h.rate || i == h.step || i == h.first || i == h.fee || i == h.cur
}

// shiftedTerms returns a column tollguard does not read that holds
// billing steps ("60/60") where it should not: after a whole-number price
// in a comma deck (a decimal comma shifted the columns), or under a name
// about billing ("Billing Type"); -1 when none does.
func (h deckHeader) shiftedTerms(rec []string) int {
	shifted := h.sep == ',' && h.rate < len(rec) && wholeNumber(rec[h.rate])
	for i, s := range rec {
		if i >= len(h.names) || h.reads(i) || !billingCell(strings.TrimSpace(s)) {
			continue
		}
		if shifted {
			return i
		}
		for _, w := range headerWords(h.names[i]) {
			if w == "billing" || w == "charging" || w == "rating" {
				return i
			}
		}
	}
	return -1
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

// priceColumns returns the header's price columns, in its order: those
// priced per minute, and those priced per second, by the unit in
// brackets ("Rate (per second)", which normColumn drops) or by name
// ("rate/sec", "price_per_second"): read as per minute they would charge
// a sixtieth.
func priceColumns(header []string) (perMin, perSec []int) {
	for i, h := range header {
		switch n := normColumn(h); {
		case perSecondName(n):
			perSec = append(perSec, i)
		case !slices.Contains(deckRateNames, n):
		case perSecondUnit(h):
			perSec = append(perSec, i)
		default:
			perMin = append(perMin, i)
		}
	}
	return perMin, perSec
}

// perSecondName reports whether a column name, normalised by normColumn,
// names a price per second: "rate/sec", "pricepersecond", "persec".
func perSecondName(n string) bool {
	for _, price := range []string{"rate", "price", "cost", ""} {
		switch rest, ok := strings.CutPrefix(n, price); {
		case !ok:
		case rest == "/s", rest == "/sec", rest == "/secs", rest == "/second", rest == "/seconds",
			rest == "persec", rest == "persecs", rest == "persecond", rest == "perseconds":
			return true
		}
	}
	return false
}

// perSecondUnit reports whether a column's unit in brackets says per
// second: "(per second)", "[USD/sec]", "(/s)"; not "[per 60s]".
func perSecondUnit(name string) bool {
	i := strings.IndexAny(name, "([")
	if i < 0 {
		return false
	}
	unit := strings.ToLower(name[i:])
	return (strings.Contains(unit, "sec") || strings.Contains(unit, "/s)") || strings.Contains(unit, "/s]")) && !strings.Contains(unit, "60")
}

// perSecondPrice says what is wrong with a deck whose only price column
// is priced per second.
func perSecondPrice(name string) string {
	return fmt.Sprintf("the rate column %q is priced per second; tollguard takes prices per minute: multiply by 60 and name the column rate", strings.TrimSpace(name))
}

// twoPrices says what is wrong with a header of several per-minute price
// columns (cols, in the header's order), naming them.
func twoPrices(header []string, cols []int) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = fmt.Sprintf("%q", strings.TrimSpace(header[c]))
	}
	list := joinAnd(names)
	others := "the other"
	if len(cols) > 2 {
		others = "the others"
	}
	return fmt.Sprintf("the columns %s are each a price per minute, and which one the carrier bills cannot be known: keep one and remove %s", list, others)
}

// hundredthsUnit says what is wrong with a price column (what: "rate",
// "fee") whose unit in brackets is cents or pence, "" when it is not.
func hundredthsUnit(what, name string) string {
	i := strings.IndexAny(name, "([")
	if i < 0 {
		return ""
	}
	for _, w := range headerWords(name[i:]) {
		switch w {
		case "cent", "cents", "ct", "pence", "penny", "pennies", "centimes", "rappen":
			return fmt.Sprintf("the %s column %q is priced in hundredths; tollguard takes prices in the currency's whole unit (0.0123 pounds, not 1.23 pence): divide by 100 and drop the unit", what, strings.TrimSpace(name))
		}
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
	r, err := ParseRate(decimalComma(s, sep))
	if err != nil {
		return 0, ErrorMessage(err)
	}
	return r, ""
}

// decimalComma reads a decimal comma ("0,0123") as a point in a deck
// whose fields are not separated by commas.
func decimalComma(s string, sep rune) string {
	if sep != ',' && strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		return strings.Replace(s, ",", ".", 1)
	}
	return s
}
