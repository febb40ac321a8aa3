package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard/dialplan"
)

func init() { register(newDialplanCommand) }

// dialplanSubcommands are added by their own files.
var dialplanSubcommands []func(*App) *cobra.Command

func newDialplanCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dialplan",
		Short: "Print the Asterisk dialplan include (the tollguard-outbound gate, its hangup handlers and the trunk-leg limit)",
		Long: `Print the dialplan include that gates outbound calls. Install it with

  tollguard dialplan > /etc/asterisk/tollguard.conf

add "#include tollguard.conf" to extensions.conf, and put one line before
the Dial of every outbound route:

  exten => _X.,1,Gosub(tollguard-outbound,s,1(${EXTEN}))
   same => n,Dial(PJSIP/${EXTEN}@trunk,,ib(tollguard-callee^s^1(${TOLLGUARD_MAXSEC})))

then "dialplan reload" in the Asterisk CLI. Dial's b() option puts the
call's time limit on the trunk leg too, so that a transfer cannot leave
the trunk call running without it. "tollguard dialplan emergency" prints
the TOLLGUARD_EMERGENCY setting for the emergency numbers of your accounts' countries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(app.Out, dialplan.Include)
			return err
		},
	}
	for _, f := range dialplanSubcommands {
		cmd.AddCommand(f(app))
	}
	return cmd
}
