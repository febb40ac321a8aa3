package tollguard

import (
	"context"
	"fmt"
	"strings"
	"time"
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
	// ByHand, if set, is what the admin must change instead: the source
	// never rewrites this PIN, so apply does not offer it to SetPINs.
	ByHand string `json:"by_hand,omitempty"`
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

// PendingPIN is a mailbox whose PIN a pins run was about to replace
// and had not yet reported (the PIN itself is never stored).
type PendingPIN struct {
	Mailbox string `json:"mailbox"` // Mailbox.Key()
	Where   string `json:"where"`
	Email   string `json:"email,omitempty"`
}

// VoicemailReload is a marker the pins audit writes before it writes
// any PIN of a source, and removes once Asterisk reloaded the source's
// module: until then Asterisk keeps accepting the old PINs.
type VoicemailReload struct {
	Source   string
	Module   string // "" when the source needs no reload
	Seq      int64
	MarkedAt time.Time
	PINs     []PendingPIN // whose new PINs no run reported
}

// VoicemailReloadStore keeps the pins audit's VoicemailReload markers;
// the SQLite store implements it.
type VoicemailReloadStore interface {
	// MarkVoicemailReload records, before any PIN is written, that
	// source's module needs a reload and whose PINs are about to change;
	// it returns the marker's sequence number.
	MarkVoicemailReload(ctx context.Context, source, module string, pins []PendingPIN, at time.Time) (int64, error)
	VoicemailReloads(ctx context.Context) ([]VoicemailReload, error)
	// VoicemailPINsReported drops mailboxes (keys) from source's marker.
	VoicemailPINsReported(ctx context.Context, source string, mailboxes []string) error
	// FinishVoicemailReload removes source's marker unless it was marked
	// again after seq.
	FinishVoicemailReload(ctx context.Context, source string, seq int64) error
}

// AuditCheckPINReload is a reload of app_voicemail, or a report of new
// PINs, that an earlier pins run owed.
const AuditCheckPINReload = "pin_reload_pending"

// PINsAudit finds weak voicemail PINs (see PINWeakness) in every
// configured source. With apply it replaces them with random PINs,
// reloads app_voicemail through ARI and, if configured, mails the
// mailbox owners.
//
// Before it writes any PIN it stores a VoicemailReload marker, which
// only a reload that worked removes; every run, report-only ones too (a
// reload changes no data), first retries the reloads earlier runs
// owe, and reports the mailboxes a run that died had not reported.
type PINsAudit struct{}

func (PINsAudit) Name() string { return "pins" }

func (PINsAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "pins", apply, p)
	s := env.Settings.WithDefaults()
	owed, err := r.retryVoicemailReloads(ctx)
	if err != nil {
		return r.result(err)
	}
	if len(env.Mailboxes) == 0 {
		r.find(AuditFinding{Check: AuditCheckSource, Severity: SeverityInfo, Subject: "voicemail",
			Message: "no voicemail source is configured; set [audit.pins] voicemail_conf (and realtime_dsn for a realtime table) to audit PINs"})
		return r.result(nil)
	}
	for _, src := range env.Mailboxes {
		if err := r.auditSource(ctx, src, s, owed[src.Name()]); err != nil {
			return r.result(fmt.Errorf("%s: %w", src.Name(), err))
		}
	}
	return r.result(nil)
}

// retryVoicemailReloads reports what earlier runs left undone and
// retries their reloads; it returns the sources still owed one.
func (r *auditRun) retryVoicemailReloads(ctx context.Context) (map[string]bool, error) {
	rs := r.env.Store
	pending, err := rs.VoicemailReloads(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pending voicemail reloads: %w", err)
	}
	owed := map[string]bool{}
	for _, v := range pending {
		when := v.MarkedAt.UTC().Format("2006-01-02 15:04Z")
		var keys []string
		for _, p := range v.PINs {
			owner := "its owner was not told"
			if p.Email != "" {
				owner = "its owner (" + p.Email + ") was not told"
			}
			r.find(AuditFinding{Check: AuditCheckPINReload, Severity: SeverityWarning, Subject: "mailbox:" + p.Mailbox,
				Message: fmt.Sprintf("a pins run on %s was replacing the weak PIN of %s and stopped before it reported it: its new PIN, if it was written, was never shown and %s; tollguard keeps no PINs: read the PIN at %s (or set a new one there) and give it to the owner",
					when, p.Mailbox, owner, p.Where),
				Evidence: map[string]any{"source": v.Source, "where": p.Where, "marked_at": auditTime(v.MarkedAt)}})
			keys = append(keys, p.Mailbox)
		}
		if len(keys) > 0 {
			if err := rs.VoicemailPINsReported(ctx, v.Source, keys); err != nil {
				return nil, fmt.Errorf("record reported PINs of %s: %w", v.Source, err)
			}
		}
		if v.Module == "" {
			if err := rs.FinishVoicemailReload(ctx, v.Source, v.Seq); err != nil {
				return nil, err
			}
			continue
		}
		r.find(AuditFinding{Check: AuditCheckPINReload, Severity: SeverityWarning, Subject: v.Module,
			Message:  fmt.Sprintf("PINs in %s were rewritten on %s and %s was not reloaded since: Asterisk may still accept the old PINs; retrying the reload", v.Source, when, v.Module),
			Evidence: map[string]any{"source": v.Source, "marked_at": auditTime(v.MarkedAt)}})
		if r.reloadVoicemail(ctx, v.Module) {
			if err := rs.FinishVoicemailReload(ctx, v.Source, v.Seq); err != nil {
				return nil, err
			}
			continue
		}
		owed[v.Source] = true
	}
	return owed, nil
}

