package tollguard

import (
	"regexp"

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
// national digits as dialled, and why the gate refuses it.
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
		"it begins with 0, the operator: 0 + a number and 01 + a country code and a number are operator-assisted calls, billed at the operator's rates; dial 011 for international calls, or the number with 1"},
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
}

// carrierSelection are national significant numbers that begin with a
// carrier selection code, by calling code: caught however they are
// dialled (01013..., +49 1013...), as a carrier taking +49 reads them
// as it would 0 and the rest.
var carrierSelection = map[int]accessCode{
	// Germany: the range (0)10 is Verbindungsnetzbetreiberauswahl
	// (call-by-call), 010xy and 0100yy, never a subscriber number
	// (Bundesnetzagentur's Verbindungsnetzbetreiberkennzahlen).
	49: {regexp.MustCompile(`^10`),
		"it begins with 010 (+49 10), a call-by-call carrier selection code (010xy, 0100yy): that carrier carries and bills the call to whatever follows, at prices the rate deck does not hold; dial the number without it"},
}

// accessCodeWhy says why digits, dialled nationally in country without
// the plan's international prefix, begin with an access code, or "".
func accessCodeWhy(country, digits string) string {
	codes := accessCodes[country]
	if phonenumbers.GetCountryCodeForRegion(country) == 1 {
		codes = nanpAccessCodes
	}
	for _, c := range codes {
		if c.re.MatchString(digits) {
			return c.why
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
