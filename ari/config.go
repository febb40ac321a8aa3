// Package ari connects tollguard to Asterisk's REST Interface: REST
// calls through github.com/CyCoreSystems/ari/v5's native client (never
// its Connect, which can hang forever) with a timeout on every call, and
// its own events websocket reader, which survives the event types
// ari v5.3.1 does not know. The Listener feeds registrations and
// channel events to the root package's judges and detectors.
package ari

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

// DefaultApp is the Stasis application name tollguard registers.
const DefaultApp = "tollguard"

// DefaultResyncInterval is how often registrations are read again
// while connected ([ari] resync_interval).
const DefaultResyncInterval = time.Hour

// DefaultResyncBudget bounds one registration resynchronisation: the
// registration events wait while it runs (a 10 000-endpoint PBX that
// answers in 10 ms a read is read in about 20 s, four reads at a time).
const DefaultResyncBudget = 2 * time.Minute

// Config is how to reach ARI. The daemon fills it from the [ari] config
// section; the password comes from the environment or a file, never a
// flag.
type Config struct {
	// URL is ARI's base URL, e.g. http://127.0.0.1:8088/ari (http.conf's
	// bind address and port, plus ari.conf's prefix).
	URL      string
	User     string
	Password string
	// App is the application name for the events websocket (default
	// "tollguard"). Two clients with one name steal it from each other.
	App string
	// APIKey authenticates the websocket with ?api_key=user:password
	// instead of a Basic Authorization header, for proxies that drop
	// the header. REST calls always use Basic.
	APIKey bool

	RequestTimeout time.Duration // bound on every REST call (default 5s)
	DialTimeout    time.Duration // TCP connect (default 3s)
	ReconnectMin   time.Duration // first reconnect delay (default 500ms)
	ReconnectMax   time.Duration // reconnect delay cap (default 30s)
	PingInterval   time.Duration // websocket keepalive (default 20s)
	// SettleGrace is how long a gated call's end waits for the
	// dialplan's own hangup request to settle it before the listener
	// settles it from the events (default 10s).
	SettleGrace time.Duration
	// ResyncWorkers is how many REST reads a resynchronisation runs at
	// once (default 4).
	ResyncWorkers int
	// ResyncInterval is how often registrations are resynchronised
	// while connected (default 1h): Asterisk drops the contacts of an AOR
	// deleted (through ARI or a config reload) without a
	// ContactStatusChange, and they stayed live here until the next
	// reconnect. A pass reads every endpoint, its AORs and contacts (1 +
	// 2 per endpoint + 1 per contact REST reads, ~3000 on a 1000-phone
	// PBX, ResyncWorkers at a time).
	ResyncInterval time.Duration
	// ResyncBudget bounds how long one resynchronisation feeds
	// endpoints to its readers (default 2m); the reads under way get one
	// RequestTimeout more. What is left is read by the next pass, which
	// runs once the queued registration events are handled.
	ResyncBudget time.Duration
	// MaxInFlight bounds REST calls in flight through the library
	// client, whose HTTP client has no timeout of its own (default 16).
	MaxInFlight int
}

// WithDefaults returns c with its zero settings set to the defaults.
func (c Config) WithDefaults() Config {
	if c.App == "" {
		c.App = DefaultApp
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RequestTimeout, 5*time.Second)
	def(&c.DialTimeout, 3*time.Second)
	def(&c.ReconnectMin, 500*time.Millisecond)
	def(&c.ReconnectMax, 30*time.Second)
	def(&c.PingInterval, 20*time.Second)
	if c.SettleGrace < 0 {
		c.SettleGrace = 0
	} else if c.SettleGrace == 0 {
		c.SettleGrace = 10 * time.Second
	}
	if c.ResyncWorkers <= 0 {
		c.ResyncWorkers = 4
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = DefaultResyncInterval
	}
	if c.ResyncBudget <= 0 {
		c.ResyncBudget = DefaultResyncBudget
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 16
	}
	c.URL = strings.TrimRight(c.URL, "/")
	return c
}

// Validate reports what is wrong with c, for the admin.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return tollguard.Errorf(tollguard.EINVALID, "ari url %q: want ARI's base URL, e.g. http://127.0.0.1:8088/ari (http.conf bindaddr:bindport plus /ari)", c.URL)
	}
	if u.User != nil {
		return tollguard.Errorf(tollguard.EINVALID, "ari url: put the user in [ari] user and the password in TOLLGUARD_ARI_PASSWORD or password_file, not in the URL")
	}
	if c.User == "" {
		return tollguard.Errorf(tollguard.EINVALID, "ari user is empty: give the user of an [user] section in /etc/asterisk/ari.conf")
	}
	if c.Password == "" {
		return tollguard.Errorf(tollguard.EINVALID, "ari password is empty: set TOLLGUARD_ARI_PASSWORD or [ari] password_file")
	}
	if strings.ContainsAny(c.App, " /?&#") {
		return tollguard.Errorf(tollguard.EINVALID, "ari app %q: use letters, digits, '-' and '_'", c.App)
	}
	if c.ReconnectMax < c.ReconnectMin {
		return tollguard.Errorf(tollguard.EINVALID, "ari reconnect_max %s is shorter than reconnect_min %s", c.ReconnectMax, c.ReconnectMin)
	}
	return nil
}

func (c Config) String() string {
	return fmt.Sprintf("%s as %s (app %s)", c.URL, c.User, c.App)
}
