package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

func init() { register(newRatesCommand) }

func newRatesCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rates",
		Short: "Import the carrier rate deck, or look up a number's rate",
	}
	cmd.AddCommand(newRatesImportCommand(app), newRatesLookupCommand(app))
	return cmd
}

func newRatesImportCommand(app *App) *cobra.Command {
	var quiet bool
	var currency string
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Replace the rate deck with a carrier CSV (prefix, destination, rate per minute, billing terms); all or nothing",
		Long: `Replace the whole rate deck with FILE.csv.

Columns are found from the header row, in any order: the prefix (prefix,
code, dial code), the destination (destination, description, country) and
the price per minute (rate, price, rate per minute, cost). Two price
columns per minute (rate and cost) are refused: keep the one the carrier
bills. A price column per second ("Rate (per second)", rate/sec, price
per second) is refused when it is the only one, and ignored beside a
price per minute.

A prefix split over two columns is refused: a country-code column
(country code, cc, country calling code, calling code, country prefix,
country dial code, ISD code, international calling code, telephone
country code, country phone code) and an area-code column (area code,
city code, ndc), or a prefix column whose digits do not begin with the
country-code column's (44 and 20 is London, not +20, Egypt). So is a
prefix that begins with its country code's digits where, read whole, no
number is, but read after the code one is (727 beside 7 is Almaty, 7727,
not +7 27, and 392 beside 39 is Italy's mobile 39392, not +39 2); 7495
beside 7 is whole (Moscow), so are 76 and 70 beside 7 (Kazakhstan's +7 6
and +7 0, newer than tollguard's numbering data), and so is a prefix its
area-code column reads as the country code and the area code (4912
beside 49 and 012, Germany's innovative services, which tollguard's
numbering data lacks). These are no split: 876 beside 1876 (Jamaica's
NANP area code), and an area-code column giving the whole prefix (4420
beside 4420) when the row's country code (44) vouches for it; without
one, 1876 beside 1876 may be Lochmaddy's 01876 without its 44 as well as
Jamaica. A code column's spaces, dashes, dots and brackets are ignored
(1-268 is 1268). Rename a code column that is for information only.

A row with more fields than the header is refused: a decimal comma in a
comma-separated deck, also a whole-number rate or fee followed by its
fraction in a zero-led cell or a column tollguard does not read (0,0080
or 4,95). Write 0 as 0.00.

The carrier's billing terms are read too, so that credit runs out when
the carrier's bill says it does:
  billing, increment, interval     the steps: 60/60 (every started minute),
                                   30/6, 1/1 (by the second), or one figure
                                   for both (60)
  initial increment, min duration  the first step, when the deck gives it
                                   in a column of its own (the increment
                                   column is then the later steps; 0 is
                                   no minimum)
  connection fee, setup fee        charged once per answered call; empty
                                   is none
Steps are in seconds. A deck without them bills by the second with no
fee. A column that looks like a billing term tollguard does not read (a
minimum charge, a second fee, rounding), steps in minutes, or a first
step without the steps after it is refused, with what to rename; so is
a charge tollguard cannot bill (a minimum charge, a second fee). A
column named only Billing, Interval, Initial, Connection, Setup or Fee
is read as terms when its first non-empty cell holds them (a fee must
look like money: 0.05), and ignored otherwise (peak intervals,
connection flags); such a column that holds terms on some rows only is
refused; so is one whose first cell looks like terms it cannot read
("every minute", "$0.10"). "-", "N/A" and "none" are empty cells; "per
minute", "1 min" and "per second" are 60/60 and 1/1, and 60x60 or 60:60
are 60/60. Prices and fees in cents are refused. In a deck of a currency
with no minor unit (--currency JPY, "Rate (JPY)"), whole-number fees are
money.

When steps are longer than a second, a call ends 2 s before the end of
a step, whatever limit set it (the carrier's clock starts a moment
before Asterisk's). The rate ceilings judge the dearest minute: the most
a call of whole minutes costs a minute, with the fee and steps (usually
the first minute). Other columns (effective date, ...) are ignored.

One deck prices every account, in the account's currency. Say which
currency the deck is in with --currency, or in the deck: a currency
column of ISO codes (cells that are not, like "$", are ignored), or the
rate column's unit when it holds just the code ("Rate (USD)", "Price
[eur/min]"). --currency against the unit or a currency column naming
another code is refused, so that a carrier's switch of currency is
never taken silently. The gate then refuses to price the calls of
an account in another currency (rate_ceiling), where a dollar deck would
charge a yen account a hundredth. A deck that does not say is taken to
be in every account's currency, as before.

Prices are exact decimals in each account's currency, never negative; in
a deck separated by ';' or tabs, a decimal comma (0,0123) is read as a
decimal point. Separators may be ',', ';' or tabs; lines
may end in LF, CRLF or a bare CR (old spreadsheet exports).

Every row is checked first. If any row is bad, each is reported with its
line number and nothing is imported: the old deck stays in force.

Import while calls go on: the new deck is copied in a few thousand rows
at a time without holding up the gate, which decides on the old deck until
the new one goes live, all at once. If the import is interrupted, the old
deck stays in force. A deck equal to the one in force changes nothing, so
a nightly import of the carrier's file is cheap.`,
		Example: `  tollguard rates import carrier-2026-11.csv --currency GBP`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := os.Open(args[0])
			if err != nil {
				return tollguard.Errorf(tollguard.EINVALID, "rate deck: %v", err)
			}
			defer f.Close()
			if fi, err := f.Stat(); err == nil && fi.IsDir() {
				return tollguard.Errorf(tollguard.EINVALID, "rate deck %s is a directory: give the CSV file", args[0])
			}
			if currency != "" {
				code, err := tollguard.ParseCurrency(currency)
				if err != nil {
					return usagef("--currency: %s", tollguard.ErrorMessage(err))
				}
				currency = code
			}
			db, err := app.Store(ctx)
			if err != nil {
				return err
			}
			imp, err := db.BeginRateImport(ctx)
			if err != nil {
				return err
			}
			start := time.Now()
			err = tollguard.ParseRateDeckIn(f, currency, func(line int, e tollguard.RateEntry) error {
				if err := ctx.Err(); err != nil { // Ctrl-C, SIGTERM
					return tollguard.Errorf(tollguard.EUNAVAILABLE, "interrupted at line %d", line)
				}
				if e.Currency != "" {
					currency = e.Currency // the parser checked they agree
				}
				if err := imp.Add(ctx, e); err != nil {
					return err
				}
				if n := imp.Count(); !quiet && n%10000 == 0 {
					fmt.Fprintf(app.Err, "  %d rates read (line %d)...\n", n, line)
				}
				return nil
			})
			if err != nil {
				imp.Rollback()
				code := tollguard.ErrorCode(err)
				if code == tollguard.EINTERNAL {
					return fmt.Errorf("import %s: %w (nothing was imported; the previous deck is still in force)", args[0], err)
				}
				return tollguard.Errorf(code, "%s: %s\nnothing was imported; the previous deck is still in force", args[0], tollguard.ErrorMessage(err))
			}
			interrupted := tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: interrupted before the new deck went live; nothing was imported, the previous deck is still in force", args[0])
			if ctx.Err() != nil {
				imp.Rollback()
				return interrupted
			}
			imp.SetCurrency(currency)
			if err := imp.CommitContext(ctx); errors.Is(err, store.ErrImportInterrupted) {
				return interrupted
			} else if err != nil {
				return fmt.Errorf("commit rate deck: %w", err)
			}
			warnCurrencies(cmd, app, db, currency)
			if err := imp.Leftover(); err != nil {
				fmt.Fprintf(app.Err, "warning: the deck in force is right, but deleting replaced decks failed (the next import tries again): %v\n", err)
			}
			if imp.Unchanged() {
				fmt.Fprintf(app.Out, "%s matches the deck in force (%d rows read); nothing changed (%s)\n", args[0], imp.Count(), time.Since(start).Round(time.Millisecond))
				return nil
			}
			fmt.Fprintf(app.Out, "imported %d rates from %s in %s\n", imp.Count(), args[0], time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress lines")
	cmd.Flags().StringVar(&currency, "currency", "", "ISO 4217 currency the deck's prices are in (GBP, USD, ...); accounts in another are refused priced calls")
	return cmd
}

// warnCurrencies names the accounts a deck in currency cannot price, or
// says the deck's currency is unknown when some accounts differ.
func warnCurrencies(cmd *cobra.Command, app *App, db *store.DB, currency string) {
	accts, err := db.Accounts(cmd.Context())
	if err != nil {
		return
	}
	var other []string
	seen := map[string]bool{}
	for _, a := range accts {
		seen[a.Currency] = true
		if currency != "" && a.Currency != currency {
			other = append(other, a.ID+" ("+a.Currency+")")
		}
	}
	switch {
	case len(other) > 0:
		fmt.Fprintf(app.Err, "warning: the deck is priced in %s; the gate denies priced calls (rate_ceiling) of %d account(s) in other currencies: %s\n",
			currency, len(other), strings.Join(other, ", "))
	case currency == "" && len(seen) > 1:
		fmt.Fprintln(app.Err, "warning: the deck does not say its currency, and accounts hold several: each is charged the deck's figures in its own currency; give --currency")
	}
}

func newRatesLookupCommand(app *App) *cobra.Command {
	var country string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lookup NUMBER",
		Short: "Show the rate-deck entry (longest prefix) and the class of a number",
		Example: `  tollguard rates lookup +442079460000
  tollguard rates lookup 011442079460000 --country US`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if country == "" {
				country = app.Config.Gate.DefaultCountry
			}
			plan := tollguard.NumberPlan{Country: country}
			if err := plan.Validate(); err != nil {
				return err
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			// The stored high-risk list, as the gate classifies by it.
			hrEntries, err := db.HighRiskList(cmd.Context())
			if err != nil {
				return err
			}
			n := tollguard.Classify(args[0], plan, tollguard.NewPrefixList(hrEntries))
			// Not errors: the admin asked what the gate makes of them.
			if n.Class == tollguard.ClassEmergency || n.Class == tollguard.ClassInternal {
				what := fmt.Sprintf("an emergency number in %s: the gate always allows it, never priced or limited", country)
				if n.Class == tollguard.ClassInternal {
					what = "an internal extension number: the deck does not price internal calls"
				}
				if asJSON {
					return app.printJSON(map[string]any{"number": n.Dialled, "class": n.Class, "international": false, "rate": nil})
				}
				fmt.Fprintf(app.Out, "%s: %s\n", n.Dialled, what)
				return nil
			}
			if n.Short {
				gate := shortCodeVerdict(n, app.Config.Gate.FreeShortCodes)
				if asJSON {
					return app.printJSON(map[string]any{"number": n.Dialled, "class": n.Class, "region": n.Region, "short_code": true, "type": n.Type, "international": false, "rate": nil, "gate": gate})
				}
				fmt.Fprintf(app.Out, "%s: %s short code, class %s (%s); short codes have no E.164 form, so the deck cannot price them: %s\n",
					n.Dialled, n.Region, n.Class, n.Type, gate)
				return nil
			}
			if n.E164 == "" {
				return tollguard.Errorf(tollguard.EINVALID, "%q is not a dialable number from %s (class %s)", args[0], country, n.Class)
			}
			e, err := db.LookupRate(cmd.Context(), n.E164)
			if err != nil {
				return err
			}
			// As the gate prices it: a calling code's row does not price
			// the other regions sharing the code.
			var broad *tollguard.RateEntry
			covers := ""
			if e != nil {
				if ok, c := n.PricedBy(e.Prefix); !ok {
					broad, covers, e = e, c, nil
				}
			}
			if asJSON {
				v := map[string]any{"number": n.E164, "class": n.Class, "region": n.Region, "international": n.International, "rate": nil}
				if broad != nil {
					v["unpriced_by"] = map[string]string{"prefix": "+" + broad.Prefix, "prices": covers}
				}
				if e != nil {
					v["rate"] = map[string]string{"prefix": "+" + e.Prefix, "destination": e.Destination, "per_minute": e.Rate.String(),
						"billing": e.Billing.Steps(), "connection_fee": e.Billing.Connect.String(), "currency": e.Currency}
				}
				return app.printJSON(v)
			}
			fmt.Fprintf(app.Out, "%s: class %s, region %s, international %s\n", n.E164, n.Class, orDash(n.Region), yesNo(n.International))
			if broad != nil {
				fmt.Fprintf(app.Out, "no rate: the deck's +%s row (%s) prices %s only, not %s; import a row for it (international calls without a rate are denied)\n",
					broad.Prefix, orDash(broad.Destination), covers, orDash(n.Region))
				return nil
			}
			if e == nil {
				fmt.Fprintln(app.Out, "no rate: no prefix of this number is in the deck (international calls without a rate are denied)")
				return nil
			}
			fmt.Fprintf(app.Out, "rate %s (prefix +%s, %s", e.Billing.Price(e.Rate), e.Prefix, orDash(e.Destination))
			if e.Currency != "" {
				fmt.Fprintf(app.Out, "; deck in %s", e.Currency)
			}
			fmt.Fprintln(app.Out, ")")
			return nil
		},
	}
	cmd.Flags().StringVar(&country, "country", "", "dial as from this country (default [gate] default_country)")
	addJSON(cmd, &asJSON)
	return cmd
}

// shortCodeVerdict says what the gate does with short code n (step 2's
// free list, step 6's classes), for `rates lookup`.
func shortCodeVerdict(n tollguard.Number, free []string) string {
	switch {
	case tollguard.FreeShortCode(n.Dialled, free):
		return "listed in [gate] free_short_codes, the gate allows it as free"
	case n.Class == tollguard.ClassPremium:
		return "premium-rate, the gate denies it"
	case n.Class == tollguard.ClassTollFree:
		return "free to call, the gate allows it"
	}
	return "of unknown cost, the gate denies it; if your trunk carries it free, list it in [gate] free_short_codes"
}
