package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/dialplan"
)

func init() { dialplanSubcommands = append(dialplanSubcommands, newDialplanEmergencyCommand) }

type emergencyView struct {
	Country string   `json:"country"`
	Numbers []string `json:"numbers"` // every emergency number the gate knows for the country
	Extra   []string `json:"extra"`   // those the include does not know by itself
	Globals string   `json:"globals"` // the [globals] line, "" when none is needed
}

func newDialplanEmergencyCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "emergency [COUNTRY]",
		Short: "Print the TOLLGUARD_EMERGENCY setting that dials a country's emergency numbers without waiting for tollguard",
		Long: `The include dials 112, 911 and 999 by itself, without waiting for
tollguard (which records them when they end), so they go through even
when tollguard is down or stopped. A country's other emergency numbers
(DE 110, FR 15/17/18, AU 000, ...) are allowed by the gate, but they wait
for it, and when it cannot answer only TOLLGUARD_EMERGENCY in
extensions.conf's [globals] lets them through. This prints that line for
COUNTRY (an ISO 3166 code; default: [gate] default_country), from the
same libphonenumber data the gate uses.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			country := app.Config.Gate.DefaultCountry
			if len(args) == 1 {
				country = args[0]
			}
			country = strings.ToUpper(strings.TrimSpace(country))
			if phonenumbers.GetCountryCodeForRegion(country) == 0 {
				return usagef("country %q: want an ISO 3166 code such as GB, DE or US", country)
			}
			v := emergencyView{Country: country, Numbers: tollguard.EmergencyNumbers(country), Extra: []string{}}
			for _, n := range v.Numbers {
				if !slices.Contains(tollguard.UniversalEmergencyNumbers(), n) {
					v.Extra = append(v.Extra, n)
				}
			}
			if len(v.Extra) > 0 {
				v.Globals = dialplan.VarEmergency + "=" + strings.Join(v.Extra, "|")
			}
			if asJSON {
				return app.printJSON(v)
			}
			if v.Globals == "" {
				_, err := fmt.Fprintf(app.Out, "; %s's emergency numbers (%s) are all built into the include: no %s needed.\n",
					country, strings.Join(v.Numbers, ", "), dialplan.VarEmergency)
				return err
			}
			_, err := fmt.Fprintf(app.Out, "; Emergency numbers of %s beyond the include's own (112, 911, 999).\n"+
				"; Add to [globals] in extensions.conf, then \"dialplan reload\":\n%s\n", country, v.Globals)
			return err
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}
