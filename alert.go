package tollguard

import (
	"context"
	"time"
)

// Severity of an alert.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Alert is something an admin must hear about (design.md §3). The same
// Kind and Subject within a cool-down merge into one stored alert.
type Alert struct {
	ID        int64
	Kind      string // "credentials_compromised", "new_ip", "burst", ...
	Severity  Severity
	Subject   string // what it is about: "ext:1001", "account:acme", "ip:203.0.113.9"
	Account   string
	Extension string
	Message   string // one line for the admin: what happened and what to do
	Evidence  string // JSON with the facts behind it
	FirstSeen time.Time
	LastSeen  time.Time
	Count     int
	AckedAt   time.Time
	AckedBy   string // who acknowledged it (`tollguard alerts ack`)
	// Renotify, when set, marks a standing condition that is raised
	// again and again (an audit finding, every night): an unchanged
	// repeat (same severity and message) of the latest alert of its kind
	// and subject sends no notice, open or acknowledged, until Renotify
	// has passed (see AlertPolicy.Recurs). It is not stored.
	Renotify time.Duration `json:"-"`
	// PrevRun is when the previous run of the audit that raises it
	// started (zero when unknown): a finding that run did not see was
	// fixed and is back, which is news. It is not stored.
	PrevRun time.Time `json:"-"`
}

// Alerter raises alerts. Raise stores the alert and queues delivery; it
// never waits on a notifier.
type Alerter interface {
	Raise(ctx context.Context, a Alert) error
}

// Blocker sets blocks (the store implements it).
type Blocker interface {
	Block(ctx context.Context, b Block) (Block, error)
}

// Alert kinds. Detectors and audits may raise others; these have
// tailored advice in the notices (see AlertAdvice).
const (
	AlertCredentialsCompromised = "credentials_compromised" // registration from outside the IP access list
	AlertNewIP                  = "new_ip"                  // registration from a new address
	AlertNewUserAgent           = "new_user_agent"          // registration with a new phone or softphone
	AlertBurst                  = "burst"                   // many calls in a short window
	AlertConcurrent             = "concurrent"              // too many calls at once
	AlertSweep                  = "number_sweep"            // sequential dialling or many numbers under one prefix
	AlertHighRisk               = "high_risk_attempts"      // repeated attempts to high-risk or premium destinations
	AlertUngated                = "ungated_call"            // an outbound channel with no gate record
	AlertLongCall               = "long_call"               // an international call past the threshold
	AlertSpend                  = "spend"                   // monthly spend crossed a threshold
	AlertBlocked                = "blocked"                 // tollguard set a block on its own
	AlertAudit                  = "audit"                   // a scheduled audit finding
	AlertTest                   = "test"                    // `tollguard alerts test`
)

// AlertKinds are the kinds above, for metrics that show each at zero.
var AlertKinds = []string{AlertCredentialsCompromised, AlertNewIP, AlertNewUserAgent, AlertBurst, AlertConcurrent,
	AlertSweep, AlertHighRisk, AlertUngated, AlertLongCall, AlertSpend, AlertBlocked, AlertAudit, AlertTest}

// Subjects name what an alert is about; the same kind and subject merge.
func ExtSubject(ext string) string    { return "ext:" + ext }
func AccountSubject(id string) string { return "account:" + id }

// Rank orders severities: info < warning < critical; 0 for unknown ones.
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// Valid reports whether s is one of the three severities.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// Structured log keys for alerts and their delivery.
const (
	LogKind     = "kind"
	LogSeverity = "severity"
	LogSubject  = "subject"
	LogAlertID  = "alert_id"
	LogNotifier = "notifier"
)
