package ari

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/internal/testutil"
)

func TestUnknownAndBadFrames(t *testing.T) {
	h := newHarness(t).start()
	transfer := `{"type":"ChannelTransfer","timestamp":"2026-11-23T01:00:00.000+0000","state":"success","refer_to":{"requested_destination":{"exten":"1002"}},"asterisk_id":"02:fc:00:00:00:01","application":"tollguard"}`
	h.push(
		[]byte(transfer),
		[]byte(`{"type":"RESTResponse","transaction_id":"x","status_code":200}`),
		[]byte(`{"type":"ApplicationRegistered","application":"tollguard"}`),
		[]byte(`not json at all`),
		[]byte(`{"no":"type"}`),
		[]byte(`{"type":"Dial","caller":5}`),                        // a known type that does not decode
		[]byte(`{"type":"ChannelCreated","timestamp":"yesterday"}`), // a bad timestamp
		[]byte(`[1,2,3]`),
	)
	st := h.l.State()
	if st.Undecodable != 5 || st.Skipped != 3 {
		t.Errorf("undecodable %d skipped %d, want 5 and 3: %+v", st.Undecodable, st.Skipped, st)
	}
	if !st.Connected {
		t.Fatal("bad frames broke the connection")
	}
	if !strings.Contains(h.logs.String(), "type=ChannelTransfer") || !strings.Contains(h.logs.String(), "do not decode") {
		t.Errorf("log does not mention the skipped frames:\n%s", h.logs.String())
	}
	// Still working: a registration after the junk is handled.
	id := h.fake.Register("1002", "1002", "sip:1002@127.0.0.1:5081;transport=udp", map[string]string{"user_agent": "SIPp"}, true)
	testutil.Eventually(t, waitLimit, "registration after junk", func() bool { c, ok := h.contact(id); return ok && c.Live })
	if h.hooks.snapshot().ups != 1 {
		t.Error("the listener reconnected because of bad frames")
	}
}

// TestPanicInHandlingSkipsTheEvent: a bug met while handling one event
// is logged and the listener goes on, connected and handling; before, a
// panic there ended the event loop while its state still said connected.
func TestPanicInHandlingSkipsTheEvent(t *testing.T) {
	h := newHarness(t)
	h.hooks.panicOn = "ChannelCreated"
	h.start()
	h.push([]byte(`{"type":"ChannelCreated","timestamp":"2026-11-23T01:00:00.000+0000","channel":{"id":"pbx-1.1","name":"PJSIP/1001-00000001","state":"Down","caller":{"name":"","number":"1001"},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"from-internal","exten":"s","priority":1,"app_name":"","app_data":""},"creationtime":"2026-11-23T01:00:00.000+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"tollguard"}`))
	if !strings.Contains(h.logs.String(), "panic in the ARI listener") || !strings.Contains(h.logs.String(), "while=\"handling an ARI event\"") {
		t.Errorf("the panic is not logged:\n%s", h.logs.String())
	}
	id := h.fake.Register("1002", "1002", "sip:1002@127.0.0.1:5081;transport=udp", map[string]string{"user_agent": "SIPp"}, true)
	testutil.Eventually(t, waitLimit, "registration after the panic", func() bool { c, ok := h.contact(id); return ok && c.Live })
	if st := h.l.State(); !st.Connected || h.hooks.snapshot().ups != 1 {
		t.Errorf("after the panic: state %+v, connections %d", st, h.hooks.snapshot().ups)
	}
}

func TestDropAndReconnect(t *testing.T) {
	h := newHarness(t).start()
	for i := 2; i <= 4; i++ {
		h.fake.Drop()
		h.waitConnected(i)
		h.waitResyncs(i)
	}
	if st := h.l.State(); st.Reconnects != 3 || !st.Connected || !strings.Contains(st.LastError, "closed") {
		t.Errorf("state %+v", st)
	}
}

