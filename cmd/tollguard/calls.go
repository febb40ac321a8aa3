package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

func init() { register(newCallsCommand) }

func newCallsCommand(app *App) *cobra.Command {
	var f store.CallFilter
	var verdict, reason, since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "calls",
		Short: "Recent gate decisions, newest first; `calls show ID` explains one",
		Long: `List the gate's recorded decisions, newest first: all of them, or those
of an extension, account, verdict or reason, since a time.

The daemon rolls calls older than [gate] retention_days (default 90) up
into monthly totals per account and UTC month, and deletes them; calls in
progress and the last day's stay. The totals keep no extension, number or
reason. When the period listed (all of it, without --since) reaches back
past that cutoff, fewer than --limit calls were listed, and the totals
hold calls from that month on, a note on stderr says that calls before
the cutoff (RFC 3339, local time) may not be listed (the totals keep
months, not days). With --json the note goes to
stderr too: the JSON array on stdout keeps its shape. No command lists
the totals; they still count in the spend audit (tollguard audit spend),
and their charges stay in the accounts' balances.`,
		Example: `  tollguard calls --ext 1001 --since 24h
  tollguard calls --verdict deny --reason high_risk --json
  tollguard calls --open`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if verdict != "" && verdict != string(tollguard.Allow) && verdict != string(tollguard.Deny) {
				return usagef("--verdict %q: want allow or deny", verdict)
			}
			if f.Limit < 1 {
				// The store took 0 and below as its default of 50.
				return usagef("--limit %d: want at least 1", f.Limit)
			}
			if reason != "" && !knownReason(tollguard.Reason(reason)) {
				return usagef("--reason %q: not a reason code (see the README's reason table)", reason)
			}
			// Filters no call can match would list nothing, as if there
			// were no such calls.
			if reason != "" {
				rv := reasonVerdict(tollguard.Reason(reason))
				if verdict != "" && verdict != string(rv) {
					return usagef("--verdict %s with --reason %s: calls with reason %s are %s, so none would match; give one of them", verdict, reason, reason, verdictPast(rv))
				}
				if f.Open && rv == tollguard.Deny {
					return usagef("--open with --reason %s: calls in progress were allowed, and reason %s is a deny; drop --open to list those denials", reason, reason)
				}
			}
			if f.Open && verdict == string(tollguard.Deny) {
				return usagef("--open with --verdict deny: calls in progress were allowed, so none is a deny; drop --open to list denials, or --verdict to list calls in progress")
			}
			t, err := parseSince(since, app.Now())
			if err != nil {
				return err
			}
			f.Verdict, f.Reason, f.Since = tollguard.Verdict(verdict), tollguard.Reason(reason), t
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			if err := callsFilterCanMatch(cmd.Context(), app, db, f); err != nil {
				return err
			}
			cs, err := db.Calls(cmd.Context(), f)
			if err != nil {
				return err
			}
			// Asked before anything is printed: a failure after the
			// listing would exit 1 with the listing already out.
			note, err := rolledUpNote(cmd.Context(), app, db, f, len(cs))
			if err != nil {
				return err
			}
			if asJSON {
				vs := make([]callView, len(cs))
				for i, c := range cs {
					vs[i] = newCallView(c, false)
				}
				if err := app.printJSON(vs); err != nil {
					return err
				}
				fmt.Fprint(app.Err, note)
				return nil
			}
			w := app.table("ID", "TIME", "EXT", "ACCOUNT", "DIALLED", "CLASS", "VERDICT", "REASON", "MAXSEC", "CHARGE", "STATE")
			for _, c := range cs {
				v := newCallView(c, false)
				maxsec := "-"
				if v.MaxSec != nil {
					maxsec = strconv.FormatInt(*v.MaxSec, 10)
				}
				state := "-"
				switch {
				case c.Open():
					state = "in progress"
				case c.Verdict == tollguard.Allow:
					state = fmt.Sprintf("%ds by %s", c.Billsec, c.SettledBy)
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, fmtTime(c.CreatedAt), orDash(c.Extension), orDash(c.Account),
					oneLine(c.Dialled), c.Class, c.Verdict, c.Reason, maxsec, v.Charge, state)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprint(app.Err, note)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Extension, "ext", "", "only this extension")
	cmd.Flags().StringVar(&f.Account, "account", "", "only this account")
	cmd.Flags().StringVar(&verdict, "verdict", "", "allow or deny")
	cmd.Flags().StringVar(&reason, "reason", "", "only this reason code")
	cmd.Flags().StringVar(&since, "since", "", "only since: 90m, 24h, 7d or a date")
	cmd.Flags().BoolVar(&f.Open, "open", false, "only calls in progress (allowed, not yet settled)")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many")
	addJSON(cmd, &asJSON)
	cmd.AddCommand(newCallsShowCommand(app))
	return cmd
}

