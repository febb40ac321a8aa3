package tollguard

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// TestsAudit finds extensions that look like test or demo ones, by
// name, caller ID or description (TestPatterns, case-insensitive
// regular expressions; default test, demo, temp, 9999). With apply it
// blocks them and purges them after the grace period, as stale does.
type TestsAudit struct{}

func (TestsAudit) Name() string { return "tests" }

// CompileTestPatterns compiles the tests audit's patterns, for config
// validation.
func CompileTestPatterns(pats []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(pats))
	for _, p := range pats {
		re, err := regexp.Compile("(?i)" + p)
		if err != nil {
			return nil, Errorf(EINVALID, "test pattern %q: %v", p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func (TestsAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "tests", apply, p)
	s := env.Settings.WithDefaults()
	res, err := CompileTestPatterns(s.TestPatterns)
	if err != nil {
		return r.result(err)
	}
	inv, uses, err := r.purgeSweep(ctx, "only the store's names, caller IDs and descriptions are checked")
	if err != nil {
		return r.result(err)
	}
	now := env.now()
	for n, i := range inv {
		r.progress.report(n+1, len(inv), i.Name)
		fields := map[string]string{"name": i.Name}
		if i.Store != nil {
			fields["caller_id"], fields["description"] = i.Store.CallerID, i.Store.Description
		}
		var ep ConfigObject // read once: for its caller ID and, if it matches, whether it is a trunk
		var unsure error    // the endpoint could not be read: it may be a trunk
		if i.InAsterisk && env.Asterisk != nil {
			var err error
			if ep, err = env.Asterisk.ConfigObject(ctx, "endpoint", i.Name); err != nil && ErrorCode(err) != ENOTFOUND {
				unsure = fmt.Errorf("read endpoint %s: %w", i.Name, err)
			}
			// Asterisk's caller ID is the one calls carry.
			if ep != nil {
				if cid := cleanCallerID(ep.Get("callerid")); cid != "" {
					fields["asterisk_caller_id"] = cid
				}
			}
		}
		var hits []string
		for _, field := range []string{"name", "caller_id", "asterisk_caller_id", "description"} {
			v := fields[field]
			if v == "" {
				continue
			}
			hit := ""
			for k, re := range res {
				// As written, then as read: "Démo", a Cyrillic е in
				// "tеst" or a zero-width space in "te\u200bst" should not
				// hide a test line from the default patterns.
				for _, w := range []string{v, foldLookalikes(v)} {
					if loc := re.FindStringIndex(w); loc != nil {
						// The default patterns match the character before
						// the word too: show the word.
						m := strings.TrimFunc(w[loc[0]:loc[1]], func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
						hit = fmt.Sprintf("%s %+q matches %q (pattern %q)", strings.ReplaceAll(field, "_", " "), v, m, s.TestPatterns[k])
						break
					}
				}
				if hit != "" {
					hits = append(hits, hit)
					break
				}
			}
		}
		if len(hits) == 0 {
			continue
		}
		f := AuditFinding{Check: AuditCheckTest, Severity: SeverityWarning, Subject: auditExtSubject(i.Name), Extension: i.Name, Account: i.account(),
			Message:  "looks like a test or demo extension (" + strings.Join(hits, "; ") + "); test lines with easy passwords are a classic way in: remove it, or add it to [audit] ignore if it is real",
			Evidence: map[string]any{"matches": hits, "in_asterisk": i.InAsterisk, "in_store": i.Store != nil}}
		// A name is a weak sign ("Shirley Temple" matches temp): one in
		// use, or a trunk, is reported but never blocked or purged.
		why, err := r.inUse(ctx, i, uses, now.Add(-s.StaleAfter))
		if why != "" {
			f.Message += "; it is in use (" + why + "), so tollguard only reports it"
			r.find(f)
			continue
		}
		if unsure == nil {
			unsure = err
		}
		if why := trunkReason(ep); ep != nil && why != "" {
			f.Message += "; it looks like a trunk (" + why + "), so tollguard only reports it"
			r.find(f)
			continue
		}
		// A line created or first seen within the purge grace may not
		// be provisioned yet: a new "Demo room" phone is reported, and
		// acted on once it has had that long to show use.
		if known := i.knownSince(); !known.IsZero() && known.After(now.Add(-s.PurgeGrace)) {
			f.Message += "; it is new (since " + known.UTC().Format("2006-01-02") + "), so tollguard only reports it for now"
			r.find(f)
			continue
		}
		if unsure != nil {
			r.find(unsureFinding(f, unsure))
			continue
		}
		if i.storeOnly(env) {
			// Nothing in Asterisk to purge, as the stale audit says.
			f.Severity = SeverityInfo
			f.Message += "; it is in tollguard's store but not in Asterisk: " + storeOnlyAdvice(i.Name)
			r.find(f)
			continue
		}
		r.purgeCandidate(ctx, f, "looks like a test extension: "+strings.Join(hits, "; "), "")
	}
	return r.result(nil)
}

// lookalikes maps Cyrillic and Greek letters to the Latin ones they are
// drawn like.
var lookalikes = strings.NewReplacer(
	"а", "a", "е", "e", "о", "o", "р", "p", "с", "c", "у", "y", "х", "x", "і", "i", "ѕ", "s", "ј", "j", "ԁ", "d", "ԛ", "q", "ԝ", "w",
	"А", "A", "В", "B", "Е", "E", "К", "K", "М", "M", "Н", "H", "О", "O", "Р", "P", "С", "C", "Т", "T", "Х", "X", "І", "I", "Ѕ", "S", "Ј", "J",
	"Α", "A", "Β", "B", "Ε", "E", "Ζ", "Z", "Η", "H", "Ι", "I", "Κ", "K", "Μ", "M", "Ν", "N", "Ο", "O", "Ρ", "P", "Τ", "T", "Υ", "Y", "Χ", "X",
	"ο", "o", "ν", "v", "ι", "i", "κ", "k",
	"ᴀ", "a", "ᴅ", "d", "ᴇ", "e", "ᴍ", "m", "ᴏ", "o", "ᴘ", "p", "ᴛ", "t", "ꜱ", "s",
)

// foldLookalikes gives s as a reader sees it: compatibility forms
// (fullwidth, mathematical bold) as their letters, accents and
// invisible format characters (zero-width space, joiners) dropped,
// Cyrillic and Greek look-alikes as Latin, any other letter as x.
func foldLookalikes(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		b.WriteRune(r)
	}
	// A letter the table leaves alone must stay a letter: as a non-Latin
	// one it would match [^a-z] and end a word (ТЕМРЮК, a town, is not
	// TEMP). The original form is matched as well, for patterns written
	// in other scripts.
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII && unicode.IsLetter(r) {
			return 'x'
		}
		return r
	}, lookalikes.Replace(b.String()))
}
