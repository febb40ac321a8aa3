package tollguard_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// digestHA1 is RFC 7616's H(username:realm:password), as an auth's
// password_digest holds it.
func digestHA1(alg, user, realm, pw string) string {
	in := []byte(user + ":" + realm + ":" + pw)
	switch alg {
	case "MD5":
		s := md5.Sum(in)
		return hex.EncodeToString(s[:])
	case "SHA-256":
		s := sha256.Sum256(in)
		return hex.EncodeToString(s[:])
	case "SHA-512-256":
		s := sha512.Sum512_256(in)
		return hex.EncodeToString(s[:])
	}
	panic(alg)
}

// auth22 is an auth object as Asterisk 22.10.1's ARI shows it (every
// attribute of the recorded auth 1001, password_digest and
// supported_algorithms_uas among them), with set's values.
func auth22(h *audHarness, set map[string]string) tollguard.ConfigObject {
	h.t.Helper()
	obj := h.object("auth", "1001")
	seen := map[string]bool{}
	for i, f := range obj {
		if v, ok := set[f.Attribute]; ok {
			obj[i].Value = v
			seen[f.Attribute] = true
		}
	}
	for k := range set {
		if !seen[k] {
			h.t.Fatalf("the recorded auth has no attribute %s", k)
		}
	}
	return obj
}

func (h *audHarness) auth22Line(ext string, set map[string]string) {
	h.t.Helper()
	set["username"] = ext
	if _, ok := set["password"]; !ok {
		set["password"] = "" // not the recorded 1001's
	}
	h.fake.SetObject("auth", ext, auth22(h, set), true)
	h.fake.SetObject("endpoint", ext, tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: ext}}, true)
}

const strongPW = "k7Qp-x2Lm9.vR4tZ8wNc"

// Asterisk 22 (20.12, 21.7, 22.2 on) keeps SHA-256 and SHA-512-256
// digests in password_digest ("ALG:hex"), and checks the one of the
// algorithm it challenges with instead of a password: one of a
// guessable password is as weak as that password.
func TestPasswordsAuditSHADigests(t *testing.T) {
	h := newAudHarness(t)
	h.fake.SetObject("global", "global", tollguard.ConfigObject{{Attribute: "type", Value: "global"}, {Attribute: "default_realm", Value: "pbx.example"}}, false)
	// The username, in [global]'s default_realm.
	h.auth22Line("0920", map[string]string{"password_digest": "SHA-256:" + digestHA1("SHA-256", "0920", "pbx.example", "0920"), "supported_algorithms_uas": "SHA-256"})
	// A default, in the auth's own realm; the algorithm name as
	// pjsip.conf may spell it (Asterisk ignores case).
	h.auth22Line("0921", map[string]string{"realm": "sip.example", "password_digest": "sha-512-256:" + digestHA1("SHA-512-256", "0921", "sip.example", "1234"), "supported_algorithms_uas": "SHA-512-256"})
	// Several digests: the MD5 one is strong, the SHA-256 one weak.
	h.auth22Line("0922", map[string]string{
		"md5_cred":                 digestHA1("MD5", "0922", "pbx.example", strongPW),
		"password_digest":          "MD5:" + digestHA1("MD5", "0922", "pbx.example", strongPW) + ",SHA-256:" + digestHA1("SHA-256", "0922", "pbx.example", "password"),
		"supported_algorithms_uas": "SHA-256,MD5"})
	// Strong as far as the audit can tell: only info.
	h.auth22Line("0923", map[string]string{"password_digest": "SHA-256:" + digestHA1("SHA-256", "0923", "pbx.example", strongPW), "supported_algorithms_uas": "SHA-256"})

	run := h.run(tollguard.PasswordsAudit{}, true)
	wantDigestFindings(t, run, []digestFinding{
		{"0920", "critical", []string{"the SHA-256 digest in password_digest of auth 0920 is the digest of the username (realm pbx.example)"}},
		{"0921", "critical", []string{"the SHA-512-256 digest in password_digest of auth 0921 is the digest of a well-known default password (realm sip.example)"}},
		{"0922", "critical", []string{"the SHA-256 digest in password_digest of auth 0922 is the digest of a well-known default password (realm pbx.example)"}},
		{"0923", "info", []string{"none of the passwords the audit tries (empty, the username, the extension, the line's names, the default list) in realm pbx.example"}},
	})
	if f := audFinding(t, run, "weak_password", "ext:0920"); !strings.Contains(f.Message, "remove password_digest") || f.Evidence["realm_from"] != "default_realm" {
		t.Errorf("0920: %q %v", f.Message, f.Evidence)
	}
	// Which credential is checked for which algorithm.
	if f := audFinding(t, run, "weak_password", "ext:0922"); !strings.Contains(f.Message, "Asterisk challenges incoming requests with SHA-256, MD5 (supported_algorithms_uas) and checks the SHA-256 digest in password_digest for SHA-256 and the md5_cred for MD5") ||
		!strings.Contains(f.Message, "remove md5_cred and password_digest") {
		t.Errorf("0922: %q", f.Message)
	}
	for _, w := range h.writes() {
		if strings.Contains(w, "/092") {
			t.Errorf("wrote to a digest auth: %s", w)
		}
	}
}

