package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
)

// missingDefaultAccount is what serve logs when allow_unknown names a
// default_account the store does not hold.
const missingDefaultAccount = "reason=default_account_not_found"

// writeDefaultAccountConfig writes a config at path with allow_unknown
// on and default_account acct, on the database db.
func writeDefaultAccountConfig(t *testing.T, path, db, acct string) {
	t.Helper()
	body := fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nenabled = false\n[gate]\nallow_unknown = true\ndefault_account = %q\n", db, acct)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// addAccount adds account id to the database cfg names.
func addAccount(t *testing.T, cfg, id string) {
	t.Helper()
	if out, errs, code := runCLI(t, "--config", cfg, "account", "add", id, "--country", "GB", "--currency", "GBP"); code != 0 {
		t.Fatalf("account add %s: exit %d\n%s%s", id, code, out, errs)
	}
}

// TestServeLogsMissingDefaultAccount: with allow_unknown on and a
// default_account the store does not hold, serve started without a word
// and then denied every call from an unknown extension. It now logs an
// error at start, and still serves: the gate works for the extensions
// it knows.
func TestServeLogsMissingDefaultAccount(t *testing.T) {
	for _, tc := range []struct {
		name, acct string
		want       bool
	}{
		{"Missing", "nosuch", true},
		{"Present", "acme", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "tollguard.toml")
			writeDefaultAccountConfig(t, cfg, filepath.Join(dir, "tollguard.db"), tc.acct)
			t.Setenv("TOLLGUARD_CONFIG", "")
			t.Setenv("TOLLGUARD_DB", "")
			t.Setenv("TOLLGUARD_AGI_ADDR", "")
			addAccount(t, cfg, "acme")

			cancel, done, logs := startServe(t, cfg)
			testutil.Eventually(t, 10*time.Second, "serve serving", func() bool {
				return strings.Contains(logs.String(), "tollguard serving")
			})
			stopServe(t, cancel, done, logs, 15*time.Second)
			line := logLine(logs.String(), missingDefaultAccount)
			switch {
			case tc.want && line == "":
				t.Fatalf("serve logged nothing of default_account %q, which is no account:\n%s", tc.acct, logs.String())
			case tc.want && (!strings.Contains(line, "level=ERROR") || !strings.Contains(line, "account="+tc.acct) || !strings.Contains(line, "tollguard account add ID")):
				t.Errorf("want an ERROR with account=%s that says to add it; got:\n%s", tc.acct, line)
			case !tc.want && line != "":
				t.Errorf("default_account %q exists, but serve logged:\n%s", tc.acct, line)
			}
		})
	}
}

// TestReloadLogsMissingDefaultAccount: a SIGHUP that sets allow_unknown's
// default_account to no account logs the error serve logs at start, and
// keeps the gate running; a reload that does not change it says nothing
// again.
func TestReloadLogsMissingDefaultAccount(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tollguard.db")
	path := filepath.Join(dir, "tollguard.toml")
	writeDefaultAccountConfig(t, path, dbPath, "acme")
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_DB", "")
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	addAccount(t, path, "acme")
	_, db := openApp(t, dbPath)
	d, logs := reloadableDaemon(t, path, db)

	for _, step := range []struct {
		name, acct string
		want       int // missing-account errors logged so far
	}{
		{"ToMissing", "nosuch", 1},
		{"Unchanged", "nosuch", 1},
		{"BackToPresent", "acme", 1},
		{"ToMissingAgain", "Acme", 2}, // ids are case-sensitive
	} {
		writeDefaultAccountConfig(t, path, dbPath, step.acct)
		d.reload()
		if got := strings.Count(logs.String(), missingDefaultAccount); got != step.want {
			t.Fatalf("%s: %d missing default_account errors after reloading default_account %q; want %d:\n%s", step.name, got, step.acct, step.want, logs.String())
		}
		if got := d.gate.Load().DefaultAccount; got != step.acct {
			t.Fatalf("%s: default_account in force after reload = %q; want %q", step.name, got, step.acct)
		}
	}
	if line := logLine(logs.String(), missingDefaultAccount); !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "account=nosuch") {
		t.Errorf("want an ERROR with account=nosuch; got:\n%s", line)
	}
}

// TestConfigCheckWarnsOfMissingDefaultAccount: config check passed a
// default_account the database does not hold. It warns now, reading the
// database without creating it, and still passes: serve starts with it,
// and an admin runs the check before restarting serve.
func TestConfigCheckWarnsOfMissingDefaultAccount(t *testing.T) {
	for _, tc := range []struct {
		name, acct string
		noDB       bool
		held       bool   // serve has the database open: acme is in its -wal file
		want       string // in stderr; "" for nothing
	}{
		{name: "Missing", acct: "nosuch", want: "default_account \"nosuch\" is not an account in "},
		{name: "Present", acct: "acme"},
		{name: "PresentInWAL", acct: "acme", held: true},
		{name: "NoDatabase", acct: "acme", noDB: true, want: "(no database there yet; serve creates it empty)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dbPath := filepath.Join(dir, "tollguard.db")
			cfg := filepath.Join(dir, "tollguard.toml")
			writeDefaultAccountConfig(t, cfg, dbPath, tc.acct)
			t.Setenv("TOLLGUARD_CONFIG", "")
			t.Setenv("TOLLGUARD_DB", "")
			t.Setenv("TOLLGUARD_AGI_ADDR", "")
			if tc.held {
				app, _ := openApp(t, dbPath)
				defer app.Close()
			}
			if !tc.noDB {
				addAccount(t, cfg, "acme")
			}
			out, errs, code := runCLI(t, "config", "check", cfg)
			if code != 0 || !strings.Contains(out, cfg+": ok") {
				t.Fatalf("config check: exit %d, want 0 and ok:\n%s%s", code, out, errs)
			}
			switch {
			case tc.want == "" && errs != "":
				t.Errorf("config check with default_account %q present warned:\n%s", tc.acct, errs)
			case tc.want != "" && (!strings.Contains(errs, tc.want) || !strings.HasPrefix(errs, cfg+":8: warning: ") ||
				!strings.Contains(errs, "tollguard account add "+tc.acct)):
				t.Errorf("config check: want a warning at %s:8 with %q that says to add the account; got:\n%s", cfg, tc.want, errs)
			}
			if _, err := os.Stat(dbPath); tc.noDB && err == nil {
				t.Errorf("config check created the database %s", dbPath)
			}
		})
	}
}

// logLine returns the first line of logs that holds s, or "".
func logLine(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
