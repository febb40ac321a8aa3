package tollguard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/store"
)

func TestAddExtension(t *testing.T) {
	ctx := context.Background()
	t.Run("CreatesAuthAorEndpointInOrder", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		got, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme", CallerID: `"Reception" <1009>`, Description: "front desk"})
		if err != nil {
			t.Fatal(err)
		}
		if w := h.writes(); !reflect.DeepEqual(w, []string{"PUT auth/1009", "PUT aor/1009", "PUT endpoint/1009"}) {
			t.Errorf("writes %q", w)
		}
		auth := h.object("auth", "1009")
		if auth.Get("password") != got.Password || len(got.Password) < 20 || auth.Get("username") != "1009" || auth.Get("auth_type") != "userpass" {
			t.Errorf("auth %v, password %q", auth, got.Password)
		}
		ep := h.object("endpoint", "1009")
		// rewrite_contact: the registration check reads the contact's
		// source from its URI. Sent as yes, bools read back as Asterisk
		// shows them: true.
		for attr, want := range map[string]string{"context": "from-internal", "auth": "1009", "aors": "1009", "accountcode": "acme", "allow": "(ulaw|alaw)", "callerid": `"Reception" <1009>`,
			"rewrite_contact": "true", "rtp_symmetric": "true", "force_rport": "true"} {
			if ep.Get(attr) != want {
				t.Errorf("endpoint %s = %q, want %q", attr, ep.Get(attr), want)
			}
		}
		// As contrib's pjsip.conf: a second registration is refused, not
		// let displace the phone, unless qualify found the phone gone.
		aor := h.object("aor", "1009")
		for attr, want := range map[string]string{"max_contacts": "1", "remove_existing": "false", "remove_unavailable": "true", "qualify_frequency": "60"} {
			if aor.Get(attr) != want {
				t.Errorf("aor %s = %q, want %q", attr, aor.Get(attr), want)
			}
		}
		e, err := h.db.Extension(ctx, "1009")
		if err != nil || !e.Managed || e.Account != "acme" || e.Description != "front desk" || !e.CreatedAt.Equal(audT0) {
			t.Errorf("store row %+v, %v", e, err)
		}
	})
	t.Run("AdminFieldsReplaceTheDefaults", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		h.env.Settings.Endpoint.AORExtra = map[string]string{"remove_existing": "yes"}
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1010", Account: "acme"}); err != nil {
			t.Fatal(err)
		}
		for _, r := range h.fake.Requests() {
			if r.Method == "PUT" && strings.HasSuffix(r.Path, "/aor/1010") && strings.Count(string(r.Body), `"remove_existing"`) != 1 {
				t.Errorf("aor PUT sends remove_existing other than once: %s", r.Body)
			}
		}
		if aor := h.object("aor", "1010"); aor.Get("remove_existing") != "true" {
			t.Errorf("aor remove_existing = %q, want the admin's yes (read back true)", aor.Get("remove_existing"))
		}
	})
	// Asterisk applies the fields in order: the admin's disallow = "all"
	// (a pjsip.conf habit) sent after the allow would leave the endpoint
	// no codec, and every call on it would fail.
	t.Run("AdminDisallowGoesBeforeTheCodecs", func(t *testing.T) {
		for _, tc := range []struct {
			extra map[string]string
			want  string
		}{
			{map[string]string{"disallow": "all"}, "(ulaw|alaw)"},
			{map[string]string{"disallow": "all", "allow": "g722"}, "(g722)"},
		} {
			h := newAudHarness(t)
			h.account("acme", nil)
			h.env.Settings.Endpoint.EndpointExtra = tc.extra
			if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1010", Account: "acme"}); err != nil {
				t.Fatal(err)
			}
			if got := h.object("endpoint", "1010").Get("allow"); got != tc.want {
				t.Errorf("extra %v: endpoint codecs %s, want %s", tc.extra, got, tc.want)
			}
		}
	})
	// A read-only ARI user (ari.conf read_only=yes) is refused every
	// write by res_ari itself: the fix is in ari.conf, and sorcery.conf
	// advice would send the admin to change the wrong file.
	t.Run("ReadOnlyARIUserIsToldSo", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		h.fake.SetReadOnly(true)
		_, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"})
		msg := tollguard.ErrorMessage(err)
		if tollguard.ErrorCode(err) != tollguard.EFORBIDDEN || !strings.Contains(msg, "read_only=no") || !strings.Contains(msg, "ari.conf") {
			t.Fatalf("err %v", err)
		}
		if strings.Contains(msg, "sorcery.conf") {
			t.Errorf("a read-only ARI user is advised to change sorcery.conf: %s", msg)
		}
	})
	t.Run("QuotaCheckedBeforeAnythingIsWritten", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", func(a *tollguard.Account) { a.MaxExtensions = 1 })
		h.extension("2001", "acme", audT0.Add(-48*time.Hour), nil)
		_, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2002", Account: "acme"})
		if tollguard.ErrorCode(err) != tollguard.EQUOTA || !strings.Contains(err.Error(), "max_extensions 1") {
			t.Fatalf("err %v", err)
		}
		if w := h.writes(); len(w) != 0 {
			t.Errorf("Asterisk was written to: %q", w)
		}
		if _, err := h.db.Extension(ctx, "2002"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			t.Errorf("store row exists: %v", err)
		}
	})
	t.Run("DailyQuota", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
		h.extension("2001", "acme", audT0.Add(-2*time.Hour), nil)
		_, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2002", Account: "acme"})
		if tollguard.ErrorCode(err) != tollguard.EQUOTA || !strings.Contains(err.Error(), "max_created_per_day 1") {
			t.Fatalf("err %v", err)
		}
		h.advance(23 * time.Hour)
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2002", Account: "acme"}); err != nil {
			t.Errorf("a day later: %v", err)
		}
	})
	// Only lines ext add created in Asterisk count as created: before,
	// every store row of the last 24 h did, so recording three lines
	// that long existed (--no-asterisk) hit a quota of 2 a day.
	t.Run("DailyQuotaCountsOnlyLinesItCreated", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			setup func(t *testing.T, h *audHarness)
			want  string // error code of the next `ext add` (quota 1 a day)
		}{
			{name: "NoAsterisk", setup: func(t *testing.T, h *audHarness) {
				for _, n := range []string{"1001", "1002", "1003"} { // fixture endpoints
					if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: n, Account: "acme", NoAsterisk: true}); err != nil {
						t.Fatalf("ext add %s --no-asterisk: %v", n, err)
					}
				}
			}},
			{name: "Adopted", setup: func(t *testing.T, h *audHarness) {
				h.fake.SetObject("endpoint", "3000", tollguard.ConfigObject{{Attribute: "accountcode", Value: "acme"}}, true)
				if _, blocked, err := h.env.SchedulePurge(ctx, "3000", "cli", "test"); err != nil || !blocked {
					t.Fatalf("adopting 3000: blocked %v, %v", blocked, err)
				}
			}},
			{name: "Restored", setup: func(t *testing.T, h *audHarness) {
				// Purged, its record removed (`ext rm`), then restored:
				// the restore records it again.
				h.fake.SetObject("auth", "4000", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "4000"}, {Attribute: "password", Value: "x7!Kq-29vB-4000"}}, true)
				h.fake.SetObject("endpoint", "4000", tollguard.ConfigObject{{Attribute: "auth", Value: "4000"}, {Attribute: "accountcode", Value: "acme"}}, true)
				h.extension("4000", "acme", audT0.Add(-90*24*time.Hour), nil)
				if _, err := h.env.PurgeExtension(ctx, "4000", "stale"); err != nil {
					t.Fatal(err)
				}
				if err := h.db.DeleteExtension(ctx, "4000"); err != nil {
					t.Fatal(err)
				}
				if _, err := h.env.RestoreExtension(ctx, "4000", "admin"); err != nil {
					t.Fatal(err)
				}
				if e, err := h.db.Extension(ctx, "4000"); err != nil || !e.CreatedAt.Equal(audT0) {
					t.Fatalf("restore did not record 4000 again: %+v, %v", e, err)
				}
			}},
			{name: "CreatedByExtAdd", want: tollguard.EQUOTA, setup: func(t *testing.T, h *audHarness) {
				if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2001", Account: "acme"}); err != nil {
					t.Fatal(err)
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := newAudHarness(t)
				h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
				tc.setup(t, h)
				_, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2002", Account: "acme"})
				if got := tollguard.ErrorCode(err); got != tc.want {
					t.Errorf("ext add 2002: %v, want code %q", err, tc.want)
				}
			})
		}
	})
	t.Run("Forbidden403SaysWhatToConfigure", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		for _, typ := range []string{"auth", "aor", "endpoint"} {
			h.fake.SetWritable(typ, false) // plain pjsip.conf: the "config" wizard only
		}
		_, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"})
		if tollguard.ErrorCode(err) != tollguard.EFORBIDDEN {
			t.Fatalf("err %v", err)
		}
		for _, want := range []string{"sorcery.conf", "auth=astdb,ps_auth", "nothing was kept", "--no-asterisk"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message lacks %q: %s", want, err)
			}
		}
		if _, err := h.db.Extension(ctx, "1009"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			t.Errorf("store row kept after the 403: %v", err)
		}
	})
	t.Run("LaterStepFailsRollsBack", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		h.fake.Fault("PUT", "/asterisk/config/dynamic/res_pjsip/endpoint/1009", 500, "disk full", 1)
		_, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"})
		if err == nil || !strings.Contains(err.Error(), "rolled back auth, aor") {
			t.Fatalf("err %v", err)
		}
		for _, typ := range []string{"auth", "aor", "endpoint"} {
			if _, ok := h.fake.Object(typ, "1009"); ok {
				t.Errorf("%s/1009 left behind", typ)
			}
		}
		if w := h.writes(); !reflect.DeepEqual(w, []string{"PUT auth/1009", "PUT aor/1009", "PUT endpoint/1009", "DELETE aor/1009", "DELETE auth/1009"}) {
			t.Errorf("writes %q", w)
		}
		if _, err := h.db.Extension(ctx, "1009"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			t.Errorf("store row kept: %v", err)
		}
	})
	t.Run("FailedAddUsesNoQuota", func(t *testing.T) {
		// Nothing was created: the retry is not refused as the day's
		// second creation, and only the line made counts.
		h := newAudHarness(t)
		h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
		h.fake.Fault("PUT", "/asterisk/config/dynamic/res_pjsip/endpoint/1009", 500, "disk full", 1)
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err == nil {
			t.Fatal("the add with a failing Asterisk succeeded")
		}
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
			t.Fatalf("retry after the failed add: %v", err)
		}
		if cs, err := h.db.ExtensionCreations(ctx, time.Time{}); err != nil || len(cs) != 1 {
			t.Errorf("creations %+v, %v: want the one line made", cs, err)
		}
	})
	t.Run("RefusesExistingAsteriskObjects", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		_, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1001", Account: "acme"})
		if tollguard.ErrorCode(err) != tollguard.ECONFLICT || len(h.writes()) != 0 {
			t.Errorf("err %v, writes %q", err, h.writes())
		}
	})
	t.Run("NoAsteriskRecordsOnly", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		h.env.Asterisk = nil
		got, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1001", Account: "acme", NoAsterisk: true})
		if err != nil || got.Password != "" || got.Extension.Managed {
			t.Errorf("got %+v, %v", got, err)
		}
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1002", Account: "acme"}); tollguard.ErrorCode(err) != tollguard.EUNAVAILABLE {
			t.Errorf("without ARI: %v", err)
		}
	})
	t.Run("Validation", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		for _, spec := range []tollguard.ExtensionSpec{{Name: "a;b", Account: "acme"}, {Name: "1009"}, {Name: "1009", Account: "nope"}} {
			if _, err := h.env.AddExtension(ctx, spec); err == nil {
				t.Errorf("%+v accepted", spec)
			}
		}
		if len(h.writes()) != 0 {
			t.Errorf("writes %q", h.writes())
		}
	})
}