// TestReconnectBackoff: while Asterisk is down, attempts come further
// and further apart (exponential, with jitter), capped; when it comes
// back the listener reconnects and resynchronises.
func TestReconnectBackoff(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.ReconnectMin, c.ReconnectMax = 40*time.Millisecond, 640*time.Millisecond }))
	h.start()
	h.fake.Stop()
	testutil.Eventually(t, waitLimit, "7 failed attempts", func() bool { return len(h.hooks.snapshot().downs) >= 8 })
	downs := h.hooks.snapshot().downs
	var gaps []time.Duration
	for i := 2; i < len(downs); i++ { // downs[0] is the drop itself
		gaps = append(gaps, downs[i].Sub(downs[i-1]))
	}
	// Delays: 40, 80, 160, 320, 640, 640 ms, each jittered to [d/2, d].
	if gaps[0] > 150*time.Millisecond {
		t.Errorf("first retry after %s", gaps[0])
	}
	if gaps[3] <= gaps[0] || gaps[4] < 150*time.Millisecond {
		t.Errorf("no backoff: gaps %v", gaps)
	}
	for _, g := range gaps {
		if g > 640*time.Millisecond+300*time.Millisecond {
			t.Errorf("gap %s over the cap: %v", g, gaps)
		}
	}
	st := h.l.State()
	if st.Connected || !strings.Contains(st.LastError, "cannot connect") {
		t.Errorf("state while down: %+v", st)
	}
	if err := h.fake.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitConnected(2)
	h.waitResyncs(2)
	testutil.Eventually(t, waitLimit, "connected state", func() bool { return h.l.State().Connected })
}

func TestWrongCredentials(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.Password = "wrong" }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, waitLimit, "a failed attempt", func() bool { return h.l.State().LastError != "" })
	if st := h.l.State(); !strings.Contains(st.LastError, "401") || !strings.Contains(st.LastError, "ari.conf") {
		t.Errorf("last error %q does not explain the refusal", st.LastError)
	}
	if acc, _ := h.fake.Connections(); acc != 0 {
		t.Errorf("%d websocket connections accepted with a wrong password", acc)
	}
}

func TestAPIKeyAuth(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.APIKey = true })).start()
	ev := h.fake.RequestsMatching("GET", "/events")
	if len(ev) == 0 || ev[0].Query.Get("api_key") != aritest.DefaultUser+":"+aritest.DefaultPassword || ev[0].Query.Get("subscribeAll") != "true" || ev[0].Query.Get("app") != "tollguard" {
		t.Errorf("events requests %+v", ev)
	}
}

func TestApplicationReplaced(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.ReconnectMax = 300 * time.Millisecond })).start()
	// Another client takes app=tollguard.
	cfg, err := websocket.NewConfig(h.l.Client.EventsURL(), "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", aritest.BasicAuth(aritest.DefaultUser, aritest.DefaultPassword))
	other, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	testutil.Eventually(t, waitLimit, "the listener hears it was replaced", func() bool { return strings.Contains(h.l.State().LastError, "took over") })
	// The state changes before the line is logged: wait for it too.
	testutil.Eventually(t, waitLimit, "the log says what to do", func() bool { return strings.Contains(h.logs.String(), "own application name") })
	// It takes the name back after the long delay, and the other client
	// is told in turn.
	h.waitConnected(3)
	var msg []byte
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := websocket.Message.Receive(other, &msg); err != nil || !strings.Contains(string(msg), "ApplicationReplaced") {
		t.Fatalf("other client: %s %v", msg, err)
	}
}

func TestApplicationReplacedFrame(t *testing.T) {
	// The recorded frame, replayed: handled the same way.
	h := newHarness(t, withConfig(func(c *Config) { c.ReconnectMax = 200 * time.Millisecond })).start()
	if err := h.fake.Replay("ari-events-application-replaced.jsonl"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitLimit, "replaced", func() bool { return strings.Contains(h.l.State().LastError, "took over") })
	h.waitConnected(2)
}