// A plain password and a digest together: Asterisk checks, for each
// algorithm it challenges with, the stored digest of that algorithm,
// and the password only for one without.
func TestPasswordsAuditDigestInForce(t *testing.T) {
	h := newAudHarness(t)
	// A strong password, but a SHA-256 digest of the username: the
	// digest is in force for SHA-256.
	h.auth22Line("0930", map[string]string{"password": strongPW, "password_digest": "SHA-256:" + digestHA1("SHA-256", "0930", "asterisk", "0930"), "supported_algorithms_uas": "SHA-256,MD5"})
	// A weak password, checked for MD5, beside a strong SHA-256 digest.
	h.auth22Line("0931", map[string]string{"password": "1234", "password_digest": "SHA-256:" + digestHA1("SHA-256", "0931", "asterisk", strongPW), "supported_algorithms_uas": "SHA-256,MD5"})
	// A weak password that Asterisk does not check: MD5 alone is
	// offered, and it has a (strong) MD5 digest.
	h.auth22Line("0932", map[string]string{"password": "1234", "md5_cred": digestHA1("MD5", "0932", "asterisk", strongPW), "password_digest": "MD5:" + digestHA1("MD5", "0932", "asterisk", strongPW), "supported_algorithms_uas": "MD5"})
	// A digest of the auth's own password, which is weak (short) but on
	// no list.
	h.auth22Line("0933", map[string]string{"password": "Xq7#pv", "password_digest": "SHA-256:" + digestHA1("SHA-256", "0933", "asterisk", "Xq7#pv"), "supported_algorithms_uas": "SHA-256"})
	// A digest of the auth's own strong password: nothing to say.
	h.auth22Line("0934", map[string]string{"password": strongPW, "password_digest": "SHA-256:" + digestHA1("SHA-256", "0934", "asterisk", strongPW), "supported_algorithms_uas": "SHA-256,MD5"})

	run := h.run(tollguard.PasswordsAudit{}, false)
	if _, ok := audFindingOK(run, "weak_password", "ext:0934"); ok {
		t.Errorf("0934 reported: %q", audFindings(run))
	}
	wantDigestFindings(t, run, []digestFinding{
		{"0930", "critical", []string{"the SHA-256 digest in password_digest of auth 0930 is the digest of the username (realm asterisk)",
			"checks the SHA-256 digest in password_digest for SHA-256 and the password for MD5"}},
		{"0931", "critical", []string{"SIP password of auth 0931 is weak: a well-known default password",
			"checks the SHA-256 digest in password_digest for SHA-256 and the password for MD5",
			"the SHA-256 digest in password_digest is the digest of none of the passwords the audit tries"}},
		{"0932", "warning", []string{"SIP password of auth 0932 is weak: a well-known default password",
			"Asterisk does not check it for incoming requests now",
			"checks the md5_cred for MD5"}},
		{"0933", "warning", []string{"the SHA-256 digest in password_digest of auth 0933 is the digest of the auth's own password, itself weak (shorter than 12 characters (6)"}},
	})
	// Nothing says a digest is the one checked "instead" of the
	// password when the password is checked too.
	if f := audFinding(t, run, "weak_password", "ext:0931"); strings.Contains(f.Message, "instead") {
		t.Errorf("0931: %q", f.Message)
	}
}

// Asterisk 22 shows an MD5 digest in md5_cred and password_digest
// alike, whichever pjsip.conf set: the refusal names both, or the admin
// may look for a line that is not there.
func TestRotatePasswordNamesEveryDigestAttribute(t *testing.T) {
	h := newAudHarness(t)
	cred := digestHA1("MD5", "0940", "asterisk", strongPW)
	h.auth22Line("0940", map[string]string{"md5_cred": cred, "password_digest": "MD5:" + cred, "supported_algorithms_uas": "MD5"})
	h.fake.ResetRequests()
	_, _, err := h.env.RotatePassword(context.Background(), "0940")
	if tollguard.ErrorCode(err) != tollguard.ECONFLICT || !strings.Contains(err.Error(), "remove md5_cred and password_digest from that auth") || len(h.writes()) != 0 {
		t.Errorf("rotation: %v, writes %q", err, h.writes())
	}
}

