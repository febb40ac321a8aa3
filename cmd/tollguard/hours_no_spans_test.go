package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// storeHours writes spec into account id's hours in the SQLite file db,
// as a release before schedule set refused such specs left it.
func storeHours(t *testing.T, db, id, spec string) {
	t.Helper()
	s, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.SQL().Exec(`UPDATE accounts SET hours_spec = ? WHERE id = ?`, spec, id); err != nil {
		t.Fatal(err)
	}
}

// noSpansSpecs are the hours an older release stored that name no
// opening span: schedule set refused only ";" and " " from 889b365, any
// Unicode space from 6980bc4, and none before.
var noSpansSpecs = []string{";", " ; ", ";;", " ", "\t", "\r", "\n", "\r\n", "; \u00a0", "\u3000", "; ;"}

// TestCLIStoredHoursWithNoSpans: an account whose stored hours name no
// span is read as always open, so an international call at night is
// allowed. The gate keeps that decision (refusing it would fail every
// call), but schedule show, account show and check no longer present it
// as a schedule: each says it is read as always open and the command
// that sets the hours.
func TestCLIStoredHoursWithNoSpans(t *testing.T) {
	for _, spec := range noSpansSpecs {
		t.Run(fmt.Sprintf("%q", spec), func(t *testing.T) {
			c := newCLI(t)
			c.seed()
			c.ok("schedule", "set", "acme", "--zone", "Europe/London", "--hours", "mon-fri 09:00-17:00")
			storeHours(t, c.db, "acme", spec)
			fix := "`tollguard schedule set acme --hours \"mon-fri 08:00-18:00\"`"
			quoted := fmt.Sprintf("%q", spec)
			for _, args := range [][]string{{"schedule", "show", "acme"}, {"account", "show", "acme"}} {
				code, out, errs := c.run(args...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errs)
				}
				if strings.Contains(out, "(empty = always open)") || !strings.Contains(out, quoted+": no opening times, read as always open") {
					t.Errorf("%v shows the hours as a schedule:\n%s", args, out)
				}
				if strings.Count(errs, "warning:") != 1 || !strings.Contains(errs, "account acme's business hours "+quoted+" name no opening times") || !strings.Contains(errs, fix) {
					t.Errorf("%v: stderr lacks the warning with the fix:\n%s", args, errs)
				}
			}
			// JSON stays as it was; the warning goes to stderr only.
			if code, out, errs := c.run("schedule", "show", "acme", "--json"); code != 0 || !strings.Contains(errs, fix) || strings.Contains(out, "warning") {
				t.Errorf("schedule show --json: exit %d\nstdout %s\nstderr %s", code, out, errs)
			}
			// Saturday noon: closed under the schedule meant, allowed as before.
			out := c.ok("check", "1001", "0033123456789", "--at", "2026-11-21 12:00")
			if !strings.Contains(out, "verdict: allow") || !strings.Contains(out, "name no opening times, so they are read as always open") || !strings.Contains(out, fix) {
				t.Errorf("check at night:\n%s", out)
			}
		})
	}
}

// TestCLIStoredHoursSchedule: a real schedule is shown as before, with
// no warning.
func TestCLIStoredHoursSchedule(t *testing.T) {
	c := newCLI(t)
	c.seed()
	for _, spec := range []string{"", "mon-fri 09:00-17:00"} {
		c.ok("schedule", "set", "acme", "--hours", spec)
		for _, args := range [][]string{{"schedule", "show", "acme"}, {"account", "show", "acme"}} {
			code, out, errs := c.run(args...)
			if code != 0 || errs != "" || !strings.Contains(out, "(empty = always open)") || strings.Contains(out, "no opening times") {
				t.Errorf("hours %q, %v: exit %d\nstdout %s\nstderr %s", spec, args, code, out, errs)
			}
		}
	}
	if out := c.ok("check", "1001", "0033123456789", "--at", "2026-11-17 12:00"); strings.Contains(out, "no opening times") {
		t.Errorf("check within hours:\n%s", out)
	}
}

// TestServeWarnsOfStoredHoursWithNoSpans: serve logs a WARN at start for
// each account whose stored hours name no span, with the account, the
// stored value and the fix, and none for an account with a schedule.
func TestServeWarnsOfStoredHoursWithNoSpans(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tollguard.db")
	cfg := filepath.Join(dir, "tollguard.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nenabled = false\n", db)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_DB", "")
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	for _, id := range []string{"acme", "bolt", "calm"} {
		addAccount(t, cfg, id)
	}
	if _, errs, code := runCLI(t, "--config", cfg, "schedule", "set", "calm", "--hours", "mon-fri 09:00-17:00"); code != 0 {
		t.Fatalf("schedule set: exit %d: %s", code, errs)
	}
	storeHours(t, db, "acme", ";")
	storeHours(t, db, "bolt", "\r")

	cancel, done, logs := startServe(t, cfg)
	testutil.Eventually(t, 10*time.Second, "serve serving", func() bool {
		return strings.Contains(logs.String(), "tollguard serving")
	})
	stopServe(t, cancel, done, logs, 15*time.Second)
	all := logs.String()
	if n := strings.Count(all, "reason=hours_no_spans"); n != 2 {
		t.Errorf("want 2 warnings, got %d:\n%s", n, all)
	}
	for _, id := range []string{"acme", "bolt"} {
		line := logLine(all, "account="+id+" ")
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "reason=hours_no_spans") ||
			!strings.Contains(line, "read as always open") || !strings.Contains(line, "tollguard schedule set "+id+" --hours") {
			t.Errorf("account %s: want a WARN with the fix; got:\n%s", id, line)
		}
	}
	if line := logLine(all, `hours=`+`"\r"`); line == "" {
		t.Errorf("the stored value is not logged escaped:\n%s", all)
	}
	if strings.Contains(all, "account=calm") {
		t.Errorf("a real schedule was warned of:\n%s", all)
	}
}
