package tollguard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Responder carries out findings: it sets the block a finding's action
// asks for (with who, why and the evidence), then raises the alert,
// which says what was done. It never waits on a notifier: Alerter.Raise
// only stores and queues.
type Responder struct {
	Alerter Alerter
	Blocker Blocker
	Logger  *slog.Logger
	// Calls and Hangup, when both are set, end the calls in progress
	// that a new block would have denied: otherwise an attack's calls
	// already up go on spending until their MAXSEC (hours with the
	// default cap). Emergency calls are never cut.
	Calls  LiveCalls
	Hangup ChannelHanger
}

// LiveCalls finds the calls a new block cuts.
type LiveCalls interface {
	// CallsInProgress lists the allowed, unsettled calls of extension
	// (or of account, when extension is "").
	CallsInProgress(ctx context.Context, extension, account string) ([]*CallRecord, error)
	Account(ctx context.Context, id string) (*Account, error)
}

// Act sets f's block, if any, and raises its alert. A block that cannot
// be set (an extension tollguard does not manage, no account) turns
// into an alert that says so. The error is the alert's, or the block's
// when nothing could be raised.
func (r *Responder) Act(ctx context.Context, f Finding) error {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	evidence := f.EvidenceJSON()
	var blockErr error
	if f.Action.Blocks() {
		b := Block{SetBy: f.Source, Reason: f.Message, Evidence: evidence, SetAt: f.At}
		switch {
		case f.Action == ActionIntlBlock && f.Account != "":
			b.Kind, b.Subject = BlockIntl, f.Account
		case f.Action == ActionBlockExtension && f.Extension != "":
			b.Kind, b.Subject = BlockExtension, f.Extension
		default:
			blockErr = Errorf(ENOTFOUND, "no %s to block", map[Action]string{ActionIntlBlock: "account", ActionBlockExtension: "extension"}[f.Action])
		}
		if blockErr == nil {
			if r.Blocker == nil {
				blockErr = Errorf(EUNAVAILABLE, "no store to record the block in")
			} else if _, err := r.Blocker.Block(ctx, b); err != nil {
				blockErr = err
			}
		}
		if blockErr != nil {
			log.Error("could not set the block a detector asked for; block by hand",
				"source", f.Source, LogKind, f.Kind, LogExtension, f.Extension, LogAccount, f.Account, LogError, ErrorMessage(blockErr))
			f.Severity = SeverityCritical
			f.Message += fmt.Sprintf(" [the %s block could NOT be set: %s; block by hand]", f.Action, ErrorMessage(blockErr))
		} else {
			log.Warn("block set", "source", f.Source, "block", b.Kind, "subject", b.Subject, LogKind, f.Kind,
				LogExtension, f.Extension, LogAccount, f.Account, "why", f.Message)
			cut, failed, err := r.cutCalls(ctx, log, b)
			switch {
			case err != nil:
				f.Message += fmt.Sprintf(" [its calls in progress could NOT be checked (%s): list them with `tollguard calls --open` and hang them up in Asterisk]", ErrorMessage(err))
				f.Severity = SeverityCritical
			case cut+failed > 0:
				f.Message += fmt.Sprintf(" [%d call%s in progress hung up", cut, plural(cut))
				if failed > 0 {
					f.Message += fmt.Sprintf("; %d could NOT be hung up: hang them up in Asterisk", failed)
					f.Severity = SeverityCritical
				}
				f.Message += "]"
			}
		}
	}
	if r.Alerter == nil {
		log.Warn("alert", LogKind, f.Kind, LogSeverity, f.Severity, LogSubject, f.Subject,
			LogExtension, f.Extension, LogAccount, f.Account, "message", f.Message)
		return blockErr
	}
	if err := r.Alerter.Raise(ctx, f.Alert()); err != nil {
		log.Error("could not raise an alert", LogKind, f.Kind, LogSubject, f.Subject, "message", f.Message, LogError, err)
		return fmt.Errorf("raise %s alert for %s: %w", f.Kind, f.Subject, err)
	}
	return nil
}

