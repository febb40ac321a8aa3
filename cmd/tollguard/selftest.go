package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newSelftestCommand) }

func newSelftestCommand(app *App) *cobra.Command {
	var contexts []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "selftest [--context CTX]...",
		Short: "Prove the gate covers each gated context: originate a call to the reserved number and check the gate denied it",
		Long: `For each gated context ([audit] gated_contexts, or --context), originate
through ARI a Local channel to the reserved selftest number ([gate]
selftest_number) and check that the gate recorded the call and denied it
with reason selftest, so nothing is dialled. A context whose call the
gate never saw, or allowed, is a critical finding: calls from it bypass
tollguard. serve must be running (it is the gate).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, release, err := app.auditEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer release()
			if len(contexts) > 0 {
				env.Settings.GatedContexts = contexts
			}
			run, err := tollguard.RunAudit(cmd.Context(), env, tollguard.SelftestAudit{}, false, "cli", nil)
			if asJSON {
				if jerr := app.printJSON(run); jerr != nil {
					return jerr
				}
			} else {
				printAuditRun(app.Out, run, true) // selftest: report only
			}
			if err != nil {
				return err
			}
			for _, f := range run.Findings {
				if f.Check == tollguard.AuditCheckNoAsterisk {
					// Nothing was tested: a monitoring check must not read it as a pass.
					return tollguard.Errorf(tollguard.EUNAVAILABLE, "selftest tested nothing: it needs ARI ([ari] enabled, user, and the password in TOLLGUARD_ARI_PASSWORD or password_file)")
				}
			}
			if run.Worst() == tollguard.SeverityCritical {
				return fmt.Errorf("selftest failed: %d context(s) not covered by the gate (see above)", countSeverity(run, tollguard.SeverityCritical))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&contexts, "context", nil, "test this context instead of [audit] gated_contexts (repeat)")
	addJSON(cmd, &asJSON)
	return cmd
}

func countSeverity(run *tollguard.AuditRun, s tollguard.Severity) int {
	n := 0
	for _, f := range run.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}
