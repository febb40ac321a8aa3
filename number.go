package tollguard

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Class is what kind of destination a number is. The policy keys its
// rules on it: ceilings, after-hours denials, high-risk denials.
type Class string

const (
	ClassEmergency     Class = "emergency"
	ClassInternal      Class = "internal"
	ClassNational      Class = "national"
	ClassMobile        Class = "mobile"
	ClassInternational Class = "international"
	ClassPremium       Class = "premium"
	ClassTollFree      Class = "tollfree"
	ClassHighRisk      Class = "high_risk"
	ClassUnknown       Class = "unknown" // could not be parsed as a dialable number
)

// Classes lists every class.
var Classes = []Class{ClassEmergency, ClassInternal, ClassNational, ClassMobile,
	ClassInternational, ClassPremium, ClassTollFree, ClassHighRisk, ClassUnknown}

// Number types, as libphonenumber names them (Number.Type). TypeShortCode
// is ours: a valid national short code (GB 118 118, DE 118 33) whose
// cost the library does not know.
const (
	TypeFixedLine         = "fixed_line"
	TypeMobile            = "mobile"
	TypeFixedLineOrMobile = "fixed_line_or_mobile" // NANP: the two share ranges
	TypeTollFree          = "toll_free"
	TypePremiumRate       = "premium_rate"
	TypeSharedCost        = "shared_cost"
	TypeVoIP              = "voip"
	TypePersonalNumber    = "personal_number" // GB 070: priced like premium by many carriers
	TypePager             = "pager"
	TypeUAN               = "uan"
	TypeVoicemail         = "voicemail"
	TypeShortCode         = "short_code"
	TypeUnknown           = "unknown"
)

// NumberPlan is how an account dials: its country and its national and
// international prefixes.
type NumberPlan struct {
	Country        string // ISO 3166-1 alpha-2, e.g. "GB", "US"
	NationalPrefix string // "0" in GB/DE/FR, "1" in NANP; "" means the country's own
	IntlPrefix     string // "00", "011"; "" means the country's own
	InternalMaxLen int    // dialled strings of at most this many digits that are not emergency numbers are internal (default 4)
}

// DefaultInternalMaxLen is the longest internal extension when a plan
// leaves InternalMaxLen at 0.
const DefaultInternalMaxLen = 4

// PlanFor returns country's numbering plan with the national and
// international prefixes from libphonenumber's metadata: GB 0/00, US
// 1/011, JP 0/010, AU 0/0011, RU 8/810. Where the country has several
// international prefixes and no preferred one (BR, CO), IntlPrefix is
// "", which makes Classify accept all of them.
func PlanFor(country string) (NumberPlan, error) {
	region := strings.ToUpper(strings.TrimSpace(country))
	md := regionMetadata()[region]
	if md == nil || region == "001" {
		return NumberPlan{}, unknownCountry(country)
	}
	p := NumberPlan{
		Country:        region,
		NationalPrefix: phonenumbers.GetNddPrefixForRegion(region, true),
		InternalMaxLen: DefaultInternalMaxLen,
	}
	// The IDD is a pattern in the metadata ("001[14-689]|..."); take it
	// only when it is plain digits, else the preferred one ("8~10": ~ is
	// "wait for the dial tone").
	idd := md.GetInternationalPrefix()
	if !allDigits(idd) {
		idd = strings.ReplaceAll(md.GetPreferredInternationalPrefix(), "~", "")
	}
	if allDigits(idd) {
		p.IntlPrefix = idd
	}
	return p, nil
}

// unknownCountry is the error for a country code libphonenumber does
// not know; UK, the usual slip, is named.
func unknownCountry(country string) error {
	hint := "use GB, US, DE, ..."
	if strings.EqualFold(strings.TrimSpace(country), "UK") {
		hint = "the United Kingdom is GB, not UK"
	}
	return Errorf(EINVALID, "country %q: not a known ISO 3166-1 country code (%s)", country, hint)
}