// Alert returns the alert for f.
func (f Finding) Alert() Alert {
	return Alert{
		Kind: f.Kind, Severity: f.Severity, Subject: f.Subject, Account: f.Account, Extension: f.Extension,
		Message: f.Message, Evidence: f.EvidenceJSON(), FirstSeen: f.At, LastSeen: f.At, Count: 1,
	}
}

// EvidenceJSON returns f's evidence as a JSON object, with the source.
func (f Finding) EvidenceJSON() string {
	ev := make(map[string]any, len(f.Evidence)+1)
	for k, v := range f.Evidence {
		ev[k] = v
	}
	ev["source"] = f.Source
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Sprintf(`{"source":%q,"error":%q}`, f.Source, err.Error())
	}
	return string(b)
}

func (r *Responder) cutCalls(ctx context.Context, log *slog.Logger, b Block) (cut, failed int, err error) {
	if r.Calls == nil || r.Hangup == nil {
		return 0, 0, nil
	}
	return HangUpBlockedCalls(ctx, r.Calls, r.Hangup, log, b)
}

// hangupBudget bounds the time HangUpBlockedCalls spends on one block.
const hangupBudget = 10 * time.Second

// BlockedCalls lists the calls in progress that block b would have
// denied: all of a blocked extension's, or an account's international
// ones; never an emergency (or internal) call.
func BlockedCalls(ctx context.Context, calls LiveCalls, b Block) ([]*CallRecord, error) {
	var ext, account, country string
	switch b.Kind {
	case BlockExtension:
		ext = b.Subject
	case BlockIntl:
		account = b.Subject
		a, err := calls.Account(ctx, account)
		if err != nil {
			return nil, fmt.Errorf("read the blocked account: %w", err)
		}
		country = a.Plan.Country
	default:
		return nil, nil
	}
	open, err := calls.CallsInProgress(ctx, ext, account)
	if err != nil {
		return nil, fmt.Errorf("list the calls in progress: %w", err)
	}
	out := open[:0]
	for _, c := range open {
		// An emergency call may be one by the gate's default country
		// rather than the account's, so its class need not say so; its
		// reason does.
		if c.Reason == ReasonEmergency || c.Class == ClassEmergency || c.Class == ClassInternal {
			continue
		}
		// The gate's intl_block test: a destination region other than
		// the account's country (no region counts as outside, as in the
		// gate).
		if b.Kind == BlockIntl && c.Country == country {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// HangUpBlockedCalls hangs up BlockedCalls. It returns how many were
// hung up and how many could not be, and logs each; the error is why
// the calls could not even be listed.
func HangUpBlockedCalls(ctx context.Context, calls LiveCalls, hangup ChannelHanger, log *slog.Logger, b Block) (cut, failed int, err error) {
	// The ARI listener acts on findings between events: a slow Asterisk
	// must not hold it up for long.
	ctx, cancel := context.WithTimeout(ctx, hangupBudget)
	defer cancel()
	blocked, err := BlockedCalls(ctx, calls, b)
	if err != nil {
		log.Error("could not find the calls in progress a new block should cut; they run on to their MAXSEC",
			"block", b.Kind, "subject", b.Subject, LogError, err)
		return 0, 0, err
	}
	for _, c := range blocked {
		args := []any{"block", b.Kind, LogExtension, c.Extension, LogAccount, c.Account, LogDest, c.Dialled,
			LogCallID, c.ID, "channel", c.Channel, "uniqueid", c.UniqueID}
		if err := hangup(ctx, c); err != nil {
			failed++
			log.Error("could not hang up a call in progress that the new block would have denied; hang it up in Asterisk",
				append(args, LogError, err)...)
			continue
		}
		cut++
		log.Warn("hung up a call in progress that the new block would have denied", args...)
	}
	return cut, failed, nil
}
