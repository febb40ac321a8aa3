package tollguard

import (
	"regexp"

	"github.com/nyaruka/phonenumbers"
)

// A carrier code dialled before a number hands the call to another
// carrier, which connects what follows. The whole string can read as
// some other number: libphonenumber takes DE 01013 00 683 123
// (call-by-call to Niue) for a possible +49 1013 number, which an
// allow rule of +49 whitelisted. The gate judges neither what follows
// nor the other carrier's prices, so such a string is ClassUnknown,
// with Why saying which code it begins with. Keep these to codes with
// an official source.

// accessCode is a code dialled before a number, as a pattern, and why
// the gate refuses it.
type accessCode struct {
	re  *regexp.Regexp
	why string
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

// carrierSelectionWhy says why pn begins with a carrier selection code,
// or "".
func carrierSelectionWhy(pn *phonenumbers.PhoneNumber) string {
	if c, ok := carrierSelection[int(pn.GetCountryCode())]; ok && c.re.MatchString(phonenumbers.GetNationalSignificantNumber(pn)) {
		return c.why
	}
	return ""
}
