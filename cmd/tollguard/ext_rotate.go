package main

import (
	"fmt"

	"github.com/spf13/cobra"
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
and the message says what sorcery.conf needs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			pw, auth, err := env.RotatePassword(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return app.printJSON(map[string]string{"extension": args[0], "auth": auth, "password": pw})
			}
			fmt.Fprintf(app.Out, "password of auth %s rotated\nSIP password: %s\n(shown once: give it to the phone; tollguard does not store it)\n", auth, pw)
			return nil
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}
