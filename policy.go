package tollguard

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Policy is the call gate's rule engine: design.md §1's decision order,
// evaluated against the store inside one IMMEDIATE transaction.
type Policy struct {
	Now    func() time.Time // the one clock; tests pin it
	Store  GateStore
	Logger *slog.Logger

	// DefaultPlan numbers calls from unknown extensions, and decides
	// Emergency when the store cannot be read.
	DefaultPlan NumberPlan
	// AllowUnknown lets extensions the store does not know call, on the
	// AGI accountcode's account or else DefaultAccount, with its limits.
	AllowUnknown   bool
	DefaultAccount string
	// SelftestNumber is the reserved number `tollguard selftest` dials:
	// calls to it are recorded and denied with reason selftest.
	SelftestNumber string
	// FreeShortCodes are short codes, as dialled, that the trunk carries
	// free (US 711 relay, GB 111): they are let through as internal
	// calls. Any other short code of unknown cost is denied.
	FreeShortCodes []string
	// AfterHoursGrace is how long a call of a class closed outside
	// business hours may run past the close: its MAXSEC ends then.
	AfterHoursGrace time.Duration
	// InternalCallsGated says the dialplan sends internal calls through
	// the gate too: a short code that names one of the caller's
	// account's extensions (FR 1018, GB 100) is then that extension.
	// Off, the gate sees only calls bound for a trunk, where it is the
	// short code, whatever the account's numbering.
	InternalCallsGated bool
	// ACLRequiresSource denies a call charged to an extension with an IP
	// access list when the call carries no source address (an inbound
	// call forwarded out, an originate), instead of skipping the list:
	// whoever can set the extension's forwarding can otherwise call out
	// on it from anywhere by ringing its number. A transfer by another
	// phone (Call.Transferred) is denied too.
	ACLRequiresSource bool

	// mu guards the settings above once decisions run: Configure
	// changes them (SIGHUP) while calls are being decided.
	mu sync.RWMutex

	hours sync.Map // schedule key → *Hours

	// SweepGoneWait is how long a call's channel must have been seen
	// gone, by an earlier sweep, before the sweep settles it by the time
	// since its decision. The ARI listener, which knows when the call was
	// answered, settles a lost hangup request after its settle_grace:
	// this must be longer. Zero is DefaultSweepGoneWait.
	SweepGoneWait time.Duration

	// Mono, when set, is a monotonic clock (MonotonicClock in the
	// daemon): the time since a decision this process made is measured
	// on it, so that a wall clock stepped back (NTP) does not cut the
	// seconds a call is billed, nor one stepped forward make the sweep
	// hang up calls within their MAXSEC. Unset, the wall clock is used.
	Mono func() time.Duration
	// WallAhead, when set (serve: its ClockWatch's Ahead), is how far
	// the wall clock is ahead of the time elapsed: the sweep takes it
	// off the wall-clock age of calls with no start on Mono (decided
	// before this process). Unset, it is 0.
	WallAhead func() time.Duration

	// decided is the Mono reading at each allowed decision still open,
	// under decidedMu.
	decidedMu sync.Mutex
	decided   map[int64]time.Duration

	// sweepGone is each open call's age when first seen gone, under
	// sweepMu: one sweep's sightings for the next.
	sweepMu   sync.Mutex
	sweepGone map[int64]time.Duration

	// pending are the settlements the store failed, under pendMu
	// (settle_queue.go); retryMu lets one retry pass run at a time.
	pendMu  sync.Mutex
	pending settleQueue
	retryMu sync.Mutex

	// For Emergency when the store cannot be read, under countriesMu:
	// the accounts' countries seen since start, and each extension's.
	countriesMu sync.Mutex
	countries   []string
	extCountry  map[string]string
	extLearned  int // entries LearnCountries put in extCountry: the store's, bounded by it

	// numbers caches Classify: libphonenumber's regular expressions are
	// the dearest CPU in a decision, and people dial the same numbers
	// again and again.
	numMu   sync.Mutex
	numbers map[numberKey]Number
}

type numberKey struct {
	plan    NumberPlan
	dialled string
}

// maxCachedNumbers bounds the classification cache; it is cleared when
// full, which keeps it simple and its memory flat.
const maxCachedNumbers = 16384

func (p *Policy) classify(dialled string, plan NumberPlan) Number {
	k := numberKey{plan, dialled}
	p.numMu.Lock()
	n, ok := p.numbers[k]
	p.numMu.Unlock()
	if ok {
		return n
	}
	n = Classify(dialled, plan, nil)
	p.numMu.Lock()
	if p.numbers == nil || len(p.numbers) >= maxCachedNumbers {
		p.numbers = make(map[numberKey]Number, 1024)
	}
	p.numbers[k] = n
	p.numMu.Unlock()
	return n
}

var _ Gate = (*Policy)(nil)

// PolicySettings are the policy's settings that a running daemon may
// change (on SIGHUP).
type PolicySettings struct {
	DefaultPlan        NumberPlan
	AllowUnknown       bool
	DefaultAccount     string
	SelftestNumber     string
	FreeShortCodes     []string
	AfterHoursGrace    time.Duration
	InternalCallsGated bool
	ACLRequiresSource  bool
}

