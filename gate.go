package tollguard

import "context"

// Gate decides and settles calls. The agi package serves it over
// FastAGI; `tollguard check` calls it as a dry run.
type Gate interface {
	// Decide returns the verdict for c and records it. It never waits on
	// notifiers. On a ctx deadline it returns ctx's error and records
	// nothing.
	Decide(ctx context.Context, c Call) (Decision, error)
	// Settle charges an allowed call and releases its reservation. It is
	// idempotent: settling a settled call changes nothing and returns
	// false. An unknown CallID is an ENOTFOUND error.
	Settle(ctx context.Context, s Settlement) (changed bool, err error)
	// Emergency reports whether dialled, from extension, is an emergency
	// number: in the plan of the extension's account when the gate knows
	// it, else in the default plan (or any plan in use). It never touches
	// the store, so the AGI server can still let emergency calls through
	// when a decision is late or the store is down.
	Emergency(extension, dialled string) bool
}

// EmergencyReader is a Gate that can judge an emergency number by the
// extension's account as its store holds it, for a request refused for
// another reason than the store (a forged one): Emergency's loose
// answer (the default country's numbers always count) would let a
// caller who can forge a request at will dial another country's
// emergency number that costs money in the account's (CH 1414 from BE).
type EmergencyReader interface {
	EmergencyRead(ctx context.Context, extension, dialled string) bool
}
