package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/cron"
	"github.com/tollguard/tollguard/voicemail"
)

// AuditConfig is the [audit] section: when the audits run inside serve,
// which of them may fix what they find, and their thresholds. The CLI
// (`tollguard audit ...`) uses the same settings.
type AuditConfig struct {
	// Enabled runs the schedules inside `tollguard serve`.
	Enabled bool `toml:"enabled"`
	// Zone is the time zone schedules are read in (IANA name); "" is
	// the host's local time.
	Zone string `toml:"zone"`
	// Schedules maps an audit (stale, tests, pins, passwords, quotas,
	// spend, coverage, selftest) to a cron spec; "" or "off" disables it.
	Schedules map[string]string `toml:"schedules"`
	// Apply lists the scheduled audits allowed to act (as --apply does);
	// the rest only report. Empty by default.
	Apply []string `toml:"apply"`

	StaleDays      int      `toml:"stale_days"`       // default 60
	PurgeGraceDays int      `toml:"purge_grace_days"` // default 7
	TestPatterns   []string `toml:"test_patterns"`    // case-insensitive regular expressions
	Ignore         []string `toml:"ignore"`           // endpoint names the audits skip (trunks)
	GatedContexts  []string `toml:"gated_contexts"`   // contexts with tollguard's include
	CreationAlert  int      `toml:"creation_alert"`   // > this many new extensions in 24 h alerts; -1 off
	// Timeout bounds one audit run; past it the run is cancelled and
	// stored as failed, and the next audit runs.
	Timeout Duration `toml:"timeout"`

	Pins      PinsAuditConfig      `toml:"pins"`
	Passwords PasswordsAuditConfig `toml:"passwords"`
	Ext       ExtAuditConfig       `toml:"ext"`
	Selftest  SelftestAuditConfig  `toml:"selftest"`
	// Fail2banClient is the fail2ban-client binary ("" looks in PATH).
	Fail2banClient string `toml:"fail2ban_client"`
}

// PinsAuditConfig is [audit.pins].
type PinsAuditConfig struct {
	VoicemailConf string `toml:"voicemail_conf"` // "" skips voicemail.conf
	ConfigDir     string `toml:"config_dir"`     // for relative #include paths (and users.conf); default the file's directory
	UsersConf     string `toml:"users_conf"`     // users.conf, whose hasvoicemail categories are mailboxes too; default config_dir/users.conf
	BackupDir     string `toml:"backup_dir"`     // default next to each file, as a dot-file
	SpoolDir      string `toml:"spool_dir"`      // for passwordlocation = spooldir; default /var/spool/asterisk/voicemail
	RealtimeDSN   string `toml:"realtime_dsn"`   // sqlite3:///path, or odbc:DSN=... (a build with the odbc tag)
	RealtimeTable string `toml:"realtime_table"` // default voicemail
	MinLength     int    `toml:"min_length"`     // default 6
	NotifyOwners  bool   `toml:"notify_owners"`  // mail the mailbox's owner after a change
	MailPIN       bool   `toml:"mail_pin"`       // put the new PIN in that mail
}

// PasswordsAuditConfig is [audit.passwords].
type PasswordsAuditConfig struct {
	MinScore  int      `toml:"min_score"`  // zxcvbn 0-4; default 3
	MinLength int      `toml:"min_length"` // default 12
	Denylist  []string `toml:"denylist"`   // weak on sight; the extension's name is always added
}

// ExtAuditConfig is [audit.ext]: what `tollguard ext add` creates.
type ExtAuditConfig struct {
	Context        string            `toml:"context"`   // default from-internal
	Transport      string            `toml:"transport"` // "" leaves Asterisk's default
	Codecs         string            `toml:"codecs"`    // default ulaw,alaw
	MaxContacts    int               `toml:"max_contacts"`
	PasswordLength int               `toml:"password_length"` // default 24, at least 20
	Endpoint       map[string]string `toml:"endpoint"`        // more endpoint fields, e.g. direct_media = "no"
	AOR            map[string]string `toml:"aor"`
}

// SelftestAuditConfig is [audit.selftest]. The number is [gate]
// selftest_number.
type SelftestAuditConfig struct {
	App  string   `toml:"app"`  // Stasis app for the originated channel; default tollguard
	Wait Duration `toml:"wait"` // how long to wait for the gate's record; default 10s
}

