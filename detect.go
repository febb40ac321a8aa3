package tollguard

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Action is what a detector does when it fires (design.md §2).
type Action string

const (
	ActionAlert          Action = "alert"           // raise an alert only
	ActionIntlBlock      Action = "intl_block"      // block the account's international calls, and alert
	ActionBlockExtension Action = "block_extension" // block the extension, and alert
)

// Valid reports whether a is one of the three actions.
func (a Action) Valid() bool {
	return a == ActionAlert || a == ActionIntlBlock || a == ActionBlockExtension
}

// check returns what is wrong with a as detector name's action.
func (a Action) check(name string) error {
	if !a.Valid() {
		return Errorf(EINVALID, "detector %s: action %q: want alert, intl_block or block_extension", name, a)
	}
	return nil
}

// ValidateStoredDetectorRule is ValidateDetectorRule for an account's
// override, which is stored in whole seconds (500ms would become 0) and
// with a valid action even when it is off.
func ValidateStoredDetectorRule(name string, r DetectorRule) error {
	if err := ValidateDetectorRule(name, r); err != nil {
		return err
	}
	if r.Window%time.Second != 0 || r.Duration%time.Second != 0 {
		return Errorf(EINVALID, "detector %s: window %s and duration %s must be whole seconds", name, r.Window, r.Duration)
	}
	if r.Duration != 0 && name != DetectLongIntl {
		return Errorf(EINVALID, "detector %s: a duration applies to %s only (the call length that counts)", name, DetectLongIntl)
	}
	if r.Action != "" {
		return r.Action.check(name)
	}
	return nil
}

// Blocks reports whether a sets a block.
func (a Action) Blocks() bool { return a == ActionIntlBlock || a == ActionBlockExtension }

// Detector names: the keys of the [detectors] config section and of
// per-account overrides.
const (
	DetectBurstExt       = "burst_ext"       // call attempts per extension in a window
	DetectBurstAcct      = "burst_acct"      // call attempts per account in a window
	DetectConcurrentExt  = "concurrent_ext"  // calls in progress per extension
	DetectConcurrentAcct = "concurrent_acct" // calls in progress per account
	DetectSweep          = "sweep"           // numbers in sequence, in steps or under one prefix, per extension and per account
	DetectHighRisk       = "high_risk"       // calls to high-risk or premium numbers (a redial not let through once), per extension and per account
	DetectUngated        = "ungated"         // outbound calls with no gate record
	DetectLongIntl       = "long_intl"       // international calls longer than Duration, per account
)

// DetectorNames lists every detector.
var DetectorNames = []string{DetectBurstExt, DetectBurstAcct, DetectConcurrentExt, DetectConcurrentAcct,
	DetectSweep, DetectHighRisk, DetectUngated, DetectLongIntl}

// DetectorRule is one detector's threshold, window and action.
//
// For the counting detectors the rule fires when Threshold events fall
// within Window. For the concurrency detectors it fires when Threshold
// calls are in progress at once, and Window is the quiet time before it
// may fire again. For long_intl an event is an international call
// lasting longer than Duration. Threshold 0 turns the detector off.
type DetectorRule struct {
	Threshold int           `json:"threshold"`
	Window    time.Duration `json:"window"`
	Action    Action        `json:"action"`
	Duration  time.Duration `json:"duration,omitempty"` // long_intl only
}

// DefaultDetectorRules returns the defaults: alerts for what an honest
// user can do on a busy day, blocks for what only an attacker does
// (number sweeps, repeated high-risk attempts), never on one event.
func DefaultDetectorRules() map[string]DetectorRule {
	return map[string]DetectorRule{
		DetectBurstExt:       {Threshold: 10, Window: time.Minute, Action: ActionAlert},
		DetectBurstAcct:      {Threshold: 30, Window: time.Minute, Action: ActionAlert},
		DetectConcurrentExt:  {Threshold: 4, Window: 10 * time.Minute, Action: ActionAlert},
		DetectConcurrentAcct: {Threshold: 10, Window: 10 * time.Minute, Action: ActionAlert},
		DetectSweep:          {Threshold: 5, Window: 10 * time.Minute, Action: ActionBlockExtension},
		DetectHighRisk:       {Threshold: 3, Window: 10 * time.Minute, Action: ActionIntlBlock},
		DetectUngated:        {Threshold: 1, Window: time.Hour, Action: ActionAlert},
		DetectLongIntl:       {Threshold: 1, Window: 24 * time.Hour, Action: ActionAlert, Duration: time.Hour},
	}
}

// MaxDetectorThreshold bounds thresholds, and with them the memory one
// key's window may hold.
const MaxDetectorThreshold = 10_000

// ValidateDetectorRule reports what is wrong with a rule for detector
// name. A rule that blocks needs a threshold of at least 2: a single
// misdial never blocks anything.
func ValidateDetectorRule(name string, r DetectorRule) error {
	if !knownDetector(name) {
		return Errorf(EINVALID, "detector %q: not a detector (want one of %s)", name, strings.Join(DetectorNames, ", "))
	}
	if r.Threshold < 0 || r.Threshold > MaxDetectorThreshold {
		return Errorf(EINVALID, "detector %s: threshold %d must be between 0 (off) and %d", name, r.Threshold, MaxDetectorThreshold)
	}
	if r.Threshold == 0 {
		return nil // off: the rest does not matter (config files say "off" many ways)
	}
	if err := r.Action.check(name); err != nil {
		return err
	}
	if r.Action.Blocks() && r.Threshold < 2 {
		return Errorf(EINVALID, "detector %s: action %s needs a threshold of at least 2: one event (a misdial) must never block", name, r.Action)
	}
	if r.Window <= 0 {
		return Errorf(EINVALID, "detector %s: window must be positive (e.g. 1m, 10m, 1h)", name)
	}
	if r.Window > 7*24*time.Hour {
		return Errorf(EINVALID, "detector %s: window %s is longer than a week", name, r.Window)
	}
	if name == DetectLongIntl && r.Duration <= 0 {
		return Errorf(EINVALID, "detector %s: duration must be positive (the call length that counts, e.g. 1h)", name)
	}
	return nil
}

func knownDetector(name string) bool {
	for _, n := range DetectorNames {
		if n == name {
			return true
		}
	}
	return false
}

