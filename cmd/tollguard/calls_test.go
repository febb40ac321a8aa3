package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestCLICallsRolledUp: calls older than retention_days are rolled up
// into monthly totals and deleted. `tollguard calls --since 90d` listed
// what remained as if there had been nothing older, and `--ext` of a
// deleted extension whose calls were all rolled up said no call was
// ever recorded for it.
func TestCLICallsRolledUp(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c := newCLI(t)
	c.seed()
	c.ok("ext", "add", "1002", "--account", "acme", "--cidr", "192.0.2.0/24")
	c.ok("account", "add", "beta", "--country", "GB", "--currency", "GBP")

	app, db := openApp(t, c.db)
	deny := func(ext string, at time.Time) {
		t.Helper()
		app.Now = func() time.Time { return at }
		db.Now = app.Now
		// From outside the allowed networks: denied, so never open.
		dec, err := app.Policy(db).Decide(ctx, tollguard.Call{Extension: ext, Dialled: "02079460000", Remote: "203.0.113.9"})
		if err != nil || dec.Allowed() {
			t.Fatalf("call of %s: %+v %v; want it denied", ext, dec, err)
		}
	}
	deny("1001", now.AddDate(0, 0, -60))
	deny("1002", now.AddDate(0, 0, -45))
	deny("1001", now.AddDate(0, 0, -5))
	db.Now = func() time.Time { return now }
	if n, err := db.Rollup(ctx, store.RollupBefore(now, 30), 0); err != nil || n != 2 {
		t.Fatalf("rolled up %d, %v; want 2", n, err)
	}
	if err := db.DeleteExtension(ctx, "1002"); err != nil {
		t.Fatal(err)
	}
	app.Close()

	cfg := filepath.Join(t.TempDir(), "tollguard.toml")
	if err := os.WriteFile(cfg, []byte("[gate]\nretention_days = 30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The CLI at now, on the daemon's config.
	runAt := func(db string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		app := NewApp(strings.NewReader(""), &termSafe{w: &out}, &errb)
		app.Now = func() time.Time { return now }
		code := runApp(ctx, app, append([]string{"--db", db, "--config", cfg}, args...))
		return code, out.String(), errb.String()
	}
	const note = "tollguard: note: older calls of this period may not be listed: calls before 2026-10-24T12:00:00Z are rolled up into monthly totals per account after [gate] retention_days = 30. No command lists those totals; they still count in the spend audit (`tollguard audit spend`)"

	for _, tc := range []struct {
		name string
		args []string
		note bool
	}{
		{name: "SinceReachesPastCutoff", args: []string{"--since", "90d"}, note: true},
		{name: "AllByDefault", note: true},
		{name: "SinceInTheCutoffsMonth", args: []string{"--since", "40d"}, note: true},
		{name: "ThisAccount", args: []string{"--account", "acme", "--since", "90d"}, note: true},
		{name: "ExtensionKept", args: []string{"--ext", "1001"}, note: true}, // the totals keep no extension
		{name: "SinceWithinRetention", args: []string{"--since", "7d"}},
		// After the cutoff, though October has totals: none of its calls
		// since 28 October can have been rolled up.
		{name: "SinceAfterCutoffInItsMonth", args: []string{"--since", "26d"}},
		{name: "PageFull", args: []string{"--limit", "1"}}, // the older calls were past the page anyway
		{name: "OpenCallsNeverRolledUp", args: []string{"--open"}},
		{name: "AccountWithoutTotals", args: []string{"--account", "beta"}},
		{name: "VerdictWithoutTotals", args: []string{"--verdict", "allow"}},
		{name: "ReasonsVerdictWithoutTotals", args: []string{"--reason", "ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runAt(c.db, append([]string{"calls"}, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
			}
			if got := strings.Contains(errs, note); got != tc.note {
				t.Errorf("calls %s: note on stderr %v, want %v\nstderr: %q", strings.Join(tc.args, " "), got, tc.note, errs)
			}
			if strings.Contains(out, "note:") {
				t.Errorf("the note went to stdout:\n%s", out)
			}
		})
	}

	t.Run("JSONKeepsItsArray", func(t *testing.T) {
		code, out, errs := runAt(c.db, "calls", "--since", "90d", "--json")
		var calls []map[string]any
		if err := json.Unmarshal([]byte(out), &calls); code != exitOK || err != nil || len(calls) != 1 {
			t.Fatalf("exit %d, %d calls, %v; want exit 0 and the kept call as a JSON array\n%s", code, len(calls), err, out)
		}
		if !strings.Contains(errs, note) {
			t.Errorf("no note on stderr with --json: %q", errs)
		}
	})

	t.Run("DeletedExtensionRolledUp", func(t *testing.T) {
		code, out, errs := runAt(c.db, "calls", "--ext", "1002")
		want := `--ext: extension "1002" not found, and none of the calls kept is from it; calls before 2026-10-24T12:00:00Z are rolled up into monthly totals per account after [gate] retention_days = 30`
		if code != exitUsage || !strings.Contains(errs, want) || strings.Contains(errs, "ever") {
			t.Errorf("exit %d, stderr %q; want exit 2 saying %q\nstdout: %s", code, errs, want, out)
		}
	})

	t.Run("NothingRolledUp", func(t *testing.T) {
		fresh := newCLI(t)
		fresh.seed()
		code, out, errs := runAt(fresh.db, "calls", "--since", "90d")
		if code != exitOK || strings.Contains(errs, "note:") {
			t.Errorf("exit %d, stderr %q; want exit 0 and no note\nstdout: %s", code, errs, out)
		}
		code, _, errs = runAt(fresh.db, "calls", "--ext", "1002")
		if want := `--ext: extension "1002" not found, and no call was ever recorded for it`; code != exitUsage || !strings.Contains(errs, want) {
			t.Errorf("exit %d, stderr %q; want exit 2 saying %q", code, errs, want)
		}
	})
}