// A digest of the auth's own weak password, of an algorithm not
// offered, does not hide that the password itself is checked.
func TestPasswordsAuditOwnPasswordDigestNotOffered(t *testing.T) {
	h := newAudHarness(t)
	// "PASSWORD" is on the default list (ignoring case), but its digest
	// is none of the guesses: only the own-password match finds it.
	h.auth22Line("0950", map[string]string{"password": "PASSWORD", "password_digest": "SHA-256:" + digestHA1("SHA-256", "0950", "asterisk", "PASSWORD"), "supported_algorithms_uas": "MD5"})
	run := h.run(tollguard.PasswordsAudit{}, false)
	f := audFinding(t, run, "weak_password", "ext:0950")
	if f.Severity != tollguard.SeverityCritical || !strings.Contains(f.Message, "SIP password of auth 0950 is weak: a well-known default password") ||
		!strings.Contains(f.Message, "checks the password for MD5") {
		t.Errorf("0950: %s %q", f.Severity, f.Message)
	}
}

// ARI without supported_algorithms_uas is Asterisk before 20.12, 21.7
// and 22.2, which has no password_digest and picks the credential by
// auth_type (res_pjsip_authenticator_digest.c digest_lookup): userpass
// checks the password whatever md5_cred holds, md5 checks md5_cred.
func TestPasswordsAuditDigestBefore222(t *testing.T) {
	h := newAudHarness(t)
	legacy := func(ext, authType, pw, cred string) {
		h.fake.SetObject("auth", ext, tollguard.ConfigObject{{Attribute: "auth_type", Value: authType}, {Attribute: "username", Value: ext},
			{Attribute: "password", Value: pw}, {Attribute: "md5_cred", Value: cred}, {Attribute: "realm", Value: ""}}, true)
		h.fake.SetObject("endpoint", ext, tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: ext}}, true)
	}
	// userpass: the weak password is what Asterisk checks.
	legacy("0960", "userpass", "1234", digestHA1("MD5", "0960", "asterisk", strongPW))
	// md5: the password is not checked, the strong md5_cred is.
	legacy("0961", "md5", "1234", digestHA1("MD5", "0961", "asterisk", strongPW))
	// userpass with a strong password: a weak md5_cred is unused until
	// auth_type=md5, or an upgrade that checks it before the password.
	legacy("0962", "userpass", strongPW, digestHA1("MD5", "0962", "asterisk", "0962"))

	run := h.run(tollguard.PasswordsAudit{}, false)
	wantDigestFindings(t, run, []digestFinding{
		{"0960", "critical", []string{"SIP password of auth 0960 is weak: a well-known default password", "checks the password for MD5"}},
		{"0961", "warning", []string{"SIP password of auth 0961 is weak", "checks the md5_cred for MD5, not the password"}},
		{"0962", "warning", []string{"the md5_cred of auth 0962 is the digest of the username (realm asterisk)", "auth_type=md5", "checks the password for MD5"}},
	})
}

// digestFinding is the weak_password finding an extension's auth should
// get: its severity, and text its message holds.
type digestFinding struct {
	ext, sev string
	want     []string
}

// wantDigestFindings checks each finding: severity, not fixable (a
// stored digest stops rotation), and every wanted text.
func wantDigestFindings(t *testing.T, run *tollguard.AuditRun, cases []digestFinding) {
	t.Helper()
	for _, c := range cases {
		f := audFinding(t, run, "weak_password", "ext:"+c.ext)
		if string(f.Severity) != c.sev || f.Fixable {
			t.Errorf("%s: %s fixable %v %q", c.ext, f.Severity, f.Fixable, f.Message)
		}
		for _, w := range c.want {
			if !strings.Contains(f.Message, w) {
				t.Errorf("%s: %q lacks %q", c.ext, f.Message, w)
			}
		}
	}
}

