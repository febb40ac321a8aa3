package tollguard

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// IsEmergency reports whether dialled is an emergency number when dialled
// in country (ISO 3166-1 alpha-2; "" knows only the universal ones).
//
// 112 and 911 are emergency numbers everywhere (3GPP TS 22.101 §10.1.1:
// handsets always treat them so), and so is 999, which many handsets
// and networks route as well. Each country's own numbers come from
// libphonenumber's short-number metadata (FR 15/17/18, DE 110, AU 000,
// JP 110/119, IN 100/101/102/108, ...), plus the few it lacks (JP 118, ES 091, BR 199, ...). Only the digits as dialled
// count: visual separators and one trailing '#' are ignored, but a
// leading '+' or an international prefix ("+112", "00112") or extra
// digits ("9991") make it not an emergency number, so that a toll
// number cannot pass as one. One of the country's caller ID codes
// before exactly one of its emergency numbers (GB 141 999, US *67 911,
// DE #31# 110) is one too (callerIDCodes).
func IsEmergency(dialled, country string) bool {
	country = strings.ToUpper(strings.TrimSpace(country))
	if _, ok := callerIDEmergency(dialled, country); ok {
		return true
	}
	digits, plus, ok := cleanDialled(dialled)
	if !ok || plus {
		return false
	}
	return emergencyDigits(digits, country)
}

// callerIDCode is a code dialled before a number to withhold or show
// the caller's number on that one call, and which of the two it does.
type callerIDCode struct{ code, does string }

// callerIDCodes are each country's caller ID codes. The carrier acts on
// the code and connects what follows; before an emergency number it
// connects the emergency service (which in most countries gets the
// caller's number whatever the code asked; in JP, after 184, in
// principle not). So a code and exactly an emergency number of
// the country is an emergency call; a code before anything else is the
// carrier's to connect, and denied (accessCodeWhy), so a code of digits
// must begin no number of its country as dialled there (AU 183, JP 184
// and 186, NZ 0197 begin none). Keep these to codes with an official
// source.
var callerIDCodes = map[string][]callerIDCode{
	// United Kingdom: 141 withholds the caller's number, 1470 shows it
	// (Ofcom's Numbering Conventions, A9, and its guidance on CLI
	// facilities, under which a 999 or 112 call carries the number to
	// the emergency service whatever its privacy marking).
	"GB": {{"141", "withholds the caller's number"}, {"1470", "shows the caller's number"}},
	"US": nanpCallerIDCodes,
	"CA": nanpCallerIDCodes,
	// Germany: the per-call CLIR codes of 3GPP TS 22.030 (ETSI TS 122
	// 030) Annex B, supplementary service code 31, as German carriers
	// take them: #31# withholds the caller's number, *31# shows it.
	"DE": {{"#31#", "withholds the caller's number"}, {"*31#", "shows the caller's number"}},
	// Australia: 1831 withholds the caller's number, 1832 shows it, on
	// fixed lines, #31# and *31# on mobiles (ACMA's calling number
	// display pages); a call to 000 shows the number whatever the line's
	// setting.
	"AU": {
		{"1831", "withholds the caller's number"}, {"1832", "shows the caller's number"},
		{"#31#", "withholds the caller's number"}, {"*31#", "shows the caller's number"},
	},
	// Japan: 184 withholds the caller's number, 186 shows it, dialled
	// before the number (the per-call codes of every Japanese carrier);
	// 184 before 110, 118 or 119 still reaches the service.
	"JP": {{"184", "withholds the caller's number"}, {"186", "shows the caller's number"}},
	// New Zealand: 0197 withholds the caller's number (Telecom, now
	// Spark: "Number Withhold", dialled before the number).
	"NZ": {{"0197", "withholds the caller's number"}},
}

// nanpCallerIDCodes are the US's and Canada's: the vertical service
// codes *67 (Calling Number Delivery Blocking) and *82 (shows the
// number on a line that withholds it) (NANPA's VSC definitions; FCC 47
// CFR 64.1601(b) has carriers honour both), and 1167 and 1182, the same
// codes from a rotary phone (11 stands for * there). No NANP number
// begins with 1 after the national prefix.
var nanpCallerIDCodes = []callerIDCode{
	{"*67", "withholds the caller's number"}, {"*82", "shows the caller's number"},
	{"1167", "withholds the caller's number"}, {"1182", "shows the caller's number"},
}