// Validate reports what is wrong with p, for admins setting up an
// account.
func (p NumberPlan) Validate() error {
	region := strings.ToUpper(strings.TrimSpace(p.Country))
	if md := regionMetadata()[region]; md == nil || region == "001" {
		return unknownCountry(p.Country)
	}
	if p.NationalPrefix != "" && !allDigits(p.NationalPrefix) {
		return Errorf(EINVALID, "national prefix %q: digits only (\"0\" in GB, \"1\" in NANP), or empty for the country's own", p.NationalPrefix)
	}
	if p.IntlPrefix != "" && !allDigits(p.IntlPrefix) {
		return Errorf(EINVALID, "international prefix %q: digits only (\"00\", \"011\"), or empty for the country's own", p.IntlPrefix)
	}
	// A prefix left empty is the country's own, so compare what the
	// plan dials with: GB with national prefix 00 clashes with its 00.
	national, intl := p.NationalPrefix, p.IntlPrefix
	own, err := PlanFor(region)
	if err == nil {
		if national == "" {
			national = own.NationalPrefix
		}
		if intl == "" {
			intl = own.IntlPrefix
		}
	}
	if national != "" && national == intl {
		return Errorf(EINVALID, "national and international prefixes are both %q: tollguard could not tell a national number from an international one (GB: 0 and 00)", national)
	}
	// The country's own prefixes are exempt: libphonenumber's ranges
	// hold a few numbers dialled without the national prefix (IN 000800,
	// BG 00800), which its own international prefix then begins.
	if why := prefixesClash(region, national, intl); why != "" && (national != own.NationalPrefix || intl != own.IntlPrefix) {
		return Errorf(EINVALID, "national prefix %q and international prefix %q: %s; set the prefixes the account's phones dial, or leave them empty for the country's own (%s)", national, intl, why, ownPrefixes(own))
	}
	if p.InternalMaxLen < 0 || p.InternalMaxLen > 8 {
		return Errorf(EINVALID, "internal length %d: between 1 and 8 digits, or 0 for the default %d", p.InternalMaxLen, DefaultInternalMaxLen)
	}
	return nil
}

// Number is a dialled number, normalised and classified.
type Number struct {
	Dialled string
	E164    string // "+442079460000"; "" for emergency, internal, short-code and unparseable numbers
	Class   Class  // the most specific class, see Classify
	// Region is the ISO region of the destination ("GB", "JM"), "001"
	// for the non-geographic codes (+800, +881, +882, +883, +870, +979),
	// "" if unknown.
	Region string
	// International is true when the destination is outside the plan's
	// country, whatever Class says (an international premium number is
	// Class premium and International true).
	International bool
	Type          string // libphonenumber's type: fixed_line, mobile, premium_rate, toll_free, shared_cost, voip, personal_number, uan, unknown (see the Type constants)
	HighRisk      string // the matching high-risk list entry's description, "" if none
	// Short is true for a national short code (GB 118 118, 116 123):
	// Region is the plan's country, Type its cost where libphonenumber
	// knows it, and E164 is "".
	Short bool
	// ExtensionLength is true for a short code or a national number
	// no longer than an internal extension (GB 100 and 155, the
	// operators; AD 912345 with 6-digit extensions): the policy takes
	// it as internal if it names an extension of the caller's account.
	ExtensionLength bool
	// Why says, for some ClassUnknown numbers, why the dialled string is
	// not a number the gate can judge: a carrier or feature code before
	// a number (DE 01013, GB 141, US 101XXXX). For an emergency number
	// dialled after a caller ID code (GB 141 999), it names both. ""
	// otherwise.
	Why string
}

// Is reports whether n falls in class c. A number can be in more than
// one class: an international premium number is both.
func (n Number) Is(c Class) bool {
	switch c {
	case n.Class:
		return true
	case ClassInternational:
		return n.International
	case ClassPremium:
		// Personal numbers (GB 070) forward anywhere at up to premium
		// prices, a classic in fraud; they are gated as premium.
		return n.Type == TypePremiumRate || n.Type == TypePersonalNumber
	case ClassHighRisk:
		return n.HighRisk != ""
	}
	return false
}

// Counted reports whether the detectors take a call to n as an attempt:
// not internal and emergency calls.
func (n Number) Counted() bool {
	return n.Class != ClassInternal && n.Class != ClassEmergency
}

// Toll reports whether a call to n can cost money worth gating: anything
// but emergency, internal and toll-free numbers.
func (n Number) Toll() bool {
	switch n.Class {
	case ClassEmergency, ClassInternal, ClassTollFree:
		return false
	}
	return true
}

// AsInternal is n taken as an internal call: a short code as short as an
// extension (GB 150, FR 1050) that names one of the caller's account's
// extensions, or a free short code. The gate and the ARI detectors both
// apply it; Classify cannot, as it knows neither.
func (n Number) AsInternal() Number {
	return Number{Dialled: n.Dialled, Class: ClassInternal, Type: TypeUnknown}
}

