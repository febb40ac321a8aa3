package ari

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
)

func wantCode(t *testing.T, err error, code string, contains ...string) {
	t.Helper()
	if got := tollguard.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	for _, s := range contains {
		if !strings.Contains(tollguard.ErrorMessage(err), s) {
			t.Errorf("error %q does not say %q", tollguard.ErrorMessage(err), s)
		}
	}
}

func TestClientREST(t *testing.T) {
	ctx := context.Background()
	fake := newFake(t)
	c := newClient(t, testConfig(fake))

	t.Run("Endpoints", func(t *testing.T) {
		fake.SetEndpoint("PJSIP", "1001", "online")
		eps, err := c.Endpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(eps) != 3 || eps[0].Resource != "1001" || eps[0].State != "online" || eps[0].Technology != "PJSIP" {
			t.Fatalf("endpoints: %+v", eps)
		}
	})

	t.Run("ReadObject", func(t *testing.T) {
		obj, err := c.ConfigObject(ctx, "endpoint", "1001")
		if err != nil {
			t.Fatal(err)
		}
		if obj.Get("context") != "from-internal" || obj.Get("aors") != "1001" {
			t.Errorf("endpoint 1001: context %q aors %q", obj.Get("context"), obj.Get("aors"))
		}
		auth, err := c.ConfigObject(ctx, "auth", "1001")
		if err != nil || auth.Get("password") != "Str0ng!Pass-1001" {
			t.Fatalf("auth 1001: %v %v", auth, err)
		}
		_, err = c.ConfigObject(ctx, "auth", "1009")
		wantCode(t, err, tollguard.ENOTFOUND, "Object with id '1009' not found")
	})

	t.Run("ContactIDInPath", func(t *testing.T) {
		id := fake.Register("1001", "1001", "sip:1001@127.0.0.1:5070;transport=udp", map[string]string{"user_agent": "SIPp"}, false)
		obj, err := c.ConfigObject(ctx, "contact", id)
		if err != nil {
			t.Fatal(err)
		}
		if obj.Get("user_agent") != "SIPp" {
			t.Errorf("contact: %v", obj)
		}
		reqs := fake.RequestsMatching(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/contact/")
		if len(reqs) == 0 || !strings.HasSuffix(reqs[len(reqs)-1].Path, "1001;@bd5f0da85355b09bd94b726d5867ad6b") {
			t.Errorf("contact request paths: %+v", reqs)
		}
	})

	t.Run("PlusInAnID", func(t *testing.T) {
		// ARI reads "+" in a path as a space: the object must still be
		// "alice+desk", written, read and deleted as that.
		fields := []tollguard.ConfigField{{Attribute: "context", Value: "from-internal"}, {Attribute: "aors", Value: "alice+desk"}}
		if _, err := c.PutConfigObject(ctx, "endpoint", "alice+desk", fields); err != nil {
			t.Fatal(err)
		}
		if _, ok := fake.Object("endpoint", "alice desk"); ok {
			t.Fatal(`wrote "alice desk"`)
		}
		if obj, err := c.ConfigObject(ctx, "endpoint", "alice+desk"); err != nil || obj.Get("aors") != "alice+desk" {
			t.Fatalf("read back: %v %v", obj, err)
		}
		if err := c.DeleteConfigObject(ctx, "endpoint", "alice+desk"); err != nil {
			t.Fatal(err)
		}
		if _, ok := fake.Object("endpoint", "alice+desk"); ok {
			t.Fatal("delete left alice+desk")
		}
		err := c.DeleteConfigObject(ctx, "endpoint", "alice+desk")
		wantCode(t, err, tollguard.ENOTFOUND)
	})

	t.Run("WriteReadOnlyObject", func(t *testing.T) {
		_, err := c.PutConfigObject(ctx, "auth", "1001", []tollguard.ConfigField{{Attribute: "password", Value: "changed"}})
		wantCode(t, err, tollguard.EFORBIDDEN, "Cannot update sorcery objects of type 'auth'", "sorcery.conf", "auth=astdb,ps_auth", "pjsip.conf")
		err = c.DeleteConfigObject(ctx, "endpoint", "1001")
		wantCode(t, err, tollguard.EFORBIDDEN, "endpoint=config,pjsip.conf,criteria=type=endpoint", "endpoint=astdb,ps_endpoint")
		if _, ok := fake.Object("endpoint", "1001"); !ok {
			t.Error("read-only endpoint deleted")
		}
	})

	t.Run("CreateWithoutWritableWizard", func(t *testing.T) {
		fake.SetWritable("aor", false)
		defer fake.SetWritable("aor", true)
		_, err := c.PutConfigObject(ctx, "aor", "1009", []tollguard.ConfigField{{Attribute: "max_contacts", Value: "2"}})
		wantCode(t, err, tollguard.EFORBIDDEN, "Cannot create sorcery objects of type 'aor'", "aor=astdb,ps_aor")
	})

	t.Run("ReadOnlyARIUser", func(t *testing.T) {
		// ari.conf read_only=yes: Asterisk answers every write 403
		// "Write access denied" before it looks at sorcery, so the
		// sorcery.conf advice would send the admin the wrong way.
		fake.SetReadOnly(true)
		defer fake.SetReadOnly(false)
		for _, err := range []error{
			func() error {
				_, err := c.PutConfigObject(ctx, "aor", "1009", []tollguard.ConfigField{{Attribute: "max_contacts", Value: "2"}})
				return err
			}(),
			c.DeleteConfigObject(ctx, "contact", "1001;@bd5f0da85355b09bd94b726d5867ad6b"),
		} {
			wantCode(t, err, tollguard.EFORBIDDEN, "Write access denied", "read_only", "ari.conf", `"tollgate"`)
			if msg := tollguard.ErrorMessage(err); strings.Contains(msg, "sorcery.conf") {
				t.Errorf("a read-only ARI user is advised to change sorcery.conf: %s", msg)
			}
		}
		if _, ok := fake.Object("aor", "1009"); ok {
			t.Error("a read-only user created an object")
		}
	})

	t.Run("WritableLifecycle", func(t *testing.T) {
		obj, err := c.PutConfigObject(ctx, "auth", "1009", []tollguard.ConfigField{
			{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "1009"}, {Attribute: "password", Value: "Dyn!Pass-1009"}})
		if err != nil {
			t.Fatal(err)
		}
		if obj.Get("password") != "Dyn!Pass-1009" || len(obj) < 10 {
			t.Errorf("created auth: %v", obj)
		}
		obj, err = c.PutConfigObject(ctx, "auth", "1009", []tollguard.ConfigField{{Attribute: "password", Value: "Other!Pass-1009"}})
		if err != nil {
			t.Fatal(err)
		}
		if obj.Get("password") != "Other!Pass-1009" || obj.Get("username") != "1009" {
			t.Errorf("merged auth: %v", obj)
		}
		_, err = c.PutConfigObject(ctx, "auth", "1009", []tollguard.ConfigField{{Attribute: "no_such_option", Value: "1"}})
		wantCode(t, err, tollguard.EINVALID, "failed field value validation")
		if err := c.DeleteConfigObject(ctx, "auth", "1009"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, c.DeleteConfigObject(ctx, "auth", "1009"), tollguard.ENOTFOUND)
		if _, ok := fake.Object("auth", "1009"); ok {
			t.Error("deleted auth still there")
		}
	})

	t.Run("ModulesAndChannels", func(t *testing.T) {
		if err := c.ReloadModule(ctx, "app_voicemail.so"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, c.ReloadModule(ctx, "app_nope.so"), tollguard.ENOTFOUND)
		id, err := c.Originate(ctx, tollguard.Originate{Endpoint: "Local/0099999@from-internal", AppArgs: "selftest", CallerID: "tollguard <0>", Timeout: 30,
			Variables: map[string]string{"TOLLGUARD_SELFTEST": "1"}})
		if err != nil || id == "" {
			t.Fatalf("originate: %q %v", id, err)
		}
		if up, err := c.ChannelExists(ctx, id); !up || err != nil {
			t.Fatalf("channel %s exists: %v %v", id, up, err)
		}
		reqs := fake.RequestsMatching(http.MethodPost, "/channels")
		if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), `"app":"tollguard"`) || !strings.Contains(string(reqs[0].Body), "TOLLGUARD_SELFTEST") {
			t.Errorf("originate request: %+v", reqs)
		}
		if err := c.HangupChannel(ctx, id, "rejected"); err != nil {
			t.Fatal(err)
		}
		if r := fake.RequestsMatching(http.MethodDelete, "/channels/"); len(r) != 1 || r[0].Query.Get("reason") != "rejected" {
			t.Errorf("hangup request: %+v", r)
		}
		wantCode(t, c.HangupChannel(ctx, id, "rejected"), tollguard.ENOTFOUND)
		alive, known, err := c.ChannelChecker()(ctx, &tollguard.CallRecord{UniqueID: id})
		if alive || !known || err != nil {
			t.Errorf("checker on a gone channel: %v %v %v", alive, known, err)
		}
		// The sweep's hangup: cause 16 (normal); a channel already gone
		// is done, not an error; a call without a channel is.
		fake.SetChannel("pbx-9.1", "PJSIP/1001-00000009")
		hang := c.ChannelHanger()
		if err := hang(ctx, &tollguard.CallRecord{UniqueID: "pbx-9.1"}); err != nil || fake.HasChannel("pbx-9.1") {
			t.Errorf("hanger: %v, channel still there: %v", err, fake.HasChannel("pbx-9.1"))
		}
		if r := fake.RequestsMatching(http.MethodDelete, "/channels/pbx-9.1"); len(r) != 1 || r[0].Query.Get("reason") != "normal" {
			t.Errorf("hanger request: %+v", r)
		}
		if err := hang(ctx, &tollguard.CallRecord{UniqueID: "pbx-9.1"}); err != nil {
			t.Errorf("hanger on a gone channel: %v", err)
		}
		wantCode(t, hang(ctx, &tollguard.CallRecord{}), tollguard.EINVALID)

		// Channel variables, as recorded: a value, or 404 when unset.
		fake.SetChannel("pbx-9.2", "PJSIP/1001-0000000a")
		if ids, err := c.ChannelIDs(ctx); err != nil || !slices.Contains(ids, "pbx-9.2") || slices.Contains(ids, "pbx-9.1") {
			t.Errorf("channel list %q %v; want pbx-9.2 and not the hung-up pbx-9.1", ids, err)
		}
		fake.SetChannelVar("pbx-9.2", tollguard.VarCallID, "7")
		if v, set, err := c.ChannelVar(ctx, "pbx-9.2", tollguard.VarCallID); v != "7" || !set || err != nil {
			t.Errorf("TOLLGUARD_CALLID: %q %v %v", v, set, err)
		}
		if r := fake.RequestsMatching(http.MethodGet, "/channels/pbx-9.2/variable"); len(r) != 1 || r[0].Query.Get("variable") != tollguard.VarCallID {
			t.Errorf("variable request: %+v", r)
		}
		if v, set, err := c.ChannelVar(ctx, "pbx-9.2", "NO_SUCH_VARIABLE"); v != "" || set || err != nil {
			t.Errorf("unset variable: %q %v %v", v, set, err)
		}
		// A call is up only while its channel still carries its call id.
		// A channel up without it (the gate's answer not there yet, or a
		// DISA caller gone on to 112) is neither taken as running the call
		// nor as gone (known is false), and is not hung up for it.
		check := c.ChannelChecker()
		rec := &tollguard.CallRecord{ID: 7, UniqueID: "pbx-9.2"}
		if alive, known, err := check(ctx, rec); !alive || !known || err != nil {
			t.Errorf("checker on its own channel: %v %v %v", alive, known, err)
		}
		for _, other := range []string{"8", ""} {
			fake.SetChannelVar("pbx-9.2", tollguard.VarCallID, other)
			if alive, known, err := check(ctx, rec); alive || known || err != nil {
				t.Errorf("checker with TOLLGUARD_CALLID %q on the channel: %v %v %v", other, alive, known, err)
			}
			if err := hang(ctx, rec); err != nil || !fake.HasChannel("pbx-9.2") {
				t.Errorf("hanger with TOLLGUARD_CALLID %q: %v; channel up %v", other, err, fake.HasChannel("pbx-9.2"))
			}
		}
		// A channel whose call cannot be checked (Asterisk slow or
		// failing) is left up, with the error: it may be on 112 now.
		fake.SetChannelVar("pbx-9.2", tollguard.VarCallID, "7")
		fake.Fault(http.MethodGet, "/channels/pbx-9.2/variable", http.StatusInternalServerError, "Internal Server Error", 1)
		if err := hang(ctx, rec); err == nil || !strings.Contains(err.Error(), "left up") || !fake.HasChannel("pbx-9.2") {
			t.Errorf("hanger with the check failing: %v; channel up %v", err, fake.HasChannel("pbx-9.2"))
		}
		// Its channel gone, the call is over.
		if err := c.HangupChannel(ctx, "pbx-9.2", "normal"); err != nil {
			t.Fatal(err)
		}
		if alive, known, err := check(ctx, rec); alive || !known || err != nil {
			t.Errorf("checker on its gone channel: %v %v %v", alive, known, err)
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		cfg := testConfig(fake)
		cfg.Password = "wrong"
		bad := newClient(t, cfg)
		_, err := bad.Endpoints(ctx)
		wantCode(t, err, tollguard.EUNAVAILABLE, "401", "ari.conf")
		wantCode(t, bad.DeleteConfigObject(ctx, "auth", "1001"), tollguard.EUNAVAILABLE, "401")
	})
}