// callerIDEmergency reports whether dialled is one of country's caller
// ID codes followed by exactly one of its emergency numbers, and says
// so for Number.Why. Separators are ignored, and so is a trailing '#'
// (the send key) after a code of digits; after *67 or #31# it would
// make the whole a supplementary service string (3GPP TS 22.030), not a
// call.
func callerIDEmergency(dialled, country string) (why string, ok bool) {
	codes := callerIDCodes[country]
	if len(codes) == 0 {
		return "", false
	}
	// Most numbers (0..., +...) begin with none of the country's codes'
	// first characters: out at once, without the copy below, on every
	// call. Per country, as NZ's 0197 begins as most numbers do.
	trimmed := strings.TrimSpace(dialled)
	i := 0
	for i < len(trimmed) && isSeparator(trimmed[i]) {
		i++
	}
	if i == len(trimmed) || !slices.ContainsFunc(codes, func(c callerIDCode) bool { return c.code[0] == trimmed[i] }) {
		return "", false
	}
	// Trimmed first as cleanDialled trims: a \n or no-break space after
	// the # would hide it from the check below, and cleanDialled would
	// then drop the #.
	s := strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && isSeparator(byte(r)) {
			return -1
		}
		return r
	}, trimmed)
	for _, c := range codes {
		rest, found := strings.CutPrefix(s, c.code)
		if !found || strings.HasSuffix(rest, "#") && strings.ContainsAny(c.code, "*#") {
			continue
		}
		if digits, plus, ok := cleanDialled(rest); ok && !plus && emergencyDigits(digits, country) {
			return fmt.Sprintf("the emergency number %s after %s, which %s (the carrier connects it to the emergency service)", digits, c.code, c.does), true
		}
	}
	return "", false
}

// dialplanCallerIDCodes are the caller ID codes that the dialplan
// include lets through before 112, 911 and 999 without asking tollguard,
// whatever the account's country: those that begin with * or #. The
// include's list holds for every country, and no number anywhere
// begins with * or #, so none of these strings can be a number that
// costs money. Codes of digits wait for the gate: GB 141 999 is a
// premium-rate number in Andorra (+376 141999), and 1182 911 one in New
// Zealand.
var dialplanCallerIDCodes = [...]string{"*67", "*82", "#31#", "*31#"}

// DialplanCallerIDCodes returns the caller ID codes that the dialplan
// include lets through before 112, 911 and 999 by itself.
func DialplanCallerIDCodes() []string { return slices.Clone(dialplanCallerIDCodes[:]) }

// DialplanCallerIDCode returns the code of DialplanCallerIDCodes that
// dialled begins with, something following it, or "".
func DialplanCallerIDCode(dialled string) string {
	dialled = strings.TrimSpace(dialled)
	for _, c := range dialplanCallerIDCodes {
		if strings.HasPrefix(dialled, c) && len(dialled) > len(c) {
			return c
		}
	}
	return ""
}

// IsDialplanCodeEmergency reports whether dialled is one of the
// include's own caller ID codes before an emergency number of a country
// that uses that code (US *67 911, DE #31# 110): what the include dials
// without the gate, whatever the account's country.
func IsDialplanCodeEmergency(dialled string) bool {
	code := DialplanCallerIDCode(dialled)
	if code == "" {
		return false
	}
	for _, country := range CallerIDCodeCountries(code) {
		if IsEmergency(dialled, country) {
			return true
		}
	}
	return false
}