// Configure changes the settings; decisions in progress finish with the
// old ones.
func (p *Policy) Configure(s PolicySettings) {
	p.mu.Lock()
	p.DefaultPlan, p.AllowUnknown, p.DefaultAccount, p.SelftestNumber = s.DefaultPlan, s.AllowUnknown, s.DefaultAccount, s.SelftestNumber
	p.FreeShortCodes, p.AfterHoursGrace, p.InternalCallsGated = s.FreeShortCodes, s.AfterHoursGrace, s.InternalCallsGated
	p.ACLRequiresSource = s.ACLRequiresSource
	p.mu.Unlock()
}

func (p *Policy) settings() PolicySettings {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return PolicySettings{p.DefaultPlan, p.AllowUnknown, p.DefaultAccount, p.SelftestNumber, p.FreeShortCodes, p.AfterHoursGrace, p.InternalCallsGated, p.ACLRequiresSource}
}

// Emergency reports whether dialled is an emergency number for
// extension: the gate's answer when it cannot read the store or missed
// its deadline, so it never touches the store. The default country's
// emergency numbers always count. Beyond them, an extension that has
// called since start has its account's country (as step 1 judges it: a
// number that is an emergency number elsewhere can be a paid short code
// there, CH 1414 in BE); another has every account country seen since
// start, so that a DE account on a GB-default PBX still gets 110 through.
func (p *Policy) Emergency(extension, dialled string) bool {
	// The default country's are always honoured: an entry can be stale
	// (the account moved country since), and on the failure paths it
	// cannot be refreshed.
	if IsEmergency(dialled, p.settings().DefaultPlan.Country) {
		return true
	}
	p.countriesMu.Lock()
	country, known := p.extCountry[extension]
	countries := p.countries // appended to only: this slice stays as read
	p.countriesMu.Unlock()
	if known {
		return IsEmergency(dialled, country)
	}
	for _, c := range countries {
		if IsEmergency(dialled, c) {
			return true
		}
	}
	return false
}

// EmergencyRead reports whether dialled is an emergency number in the
// plan of the extension's account, read from the store, as step 1
// judges it. Only when the store cannot say (it fails, or the extension
// is unknown and no default account takes it) is it Emergency.
func (p *Policy) EmergencyRead(ctx context.Context, extension, dialled string) bool {
	set := p.settings()
	var plan *NumberPlan
	err := p.Store.Gate(ctx, true, func(tx GateTx) error {
		acctID := ""
		ext, err := tx.Extension(ctx, extension)
		switch {
		case err != nil:
			return err
		case ext != nil:
			acctID = ext.Account
		case set.AllowUnknown:
			acctID = set.DefaultAccount
		}
		if acctID == "" {
			return nil
		}
		acct, err := tx.Account(ctx, acctID)
		if err != nil || acct == nil {
			return err
		}
		plan = &acct.Plan
		return nil
	})
	if err != nil || plan == nil {
		return p.Emergency(extension, dialled)
	}
	p.noteCountry(extension, plan.Country)
	return p.classify(dialled, *plan).Class == ClassEmergency
}

// LearnCountries tells Emergency the countries of the store's accounts
// and which account country each extension has, as a decision of each
// would: the failure paths then know them from the start, not only for
// accounts that have placed a call since. Call it at start, before the
// gate serves, and now and then after (accounts added by the CLI).
func (p *Policy) LearnCountries(accounts []*Account, extensions []*Extension) {
	country := make(map[string]string, len(accounts))
	for _, a := range accounts {
		if a != nil {
			country[a.ID] = a.Plan.Country
		}
	}
	// Built whole and swapped in: filled one by one, a map over its
	// bound (a PBX of more than maxCachedNumbers extensions) was
	// cleared while it filled, and most extensions fell back to every
	// country's numbers.
	ext := make(map[string]string, len(extensions))
	for _, e := range extensions {
		if e == nil || e.Name == "" {
			continue
		}
		if c, ok := country[e.Account]; ok {
			ext[e.Name] = c
		}
	}
	learned := len(ext)
	p.countriesMu.Lock()
	defer p.countriesMu.Unlock()
	// A new slice: readers keep the one they took. A deleted account's
	// country goes with it.
	countries := make([]string, 0, len(p.countries))
	for _, c := range country {
		if !slices.Contains(countries, c) {
			countries = append(countries, c)
		}
	}
	// What decisions noted for extensions no list holds (an unknown
	// one taken by the default account, an account code) stays: they
	// are learned nowhere else, and without it such an extension would
	// get every account country's numbers (CH 1414, a BE premium short
	// code, for a BE one). Bounded as noteCountry bounds them.
	for name, c := range p.extCountry {
		if len(ext) >= learned+maxCachedNumbers {
			break
		}
		if _, listed := ext[name]; !listed && slices.Contains(countries, c) {
			ext[name] = c
		}
	}
	p.countries, p.extCountry, p.extLearned = countries, ext, learned
}

// noteCountry remembers an extension's account country for Emergency:
// one lock per decision. The country list is tiny (the countries of the
// PBX's accounts); the extensions' map is bounded.
func (p *Policy) noteCountry(extension, country string) {
	p.countriesMu.Lock()
	defer p.countriesMu.Unlock()
	if p.extCountry[extension] != country {
		if p.extCountry == nil || len(p.extCountry) >= p.extLearned+maxCachedNumbers {
			p.extCountry, p.extLearned = make(map[string]string), 0
		}
		p.extCountry[extension] = country
	}
	if !slices.Contains(p.countries, country) {
		p.countries = append(p.countries, country)
	}
}

