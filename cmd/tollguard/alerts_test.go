package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

// alertsEnv is a config with e-mail (to an in-process SMTP server) and a
// webhook (to an httptest server that checks the signature).
type alertsEnv struct {
	dir, config, db string
	mails           chan string
	hooks           chan notify.WebhookBody
	hookStatus      atomic.Int32
}

func newAlertsEnv(t *testing.T) *alertsEnv {
	e := &alertsEnv{dir: t.TempDir(), mails: make(chan string, 16), hooks: make(chan notify.WebhookBody, 16)}
	e.hookStatus.Store(http.StatusOK)
	e.db = filepath.Join(e.dir, "tollguard.db")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &cliSMTPSession{mails: e.mails}, nil }))
	srv.Domain = "127.0.0.1"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	const secret = "cli-webhook-secret"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, body, r.Header.Get(notify.HeaderSignature), r.Header.Get(notify.HeaderTimestamp), time.Minute, time.Now()); err != nil {
			t.Errorf("webhook: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b notify.WebhookBody
		json.Unmarshal(body, &b)
		st := int(e.hookStatus.Load())
		w.WriteHeader(st)
		if st/100 == 2 {
			e.hooks <- b
		}
	}))
	t.Cleanup(hook.Close)

	host, port, _ := net.SplitHostPort(ln.Addr().String())
	e.config = filepath.Join(e.dir, "tollguard.toml")
	cfg := fmt.Sprintf(`db = %q

[alerts]
cool_down = "10m"
retry_initial = "1s"

[alerts.email]
enabled = true
host = %q
port = %s
tls = "none"
from = "tollguard@pbx.example"
to = ["admin@example.com"]

[alerts.webhook]
enabled = true
url = %q
`, e.db, host, port, hook.URL)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOLLGUARD_CONFIG", e.config)
	t.Setenv("TOLLGUARD_WEBHOOK_SECRET", secret)
	t.Setenv("TOLLGUARD_DB", "")
	return e
}

type cliSMTPSession struct {
	mails chan string
}

func (s *cliSMTPSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *cliSMTPSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *cliSMTPSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.mails <- string(b)
	return err
}
func (s *cliSMTPSession) Reset()        {}
func (s *cliSMTPSession) Logout() error { return nil }

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func waitFor[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s arrived", what)
		var zero T
		return zero
	}
}

