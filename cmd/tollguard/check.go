package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newCheckCommand) }

func newCheckCommand(app *App) *cobra.Command {
	var from, at, accountcode string
	var transferred bool
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check EXT NUMBER",
		Short: "Dry run: print the decision the gate would make for EXT dialling NUMBER, and each rule step",
		Long: `Evaluate a call exactly as the FastAGI gate would, against the live
database, and print each step of the decision order. Nothing is recorded:
rate-limit counts and credit are read, not changed. Give --from for a call
from a phone: without a source address the call is judged as a forwarded
or originated one, against the attempt tally of such calls. The rate-limit
step says how many calls each window has left after this one.

What the dry run cannot know, and the gate's answer can differ by:
- the store or the decision deadline ([agi] decision_timeout) failing the
  call: deny (error), cause 34, emergency numbers allowed;
- calls placed between the check and the call: they take attempts,
  concurrency and credit;
- --at moves the clock for business hours, holidays and the attempt
  windows only: credit and calls in progress are today's, and attempts
  recorded after --at are counted as if made before it.`,
		Example: `  tollguard check 1001 00442079460000
  tollguard check 1001 09098790000 --at "2026-11-28 23:30" --from 192.0.2.10`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Trimmed as the FastAGI server trims its arguments.
			ext, number := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			from = strings.TrimSpace(from)
			if number == "" {
				return usagef("NUMBER is empty: the gate answers a request without a number with deny (error), cause 34; give the digits as dialled")
			}
			if transferred && from == "" {
				// The include marks a transfer's source only when it has one.
				return usagef("--transferred needs --from: the transferred phone's address, which the include sends marked")
			}
			if from != "" {
				// A typo must not read as the access list denying the call.
				addr, err := netip.ParseAddr(from)
				if err != nil {
					return usagef("--from %q: not an IP address; give the caller's address, such as 192.0.2.7 or 2001:db8::7, without a port or /prefix", from)
				}
				// As the FastAGI server reads Asterisk's: a zone kept
				// (fe80::1%eth0) matched no access list, and the gate
				// drops it.
				from = tollguard.SourceAddress(addr)
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			p := app.Policy(db)
			if at != "" {
				t, err := parseAt(at)
				if err != nil {
					return err
				}
				p.Now = func() time.Time { return t }
			}
			d, err := p.Explain(cmd.Context(), tollguard.Call{Extension: ext, Dialled: number, Account: accountcode, Remote: from, Transferred: transferred})
			if err != nil {
				return err
			}
			if asJSON {
				return app.printJSON(decisionView(d))
			}
			printDecision(app.Out, d)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the caller's source IP, for the IP access list and the attempt tally (without it: a forwarded or originated call)")
	cmd.Flags().BoolVar(&transferred, "transferred", false, "judge it as a transfer by another phone than the extension's own (the include's xfer/ source): --from is the transferred phone's address")
	cmd.Flags().StringVar(&accountcode, "accountcode", "", "the channel's account code (CHANNEL(accountcode)): with [gate] allow_unknown, an extension tollguard does not know is charged to that account (a known extension's own account wins)")
	cmd.Flags().StringVar(&at, "at", "", "evaluate at this time (UTC, YYYY-MM-DD HH:MM or RFC 3339) instead of now")
	addJSON(cmd, &asJSON)
	return cmd
}

func parseAt(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--at %q: want YYYY-MM-DD HH:MM (UTC) or RFC 3339", s)
}

func decisionView(d tollguard.Decision) map[string]any {
	v := map[string]any{
		"verdict": d.Verdict, "reason": d.Reason, "account": d.Account,
		"dialled": d.Number.Dialled, "e164": d.Number.E164, "class": d.Number.Class, "region": d.Number.Region,
		"international": d.Number.International, "rate_per_min": d.Rate.String(), "billing": d.Billing.Steps(), "connection_fee": d.Billing.Connect.String(), "steps": d.Steps,
	}
	if d.Verdict == tollguard.Deny {
		v["cause"] = d.Cause
	} else {
		v["reserve"] = tollguard.FormatAmount(d.Reserve, d.Scale)
		if d.MaxSec >= 0 {
			v["maxsec"] = d.MaxSec
		} else {
			v["maxsec"] = nil
		}
	}
	return v
}

func printDecision(w io.Writer, d tollguard.Decision) {
	n := d.Number
	fmt.Fprintf(w, "destination: %s -> %s (%s", oneLine(n.Dialled), orDash(n.E164), n.Class)
	if n.Region != "" {
		fmt.Fprintf(w, ", %s", n.Region)
	}
	if n.International {
		fmt.Fprint(w, ", international")
	}
	fmt.Fprintln(w, ")")
	for _, s := range d.Steps {
		fmt.Fprintf(w, "  %d. %-12s %-5s %s\n", s.Number(), s.Rule, s.Result, oneLine(s.Detail))
	}
	switch d.Verdict {
	case tollguard.Allow:
		limit := "no limit"
		if d.MaxSec >= 0 {
			limit = fmt.Sprintf("MAXSEC %d", d.MaxSec)
		}
		fmt.Fprintf(w, "verdict: allow (%s), %s, reserving %s\n", d.Reason, limit, tollguard.FormatAmount(d.Reserve, d.Scale))
	default:
		fmt.Fprintf(w, "verdict: deny (%s), cause %d\n", d.Reason, d.Cause)
	}
}