// DetectorSettings configure Detectors.
type DetectorSettings struct {
	// Rules are the defaults for every account, by detector name; a
	// missing detector takes DefaultDetectorRules.
	Rules map[string]DetectorRule
	// SweepDigits: numbers that differ only in their last SweepDigits
	// digits are "under one prefix" (default 3: …000 to …999), and
	// sweeps in steps of up to 10^SweepDigits are caught.
	SweepDigits int
	// MaxKeys bounds the extensions and accounts each detector tracks
	// (default 50,000); MaxCalls the calls in progress (default 50,000).
	MaxKeys  int
	MaxCalls int
	// CallTTL forgets a call in progress whose end was never seen
	// (default 24h).
	CallTTL time.Duration
}

// Finding is something a detector or the registration judge found, and
// what to do about it.
type Finding struct {
	Source    string // who found it, and Block.SetBy: "detector:sweep", "registration:acl"
	Kind      string // the alert kind: AlertBurst, AlertSweep, ...
	Severity  Severity
	Action    Action
	At        time.Time
	Account   string
	Extension string
	Subject   string
	Message   string
	Evidence  map[string]any
}

// CallAttempt is an outbound call attempt the ARI listener saw: a
// channel from an extension dialling a number.
type CallAttempt struct {
	Call      string // the call's id: the uniqueid of its first channel
	At        time.Time
	Extension string // "" when the call did not start on an extension (Local, ARI)
	// Endpoint is the PJSIP endpoint a call started on that is not an
	// extension in tollguard's store (a trunk, a phone never imported).
	Endpoint string
	Account  string
	Context  string // the dialplan context it started in
	Number   Number
	// Tally is the gate's attempt tally the call counts in (TallyOf its
	// record's source address): the detectors count a forwarded or
	// originated leg, which anyone who rings the number can make, apart
	// from the phones' own calls, and findings on such legs only alert
	// (forwardedAction). A call seen starting on an extension's own
	// endpoint is the phone's (the zero value). The tally a call is
	// counted in at Attempt stays its tally until it ends.
	Tally Tally
	// Redirect, when set, is the dial string an endpoint's SIP 302 named
	// (Dial's forward, as the endpoint sent it): Dial called it itself,
	// with no dialplan, so no include could gate it.
	Redirect string
}

// Detectors are the channel detectors (design.md §2). They are pure:
// the ARI listener feeds them events with the events' own timestamps,
// and they return findings; nothing here reads a clock or does I/O.
// State is bounded: windows expire, and the keys and calls tracked are
// capped. Safe for concurrent use.
type Detectors struct {
	mu        sync.Mutex
	rules     map[string]DetectorRule
	overrides map[string]map[string]DetectorRule // account → detector → rule
	digits    int
	maxKeys   int
	maxCalls  int
	callTTL   time.Duration

	counters map[string]*counterSet // by detector
	sweeps   map[string]*sweepState // by "e:"+extension and "a:"+account
	risks    map[string]*riskWindow // high_risk, by "e:"+extension and "a:"+account
	conc     map[string]int         // "e:"+ext / "a:"+account → calls in progress
	quiet    map[string]time.Time   // concurrency key → no new finding before
	calls    map[string]*liveCall   // by call id
	lastTick time.Time
}

type liveCall struct {
	CallAttempt
	// conc are the concurrency keys track counted it in, which untrack
	// takes it out of: its tally then, whatever changes later.
	conc     [2]string
	answered time.Time
	resolved bool
	longDone bool
}

// NewDetectors returns detectors with s's rules over the defaults.
func NewDetectors(s DetectorSettings) (*Detectors, error) {
	rules := DefaultDetectorRules()
	for name, r := range s.Rules {
		if err := ValidateDetectorRule(name, r); err != nil {
			return nil, err
		}
		rules[name] = r
	}
	d := &Detectors{
		rules: rules, digits: s.SweepDigits, maxKeys: s.MaxKeys, maxCalls: s.MaxCalls, callTTL: s.CallTTL,
		counters: make(map[string]*counterSet), sweeps: make(map[string]*sweepState), risks: make(map[string]*riskWindow),
		conc: make(map[string]int), quiet: make(map[string]time.Time), calls: make(map[string]*liveCall),
	}
	if d.digits <= 0 {
		d.digits = 3
	}
	if d.digits > 8 {
		return nil, Errorf(EINVALID, "sweep digits %d: at most 8", d.digits)
	}
	if d.maxKeys <= 0 {
		d.maxKeys = 50_000
	}
	if d.maxCalls <= 0 {
		d.maxCalls = 50_000
	}
	if d.callTTL <= 0 {
		d.callTTL = 24 * time.Hour
	}
	for _, n := range DetectorNames {
		d.counters[n] = &counterSet{keys: make(map[string]*window)}
	}
	return d, nil
}

// SetOverrides replaces the per-account rules (account → detector →
// rule). Invalid rules are left out and reported together.
func (d *Detectors) SetOverrides(o map[string]map[string]DetectorRule) error {
	clean := make(map[string]map[string]DetectorRule, len(o))
	var bad []string
	for acct, rules := range o {
		for name, r := range rules {
			if err := ValidateDetectorRule(name, r); err != nil {
				bad = append(bad, fmt.Sprintf("account %s: %s", acct, ErrorMessage(err)))
				continue
			}
			if clean[acct] == nil {
				clean[acct] = make(map[string]DetectorRule)
			}
			clean[acct][name] = r
		}
	}
	d.mu.Lock()
	d.overrides = clean
	d.mu.Unlock()
	if len(bad) > 0 {
		sort.Strings(bad)
		return Errorf(EINVALID, "detector overrides ignored: %s", strings.Join(bad, "; "))
	}
	return nil
}

// Rule returns the rule that applies to account for detector name.
func (d *Detectors) Rule(account, name string) DetectorRule {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rule(account, name)
}

func (d *Detectors) rule(account, name string) DetectorRule {
	if r, ok := d.overrides[account][name]; ok {
		return r
	}
	return d.rules[name]
}

// DetectorStats is how much state the detectors hold.
type DetectorStats struct {
	Keys  int // tracked extension/account windows, sweeps, concurrency counters and quiet times
	Calls int // calls in progress
}

// Stats reports the state held, for metrics and the memory benchmark.
func (d *Detectors) Stats() DetectorStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := DetectorStats{Calls: len(d.calls), Keys: len(d.sweeps) + len(d.risks) + len(d.conc) + len(d.quiet)}
	for _, c := range d.counters {
		s.Keys += len(c.keys)
	}
	return s
}