// PricedBy reports whether a rate-deck row of prefix (E.164 digits)
// can price international number n. A row of a code's main region (for
// +1 the US and Canada) prices only that region, not the others that
// share the code: a deck with a "1" row for the US and no rows for the
// Bahamas priced +1 242 at the US rate, under the ceiling, for calls the
// carrier bills at the Bahamas' price; so with Jersey's mobiles under
// "44" or "447" (a UK mobile row: +44 7797 is Jersey's, billed far
// higher) and Kazakhstan under "7". A row is the main region's when it
// is the whole code, or when the main region has numbers under it
// (libphonenumber's per-type ranges: GB's mobiles are under 447, not
// under 447797). When it cannot, covers names the regions the row does
// price.
//
// A number of no known region (a range newer than libphonenumber's
// metadata, such as a new US overlay area code) is the main region's:
// the other regions of a shared code are found by their leading digits
// (every Caribbean area code), which such a number did not match.
func (n Number) PricedBy(prefix string) (ok bool, covers string) {
	if !n.International || n.Region == "001" || n.Region == "" {
		return true, ""
	}
	cc := phonenumbers.GetCountryCodeForRegion(n.Region)
	code := strconv.Itoa(cc)
	mains := mainRegions(cc)
	if mains == nil || slices.Contains(mains, n.Region) || !strings.HasPrefix(prefix, code) {
		return true, "" // not a calling code, a non-geographic one, or its main region's number
	}
	rest := prefix[len(code):]
	if rest == "" || slices.ContainsFunc(mains, func(r string) bool { return regionHasNumbersUnder(r, rest) }) {
		return false, strings.Join(mains, " and ")
	}
	return true, ""
}

// mainRegions are the regions a calling code's own rows and rules are
// for: its main region, and for +1 Canada too (US rows price Canada as
// carriers do); nil for no code or a non-geographic one.
func mainRegions(cc int) []string {
	main := phonenumbers.GetRegionCodeForCountryCode(cc)
	switch {
	case cc == 0 || main == "ZZ" || main == "001":
		return nil
	case cc == 1:
		return []string{"US", "CA"}
	}
	return []string{main}
}

// AllowRuleNote says what an allow rule of prefix (E.164 digits, "+"
// optional) does not reach, or "": a rule of a whole calling code that
// regions share allows only its main region (see PricedBy), and an
// admin writing +1 for "North America" should know that Jamaica needs
// its own.
func AllowRuleNote(prefix string) string {
	digits := strings.TrimPrefix(prefix, "+")
	cc, err := strconv.Atoi(digits)
	if err != nil || len(digits) > 3 {
		return ""
	}
	mains := mainRegions(cc)
	others := slices.DeleteFunc(slices.Clone(phonenumbers.GetRegionCodesForCountryCode(cc)), func(r string) bool { return slices.Contains(mains, r) })
	if mains == nil || len(others) == 0 {
		return ""
	}
	return fmt.Sprintf("+%s allows %s only; the other regions sharing +%s (%s) need rules of their own prefixes", digits, strings.Join(mains, " and "), digits, strings.Join(others, ", "))
}

// rangesUnder caches regionHasNumbersUnder: a deck has a bounded number
// of rows, and the answer is asked on the gate's path.
var rangesUnder sync.Map // region + "/" + digits -> bool

// regionHasNumbersUnder reports whether region has numbers of some type
// (fixed line, mobile, premium...) whose national significant number
// begins with digits. The per-type ranges are used, not the region's
// general pattern: GB's general one covers the Crown dependencies'.
func regionHasNumbersUnder(region, digits string) bool {
	key := region + "/" + digits
	if v, ok := rangesUnder.Load(key); ok {
		return v.(bool)
	}
	md := regionMetadata()[region]
	found := md == nil // unknown: assume the worst
	if md != nil {
		for _, d := range []*phonenumbers.PhoneNumberDesc{md.GetFixedLine(), md.GetMobile(), md.GetTollFree(), md.GetPremiumRate(),
			md.GetSharedCost(), md.GetPersonalNumber(), md.GetVoip(), md.GetPager(), md.GetUan(), md.GetVoicemail()} {
			if p := d.GetNationalNumberPattern(); p != "" && languageHasPrefix(p, digits) {
				found = true
				break
			}
		}
	}
	rangesUnder.Store(key, found)
	return found
}

