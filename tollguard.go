// Package tollguard is the domain of the tollguard toll-fraud guard for
// Asterisk: its types, the call policy, number classification, detectors
// and audit jobs. It is pure code that works against interfaces; the
// sub-packages adapt it to FastAGI (agi), ARI (ari), SQLite (store) and
// the command line (cmd/tollguard).
package tollguard

// Script names of the FastAGI requests the dialplan include makes
// (agi://127.0.0.1:4573/<script>).
const (
	ScriptOutbound = "outbound"
	ScriptHangup   = "hangup"
	// ScriptEmergency records a call to a number on the include's
	// emergency list after it ended: those calls never wait for the gate.
	ScriptEmergency = "emergency"
)

// Channel variables the gate sets before its AGI returns (design.md §1).
const (
	VarVerdict = "TOLLGUARD_VERDICT"
	VarReason  = "TOLLGUARD_REASON"
	VarCause   = "TOLLGUARD_CAUSE"
	VarMaxSec  = "TOLLGUARD_MAXSEC"
	VarCallID  = "TOLLGUARD_CALLID"
)

// Channel variables the hangup request reads to settle a call.
const (
	VarAnsweredTime   = "ANSWEREDTIME"    // whole seconds, rounded down
	VarAnsweredTimeMS = "ANSWEREDTIME_MS" // milliseconds: a started second is billed
	VarBillsec        = "CDR(billsec,f)"  // f: with its fraction, rounded up
	VarDialStatus     = "DIALSTATUS"
)

// Q.850 causes the gate hangs up with.
const (
	CauseCallRejected       = 21 // default for every deny
	CauseTemporaryFailure   = 41
	CauseNoCircuitAvailable = 34 // tollguard could not decide (reason "error")
)

// CheckStore is the advice on a log line for a database that failed.
const CheckStore = "check the database: disk space, its file's owner and permissions, `tollguard selftest`"

// Structured log keys. Every log line about a call uses these, so that
// admins can grep and alert on them.
const (
	LogExtension = "extension"
	LogAccount   = "account"
	LogDest      = "dest"
	LogReason    = "reason"
	LogVerdict   = "verdict"
	LogCallID    = "call_id"
	LogClass     = "class"
	LogRemote    = "remote"
	// true on a call the include marked as a transfer by another phone
	// (Call.Transferred); absent otherwise.
	LogTransferred = "transferred"
	LogError       = "err"
	// A settlement's, from the AGI hangup request and the ARI listener.
	LogBillsec    = "billsec"
	LogDialStatus = "dial_status"
)
