package tollguard

import (
	"net/netip"
	"time"
)

// Verdict is the gate's answer.
type Verdict string

const (
	Allow Verdict = "allow"
	Deny  Verdict = "deny"
)

// Reason is the stable code for a verdict (design.md §1). Dialplans,
// alerts and metrics key on it, so never rename one.
type Reason string

const (
	ReasonOK                Reason = "ok"
	ReasonEmergency         Reason = "emergency"
	ReasonWhitelist         Reason = "whitelist"
	ReasonUnknownExtension  Reason = "unknown_extension"
	ReasonBlockedExtension  Reason = "blocked_extension"
	ReasonIntlBlock         Reason = "intl_block"
	ReasonIPNotAllowed      Reason = "ip_not_allowed"
	ReasonDestinationDenied Reason = "destination_denied"
	ReasonNotWhitelisted    Reason = "not_whitelisted"
	ReasonHighRisk          Reason = "high_risk"
	ReasonPremium           Reason = "premium"
	ReasonRateCeiling       Reason = "rate_ceiling"
	ReasonAfterHours        Reason = "after_hours"
	ReasonRateLimit         Reason = "rate_limit"
	ReasonConcurrency       Reason = "concurrency"
	ReasonNoCredit          Reason = "no_credit"
	ReasonSelftest          Reason = "selftest"
	ReasonError             Reason = "error"
)

// Reasons lists every reason code, in decision order.
var Reasons = []Reason{
	ReasonOK, ReasonEmergency, ReasonWhitelist, ReasonUnknownExtension,
	ReasonBlockedExtension, ReasonIntlBlock, ReasonIPNotAllowed,
	ReasonDestinationDenied, ReasonNotWhitelisted, ReasonHighRisk,
	ReasonPremium, ReasonRateCeiling, ReasonAfterHours, ReasonRateLimit,
	ReasonConcurrency, ReasonNoCredit, ReasonSelftest, ReasonError,
}

// TransferSourcePrefix marks the source the include sends for a
// transfer by another phone than the paying extension's
// (xfer/192.0.2.7:5060): Call.Transferred.
const TransferSourcePrefix = "xfer/"

// SourceAddress is Call.Remote for a caller's address: a v4-mapped
// address as IPv4 and without an IPv6 zone, which no access list holds.
// The FastAGI server and `tollguard check` both read addresses through
// it, so that the dry run judges the call the gate sees.
func SourceAddress(a netip.Addr) string {
	return a.Unmap().WithZone("").String()
}

// Call is one gate request: an extension asking to dial a number.
type Call struct {
	Extension string // the endpoint ("1001"), from the AGI argument or the channel
	Account   string // the AGI accountcode; the store's account for the extension wins
	Dialled   string // the digits as dialled
	Remote    string // the caller's source IP (no port), "" when unknown (Local channels)
	Channel   string // "PJSIP/1001-0000002a"
	UniqueID  string // agi_uniqueid
	LinkedID  string // the channel's linked id where known
	Context   string // agi_context
	Selftest  bool   // a tollguard selftest call: record it, deny it with reason selftest
	// Transferred: a transfer by another phone than the paying
	// extension's (the include sends the source as xfer/ADDRESS). Remote
	// is then the address of a phone in the call, not of the one that
	// chose the number: the access list holds against it, and
	// acl_requires_source denies the call.
	Transferred bool
	// At is when the call was placed, for one recorded after it ended
	// (the include's emergency calls); zero, or a time to come, means now.
	At time.Time
}

// Tally is one of the two attempt counts kept for each extension and
// account, against the same limits: calls with a source address (a
// phone's own), and calls without one (an inbound call forwarded or
// followed out, an originate, a line type the include reads no address
// for). A call is checked against, and counted in, its own tally only:
// counted together, anyone who rang a number forwarded to an outside
// one as often as its limit kept the phone behind it from calling out.
type Tally uint8

const (
	TallySourced Tally = iota
	TallyNoSource
)

// TallyOf is the tally of a call from source address remote (Call.Remote).
func TallyOf(remote string) Tally {
	if remote == "" {
		return TallyNoSource
	}
	return TallySourced
}

