package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newHighRiskCommand) }

func newHighRiskCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "highrisk",
		Short: "The high-risk destination list: calls to it are denied (high_risk) unless whitelisted",
		Long: `The high-risk destination list is data: tollguard ships a default (with
its sources) and seeds it into a new database; replace it with your own
CSV (prefix,description,source) or go back to the default.`,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the high-risk prefixes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			es, err := db.HighRiskList(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				type v struct {
					Prefix      string `json:"prefix"`
					Description string `json:"description"`
					Source      string `json:"source"`
				}
				vs := make([]v, len(es))
				for i, e := range es {
					vs[i] = v{"+" + e.Prefix, e.Description, e.Source}
				}
				return app.printJSON(vs)
			}
			w := app.table("PREFIX", "DESCRIPTION", "SOURCE")
			for _, e := range es {
				fmt.Fprintf(w, "+%s\t%s\t%s\n", e.Prefix, e.Description, orDash(e.Source))
			}
			return w.Flush()
		},
	}
	addJSON(list, &asJSON)
	var allowEmpty bool
	imp := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Replace the list with FILE.csv (prefix,description,source); all or nothing",
		Long: `Replace the list with FILE.csv: the columns prefix,description,source, in
that order, or in any order under a header row naming them (other
columns are ignored); ',' or ';' between fields; '#' starts a comment
line; prefixes in E.164 form, with or without '+'. The default list,
highrisk.csv in tollguard's source, is an example of the format.

A rate deck is refused: a header naming a rate, price or cost column,
or a price in the source column. Import decks with ` + "`tollguard rates import`" + `.
Any bad row, or a file with no prefixes (see --allow-empty), imports
nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return tollguard.Errorf(tollguard.EINVALID, "high-risk list: %v", err)
			}
			defer f.Close()
			es, err := tollguard.ParseHighRiskCSV(f)
			if err != nil {
				return tollguard.Errorf(tollguard.EINVALID, "%s: %s\nnothing was imported", args[0], tollguard.ErrorMessage(err))
			}
			// A failed download in a cron job must not switch the
			// high-risk check off.
			if len(es) == 0 && !allowEmpty {
				return tollguard.Errorf(tollguard.EINVALID, "%s holds no prefixes; an empty list would turn the high-risk check off, so nothing was imported "+
					"(pass --allow-empty to do that on purpose)", args[0])
			}
			return replaceHighRisk(cmd, app, es, args[0])
		},
	}
	imp.Flags().BoolVar(&allowEmpty, "allow-empty", false, "accept a file with no prefixes, emptying the list (the high-risk check then stops nothing)")
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Replace the list with the default shipped with tollguard",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return replaceHighRisk(cmd, app, tollguard.DefaultHighRisk(), "the default list")
		},
	}
	cmd.AddCommand(list, imp, reset)
	return cmd
}

func replaceHighRisk(cmd *cobra.Command, app *App, es []tollguard.HighRiskEntry, from string) error {
	db, err := app.Store(cmd.Context())
	if err != nil {
		return err
	}
	if err := db.ReplaceHighRisk(cmd.Context(), es); err != nil {
		return err
	}
	fmt.Fprintf(app.Out, "high-risk list replaced with %d prefixes from %s\n", len(es), from)
	return nil
}
