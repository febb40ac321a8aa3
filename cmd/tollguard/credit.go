package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newCreditCommand) }

func newCreditCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credit",
		Short: "Add credit to an account, or show its balance, reservations and ledger",
	}
	cmd.AddCommand(newCreditAddCommand(app), newCreditShowCommand(app))
	return cmd
}

func newCreditAddCommand(app *App) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:   "add ACCOUNT AMOUNT",
		Short: "Add AMOUNT (a decimal in the account's currency; negative, after --, to debit) to the balance",
		Example: `  tollguard credit add acme 25.00 --note "invoice 1042"
  tollguard credit add acme --note "correction" -- -3.50`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			a, err := db.Account(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			amt, err := tollguard.ParseAmount(args[1], a.Scale)
			if err != nil {
				return err
			}
			if amt == 0 {
				return usagef("amount %q is zero: nothing to add", args[1])
			}
			e, err := db.AddCredit(cmd.Context(), a.ID, amt, note, "admin:"+adminName())
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "account %s: %s %s added, balance now %s %s\n", a.ID, tollguard.FormatAmount(amt, a.Scale), a.Currency,
				tollguard.FormatAmount(e.BalanceAfter, a.Scale), a.Currency)
			if amt < 0 && e.BalanceAfter+a.CreditLimit < 0 {
				// A debit past the credit limit (a typo of -1000 for
				// -10.00) stops the account's priced calls.
				fmt.Fprintf(app.Err, "tollguard: note: the balance is %s past what the credit limit (%s) allows: the account's priced calls are denied (no_credit) until credit is added; undo a mistake with `tollguard credit add %s %s`\n",
					tollguard.FormatAmount(-(e.BalanceAfter+a.CreditLimit), a.Scale), tollguard.FormatAmount(a.CreditLimit, a.Scale), a.ID, tollguard.FormatAmount(-amt, a.Scale))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why, for the ledger")
	textFlags(cmd, "note")
	return cmd
}

func newCreditShowCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ACCOUNT",
		Short: "Show balance, credit limit, money held by calls in progress, what is available, and recent ledger entries",
		Long: `Show the account's balance, credit limit, what calls in progress hold,
and what is available. The ledger lists the last 10 credit changes; beside
each, CALLS AFTER is what calls were charged between it and the next
change (or now), so that each balance follows from the one before.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			c, err := db.CreditOf(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ledger, err := db.Ledger(cmd.Context(), args[0], 10)
			if err != nil {
				return err
			}
			f := func(a tollguard.Amount) string { return tollguard.FormatAmount(a, c.Scale) }
			if asJSON {
				type entry struct {
					At           *string `json:"at"`
					Amount       string  `json:"amount"`
					BalanceAfter string  `json:"balance_after"`
					CallsAfter   string  `json:"calls_after"`
					Note         string  `json:"note"`
					By           string  `json:"by"`
				}
				es := make([]entry, len(ledger))
				for i, e := range ledger {
					es[i] = entry{jsonTime(e.At), f(e.Amount), f(e.BalanceAfter), f(e.CallsAfter), e.Note, e.By}
				}
				return app.printJSON(map[string]any{"account": args[0], "currency": c.Currency, "balance": f(c.Balance),
					"credit_limit": f(c.CreditLimit), "reserved": f(c.Reserved), "calls_in_progress": c.OpenCalls,
					"available": f(c.Available), "ledger": es})
			}
			w := app.table()
			fmt.Fprintf(w, "balance\t%s %s\ncredit limit\t%s\nheld by %d calls in progress\t%s\navailable\t%s\n",
				f(c.Balance), c.Currency, f(c.CreditLimit), c.OpenCalls, f(c.Reserved), f(c.Available))
			w.Flush()
			if len(ledger) > 0 {
				fmt.Fprintln(app.Out, "\nledger (CALLS AFTER: charged to calls between an entry and the next, or now):")
				w = app.table("WHEN", "AMOUNT", "BALANCE AFTER", "CALLS AFTER", "BY", "NOTE")
				for _, e := range ledger {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(e.At), f(e.Amount), f(e.BalanceAfter), f(e.CallsAfter), e.By, orDash(e.Note))
				}
				return w.Flush()
			}
			return nil
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}