// Attempt records an outbound call attempt: the bursts, the number
// sweep and the concurrency detectors count it, and the call is tracked
// until Ended. Attempts to internal and emergency numbers are ignored.
func (d *Detectors) Attempt(a CallAttempt) []Finding {
	if !a.Number.Counted() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Finding
	// Each tally has its own windows, against the same rule, as at the
	// gate: ringing a forwarded number must not make a burst of the
	// phone's own calls, nor its alert blame the phone.
	extKey, acctKey := tallyKeys(a.Tally)
	apart := countedApart(a.Tally)
	if a.Extension != "" {
		r := d.rule(a.Account, DetectBurstExt)
		if n, first, last, ok := d.count(DetectBurstExt, extKey+a.Extension, a.At, r); ok {
			r, held := forwardedAction(r, a.Tally, heldRung)
			out = append(out, d.finding(DetectBurstExt, AlertBurst, r, a, ExtSubject(a.Extension),
				fmt.Sprintf("extension %s: %d %s in %s (threshold %d in %s)%s%s", a.Extension, n, a.Tally, last.Sub(first).Round(time.Second), r.Threshold, r.Window, apart, held),
				map[string]any{"attempts": n, "forwarded": a.Tally == TallyNoSource, "since": first.UTC(), "last_dialled": a.Number.Dialled}))
		}
	}
	if a.Account != "" {
		r := d.rule(a.Account, DetectBurstAcct)
		if n, first, last, ok := d.count(DetectBurstAcct, acctKey+a.Account, a.At, r); ok {
			r, held := forwardedAction(r, a.Tally, heldRung)
			out = append(out, d.finding(DetectBurstAcct, AlertBurst, r, a, AccountSubject(a.Account),
				fmt.Sprintf("account %s: %d %s in %s (threshold %d in %s), the last from extension %s%s%s", a.Account, n, a.Tally, last.Sub(first).Round(time.Second), r.Threshold, r.Window, orUnknown(a.Extension), apart, held),
				map[string]any{"attempts": n, "forwarded": a.Tally == TallyNoSource, "since": first.UTC(), "last_dialled": a.Number.Dialled}))
		}
	}
	if f, ok := d.sweep(a); ok {
		out = append(out, f)
	}
	out = append(out, d.track(a)...)
	return out
}

// tallyKeys are the prefixes of an extension's and an account's keys
// for tally t's windows and counts: forwarded or originated legs are
// counted apart from the phones' own calls, as at the gate, so that
// ringing a forwarded number never adds to what the phones did.
func tallyKeys(t Tally) (ext, acct string) {
	if t == TallyNoSource {
		return "fe:", "fa:"
	}
	return "e:", "a:"
}

// countedApart is what a finding on tally t's calls says of the other
// tally.
func countedApart(t Tally) string {
	if t == TallyNoSource {
		return "; calls from its phones are counted apart"
	}
	return ""
}

// Why a finding on forwarded or originated legs only alerts, by what it
// counted: how many legs there are is the callers' doing (bursts,
// concurrency); which numbers they go to is the forwarding's (sweeps,
// high-risk numbers).
const (
	heldRung    = "anyone who rings a forwarded number can make these, and a block would stop its phones' calls too"
	heldNumbers = "a forwarding or follow-me dials these whenever anyone rings its number, and a block would stop the phones' calls too; if they are not where the owner forwards, someone changed the forwarding: check it"
)

// forwardedAction is r for a finding on tally t's calls: on forwarded or
// originated legs it only alerts, whatever the rule's action, with the
// words that say why. Anyone who rings a forwarded number sets them off,
// and a block of the extension (or of the account's international calls)
// would lock its phones out too. Against the legs themselves the gate
// stands: premium and high-risk numbers denied unless allowed, attempt
// limits per tally, all calls in its concurrency limits, credit.
func forwardedAction(r DetectorRule, t Tally, why string) (DetectorRule, string) {
	if t != TallyNoSource || !r.Action.Blocks() {
		return r, ""
	}
	r.Action = ActionAlert
	return r, " (so alerted, not blocked: " + why + ")"
}

// dialledBy is how a finding says that tally t's calls went to numbers.
func dialledBy(t Tally) string {
	if t == TallyNoSource {
		return "had " + t.String() + " to"
	}
	return "dialled"
}

// Resolved counts a call's destination once its gate outcome is known
// (reason is TOLLGUARD_REASON, or "" if the gate never said): high-risk
// or premium numbers count unless the gate allowed them as whitelisted;
// a number redialled without being let through counts once (one
// intention, not fresh evidence), each call let through counts. The
// rule's action applies when the international ones alone reach the
// threshold; national ones (09...) count toward an alert only, since an
// intl_block would not stop them. The account counts each extension's
// numbers too: attempts spread over two or more extensions take
// accountAction. Forwarded or originated legs count in windows of their
// own and only alert (forwardedAction). Ended resolves calls that never
// were.
func (d *Detectors) Resolved(call string, reason Reason, at time.Time) []Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls[call]
	if c == nil || c.resolved {
		return nil
	}
	return d.resolve(c, reason, at)
}

