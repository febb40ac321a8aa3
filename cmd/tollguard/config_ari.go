package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
)

// ARIConfig is the [ari] section: where Asterisk's REST Interface is and
// how to log in. With enabled = true, `serve` runs the ARI listener
// (registrations, channel detectors, settlement from events) and the
// admin commands that change Asterisk use ARI. The password comes from
// TOLLGUARD_ARI_PASSWORD or password_file, never from this file or a
// flag.
type ARIConfig struct {
	Enabled      bool   `toml:"enabled"`
	URL          string `toml:"url"` // http://127.0.0.1:8088/ari
	User         string `toml:"user"`
	PasswordFile string `toml:"password_file"`
	App          string `toml:"app"`     // Stasis application name; default tollguard
	APIKey       bool   `toml:"api_key"` // authenticate the websocket with ?api_key= instead of a header

	RequestTimeout Duration `toml:"request_timeout"`
	DialTimeout    Duration `toml:"dial_timeout"`
	ReconnectMin   Duration `toml:"reconnect_min"`
	ReconnectMax   Duration `toml:"reconnect_max"`
	PingInterval   Duration `toml:"ping_interval"`
	// SettleGrace: how long a gated call's end waits for the dialplan's
	// hangup request before the listener settles it from the events.
	SettleGrace Duration `toml:"settle_grace"`
	// ResyncInterval: how often the listener reads every contact again
	// while connected (Asterisk drops some without an event).
	ResyncInterval Duration `toml:"resync_interval"`
	// ContactRetentionDays keeps the addresses and user agents each
	// extension registered from (the known ones behind "new IP" alerts)
	// this long after last seen; removed contacts go after a day.
	ContactRetentionDays int `toml:"contact_retention_days"`
	// HangupBlockedCalls: when a detector, the registration lockdown,
	// `ext block` or `account intl-block` sets a block, hang up the
	// calls in progress it would have denied.
	HangupBlockedCalls bool `toml:"hangup_blocked_calls"`

	password string // from TOLLGUARD_ARI_PASSWORD
}

// The bounds of [ari] resync_interval.
const (
	minResyncInterval = 5 * time.Minute
	maxResyncInterval = 24 * time.Hour
)

func (a *ARIConfig) defaults() {
	*a = ARIConfig{
		URL: "http://127.0.0.1:8088/ari", User: "tollguard", App: ari.DefaultApp,
		RequestTimeout: Duration{5 * time.Second}, DialTimeout: Duration{3 * time.Second},
		ReconnectMin: Duration{500 * time.Millisecond}, ReconnectMax: Duration{30 * time.Second},
		PingInterval: Duration{20 * time.Second}, SettleGrace: Duration{10 * time.Second},
		ResyncInterval:       Duration{ari.DefaultResyncInterval},
		ContactRetentionDays: 180, HangupBlockedCalls: true,
	}
}

