package aritest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The recorded AGI call's channel (channels-list-during-agi, channel-get
// and the channel-var-* recordings).
const agiChannel = "pbx-test-1795395806.0"

// registered1001 is 1001 registered as in the recordings of its aor and
// contact (SIPp from 127.0.0.1:5070).
func registered1001(t *testing.T, s *Server) {
	s.Register("1001", "1001", "sip:1001@127.0.0.1:5070;transport=udp", map[string]string{
		"user_agent": "TollgateFixture-SIPp/3.6.1 (pbx-test; not-a-real-phone)",
		"via_addr":   "127.0.0.1", "via_port": "5070", "call_id": "1-15064@127.0.0.1",
	}, false)
}

// inAGI is the recorded PJSIP call sitting in the AGI's Wait.
func inAGI(t *testing.T, s *Server) {
	s.SetChannel(agiChannel, "PJSIP/1001-00000000")
	s.SetChannelState(agiChannel, "Ring")
	s.SetChannelVar(agiChannel, "CHANNEL(pjsip,remote_addr)", "127.0.0.1:5072")
	s.SetChannelVar(agiChannel, "CHANNEL(pjsip,call-id)", "1-22056@127.0.0.1")
	s.SetChannelVar(agiChannel, "PJSIP_HEADER(read,User-Agent)", "TollgateFixture-SIPp/3.6.1 (pbx-test; not-a-real-phone)")
}

// plainConfig is sorcery with the default config wizard only: nothing
// can be created.
func plainConfig(t *testing.T, s *Server) {
	for _, typ := range Types {
		s.SetWritable(typ, false)
	}
}

// after replays earlier recordings' requests, each wanting its
// recorded status: the state a recording was made in.
func after(files ...string) func(*testing.T, *Server) {
	return func(t *testing.T, s *Server) {
		t.Helper()
		for _, f := range files {
			rec := mustREST(t, f)
			if status, _, b := sendRecorded(t, s, rec); status != rec.Status {
				t.Fatalf("setup %s: %d %s, recorded %d", f, status, b, rec.Status)
			}
		}
	}
}