// reloadVoicemail reloads mod through ARI and reports it. It returns
// whether no further reload is owed: the reload worked, or, without
// ARI, the admin was told to do it (tollguard never can).
func (r *auditRun) reloadVoicemail(ctx context.Context, mod string) bool {
	if r.env.Asterisk == nil {
		r.act(AuditAction{Kind: AuditActReloadModule, Subject: mod, Message: "ARI is not configured: reload it yourself with: asterisk -rx 'module reload " + mod + "'", Err: "no ARI"})
		return true
	}
	if err := r.env.Asterisk.ReloadModule(ctx, mod); err != nil {
		r.act(AuditAction{Kind: AuditActReloadModule, Subject: mod, Message: "reload failed: the old PINs work until you run asterisk -rx 'module reload " + mod + "'; every pins audit run (report-only too) retries it", Err: ErrorMessage(err)})
		return false
	}
	r.act(AuditAction{Kind: AuditActReloadModule, Subject: mod, Message: "reloaded so the new PINs take effect"})
	return true
}

// auditSource audits one source; owed says an earlier run's reload of
// it is still pending (its retry failed).
func (r *auditRun) auditSource(ctx context.Context, src MailboxSource, s AuditSettings, owed bool) error {
	rs := r.env.Store
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
		if why := PINUnusableReason(m.PIN); why != "" {
			r.find(AuditFinding{Check: AuditCheckWeakPIN, Severity: SeverityInfo, Subject: "mailbox:" + m.Key(),
				Message:  fmt.Sprintf("voicemail PIN of %s (%s) %s", m.Key(), m.Where, why),
				Evidence: map[string]any{"source": src.Name(), "where": m.Where}})
			continue
		}
		why := PINWeakness(m.PIN, m.Mailbox, s.MinPINLength)
		if len(why) == 0 {
			continue
		}
		fix := "run `tollguard audit pins --apply` to replace weak PINs with random ones"
		if m.ByHand != "" {
			fix = "--apply does not rewrite this PIN; change it by hand: " + m.ByHand
		}
		r.find(AuditFinding{Check: AuditCheckWeakPIN, Severity: SeverityWarning, Subject: "mailbox:" + m.Key(), Fixable: m.ByHand == "",
			Message: fmt.Sprintf("voicemail PIN of %s (%s) is weak: %s; attackers guess PINs to reach callback and call-forward features: %s",
				m.Key(), m.Where, strings.Join(why, ", "), fix),
			Evidence: map[string]any{"source": src.Name(), "where": m.Where, "reasons": why, "locked": m.Locked}})
		if !r.apply || m.ByHand != "" {
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
	// The marker goes first: a run that dies after the write leaves it,
	// and the next run reloads and says whose PINs nobody was shown.
	mod := src.ReloadModule()
	pending := make([]PendingPIN, len(changes))
	keys := make([]string, len(changes))
	for i, c := range changes {
		pending[i] = PendingPIN{Mailbox: c.Mailbox.Key(), Where: c.Mailbox.Where, Email: strings.TrimSpace(c.Mailbox.Email)}
		keys[i] = c.Mailbox.Key()
	}
	seq, err := rs.MarkVoicemailReload(ctx, src.Name(), mod, pending, env.now())
	if err != nil {
		return fmt.Errorf("record the pending reload (no PIN was changed): %w", err)
	}
	done, err := src.SetPINs(ctx, changes)
	for _, c := range done {
		r.act(AuditAction{Kind: AuditActRewritePIN, Subject: "mailbox:" + c.Mailbox.Key(), Secret: c.NewPIN,
			Message: fmt.Sprintf("replaced the weak PIN of %s (%s) with a random %d-digit one", c.Mailbox.Key(), c.Mailbox.Where, len(c.NewPIN))})
	}
	if err != nil {
		msg := "could not write the new PINs"
		switch {
		case len(done) == len(changes):
			// Written, but maybe not durably (a failed directory fsync).
			msg = "wrote the new PINs above, but not safely: read the error"
		case len(done) > 0:
			msg = "could not finish writing the new PINs; the ones above are written, and their owners are told"
		}
		r.act(AuditAction{Kind: AuditActRewritePIN, Subject: "voicemail:" + src.Name(), Message: msg, Err: ErrorMessage(err)})
	}
	if skipped := len(changes) - len(done); skipped > 0 {
		msg := fmt.Sprintf("%d PINs changed while the audit ran and were left alone; run the audit again", skipped)
		if err != nil {
			// Most were never tried: the error, not a race, is why.
			msg = fmt.Sprintf("%d PINs were not rewritten: %s; fix that and run the audit again", skipped, ErrorMessage(err))
		}
		r.find(AuditFinding{Check: AuditCheckWeakPIN, Severity: SeverityInfo, Subject: "voicemail:" + src.Name(), Message: msg})
	}
	reloaded := len(done) > 0 && (mod == "" || r.reloadVoicemail(ctx, mod))
	if s.NotifyOwners && env.Mailer != nil {
		for _, c := range done {
			r.notifyOwner(ctx, c, s)
		}
	}
	// Reported in this run: the new PINs are in its actions.
	if err := rs.VoicemailPINsReported(ctx, src.Name(), keys); err != nil {
		return fmt.Errorf("record reported PINs: %w", err)
	}
	switch {
	case reloaded:
		return rs.FinishVoicemailReload(ctx, src.Name(), seq)
	case len(done) == 0 && err == nil && !owed:
		// Nothing written. (A failed write keeps the marker: a reload
		// costs nothing, and one an earlier run owes stays owed.)
		return rs.FinishVoicemailReload(ctx, src.Name(), seq)
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
