package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

func init() { register(newAccountCommand) }

func newAccountCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Add, list, show and change accounts (who pays, how they dial, their limits)",
	}
	cmd.AddCommand(newAccountAddCommand(app), newAccountListCommand(app), newAccountShowCommand(app), newAccountSetCommand(app),
		newAccountIntlBlockCommand(app))
	return cmd
}

func newAccountAddCommand(app *App) *cobra.Command {
	var country, currency, name string
	var s accountSettings
	cmd := &cobra.Command{
		Use:   "add ID --country CC --currency CUR",
		Short: "Create an account with safe defaults (AAISP ceilings, no international or premium calls after hours)",
		Long: `Create an account with safe defaults (AAISP ceilings, no international or
premium calls after hours).

Account ids are case-sensitive, as the accountcode Asterisk sends is, so
an id that differs only in case from an existing one (ACME next to acme)
is refused: it would be a second account with its own credit.`,
		Example: `  tollguard account add acme --country GB --currency GBP --name "Acme Ltd"
  tollguard account add us1 --country US --currency USD --zone America/New_York`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validID("account", args[0]); err != nil {
				return err
			}
			a, err := store.NewAccount(args[0], country, currency)
			if err != nil {
				return err
			}
			a.Name = name
			if err := s.apply(cmd.Flags(), a); err != nil {
				return err
			}
			if err := checkAccount(a); err != nil {
				return err
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			if err := db.CreateAccount(cmd.Context(), a); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "account %s created (%s, %s); add credit with `tollguard credit add %s AMOUNT`\n", a.ID, a.Plan.Country, a.Currency, a.ID)
			warnDeckCurrency(cmd, app, db, a)
			if a.Whitelist {
				warnEmptyWhitelist(cmd, app, db, a.ID)
			}
			if !poundLike[a.Currency] && (a.NationalCeiling == tollguard.DefaultNationalCeiling || a.InternationalCeiling == tollguard.DefaultInternationalCeiling) {
				// The defaults are AAISP's pence; in yen they deny
				// every priced call.
				fmt.Fprintf(app.Err, "warning: the default ceilings (%s national, %s international per minute) are AAISP's figures in pounds, here read in %s; set --national-ceiling and --intl-ceiling in %s with `tollguard account set %s`\n",
					tollguard.DefaultNationalCeiling, tollguard.DefaultInternationalCeiling, a.Currency, a.Currency, a.ID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&country, "country", "", "ISO 3166 country the account dials from (GB, US, DE, ...)")
	cmd.Flags().StringVar(&currency, "currency", "", "ISO 4217 currency of its balance and rates (GBP, USD, EUR, ...)")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	textFlags(cmd, "name")
	cmd.MarkFlagRequired("country")
	cmd.MarkFlagRequired("currency")
	s.flags(cmd.Flags())
	return cmd
}

// poundLike are currencies worth roughly a pound, dollar or euro, in
// which the default ceilings make sense as they are.
var poundLike = map[string]bool{"GBP": true, "EUR": true, "USD": true, "CHF": true, "CAD": true, "AUD": true,
	"NZD": true, "SGD": true, "IEP": true, "BHD": true, "KWD": true, "OMR": true, "JOD": true, "GIP": true,
	"FKP": true, "JEP": true, "GGP": true, "IMP": true, "BSD": true, "BMD": true, "PAB": true, "KYD": true}

// warnDeckCurrency says when the rate deck cannot price a new account
// in its currency: the deck is in another, or does not say and other
// accounts hold another.
func warnDeckCurrency(cmd *cobra.Command, app *App, db *store.DB, a *tollguard.Account) {
	ctx := cmd.Context()
	cur, err := db.DeckCurrency(ctx)
	if err != nil {
		return
	}
	if cur != "" {
		if cur != a.Currency {
			fmt.Fprintf(app.Err, "warning: the rate deck is priced in %s, so the gate denies this account's calls to priced destinations (rate_ceiling) until a deck in %s is imported\n", cur, a.Currency)
		}
		return
	}
	if n, err := db.RateCount(ctx); err != nil || n == 0 {
		return
	}
	accts, err := db.Accounts(ctx)
	if err != nil {
		return
	}
	for _, o := range accts {
		if o.Currency != a.Currency {
			fmt.Fprintf(app.Err, "warning: the rate deck does not say its currency, and account %s holds %s: this account is charged the deck's figures in %s; import the deck with --currency\n", o.ID, o.Currency, a.Currency)
			return
		}
	}
}

func newAccountListCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List accounts with their balance and blocks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			as, err := db.Accounts(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				vs := make([]accountView, len(as))
				for i, a := range as {
					vs[i] = newAccountView(a)
				}
				return app.printJSON(vs)
			}
			w := app.table("ID", "NAME", "COUNTRY", "CURRENCY", "BALANCE", "CREDIT LIMIT", "WHITELIST", "INTL BLOCK")
			for _, a := range as {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, orDash(a.Name), a.Plan.Country, a.Currency,
					tollguard.FormatAmount(a.Balance, a.Scale), tollguard.FormatAmount(a.CreditLimit, a.Scale), yesNo(a.Whitelist), yesNo(a.IntlBlock))
			}
			return w.Flush()
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}

func newAccountShowCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show every setting of an account and its international block history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			a, err := db.Account(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// Who set the international block, and when: a detector's
			// respond action and an admin's `account block-intl` look
			// alike in the reason alone.
			blocks, err := db.Blocks(cmd.Context(), tollguard.BlockIntl, a.ID, zeroTime)
			if err != nil {
				return err
			}
			v := newAccountView(a)
			warnNoSpans(app, a)
			if asJSON {
				return app.printJSON(struct {
					accountView
					History []blockView `json:"intl_block_history"`
				}{v, newBlockViews(blocks)})
			}
			w := app.table()
			row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
			row("id", v.ID)
			row("name", orDash(v.Name))
			// An empty prefix is the country's own: show which that is.
			own, _ := tollguard.PlanFor(v.Country)
			prefix := func(set, country, none string) string {
				if set != "" {
					return set
				}
				if country == "" {
					return none
				}
				return country + ", the country's"
			}
			row("country", fmt.Sprintf("%s (national prefix %s; international prefix %s)", v.Country,
				prefix(v.NationalPrefix, own.NationalPrefix, "none"), prefix(v.IntlPrefix, own.IntlPrefix, "any of the country's")))
			row("internal numbers", fmt.Sprintf("up to %d digits (but short codes that cost money)", v.InternalMaxLen))
			row("currency", v.Currency)
			row("balance", v.Balance)
			row("credit limit", v.CreditLimit)
			row("per-call cap", v.CallCap+" (0 = none)")
			row("max call length", secsOrNone(v.MaxCallSecs))
			row("national ceiling", perMinute(v.NationalCeiling))
			row("international ceiling", perMinute(v.InternationalCeiling))
			row("strict whitelist", yesNo(v.Whitelist))
			row("international block", blockString(v.IntlBlock, v.IntlBlockReason+openBlockBy(blocks)))
			row("zone", v.Zone)
			row("business hours", hoursCell(v.Hours))
			row("holidays", orDash(strings.Join(v.Holidays, ", ")))
			row("denied after hours", orDash(strings.Join(v.AfterHours, ", "))) // empty after schedule set --deny none
			l := v.Limits
			row("attempts per extension", fmt.Sprintf("%s/min %s/hour %s/day", lim(l.ExtPerMinute), lim(l.ExtPerHour), lim(l.ExtPerDay)))
			row("attempts per account", fmt.Sprintf("%s/min %s/hour %s/day", lim(l.AcctPerMinute), lim(l.AcctPerHour), lim(l.AcctPerDay)))
			row("concurrent calls", fmt.Sprintf("%s per extension, %s per account", lim(l.ExtConcurrent), lim(l.AcctConcurrent)))
			row("registration alerts", v.AlertMode)
			row("extension quota", fmt.Sprintf("%s in all, %s created per day", lim(v.MaxExtensions), lim(v.MaxCreatedPerDay)))
			row("spend warning", fmt.Sprintf("threshold %s, or %s× last month", v.SpendThreshold, v.SpendFactor))
			row("created", fmtTime(a.CreatedAt))
			if err := w.Flush(); err != nil {
				return err
			}
			return printBlocks(app, "international block history", blocks)
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}