// String names the tally's calls, for explanations.
func (t Tally) String() string {
	if t == TallyNoSource {
		return "forwarded or originated calls (no source address)"
	}
	return "calls from phones (with a source address)"
}

// Decision is the gate's answer to a Call, with the trail of rule steps
// that led to it so that `tollguard check` and `tollguard calls` can
// explain it.
type Decision struct {
	Verdict Verdict
	Reason  Reason
	Cause   int    // Q.850 cause on deny
	MaxSec  int64  // on allow: the call's limit in seconds; -1 for no limit
	CallID  int64  // the call row's id; 0 when nothing was recorded (dry run)
	Number  Number // the normalised, classified destination
	Account string
	Rate    Rate
	Billing Billing // the deck's steps and fee for Rate
	Reserve Amount  // money held for this call until it settles
	Scale   int     // the account currency's minor-unit digits
	Steps   []Step
}

// Step is one rule the policy evaluated, for explanations. The store
// keeps a call's steps as JSON; rows written before the tags, with the
// keys "Rule", "Result" and "Detail", read back the same, since
// encoding/json matches keys without regard to case.
type Step struct {
	Rule   string `json:"rule"`   // "emergency", "extension", "blocks", "ip_acl", ...
	Result string `json:"result"` // "pass", "deny", "allow", "skip"
	Detail string `json:"detail"`
}

// stepOrder numbers the rules as the decision order in the README and
// design.md does, so an explanation that skipped a step (no IP access
// list, no hours rule for the class) still says "5. rules".
// A selftest call is denied where the extension would be looked up; an
// undialable number where the rules would be read; the rate lookup is
// part of the class step; concurrency and the open-calls read are part
// of the rate limits.
var stepOrder = map[string]int{"emergency": 1, "selftest": 2, "extension": 2, "blocks": 3, "ip_acl": 4,
	"destination": 5, "rules": 5, "class": 6, "rate": 6, "hours": 7, "rate_limit": 8, "concurrency": 8,
	"open_calls": 8, "credit": 9}

// Number is the step's place in the decision order, 0 if unknown.
func (s Step) Number() int { return stepOrder[s.Rule] }

// Allowed reports whether the decision lets the call through.
func (d Decision) Allowed() bool { return d.Verdict == Allow }

// Settlement ends a call that the gate allowed: how long it was billed.
type Settlement struct {
	CallID int64
	// UniqueID, when the settlement comes from the call's own channel
	// (the include's hangup request), is that channel's uniqueid: a row
	// the gate recorded for another channel is not settled. Call ids
	// start again from a restored backup's, so a call decided before the
	// restore would otherwise settle (and charge) another account's.
	UniqueID   string
	Billsec    int64  // answered seconds; 0 for unanswered calls
	DialStatus string // ANSWER, BUSY, NOANSWER, CANCEL, ...
	By         string // "agi", "ari", "sweep", "hangup_in_gate"
	At         time.Time
	// SinceDecision says Billsec is the channel's own answered time
	// (ANSWEREDTIME and CDR(billsec) both are), which can start before
	// the gate (a DISA or IVR line answered first): it is capped at the
	// time from the decision to At.
	SinceDecision bool
	// Elapsed, when known, is the time since the decision on a
	// monotonic clock (Policy.Mono): the cap is then at least that, so a
	// wall clock stepped back during the call does not cut its bill.
	Elapsed time.Duration
}

// CallRecord is the stored row of one gate decision.
type CallRecord struct {
	ID         int64
	CreatedAt  time.Time
	Extension  string
	Account    string
	Dialled    string
	E164       string
	Class      Class
	Country    string // ISO region of the destination, "" if unknown
	Remote     string
	Channel    string
	UniqueID   string
	LinkedID   string
	Verdict    Verdict
	Reason     Reason
	Cause      int
	Rate       Rate
	Billing    Billing
	Reserve    Amount
	Scale      int // minor-unit digits of the account's currency
	MaxSec     int64
	Steps      []Step
	SettledAt  time.Time // zero while the call is in progress
	SettledBy  string
	Billsec    int64
	Charge     Amount
	DialStatus string
}

// Open reports whether the call was allowed and has not settled yet.
func (c *CallRecord) Open() bool { return c.Verdict == Allow && c.SettledAt.IsZero() }
