package main

import (
	"fmt"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newUnblockCommand) }

func newUnblockCommand(app *App) *cobra.Command {
	var intl bool
	cmd := &cobra.Command{
		Use:   "unblock EXT | unblock --intl ACCOUNT",
		Short: "Lift a block on an extension, or an account's international block; the history is kept",
		Long: `Lift a block set by an admin, a detector or the registration lockdown.

Check first why it was set (tollguard ext show EXT, tollguard alerts): a
registration from outside the extension's allowed networks means its SIP
password is known to someone else. Rotate it before unblocking.

Unblocking an extension cancels its pending purge (tollguard ext purge,
or the stale and tests audits), if it has one. Cancelling brings back
nothing a run of that purge deleted before it failed partway: unblock
then says so, and tollguard ext restore EXT brings it back. Which
objects are gone is asked of Asterisk through ARI; without an answer
(no [ari], or ARI down), after a delete that got none, unblock says they
may be gone and how to check. Unblocking acknowledges
the open detector and registration alerts about the extension (or the
account, with --intl), not audit findings such as a spend warning: you
dealt with them, so a detector that blocks it again raises a new alert,
sent at once, instead of adding to the old one's digest.`,
		Example: `  tollguard unblock 1001
  tollguard unblock --intl acme`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			kind := tollguard.BlockExtension
			if intl {
				kind = tollguard.BlockIntl
			}
			// A run of the purge may have failed partway (the endpoint
			// deleted, the aor not): cancelling it brings nothing back.
			var partly *tollguard.ExtensionSnapshot
			if !intl {
				ps, err := db.PendingPurges(cmd.Context())
				if err != nil {
					return err
				}
				for _, p := range ps {
					if p.Extension == args[0] {
						if partly, err = tollguard.PurgeStarted(cmd.Context(), db, p); err != nil {
							return err
						}
					}
				}
			}
			restoreNote := func() {
				if partly == nil {
					return
				}
				// The snapshot alone does not say what is gone (a delete
				// that got no answer may have deleted nothing): ask ARI,
				// if it is configured and answers.
				var ast tollguard.Asterisk
				if ariClient != nil {
					if c, release, err := ariClient(app); err == nil && c != nil {
						if release != nil {
							defer release()
						}
						ast = c
					}
				}
				if note, ok, _ := tollguard.PartialPurgeNote(cmd.Context(), ast, partly); ok {
					fmt.Fprintf(app.Out, "but %s\n", note)
				}
			}
			was, err := db.Unblock(cmd.Context(), kind, args[0], "admin:"+adminName())
			if tollguard.ErrorCode(err) == tollguard.ENOTFOUND && !intl {
				// An endpoint only Asterisk knows has no block, but may
				// have a purge pending, which unblocking cancels.
				if db.FinishPurge(cmd.Context(), args[0], "cancelled", app.Now()) == nil {
					fmt.Fprintf(app.Out, "pending purge of %s cancelled (it is not in tollguard's store, so it was not blocked)\n", args[0])
					restoreNote()
					return nil
				}
			}
			if tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
				// Extensions and accounts are unblocked by one verb: say
				// which form the name needs.
				if _, aerr := db.Account(cmd.Context(), args[0]); !intl && aerr == nil {
					return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found, but account %q is: lift its international block with `tollguard unblock --intl %s`", args[0], args[0], args[0])
				}
				if _, eerr := db.Extension(cmd.Context(), args[0]); intl && eerr == nil {
					return tollguard.Errorf(tollguard.ENOTFOUND, "account %q not found, but extension %q is: lift its block with `tollguard unblock %s`", args[0], args[0], args[0])
				}
			}
			if err != nil {
				return err
			}
			switch {
			case !was:
				fmt.Fprintf(app.Out, "%s was not blocked\n", args[0])
			case intl:
				fmt.Fprintf(app.Out, "international calls unblocked for account %s\n", args[0])
			default:
				fmt.Fprintf(app.Out, "extension %s unblocked\n", args[0])
			}
			if was {
				subject := tollguard.ExtSubject(args[0])
				if intl {
					subject = tollguard.AccountSubject(args[0])
				}
				n, err := db.AckAlertsFor(cmd.Context(), subject, "admin:"+adminName(), app.Now())
				if err != nil {
					return err
				}
				if n > 0 {
					fmt.Fprintf(app.Out, "%d open alert(s) about %s acknowledged\n", n, subject)
				}
			}
			if intl {
				return nil
			}
			// Unblocking during the grace period cancels the purge, now:
			// left pending, a later block would let it run when due.
			switch err := db.FinishPurge(cmd.Context(), args[0], "cancelled", app.Now()); tollguard.ErrorCode(err) {
			case "":
				fmt.Fprintf(app.Out, "pending purge of %s cancelled\n", args[0])
				restoreNote()
			case tollguard.ENOTFOUND:
			default:
				return fmt.Errorf("cancel the pending purge of %s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&intl, "intl", false, "lift an account's international block instead")
	return cmd
}

func adminName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}
