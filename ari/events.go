package ari

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"

	"github.com/tollguard/tollguard"
)

// maxFrame bounds one event; ARI events are a few kilobytes.
const maxFrame = 1 << 20

// EventsURL returns the events websocket URL: the base URL's events
// resource with app=<App>&subscribeAll=true (registration and non-Stasis
// channel events need subscribeAll), and api_key when Config.APIKey.
func (c *Client) EventsURL() string {
	u, _ := url.Parse(c.cfg.URL) // validated in NewClient
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/events"
	q := url.Values{"app": {c.cfg.App}, "subscribeAll": {"true"}}
	if c.cfg.APIKey {
		q.Set("api_key", c.cfg.User+":"+c.cfg.Password)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// stream is one events websocket connection.
type stream struct {
	ws   *websocket.Conn
	conn *trackedConn
}

// dialEvents opens the events websocket, bounded by the dial and
// request timeouts.
func (c *Client) dialEvents(ctx context.Context) (*stream, error) {
	wsURL := c.EventsURL()
	cfg, err := websocket.NewConfig(wsURL, "http://localhost/")
	if err != nil {
		return nil, fmt.Errorf("events URL %s: %w", redact(wsURL), err)
	}
	if !c.cfg.APIKey {
		cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.cfg.User+":"+c.cfg.Password)))
	}
	host := cfg.Location.Host
	if cfg.Location.Port() == "" {
		port := "80"
		if cfg.Location.Scheme == "wss" {
			port = "443"
		}
		host = net.JoinHostPort(cfg.Location.Hostname(), port)
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 15 * time.Second}
	raw, err := d.DialContext(dctx, "tcp", host)
	if err != nil {
		return nil, tollguard.Errorf(tollguard.EUNAVAILABLE, "cannot connect to Asterisk ARI at %s: %v; check that Asterisk runs and http.conf has enabled=yes with this bindaddr/bindport", host, err)
	}
	if cfg.Location.Scheme == "wss" {
		tc := tls.Client(raw, &tls.Config{ServerName: cfg.Location.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, tollguard.Errorf(tollguard.EUNAVAILABLE, "TLS handshake with ARI at %s: %v", host, err)
		}
		raw = tc
	}
	tc := &trackedConn{Conn: raw}
	tc.touch()
	// The upgrade has no timeout of its own.
	_ = raw.SetDeadline(time.Now().Add(c.cfg.RequestTimeout))
	ws, err := websocket.NewClient(cfg, tc)
	if err != nil {
		raw.Close()
		if errors.Is(err, websocket.ErrBadStatus) {
			// Asterisk answered the upgrade with an error status; REST
			// with the same credentials says which.
			if perr := c.Probe(ctx); perr != nil {
				return nil, perr
			}
			return nil, tollguard.Errorf(tollguard.EUNAVAILABLE, "ARI refused the events websocket %s (a non-101 answer) although REST works; check ari.conf", redact(wsURL))
		}
		return nil, tollguard.Errorf(tollguard.EUNAVAILABLE, "ARI events websocket %s: %v", redact(wsURL), err)
	}
	_ = raw.SetDeadline(time.Time{})
	ws.MaxPayloadBytes = maxFrame
	return &stream{ws: ws, conn: tc}, nil
}

// read returns the next event frame.
func (s *stream) read() ([]byte, error) {
	var b []byte
	err := websocket.Message.Receive(s.ws, &b)
	return b, err
}

// ping sends a websocket ping; Asterisk answers with a pong, which the
// library reads and drops, but which marks the connection as alive.
func (s *stream) ping(timeout time.Duration) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(timeout))
	defer s.conn.SetWriteDeadline(time.Time{})
	// Only the keepalive writes on this connection, so switching the
	// payload type for one frame is safe.
	s.ws.PayloadType = websocket.PingFrame
	_, err := s.ws.Write(nil)
	s.ws.PayloadType = websocket.TextFrame
	return err
}

// close closes the connection without waiting on a dead peer.
func (s *stream) close() {
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = s.ws.Close()
}

// trackedConn remembers when it last read anything (frames, pongs), so
// the keepalive can tell a quiet PBX from a dead connection.
type trackedConn struct {
	net.Conn
	last atomic.Int64
}

func (c *trackedConn) touch() { c.last.Store(time.Now().UnixNano()) }

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *trackedConn) idle() time.Duration { return time.Since(time.Unix(0, c.last.Load())) }

// redact hides an api_key in a URL for logs.
func redact(u string) string {
	if i := strings.Index(u, "api_key="); i >= 0 {
		j := strings.IndexByte(u[i:], '&')
		if j < 0 {
			return u[:i] + "api_key=REDACTED"
		}
		return u[:i] + "api_key=REDACTED" + u[i+j:]
	}
	return u
}

// eventType returns a frame's top-level "type" without decoding it all.
// Asterisk writes "type" first; anything else takes the slow path, which
// reads only the top level. ok is false for frames that are not a JSON
// object with a string type.
func eventType(b []byte) (typ string, ok bool) {
	s := bytes.TrimLeft(b, " \t\r\n")
	if len(s) > 0 && s[0] == '{' {
		s = bytes.TrimLeft(s[1:], " \t\r\n")
		const key = `"type"`
		if bytes.HasPrefix(s, []byte(key)) {
			s = bytes.TrimLeft(s[len(key):], " \t\r\n")
			if len(s) > 0 && s[0] == ':' {
				s = bytes.TrimLeft(s[1:], " \t\r\n")
				if len(s) > 0 && s[0] == '"' {
					if end := bytes.IndexByte(s[1:], '"'); end >= 0 && bytes.IndexByte(s[1:end+1], '\\') < 0 {
						return string(s[1 : end+1]), end > 0
					}
				}
			}
		}
	}
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &probe); err != nil || probe.Type == "" {
		return "", false
	}
	return probe.Type, true
}
