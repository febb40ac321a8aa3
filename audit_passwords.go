package tollguard

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// PasswordsAudit judges the password of every PJSIP auth object the
// endpoints reference, read through ARI (the endpoint list gives the
// endpoints; ARI cannot list auth objects that no endpoint uses). Weak
// means empty, equal to the username or extension, on the default list,
// shorter than PasswordMinLength, or under the zxcvbn score threshold;
// a stored digest (md5_cred, password_digest) is weak when it is the
// digest of a guessable password (judgeDigests). With apply it rotates
// weak passwords to generated ones, except beside a stored digest.
type PasswordsAudit struct{}

func (PasswordsAudit) Name() string { return "passwords" }

func (PasswordsAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "passwords", apply, p)
	s := env.Settings.WithDefaults()
	if !r.needAsterisk("SIP passwords cannot be read") {
		return r.result(nil)
	}
	eps, err := pjsipEndpoints(ctx, env.Asterisk)
	if err != nil {
		return r.result(err)
	}
	judged := map[string]bool{}
	byPassword := map[string][]string{} // password -> "auth (endpoint EXT)"
	realm := &defaultRealm{}
	for n, e := range eps {
		r.progress.report(n+1, len(eps), e.Resource)
		if s.ignored(e.Resource) {
			continue
		}
		ep, err := env.Asterisk.ConfigObject(ctx, "endpoint", e.Resource)
		if err != nil {
			return r.result(fmt.Errorf("read endpoint %s: %w", e.Resource, err))
		}
		known, err := r.lineNames(ctx, e.Resource, ep)
		if err != nil {
			return r.result(err)
		}
		for _, id := range splitObjectIDs(ep.Get("auth")) {
			if judged[id] {
				continue
			}
			judged[id] = true
			if err := r.judgeAuth(ctx, e.Resource, id, s, known, byPassword, realm); err != nil {
				return r.result(err)
			}
		}
	}
	r.sharedPasswords(byPassword)
	return r.result(nil)
}

// sharedPasswords reports a password held by more than one auth: one
// phone's leaked configuration then opens every line that uses it.
func (r *auditRun) sharedPasswords(byPassword map[string][]string) {
	var groups [][]string
	for _, users := range byPassword {
		if len(users) > 1 {
			sort.Strings(users)
			groups = append(groups, users)
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i][0] < groups[j][0] })
	for _, users := range groups {
		ids := make([]string, len(users))
		for i, u := range users {
			ids[i], _, _ = strings.Cut(u, " ")
		}
		r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: SeverityWarning, Subject: "auth:" + strings.Join(ids, ","),
			Message: fmt.Sprintf("%d auths share one SIP password (%s): whoever reads it from one phone can register as, and call from, all of them; "+
				"give each its own with `tollguard ext rotate-password EXT` for all but one, and update those phones", len(users), strings.Join(users, ", ")),
			Evidence: map[string]any{"auths": users}})
	}
}

// lineNames returns what an attacker may know of extension ext besides
// its number: its caller IDs, description, and its account's ID and name.
func (r *auditRun) lineNames(ctx context.Context, ext string, ep ConfigObject) ([]string, error) {
	known := []string{cleanCallerID(ep.Get("callerid")), ep.Get("accountcode")}
	e, err := r.env.Store.Extension(ctx, ext)
	if ErrorCode(err) == ENOTFOUND {
		return known, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read extension %s: %w", ext, err)
	}
	known = append(known, e.CallerID, e.Description, e.Account)
	if e.Account != "" {
		a, err := r.env.Store.Account(ctx, e.Account)
		if err != nil && ErrorCode(err) != ENOTFOUND {
			return nil, fmt.Errorf("read account %s: %w", e.Account, err)
		}
		if a != nil {
			known = append(known, a.Name)
		}
	}
	return known, nil
}

