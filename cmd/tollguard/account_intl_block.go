package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func newAccountIntlBlockCommand(app *App) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "intl-block ID --reason TEXT",
		Short: "Block an account's international calls (emergency and national calls go on)",
		Long: `Block an account's international calls: every call to a destination
outside the account's country is denied until ` + "`tollguard unblock --intl ID`" + `.
Detectors set the same block on their own (action intl_block).

With ARI configured ([ari] enabled, hangup_blocked_calls), the account's
international calls in progress are hung up too; without ARI, the command
says how many run on until their MAXSEC.`,
		Example: `  tollguard account intl-block acme --reason "IRSF suspected: calls to +252 overnight"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usagef("--reason is required: say why, for the block history")
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			b := tollguard.Block{Kind: tollguard.BlockIntl, Subject: args[0], SetBy: "admin", Reason: reason}
			if _, err := db.Block(cmd.Context(), b); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "international calls of account %s blocked; lift it with `tollguard unblock --intl %s`\n", args[0], args[0])
			return hangUpAfterBlock(cmd.Context(), app, db, b)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the block history)")
	return cmd
}