func mustREST(t *testing.T, name string) *restFixture {
	t.Helper()
	f, err := loadREST(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sendRecorded sends a recording's request as recorded (the path and
// query byte for byte) over a real socket.
func sendRecorded(t *testing.T, s *Server, f *restFixture) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	if b := bytes.TrimSpace(f.Request.Body); len(b) > 0 && string(b) != "null" {
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(f.Request.Method, "http://"+s.addr+f.Request.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, s, req)
}

// send sends req with the server's credentials and reads the answer.
func send(t *testing.T, s *Server, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	req.SetBasicAuth(s.User, s.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

var (
	isoTime   = `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$`
	uniqueID  = `^[A-Za-z0-9_-]+-\d+\.\d+$` // <systemname>-<epoch>.<seq>
	unixTime  = `^\d+$`
	buildDate = `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`
)

// Every recorded REST exchange, replayed against the fake in the state
// it was recorded in: the same status, Content-Type (and Allow) and a
// body with the same JSON members, types and values. A config object's
// attribute order is not compared: sorcery lists its fields in the
// order of a hash container, which no client may rely on. Other lists
// keep their order. shape names the values that change from run to
// run (compared against a pattern); differs names, and says why, each
// place where the fake knowingly answers otherwise.
func TestReplayRecordedREST(t *testing.T) {
	cases := []struct {
		file    string
		setup   func(*testing.T, *Server)
		shape   map[string]string
		differs map[string]string
	}{
		{file: "ari-rest-asterisk-info.json", shape: map[string]string{
			".build.date": buildDate, ".status.startup_time": isoTime, ".status.last_reload_time": isoTime}},
		{file: "ari-rest-endpoints.json", setup: registered1001},
		{file: "ari-rest-endpoint-pjsip-1001-registered.json", setup: registered1001},
		{file: "ari-rest-endpoint-pjsip-1002-unregistered.json"},
		{file: "ari-rest-config-endpoint-1001.json"},
		{file: "ari-rest-config-auth-1001.json"},
		{file: "ari-rest-config-aor-1001.json", setup: registered1001},
		{file: "ari-rest-config-contact-1001-encoded.json", setup: registered1001, shape: map[string]string{"[expiration_time]": unixTime}},
		{file: "ari-rest-config-contact-1001-unencoded-id.json", setup: registered1001, shape: map[string]string{"[expiration_time]": unixTime}},
		{file: "ari-rest-config-contact-collection.json"},

		// Plain pjsip.conf: nothing can be written.
		{file: "ari-rest-config-put-auth-1009-plain-config.json", setup: plainConfig},
		{file: "ari-rest-config-put-aor-1009-plain-config.json", setup: plainConfig},
		{file: "ari-rest-config-put-endpoint-1009-plain-config.json", setup: plainConfig},
		{file: "ari-rest-config-put-auth-1001-update-plain-config.json", setup: plainConfig},
		{file: "ari-rest-config-delete-endpoint-1001-plain-config.json", setup: plainConfig},
		{file: "ari-rest-config-get-auth-1009-missing.json", setup: plainConfig},

		// astdb mapped after pjsip.conf: 1009 created, updated, deleted.
		{file: "ari-rest-config-put-auth-1009-astdb.json"},
		{file: "ari-rest-config-put-aor-1009-astdb.json", setup: after("ari-rest-config-put-auth-1009-astdb.json")},
		{file: "ari-rest-config-put-endpoint-1009-astdb.json", setup: after("ari-rest-config-put-auth-1009-astdb.json", "ari-rest-config-put-aor-1009-astdb.json")},
		{file: "ari-rest-config-put-endpoint-1009-update-astdb.json", setup: after("ari-rest-config-put-endpoint-1009-astdb.json")},
		{file: "ari-rest-config-get-endpoint-1009-astdb.json", setup: after("ari-rest-config-put-endpoint-1009-astdb.json", "ari-rest-config-put-endpoint-1009-update-astdb.json")},
		{file: "ari-rest-config-put-bad-attribute-astdb.json"},
		{file: "ari-rest-config-put-auth-1001-update-astdb.json"},
		{file: "ari-rest-config-delete-endpoint-1001-astdb.json"},
		{file: "ari-rest-endpoint-pjsip-1009.json", setup: after("ari-rest-config-put-auth-1009-astdb.json",
			"ari-rest-config-put-aor-1009-astdb.json", "ari-rest-config-put-endpoint-1009-astdb.json")},
		{file: "ari-rest-config-delete-endpoint-1009-astdb.json", setup: after("ari-rest-config-put-endpoint-1009-astdb.json")},
		{file: "ari-rest-config-delete-auth-1009-astdb.json", setup: after("ari-rest-config-put-auth-1009-astdb.json")},
		{file: "ari-rest-config-delete-aor-1009-astdb.json", setup: after("ari-rest-config-put-aor-1009-astdb.json")},
		{file: "ari-rest-config-delete-aor-1009-again.json", setup: after("ari-rest-config-put-aor-1009-astdb.json", "ari-rest-config-delete-aor-1009-astdb.json")},
		{file: "ari-rest-config-get-endpoint-1009-after-delete.json", setup: after("ari-rest-config-put-endpoint-1009-astdb.json", "ari-rest-config-delete-endpoint-1009-astdb.json")},
		{file: "ari-rest-endpoint-pjsip-1009-after-delete.json", setup: after("ari-rest-config-put-endpoint-1009-astdb.json", "ari-rest-config-delete-endpoint-1009-astdb.json")},

		// Channels.
		{file: "ari-rest-channels-list-during-agi.json", setup: inAGI, shape: map[string]string{"[0].creationtime": isoTime}},
		{file: "ari-rest-channel-get.json", setup: inAGI, shape: map[string]string{".creationtime": isoTime}},
		{file: "ari-rest-channel-var-remote-addr.json", setup: inAGI},
		{file: "ari-rest-channel-var-call-id.json", setup: inAGI},
		{file: "ari-rest-channel-var-user-agent.json", setup: inAGI},
		{file: "ari-rest-channel-var-unset.json", setup: inAGI},
		{file: "ari-rest-channel-delete-active-call.json", setup: func(t *testing.T, s *Server) {
			s.SetChannel("pbx-test-1795395839.3", "PJSIP/1001-00000003")
		}},
		{file: "ari-rest-originate-local.json", shape: map[string]string{
			".id": uniqueID, ".name": `^Local/0044207946000@from-internal-[0-9a-f]{8};1$`, ".creationtime": isoTime}},
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(c.file, "ari-rest-"), ".json"), func(t *testing.T) {
			s := newServer(t)
			if c.setup != nil {
				c.setup(t, s)
			}
			rec := mustREST(t, c.file)
			var hdr struct {
				Headers map[string]string `json:"headers"`
			}
			raw, _ := Fixture(c.file)
			if err := json.Unmarshal(raw, &hdr); err != nil {
				t.Fatal(err)
			}
			status, h, body := sendRecorded(t, s, rec)
			var diffs []diff
			if status != rec.Status {
				diffs = append(diffs, diff{"status", fmt.Sprintf("%d, recorded %d (%s)", status, rec.Status, body)})
			}
			for name, want := range hdr.Headers {
				if name != "Content-type" && name != "Allow" {
					continue // Server, Date, Cache-Control, Content-Length: nothing reads them
				}
				if got := h.Get(name); got != want {
					diffs = append(diffs, diff{"header " + name, fmt.Sprintf("%q, recorded %q", got, want)})
				}
			}
			if string(rec.Body) == "null" {
				if len(body) != 0 {
					diffs = append(diffs, diff{"body", fmt.Sprintf("%s, recorded none", body)})
				}
			} else {
				var want, got any
				if err := json.Unmarshal(rec.Body, &want); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(body, &got); err != nil {
					diffs = append(diffs, diff{"body", fmt.Sprintf("not JSON: %q", body)})
				} else {
					diffs = append(diffs, compareJSON("", want, got, c.shape)...)
				}
			}
			checkDiffs(t, diffs, c.differs)
		})
	}
}

// diff is one place where the fake's answer is not the recording's.
type diff struct{ path, what string }

// checkDiffs fails on every diff that is not a named exception, and on
// every exception that no longer happens (drop it: the fake is faithful).
func checkDiffs(t *testing.T, diffs []diff, differs map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, d := range diffs {
		if _, ok := differs[d.path]; ok {
			seen[d.path] = true
			continue
		}
		t.Errorf("%s: %s", d.path, d.what)
	}
	for p := range differs {
		if !seen[p] {
			t.Errorf("%s: named as a known difference, but the fake now answers as recorded: drop it", p)
		}
	}
}

// compareJSON compares got with want: the same members and types, the
// same values, except at the paths of shape, where got's value (and the
// recording's) must match the pattern instead. A list of sorcery
// {attribute, value} pairs is compared as a set of attributes (in the
// order of each attribute's own entries, which is an aor's contacts').
func compareJSON(path string, want, got any, shape map[string]string) []diff {
	if re, ok := shape[path]; ok {
		var out []diff
		for who, v := range map[string]any{"recorded": want, "fake": got} {
			if s, isStr := v.(string); !isStr || !regexp.MustCompile(re).MatchString(s) {
				out = append(out, diff{path, fmt.Sprintf("%s value %#v is not of the shape %s", who, v, re)})
			}
		}
		return out
	}
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return []diff{{path, fmt.Sprintf("%T %#v, recorded %T %#v", got, got, want, want)}}
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		var out []diff
		for _, k := range sortedKeys(w, g) {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				out = append(out, diff{path + "." + k, "missing"})
			case !inW:
				out = append(out, diff{path + "." + k, fmt.Sprintf("%#v, not in the recording", gv)})
			default:
				out = append(out, compareJSON(path+"."+k, wv, gv, shape)...)
			}
		}
		return out
	case []any:
		g := got.([]any)
		if wa, ok := attributes(w); ok {
			if ga, ok := attributes(g); ok {
				return compareAttributes(path, wa, ga, shape)
			}
		}
		if len(w) != len(g) {
			return []diff{{path, fmt.Sprintf("%d members, recorded %d: %v", len(g), len(w), g)}}
		}
		var out []diff
		for i := range w {
			out = append(out, compareJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], shape)...)
		}
		return out
	default:
		if want != got {
			return []diff{{path, fmt.Sprintf("%#v, recorded %#v", got, want)}}
		}
		return nil
	}
}

