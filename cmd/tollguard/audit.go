package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newAuditCommand) }

const auditLong = `Run an audit now, with the same code the daemon runs on schedule
([audit] schedules). Report-only unless --apply. Every finding of warning
or above raises an alert; every run is stored for 180 days, and each job's latest 20 however old (see ` + "`tollguard audit runs`" + `).
A finding found again unchanged (same severity and message) is counted on
its alert, open or acknowledged, without a notice: it is sent again when
it changes, a week after its last notice (or its acknowledgement), or at
once when the previous successful run of its audit did not find it.

  stale      extensions with no registration and no call for stale_days
             (60); for ones tollguard never saw, Asterisk's live state is
             read first. --apply blocks them and, after purge_grace_days
             (7), deletes their PJSIP objects keeping a JSON snapshot
             (` + "`tollguard ext restore EXT`" + ` brings them back).
  tests      extensions whose name, caller ID or description matches
             test_patterns (test or demo starting a word, temp as a word,
             after any non-letter: 1001_test; the name 9999), also
             with look-alikes folded (Démo, a Cyrillic е in tеst).
             --apply as for stale, once a line is older than the grace.
  pins       weak voicemail PINs in voicemail.conf (following #include),
             users.conf (hasvoicemail = yes: vmsecret) and a realtime
             table (SQLite, or ODBC when built with TAGS=odbc): common,
             equal to the mailbox or its reverse, one repeated digit, a
             run, or shorter than min_length (6). --apply writes random PINs (atomically, with a
             backup), reloads app_voicemail and can mail the owners.
  passwords  weak SIP passwords of every PJSIP auth the endpoints use, by
             zxcvbn (min_score 3, also with the line's own number and
             names taken out: 1001pass1001) and rules (username,
             extension, default list, shorter than 12); stored digests
             of such passwords (md5_cred; password_digest's MD5, SHA-256,
             SHA-512-256), saying which credential Asterisk checks for
             each algorithm in supported_algorithms_uas; a stored digest
             in upper-case hex, which no phone given the password can
             match; one password on several auths. --apply rotates the
             weak ones, except on an auth with a stored digest.
  quotas     endpoints created outside tollguard, accounts over their
             max_extensions or max_created_per_day, and bursts of new
             extensions. --apply blocks the newest beyond each quota.
  spend      accounts whose spend this month (UTC) crossed their threshold
             or k × last month (1.2×); one alert per crossing. For two
             days into a month, last month too (calls settled late).
             Report only.
  coverage   an anonymous endpoint, endpoints without inbound auth that
             Asterisk identifies by username or auth_username (anyone who
             sends their name; a warning where acl or contact_acl limits
             it),
             endpoints in contexts without the gate, gated endpoints that
             accept SIP transfers, endpoints that follow a far end's
             redirect (redirect_method uri_core or uri_pjsip), the
             dialplan's TOLLGUARD_EMERGENCY letting other numbers past the
             gate or leaving out an emergency number, voicemail dialout
             and callback contexts without the gate ([audit.pins]
             sources), fail2ban missing or without an asterisk jail.
             Report only.
  all        every audit above, in that order.

When Asterisk refuses a change (403: no writable sorcery wizard), the run
reports that object, says what to add to sorcery.conf (or to change
in pjsip.conf, where objects stay read-only), and goes on with the
others. A run whose actions did not all succeed exits 1 (with --apply, or
a report-only pins run retrying a voicemail reload it still owes).`

