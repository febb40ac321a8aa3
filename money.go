package tollguard

import (
	"math"
	"math/big"
	"strings"

	"golang.org/x/text/currency"
)

// Amount is money in integer minor units of the account's currency
// (pence, cents). Balances, reservations, charges and thresholds are
// Amounts. Never a float.
type Amount int64

// Rate is a per-minute price in micro-units: millionths of the
// currency's major unit. Carrier rate decks quote to four or more
// decimal places (0.0123/min), finer than a minor unit, so a rate keeps
// that precision and a call's cost is rounded up to a minor unit once,
// when it is charged.
type Rate int64

// RateScale is the number of decimal places a Rate keeps.
const RateScale = 6

// CurrencyScale returns the number of decimal digits an account in an
// ISO 4217 currency keeps (2 for GBP, 0 for JPY, 3 for BHD): CLDR's
// standard digits, from x/text. They are the digits prices are quoted
// in, and differ from ISO 4217's minor units for a few currencies whose
// minor unit is out of use (IDR, PKR, COP: 0, where ISO says 2; IQD: 0,
// where ISO says 3): their calls are charged in whole units.
func CurrencyScale(code string) (int, error) {
	if scale, ok := newerCurrencies[strings.ToUpper(code)]; ok {
		return scale, nil
	}
	u, err := currency.ParseISO(code)
	if err != nil || notMoney[u.String()] {
		return 0, Errorf(EINVALID, "currency %q: not an ISO 4217 currency (use GBP, USD, EUR, ...)", code)
	}
	scale, _ := currency.Standard.Rounding(u)
	return scale, nil
}

// ParseCurrency checks an ISO 4217 code an account can hold and returns
// it in capitals, as accounts store it.
func ParseCurrency(s string) (string, error) {
	code := strings.ToUpper(strings.TrimSpace(s))
	if len(code) != 3 {
		return "", Errorf(EINVALID, "currency %q: not an ISO 4217 currency (use GBP, USD, EUR, ...)", s)
	}
	if _, err := CurrencyScale(code); err != nil {
		return "", err
	}
	return code, nil
}

// newerCurrencies are current ISO 4217 codes that x/text's CLDR tables
// predate (it refused them), with their digits: ISO's and CLDR's agree.
var newerCurrencies = map[string]int{
	"MRU": 2, // Mauritania, 2018
	"VES": 2, // Venezuela, 2018
	"VED": 2, // Venezuela, 2021
	"SLE": 2, // Sierra Leone, 2022
	"ZWG": 2, // Zimbabwe, 2024
	"XCG": 2, // Curaçao and Sint Maarten, 2025
}

// notMoney are ISO 4217 codes that are not currencies an account can
// hold: no currency, testing, precious metals, and units of account.
var notMoney = map[string]bool{
	"XXX": true, "XTS": true, "XAU": true, "XAG": true, "XPD": true, "XPT": true,
	"XDR": true, "XBA": true, "XBB": true, "XBC": true, "XBD": true, "XSU": true, "XUA": true,
}

// MaxAmount bounds every amount and balance, in minor units: ten
// trillion pounds at scale 2. Balance, credit limit and the reservations
// of calls in progress then add up without overflowing int64.
const MaxAmount Amount = 999_999_999_999_999

// ParseAmount parses a decimal string ("12.50", "-3", "0.5") into minor
// units at the given scale. More decimals than the currency has is an
// error, never a silent rounding.
func ParseAmount(s string, scale int) (Amount, error) {
	v, err := parseDecimal(s, scale)
	if err != nil && err != errTooLarge {
		return 0, Errorf(EINVALID, "amount %q: %s", s, err.Message)
	}
	if a := Amount(v); err != nil || a > MaxAmount || a < -MaxAmount {
		return 0, Errorf(EINVALID, "amount %q is too large: at most %s", s, FormatAmount(MaxAmount, scale))
	}
	return Amount(v), nil
}

// FormatAmount prints a as a decimal string at the given scale.
func FormatAmount(a Amount, scale int) string { return formatDecimal(int64(a), scale) }

// ParseRate parses a per-minute price ("0.0123") into micro-units.
func ParseRate(s string) (Rate, error) {
	v, err := parseMicros("rate", s)
	return Rate(v), err
}

// parseMicros parses a price that is never negative into micro-units;
// what names it in the error.
func parseMicros(what, s string) (int64, error) {
	v, err := parseDecimal(s, RateScale)
	if err == errTooLarge {
		// Past 18 digits in all: say the most, as ParseAmount does.
		return 0, Errorf(EINVALID, "%s %q is too large: at most %s", what, s, formatDecimal(maxMicros, RateScale))
	}
	if err != nil {
		return 0, Errorf(EINVALID, "%s %q: %s", what, s, err.Message)
	}
	if v < 0 {
		return 0, Errorf(EINVALID, "%s %q: must not be negative", what, s)
	}
	return v, nil
}