func (a *ARIConfig) validate(c *Config, errs *ConfigErrors) {
	at := func(msg string, key ...string) { c.errAt(errs, msg, append([]string{"ari"}, key...)...) }
	if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		at(fmt.Sprintf("ari url %q: want ARI's base URL, e.g. http://127.0.0.1:8088/ari (http.conf bindaddr:bindport, then /ari)", a.URL), "url")
	} else if strings.Trim(u.Path, "/") == "" {
		// Asterisk serves ARI below /ari (and http.conf's prefix).
		at(fmt.Sprintf("ari url %q has no path: ARI's base URL ends in /ari, e.g. http://127.0.0.1:8088/ari", a.URL), "url")
	} else if u.User != nil {
		at("ari url must not carry credentials: set [ari] user, and the password in TOLLGUARD_ARI_PASSWORD or password_file", "url")
	}
	if a.App == "" {
		at("ari app is empty: give the Stasis application name (default tollguard)", "app")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"request_timeout", a.RequestTimeout.Duration, 100 * time.Millisecond}, {"dial_timeout", a.DialTimeout.Duration, 100 * time.Millisecond},
		{"reconnect_min", a.ReconnectMin.Duration, 10 * time.Millisecond}, {"reconnect_max", a.ReconnectMax.Duration, 10 * time.Millisecond},
		{"ping_interval", a.PingInterval.Duration, time.Second},
	} {
		if d.v < d.min {
			at(fmt.Sprintf("ari %s %s: want at least %s", d.name, d.v, d.min), d.name)
		}
	}
	// The sweep leaves a gone call to the listener for twice this: hours
	// would hold a lost call's credit that long.
	if a.SettleGrace.Duration < 0 || a.SettleGrace.Duration > 10*time.Minute {
		at(fmt.Sprintf("ari settle_grace %s: want between 0s and 10m", a.SettleGrace.Duration), "settle_grace")
	}
	// Shorter, a pass (3 REST reads per phone) would run all the time;
	// longer, a contact Asterisk dropped stays live here for a day.
	if a.ResyncInterval.Duration < minResyncInterval || a.ResyncInterval.Duration > maxResyncInterval {
		at(fmt.Sprintf("ari resync_interval %s: want between %s and %s (default %s)", a.ResyncInterval.Duration, minResyncInterval, maxResyncInterval, ari.DefaultResyncInterval), "resync_interval")
	}
	if a.ReconnectMax.Duration < a.ReconnectMin.Duration {
		at("ari reconnect_max must not be shorter than reconnect_min", "reconnect_max")
	}
	if msg := checkDays("ari contact_retention_days", a.ContactRetentionDays, 1); msg != "" {
		at(msg, "contact_retention_days")
	}
	if !a.Enabled {
		return
	}
	if a.User == "" {
		at("ari user is empty: give the user of a [user] section in /etc/asterisk/ari.conf", "user")
	}
	// The password may come from the environment, which is read after
	// the file is checked; serve and the commands say so if it is missing.
	if a.PasswordFile != "" {
		if err := checkSecretFile(a.PasswordFile); err != nil {
			at(fmt.Sprintf("ari password_file: %v", err), "password_file")
		}
	}
}

// applyEnv takes the password from the environment; it wins over
// password_file.
func (a *ARIConfig) applyEnv(getenv func(string) string) {
	if v := getenv("TOLLGUARD_ARI_PASSWORD"); v != "" {
		a.password = v
	}
}

func (a *ARIConfig) maskSecrets() {
	if a.password != "" {
		a.password = "********"
	}
}

// ClientConfig returns the ari package's configuration, reading the
// password file if the environment gave none.
func (a *ARIConfig) ClientConfig() (ari.Config, error) {
	pw := a.password
	if pw == "" && a.PasswordFile != "" {
		var err error
		if pw, err = readSecretFile(a.PasswordFile); err != nil {
			return ari.Config{}, tollguard.Errorf(tollguard.EINVALID, "ari password_file: %v", err)
		}
	}
	cfg := ari.Config{
		URL: a.URL, User: a.User, Password: pw, App: a.App, APIKey: a.APIKey,
		RequestTimeout: a.RequestTimeout.Duration, DialTimeout: a.DialTimeout.Duration,
		ReconnectMin: a.ReconnectMin.Duration, ReconnectMax: a.ReconnectMax.Duration,
		PingInterval: a.PingInterval.Duration, SettleGrace: a.SettleGrace.Duration,
		ResyncInterval: a.ResyncInterval.Duration,
	}
	if a.SettleGrace.Duration == 0 {
		cfg.SettleGrace = -1 // settle_grace = "0s": settle from the events at once
	}
	return cfg.WithDefaults(), cfg.WithDefaults().Validate()
}

// Client returns an ARI REST client; nil, nil when [ari] is off.
func (a *ARIConfig) Client() (*ari.Client, error) {
	if !a.Enabled {
		return nil, nil
	}
	cfg, err := a.ClientConfig()
	if err != nil {
		return nil, err
	}
	return ari.NewClient(cfg)
}

