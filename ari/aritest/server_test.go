package aritest

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// A client's ping sent well after the last event is answered, and the
// connection stays: Asterisk keeps a quiet, pinged connection open for
// as long as the client wants it.
func TestQuietConnectionSurvivesPingAfterEvent(t *testing.T) {
	old := sendTimeout
	sendTimeout = 50 * time.Millisecond
	t.Cleanup(func() { sendTimeout = old })
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	url := strings.Replace(s.URL, "http://", "ws://", 1) + "/events?app=tollguard&subscribeAll=true&api_key=" + s.User + ":" + s.Password
	ws, err := websocket.Dial(url, "", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
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
