package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

// Webhook headers. The signature is the hex HMAC-SHA256 of the body
// with the shared secret. The body carries the same timestamp as the
// timestamp header, so the signature covers it: a receiver checks the
// signature, that the two agree, and that the time is recent, which
// defeats replays. X-Tollguard-Notice is the same for every retry of a
// notice, so a receiver can drop duplicates.
const (
	HeaderSignature = "X-Tollguard-Signature" // "sha256=<hex>"
	HeaderTimestamp = "X-Tollguard-Timestamp" // Unix seconds
	HeaderNotice    = "X-Tollguard-Notice"
	HeaderEvent     = "X-Tollguard-Event"
)

// WebhookConfig is the webhook notifier's settings.
type WebhookConfig struct {
	Name    string // default "webhook"; give each webhook its own
	URL     string
	Secret  string        // shared HMAC secret; required
	Timeout time.Duration // default 10s
	Now     func() time.Time
}

// Webhook POSTs notices as signed JSON. Any answer but 2xx is a failure
// to retry; redirects are not followed.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
}

// NewWebhook checks cfg and returns the notifier.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.Name == "" {
		cfg.Name = "webhook"
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, tollguard.Errorf(tollguard.EINVALID, "%s: url %q: want an http:// or https:// URL", cfg.Name, cfg.URL)
	}
	if cfg.Secret == "" {
		return nil, tollguard.Errorf(tollguard.EINVALID, "%s: no secret; set TOLLGUARD_WEBHOOK_SECRET or secret_file", cfg.Name)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Webhook{cfg: cfg, client: &http.Client{
		Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}, nil
}

// Name is the configured name, "webhook" by default.
func (w *Webhook) Name() string { return w.cfg.Name }

// String describes the notifier without its secret.
func (w *Webhook) String() string {
	u, err := url.Parse(w.cfg.URL)
	if err != nil || u.Host == "" {
		return "POST (URL not shown: it may hold a token)"
	}
	// Slack, Teams and the like put the token in the path, others in the
	// query: show only what says where it goes, as hideURLPath does.
	s := "POST " + u.Scheme + "://" + u.Host
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// WebhookAlert is the alert in a webhook body.
type WebhookAlert struct {
	ID        int64              `json:"id"`
	Kind      string             `json:"kind"`
	Severity  tollguard.Severity `json:"severity"`
	Subject   string             `json:"subject"`
	Account   string             `json:"account,omitempty"`
	Extension string             `json:"extension,omitempty"`
	Message   string             `json:"message"`
	FirstSeen time.Time          `json:"first_seen"`
	LastSeen  time.Time          `json:"last_seen"`
	Count     int                `json:"count"`
	// Evidence is the list of occurrences kept: the first and the latest,
	// each {"at": unix, "severity", "message", "evidence": {...}}.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// WebhookBody is the JSON a webhook receives (version 1).
type WebhookBody struct {
	Version   int                   `json:"version"`
	Notice    string                `json:"notice"` // as X-Tollguard-Notice
	Event     tollguard.NoticeEvent `json:"event"`  // new, digest, escalation, test
	Timestamp int64                 `json:"timestamp"`
	Title     string                `json:"title"`
	Text      string                `json:"text"` // for a person: what happened and what to do
	Alert     WebhookAlert          `json:"alert"`
	Repeats   int                   `json:"repeats"`         // since the previous notice
	Since     *time.Time            `json:"since,omitempty"` // the previous notice
	Latest    string                `json:"latest,omitempty"`
	// Values are the distinct addresses (new_ip) or user agents
	// (new_user_agent) of the alert's kept occurrences, as the text
	// shows them: the first few, and how many more.
	Values     []string `json:"values,omitempty"`
	MoreValues int      `json:"more_values,omitempty"`
}

// Body builds the JSON body of n stamped at ts.
func Body(n tollguard.Notice, ts time.Time) ([]byte, error) {
	a := n.Alert
	b := WebhookBody{
		Version: 1, Notice: n.Key(), Event: n.Event, Timestamp: ts.Unix(), Title: n.Title(), Text: n.Text(),
		Alert: WebhookAlert{ID: a.ID, Kind: a.Kind, Severity: a.Severity, Subject: a.Subject, Account: a.Account,
			Extension: a.Extension, Message: a.Message, FirstSeen: a.FirstSeen.UTC(), LastSeen: a.LastSeen.UTC(), Count: a.Count},
		Repeats: n.Repeats, Latest: n.Latest,
	}
	_, b.Values, b.MoreValues = n.Values()
	if a.Evidence != "" && json.Valid([]byte(a.Evidence)) {
		b.Alert.Evidence = json.RawMessage(a.Evidence)
	}
	if !n.Since.IsZero() {
		s := n.Since.UTC()
		b.Since = &s
	}
	return json.Marshal(b)
}

// Sign returns the X-Tollguard-Signature value of body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request the way a receiver should: the
// signature over the body, the timestamp header against the body's,
// and the timestamp within maxAge of now. It is for receivers written
// in Go, and documents the protocol for the others.
func Verify(secret string, body []byte, signature, timestamp string, maxAge time.Duration, now time.Time) error {
	want := Sign(secret, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errors.New("bad signature")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad timestamp header")
	}
	var b struct {
		Timestamp int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Timestamp != ts {
		return errors.New("timestamp header does not match the signed body")
	}
	if age := now.Sub(time.Unix(ts, 0)); age > maxAge || age < -maxAge {
		return fmt.Errorf("timestamp %s old: replayed or clocks apart", age.Round(time.Second))
	}
	return nil
}

// Notify POSTs n. The body and signature are made afresh for each
// attempt, so a retry carries a current timestamp.
func (w *Webhook) Notify(ctx context.Context, n tollguard.Notice) error {
	ts := w.cfg.Now()
	body, err := Body(n, ts)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", w.cfg.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", w.cfg.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tollguard")
	req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, body))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderNotice, n.Key())
	req.Header.Set(HeaderEvent, string(n.Event))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", w.cfg.Name, redactURL(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := strings.TrimSpace(string(snippet))
		if loc := resp.Header.Get("Location"); loc != "" {
			msg = "redirected to " + hideURLPath(loc) + "; configure the final URL"
		}
		err := fmt.Errorf("%s: HTTP %s: %s", w.cfg.Name, resp.Status, msg)
		if refused(resp.StatusCode) {
			err = fmt.Errorf("%w (%w)", err, ErrRefused)
		}
		return err
	}
	return nil
}

// hideURLPath keeps a redirect target's scheme and host, which say what
// to fix (http to https, another host), and hides its path and query,
// where services put tokens.
func hideURLPath(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return "another URL (not shown: it may hold a token)"
	}
	if u.Path == "" && u.RawQuery == "" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/… (path not shown: it may hold a token)"
}

// redactURL drops the URL (which may hold a token) from a client error.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// refused reports whether a webhook's answer refuses the notice itself
// (a 4xx) rather than saying the receiver cannot take any now (408
// timeout, 429 too many requests, a 5xx, a redirect).
func refused(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}
