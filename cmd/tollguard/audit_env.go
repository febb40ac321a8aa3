package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/fail2ban"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

// ariClient returns ARI REST for the admin commands, and a function to
// release it; (nil, nil, nil) when [ari] is not configured. The ARI
// section sets it (config_ari.go); until it does, the commands that need
// Asterisk say that ARI is not configured.
var ariClient func(app *App) (tollguard.Asterisk, func(), error)

// auditEnv builds the audits' environment for a CLI command: the store,
// ARI when configured, alerts raised into the store's outbox (serve
// delivers them), the voicemail sources, fail2ban and the settings.
func (a *App) auditEnv(ctx context.Context) (*tollguard.AuditEnv, func(), error) {
	db, err := a.Store(ctx)
	if err != nil {
		return nil, nil, err
	}
	var ast tollguard.Asterisk
	release := func() {}
	if ariClient != nil {
		c, rel, err := ariClient(a)
		if err != nil {
			return nil, nil, err
		}
		if c != nil {
			ast = c
		}
		if rel != nil {
			release = rel
		}
	}
	alerter, mailer, err := a.auditAlerter(db)
	if err != nil {
		release()
		return nil, nil, err
	}
	return newAuditEnv(a.Config, db, ast, alerter, mailer, a.Logger, a.Now), release, nil
}

// newAuditEnv is the environment the CLI and serve share.
func newAuditEnv(cfg *Config, db *store.DB, ast tollguard.Asterisk, alerter tollguard.Alerter, mailer tollguard.Mailer, log *slog.Logger, now func() time.Time) *tollguard.AuditEnv {
	ac := &cfg.Audit
	env := &tollguard.AuditEnv{
		Now: now, Store: db, Alerter: alerter, Mailer: mailer,
		Mailboxes: ac.Mailboxes(now),
		Fail2ban:  &fail2ban.Client{Path: ac.Fail2banClient},
		Settings:  ac.Settings(cfg.Gate.SelftestNumber, cfg.Gate.DefaultCountry),
		Logger:    log,
	}
	if ast != nil { // a typed nil would look configured
		env.Asterisk = ast
	}
	if ac.Pins.NotifyOwners && mailer == nil {
		log.Warn("[audit.pins] notify_owners is set but no mailer can send to mailbox owners yet (the SMTP notifier has no SendMail); owners are not told")
	}
	return env
}

// auditAlerter raises the CLI's audit alerts into the store's outbox,
// as the daemon's dispatcher does, without delivering them: serve does.
// It also returns a notifier that can mail mailbox owners, if any.
func (a *App) auditAlerter(db *store.DB) (tollguard.Alerter, tollguard.Mailer, error) {
	ns, err := a.Config.Alerts.Notifiers(a.Logger)
	if err != nil {
		return nil, nil, err
	}
	disp, err := notify.New(db, a.Config.Alerts.Options(a.Logger, tollguard.NopAlertMetrics{}, a.Now), ns...)
	if err != nil {
		return nil, nil, err
	}
	return disp, ownerMailer(ns), nil
}

// ownerMailer returns the first notifier that can also mail an
// arbitrary address (tollguard.Mailer), or nil.
func ownerMailer(ns []tollguard.Notifier) tollguard.Mailer {
	for _, n := range ns {
		if m, ok := n.(tollguard.Mailer); ok {
			return m
		}
	}
	return nil
}
