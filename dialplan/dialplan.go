// Package dialplan holds the Asterisk dialplan include that tollguard
// ships: the tollguard-outbound subroutine that gates each outbound call
// over FastAGI, the tollguard-hangup handler that settles it, the
// tollguard-emergency handler that records an emergency call once it is
// over, and the tollguard-callee pre-dial handler that puts the call's
// limit on the trunk leg.
// `tollguard dialplan` prints it.
package dialplan

import _ "embed"

// Include is the text of tollguard.conf, for /etc/asterisk.
//
//go:embed tollguard.conf
var Include string

// Contexts the include defines.
const (
	ContextOutbound = "tollguard-outbound" // Gosub(tollguard-outbound,s,1(<number>[,<extension>]))
	ContextHangup   = "tollguard-hangup"   // the hangup handler it pushes
	// ContextEmergency is the hangup handler it pushes instead for an
	// emergency number, which it dials without asking tollguard first.
	ContextEmergency = "tollguard-emergency"
	// ContextCallee is the pre-dial handler for the trunk leg:
	// Dial(...,b(tollguard-callee^s^1(${TOLLGUARD_MAXSEC}))).
	ContextCallee = "tollguard-callee"
)

// Variables of the include itself, beside the gate's reply variables
// (tollguard.Var*). The first three are [globals] settings for admins.
const (
	VarAGI        = "TOLLGUARD_AGI"        // FastAGI base URL, default agi://127.0.0.1:4573
	VarEmergency  = "TOLLGUARD_EMERGENCY"  // extra emergency numbers, a regex alternation
	VarDenyGosub  = "TOLLGUARD_DENY_GOSUB" // announcement subroutine on a deny (deny_action = return)
	VarExtension  = "TOLLGUARD_EXT"        // inherited (__) by Local channels: the gated extension
	VarSource     = "TOLLGUARD_SRC"        // inherited (__) by Local channels: the caller's address
	VarHandlerSet = "TOLLGUARD_HANDLER"    // "1" once the hangup handler is pushed on a channel
	// "1" once the emergency handler is pushed on a channel.
	VarEmergencyHandlerSet = "TOLLGUARD_EMERGENCY_HANDLER"
	// The channel's emergency call not yet recorded: "number,extension,
	// source,epoch", the handler's first arguments.
	VarEmergencyPending = "TOLLGUARD_EMERGENCY_PENDING"
	// The extension whose phone a PJSIP endpoint not named as its
	// extension is (pjsip.conf set_var). Not TOLLGUARD_EXT: forwarding
	// sets that on the caller's channel.
	VarPhone = "TOLLGUARD_PHONE"
	// The extension whose phone's address TOLLGUARD_SRC is, inherited
	// (__) with it: a forward sets TOLLGUARD_EXT on the caller's
	// channel, which may have passed its own address down before.
	VarSourceExtension = "TOLLGUARD_SRC_EXT"
)