// sortedKeys returns the keys of a and b, once each, sorted.
func sortedKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// attributes reads a sorcery object set: attribute → its values.
func attributes(list []any) (map[string][]any, bool) {
	out := map[string][]any{}
	for _, m := range list {
		o, ok := m.(map[string]any)
		if !ok || len(o) != 2 {
			return nil, false
		}
		a, ok := o["attribute"].(string)
		if _, hasValue := o["value"]; !ok || !hasValue {
			return nil, false
		}
		out[a] = append(out[a], o["value"])
	}
	return out, len(list) > 0
}

func compareAttributes(path string, want, got map[string][]any, shape map[string]string) []diff {
	var out []diff
	for _, k := range sortedKeys(want, got) {
		p := path + "[" + k + "]"
		w, g := want[k], got[k]
		if len(w) != len(g) {
			out = append(out, diff{p, fmt.Sprintf("%v, recorded %v", g, w)})
			continue
		}
		for i := range w {
			out = append(out, compareJSON(p, w[i], g[i], shape)...)
		}
	}
	return out
}

// handshake is one exchange of ari-ws-handshakes.txt.
type handshake struct {
	title     string
	request   string   // as sent, CRLF line ends, credentials encoded
	responses []string // as received, CRLF line ends
}

func loadHandshakes(t *testing.T) []handshake {
	t.Helper()
	b, err := Fixture("ari-ws-handshakes.txt")
	if err != nil {
		t.Fatal(err)
	}
	basic := regexp.MustCompile(`Basic <([^>]*)>`)
	header := regexp.MustCompile(`^[A-Za-z0-9-]+: `)
	var out []handshake
	var req, resp []string
	flush := func() {
		if len(out) == 0 {
			return
		}
		h := &out[len(out)-1]
		h.request = strings.Join(req, "\r\n") + "\r\n\r\n"
		// Asterisk may answer more than once: each "HTTP/1.1" line
		// starts a response.
		var cur []string
		add := func() {
			// The recording leaves out the empty line that ends the
			// headers: put it back before the first line that is none.
			i := 1
			for i < len(cur) && header.MatchString(cur[i]) {
				i++
			}
			if i == len(cur) || cur[i] != "" {
				cur = slices.Insert(cur, i, "")
			}
			h.responses = append(h.responses, strings.Join(cur, "\r\n")+"\r\n")
			cur = nil
		}
		for _, l := range resp {
			if strings.HasPrefix(l, "HTTP/1.1 ") && len(cur) > 0 {
				add()
			}
			cur = append(cur, l)
		}
		if len(cur) > 0 {
			add()
		}
		req, resp = nil, nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "==== "):
			flush()
			out = append(out, handshake{title: strings.Trim(line, "= ")})
		case strings.HasPrefix(line, ">>> "):
			req = append(req, basic.ReplaceAllStringFunc(strings.TrimPrefix(line, ">>> "), func(m string) string {
				return "Basic " + base64.StdEncoding.EncodeToString([]byte(basic.FindStringSubmatch(m)[1]))
			}))
		case strings.HasPrefix(line, "<<< ") || line == "<<<":
			resp = append(resp, strings.TrimPrefix(strings.TrimPrefix(line, "<<<"), " "))
		}
	}
	flush()
	return out
}