func TestRotatePassword(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	created, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	pw, auth, err := h.env.RotatePassword(ctx, "1009")
	if err != nil {
		t.Fatal(err)
	}
	if auth != "1009" || pw == created.Password || h.object("auth", "1009").Get("password") != pw {
		t.Errorf("auth %s, new %q, old %q, stored %q", auth, pw, created.Password, h.object("auth", "1009").Get("password"))
	}
	// 1001 comes from pjsip.conf: read-only whatever sorcery.conf says.
	before := h.object("auth", "1001").Get("password")
	_, _, err = h.env.RotatePassword(ctx, "1001")
	if tollguard.ErrorCode(err) != tollguard.EFORBIDDEN || !strings.Contains(err.Error(), "sorcery.conf") || !strings.Contains(err.Error(), "password is unchanged") {
		t.Errorf("err %v", err)
	}
	if h.object("auth", "1001").Get("password") != before {
		t.Error("read-only password changed")
	}
	if _, _, err := h.env.RotatePassword(ctx, "4040"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Errorf("missing: %v", err)
	}
	// A stored md5 digest: Asterisk checks it instead of any password,
	// and ARI cannot clear it, so rotating is refused with what to do.
	h.fake.SetObject("auth", "0902", tollguard.ConfigObject{{Attribute: "auth_type", Value: "md5"}, {Attribute: "username", Value: "0902"},
		{Attribute: "md5_cred", Value: "5f4dcc3b5aa765d61d8327deb882cf99"}, {Attribute: "password", Value: ""}}, true)
	h.fake.SetObject("endpoint", "0902", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "0902"}}, true)
	h.fake.ResetRequests()
	_, _, err = h.env.RotatePassword(ctx, "0902")
	if tollguard.ErrorCode(err) != tollguard.ECONFLICT || !strings.Contains(err.Error(), "remove md5_cred") || len(h.writes()) != 0 {
		t.Errorf("md5 auth rotation: %v, writes %q", err, h.writes())
	}
}

// TestPurgeAndRestore follows an extension nobody uses from creation
// through the stale audit's block, grace period, purge and a restore.
func TestPurgeAndRestore(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	created, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme", CallerID: `"Old" <1009>`})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]tollguard.ConfigObject{}
	for _, typ := range []string{"auth", "aor", "endpoint"} {
		before[typ] = h.object(typ, "1009")
	}

	h.advance(61 * 24 * time.Hour)
	h.fake.ResetRequests()
	run := h.run(tollguard.StaleAudit{}, true)
	// 1001-1003 were first seen just now: too new to judge, so only
	// 1009 (never seen since its creation 61 days ago) is stale.
	if got := audFindings(run); !reflect.DeepEqual(got, []string{"stale ext:1009 warning"}) || !run.Findings[0].Fixable {
		t.Fatalf("findings %q (fixable %v)", got, run.Findings[0].Fixable)
	}
	if got := audActions(run); !reflect.DeepEqual(got, []string{"schedule_purge ext:1009"}) {
		t.Fatalf("actions %q", got)
	}
	e, _ := h.db.Extension(ctx, "1009")
	if !e.Blocked || e.BlockedBy != "audit:stale" || !strings.Contains(e.BlockReason, "unblock it to cancel") {
		t.Errorf("not blocked: %+v", e)
	}
	if len(h.writes()) != 0 {
		t.Errorf("Asterisk written during the grace period: %q", h.writes())
	}
	if got := h.alerts.kinds(); !reflect.DeepEqual(got, []string{"audit_stale ext:1009"}) {
		t.Errorf("alerts %q", got)
	}

	// Within the grace period: reported as pending, nothing done.
	h.advance(3 * 24 * time.Hour)
	run = h.run(tollguard.StaleAudit{}, true)
	f := audFinding(t, run, "stale", "ext:1009")
	if f.Severity != tollguard.SeverityInfo || !strings.Contains(f.Message, "purge due 2027-01-30") || len(run.Actions) != 0 || f.Fixable {
		t.Errorf("finding %+v, actions %q", f, audActions(run))
	}
	// Blocked already: the message does not ask for the --apply that did it.
	if strings.Contains(f.Message, "--apply") {
		t.Errorf("pending purge's finding suggests --apply: %q", f.Message)
	}

	// Report-only after the grace period: says so, deletes nothing.
	h.advance(5 * 24 * time.Hour)
	run = h.run(tollguard.StaleAudit{}, false)
	if f := audFinding(t, run, "purge", "ext:1009"); !strings.Contains(f.Message, "--apply") || !f.Fixable {
		t.Errorf("finding %+v", f)
	}
	if len(h.writes()) != 0 {
		t.Errorf("report-only run wrote: %q", h.writes())
	}

	run = h.run(tollguard.StaleAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"purge ext:1009"}) {
		t.Fatalf("actions %q", got)
	}
	if w := h.writes(); !reflect.DeepEqual(w, []string{"DELETE endpoint/1009", "DELETE aor/1009", "DELETE auth/1009"}) {
		t.Errorf("writes %q", w)
	}
	for _, typ := range []string{"auth", "aor", "endpoint"} {
		if _, ok := h.fake.Object(typ, "1009"); ok {
			t.Errorf("%s/1009 still there", typ)
		}
	}
	snap, err := h.db.LatestSnapshot(ctx, "1009")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Objects) != 3 || snap.Objects[0].Type != "auth" || snap.Objects[0].Fields.Get("password") != created.Password || snap.Account != "acme" {
		t.Errorf("snapshot %+v", snap)
	}

	h.fake.ResetRequests()
	rep, err := h.env.RestoreExtension(ctx, "1009", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Restored, []string{"auth/1009", "aor/1009", "endpoint/1009"}) || !rep.Unblocked || len(rep.Rejected) != 0 {
		t.Errorf("report %+v", rep)
	}
	for typ, obj := range before {
		if got := h.object(typ, "1009"); !reflect.DeepEqual(got, obj) {
			t.Errorf("%s/1009 restored as\n%v\nwant\n%v", typ, got, obj)
		}
	}
	if e, _ := h.db.Extension(ctx, "1009"); e.Blocked {
		t.Error("still blocked after restore")
	}
	if _, err := h.db.LatestSnapshot(ctx, "1009"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Errorf("snapshot not marked restored: %v", err)
	}
	if _, err := h.env.RestoreExtension(ctx, "1009", "admin"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Errorf("second restore: %v", err)
	}

	// The restored line gets a whole stale period from the restore: the
	// next run blocked it and scheduled its purge again, the phone not
	// having registered within hours.
	h.advance(12 * time.Hour)
	run = h.run(tollguard.StaleAudit{}, true)
	if len(run.Actions) != 0 {
		t.Errorf("12 hours after the restore: actions %q", audActions(run))
	}
	if e, _ := h.db.Extension(ctx, "1009"); e.Blocked {
		t.Errorf("blocked again after the restore: %s", e.BlockReason)
	}
	h.advance(60 * 24 * time.Hour)
	run = h.run(tollguard.StaleAudit{}, true)
	if got := audActions(run); !slices.Contains(got, "schedule_purge ext:1009") {
		t.Errorf("a stale period after the restore, still unused: actions %q", got)
	}
}

