package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"os"
	"slices"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/tollguard/tollguard"
)

// TLS policies for e-mail.
const (
	TLSMandatory     = "mandatory"     // STARTTLS or fail (default)
	TLSOpportunistic = "opportunistic" // STARTTLS when offered
	TLSNone          = "none"          // plain text: only for a relay on localhost
	TLSImplicit      = "implicit"      // TLS from the first byte (port 465)
)

// EmailConfig is the SMTP notifier's settings.
type EmailConfig struct {
	Host     string
	Port     int    // default 587; 25 with TLS none; 465 with TLS implicit
	TLS      string // mandatory (default), opportunistic, none, implicit
	CAFile   string // PEM file of CAs to trust besides the system's
	Username string // empty: no SMTP AUTH
	Password string
	// Auth is the SMTP AUTH mechanism when Username is set: auto (the
	// strongest the server offers; default), plain, login, cram-md5,
	// scram-sha-256, ...
	Auth string
	From string
	To   []string
	// Timeout bounds the connect and each command; default 30s. A send
	// also ends at its context's deadline, whichever comes first.
	Timeout time.Duration
}

// Email sends notices as plain-text mail through go-mail.
type Email struct {
	cfg  EmailConfig
	tls  *tls.Config
	opts []gomail.Option
}

// NewEmail checks cfg and returns the notifier. It does not connect.
func NewEmail(cfg EmailConfig) (*Email, error) {
	bad := func(format string, args ...any) (*Email, error) {
		return nil, tollguard.Errorf(tollguard.EINVALID, "email: "+format, args...)
	}
	if cfg.Host == "" {
		return bad("no SMTP host")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSMandatory
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return bad("from %q: not an e-mail address", cfg.From)
	}
	if len(cfg.To) == 0 {
		return bad("no recipients (to)")
	}
	for _, to := range cfg.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return bad("to %q: not an e-mail address", to)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tlsConf := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return bad("ca_file: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return bad("ca_file %s: no PEM certificates in it", cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	opts := []gomail.Option{gomail.WithTimeout(cfg.Timeout), gomail.WithTLSConfig(tlsConf)}
	port := cfg.Port
	switch cfg.TLS {
	case TLSMandatory:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		if port == 0 {
			port = 25
		}
	case TLSImplicit:
		// dial does the TLS handshake itself (go-mail's WithSSL does not
		// apply to a custom dialer). RFC 3207 forbids offering STARTTLS
		// over TLS, so "opportunistic" starts none; it makes go-mail see
		// the connection as encrypted, which auth auto needs to pick PLAIN
		// or LOGIN.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		if port == 0 {
			port = 465
		}
	default:
		return bad("tls %q: want mandatory, opportunistic, none or implicit", cfg.TLS)
	}
	if port == 0 {
		port = 587
	}
	if port < 1 || port > 65535 {
		return bad("port %d: out of range", port)
	}
	opts = append(opts, gomail.WithPort(port))
	if cfg.Username != "" {
		mech := cfg.Auth
		if mech == "" {
			mech = "auto"
		}
		var at gomail.SMTPAuthType
		if err := at.UnmarshalString(mech); err != nil || at == gomail.SMTPAuthCustom || at == gomail.SMTPAuthNoAuth {
			return bad("auth %q: want auto, plain, login, cram-md5, scram-sha-1, scram-sha-256 or xoauth2", mech)
		}
		opts = append(opts, gomail.WithSMTPAuth(at), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	cfg.Port = port
	return &Email{cfg: cfg, tls: tlsConf, opts: opts}, nil
}

// Name is "email".
func (e *Email) Name() string { return "email" }

// Notify sends n to every recipient in one message.
func (e *Email) Notify(ctx context.Context, n tollguard.Notice) error {
	m, err := e.message(e.cfg.To, n.Title(), n.Text())
	if err != nil {
		return err
	}
	m.SetDateWithValue(n.At)
	m.SetMessageIDWithValue(noticeMessageID(n))
	m.SetGenHeader("X-Tollguard-Notice", n.Key())
	m.SetGenHeader("X-Tollguard-Kind", n.Alert.Kind)
	m.SetGenHeader("X-Tollguard-Severity", string(n.Alert.Severity))
	if n.Alert.Severity == tollguard.SeverityCritical {
		m.SetImportance(gomail.ImportanceHigh)
	}
	return e.send(ctx, m)
}

// noticeMessageID is the Message-ID of n's mail: the same for every
// attempt to send it, so a mail sent twice (a server that queued it but
// whose answer was lost) is one message to the recipient's mail system,
// which drops a repeated Message-ID. The alert's first-seen time keeps
// ids of a recreated database (whose alert ids start again at 1) apart.
func noticeMessageID(n tollguard.Notice) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost.localdomain"
	}
	return fmt.Sprintf("tollguard-notice.%s.%d@%s", n.Key(), n.Alert.FirstSeen.Unix(), host)
}