func (r *auditRun) judgeAuth(ctx context.Context, ext, id string, s AuditSettings, known []string, byPassword map[string][]string, dr *defaultRealm) error {
	env := r.env
	auth, err := env.Asterisk.ConfigObject(ctx, "auth", id)
	if ErrorCode(err) == ENOTFOUND {
		r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: SeverityWarning, Subject: auditExtSubject(ext), Extension: ext,
			Message: fmt.Sprintf("endpoint %s names auth %s, which does not exist: check pjsip.conf", ext, id)})
		return nil
	}
	if err != nil {
		return fmt.Errorf("read auth %s: %w", id, err)
	}
	subj := auditExtSubject(ext)
	// Asterisk 22 treats userpass and md5 as digest: the stored digests,
	// not auth_type, say what it checks. Others (google_oauth) hold none.
	if t := auth.Get("auth_type"); t != "" && t != "userpass" && t != "md5" && t != "digest" {
		r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: SeverityInfo, Subject: subj, Extension: ext,
			Message: fmt.Sprintf("auth %s uses auth_type=%s, so its password cannot be judged", id, t)})
		return nil
	}
	if len(authDigests(auth)) > 0 {
		return r.judgeDigests(ctx, ext, id, auth, s, known, dr)
	}
	why := PasswordWeakness(auth.Get("password"), auth.Get("username"), ext, s, known...)
	if len(why) == 0 {
		// A weak one is reported, and rotated, on its own.
		byPassword[auth.Get("password")] = append(byPassword[auth.Get("password")], id+" (endpoint "+ext+")")
		return nil
	}
	r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: passwordSeverity(why), Subject: subj, Extension: ext, Fixable: true,
		Message: fmt.Sprintf("SIP password of auth %s is weak: %s; SIP scanners guess such passwords within minutes: run `tollguard ext rotate-password %s` (or `tollguard audit passwords --apply`) and update the phone",
			id, strings.Join(why, ", "), ext),
		Evidence: map[string]any{"auth": id, "username": auth.Get("username"), "reasons": why}})
	if !r.apply {
		return nil
	}
	pw, err := env.newPassword(ext, s)
	if err != nil {
		return err
	}
	if err := env.putPassword(ctx, id, []ConfigField{{"password", pw}}, auth.Get("password"), pw); err != nil {
		if errors.Is(err, ErrUnconfirmed) {
			// It may be in force: thrown away, the phone could never
			// be given it.
			r.act(AuditAction{Kind: AuditActRotatePassword, Subject: subj, Secret: pw,
				Message: "the password of auth " + id + " may have been rotated to the new one shown below (unconfirmed)", Err: ErrorMessage(err)})
			return nil
		}
		msg := "could not rotate the password of auth " + id
		if r.refused(err, "auth") {
			msg += ": Asterisk refused (403); an auth defined in pjsip.conf must be changed there"
		}
		r.act(AuditAction{Kind: AuditActRotatePassword, Subject: subj, Message: msg, Err: ErrorMessage(err)})
		return nil
	}
	r.act(AuditAction{Kind: AuditActRotatePassword, Subject: subj, Secret: pw,
		Message: fmt.Sprintf("rotated the password of auth %s; give the phone the new one (it is printed by the CLI only, and readable in Asterisk: pjsip show auth %s)", id, id)})
	return nil
}

// passwordSeverity is critical for what scanners try first (the
// username, the defaults, nothing), else a warning.
func passwordSeverity(why []string) Severity {
	for _, w := range why {
		if w == "empty" || strings.HasPrefix(w, "equal to") || strings.HasPrefix(w, "a well-known") {
			return SeverityCritical
		}
	}
	return SeverityWarning
}