// Decide returns the verdict for c and records it as a call row.
func (p *Policy) Decide(ctx context.Context, c Call) (Decision, error) {
	return p.decide(ctx, c, false)
}

// Explain evaluates c exactly as Decide does, step by step, and records
// nothing: `tollguard check`.
func (p *Policy) Explain(ctx context.Context, c Call) (Decision, error) {
	return p.decide(ctx, c, true)
}

// Settle charges an allowed call and releases its reservation. When
// the store fails it (not a refusal: an unknown call, another
// channel's), the settlement is kept in memory and retried
// (settle_queue.go), and the error is marked ErrSettlementPending.
func (p *Policy) Settle(ctx context.Context, s Settlement) (bool, error) {
	if s.At.IsZero() {
		s.At = p.Now()
	}
	if s.Billsec < 0 {
		s.Billsec = 0
	}
	if s.SinceDecision && s.Elapsed == 0 {
		s.Elapsed, _ = p.sinceDecided(s.CallID)
	}
	// One that failed earlier came first, and wins; while the store
	// still fails it, this one is not tried (nor kept) as well.
	if err := p.retryPending(ctx, s.CallID); retryable(err) {
		return false, fmt.Errorf("%w; %w", err, ErrSettlementPending)
	}
	_, changed, err := p.settleStored(ctx, s)
	if retryable(err) {
		return false, p.queueSettlement(s, err)
	}
	if err == nil {
		p.donePending(s.CallID) // it landed: one still pending would change nothing
	}
	return changed, err
}

// settleStored writes s as it is: a retried settlement keeps its time,
// its seconds and its monotonic elapsed time, so it charges what it
// would have charged when it came.
func (p *Policy) settleStored(ctx context.Context, s Settlement) (CallRecord, bool, error) {
	rec, changed, err := p.Store.SettleCall(ctx, s)
	if err != nil {
		return rec, false, err
	}
	p.forgetDecided(s.CallID)
	if changed && rec.MaxSec >= 0 && rec.Billsec > rec.MaxSec+5 {
		// TIMEOUT(absolute) should have ended the call; the charge is
		// capped at the reservation, so say why the bill looks short.
		p.logger().Warn("call ran past its limit; charged its reservation only",
			LogCallID, rec.ID, LogExtension, rec.Extension, LogAccount, rec.Account,
			"billsec", rec.Billsec, "maxsec", rec.MaxSec)
	}
	return rec, changed, nil
}

func (p *Policy) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// eval carries one decision through the rule steps.
type eval struct {
	d Decision
}

func (e *eval) step(rule, result, format string, args ...any) {
	e.d.Steps = append(e.d.Steps, Step{Rule: rule, Result: result, Detail: fmt.Sprintf(format, args...)})
}

func (e *eval) deny(r Reason, rule, format string, args ...any) {
	e.step(rule, "deny", format, args...)
	e.d.Verdict, e.d.Reason, e.d.Cause, e.d.MaxSec = Deny, r, CauseCallRejected, 0
}

func (e *eval) allow(r Reason, rule, format string, args ...any) {
	e.step(rule, "allow", format, args...)
	e.d.Verdict, e.d.Reason, e.d.Cause = Allow, r, 0
}

// appendCount appends one window's count to the rate-limit step's
// detail ("extension 1001: 2 in the last hour (limit 3, 0 more after
// this call)"), without the allocations of formatting it: every call
// with limits set writes it.
func appendCount(b []byte, sep bool, who string, n int, window string, limit int) []byte {
	if sep {
		b = append(b, ", "...)
	}
	b = append(b, who...)
	b = append(b, ": "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, " in the last "...)
	b = append(b, window...)
	b = append(b, " (limit "...)
	b = strconv.AppendInt(b, int64(limit), 10)
	// What is left, so that `tollguard check` (which counts nothing)
	// tells the admin how close the phone is to the limit.
	b = append(b, ", "...)
	b = strconv.AppendInt(b, int64(limit-n-1), 10)
	return append(b, " more after this call)"...)
}

func (p *Policy) decide(ctx context.Context, c Call, dry bool) (Decision, error) {
	now := p.Now()
	if !c.At.IsZero() && c.At.Before(now) {
		now = c.At // decided, and recorded, as of when it was placed
	}
	d, err := p.evaluate(ctx, c, now, dry)
	if err == nil {
		return d, nil
	}
	// The store failed or the deadline passed. Emergency calls go
	// through regardless; everything else is the caller's to fail closed.
	if p.Emergency(c.Extension, c.Dialled) || d.Number.Class == ClassEmergency {
		p.logger().Error("store failed during an emergency call; allowing it unrecorded",
			LogExtension, c.Extension, LogDest, c.Dialled, LogError, err)
		return Decision{Verdict: Allow, Reason: ReasonEmergency, MaxSec: -1,
			Number: Number{Dialled: c.Dialled, Class: ClassEmergency},
			Steps:  []Step{{Rule: "emergency", Result: "allow", Detail: "emergency number; allowed although the store failed"}}}, nil
	}
	return Decision{}, err
}

func (p *Policy) evaluate(ctx context.Context, c Call, now time.Time, dry bool) (Decision, error) {
	var d Decision
	err := p.Store.Gate(ctx, dry, func(tx GateTx) error {
		var err error
		d, err = p.evaluateTx(ctx, tx, c, now, dry)
		return err
	})
	if err != nil {
		return d, err
	}
	if !dry && d.Allowed() && d.CallID != 0 && c.At.IsZero() {
		p.noteDecided(d.CallID)
	}
	return d, nil
}

