package tollguard

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Billing is how a carrier turns a call's length into billed time, and
// what it adds to each answered call. "60/60" bills every started
// minute; "30/6" at least 30 s, then in steps of 6 s; "1/1" by the
// second. The zero value is per-second billing with no fee, which is
// what a deck without those columns means.
type Billing struct {
	Initial   int64 // seconds billed at least, once the call is answered
	Increment int64 // seconds of each step after those
	Connect   Fee   // charged once per answered call
}

// MaxBillingStep bounds either step: an hour. Carriers' longest are a
// minute; a larger figure is a column misread (a price, a date).
const MaxBillingStep = 3600

// Fee is a fixed price in micro-units (millionths of the major unit),
// like a Rate but not per minute: a connection fee.
type Fee int64

// ParseFee parses a fixed price ("0.05") into micro-units.
func ParseFee(s string) (Fee, error) {
	v, err := parseMicros("fee", s)
	return Fee(v), err
}

// String prints f as a decimal price, trimmed as a Rate is ("0.05").
func (f Fee) String() string { return Rate(f).String() }

// steps returns the first and later steps, a second where unset.
func (b Billing) steps() (first, step int64) { return max(b.Initial, 1), max(b.Increment, 1) }

// StepSeconds returns the first and later steps in seconds as stored: a
// second where unset (the zero value bills by the second).
func (b Billing) StepSeconds() (first, step int64) { return b.steps() }

// PerSecond reports whether b bills by the second with no fee: the
// terms of a deck that gives none.
func (b Billing) PerSecond() bool {
	first, step := b.steps()
	return first == 1 && step == 1 && b.Connect == 0
}

// Billed returns the seconds the carrier bills for a call answered for
// secs seconds: 0 for an unanswered call, at least the first step, then
// whole steps.
func (b Billing) Billed(secs int64) int64 {
	if secs <= 0 {
		return 0
	}
	first, step := b.steps()
	if secs <= first {
		return first
	}
	n := (secs - first) / step
	if (secs-first)%step != 0 {
		n++
	}
	if n > (math.MaxInt64-first)/step {
		return math.MaxInt64
	}
	return first + n*step
}

// Fit returns the longest call of at most secs seconds that ends
// billingMargin seconds or more before the end of the step it is billed
// to, when steps are longer than a second; 0 when none does.
//
// The carrier's clock starts a moment before Asterisk's (the answer
// travels back to us), so a 60/60 call Asterisk cuts at exactly 120 s
// can be 120.05 s on the carrier's bill: three minutes, where two were
// reserved. Per-second billing overshoots by at most a second, and needs
// no margin. Whatever set the limit (money, the maximum call length,
// the close of business hours), the call must end inside a paid step.
func (b Billing) Fit(secs int64) int64 {
	_, step := b.steps()
	if secs <= 0 || step <= 1 {
		return max(secs, 0)
	}
	m := min(billingMargin, step-1)
	return max(min(secs, b.Billed(secs)-m), 0)
}

// billingMargin is how long before its step ends a call billed in
// steps longer than a second is ended (see Fit).
const billingMargin = 2

// DearestMinute returns the most a call of whole minutes costs per
// minute at r, and the minutes of the call that costs it: the rate over
// the seconds billed, plus the connection fee, spread over the call. For
// most terms that is the first minute (a 120/60 deck bills two minutes
// for one; a fee falls on it whole); a later step far longer than a
// minute (60/3600) makes a two-minute call dearer. The rate ceilings
// compare this, so that neither a fee, a long minimum nor a long step
// hides a dear destination behind a cheap rate.
func (b Billing) DearestMinute(r Rate) (Rate, int64) {
	if b.PerSecond() {
		return r, 1
	}
	if r > maxCeilingRate || b.Connect > Fee(maxCeilingRate) {
		return Rate(math.MaxInt64), 1 // dearer than any ceiling; and no overflow below
	}
	first, step := b.steps()
	// Past the first step, what a k-minute call is billed beyond its
	// 60k seconds repeats every step/gcd(step, 60) minutes, over more
	// minutes each time: the dearest minute is in the first such round
	// after the first step ends (k = 3 for 20/50, 7 for 60/70).
	last := first/60 + step/gcd(step, 60) + 1
	if last <= dearCachedFrom {
		return b.dearestMinute(r, last)
	}
	// Odd terms (59/3599) take thousands of minutes, 0.15 ms on every
	// decision at their rates: keep those answers.
	key := dearKey{b, r}
	if v, ok := dearCache.Load(key); ok {
		d := v.([2]int64)
		return Rate(d[0]), d[1]
	}
	best, at := b.dearestMinute(r, last)
	if dearCached.Add(1) <= maxDearCached {
		dearCache.Store(key, [2]int64{int64(best), at})
	}
	return best, at
}

