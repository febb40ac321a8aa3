package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/store"
)

// Metrics are tollguard's Prometheus collectors, on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	Decisions        *prometheus.CounterVec
	DecisionLatency  prometheus.Histogram
	SessionsInFlight prometheus.Gauge
	Refused          *prometheus.CounterVec
	Settlements      *prometheus.CounterVec
	SettleFailures   *prometheus.CounterVec

	ARIEnabled    prometheus.Gauge
	ARIConnected  prometheus.Gauge
	ARIReconnects prometheus.Counter
	ARIEvents     *prometheus.CounterVec
	// Registration resynchronisations (ari.ResyncReport).
	Resyncs        *prometheus.CounterVec
	ResyncContacts prometheus.Gauge
	ResyncChanges  *prometheus.CounterVec

	Alerts           *prometheus.CounterVec
	NotifierFailures *prometheus.CounterVec
	Undelivered      *prometheus.CounterVec
	Notifications    *prometheus.CounterVec
	AuditFindings    *prometheus.CounterVec
	SweepSettled     *prometheus.CounterVec
	Overran          *prometheus.CounterVec
}

// NewMetrics registers every collector.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.Decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_decisions_total", Help: "Gate decisions by verdict and reason."}, []string{"verdict", "reason"})
	m.DecisionLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tollguard_decision_seconds", Help: "Time from the FastAGI env block to the decision, for calls waiting on it (not emergency calls recorded after they ended).",
		Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .3, 1}})
	m.SessionsInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollguard_agi_sessions_in_flight", Help: "FastAGI sessions being served."})
	m.Refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_agi_refused_total", Help: "FastAGI connections refused, by reason: closed unserved, or (overflow) answered without asking the gate while every session slot was busy."}, []string{"reason"})
	m.Settlements = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_settlements_total", Help: "Settle requests by source and whether they changed anything."}, []string{"by", "changed"})
	m.SettleFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_settle_failures_total", Help: "Settle requests that failed (the store, an unknown call id), by source. Those the store failed are retried (tollguard_settlements_pending); the ARI listener or the sweep settles the others."}, []string{"by"})
	m.ARIEnabled = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollguard_ari_enabled", Help: "1 when [ari] enabled is set: alert on tollguard_ari_connected == 0 only then."})
	m.ARIConnected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollguard_ari_connected", Help: "1 while the ARI events websocket is connected (0 with ARI disabled: see tollguard_ari_enabled)."})
	m.ARIReconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_ari_reconnects_total", Help: "ARI websocket connections made after the first (a failed attempt counts nothing: tollguard_ari_connected says whether it is up)."})
	m.ARIEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_ari_events_total", Help: "ARI events received, by type."}, []string{"type"})
	m.Resyncs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_registration_resyncs_total", Help: "Registration resynchronisations (every contact read again through ARI), by trigger (connect, periodic: [ari] resync_interval, hourly by default, retry: after a store failure, a dropped event or a pass cut short) and result (ok, partial: stopped at its time bound with endpoints left for the next pass, error)."}, []string{"trigger", "result"})
	m.ResyncContacts = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollguard_registration_resync_contacts", Help: "Live contacts the last resynchronisation read (only those of the endpoints it reached, when partial; a pass continuing a partial one reads only the endpoints left)."})
	m.ResyncChanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_registration_resync_changes_total", Help: "What resynchronisations found that no event had told: new registrations, live contacts with another address or user agent (changed), and contacts Asterisk no longer had (ended)."}, []string{"change"})
	m.Alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_alerts_total", Help: "Alerts raised, by kind."}, []string{"kind"})
	m.NotifierFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_notifier_failures_total", Help: "Failed alert delivery attempts, by notifier (retries included)."}, []string{"notifier"})
	m.Undelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_alerts_undelivered_total", Help: "Alert notices given up on after their retries, by notifier: an alert nobody was told about."}, []string{"notifier"})
	m.Notifications = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_notifications_sent_total", Help: "Alert notices delivered, by notifier."}, []string{"notifier"})
	m.AuditFindings = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_audit_findings_total", Help: "Audit findings, by job and severity."}, []string{"audit", "severity"})
	m.SweepSettled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_sweep_settled_total", Help: "Calls the sweep settled because no hangup arrived, by how."}, []string{"how"})
	m.Overran = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_calls_overran_total", Help: "Sweeps that found a call still up past its MAXSEC plus grace, by what became of it (hung_up through ARI, or still_up)."}, []string{"action"})
	for _, c := range []prometheus.Collector{m.Decisions, m.DecisionLatency, m.SessionsInFlight, m.Refused, m.Settlements, m.SettleFailures,
		m.ARIEnabled, m.ARIConnected, m.ARIReconnects, m.ARIEvents, m.Resyncs, m.ResyncContacts, m.ResyncChanges, m.Alerts, m.NotifierFailures, m.Undelivered, m.Notifications,
		m.AuditFindings, m.SweepSettled, m.Overran} {
		f(c)
	}
	m.zeroSeries()
	return m
}