// HighRiskMatcher finds the high-risk list entry covering an E.164 number.
type HighRiskMatcher interface {
	MatchHighRisk(e164 string) (description string, ok bool)
}

// Classify normalises dialled to E.164 under plan and classifies it; hr
// may be nil (no high-risk list).
//
// The order: emergency numbers (IsEmergency) first, then internal
// extensions (at most plan.InternalMaxLen digits, but for short codes and
// national numbers that cost money), then the number is
// parsed with libphonenumber from the plan's country, after the plan's
// international or national prefix. Class is the first that applies
// of: high_risk (hr matches the E.164), premium, international (any
// region other than the plan's, even inside +1: Jamaica from the US),
// tollfree, mobile, national. Anything that is not a possible full
// number nor a valid short code of the country is ClassUnknown: that
// includes local dialling without the area code (NANP 7 digits), whose
// destination cannot be known. So is a carrier or feature code dialled
// before a number (GB 141, DE 01013; number_access.go), whose carrier
// connects what follows, with Why saying so; but a caller ID code
// before exactly an emergency number (GB 141 999) is that emergency
// number.
func Classify(dialled string, plan NumberPlan, hr HighRiskMatcher) (n Number) {
	n = Number{Dialled: dialled, Class: ClassUnknown, Type: TypeUnknown}
	country := strings.ToUpper(strings.TrimSpace(plan.Country))
	// Before the cleaning, which refuses a * or # inside the number
	// (US *67 911, DE #31# 110).
	if why, ok := callerIDEmergency(dialled, country); ok {
		n.Class, n.Type, n.Why = ClassEmergency, TypeShortCode, why
		return n
	}
	digits, plus, ok := cleanDialled(dialled)
	if !ok {
		return n
	}
	if !plus && emergencyDigits(digits, country) {
		n.Class, n.Type = ClassEmergency, TypeShortCode
		return n
	}
	maxInternal := plan.InternalMaxLen
	if maxInternal <= 0 {
		maxInternal = DefaultInternalMaxLen
	}
	if !plus && len(digits) <= maxInternal {
		// A number this short reaching the gate goes to a trunk (the
		// include guards outbound routes): one of the country's short
		// codes that costs money, or whose cost is unknown, is that
		// short code, not an extension (GB 155, the international
		// operator; US 411). A free one stays internal.
		if extensionLengthShortCode(&n, digits, country) {
			return n
		}
		// So is such a short code after a caller ID code (GB 141 155):
		// the carrier connects it.
		if why := callerIDCodeBeforeShortCode(digits, country); why != "" {
			n.Why, n.ExtensionLength = why, true
			return n
		}
		// So is a whole national number this short (AD 912345 and HK
		// 90031 are premium-rate numbers): it is that number, unless
		// it is free.
		if len(digits) > 1 {
			whole := plan
			whole.InternalMaxLen = len(digits) - 1
			if w := Classify(dialled, whole, hr); w.E164 != "" && w.Type != TypeUnknown && w.Type != TypeTollFree {
				w.ExtensionLength = true
				return w
			}
		}
		n.Class = ClassInternal
		return n
	}

	intl := plus
	if !plus && plan.IntlPrefix != "" && len(digits) > len(plan.IntlPrefix) && strings.HasPrefix(digits, plan.IntlPrefix) {
		digits, intl = digits[len(plan.IntlPrefix):], true
	}
	// libphonenumber strips the country's own national prefix (and its
	// own IDD) itself; strip a plan's different one here.
	afterPrefix := false
	if !intl && plan.NationalPrefix != "" && len(digits) > len(plan.NationalPrefix) &&
		strings.HasPrefix(digits, plan.NationalPrefix) &&
		plan.NationalPrefix != phonenumbers.GetNddPrefixForRegion(country, true) {
		digits, afterPrefix = digits[len(plan.NationalPrefix):], true
	}
	if !intl && regionMetadata()[country] == nil {
		return n // a national number needs a country to mean anything
	}
	// A code before a number (GB 141, US 101XXXX): whatever the whole
	// reads as, the carrier connects what follows (number_access.go).
	// Only a short code, overdialled, keeps its reading.
	if !intl {
		if why := accessCodeWhy(plan, country, digits, afterPrefix); why != "" {
			defer func() {
				if !n.Short {
					n = Number{Dialled: dialled, Class: ClassUnknown, Type: TypeUnknown, Why: why}
				}
			}()
		}
	}

	var pn phonenumbers.PhoneNumber
	input, region := digits, country
	if intl {
		input, region = "+"+digits, "ZZ"
	}
	if err := phonenumbers.ParseToNumber(input, region, &pn); err != nil {
		return n
	}
	if why := carrierSelectionWhy(&pn); why != "" {
		n.Why = why
		return n
	}
	// An international number is dialled as it stands: the trunk sends
	// every digit. libphonenumber may drop some of a number it finds too
	// long (Russia's national prefix 8: 00780912345670, premium +7 809
	// with a digit more, parsed as +70912345670), so the number judged
	// would not be the one dialled. When it rewrote the digits, the
	// result must be a valid number (+44 0 20..., a national prefix
	// dialled after the country code, is London's +44 20...); else the
	// number is unknown, and denied. (An account's plan usually leaves
	// the IDD to libphonenumber: then the digits must end with it.)
	e164 := phonenumbers.Format(&pn, phonenumbers.E164)
	whole := e164[1:]
	rewritten := intl && whole != digits ||
		!intl && int(pn.GetCountryCode()) != phonenumbers.GetCountryCodeForRegion(country) && !strings.HasSuffix(digits, whole)
	if rewritten && numberType(&pn) == phonenumbers.UNKNOWN {
		return n
	}
	if phonenumbers.IsPossibleNumberWithReason(&pn) != phonenumbers.IS_POSSIBLE {
		if !intl {
			classifyShortCode(&n, &pn, country)
		}
		return n
	}

	if len(e164) > 1+15 {
		// E.164 has at most 15 digits. The metadata allows longer
		// national numbers in a few countries (Japan's domestic-only
		// ranges): they cannot be called from abroad or rated, so they
		// stay unknown, and the gate denies them.
		return n
	}
	// For a valid number this is the region whose ranges it is in; for
	// an invalid one, the code's region where it has only one, else "".
	n.Region = phonenumbers.GetRegionCodeForNumber(&pn)
	typ := numberType(&pn)
	// IsValidNumber is exactly "has a type in its region"; asking it
	// would run the library's costly type matching twice more.
	if typ == phonenumbers.UNKNOWN {
		// A national short code that also has a possible length (DE
		// 118 33, directory enquiries) is priced as a short code.
		if !intl && classifyShortCode(&n, &pn, country) {
			return n
		}
		// Possible but not valid: a range the metadata does not know yet,
		// or junk. Keep it only if its E.164 form reads back the same
		// (leading zeros do not).
		var again phonenumbers.PhoneNumber
		if phonenumbers.ParseToNumber(e164, "ZZ", &again) != nil || phonenumbers.Format(&again, phonenumbers.E164) != e164 {
			n.Region = ""
			return n
		}
		// Overdialled: a premium number or a short code with digits
		// added (DE 0900 1234567 0, 118 330). Open numbering plans take
		// those lengths as possible, and carriers connect the number and
		// drop the rest, so it costs what its leading part costs.
		if t, ok := overdialledPremium(&pn); ok {
			typ = t
		} else if t, ok := underdialledPremium(&pn); ok {
			typ = t
		} else if !intl && overdialledShortCode(&n, &pn, country) {
			return n
		}
	}
	n.E164 = e164
	// An unknown region counts as international: failing towards the
	// stricter rules is the safe side for a toll-fraud guard.
	n.International = n.Region != country
	n.Type = typeName(typ)
	if hr != nil {
		n.HighRisk, _ = hr.MatchHighRisk(n.E164)
	}
	switch {
	case n.HighRisk != "":
		n.Class = ClassHighRisk
	case n.Is(ClassPremium):
		n.Class = ClassPremium
	case n.International:
		n.Class = ClassInternational
	case n.Type == TypeTollFree:
		n.Class = ClassTollFree
	case n.Type == TypeMobile:
		n.Class = ClassMobile
	default:
		n.Class = ClassNational
	}
	return n
}

