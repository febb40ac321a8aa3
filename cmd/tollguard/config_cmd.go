package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newConfigCommand) }

func newConfigCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the config file, or print the effective config",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a config file and report every error with its line number",
		Long: `Check FILE (default --config or $TOLLGUARD_CONFIG) without starting
anything. Exit 0 when it is valid; 2 with each error as FILE:LINE: message.
A TOML syntax error comes as FILE:LINE:COLUMN: and says what was expected
there, without quoting the file's text: a secret written into the file
by mistake is not printed.

It also reads the secrets serve needs (TOLLGUARD_ARI_PASSWORD and the
others, or the *_file settings), so run it with serve's environment: the
unit runs it before every start with its EnvironmentFile.`,
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
			if err != nil {
				return err
			}
			cfg.ApplyEnv(os.Getenv)
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := cfg.checkSecrets(); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "%s: ok\n", path)
			return nil
		},
	}, newConfigPrintCommand(app))
	return cmd
}

// checkSecrets builds what serve builds from the secrets (the ARI
// client config, the notifiers), so that a password serve would find
// missing, in the environment or a file, fails the check too: under
// systemd the check is ExecStartPre, and passing it while serve exits 2
// leaves tollguard down.
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