func TestPurgeCancelledByUnblock(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "demo1", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.advance(8 * 24 * time.Hour) // past "new"
	run := h.run(tollguard.TestsAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"schedule_purge ext:demo1"}) {
		t.Fatalf("actions %q", got)
	}
	if _, err := h.db.Unblock(ctx, tollguard.BlockExtension, "demo1", "admin"); err != nil {
		t.Fatal(err)
	}
	h.advance(8 * 24 * time.Hour)
	h.fake.ResetRequests()
	h.env.Settings.TestPatterns = []string{"^nothing-matches$"}
	run = h.run(tollguard.TestsAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"cancel_purge ext:demo1"}) {
		t.Fatalf("actions %q", got)
	}
	if len(h.writes()) != 0 {
		t.Errorf("writes %q", h.writes())
	}
	if _, ok := h.fake.Object("endpoint", "demo1"); !ok {
		t.Error("an unblocked extension was purged")
	}
}

// TestPurgeForbidden: extensions from pjsip.conf cannot be deleted
// through ARI; the audit says what to add to sorcery.conf and goes on
// report-only.
func TestPurgeForbidden(t *testing.T) {
	h := newAudHarness(t)
	h.run(tollguard.StaleAudit{}, false) // first look: 1001-1003 are baseline
	h.fake.SetEndpoint("PJSIP", "1001", "online")
	h.advance(61 * 24 * time.Hour)
	run := h.run(tollguard.StaleAudit{}, true)
	if got := audFindings(run); !reflect.DeepEqual(got, []string{"stale ext:1002 warning", "stale ext:1003 warning"}) {
		t.Fatalf("findings %q (1001 is online now)", got)
	}
	for _, a := range run.Actions {
		// pjsip.conf endpoints have no accountcode: nothing to block them under.
		if !strings.Contains(a.Message, "not blocked") {
			t.Errorf("action %+v claims a block", a)
		}
	}
	// The admin wants to keep 1003: recording it (unblocked) cancels its purge.
	h.account("acme", nil)
	h.extension("1003", "acme", h.clock(), func(e *tollguard.Extension) { e.Managed = false })
	h.advance(8 * 24 * time.Hour)
	h.alerts.reset()
	run = h.run(tollguard.StaleAudit{}, true)
	// Cancelled, but still unused: a fresh block and purge are
	// scheduled (to keep an unused extension, list it in [audit] ignore).
	// 1002's purge is refused (a pjsip.conf endpoint), reported, and
	// left pending; it stops nothing else.
	if got := audActions(run); !reflect.DeepEqual(got, []string{"cancel_purge ext:1003", "purge ext:1002 FAILED", "schedule_purge ext:1003"}) {
		t.Errorf("actions %q", got)
	}
	f := audFinding(t, run, "asterisk_read_only", "asterisk")
	for _, want := range []string{"the others are still tried", "sorcery.conf", "endpoint=astdb,ps_endpoint", "pjsip.conf"} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("finding lacks %q: %s", want, f.Message)
		}
	}
	if got := h.writes(); len(got) != 1 || got[0] != "DELETE endpoint/1002" {
		t.Errorf("writes %q", got)
	}
	if _, ok := h.fake.Object("endpoint", "1003"); !ok {
		t.Error("1003 deleted")
	}
	pending, _ := h.db.PendingPurges(context.Background())
	if len(pending) != 2 || pending[0].Extension != "1002" || !pending[1].DueAt.After(pending[0].DueAt) {
		t.Errorf("pending purges %+v: 1002's stays, 1003's is new", pending)
	}
	if e, _ := h.db.Extension(context.Background(), "1003"); !e.Blocked {
		t.Error("1003, now in the store, was not blocked")
	}
	if !strings.Contains(strings.Join(h.alerts.kinds(), ","), "audit_asterisk_read_only asterisk") {
		t.Errorf("alerts %q", h.alerts.kinds())
	}
}

func TestStaleAliveInAsterisk(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	h.extension("1001", "acme", audT0.Add(-400*24*time.Hour), nil)
	h.extension("1002", "acme", audT0.Add(-400*24*time.Hour), func(e *tollguard.Extension) { e.LastSeen = audT0.Add(-90 * 24 * time.Hour) })
	h.extension("1003", "acme", audT0.Add(-400*24*time.Hour), nil)
	h.extension("gone", "acme", audT0.Add(-400*24*time.Hour), nil)
	h.fake.SetEndpoint("PJSIP", "1001", "online")
	// 1002 has a registered contact though its endpoint reads offline.
	h.fake.Register("1002", "1002", "sip:1002@192.0.2.7:5060", nil, false)
	h.fake.SetEndpoint("PJSIP", "1002", "offline")
	// 1003 called recently: the gate's call rows count.
	if _, err := h.db.SQL().Exec(`INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason) VALUES (?, '1003', 'acme', '01632960000', 'national', 'allow', 'ok')`, audT0.Add(-24*time.Hour).Unix()); err != nil {
		t.Fatal(err)
	}
	run := h.run(tollguard.StaleAudit{}, true)
	if got := audFindings(run); !reflect.DeepEqual(got, []string{"stale ext:gone info"}) {
		t.Errorf("findings %q", got)
	}
	if f := audFinding(t, run, "stale", "ext:gone"); !strings.Contains(f.Message, "not in Asterisk") {
		t.Errorf("finding %+v", f)
	}
	for _, n := range []string{"1001", "1002"} {
		if e, _ := h.db.Extension(ctx, n); !e.LastSeen.Equal(audT0) {
			t.Errorf("%s last seen %v: alive in Asterisk, it should be touched", n, e.LastSeen)
		}
	}
}

// TestStaleCountsRegistrationsOfLinesOnlyAsteriskKnows: the listener
// records every endpoint's registrations but touches last-seen only on
// the store's extensions. A softphone only Asterisk knows, registered
// five days ago and offline when the audit runs, was called "never
// seen", blocked, and purged after the grace.
func TestStaleCountsRegistrationsOfLinesOnlyAsteriskKnows(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	h.fake.SetObject("endpoint", "3001", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "3001"},
		{Attribute: "aors", Value: "3001"}, {Attribute: "accountcode", Value: "acme"}}, true)
	h.fake.SetObject("auth", "3001", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "3001"}}, true)
	h.fake.SetObject("aor", "3001", tollguard.ConfigObject{{Attribute: "max_contacts", Value: "1"}}, true)
	h.fake.SetEndpoint("PJSIP", "3001", "offline")
	h.run(tollguard.StaleAudit{}, false) // first sighting
	h.advance(70 * 24 * time.Hour)
	c := tollguard.Contact{ID: tollguard.ContactID("3001", "sip:3001@192.0.2.9:5060"), AOR: "3001", Extension: "3001",
		URI: "sip:3001@192.0.2.9:5060", IP: "192.0.2.9", LastSeen: h.clock().Add(-5 * 24 * time.Hour)}
	if _, err := h.db.ObserveContact(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.ContactGone(ctx, c.ID, h.clock().Add(-4*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	run := h.run(tollguard.StaleAudit{}, true)
	// (The fake's own endpoints 1001-1003 are stale; 3001 is not.)
	if got, acts := strings.Join(audFindings(run), ","), strings.Join(audActions(run), ","); strings.Contains(got, "ext:3001") || strings.Contains(acts, "ext:3001") {
		t.Fatalf("a line registered 4 days ago: findings %q, actions %q", got, acts)
	}
	// And the tests audit takes it as in use too.
	h.fake.SetObject("endpoint", "3001", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "3001"},
		{Attribute: "aors", Value: "3001"}, {Attribute: "accountcode", Value: "acme"}, {Attribute: "callerid", Value: `"Demo room" <3001>`}}, true)
	run = h.run(tollguard.TestsAudit{}, true)
	if f := audFinding(t, run, "test_extension", "ext:3001"); !strings.Contains(f.Message, "in use (last registered") {
		t.Errorf("tests audit on a line in use: %s %q", f.Severity, f.Message)
	}
	if acts := strings.Join(audActions(run), ","); strings.Contains(acts, "ext:3001") {
		t.Errorf("tests audit acted on a line in use: %q", acts)
	}
}

