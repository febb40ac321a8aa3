// Command tollguard is the toll-fraud guard for Asterisk: the daemon
// (`tollguard serve`) and the admin commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// commands holds every subcommand's constructor. Each subcommand's file
// registers itself in init, so adding one touches one file.
var commands []func(*App) *cobra.Command

func register(f func(*App) *cobra.Command) { commands = append(commands, f) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes: 0 ok, 1 failure, 2 bad input (usage, invalid values,
// unknown names), as admins' scripts expect.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors in the command line itself.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// negativeNumber is an argument such as -3.50 or -3,50.
var negativeNumber = regexp.MustCompile(`^-[0-9]+([.,][0-9]+)?$`)

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runApp(ctx, NewApp(stdin, &termSafe{w: stdout}, stderr), args)
}

// runApp runs the command line args on app (tests pin its clock) and
// returns the exit code.
func runApp(ctx context.Context, app *App, args []string) int {
	stderr := app.Err
	defer app.Close()
	root := newRootCommand(app)
	root.SetArgs(args)
	root.SetOut(app.Out) // help and version, as every command's output
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	msg := tollguard.ErrorMessage(err)
	if isCobraUsage(err) && !strings.Contains(msg, "--help") && cmd != nil {
		// "accepts 1 arg(s), received 0" says nothing of which.
		msg += fmt.Sprintf(" (see `%s --help`)", cmd.CommandPath())
	}
	if isJournalStream(stderr, os.Getenv("JOURNAL_STREAM")) {
		// Why serve stopped (a config error, a lost database) is an
		// error to journalctl -p too, not the info an unprefixed line is.
		stderr = &prefixWriter{out: &lockedWriter{w: stderr}, prefix: sdErr}
	}
	fmt.Fprintf(stderr, "tollguard: %s\n", safeText(msg))
	return exitCode(err)
}

func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	switch tollguard.ErrorCode(err) {
	case tollguard.EINVALID, tollguard.ENOTFOUND, tollguard.ECONFLICT, tollguard.EQUOTA:
		return exitUsage
	}
	return exitFailure
}

// isCobraUsage recognises cobra's own argument and flag errors, which it
// returns as plain errors. (Its flag errors read `invalid argument "x"
// for ...`; an OS error's bare "invalid argument" is no usage error.)
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least",
		"requires at most", `invalid argument "`, "flag needs an argument", "required flag", "bad flag syntax"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func newRootCommand(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "tollguard",
		Short: "Toll-fraud guard for Asterisk: a FastAGI call gate, an ARI watcher and scheduled audits",
		Long: `tollguard decides every outbound call Asterisk places (FastAGI), watches
registrations and channels for attacks (ARI), and audits extensions,
voicemail PINs and SIP passwords on a schedule.

The database is TOLLGUARD_DB (default ./tollguard.db); the config file is
--config or TOLLGUARD_CONFIG (optional).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTextFlags(cmd); err != nil {
				return err
			}
			if isGroup(cmd) {
				return nil // help or an unknown verb: no config needed
			}
			return app.Init()
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// "-3.50" reads as the flags -3, -., -5 and -0.
		if _, tok, ok := strings.Cut(err.Error(), "unknown shorthand flag: "); ok {
			if i := strings.LastIndex(tok, " in -"); i >= 0 && negativeNumber.MatchString(tok[i+4:]) {
				return usagef("%s looks like a negative number, which the command line reads as flags: put -- before it, after any flags (see `%s --help`)",
					tok[i+4:], c.CommandPath())
			}
		}
		if m := badFlagValue.FindStringSubmatch(err.Error()); m != nil {
			// pflag names Go's parser ("strconv.ParseInt: parsing ...").
			if want := flagWant(m[2], m[3]); want != "" {
				return usagef("%s %q: %s (see `%s --help`)", m[2], m[1], want, c.CommandPath())
			}
		}
		return usagef("%v (see `%s --help`)", err, c.CommandPath())
	})
	root.PersistentFlags().StringVar(&app.ConfigPath, "config", "", "TOML config file (default $TOLLGUARD_CONFIG)")
	root.PersistentFlags().StringVar(&app.DBPath, "db", "", "SQLite database (default $TOLLGUARD_DB, else the config's db, else ./tollguard.db)")
	for _, f := range commands {
		root.AddCommand(f(app))
	}
	for _, c := range root.Commands() {
		groupVerbs(c)
	}
	return root
}

// isGroup reports whether cmd only holds verbs (`tollguard ext`).
func isGroup(cmd *cobra.Command) bool {
	return cmd.Annotations["group"] == "true"
}

// groupVerbs makes each command that only holds verbs refuse an unknown
// one: cobra printed the group's help and exited 0, so a mistyped
// `tollguard config validate && systemctl restart tollguard` went ahead.
func groupVerbs(cmd *cobra.Command) {
	if !cmd.HasSubCommands() {
		return
	}
	for _, c := range cmd.Commands() {
		groupVerbs(c)
	}
	if cmd.Runnable() {
		return
	}
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations["group"] = "true"
	cmd.Args = cobra.ArbitraryArgs
	// Its help shows the verbs only, not a runnable "tollguard ext [flags]".
	// Its verbs inherit the template, and keep their usage lines.
	cmd.SetUsageTemplate(strings.Replace(cmd.UsageTemplate(), "{{if .Runnable}}\n  {{.UseLine}}{{end}}",
		`{{if and .Runnable (ne (index .Annotations "group") "true")}}`+"\n  {{.UseLine}}{{end}}", 1))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 || args[0] == "help" {
			return cmd.Help()
		}
		var verbs []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				verbs = append(verbs, c.Name())
			}
		}
		return usagef("unknown command %q for %q; its commands: %s (see `%s --help`)", args[0], cmd.CommandPath(), strings.Join(verbs, ", "), cmd.CommandPath())
	}
}

// badFlagValue matches pflag's error for a value its type cannot parse:
// the value, the flag ("--limit", or "-q, --quiet") and the parser's error.
var badFlagValue = regexp.MustCompile(`^invalid argument "(.*)" for "(?:-[a-zA-Z], )?(--[a-z0-9-]+)" flag: (.*)$`)

// flagWant says what a flag of the type behind the parser error wants,
// or "" when the error is none of Go's parsers'.
func flagWant(flag, perr string) string {
	switch {
	case strings.Contains(perr, "strconv.ParseInt") && strings.Contains(perr, "out of range"):
		return "too large (or too small) for a whole number"
	case strings.Contains(perr, "strconv.ParseInt"), strings.Contains(perr, "strconv.ParseUint"):
		return "want a whole number, without decimals or units"
	case strings.Contains(perr, "strconv.ParseBool"):
		return fmt.Sprintf("want true or false (%s alone is true; %s=false)", flag, flag)
	case strings.HasPrefix(perr, "time: "):
		return "want a duration with its unit, such as 30s, 10m or 1h"
	}
	return ""
}
