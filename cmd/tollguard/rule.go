package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newRuleCommand) }

func newRuleCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rule",
		Short: "Allow (whitelist) and deny destination prefixes, globally or per account",
		Long: `Prefix rules act at step 5 of the decision: a matching deny rule denies
the call (destination_denied); a matching allow rule whitelists it, which
skips the class, rate-ceiling, business-hours and rate-limit checks (credit
still applies). In strict whitelist mode (account set --whitelist) only
allow-listed destinations pass. An allow rule of a calling code that
several regions share reaches its main region only: +1 the US and Canada,
not Jamaica (+1876); +44 and +447 Great Britain, not Jersey.`,
	}
	cmd.AddCommand(newRuleAddCommand(app), newRuleListCommand(app), newRuleRmCommand(app))
	return cmd
}

func newRuleAddCommand(app *App) *cobra.Command {
	var account, note string
	cmd := &cobra.Command{
		Use:   "add allow|deny PREFIX [--account ACCOUNT]",
		Short: "Add a rule; PREFIX is E.164 (+44, +8816)",
		Example: `  tollguard rule add deny +881 --note "satellite, IRSF"
  tollguard rule add allow +4420 --account acme`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			action := tollguard.RuleAction(args[0])
			if action != tollguard.RuleAllow && action != tollguard.RuleDeny {
				return usagef("rule action %q: want allow or deny", args[0])
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			r := &tollguard.Rule{Account: account, Prefix: args[1], Action: action, Note: note}
			if err := db.AddRule(cmd.Context(), r); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "rule %d: %s %s for %s\n", r.ID, r.Action, r.Prefix, scopeLabel(r.Account))
			if note := tollguard.AllowRuleNote(r.Prefix); note != "" && action == tollguard.RuleAllow {
				fmt.Fprintf(app.Err, "tollguard: note: %s\n", note)
			}
			// Deny rules win: an allow rule under a deny rule's prefix,
			// in a scope they share, allows nothing there.
			// The rule is added: a failed read only loses the note.
			others, _ := db.Rules(cmd.Context(), r.Account)
			for _, o := range others {
				if o.ID == r.ID || o.Action == r.Action || (o.Account != "" && r.Account != "" && o.Account != r.Account) {
					continue
				}
				deny, allow := o, r
				if r.Action == tollguard.RuleDeny {
					deny, allow = r, o
				}
				if !strings.HasPrefix(allow.Prefix, deny.Prefix) {
					continue
				}
				effect := "the allow rule has no effect; remove the one you did not mean with `tollguard rule rm ID`"
				if deny.Account != "" && allow.Account == "" {
					// An account's exception to a global allow, likely meant.
					effect = "for account " + deny.Account + " the allow rule has no effect"
				}
				fmt.Fprintf(app.Err, "tollguard: note: deny rule %d (%s, %s) matches every number allow rule %d (%s, %s) allows, and deny rules win: %s\n",
					deny.ID, deny.Prefix, scopeLabel(deny.Account), allow.ID, allow.Prefix, scopeLabel(allow.Account), effect)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "the account it applies to (default: all accounts)")
	cmd.Flags().StringVar(&note, "note", "", "why, for the next admin")
	textFlags(cmd, "note")
	return cmd
}

func newRuleListCommand(app *App) *cobra.Command {
	var account string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List rules (with --account: that account's and the global ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			if err := checkAccountFilter(cmd.Context(), db, account); err != nil {
				return err
			}
			rs, err := db.Rules(cmd.Context(), account)
			if err != nil {
				return err
			}
			if asJSON {
				type ruleView struct {
					ID      int64  `json:"id"`
					Account string `json:"account"`
					Prefix  string `json:"prefix"`
					Action  string `json:"action"`
					Note    string `json:"note"`
				}
				vs := make([]ruleView, len(rs))
				for i, r := range rs {
					vs[i] = ruleView{r.ID, r.Account, r.Prefix, string(r.Action), r.Note}
				}
				return app.printJSON(vs)
			}
			w := app.table("ID", "ACTION", "PREFIX", "SCOPE", "NOTE")
			for _, r := range rs {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", r.ID, r.Action, r.Prefix, scopeLabel(r.Account), orDash(r.Note))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "only rules that apply to this account")
	addJSON(cmd, &asJSON)
	return cmd
}

func newRuleRmCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID",
		Short: "Remove a rule by id (see `tollguard rule list`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usagef("rule id %q: want the number shown by `tollguard rule list`", args[0])
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			if err := db.RemoveRule(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "rule %d removed\n", id)
			return nil
		},
	}
}

func scopeLabel(account string) string {
	if account == "" {
		return "all accounts"
	}
	return "account " + account
}
