package notify_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

func compromised() tollguard.Alert {
	return tollguard.Alert{
		Kind: tollguard.AlertCredentialsCompromised, Severity: tollguard.SeverityCritical,
		Subject: tollguard.ExtSubject("1001"), Account: "acme", Extension: "1001",
		Message:  "Extension 1001 registered from 198.51.100.7, outside its IP access list.",
		Evidence: `{"ip":"198.51.100.7","user_agent":"friendly-scanner"}`,
	}
}

func emailConfig(s *smtpServer, cert *testCert) notify.EmailConfig {
	cfg := notify.EmailConfig{
		Host: s.host(), Port: s.port(), TLS: notify.TLSMandatory,
		Username: "tollguard", Password: "s3cret pass",
		From: "tollguard@pbx.example", To: []string{"admin@example.com", "noc@example.com"},
		Timeout: 5 * time.Second,
	}
	if cert != nil {
		cfg.CAFile = cert.caFile
	}
	return cfg
}

func TestEmailStartTLSAuthPlain(t *testing.T) {
	e, srv := newTestEmail(t)
	p := tollguard.AlertPolicy{}
	_, n := p.NewAlertState(compromised(), t0)
	n.Alert.ID = 7
	if err := e.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	m := srv.next(t)
	if !m.TLS {
		t.Error("mail was sent without STARTTLS")
	}
	if m.AuthMech != "PLAIN" || m.User != "tollguard" {
		t.Errorf("auth %q as %q, want PLAIN as tollguard", m.AuthMech, m.User)
	}
	if m.From != "tollguard@pbx.example" || strings.Join(m.To, ",") != "admin@example.com,noc@example.com" {
		t.Errorf("envelope from %q to %v", m.From, m.To)
	}
	subject, h, body := parseMail(t, m.Data)
	if subject != "[tollguard] CRITICAL: credentials_compromised on ext:1001" {
		t.Errorf("subject %q", subject)
	}
	if h.Get("Auto-Submitted") != "auto-generated" || h.Get("X-Tollguard-Notice") != "7-1" || h.Get("X-Tollguard-Severity") != "critical" {
		t.Errorf("headers %v", h)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Errorf("content type %q", h.Get("Content-Type"))
	}
	for _, want := range []string{
		"Extension 1001 registered from 198.51.100.7, outside its IP access list.",
		"tollguard unblock 1001", "tollguard regs 1001", "tollguard alerts ack 7", "friendly-scanner",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

func TestEmailTLSPolicies(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name      string
		serverTLS bool
		implicit  bool // the server speaks TLS from the first byte
		policy    string
		auth      bool
		wantErr   string
		wantTLS   bool
	}{
		{name: "MandatoryRefusesServerWithoutSTARTTLS", serverTLS: false, policy: notify.TLSMandatory, wantErr: "STARTTLS"},
		{name: "OpportunisticUsesSTARTTLSWhenOffered", serverTLS: true, policy: notify.TLSOpportunistic, auth: true, wantTLS: true},
		{name: "OpportunisticFallsBackToPlain", serverTLS: false, policy: notify.TLSOpportunistic, wantTLS: false},
		{name: "NoneNeverStartsTLS", serverTLS: true, policy: notify.TLSNone, wantTLS: false},
		{name: "UntrustedCertificateRefused", serverTLS: true, policy: notify.TLSMandatory, wantErr: "certificate"},
		// auth auto picks PLAIN only on a connection go-mail knows is encrypted.
		{name: "ImplicitAuthAuto", serverTLS: true, implicit: true, policy: notify.TLSImplicit, auth: true, wantTLS: true},
		{name: "ImplicitUntrustedCertificateRefused", serverTLS: true, implicit: true, policy: notify.TLSImplicit, wantErr: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *testCert
			if tt.serverTLS {
				c = &cert
			}
			user, pass := "", ""
			if tt.auth {
				user, pass = "tollguard", "s3cret pass"
			}
			newServer := newSMTPServer
			if tt.implicit {
				newServer = newImplicitTLSServer
			}
			srv := newServer(t, c, user, pass)
			cfg := emailConfig(srv, &cert)
			cfg.TLS = tt.policy
			cfg.Username, cfg.Password = user, pass
			if strings.HasSuffix(tt.name, "UntrustedCertificateRefused") {
				cfg.CAFile = ""
			}
			e, err := notify.NewEmail(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
			err = e.Notify(context.Background(), n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				srv.none(t)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := srv.next(t)
			if m.TLS != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", m.TLS, tt.wantTLS)
			}
			if tt.auth && m.AuthMech != "PLAIN" {
				t.Errorf("auth %q, want PLAIN", m.AuthMech)
			}
		})
	}
}

func TestEmailWrongPasswordFails(t *testing.T) {
	cert := newTestCert(t)
	srv := newSMTPServer(t, &cert, "tollguard", "right")
	cfg := emailConfig(srv, &cert)
	cfg.Password = "wrong"
	e, err := notify.NewEmail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
	if err := e.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("err = %v, want an AUTH failure", err)
	}
	srv.none(t)
}

