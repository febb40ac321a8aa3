package tollguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
)

// uncheckableProxy loses the answer to a PUT of auth/<id> (carried out)
// and answers 503 to every read of that auth after it: the write cannot
// be checked.
func uncheckableProxy(t *testing.T, h *audHarness, id string) *ari.Client {
	t.Helper()
	target, _ := url.Parse(h.fake.URL)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	var put atomic.Bool
	path := "/asterisk/config/dynamic/res_pjsip/auth/" + id
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, path):
			rp.ServeHTTP(httptest.NewRecorder(), r)
			put.Store(true)
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		case r.Method == http.MethodGet && put.Load() && strings.HasSuffix(r.URL.Path, path):
			http.Error(w, `{"message":"busy"}`, http.StatusServiceUnavailable)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := ari.NewClient(ari.Config{URL: srv.URL + target.Path, User: h.fake.User, Password: h.fake.Password, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRotationUncheckedSaysHowToRead: when the lost answer cannot be
// checked either, the admin must be told that the change may be in
// force and how to read it. The CLI and the audit print ErrorMessage,
// which kept only the inner ARI error and dropped that advice.
func TestRotationUncheckedSaysHowToRead(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.fake.SetObject("auth", "0900", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "0900"}, {Attribute: "password", Value: "0900"}}, true)
	h.fake.SetObject("endpoint", "0900", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "0900"}, {Attribute: "aors", Value: "0900"}}, true)

	t.Run("RotatePassword", func(t *testing.T) {
		env := *h.env
		env.Asterisk = uncheckableProxy(t, h, "1009")
		_, _, err := env.RotatePassword(ctx, "1009")
		if err == nil {
			t.Fatal("no error")
		}
		if msg := tollguard.ErrorMessage(err); !strings.Contains(msg, "pjsip show auth 1009") {
			t.Errorf("the CLI prints %q: nothing says the change may be in force, nor how to read it", msg)
		}
	})
	t.Run("PasswordsAudit", func(t *testing.T) {
		env := *h.env
		env.Asterisk = uncheckableProxy(t, h, "0900")
		env.Settings.Ignore = []string{"1001", "1002", "1003", "1009"}
		run, err := tollguard.RunAudit(ctx, &env, tollguard.PasswordsAudit{}, true, "cli", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(run.Actions) != 1 || !strings.Contains(run.Actions[0].Err, "pjsip show auth 0900") {
			t.Errorf("actions %+v: nothing says the change may be in force, nor how to read it", run.Actions)
		}
	})
}