// CallerIDCodeCountries lists the countries that use code as a caller
// ID code (callerIDCodes), sorted.
func CallerIDCodeCountries(code string) []string {
	var out []string
	for c, codes := range callerIDCodes {
		if slices.ContainsFunc(codes, func(cc callerIDCode) bool { return cc.code == code }) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// EmergencyCallerIDNumbers lists country's emergency numbers after each
// of its caller ID codes of digits (GB 141999, 1470112; US 1167911),
// which IsEmergency takes as emergency numbers there. The include lets
// only the codes with * or # through by itself; these it dials without
// the gate only from TOLLGUARD_EMERGENCY, which the admin sets for the
// PBX's own countries (`tollguard dialplan emergency`), as elsewhere
// they are numbers (AD 141999 is premium-rate).
func EmergencyCallerIDNumbers(country string) []string {
	country = strings.ToUpper(strings.TrimSpace(country))
	var out []string
	for _, c := range callerIDCodes[country] {
		if !allDigits(c.code) {
			continue // the include's own (dialplanCallerIDCodes)
		}
		for _, n := range EmergencyNumbers(country) {
			out = append(out, c.code+n)
		}
	}
	return out
}

// universalEmergency are the numbers that are emergency numbers in every
// country (see IsEmergency); the dialplan include lets them through by
// itself.
var universalEmergency = [...]string{"112", "911", "999"}

// UniversalEmergencyNumbers returns the emergency numbers of every
// country: 112, 911 and 999.
func UniversalEmergencyNumbers() []string { return slices.Clone(universalEmergency[:]) }

func emergencyDigits(digits, country string) bool {
	if slices.Contains(universalEmergency[:], digits) {
		return true
	}
	if slices.Contains(extraEmergency[country], digits) {
		return true
	}
	// Skip the regex work for strings longer than any emergency number.
	if len(digits) > maxEmergencyLen() || country == "" {
		return false
	}
	return phonenumbers.IsEmergencyNumber(digits, country)
}

// extraEmergency lists national emergency numbers that libphonenumber's
// short-number metadata (v1.8.1) lacks. Keep it to numbers with an
// official source.
var extraEmergency = map[string][]string{
	// Japan Coast Guard, "118番" (maritime emergencies); the metadata has
	// only 110 and 119.
	"JP": {"118"},
	// France: the numéros d'urgence that operators must route free
	// (ARCEP; code des postes et des communications électroniques,
	// D. 98-8 and its arrêté): 114 for deaf and hard-of-hearing callers,
	// 115 emergency shelter, 119 children in danger, 191 aeronautical
	// rescue, 196 sea rescue, 197 terror and abduction alerts, 116000
	// missing children. The metadata has only 15, 17, 18 and 112.
	"FR": {"114", "115", "119", "191", "196", "197", "116000"},
	// Switzerland: the emergency numbers of the telecoms services
	// ordinance (OFCOM/BAKOM, FDV art. 28): 143 Die Dargebotene Hand,
	// 145 Tox Info, 147 Pro Juventute, 1414 Rega and 1415 Air Glaciers
	// air rescue. The metadata has 112, 117, 118 and 144.
	"CH": {"143", "145", "147", "1414", "1415"},
	// Spain: the short numbers the national numbering plan gives the
	// emergency services (Plan nacional de numeración telefónica, Real
	// Decreto 2296/2004 and its attribution orders; the ministry's Guía
	// de numeración lists them): 061 health emergencies, 062 Guardia
	// Civil, 080 fire brigades, 091 Policía Nacional, 092 Policía Local.
	// The metadata has only 085, 088 and 112, and lists these as
	// standard-rate short codes, which the gate denied as of unknown cost.
	"ES": {"061", "062", "080", "091", "092"},
	// Italy: the emergency numbers of the national numbering plan (AGCOM,
	// Piano di numerazione nazionale, delibera 8/15/CIR: numeri per
	// servizi di emergenza) beyond the metadata's 112, 113, 115 and 118:
	// 114 Emergenza Infanzia, 117 Guardia di Finanza, 1515 environmental
	// emergencies (Carabinieri forestali), 1530 Guardia Costiera (sea
	// rescue). The metadata has them as short codes of unknown cost,
	// which the gate denied.
	"IT": {"114", "117", "1515", "1530"},
	// Poland: the numery alarmowe of the national numbering plan (plan
	// numeracji krajowej; UKE's list of numery alarmowe), which operators
	// must connect free, beyond the metadata's 112, 997, 998 and 999:
	// 984 water rescue, 985 sea and mountain rescue, 986 municipal guard,
	// 987 crisis management centre, 991-994 power, gas, heating and water
	// emergency services, 995 Child Alert (police), 996 Central
	// Anticorruption Bureau. The metadata has them as short codes of
	// unknown cost, which the gate denied.
	"PL": {"984", "985", "986", "987", "991", "992", "993", "994", "995", "996"},
	// Austria: the Notrufnummern of the KEM-V 2009 (RTR's list of
	// Notrufnummern: free from every phone, around the clock) beyond the
	// metadata's 112, 122, 133 and 144: 128 gas emergencies, 140
	// Bergrettung (mountain rescue), 141 Ärztenotdienst, 142
	// Telefonseelsorge, 147 Rat auf Draht (children and young people).
	// The metadata has them as free short codes, so they were internal:
	// a blocked extension could not call them, nor anyone while tollguard
	// was down.
	"AT": {"128", "140", "141", "142", "147"},
	// South Africa: 107, the single emergency number of Cape Town's and
	// Tshwane's public emergency communication centres, toll-free from a
	// landline (City of Cape Town, "107 Emergency"; City of Tshwane, 2019).
	// The metadata has 10111, 10177 and 112, and 107 as a short code of
	// unknown cost, which the gate denied.
	"ZA": {"107"},
	// Brazil: Anatel's serviços públicos de emergência, free from every
	// phone (Resolução 357/2004, the Regulamento sobre as Condições de
	// Acesso e Fruição dos Serviços de Utilidade Pública; Anatel's list
	// of códigos de serviços de utilidade pública e de emergência): 153
	// Guarda Municipal (made an emergency service by a later Anatel act,
	// after Lei 13.022/2014), 185 Salvamar (Navy sea rescue), 191 Polícia Rodoviária
	// Federal, 194 Polícia Federal, 197 Polícia Civil, 198 Polícia
	// Rodoviária Estadual, 199 Defesa Civil. The metadata has 190, 192,
	// 193, 112, 128 and 911; the gate denied 153 as a short code of
	// unknown cost and took the others for internal extensions.
	"BR": {"153", "185", "191", "194", "197", "198", "199"},
	// China: 122, the traffic police's accident line that the telecoms
	// carriers opened for the Ministry of Public Security's traffic
	// management, free and around the clock beside 110, 119 and 120; and
	// 12395, the national maritime search and rescue line of the China
	// Maritime Search and Rescue Centre (the coastal cities' rescue
	// centres must run it under the maritime search and rescue
	// regulations). The metadata has both as free short codes: internal,
	// so denied to a blocked extension and not dialled while tollguard was
	// down.
	"CN": {"122", "12395"},
	// Norway: 1412, the emergency number for deaf, hard-of-hearing and
	// speech-impaired callers on text telephones (DSB's Nød-SMS page;
	// the Justice Ministry's answer to the Storting, 2013: a separate
	// number for emergency messages, prioritised). The metadata has it
	// as a short code of unknown cost, which the gate denied.
	"NO": {"1412"},
	// Argentina: 103, Defensa Civil's emergency line (Ciudad de Buenos
	// Aires, around the clock from any fixed line); the metadata has it
	// as a free short code, so internal.
	"AR": {"103"},
}

// maxEmergencyLen is the length of the longest emergency number in the
// short-number metadata (5: Namibia's 10111).
var maxEmergencyLen = sync.OnceValue(func() int {
	longest := 3
	for _, md := range shortMetadata() {
		for _, l := range md.GetEmergency().GetPossibleLength() {
			longest = max(longest, int(l))
		}
	}
	return longest
})

// EmergencyNumbers lists the emergency numbers IsEmergency accepts for
// country, shortest first: for the dialplan include's
// TOLLGUARD_EMERGENCY, which must let the same numbers through when
// tollguard cannot answer. It enumerates the metadata's pattern, so call
// it once (at start-up or from the CLI), not per call.
func EmergencyNumbers(country string) []string {
	country = strings.ToUpper(strings.TrimSpace(country))
	set := map[string]bool{}
	for _, d := range append(UniversalEmergencyNumbers(), extraEmergency[country]...) {
		set[d] = true
	}
	if desc := shortMetadata()[country].GetEmergency(); desc.GetNationalNumberPattern() != "" {
		// The library matches the whole pattern whatever the length, so
		// try every length up to the longest it lists.
		re, err := regexp.Compile(`^(?:` + desc.GetNationalNumberPattern() + `)$`)
		longest := maxEmergencyLen()
		if ls := desc.GetPossibleLength(); len(ls) > 0 {
			longest = int(slices.Max(ls))
		}
		for n := 1; err == nil && n <= longest; n++ {
			limit := 1
			for range n {
				limit *= 10
			}
			for i := range limit {
				if d := strconv.Itoa(limit + i)[1:]; re.MatchString(d) { // i, zero-padded to n digits
					set[d] = true
				}
			}
		}
	}
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(len(a)-len(b), strings.Compare(a, b)) })
	return out
}