// DefaultAuditSchedules are the schedules when the config names none:
// nightly audits, hourly quotas and spend. The selftest places calls
// and is off until scheduled. The nightly ones run at 04:30-04:50 local
// time, after every common clock change (EU zones change at 01:00 UTC,
// which is 03:00-04:00 local in Helsinki or Athens; the US and Australia
// at 02:00-03:00 local): cron follows the wall clock, so a run inside
// the hour the clocks change is skipped in spring and runs twice in
// autumn.
var DefaultAuditSchedules = map[string]string{
	"stale": "30 4 * * *", "tests": "35 4 * * *", "pins": "40 4 * * *", "passwords": "45 4 * * *",
	"quotas": "5 * * * *", "spend": "10 * * * *", "coverage": "50 4 * * *",
}

func (a *AuditConfig) defaults() {
	s := tollguard.DefaultAuditSettings()
	*a = AuditConfig{
		Schedules:      map[string]string{},
		StaleDays:      int(s.StaleAfter / (24 * time.Hour)),
		PurgeGraceDays: int(s.PurgeGrace / (24 * time.Hour)),
		TestPatterns:   append([]string(nil), s.TestPatterns...),
		GatedContexts:  append([]string(nil), s.GatedContexts...),
		CreationAlert:  s.CreationAlert,
		Timeout:        Duration{s.Timeout},
		Pins:           PinsAuditConfig{MinLength: s.MinPINLength, RealtimeTable: "voicemail"},
		Passwords:      PasswordsAuditConfig{MinScore: s.PasswordMinScore, MinLength: s.PasswordMinLength, Denylist: append([]string(nil), s.PasswordDefaults...)},
		Ext: ExtAuditConfig{Context: s.Endpoint.Context, Codecs: s.Endpoint.Codecs, MaxContacts: s.Endpoint.MaxContacts,
			PasswordLength: s.PasswordLength},
		Selftest: SelftestAuditConfig{App: "tollguard", Wait: Duration{s.SelftestWait}},
	}
	for k, v := range DefaultAuditSchedules {
		a.Schedules[k] = v
	}
}

// auditJobNames are the audits a schedule may name.
func auditJobNames() []string {
	var out []string
	for _, j := range tollguard.AuditJobs() {
		out = append(out, j.Name())
	}
	return append(out, tollguard.SelftestAudit{}.Name())
}

func auditJob(name string) (tollguard.AuditJob, error) {
	if name == (tollguard.SelftestAudit{}).Name() {
		return tollguard.SelftestAudit{}, nil
	}
	return tollguard.AuditJobNamed(name)
}

func (a *AuditConfig) validate(c *Config, errs *ConfigErrors) {
	at := func(msg string, key ...string) { c.errAt(errs, msg, append([]string{"audit"}, key...)...) }
	if _, err := a.Location(); err != nil {
		at(err.Error(), "zone")
	}
	names := map[string]bool{}
	for _, n := range auditJobNames() {
		names[n] = true
	}
	keys := make([]string, 0, len(a.Schedules))
	for k := range a.Schedules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		spec := a.Schedules[name]
		if !names[name] {
			at(fmt.Sprintf("schedules: unknown audit %q (the audits are %s)", name, strings.Join(auditJobNames(), ", ")), "schedules", name)
			continue
		}
		if scheduleOff(spec) {
			continue
		}
		// cron.Parse recovers the library's panics (CRON_TZ=UTC).
		if _, err := cron.Parse(spec); err != nil {
			at(fmt.Sprintf("schedules.%s: %v", name, err), "schedules", name)
		}
	}
	for _, name := range a.Apply {
		if !names[name] {
			at(fmt.Sprintf("apply: unknown audit %q (the audits are %s)", name, strings.Join(auditJobNames(), ", ")), "apply")
		}
	}
	if msg := checkDays("stale_days", a.StaleDays, 1); msg != "" {
		at(msg, "stale_days")
	}
	if msg := checkDays("purge_grace_days", a.PurgeGraceDays, 0); msg != "" {
		at(msg, "purge_grace_days")
	}
	if _, err := tollguard.CompileTestPatterns(a.TestPatterns); err != nil {
		at(tollguard.ErrorMessage(err), "test_patterns")
	}
	if len(a.GatedContexts) == 0 {
		at("gated_contexts is empty: list the dialplan contexts that include tollguard's gate (e.g. from-internal)", "gated_contexts")
	}
	p := a.Pins
	if p.RealtimeDSN != "" {
		if _, err := voicemail.ParseRealtimeDSN(p.RealtimeDSN, p.RealtimeTable); err != nil {
			at(tollguard.ErrorMessage(err), "pins", "realtime_dsn")
		}
	}
	if p.MinLength < 4 || p.MinLength > 20 {
		at(fmt.Sprintf("pins min_length %d: want 4 to 20", p.MinLength), "pins", "min_length")
	}
	if s := a.Passwords.MinScore; s < 0 || s > 4 {
		at(fmt.Sprintf("passwords min_score %d: zxcvbn scores run from 0 to 4", s), "passwords", "min_score")
	}
	if a.Passwords.MinLength < 1 {
		at("passwords min_length must be at least 1", "passwords", "min_length")
	}
	if n := a.Ext.PasswordLength; n < tollguard.MinGeneratedPassword || n > 64 {
		at(fmt.Sprintf("ext password_length %d: want %d to 64", n, tollguard.MinGeneratedPassword), "ext", "password_length")
	}
	if ctx := a.Ext.Context; ctx == "" || strings.ContainsAny(ctx, " \t[];,") {
		at(fmt.Sprintf("ext context %q: give the dialplan context new extensions call from", a.Ext.Context), "ext", "context")
	}
	if a.Ext.MaxContacts < 1 {
		at("ext max_contacts must be at least 1", "ext", "max_contacts")
	}
	if t := a.Timeout.Duration; t < time.Second || t > 24*time.Hour {
		at(fmt.Sprintf("timeout %s: want between 1s and 24h (one audit run's deadline; default 10m)", t), "timeout")
	}
	if a.Selftest.Wait.Duration <= 0 || a.Selftest.Wait.Duration > time.Minute {
		at("selftest wait: want between 1s and 1m", "selftest", "wait")
	}
}

