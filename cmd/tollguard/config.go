package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tollguard/tollguard"
)

// Config is tollguard's TOML configuration. Every setting has a safe
// default, so the file is optional; contrib/tollguard.toml documents
// each one. Secrets never come from flags: use the environment
// (TOLLGUARD_ARI_PASSWORD, TOLLGUARD_SMTP_PASSWORD,
// TOLLGUARD_WEBHOOK_SECRET) or *_file settings.
type Config struct {
	DB        string          `toml:"db"`
	Log       LogConfig       `toml:"log"`
	AGI       AGIConfig       `toml:"agi"`
	Gate      GateConfig      `toml:"gate"`
	Metrics   MetricsConfig   `toml:"metrics"`
	ARI       ARIConfig       `toml:"ari"`
	Detectors DetectorsConfig `toml:"detectors"`
	Alerts    AlertsConfig    `toml:"alerts"`
	Audit     AuditConfig     `toml:"audit"`

	path  string
	lines []string // the file, for line numbers in errors
	// fromEnv names the environment variable that set a setting, by key.
	fromEnv map[string]string
}

// ShutdownWait is how long serve waits on SIGTERM for sessions in
// flight: shutdown_timeout, but never less than a session may take to
// end by its own deadline. Cut short, a hangup session's settlement
// would fail against the closed database and its call be charged later
// for the time tollguard was down.
func (a AGIConfig) ShutdownWait() time.Duration {
	return max(a.ShutdownTimeout.Duration, a.SessionTimeout.Duration+a.DecisionTimeout.Duration)
}

// LogConfig sets the log format and level.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// AGIConfig is the FastAGI listener.
type AGIConfig struct {
	Enabled         bool     `toml:"enabled"`
	Listen          string   `toml:"listen"`
	Allowed         []string `toml:"allowed"`       // client CIDRs
	AllowedUsers    []string `toml:"allowed_users"` // users a client on this host must run as (Asterisk's); names or uids
	MaxSessions     int      `toml:"max_sessions"`
	SessionTimeout  Duration `toml:"session_timeout"`
	EnvTimeout      Duration `toml:"env_timeout"`
	DecisionTimeout Duration `toml:"decision_timeout"`
	DenyAction      string   `toml:"deny_action"` // hangup or return
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// RequireArgCopies refuses requests from includes older than the
	// argument copies (forgeable through a caller ID with a line break).
	RequireArgCopies bool `toml:"require_arg_copies"`
}

// GateConfig tunes the decision policy.
type GateConfig struct {
	DefaultCountry string   `toml:"default_country"`
	AllowUnknown   bool     `toml:"allow_unknown"`
	DefaultAccount string   `toml:"default_account"`
	SelftestNumber string   `toml:"selftest_number"`
	FreeShortCodes []string `toml:"free_short_codes"` // short codes the trunk carries free, as dialled
	// AfterHoursGrace: how long past the business-hours close a call of
	// a class closed after it may run.
	AfterHoursGrace Duration `toml:"after_hours_grace"`
	// InternalCallsGated: the dialplan gates internal calls too.
	InternalCallsGated bool `toml:"internal_calls_gated"`
	// ACLRequiresSource: a call with no source address, or a transfer by
	// another phone, charged to an extension with an access list, is
	// denied, not let past the list.
	ACLRequiresSource bool     `toml:"acl_requires_source"`
	SweepInterval     Duration `toml:"sweep_interval"`
	SweepGrace        Duration `toml:"sweep_grace"`
	RetentionDays     int      `toml:"retention_days"`
}

// PolicySettings are the [gate] settings the policy takes, at start and
// on every reload.
func (g GateConfig) PolicySettings() tollguard.PolicySettings {
	return tollguard.PolicySettings{
		DefaultPlan:     tollguard.NumberPlan{Country: g.DefaultCountry},
		AllowUnknown:    g.AllowUnknown,
		DefaultAccount:  g.DefaultAccount,
		SelftestNumber:  g.SelftestNumber,
		FreeShortCodes:  g.FreeShortCodes,
		AfterHoursGrace: g.AfterHoursGrace.Duration,
		// The ARI listener judges the calls it sees ring our phones
		// itself; this is the gate's view only.
		InternalCallsGated: g.InternalCallsGated,
		ACLRequiresSource:  g.ACLRequiresSource,
	}
}

// MetricsConfig is the Prometheus and health endpoint.
type MetricsConfig struct {
	Enabled bool   `toml:"enabled"`
	Listen  string `toml:"listen"`
}