// String prints r as a decimal per-minute price with trailing zeros
// trimmed to at least two decimals ("0.0123", "0.20").
func (r Rate) String() string {
	s := formatDecimal(int64(r), RateScale)
	for strings.HasSuffix(s, "0") && len(s)-strings.IndexByte(s, '.') > 3 {
		s = s[:len(s)-1]
	}
	return s
}

// AmountToRateUnits converts an amount at the given currency scale to
// micro-units, the unit of a Rate.
func amountMicros(a Amount, scale int) *big.Int {
	return new(big.Int).Mul(big.NewInt(int64(a)), pow10(RateScale-scale))
}

// Cost returns what a call of secs answered seconds costs at r, billed
// in b's steps with b's connection fee, rounded up to a whole minor
// unit: a partial penny is charged as a penny, as carriers bill. An
// unanswered call (secs 0) costs nothing.
func Cost(r Rate, b Billing, secs int64, scale int) Amount {
	if secs <= 0 || (r <= 0 && b.Connect <= 0) {
		return 0
	}
	// micros = r * billed / 60 + connect; minor = ceil(micros / 10^(6-scale))
	num := new(big.Int).Mul(big.NewInt(max(int64(r), 0)), big.NewInt(b.Billed(secs)))
	num.Add(num, new(big.Int).Mul(big.NewInt(max(int64(b.Connect), 0)), big.NewInt(60)))
	den := new(big.Int).Mul(big.NewInt(60), pow10(RateScale-scale))
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return Amount(math.MaxInt64)
	}
	return Amount(q.Int64())
}

// MaxSeconds returns the longest call that available money pays for at
// r in b's steps: the largest secs with Cost(r, b, secs) <= available,
// which on a stepped deck is the end of the last paid step (the gate
// ends the call a little before it: Billing.Fit). It returns -1 when
// the call is free (no rate, no fee: money sets no limit), and
// math.MaxInt64 when only a connection fee is charged and available pays
// it; 0 when available pays for no call at all.
func MaxSeconds(available Amount, r Rate, b Billing, scale int) int64 {
	if r <= 0 && b.Connect <= 0 {
		return -1
	}
	if available <= 0 {
		return 0
	}
	// Cost(secs) <= available  <=>  r*billed + connect*60 <= available_micros*60
	room := new(big.Int).Mul(amountMicros(available, scale), big.NewInt(60))
	room.Sub(room, new(big.Int).Mul(big.NewInt(max(int64(b.Connect), 0)), big.NewInt(60)))
	if room.Sign() < 0 {
		return 0
	}
	if r <= 0 {
		return math.MaxInt64
	}
	q := new(big.Int).Quo(room, big.NewInt(int64(r)))
	if !q.IsInt64() {
		return math.MaxInt64
	}
	billed := q.Int64()
	first, step := b.steps()
	if billed < first {
		return 0
	}
	return first + (billed-first)/step*step
}

func pow10(n int) *big.Int {
	if n < 0 {
		n = 0
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// parseDecimal parses an optionally signed decimal with at most scale
// fraction digits into an integer of 10^-scale units.
func parseDecimal(s string, scale int) (int64, *Error) {
	t := strings.TrimSpace(s)
	neg, signed := false, false
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		neg, signed = t[0] == '-', true
		t = t[1:]
	}
	whole, frac, hasDot := strings.Cut(t, ".")
	if whole == "" && frac == "" || (hasDot && frac == "" && whole == "") {
		return 0, &Error{Code: EINVALID, Message: "not a decimal amount"}
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, &Error{Code: EINVALID, Message: "not a decimal amount (digits and one '.' only, no currency symbols or thousands separators)"}
			}
		}
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > scale {
		if scale == 0 {
			return 0, &Error{Code: EINVALID, Message: "too many decimal places: a whole number (the currency has no minor unit in use: JPY, KRW, IDR, ...)"}
		}
		return 0, &Error{Code: EINVALID, Message: "too many decimal places (at most " + itoa(scale) + ")"}
	}
	digits := whole + frac + strings.Repeat("0", scale-len(frac))
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		if signed {
			// "-0" in a rate deck slipped past the negative check as
			// free; a sign on nothing is a mistake somewhere.
			return 0, &Error{Code: EINVALID, Message: "a zero has no sign: write 0"}
		}
		return 0, nil
	}
	if len(digits) > 18 {
		return 0, errTooLarge
	}
	var v int64
	for _, c := range digits {
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}

// errTooLarge is parseDecimal's error for more than 18 digits: its
// callers replace it with one naming the most they take.
var errTooLarge = &Error{Code: EINVALID, Message: "too large"}

// maxMicros is the largest price parseMicros takes: 18 digits.
const maxMicros = 999_999_999_999_999_999

func formatDecimal(v int64, scale int) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	s := uitoa(u)
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func itoa(n int) string { return formatDecimal(int64(n), 0) }

func uitoa(u uint64) string {
	if u == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	return string(b[i:])
}
