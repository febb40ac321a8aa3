package tollguard

// SweepSightings is how many first sightings of gone calls the policy
// keeps for its next sweep.
func SweepSightings(p *Policy) int {
	p.sweepMu.Lock()
	defer p.sweepMu.Unlock()
	return len(p.sweepGone)
}

// LanguageHasPrefix is languageHasPrefix, for its table test.
var LanguageHasPrefix = languageHasPrefix

// CallerIDCodes lists country's caller ID codes (callerIDCodes).
func CallerIDCodes(country string) []string {
	var codes []string
	for _, c := range callerIDCodes[country] {
		codes = append(codes, c.code)
	}
	return codes
}