func scheduleOff(spec string) bool {
	spec = strings.TrimSpace(spec)
	return spec == "" || strings.EqualFold(spec, "off")
}

// Location is the zone schedules are read in.
func (a *AuditConfig) Location() (*time.Location, error) {
	if a.Zone == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(a.Zone)
	if err != nil {
		return nil, fmt.Errorf("zone %q: not an IANA time zone such as Europe/London", a.Zone)
	}
	return loc, nil
}

// applies reports whether the scheduled audit name may act.
func (a *AuditConfig) applies(name string) bool {
	for _, n := range a.Apply {
		if n == name {
			return true
		}
	}
	return false
}

// Settings are the audits' settings; selftestNumber and defaultCountry
// are [gate]'s.
func (a *AuditConfig) Settings(selftestNumber, defaultCountry string) tollguard.AuditSettings {
	s := tollguard.DefaultAuditSettings()
	s.StaleAfter = time.Duration(a.StaleDays) * 24 * time.Hour
	s.PurgeGrace = time.Duration(a.PurgeGraceDays) * 24 * time.Hour
	if a.PurgeGraceDays == 0 {
		s.PurgeGrace = time.Nanosecond // purge on the next run; WithDefaults would turn 0 into 7 days
	}
	s.TestPatterns = a.TestPatterns
	s.Ignore = a.Ignore
	s.GatedContexts = a.GatedContexts
	s.CreationAlert = a.CreationAlert
	s.MinPINLength = a.Pins.MinLength
	s.NotifyOwners, s.MailPIN = a.Pins.NotifyOwners, a.Pins.MailPIN
	s.PasswordMinScore, s.PasswordMinLength, s.PasswordDefaults = a.Passwords.MinScore, a.Passwords.MinLength, a.Passwords.Denylist
	s.PasswordLength = a.Ext.PasswordLength
	s.Endpoint = tollguard.EndpointTemplate{Context: a.Ext.Context, Transport: a.Ext.Transport, Codecs: a.Ext.Codecs,
		MaxContacts: a.Ext.MaxContacts, EndpointExtra: a.Ext.Endpoint, AORExtra: a.Ext.AOR}
	s.SelftestNumber, s.SelftestApp, s.SelftestWait = selftestNumber, a.Selftest.App, a.Selftest.Wait.Duration
	s.Timeout = a.Timeout.Duration
	s.DefaultCountry = defaultCountry
	return s.WithDefaults()
}

// maskSecrets masks the passwords of realtime_dsn before the config is printed.
func (a *AuditConfig) maskSecrets() { a.Pins.RealtimeDSN = voicemail.MaskDSN(a.Pins.RealtimeDSN) }

// Mailboxes are the configured voicemail sources.
func (a *AuditConfig) Mailboxes(now func() time.Time) []tollguard.MailboxSource {
	var out []tollguard.MailboxSource
	var conf *voicemail.Source
	if p := a.Pins; p.VoicemailConf != "" {
		conf = &voicemail.Source{Path: p.VoicemailConf, ConfigDir: p.ConfigDir, UsersConf: p.UsersConf, BackupDir: p.BackupDir, SpoolDir: p.SpoolDir, Now: now}
		out = append(out, conf)
	}
	if p := a.Pins; p.RealtimeDSN != "" {
		// voicemail.conf says which rows app_voicemail reads.
		out = append(out, &voicemail.Realtime{DSN: p.RealtimeDSN, Table: p.RealtimeTable, Conf: conf})
	}
	return out
}