func (d *Detectors) resolve(c *liveCall, reason Reason, at time.Time) []Finding {
	c.resolved = true
	n := c.Number
	if reason == ReasonWhitelist || c.Extension == "" || (n.HighRisk == "" && !n.Is(ClassPremium)) {
		return nil
	}
	r := d.rule(c.Account, DetectHighRisk)
	num := n.E164
	if num == "" {
		num = digitsOnly(n.Dialled)
	}
	what := "premium-rate"
	if n.HighRisk != "" {
		what = "high-risk (" + n.HighRisk + ")"
	}
	a := c.CallAttempt
	a.At = at
	// The tally it was counted in at Attempt: forwarded legs have windows
	// of their own, so that ringing a forwarding to premium numbers does
	// not put the phones' own calls over the threshold.
	extKey, acctKey := tallyKeys(c.Tally)
	acctKey += c.Account
	forwarded := c.Tally == TallyNoSource
	apart := countedApart(c.Tally)
	tried, made, calls := "tried", "made", "calls"
	if forwarded {
		tried, made, calls = "had", "had", c.Tally.String()
	}
	// A number redialled is one intention, unless the gate let the calls
	// through: each then costs money, and pumping one premium number is
	// the classic attack. A call with no gate reason (hung up before or
	// during the gate, the route failing) did not reach a paying trunk
	// through the gate; an ungated one is the ungated detector's.
	dedupe := reason != ReasonOK
	if ev, block, ok := d.countRisk(extKey+c.Extension, c.Extension, num, n.International, dedupe, at, r, 1); ok {
		// This evidence is acted on: the account does not count it again.
		d.dropRiskExt(acctKey, c.Extension)
		kind := calls + " to high-risk or premium numbers"
		if !block && r.Action == ActionIntlBlock {
			// A redial of 09... is an honest user's; and an international
			// block would not stop national premium-rate calls anyway.
			r.Action = ActionAlert
			kind += " (national ones among them, so alerted: an international block would not stop those)"
		}
		r, held := forwardedAction(r, c.Tally, heldNumbers)
		first, last := riskSpan(ev)
		return []Finding{d.finding(DetectHighRisk, AlertHighRisk, r, a, ExtSubject(c.Extension),
			fmt.Sprintf("extension %s %s %d %s in %s (threshold %d in %s), the last to %s %s%s%s",
				c.Extension, tried, len(ev), kind, last.Sub(first).Round(time.Second), r.Threshold, r.Window, what, orUnknown(n.E164), apart, held),
			map[string]any{"attempts": len(ev), "numbers": riskNumbers(ev), "forwarded": forwarded, "since": first.UTC(), "last_dialled": n.Dialled, "last_e164": n.E164, "gate_reason": string(reason)})}
	}
	if c.Account == "" {
		return nil
	}
	// The account counts each extension's numbers, so that attempts
	// spread over its extensions, each below the threshold, are seen.
	ev, block, ok := d.countRisk(acctKey, c.Extension, num, n.International, dedupe, at, r, 2)
	if !ok {
		return nil
	}
	nums := riskNumbers(ev)
	if distinct(nums) < 2 {
		// Colleagues trying one number (a client's) are not a sweep of
		// routes: worth a look, not a block.
		block = false
	}
	r.Action = accountAction(r.Action, block)
	r, held := forwardedAction(r, c.Tally, heldNumbers)
	exts := riskExtensions(ev)
	first, last := riskSpan(ev)
	return []Finding{d.finding(DetectHighRisk, AlertHighRisk, r, a, AccountSubject(c.Account),
		fmt.Sprintf("account %s's extensions %s %s %d %s to high-risk or premium numbers in %s (threshold %d in %s), the last from extension %s to %s %s%s%s",
			c.Account, strings.Join(exts, ", "), made, len(ev), calls, last.Sub(first).Round(time.Second), r.Threshold, r.Window, c.Extension, what, orUnknown(n.E164), apart, held),
		map[string]any{"attempts": len(ev), "numbers": nums, "extensions": exts, "forwarded": forwarded, "since": first.UTC(), "last_dialled": n.Dialled, "last_e164": n.E164, "gate_reason": string(reason)})}
}

// accountAction is what a rule's action becomes for evidence spread over
// an account's extensions, where no one extension is the culprit: a
// blocking rule blocks the account's international calls when the
// evidence is international (what an attacker rotating extensions is
// after, and what intl_block stops), and alerts otherwise.
func accountAction(rule Action, international bool) Action {
	if rule.Blocks() && international {
		return ActionIntlBlock
	}
	return ActionAlert
}

func riskNumbers(ev []riskItem) []string {
	nums := make([]string, len(ev))
	for i, e := range ev {
		nums[i] = e.num
	}
	return nums
}

// distinct counts the different strings in ss.
func distinct(ss []string) int {
	n := 0
	for i, s := range ss {
		if !slices.Contains(ss[:i], s) {
			n++
		}
	}
	return n
}

// riskExtensions returns the extensions in ev, sorted.
func riskExtensions(ev []riskItem) []string {
	var exts []string
	for _, e := range ev {
		if !slices.Contains(exts, e.ext) {
			exts = append(exts, e.ext)
		}
	}
	sort.Strings(exts)
	return exts
}

// Renumber gives a tracked call the number the gate judged: a phone's
// call that started on a route prefix ("9" for an outside line) counts
// for high-risk attempts and long international calls by the number it
// dialled out. A call resolved already (the gate's reason comes before
// its call id) is resolved again when its first number did not count
// and this one may. Bursts and sweeps keep what they counted when it
// started.
//
// reason is the gate's for this number (its record's).
func (d *Detectors) Renumber(call string, n Number, reason Reason, at time.Time) []Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls[call]
	if c == nil {
		return nil
	}
	old := c.Number
	c.Number = n
	if c.resolved && old.HighRisk == "" && !old.Is(ClassPremium) {
		return d.resolve(c, reason, at)
	}
	return nil
}

// Answered marks a call as answered at at, for long_intl.
func (d *Detectors) Answered(call string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.calls[call]; c != nil && c.answered.IsZero() {
		c.answered = at
	}
}

// Ended forgets a call: it leaves the concurrency counts, is resolved if
// it never was, and counts as a long international call if it was one.
func (d *Detectors) Ended(call string, at time.Time) []Finding { return d.end(call, at, true) }

// Forget drops a call whose end was not seen (its channels were found
// gone, at, after the events were lost): no long-call finding, since
// when it ended, and so how long it ran, is unknown. An attempt the gate
// never resolved still counts for the high-risk detector, as in Ended:
// a thief's high-risk attempts must not vanish with a dropped
// connection.
func (d *Detectors) Forget(call string, at time.Time) []Finding { return d.end(call, at, false) }

// end is Ended, with the long-call check only when the end was seen.
func (d *Detectors) end(call string, at time.Time, seen bool) []Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls[call]
	if c == nil {
		return nil
	}
	var out []Finding
	if !c.resolved {
		out = append(out, d.resolve(c, "", at)...)
	}
	if seen {
		out = append(out, d.longCall(c, at)...)
	}
	d.untrack(c)
	return out
}

// Ungated records an outbound call that dialled out with no gate record
// (denied is true when the gate's record says deny: the dialplan ignored
// the verdict).
func (d *Detectors) Ungated(a CallAttempt, denied bool) []Finding {
	if !a.Number.Toll() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.rule(a.Account, DetectUngated)
	subject, key := ExtSubject(a.Extension), "e:"+a.Extension
	who := "extension " + a.Extension
	switch {
	case a.Extension == "" && a.Endpoint != "":
		subject, key = "endpoint:"+a.Endpoint, "p:"+a.Endpoint
		who = fmt.Sprintf("a call from endpoint %s (not an extension in tollguard's store: a trunk, or a phone never imported) in context %q,", a.Endpoint, a.Context)
	case a.Extension == "":
		subject, key = "context:"+a.Context, "c:"+a.Context
		who = fmt.Sprintf("a call in context %q (no extension: a Local or ARI-originated channel)", a.Context)
	}
	n, first, _, ok := d.count(DetectUngated, key, a.At, r)
	if !ok {
		return nil
	}
	why := "with no tollguard gate record: its dialplan path does not run the tollguard-outbound include, so no limit, credit or block applied. Add `Gosub(tollguard-outbound,s,1(${EXTEN}))` before the Dial in context " + strconv.Quote(a.Context)
	switch {
	case a.Redirect != "":
		// The endpoint's own text: quoted, and cut, so that it cannot
		// write lines of its own into the alert.
		why = "with no tollguard gate record: an endpoint Dial rang answered with a SIP 302 naming the dial string " + strconv.Quote(cutRedirect(a.Redirect)) +
			", and Dial called that channel itself instead of running a gated route. Give every Dial and Queue that rings an endpoint the i option (ignore redirects)"
	case denied:
		why = "although the tollguard gate denied it: the dialplan ignores TOLLGUARD_VERDICT. Make context " + strconv.Quote(a.Context) + " stop unless TOLLGUARD_VERDICT is allow (use the shipped include)"
	}
	msg := fmt.Sprintf("%s dialled %s out %s", who, orUnknown(a.Number.Dialled), why)
	if n > 1 {
		msg = fmt.Sprintf("%s (%d such calls since %s)", msg, n, first.UTC().Format(time.RFC3339))
	}
	ev := map[string]any{"calls": n, "since": first.UTC(), "dialled": a.Number.Dialled, "e164": a.Number.E164, "context": a.Context, "channel": a.Call, "gate_denied": denied}
	if a.Redirect != "" {
		ev["redirect"] = cutRedirect(a.Redirect)
	}
	return []Finding{d.finding(DetectUngated, AlertUngated, r, a, subject, msg, ev)}
}

