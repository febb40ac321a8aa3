package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

const secret = "whsec-0123456789"

// received is one verified webhook request.
type received struct {
	Body   notify.WebhookBody
	Raw    []byte
	Header http.Header
}

// webhookReceiver is an httptest server that verifies each request the
// way a receiver should (written here independently of notify.Sign),
// and answers with status.
type webhookReceiver struct {
	srv    *httptest.Server
	got    chan received
	status func() int
}

func newWebhookReceiver(t *testing.T, now func() time.Time) *webhookReceiver {
	w := &webhookReceiver{got: make(chan received, 64), status: func() int { return http.StatusNoContent }}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(raw)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(rw, "want a JSON POST", http.StatusBadRequest)
			t.Errorf("%s with content type %q", r.Method, r.Header.Get("Content-Type"))
			return
		}
		if !hmac.Equal([]byte(r.Header.Get("X-Tollguard-Signature")), []byte(want)) {
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			t.Errorf("signature %q, want %q", r.Header.Get("X-Tollguard-Signature"), want)
			return
		}
		var b notify.WebhookBody
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Errorf("body: %v", err)
		}
		ts, err := strconv.ParseInt(r.Header.Get("X-Tollguard-Timestamp"), 10, 64)
		if err != nil || ts != b.Timestamp || ts != now().Unix() {
			t.Errorf("timestamp header %q, body %d, now %d", r.Header.Get("X-Tollguard-Timestamp"), b.Timestamp, now().Unix())
		}
		if r.Header.Get("X-Tollguard-Notice") != b.Notice || b.Notice == "" {
			t.Errorf("notice header %q, body %q", r.Header.Get("X-Tollguard-Notice"), b.Notice)
		}
		st := w.status()
		if st/100 == 2 {
			w.got <- received{Body: b, Raw: raw, Header: r.Header.Clone()}
		}
		rw.WriteHeader(st)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookReceiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-w.got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook arrived")
		return received{}
	}
}

func (w *webhookReceiver) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-w.got:
		t.Fatalf("unexpected webhook: %s", r.Raw)
	default:
	}
}

