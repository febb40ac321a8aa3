package tollguard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

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

// AuditCheckVoicemailDialout is a voicemail dialout or callback context
// the gate does not see.
const AuditCheckVoicemailDialout = "voicemail_dialout"

// checkVoicemailOutbound reports, one finding per context, the dialout
// and callback contexts of the voicemail sources that are not gated.
func (r *auditRun) checkVoicemailOutbound(ctx context.Context, gated map[string]bool, s AuditSettings) {
	type use struct {
		options map[string]bool
		setters []string // mailbox keys, "[general]"
		where   []string
		seen    map[string]bool
	}
	uses := map[string]*use{}
	for _, src := range r.env.Mailboxes {
		vs, ok := src.(VoicemailOutboundSource)
		if !ok {
			continue
		}
		outs, err := vs.VoicemailOutbound(ctx)
		if err != nil {
			r.find(AuditFinding{Check: AuditCheckSource, Severity: SeverityWarning, Subject: "voicemail:" + src.Name(),
				Message: fmt.Sprintf("could not read %s for its voicemail dialout and callback contexts, so they are not checked: %s", src.Name(), ErrorMessage(err))})
			continue
		}
		for _, o := range outs {
			if o.Context == "" || gated[o.Context] {
				continue
			}
			u := uses[o.Context]
			if u == nil {
				u = &use{options: map[string]bool{}, seen: map[string]bool{}}
				uses[o.Context] = u
			}
			u.options[o.Option] = true
			who := o.Mailbox
			if who == "" {
				who = "[general]"
			}
			if !u.seen[who] {
				u.seen[who] = true
				u.setters = append(u.setters, who)
			}
			u.where = append(u.where, o.Where)
		}
	}
	for _, c := range slices.Sorted(maps.Keys(uses)) {
		u := uses[c]
		opts := slices.Sorted(maps.Keys(u.options))
		var can []string
		if u.options[VoicemailDialout] {
			can = append(can, "call any number they type (advanced options: 3, then 4)")
		}
		if u.options[VoicemailCallback] {
			can = append(can, "call back the caller ID of a message (3, 2, 1), which anyone who leaves a message chooses")
		}
		what := "option " + opts[0] + " sends"
		if len(opts) > 1 {
			what = "options " + strings.Join(opts, " and ") + " send"
		}
		setters := listUpTo(u.setters, maxListed)
		if u.seen["[general]"] {
			setters += " ([general]'s is the default of every mailbox without its own)"
		}
		r.find(AuditFinding{Check: AuditCheckVoicemailDialout, Severity: SeverityCritical, Subject: "voicemail-context:" + c,
			Message: fmt.Sprintf("app_voicemail's %s callers to dialplan context %q, which is not a gated context (%s); set by %s at %s. "+
				"Whoever logs in to such a mailbox in VoiceMailMain, an outside caller who knows or guesses its PIN too, can %s: "+
				"app_voicemail then goes on with the caller's own channel in %q, the number as its extension, so the call bypasses tollguard (no gate, no limit, no charge). "+
				"Gate that context (put tollguard's include in it and list it in [audit] gated_contexts: the gate then judges each such call, and denies one from a channel that is no extension of yours as unknown_extension unless allow_unknown is set), "+
				"or remove the option (a mailbox's own empty %s turns [general]'s off for it) and reload app_voicemail (asterisk -rx 'module reload app_voicemail.so')",
				what, c, strings.Join(s.GatedContexts, ", "), setters, listUpTo(u.where, maxListed),
				strings.Join(can, ", and "), c, strings.Join(opts, "= or ")+"="),
			Evidence: map[string]any{"context": c, "options": opts, "set_by": u.setters, "where": u.where, "gated_contexts": s.GatedContexts}})
	}
}