// openBlockBy is " (by WHO)" for the block in force, if the history has it.
func openBlockBy(bs []tollguard.Block) string {
	for _, b := range bs {
		if b.ClearedAt.IsZero() && b.SetBy != "" {
			return " (by " + b.SetBy + ")"
		}
	}
	return ""
}

// perMinute prints a ceiling as a rate; "none" is no rate ("none/min"
// read as a price).
func perMinute(ceiling string) string {
	if ceiling == "none" {
		return ceiling
	}
	return ceiling + "/min"
}

func newAccountSetCommand(app *App) *cobra.Command {
	var s accountSettings
	var name string
	cmd := &cobra.Command{
		Use:   "set ID [flags]",
		Short: "Change an account's settings; only the flags given change",
		Example: `  tollguard account set acme --credit-limit 50 --call-cap 5 --intl-ceiling 0.10
  tollguard account set acme --ext-per-minute 5 --acct-concurrent 10 --whitelist
  tollguard account set acme --intl-ceiling none --alert-mode agent`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if noLocalFlags(cmd) {
				return usagef("nothing to change: give at least one flag (see `tollguard account set --help`)")
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			a, err := db.UpdateAccount(cmd.Context(), args[0], func(a *tollguard.Account) error {
				if cmd.Flags().Changed("name") {
					a.Name = name
				}
				if err := s.apply(cmd.Flags(), a); err != nil {
					return err
				}
				return checkAccount(a)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "account %s updated\n", a.ID)
			if a.Whitelist {
				warnEmptyWhitelist(cmd, app, db, a.ID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name")
	textFlags(cmd, "name")
	s.flags(cmd.Flags())
	return cmd
}

// accountSettings are the flags add and set share. Values stay strings
// until the account's currency is known, so money parses exactly.
type accountSettings struct {
	nationalPrefix, intlPrefix, zone, creditLimit, callCap, natCeiling, intlCeiling, alertMode, spendThreshold, spendFactor string
	internalMaxLen, maxExt, maxPerDay                                                                                       int
	maxCallSecs                                                                                                             int64
	whitelist                                                                                                               bool
	limits                                                                                                                  tollguard.Limits
}

func (s *accountSettings) flags(f *pflag.FlagSet) {
	f.StringVar(&s.nationalPrefix, "national-prefix", "", "national (trunk) prefix, default the country's (0 in GB, 1 in NANP)")
	f.StringVar(&s.intlPrefix, "intl-prefix", "", "international prefix, default the country's (00, 011)")
	f.IntVar(&s.internalMaxLen, "internal-max-len", 0, "dialled numbers up to this many digits are internal (default 4), except short codes and national numbers that cost money or whose cost is unknown")
	f.StringVar(&s.zone, "zone", "", "IANA time zone for business hours (Europe/London)")
	f.StringVar(&s.creditLimit, "credit-limit", "", "how far below zero the balance may go (postpaid), e.g. 50.00")
	f.StringVar(&s.callCap, "call-cap", "", "most one call may cost, e.g. 5.00 (0 = no cap)")
	f.Int64Var(&s.maxCallSecs, "max-call-secs", 0, "longest call in seconds, at most 86400 (0 = no cap of its own; no paid call is allowed past a day)")
	f.StringVar(&s.natCeiling, "national-ceiling", "", "deny national calls dearer than this per minute, e.g. 0.20, or none")
	f.StringVar(&s.intlCeiling, "intl-ceiling", "", "deny international calls dearer than this per minute, e.g. 0.02, or none")
	f.BoolVar(&s.whitelist, "whitelist", false, "strict whitelist mode: only allow-listed destinations (--whitelist=false to leave it)")
	f.IntVar(&s.limits.ExtPerMinute, "ext-per-minute", 0, "call attempts per extension per minute (0 = unlimited)")
	f.IntVar(&s.limits.ExtPerHour, "ext-per-hour", 0, "call attempts per extension per hour")
	f.IntVar(&s.limits.ExtPerDay, "ext-per-day", 0, "call attempts per extension per day")
	f.IntVar(&s.limits.AcctPerMinute, "acct-per-minute", 0, "call attempts per account per minute")
	f.IntVar(&s.limits.AcctPerHour, "acct-per-hour", 0, "call attempts per account per hour")
	f.IntVar(&s.limits.AcctPerDay, "acct-per-day", 0, "call attempts per account per day")
	f.IntVar(&s.limits.ExtConcurrent, "ext-concurrent", 0, "concurrent calls per extension")
	f.IntVar(&s.limits.AcctConcurrent, "acct-concurrent", 0, "concurrent calls per account")
	f.StringVar(&s.alertMode, "alert-mode", "", "new-registration alerts: ip_or_agent, agent or none")
	f.IntVar(&s.maxExt, "max-extensions", 0, "most extensions the account may have (0 = unlimited)")
	f.IntVar(&s.maxPerDay, "max-created-per-day", 0, "most extensions created per day (0 = unlimited)")
	f.StringVar(&s.spendThreshold, "spend-threshold", "", "warn when a month's spend (UTC month) passes this amount (0 = off)")
	f.StringVar(&s.spendFactor, "spend-factor", "", "warn when a month's spend (UTC month) passes k × last month's, e.g. 1.2 (0 = off)")
}

// apply copies the flags that were given onto a.
func (s *accountSettings) apply(f *pflag.FlagSet, a *tollguard.Account) error {
	ch := f.Changed
	money := func(flag, v string, dst *tollguard.Amount) error {
		if !ch(flag) {
			return nil
		}
		amt, err := tollguard.ParseAmount(v, a.Scale)
		if err != nil {
			return tollguard.Errorf(tollguard.EINVALID, "--%s: %s", flag, tollguard.ErrorMessage(err))
		}
		if amt < 0 {
			return tollguard.Errorf(tollguard.EINVALID, "--%s %s: must not be negative", flag, v)
		}
		*dst = amt
		return nil
	}
	ceiling := func(flag, v string, dst *tollguard.Rate) error {
		if !ch(flag) {
			return nil
		}
		if strings.EqualFold(v, "none") {
			*dst = tollguard.NoCeiling
			return nil
		}
		r, err := tollguard.ParseRate(v)
		if err != nil {
			return tollguard.Errorf(tollguard.EINVALID, "--%s: %s (or none)", flag, tollguard.ErrorMessage(err))
		}
		*dst = r
		return nil
	}
	for _, err := range []error{
		money("credit-limit", s.creditLimit, &a.CreditLimit),
		money("call-cap", s.callCap, &a.CallCap),
		money("spend-threshold", s.spendThreshold, &a.SpendThreshold),
		ceiling("national-ceiling", s.natCeiling, &a.NationalCeiling),
		ceiling("intl-ceiling", s.intlCeiling, &a.InternationalCeiling),
	} {
		if err != nil {
			return err
		}
	}
	if ch("national-prefix") {
		a.Plan.NationalPrefix = s.nationalPrefix
	}
	if ch("intl-prefix") {
		a.Plan.IntlPrefix = s.intlPrefix
	}
	if ch("internal-max-len") {
		a.Plan.InternalMaxLen = s.internalMaxLen
	}
	if ch("zone") {
		z, err := zoneFlag(s.zone)
		if err != nil {
			return err
		}
		a.Zone = z
	}
	if ch("max-call-secs") {
		if s.maxCallSecs < 0 || s.maxCallSecs > tollguard.MaxCallSecsLimit {
			return tollguard.Errorf(tollguard.EINVALID, "--max-call-secs %d: want 0 (no cap of its own) to %d (a day, the limit for every call)", s.maxCallSecs, tollguard.MaxCallSecsLimit)
		}
		a.MaxCallSecs = s.maxCallSecs
	}
	if ch("whitelist") {
		a.Whitelist = s.whitelist
	}
	if ch("alert-mode") {
		a.AlertMode = s.alertMode
	}
	if ch("max-extensions") {
		a.MaxExtensions = s.maxExt
	}
	if ch("max-created-per-day") {
		a.MaxCreatedPerDay = s.maxPerDay
	}
	if ch("spend-factor") {
		p, err := tollguard.ParseAmount(s.spendFactor, 3)
		if err != nil || p < 0 || p > 1_000_000 {
			return tollguard.Errorf(tollguard.EINVALID, "--spend-factor %q: want a factor such as 1.2, with at most 3 decimals, at most 1000 (0 = off)", s.spendFactor)
		}
		a.SpendFactorPermil = int(p)
	}
	l := &a.Limits
	for _, x := range []struct {
		flag string
		src  int
		dst  *int
	}{
		{"ext-per-minute", s.limits.ExtPerMinute, &l.ExtPerMinute}, {"ext-per-hour", s.limits.ExtPerHour, &l.ExtPerHour},
		{"ext-per-day", s.limits.ExtPerDay, &l.ExtPerDay}, {"acct-per-minute", s.limits.AcctPerMinute, &l.AcctPerMinute},
		{"acct-per-hour", s.limits.AcctPerHour, &l.AcctPerHour}, {"acct-per-day", s.limits.AcctPerDay, &l.AcctPerDay},
		{"ext-concurrent", s.limits.ExtConcurrent, &l.ExtConcurrent}, {"acct-concurrent", s.limits.AcctConcurrent, &l.AcctConcurrent},
	} {
		if ch(x.flag) {
			if x.src < 0 {
				return tollguard.Errorf(tollguard.EINVALID, "--%s %d: must be 0 (unlimited) or more", x.flag, x.src)
			}
			*x.dst = x.src
		}
	}
	return nil
}

// zoneFlag is a --zone value trimmed; an empty one (an unset shell
// variable) is refused rather than stored as "" and shown as nothing.
func zoneFlag(s string) (string, error) {
	z := strings.TrimSpace(s)
	if z == "" {
		return "", tollguard.Errorf(tollguard.EINVALID, "--zone is empty: name the account's time zone, such as Europe/London, America/New_York or UTC")
	}
	return z, nil
}

// checkAccount validates an account as a whole before it is written.
func checkAccount(a *tollguard.Account) error {
	if err := a.Plan.Validate(); err != nil {
		return err
	}
	if _, err := tollguard.ParseHours(a.Zone, a.HoursSpec, a.Holidays); err != nil {
		return err
	}
	switch a.AlertMode {
	case tollguard.AlertModeIPOrAgent, tollguard.AlertModeAgent, tollguard.AlertModeNone:
	default:
		return tollguard.Errorf(tollguard.EINVALID, "alert mode %q: want ip_or_agent, agent or none", a.AlertMode)
	}
	for _, p := range []string{a.Plan.NationalPrefix, a.Plan.IntlPrefix} {
		if _, err := strconv.ParseUint(p, 10, 32); p != "" && err != nil {
			return tollguard.Errorf(tollguard.EINVALID, "prefix %q: digits only", p)
		}
	}
	if a.MaxCallSecs < 0 {
		// Not bounded here: an account stored before the one-day limit
		// must still take other changes (the gate applies the limit).
		return tollguard.Errorf(tollguard.EINVALID, "max call seconds must not be negative")
	}
	if a.MaxExtensions < 0 || a.MaxCreatedPerDay < 0 {
		return tollguard.Errorf(tollguard.EINVALID, "--max-extensions and --max-created-per-day must not be negative (0 = unlimited)")
	}
	return nil
}

// validID accepts the names Asterisk accepts for objects and accounts.
func validID(what, id string) error {
	if id == "" || len(id) > 64 {
		return tollguard.Errorf(tollguard.EINVALID, "%s id %q: 1 to 64 characters", what, id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return tollguard.Errorf(tollguard.EINVALID, "%s id %q: use letters, digits, '-', '_' and '.' only", what, id)
		}
	}
	return nil
}

func lim(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func secsOrNone(n int64) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("%ds", n)
}

func blockString(b bool, reason string) string {
	if !b {
		return "no"
	}
	// A detector's reason may quote a user agent or a dialled string.
	return "yes: " + cellEscaper.Replace(reason)
}

// warnEmptyWhitelist says when an account in strict whitelist mode has
// no allow rule, its own or a global one: every call but an emergency
// one is then denied (not_whitelisted).
func warnEmptyWhitelist(cmd *cobra.Command, app *App, db *store.DB, account string) {
	rs, err := db.Rules(cmd.Context(), account)
	if err != nil {
		return
	}
	for _, r := range rs {
		if r.Action == tollguard.RuleAllow {
			return
		}
	}
	fmt.Fprintf(app.Err, "tollguard: note: account %s is in strict whitelist mode with no allow rule: every outside call but emergency numbers is denied (not_whitelisted); add the destinations with `tollguard rule add allow PREFIX --account %s`\n", account, account)
}
