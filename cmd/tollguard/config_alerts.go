package main

import (
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"os"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

// AlertsConfig is the [alerts] section: how alerts merge, how delivery
// retries, and the notifiers. The log always gets every alert; e-mail
// and the webhook are off until enabled.
type AlertsConfig struct {
	// Repeats of the same kind and subject within cool_down of the last
	// one merge into one alert; a digest of them goes out a cool-down
	// after the last notice, or at once when the count reaches one of
	// digest_at (then every tenfold beyond the last).
	CoolDown    Duration `toml:"cool_down"`
	DigestAt    []int    `toml:"digest_at"`
	MaxEvidence int      `toml:"max_evidence"`
	// Alerts last seen longer ago, with nothing left to deliver, are deleted.
	RetentionDays int `toml:"retention_days"`

	Concurrency  int      `toml:"concurrency"` // deliveries in flight per notifier
	SendTimeout  Duration `toml:"send_timeout"`
	RetryInitial Duration `toml:"retry_initial"`
	RetryMax     Duration `toml:"retry_max"`
	MaxAttempts  int      `toml:"max_attempts"`

	Email   EmailAlertsConfig   `toml:"email"`
	Webhook WebhookAlertsConfig `toml:"webhook"`
}

// EmailAlertsConfig is [alerts.email]. The password comes from
// TOLLGUARD_SMTP_PASSWORD or password_file, never from the file itself.
type EmailAlertsConfig struct {
	Enabled      bool     `toml:"enabled"`
	Host         string   `toml:"host"`
	Port         int      `toml:"port"` // 0: 587, or 25 with tls none, 465 with tls implicit
	TLS          string   `toml:"tls"`  // mandatory, opportunistic, none, implicit
	CAFile       string   `toml:"ca_file"`
	Username     string   `toml:"username"`
	PasswordFile string   `toml:"password_file"`
	Auth         string   `toml:"auth"` // auto, plain, login, cram-md5, scram-sha-256, ...
	From         string   `toml:"from"`
	To           []string `toml:"to"`
	Timeout      Duration `toml:"timeout"`

	password string // from the environment
}

// WebhookAlertsConfig is [alerts.webhook]. The shared secret comes from
// TOLLGUARD_WEBHOOK_SECRET or secret_file.
type WebhookAlertsConfig struct {
	Enabled    bool     `toml:"enabled"`
	URL        string   `toml:"url"`
	SecretFile string   `toml:"secret_file"`
	Timeout    Duration `toml:"timeout"`

	secret string // from the environment
}

func (a *AlertsConfig) defaults() {
	*a = AlertsConfig{
		CoolDown:      Duration{tollguard.DefaultAlertCoolDown},
		DigestAt:      append([]int(nil), tollguard.DefaultDigestAt...),
		MaxEvidence:   tollguard.DefaultAlertMaxEvidence,
		RetentionDays: 90,
		Concurrency:   2,
		SendTimeout:   Duration{30 * time.Second},
		RetryInitial:  Duration{10 * time.Second},
		RetryMax:      Duration{time.Hour},
		MaxAttempts:   20,
		Email:         EmailAlertsConfig{TLS: notify.TLSMandatory, Auth: "auto", Timeout: Duration{30 * time.Second}},
		Webhook:       WebhookAlertsConfig{Timeout: Duration{10 * time.Second}},
	}
}

func (a *AlertsConfig) validate(c *Config, errs *ConfigErrors) {
	at := func(msg string, key ...string) { c.errAt(errs, msg, append([]string{"alerts"}, key...)...) }
	if a.CoolDown.Duration < time.Minute {
		at(fmt.Sprintf("alerts cool_down %s: want at least 1m (it is how long repeats merge)", a.CoolDown), "cool_down")
	}
	if err := (tollguard.AlertPolicy{DigestAt: a.DigestAt}).Validate(); err != nil {
		at(fmt.Sprintf("alerts digest_at %v: want ascending counts of at least 2, e.g. [10, 100, 1000]", a.DigestAt), "digest_at")
	}
	if a.MaxEvidence < 2 || a.MaxEvidence > 1000 {
		at(fmt.Sprintf("alerts max_evidence %d: want between 2 and 1000", a.MaxEvidence), "max_evidence")
	}
	if msg := checkDays("alerts retention_days", a.RetentionDays, 1); msg != "" {
		at(msg, "retention_days")
	}
	if a.Concurrency < 1 || a.Concurrency > 64 {
		at(fmt.Sprintf("alerts concurrency %d: want between 1 and 64", a.Concurrency), "concurrency")
	}
	if a.SendTimeout.Duration < time.Second {
		at("alerts send_timeout must be at least 1s", "send_timeout")
	}
	if a.RetryInitial.Duration < time.Second {
		at("alerts retry_initial must be at least 1s", "retry_initial")
	}
	if a.RetryMax.Duration < a.RetryInitial.Duration {
		at("alerts retry_max must not be shorter than retry_initial", "retry_max")
	}
	if a.MaxAttempts < 1 {
		at("alerts max_attempts must be at least 1", "max_attempts")
	}
	if e := a.Email; e.Enabled {
		if e.Host == "" {
			at("alerts email host is empty: give the SMTP server (e.g. smtp.example.com)", "email", "host")
		}
		if e.Port < 0 || e.Port > 65535 {
			at(fmt.Sprintf("alerts email port %d: out of range", e.Port), "email", "port")
		}
		switch e.TLS {
		case notify.TLSMandatory, notify.TLSOpportunistic, notify.TLSNone, notify.TLSImplicit:
		default:
			at(fmt.Sprintf("alerts email tls %q: want mandatory, opportunistic, none or implicit", e.TLS), "email", "tls")
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			at(fmt.Sprintf("alerts email from %q: not an e-mail address", e.From), "email", "from")
		}
		if len(e.To) == 0 {
			at("alerts email to is empty: give at least one recipient", "email", "to")
		}
		for _, to := range e.To {
			if _, err := mail.ParseAddress(to); err != nil {
				at(fmt.Sprintf("alerts email to %q: not an e-mail address", to), "email", "to")
			}
		}
		if e.CAFile != "" {
			if _, err := os.Stat(e.CAFile); err != nil {
				at(fmt.Sprintf("alerts email ca_file: %v", err), "email", "ca_file")
			}
		}
		if e.PasswordFile != "" {
			if err := checkSecretFile(e.PasswordFile); err != nil {
				at(fmt.Sprintf("alerts email password_file: %v", err), "email", "password_file")
			}
		}
		if e.Timeout.Duration < time.Second {
			at("alerts email timeout must be at least 1s", "email", "timeout")
		}
	}
	if w := a.Webhook; w.Enabled {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			at(fmt.Sprintf("alerts webhook url %q: want an http:// or https:// URL", w.URL), "webhook", "url")
		}
		if w.SecretFile != "" {
			if err := checkSecretFile(w.SecretFile); err != nil {
				at(fmt.Sprintf("alerts webhook secret_file: %v", err), "webhook", "secret_file")
			}
		}
		if w.Timeout.Duration < time.Second {
			at("alerts webhook timeout must be at least 1s", "webhook", "timeout")
		}
	}
}

