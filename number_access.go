package tollguard

import (
	"cmp"
	"fmt"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// A code dialled before a number makes the carrier act (withhold the
// caller's number, hand the call to another carrier) and then connect
// what follows. The whole string can read as some other number:
// libphonenumber takes GB 1470 118118 (show the caller's number, then
// directory enquiries) for 01470 118118 on Skye, and DE 01013 00 683
// 123 (call-by-call to Niue) for a possible +49 1013 number, which an
// allow rule of +49 whitelisted. The gate judges neither what follows
// nor the other carrier's prices, so such a string is ClassUnknown,
// with Why saying which code it begins with. Keep these to codes with
// an official source.

// accessCode is a code dialled before a number, as a pattern of the
// national digits as dialled, and why the gate refuses it; {intl} and
// {national} in why stand for the plan's prefixes (accessCodeWhy).
type accessCode struct {
	re  *regexp.Regexp
	why string
}

// nanpAccessCodes are the codes dialled before a number in the NANP.
// No NANP number begins with 0 or 1: area codes and exchanges begin
// with 2-9 (NANPA), and a leading 1 is the national prefix.
var nanpAccessCodes = []accessCode{
	// A Carrier Identification Code dialled as 101XXXX (10-10-XXX) hands
	// the call, whatever follows, to that carrier (FCC equal access;
	// NANPA administers the CICs).
	{regexp.MustCompile(`^101\d{4}`),
		"it begins with 101XXXX, a dial-around carrier access code: that carrier carries and bills the call to whatever follows; dial the number without it"},
	// 0 is the operator: 0 + a number and 01 + a country code and a
	// number are operator-assisted calls, billed at the operator's
	// rates (01 682 12345 is the Cook Islands). 011 is the international
	// prefix (no country code begins with 1 but the NANP's own, dialled
	// 0 + 1); 0 and 00 alone are short codes.
	{regexp.MustCompile(`^0(?:[02-9]|1[02-9])`),
		"it begins with 0, the operator: 0 + a number and 01 + a country code and a number are operator-assisted calls, billed at the operator's rates; dial {intl} for international calls, or the number with {national}"},
}

// accessCodes are the codes dialled before a number, by country; the
// NANP's are nanpAccessCodes.
var accessCodes = map[string][]accessCode{
	// United Kingdom: what begins with 1 is an access code or a short
	// code, never a number, which begins with its national prefix 0
	// (Oftel/Ofcom Numbering Conventions, A9 "Access Codes and Short
	// Codes"): 141 withholds the caller's number and 1470 shows it (the
	// CLI codes), carrier access codes 1XXX and 18XXX route the call
	// through another carrier.
	"GB": {{regexp.MustCompile(`^1`),
		"without the national prefix 0, what begins with 1 is an access code (141 withholds the caller's number, 1470 shows it, 1XXX and 18XXX pick another carrier), and the carrier connects whatever follows it; dial the number alone, with its 0"}},
	// Austria: a Betreiberauswahl-Präfix is the access code 10 and a
	// two- or three-digit operator code (RTR, "Betreiberauswahl-Präfix";
	// KEM-V 2009 §§ 109-113). Numbers dialled without the 0 begin with
	// 2-9, short codes with 11-18.
	"AT": {{regexp.MustCompile(`^10`),
		"it begins with 10, a carrier selection prefix (Betreiberauswahl, 10xx, 10xxx)" + carrierConnects}},
	// Switzerland: Carrier Selection Codes have five digits (BAKOM,
	// "Kurznummern"), 107xy and 108xy; libphonenumber lists the same as
	// short codes. The 1xx short codes (112, 117, 118, 144, 1414, 18xy)
	// begin otherwise.
	"CH": {{regexp.MustCompile(`^10[78]`),
		"it begins with 107 or 108, a carrier selection code (107xy, 108xy)" + carrierConnects}},
	// Netherlands: 16xy is carrier (pre)selection (Nummerplan telefoon-
	// en ISDN-diensten, bijlage 1; ACM issues them as "carrierselectie
	// (4-cijferig)"). Numbers are dialled with their 0; short codes are
	// 112, 116xxx, 14xxx, 18xy, 0800 and the like.
	"NL": {{regexp.MustCompile(`^16`),
		"it begins with 16, a carrier selection code (16xy)" + carrierConnects}},
	// Australia: a four-digit override code dialled before the number
	// picks another provider for that call (ACMA, "Pre-selection":
	// over-ride dial codes); libphonenumber's international prefixes
	// include them (1411, 1414, ... then 0011). Numbers beginning 014
	// (satellite) are dialled with their 0, so no number dialled without
	// it begins with 14; 13, 1300, 1800 and 1900 numbers begin otherwise.
	// (Its caller ID codes 1831 and 1832 are callerIDCodes'.)
	"AU": {{regexp.MustCompile(`^14`),
		"it begins with 14, an override code (14xx) that picks another carrier" + carrierConnects}},
	// France: carrier selection prefixes 16XY (ART decision 97-277;
	// ARCEP, "ARCEP sets aside the returned E prefixes", 2005). Every
	// number is dialled with its 0 (a closed plan) and no short code
	// begins with 16. (The one-digit E prefixes replace the 0: E and nine
	// digits are too long to read as a number.)
	"FR": {{regexp.MustCompile(`^16`),
		"it begins with 16, a carrier selection prefix (16XY)" + carrierConnects}},
	// Romania: carrier selection codes are 10xy and 16xy (ANCOM,
	// "Carrier selection"). Numbers are dialled with their 0; short
	// codes are 112, 116xxx, 118xxx, 12xx, 14xx, 19xx.
	"RO": {{regexp.MustCompile(`^1[06]`),
		"it begins with 10 or 16, a carrier selection code (10xy, 16xy)" + carrierConnects}},
}

// carrierConnects ends the reason for a carrier selection code.
const carrierConnects = ": that carrier carries and bills the call to whatever follows, at prices the rate deck does not hold; dial the number without it"

// carrierSelection are national significant numbers that begin with a
// carrier selection code, by calling code: caught however they are
// dialled (01013..., +49 1013...), as a carrier taking +49 reads them
// as it would 0 and the rest.
var carrierSelection = map[int]accessCode{
	// Germany: the range (0)10 is Verbindungsnetzbetreiberauswahl
	// (call-by-call), 010xy and 0100yy, never a subscriber number
	// (Bundesnetzagentur's Verbindungsnetzbetreiberkennzahlen).
	49: {regexp.MustCompile(`^10`),
		"it begins with 010 (+49 10), a call-by-call carrier selection code (010xy, 0100yy)" + carrierConnects},
	// Italy, Spain and Poland have no national prefix: the code is the
	// start of what reads as the national significant number.
	// Italy: a Carrier Selection code dialled before the number
	// overrides preselection (AGCOM delibera 3/CIR/99, art. 2.5); the
	// codes are 10xy and 10xyz (libphonenumber lists them as short
	// codes). No number begins with 10: fixed numbers begin with 0, and
	// those beginning with 1 with 144, 166, 178 or 199.
	39: {regexp.MustCompile(`^10`),
		"it begins with 10 (+39 10), a carrier selection code (10xy, 10xyz)" + carrierConnects},
	// Spain: carrier selection codes are 105X(Y)(Z) and 107X(Y)(Z)
	// (Plan Nacional de Numeración, 5.12, as quoted in BOE-A-1999-16585).
	// Numbers begin with 5-9; 100x customer service codes stay.
	34: {regexp.MustCompile(`^10[57]`),
		"it begins with 105 or 107 (+34 105, +34 107), a carrier selection code (105x, 107x, four to six digits)" + carrierConnects},
	// Poland: a network access number (numer dostępu do sieci, NDS) of
	// the form 10XX or 10XXX picks the carrier (Plan numeracji krajowej,
	// assigned by UKE). Numbers have nine digits, none beginning with 10
	// (the lowest area code is 12).
	48: {regexp.MustCompile(`^10`),
		"it begins with 10 (+48 10), a carrier selection code (NDS, 10xx, 10xxx)" + carrierConnects},
}

// accessCodeWhy says why digits, dialled nationally in country without
// the plan's international prefix, begin with an access code, or "".
// afterPrefix is true when digits followed the plan's own national
// prefix (90, with 9 for an outside line): a code is dialled in its
// place, so what follows it is a national number, which can begin as a
// code does (GB 0141 Glasgow, NL 0162, FR 01 60). No NANP number begins
// with 0 or 1 after any prefix, so the NANP's codes hold either way.
func accessCodeWhy(plan NumberPlan, country, digits string, afterPrefix bool) string {
	codes := accessCodes[country]
	if phonenumbers.GetCountryCodeForRegion(country) == 1 {
		codes = nanpAccessCodes
	} else if afterPrefix {
		return ""
	}
	for _, c := range codes {
		if c.re.MatchString(digits) {
			// The advice names the prefixes the account's phones dial,
			// its plan's own or the NANP's (011, 1).
			intl, national := cmp.Or(plan.IntlPrefix, "011"), cmp.Or(plan.NationalPrefix, "1")
			return strings.NewReplacer("{intl}", intl, "{national}", national).Replace(c.why)
		}
	}
	if phonenumbers.GetCountryCodeForRegion(country) == 1 {
		return ""
	}
	// A caller ID code before a number (AU 1831 1234, NZ 0197 018, JP
	// 184 0990 123456) read whole as a number of no type or region, at
	// the deck's price for the country; its emergency forms were taken
	// before (callerIDEmergency).
	for _, c := range callerIDCodes[country] {
		if len(digits) > len(c.code) && strings.HasPrefix(digits, c.code) {
			return fmt.Sprintf("it begins with %s, a caller ID code that %s, and the carrier connects whatever follows; dial the number alone", c.code, c.does)
		}
	}
	return ""
}

// carrierSelectionWhy says why pn begins with a carrier selection code,
// or "".
func carrierSelectionWhy(pn *phonenumbers.PhoneNumber) string {
	if c, ok := carrierSelection[int(pn.GetCountryCode())]; ok && c.re.MatchString(phonenumbers.GetNationalSignificantNumber(pn)) {
		return c.why
	}
	return ""
}

// callerIDCodeBeforeShortCode says why digits, as short as an
// extension, are one of country's caller ID codes of digits (GB 141,
// 1470; NANP 1167, 1182) before one of its short codes that costs money
// or whose cost is unknown (GB 155, the international operator), or "".
// Alone that short code is gated (extensionLengthShortCode); after the
// code the whole was taken as a free internal call. Codes with * or #
// make the whole no number at all.
func callerIDCodeBeforeShortCode(digits, country string) string {
	for _, c := range callerIDCodes[country] {
		rest, ok := strings.CutPrefix(digits, c.code)
		var sc Number
		if ok && rest != "" && extensionLengthShortCode(&sc, rest, country) {
			return fmt.Sprintf("it begins with %s, a caller ID code that %s, and the carrier connects what follows: the short code %s, which costs money or whose cost tollguard does not know", c.code, c.does, rest)
		}
	}
	return ""
}
