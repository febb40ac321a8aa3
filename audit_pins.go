package tollguard

import (
	"context"
	"fmt"
	"strings"
)

// Mailbox is one voicemail box and its PIN.
type Mailbox struct {
	Source   string `json:"source"` // the MailboxSource's name
	Where    string `json:"where"`  // "/etc/asterisk/voicemail.conf:42", "voicemail table row 7"
	Context  string `json:"context"`
	Mailbox  string `json:"mailbox"`
	PIN      string `json:"-"`      // without the leading "-"
	Locked   bool   `json:"locked"` // a leading "-": the user may not change the PIN
	FullName string `json:"full_name,omitempty"`
	Email    string `json:"email,omitempty"`
}

// Key names the mailbox the way Asterisk does: mailbox@context.
func (m Mailbox) Key() string { return m.Mailbox + "@" + m.Context }

// PINChange is a new PIN for a mailbox, as read (the old PIN guards
// against the file having changed since).
type PINChange struct {
	Mailbox Mailbox
	NewPIN  string
}

// MailboxSource is a place voicemail PINs live: voicemail.conf with its
// includes, or a realtime table.
type MailboxSource interface {
	Name() string
	// Mailboxes lists every mailbox, plus problems worth reporting (a
	// missing #include) that did not stop the listing.
	Mailboxes(ctx context.Context) ([]Mailbox, []string, error)
	// SetPINs writes the new PINs, atomically per file or transaction,
	// skipping mailboxes whose PIN changed since they were read; it
	// returns the changes it made.
	SetPINs(ctx context.Context, changes []PINChange) ([]PINChange, error)
	// ReloadModule is the Asterisk module to reload afterwards ("" for none).
	ReloadModule() string
}

// PINsAudit finds weak voicemail PINs (see PINWeakness) in every
// configured source. With apply it replaces them with random PINs,
// reloads app_voicemail through ARI and, if configured, mails the
// mailbox owners.
type PINsAudit struct{}

func (PINsAudit) Name() string { return "pins" }

func (PINsAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "pins", apply, p)
	s := env.Settings.WithDefaults()
	if len(env.Mailboxes) == 0 {
		r.find(AuditFinding{Check: AuditCheckSource, Severity: SeverityInfo, Subject: "voicemail",
			Message: "no voicemail source is configured; set [audit.pins] voicemail_conf (and realtime_dsn for a realtime table) to audit PINs"})
		return r.result(nil)
	}
	for _, src := range env.Mailboxes {
		if err := r.auditSource(ctx, src, s); err != nil {
			return r.result(fmt.Errorf("%s: %w", src.Name(), err))
		}
	}
	return r.result(nil)
}

