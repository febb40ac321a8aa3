package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

// TestAdminGuideSaysHowToVerifyAWebhook: the admin guide is all a
// receiver's author has. Checking the signature and the timestamp
// header alone lets anyone who saw one request replay it later with a
// fresh header, so the guide must name the body's field the header is
// compared with, and its unit; and, as delivery is at least once (a
// crash between the send and its record sends it again), the header
// that identifies a notice across retries.
func TestAdminGuideSaysHowToVerifyAWebhook(t *testing.T) {
	clk := newClock()
	var req *http.Request
	var raw []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ = io.ReadAll(r.Body)
		req = r
	}))
	defer srv.Close()
	wh, err := notify.NewWebhook(notify.WebhookConfig{URL: srv.URL, Secret: secret, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
	n.Alert.ID = 5
	if err := wh.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}

	// A replay ten minutes later with the header moved on: a receiver
	// that checks the signature and the header passes it.
	now := clk.Now().Add(10 * time.Minute)
	fresh := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(raw)
	headerOnly := req.Header.Get("X-Tollguard-Signature") == "sha256="+hex.EncodeToString(mac.Sum(nil))
	if !headerOnly {
		t.Fatal("the signature does not verify")
	}
	if err := notify.Verify(secret, raw, req.Header.Get(notify.HeaderSignature), fresh, 5*time.Minute, now); err == nil {
		t.Fatal("Verify accepted the replay")
	}

	guide, err := os.ReadFile("../docs/admin-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(guide)), " ")
	for _, want := range []string{"`timestamp`", "Unix seconds", "`X-Tollguard-Notice`", "at least once"} {
		if !strings.Contains(text, want) {
			t.Errorf("docs/admin-guide.md does not say %s: a receiver written from it accepts replays or duplicates", want)
		}
	}
}