// The admin commands that change Asterisk (ext add, rotate, purge,
// restore, selftest) get ARI from here.
func init() {
	ariClient = func(app *App) (tollguard.Asterisk, func(), error) {
		c, err := app.Config.ARI.Client()
		if err != nil || c == nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	}
}

// DetectorsConfig is the [detectors] section: each channel detector's
// threshold, window and action (alert, intl_block, block_extension) for
// every account; `tollguard detectors set` overrides them per account.
type DetectorsConfig struct {
	// SweepDigits: numbers differing only in their last sweep_digits
	// digits are "under one prefix" for the sweep detector.
	SweepDigits    int                `toml:"sweep_digits"`
	BurstExt       DetectorRuleConfig `toml:"burst_ext"`
	BurstAcct      DetectorRuleConfig `toml:"burst_acct"`
	ConcurrentExt  DetectorRuleConfig `toml:"concurrent_ext"`
	ConcurrentAcct DetectorRuleConfig `toml:"concurrent_acct"`
	Sweep          DetectorRuleConfig `toml:"sweep"`
	HighRisk       DetectorRuleConfig `toml:"high_risk"`
	Ungated        DetectorRuleConfig `toml:"ungated"`
	LongIntl       DetectorRuleConfig `toml:"long_intl"`
}

// DetectorRuleConfig is one detector's rule; threshold 0 turns it off.
type DetectorRuleConfig struct {
	Threshold int      `toml:"threshold"`
	Window    Duration `toml:"window"`
	Action    string   `toml:"action"`
	Duration  Duration `toml:"duration"` // long_intl: the call length that counts
}

func (d *DetectorsConfig) rules() map[string]*DetectorRuleConfig {
	return map[string]*DetectorRuleConfig{
		tollguard.DetectBurstExt: &d.BurstExt, tollguard.DetectBurstAcct: &d.BurstAcct,
		tollguard.DetectConcurrentExt: &d.ConcurrentExt, tollguard.DetectConcurrentAcct: &d.ConcurrentAcct,
		tollguard.DetectSweep: &d.Sweep, tollguard.DetectHighRisk: &d.HighRisk,
		tollguard.DetectUngated: &d.Ungated, tollguard.DetectLongIntl: &d.LongIntl,
	}
}

func (d *DetectorsConfig) defaults() {
	*d = DetectorsConfig{SweepDigits: 3}
	def := tollguard.DefaultDetectorRules()
	for name, r := range d.rules() {
		*r = DetectorRuleConfig{Threshold: def[name].Threshold, Window: Duration{def[name].Window}, Action: string(def[name].Action), Duration: Duration{def[name].Duration}}
	}
}

func (d *DetectorsConfig) validate(c *Config, errs *ConfigErrors) {
	if d.SweepDigits < 1 || d.SweepDigits > 8 {
		c.errAt(errs, fmt.Sprintf("detectors sweep_digits %d: want between 1 and 8", d.SweepDigits), "detectors", "sweep_digits")
	}
	for name, r := range d.rules() {
		if err := tollguard.ValidateDetectorRule(name, r.rule()); err != nil {
			c.errAt(errs, tollguard.ErrorMessage(err), "detectors", name)
		}
	}
}

func (r DetectorRuleConfig) rule() tollguard.DetectorRule {
	return tollguard.DetectorRule{Threshold: r.Threshold, Window: r.Window.Duration, Action: tollguard.Action(r.Action), Duration: r.Duration.Duration}
}

// Settings returns the detectors' settings.
func (d *DetectorsConfig) Settings() tollguard.DetectorSettings {
	s := tollguard.DetectorSettings{SweepDigits: d.SweepDigits, Rules: map[string]tollguard.DetectorRule{}}
	for name, r := range d.rules() {
		s.Rules[name] = r.rule()
	}
	return s
}
