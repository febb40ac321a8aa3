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
