package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { extSubcommands = append(extSubcommands, newExtAddCommand) }

func newExtAddCommand(app *App) *cobra.Command {
	var account, callerID, desc, dialCtx string
	var cidrs []string
	var noAsterisk, asJSON bool
	cmd := &cobra.Command{
		Use:   "add EXT --account ACCOUNT [--no-asterisk]",
		Short: "Create an extension: its PJSIP auth, aor and endpoint in Asterisk (through ARI) and its record in tollguard",
		Long: `Create an extension. The account's quotas (max_extensions,
max_created_per_day) are checked before anything is written; only
extensions ext add created in Asterisk count against max_created_per_day
(not --no-asterisk records, nor ones an audit recorded or a restore put
back), all of them against max_extensions. A line created and removed
since (ext purge, ext rm) still counts for its 24 h: removing lines does
not free the daily quota. Then the
PJSIP auth (with a generated 24-character password), aor and endpoint
are created through ARI's dynamic configuration, in that order; if a step
fails, what was created is deleted again, unless the line was removed
(ext rm) while ext add ran: then nothing is deleted, as the name may be
another add's line by now, and the error says so. If an object cannot
be deleted, the line stays recorded, and the error names the commands
that remove it (ext purge --now, then ext rm). The password is printed once:
give it to the phone; tollguard does not store it. An endpoint whose
context (--context, or [audit.ext] context) is not in [audit]
gated_contexts is created with a warning: its calls may reach a trunk
without the gate.

Asterisk needs a writable sorcery wizard for PJSIP objects (see
contrib/sorcery.conf); without one it answers 403 and nothing is kept.

--no-asterisk only records an extension that already exists in Asterisk
(pjsip.conf), so that the gate and the audits know its account. Without
[ari] configured, that is all ext add can do, and it says so.`,
		Example: `  tollguard ext add 1009 --account acme --caller-id '"Reception" <1009>'
  tollguard ext add 1001 --account acme --no-asterisk`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validID("extension", args[0]); err != nil {
				return err
			}
			prefixes, err := app.parseCIDRs(cidrs)
			if err != nil {
				return err
			}
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			// Without ARI there is nothing to create objects with: record
			// the extension, and say so.
			noARI := env.Asterisk == nil && !noAsterisk
			got, err := env.AddExtension(cmd.Context(), tollguard.ExtensionSpec{Name: args[0], Account: account, CallerID: callerID,
				Description: desc, Context: dialCtx, CIDRs: prefixes, NoAsterisk: noAsterisk || noARI})
			if err != nil {
				return err
			}
			if got.Password != "" {
				// The coverage audit would say so tonight; the phone can
				// call past the gate from now.
				s := env.Settings.WithDefaults()
				ctx := dialCtx
				if ctx == "" {
					ctx = s.Endpoint.Context
				}
				if !slices.Contains(s.GatedContexts, ctx) {
					fmt.Fprintf(app.Err, "tollguard: warning: context %q is not a gated context (%s): calls from %s may reach a trunk without the gate; add tollguard's include to that context and list it in [audit] gated_contexts, or move the endpoint (ext rm, then ext add --context)\n",
						ctx, strings.Join(s.GatedContexts, ", "), got.Extension.Name)
				}
			}
			if asJSON {
				if noARI { // stdout keeps its JSON; the notice goes to stderr
					fmt.Fprintln(app.Err, "tollguard: note: "+noARINotice)
				}
				return app.printJSON(struct {
					extensionView
					Password string   `json:"password,omitempty"`
					Objects  []string `json:"asterisk_objects"`
				}{newExtensionView(got.Extension), got.Password, nonNil(got.Objects)})
			}
			fmt.Fprintf(app.Out, "extension %s added to account %s\n", got.Extension.Name, got.Extension.Account)
			if noARI {
				fmt.Fprintln(app.Out, noARINotice)
			}
			if got.Password != "" {
				fmt.Fprintf(app.Out, "created in Asterisk: %v\nSIP username: %s\nSIP password: %s\n(shown once: tollguard does not store it)\n",
					got.Objects, got.Extension.Name, got.Password)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "the account it calls for (required)")
	cmd.Flags().StringArrayVar(&cidrs, "cidr", nil, "allowed source network (repeat; v4 or v6)")
	cmd.Flags().StringVar(&callerID, "caller-id", "", "caller ID")
	cmd.Flags().StringVar(&desc, "description", "", "description")
	textFlags(cmd, "caller-id", "description")
	cmd.Flags().StringVar(&dialCtx, "context", "", "dialplan context of the endpoint (default [audit.ext] context)")
	cmd.Flags().BoolVar(&noAsterisk, "no-asterisk", false, "record the extension in tollguard only; create nothing in Asterisk")
	addJSON(cmd, &asJSON)
	cmd.MarkFlagRequired("account")
	return cmd
}

// noARINotice says what `ext add` did without ARI.
const noARINotice = "ARI is not configured ([ari]), so only tollguard's record was made: create the PJSIP objects in pjsip.conf"