// classifyShortCode classifies a national short code (GB 118 118, FR
// 118 712) from libphonenumber's short-number metadata. The library
// knows the cost of some (premium, toll free), not all; the policy
// refuses the others. They have no E.164 form: "+44118118" would be a
// number in Reading, and a rate deck's +441 would price it. It reports
// whether pn is a short code; if not, n is untouched.
func classifyShortCode(n *Number, pn *phonenumbers.PhoneNumber, country string) bool {
	nsn := phonenumbers.GetNationalSignificantNumber(pn)
	if !phonenumbers.IsValidShortNumberForRegion(pn, country) {
		re := extraShortCodes[country]
		if re == nil || !re.MatchString(nsn) {
			return false
		}
		// Cost unknown: denied like the metadata's own.
		n.Region, n.Short = country, true
		n.Class, n.Type = ClassNational, TypeShortCode
		return true
	}
	md := shortMetadata()[country]
	n.Region, n.Short = country, true
	switch {
	case md != nil && matchDesc(nsn, md.GetPremiumRate()):
		n.Class, n.Type = ClassPremium, TypePremiumRate
	case md != nil && matchDesc(nsn, md.GetTollFree()):
		n.Class, n.Type = ClassTollFree, TypeTollFree
	default:
		n.Class, n.Type = ClassNational, TypeShortCode
	}
	return true
}

