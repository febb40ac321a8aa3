package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { extSubcommands = append(extSubcommands, newExtRotateCommand) }

func newExtRotateCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate-password EXT",
		Short: "Replace an extension's SIP password with a generated one (through ARI)",
		Long: `Replace the password of the extension's PJSIP auth (the endpoint's
first auth) with a generated 24-character one, and print it once. The
phone stops registering until it is given the new password.

Objects from pjsip.conf are read-only through ARI: Asterisk answers 403,
and the message says what sorcery.conf needs.

An auth holding a stored digest (md5_cred, password_digest) is refused.
For each algorithm Asterisk challenges with (supported_algorithms_uas)
it checks that algorithm's digest if stored, else the password, and a
caller answers whichever challenge it likes: a new password would leave
a digest in force, or one that comes into force once its algorithm is
offered. The refusal says which credential Asterisk checks for which
algorithm. ARI cannot clear a digest: remove it (pjsip.conf or astdb,
then reload res_pjsip) and rotate again.

If Asterisk's answer to the change is lost (a timeout, a proxy's 502-504)
and the old password still reads back, the change is sent again. If
that is not confirmed either, the new password is printed all the same,
as possibly in force, with an error (exit 1) that says how to check:
asterisk -rx 'pjsip show auth AUTH'. With --json, "confirmed" says which.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			pw, auth, err := env.RotatePassword(cmd.Context(), args[0])
			// Unconfirmed, the password may be in force: the admin needs
			// it, with the error that says how to check.
			unconfirmed := errors.Is(err, tollguard.ErrUnconfirmed)
			if err != nil && !unconfirmed {
				return err
			}
			switch {
			case asJSON:
				if perr := app.printJSON(map[string]any{"extension": args[0], "auth": auth, "password": pw, "confirmed": !unconfirmed}); perr != nil {
					return perr
				}
			case unconfirmed:
				fmt.Fprintf(app.Out, "password of auth %s: change unconfirmed (see the error below)\nSIP password, possibly in force: %s\n(shown once: tollguard does not store it)\n", auth, pw)
			default:
				fmt.Fprintf(app.Out, "password of auth %s rotated\nSIP password: %s\n(shown once: give it to the phone; tollguard does not store it)\n", auth, pw)
			}
			return err
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}
