package tollguard

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

// NumberPlan is how an account dials: its country and its national and
// international prefixes.
type NumberPlan struct {
	Country        string // ISO 3166-1 alpha-2, e.g. "GB", "US"
	NationalPrefix string // "0" in GB/DE/FR, "1" in NANP; "" means the country's own
	IntlPrefix     string // "00", "011"; "" means the country's own
	InternalMaxLen int    // dialled strings of at most this many digits that are not emergency numbers are internal (default 4)
}

// Number is a dialled number, normalised and classified.
type Number struct {
	Dialled string
	E164    string // "+442079460000"; "" for emergency, internal and unparseable numbers
	Class   Class  // the most specific class, see Classify
	Region  string // ISO region of the destination ("GB", "JM"), "" if unknown
	// International is true when the destination is outside the plan's
	// country, whatever Class says (an international premium number is
	// Class premium and International true).
	International bool
	Type          string // libphonenumber's type: fixed_line, mobile, premium_rate, toll_free, shared_cost, voip, personal_number, uan, unknown
	HighRisk      string // the matching high-risk list entry's description, "" if none
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
		return n.Type == "premium_rate"
	case ClassHighRisk:
		return n.HighRisk != ""
	}
	return false
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

// HighRiskMatcher finds the high-risk list entry covering an E.164 number.
type HighRiskMatcher interface {
	MatchHighRisk(e164 string) (description string, ok bool)
}
