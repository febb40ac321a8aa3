package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { extSubcommands = append(extSubcommands, newExtPurgeCommand) }

func newExtPurgeCommand(app *App) *cobra.Command {
	var reason string
	var now, dryRun bool
	cmd := &cobra.Command{
		Use:   "purge EXT [--now] [--dry-run]",
		Short: "Block an extension now and delete its PJSIP objects after the grace period (or --now), keeping a snapshot",
		Long: `Purge an extension the safe way: it is blocked at once and its PJSIP
endpoint, auth and aor are deleted when purge_grace_days (7) have passed,
by the next stale or tests audit run with --apply: ` + "`tollguard audit stale --apply`" + `,
or serve's schedule once [audit] enabled = true lists "stale" in [audit]
apply (audits only report by default; the command says which applies).
Unblocking it during the grace period cancels the purge. --now deletes at once. Either way a
full JSON snapshot is stored first: ` + "`tollguard ext restore EXT`" + ` brings
the objects back. With ARI, an extension of which Asterisk has no
endpoint, auth or aor is refused before anything is blocked: there is
nothing to purge, and ` + "`tollguard ext rm EXT`" + ` removes tollguard's record.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			if now && env.Asterisk == nil {
				// Said before anything is blocked: --now deletes through ARI.
				return tollguard.Errorf(tollguard.EUNAVAILABLE, "ARI is not configured, so tollguard cannot delete PJSIP objects; configure [ari], or purge without --now; nothing was done")
			}
			if dryRun {
				// Checked as the purge would: a name that is neither in the
				// store nor an endpoint fails here too.
				blocked, err := env.CheckPurge(cmd.Context(), name)
				if err != nil {
					return err
				}
				when := map[bool]string{true: "now", false: fmt.Sprintf("after %d days", app.Config.Audit.PurgeGraceDays)}[now]
				if blocked {
					fmt.Fprintf(app.Out, "would block %s and delete its PJSIP objects %s, keeping a snapshot (dry run: nothing done)\n", name, when)
				} else {
					fmt.Fprintf(app.Out, "would delete the PJSIP objects of %s %s, keeping a snapshot; not block it: it is not in tollguard's store and its endpoint names no account (dry run: nothing done)\n", name, when)
				}
				return nil
			}
			schedule := env.SchedulePurge
			if now {
				schedule = env.SchedulePurgeNow
			}
			p, blocked, err := schedule(cmd.Context(), name, "cli", reason)
			if err != nil {
				return err
			}
			if !blocked {
				fmt.Fprintf(app.Out, "extension %s is not in tollguard's store and its endpoint names no account, so it is not blocked\n", name)
			}
			if !now {
				fmt.Fprintf(app.Out, "extension %s: its PJSIP objects will be deleted after %s (`tollguard unblock %s` cancels)\n", name, fmtTime(p.DueAt), name)
				fmt.Fprintf(app.Out, "note: %s\n", purgeRunner(app.Config, env.Asterisk != nil, fmtTime(p.DueAt)))
				return nil
			}
			snap, err := env.PurgeExtension(cmd.Context(), name, reason)
			if err != nil {
				// Not left pending behind a failed --now: the admin runs it
				// again, or unblocks.
				if ferr := env.FinishPurge(cmd.Context(), name, "failed", app.Now()); ferr != nil {
					app.Logger.Error("closing the failed purge", tollguard.LogExtension, name, tollguard.LogError, ferr)
				}
				then := "run the purge again"
				if blocked {
					then = "the extension stays blocked: run the purge again, or unblock it"
				}
				return tollguard.Errorf(tollguard.ErrorCode(err), "purge %s failed: %s. Nothing stays scheduled; %s (`tollguard ext restore %s` brings back what was deleted, if anything)",
					name, tollguard.ErrorMessage(err), then, name)
			}
			if err := env.FinishPurge(cmd.Context(), name, "purged", app.Now()); err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "extension %s: its %d PJSIP objects deleted; snapshot %d kept: `tollguard ext restore %s` brings them back\n",
				name, len(snap.Objects), snap.ID, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "purged by an admin", "why (kept with the block and the snapshot)")
	textFlags(cmd, "reason")
	cmd.Flags().BoolVar(&now, "now", false, "delete the PJSIP objects now instead of after the grace period")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would happen and do nothing")
	return cmd
}

// purgeRunner says what will delete a scheduled purge's objects: the
// stale or tests audit with --apply, which by default nothing runs.
func purgeRunner(cfg *Config, ari bool, due string) string {
	var by, del string
	a := cfg.Audit
	var jobs []string
	for _, j := range []string{"stale", "tests"} {
		if spec := a.Schedules[j]; !scheduleOff(spec) && a.applies(j) {
			jobs = append(jobs, j)
		}
	}
	switch {
	case !a.Enabled || len(jobs) == 0:
		s := fmt.Sprintf("nothing in this config deletes them by itself: after %s run `tollguard audit stale --apply`, "+
			"or have serve do it ([audit] enabled = true, with \"stale\" in [audit] apply)", due)
		if !cfg.ARI.Enabled {
			// The audit deletes through ARI: without it, it only reports.
			s += "; either needs [ari] enabled, with its password: without ARI nothing can"
		}
		return s
	case len(jobs) == 1:
		by, del = "the daemon's "+jobs[0]+" audit ("+a.Schedules[jobs[0]]+")", " deletes them"
	default:
		by, del = "the daemon's stale and tests audits", " delete them"
	}
	if !cfg.ARI.Enabled {
		return by + del + " once [ari] is enabled, with its password; without ARI nothing can"
	}
	if !ari {
		return by + del + " (this command has no ARI password: the daemon's environment has it)"
	}
	return by + del
}
