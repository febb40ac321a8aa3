package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { extSubcommands = append(extSubcommands, newExtAddCommand) }

func newExtAddCommand(app *App) *cobra.Command {
	var account, callerID, desc string
	var cidrs []string
	cmd := &cobra.Command{
		Use:   "add EXT --account ACCOUNT",
		Short: "Add an extension to tollguard's store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validID("extension", args[0]); err != nil {
				return err
			}
			prefixes, err := parseCIDRs(cidrs)
			if err != nil {
				return err
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			e := &tollguard.Extension{Name: args[0], Account: account, CIDRs: prefixes, CallerID: callerID, Description: desc, CreatedAt: app.Now()}
			if err := db.CreateExtension(cmd.Context(), e); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "extension %s added to account %s\n", e.Name, e.Account)
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "the account it calls for (required)")
	cmd.Flags().StringArrayVar(&cidrs, "cidr", nil, "allowed source network (repeat; v4 or v6)")
	cmd.Flags().StringVar(&callerID, "caller-id", "", "caller ID")
	cmd.Flags().StringVar(&desc, "description", "", "description")
	cmd.MarkFlagRequired("account")
	return cmd
}