// zeroSeries creates every known series at zero: a counter that first
// appears at 1 is invisible to rate() and increase(), so the first
// overrun call, refusal or alert after a start would be missed.
func (m *Metrics) zeroSeries() {
	for _, r := range tollguard.Reasons {
		m.Decisions.WithLabelValues(string(reasonVerdict(r)), string(r))
	}
	for _, r := range agi.RefusedReasons {
		m.Refused.WithLabelValues(r)
	}
	for _, by := range append(agi.SettledBy, "ari") {
		m.Settlements.WithLabelValues(by, "true")
		m.Settlements.WithLabelValues(by, "false")
		m.SettleFailures.WithLabelValues(by)
	}
	for _, how := range []string{"full_reservation", "channel_gone"} {
		m.SweepSettled.WithLabelValues(how)
	}
	for _, a := range []string{"hung_up", "still_up"} {
		m.Overran.WithLabelValues(a)
	}
	for _, t := range []string{ari.ResyncConnect, ari.ResyncPeriodic, ari.ResyncRetry} {
		for _, r := range []string{ari.ResyncOK, ari.ResyncPartial, ari.ResyncError} {
			m.Resyncs.WithLabelValues(t, r)
		}
	}
	for _, c := range []string{"new", "changed", "ended"} {
		m.ResyncChanges.WithLabelValues(c)
	}
	for _, k := range tollguard.AlertKinds {
		m.Alerts.WithLabelValues(k)
	}
	for _, j := range auditJobNames() {
		for _, sev := range []tollguard.Severity{tollguard.SeverityInfo, tollguard.SeverityWarning, tollguard.SeverityCritical} {
			m.AuditFindings.WithLabelValues(j, string(sev))
		}
	}
}

// Notifiers creates the notifiers' series at zero.
func (m *Metrics) Notifiers(names []string) {
	for _, n := range names {
		m.NotifierFailures.WithLabelValues(n)
		m.Undelivered.WithLabelValues(n)
		m.Notifications.WithLabelValues(n)
	}
}

// WatchStore exports the store's own counters.
func (m *Metrics) WatchStore(db *store.DB) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollguard_calls_recorded_elsewhere_total",
		Help: "Gate batches that found call rows another process wrote (a second daemon on the database?)."},
		func() float64 { return float64(db.CallsRecordedElsewhere()) }))
}

// WatchSettlements exports the settlements p keeps in memory while the
// store fails them.
func (m *Metrics) WatchSettlements(p *tollguard.Policy) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tollguard_settlements_pending",
		Help: "Settlements the store failed (a full disk?), kept in memory and retried; the sweep leaves their calls alone."},
		func() float64 { return float64(p.PendingSettlements()) }))
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollguard_settlements_dropped_total",
		Help: "Failed settlements dropped because the in-memory queue was full: the sweep charges those calls their full reservation."},
		func() float64 { return float64(p.DroppedSettlements()) }))
}

// Health is what /healthz and /readyz report.
type Health struct {
	mu       sync.Mutex
	store    bool
	schemaOK bool // false once a newer tollguard migrated the database
	agiBound bool
	ari      string // "disabled", "connected", "disconnected: <err>"
	// failing counts the gate's decisions in a row that failed (reason
	// error: the store locked or gone), lastFail when the last did. Past
	// a few, the gate is up but cannot decide: not ready.
	failing  int
	lastFail time.Time
}