func TestRestoreRejectedFieldsAndExisting(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	snap, err := h.env.PurgeExtension(ctx, "1009", "test")
	if err != nil {
		t.Fatal(err)
	}
	// A field this Asterisk does not know (an older version's snapshot).
	snap.Objects[2].Fields = append(snap.Objects[2].Fields, tollguard.ConfigField{Attribute: "no_such_option", Value: "1"})
	if err := h.db.MarkSnapshotRestored(ctx, snap.ID, audT0); err != nil {
		t.Fatal(err)
	}
	if err := h.db.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	// The aor came back by other means meanwhile.
	h.fake.SetObject("aor", "1009", tollguard.ConfigObject{{Attribute: "max_contacts", Value: "3"}}, true)
	rep, err := h.env.RestoreExtension(ctx, "1009", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Existing, []string{"aor/1009"}) || !reflect.DeepEqual(rep.Rejected, map[string][]string{"endpoint/1009": {"no_such_option=1"}}) {
		t.Errorf("report %+v", rep)
	}
	if h.object("aor", "1009").Get("max_contacts") != "3" {
		t.Error("an existing object was overwritten")
	}
	if h.object("endpoint", "1009").Get("context") != "from-internal" {
		t.Error("endpoint not restored")
	}
}

// Asterisk drops a deleted aor's contacts without a ContactStatusChange
// (ari-events-dynamic-config-1009.jsonl): the purge marks them gone, or
// the store kept a purged line registered until the listener resynced.
func TestPurgeEndsRegistrations(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	for _, name := range []string{"1009", "1010"} {
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: name, Account: "acme"}); err != nil {
			t.Fatal(err)
		}
		uri := "sip:" + name + "@192.0.2.10:5060;transport=udp"
		h.fake.Register(name, name, uri, nil, false)
		if _, err := h.db.ObserveContact(ctx, tollguard.Contact{ID: tollguard.ContactID(name, uri), Extension: name, AOR: name, URI: uri,
			IP: "192.0.2.10", Port: 5060, UserAgent: "Desk/1.0", LastSeen: audT0.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	h.advance(time.Minute)
	if _, err := h.env.PurgeExtension(ctx, "1009", "test"); err != nil {
		t.Fatal(err)
	}
	live, err := h.db.LiveContacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].Extension != "1010" {
		t.Fatalf("live registrations after purging 1009: %+v", live)
	}
	cs, err := h.db.Contacts(ctx, store.ContactFilter{Extension: "1009"})
	if err != nil || len(cs) != 1 || cs[0].Live || !cs[0].RemovedAt.Equal(audT0.Add(time.Minute)) {
		t.Errorf("1009's registration %+v, %v", cs, err)
	}
}

// An endpoint without codecs reads back allow "(nothing)", which is no
// codec name: sent back, Asterisk failed the whole restore (400).
func TestRestoreEndpointWithoutCodecs(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ast.PutConfigObject(ctx, "endpoint", "1009", []tollguard.ConfigField{{Attribute: "disallow", Value: "all"}}); err != nil {
		t.Fatal(err)
	}
	if got := h.object("endpoint", "1009").Get("allow"); got != "(nothing)" {
		t.Fatalf("endpoint codecs %s", got)
	}
	if _, err := h.env.PurgeExtension(ctx, "1009", "test"); err != nil {
		t.Fatal(err)
	}
	rep, err := h.env.RestoreExtension(ctx, "1009", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rejected) != 0 || h.object("endpoint", "1009").Get("context") != "from-internal" {
		t.Errorf("report %+v, endpoint %v", rep, h.object("endpoint", "1009"))
	}
}

// TestAuditsSpareLinesInUseAndTrunks: a name is a weak sign, so the tests
// audit never blocks a line in use (a reception desk called "Temp"), and
// neither audit purges a trunk (no inbound auth, or an outbound_auth):
// trunks never register here and look stale for ever.
func TestAuditsSpareLinesInUseAndTrunks(t *testing.T) {
	h := newAudHarness(t)
	h.account("acme", nil)
	h.extension("2001", "acme", audT0, func(e *tollguard.Extension) { e.CallerID = "Temp Reception <2001>" })
	h.fake.SetObject("auth", "2001", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "2001"}, {Attribute: "password", Value: "x7!Kq-29vB"}}, true)
	h.fake.SetObject("endpoint", "2001", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "2001"}, {Attribute: "accountcode", Value: "acme"}}, true)
	h.fake.SetEndpoint("PJSIP", "2001", "online")
	h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "aors", Value: "itsp"}}, true)
	h.fake.SetObject("endpoint", "provider", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "outbound_auth", Value: "provider-auth"}, {Attribute: "auth", Value: "provider-auth"}}, true)
	h.fake.SetObject("endpoint", "testtrunk", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}}, true)

	run := h.run(tollguard.TestsAudit{}, true)
	if f := audFinding(t, run, "test_extension", "ext:2001"); !strings.Contains(f.Message, "in use (endpoint online)") {
		t.Errorf("finding %s", f.Message)
	}
	if f := audFinding(t, run, "test_extension", "ext:testtrunk"); !strings.Contains(f.Message, "looks like a trunk") {
		t.Errorf("finding %s", f.Message)
	}
	h.run(tollguard.StaleAudit{}, false) // first look: a baseline
	h.advance(61 * 24 * time.Hour)
	h.fake.SetEndpoint("PJSIP", "2001", "online")
	run = h.run(tollguard.StaleAudit{}, true)
	for _, trunk := range []string{"itsp", "provider"} {
		if f := audFinding(t, run, "stale", "ext:"+trunk); f.Severity != tollguard.SeverityInfo || !strings.Contains(f.Message, "looks like a trunk") {
			t.Errorf("%s: %+v", trunk, f)
		}
	}
	for _, a := range run.Actions {
		for _, spared := range []string{"ext:2001", "ext:itsp", "ext:provider", "ext:testtrunk"} {
			if a.Subject == spared {
				t.Errorf("acted on %s: %+v", spared, a)
			}
		}
	}
	if ext, _ := h.db.Extension(context.Background(), "2001"); ext.Blocked {
		t.Error("the line in use was blocked")
	}
}

