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
		Use:   "emergency [COUNTRY]...",
		Short: "Print the TOLLGUARD_EMERGENCY setting that dials countries' emergency numbers without waiting for tollguard",
		Long: `The include dials 112, 911 and 999 by itself, without waiting for
tollguard (which records them when they end), so they go through even
when tollguard is down or stopped. A country's other emergency numbers
(DE 110, FR 15/17/18, AU 000, ...) are allowed by the gate, but they wait
for it, and when it cannot answer only TOLLGUARD_EMERGENCY in
extensions.conf's [globals] lets them through. This prints that line for
each COUNTRY (ISO 3166 codes; default: [gate] default_country), from the
same libphonenumber data the gate uses. Name every country your accounts
are in: the line is one for the whole PBX. ` + "`tollguard audit coverage`" + ` reads
the line back through ARI and checks it against your accounts' countries.`,
		Example: `  tollguard dialplan emergency DE
  tollguard dialplan emergency GB FR   # a PBX with accounts in both`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{app.Config.Gate.DefaultCountry}
			}
			var countries []string
			v := emergencyView{Numbers: []string{}, Extra: []string{}}
			for _, a := range args {
				country := strings.ToUpper(strings.TrimSpace(a))
				if phonenumbers.GetCountryCodeForRegion(country) == 0 {
					return usagef("country %q: want an ISO 3166 code such as GB, DE or US", a)
				}
				if slices.Contains(countries, country) {
					continue // named twice (DE de): one country
				}
				countries = append(countries, country)
				for _, n := range tollguard.EmergencyNumbers(country) {
					if slices.Contains(v.Numbers, n) {
						continue
					}
					v.Numbers = append(v.Numbers, n)
					if !slices.Contains(tollguard.UniversalEmergencyNumbers(), n) {
						v.Extra = append(v.Extra, n)
					}
				}
			}
			// The line is one for the whole PBX: a number that is an
			// emergency number in one country but a paid short code in
			// another (CH 1414, premium in BE) stays off it. The gate
			// still allows it for the accounts whose country it serves.
			var left []string
			keep := v.Extra[:0]
			for _, n := range v.Extra {
				if why := tollguard.EmergencyPaidElsewhere(n, countries); why != "" {
					left = append(left, n+" ("+why+")")
					continue
				}
				keep = append(keep, n)
			}
			v.Extra = keep
			v.Country = strings.Join(countries, ",")
			country := strings.Join(countries, " and ")
			if len(left) > 0 && !asJSON {
				fmt.Fprintf(app.Out, "; Left off, as a short code that costs money in another of these countries (the gate still allows it where it is an emergency number): %s\n",
					strings.Join(left, ", "))
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
