package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newDetectorsCommand) }

func newDetectorsCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "detectors [ACCOUNT]",
		Short: "The channel detectors' thresholds, windows and actions: defaults, or what applies to an account",
		Long: `Show each channel detector's rule: its threshold, window and action
(alert, intl_block, block_extension). The defaults come from [detectors]
in the config; ` + "`detectors set`" + ` overrides them for one account, and the
running daemon picks overrides up within 5 minutes.

Detectors: burst_ext and burst_acct (call attempts in the window),
concurrent_ext and concurrent_acct (calls in progress; the window is the
quiet time between alerts), sweep (numbers dialled in sequence or under
one prefix; per extension and across an account's extensions), high_risk
(calls to high-risk or premium numbers, a denied redial once; national
premium only alerts), ungated (outbound calls that never passed the
gate), long_intl (international calls longer than the duration). A rule
that blocks needs a threshold of at least 2: one misdial never blocks
anything.

Forwarded and follow-me legs and originated calls (no source address)
are counted apart from the phones' own calls, against the same rule, and
the bursts, concurrency, sweeps and high-risk numbers they make only
alert: anyone who rings a forwarded number sets them off, and a block
would stop the phones' own calls.`,
		Example: `  tollguard detectors
  tollguard detectors acme --json
  tollguard detectors set callcentre burst_ext --threshold 60 --window 1m --action alert
  tollguard detectors clear callcentre burst_ext`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			defaults := app.Config.Detectors.Settings().Rules
			var overrides map[string]tollguard.DetectorRule
			account := ""
			if len(args) == 1 {
				account = args[0]
				if _, err := db.Account(cmd.Context(), account); err != nil {
					return err
				}
				all, err := db.DetectorOverrides(cmd.Context())
				if err != nil {
					return err
				}
				overrides = all[account]
			}
			var vs []detectorView
			for _, name := range tollguard.DetectorNames {
				r, src := defaults[name], "config"
				if o, ok := overrides[name]; ok {
					r, src = o, "account "+account
				}
				vs = append(vs, newDetectorView(name, r, src))
			}
			if asJSON {
				return app.printJSON(vs)
			}
			w := app.table("DETECTOR", "THRESHOLD", "WINDOW", "DURATION", "ACTION", "FROM")
			for _, v := range vs {
				thr := fmt.Sprint(v.Threshold)
				if v.Threshold == 0 {
					thr = "off"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Detector, thr, v.Window, orDash(v.Duration), v.Action, v.Source)
			}
			return w.Flush()
		},
	}
	addJSON(cmd, &asJSON)
	cmd.AddCommand(newDetectorsSetCommand(app), newDetectorsClearCommand(app))
	return cmd
}

func newDetectorsSetCommand(app *App) *cobra.Command {
	var threshold int
	var window, duration time.Duration
	var action string
	cmd := &cobra.Command{
		Use:   "set ACCOUNT DETECTOR",
		Short: "Override a detector's rule for one account (flags not given keep the default's values)",
		Example: `  tollguard detectors set callcentre burst_ext --threshold 60
  tollguard detectors set acme high_risk --threshold 2 --window 30m --action intl_block
  tollguard detectors set acme sweep --threshold 0   # off for this account`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			account, name := args[0], args[1]
			def, ok := app.Config.Detectors.Settings().Rules[name]
			if !ok {
				return unknownDetector(name)
			}
			if noLocalFlags(cmd) {
				return usagef("give at least one of --threshold, --window, --action, --duration")
			}
			if cmd.Flags().Changed("duration") && name != tollguard.DetectLongIntl {
				return usagef("--duration applies to %s only (the call length that counts); %s has none", tollguard.DetectLongIntl, name)
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			r := def
			if all, err := db.DetectorOverrides(cmd.Context()); err == nil {
				if o, ok := all[account][name]; ok {
					r = o
				}
			}
			if cmd.Flags().Changed("threshold") {
				r.Threshold = threshold
			}
			if cmd.Flags().Changed("window") {
				r.Window = window
			}
			if cmd.Flags().Changed("action") {
				r.Action = tollguard.Action(action)
			}
			if cmd.Flags().Changed("duration") {
				r.Duration = duration
			}
			if name != tollguard.DetectLongIntl {
				r.Duration = 0 // one stored before --duration was checked means nothing
			}
			if r.Window < 0 || r.Duration < 0 || r.Threshold < 0 {
				return usagef("--threshold, --window and --duration must not be negative")
			}
			if err := db.SetDetectorOverride(cmd.Context(), account, name, r); err != nil {
				return err
			}
			v := newDetectorView(name, r, "account "+account)
			fmt.Fprintf(app.Out, "account %s: %s threshold %d, window %s, action %s", account, name, v.Threshold, v.Window, v.Action)
			if v.Duration != "" {
				fmt.Fprintf(app.Out, ", duration %s", v.Duration)
			}
			fmt.Fprintln(app.Out, " (a running daemon applies it within 5 minutes)")
			return nil
		},
	}
	cmd.Flags().IntVar(&threshold, "threshold", 0, "events in the window that fire it (0 turns it off)")
	cmd.Flags().DurationVar(&window, "window", 0, "the window, e.g. 1m, 10m, 1h")
	cmd.Flags().StringVar(&action, "action", "", "alert, intl_block or block_extension")
	cmd.Flags().DurationVar(&duration, "duration", 0, "long_intl: the call length that counts, e.g. 1h")
	return cmd
}

func newDetectorsClearCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "clear ACCOUNT DETECTOR",
		Short: "Remove an account's override: the [detectors] default applies again",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// As set does: a typo in either name is an error, not "no override".
			if !slices.Contains(tollguard.DetectorNames, args[1]) {
				return unknownDetector(args[1])
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := db.Account(cmd.Context(), args[0]); err != nil {
				return err
			}
			was, err := db.ClearDetectorOverride(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if !was {
				fmt.Fprintf(app.Out, "account %s had no override for %s\n", args[0], args[1])
				return nil
			}
			fmt.Fprintf(app.Out, "account %s: %s back to the default\n", args[0], args[1])
			return nil
		},
	}
}

func unknownDetector(name string) error {
	return usagef("detector %q: want one of %s", name, strings.Join(tollguard.DetectorNames, ", "))
}

// detectorView is one detector's rule in JSON.
type detectorView struct {
	Detector  string `json:"detector"`
	Threshold int    `json:"threshold"`
	Window    string `json:"window"`
	Duration  string `json:"duration,omitempty"`
	Action    string `json:"action"`
	Source    string `json:"source"` // "config" or "account <id>"
}

func newDetectorView(name string, r tollguard.DetectorRule, src string) detectorView {
	v := detectorView{Detector: name, Threshold: r.Threshold, Window: r.Window.String(), Action: string(r.Action), Source: src}
	if name == tollguard.DetectLongIntl {
		v.Duration = r.Duration.String()
	}
	return v
}
