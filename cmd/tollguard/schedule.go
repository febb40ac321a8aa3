package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newScheduleCommand) }

func newScheduleCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Business hours: outside them, the account's chosen classes (default international, premium) are denied",
	}
	cmd.AddCommand(newScheduleSetCommand(app), newScheduleShowCommand(app))
	return cmd
}

func newScheduleSetCommand(app *App) *cobra.Command {
	var hours, zone string
	var holidays, deny []string
	cmd := &cobra.Command{
		Use:   "set ACCOUNT [--hours SPEC] [--zone ZONE] [--holiday DATE]... [--deny CLASS]...",
		Short: "Set an account's business hours, time zone, holidays and the classes denied outside hours",
		Example: `  tollguard schedule set acme --zone Europe/London --hours "mon-fri 08:00-18:00; sat 09:00-13:00"
  tollguard schedule set acme --holiday 12-25 --holiday 12-26 --holiday 2026-04-03
  tollguard schedule set acme --deny international --deny premium --deny mobile
  tollguard schedule set acme --deny none    # business hours deny nothing
  tollguard schedule set acme --hours ""      # always open`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if noLocalFlags(cmd) {
				return usagef("nothing to change: give --hours, --zone, --holiday or --deny")
			}
			// Blank as ParseHours reads it (any Unicode space): a CR left
			// from a CRLF file is as empty as a space.
			if f.Changed("hours") && tollguard.HoursNameNoSpans(hours) {
				// "$WEEK; $SAT" with both unset: read as no spans, it
				// opened the account to every class at night.
				return usagef("--hours %q names no opening times: give spans such as \"mon-fri 08:00-18:00\", or --hours \"\" for always open", hours)
			}
			if f.Changed("zone") {
				z, err := zoneFlag(zone)
				if err != nil {
					return err
				}
				zone = z
			}
			var classes []tollguard.Class
			none := false
			for _, d := range deny {
				for _, c := range strings.Split(d, ",") {
					cl := tollguard.Class(strings.TrimSpace(c))
					if strings.EqualFold(string(cl), "none") {
						none = true
						continue
					}
					if cl == "" {
						// An unset shell variable must not open the
						// account to international calls at night.
						return usagef("empty class in --deny %q: give the classes, or none to deny no class outside hours", d)
					}
					if cl == tollguard.ClassEmergency {
						return usagef("--deny emergency: emergency calls are never denied, outside hours or not; deny any of %s", classList())
					}
					if !knownClass(cl) {
						return usagef("--deny %q: want one of %s", c, classList())
					}
					if !slices.Contains(classes, cl) {
						classes = append(classes, cl)
					}
				}
			}
			if none && len(classes) > 0 {
				// Which was meant, no class or these? Ask rather than guess.
				return usagef("--deny none with classes (%s): give none alone to deny no class outside hours, or the classes alone", fmt.Sprint(classes))
			}
			var days []string
			noHolidays := false
			for _, h := range holidays {
				switch h = strings.TrimSpace(h); {
				case strings.EqualFold(h, "none"):
					noHolidays = true
				case h == "":
					// An unset shell variable must not drop every
					// holiday, opening the account on them.
					return usagef("empty --holiday: give YYYY-MM-DD or MM-DD dates, or none to clear the list")
				case !slices.Contains(days, h):
					days = append(days, h)
				}
			}
			if noHolidays && len(days) > 0 {
				return usagef("--holiday none with dates (%s): give none alone to clear the list, or the dates alone", strings.Join(days, ", "))
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			a, err := db.UpdateAccount(cmd.Context(), args[0], func(a *tollguard.Account) error {
				if f.Changed("hours") {
					a.HoursSpec = hours
				}
				if f.Changed("zone") {
					a.Zone = zone
				}
				if f.Changed("holiday") {
					a.Holidays = days
				}
				if f.Changed("deny") {
					a.AfterHours = classes
				}
				_, err := tollguard.ParseHours(a.Zone, a.HoursSpec, a.Holidays)
				return err
			})
			if err != nil {
				return err
			}
			deny := classNames(a.AfterHours)
			hoursText := fmt.Sprintf("%q", a.HoursSpec)
			if a.HoursSpec == "" {
				hoursText = "always open"
			}
			fmt.Fprintf(app.Out, "account %s: hours %s in %s; holidays %s; denied after hours: %s\n", a.ID, hoursText, a.Zone,
				orDash(strings.Join(a.Holidays, ", ")), orDash(strings.Join(deny, ", ")))
			return nil
		},
	}
	cmd.Flags().StringVar(&hours, "hours", "", `opening spans, e.g. "mon-fri 08:00-18:00; sat 09:00-13:00" ("" = always open)`)
	cmd.Flags().StringVar(&zone, "zone", "", "IANA time zone (Europe/London, America/New_York)")
	cmd.Flags().StringArrayVar(&holidays, "holiday", nil, "closed all day: YYYY-MM-DD once, or MM-DD every year (repeat; replaces the list; 'none' clears)")
	cmd.Flags().StringArrayVar(&deny, "deny", nil, "class denied outside hours (repeat; replaces the list; 'none' clears)")
	return cmd
}

func newScheduleShowCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ACCOUNT",
		Short: "Show an account's business hours and whether it is open now",
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
			h, err := tollguard.ParseHours(a.Zone, a.HoursSpec, a.Holidays)
			if err != nil {
				return err
			}
			open := h.Open(app.Now())
			deny := classNames(a.AfterHours)
			if asJSON {
				warnNoSpans(app, a)
				return app.printJSON(map[string]any{"account": a.ID, "zone": a.Zone, "hours": a.HoursSpec,
					"holidays": nonNil(a.Holidays), "denied_after_hours": deny, "open_now": open})
			}
			warnNoSpans(app, a)
			w := app.table()
			fmt.Fprintf(w, "zone\t%s\nhours\t%s\nholidays\t%s\ndenied after hours\t%s\nopen now\t%s\n", a.Zone,
				hoursCell(a.HoursSpec), orDash(strings.Join(a.Holidays, ", ")), orDash(strings.Join(deny, ", ")), yesNo(open))
			return w.Flush()
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}

// hoursCell is an account's hours as show prints them. Hours that name
// no span (stored by an older release) are not shown as a schedule.
func hoursCell(spec string) string {
	if tollguard.HoursNameNoSpans(spec) {
		return fmt.Sprintf("%q: no opening times, read as always open", spec)
	}
	return orDash(spec) + "  (empty = always open)"
}

// warnNoSpans says on stderr, with the command that mends them, that
// a's hours name no span and are read as always open.
func warnNoSpans(app *App, a *tollguard.Account) {
	if tollguard.HoursNameNoSpans(a.HoursSpec) {
		fmt.Fprintln(app.Err, safeText("warning: "+tollguard.NoSpansAdvice(a.ID, a.HoursSpec)))
	}
}

// classNames are classes as the CLI prints them.
func classNames(cs []tollguard.Class) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func knownClass(c tollguard.Class) bool {
	for _, k := range tollguard.Classes {
		if k == c {
			return true
		}
	}
	return false
}

// classList names the classes --deny takes: all but emergency.
func classList() string {
	var s []string
	for _, c := range tollguard.Classes {
		if c != tollguard.ClassEmergency {
			s = append(s, string(c))
		}
	}
	return strings.Join(s, ", ")
}
