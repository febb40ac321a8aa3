package main

import (
	"context"
	"net"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi"
)

// startAGI binds the FastAGI listener and serves the gate on it. The
// listener is bound before serve reports ready, so Asterisk's first call
// finds it.
func startAGI(ctx context.Context, d *daemon) error {
	cfg := d.app.Config.AGI
	allowed, err := cfg.AllowedPrefixes()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return tollguard.Errorf(tollguard.EINVALID, "cannot listen on %s for FastAGI: %v (is another tollguard running? set TOLLGUARD_AGI_ADDR or [agi] listen)", cfg.Listen, err)
	}
	srv := &agi.Server{
		Gate:            d.policy,
		Logger:          d.log,
		Allowed:         allowed,
		MaxSessions:     cfg.MaxSessions,
		SessionTimeout:  cfg.SessionTimeout.Duration,
		EnvTimeout:      cfg.EnvTimeout.Duration,
		DecisionTimeout: cfg.DecisionTimeout.Duration,
		DenyAction:      agi.DenyAction(cfg.DenyAction),
		Metrics:         agiMetrics{d.metrics},
		Now:             d.app.Now,
	}
	d.health.SetAGIBound(true)
	d.log.Info("FastAGI gate listening", "addr", ln.Addr().String(), "allowed", cfg.Allowed)
	d.goFunc("agi", func() {
		defer d.health.SetAGIBound(false)
		if err := srv.Serve(ctx, ln); err != nil {
			d.log.Error("FastAGI server stopped; calls now fail closed in the dialplan", "err", err)
		}
	})
	return nil
}
