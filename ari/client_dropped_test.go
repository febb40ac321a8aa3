package ari

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestWriteWhoseConnectionDrops: a PUT whose connection ended after the
// request was sent said "cannot reach Asterisk ARI ... check that
// Asterisk runs with ARI enabled", which sent the admin to http.conf
// while the change may well have been made. A connection never made
// still says so.
func TestWriteWhoseConnectionDrops(t *testing.T) {
	ctx := context.Background()
	fake := newFake(t)
	// Reads the request, then drops the connection without an answer.
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer dropper.Close()
	cfg := testConfig(fake)
	cfg.URL = dropper.URL
	c := newClient(t, cfg)
	_, err := c.PutConfigObject(ctx, "auth", "1001", []tollguard.ConfigField{{Attribute: "password", Value: "N3w-Secret-1001"}})
	if tollguard.ErrorCode(err) != tollguard.EUNAVAILABLE || !strings.Contains(err.Error(), "the change may have been made") || strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("PUT whose connection dropped: %v; want it to say the change may have been made", err)
	}

	// Nothing listens: the request never left.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.URL = "http://" + ln.Addr().String()
	ln.Close()
	c = newClient(t, cfg)
	_, err = c.PutConfigObject(ctx, "auth", "1001", []tollguard.ConfigField{{Attribute: "password", Value: "N3w-Secret-1001"}})
	if !strings.Contains(tollguard.ErrorMessage(err), "cannot reach Asterisk ARI") {
		t.Errorf("PUT with nothing listening: %v; want \"cannot reach Asterisk ARI\"", err)
	}
}