// Duration is a time.Duration written as "300ms", "5s", "2h".
type Duration struct{ time.Duration }

// secretSettings are the secrets an admin may try to write into the
// config file, and where they go instead.
var secretSettings = map[string]string{
	"ari.password":          "the file [ari] password_file names, or TOLLGUARD_ARI_PASSWORD",
	"alerts.email.password": "the file [alerts.email] password_file names, or TOLLGUARD_SMTP_PASSWORD",
	"alerts.webhook.secret": "the file [alerts.webhook] secret_file names, or TOLLGUARD_WEBHOOK_SECRET",
}

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write 300ms, 5s, 2h)", b)
	}
	if v < 0 {
		return fmt.Errorf("%q: durations must not be negative", b)
	}
	d.Duration = v
	return nil
}

// MarshalText prints the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig returns the safe defaults: loopback-only listeners, the
// gate failing closed, no ARI until configured.
func DefaultConfig() *Config {
	c := &Config{
		DB:  "./tollguard.db",
		Log: LogConfig{Level: "info", Format: "text"},
		AGI: AGIConfig{
			Enabled: true, Listen: "127.0.0.1:4573", Allowed: []string{"127.0.0.1/32", "::1/128"}, AllowedUsers: []string{},
			MaxSessions: 512, SessionTimeout: Duration{10 * time.Second}, EnvTimeout: Duration{time.Second},
			DecisionTimeout: Duration{300 * time.Millisecond},
			DenyAction:      "hangup", ShutdownTimeout: Duration{10 * time.Second},
		},
		Gate: GateConfig{
			DefaultCountry: "GB", SelftestNumber: "0099999999999", FreeShortCodes: []string{}, AfterHoursGrace: Duration{15 * time.Minute},
			SweepInterval: Duration{time.Minute}, SweepGrace: Duration{2 * time.Minute}, RetentionDays: 90,
		},
		Metrics: MetricsConfig{Enabled: true, Listen: "127.0.0.1:9464"},
	}
	c.ARI.defaults()
	c.Detectors.defaults()
	c.Alerts.defaults()
	c.Audit.defaults()
	return c
}

// ConfigError is a config problem with the line it is on.
type ConfigError struct {
	Path string
	Line int // 0 when unknown
	Col  int // 0 when unknown or the whole line
	Msg  string
}

func (e ConfigError) Error() string {
	if e.Line > 0 && e.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// ConfigErrors is every problem found in a config file.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return "config has errors:\n  " + strings.Join(s, "\n  ")
}

var tomlLineRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// LoadConfig reads path over the defaults ("" means defaults only) and
// validates the result. Unknown settings are errors: a typo must not
// silently leave a default in place.
func LoadConfig(path string) (*Config, error) {
	c := DefaultConfig()
	if path == "" {
		return c, c.Validate()
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return nil, tollguard.Errorf(tollguard.EINVALID, "read config: %v: the config must be readable by the user tollguard runs as "+
			"(chown tollguard %s; it stays mode 0600)", err, path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, tollguard.Errorf(tollguard.EINVALID, "read config: %v: give an existing file with --config or TOLLGUARD_CONFIG "+
			"(contrib/tollguard.toml is a commented example)", err)
	case err != nil:
		return nil, tollguard.Errorf(tollguard.EINVALID, "read config: %v", err)
	}
	// Any local user could rewrite the gate's settings (who may connect,
	// where alerts go) in a world-writable config.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o002 != 0 {
		return nil, tollguard.Errorf(tollguard.EINVALID, "config %s has mode %04o: every local user can change it; chmod 600 it (owned by the user tollguard runs as)", path, fi.Mode().Perm())
	}
	if err := checkConfigPath(path); err != nil {
		return nil, tollguard.Errorf(tollguard.EINVALID, "config %s: %v", path, err)
	}
	return parseConfig(path, string(b), c)
}

// blank reports whether the config was read from a file holding nothing
// but white space: every default, as a file emptied by a full disk or an
// editor that stopped mid-save reads.
func (c *Config) blank() bool {
	return c.path != "" && strings.TrimSpace(strings.Join(c.lines, "\n")) == ""
}

