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

// TestCLIExtAddUngatedContext: ext add created an endpoint in a context
// outside [audit] gated_contexts without a word; its calls could reach a
// trunk past the gate until the nightly coverage audit said so.
func TestCLIExtAddUngatedContext(t *testing.T) {
	c := newAuditCLI(t, "[audit]\ngated_contexts = [\"from-internal\"]\n")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	out, errs, code := c.run("ext", "add", "1009", "--account", "acme", "--context", "from-trunk")
	if code != 0 || !strings.Contains(out, "SIP password") ||
		!strings.Contains(errs, `warning: context "from-trunk" is not a gated context (from-internal): calls from 1009 may reach a trunk without the gate`) {
		t.Errorf("ungated context: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, errs, code := c.run("ext", "add", "1010", "--account", "acme", "--context", "from-internal"); code != 0 || strings.Contains(errs, "warning") {
		t.Errorf("gated context: exit %d, stderr %q", code, errs)
	}
}
