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
