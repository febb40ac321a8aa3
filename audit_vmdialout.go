package tollguard

import "context"

// Voicemail options that send a caller on into the dialplan.
const (
	VoicemailDialout  = "dialout"  // advanced options 3, 4: a number the caller types
	VoicemailCallback = "callback" // advanced options 3, 2, 1: a message's caller ID
)

// VoicemailOutbound is a dialplan context app_voicemail's dialout or
// callback option sends a VoiceMailMain caller on to: app_voicemail
// sets the caller's own channel to that context, with the number as
// its extension, and returns, so the dialplan there places the call.
type VoicemailOutbound struct {
	Option  string `json:"option"` // VoicemailDialout or VoicemailCallback
	Context string `json:"context"`
	// Mailbox is mailbox@context, or "" for [general]'s default, which
	// every mailbox without its own option takes (realtime ones too).
	Mailbox string `json:"mailbox,omitempty"`
	Where   string `json:"where"` // "/etc/asterisk/voicemail.conf:12", "voicemail table row 7"
}

// VoicemailOutboundSource is a MailboxSource that can also list the
// contexts its mailboxes dial out from (coverage reads them).
type VoicemailOutboundSource interface {
	// VoicemailOutbound lists every non-empty dialout and callback
	// context in force: [general]'s, and each mailbox's own.
	VoicemailOutbound(ctx context.Context) ([]VoicemailOutbound, error)
}