func TestRunStopsOnCancel(t *testing.T) {
	h := newHarness(t).start()
	start := time.Now()
	h.stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stopping took %s", took)
	}
	testutil.Eventually(t, waitLimit, "websocket closed", func() bool { _, open := h.fake.Connections(); return open == 0 })
	if h.l.State().Connected {
		t.Error("still connected after Run returned")
	}
}

func TestRunNeedsClientAndStore(t *testing.T) {
	err := (&Listener{}).Run(context.Background())
	if tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Fatalf("err %v", err)
	}
}

func TestEventType(t *testing.T) {
	tests := []struct {
		in   string
		typ  string
		okay bool
	}{
		{`{"type":"Dial","x":1}`, "Dial", true},
		{` { "type" : "Dial" }`, "Dial", true},
		{`{"timestamp":"x","type":"StasisStart"}`, "StasisStart", true},
		{`{"type":"Di\"al"}`, `Di"al`, true},
		{`{"type":""}`, "", false},
		{`{"type":5}`, "", false},
		{`{}`, "", false},
		{`nope`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		typ, ok := eventType([]byte(tt.in))
		if typ != tt.typ || ok != tt.okay {
			t.Errorf("eventType(%q) = %q %v, want %q %v", tt.in, typ, ok, tt.typ, tt.okay)
		}
	}
}

// TestEventsNeedSubscribeAll: Asterisk 22 sends a connection opened
// without subscribeAll=true none of the registration or channel events
// (ari-events-no-subscribeAll.jsonl, recorded over a REGISTER, a call and
// an unREGISTER, is empty), only its application's own. A client that
// dropped it would never see a registration; the fake behaves the same.
func TestEventsNeedSubscribeAll(t *testing.T) {
	if frames := fixture(t, "ari-events-no-subscribeAll.jsonl"); len(frames) != 0 {
		t.Fatalf("the recording without subscribeAll has %d events", len(frames))
	}
	fake := newFake(t)
	c := newClient(t, testConfig(fake))
	dial := func(u string) *websocket.Conn {
		t.Helper()
		cfg, err := websocket.NewConfig(u, "http://localhost/")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Header.Set("Authorization", aritest.BasicAuth(aritest.DefaultUser, aritest.DefaultPassword))
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	u, err := url.Parse(c.EventsURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("subscribeAll") != "true" {
		t.Fatalf("the listener's events URL %s lacks subscribeAll=true", u)
	}
	q.Del("subscribeAll")
	u.RawQuery = q.Encode()
	without := dial(u.String())
	testutil.Eventually(t, waitLimit, "connected", func() bool { _, open := fake.Connections(); return open == 1 })

	fake.Register("1002", "1002", "sip:1002@127.0.0.1:5081;transport=udp", map[string]string{"user_agent": "SIPp"}, true)
	n := fake.PushJSON(aritestContactEvent("1001", "1001", "sip:1001@127.0.0.1:5070;transport=udp", tollguard.ContactNonQualified))
	for _, f := range fixture(t, allowedCall) {
		n += fake.Push(f)
	}
	if n != 0 {
		t.Errorf("%d registration and channel events reached a connection without subscribeAll", n)
	}
	// Its application's own events still come: another client, with
	// subscribeAll, takes the application, and is sent registrations.
	with := dial(c.EventsURL())
	var msg []byte
	without.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := websocket.Message.Receive(without, &msg); err != nil || !strings.Contains(string(msg), `"ApplicationReplaced"`) {
		t.Fatalf("first frame without subscribeAll: %s %v; want ApplicationReplaced", msg, err)
	}
	if fake.PushJSON(aritestContactEvent("1001", "1001", "sip:1001@127.0.0.1:5070;transport=udp", tollguard.ContactReachable)) != 1 {
		t.Error("a registration did not reach the connection with subscribeAll")
	}
	with.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := websocket.Message.Receive(with, &msg); err != nil || !strings.Contains(string(msg), `"ContactStatusChange"`) {
		t.Fatalf("with subscribeAll: %s %v", msg, err)
	}
}