// Asterisk keeps a stored digest as written and hashes it as it is
// (config_auth.c password_digest_handler copies it; pjsip's
// pjsip_auth_create_digest2 feeds the stored HA1's characters into the
// response), while a phone given the password hashes the lower-case hex
// of its own HA1. An upper-case digest so never matches it: unusable,
// not a weak password. A client given the digest itself hashes it as
// written too (pjsip's client does), so the finding must not say that
// nothing can authenticate.
func TestPasswordsAuditUpperCaseDigest(t *testing.T) {
	h := newAudHarness(t)
	upper := strings.ToUpper
	// The digest of the username, in upper case, in force for SHA-256.
	h.auth22Line("0970", map[string]string{"password_digest": "SHA-256:" + upper(digestHA1("SHA-256", "0970", "asterisk", "0970")), "supported_algorithms_uas": "SHA-256"})
	// An upper-case md5_cred of a default password, and a strong
	// password checked for SHA-256.
	h.auth22Line("0971", map[string]string{"password": strongPW, "md5_cred": upper(digestHA1("MD5", "0971", "asterisk", "1234")),
		"password_digest": "MD5:" + upper(digestHA1("MD5", "0971", "asterisk", "1234")), "supported_algorithms_uas": "MD5,SHA-256"})

	run := h.run(tollguard.PasswordsAudit{}, false)
	wantDigestFindings(t, run, []digestFinding{
		{"0970", "warning", []string{"the SHA-256 digest in password_digest of auth 0970 is written in upper-case hex", "can never match",
			"only a client given this digest itself, as written", "no phone given the password can authenticate with SHA-256",
			"once written in lower case, it would be the digest of the username"}},
		{"0971", "warning", []string{"the md5_cred of auth 0971 is written in upper-case hex", "no phone given the password can authenticate with MD5",
			"once written in lower case, it would be the digest of a well-known default password", "checks the md5_cred for MD5 and the password for SHA-256"}},
	})
	for _, ext := range []string{"0970", "0971"} {
		if f := audFinding(t, run, "weak_password", "ext:"+ext); strings.Contains(f.Message, "is the digest of") {
			t.Errorf("%s reported as a weak digest: %q", ext, f.Message)
		}
	}
}

// Beside a stored digest rotation is refused (a new password leaves the
// digest, and the old credential it stands for, as they are), and the
// refusal says which credential Asterisk checks for which algorithm, as
// the passwords audit does, and what a new password alone would change.
func TestRotatePasswordRefusalSaysWhatAsteriskChecks(t *testing.T) {
	h := newAudHarness(t)
	// The password is checked for MD5, the digest for SHA-256.
	h.auth22Line("0980", map[string]string{"password": "1234", "password_digest": "SHA-256:" + digestHA1("SHA-256", "0980", "asterisk", strongPW), "supported_algorithms_uas": "SHA-256,MD5"})
	// The digest's algorithm is not offered: the password alone is checked.
	h.auth22Line("0981", map[string]string{"password": "1234", "password_digest": "SHA-256:" + digestHA1("SHA-256", "0981", "asterisk", strongPW), "supported_algorithms_uas": "MD5"})
	// Every algorithm offered has a digest: the password is not checked.
	cred := digestHA1("MD5", "0982", "asterisk", strongPW)
	h.auth22Line("0982", map[string]string{"password": "1234", "md5_cred": cred, "password_digest": "MD5:" + cred, "supported_algorithms_uas": "MD5"})
	h.fake.ResetRequests()
	for _, c := range []struct {
		ext  string
		want []string
	}{
		{"0980", []string{"Asterisk challenges incoming requests with SHA-256, MD5 (supported_algorithms_uas) and checks the SHA-256 digest in password_digest for SHA-256 and the password for MD5",
			"a new password would replace the credential for MD5 only, and the SHA-256 digest in password_digest would keep letting in, for SHA-256, whoever knows the password it was made from",
			"remove password_digest from that auth"}},
		{"0981", []string{"checks the password for MD5",
			"the SHA-256 digest in password_digest is not checked now, but will be once SHA-256 is offered (supported_algorithms_uas), and a new password would not change it",
			"remove password_digest from that auth"}},
		{"0982", []string{"checks the md5_cred for MD5, not the password",
			"a new password would change nothing Asterisk checks",
			"remove md5_cred and password_digest from that auth"}},
	} {
		_, _, err := h.env.RotatePassword(context.Background(), c.ext)
		if tollguard.ErrorCode(err) != tollguard.ECONFLICT {
			t.Errorf("%s: %v", c.ext, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(tollguard.ErrorMessage(err), w) {
				t.Errorf("%s: %q lacks %q", c.ext, tollguard.ErrorMessage(err), w)
			}
		}
	}
	if len(h.writes()) != 0 {
		t.Errorf("wrote %q", h.writes())
	}
}