// judgeDigests judges an auth holding stored digests. Asterisk 22
// challenges incoming requests with each algorithm of the auth's
// supported_algorithms_uas and checks, for each, the stored digest of
// that algorithm, or the plain password when there is none
// (ast_sip_auth_get_creds). A caller answers whichever challenge it
// likes, so every credential in force counts; a weak one not in force is
// a warning, as removing a digest or offering another algorithm puts it
// in force. A digest in upper-case hex is unusable, not weak: Asterisk
// hashes it as written (pjsip_auth_create_digest2), a phone given the
// password the lower-case hex of its own, so that never matches; only a
// client given the digest itself (pjsip's client hashes it as written
// too) can. tollguard does not rotate such an auth (storedDigest).
func (r *auditRun) judgeDigests(ctx context.Context, ext, id string, auth ConfigObject, s AuditSettings, known []string, dr *defaultRealm) error {
	subj := auditExtSubject(ext)
	user, pw := auth.Get("username"), auth.Get("password")
	realm, realmNote, realmFrom := auth.Get("realm"), "", "auth"
	if realm == "" {
		realm, realmNote, realmFrom = dr.get(ctx, r.env)
	}
	c := authCredentials(auth)
	digests, offered, shown, legacy, checks, pwAlgs := c.digests, c.offered, c.shown, c.legacy, c.checks, c.pwAlgs
	authType := auth.Get("auth_type")
	var why []string
	if pw != "" || len(pwAlgs) > 0 {
		why = PasswordWeakness(pw, user, ext, s, known...)
	}

	sev := SeverityInfo
	raise := func(to Severity) {
		if to.Rank() > sev.Rank() {
			sev = to
		}
	}
	var weak, reasons, unjudged, unusable, unusableLabels []string
	weakDigestFound, ownPassword := false, false
	for _, alg := range sortedAlgorithms(digests) {
		cred, label := digests[alg], digestLabel(auth, alg)
		inForce := checks[alg] == label
		if lower := strings.ToLower(cred); lower != cred && digestAlgorithm(alg) != "" {
			// Asterisk hashes a stored digest as written, a phone given
			// the password the lower-case hex of its own: no match. A
			// client given this digest as written hashes the same.
			part := fmt.Sprintf("%s of auth %s is written in upper-case hex: Asterisk uses a stored digest as written, and a phone given the password computes its answer from the lower-case one, so it can never match that answer; only a client given this digest itself, as written (an HA1 credential, such as another Asterisk's md5_cred or password_digest), can authenticate with it", label, id)
			if inForce {
				part += ", and no phone given the password can authenticate with " + alg
			} else {
				part += fmt.Sprintf(" (not checked now, as Asterisk does not use it for %s)", alg)
			}
			if what := weakDigest(alg, lower, user, ext, realm, s, known); what != "" {
				part += fmt.Sprintf("; once written in lower case, it would be the digest of %s (realm %s): replace it, do not just lower-case it", what, realm)
			}
			unusable = append(unusable, part)
			unusableLabels = append(unusableLabels, label)
			raise(SeverityWarning)
			continue
		}
		what, dsev := weakDigest(alg, cred, user, ext, realm, s, known), SeverityCritical
		ofPassword := pw != "" && ha1(alg, user, realm, pw) == cred
		if what == "" && ofPassword && len(why) > 0 {
			what, dsev, ownPassword = "the auth's own password, itself weak ("+strings.Join(why, ", ")+")", passwordSeverity(why), true
		}
		switch {
		case what != "":
			part := fmt.Sprintf("%s of auth %s is the digest of %s (realm %s)", label, id, what, realm)
			if !inForce && legacy && alg == "MD5" {
				part += fmt.Sprintf(", though Asterisk does not check it for incoming requests now (with auth_type=%s, Asterisk before 20.12, 21.7 and 22.2 checks the password, not md5_cred), "+
					"but will once auth_type is md5, or once Asterisk is upgraded (20.12, 21.7, 22.2 and later check a stored digest instead of the password)", authType)
				dsev = minSeverity(dsev, SeverityWarning)
			} else if !inForce {
				part += fmt.Sprintf(", though Asterisk does not check it for incoming requests now (%s is not in supported_algorithms_uas), but will once %s is offered", alg, alg)
				dsev = minSeverity(dsev, SeverityWarning)
			}
			weak = append(weak, part)
			reasons = append(reasons, label+" of "+what)
			weakDigestFound = true
			raise(dsev)
		case inForce && !ofPassword:
			// Only what weakDigest tries: no proof it is strong.
			unjudged = append(unjudged, label)
		}
	}
	// A digest of the password does not stand for the password where
	// Asterisk checks the password itself.
	if len(why) > 0 && (!ownPassword || len(pwAlgs) > 0) {
		part := fmt.Sprintf("SIP password of auth %s is weak: %s", id, strings.Join(why, ", "))
		psev := passwordSeverity(why)
		if len(pwAlgs) == 0 && legacy {
			part += ", though Asterisk does not check it for incoming requests now (with auth_type=md5, Asterisk before 20.12, 21.7 and 22.2 checks md5_cred alone), but will once auth_type is userpass and md5_cred is removed"
			psev = minSeverity(psev, SeverityWarning)
		} else if len(pwAlgs) == 0 {
			part += ", though Asterisk does not check it for incoming requests now (each algorithm it challenges with has a stored digest), but will once a digest is removed or another algorithm offered"
			psev = minSeverity(psev, SeverityWarning)
		}
		weak = append(weak, part)
		reasons = append(reasons, why...)
		raise(psev)
	}
	if len(weak) == 0 && len(unjudged) == 0 && len(unusable) == 0 {
		return nil
	}

	inForce := c.inForce(pw != "")
	unjudgedText := ""
	if len(unjudged) == 1 {
		unjudgedText = fmt.Sprintf("%s is the digest of none of the passwords the audit tries (empty, the username, the extension, the line's names, the default list) in realm %s", unjudged[0], realm)
	} else if len(unjudged) > 1 {
		unjudgedText = fmt.Sprintf("%s are the digests of none of the passwords the audit tries (empty, the username, the extension, the line's names, the default list) in realm %s", joinAnd(unjudged), realm)
	}
	attrs := storedDigest(auth)
	var msg string
	if len(weak) == 0 {
		msg = inForce
		if unjudgedText != "" {
			msg += "; " + unjudgedText
		}
	} else {
		msg = strings.Join(weak, "; ") + ": SIP scanners guess such passwords within minutes"
		if weakDigestFound {
			msg += ", and a digest hides nothing from them"
		}
		msg += "; " + inForce
		if unjudgedText != "" {
			msg += "; " + unjudgedText
		}
		if weakDigestFound {
			msg += fmt.Sprintf("; remove %s from the auth (pjsip.conf or astdb, then reload res_pjsip), then run `tollguard ext rotate-password %s` and update the phone", attrs, ext)
		} else {
			// rotate-password refuses while a digest is stored.
			msg += fmt.Sprintf("; a new password alone would leave the stored digests as they are: remove %s from auth %s (pjsip.conf or astdb, then reload res_pjsip), then rotate the password", attrs, id)
		}
	}
	if len(unusable) > 0 {
		msg = strings.Join(unusable, "; ") + "; " + msg + fmt.Sprintf("; replace %s with a lower-case digest of a strong password, or remove %s from auth %s (pjsip.conf or astdb, then reload res_pjsip)", joinAnd(unusableLabels), attrs, id)
	}
	msg += realmNote
	r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: sev, Subject: subj, Extension: ext, Message: msg,
		Evidence: map[string]any{"auth": id, "username": user, "realm": realm, "realm_from": realmFrom, "reasons": reasons,
			"algorithms": offered, "algorithms_shown": shown, "checks": c.attrs, "unusable": unusableLabels}})
	if r.apply && len(why) > 0 {
		r.act(AuditAction{Kind: AuditActRotatePassword, Subject: subj, Message: "not rotated: auth " + id + " also holds a stored " + attrs + ": " + digestRefusal(auth),
			Err: "remove " + attrs + " from that auth (pjsip.conf or astdb, then reload res_pjsip), then rotate"})
	}
	return nil
}