// SendMail mails one person (a mailbox owner whose voicemail PIN the
// pins audit changed) through the same server: tollguard.Mailer.
func (e *Email) SendMail(ctx context.Context, to, subject, body string) error {
	if _, err := mail.ParseAddress(to); err != nil {
		return tollguard.Errorf(tollguard.EINVALID, "email to %q: not an e-mail address", to)
	}
	m, err := e.message([]string{to}, subject, body)
	if err != nil {
		return err
	}
	m.SetDate()
	return e.send(ctx, m)
}

var _ tollguard.Mailer = (*Email)(nil)

// message builds a plain-text mail from the configured sender.
func (e *Email) message(to []string, subject, body string) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(e.cfg.From); err != nil {
		return nil, fmt.Errorf("email from: %w", err)
	}
	if err := m.To(to...); err != nil {
		return nil, fmt.Errorf("email to: %w", err)
	}
	m.Subject(subject)
	m.SetMessageID()
	// Mark it automatic, so auto-replies and vacation notices stay quiet.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, body)
	return m, nil
}

func (e *Email) send(ctx context.Context, m *gomail.Msg) error {
	opts := append(slices.Clip(e.opts), gomail.WithDialContextFunc(e.dialer(ctx)))
	c, err := gomail.NewClient(e.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("email: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		if m.IsDelivered() {
			// The server queued it (250 after DATA); what failed was the
			// RSET or QUIT after. A retry would mail it again.
			return nil
		}
		cerr := ctx.Err()
		if d, ok := ctx.Deadline(); ok && cerr == nil && !time.Now().Before(d) {
			cerr = context.DeadlineExceeded // the conn's deadline can beat ctx's timer
		}
		if cerr != nil {
			return fmt.Errorf("email via %s:%d: %w: %w", e.cfg.Host, e.cfg.Port, cerr, err)
		}
		return fmt.Errorf("email via %s:%d: %w", e.cfg.Host, e.cfg.Port, err)
	}
	return nil
}

// dialer returns go-mail's dial function for one send to ctx: the
// connection it makes never outlives ctx. go-mail bounds only the dial
// with its context, then sets its own deadline (Timeout, afresh before
// the greeting, each command and the message), so a slow server held a
// send for several timeouts, past the dispatcher's deadline and its
// claim on the delivery, which another worker then sent again.
func (e *Email) dialer(ctx context.Context) gomail.DialContextFunc {
	return func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := newCtxConn(ctx, raw)
		if e.cfg.TLS != TLSImplicit {
			return conn, nil
		}
		tc := tls.Client(conn, e.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// ctxConn is a connection whose deadlines never reach past its
// context's deadline, and which times out at once when the context ends.
type ctxConn struct {
	net.Conn
	ctx  context.Context
	stop func() bool
}

func newCtxConn(ctx context.Context, c net.Conn) *ctxConn {
	cc := &ctxConn{Conn: c, ctx: ctx}
	// Wake a read or write blocked now; clamp keeps later deadlines past.
	cc.stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	c.SetDeadline(cc.clamp(time.Time{}))
	return cc
}

// clamp returns the earlier of t (zero: none) and the context's deadline.
func (c *ctxConn) clamp(t time.Time) time.Time {
	if c.ctx.Err() != nil {
		return time.Now()
	}
	if d, ok := c.ctx.Deadline(); ok && (t.IsZero() || d.Before(t)) {
		return d
	}
	return t
}

func (c *ctxConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *ctxConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *ctxConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// String describes the notifier for `tollguard alerts test`, without secrets.
func (e *Email) String() string {
	auth := "no auth"
	if e.cfg.Username != "" {
		auth = "auth as " + e.cfg.Username
	}
	return fmt.Sprintf("smtp %s:%d (tls %s, %s) to %s", e.cfg.Host, e.cfg.Port, e.cfg.TLS, auth, strings.Join(e.cfg.To, ", "))
}