func parseConfig(path, text string, c *Config) (*Config, error) {
	c.path = path
	c.lines = strings.Split(text, "\n")
	// A value of the wrong type stops the TOML reader at its line: that
	// line is set aside and the file read again, so one check reports
	// every such line, the unknown settings and the bad values together.
	var pe toml.ParseError
	raw := map[string]any{}
	if _, err := toml.Decode(text, &raw); errors.As(err, &pe) {
		line, col := syntaxPosition(text, pe.Position)
		return nil, wrapInvalid(ConfigErrors{{Path: path, Line: line, Col: col, Msg: syntaxMessage(pe.Message)}})
	}
	typeErrs := c.tableErrors(raw)
	lines := append([]string(nil), c.lines...)
	var md toml.MetaData
	for {
		var err error
		md, err = toml.Decode(strings.Join(lines, "\n"), c)
		if err == nil {
			break
		}
		// The syntax is sound (checked above): this is a value that does
		// not fit its setting, with its line. Type mismatches come as
		// plain errors: "toml: line 2 (last key "agi.max_sessions"):
		// incompatible types: ...", a setting's own parser's as a
		// ParseError.
		line, msg := 0, err.Error()
		if errors.As(err, &pe) {
			line, msg = pe.Position.Line, pe.Message
			if pe.LastKey != "" {
				msg = pe.LastKey + ": " + msg
			}
		} else if m := tomlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = fmt.Sprintf("%s: %s", m[2], typeHint(m[2], m[3]))
			if strings.Contains(m[3], "expected table but found") {
				// "type mismatch for main.AGIConfig: ..." names Go types.
				msg = sectionWanted(m[2])
			}
		}
		typeErrs = append(typeErrs, ConfigError{Path: path, Line: line, Msg: msg})
		if line < 1 || line > len(lines) || lines[line-1] == "" || len(typeErrs) >= maxTypeErrors {
			return nil, wrapInvalid(typeErrs)
		}
		lines[line-1] = ""
		if _, err := toml.Decode(strings.Join(lines, "\n"), &map[string]any{}); err != nil {
			// Setting the line aside broke the syntax (a value over
			// several lines): report what was found.
			return nil, wrapInvalid(typeErrs)
		}
	}
	errs := typeErrs
	und := md.Undecoded()
	sort.Slice(und, func(i, j int) bool { return und[i].String() < und[j].String() })
	for _, k := range und {
		msg := fmt.Sprintf("unknown setting %q (see contrib/tollguard.toml for every setting)", k.String())
		if where, ok := secretSettings[k.String()]; ok {
			msg = fmt.Sprintf("%s: secrets do not belong in the config file; put it in %s", k.String(), where)
		}
		errs = append(errs, ConfigError{Path: path, Line: c.lineOf(k...), Msg: msg})
	}
	// The values of the known settings are checked too, so one run
	// reports both kinds of mistake.
	if errs = append(errs, c.validate()...); len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, wrapInvalid(errs)
	}
	return c, nil
}

// tableSettings are the settings that are tables of the admin's own
// keys. The TOML library leaves such a setting at its default, with no
// error, when the file gives it a value that is no table
// (schedules = "off"), so they are checked here.
var tableSettings = [][]string{
	{"audit", "schedules"},
	{"audit", "ext", "endpoint"},
	{"audit", "ext", "aor"},
}

func (c *Config) tableErrors(raw map[string]any) ConfigErrors {
	var errs ConfigErrors
	for _, key := range tableSettings {
		v, ok := any(raw), true
		for _, k := range key {
			m, isMap := v.(map[string]any)
			if !isMap {
				ok = false
				break
			}
			if v, ok = m[k]; !ok {
				break
			}
		}
		if _, isMap := v.(map[string]any); ok && !isMap {
			name := strings.Join(key, ".")
			errs = append(errs, ConfigError{Path: c.path, Line: c.lineOf(key...), Msg: sectionWanted(name)})
		}
	}
	return errs
}

func sectionWanted(name string) string {
	return fmt.Sprintf("%s: want a section [%s] with one setting a line (see contrib/tollguard.toml), not a value or a [[%s]] list", name, name, name)
}

// typeHint rewords the TOML library's type mismatch as what to write,
// with the setting's own name in the example (an example naming another
// setting read as advice to write that one).
func typeHint(key, msg string) string {
	name := key[strings.LastIndex(key, ".")+1:]
	want := map[string]string{
		"integer": "a whole number, without quotes (" + name + " = 512)",
		"string":  `a quoted string (` + name + ` = "...")`,
		"boolean": "true or false, without quotes (" + name + " = true)",
		"slice":   `a list in brackets (` + name + ` = ["..."])`,
		// Duration, the one setting type read from text.
		"primitive (string-like)": `a quoted duration (` + name + ` = "5s"; "300ms", "2h")`,
	}
	_, dest, ok := strings.Cut(msg, "destination has type ")
	if w, known := want[dest]; ok && known {
		return "want " + w
	}
	return msg
}