// cutRedirect cuts an endpoint's redirect text to 80 bytes, on a rune
// boundary so that the evidence stays valid UTF-8.
func cutRedirect(s string) string {
	n := min(len(s), 80)
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Tick checks the calls in progress against long_intl and forgets
// expired state; now is the listener's event clock. Call it every few
// seconds.
func (d *Detectors) Tick(now time.Time) []Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Finding
	for _, c := range d.calls {
		if now.Sub(c.At) > d.callTTL {
			d.untrack(c) // its end was never seen (a lost connection)
			continue
		}
		out = append(out, d.longCall(c, now)...)
	}
	// Expiry is cheap but not free: once a minute is plenty.
	if now.Sub(d.lastTick) >= time.Minute || now.Before(d.lastTick) {
		d.lastTick = now
		d.expire(now)
	}
	return out
}

func (d *Detectors) expire(now time.Time) {
	t := now.UnixNano()
	for _, c := range d.counters {
		for k, w := range c.keys {
			if w.expires < t {
				delete(c.keys, k)
			}
		}
	}
	for k, s := range d.sweeps {
		if s.expires < t {
			delete(d.sweeps, k)
		}
	}
	for k, w := range d.risks {
		if w.expires < t {
			delete(d.risks, k)
		}
	}
	for k, q := range d.quiet {
		if now.After(q) {
			delete(d.quiet, k)
		}
	}
}

func (d *Detectors) longCall(c *liveCall, now time.Time) []Finding {
	if c.longDone || c.answered.IsZero() || !c.Number.International {
		return nil
	}
	r := d.rule(c.Account, DetectLongIntl)
	if r.Threshold == 0 || now.Sub(c.answered) < r.Duration {
		return nil
	}
	c.longDone = true
	key, subject, who := "a:"+c.Account, AccountSubject(c.Account), "account "+c.Account
	if c.Account == "" {
		key, subject, who = "c:"+c.Context, "context:"+c.Context, "context "+c.Context
	}
	n, first, _, ok := d.count(DetectLongIntl, key, now, r)
	if !ok {
		return nil
	}
	a := c.CallAttempt
	a.At = now
	msg := fmt.Sprintf("%s has an international call to %s lasting over %s (answered %s, extension %s)",
		who, orUnknown(c.Number.E164), r.Duration, c.answered.UTC().Format(time.RFC3339), orUnknown(c.Extension))
	if n > 1 {
		msg = fmt.Sprintf("%s: %d such calls since %s (threshold %d in %s)", msg, n, first.UTC().Format(time.RFC3339), r.Threshold, r.Window)
	}
	return []Finding{d.finding(DetectLongIntl, AlertLongCall, r, a, subject, msg,
		map[string]any{"calls": n, "e164": c.Number.E164, "answered": c.answered.UTC(), "seconds": int64(now.Sub(c.answered) / time.Second), "channel": c.Call})}
}

// track adds a call in progress and checks concurrency.
func (d *Detectors) track(a CallAttempt) []Finding {
	if _, dup := d.calls[a.Call]; dup || a.Call == "" {
		return nil
	}
	if len(d.calls) >= d.maxCalls {
		d.evictCalls(a.At)
		if len(d.calls) >= d.maxCalls {
			return nil
		}
	}
	c := &liveCall{CallAttempt: a}
	d.calls[a.Call] = c
	// Each tally counts its own calls in progress against the same rule
	// (a follow-me ringing four numbers at once is not four calls of the
	// phone's); the gate's concurrency limits count them all.
	extKey, acctKey := tallyKeys(a.Tally)
	var out []Finding
	for i, s := range []struct{ name, id, prefix, subject, who string }{
		{DetectConcurrentExt, a.Extension, extKey, ExtSubject(a.Extension), "extension " + a.Extension},
		{DetectConcurrentAcct, a.Account, acctKey, AccountSubject(a.Account), "account " + a.Account},
	} {
		if s.id == "" {
			continue
		}
		key := s.prefix + s.id
		c.conc[i] = key
		d.conc[key]++
		n := d.conc[key]
		r := d.rule(a.Account, s.name)
		if r.Threshold == 0 || n < r.Threshold || a.At.Before(d.quiet[key]) {
			continue
		}
		if _, ok := d.quiet[key]; !ok {
			// Bounded like the other keys: a flood of distinct keys each
			// reaching the threshold once must not grow it for a whole
			// window. An evicted key may alert once more before its
			// window ends; one extra alert beats unbounded memory.
			makeRoom(d.quiet, d.maxKeys, a.At.UnixNano(), func(q time.Time) int64 { return q.UnixNano() })
		}
		d.quiet[key] = a.At.Add(r.Window)
		r, held := forwardedAction(r, a.Tally, heldRung)
		out = append(out, d.finding(s.name, AlertConcurrent, r, a, s.subject,
			fmt.Sprintf("%s has %d %s in progress at once (threshold %d), the newest to %s%s%s", s.who, n, a.Tally, r.Threshold, orUnknown(a.Number.Dialled), countedApart(a.Tally), held),
			map[string]any{"calls_in_progress": n, "forwarded": a.Tally == TallyNoSource, "last_dialled": a.Number.Dialled}))
	}
	return out
}

func (d *Detectors) untrack(c *liveCall) {
	delete(d.calls, c.Call)
	for _, k := range c.conc {
		if k == "" {
			continue
		}
		if d.conc[k]--; d.conc[k] <= 0 {
			delete(d.conc, k)
		}
	}
}

