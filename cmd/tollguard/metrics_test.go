package main

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/tollguard/tollguard/ari"
)

// TestMetricsAtZero: every known series exists from the start: a counter
// that first appears at 1 is invisible to rate() and increase(), so the
// first overrun call or refusal after a start went unseen. Decisions
// exist for the verdict each reason has: no deny/ok.
func TestMetricsAtZero(t *testing.T) {
	m := NewMetrics()
	m.Notifiers([]string{"email"})
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]bool{}
	for _, f := range fams {
		for _, mm := range f.GetMetric() {
			series[seriesName(f, mm)] = true
		}
	}
	for _, want := range []string{
		`tollguard_calls_overran_total{action="hung_up"}`,
		`tollguard_agi_refused_total{reason="not_allowed"}`,
		`tollguard_settlements_total{by="agi",changed="true"}`,
		`tollguard_settle_failures_total{by="ari"}`,
		`tollguard_sweep_settled_total{how="channel_gone"}`,
		`tollguard_decisions_total{reason="whitelist",verdict="allow"}`,
		`tollguard_decisions_total{reason="emergency",verdict="allow"}`,
		`tollguard_decisions_total{reason="high_risk",verdict="deny"}`,
		`tollguard_alerts_total{kind="credentials_compromised"}`,
		`tollguard_audit_findings_total{audit="pins",severity="warning"}`,
		`tollguard_alerts_undelivered_total{notifier="email"}`,
		`tollguard_notifications_sent_total{notifier="email"}`,
		`tollguard_ari_enabled`,
		`tollguard_registration_resyncs_total{result="ok",trigger="connect"}`,
		`tollguard_registration_resyncs_total{result="partial",trigger="periodic"}`,
		`tollguard_registration_resyncs_total{result="error",trigger="retry"}`,
		`tollguard_registration_resync_changes_total{change="ended"}`,
		`tollguard_registration_resync_contacts`,
	} {
		if !series[want] {
			t.Errorf("no series %s at start", want)
		}
	}
	for _, absent := range []string{`tollguard_decisions_total{reason="ok",verdict="deny"}`, `tollguard_decisions_total{reason="emergency",verdict="deny"}`} {
		if series[absent] {
			t.Errorf("a series that cannot happen: %s", absent)
		}
	}
}

// TestJSONLogDurations: JSON logs wrote durations as bare nanoseconds
// ("took":383359); they are text, as in the text format.
func TestJSONLogDurations(t *testing.T) {
	var buf strings.Builder
	LogConfig{Level: "info", Format: "json"}.NewLogger(&buf).Info("x", "took", 1500*time.Microsecond, "n", 3)
	if out := buf.String(); !strings.Contains(out, `"took":"1.5ms"`) || !strings.Contains(out, `"n":3`) {
		t.Errorf("%s", out)
	}
}

// TestResyncMetrics: the ARI listener's resync reports count passes by
// trigger and result, and what they found that no event had told; a
// failed pass counts as one, changing nothing else.
func TestResyncMetrics(t *testing.T) {
	m := NewMetrics()
	h := &ariHooks{d: &daemon{metrics: m, health: NewHealth()}}
	h.Resynced(ari.ResyncReport{Trigger: ari.ResyncConnect, Result: ari.ResyncOK, Contacts: 40, New: 3})
	h.Resynced(ari.ResyncReport{Trigger: ari.ResyncPeriodic, Result: ari.ResyncPartial, Contacts: 12, Changed: 1, Ended: 2})
	h.Resynced(ari.ResyncReport{Trigger: ari.ResyncRetry, Result: ari.ResyncError, Err: errors.New("ARI down")})
	for series, want := range map[string]float64{
		`tollguard_registration_resyncs_total{result="ok",trigger="connect"}`:       1,
		`tollguard_registration_resyncs_total{result="partial",trigger="periodic"}`: 1,
		`tollguard_registration_resyncs_total{result="error",trigger="retry"}`:      1,
		`tollguard_registration_resyncs_total{result="ok",trigger="periodic"}`:      0,
		`tollguard_registration_resync_contacts`:                                    12,
		`tollguard_registration_resync_changes_total{change="new"}`:                 3,
		`tollguard_registration_resync_changes_total{change="changed"}`:             1,
		`tollguard_registration_resync_changes_total{change="ended"}`:               2,
	} {
		if got, ok := metricValue(t, m, series); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
}

// metricValue reads one series, written as in TestMetricsAtZero.
func metricValue(t *testing.T, m *Metrics, series string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, mm := range f.GetMetric() {
			if seriesName(f, mm) != series {
				continue
			}
			switch {
			case mm.GetCounter() != nil:
				return mm.GetCounter().GetValue(), true
			case mm.GetGauge() != nil:
				return mm.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// seriesName writes a series as name{label="value",...}, labels sorted.
func seriesName(f *dto.MetricFamily, m *dto.Metric) string {
	var labels []string
	for _, l := range m.GetLabel() {
		labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
	}
	sort.Strings(labels)
	if len(labels) == 0 {
		return f.GetName()
	}
	return f.GetName() + "{" + strings.Join(labels, ",") + "}"
}