func (r *auditRun) auditSource(ctx context.Context, src MailboxSource, s AuditSettings) error {
	env := r.env
	boxes, problems, err := src.Mailboxes(ctx)
	if err != nil {
		return err
	}
	for _, pr := range problems {
		r.find(AuditFinding{Check: AuditCheckSource, Severity: SeverityWarning, Subject: "voicemail:" + src.Name(), Message: pr})
	}
	var changes []PINChange
	for n, m := range boxes {
		r.progress.report(n+1, len(boxes), m.Key())
		why := PINWeakness(m.PIN, m.Mailbox, s.MinPINLength)
		if len(why) == 0 {
			continue
		}
		r.find(AuditFinding{Check: AuditCheckWeakPIN, Severity: SeverityWarning, Subject: "mailbox:" + m.Key(),
			Message: fmt.Sprintf("voicemail PIN of %s (%s) is weak: %s; attackers guess PINs to reach callback and call-forward features: run `tollguard audit pins --apply` to replace weak PINs with random ones",
				m.Key(), m.Where, strings.Join(why, ", ")),
			Evidence: map[string]any{"source": src.Name(), "where": m.Where, "reasons": why, "locked": m.Locked}})
		if !r.apply {
			continue
		}
		pin, err := newPIN(env, m.Mailbox, s)
		if err != nil {
			return err
		}
		changes = append(changes, PINChange{Mailbox: m, NewPIN: pin})
	}
	if len(changes) == 0 {
		return nil
	}
	done, err := src.SetPINs(ctx, changes)
	for _, c := range done {
		r.act(AuditAction{Kind: AuditActRewritePIN, Subject: "mailbox:" + c.Mailbox.Key(), Secret: c.NewPIN,
			Message: fmt.Sprintf("replaced the weak PIN of %s (%s) with a random %d-digit one", c.Mailbox.Key(), c.Mailbox.Where, len(c.NewPIN))})
	}
	if err != nil {
		msg := "could not write the new PINs"
		if len(done) > 0 {
			msg = "could not finish writing the new PINs; the ones above are written, and their owners are told"
		}
		r.act(AuditAction{Kind: AuditActRewritePIN, Subject: "voicemail:" + src.Name(), Message: msg, Err: ErrorMessage(err)})
	}
	if skipped := len(changes) - len(done); skipped > 0 {
		r.find(AuditFinding{Check: AuditCheckWeakPIN, Severity: SeverityInfo, Subject: "voicemail:" + src.Name(),
			Message: fmt.Sprintf("%d PINs changed while the audit ran (or, in a realtime table, their mailbox is in several rows) and were left alone; run the audit again", skipped)})
	}
	if len(done) == 0 {
		return nil
	}
	if mod := src.ReloadModule(); mod != "" {
		switch {
		case env.Asterisk == nil:
			r.act(AuditAction{Kind: AuditActReloadModule, Subject: mod, Message: "ARI is not configured: reload it yourself with: asterisk -rx 'module reload " + mod + "'", Err: "no ARI"})
		default:
			if err := env.Asterisk.ReloadModule(ctx, mod); err != nil {
				r.act(AuditAction{Kind: AuditActReloadModule, Subject: mod, Message: "reload failed: the old PINs work until you run asterisk -rx 'module reload " + mod + "'", Err: ErrorMessage(err)})
			} else {
				r.act(AuditAction{Kind: AuditActReloadModule, Subject: mod, Message: "reloaded so the new PINs take effect"})
			}
		}
	}
	if s.NotifyOwners && env.Mailer != nil {
		for _, c := range done {
			r.notifyOwner(ctx, c, s)
		}
	}
	return nil
}

func newPIN(env *AuditEnv, mailbox string, s AuditSettings) (string, error) {
	for range 16 {
		pin, err := GeneratePIN(env.rand(), s.PINLength)
		if err != nil {
			return "", err
		}
		if len(PINWeakness(pin, mailbox, s.MinPINLength)) == 0 {
			return pin, nil
		}
	}
	return "", Errorf(EINTERNAL, "could not generate a strong PIN; is the random source broken?")
}

func (r *auditRun) notifyOwner(ctx context.Context, c PINChange, s AuditSettings) {
	to := strings.TrimSpace(c.Mailbox.Email)
	if to == "" || !strings.Contains(to, "@") {
		return
	}
	body := fmt.Sprintf("Hello %s,\n\nThe PIN of your voicemail box %s was too easy to guess, so it has been replaced.\n", orName(c.Mailbox.FullName), c.Mailbox.Mailbox)
	if s.MailPIN {
		body += fmt.Sprintf("Your new PIN is %s. Change it from your phone's voicemail menu to one only you know (not 1234, not your extension).\n", c.NewPIN)
	} else {
		body += "Ask your phone system administrator for the new PIN.\n"
	}
	body += "\nWeak voicemail PINs let attackers change call forwarding and run up call charges.\n"
	err := r.env.Mailer.SendMail(ctx, to, "Your voicemail PIN was changed", body)
	a := AuditAction{Kind: AuditActNotifyOwner, Subject: "mailbox:" + c.Mailbox.Key(), Message: "told the owner " + to}
	if err != nil {
		a.Message, a.Err = "could not mail the owner "+to, ErrorMessage(err)
	}
	r.act(a)
}

func orName(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return "there"
	}
	return s
}