// authCreds is what Asterisk checks for an auth holding stored digests.
type authCreds struct {
	digests         map[string]string // authDigests
	offered         []string          // uasAlgorithms
	shown, legacy   bool
	checks, attrs   map[string]string // algorithm -> the credential checked, by label and by attribute
	pwAlgs, digAlgs []string          // the algorithms offered whose password, whose digest, is checked
}

// authCredentials says, for each algorithm Asterisk challenges with,
// which credential of auth it checks (ast_sip_auth_get_creds: the stored
// digest of that algorithm, else the password).
func authCredentials(auth ConfigObject) authCreds {
	c := authCreds{digests: authDigests(auth), checks: map[string]string{}, attrs: map[string]string{}}
	c.offered, c.shown = uasAlgorithms(auth)
	// Without supported_algorithms_uas ARI is Asterisk before 20.12, 21.7
	// and 22.2, which picks the credential by auth_type, not by what is
	// stored (res_pjsip_authenticator_digest.c digest_lookup): md5_cred
	// with md5, the password with userpass, a leftover md5_cred unused.
	authType := auth.Get("auth_type")
	c.legacy = !c.shown && authType != "digest"
	for _, a := range c.offered {
		if _, ok := c.digests[a]; ok && (!c.legacy || authType == "md5") {
			c.checks[a], c.attrs[a] = digestLabel(auth, a), digestAttr(auth, a)
			c.digAlgs = append(c.digAlgs, a)
		} else {
			c.checks[a], c.attrs[a] = "the password", "password"
			c.pwAlgs = append(c.pwAlgs, a)
		}
	}
	return c
}

