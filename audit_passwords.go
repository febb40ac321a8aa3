package tollguard

import (
	"context"
	"crypto/md5"
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
// shorter than PasswordMinLength, or under the zxcvbn score threshold.
// With apply it rotates weak ones to generated passwords.
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
	realm, realmNote, realmFrom := auth.Get("realm"), "", "auth"
	if realm == "" && auth.Get("md5_cred") != "" {
		realm, realmNote, realmFrom = dr.get(ctx, r.env)
	}
	if what := weakMD5Cred(auth, ext, realm, s, known); what != "" {
		// Asterisk checks the digest, whatever the password says.
		r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: SeverityCritical, Subject: subj, Extension: ext,
			Message: fmt.Sprintf("the md5_cred of auth %s is the digest of %s (realm %s): SIP scanners guess such passwords within minutes, and a digest hides nothing from them; "+
				"remove md5_cred from the auth (pjsip.conf or astdb, then reload res_pjsip), then run `tollguard ext rotate-password %s` and update the phone%s", id, what, realm, ext, realmNote),
			Evidence: map[string]any{"auth": id, "username": auth.Get("username"), "realm": realm, "realm_from": realmFrom, "reasons": []string{"md5_cred of " + what}}})
		return nil
	}
	// auth_type=digest (Asterisk 22) with no stored digest checks the
	// plain password, as userpass does.
	digest := storedDigest(auth)
	if t := auth.Get("auth_type"); t != "" && t != "userpass" && !(t == "digest" && digest == "") {
		msg := fmt.Sprintf("auth %s uses auth_type=%s, so its password cannot be judged", id, t)
		if auth.Get("md5_cred") != "" {
			// Only what weakMD5Cred tries: no proof the password is strong.
			msg += fmt.Sprintf("; its md5_cred is the digest of none of the passwords the audit tries (empty, the username, the extension, the line's names, the default list) in realm %s%s", realm, realmNote)
		}
		r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: SeverityInfo, Subject: subj, Extension: ext, Message: msg})
		return nil
	}
	why := PasswordWeakness(auth.Get("password"), auth.Get("username"), ext, s, known...)
	if len(why) == 0 {
		// A weak one is reported, and rotated, on its own.
		if digest == "" {
			byPassword[auth.Get("password")] = append(byPassword[auth.Get("password")], id+" (endpoint "+ext+")")
		}
		return nil
	}
	sev := SeverityWarning
	for _, w := range why {
		// What scanners try first: the username, the defaults, nothing.
		if w == "empty" || strings.HasPrefix(w, "equal to") || strings.HasPrefix(w, "a well-known") {
			sev = SeverityCritical
		}
	}
	todo := fmt.Sprintf("run `tollguard ext rotate-password %s` (or `tollguard audit passwords --apply`) and update the phone", ext)
	if digest != "" {
		// Both would refuse: a new password changes nothing while it is there.
		todo = fmt.Sprintf("auth %s also holds a stored %s, which Asterisk checks instead: remove %s from it (pjsip.conf or astdb, then reload res_pjsip), then rotate the password", id, digest, digest)
	}
	r.find(AuditFinding{Check: AuditCheckWeakPassword, Severity: sev, Subject: subj, Extension: ext, Fixable: digest == "",
		Message:  fmt.Sprintf("SIP password of auth %s is weak: %s; SIP scanners guess such passwords within minutes: %s", id, strings.Join(why, ", "), todo),
		Evidence: map[string]any{"auth": id, "username": auth.Get("username"), "reasons": why}})
	if !r.apply {
		return nil
	}
	if digest != "" { // a new password would change nothing (storedDigest)
		r.act(AuditAction{Kind: AuditActRotatePassword, Subject: subj, Message: "not rotated: auth " + id + " also holds a stored " + digest + ", which Asterisk checks instead of the password",
			Err: "remove " + digest + " from that auth (pjsip.conf or astdb, then reload res_pjsip), then rotate"})
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

// weakMD5Cred says which guessable password an auth's md5_cred is the
// digest of in realm (MD5 of "username:realm:password", RFC 2617's
// HA1), or "" when none.
func weakMD5Cred(auth ConfigObject, ext, realm string, s AuditSettings, known []string) (what string) {
	cred := strings.ToLower(strings.TrimSpace(auth.Get("md5_cred")))
	if cred == "" {
		return ""
	}
	user := auth.Get("username")
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
		sum := md5.Sum([]byte(user + ":" + realm + ":" + g.pw))
		if hex.EncodeToString(sum[:]) == cred {
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