// extraShortCodes are national short codes that libphonenumber's
// short-number metadata (v1.8.1) lacks, by country, as whole-number
// patterns of the national digits. Their cost is unknown to tollguard,
// so the gate denies them (rate_ceiling) unless listed in [gate]
// free_short_codes. Keep it to ranges with an official source.
var extraShortCodes = map[string]*regexp.Regexp{
	// Austria: 118 xyz, directory enquiry services (RTR, KEM-V 2009 and
	// the Austrian numbering plan: "Rufnummernbereich 118" for
	// Auskunftsdienste). Without it 118877 reads as a Vienna number,
	// +43 1 18877, and was priced as a national call.
	"AT": regexp.MustCompile(`^118\d{3}$`),
	// Finland: 118, directory enquiries (Traficom's numbering
	// regulation M 32 reserves it for numerotiedustelu). It passed as an
	// internal extension, and as an emergency number on the include's
	// line of a PBX with Swiss, Italian or Japanese accounts too.
	"FI": regexp.MustCompile(`^118$`),
}

// numberType is libphonenumber's type of pn, but PREMIUM_RATE in the
// ranges of extraPremium, whatever the library says of them.
func numberType(pn *phonenumbers.PhoneNumber) phonenumbers.PhoneNumberType {
	if re := extraPremium[int(pn.GetCountryCode())]; re != nil && re.MatchString(phonenumbers.GetNationalSignificantNumber(pn)) {
		return phonenumbers.PREMIUM_RATE
	}
	return phonenumbers.GetNumberType(pn)
}

// extraPremium are premium-rate ranges that libphonenumber's metadata
// (v1.8.1) does not type as such, by calling code, as whole-number
// patterns of the national significant number. Without them a number
// there read as an ordinary national one of unknown type, priced by the
// deck's country row or, with none, free. Keep it to ranges with an
// official source.
var extraPremium = map[int]*regexp.Regexp{
	// Spain: 905 (mass calling and televoting, charged per call) and 907
	// are servicios de tarificación adicional, as 803, 806 and 807, which
	// the metadata has (SETSI resolution of 4 December 2008 attributing
	// 905 to tarificación adicional; Orden IET/2733/2015 on the numbering
	// of tarificación adicional services; CNMC's numbering plan).
	34: regexp.MustCompile(`^90[57]\d{6}$`),
	// United Arab Emirates: 900 is the premium-rate code of the national
	// numbering plan (TDRA); the metadata types only the 9000 and 9002
	// blocks it has seen, so 9001 and 9003-9009 read as national numbers.
	971: regexp.MustCompile(`^900\d{6}$`),
}

// extensionLengthShortCode classifies digits, no longer than an
// internal extension, as one of country's short codes that costs money
// or whose cost libphonenumber does not know. In the NANP only the
// three-digit N11 codes count: the four-digit ones are SMS codes, and
// four-digit extensions are common.
// It reports whether it did; if not, n is untouched.
func extensionLengthShortCode(n *Number, digits, country string) bool {
	if regionMetadata()[country] == nil {
		return false
	}
	if phonenumbers.GetCountryCodeForRegion(country) == 1 {
		if nanpOperator(digits) {
			// 0 (the local operator) and 00 (the long-distance
			// carrier's) place calls anywhere, billed to the line:
			// libphonenumber does not list them, and their cost is
			// unknown.
			*n = Number{Dialled: n.Dialled, Class: ClassNational, Type: TypeShortCode, Region: country, Short: true, ExtensionLength: true}
			return true
		}
		if len(digits) != 3 {
			return false
		}
	}
	var pn phonenumbers.PhoneNumber
	if phonenumbers.ParseToNumber(digits, country, &pn) != nil {
		return false
	}
	sc := *n
	if !classifyShortCode(&sc, &pn, country) || sc.Class == ClassTollFree {
		return false
	}
	*n = sc
	n.ExtensionLength = true
	return true
}