func TestClientUnreachable(t *testing.T) {
	ctx := context.Background()
	t.Run("Refused", func(t *testing.T) {
		fake := newFake(t)
		c := newClient(t, testConfig(fake))
		fake.Stop()
		_, err := c.Endpoints(ctx)
		wantCode(t, err, tollguard.EUNAVAILABLE, "cannot reach")
		wantCode(t, c.ReloadModule(ctx, "app_voicemail.so"), tollguard.EUNAVAILABLE, "cannot reach")
	})
	t.Run("NotARI", func(t *testing.T) {
		// [ari] url without /ari: a web server that is not ARI answers
		// 404, and "not found" alone sent the admin nowhere.
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		c := newClient(t, Config{URL: srv.URL, User: "u", Password: "p", RequestTimeout: time.Second})
		// Asterisk answers so too while it loads res_ari: the listener,
		// which sees the 404s go on, decides (restart_404_test.go).
		wantCode(t, c.Probe(ctx), tollguard.EUNAVAILABLE, "still starting and has not loaded res_ari", "is not ARI's base URL: it ends in /ari")
	})
	t.Run("Hung", func(t *testing.T) {
		// A server that accepts and never answers: every call must come
		// back within the request timeout, the library's too.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		held := make(chan net.Conn, 64)
		defer func() {
			ln.Close()
			for len(held) > 0 {
				(<-held).Close()
			}
		}()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held <- c
			}
		}()
		c := newClient(t, Config{URL: "http://" + ln.Addr().String() + "/ari", User: "u", Password: "p", RequestTimeout: 200 * time.Millisecond, MaxInFlight: 2})
		for name, call := range map[string]func() error{
			"own":    func() error { _, err := c.ConfigObject(ctx, "endpoint", "1001"); return err },
			"native": func() error { return c.DeleteConfigObject(ctx, "contact", "1001;@x") },
			"queued": func() error { return c.HangupChannel(ctx, "x", "normal") },
		} {
			start := time.Now()
			err := call()
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("%s: took %s", name, took)
			}
			wantCode(t, err, tollguard.EUNAVAILABLE)
		}
		_, err = c.dialEvents(ctx)
		wantCode(t, err, tollguard.EUNAVAILABLE)
	})
}

