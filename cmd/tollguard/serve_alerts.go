package main

import (
	"context"
	"fmt"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

// startAlerts starts alert storage and delivery and sets d.alerter: Raise
// writes the alert and its outbox rows to the store and returns; the
// dispatcher delivers to the log, e-mail and the webhook in the
// background until ctx ends. ns are the notifiers serve built from
// [alerts] before it listened for calls.
func startAlerts(ctx context.Context, d *daemon, ns []tollguard.Notifier) error {
	cfg := &d.app.Config.Alerts
	var m tollguard.AlertMetrics = tollguard.NopAlertMetrics{}
	if d.metrics != nil {
		m = alertMetrics{d.metrics}
	}
	opts := cfg.Options(d.log, m, d.app.Now)
	opts.PruneHeld = d.clock.PruneHeld
	disp, err := notify.New(d.db, opts, ns...)
	if err != nil {
		return err
	}
	d.alerter = disp
	if d.metrics != nil {
		d.metrics.Notifiers(disp.Notifiers())
	}
	d.goFunc("alerts", func() {
		if err := disp.Run(ctx); err != nil {
			d.log.Error("alert delivery stopped", tollguard.LogError, err)
		}
	})
	running := *cfg
	d.reloaders = append(d.reloaders, func(c *Config) {
		d.warnRestart("alerts", running, c.Alerts)
	})
	d.log.Info("alerts", "notifiers", fmt.Sprint(disp.Notifiers()), "cool_down", cfg.CoolDown.Duration)
	return nil
}

// alertMetrics counts alerts by kind and failed deliveries by notifier.
type alertMetrics struct{ m *Metrics }

func (a alertMetrics) AlertRaised(kind string, _ tollguard.Severity) {
	a.m.Alerts.WithLabelValues(kind).Inc()
}
func (a alertMetrics) NotifierFailed(notifier string, final bool) {
	a.m.NotifierFailures.WithLabelValues(notifier).Inc()
	if final {
		a.m.Undelivered.WithLabelValues(notifier).Inc()
	}
}
func (a alertMetrics) NoticesAbandoned(notifier string, n int) {
	a.m.Undelivered.WithLabelValues(notifier).Add(float64(n))
}
func (a alertMetrics) NotificationSent(notifier string) {
	a.m.Notifications.WithLabelValues(notifier).Inc()
}