// nanpOperator reports the NANP's operator codes: 0 and 00.
func nanpOperator(digits string) bool { return digits == "0" || digits == "00" }

// shorterForms calls f with pn cut to each shorter national number,
// longest first, down to shortest digits (at least three), until f says
// stop. A negative shortest counts back from pn's length.
func shorterForms(pn *phonenumbers.PhoneNumber, shortest int, f func(*phonenumbers.PhoneNumber) bool) {
	nsn := phonenumbers.GetNationalSignificantNumber(pn)
	cc := strconv.Itoa(int(pn.GetCountryCode()))
	if shortest < 0 {
		shortest += len(nsn)
	}
	for l := len(nsn) - 1; l >= max(shortest, 3); l-- {
		var p phonenumbers.PhoneNumber
		if phonenumbers.ParseToNumber("+"+cc+nsn[:l], "ZZ", &p) != nil {
			continue
		}
		if f(&p) {
			return
		}
	}
}

// overdialledPremium reports whether a leading part of an invalid pn is
// a valid premium-rate or personal number (both gated as premium), and
// which.
func overdialledPremium(pn *phonenumbers.PhoneNumber) (typ phonenumbers.PhoneNumberType, premium bool) {
	shorterForms(pn, 3, func(p *phonenumbers.PhoneNumber) bool {
		typ = numberType(p)
		premium = typ == phonenumbers.PREMIUM_RATE || typ == phonenumbers.PERSONAL_NUMBER
		return premium
	})
	return typ, premium
}

// underdialledPremium reports whether an invalid pn is a premium-rate or
// personal number with up to maxUnderdial digits missing (DE 0900
// 123456, GB 0909 879000), and which. Where numbers have several
// lengths the network may connect it as it stands, or wait for the
// caller's next digits, which the gate never sees: it is gated as the
// number it begins, not priced as an ordinary national one. Each
// missing tail is tried as one repeated digit, which the metadata's
// patterns (ranges ending in \d{n}) accept when any tail does.
func underdialledPremium(pn *phonenumbers.PhoneNumber) (phonenumbers.PhoneNumberType, bool) {
	nsn := phonenumbers.GetNationalSignificantNumber(pn)
	cc := int(pn.GetCountryCode())
	regions := phonenumbers.GetRegionCodesForCountryCode(cc)
	// libphonenumber keeps a national prefix whose removal leaves a
	// length the region never has (FR 0891 23456, CH 0900 12345, US 1
	// 900 555 123, GB 0909 87900): the number begun is the one after it.
	bases := []string{nsn}
	for _, region := range regions {
		if md := regionMetadata()[region]; md != nil {
			if np := md.GetNationalPrefix(); np != "" && len(nsn) > len(np) && strings.HasPrefix(nsn, np) && !slices.Contains(bases, nsn[len(np):]) {
				bases = append(bases, nsn[len(np):])
			}
		}
	}
	shortest := len(bases[len(bases)-1]) // bases are appended shorter
	tails := func(l int) []string {
		var out []string
		for _, b := range bases {
			if l <= len(b) || l > len(b)+maxUnderdial {
				continue
			}
			for d := '0'; d <= '9'; d++ {
				out = append(out, b+strings.Repeat(string(d), l-len(b)))
			}
		}
		return out
	}
	if re := extraPremium[cc]; re != nil {
		for l := shortest + 1; l <= len(nsn)+maxUnderdial; l++ {
			for _, t := range tails(l) {
				if re.MatchString(t) {
					return phonenumbers.PREMIUM_RATE, true
				}
			}
		}
	}
	for _, region := range regions {
		md := regionMetadata()[region]
		if md == nil {
			continue
		}
		for _, c := range []struct {
			typ  phonenumbers.PhoneNumberType
			desc *phonenumbers.PhoneNumberDesc
		}{{phonenumbers.PREMIUM_RATE, md.GetPremiumRate()}, {phonenumbers.PERSONAL_NUMBER, md.GetPersonalNumber()}} {
			if c.desc.GetNationalNumberPattern() == "" {
				continue
			}
			lengths := c.desc.GetPossibleLength()
			if len(lengths) == 0 {
				// The metadata leaves out a type's lengths when they are
				// the region's own (FR).
				lengths = md.GetGeneralDesc().GetPossibleLength()
			}
			for _, l := range lengths {
				for _, t := range tails(int(l)) {
					if phonenumbers.MatchNationalNumber(t, c.desc, false) {
						return c.typ, true
					}
				}
			}
		}
	}
	return phonenumbers.UNKNOWN, false
}