// evictCalls makes room: calls past their TTL first, then any tenth.
func (d *Detectors) evictCalls(now time.Time) {
	for _, c := range d.calls {
		if now.Sub(c.At) > d.callTTL {
			d.untrack(c)
		}
	}
	drop := len(d.calls) - d.maxCalls*9/10
	for _, c := range d.calls {
		if drop <= 0 {
			break
		}
		d.untrack(c)
		drop--
	}
}

func (d *Detectors) finding(name, kind string, r DetectorRule, a CallAttempt, subject, msg string, ev map[string]any) Finding {
	sev := SeverityWarning
	switch r.Action {
	case ActionIntlBlock:
		sev = SeverityCritical
		// The exact command: a bare `tollguard unblock` is refused.
		msg += fmt.Sprintf(". tollguard blocks international calls for account %s; once checked, lift it with `tollguard unblock --intl %s`", orUnknown(a.Account), orUnknown(a.Account))
	case ActionBlockExtension:
		sev = SeverityCritical
		msg += fmt.Sprintf(". tollguard blocks extension %s; once checked (and its password changed), lift it with `tollguard unblock %s`", orUnknown(a.Extension), orUnknown(a.Extension))
	default:
		msg += ". If this is not expected, check the calls (`tollguard calls`) and block what is attacking"
	}
	ev["detector"] = name
	ev["threshold"] = r.Threshold
	ev["window"] = r.Window.String()
	return Finding{Source: "detector:" + name, Kind: kind, Severity: sev, Action: r.Action, At: a.At,
		Account: a.Account, Extension: a.Extension, Subject: subject, Message: msg, Evidence: ev}
}

// maxEventSkew is how far ahead of the event being counted an earlier
// event's time may be and still count: events of several channels reach
// the detectors a little out of order.
const maxEventSkew = time.Minute

// inWindow reports whether an event at at (unix nanoseconds) still
// counts in a window ending at now: not older than the window, and not
// more than maxEventSkew ahead. Every time is judged, not only the
// oldest: Asterisk's clock can step back, and one time far ahead must
// not keep the ones behind it counted for good.
func inWindow(at, now int64, window time.Duration) bool {
	return at >= now-int64(window) && at <= now+int64(maxEventSkew)
}

// riskSpan is the earliest and latest of the items' times: events
// arrive a little out of order.
func riskSpan(ev []riskItem) (first, last time.Time) {
	lo, hi := ev[0].at, ev[0].at
	for _, it := range ev[1:] {
		lo, hi = min(lo, it.at), max(hi, it.at)
	}
	return time.Unix(0, lo), time.Unix(0, hi)
}

// counterSet holds one counting detector's windows by key.
type counterSet struct {
	keys map[string]*window
}

// window is the recent event times of one key, at most Threshold of
// them, in the order they were counted.
type window struct {
	times   []int64 // unix nanoseconds
	expires int64   // the last event plus the window
}

// count records an event for key at t under r and reports whether the
// rule fires, with the count and the earliest and latest events' times.
// Firing clears the key, so the next finding needs fresh evidence.
func (d *Detectors) count(name, key string, t time.Time, r DetectorRule) (n int, first, last time.Time, fired bool) {
	if r.Threshold <= 0 {
		return 0, time.Time{}, time.Time{}, false
	}
	cs := d.counters[name]
	w := cs.keys[key]
	if w == nil {
		if len(cs.keys) >= d.maxKeys {
			evictWindows(cs.keys, t.UnixNano(), d.maxKeys)
		}
		w = &window{times: make([]int64, 0, min(r.Threshold, 16))}
		cs.keys[key] = w
	}
	now := t.UnixNano()
	w.times = slices.DeleteFunc(w.times, func(at int64) bool { return !inWindow(at, now, r.Window) })
	if len(w.times) >= r.Threshold {
		// The threshold shrank since these were counted.
		w.times = append(w.times[:0], w.times[len(w.times)-r.Threshold+1:]...)
	}
	w.times = append(w.times, now)
	w.expires = max(w.expires, now+int64(r.Window))
	if len(w.times) < r.Threshold {
		return 0, time.Time{}, time.Time{}, false
	}
	n, first, last = len(w.times), time.Unix(0, slices.Min(w.times)), time.Unix(0, slices.Max(w.times))
	delete(cs.keys, key)
	return n, first, last, true
}

// evictWindows makes room in a full key map: expired keys first, then
// any tenth of the rest.
func evictWindows(keys map[string]*window, now int64, maxKeys int) {
	for k, w := range keys {
		if w.expires < now {
			delete(keys, k)
		}
	}
	drop := len(keys) - maxKeys*9/10
	for k := range keys {
		if drop <= 0 {
			return
		}
		delete(keys, k)
		drop--
	}
}

// riskWindow is a key's recent distinct high-risk or premium numbers
// (for an account, distinct per extension), oldest first: a redial
// refreshes its number rather than adding one.
type riskWindow struct {
	items   []riskItem
	expires int64
}

type riskItem struct {
	ext, num string
	at       int64
	intl     bool // international: counts toward an intl_block
	alerted  bool // already in an alert-only finding (intl ones stay, for a block)
}