// The recorded websocket upgrades, sent byte for byte to the fake: the
// same status, the headers a client acts on (the upgrade's, the 401's
// WWW-Authenticate, Content-type) and the same error body.
func TestReplayRecordedHandshakes(t *testing.T) {
	differs := map[string]map[string]string{
		// Asterisk's res_http_websocket answers the failed upgrade a
		// second time (400, Sec-WebSocket-Version, no body) on the same
		// connection. A client reads the first answer and closes.
		"no app parameter": {"second response": "Asterisk answers twice; the fake once"},
	}
	hs := loadHandshakes(t)
	if len(hs) != 5 {
		t.Fatalf("read %d handshakes from the recording, want 5", len(hs))
	}
	for _, h := range hs {
		t.Run(strings.ReplaceAll(h.title, " ", "_"), func(t *testing.T) {
			s := newServer(t)
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, h.request); err != nil {
				t.Fatal(err)
			}
			got, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(h.responses[0])), nil)
			if err != nil {
				t.Fatalf("recorded answer: %v", err)
			}
			var diffs []diff
			if got.StatusCode != want.StatusCode {
				diffs = append(diffs, diff{"status", fmt.Sprintf("%d, recorded %d", got.StatusCode, want.StatusCode)})
			}
			for _, name := range []string{"Upgrade", "Connection", "Sec-WebSocket-Accept", "WWW-Authenticate", "Content-Type"} {
				if w, g := want.Header.Get(name), got.Header.Get(name); !strings.EqualFold(w, g) {
					diffs = append(diffs, diff{"header " + name, fmt.Sprintf("%q, recorded %q", g, w)})
				}
			}
			if want.StatusCode != http.StatusSwitchingProtocols {
				wb, _ := io.ReadAll(want.Body)
				gb, _ := io.ReadAll(got.Body)
				if strings.HasPrefix(want.Header.Get("Content-Type"), "application/json") {
					var w, g any
					_ = json.Unmarshal(wb, &w)
					if err := json.Unmarshal(gb, &g); err != nil {
						diffs = append(diffs, diff{"body", fmt.Sprintf("not JSON: %q", gb)})
					} else {
						diffs = append(diffs, compareJSON("", w, g, nil)...)
					}
				} else if !bytes.Equal(wb, gb) {
					diffs = append(diffs, diff{"body", fmt.Sprintf("%q, recorded %q", gb, wb)})
				}
			}
			if len(h.responses) > 1 {
				diffs = append(diffs, diff{"second response", "recorded " + strings.SplitN(h.responses[1], "\r\n", 2)[0]})
			}
			checkDiffs(t, diffs, differs[h.title])
		})
	}
}

// Every recording of an ARI REST exchange, and the handshakes, is
// replayed above: a new recording gets a case.
func TestEveryRecordingReplayed(t *testing.T) {
	src, err := os.ReadFile("replay_test.go")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := testdata.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		if (strings.HasPrefix(n, "ari-rest-") || n == "ari-ws-handshakes.txt") && !bytes.Contains(src, []byte(`"`+n+`"`)) {
			t.Errorf("%s is replayed by no test", n)
		}
	}
}