// TestDuePurgeOfTrunkCancelled: a purge an audit scheduled before it knew
// better (an older tollguard took a trunk for stale) is checked again
// when due, and cancelled instead of deleting the trunk.
func TestDuePurgeOfTrunkCancelled(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.fake.SetObject("endpoint", "itsp", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}, {Attribute: "aors", Value: "itsp"}}, true)
	if _, err := h.env.Store.AddPendingPurge(ctx, tollguard.PendingPurge{Extension: "itsp", Job: "stale", Reason: "stale",
		ScheduledAt: h.clock().Add(-8 * 24 * time.Hour), DueAt: h.clock().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h.fake.ResetRequests()
	run := h.run(tollguard.StaleAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"cancel_purge ext:itsp"}) {
		t.Errorf("actions %q", got)
	}
	if w := h.writes(); len(w) != 0 {
		t.Errorf("writes %q: the trunk was deleted", w)
	}
	if _, ok := h.fake.Object("endpoint", "itsp"); !ok {
		t.Error("the trunk is gone")
	}
	// A blocked stale phone someone registered during the grace is still
	// purged: on a stale line with a weak password that may be the
	// attacker (its real user asks for an unblock, which cancels).
	h.fake.SetObject("auth", "2002", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "2002"}, {Attribute: "password", Value: "x"}}, true)
	h.fake.SetObject("aor", "2002", tollguard.ConfigObject{{Attribute: "max_contacts", Value: "1"}}, true)
	h.fake.SetObject("endpoint", "2002", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "2002"}, {Attribute: "aors", Value: "2002"}}, true)
	h.fake.Register("2002", "2002", "sip:2002@203.0.113.66:5060", map[string]string{"user_agent": "friendly-scanner"}, false)
	h.account("acme", nil)
	if err := h.db.CreateExtension(ctx, &tollguard.Extension{Name: "2002", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "2002", SetBy: "audit:stale", Reason: "stale"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.env.Store.AddPendingPurge(ctx, tollguard.PendingPurge{Extension: "2002", Job: "stale", Reason: "stale",
		ScheduledAt: h.clock().Add(-8 * 24 * time.Hour), DueAt: h.clock().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	run = h.run(tollguard.StaleAudit{}, true)
	if got := audActions(run); !slices.Contains(got, "purge ext:2002") {
		t.Errorf("actions %q: the registered stale line was spared", got)
	}
}

// TestRestoreAfterRetriedPurge: a purge that failed after deleting the
// endpoint, retried, snapshots only the auth and aor left; the restore
// puts the endpoint back too, from the first snapshot.
func TestRestoreAfterRetriedPurge(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.fake.Fault("DELETE", "/asterisk/config/dynamic/res_pjsip/aor/1009", 500, "boom", 1)
	if _, err := h.env.PurgeExtension(ctx, "1009", "stale"); err == nil {
		t.Fatal("the first purge should have failed on the aor")
	}
	if _, err := h.env.PurgeExtension(ctx, "1009", "stale"); err != nil {
		t.Fatalf("retried purge: %v", err)
	}
	rep, err := h.env.RestoreExtension(ctx, "1009", "admin")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"auth", "aor", "endpoint"} {
		if _, ok := h.fake.Object(typ, "1009"); !ok {
			t.Errorf("%s/1009 missing after restore (restored %v)", typ, rep.Restored)
		}
	}
	if _, err := h.db.LatestSnapshot(ctx, "1009"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Errorf("a snapshot still waits to be restored: %v", err)
	}
	if len(rep.SnapshotIDs) != 2 || rep.SnapshotIDs[0] != rep.Snapshot.ID {
		t.Errorf("restored from snapshots %v (newest %d)", rep.SnapshotIDs, rep.Snapshot.ID)
	}
	// Purged whole again, it restores from that one snapshot: the older,
	// restored ones are not used.
	if _, err := h.env.PurgeExtension(ctx, "1009", "stale"); err != nil {
		t.Fatal(err)
	}
	if rep, err := h.env.RestoreExtension(ctx, "1009", "admin"); err != nil || len(rep.SnapshotIDs) != 1 {
		t.Errorf("second restore: %+v %v", rep, err)
	}
}

// TestRestoreKeepsOtherBlocks: restoring a purged extension lifts the
// purge's own block, never one set for stolen credentials, which a
// purge's schedule leaves in place.
func TestRestoreKeepsOtherBlocks(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "2001", SetBy: "ari:credentials_compromised",
		Reason: "credentials compromised: a contact from 203.0.113.9"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.env.SchedulePurge(ctx, "2001", "stale", "no use in 60 days"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.env.PurgeExtension(ctx, "2001", "stale"); err != nil {
		t.Fatal(err)
	}
	rep, err := h.env.RestoreExtension(ctx, "2001", "admin")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := h.db.Extension(ctx, "2001")
	if rep.Unblocked || !e.Blocked || !strings.Contains(rep.KeptBlock, "credentials compromised") {
		t.Errorf("unblocked %v, blocked %v, kept %q", rep.Unblocked, e.Blocked, rep.KeptBlock)
	}
	// The likelier order: the stale schedule blocks first, then a
	// registration from outside the extension's networks during the
	// grace. The extension row still names the first setter.
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2003", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.env.SchedulePurge(ctx, "2003", "stale", "no use in 60 days"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "2003", SetBy: "registration:acl",
		Reason: "credentials compromised: registered from 203.0.113.9"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.env.PurgeExtension(ctx, "2003", "stale"); err != nil {
		t.Fatal(err)
	}
	rep, err = h.env.RestoreExtension(ctx, "2003", "admin")
	if e, _ := h.db.Extension(ctx, "2003"); err != nil || rep.Unblocked || !e.Blocked || !strings.Contains(rep.KeptBlock, "registration:acl") {
		t.Errorf("compromise block after the purge's: %+v %v, blocked %v", rep, err, e.Blocked)
	}
	// The purge's own block is lifted.
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2002", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.env.SchedulePurge(ctx, "2002", "stale", "no use in 60 days"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.env.PurgeExtension(ctx, "2002", "stale"); err != nil {
		t.Fatal(err)
	}
	if rep, err := h.env.RestoreExtension(ctx, "2002", "admin"); err != nil || !rep.Unblocked || rep.KeptBlock != "" {
		t.Errorf("purge's block: %+v %v", rep, err)
	}
}

// TestDuePurgeCheckedAgain: when a purge falls due, an extension listed
// in [audit] ignore meanwhile, or one the schedule could not block (only
// Asterisk knows it) that is registered again, is spared.
func TestDuePurgeCheckedAgain(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	for _, name := range []string{"2001", "2002"} {
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: name, Account: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	// 2002 is Asterisk's only: no store row, no accountcode to adopt it by.
	ep := h.object("endpoint", "2002")
	for i := range ep {
		if ep[i].Attribute == "accountcode" {
			ep[i].Value = ""
		}
	}
	h.fake.SetObject("endpoint", "2002", ep, true)
	if err := h.db.DeleteExtension(ctx, "2002"); err != nil {
		t.Fatal(err)
	}
	h.env.Settings.Ignore = []string{"1001", "1002", "1003"}
	h.run(tollguard.StaleAudit{}, false)
	h.advance(61 * 24 * time.Hour)
	h.run(tollguard.StaleAudit{}, true) // schedules both
	pending, _ := h.db.PendingPurges(ctx)
	if len(pending) != 2 {
		t.Fatalf("pending %+v", pending)
	}
	h.env.Settings.Ignore = append(h.env.Settings.Ignore, "2001")
	h.advance(2 * 24 * time.Hour)
	h.fake.Register("2002", "2002", "sip:2002@192.0.2.10:5060", nil, false)
	h.advance(6 * 24 * time.Hour)
	run := h.run(tollguard.StaleAudit{}, true)
	for _, name := range []string{"2001", "2002"} {
		if _, ok := h.fake.Object("endpoint", name); !ok {
			t.Errorf("endpoint %s deleted; actions %q", name, audActions(run))
		}
	}
	if pending, _ := h.db.PendingPurges(ctx); len(pending) != 0 {
		t.Errorf("still pending %+v", pending)
	}
	// 2001's block was the purge's own: lifted with it.
	if e, _ := h.db.Extension(ctx, "2001"); e.Blocked {
		t.Errorf("2001 spared but still blocked by %s", e.BlockedBy)
	}
}

// TestRefusedPurgeStopsNoOther: a pjsip.conf endpoint's purge, refused
// with a 403 however sorcery.conf is set, is reported and left pending;
// the astdb purges due after it still run (before, one such purge made
// every run report-only, for good).
func TestRefusedPurgeStopsNoOther(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "2001", SetBy: "audit:cli", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"1002", "2001"} { // 1002 falls due first
		if _, err := h.env.Store.AddPendingPurge(ctx, tollguard.PendingPurge{Extension: name, Job: "cli", Reason: "test",
			ScheduledAt: h.clock().Add(-8 * 24 * time.Hour), DueAt: h.clock().Add(time.Duration(i-2) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	run := h.run(tollguard.StaleAudit{}, true)
	if _, ok := h.fake.Object("endpoint", "2001"); ok {
		t.Errorf("2001 not purged after 1002's refusal; actions %q", audActions(run))
	}
	if got := audActions(run); !slices.Contains(got, "purge ext:1002 FAILED") || !slices.Contains(got, "purge ext:2001") {
		t.Errorf("actions %q", got)
	}
	if pending, _ := h.db.PendingPurges(ctx); len(pending) != 1 || pending[0].Extension != "1002" {
		t.Errorf("pending %+v", pending)
	}
	// Tried again each run: no snapshot (with its password) piles up.
	h.run(tollguard.StaleAudit{}, true)
	if snaps, err := h.db.Snapshots(ctx, "1002"); err != nil || len(snaps) != 0 {
		t.Errorf("snapshots of the refused purge: %d, %v", len(snaps), err)
	}
}

// TestRestoreKeepsPermanentContacts: an aor's configured (permanent)
// contact comes back with it; a registered one does not (a phone, or an
// attacker, registers again by itself).
func TestRestoreKeepsPermanentContacts(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	aor := append(h.object("aor", "1009"), tollguard.ConfigField{Attribute: "contact", Value: "sip:1009@192.0.2.50:5060"})
	h.fake.SetObject("aor", "1009", aor, true)
	h.fake.Register("1009", "1009", "sip:1009@203.0.113.9:5060", nil, false)
	contacts := func() []string {
		var out []string
		for _, c := range h.object("aor", "1009").All("contact") {
			if c != "" {
				out = append(out, c)
			}
		}
		return out
	}
	if got := contacts(); len(got) != 2 {
		t.Fatalf("contacts before the purge %q", got)
	}
	if _, err := h.env.PurgeExtension(ctx, "1009", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.env.RestoreExtension(ctx, "1009", "admin"); err != nil {
		t.Fatal(err)
	}
	if got := contacts(); len(got) != 1 || got[0] != "sip:1009@192.0.2.50:5060" {
		t.Errorf("contacts after the restore %q; want the permanent one only", got)
	}
}

// TestQuotasSpareALineBackInAsterisksList: an endpoint missing from
// Asterisk's list for one audit (a pjsip reload that failed) lost its
// first sighting, and when it came back the quotas audit took it for
// one created that day, and blocked it. Away for longer than a week
// (forgotten), a line the store has known for a year is still not new.
func TestQuotasSpareALineBackInAsterisksList(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 1 })
	ep := tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "x"}, {Attribute: "accountcode", Value: "acme"}}
	stored, asteriskOnly := []string{"2001", "2002"}, []string{"3001", "3002"}
	for _, n := range stored {
		h.fake.SetObject("endpoint", n, ep, false)
		h.extension(n, "acme", audT0.Add(-365*24*time.Hour), func(e *tollguard.Extension) { e.Managed = false }) // --no-asterisk
	}
	for _, n := range asteriskOnly {
		h.fake.SetObject("endpoint", n, ep, false)
	}
	h.run(tollguard.QuotasAudit{}, false) // the first look: baseline
	// away takes names out of Asterisk's list for d, with a stale audit
	// at either end, and judges the quotas audit when they are back.
	away := func(names []string, d time.Duration, apply bool) {
		t.Helper()
		h.advance(24 * time.Hour)
		for _, n := range names {
			h.fake.RemoveObject("endpoint", n)
		}
		h.run(tollguard.StaleAudit{}, false)
		h.advance(d)
		h.run(tollguard.StaleAudit{}, false)
		for _, n := range names {
			h.fake.SetObject("endpoint", n, ep, false)
		}
		run := h.run(tollguard.QuotasAudit{}, apply)
		if got := strings.Join(audFindings(run), ","); strings.Contains(got, "over_daily_quota") || len(run.Actions) != 0 {
			t.Errorf("%v back after %v: findings %q, actions %q", names, d, got, audActions(run))
		}
	}
	away(asteriskOnly, time.Hour, false)
	away(stored, time.Hour, true)
	away(stored, 10*24*time.Hour, true)
	for _, n := range stored {
		if e, _ := h.db.Extension(ctx, n); e.Blocked {
			t.Errorf("year-old %s blocked: %s", n, e.BlockReason)
		}
	}

	// Lines Asterisk lists anew are still new.
	h.advance(time.Hour)
	h.fake.SetObject("endpoint", "2003", ep, false)
	h.fake.SetObject("endpoint", "2004", ep, false)
	if got := strings.Join(audFindings(h.run(tollguard.QuotasAudit{}, false)), ","); !strings.Contains(got, "over_daily_quota account:acme") {
		t.Errorf("two endpoints new today: findings %q", got)
	}
}

// TestStaleWithoutARIOnlyReports: without ARI tollguard sees no
// registration, so a phone that only receives calls looks unused, and
// its line could never be deleted. --apply blocked it all the same.
func TestStaleWithoutARIOnlyReports(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.env.Asterisk = nil
	h.account("acme", nil)
	h.extension("1001", "acme", audT0.Add(-100*24*time.Hour), nil)
	h.extension("1002_test", "acme", audT0.Add(-100*24*time.Hour), nil)
	for _, job := range []tollguard.AuditJob{tollguard.StaleAudit{}, tollguard.TestsAudit{}} {
		run := h.run(job, true)
		if len(run.Actions) != 0 {
			t.Errorf("%s: actions %q", job.Name(), audActions(run))
		}
		n := 0
		for _, f := range run.Findings {
			if f.Extension != "" {
				n++
				// Nor does it suggest the --apply that would do nothing.
				if !strings.Contains(f.Message, "ARI is not configured") || f.Fixable || strings.Contains(f.Message, "--apply") {
					t.Errorf("%s: %s %q", job.Name(), f.Subject, f.Message)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: nothing reported: %q", job.Name(), audFindings(run))
		}
	}
	for _, n := range []string{"1001", "1002_test"} {
		if e, _ := h.db.Extension(ctx, n); e.Blocked {
			t.Errorf("%s blocked without ARI: %s", n, e.BlockReason)
		}
	}
}

// TestAuditsDoNotActWhenAsteriskCannotBeAsked: a registered phone whose
// qualify fails (behind a registration proxy) reads offline, and only
// its aor shows the registration. One failed read of that aor made the
// stale audit take it for unused, block it, and schedule its purge; a
// failed read of an endpoint made a trunk look like a phone.
func TestAuditsDoNotActWhenAsteriskCannotBeAsked(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	h.env.Settings.Ignore = []string{"1001", "1002", "1003"}
	for _, n := range []string{"2001", "demo2"} {
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: n, Account: "acme"}); err != nil {
			t.Fatal(err)
		}
	}
	h.run(tollguard.StaleAudit{}, false)
	h.advance(61 * 24 * time.Hour)
	for _, n := range []string{"2001", "demo2"} {
		h.fake.Register(n, n, "sip:"+n+"@[2001:db8::7]:5060", nil, false)
		h.fake.SetEndpoint("PJSIP", n, "offline") // qualify fails
	}

	t.Run("Tests", func(t *testing.T) {
		h.fake.Fault("GET", "/asterisk/config/dynamic/res_pjsip/aor/demo2", http.StatusInternalServerError, "boom", 1)
		run := h.run(tollguard.TestsAudit{}, true)
		if len(run.Actions) != 0 {
			t.Errorf("actions %q", audActions(run))
		}
		if e, _ := h.db.Extension(ctx, "demo2"); e.Blocked {
			t.Error("a registered phone was blocked because one ARI read failed")
		}
	})
	t.Run("Stale", func(t *testing.T) {
		h.fake.Fault("GET", "/asterisk/config/dynamic/res_pjsip/aor/2001", http.StatusInternalServerError, "boom", 1)
		run := h.run(tollguard.StaleAudit{}, true)
		if len(run.Actions) != 0 {
			t.Errorf("actions %q", audActions(run))
		}
		if f := audFinding(t, run, "stale", "ext:2001"); !strings.Contains(f.Message, "could not be asked") {
			t.Errorf("finding %q", f.Message)
		}
		if e, _ := h.db.Extension(ctx, "2001"); e.Blocked {
			t.Error("a registered phone was blocked because one ARI read failed")
		}
	})
	t.Run("TrunkAtSchedule", func(t *testing.T) {
		// A trunk: no inbound auth, only Asterisk knows it.
		h.fake.SetObject("endpoint", "carrier", tollguard.ConfigObject{{Attribute: "context", Value: "from-carrier"}, {Attribute: "aors", Value: "carrier"}}, true)
		h.run(tollguard.StaleAudit{}, false)
		h.advance(61 * 24 * time.Hour)
		h.fake.Fault("GET", "/asterisk/config/dynamic/res_pjsip/endpoint/carrier", http.StatusServiceUnavailable, "busy", 2)
		run := h.run(tollguard.StaleAudit{}, true)
		if acts := strings.Join(audActions(run), ","); strings.Contains(acts, "carrier") {
			t.Errorf("actions %q", acts)
		}
		if p, _ := h.db.PendingPurges(ctx); len(p) != 0 {
			t.Errorf("pending %+v", p)
		}
	})
	t.Run("AtDue", func(t *testing.T) {
		// A phone only Asterisk knows (no account to block it under),
		// scheduled while unused, registers during the grace; at due the
		// reads that would show it fail.
		h.fake.SetObject("endpoint", "3001", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "3001"}, {Attribute: "aors", Value: "3001"}}, true)
		h.fake.SetObject("auth", "3001", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "3001"}}, true)
		h.run(tollguard.StaleAudit{}, false)
		h.advance(61 * 24 * time.Hour)
		h.run(tollguard.StaleAudit{}, true)
		if p, _ := h.db.PendingPurges(ctx); len(p) != 1 || p[0].Extension != "3001" {
			t.Fatalf("pending %+v", p)
		}
		h.advance(8 * 24 * time.Hour)
		h.fake.Register("3001", "3001", "sip:3001@192.0.2.30:5060", nil, false)
		h.fake.SetEndpoint("PJSIP", "3001", "offline")
		h.fake.Fault("GET", "/asterisk/config/dynamic/res_pjsip/endpoint/3001", http.StatusServiceUnavailable, "busy", 2)
		run := h.run(tollguard.StaleAudit{}, true)
		if _, ok := h.fake.Object("endpoint", "3001"); !ok {
			t.Errorf("a line in use again was purged: actions %q", audActions(run))
		}
	})
}