// failingDecisions is how many failed decisions in a row, the last
// within failingFor, make the gate not ready.
const (
	failingDecisions = 3
	failingFor       = time.Minute
)

// Decided records a decision's outcome for readiness.
func (h *Health) Decided(r tollguard.Reason, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r == tollguard.ReasonError {
		h.failing++
		h.lastFail = at
	} else if r != tollguard.ReasonEmergency { // emergency ones are let through, failing or not
		h.failing = 0
	}
}

// NewHealth returns a Health with ARI disabled.
func NewHealth() *Health { return &Health{ari: "disabled", schemaOK: true} }

func (h *Health) SetStore(ok bool)    { h.mu.Lock(); h.store = ok; h.mu.Unlock() }
func (h *Health) SetSchemaOK(ok bool) { h.mu.Lock(); h.schemaOK = ok; h.mu.Unlock() }
func (h *Health) SetAGIBound(ok bool) { h.mu.Lock(); h.agiBound = ok; h.mu.Unlock() }
func (h *Health) SetARI(state string) { h.mu.Lock(); h.ari = state; h.mu.Unlock() }

// AGIServing reports whether the FastAGI server is bound and serving.
func (h *Health) AGIServing() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.agiBound }

type healthReport struct {
	Ready    bool   `json:"ready"`
	Store    bool   `json:"store_open"`
	Schema   bool   `json:"schema_current"`
	AGIBound bool   `json:"agi_listening"`
	Deciding bool   `json:"gate_deciding"`
	ARI      string `json:"ari"`
}

func (h *Health) report(agiEnabled bool, now time.Time) healthReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	deciding := h.failing < failingDecisions || now.Sub(h.lastFail) > failingFor
	return healthReport{Ready: h.store && h.schemaOK && deciding && (h.agiBound || !agiEnabled), Store: h.store, Schema: h.schemaOK,
		AGIBound: h.agiBound, Deciding: deciding, ARI: h.ari}
}

// metricsMaxConns caps the metrics listener's open connections.
const metricsMaxConns = 32

// startMetrics serves /metrics, /healthz and /readyz.
func (d *daemon) startMetrics(ctx context.Context) error {
	addr := d.app.Config.Metrics.Listen
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "metrics: cannot listen on %s: %v (set [metrics] listen, or enabled = false)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": version})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		rep := d.health.report(d.app.Config.AGI.Enabled, time.Now())
		w.Header().Set("Content-Type", "application/json")
		if !rep.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rep)
	})
	// A scraper needs a connection or two. Bounded, so that idle or slow
	// clients cannot use up the file descriptors the gate shares.
	ln = netutil.LimitListener(ln, metricsMaxConns)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 5 * time.Second}
	d.goFunc("metrics", func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server stopped: /metrics, /healthz and /readyz are gone until tollguard restarts; calls are still gated. Check [metrics] listen", "err", err)
		}
	})
	d.goFunc("metrics-shutdown", func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	d.log.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}

// agiMetrics adapts the FastAGI server's measurements to Prometheus,
// and tells h (when set) how decisions go, for /readyz.
type agiMetrics struct {
	m *Metrics
	h *Health
}

func (a agiMetrics) SessionStart() { a.m.SessionsInFlight.Inc() }
func (a agiMetrics) SessionEnd()   { a.m.SessionsInFlight.Dec() }
func (a agiMetrics) Decision(v tollguard.Verdict, r tollguard.Reason, took time.Duration) {
	a.Recorded(v, r)
	a.m.DecisionLatency.Observe(took.Seconds())
}
func (a agiMetrics) Recorded(v tollguard.Verdict, r tollguard.Reason) {
	a.m.Decisions.WithLabelValues(string(v), string(r)).Inc()
	if a.h != nil {
		a.h.Decided(r, time.Now())
	}
}
func (a agiMetrics) Settled(by string, changed bool) {
	c := "false"
	if changed {
		c = "true"
	}
	a.m.Settlements.WithLabelValues(by, c).Inc()
}
func (a agiMetrics) SettleFailed(by string) { a.m.SettleFailures.WithLabelValues(by).Inc() }
func (a agiMetrics) Refused(reason string)  { a.m.Refused.WithLabelValues(reason).Inc() }