func TestConfigValidate(t *testing.T) {
	good := Config{URL: "http://127.0.0.1:8088/ari", User: "tollguard", Password: "x"}
	if err := good.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	if good.WithDefaults().App != "tollguard" {
		t.Error("default app")
	}
	for name, c := range map[string]Config{
		"NoURL":        {User: "u", Password: "p"},
		"BadScheme":    {URL: "ws://127.0.0.1:8088/ari", User: "u", Password: "p"},
		"UserInURL":    {URL: "http://u:p@127.0.0.1:8088/ari", User: "u", Password: "p"},
		"NoPassword":   {URL: "http://127.0.0.1:8088/ari", User: "u"},
		"NoUser":       {URL: "http://127.0.0.1:8088/ari", Password: "p"},
		"BadApp":       {URL: "http://127.0.0.1:8088/ari", User: "u", Password: "p", App: "a b"},
		"BackoffOrder": {URL: "http://127.0.0.1:8088/ari", User: "u", Password: "p", ReconnectMin: time.Minute, ReconnectMax: time.Second},
	} {
		if err := c.WithDefaults().Validate(); tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := newClient(t, Config{URL: "https://pbx.example:8089/ari/", User: "u", Password: "p:w", APIKey: true})
	if u := c.EventsURL(); u != "wss://pbx.example:8089/ari/events?api_key=u%3Ap%3Aw&app=tollguard&subscribeAll=true" {
		t.Errorf("events URL %s", u)
	}
	if r := redact(c.EventsURL()); strings.Contains(r, "p%3Aw") {
		t.Errorf("redact: %s", r)
	}
	_ = aritest.DefaultUser
}