// MonotonicClock reads the process's monotonic clock: Policy.Mono in the
// daemon.
func MonotonicClock() time.Duration { return time.Since(processStart) }

var processStart = time.Now()

// maxDecided bounds the open decisions remembered; past it the map is
// cleared, and those calls are measured on the wall clock.
const maxDecided = 100_000

func (p *Policy) noteDecided(id int64) {
	if p.Mono == nil {
		return
	}
	at := p.Mono()
	p.decidedMu.Lock()
	if p.decided == nil || len(p.decided) >= maxDecided {
		p.decided = make(map[int64]time.Duration)
	}
	p.decided[id] = at
	p.decidedMu.Unlock()
}

// sinceDecided is the time on Mono since call id was decided, if this
// process decided it.
func (p *Policy) sinceDecided(id int64) (time.Duration, bool) {
	if p.Mono == nil {
		return 0, false
	}
	p.decidedMu.Lock()
	at, ok := p.decided[id]
	p.decidedMu.Unlock()
	if !ok {
		return 0, false
	}
	return p.Mono() - at, true
}

func (p *Policy) forgetDecided(id int64) {
	p.decidedMu.Lock()
	delete(p.decided, id)
	p.decidedMu.Unlock()
}

// evaluateTx is one decision inside the store's transaction: look up the
// caller, classify the number, walk the rules, record the attempt.
func (p *Policy) evaluateTx(ctx context.Context, tx GateTx, c Call, now time.Time, dry bool) (Decision, error) {
	e := &eval{d: Decision{MaxSec: -1, Scale: 2}}
	set := p.settings()
	ext, err := tx.Extension(ctx, c.Extension)
	if err != nil {
		return e.d, fmt.Errorf("find extension %q: %w", c.Extension, err)
	}
	acctID := c.Account
	if ext != nil {
		acctID = ext.Account
	} else if acctID == "" && set.AllowUnknown {
		acctID = set.DefaultAccount
	}
	var acct *Account
	if acctID != "" {
		if acct, err = tx.Account(ctx, acctID); err != nil {
			return e.d, fmt.Errorf("find account %q: %w", acctID, err)
		}
	}
	plan := set.DefaultPlan
	if acct != nil {
		plan = acct.Plan
		e.d.Account, e.d.Scale = acct.ID, acct.Scale
		p.noteCountry(c.Extension, plan.Country)
	}
	num := p.classify(c.Dialled, plan)
	if num.E164 != "" && num.Class != ClassEmergency && num.Class != ClassInternal {
		hr, err := tx.HighRisk(ctx, num.E164)
		if err != nil {
			return e.d, fmt.Errorf("high-risk lookup %s: %w", num.E164, err)
		}
		if hr != nil {
			num.HighRisk = hr.Description
			num.Class = ClassHighRisk
		}
	}
	e.d.Number = num

	p.rules(ctx, tx, e, set, c, ext, acct, now)
	if e.d.Verdict == "" {
		// a lookup failed inside the rules; its step says which
		return e.d, fmt.Errorf("decision lookup failed: %s", e.d.Steps[len(e.d.Steps)-1].Detail)
	}
	if dry {
		return e.d, nil
	}
	rec := CallRecord{
		CreatedAt: now, Extension: c.Extension, Account: e.d.Account,
		Dialled: c.Dialled, E164: num.E164, Class: num.Class, Country: num.Region,
		Remote: c.Remote, Channel: c.Channel, UniqueID: c.UniqueID, LinkedID: c.LinkedID,
		Verdict: e.d.Verdict, Reason: e.d.Reason, Cause: e.d.Cause,
		Rate: e.d.Rate, Billing: e.d.Billing, Reserve: e.d.Reserve, Scale: e.d.Scale, MaxSec: e.d.MaxSec, Steps: e.d.Steps,
	}
	id, err := tx.InsertCall(ctx, &rec)
	if err != nil {
		return e.d, fmt.Errorf("record call: %w", err)
	}
	e.d.CallID = id
	return e.d, nil
}