// callsFilterCanMatch refuses an --ext or --account that names neither
// an extension or account in the store nor one any kept call had: a
// typo would list nothing, as if there were no calls. An extension
// deleted since (or unknown to the store, with allow_unknown) keeps its
// calls until they are rolled up.
func callsFilterCanMatch(ctx context.Context, app *App, db *store.DB, f store.CallFilter) error {
	if f.Extension != "" {
		_, err := db.Extension(ctx, f.Extension)
		// The totals keep no extension: any account's may hold its calls.
		if err := knownToCalls(ctx, app, db, err, "--ext", "extension", f.Extension, "ext list",
			store.CallFilter{Extension: f.Extension, Limit: 1}, "",
			"%s, which do not keep the extension, so any call it made before then can no longer be listed"); err != nil {
			return err
		}
	}
	if f.Account != "" {
		_, err := db.Account(ctx, f.Account)
		if err := knownToCalls(ctx, app, db, err, "--account", "account", f.Account, "account list",
			store.CallFilter{Account: f.Account, Limit: 1}, f.Account,
			"its older calls survive only in its monthly totals (%s)"); err != nil {
			return err
		}
	}
	return nil
}

// knownToCalls passes a --ext or --account name the store knows (its
// lookup's error, lookupErr, is nil) or a kept call had (kept finds
// one). Otherwise it is ENOTFOUND, saying, when rolledAccount's monthly
// totals (any account's for "") hold calls, that older calls are there
// (rolled, with the cutoff sentence for its %s), not that none was ever
// recorded.
func knownToCalls(ctx context.Context, app *App, db *store.DB, lookupErr error, flag, noun, name, listCmd string,
	kept store.CallFilter, rolledAccount, rolled string) error {
	if tollguard.ErrorCode(lookupErr) != tollguard.ENOTFOUND {
		return lookupErr
	}
	if cs, err := db.Calls(ctx, kept); err != nil || len(cs) > 0 {
		return err
	}
	some, err := db.RolledUpSince(ctx, time.Time{}, rolledAccount, "")
	if err != nil {
		return err
	}
	if some {
		return tollguard.Errorf(tollguard.ENOTFOUND, "%s: %s %q not found, and none of the calls kept is from it; %s; list %ss with `tollguard %s`",
			flag, noun, name, fmt.Sprintf(rolled, rolledUpSentence(app)), noun, listCmd)
	}
	return tollguard.Errorf(tollguard.ENOTFOUND, "%s: %s %q not found, and no call was ever recorded for it; list them with `tollguard %s`", flag, noun, name, listCmd)
}

// rolledUpNote is the note for stderr ("" for none) that calls the
// listing would reach may be rolled up: the period reaches past the
// rollup's cutoff and monthly totals hold calls from its month on (the
// totals keep months, not days, so "may"). Not when --limit cut the
// listing first (those calls would be past the page anyway), nor with
// --open (open calls are never rolled up).
func rolledUpNote(ctx context.Context, app *App, db *store.DB, f store.CallFilter, listed int) (string, error) {
	if f.Open || listed >= f.Limit || !f.Since.Before(rollupCutoff(app)) {
		return "", nil
	}
	v := f.Verdict
	if f.Reason != "" {
		v = reasonVerdict(f.Reason)
	}
	// The totals keep the account, not the extension: --ext asks about
	// any account's (it may have moved between accounts).
	rolled, err := db.RolledUpSince(ctx, f.Since, f.Account, v)
	if err != nil || !rolled {
		return "", err
	}
	return fmt.Sprintf("tollguard: note: older calls of this period may not be listed: %s. No command lists those totals; they still count in the spend audit (`tollguard audit spend`), and their charges stay in the balances\n",
		rolledUpSentence(app)), nil
}

