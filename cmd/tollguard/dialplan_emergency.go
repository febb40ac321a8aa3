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
same libphonenumber data the gate uses, with the emergency numbers after
the country's caller ID codes of digits (GB 141 999 and 1470 112, US
1167 911), which the include does not dial by itself. Name every
country your accounts are in: the line is one for the whole PBX, and a
number that costs money, or whose cost is unknown, in another of them
(GB 141999 is premium-rate in AD) is left off it. ` + "`tollguard audit coverage`" + ` reads
the line back through ARI and checks it against your accounts' countries.`,
		Example: `  tollguard dialplan emergency DE
  tollguard dialplan emergency GB FR   # a PBX with accounts in both`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{app.Config.Gate.DefaultCountry}
			}
			var countries, codeForms []string
			v := emergencyView{Numbers: []string{}, Extra: []string{}}
			for _, a := range args {
				country := strings.ToUpper(strings.TrimSpace(a))
				if phonenumbers.GetCountryCodeForRegion(country) == 0 {
					if country == "UK" {
						return usagef("country %q: want an ISO 3166 code (the United Kingdom is GB, not UK)", a)
					}
					return usagef("country %q: want an ISO 3166 code such as GB, DE or US", a)
				}
				if slices.Contains(countries, country) {
					continue // named twice (DE de): one country
				}
				countries = append(countries, country)
				// With the caller ID codes of digits before them (GB
				// 141 999): the include lets only * and # codes through
				// by itself, as a code of digits and a number can be a
				// number elsewhere.
				forms := tollguard.EmergencyCallerIDNumbers(country)
				codeForms = append(codeForms, forms...)
				for _, n := range append(tollguard.EmergencyNumbers(country), forms...) {
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
			// emergency number in one country but costs money in another
			// (CH 1414, premium in BE; GB 141999, premium in AD) stays
			// off it. The gate still allows it for the accounts whose
			// country it serves.
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
				fmt.Fprintf(app.Out, "; Left off, as a number that costs money, or whose cost is unknown, in another of these countries (the gate still allows it where it is an emergency number, but it waits for tollguard): %s\n",
					strings.Join(left, ", "))
			}
			if len(v.Extra) > 0 {
				v.Globals = dialplan.VarEmergency + "=" + strings.Join(v.Extra, "|")
			}
			if asJSON {
				return app.printJSON(v)
			}
			if v.Globals == "" {
				if len(left) > 0 {
					_, err := fmt.Fprintf(app.Out, "; The rest of %s's emergency numbers (112, 911, 999) are built into the include: no %s needed.\n",
						country, dialplan.VarEmergency)
					return err
				}
				_, err := fmt.Fprintf(app.Out, "; %s's emergency numbers (%s) are all built into the include: no %s needed.\n",
					country, strings.Join(v.Numbers, ", "), dialplan.VarEmergency)
				return err
			}
			fmt.Fprintf(app.Out, "; Emergency numbers of %s beyond the include's own (112, 911, 999).\n", country)
			if slices.ContainsFunc(v.Extra, func(n string) bool { return slices.Contains(codeForms, n) }) {
				fmt.Fprintf(app.Out, "; With them those after a caller ID code of digits (GB 141 999, US 1167 911), which the\n"+
					"; include does not dial by itself: elsewhere such a string can be a number (AD 141999).\n")
			}
			_, err := fmt.Fprintf(app.Out, "; Add to [globals] in extensions.conf, then \"dialplan reload\":\n%s\n", v.Globals)
			return err
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}