// maxTypeErrors bounds the re-reads of a file full of wrong types.
const maxTypeErrors = 50

func wrapInvalid(errs ConfigErrors) error {
	return &invalidConfig{errs: errs, err: &tollguard.Error{Code: tollguard.EINVALID, Message: errs.Error()}}
}

// invalidConfig is an EINVALID error that keeps each problem, for
// `config check --json`.
type invalidConfig struct {
	errs ConfigErrors
	err  *tollguard.Error
}

func (e *invalidConfig) Error() string { return e.err.Error() }
func (e *invalidConfig) Unwrap() error { return e.err }

// lineOf finds the line of a key path ("agi", "allowed") in the file, so
// errors found after decoding still point at a line. 0 if not found.
func (c *Config) lineOf(key ...string) int {
	if len(key) == 0 {
		return 0
	}
	section := strings.Join(key[:len(key)-1], ".")
	name := key[len(key)-1]
	cur := ""
	for i, l := range c.lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			cur = strings.Trim(strings.TrimSpace(strings.SplitN(t, "#", 2)[0]), "[] ")
			if cur == strings.Join(key, ".") { // the key is this table
				return i + 1
			}
			continue
		}
		if cur != section {
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok && strings.Trim(strings.TrimSpace(k), `"`) == name {
			return i + 1
		}
	}
	if len(key) > 1 {
		return c.lineOf(key[:len(key)-1]...)
	}
	return 0
}

// errAt records a validation problem at a key: at its line in the
// file, or at the environment variable that set it (ApplyEnv).
func (c *Config) errAt(errs *ConfigErrors, msg string, key ...string) {
	if name, ok := c.fromEnv[strings.Join(key, ".")]; ok {
		*errs = append(*errs, ConfigError{Path: name + " (environment)", Msg: msg})
		return
	}
	*errs = append(*errs, ConfigError{Path: c.displayPath(), Line: c.lineOf(key...), Msg: msg})
}

func (c *Config) displayPath() string {
	if c.path == "" {
		return "config"
	}
	return c.path
}

// Validate checks every setting and returns all problems at once.
func (c *Config) Validate() error {
	if errs := c.validate(); len(errs) > 0 {
		return wrapInvalid(errs)
	}
	return nil
}