// lostAnswerProxy forwards ARI requests to the fake, except that a PUT
// of the dynamic-config object under path is carried out and its answer
// lost (the connection closes), as when Asterisk applies a write and
// the request times out; with noReadBack, every read of that object
// after it is answered 503, so the write cannot be checked either.
func lostAnswerProxy(t *testing.T, h *audHarness, path string, noReadBack bool) *ari.Client {
	t.Helper()
	var put atomic.Bool
	return ariProxy(t, h, func(w http.ResponseWriter, r *http.Request, pass http.Handler) {
		ours := strings.HasSuffix(r.URL.Path, "/asterisk/config/dynamic/res_pjsip/"+path)
		if ours && r.Method == http.MethodGet && noReadBack && put.Load() {
			http.Error(w, `{"message":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPut || !ours {
			pass.ServeHTTP(w, r)
			return
		}
		pass.ServeHTTP(httptest.NewRecorder(), r)
		put.Store(true)
		dropConn(w)
	})
}

// ariProxy puts a proxy in front of h's fake ARI and returns an ARI
// client that goes through it: handle sees every request first, and
// passes on to the fake through pass what it does not answer itself.
func ariProxy(t *testing.T, h *audHarness, handle func(w http.ResponseWriter, r *http.Request, pass http.Handler)) *ari.Client {
	t.Helper()
	target, _ := url.Parse(h.fake.URL)
	pass := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(w, r, pass) }))
	t.Cleanup(srv.Close)
	c, err := ari.NewClient(ari.Config{URL: srv.URL + target.Path, User: h.fake.User, Password: h.fake.Password, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dropConn closes a request's connection with no answer, as a request
// that times out on its way.
func dropConn(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

// TestRotationWhoseAnswerIsLost: Asterisk changed the password, but the
// answer never came. The new password was thrown away and the admin told
// the old one still held: the phone was locked out, and tollguard said
// nothing had changed.
func TestRotationWhoseAnswerIsLost(t *testing.T) {
	ctx := context.Background()
	h := rotationLines(t)

	t.Run("RotatePassword", func(t *testing.T) {
		env := *h.env
		env.Asterisk = lostAnswerProxy(t, h, "auth/1009", false)
		pw, _, err := env.RotatePassword(ctx, "1009")
		inForce := h.object("auth", "1009").Get("password")
		if err != nil || pw != inForce {
			t.Errorf("password in force %q; RotatePassword gave %q, %v", inForce, pw, err)
		}
	})
	t.Run("PasswordsAudit", func(t *testing.T) {
		env := *h.env
		env.Asterisk = lostAnswerProxy(t, h, "auth/0900", false)
		env.Settings.Ignore = []string{"1001", "1002", "1003"}
		run, err := tollguard.RunAudit(ctx, &env, tollguard.PasswordsAudit{}, true, "cli", nil)
		if err != nil {
			t.Fatal(err)
		}
		inForce := h.object("auth", "0900").Get("password")
		if inForce == "0900" {
			t.Fatal("the proxy did not pass the write on")
		}
		if len(run.Actions) != 1 || run.Actions[0].Secret != inForce || run.Actions[0].Err != "" {
			t.Errorf("password in force %q; actions %+v", inForce, run.Actions)
		}
	})
}

// TestCancelAfterPartialPurgeSaysRestore: a purge deleted the endpoint,
// then Asterisk failed on the aor; the admin, told "unblock it to
// cancel", unblocked it. The purge was reported cancelled as if nothing
// had happened, while the phone had no endpoint any more.
func TestCancelAfterPartialPurgeSaysRestore(t *testing.T) {
	ctx := context.Background()
	h := duePurge(t, "2001")
	h.fake.Fault("DELETE", "/asterisk/config/dynamic/res_pjsip/aor/2001", http.StatusInternalServerError, "boom", 1)
	run := h.run(tollguard.StaleAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"purge ext:2001 FAILED"}) {
		t.Fatalf("actions %q", got)
	}
	if _, ok := h.fake.Object("endpoint", "2001"); ok {
		t.Fatal("the endpoint is still there: no partial purge to test")
	}
	if _, err := h.db.Unblock(ctx, tollguard.BlockExtension, "2001", "admin"); err != nil {
		t.Fatal(err)
	}
	run = h.run(tollguard.StaleAudit{}, true)
	var cancel *tollguard.AuditAction
	for i := range run.Actions {
		if run.Actions[i].Kind == tollguard.AuditActCancelPurge {
			cancel = &run.Actions[i]
		}
	}
	if cancel == nil {
		t.Fatalf("actions %q", audActions(run))
	}
	if !strings.Contains(cancel.Message, "tollguard ext restore 2001") || cancel.Err == "" {
		t.Errorf("cancel of a purge that had deleted the endpoint: %+v", *cancel)
	}
}

// extReadFails is the audit store with one extension's read failing, as
// a locked or broken database fails it.
type extReadFails struct {
	tollguard.AuditStore
	name string
}

func (s extReadFails) Extension(ctx context.Context, name string) (*tollguard.Extension, error) {
	if name == s.name {
		return nil, errors.New("database is locked")
	}
	return s.AuditStore.Extension(ctx, name)
}

// TestDuePurgeWaitsWhenItsExtensionCannotBeRead: whether the admin
// unblocked the line during the grace (which cancels the purge) is
// unknown when its row cannot be read: the purge went ahead.
func TestDuePurgeWaitsWhenItsExtensionCannotBeRead(t *testing.T) {
	ctx := context.Background()
	h := duePurge(t, "2001")
	env := *h.env
	env.Store = extReadFails{AuditStore: h.db, name: "2001"}
	run, err := tollguard.RunAudit(ctx, &env, tollguard.StaleAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.fake.Object("endpoint", "2001"); !ok {
		t.Errorf("purged with its extension unreadable: actions %q", audActions(run))
	}
}

// duePurge is acme's line name, unused for 61 days: the stale audit
// blocked it and scheduled its purge, and the grace is over (the
// recorded lines 1001-1003 ignored).
func duePurge(t *testing.T, name string) *audHarness {
	t.Helper()
	h := newAudHarness(t)
	h.account("acme", nil)
	h.env.Settings.Ignore = []string{"1001", "1002", "1003"}
	if _, err := h.env.AddExtension(context.Background(), tollguard.ExtensionSpec{Name: name, Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.advance(61 * 24 * time.Hour)
	h.run(tollguard.StaleAudit{}, true)
	h.advance(8 * 24 * time.Hour)
	return h
}

// rotationLines is acme's 1009 (created by tollguard) and a line only
// Asterisk knows, 0900, whose password is its name: one rotates by
// hand, the other by the passwords audit.
func rotationLines(t *testing.T) *audHarness {
	t.Helper()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(context.Background(), tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.fake.SetObject("auth", "0900", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "0900"}, {Attribute: "password", Value: "0900"}}, true)
	h.fake.SetObject("endpoint", "0900", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "0900"}, {Attribute: "aors", Value: "0900"}}, true)
	return h
}

// TestRotationUncheckedSaysHowToRead: when the lost answer cannot be
// checked either, the admin must be told that the change may be in
// force and how to read it. The CLI and the audit print ErrorMessage,
// which kept only the inner ARI error and dropped that advice.
func TestRotationUncheckedSaysHowToRead(t *testing.T) {
	ctx := context.Background()
	h := rotationLines(t)

	t.Run("RotatePassword", func(t *testing.T) {
		env := *h.env
		env.Asterisk = lostAnswerProxy(t, h, "auth/1009", true)
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
		env.Asterisk = lostAnswerProxy(t, h, "auth/0900", true)
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

// TestCancelAfterPurgeThatDeletedNothing: the purge's first delete (the
// endpoint) failed, so nothing was deleted; the admin unblocked. The
// cancel said an earlier run "had deleted some of its PJSIP objects
// already", pointed at ext restore and failed the run (exit 1), while
// every object was still in Asterisk. `tollguard unblock` said the same.
func TestCancelAfterPurgeThatDeletedNothing(t *testing.T) {
	ctx := context.Background()
	h := duePurge(t, "2001")
	h.fake.Fault("DELETE", "/asterisk/config/dynamic/res_pjsip/endpoint/2001", http.StatusInternalServerError, "boom", 1)
	run := h.run(tollguard.StaleAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"purge ext:2001 FAILED"}) {
		t.Fatalf("actions %q", got)
	}
	for _, typ := range []string{"endpoint", "aor", "auth"} {
		if _, ok := h.fake.Object(typ, "2001"); !ok {
			t.Fatalf("%s 2001 gone: not a purge that deleted nothing", typ)
		}
	}
	pending, err := h.db.PendingPurges(ctx)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %v, %v", pending, err)
	}
	if snap, err := tollguard.PurgeStarted(ctx, h.db, pending[0]); err != nil || snap != nil {
		t.Errorf("PurgeStarted = %v, %v for a purge that deleted nothing: unblock says it had begun deleting", snap, err)
	}
	if _, err := h.db.Unblock(ctx, tollguard.BlockExtension, "2001", "admin"); err != nil {
		t.Fatal(err)
	}
	run = h.run(tollguard.StaleAudit{}, true)
	for _, a := range run.Actions {
		if a.Kind == tollguard.AuditActCancelPurge && a.Err != "" {
			t.Errorf("cancel of a purge that deleted nothing: %+v", a)
		}
	}
}

// TestPurgeWhoseDeleteWasLostKeepsItsSnapshot: the endpoint's delete got
// no answer (the connection dropped); the object read back was still
// there, but Asterisk carried the delete out after it. The snapshot,
// and the password in it, must still be there for `ext restore`.
func TestPurgeWhoseDeleteWasLostKeepsItsSnapshot(t *testing.T) {
	ctx := context.Background()
	h := duePurge(t, "2001")
	var lost atomic.Bool
	c := ariProxy(t, h, func(w http.ResponseWriter, r *http.Request, pass http.Handler) {
		if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/res_pjsip/endpoint/2001") && !lost.Swap(true) {
			dropConn(w) // not passed on yet: it lands after the read-back
			return
		}
		pass.ServeHTTP(w, r)
	})
	env := *h.env
	env.Asterisk = c
	if _, err := env.PurgeExtension(ctx, "2001", "stale"); err == nil {
		t.Fatal("the purge did not fail")
	}
	// The delete lands late.
	if err := h.ast.DeleteConfigObject(ctx, "endpoint", "2001"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.env.RestoreExtension(ctx, "2001", "admin"); err != nil {
		t.Fatalf("restore after a lost delete: %v", err)
	}
	if _, ok := h.fake.Object("endpoint", "2001"); !ok {
		t.Error("endpoint/2001 not back")
	}
}

// TestPurgeWhoseDeleteTimedOutBehindAProxyKeepsItsSnapshot: a proxy in
// front of ARI answered the endpoint's delete with 502, 503 or 504 (it
// gave up waiting, or lost Asterisk). That was taken for Asterisk's own
// answer: the object read back was still there, so the snapshot was
// dropped, and when Asterisk carried the delete out after all, `ext
// restore` had nothing to restore. Such a status is no answer from
// Asterisk: the snapshot stays.
func TestPurgeWhoseDeleteTimedOutBehindAProxyKeepsItsSnapshot(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			ctx := context.Background()
			h := duePurge(t, "2001")
			var answered atomic.Bool
			c := ariProxy(t, h, func(w http.ResponseWriter, r *http.Request, pass http.Handler) {
				if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/res_pjsip/endpoint/2001") && !answered.Swap(true) {
					// The proxy's own page: the delete is still on its way.
					http.Error(w, http.StatusText(status), status)
					return
				}
				pass.ServeHTTP(w, r)
			})
			env := *h.env
			env.Asterisk = c
			_, err := env.PurgeExtension(ctx, "2001", "stale")
			if err == nil {
				t.Fatal("the purge did not fail")
			}
			if !strings.Contains(err.Error(), "may or may not") {
				t.Errorf("the purge's error does not say the delete may have been carried out: %v", err)
			}
			// The delete lands late.
			if err := h.ast.DeleteConfigObject(ctx, "endpoint", "2001"); err != nil {
				t.Fatal(err)
			}
			if _, err := h.env.RestoreExtension(ctx, "2001", "admin"); err != nil {
				t.Fatalf("restore after a delete the proxy gave up on: %v", err)
			}
			if _, ok := h.fake.Object("endpoint", "2001"); !ok {
				t.Error("endpoint/2001 not back")
			}
		})
	}
}

// An auth holding only stored digests (Asterisk 22.2 on: no password,
// password_digest "SHA-256:hex") was created on restore without them, and
// Asterisk's auth_apply refuses an auth with no credential for an
// algorithm it offers (400): the restore failed. Its algorithm lists,
// merged in afterwards, were added to the MD5 a new auth starts with.
func TestRestoreAuthWithStoredDigests(t *testing.T) {
	ctx := context.Background()
	md5 := digestHA1("MD5", "1009", "pbx.example", strongPW)
	sha := digestHA1("SHA-256", "1009", "pbx.example", strongPW)
	for _, c := range []struct {
		name string
		set  map[string]string
	}{
		{"SHA256Only", map[string]string{"password_digest": "SHA-256:" + sha, "supported_algorithms_uas": "SHA-256", "supported_algorithms_uac": "SHA-256"}},
		{"MD5AndSHA256", map[string]string{"md5_cred": md5, "password_digest": "MD5:" + md5 + ",SHA-256:" + sha, "supported_algorithms_uas": "SHA-256,MD5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.set["password"] = ""
			c.set["realm"] = "pbx.example"
			h, before := purgedAuthLine(t, c.set)
			rep, err := h.env.RestoreExtension(ctx, "1009", "admin")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rep.Restored, []string{"auth/1009", "endpoint/1009"}) || len(rep.Rejected) != 0 {
				t.Errorf("report %+v", rep)
			}
			if got := h.object("auth", "1009"); !reflect.DeepEqual(got, before) {
				t.Errorf("auth restored as\n%v\nwant\n%v", got, before)
			}
		})
	}
}

