package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

func init() { register(newConfigCommand) }

func newConfigCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the config file, or print the effective config",
	}
	var asJSON bool
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a config file and report every error with its line number",
		Long: `Check FILE (default --config or $TOLLGUARD_CONFIG) without starting
anything. Exit 0 when it is valid; 2 with each error as FILE:LINE: message.
A TOML syntax error comes as FILE:LINE:COLUMN: and says what was expected
there, without quoting the file's text: a secret written into the file
by mistake is not printed.

It also reads the secrets serve needs (TOLLGUARD_ARI_PASSWORD and the
others, or the *_file settings), so run it with serve's environment (the
unit's EnvironmentFile), before restarting serve on an edited config:
serve refuses the same errors at start, exiting 2.

With [gate] allow_unknown on, it looks default_account up in the database
(--db, TOLLGUARD_DB or db; read-only, never created) and warns on stderr
when it is no account there: serve would deny every call from an unknown
extension. A warning, not an error: the check still exits 0, as serve
starts with it.

With --json it prints {"path", "ok", "errors", "warnings"} on stdout,
each error with its line (0 when it has none) and column, and still
exits 2 when there are errors.`,
		Args: cobra.MaximumNArgs(1),
		// The file under check must not be loaded by the root's pre-run.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			path := app.ConfigPath
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				path = os.Getenv("TOLLGUARD_CONFIG")
			}
			if path == "" {
				return usagef("no config file to check: give FILE, --config or TOLLGUARD_CONFIG")
			}
			cfg, err := LoadConfig(path)
			if err == nil {
				cfg.ApplyEnv(os.Getenv)
				err = cfg.Validate()
			}
			if err == nil {
				err = cfg.checkSecrets()
			}
			if err != nil {
				if asJSON {
					if jerr := app.printJSON(checkReport(path, err, "")); jerr != nil {
						return jerr
					}
				}
				return err
			}
			if app.DBPath != "" {
				cfg.DB = app.DBPath
			}
			var warn bytes.Buffer
			cfg.warnDefaultAccount(cmd.Context(), io.MultiWriter(app.Err, &warn))
			if asJSON {
				return app.printJSON(checkReport(path, nil, warn.String()))
			}
			fmt.Fprintf(app.Out, "%s: ok\n", path)
			return nil
		},
	}
	addJSON(check, &asJSON)
	cmd.AddCommand(check, newConfigPrintCommand(app))
	return cmd
}

// configCheckJSON is `config check --json`'s report.
type configCheckJSON struct {
	Path     string            `json:"path"`
	OK       bool              `json:"ok"`
	Errors   []configErrorJSON `json:"errors"`
	Warnings []string          `json:"warnings"`
}

type configErrorJSON struct {
	Path    string `json:"path"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

func checkReport(path string, err error, warnings string) configCheckJSON {
	r := configCheckJSON{Path: path, OK: err == nil, Errors: []configErrorJSON{}, Warnings: []string{}}
	var ic *invalidConfig
	switch {
	case errors.As(err, &ic):
		for _, e := range ic.errs {
			r.Errors = append(r.Errors, configErrorJSON{Path: e.Path, Line: e.Line, Col: e.Col, Message: e.Msg})
		}
	case err != nil:
		r.Errors = append(r.Errors, configErrorJSON{Path: path, Message: tollguard.ErrorMessage(err)})
	}
	for _, w := range strings.Split(strings.TrimSpace(warnings), "\n") {
		if w != "" {
			r.Warnings = append(r.Warnings, w)
		}
	}
	return r
}

// checkSecrets builds what serve builds from the secrets (the ARI
// client config, the notifiers), so that a password serve would find
// missing, in the environment or a file, fails the check too: a check
// that passes before a restart while serve exits 2 leaves tollguard down.
func (c *Config) checkSecrets() error {
	var msgs []string
	if c.ARI.Enabled {
		if _, err := c.ARI.ClientConfig(); err != nil {
			msgs = append(msgs, tollguard.ErrorMessage(err))
		}
	}
	if _, err := c.Alerts.Notifiers(slog.New(slog.DiscardHandler)); err != nil {
		msgs = append(msgs, tollguard.ErrorMessage(err))
	}
	if len(msgs) > 0 {
		return usagef("%s: %s", c.path, strings.Join(msgs, "; "))
	}
	return nil
}

// warnDefaultAccount warns when allow_unknown is on and default_account
// is not an account in the database, as serve logs at start. It reads
// the database read-only and never creates it. A warning, not an error:
// serve starts with it (the gate still serves the extensions it knows),
// so the check must not say otherwise.
func (c *Config) warnDefaultAccount(ctx context.Context, w io.Writer) {
	g := c.Gate
	if !g.AllowUnknown || g.DefaultAccount == "" {
		return
	}
	found, err := store.HasAccount(ctx, c.DB, g.DefaultAccount)
	where := c.DB
	var msg string
	switch {
	case found:
		return
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		msg = fmt.Sprintf("warning: could not check that [gate] default_account %q is an account in %s (run the check as tollguard's user, with its TOLLGUARD_DB): %v", g.DefaultAccount, c.DB, err)
	default:
		if err != nil {
			where += " (no database there yet; serve creates it empty)"
		}
		msg = fmt.Sprintf("warning: [gate] allow_unknown is on, but default_account %q is not an account in %s: serve will deny every call from an extension it does not know (and whose accountcode names no account) as unknown_extension; "+
			"add the account with `tollguard account add %s --country CC --currency CUR`, or set default_account to one that `tollguard account list` shows", g.DefaultAccount, where, g.DefaultAccount)
	}
	fmt.Fprintln(w, safeText(ConfigError{Path: c.displayPath(), Line: c.lineOf("gate", "default_account"), Msg: msg}.Error()))
}

func newConfigPrintCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print the effective config (defaults, file and environment), secrets masked",
		Long: `Print the effective config as a TOML file, or with --json as JSON with
the same keys and values (durations as strings such as "5m0s").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := *app.Config
			c.maskSecrets()
			var file bytes.Buffer
			if err := toml.NewEncoder(&file).Encode(c); err != nil {
				return tollguard.Errorf(tollguard.EINTERNAL, "print config: %v", err)
			}
			if !asJSON {
				_, err := app.Out.Write(file.Bytes())
				return err
			}
			// Through TOML, so JSON has the file's keys, not Go's field names.
			var tree map[string]any
			if _, err := toml.Decode(file.String(), &tree); err != nil {
				return tollguard.Errorf(tollguard.EINTERNAL, "print config as JSON: %v", err)
			}
			return app.printJSON(tree)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of TOML")
	return cmd
}