// validate returns every problem with the settings' values.
func (c *Config) validate() ConfigErrors {
	var errs ConfigErrors
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		c.errAt(&errs, fmt.Sprintf("log level %q: want debug, info, warn or error", c.Log.Level), "log", "level")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		c.errAt(&errs, fmt.Sprintf("log format %q: want text or json", c.Log.Format), "log", "format")
	}
	if strings.TrimSpace(c.DB) == "" {
		// A blank path (TOLLGUARD_DB=" " from an unset shell variable)
		// would open a new database named " " in the current directory.
		c.errAt(&errs, fmt.Sprintf("db %q is empty: give the SQLite file's path", c.DB), "db")
	}
	if msg := listenProblem(c.AGI.Listen, "127.0.0.1:4573"); msg != "" {
		c.errAt(&errs, fmt.Sprintf("agi listen %q: %s", c.AGI.Listen, msg), "agi", "listen")
	}
	if _, err := c.AGI.AllowedPrefixes(); err != nil {
		c.errAt(&errs, err.Error(), "agi", "allowed")
	}
	if _, err := c.AGI.AllowedUIDs(); err != nil {
		c.errAt(&errs, err.Error(), "agi", "allowed_users")
	}
	if c.AGI.MaxSessions <= 0 {
		c.errAt(&errs, "agi max_sessions must be at least 1", "agi", "max_sessions")
	}
	if c.AGI.DecisionTimeout.Duration <= 0 || c.AGI.DecisionTimeout.Duration > 5*time.Second {
		c.errAt(&errs, fmt.Sprintf("agi decision_timeout %s: want between 1ms and 5s (Asterisk waits for the gate with no timeout of its own)", c.AGI.DecisionTimeout), "agi", "decision_timeout")
	}
	if c.AGI.EnvTimeout.Duration <= 0 || c.AGI.EnvTimeout.Duration > c.AGI.SessionTimeout.Duration {
		c.errAt(&errs, "agi env_timeout must be positive and at most session_timeout (Asterisk sends the env block as soon as it connects)", "agi", "env_timeout")
	}
	if c.AGI.SessionTimeout.Duration < c.AGI.DecisionTimeout.Duration {
		c.errAt(&errs, "agi session_timeout must be longer than decision_timeout", "agi", "session_timeout")
	}
	if c.AGI.DenyAction != "hangup" && c.AGI.DenyAction != "return" {
		c.errAt(&errs, fmt.Sprintf("agi deny_action %q: want hangup or return", c.AGI.DenyAction), "agi", "deny_action")
	}
	if _, err := tollguard.PlanFor(c.Gate.DefaultCountry); err != nil || len(c.Gate.DefaultCountry) != 2 {
		c.errAt(&errs, fmt.Sprintf("gate default_country %q: want an ISO 3166 code libphonenumber knows, such as GB or US (the United Kingdom is GB, not UK)", c.Gate.DefaultCountry), "gate", "default_country")
	}
	// selftest originates a call to this number in every gated context:
	// one the include dials without asking (an emergency number) would
	// reach the emergency services on every run.
	if st := c.Gate.SelftestNumber; st != "" && (tollguard.IsEmergency(st, c.Gate.DefaultCountry) || len(strings.Trim(st, "+#*")) < 6) {
		c.errAt(&errs, fmt.Sprintf("gate selftest_number %q: want a full number nobody answers, never an emergency number or a short code (default 0099999999999)", st), "gate", "selftest_number")
	}
	for _, sc := range c.Gate.FreeShortCodes {
		if sc == "" || len(sc) > 8 || strings.Trim(sc, "0123456789") != "" {
			c.errAt(&errs, fmt.Sprintf("gate free_short_codes %q: want a short code's digits as dialled, such as \"711\"", sc), "gate", "free_short_codes")
		}
	}
	if msg := checkDays("gate retention_days", c.Gate.RetentionDays, 1); msg != "" {
		c.errAt(&errs, msg, "gate", "retention_days")
	}
	if g := c.Gate.AfterHoursGrace.Duration; g > 12*time.Hour {
		c.errAt(&errs, fmt.Sprintf("gate after_hours_grace %s: want at most 12h (default 15m; 0s ends calls at the close)", g), "gate", "after_hours_grace")
	}
	if g := c.Gate.SweepGrace.Duration; g < 0 || g > time.Hour {
		c.errAt(&errs, fmt.Sprintf("gate sweep_grace %s: want between 0s and 1h (default 2m)", g), "gate", "sweep_grace")
	}
	if c.Gate.SweepInterval.Duration < 100*time.Millisecond {
		// Each sweep lists the open calls and asks ARI about each one.
		c.errAt(&errs, fmt.Sprintf("gate sweep_interval %s: want at least 100ms (default 1m)", c.Gate.SweepInterval), "gate", "sweep_interval")
	}
	if msg := listenProblem(c.Metrics.Listen, "127.0.0.1:9464"); c.Metrics.Enabled && msg != "" {
		c.errAt(&errs, fmt.Sprintf("metrics listen %q: %s", c.Metrics.Listen, msg), "metrics", "listen")
	}
	c.ARI.validate(c, &errs)
	c.Detectors.validate(c, &errs)
	c.Alerts.validate(c, &errs)
	c.Audit.validate(c, &errs)
	return errs
}

// listenProblem says what is wrong with s as a listen address, or ""
// if net.Listen takes it, so that config check refuses what serve
// would; example is a good address for the message.
func listenProblem(s, example string) string {
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return "want host:port with a port from 0 to 65535, e.g. " + example
	}
	// Digits and dots that are no address (256.1.1.1, 10.0.0) would be
	// looked up as a host name, and serve fail with "no such host".
	if host != "" && strings.Trim(host, "0123456789.") == "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Sprintf("host %q is no IP address (four numbers from 0 to 255, without leading zeros), so it would be looked up as a host name: give an address, e.g. %s", host, example)
		}
	}
	return ""
}

// maxDays bounds every *_days setting. A hundred years already means
// "never"; much more overflows time.Duration (292 years) once turned
// into one, and "never" would become minutes: stale_days = 999999
// flagged every extension stale.
const maxDays = 36500

// checkDays returns the message for a *_days setting out of
// [least, maxDays], or "".
func checkDays(name string, n, least int) string {
	if n < least || n > maxDays {
		return fmt.Sprintf("%s %d: want between %d and %d", name, n, least, maxDays)
	}
	return ""
}