// rollupCutoff is the time before which the daemon rolls calls up, by
// the config's retention_days.
func rollupCutoff(app *App) time.Time {
	return store.RollupBefore(app.Now(), app.Config.Gate.RetentionDays)
}

// rolledUpSentence says which calls are rolled up: the cutoff in the
// local zone (the daemon's, on its host), RFC 3339.
func rolledUpSentence(app *App) string {
	return fmt.Sprintf("calls before %s are rolled up into monthly totals per account after [gate] retention_days = %d",
		rollupCutoff(app).Format(time.RFC3339), app.Config.Gate.RetentionDays)
}

func newCallsShowCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Explain one decision: each rule step, the reservation and the settlement",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usagef("call id %q: want the number shown by `tollguard calls` (TOLLGUARD_CALLID)", args[0])
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			c, err := db.Call(cmd.Context(), id)
			if err != nil {
				return err
			}
			v := newCallView(c, true)
			if asJSON {
				return app.printJSON(v)
			}
			class := string(c.Class)
			if c.Country != "" {
				class += " " + c.Country
			}
			fmt.Fprintf(app.Out, "call %d at %s: extension %s (account %s) dialled %s -> %s (%s)\n", c.ID, fmtTime(c.CreatedAt),
				orDash(c.Extension), orDash(c.Account), oneLine(c.Dialled), orDash(c.E164), class)
			fmt.Fprintf(app.Out, "channel %s, source %s\n", orDash(c.Channel), orDash(c.Remote))
			for _, s := range c.Steps {
				fmt.Fprintf(app.Out, "  %d. %-12s %-5s %s\n", s.Number(), s.Rule, s.Result, oneLine(s.Detail))
			}
			fmt.Fprintf(app.Out, "verdict: %s (%s)", c.Verdict, c.Reason)
			if c.Verdict == tollguard.Deny {
				fmt.Fprintf(app.Out, ", cause %d\n", c.Cause)
				return nil
			}
			// MAXSEC is what the include gave Dial as its limit: the
			// first thing to read when a call was cut short.
			limit := fmt.Sprintf("MAXSEC %d", c.MaxSec)
			if c.MaxSec < 0 {
				limit = "no MAXSEC (no limit)"
			}
			fmt.Fprintf(app.Out, ", rate %s, reserved %s, %s\n", c.Billing.Price(c.Rate), v.Reserve, limit)
			if c.Open() {
				fmt.Fprintln(app.Out, "in progress (not settled yet)")
			} else {
				billed := ""
				if b := c.Billing.Billed(c.Billsec); b != c.Billsec {
					billed = fmt.Sprintf(", billed as %ds (%s)", b, c.Billing.Steps())
				}
				fmt.Fprintf(app.Out, "settled %s by %s: %ds answered%s (%s), charged %s\n", fmtTime(c.SettledAt), c.SettledBy, c.Billsec, billed, orDash(c.DialStatus), v.Charge)
			}
			return nil
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}

// reasonVerdict is the verdict every call with reason r has: allowed
// for ok, emergency and whitelist, denied for the rest.
func reasonVerdict(r tollguard.Reason) tollguard.Verdict {
	switch r {
	case tollguard.ReasonOK, tollguard.ReasonEmergency, tollguard.ReasonWhitelist:
		return tollguard.Allow
	}
	return tollguard.Deny
}

func verdictPast(v tollguard.Verdict) string {
	if v == tollguard.Allow {
		return "allowed"
	}
	return "denied"
}

func knownReason(r tollguard.Reason) bool {
	for _, k := range tollguard.Reasons {
		if k == r {
			return true
		}
	}
	return false
}
