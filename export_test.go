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