// applyEnv takes the secrets from the environment; they win over the
// *_file settings.
func (a *AlertsConfig) applyEnv(getenv func(string) string) {
	if v := getenv("TOLLGUARD_SMTP_PASSWORD"); v != "" {
		a.Email.password = v
	}
	if v := getenv("TOLLGUARD_WEBHOOK_SECRET"); v != "" {
		a.Webhook.secret = v
	}
}

func (a *AlertsConfig) maskSecrets() {
	if a.Email.password != "" {
		a.Email.password = "********"
	}
	if a.Webhook.secret != "" {
		a.Webhook.secret = "********"
	}
	// A webhook URL's query (and a Slack-style path) often is the token.
	if u, err := url.Parse(a.Webhook.URL); err == nil && (u.RawQuery != "" || u.User != nil || len(u.Path) > 1) {
		a.Webhook.URL = u.Scheme + "://" + u.Host + "/********"
	}
}

// Policy is the merge policy the config asks for.
func (a *AlertsConfig) Policy() tollguard.AlertPolicy {
	return tollguard.AlertPolicy{CoolDown: a.CoolDown.Duration, DigestAt: a.DigestAt, MaxEvidence: a.MaxEvidence}
}

// Options are the dispatcher's options.
func (a *AlertsConfig) Options(log *slog.Logger, m tollguard.AlertMetrics, now func() time.Time) notify.Options {
	return notify.Options{
		Policy:      a.Policy(),
		Retry:       notify.Retry{Initial: a.RetryInitial.Duration, Max: a.RetryMax.Duration, MaxAttempts: a.MaxAttempts},
		Concurrency: a.Concurrency,
		SendTimeout: a.SendTimeout.Duration,
		Retention:   time.Duration(a.RetentionDays) * 24 * time.Hour,
		Logger:      log,
		Metrics:     m,
		Now:         now,
	}
}

// Notifiers builds the configured notifiers: the log always, then e-mail
// and the webhook when enabled. It reads the secret files.
func (a *AlertsConfig) Notifiers(log *slog.Logger) ([]tollguard.Notifier, error) {
	ns := []tollguard.Notifier{&notify.Log{Logger: log}}
	if e := a.Email; e.Enabled {
		pass := e.password
		if pass == "" && e.PasswordFile != "" {
			p, err := readSecretFile(e.PasswordFile)
			if err != nil {
				return nil, tollguard.Errorf(tollguard.EINVALID, "alerts email password_file: %v", err)
			}
			pass = p
		}
		if e.Username != "" && pass == "" {
			return nil, tollguard.Errorf(tollguard.EINVALID, "alerts email: username %q has no password; set TOLLGUARD_SMTP_PASSWORD or password_file", e.Username)
		}
		em, err := notify.NewEmail(notify.EmailConfig{Host: e.Host, Port: e.Port, TLS: e.TLS, CAFile: e.CAFile,
			Username: e.Username, Password: pass, Auth: e.Auth, From: e.From, To: e.To, Timeout: a.emailTimeout()})
		if err != nil {
			return nil, err
		}
		ns = append(ns, em)
	}
	if w := a.Webhook; w.Enabled {
		secret := w.secret
		if secret == "" && w.SecretFile != "" {
			s, err := readSecretFile(w.SecretFile)
			if err != nil {
				return nil, tollguard.Errorf(tollguard.EINVALID, "alerts webhook secret_file: %v", err)
			}
			secret = s
		}
		wh, err := notify.NewWebhook(notify.WebhookConfig{URL: w.URL, Secret: secret, Timeout: w.Timeout.Duration})
		if err != nil {
			return nil, err
		}
		ns = append(ns, wh)
	}
	return ns, nil
}

// emailTimeout is the email timeout in effect: send_timeout ends every
// send anyway, so a longer one (the 30s default with a lowered
// send_timeout, accepted before) is held to it instead of refused.
func (a AlertsConfig) emailTimeout() time.Duration {
	return min(a.Email.Timeout.Duration, a.SendTimeout.Duration)
}
