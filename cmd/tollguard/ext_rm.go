package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { extSubcommands = append(extSubcommands, newExtRmCommand) }

func newExtRmCommand(app *App) *cobra.Command {
	var force, dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "rm EXT [--force] [--dry-run]",
		Short: "Remove tollguard's record of an extension Asterisk no longer has",
		Long: `Remove tollguard's record of an extension (its account, allowed
networks and block) once Asterisk no longer has the line. Its calls stay,
as history; a call still in progress settles as usual. A pending purge of
it is closed.

With ARI configured, the command refuses while Asterisk still has a PJSIP
endpoint, auth or aor of that name (` + "`tollguard ext purge EXT`" + ` removes
those, keeping a snapshot), or an endpoint of another technology (IAX2:
remove it from iax.conf first; ARI lists IAX2 peers, not type=user-only
entries, so check iax.conf yourself). Without ARI, tollguard cannot check, and a
blocked extension needs --force: its block goes with the record, so a
line still in Asterisk could call again if [gate] allow_unknown is on.

Only the record checked is removed: if the extension is removed and
recorded again while the command checks Asterisk (another admin's
ext rm and ext add), nothing is removed, the command says so, and
exits 2.`,
		Example: `  tollguard ext rm 1005`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			got, err := env.RemoveExtension(cmd.Context(), args[0], tollguard.RemoveOptions{Force: force, DryRun: dryRun})
			if err != nil {
				return err
			}
			if !got.AsteriskChecked {
				fmt.Fprintf(app.Err, "tollguard: note: ARI is not configured, so Asterisk was not checked: if it still has %s, remove the line from pjsip.conf\n", args[0])
			}
			if asJSON {
				return app.printJSON(struct {
					extensionView
					AsteriskChecked bool `json:"asterisk_checked"`
					PurgeClosed     bool `json:"pending_purge_closed"`
					DryRun          bool `json:"dry_run"`
				}{newExtensionView(got.Extension), got.AsteriskChecked, got.PurgeClosed, dryRun})
			}
			also := ""
			if got.PurgeClosed {
				also = "; its pending purge is closed"
			}
			if dryRun {
				fmt.Fprintf(app.Out, "would remove extension %s from tollguard's store (account %s)%s (dry run: nothing done)\n", args[0], got.Extension.Account, also)
				return nil
			}
			fmt.Fprintf(app.Out, "extension %s removed from tollguard's store (account %s)%s\n", args[0], got.Extension.Account, also)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "without ARI, remove a blocked extension too (its block goes with it)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check, say what would happen and do nothing")
	addJSON(cmd, &asJSON)
	return cmd
}