// countRisk records ext's attempt to num (intl if it is international)
// for key at t under r (dedupe: a number this extension dialled before
// refreshes it rather than counting again, for numbers the gate denied).
// It fires when r.Threshold attempts, from
// at least minExts extensions, fall within the window: with block true
// when the international ones alone reach the threshold (the key is then
// cleared), else as an alert on the numbers not yet alerted (the
// national ones are then dropped, the international ones kept toward a
// block). It returns the numbers counted, oldest first.
func (d *Detectors) countRisk(key, ext, num string, intl, dedupe bool, t time.Time, r DetectorRule, minExts int) ([]riskItem, bool, bool) {
	if r.Threshold <= 0 {
		return nil, false, false
	}
	w := d.risks[key]
	now := t.UnixNano()
	if w == nil {
		makeRoom(d.risks, d.maxKeys, now, func(v *riskWindow) int64 { return v.expires })
		w = &riskWindow{}
		d.risks[key] = w
	}
	newest := -1 // of the earlier items for this number, when deduping
	if dedupe {
		for i, it := range w.items {
			if it.num == num && it.ext == ext {
				newest = i
			}
		}
	}
	keep := w.items[:0]
	redial := -1
	for i, it := range w.items {
		if inWindow(it.at, now, r.Window) || i == newest {
			keep = append(keep, it)
			if i == newest {
				redial = len(keep) - 1
			}
		}
	}
	w.items = keep
	w.expires = max(w.expires, now+int64(r.Window))
	if redial >= 0 {
		// The same number again is one intention: its newest item is
		// refreshed, not counted; earlier calls to it (let through,
		// each counted) stay.
		w.items[redial].at = now
		return nil, false, false
	}
	if len(w.items) >= 4*r.Threshold {
		// Held back by minExts (or a threshold that shrank): bounded.
		w.items = append(w.items[:0], w.items[1:]...)
	}
	w.items = append(w.items, riskItem{ext: ext, num: num, at: now, intl: intl})
	var nIntl, nNew int
	for _, it := range w.items {
		if it.intl {
			nIntl++
		}
		if !it.alerted {
			nNew++
		}
	}
	pick := func(f func(riskItem) bool) []riskItem {
		var ev []riskItem
		for _, it := range w.items {
			if f(it) {
				ev = append(ev, it)
			}
		}
		if len(riskExtensions(ev)) < minExts {
			return nil
		}
		return ev
	}
	if nIntl >= r.Threshold {
		if ev := pick(func(it riskItem) bool { return it.intl }); ev != nil {
			delete(d.risks, key)
			return ev, true, true
		}
	}
	if nNew >= r.Threshold {
		if ev := pick(func(it riskItem) bool { return !it.alerted }); ev != nil {
			keep := w.items[:0]
			for _, it := range w.items {
				if it.intl {
					it.alerted = true
					keep = append(keep, it)
				}
			}
			w.items = keep
			return ev, false, true
		}
	}
	return nil, false, false
}

// dropRiskExt forgets ext's numbers under key.
func (d *Detectors) dropRiskExt(key, ext string) {
	w := d.risks[key]
	if w == nil {
		return
	}
	keep := w.items[:0]
	for _, it := range w.items {
		if it.ext != ext {
			keep = append(keep, it)
		}
	}
	w.items = keep
}

// sweepState is an extension's or an account's recent distinct numbers.
type sweepState struct {
	nums    []sweepNum // oldest first, at most maxSweepNums
	expires int64
}

type sweepNum struct {
	digits string
	ext    string // who dialled it (for an account's sweep)
	val    int64  // the last (up to) sweepValDigits digits' value
	at     int64
}

const maxSweepNums = 64

// minSweepLen: shorter numbers (short codes) are not swept.
const minSweepLen = 7

// sweepValDigits: numbers are compared by the value of their last 18
// digits (E.164 has at most 15); longer ones must match before those.
const sweepValDigits = 18

// maxSweepStep is the largest step between two numbers of a sequence, in
// units of its stride: 2 lets a sweep skip one number (…100, …101, …103,
// …104) and still be one.
const maxSweepStep = 2

// sweep records a's number and reports a number sweep within Window:
// Threshold or more distinct numbers of the same length that are in
// sequence (…001, …002, …003 is the classic; see sweepRun), or in
// steps of 10, 100, … up to 10^SweepDigits (…1000, …2000, …3000), or
// that share all but their last SweepDigits digits. Sequences are judged
// on the numbers' values, so they cross …999/…000 like any other step.
// The rule's action applies to sequences and to international numbers;
// national numbers in steps or merely under one prefix are only alerted
// (a firm's direct lines can be numbered either way). The account counts
// its extensions' numbers too: a sweep spread over two or more of them
// takes accountAction. Forwarded or originated legs sweep in windows of
// their own and only alert (forwardedAction): a follow-me of five
// numbers under one prefix is one on every ring.
func (d *Detectors) sweep(a CallAttempt) (Finding, bool) {
	r := d.rule(a.Account, DetectSweep)
	num := a.Number.E164
	if num == "" {
		num = digitsOnly(a.Number.Dialled)
	}
	num = strings.TrimPrefix(num, "+")
	// The shared prefix must say something: with sweep_digits 8, a
	// 7-digit number (+290 xxxx, Saint Helena) has none at all.
	if r.Threshold <= 0 || a.Extension == "" || len(num) < max(minSweepLen, d.digits+4) {
		return Finding{}, false
	}
	val, err := strconv.ParseInt(num[max(0, len(num)-sweepValDigits):], 10, 64)
	if err != nil {
		return Finding{}, false
	}
	n := sweepNum{digits: num, ext: a.Extension, val: val, at: a.At.UnixNano()}
	// Forwarded legs sweep apart: a follow-me's numbers, dialled on every
	// ring, must not make a sweep of the phone's own calls.
	extKey, acctKey := tallyKeys(a.Tally)
	acctKey += a.Account
	forwarded, apart, dialled := a.Tally == TallyNoSource, countedApart(a.Tally), dialledBy(a.Tally)
	if hit, ok := d.sweepKey(extKey+a.Extension, n, r, 1); ok {
		// This evidence is acted on: the account does not count it again.
		if s := d.sweeps[acctKey]; s != nil {
			keep := s.nums[:0]
			for _, x := range s.nums {
				if x.ext != a.Extension {
					keep = append(keep, x)
				}
			}
			s.nums = keep
		}
		kind := hit.kind()
		if hit.stride != 1 && !a.Number.International {
			// A receptionist calling five direct lines at one firm looks the
			// same: national and not in sequence, it is worth a look, not a
			// block.
			r.Action = ActionAlert
			kind += " (national and not in sequence, so alerted, not blocked)"
		}
		r, held := forwardedAction(r, a.Tally, heldNumbers)
		ev := hit.evidence()
		ev["forwarded"] = forwarded
		return d.finding(DetectSweep, AlertSweep, r, a, ExtSubject(a.Extension),
			fmt.Sprintf("extension %s %s %d %s within %s (threshold %d in %s): a number sweep, which is how attackers find open routes%s%s",
				a.Extension, dialled, len(hit.nums), kind, r.Window, r.Threshold, r.Window, apart, held),
			ev), true
	}
	if a.Account == "" {
		return Finding{}, false
	}
	// The account counts its extensions' numbers together, so that a
	// sweep spread over them, each below the threshold, is seen.
	hit, ok := d.sweepKey(acctKey, n, r, 2)
	if !ok {
		return Finding{}, false
	}
	kind := hit.kind()
	if hit.stride != 1 && !a.Number.International {
		r.Action = ActionAlert
	} else {
		r.Action = accountAction(r.Action, a.Number.International)
	}
	r, held := forwardedAction(r, a.Tally, heldNumbers)
	ev := hit.evidence()
	ev["extensions"] = hit.exts
	ev["forwarded"] = forwarded
	return d.finding(DetectSweep, AlertSweep, r, a, AccountSubject(a.Account),
		fmt.Sprintf("account %s's extensions %s %s %d %s within %s (threshold %d in %s), the last from extension %s: a number sweep, which is how attackers find open routes%s%s",
			a.Account, strings.Join(hit.exts, ", "), dialled, len(hit.nums), kind, r.Window, r.Threshold, r.Window, a.Extension, apart, held),
		ev), true
}

