package main

import (
	"fmt"

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
			return blockByHand(cmd.Context(), app, tollguard.Block{Kind: tollguard.BlockIntl, Subject: args[0], Reason: reason},
				fmt.Sprintf("international calls of account %s blocked; lift it with `tollguard unblock --intl %s`", args[0], args[0]))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the block history)")
	textFlags(cmd, "reason")
	return cmd
}
