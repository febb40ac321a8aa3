package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
)

// TestCLIRotateUnconfirmedPrintsThePassword: every PUT of the auth timed
// out on its way to Asterisk (the proxy dropped it), so nothing could
// confirm the change, while a PUT still on its way may land later. The
// CLI printed only an error and no password: had the PUT landed, the
// phone could never have been given the password in force.
func TestCLIRotateUnconfirmedPrintsThePassword(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("ext", "add", "1009", "--account", "acme")

	target, _ := url.Parse(c.fake.URL)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/res_pjsip/auth/1009") {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ariClient = func(*App) (tollguard.Asterisk, func(), error) {
		cl, err := ari.NewClient(ari.Config{URL: srv.URL + target.Path, User: c.fake.User, Password: c.fake.Password})
		if err != nil {
			return nil, nil, err
		}
		return cl, cl.Close, nil
	}

	out, errOut, code := c.run("ext", "rotate-password", "1009")
	if code != exitFailure || !strings.Contains(errOut, "pjsip show auth 1009") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
	_, pw, ok := strings.Cut(out, "SIP password, possibly in force: ")
	if pw, _, _ = strings.Cut(pw, "\n"); !ok || len(pw) != 24 {
		t.Errorf("no new password printed: %s", out)
	}
}