// TestRestoreOnAnOlderAsterisk: a snapshot taken on Asterisk 22.2 or
// later holds the auth's algorithm lists, which an older Asterisk (a
// downgrade, another PBX) does not know: it refused the whole create
// (400), and the restore stopped. The auth is created without them,
// and the two fields are listed as rejected.
func TestRestoreOnAnOlderAsterisk(t *testing.T) {
	ctx := context.Background()
	h, _ := purgedAuthLine(t, map[string]string{"password": strongPW, "supported_algorithms_uas": "MD5", "supported_algorithms_uac": "MD5"})
	h.fake.WithoutField("auth", "supported_algorithms_uas")
	h.fake.WithoutField("auth", "supported_algorithms_uac")
	rep, err := h.env.RestoreExtension(ctx, "1009", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Restored, []string{"auth/1009", "endpoint/1009"}) {
		t.Errorf("restored %v", rep.Restored)
	}
	if got := rep.Rejected["auth/1009"]; !reflect.DeepEqual(got, []string{"supported_algorithms_uas=MD5", "supported_algorithms_uac=MD5"}) {
		t.Errorf("rejected %v, want the two algorithm lists", got)
	}
	if pw := h.object("auth", "1009").Get("password"); pw != strongPW {
		t.Errorf("restored auth's password %q", pw)
	}
}

