package tollguard_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
)

// latePut is a proxy in front of the fake ARI that holds back the first
// PUT of the dynamic-config object under path and drops its connection,
// as when a request times out while still on its way to Asterisk; land
// carries the held PUT out later, after tollguard's read-back. Later
// PUTs of it are passed on, unless dropAll, or answered with status by
// the proxy when status is set (as Asterisk's own refusal).
type latePut struct {
	t      *testing.T
	h      *audHarness
	client *ari.Client

	mu   sync.Mutex
	held *http.Request
	body []byte
}

func newLatePut(t *testing.T, h *audHarness, path string, dropAll bool) *latePut {
	t.Helper()
	lp := &latePut{t: t, h: h}
	lp.client = ariProxy(t, h, func(w http.ResponseWriter, r *http.Request, pass http.Handler) {
		ours := r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/asterisk/config/dynamic/res_pjsip/"+path)
		lp.mu.Lock()
		first := ours && lp.held == nil
		if first {
			lp.body, _ = io.ReadAll(r.Body)
			lp.held = r.Clone(context.Background())
		}
		lp.mu.Unlock()
		if first || ours && dropAll {
			dropConn(w)
			return
		}
		pass.ServeHTTP(w, r)
	})
	return lp
}

// land carries the held PUT out at the fake, late.
func (lp *latePut) land() {
	lp.t.Helper()
	lp.mu.Lock()
	held, body := lp.held, lp.body
	lp.mu.Unlock()
	if held == nil {
		lp.t.Fatal("no PUT was held back")
	}
	target, _ := url.Parse(lp.h.fake.URL)
	u := *held.URL
	u.Scheme, u.Host = target.Scheme, target.Host
	req, err := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		lp.t.Fatal(err)
	}
	req.Header = held.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		lp.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		lp.t.Fatalf("late PUT: %s", resp.Status)
	}
}

// TestRotationWhosePutLandsLate: the PUT timed out before it reached
// Asterisk, so the read-back still showed the old password; the rotation
// was reported "not applied" and the new password thrown away. Then the
// PUT landed: the extension had a password nobody was given, the phone
// was locked out, and the admin had been told nothing changed.
func TestRotationWhosePutLandsLate(t *testing.T) {
	ctx := context.Background()

	t.Run("ResentAndApplied", func(t *testing.T) {
		h := rotationLines(t)
		lp := newLatePut(t, h, "auth/1009", false)
		env := *h.env
		env.Asterisk = lp.client
		pw, _, err := env.RotatePassword(ctx, "1009")
		lp.land()
		inForce := h.object("auth", "1009").Get("password")
		if err != nil || pw != inForce {
			t.Errorf("password in force %q; RotatePassword gave %q, %v", inForce, pw, err)
		}
	})
	t.Run("StillUnknownKeepsThePassword", func(t *testing.T) {
		h := rotationLines(t)
		lp := newLatePut(t, h, "auth/1009", true)
		env := *h.env
		env.Asterisk = lp.client
		pw, _, err := env.RotatePassword(ctx, "1009")
		if err == nil {
			t.Fatal("no error: every PUT was lost, nothing confirmed the change")
		}
		if msg := tollguard.ErrorMessage(err); !strings.Contains(msg, "may be in force") || !strings.Contains(msg, "pjsip show auth 1009") {
			t.Errorf("the CLI prints %q: nothing says the new password may be in force, nor how to check", msg)
		}
		lp.land()
		if inForce := h.object("auth", "1009").Get("password"); pw != inForce {
			t.Errorf("password in force %q; RotatePassword gave %q: the phone cannot be given it", inForce, pw)
		}
	})
	t.Run("ResendRefused", func(t *testing.T) {
		h := rotationLines(t)
		lp := newLatePut(t, h, "auth/1009", false)
		h.fake.Fault("PUT", "/asterisk/config/dynamic/res_pjsip/auth/1009", http.StatusForbidden, "Could not create or update object", 1)
		env := *h.env
		env.Asterisk = lp.client
		pw, _, err := env.RotatePassword(ctx, "1009")
		if tollguard.ErrorCode(err) != tollguard.EFORBIDDEN || pw != "" {
			t.Errorf("Asterisk refused the resent PUT: RotatePassword gave %q, %v", pw, err)
		}
	})
	t.Run("PasswordsAudit", func(t *testing.T) {
		h := rotationLines(t)
		lp := newLatePut(t, h, "auth/0900", true)
		env := *h.env
		env.Asterisk = lp.client
		env.Settings.Ignore = []string{"1001", "1002", "1003", "1009"}
		run, err := tollguard.RunAudit(ctx, &env, tollguard.PasswordsAudit{}, true, "cli", nil)
		if err != nil {
			t.Fatal(err)
		}
		lp.land()
		inForce := h.object("auth", "0900").Get("password")
		if len(run.Actions) != 1 || run.Actions[0].Secret != inForce || !strings.Contains(run.Actions[0].Err, "pjsip show auth 0900") {
			t.Errorf("password in force %q; actions %+v", inForce, run.Actions)
		}
	})
}