// ApplyEnv applies the environment: TOLLGUARD_DB, TOLLGUARD_AGI_ADDR,
// TOLLGUARD_ARI_URL and the secrets of each section.
func (c *Config) ApplyEnv(getenv func(string) string) {
	// The settings the environment sets over the file, by key: an
	// error in one names the variable, not the file's line (errAt).
	for _, e := range []struct {
		key, name string
		to        *string
	}{
		{"db", "TOLLGUARD_DB", &c.DB},
		{"agi.listen", "TOLLGUARD_AGI_ADDR", &c.AGI.Listen},
		{"ari.url", "TOLLGUARD_ARI_URL", &c.ARI.URL},
	} {
		if v := getenv(e.name); v != "" {
			*e.to = v
			if c.fromEnv == nil {
				c.fromEnv = map[string]string{}
			}
			c.fromEnv[e.key] = e.name
		}
	}
	c.ARI.applyEnv(getenv)
	c.Alerts.applyEnv(getenv)
}

// AllowedUIDs resolves allowed_users (names or numeric uids) to uids.
func (a AGIConfig) AllowedUIDs() ([]uint32, error) {
	var out []uint32
	for _, name := range a.AllowedUsers {
		id := name
		if _, err := strconv.ParseUint(name, 10, 32); err != nil {
			u, err := user.Lookup(name)
			if err != nil {
				return nil, fmt.Errorf("agi allowed_users %q: no such user on this host (the user Asterisk runs as, e.g. asterisk)", name)
			}
			id = u.Uid
		}
		uid, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("agi allowed_users %q: uid %q is not a number", name, id)
		}
		out = append(out, uint32(uid))
	}
	return out, nil
}

// AllowedPrefixes parses the allowed client CIDRs (bare addresses too).
func (a AGIConfig) AllowedPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range a.Allowed {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("agi allowed %q: not a CIDR or address (e.g. 127.0.0.1/32, 10.0.0.0/8, ::1/128)", s)
			}
			if addr.Zone() != "" {
				// "fe80::1%eth0/64" parses as the address fe80::1 in a
				// zone named "eth0/64": one address, not the network.
				return nil, fmt.Errorf("agi allowed %q: give the network without a %%zone (fe80::/64)", s)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		// Clients are matched unmapped (a [::]:4573 listener sees
		// ::ffff:127.0.0.1 as 127.0.0.1), so a mapped prefix must be too.
		p, ok := tollguard.UnmapPrefix(p)
		if !ok {
			return nil, fmt.Errorf("agi allowed %q: an IPv4-mapped prefix needs at least /96 (or write the IPv4 network)", s)
		}
		out = append(out, p)
	}
	return out, nil
}

// NewLogger returns the slog logger the config asks for. When w is the
// journal's stream (JOURNAL_STREAM names it), each line starts with its
// level's syslog priority, which the journal files it at.
func (l LogConfig) NewLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	newHandler := func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, opts) }
	if l.Format == "json" {
		// Durations as text ("1.5ms", "15m0s"), as the text format has
		// them: JSON's default is bare nanoseconds, a unit nobody reads.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.String(a.Key, a.Value.Duration().String())
			}
			return a
		}
		newHandler = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, opts) }
	}
	if isJournalStream(w, os.Getenv("JOURNAL_STREAM")) {
		return slog.New(newJournalHandler(w, newHandler))
	}
	return slog.New(newHandler(w))
}

// checkSecretFile says what is wrong with a secret file: missing,
// readable by every user or writable by others than its owner (0600, or
// 0640 with the tollguard group, is a secret), or reached through a
// directory another user can swap it in (checkSecretPath). config check, serve and
// the commands all ask it, so config check catches what serve would
// refuse.
func checkSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o027 != 0 {
		return fmt.Errorf("secret file %s has mode %04o: every local user can read it or others can change it; chmod 600 it (owned by the user tollguard runs as)", path, fi.Mode().Perm())
	}
	// Its mode alone does not stop another user from swapping it, as
	// for the config itself.
	if err := checkSecretPath(path); err != nil {
		return fmt.Errorf("secret file %s: %w", path, err)
	}
	return nil
}

// readSecretFile reads a secret from a file, trimming the newline
// editors add. Empty path means none.
func readSecretFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	if err := checkSecretFile(path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if s.Scan() {
		return strings.TrimSpace(s.Text()), nil
	}
	return "", s.Err()
}

// maskSecrets blanks every secret before the config is printed.
func (c *Config) maskSecrets() {
	c.ARI.maskSecrets()
	c.Alerts.maskSecrets()
	c.Audit.maskSecrets()
}
