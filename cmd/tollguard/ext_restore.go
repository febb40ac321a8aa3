package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() {
	extSubcommands = append(extSubcommands, newExtRestoreCommand, newExtSnapshotsCommand)
}

func newExtRestoreCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore EXT",
		Short: "Bring back a purged extension's PJSIP objects from its snapshot, and lift its block",
		Long: `Put back the PJSIP auth, aor and endpoint that a purge deleted, from
the newest snapshot tollguard took before deleting them (and, after a
purge that was retried, the older ones not yet restored), then cancel
any pending purge and lift the block the purge set. A block set for
another reason (stolen credentials, a detector) stays. Objects that
exist again are left alone. An auth comes back with the credential it
had: its password, or its stored digests (md5_cred, password_digest)
and the algorithms it offered (an Asterisk without algorithm lists,
before 20.12, 21.7 and 22.2, gets the auth without them). Fields this
Asterisk refuses are listed
(they stay in the stored snapshot: see ` + "`tollguard ext snapshots EXT --json`" + `).
The stale audit counts the restore as a use: the line has a whole
stale period from it before it is judged unused again.
Snapshots hold the SIP password: serve deletes an extension's snapshots
180 days (or stale_days, if longer) after its last purge or restore, so
a purged extension can be restored for that long.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			rep, err := env.RestoreExtension(cmd.Context(), args[0], "admin:"+adminName())
			if err != nil {
				return err
			}
			if asJSON {
				return app.printJSON(rep)
			}
			fmt.Fprintf(app.Out, "extension %s restored from snapshot %d (taken %s): %s\n", args[0], rep.Snapshot.ID,
				fmtTime(rep.Snapshot.TakenAt), orDash(strings.Join(rep.Restored, ", ")))
			if len(rep.SnapshotIDs) > 1 {
				fmt.Fprintf(app.Out, "(with objects from the earlier snapshots %v of the same purge, retried after it failed partway)\n", rep.SnapshotIDs[1:])
			}
			if len(rep.Existing) > 0 {
				fmt.Fprintf(app.Out, "already there, left alone: %s\n", strings.Join(rep.Existing, ", "))
			}
			for obj, fields := range rep.Rejected {
				fmt.Fprintf(app.Out, "Asterisk refused these fields of %s: %s\n", obj, strings.Join(fields, "; "))
			}
			if rep.Unblocked {
				fmt.Fprintln(app.Out, "block lifted")
			}
			if rep.KeptBlock != "" {
				fmt.Fprintf(app.Out, "still blocked, not by the purge: %s; if its password was stolen, rotate it (tollguard ext rotate-password %s) before `tollguard unblock %s`\n",
					safeText(rep.KeptBlock), args[0], args[0])
			}
			return nil
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}

func newExtSnapshotsCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshots EXT",
		Short: "List the snapshots purges took of an extension's PJSIP objects (--json includes them, passwords too)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			snaps, err := db.Snapshots(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if len(snaps) == 0 {
				// A purged extension may be gone from the store, but keeps
				// its snapshots; a name with neither is a typo.
				if _, err := db.Extension(cmd.Context(), args[0]); tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
					return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found, and no snapshot of it was ever taken; list them with `tollguard ext list`", args[0])
				} else if err != nil {
					return err
				}
			}
			if asJSON {
				if snaps == nil {
					snaps = []*tollguard.ExtensionSnapshot{}
				}
				return app.printJSON(snaps)
			}
			t := app.table("ID", "TAKEN", "OBJECTS", "RESTORED", "REASON")
			for _, s := range snaps {
				var objs []string
				for _, o := range s.Objects {
					objs = append(objs, o.Type+"/"+o.ID)
				}
				fmt.Fprintf(t, "%d\t%s\t%s\t%s\t%s\n", s.ID, fmtTime(s.TakenAt), strings.Join(objs, ","), fmtTime(s.RestoredAt), s.Reason)
			}
			return t.Flush()
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}