// TestCancelAfterPurgeWhoseDeleteGot504: a proxy answered the purge's
// endpoint delete with 504 and Asterisk deleted nothing. The snapshot is
// kept (the delete may still land), but after the admin unblocked, the
// cancel said an earlier run "had deleted some of its PJSIP objects
// already" and failed the run, while Asterisk still had them all.
func TestCancelAfterPurgeWhoseDeleteGot504(t *testing.T) {
	ctx := context.Background()
	h := duePurge(t, "2001")
	h.fake.Fault("DELETE", "/asterisk/config/dynamic/res_pjsip/endpoint/2001", http.StatusGatewayTimeout, "Gateway Timeout", 1)
	h.run(tollguard.StaleAudit{}, true)
	for _, typ := range []string{"endpoint", "aor", "auth"} {
		if _, ok := h.fake.Object(typ, "2001"); !ok {
			t.Fatalf("%s 2001 gone: not a purge that deleted nothing", typ)
		}
	}
	if _, err := h.db.Unblock(ctx, tollguard.BlockExtension, "2001", "admin"); err != nil {
		t.Fatal(err)
	}

	t.Run("ARISaysAllThere", func(t *testing.T) {
		note, partly, sure := tollguard.PartialPurgeNote(ctx, h.ast, mustStarted(t, h))
		if partly || !sure || strings.Contains(note, "had deleted") {
			t.Errorf("Asterisk has every object, yet the note says %q (partly %v, sure %v)", note, partly, sure)
		}
	})
	t.Run("ARIUnreachable", func(t *testing.T) {
		note, partly, _ := tollguard.PartialPurgeNote(ctx, nil, mustStarted(t, h))
		if !partly || strings.Contains(note, "had deleted") || !strings.Contains(note, "pjsip show endpoint 2001") || !strings.Contains(note, "tollguard ext restore 2001") {
			t.Errorf("without ARI the note says %q (partly %v): not what is known, nor how to check", note, partly)
		}
	})
	t.Run("AuditCancel", func(t *testing.T) {
		run := h.run(tollguard.StaleAudit{}, true)
		var cancel *tollguard.AuditAction
		for i := range run.Actions {
			if run.Actions[i].Kind == tollguard.AuditActCancelPurge {
				cancel = &run.Actions[i]
			}
		}
		if cancel == nil {
			t.Fatalf("no cancel: %+v", run.Actions)
		}
		if cancel.Err != "" || strings.Contains(cancel.Message, "had deleted") {
			t.Errorf("cancel of a purge whose delete got a 504 and deleted nothing: %+v", *cancel)
		}
	})
}

func mustStarted(t *testing.T, h *audHarness) *tollguard.ExtensionSnapshot {
	t.Helper()
	pending, err := h.db.PendingPurges(context.Background())
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %v, %v", pending, err)
	}
	snap, err := tollguard.PurgeStarted(context.Background(), h.db, pending[0])
	if err != nil || snap == nil {
		t.Fatalf("PurgeStarted = %v, %v: the 504'd delete's snapshot should be kept", snap, err)
	}
	return snap
}