func TestWebhookSignedJSON(t *testing.T) {
	clk := newClock()
	rcv := newWebhookReceiver(t, clk.Now)
	wh, err := notify.NewWebhook(notify.WebhookConfig{URL: rcv.srv.URL + "/hook", Secret: secret, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
	n.Alert.ID = 9
	if err := wh.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	r := rcv.next(t)
	b := r.Body
	if b.Version != 1 || b.Event != tollguard.NoticeNew || b.Notice != "9-1" || b.Alert.ID != 9 || b.Alert.Kind != "credentials_compromised" ||
		b.Alert.Severity != "critical" || b.Alert.Extension != "1001" || b.Alert.Account != "acme" || b.Alert.Count != 1 ||
		!b.Alert.FirstSeen.Equal(t0) || !strings.Contains(b.Text, "tollguard unblock 1001") {
		t.Errorf("body %s", r.Raw)
	}
	var occ []tollguard.Occurrence
	if err := json.Unmarshal(b.Alert.Evidence, &occ); err != nil || len(occ) != 1 || !strings.Contains(string(occ[0].Evidence), "friendly-scanner") {
		t.Errorf("evidence %s (%v)", b.Alert.Evidence, err)
	}
	if err := notify.Verify(secret, r.Raw, r.Header.Get(notify.HeaderSignature), r.Header.Get(notify.HeaderTimestamp), 5*time.Minute, clk.Now()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestWebhookVerifyRejectsTamperingAndReplay(t *testing.T) {
	_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
	body, err := notify.Body(n, t0)
	if err != nil {
		t.Fatal(err)
	}
	sig := notify.Sign(secret, body)
	ts := strconv.FormatInt(t0.Unix(), 10)
	tests := []struct {
		name      string
		secret    string
		body      []byte
		sig, ts   string
		now       time.Time
		wantError string
	}{
		{name: "Genuine", secret: secret, body: body, sig: sig, ts: ts, now: t0.Add(time.Minute)},
		{name: "WrongSecret", secret: "other", body: body, sig: sig, ts: ts, now: t0, wantError: "signature"},
		{name: "BodyTampered", secret: secret, body: []byte(strings.Replace(string(body), "1001", "1002", 1)), sig: sig, ts: ts, now: t0, wantError: "signature"},
		{name: "TimestampHeaderMoved", secret: secret, body: body, sig: sig, ts: strconv.FormatInt(t0.Unix()+3600, 10), now: t0.Add(time.Hour), wantError: "does not match"},
		{name: "ReplayedLater", secret: secret, body: body, sig: sig, ts: ts, now: t0.Add(time.Hour), wantError: "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := notify.Verify(tt.secret, tt.body, tt.sig, tt.ts, 5*time.Minute, tt.now)
			if tt.wantError == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantError != "" && (err == nil || !strings.Contains(err.Error(), tt.wantError)) {
				t.Fatalf("err = %v, want %q", err, tt.wantError)
			}
		})
	}
}

func TestWebhookNon2xxAndRedirectsFail(t *testing.T) {
	clk := newClock()
	rcv := newWebhookReceiver(t, clk.Now)
	rcv.status = func() int { return http.StatusServiceUnavailable }
	wh, _ := notify.NewWebhook(notify.WebhookConfig{URL: rcv.srv.URL, Secret: secret, Now: clk.Now})
	_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
	if err := wh.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), "503") || errors.Is(err, notify.ErrRefused) {
		t.Fatalf("err = %v, want HTTP 503, the receiver down (not the notice refused)", err)
	}
	// A 4xx refuses the notice itself, except 408 and 429.
	for status, refused := range map[int]bool{http.StatusRequestEntityTooLarge: true, http.StatusBadRequest: true, http.StatusTooManyRequests: false, http.StatusRequestTimeout: false} {
		rcv.status = func() int { return status }
		if err := wh.Notify(context.Background(), n); err == nil || errors.Is(err, notify.ErrRefused) != refused {
			t.Errorf("HTTP %d: err = %v, refused %v, want %v", status, err, errors.Is(err, notify.ErrRefused), refused)
		}
	}

	redirect := httptest.NewServer(http.RedirectHandler(rcv.srv.URL+"/hooks/T0/SECRETTOKEN?key=SECRET2", http.StatusFound))
	defer redirect.Close()
	rcv.status = func() int { return http.StatusOK }
	wh, _ = notify.NewWebhook(notify.WebhookConfig{URL: redirect.URL, Secret: secret, Now: clk.Now})
	if err := wh.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), "redirected to "+rcv.srv.URL+"/") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("err = %v, want a redirect error naming the host, not the token", err)
	}
	rcv.none(t)
}

func TestWebhookTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	wh, _ := notify.NewWebhook(notify.WebhookConfig{URL: srv.URL, Secret: secret, Timeout: 100 * time.Millisecond})
	_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
	start := time.Now()
	if err := wh.Notify(context.Background(), n); err == nil {
		t.Fatal("a hung receiver did not time out")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("timeout took %s", took)
	}
}

func TestNewWebhookRejectsBadConfig(t *testing.T) {
	for _, c := range []notify.WebhookConfig{
		{URL: "ftp://example.com/x", Secret: "s"},
		{URL: "not a url", Secret: "s"},
		{URL: "https://example.com/hook"},
	} {
		if _, err := notify.NewWebhook(c); tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("%+v: err = %v, want invalid", c, err)
		}
	}
}

// TestWebhookStringHidesTokens: `tollguard alerts test` prints String();
// a Slack or Teams webhook's token is its path.
func TestWebhookStringHidesTokens(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"https://hooks.slack.com/services/T0001/B0002/XXXXSECRETTOKENXXXX", "POST https://hooks.slack.com/…"},
		{"https://acme.webhook.office.com/webhookb2/1234@5678/IncomingWebhook/SECRET/9abc", "POST https://acme.webhook.office.com/…"},
		{"https://user:pw@example.com/hook?token=abc", "POST https://example.com/…"},
		{"https://example.com?token=abc", "POST https://example.com/…"},
		{"http://127.0.0.1:8080/", "POST http://127.0.0.1:8080"},
		{"https://example.com", "POST https://example.com"},
	} {
		wh, err := notify.NewWebhook(notify.WebhookConfig{URL: tt.url, Secret: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if got := wh.String(); got != tt.want {
			t.Errorf("%s: String() = %q, want %q", tt.url, got, tt.want)
		}
	}
}