// TestRestoreOnAsterisk22WithARefusedList: on an Asterisk that has the
// algorithm lists, a create refused (400) for a list it cannot take
// (SHA-512-256, which this build lacks) is not one for an older
// Asterisk: retried without the lists, the auth got the default MD5,
// and the merge added the snapshot's other list to it (a write appends),
// so it offered MD5,SHA-256 where the snapshot had SHA-256, unreported.
// The restore stops as it did, naming the refusal, and leaves no auth.
func TestRestoreOnAsterisk22WithARefusedList(t *testing.T) {
	ctx := context.Background()
	h, _ := purgedAuthLine(t, map[string]string{"password": strongPW, "supported_algorithms_uas": "SHA-256", "supported_algorithms_uac": "SHA-512-256"})
	h.fake.WithoutAlgorithm("SHA-512-256")
	rep, err := h.env.RestoreExtension(ctx, "1009", "admin")
	if tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), "auth/1009") {
		t.Fatalf("restore: %v, want the create's 400 for auth/1009", err)
	}
	if rep != nil && len(rep.Restored) > 0 {
		t.Errorf("restored %v (rejected %v)", rep.Restored, rep.Rejected)
	}
	if obj, err := h.env.Asterisk.ConfigObject(ctx, "auth", "1009"); err == nil {
		t.Errorf("auth/1009 left with supported_algorithms_uas=%q", obj.Get("supported_algorithms_uas"))
	}
}

// purgedAuthLine is extension 1009 of acme, whose auth is the recorded
// Asterisk 22 one with username 1009 and set, purged; before is its
// auth as Asterisk showed it before the purge.
func purgedAuthLine(t *testing.T, set map[string]string) (h *audHarness, before tollguard.ConfigObject) {
	t.Helper()
	h = newAudHarness(t)
	h.account("acme", nil)
	h.extension("1009", "acme", audT0, nil)
	set["username"] = "1009"
	h.fake.SetObject("auth", "1009", auth22(h, set), true)
	h.fake.SetObject("endpoint", "1009", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "1009"}, {Attribute: "accountcode", Value: "acme"}}, true)
	before = h.object("auth", "1009")
	if _, err := h.env.PurgeExtension(context.Background(), "1009", "test"); err != nil {
		t.Fatal(err)
	}
	return h, before
}
