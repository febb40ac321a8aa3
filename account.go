package tollguard

import (
	"net/netip"
	"time"
)

// NoCeiling disables a per-minute rate ceiling.
const NoCeiling Rate = -1

// Default rate ceilings, after AAISP: calls dearer than these per minute
// are denied unless the destination is whitelisted.
const (
	DefaultNationalCeiling      Rate = 200_000 // 0.20 per minute
	DefaultInternationalCeiling Rate = 20_000  // 0.02 per minute
)

// MaxCallSecsLimit is the longest any call is allowed, a day, whatever
// the account's cap: a day-long toll call is fraud or a fault, and the
// limit keeps each reservation to what one call can spend.
const MaxCallSecsLimit = 24 * 3600

// Alert modes for new registrations (design.md §2, after AAISP).
const (
	AlertModeIPOrAgent = "ip_or_agent"
	AlertModeAgent     = "agent"
	AlertModeNone      = "none"
)

// Account is a customer: who pays, how they dial, and the limits their
// calls obey.
type Account struct {
	ID   string
	Name string

	Plan NumberPlan

	// Business hours: outside them, calls in AfterHours are denied.
	Zone       string   // IANA time zone
	HoursSpec  string   // "mon-fri 08:00-18:00"; "" means always open
	Holidays   []string // "2026-12-25" or "12-25" (every year)
	AfterHours []Class  // default: international, premium

	Currency    string
	Scale       int    // minor-unit digits of Currency
	Balance     Amount // prepaid credit; calls draw it down when they settle
	CreditLimit Amount // how far below zero the balance may go (postpaid)
	CallCap     Amount // most one call may cost; 0 = no cap
	MaxCallSecs int64  // longest call allowed; 0 = no cap but MaxCallSecsLimit

	NationalCeiling      Rate // NoCeiling disables
	InternationalCeiling Rate

	Whitelist       bool // strict: only allow-listed destinations (and emergency)
	IntlBlock       bool
	IntlBlockReason string

	Limits Limits

	AlertMode string // ip_or_agent, agent, none

	// Extension quotas (audits): 0 = unlimited.
	MaxExtensions     int
	MaxCreatedPerDay  int
	SpendThreshold    Amount // monthly; 0 = use SpendFactor only
	SpendFactorPermil int    // k × last month, in thousandths (1200 = 1.2×); 0 = off

	CreatedAt time.Time
}

// Limits are call-attempt rate limits and concurrency limits; 0 means
// unlimited.
type Limits struct {
	ExtPerMinute, ExtPerHour, ExtPerDay    int
	AcctPerMinute, AcctPerHour, AcctPerDay int
	ExtConcurrent, AcctConcurrent          int
}

// Extension is a SIP endpoint that places calls for an account.
type Extension struct {
	Name        string
	Account     string
	CIDRs       []netip.Prefix // allowed source addresses; empty = anywhere
	Blocked     bool
	BlockReason string
	BlockedBy   string
	BlockedAt   time.Time
	CallerID    string
	Description string
	Managed     bool // created by `tollguard ext add`
	CreatedAt   time.Time
	LastSeen    time.Time // last registration or call
}

// UnmapPrefix gives an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) in
// its IPv4 form (10.0.0.0/8), masked: addresses are matched unmapped,
// and a prefix never contains an address of the other family. ok is
// false for a mapped prefix shorter than /96, which is no IPv4 network.
func UnmapPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return p, false
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

// AllowsFrom reports whether addr may use this extension. An empty list
// allows any address; an unknown address (Local channels) is allowed,
// since there is no SIP peer to check.
func (e *Extension) AllowsFrom(addr netip.Addr) bool {
	if len(e.CIDRs) == 0 || !addr.IsValid() {
		return true
	}
	addr = addr.Unmap()
	for _, p := range e.CIDRs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// RuleAction is what a prefix rule does.
type RuleAction string

const (
	RuleAllow RuleAction = "allow" // whitelist
	RuleDeny  RuleAction = "deny"
)

// Rule allows or denies destinations by E.164 prefix, for one account or
// (Account "") for all.
type Rule struct {
	ID      int64
	Account string
	Prefix  string // "+44", "+881"
	Action  RuleAction
	Note    string
}

// RateEntry is one row of the rate deck.
type RateEntry struct {
	Prefix      string // E.164 without "+": "44", "4420"
	Destination string
	Rate        Rate // per minute
	Billing     Billing
	// Currency is the deck's ISO 4217 code, "" when the deck did not
	// say: one deck prices every account, in the account's currency.
	Currency string
}

// HighRiskEntry is one prefix on the high-risk destination list.
type HighRiskEntry struct {
	Prefix      string // E.164 without "+"
	Description string
	Source      string
}

// Block is one block set on an extension or on an account's
// international calls, with who set it and why. Unblocking keeps the row.
type Block struct {
	ID        int64
	Kind      string // "extension" or "intl"
	Subject   string // extension name or account id
	SetBy     string // "admin", "detector:burst", "registration:acl"
	Reason    string
	Evidence  string
	SetAt     time.Time
	ClearedBy string
	ClearedAt time.Time
}

const (
	BlockExtension = "extension"
	BlockIntl      = "intl"
)