// dearCache holds DearestMinute's answers for terms of more than
// dearCachedFrom minutes to check, at most maxDearCached of them (a
// deck has few distinct terms and rates of that kind).
var (
	dearCache  sync.Map // dearKey → [2]int64{rate, minutes}
	dearCached atomic.Int64
)

type dearKey struct {
	b Billing
	r Rate
}

const (
	dearCachedFrom = 64
	maxDearCached  = 4096
)

func (b Billing) dearestMinute(r Rate, last int64) (Rate, int64) {
	best, at := Rate(0), int64(1)
	for k := int64(1); k <= last; k++ {
		// ceil((r * billed(60k) / 60 + connect) / k)
		micros := (int64(r)*b.Billed(60*k)+59)/60 + int64(b.Connect)
		if v := Rate((micros + k - 1) / k); v > best {
			best, at = v, k
		}
	}
	return best, at
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// maxCeilingRate bounds the rates DearestMinute computes exactly: a
// million a minute, over any ceiling, and far from overflowing int64.
const maxCeilingRate = 1_000_000_000_000

// Steps prints the billing steps as carriers write them: "60/60", "1/1".
func (b Billing) Steps() string {
	first, step := b.steps()
	return strconv.FormatInt(first, 10) + "/" + strconv.FormatInt(step, 10)
}

// String describes b for an explanation: "" for per-second billing with
// no fee, else the steps and any fee ("60/60, 0.05 connection fee").
func (b Billing) String() string {
	if b.PerSecond() {
		return ""
	}
	s := b.Steps()
	if b.Connect > 0 {
		s += ", " + b.Connect.String() + " connection fee"
	}
	return s
}

// Price prints r with b's terms when they are not per-second:
// "0.10/min", "0.10/min billed 60/60, 0.05 connection fee".
func (b Billing) Price(r Rate) string {
	if b.PerSecond() {
		return r.String() + "/min"
	}
	return r.String() + "/min billed " + b.String()
}

// ParseBillingSteps parses a deck's billing steps: "60/60", "30/6",
// "1/1", also written "60+60", "60-60" or with units ("60s/60s"). One
// figure ("60") is both steps.
func ParseBillingSteps(s string) (first, step int64, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch strings.Join(strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == '-' || r == '_' || r == '.' }), " ") {
	case "per second", "per sec", "by the second", "1 sec", "1 second", "second", "sec":
		return 1, 1, nil
	case "per minute", "per min", "by the minute", "1 min", "1 minute", "minute", "min":
		return 60, 60, nil
	}
	a, b, two := strings.Cut(t, "/")
	if !two {
		for _, sep := range []string{"+", "-", "x", ":", "|"} {
			if a, b, two = strings.Cut(t, sep); two {
				break
			}
		}
	}
	if !two {
		b = a
	}
	if first, err = parseStep(a); err == nil {
		step, err = parseStep(b)
	}
	if err != nil {
		return 0, 0, Errorf(EINVALID, "billing increments %q: %s (write them as carriers do: 60/60, 30/6, or 1/1 for per-second)", s, ErrorMessage(err))
	}
	return first, step, nil
}

// parseStep parses one step: whole seconds, 1 to MaxBillingStep, with
// an optional unit ("60", "60s", "60 sec").
func parseStep(s string) (int64, error) {
	t := strings.TrimSpace(s)
	for _, unit := range []string{"seconds", "second", "secs", "sec", "s"} {
		if strings.HasSuffix(t, unit) {
			t = strings.TrimSpace(strings.TrimSuffix(t, unit))
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || t == "" || t[0] == '+' || t[0] == '-' {
		return 0, Errorf(EINVALID, "%q is not a whole number of seconds", strings.TrimSpace(s))
	}
	if n < 1 || n > MaxBillingStep {
		return 0, Errorf(EINVALID, "%s seconds is out of range (1 to %d)", t, MaxBillingStep)
	}
	return n, nil
}
