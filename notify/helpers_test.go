package notify_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// clock is a pinned clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "tollguard.db")
	}
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testCert is a self-signed certificate for 127.0.0.1, and its PEM in a
// file for EmailConfig.CAFile.
type testCert struct {
	tls    tls.Certificate
	caFile string
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tollguard test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return testCert{tls: pair, caFile: f}
}

// smtpMsg is what the test SMTP server received.
type smtpMsg struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool // the session was under TLS at MAIL FROM
	AuthMech string
	User     string
}

// smtpServer is an in-process SMTP server (github.com/emersion/go-smtp)
// with optional STARTTLS and AUTH PLAIN. It can be stopped and started
// again on the same address, to play an outage.
type smtpServer struct {
	t          *testing.T
	cert       *testCert // nil: no STARTTLS
	user, pass string    // "": no AUTH
	addr       string
	msgs       chan smtpMsg
	implicit   bool // TLS from the first byte (cert required), no STARTTLS

	mu  sync.Mutex
	srv *smtp.Server
}

// newTestEmail starts a STARTTLS SMTP server that takes tollguard's
// login, and an e-mail notifier that sends to it.
func newTestEmail(t *testing.T) (*notify.Email, *smtpServer) {
	t.Helper()
	cert := newTestCert(t)
	srv := newSMTPServer(t, &cert, "tollguard", "s3cret pass")
	e, err := notify.NewEmail(emailConfig(srv, &cert))
	if err != nil {
		t.Fatal(err)
	}
	return e, srv
}

func newSMTPServer(t *testing.T, cert *testCert, user, pass string) *smtpServer {
	s := &smtpServer{t: t, cert: cert, user: user, pass: pass, addr: "127.0.0.1:0", msgs: make(chan smtpMsg, 64)}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// newImplicitTLSServer is an SMTP server on TLS from the first byte (port 465 style).
func newImplicitTLSServer(t *testing.T, cert *testCert, user, pass string) *smtpServer {
	s := &smtpServer{t: t, cert: cert, user: user, pass: pass, addr: "127.0.0.1:0", msgs: make(chan smtpMsg, 64), implicit: true}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start listens on the server's address (an ephemeral port the first time).
func (s *smtpServer) Start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("smtp listen %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s, conn: c}, nil
	}))
	srv.Domain = "127.0.0.1"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if s.implicit {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{s.cert.tls}})
	} else if s.cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.cert.tls}}
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Stop closes the listener and every connection.
func (s *smtpServer) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (s *smtpServer) host() string { h, _, _ := net.SplitHostPort(s.addr); return h }

func (s *smtpServer) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// next waits for the next message, failing the test after a deadline.
func (s *smtpServer) next(t *testing.T) smtpMsg {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived")
		return smtpMsg{}
	}
}

// none asserts no message is waiting.
func (s *smtpServer) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Fatalf("unexpected mail: %s", m.Data)
	default:
	}
}

type smtpSession struct {
	s      *smtpServer
	conn   *smtp.Conn
	authed bool
	mech   string
	user   string
	msg    smtpMsg
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed, ss.mech, ss.user = true, mech, user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	_, tlsOn := ss.conn.TLSConnectionState()
	ss.msg = smtpMsg{From: from, TLS: tlsOn, AuthMech: ss.mech, User: ss.user}
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.msg.Data = b
	ss.s.msgs <- ss.msg
	return nil
}

func (ss *smtpSession) Reset()        { ss.msg = smtpMsg{} }
func (ss *smtpSession) Logout() error { return nil }

// parseMail returns a message's decoded subject, headers and text body.
func parseMail(t *testing.T, data []byte) (subject string, h mail.Header, body string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, data)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return subject, m.Header, strings.ReplaceAll(string(b), "\r\n", "\n")
}

// metrics records what the dispatcher counted.
type metrics struct {
	mu     sync.Mutex
	raised map[string]int
	failed map[string]int
	final  map[string]int
	sent   map[string]int
}

func newMetrics() *metrics {
	return &metrics{raised: map[string]int{}, failed: map[string]int{}, final: map[string]int{}, sent: map[string]int{}}
}

func (m *metrics) AlertRaised(kind string, _ tollguard.Severity) {
	m.mu.Lock()
	m.raised[kind]++
	m.mu.Unlock()
}

func (m *metrics) NotifierFailed(n string, final bool) {
	m.mu.Lock()
	m.failed[n]++
	if final {
		m.final[n]++
	}
	m.mu.Unlock()
}

func (m *metrics) NoticesAbandoned(n string, count int) {
	m.mu.Lock()
	m.final[n] += count
	m.mu.Unlock()
}

func (m *metrics) NotificationSent(n string) {
	m.mu.Lock()
	m.sent[n]++
	m.mu.Unlock()
}

func (m *metrics) get(which map[string]int, k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return which[k]
}

// funcNotifier is a notifier made of a function.
type funcNotifier struct {
	name string
	fn   func(ctx context.Context, n tollguard.Notice) error
}

func (f *funcNotifier) Name() string                                         { return f.name }
func (f *funcNotifier) Notify(ctx context.Context, n tollguard.Notice) error { return f.fn(ctx, n) }

var errDown = errors.New("notifier down")

func within(t *testing.T, d time.Duration, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}
