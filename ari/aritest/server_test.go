package aritest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/tollguard/tollguard"
)

// A client's ping sent well after the last event is answered, and the
// connection stays: Asterisk keeps a quiet, pinged connection open for
// as long as the client wants it.
func TestQuietConnectionSurvivesPingAfterEvent(t *testing.T) {
	old := sendTimeout
	sendTimeout = 50 * time.Millisecond
	t.Cleanup(func() { sendTimeout = old })
	s := newServer(t)
	ws := dialEvents(t, s)
	defer ws.Close()
	recv := func() string {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var msg string
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			t.Fatalf("receive: %v", err)
		}
		return msg
	}
	push := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for s.PushJSON(map[string]any{"type": "StasisStart", "n": n}) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the fake never counted the connection")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	push(1)
	recv()
	time.Sleep(4 * sendTimeout) // past the event's write deadline
	ws.PayloadType = websocket.PingFrame
	if _, err := ws.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	ws.PayloadType = websocket.TextFrame
	time.Sleep(2 * sendTimeout)
	push(2)
	if msg := recv(); !strings.Contains(msg, `"n":2`) {
		t.Fatalf("second event: %s", msg)
	}
}

// putConfig sends a dynamic-config PUT as the ARI client does and
// returns the status and the decoded answer (an object, or a message).
// newServer starts a fake ARI for one test.
func newServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// wantPutRefused PUTs body to path and wants the status and an error
// text holding msg, as Asterisk answers it.
func wantPutRefused(t *testing.T, s *Server, path, body string, status int, msg, what string) {
	t.Helper()
	if got, b := putConfig(t, s, path, body); got != status || !strings.Contains(string(b), msg) {
		t.Errorf("%s: %d %s", what, got, b)
	}
}

func putConfig(t *testing.T, s *Server, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.URL+"/asterisk/config/dynamic/res_pjsip/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	status, _, b := send(t, s, req)
	return status, b
}

// The recorded create of endpoint 1009 sent disallow=all then
// allow=ulaw and got 200 with allow "(ulaw)" and no disallow field:
// the fake answers the recorded request the same.
func TestPutEndpointCodecsAsRecorded(t *testing.T) {
	s := newServer(t)
	f, err := loadREST("ari-rest-config-put-endpoint-1009-astdb.json")
	if err != nil {
		t.Fatal(err)
	}
	var recorded tollguard.ConfigObject
	if err := json.Unmarshal(f.Body, &recorded); err != nil {
		t.Fatal(err)
	}
	status, b := putConfig(t, s, "endpoint/1009", string(f.Request.Body))
	var got tollguard.ConfigObject
	if status != f.Status || json.Unmarshal(b, &got) != nil {
		t.Fatalf("status %d (recorded %d): %s", status, f.Status, b)
	}
	if got.Get("allow") != recorded.Get("allow") {
		t.Errorf("allow %q, recorded %q", got.Get("allow"), recorded.Get("allow"))
	}
	if len(got.All("disallow")) != 0 {
		t.Errorf("the answer lists the write-only disallow: %s", b)
	}
	// In order, as Asterisk applies them: a disallow=all after the allow
	// leaves no codecs, and "(nothing)" is no codec name to write back.
	status, b = putConfig(t, s, "endpoint/1010", `{"fields":[{"attribute":"allow","value":"ulaw,alaw"},{"attribute":"disallow","value":"all"}]}`)
	if err := json.Unmarshal(b, &got); status != http.StatusOK || err != nil || got.Get("allow") != "(nothing)" {
		t.Errorf("allow then disallow=all: %d %s", status, b)
	}
	wantPutRefused(t, s, "endpoint/1011", `{"fields":[{"attribute":"allow","value":"(nothing)"}]}`, http.StatusBadRequest, "Creation of object '1011' failed field value validation", "allow=(nothing)")
	status, b = putConfig(t, s, "endpoint/1012", `{"fields":[{"attribute":"allow","value":"(ulaw|alaw)"},{"attribute":"allow","value":"g722,ulaw"}]}`)
	if err := json.Unmarshal(b, &got); status != http.StatusOK || err != nil || got.Get("allow") != "(ulaw|alaw|g722)" {
		t.Errorf("a read-back list, then more: %d %s", status, b)
	}
}

