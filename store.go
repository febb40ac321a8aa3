package tollguard

import (
	"context"
	"time"
)

// GateStore is what the policy needs from storage. The SQLite store
// implements it.
type GateStore interface {
	// Gate runs fn against a GateTx inside the store's write
	// transaction: what fn reads and what it records cannot interleave
	// with another decision's. If fn returns an error, its writes are
	// undone and Gate returns the error; with dry they are always undone
	// (`tollguard check`). Gate returns once the writes are durable.
	Gate(ctx context.Context, dry bool, fn func(tx GateTx) error) error
	// SettleCall charges an open call (idempotent) and returns the row
	// after settling and whether anything changed.
	SettleCall(ctx context.Context, s Settlement) (CallRecord, bool, error)
}

// GateTx is one decision's view of the store, valid only inside
// GateStore.Gate. Lookups return (nil, nil) when nothing matches.
type GateTx interface {
	Extension(ctx context.Context, name string) (*Extension, error)
	Account(ctx context.Context, id string) (*Account, error)
	// MatchRules returns the longest allow and deny rules covering
	// e164, from the account's rules and the global ones.
	MatchRules(ctx context.Context, account, e164 string) (allow, deny *Rule, err error)
	HighRisk(ctx context.Context, e164 string) (*HighRiskEntry, error)
	// Rate returns the rate-deck entry with the longest prefix of e164.
	Rate(ctx context.Context, e164 string) (*RateEntry, error)
	// Attempts counts recorded attempts in tally t by an extension
	// (scope "ext") or account (scope "acct") in the minute, hour and
	// day before now, including the ones recorded earlier in the same
	// transaction. Its cost must not grow with the number of attempts.
	Attempts(ctx context.Context, scope, id string, t Tally, now time.Time) (minute, hour, day int, err error)
	// OpenCalls reports the account's calls in progress, how many of
	// them are the extension's, and the money they hold in reserve.
	OpenCalls(ctx context.Context, account, extension string) (acct, ext int, reserved Amount, err error)
	InsertCall(ctx context.Context, r *CallRecord) (int64, error)
}