// rules walks design.md §1's decision order. The first rule that decides
// wins. A failed lookup leaves the verdict empty and the error in e.
func (p *Policy) rules(ctx context.Context, tx GateTx, e *eval, set PolicySettings, c Call, ext *Extension, acct *Account, now time.Time) {
	num := e.d.Number

	// 1. Emergency numbers, always: those of the account's plan, which
	// numbered the call. Not the default country's too: in a PBX serving
	// several countries they can be premium short codes of the account's
	// (AT fire brigade 122 is one in ES), allowed with no limit.
	if num.Class == ClassEmergency {
		if num.Why != "" { // behind a caller ID code: say which number it is
			e.allow(ReasonEmergency, "emergency", "%s is %s", c.Dialled, num.Why)
			return
		}
		e.allow(ReasonEmergency, "emergency", "%s is an emergency number", c.Dialled)
		return
	}
	e.step("emergency", "pass", "not an emergency number")

	if set.SelftestNumber != "" && (c.Selftest || digitsOnly(c.Dialled) == digitsOnly(set.SelftestNumber)) {
		e.deny(ReasonSelftest, "selftest", "tollguard selftest call to the reserved number %s", set.SelftestNumber)
		return
	}

	// 2. Unknown extensions.
	switch {
	case ext == nil && !set.AllowUnknown && c.Extension == "":
		// A Local channel nothing named (no ARG2, no inherited
		// TOLLGUARD_EXT): an inbound call forwarded or transferred out,
		// whose channel belongs to no phone. Adding "" is no fix.
		e.deny(ReasonUnknownExtension, "extension", "no extension named: a Local channel whose route passes no extension (ARG2) and inherited no TOLLGUARD_EXT, such as an inbound call forwarded or transferred out; set_var=__TOLLGUARD_EXT on the phones' endpoints, or keep transfers off the outbound routes (TRANSFER_CONTEXT)")
		return
	case ext == nil && !set.AllowUnknown:
		e.deny(ReasonUnknownExtension, "extension", "extension %q is not in tollguard's store; add it with `tollguard ext add` if it is a phone (a trunk's name here is an inbound call sent out again, by a transfer or the dialplan: keep it off the outbound routes instead)", c.Extension)
		return
	case acct == nil:
		e.deny(ReasonUnknownExtension, "extension", "extension %q has no account (accountcode %q, default account %q)", c.Extension, c.Account, set.DefaultAccount)
		return
	case ext == nil:
		ext = &Extension{Name: c.Extension, Account: acct.ID}
		e.step("extension", "pass", "unknown extension %q allowed on account %s by setting", c.Extension, acct.ID)
	default:
		e.step("extension", "pass", "extension %s on account %s", ext.Name, acct.ID)
	}

	// A short code the admin knows to be free goes through as an
	// internal call; so does one as short as an extension (GB 100, the
	// operator; AD 912345, a premium number, with 6-digit extensions)
	// that names one of the account's extensions, where the
	// dialplan gates internal calls too. Where it gates only trunk
	// routes, such a call is bound for the trunk: the short code.
	if num.Short || num.ExtensionLength {
		code := digitsOnly(c.Dialled)
		internal := FreeShortCode(code, set.FreeShortCodes)
		if !internal && num.ExtensionLength && set.InternalCallsGated {
			callee, err := tx.Extension(ctx, code) // (nil, nil) when there is none
			if err != nil {
				p.lookupFailed(e, "extension", err)
				return
			}
			internal = callee != nil && callee.Account == acct.ID
		}
		if internal {
			num = num.AsInternal()
			e.d.Number = num
		}
	}

	// 3. Blocks.
	if ext.Blocked {
		e.deny(ReasonBlockedExtension, "blocks", "extension %s is blocked: %s", ext.Name, ext.BlockReason)
		return
	}
	if acct.IntlBlock && num.International {
		e.deny(ReasonIntlBlock, "blocks", "account %s is blocked for international calls: %s", acct.ID, acct.IntlBlockReason)
		return
	}
	e.step("blocks", "pass", "no block applies")

	// 4. The extension's IP access list.
	if len(ext.CIDRs) > 0 {
		addr, err := netip.ParseAddr(c.Remote)
		switch {
		case c.Remote == "" && set.ACLRequiresSource:
			e.deny(ReasonIPNotAllowed, "ip_acl", "no source address (a forwarded or originated call), and extension %s has an IP access list: [gate] acl_requires_source is on", ext.Name)
			return
		case c.Transferred && set.ACLRequiresSource:
			e.deny(ReasonIPNotAllowed, "ip_acl", "a transfer by another phone than extension %s's own, whose address is unknown, and %s has an IP access list: [gate] acl_requires_source is on", ext.Name, ext.Name)
			return
		case c.Remote == "":
			e.step("ip_acl", "skip", "source address unknown (no SIP peer on this channel)")
		case err != nil:
			e.deny(ReasonIPNotAllowed, "ip_acl", "source address %q is not an IP address", c.Remote)
			return
		case !ext.AllowsFrom(addr):
			e.deny(ReasonIPNotAllowed, "ip_acl", "source %s is outside extension %s's allowed networks %s", addr, ext.Name, prefixesString(ext.CIDRs))
			return
		case c.Transferred:
			e.step("ip_acl", "pass", "source %s, a phone in the call another phone transferred, is allowed", addr)
		default:
			e.step("ip_acl", "pass", "source %s is allowed", addr)
		}
	} else {
		// Printed, so that `tollguard check` does not leave the admin
		// wondering whether the list was looked at.
		// A transfer's record says so: its source is not the phone that
		// chose the number.
		note := ""
		switch {
		case c.Transferred && c.Remote != "":
			note = " (source " + c.Remote + ", a phone in the call another phone transferred)"
		case c.Transferred:
			note = " (the call is a transfer by another phone)"
		}
		e.step("ip_acl", "skip", "extension %s has no IP access list%s", ext.Name, note)
	}

	if num.Class == ClassUnknown || (num.E164 == "" && num.Class != ClassInternal && !num.Short) {
		if num.Why != "" {
			e.deny(ReasonDestinationDenied, "destination", "%q is not a number tollguard can judge in %s: %s", c.Dialled, acct.Plan.Country, num.Why)
			return
		}
		e.deny(ReasonDestinationDenied, "destination", "%q is not a dialable number in %s", c.Dialled, acct.Plan.Country)
		return
	}

	// 5. Explicit deny prefixes, then the whitelist.
	whitelisted := false
	// When the schedule closes, for a call of a class closed after it.
	var closes time.Time
	if num.E164 != "" {
		allow, deny, err := tx.MatchRules(ctx, acct.ID, num.E164)
		if err != nil {
			p.lookupFailed(e, "rules", err)
			return
		}
		if deny != nil {
			e.deny(ReasonDestinationDenied, "rules", "%s matches deny rule %s%s", num.E164, deny.Prefix, ruleScope(deny))
			return
		}
		// An allow rule of a code's main region (+1, +44, +447) does not
		// whitelist the other regions sharing the code, as it would not
		// price them: +1 meant for the US let Jamaica past the high-risk
		// list. Deny rules keep their whole reach.
		notFor := "" // why a matching allow rule does not apply
		if allow != nil && num.International {
			if ok, covers := num.PricedBy(strings.TrimPrefix(allow.Prefix, "+")); !ok {
				notFor = fmt.Sprintf("allow rule %s%s is for %s, not %s (allow the region's own prefix to allow it)", allow.Prefix, ruleScope(allow), covers, num.Region)
				allow = nil
			}
		}
		whitelisted = allow != nil
		if acct.Whitelist && !whitelisted {
			if notFor != "" {
				notFor = ": " + notFor
			}
			e.deny(ReasonNotWhitelisted, "rules", "account %s is in strict whitelist mode and %s is not on its whitelist%s", acct.ID, num.E164, notFor)
			return
		}
		switch {
		case whitelisted:
			e.step("rules", "pass", "%s is whitelisted by %s%s: class, schedule and rate limits are skipped", num.E164, allow.Prefix, ruleScope(allow))
		case notFor != "":
			e.step("rules", "pass", "%s", notFor)
		default:
			e.step("rules", "pass", "no rule matches")
		}
	}

	// The rate, for the ceiling (6) and credit (9).
	var rate Rate
	var bill Billing
	rateKnown, foreign, noRate := false, "", "has no rate in the rate deck"
	if num.E164 != "" {
		re, err := tx.Rate(ctx, num.E164)
		if err != nil {
			p.lookupFailed(e, "rate", err)
			return
		}
		if re != nil {
			if ok, covers := num.PricedBy(re.Prefix); !ok {
				noRate = fmt.Sprintf("has no rate in the rate deck (region %s: the deck's +%s row prices %s only)", orUnknown(num.Region), re.Prefix, covers)
				re = nil
			}
		}
		if re != nil {
			rate, bill, rateKnown = re.Rate, re.Billing, true
			// Free is free in any currency; a price in another one
			// would be read as the account's (a dollar deck charging a
			// yen account a hundredth), and credit would not bound it.
			if re.Currency != "" && re.Currency != acct.Currency && (rate > 0 || bill.Connect > 0) {
				foreign = re.Currency
			}
		}
	}
	e.d.Rate, e.d.Billing = rate, bill
	// Denied in step 6, after the high-risk list and premium numbers,
	// whose reasons say more.
	if whitelisted && foreign != "" {
		denyForeign(e, foreign, acct, num)
		return
	}

	// A whitelist skips the class checks, not the pricing: credit
	// bounds a call only through its rate, so a whitelisted toll number
	// the deck cannot price would be free, unlimited and uncapped in
	// parallel (whitelisted calls skip the concurrency limits too).
	if whitelisted && !rateKnown && num.Toll() && (num.International || num.Is(ClassPremium) || num.HighRisk != "") {
		e.deny(ReasonRateCeiling, "class", "%s is whitelisted but %s, so credit cannot bound it; import one with `tollguard rates import`", num.E164, noRate)
		return
	}

	if !whitelisted {
		// 6. Destination class and rate ceiling.
		if num.HighRisk != "" {
			e.deny(ReasonHighRisk, "class", "%s is on the high-risk list: %s", num.E164, num.HighRisk)
			return
		}
		if num.Is(ClassPremium) {
			what, hint := num.E164, "whitelist it to allow"
			if num.Short { // no E.164 form for a rule to match
				what, hint = c.Dialled+" (a short code)", "short codes cannot be whitelisted"
			}
			e.deny(ReasonPremium, "class", "%s is a premium-rate number; %s", what, hint)
			return
		}
		if foreign != "" {
			denyForeign(e, foreign, acct, num)
			return
		}
		dearest, minutes := bill.DearestMinute(rate)
		ceiling, which := acct.NationalCeiling, "national"
		if num.International {
			ceiling, which = acct.InternationalCeiling, "international"
		}
		switch {
		case !rateKnown && num.Toll() && num.International:
			e.deny(ReasonRateCeiling, "class", "%s %s; import one with `tollguard rates import`", num.E164, noRate)
			return
		case num.Type == TypeShortCode:
			// Directory enquiries and the like: often pounds a minute.
			// libphonenumber does not know which, and a short code has no
			// E.164 form for the deck to price it by.
			e.deny(ReasonRateCeiling, "class", "%s is a %s short code of unknown cost (directory enquiries, operators and the like), which tollguard cannot price; if your trunk carries it free, list it in [gate] free_short_codes", c.Dialled, num.Region)
			return
		case ceiling != NoCeiling && dearest > ceiling:
			switch {
			case bill.PerSecond():
				e.deny(ReasonRateCeiling, "class", "%s costs %s/min, over the %s ceiling of %s/min", num.E164, rate, which, ceiling)
			case minutes == 1:
				e.deny(ReasonRateCeiling, "class", "%s costs %s/min billed %s: its first minute costs %s, over the %s ceiling of %s/min",
					num.E164, rate, bill, dearest, which, ceiling)
			default:
				e.deny(ReasonRateCeiling, "class", "%s costs %s/min billed %s: a %d-minute call costs %s a minute, over the %s ceiling of %s/min",
					num.E164, rate, bill, minutes, dearest, which, ceiling)
			}
			return
		}
		e.step("class", "pass", "class %s at %s", num.Class, bill.Price(rate))

		// 7. Business hours.
		// Holidays alone (no hours: always open otherwise) close too.
		if (acct.HoursSpec != "" || len(acct.Holidays) > 0) && len(acct.AfterHours) > 0 {
			h, err := p.schedule(acct)
			if err != nil {
				p.lookupFailed(e, "hours", err)
				return
			}
			i := slices.IndexFunc(acct.AfterHours, num.Is)
			closed, open := i >= 0, h.Open(now)
			within := "within business hours"
			if open && HoursNameNoSpans(acct.HoursSpec) {
				// Stored by an older release; allowed as before, but said.
				within = NoSpansAdvice(acct.ID, acct.HoursSpec)
			}
			switch {
			case !open && closed && h.Holiday(now):
				e.deny(ReasonAfterHours, "hours", "%s calls are not allowed on a holiday (%s is one of the account's, in %s)", acct.AfterHours[i], now.In(h.Location()).Format("2006-01-02"), acct.Zone)
				return
			case !open && closed:
				e.deny(ReasonAfterHours, "hours", "%s calls are not allowed outside business hours (%s, %s)", acct.AfterHours[i], acct.HoursSpec, acct.Zone)
				return
			case !open:
				e.step("hours", "pass", "outside business hours, but %s calls are allowed then", num.Class)
			case closed:
				// A call started just before the close must not run
				// through the night: it ends a grace after it.
				// A break shorter than the grace (lunch) is no close;
				// a night is, however long the grace.
				at, ok := h.Closes(now, min(set.AfterHoursGrace, maxBridgedBreak))
				if !ok {
					at, ok = h.Closes(now, 0)
				}
				if ok {
					closes = at.Add(set.AfterHoursGrace)
					e.step("hours", "pass", "%s; %s calls end by %s (the close plus %s)", within, num.Class, closes.In(h.Location()).Format("Mon 15:04 MST"), set.AfterHoursGrace)
				} else {
					e.step("hours", "pass", "%s", within)
				}
			default:
				e.step("hours", "pass", "%s", within)
			}
		} else if acct.HoursSpec == "" && len(acct.Holidays) == 0 {
			e.step("hours", "skip", "account %s has no business hours or holidays set", acct.ID)
		} else {
			e.step("hours", "skip", "account %s closes no class outside business hours", acct.ID)
		}
	}

	// Calls in progress, for concurrency (8) and credit (9).
	acctOpen, extOpen, reserved, err := tx.OpenCalls(ctx, acct.ID, ext.Name)
	if err != nil {
		p.lookupFailed(e, "open_calls", err)
		return
	}

	if !whitelisted {
		// 8. Rate limits and concurrency. Attempts are counted in the
		// call's own tally: forwarded legs, which anyone who rings the
		// number can make, apart from the phones' own calls.
		lim := acct.Limits
		tally := TallyOf(c.Remote)
		apart := ""
		if tally == TallyNoSource {
			apart = "; calls from its phones are counted apart"
		}
		// The counts, for the explanation; a stack buffer, made a
		// string once (through fmt it would escape). 640 bytes hold all
		// six windows with typical names (570); longer ones move to the
		// heap, whole.
		var countedBuf [640]byte
		const counting = "within attempt and concurrency limits; counted among "
		detail := append(append(append(countedBuf[:0], counting...), tally.String()...), ": "...)
		head := len(detail)
		for _, sc := range []struct {
			scope, id, who    string
			minute, hour, day int
		}{
			{"ext", ext.Name, "extension " + ext.Name, lim.ExtPerMinute, lim.ExtPerHour, lim.ExtPerDay},
			{"acct", acct.ID, "account " + acct.ID, lim.AcctPerMinute, lim.AcctPerHour, lim.AcctPerDay},
		} {
			most := max(sc.minute, sc.hour, sc.day)
			if most <= 0 {
				continue
			}
			m, h, dd, err := tx.Attempts(ctx, sc.scope, sc.id, tally, now)
			if err != nil {
				p.lookupFailed(e, "rate_limit", err)
				return
			}
			for _, w := range []struct {
				n, limit int
				window   string
			}{{m, sc.minute, "minute"}, {h, sc.hour, "hour"}, {dd, sc.day, "day"}} {
				if w.limit <= 0 {
					continue
				}
				if w.n >= w.limit {
					e.deny(ReasonRateLimit, "rate_limit", "%s: %d %s in the last %s (limit %d)%s", sc.who, w.n, tally, w.window, w.limit, apart)
					return
				}
				detail = appendCount(detail, len(detail) > head, sc.who, w.n, w.window, w.limit)
			}
		}
		if lim.ExtConcurrent > 0 && extOpen >= lim.ExtConcurrent {
			e.deny(ReasonConcurrency, "concurrency", "extension %s has %d calls in progress (limit %d)", ext.Name, extOpen, lim.ExtConcurrent)
			return
		}
		if lim.AcctConcurrent > 0 && acctOpen >= lim.AcctConcurrent {
			e.deny(ReasonConcurrency, "concurrency", "account %s has %d calls in progress (limit %d)", acct.ID, acctOpen, lim.AcctConcurrent)
			return
		}
		if len(detail) > head {
			e.d.Steps = append(e.d.Steps, Step{Rule: "rate_limit", Result: "pass", Detail: string(detail)})
		} else {
			e.step("rate_limit", "pass", "within attempt and concurrency limits")
		}
	}

	// 9. Credit, by reservation.
	reason := ReasonOK
	if whitelisted {
		reason = ReasonWhitelist
	}
	available := acct.Balance + acct.CreditLimit - reserved
	// Seconds left until the schedule's close and grace, at least one:
	// the call was allowed while open.
	untilClose := int64(-1)
	if !closes.IsZero() {
		untilClose = min(max(int64(closes.Sub(now)/time.Second), 1), MaxCallSecsLimit)
	}
	if rate <= 0 && bill.Connect <= 0 {
		e.d.MaxSec = -1
		if acct.MaxCallSecs > 0 {
			e.d.MaxSec = min(acct.MaxCallSecs, MaxCallSecsLimit)
		}
		if untilClose > 0 && (e.d.MaxSec < 0 || untilClose < e.d.MaxSec) {
			e.d.MaxSec = untilClose
		}
		e.allow(reason, "credit", "free destination; time limit: %s", secsString(e.d.MaxSec))
		return
	}
	budget := available
	if acct.CallCap > 0 && acct.CallCap < budget {
		budget = acct.CallCap
	}
	// A paid call always has a limit, even on an account with no cap:
	// "no cap" with a large balance gave MAXSEC in the billions, one
	// call reserved the whole balance, and the sweep's arithmetic
	// overflowed.
	// by names the limit that set maxsec, for the explanation.
	maxsec, by := MaxSeconds(budget, rate, bill, acct.Scale), "available credit"
	if budget < available {
		by = "the per-call cap"
	}
	if maxsec > MaxCallSecsLimit {
		maxsec, by = MaxCallSecsLimit, "the longest call tollguard allows"
	}
	if acct.MaxCallSecs > 0 && maxsec > acct.MaxCallSecs {
		maxsec, by = acct.MaxCallSecs, "the account's maximum call length"
	}
	if untilClose > 0 && maxsec > untilClose {
		maxsec, by = untilClose, "the close of business hours"
	}
	// Inside a paid step, whichever limit set it.
	maxsec = bill.Fit(maxsec)
	if maxsec < 1 {
		if budget < available {
			e.deny(ReasonNoCredit, "credit", "the per-call cap %s does not pay for the first step at %s (available credit %s); raise it with `tollguard account set %s --call-cap`",
				FormatAmount(budget, acct.Scale), bill.Price(rate), FormatAmount(available, acct.Scale), acct.ID)
			return
		}
		e.deny(ReasonNoCredit, "credit", "available credit %s (balance %s, in progress %s) does not pay for the first step at %s",
			FormatAmount(available, acct.Scale), FormatAmount(acct.Balance, acct.Scale), FormatAmount(reserved, acct.Scale), bill.Price(rate))
		return
	}
	e.d.MaxSec = maxsec
	e.d.Reserve = Cost(rate, bill, maxsec, acct.Scale)
	if by == "the per-call cap" {
		by += " " + FormatAmount(budget, acct.Scale) // only when it is the limit
	}
	e.allow(reason, "credit", "available %s at %s: up to %s (set by %s), reserving %s",
		FormatAmount(available, acct.Scale), bill.Price(rate), secsString(maxsec), by, FormatAmount(e.d.Reserve, acct.Scale))
}