func newAuditCommand(app *App) *cobra.Command {
	var apply, asJSON bool
	names := append(auditJobNamesNoSelftest(), "all")
	cmd := &cobra.Command{
		Use:       "audit " + strings.Join(names, "|") + " [--apply] [--json]",
		Short:     "Run an audit now: stale and test extensions, weak PINs and passwords, quotas, spend, gate coverage",
		Long:      auditLong,
		Example:   "  tollguard audit stale\n  tollguard audit pins --apply\n  tollguard audit all --json",
		Args:      cobra.ExactArgs(1),
		ValidArgs: names,
		RunE: func(cmd *cobra.Command, args []string) error {
			var jobs []tollguard.AuditJob
			if args[0] == "all" {
				jobs = tollguard.AuditJobs()
			} else {
				j, err := tollguard.AuditJobNamed(args[0])
				if err != nil {
					return usagef("%s (or all)", tollguard.ErrorMessage(err))
				}
				jobs = []tollguard.AuditJob{j}
			}
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			// A run abandoned at its deadline goes on in this process only
			// until the command exits: say so rather than let its stored
			// error promise a late run.
			env.Abandoned = &tollguard.AbandonedAudits{}
			var runs []*tollguard.AuditRun
			var errs []error
			for _, j := range jobs {
				run, err := tollguard.RunAudit(cmd.Context(), env, j, apply, "cli", progressTo(app.Err, j.Name()))
				runs = append(runs, run)
				if err != nil {
					errs = append(errs, fmt.Errorf("audit %s: %s", j.Name(), tollguard.ErrorMessage(err)))
				} else if n := failedActions(run); n > 0 {
					// A script or cron job must notice that, say, the PINs
					// were rewritten but voicemail not reloaded.
					errs = append(errs, fmt.Errorf("audit %s: %d of its %d actions failed (marked FAILED, with what to do)", j.Name(), n, len(run.Actions)))
				}
				if !asJSON {
					printAuditRun(app.Out, run, env.Asterisk != nil)
				}
			}
			for _, r := range env.Abandoned.Running() {
				errs = append(errs, fmt.Errorf("audit %s: still running, abandoned at its deadline; this command exits now and ends it, so what it changes from now on is not stored. Find what hangs (a hung file system or database driver), then run it again; in serve, an abandoned audit is left to finish and its late run stored", r.Job))
			}
			if asJSON {
				if len(runs) == 1 {
					if err := app.printJSON(runs[0]); err != nil {
						return err
					}
				} else if err := app.printJSON(runs); err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "fix what the audit allows (block, purge after the grace period, rotate, rewrite PINs)")
	addJSON(cmd, &asJSON)
	cmd.AddCommand(newAuditRunsCommand(app))
	return cmd
}

// failedActions counts a run's actions that failed.
func failedActions(run *tollguard.AuditRun) int {
	n := 0
	for _, a := range run.Actions {
		if a.Err != "" {
			n++
		}
	}
	return n
}

func auditJobNamesNoSelftest() []string {
	var out []string
	for _, j := range tollguard.AuditJobs() {
		out = append(out, j.Name())
	}
	return out
}

// progressTo prints progress of long runs (50 items or more) to w, about
// every tenth of the way.
func progressTo(w io.Writer, job string) tollguard.AuditProgress {
	next := 0
	return func(done, total int, item string) {
		if total < 50 || done < next && done != total {
			return
		}
		next = done + (total+9)/10
		fmt.Fprintf(w, "%s: %d/%d %s\n", job, done, total, item)
	}
}

// printAuditRun prints a run for an admin: findings by severity, then
// actions, then new secrets (shown once, never stored). Messages and
// errors carry endpoint names, caller IDs and fail2ban's output, so
// their tabs and line breaks are escaped (oneLine): one line per item.
func printAuditRun(w io.Writer, run *tollguard.AuditRun, ari bool) {
	mode := "report-only"
	if run.Apply {
		mode = "applied"
	}
	fmt.Fprintf(w, "%s: %d findings, %d actions (%s)\n", run.Job, len(run.Findings), len(run.Actions), mode)
	fs := append([]tollguard.AuditFinding(nil), run.Findings...)
	rank := map[tollguard.Severity]int{tollguard.SeverityCritical: 0, tollguard.SeverityWarning: 1, tollguard.SeverityInfo: 2}
	sort.SliceStable(fs, func(i, j int) bool { return rank[fs[i].Severity] < rank[fs[j].Severity] })
	for _, f := range fs {
		fmt.Fprintf(w, "  %-8s %-20s %-22s %s\n", f.Severity, f.Check, oneLine(f.Subject), oneLine(f.Message))
	}
	var secrets []tollguard.AuditAction
	for _, a := range run.Actions {
		status := "done"
		if a.Err != "" {
			status = "FAILED: " + oneLine(a.Err)
		}
		fmt.Fprintf(w, "  action %-16s %-22s %s (%s)\n", a.Kind, oneLine(a.Subject), oneLine(a.Message), status)
		if a.Secret != "" {
			secrets = append(secrets, a)
		}
	}
	if len(secrets) > 0 {
		fmt.Fprintln(w, "  new secrets (shown once here, stored nowhere but Asterisk or voicemail):")
		for _, a := range secrets {
			fmt.Fprintf(w, "    %-22s %s\n", oneLine(a.Subject), a.Secret)
		}
	}
	switch {
	case run.Apply || len(run.Findings) == 0:
	case !ari && needsARI[run.Job]:
		// Suggesting --apply would only repeat this report.
		fmt.Fprintf(w, "  `tollguard audit %s --apply` acts only with [ari] enabled; without it, it reports the same\n", run.Job)
	case run.Fixable():
		fmt.Fprintf(w, "  run `tollguard audit %s --apply` to act on what this audit may fix\n", run.Job)
	}
	if run.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", oneLine(run.Error))
	}
}

// needsARI are the jobs whose --apply acts through ARI: without it they
// only report.
var needsARI = map[string]bool{"stale": true, "tests": true, "passwords": true}

func newAuditRunsCommand(app *App) *cobra.Command {
	var job string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "runs [--job NAME] [--limit N]",
		Short: "List stored audit runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			if limit < 1 {
				return usagef("--limit %d: want at least 1", limit)
			}
			if job != "" && job != "selftest" {
				if _, err := tollguard.AuditJobNamed(job); err != nil {
					return tollguard.Errorf(tollguard.ENOTFOUND, "--job: %s, or selftest", tollguard.ErrorMessage(err))
				}
			}
			runs, err := db.AuditRuns(cmd.Context(), job, limit)
			if err != nil {
				return err
			}
			if asJSON {
				if runs == nil {
					runs = []*tollguard.AuditRun{}
				}
				return app.printJSON(runs)
			}
			t := app.table("ID", "JOB", "TRIGGER", "APPLY", "STARTED", "TOOK", "FINDINGS", "WORST", "ACTIONS", "ERROR")
			for _, r := range runs {
				fmt.Fprintf(t, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.ID, r.Job, r.Trigger, yesNo(r.Apply), fmtTime(r.StartedAt),
					r.EndedAt.Sub(r.StartedAt).Round(1e6), len(r.Findings), orDash(string(r.Worst())), len(r.Actions), orDash(r.Error))
			}
			return t.Flush()
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "only this audit's runs")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many")
	addJSON(cmd, &asJSON)
	return cmd
}