// inForce says what Asterisk challenges with and checks: "Asterisk
// challenges incoming requests with SHA-256, MD5 (supported_algorithms_uas)
// and checks ...". hasPassword adds that the password is not checked.
func (c authCreds) inForce(hasPassword bool) string {
	s := "Asterisk challenges incoming requests with " + strings.Join(c.offered, ", ") + " (supported_algorithms_uas)"
	if c.legacy {
		s = "Asterisk challenges incoming requests with MD5 (ARI shows no supported_algorithms_uas, as before Asterisk 20.12, 21.7 and 22.2, which offer MD5 alone and check md5_cred only with auth_type=md5)"
	} else if !c.shown {
		s = "Asterisk challenges incoming requests with MD5 (assumed: ARI shows no supported_algorithms_uas, and MD5 is Asterisk's default)"
	}
	s += " and checks " + joinAnd(groupByCredential(c.offered, c.checks))
	if hasPassword && len(c.pwAlgs) == 0 {
		s += ", not the password"
	}
	return s
}

func minSeverity(a, b Severity) Severity {
	if a.Rank() < b.Rank() {
		return a
	}
	return b
}

// groupByCredential says what Asterisk checks for the algorithms it
// offers, one phrase per credential in the order offered: "the password
// for MD5, SHA-512-256".
func groupByCredential(offered []string, checks map[string]string) []string {
	var order []string
	algs := map[string][]string{}
	for _, a := range offered {
		c := checks[a]
		if algs[c] == nil {
			order = append(order, c)
		}
		algs[c] = append(algs[c], a)
	}
	out := make([]string, len(order))
	for i, c := range order {
		out[i] = c + " for " + strings.Join(algs[c], ", ")
	}
	return out
}

func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// digestAlgorithms are the algorithms of Asterisk 22's password_digest
// and supported_algorithms_uas (from 20.12, 21.7 and 22.2 on), by their
// IANA names, which Asterisk matches ignoring case.
var digestAlgorithms = []string{"MD5", "SHA-256", "SHA-512-256"}

// digestAlgorithm is name as digestAlgorithms spells it, "" if unknown.
func digestAlgorithm(name string) string {
	name = strings.TrimSpace(name)
	for _, a := range digestAlgorithms {
		if strings.EqualFold(name, a) {
			return a
		}
	}
	return ""
}

// ha1 is RFC 7616's H(username:realm:password) in alg, as lower-case
// hex: what a stored digest holds. "" for an unknown algorithm.
func ha1(alg, user, realm, pw string) string {
	in := []byte(user + ":" + realm + ":" + pw)
	switch alg {
	case "MD5":
		sum := md5.Sum(in)
		return hex.EncodeToString(sum[:])
	case "SHA-256":
		sum := sha256.Sum256(in)
		return hex.EncodeToString(sum[:])
	case "SHA-512-256":
		sum := sha512.Sum512_256(in)
		return hex.EncodeToString(sum[:])
	}
	return ""
}

// authDigests returns auth's stored digests by algorithm, as written
// (Asterisk does not fold their case). ARI shows them as Asterisk 22 keeps them: password_digest lists
// each as "ALG:hex" (comma-separated; one without "ALG:" is MD5), and
// md5_cred, which fills the same MD5 slot, shows the MD5 one again.
// An algorithm Asterisk does not know keeps its name, and is never
// judged.
func authDigests(auth ConfigObject) map[string]string {
	out := map[string]string{}
	for _, spec := range strings.Split(auth.Get("password_digest"), ",") {
		if spec = strings.TrimSpace(spec); spec == "" {
			continue
		}
		alg, cred := "MD5", spec
		if a, c, ok := strings.Cut(spec, ":"); ok {
			alg, cred = strings.TrimSpace(a), c
			if known := digestAlgorithm(a); known != "" {
				alg = known
			}
		}
		out[alg] = strings.TrimSpace(cred)
	}
	if c := strings.TrimSpace(auth.Get("md5_cred")); c != "" {
		out["MD5"] = c
	}
	return out
}

// sortedAlgorithms returns digests' algorithms, known ones first in
// digestAlgorithms' order.
func sortedAlgorithms(digests map[string]string) []string {
	var out, other []string
	for _, a := range digestAlgorithms {
		if _, ok := digests[a]; ok {
			out = append(out, a)
		}
	}
	for a := range digests {
		if !slices.Contains(digestAlgorithms, a) {
			other = append(other, a)
		}
	}
	sort.Strings(other)
	return append(out, other...)
}