// denyForeign denies a call the deck prices in another currency than
// the account's.
func denyForeign(e *eval, deck string, acct *Account, num Number) {
	e.deny(ReasonRateCeiling, "rate", "the rate deck is priced in %s and account %s in %s, so %s cannot be priced; import a deck in %s, or keep the account's currency the deck's",
		deck, acct.ID, acct.Currency, num.E164, acct.Currency)
}

// maxBridgedBreak is the longest break in business hours that does not
// end a restricted call: a lunch, not a night.
const maxBridgedBreak = 2 * time.Hour

func (p *Policy) lookupFailed(e *eval, rule string, err error) {
	e.step(rule, "error", "%v", err)
	e.d.Verdict = ""
	p.logger().Error("decision lookup failed; the call is denied with reason error, emergency numbers allowed. "+CheckStore, "rule", rule, LogError, err)
}

// schedule returns the account's compiled business hours, parsed once
// per distinct schedule.
func (p *Policy) schedule(a *Account) (*Hours, error) {
	key := a.Zone + "\x00" + a.HoursSpec + "\x00" + strings.Join(a.Holidays, ",")
	if h, ok := p.hours.Load(key); ok {
		return h.(*Hours), nil
	}
	h, err := ParseHours(a.Zone, a.HoursSpec, a.Holidays)
	if err != nil {
		return nil, fmt.Errorf("account %s business hours: %w", a.ID, err)
	}
	p.hours.Store(key, h)
	return h, nil
}

func ruleScope(r *Rule) string {
	if r.Account == "" {
		return " (global)"
	}
	return " (account " + r.Account + ")"
}

func prefixesString(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func secsString(s int64) string {
	if s < 0 {
		return "no limit"
	}
	return fmt.Sprintf("%ds", s)
}

// FreeShortCode reports whether dialled is one of free, the short codes
// the trunk carries free ([gate] free_short_codes), as the gate's step 2
// reads them: by their digits.
func FreeShortCode(dialled string, free []string) bool {
	return slices.Contains(free, digitsOnly(dialled))
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
