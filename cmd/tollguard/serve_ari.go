package main

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
)

// startARI starts the ARI listener when [ari] is enabled, and sets
// d.asterisk and d.channelAlive. It never waits for Asterisk: the
// listener connects (and reconnects) in the background, and the gate
// serves calls whether ARI is up or not.
func startARI(ctx context.Context, d *daemon) error {
	cfg := d.app.Config
	if !cfg.ARI.Enabled {
		d.health.SetARI("disabled")
		return nil
	}
	ccfg, err := cfg.ARI.ClientConfig()
	if err != nil {
		return err
	}
	ariStarting(d)
	client, err := ari.NewClient(ccfg)
	if err != nil {
		return err
	}
	det, err := tollguard.NewDetectors(cfg.Detectors.Settings())
	if err != nil {
		return err
	}
	log := d.log.With("component", "ari")
	responder := &tollguard.Responder{Alerter: d.alerter, Blocker: d.db, Logger: log}
	if cfg.ARI.HangupBlockedCalls {
		responder.Calls, responder.Hangup = d.db, client.ChannelHanger()
	}
	l := &ari.Listener{
		Client:           client,
		Store:            d.db,
		Settler:          d.policy,
		Detectors:        det,
		Responder:        responder,
		Logger:           log,
		Hooks:            &ariHooks{d: d},
		DefaultPlan:      tollguard.NumberPlan{Country: cfg.Gate.DefaultCountry},
		ContactRetention: time.Duration(cfg.ARI.ContactRetentionDays) * 24 * time.Hour,
		PruneHeld:        d.clock.PruneHeld,
		Now:              d.app.Now,
	}
	d.asterisk = client
	d.channelAlive = client.ChannelChecker()
	d.channelHangup = client.ChannelHanger()
	d.goFunc("ari", func() {
		defer client.Close()
		if err := l.Run(ctx); err != nil {
			d.log.Error("ARI listener stopped", tollguard.LogError, err)
		}
		// Calls that ended in the last seconds still settle.
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Flush(fctx)
	})
	running := struct {
		ARI       ARIConfig
		Detectors DetectorsConfig
	}{cfg.ARI, cfg.Detectors}
	d.followGate(l)
	d.reloaders = append(d.reloaders, func(c *Config) {
		if !reflect.DeepEqual(running.Detectors, c.Detectors) {
			d.warnRestart("detectors", running.Detectors, c.Detectors)
			d.log.Info("per-account detector overrides (`tollguard detectors set`) apply within 5 minutes, without a restart")
		}
		// enabled is said with the [agi] and [metrics] listeners, with
		// both values.
		d.warnRestart("ari", running.ARI, c.ARI, "enabled")
	})
	d.log.Info("ARI listener starting", "url", ccfg.URL, "user", ccfg.User, "app", ccfg.App)
	return nil
}

// followGate makes l number calls from endpoints not in the store with
// the reloaded [gate] default_country, as the gate does.
func (d *daemon) followGate(l *ari.Listener) {
	d.reloaders = append(d.reloaders, func(c *Config) {
		l.SetDefaultPlan(tollguard.NumberPlan{Country: c.Gate.DefaultCountry})
	})
}

// ariStarting tells /readyz and Prometheus that ARI is on and not yet
// connected. serve calls it before the gate's warm-up and the FastAGI
// bind, which come before the listener starts: until then they said
// "disabled".
func ariStarting(d *daemon) {
	if d.metrics != nil {
		d.metrics.ARIEnabled.Set(1)
	}
	d.health.SetARI("connecting")
}

// ariHooks reports the listener's state to /readyz and Prometheus.
type ariHooks struct {
	d   *daemon
	ups atomic.Int64
}

func (h *ariHooks) Connection(up bool, err error) {
	m := h.d.metrics
	if up {
		h.d.health.SetARI("connected")
		if m != nil && m.ARIConnected != nil {
			m.ARIConnected.Set(1)
			if h.ups.Add(1) > 1 && m.ARIReconnects != nil {
				m.ARIReconnects.Inc()
			}
		}
		return
	}
	state := "disconnected"
	if err != nil {
		state += ": " + tollguard.ErrorMessage(err)
	}
	h.d.health.SetARI(state)
	if m != nil && m.ARIConnected != nil {
		m.ARIConnected.Set(0)
	}
}

func (h *ariHooks) Event(typ string, handled bool) {
	if m := h.d.metrics; m != nil && m.ARIEvents != nil {
		m.ARIEvents.WithLabelValues(typ).Inc()
	}
}

func (h *ariHooks) Resynced(r ari.ResyncReport) {
	m := h.d.metrics
	if m == nil || m.Resyncs == nil {
		return
	}
	m.Resyncs.WithLabelValues(r.Trigger, r.Result).Inc()
	if r.Result == ari.ResyncError {
		return
	}
	m.ResyncContacts.Set(float64(r.Contacts))
	m.ResyncChanges.WithLabelValues("new").Add(float64(r.New))
	m.ResyncChanges.WithLabelValues("changed").Add(float64(r.Changed))
	m.ResyncChanges.WithLabelValues("ended").Add(float64(r.Ended))
}

func (h *ariHooks) Finding(f tollguard.Finding) {}

func (h *ariHooks) Settled(changed bool, err error) {
	if m := h.d.metrics; m != nil && err != nil {
		m.SettleFailures.WithLabelValues("ari").Inc()
		return
	}
	if m := h.d.metrics; m != nil && m.Settlements != nil {
		c := "false"
		if changed {
			c = "true"
		}
		m.Settlements.WithLabelValues("ari", c).Inc()
	}
}