// maxUnderdial is how many digits missing from a premium-rate or
// personal number still count as that number.
const maxUnderdial = 3

// overdialledShortCode classifies an invalid national pn whose leading
// part is one of country's short codes, with at most maxOverdial digits
// after it, as that short code. Only a few: a number of an unknown new
// range is not a short code with digits added (US SMS codes are any 5 or
// 6 digits, the start of every NANP number).
func overdialledShortCode(n *Number, pn *phonenumbers.PhoneNumber, country string) (found bool) {
	shorterForms(pn, -maxOverdial, func(p *phonenumbers.PhoneNumber) bool {
		found = classifyShortCode(n, p, country)
		return found
	})
	return found
}

// maxOverdial is how many digits dialled after a short code still count
// as that short code.
const maxOverdial = 3

func matchDesc(nsn string, d *phonenumbers.PhoneNumberDesc) bool {
	if d == nil {
		return false
	}
	if len(d.PossibleLength) > 0 {
		found := false
		for _, l := range d.PossibleLength {
			found = found || int(l) == len(nsn)
		}
		if !found {
			return false
		}
	}
	return phonenumbers.MatchNationalNumber(nsn, d, false)
}

func typeName(t phonenumbers.PhoneNumberType) string {
	switch t {
	case phonenumbers.FIXED_LINE:
		return TypeFixedLine
	case phonenumbers.MOBILE:
		return TypeMobile
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return TypeFixedLineOrMobile
	case phonenumbers.TOLL_FREE:
		return TypeTollFree
	case phonenumbers.PREMIUM_RATE:
		return TypePremiumRate
	case phonenumbers.SHARED_COST:
		return TypeSharedCost
	case phonenumbers.VOIP:
		return TypeVoIP
	case phonenumbers.PERSONAL_NUMBER:
		return TypePersonalNumber
	case phonenumbers.PAGER:
		return TypePager
	case phonenumbers.UAN:
		return TypeUAN
	case phonenumbers.VOICEMAIL:
		return TypeVoicemail
	}
	return TypeUnknown
}

// maxDialled bounds what is worth parsing: 15 E.164 digits plus the
// longest international prefix, with room to spare.
const maxDialled = 24

// cleanDialled strips what people and phones add around the digits:
// visual separators, one trailing '#' (the "dial now" key), a leading
// '+'. ok is false for anything else (letters, '*', empty).
func cleanDialled(s string) (digits string, plus, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, "#")
	if strings.HasPrefix(s, "+") {
		plus, s = true, s[1:]
	}
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			continue
		}
		if !isSeparator(c) {
			return "", false, false
		}
		clean = false
	}
	if !clean {
		var b strings.Builder
		b.Grow(len(s))
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= '0' && c <= '9' {
				b.WriteByte(c)
			}
		}
		s = b.String()
	}
	if s == "" || len(s) > maxDialled {
		return "", false, false
	}
	return s, plus, true
}

func isSeparator(c byte) bool {
	switch c {
	case ' ', '\t', '-', '.', '(', ')', '/':
		return true
	}
	return false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// regionMetadata indexes libphonenumber's territory metadata by region,
// for the prefixes the library does not export.
var regionMetadata = sync.OnceValue(func() map[string]*phonenumbers.PhoneMetadata {
	return indexMetadata(phonenumbers.MetadataCollection())
})

// shortMetadata indexes the short-number metadata (costs of short codes).
var shortMetadata = sync.OnceValue(func() map[string]*phonenumbers.PhoneMetadata {
	return indexMetadata(phonenumbers.ShortNumberMetadataCollection())
})

func indexMetadata(c *phonenumbers.PhoneMetadataCollection, err error) map[string]*phonenumbers.PhoneMetadata {
	m := make(map[string]*phonenumbers.PhoneMetadata)
	if err != nil {
		// The library panics at init on bad embedded data, so this
		// cannot happen; an empty index only makes every lookup miss.
		return m
	}
	for _, md := range c.GetMetadata() {
		m[md.GetId()] = md
	}
	return m
}
