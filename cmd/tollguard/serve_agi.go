package main

import (
	"context"
	"fmt"
	"net"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi"
	"github.com/tollguard/tollguard/sockdiag"
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
	uids, err := cfg.AllowedUIDs()
	if err != nil {
		return tollguard.Errorf(tollguard.EINVALID, "%v", err)
	}
	ln, err := agi.NewListener(ctx, cfg.Listen)
	if err != nil {
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "cannot listen on %s for FastAGI: %v (is another tollguard running, or the address not up yet? set TOLLGUARD_AGI_ADDR or [agi] listen; systemd retries)", cfg.Listen, err)
	}
	srv := &agi.Server{
		Gate:             d.policy,
		Logger:           d.log,
		Allowed:          allowed,
		ClientUIDs:       uids,
		PeerUID:          sockdiag.PeerUID,
		MaxSessions:      cfg.MaxSessions,
		SessionTimeout:   cfg.SessionTimeout.Duration,
		EnvTimeout:       cfg.EnvTimeout.Duration,
		DecisionTimeout:  cfg.DecisionTimeout.Duration,
		DenyAction:       agi.DenyAction(cfg.DenyAction),
		RequireArgCopies: cfg.RequireArgCopies,
		Metrics:          agiMetrics{d.metrics, d.health},
		Now:              d.app.Now,
	}
	d.health.SetAGIBound(true)
	d.log.Info("FastAGI gate listening", "addr", ln.Addr().String(), "allowed", cfg.Allowed, "allowed_users", cfg.AllowedUsers)
	d.goFunc("agi", func() { d.runAGI(ctx, srv, ln) })
	return nil
}

// runAGI serves the gate on ln until ctx ends. If the server stops
// before that (its listener failed), tollguard is no use: the include
// fails every call closed. So serve is told to exit with an error, and
// systemd (Restart=on-failure) brings it back at once.
func (d *daemon) runAGI(ctx context.Context, srv *agi.Server, ln net.Listener) {
	defer d.health.SetAGIBound(false)
	err := srv.Serve(ctx, ln)
	if err == nil || ctx.Err() != nil {
		return
	}
	d.log.Error("FastAGI server stopped; calls fail closed in the dialplan until tollguard restarts", "err", err)
	select {
	case d.fatal <- fmt.Errorf("FastAGI server stopped: %w", err):
	default:
	}
}
