package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestReloadedGateReachesARIAndAudits: the README says [gate] applies at
// once on SIGHUP, but the ARI listener kept the start-up default_country
// for endpoints not in the store, and the scheduled audits kept the
// start-up selftest_number. Both now follow the reload.
func TestReloadedGateReachesARIAndAudits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollguard.toml")
	write := func(country, selftest string) {
		t.Helper()
		body := fmt.Sprintf("db = %q\n[gate]\ndefault_country = %q\nselftest_number = %q\n", filepath.Join(dir, "tg.db"), country, selftest)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("GB", "0099999999999")
	t.Setenv("TOLLGUARD_CONFIG", "")
	d, _ := reloadableDaemon(t, path, nil)
	l := &ari.Listener{DefaultPlan: tollguard.NumberPlan{Country: d.app.Config.Gate.DefaultCountry}}
	d.followGate(l)

	write("US", "01199999999999")
	d.reload()
	if got := l.CurrentDefaultPlan().Country; got != "US" {
		t.Errorf("ARI listener's default country after reload = %q; want US", got)
	}
	if got := d.auditConfig().Gate.SelftestNumber; got != "01199999999999" {
		t.Errorf("audits' selftest number after reload = %q; want 01199999999999", got)
	}
}

// TestReloadSaysAuditsWaitForARestart: with [audit] disabled at start,
// turning it on and sending SIGHUP logged only "config reloaded", so the
// admin took the audits for scheduled. The change waits for a restart
// and the log says so, as for any other [audit] change.
func TestReloadSaysAuditsWaitForARestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollguard.toml")
	write := func(enabled bool) {
		t.Helper()
		body := fmt.Sprintf("db = %q\n[audit]\nenabled = %v\n", filepath.Join(dir, "tg.db"), enabled)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(false)
	t.Setenv("TOLLGUARD_CONFIG", "")
	d, logs := reloadableDaemon(t, path, nil)
	if err := startCron(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	write(true)
	d.reload()
	if !strings.Contains(logs.String(), "takes effect after a restart\" setting=audit.enabled") {
		t.Errorf("enabling [audit] on reload was not logged as waiting for a restart:\n%s", logs.String())
	}
}

// TestReloadNamesEachSettingWaiting: the log named only the section of
// an [ari], [alerts], [detectors] or [audit] change; the README promises
// each setting's name.
func TestReloadNamesEachSettingWaiting(t *testing.T) {
	logs := &testutil.Buffer{}
	d := &daemon{log: slog.New(slog.NewTextHandler(logs, nil))}
	was := DefaultConfig()
	now := DefaultConfig()
	now.Alerts.CoolDown.Duration *= 2
	now.ARI.URL = "http://192.0.2.1:8088/ari"
	now.ARI.Enabled = !was.ARI.Enabled
	d.warnRestart("alerts", was.Alerts, now.Alerts)
	d.warnRestart("ari", was.ARI, now.ARI, "enabled")
	got := logs.String()
	for _, want := range []string{"setting=alerts.cool_down", "setting=ari.url"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "ari.enabled") || strings.Count(got, "takes effect after a restart") != 2 {
		t.Errorf("want exactly the two changed settings:\n%s", got)
	}
}

// TestReloadRefusesAnEmptyConfig: a config file emptied before a SIGHUP
// (a full disk, an editor that died mid-save) was reloaded as every
// default: [gate] fell back at once, acl_requires_source off among them,
// and the log said only "config reloaded". The reload is refused now,
// and a reload that does change [gate] names each setting it changed.
func TestReloadRefusesAnEmptyConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollguard.toml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("db = %q\n[gate]\nacl_requires_source = true\nafter_hours_grace = \"5m\"\n", filepath.Join(dir, "tg.db")))
	t.Setenv("TOLLGUARD_CONFIG", "")
	d, logs := reloadableDaemon(t, path, nil)

	for _, empty := range []string{"", " \n\n"} {
		write(empty)
		d.reload()
		if g := d.gate.Load(); !g.ACLRequiresSource || g.AfterHoursGrace.Minutes() != 5 {
			t.Fatalf("an empty config (%q) was reloaded: [gate] is now %+v", empty, *g)
		}
	}
	if out := logs.String(); strings.Contains(out, "config reloaded") || !strings.Contains(out, "the file is empty") {
		t.Errorf("log for an empty config:\n%s", out)
	}

	write("# the defaults\n")
	d.reload()
	if g := d.gate.Load(); g.ACLRequiresSource {
		t.Fatal("a config of comments only kept the old [gate]")
	}
	out := logs.String()
	for _, want := range []string{
		`msg="setting changed; applied now" setting=gate.acl_requires_source running=true configured=false`,
		`setting=gate.after_hours_grace running=5m0s configured=15m0s`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// TestReloadDoesNotSaySweepIntervalApplied: sweep_interval sets the
// sweep's ticker once, at start. A reload changing it was logged twice,
// as waiting for a restart and as "applied now"; only the first is true.
func TestReloadDoesNotSaySweepIntervalApplied(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollguard.toml")
	write := func(interval string) {
		t.Helper()
		body := fmt.Sprintf("db = %q\n[gate]\nsweep_interval = %q\n", filepath.Join(dir, "tg.db"), interval)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("1m")
	t.Setenv("TOLLGUARD_CONFIG", "")
	d, logs := reloadableDaemon(t, path, nil)
	write("30s")
	d.reload()
	out := logs.String()
	if !strings.Contains(out, `msg="setting changed; it takes effect after a restart" setting=gate.sweep_interval running=1m0s configured=30s`) {
		t.Errorf("the log does not say sweep_interval waits for a restart:\n%s", out)
	}
	if strings.Contains(out, `msg="setting changed; applied now" setting=gate.sweep_interval`) {
		t.Errorf("the log says sweep_interval was applied:\n%s", out)
	}
}

// TestServeWarnsOfAnEmptyConfig: serve started on an empty config file
// ran on every default (no ARI, no audits) without a word, though a
// reload of that file is refused; it still starts (refusing would fail
// every toll call closed), and warns. A file of comments means the
// defaults on purpose: no warning.
func TestServeWarnsOfAnEmptyConfig(t *testing.T) {
	for _, tc := range []struct {
		body string
		warn bool
	}{{"", true}, {"\n  \n", true}, {"# the defaults\n", false}} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "tollguard.toml")
		if err := os.WriteFile(cfg, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("TOLLGUARD_CONFIG", "")
		t.Setenv("TOLLGUARD_DB", filepath.Join(dir, "tg.db"))
		t.Setenv("TOLLGUARD_AGI_ADDR", "127.0.0.1:0")
		cancel, done, logs := startServe(t, cfg)
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "tollguard serving"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("serve on %q never started:\n%s", tc.body, logs.String())
			}
		}
		if got := strings.Contains(logs.String(), "the config file is empty"); got != tc.warn {
			t.Errorf("config %q: warned %v, want %v:\n%s", tc.body, got, tc.warn, logs.String())
		}
		stopServe(t, cancel, done, logs, 10*time.Second)
	}
}