// sweepKey records n under key and reports a sweep through it by at
// least minExts extensions; the key is then cleared.
func (d *Detectors) sweepKey(key string, n sweepNum, r DetectorRule, minExts int) (sweepHit, bool) {
	s := d.sweeps[key]
	now := n.at
	if s == nil {
		makeRoom(d.sweeps, d.maxKeys, now, func(v *sweepState) int64 { return v.expires })
		s = &sweepState{}
		d.sweeps[key] = s
	}
	keep := s.nums[:0]
	for _, x := range s.nums {
		if inWindow(x.at, now, r.Window) && x.digits != n.digits {
			keep = append(keep, x)
		}
	}
	s.nums = keep
	if len(s.nums) >= maxSweepNums {
		s.nums = append(s.nums[:0], s.nums[1:]...)
	}
	s.nums = append(s.nums, n)
	s.expires = max(s.expires, now+int64(r.Window))

	hit, ok := d.sweepRun(s.nums, r.Threshold)
	if !ok {
		return sweepHit{}, false
	}
	for _, i := range hit.idx {
		hit.nums = append(hit.nums, s.nums[i].digits)
		if !slices.Contains(hit.exts, s.nums[i].ext) {
			hit.exts = append(hit.exts, s.nums[i].ext)
		}
	}
	if len(hit.exts) < minExts {
		return sweepHit{}, false
	}
	sort.Strings(hit.exts)
	delete(d.sweeps, key)
	return hit, true
}

// sweepHit is a sweep sweepRun found: the indexes of its numbers, in
// numeric order, and its stride (1 in sequence, 10, 100, … in steps, 0
// for numbers merely under one prefix).
type sweepHit struct {
	idx    []int
	stride int64
	nums   []string // its numbers, in numeric order
	exts   []string // the extensions that dialled them, sorted
}

func (h sweepHit) prefix() string { return commonPrefix(h.nums[0], h.nums[len(h.nums)-1]) }

func (h sweepHit) kind() string {
	switch h.stride {
	case 1:
		return "sequential numbers"
	case 0:
		return "distinct numbers under +" + h.prefix()
	}
	return fmt.Sprintf("numbers in steps of %d", h.stride)
}

func (h sweepHit) evidence() map[string]any {
	return map[string]any{"numbers": h.nums, "prefix": "+" + h.prefix(), "sequential": h.stride == 1, "stride": h.stride}
}

// sweepRun looks for a sweep of at least threshold numbers that includes
// the last of nums: in sequence, else under one prefix, else in steps of
// a power of ten up to 10^digits. A sequence is a run whose neighbours
// differ by at most maxSweepStep strides. It costs O(len(nums)) for the
// numbers near the last one (usually none) and a small sort of those.
func (d *Detectors) sweepRun(nums []sweepNum, threshold int) (sweepHit, bool) {
	if threshold > len(nums) {
		return sweepHit{}, false
	}
	last := nums[len(nums)-1]
	head := last.digits[:max(0, len(last.digits)-sweepValDigits)]
	block := int64(1)
	for range d.digits {
		block *= 10
	}
	// The reach of a run of up to maxSweepNums numbers at the widest
	// stride: numbers farther away cannot be in one with the last.
	reach := block * maxSweepStep * maxSweepNums
	var near [maxSweepNums]int // indexes of the comparable numbers near the last
	n, under := 0, 0
	for i, x := range nums {
		if len(x.digits) != len(last.digits) || (head != "" && !strings.HasPrefix(x.digits, head)) {
			continue
		}
		if x.val/block == last.val/block {
			under++
		}
		if diff := x.val - last.val; diff >= -reach && diff <= reach {
			near[n] = i
			n++
		}
	}
	if n < threshold {
		return sweepHit{}, false
	}
	var run []int
	for stride := int64(1); stride <= block; stride *= 10 {
		if run = sweepStride(nums, near[:n], last.val, stride, threshold); run != nil {
			if stride == 1 {
				return sweepHit{idx: run, stride: 1}, true
			}
			if under < threshold {
				return sweepHit{idx: run, stride: stride}, true
			}
			break
		}
	}
	if under < threshold {
		return sweepHit{}, false
	}
	// Under one prefix, but not in sequence.
	idx := make([]int, 0, under)
	for _, i := range near[:n] {
		if nums[i].val/block == last.val/block {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return nums[idx[a]].val < nums[idx[b]].val })
	return sweepHit{idx: idx}, true
}

// sweepStride returns the run in steps of stride through val (the last
// number's value) among the numbers near, in numeric order, or nil if it
// is shorter than threshold.
func sweepStride(nums []sweepNum, near []int, val, stride int64, threshold int) []int {
	type unit struct {
		k int64 // (value - val) / stride
		i int
	}
	var buf [maxSweepNums]unit
	n := 0
	reach := stride * maxSweepStep * maxSweepNums
	for _, i := range near {
		diff := nums[i].val - val
		if diff%stride == 0 && diff >= -reach && diff <= reach {
			buf[n] = unit{diff / stride, i}
			n++
		}
	}
	if n < threshold {
		return nil
	}
	us := buf[:n]
	for i := 1; i < n; i++ { // insertion sort: n is small
		for j := i; j > 0 && us[j].k < us[j-1].k; j-- {
			us[j], us[j-1] = us[j-1], us[j]
		}
	}
	at := 0
	for us[at].k != 0 {
		at++
	}
	lo, hi := at, at
	for lo > 0 && us[lo].k-us[lo-1].k <= maxSweepStep {
		lo--
	}
	for hi < n-1 && us[hi+1].k-us[hi].k <= maxSweepStep {
		hi++
	}
	if hi-lo+1 < threshold {
		return nil
	}
	run := make([]int, 0, hi-lo+1)
	for _, u := range us[lo : hi+1] {
		run = append(run, u.i)
	}
	return run
}

// commonPrefix returns the longest prefix a and b share.
func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

// makeRoom bounds a detector's keys: at maxKeys it drops the expired
// ones, and others until a tenth is free.
func makeRoom[V any](m map[string]V, maxKeys int, now int64, expires func(V) int64) {
	if len(m) < maxKeys {
		return
	}
	for k, v := range m {
		if expires(v) < now || len(m) >= maxKeys*9/10 {
			delete(m, k)
		}
	}
}