// uasAlgorithms returns the algorithms Asterisk challenges incoming
// requests with for auth, in its order. ARI shows the list in force
// (supported_algorithms_uas, filled from [global]'s
// default_auth_algorithms_uas when the auth sets none: the recorded auths
// set none and show MD5). shown is false when ARI shows none (Asterisk
// before 20.12, 21.7 and 22.2): MD5, the default, is assumed.
func uasAlgorithms(auth ConfigObject) (algs []string, shown bool) {
	for _, n := range strings.Split(auth.Get("supported_algorithms_uas"), ",") {
		if a := digestAlgorithm(n); a != "" && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		return []string{"MD5"}, false
	}
	return algs, true
}

// digestLabel names auth's stored digest of alg as an admin finds it in
// ARI's answer: "the md5_cred", "the SHA-256 digest in password_digest".
func digestLabel(auth ConfigObject, alg string) string {
	if attr := digestAttr(auth, alg); attr == "md5_cred" {
		return "the md5_cred"
	}
	return "the " + alg + " digest in password_digest"
}

// digestAttr is the attribute ARI shows auth's digest of alg in.
func digestAttr(auth ConfigObject, alg string) string {
	if alg == "MD5" && auth.Get("md5_cred") != "" {
		return "md5_cred"
	}
	return "password_digest"
}

// weakDigest says which guessable password cred, a stored digest of
// algorithm alg, is the digest of in realm, or "" when none.
func weakDigest(alg, cred, user, ext, realm string, s AuditSettings, known []string) (what string) {
	if cred == "" || digestAlgorithm(alg) == "" {
		return ""
	}
	type guess struct{ pw, what string }
	guesses := []guess{{"", "an empty password"}, {user, "the username"}, {ext, "the extension"}}
	for _, d := range s.WithDefaults().PasswordDefaults {
		guesses = append(guesses, guess{d, "a well-known default password"})
	}
	for _, k := range known {
		for _, w := range nameWords(k) {
			guesses = append(guesses, guess{w, "one of the line's names"}, guess{strings.ToLower(w), "one of the line's names"})
		}
	}
	for _, g := range guesses {
		if ha1(alg, user, realm, g.pw) == cred {
			return g.what
		}
	}
	return ""
}

// asteriskDefaultRealm is res_pjsip's default_realm when [global]
// does not set one.
const asteriskDefaultRealm = "asterisk"

// defaultRealm is the realm Asterisk uses for an auth that sets none:
// [global]'s default_realm (res_pjsip_authenticator_digest.c). ARI reads
// one object by its id, the section's name, so only a section named
// "global" can be read; any other name (or none) looks the same, and
// then the default is assumed. Read once a run, when first needed.
type defaultRealm struct {
	done              bool
	realm, note, from string
}

// get returns the realm, a note saying where it comes from to end a
// message with, and from: "default_realm" (read) or "assumed".
func (d *defaultRealm) get(ctx context.Context, env *AuditEnv) (realm, note, from string) {
	if d.done {
		return d.realm, d.note, d.from
	}
	d.done = true
	g, err := env.Asterisk.ConfigObject(ctx, "global", "global")
	if err == nil && slices.ContainsFunc(g, func(f ConfigField) bool { return f.Attribute == "default_realm" }) {
		d.realm = g.Get("default_realm")
		d.note = fmt.Sprintf(". The auth sets no realm, so Asterisk uses PJSIP's default_realm, %s ([global])", d.realm)
		d.from = "default_realm"
		return d.realm, d.note, d.from
	}
	why := "PJSIP's global object shows no default_realm"
	switch {
	case err == nil:
	case ErrorCode(err) == ENOTFOUND:
		why = `ARI finds no PJSIP global object named "global" (without one, Asterisk uses its default; a type=global section named otherwise cannot be read)`
	default:
		why = "PJSIP's global settings could not be read: " + ErrorMessage(err)
	}
	d.realm = asteriskDefaultRealm
	d.note = fmt.Sprintf(". The auth sets no realm, and realm %s, Asterisk's default_realm, was assumed: %s; "+
		"check default_realm with `asterisk -rx 'pjsip show settings'`", d.realm, why)
	d.from = "assumed"
	return d.realm, d.note, d.from
}