func TestNewEmailRejectsBadConfig(t *testing.T) {
	good := notify.EmailConfig{Host: "mail.example", From: "tg@example.com", To: []string{"a@example.com"}}
	tests := []struct {
		name   string
		modify func(*notify.EmailConfig)
		want   string
	}{
		{"NoHost", func(c *notify.EmailConfig) { c.Host = "" }, "no SMTP host"},
		{"BadFrom", func(c *notify.EmailConfig) { c.From = "not an address" }, "from"},
		{"NoRecipients", func(c *notify.EmailConfig) { c.To = nil }, "no recipients"},
		{"BadRecipient", func(c *notify.EmailConfig) { c.To = []string{"a@example.com", "bob"} }, `"bob"`},
		{"BadTLS", func(c *notify.EmailConfig) { c.TLS = "starttls-please" }, "tls"},
		{"BadAuth", func(c *notify.EmailConfig) { c.Username, c.Auth = "u", "magic" }, "auth"},
		{"MissingCAFile", func(c *notify.EmailConfig) { c.CAFile = "/nonexistent/ca.pem" }, "ca_file"},
		{"BadPort", func(c *notify.EmailConfig) { c.Port = 70000 }, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.modify(&c)
			_, err := notify.NewEmail(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) || tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Fatalf("err = %v, want an invalid-config error mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := notify.NewEmail(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

// bareSMTP is an SMTP server on loopback with its dialogue written out
// by hand, so that a test can hold or cut it where a real server would
// not. step runs before each of these replies: "greeting", "ehlo",
// "data" (the message's final dot) and "next" (any command after a
// queued message). It may wait for release, closed at the test's end,
// and returns false to drop the connection instead of replying.
func bareSMTP(t *testing.T, step func(at string, release <-chan struct{}) bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				say := func(l string) { c.Write([]byte(l + "\r\n")) }
				if !step("greeting", release) {
					return
				}
				say("220 bare ESMTP")
				inData, queued := false, false
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					l = strings.TrimRight(l, "\r\n")
					if queued && !inData && !step("next", release) {
						return
					}
					u := strings.ToUpper(l)
					switch {
					case inData && l == ".":
						inData, queued = false, true
						if !step("data", release) {
							return
						}
						say("250 2.0.0 queued as 42")
					case inData:
					case strings.HasPrefix(u, "EHLO"), strings.HasPrefix(u, "HELO"):
						if !step("ehlo", release) {
							return
						}
						say("250 bare")
					case strings.HasPrefix(u, "DATA"):
						inData = true
						say("354 go on")
					case strings.HasPrefix(u, "QUIT"):
						say("221 bye")
						return
					default:
						say("250 ok")
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// bareEmail is an email notifier for the bare SMTP server on port: no
// TLS, no login, go-mail's own timeout well past the tests' deadlines.
func bareEmail(t *testing.T, port int) *notify.Email {
	t.Helper()
	e, err := notify.NewEmail(notify.EmailConfig{Host: "127.0.0.1", Port: port, TLS: notify.TLSNone,
		From: "tollguard@pbx.example", To: []string{"admin@example.com"}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stallingSMTP is a bare SMTP server that goes silent at one point of
// the dialogue (before the greeting, after EHLO, or after the message's
// final dot) until the test ends.
func stallingSMTP(t *testing.T, stallAt string) int {
	t.Helper()
	return bareSMTP(t, func(at string, release <-chan struct{}) bool {
		if at == stallAt {
			<-release
		}
		return true
	})
}

// TestEmailSendEndsAtContextDeadline: a send ends at its context's
// deadline wherever the server stalls. go-mail's context bounded only
// the dial, and its own timeout is set afresh before each step, so a
// slow server held one send for longer than the dispatcher's deadline
// and its claim on the delivery, and another worker mailed it again.
func TestEmailSendEndsAtContextDeadline(t *testing.T) {
	for _, stallAt := range []string{"greeting", "ehlo", "data"} {
		t.Run(stallAt, func(t *testing.T) {
			e := bareEmail(t, stallingSMTP(t, stallAt))
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
			start := time.Now()
			err := e.Notify(ctx, n)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Notify returned %v after its 300ms deadline", (took - 300*time.Millisecond).Round(time.Millisecond))
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want the context's deadline", err)
			}
		})
	}
	t.Run("Canceled", func(t *testing.T) {
		e := bareEmail(t, stallingSMTP(t, "data"))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		err := e.SendMail(ctx, "owner@example.com", "PIN changed", "body")
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("SendMail returned %v after it was cancelled", (took - 300*time.Millisecond).Round(time.Millisecond))
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// TestEmailMessageIDStablePerNotice: every attempt at one notice carries
// the same Message-ID, so a retry after a lost answer is one message to
// the recipient's mail system; the next notice of the alert, or the
// same alert id in a recreated database, gets another.
func TestEmailMessageIDStablePerNotice(t *testing.T) {
	e, srv := newTestEmail(t)
	p := tollguard.AlertPolicy{}
	_, n := p.NewAlertState(compromised(), t0)
	n.Alert.ID = 7
	send := func(n tollguard.Notice) string {
		t.Helper()
		if err := e.Notify(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		_, h, _ := parseMail(t, srv.next(t).Data)
		return h.Get("Message-Id")
	}
	first, retry := send(n), send(n)
	if first != retry || !strings.HasPrefix(first, "<tollguard-notice.7-1.") {
		t.Errorf("Message-ID %q, then %q on the retry: want one, naming notice 7-1", first, retry)
	}
	next := n
	next.Alert.Count++
	recreated := n
	recreated.Alert.FirstSeen = n.Alert.FirstSeen.Add(time.Hour)
	if id := send(next); id == first {
		t.Errorf("the alert's next notice reused Message-ID %q", id)
	}
	if id := send(recreated); id == first {
		t.Errorf("alert 7 of a recreated database reused Message-ID %q", id)
	}
}