// resource_asterisk.c applies the fields before it asks sorcery to
// store the object: a field it cannot apply is a 400 even for an object
// from pjsip.conf (whose update is refused, 403, with valid fields).
func TestPutBadFieldIs400BeforeReadOnly403(t *testing.T) {
	s := newServer(t)
	wantPutRefused(t, s, "auth/1001", `{"fields":[{"attribute":"no_such_option","value":"1"}]}`, http.StatusBadRequest, "Update of object '1001' failed field value validation", "bad field on a pjsip.conf object")
	wantPutRefused(t, s, "auth/1001", `{"fields":[{"attribute":"password","value":"changed"}]}`, http.StatusForbidden, "Cannot update sorcery objects of type 'auth'", "valid field on a pjsip.conf object")
	s.SetWritable("aor", false)
	wantPutRefused(t, s, "aor/1010", `{"fields":[{"attribute":"no_such_option","value":"1"}]}`, http.StatusBadRequest, "Creation of object '1010' failed field value validation", "bad field, no writable wizard")
}

// A contact deleted through ARI goes through sorcery as an unREGISTER
// does, and pjsip_options.c's contact observer publishes the same
// ContactStatusChange Removed (ari-events-unregister.jsonl).
func TestDeletedContactIsRemoved(t *testing.T) {
	s := newServer(t)
	ws := dialEvents(t, s)
	defer ws.Close()
	waitConnected(t, s)
	const uri = "sip:1001@203.0.113.66:5060"
	id := s.Register("1001", "1001", uri, nil, false)
	req, err := http.NewRequest(http.MethodDelete, s.URL+"/asterisk/config/dynamic/res_pjsip/contact/"+strings.ReplaceAll(id, ";", "%3B"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := send(t, s, req); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", status)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ev struct {
		Type        string `json:"type"`
		Endpoint    struct{ Resource string }
		ContactInfo struct {
			URI    string `json:"uri"`
			Status string `json:"contact_status"`
			AOR    string `json:"aor"`
		} `json:"contact_info"`
	}
	if err := websocket.JSON.Receive(ws, &ev); err != nil {
		t.Fatalf("no event after the DELETE: %v", err)
	}
	if ev.Type != "ContactStatusChange" || ev.ContactInfo.Status != tollguard.ContactRemoved || ev.ContactInfo.URI != uri || ev.ContactInfo.AOR != "1001" || ev.Endpoint.Resource != "1001" {
		t.Errorf("event %+v", ev)
	}
}

// endpointState reads GET /endpoints/PJSIP/{name}'s state.
func endpointState(t *testing.T, s *Server, name string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/endpoints/PJSIP/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.User, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ep struct{ State string }
	if err := json.NewDecoder(resp.Body).Decode(&ep); err != nil {
		t.Fatal(err)
	}
	return ep.State
}

// As recorded (ari-events-max-contacts.jsonl): 1002 stays online while
// one of its two contacts is left, and goes offline with the last.
func TestEndpointOfflineWithItsLastContact(t *testing.T) {
	s := newServer(t)
	const a, b = "sip:1002@127.0.0.1:5081;transport=udp", "sip:1002@127.0.0.1:5082;transport=udp"
	s.Register("1002", "1002", a, nil, false)
	s.Register("1002", "1002", b, nil, false)
	if st := endpointState(t, s, "1002"); st != "online" {
		t.Fatalf("registered: %s", st)
	}
	s.Unregister("1002", "1002", a, false)
	if st := endpointState(t, s, "1002"); st != "online" {
		t.Errorf("one contact left: %s", st)
	}
	s.Unregister("1002", "1002", b, false)
	if st := endpointState(t, s, "1002"); st != "offline" {
		t.Errorf("no contact left: %s", st)
	}
}

// Without res_ari (a starting Asterisk), main/http.c answers every /ari
// path with its HTML 404, before any credentials are looked at.
func TestResARINotLoadedAnswersHTTPServers404(t *testing.T) {
	s := newServer(t)
	get := func(user string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/asterisk/info", nil)
		req.SetBasicAuth(user, s.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	s.SetModule("res_ari.so", false)
	for _, user := range []string{s.User, "nobody"} {
		if code, ctype, body := get(user); code != http.StatusNotFound || ctype != "text/html" || !strings.Contains(body, "<h1>Not Found</h1>") {
			t.Errorf("user %s, res_ari not loaded: %d %s %q; want main/http.c's HTML 404", user, code, ctype, body)
		}
	}
	s.SetModule("res_ari.so", true)
	if code, ctype, _ := get(s.User); code != http.StatusOK || ctype != "application/json" {
		t.Errorf("res_ari loaded again: %d %s; want ARI's JSON answer", code, ctype)
	}
}

// A bool field is stored as config_options.c's bool_handler_fn parses it
// (ast_true) and read back as sorcery.c's shows it: "true"/"false". The
// recorded create sent direct_media=no and bind_rtp_to_media_address=yes
// and read back "false" and "true"; the fake kept "no" and "yes".
func TestBoolFieldsReadBackAsAsterisk(t *testing.T) {
	s := newServer(t)
	f, err := loadREST("ari-rest-config-put-endpoint-1009-astdb.json")
	if err != nil {
		t.Fatal(err)
	}
	var recorded, got tollguard.ConfigObject
	if err := json.Unmarshal(f.Body, &recorded); err != nil {
		t.Fatal(err)
	}
	status, b := putConfig(t, s, "endpoint/1009", string(f.Request.Body))
	if status != http.StatusOK || json.Unmarshal(b, &got) != nil {
		t.Fatalf("recorded create: %d %s", status, b)
	}
	for _, attr := range []string{"direct_media", "bind_rtp_to_media_address"} {
		if got.Get(attr) != recorded.Get(attr) {
			t.Errorf("recorded create: %s read back %q, recorded %q", attr, got.Get(attr), recorded.Get(attr))
		}
	}
	// As tollguard writes them (ext add), and the other spellings.
	body := `{"fields":[{"attribute":"rewrite_contact","value":"yes"},{"attribute":"rtp_symmetric","value":"1"},` +
		`{"attribute":"force_rport","value":"On"},{"attribute":"direct_media","value":"off"},{"attribute":"t38_udptl","value":"maybe"},` +
		`{"attribute":"webrtc","value":"yes"}]}`
	want := map[string]string{"rewrite_contact": "true", "rtp_symmetric": "true", "force_rport": "true", "direct_media": "false", "t38_udptl": "false",
		"webrtc": "yes"} // read back yes/no: not normalised (see loadTemplates)
	status, b = putConfig(t, s, "endpoint/1013", body)
	if status != http.StatusOK || json.Unmarshal(b, &got) != nil {
		t.Fatalf("PUT: %d %s", status, b)
	}
	stored, _ := s.Object("endpoint", "1013")
	for attr, w := range want {
		if got.Get(attr) != w || stored.Get(attr) != w {
			t.Errorf("%s: answered %q, stored %q; want %q", attr, got.Get(attr), stored.Get(attr), w)
		}
	}
	// Objects seeded as from pjsip.conf read back the same way.
	s.SetObject("endpoint", "1014", tollguard.ConfigObject{{Attribute: "rewrite_contact", Value: "yes"}, {Attribute: "direct_media", Value: "no"}}, false)
	if o, _ := s.Object("endpoint", "1014"); o.Get("rewrite_contact") != "true" || o.Get("direct_media") != "false" {
		t.Errorf("seeded rewrite_contact=yes, direct_media=no read back %v", o)
	}
}

// res_pjsip/config_auth.c's auth_apply (Asterisk 22.2 on) refuses an
// auth without a username, or without a password or password_digest for
// each algorithm of its supported_algorithms_uas and _uac (MD5 when not
// set); password_digest_handler refuses an unknown algorithm or a digest
// of the wrong length. resource_asterisk.c answers a refused apply 400.
func TestPutAuthWithoutCredentialIs400(t *testing.T) {
	s := newServer(t)
	sha := strings.Repeat("ab", 32)
	md5 := strings.Repeat("cd", 16)
	for _, c := range []struct{ what, id, fields string }{
		{"no credential", "1010", `{"attribute":"username","value":"1010"}`},
		{"no username", "1011", `{"attribute":"password","value":"Long-Pass-1011"}`},
		{"a SHA-256 digest, MD5 challenged", "1012", `{"attribute":"username","value":"1012"},{"attribute":"password_digest","value":"SHA-256:` + sha + `"}`},
		{"SHA-256 as UAS, MD5 (default) as UAC", "1013", `{"attribute":"username","value":"1013"},{"attribute":"password_digest","value":"SHA-256:` + sha + `"},{"attribute":"supported_algorithms_uas","value":"SHA-256"}`},
		{"a short digest", "1014", `{"attribute":"username","value":"1014"},{"attribute":"md5_cred","value":"0f2b"}`},
		{"an unknown algorithm", "1015", `{"attribute":"username","value":"1015"},{"attribute":"password_digest","value":"SHA-1:` + md5 + `"}`},
	} {
		wantPutRefused(t, s, "auth/"+c.id, `{"fields":[`+c.fields+`]}`, http.StatusBadRequest, "Creation of object '"+c.id+"' failed field value validation", c.what)
		if _, ok := s.Object("auth", c.id); ok {
			t.Errorf("%s: created", c.what)
		}
	}
	for _, c := range []struct{ what, id, fields string }{
		{"an md5_cred", "1020", `{"attribute":"username","value":"1020"},{"attribute":"md5_cred","value":"` + md5 + `"}`},
		{"an MD5 digest without algorithm name", "1021", `{"attribute":"username","value":"1021"},{"attribute":"password_digest","value":"` + md5 + `"}`},
		{"SHA-256 only, both ways", "1022", `{"attribute":"username","value":"1022"},{"attribute":"password_digest","value":"SHA-256:` + sha + `"},` +
			`{"attribute":"supported_algorithms_uas","value":"SHA-256"},{"attribute":"supported_algorithms_uac","value":"SHA-256"}`},
		{"MD5 and SHA-256 digests", "1023", `{"attribute":"username","value":"1023"},{"attribute":"password_digest","value":"MD5:` + md5 + `,sha-256:` + sha + `"},` +
			`{"attribute":"supported_algorithms_uas","value":"MD5,SHA-256"}`},
	} {
		if status, b := putConfig(t, s, "auth/"+c.id, `{"fields":[`+c.fields+`]}`); status != http.StatusOK {
			t.Errorf("%s: %d %s", c.what, status, b)
		}
	}
	// An update is applied to the whole object: clearing the only
	// credential is refused, and the object stays as it was.
	if status, b := putConfig(t, s, "auth/1030", `{"fields":[{"attribute":"username","value":"1030"},{"attribute":"password","value":"Long-Pass-1030"}]}`); status != http.StatusOK {
		t.Fatalf("create 1030: %d %s", status, b)
	}
	wantPutRefused(t, s, "auth/1030", `{"fields":[{"attribute":"password","value":""}]}`, http.StatusBadRequest, "Update of object '1030' failed field value validation", "password cleared")
	if o, _ := s.Object("auth", "1030"); o.Get("password") != "Long-Pass-1030" {
		t.Errorf("refused update changed the auth: %v", o)
	}
}

// config_auth.c's supported_algorithms handlers append to the list, and
// an update applies its fields to a copy that has the list already: a
// write adds to what an existing auth offers, while a create, whose list
// starts empty, sets it (auth_apply fills in MD5 only when it is empty).
func TestAuthAlgorithmsAddUp(t *testing.T) {
	s := newServer(t)
	status, b := putConfig(t, s, "auth/1040", `{"fields":[{"attribute":"username","value":"1040"},{"attribute":"password","value":"Long-Pass-1040"},{"attribute":"supported_algorithms_uas","value":"sha-256"}]}`)
	var got tollguard.ConfigObject
	if err := json.Unmarshal(b, &got); status != http.StatusOK || err != nil || got.Get("supported_algorithms_uas") != "SHA-256" || got.Get("supported_algorithms_uac") != "MD5" {
		t.Fatalf("create: %d %s", status, b)
	}
	status, b = putConfig(t, s, "auth/1040", `{"fields":[{"attribute":"supported_algorithms_uas","value":"MD5"}]}`)
	if err := json.Unmarshal(b, &got); status != http.StatusOK || err != nil || got.Get("supported_algorithms_uas") != "SHA-256,MD5" {
		t.Errorf("update: %d %s", status, b)
	}
}

// A method a config object has no handler for is a 405 whose Allow
// lists the ones it has, as res_ari.c's add_allow_header writes it.
func TestConfigObject405ListsItsMethods(t *testing.T) {
	s := newServer(t)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/asterisk/config/dynamic/res_pjsip/endpoint/1001", nil)
	if err != nil {
		t.Fatal(err)
	}
	if status, h, _ := send(t, s, req); status != http.StatusMethodNotAllowed || h.Get("Allow") != "OPTIONS,GET,PUT,DELETE" {
		t.Errorf("POST on an object: %d, Allow %q", status, h.Get("Allow"))
	}
}

// An endpoint's callerid reads back as Asterisk splits and rejoins it.
func TestCallerIDReadsBackAsAsterisk(t *testing.T) {
	s := newServer(t)
	for _, c := range []struct{ in, want string }{
		{"Dyn 1009 <1009>", `"Dyn 1009" <1009>`}, // as recorded
		{`"Ext 1001" <1001>`, `"Ext 1001" <1001>`},
		{"Bob <(555) 123-4567>", `"Bob" <5551234567>`},
		{"<1002>", "1002"},
		{"1002", "1002"},
		{"Front desk", "Front desk"},
		{`"Front desk"`, "Front desk"},
		{"", "<unknown>"},
		{"<unknown>", "unknown"}, // a number: what a read-back written back becomes
	} {
		status, b := putConfig(t, s, "endpoint/1020", `{"fields":[{"attribute":"callerid","value":`+strconv.Quote(c.in)+`}]}`)
		var got tollguard.ConfigObject
		if err := json.Unmarshal(b, &got); status != http.StatusOK || err != nil || got.Get("callerid") != c.want {
			t.Errorf("callerid %q: %d %s; want %q", c.in, status, got.Get("callerid"), c.want)
		}
	}
}

// As recorded (ari-events-max-contacts.jsonl): the Removed of the first
// of 1002's two contacts says the endpoint is online, the last offline.
func TestRemovedEventCarriesEndpointState(t *testing.T) {
	s := newServer(t)
	ws := dialEvents(t, s)
	defer ws.Close()
	waitConnected(t, s)
	const a, b = "sip:1002@127.0.0.1:5081;transport=udp", "sip:1002@127.0.0.1:5082;transport=udp"
	s.Register("1002", "1002", a, nil, false)
	s.Register("1002", "1002", b, nil, false)
	for _, c := range []struct{ uri, state string }{{a, "online"}, {b, "offline"}} {
		s.Unregister("1002", "1002", c.uri, true)
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var ev struct {
			Endpoint    struct{ State string }
			ContactInfo struct {
				URI string `json:"uri"`
			} `json:"contact_info"`
		}
		if err := websocket.JSON.Receive(ws, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.ContactInfo.URI != c.uri || ev.Endpoint.State != c.state {
			t.Errorf("Removed %s: endpoint %q, want %q", ev.ContactInfo.URI, ev.Endpoint.State, c.state)
		}
	}
}

// dialEvents opens the events websocket as tollguard does.
func dialEvents(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	url := strings.Replace(s.URL, "http://", "ws://", 1) + "/events?app=tollguard&subscribeAll=true&api_key=" + s.User + ":" + s.Password
	ws, err := websocket.Dial(url, "", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// waitConnected waits until the server counts the connection.
func waitConnected(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
}