func TestAlertsCommands(t *testing.T) {
	e := newAlertsEnv(t)

	t.Run("TestReachesEveryNotifier", func(t *testing.T) {
		out, errOut, code := runCLI(t, "alerts", "test", "--message", "hello from the test")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{"log ", "email ", "webhook ", "ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if m := waitFor(t, e.mails, "test mail"); !strings.Contains(m, "hello from the test") {
			t.Errorf("mail:\n%s", m)
		}
		if b := waitFor(t, e.hooks, "test webhook"); b.Event != tollguard.NoticeTest {
			t.Errorf("webhook event %q", b.Event)
		}
	})

	t.Run("TestReportsAFailingNotifier", func(t *testing.T) {
		e.hookStatus.Store(http.StatusInternalServerError)
		defer e.hookStatus.Store(http.StatusOK)
		out, errOut, code := runCLI(t, "alerts", "test")
		if code != exitFailure || !strings.Contains(out, "FAILED") || !strings.Contains(errOut, "1 of 3 notifiers failed") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		waitFor(t, e.mails, "test mail")
	})

	t.Run("DaemonRaisesDeliversListsAndAcks", func(t *testing.T) {
		app := NewApp(nil, io.Discard, io.Discard)
		defer app.Close()
		if err := app.Init(); err != nil {
			t.Fatal(err)
		}
		db, err := app.Store(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		logLines := make(chan string, 64)
		d := &daemon{app: app, db: db, log: slog.New(slog.NewTextHandler(chanWriter(logLines), nil)), metrics: NewMetrics()}
		ns, err := app.Config.Alerts.Notifiers(d.log)
		if err != nil {
			t.Fatal(err)
		}
		if err := startAlerts(ctx, d, ns); err != nil {
			t.Fatal(err)
		}
		a := tollguard.Alert{Kind: tollguard.AlertCredentialsCompromised, Severity: tollguard.SeverityCritical,
			Subject: tollguard.ExtSubject("1001"), Extension: "1001", Account: "acme",
			Message: "Extension 1001 registered from 198.51.100.7, outside its IP access list.", Evidence: `{"ip":"198.51.100.7"}`}
		if err := d.alerter.Raise(ctx, a); err != nil {
			t.Fatal(err)
		}
		again := a
		again.Message, again.Evidence = "Extension 1001 registered from 198.51.100.8, outside its IP access list.", `{"ip":"198.51.100.8"}`
		if err := d.alerter.Raise(ctx, again); err != nil { // a repeat: merged, no second notice
			t.Fatal(err)
		}
		if m := waitFor(t, e.mails, "alert mail"); !strings.Contains(m, "tollguard unblock 1001") {
			t.Errorf("mail:\n%s", m)
		}
		if b := waitFor(t, e.hooks, "alert webhook"); b.Alert.Kind != "credentials_compromised" || b.Alert.Count != 1 {
			t.Errorf("webhook %+v", b)
		}
		for line := ""; !strings.Contains(line, "msg=alert "); {
			line = waitFor(t, logLines, "the alert's log line")
		}
		cancel()
		d.wg.Wait()
		select {
		case m := <-e.mails:
			t.Fatalf("the repeat was mailed too:\n%s", m)
		default:
		}

		out, errOut, code := runCLI(t, "alerts", "--since", "1h")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		// The listing shows what happened last: the second address.
		for _, want := range []string{"credentials_compromised", "ext:1001", "critical", "email:sent", "log:sent", "webhook:sent", "open", "latest: Extension 1001 registered from 198.51.100.8"} {
			if !strings.Contains(out, want) {
				t.Errorf("list lacks %q:\n%s", want, out)
			}
		}
		if strings.Count(out, "\n") != 2 {
			t.Errorf("want one alert (the repeat merged):\n%s", out)
		}

		if out, errOut, code = runCLI(t, "alerts", "ack", "1", "--by", "alice"); code != 0 || !strings.Contains(out, "alert 1 acknowledged") {
			t.Fatalf("ack: exit %d\n%s%s", code, out, errOut)
		}
		out, _, code = runCLI(t, "alerts", "--json")
		var vs []alertView
		if err := json.Unmarshal([]byte(out), &vs); err != nil || code != 0 {
			t.Fatalf("json: %v\n%s", err, out)
		}
		if len(vs) != 1 || vs[0].Count != 2 || vs[0].AckedBy != "alice" || vs[0].AckedAt == nil || len(vs[0].Deliveries) != 3 ||
			vs[0].Message != a.Message || vs[0].Latest != again.Message {
			t.Errorf("json %+v", vs)
		}
		if out, _, code = runCLI(t, "alerts", "show", "1"); code != 0 || !strings.Contains(out, "Acknowledged by alice") || !strings.Contains(out, "webhook") {
			t.Errorf("show: exit %d\n%s", code, out)
		}
		if _, _, code = runCLI(t, "alerts", "ack", "99"); code != exitUsage {
			t.Errorf("ack of an unknown alert: exit %d, want %d", code, exitUsage)
		}
		if _, _, code = runCLI(t, "alerts", "--since", "yesterday"); code != exitUsage {
			t.Errorf("bad --since: exit %d", code)
		}
	})
}

func TestAlertsConfig(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		env     map[string]string
		wantErr string // "" for valid
		check   func(t *testing.T, c *Config)
	}{
		{name: "Defaults", toml: "", check: func(t *testing.T, c *Config) {
			a := c.Alerts
			if a.CoolDown.Duration != 15*time.Minute || fmt.Sprint(a.DigestAt) != "[10 100 1000]" || a.Email.Enabled || a.Webhook.Enabled || a.Email.TLS != "mandatory" {
				t.Errorf("defaults %+v", a)
			}
			ns, err := a.Notifiers(slog.New(slog.DiscardHandler))
			if err != nil || len(ns) != 1 || ns[0].Name() != "log" {
				t.Errorf("notifiers %v %v", ns, err)
			}
		}},
		{name: "DigestAtReplaced", toml: "[alerts]\ndigest_at = [5, 50]\n", check: func(t *testing.T, c *Config) {
			if fmt.Sprint(c.Alerts.DigestAt) != "[5 50]" {
				t.Errorf("digest_at %v", c.Alerts.DigestAt)
			}
		}},
		{name: "BadTLSWithLine", toml: "[alerts.email]\nenabled = true\nhost = \"smtp.example\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\ntls = \"starttls\"\n",
			wantErr: `:6: alerts email tls "starttls"`},
		{name: "EmailWithoutRecipients", toml: "[alerts.email]\nenabled = true\nhost = \"smtp.example\"\nfrom = \"a@example.com\"\n", wantErr: "to is empty"},
		// Valid before send_timeout bounded sends: held to send_timeout,
		// not refused (a refused config keeps the daemon down).
		{name: "EmailTimeoutOverSendTimeout", toml: "[alerts]\nsend_timeout = \"10s\"\n[alerts.email]\nenabled = true\nhost = \"smtp.example\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\ntimeout = \"30s\"\n",
			check: func(t *testing.T, c *Config) {
				if got := c.Alerts.emailTimeout(); got != 10*time.Second {
					t.Errorf("email timeout in effect %s, want send_timeout's 10s", got)
				}
			}},
		{name: "WebhookBadURL", toml: "[alerts.webhook]\nenabled = true\nurl = \"hooks.example.com\"\n", wantErr: "webhook url"},
		{name: "CoolDownTooShort", toml: "[alerts]\ncool_down = \"5s\"\n", wantErr: "cool_down"},
		{name: "DigestAtNotAscending", toml: "[alerts]\ndigest_at = [100, 10]\n", wantErr: "digest_at"},
		{name: "PasswordInFile", toml: "[alerts.email]\npassword = \"hunter2\"\n", wantErr: "alerts.email.password: secrets do not belong in the config file; put it in the file [alerts.email] password_file names, or TOLLGUARD_SMTP_PASSWORD"},
		{name: "UnknownKey", toml: "[alerts.email]\npasword_file = \"/x\"\n", wantErr: "unknown setting"},
		{name: "WebhookSecretFromEnv", toml: "[alerts.webhook]\nenabled = true\nurl = \"https://hooks.example.com/x\"\n",
			env: map[string]string{"TOLLGUARD_WEBHOOK_SECRET": "s3"}, check: func(t *testing.T, c *Config) {
				ns, err := c.Alerts.Notifiers(slog.New(slog.DiscardHandler))
				if err != nil || len(ns) != 2 || ns[1].Name() != "webhook" {
					t.Errorf("notifiers %v %v", ns, err)
				}
			}},
		{name: "WebhookWithoutSecretRefusedAtStart", toml: "[alerts.webhook]\nenabled = true\nurl = \"https://hooks.example.com/x\"\n",
			check: func(t *testing.T, c *Config) {
				_, err := c.Alerts.Notifiers(slog.New(slog.DiscardHandler))
				if err == nil || !strings.Contains(err.Error(), "TOLLGUARD_WEBHOOK_SECRET") {
					t.Errorf("err = %v", err)
				}
			}},
		{name: "SMTPUserWithoutPassword", toml: "[alerts.email]\nenabled = true\nhost = \"smtp.example\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\nusername = \"tg\"\n",
			check: func(t *testing.T, c *Config) {
				_, err := c.Alerts.Notifiers(slog.New(slog.DiscardHandler))
				if err == nil || !strings.Contains(err.Error(), "TOLLGUARD_SMTP_PASSWORD") {
					t.Errorf("err = %v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.toml")
			if err := os.WriteFile(path, []byte(tt.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path)
			if err == nil {
				c.ApplyEnv(func(k string) string { return tt.env[k] })
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// chanWriter sends each write (one log record) to a channel.
type chanWriter chan string

func (c chanWriter) Write(p []byte) (int, error) {
	select {
	case c <- string(p):
	default:
	}
	return len(p), nil
}

// TestAlertsJSONEvidenceTimes: the kept occurrences in `alerts --json`
// and `alerts show --json` carry their time in RFC 3339, as first_seen
// and every other time in the CLI's JSON do (they were Unix seconds),
// with their own evidence kept as raised.
func TestAlertsJSONEvidenceTimes(t *testing.T) {
	c := newCLI(t)
	c.seed()
	ctx := context.Background()
	db := openStore(t, c.db)
	at := time.Date(2026, 3, 2, 10, 4, 5, 0, time.UTC)
	var id int64
	for i := range 2 {
		res, err := db.RaiseAlert(ctx, tollguard.Alert{Kind: tollguard.AlertBurst, Subject: "ext:1001", Extension: "1001", Account: "acme",
			Message: "burst", Evidence: fmt.Sprintf(`{"calls":%d}`, 10+i)}, tollguard.AlertPolicy{}, nil, at.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		id = res.State.ID
	}
	type occ struct {
		At       any            `json:"at"`
		Evidence map[string]any `json:"evidence"`
	}
	type view struct {
		FirstSeen string `json:"first_seen"`
		Evidence  []occ  `json:"evidence"`
	}
	for name, v := range alertJSONViews[view](t, c, id) {
		got := fmt.Sprint(v.FirstSeen, " ", v.Evidence)
		want := "2026-03-02T10:04:05Z [{2026-03-02T10:04:05Z map[calls:10]} {2026-03-02T10:05:05Z map[calls:11]}]"
		if got != want {
			t.Errorf("%s: first_seen and evidence %s, want %s", name, got, want)
		}
	}
}

// TestAlertsShowNamesEachNewAddress: `alerts show` and the JSON of
// `alerts` and `alerts show` name each address a merged new_ip alert
// saw, as its notices do, not only the first (the message) and the
// latest.
func TestAlertsShowNamesEachNewAddress(t *testing.T) {
	c := newCLI(t)
	c.seed()
	ctx := context.Background()
	db := openStore(t, c.db)
	at := time.Date(2026, 3, 2, 10, 4, 5, 0, time.UTC)
	var id int64
	for i, ip := range []string{"10.1.0.5", "203.0.113.66", "10.1.0.9"} {
		res, err := db.RaiseAlert(ctx, tollguard.Alert{Kind: tollguard.AlertNewIP, Subject: "ext:1001", Extension: "1001", Account: "acme",
			Message: "new address " + ip, Evidence: fmt.Sprintf(`{"ip":%q}`, ip)}, tollguard.AlertPolicy{}, nil, at.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		id = res.State.ID
	}
	const line = "New addresses: 10.1.0.5, 203.0.113.66, 10.1.0.9\n"
	if out := c.ok("alerts", "show", fmt.Sprint(id)); !strings.Contains(out, line) {
		t.Errorf("alerts show lacks %q:\n%s", line, out)
	}
	type view struct {
		Values []string `json:"values"`
	}
	for name, v := range alertJSONViews[view](t, c, id) {
		if got := strings.Join(v.Values, ", "); got != "10.1.0.5, 203.0.113.66, 10.1.0.9" {
			t.Errorf("%s: values %q", name, v.Values)
		}
	}
}

// alertJSONViews reads the one alert, id, as `alerts --json` and as
// `alerts show --json` list it, by the command's name.
func alertJSONViews[V any](t *testing.T, c *cli, id int64) map[string]V {
	t.Helper()
	var list []V
	var one V
	if err := json.Unmarshal([]byte(c.ok("alerts", "--since", "3000d", "--json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("alerts --json: %v %+v", err, list)
	}
	if err := json.Unmarshal([]byte(c.ok("alerts", "show", fmt.Sprint(id), "--json")), &one); err != nil {
		t.Fatal(err)
	}
	return map[string]V{"alerts --json": list[0], "alerts show --json": one}
}
