package faulttest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileHash hashes a file's bytes ("" if it does not exist).
func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return string(h[:])
}

// TestBadInput runs wrong command lines and broken config files against
// a seeded database. Each must exit 2 with a message that names the
// problem (and, for config files, the line), print nothing on stdout,
// and write nothing: the database's rows and its file's bytes are the
// same afterwards.
func TestBadInput(t *testing.T) {
	e := NewEnv(t, nil)
	e.Seed(testDeck, Account{ID: "acme", Credit: "10.00", Extensions: []string{"1001"}})
	os.WriteFile(filepath.Join(e.Dir, "bad-deck.csv"), []byte("prefix,destination,rate\n44,UK,0.01\n4x,bad,0.01\n33,FR,-1\n"), 0o600)

	configs := map[string]string{
		"syntax.toml":        "[agi\nlisten = \"127.0.0.1:4573\"\n",
		"unknown-key.toml":   "[agi]\nlisten = \"127.0.0.1:4573\"\nlisen = \"127.0.0.1:1\"\n",
		"bad-cidr.toml":      "[agi]\nallowed = [\"127.0.0.1/32\", \"10.0.0.0/33\"]\n",
		"bad-duration.toml":  "[gate]\nsweep_interval = \"5 minutes\"\n",
		"negative.toml":      "[agi]\ndecision_timeout = \"-300ms\"\n",
		"bad-level.toml":     "[log]\nlevel = \"loud\"\n",
		"bad-listen.toml":    "[agi]\nlisten = \"4573\"\n",
		"bad-country.toml":   "[gate]\ndefault_country = \"GBR\"\n",
		"wrong-type.toml":    "[agi]\nmax_sessions = \"many\"\n",
		"bad-webhook.toml":   "[alerts.webhook]\nenabled = true\nurl = \"ftp://example.net/hook\"\n",
		"unknown-table.toml": "[gateway]\nlisten = \"x\"\n",
	}
	for name, text := range configs {
		if err := os.WriteFile(filepath.Join(e.Dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		// Money and currency.
		{"MoneyTooManyDecimals", []string{"credit", "add", "acme", "1.005"}, []string{`amount "1.005": too many decimal places (at most 2)`}},
		{"MoneyNotANumber", []string{"credit", "add", "acme", "£5"}, []string{`amount "£5": not a decimal amount`}},
		{"MoneyThousands", []string{"credit", "add", "acme", "1,000.00"}, []string{`not a decimal amount`}},
		{"CallCapDecimals", []string{"account", "set", "acme", "--call-cap", "1.001"}, []string{`--call-cap`, `too many decimal places`}},
		{"CeilingNegative", []string{"account", "set", "acme", "--national-ceiling", "-1"}, []string{`--national-ceiling`, `must not be negative`}},
		{"BadCurrency", []string{"account", "add", "x", "--country", "GB", "--currency", "EURO"}, []string{`currency "EURO": not an ISO 4217 currency`}},
		{"CurrencySymbol", []string{"account", "add", "x", "--country", "GB", "--currency", "£"}, []string{`not an ISO 4217 currency`}},
		{"BadCountry", []string{"account", "add", "x", "--country", "ZZ", "--currency", "GBP"}, []string{`country "ZZ"`}},
		{"DuplicateAccount", []string{"account", "add", "acme", "--country", "GB", "--currency", "GBP"}, []string{`account "acme" already exists`}},
		{"NegativeMaxCallSecs", []string{"account", "add", "y", "--country", "GB", "--currency", "GBP", "--max-call-secs", "-5"}, []string{`--max-call-secs -5: want 0`}},
		// Missing and unknown arguments.
		{"MissingAmount", []string{"credit", "add", "acme"}, []string{`accepts 2 arg(s), received 1`}},
		{"MissingCurrency", []string{"account", "add", "x", "--country", "GB"}, []string{`"currency" not set`}},
		{"MissingAccountFlag", []string{"ext", "add", "1002"}, []string{`"account" not set`}},
		{"UnknownCommand", []string{"bogus"}, []string{`unknown command "bogus"`}},
		{"UnknownFlag", []string{"credit", "add", "acme", "1.00", "--bogus"}, []string{`unknown flag: --bogus`}},
		{"UnknownAccount", []string{"credit", "add", "nobody", "1.00"}, []string{`account "nobody" not found`}},
		{"UnknownExtension", []string{"ext", "set", "9999", "--description", "x"}, []string{`extension "9999" not found`}},
		{"ExtOnUnknownAccount", []string{"ext", "add", "1002", "--account", "nobody"}, []string{`account "nobody" not found`}},
		// Networks, times, prefixes, decks.
		{"BadCIDR", []string{"ext", "add", "1002", "--account", "acme", "--cidr", "10.0.0.0/33"}, []string{`network "10.0.0.0/33"`}},
		{"BadCIDRWord", []string{"ext", "set", "1001", "--cidr", "banana"}, []string{`network "banana"`}},
		{"BadZone", []string{"schedule", "set", "acme", "--zone", "Mars/Base"}, []string{`time zone "Mars/Base"`}},
		{"BadHours", []string{"schedule", "set", "acme", "--hours", "mon-fri 25:00-18:00"}, []string{`start "25:00"`}},
		{"BadPrefix", []string{"rule", "add", "deny", "+abc"}, []string{`prefix "+abc"`}},
		{"BadSince", []string{"calls", "--since", "yesterday"}, []string{`--since "yesterday"`}},
		{"BadDeck", []string{"rates", "import", "bad-deck.csv"}, []string{"line 3:", `prefix "4x"`, "line 4:", `rate "-1"`, "nothing was imported"}},
		{"MissingDeck", []string{"rates", "import", "no-such-deck.csv"}, []string{"no-such-deck.csv"}},
		{"BlockWithoutReason", []string{"ext", "block", "1001"}, []string{`--reason is required`}},
		// Broken config files, for any command.
		{"ConfigSyntax", []string{"--config", "syntax.toml", "credit", "add", "acme", "1.00"}, []string{"syntax.toml:1:5:"}},
		{"ConfigUnknownKey", []string{"--config", "unknown-key.toml", "credit", "add", "acme", "1.00"}, []string{`unknown-key.toml:3: unknown setting "agi.lisen"`}},
		{"ConfigUnknownTable", []string{"--config", "unknown-table.toml", "ext", "set", "1001", "--description", "x"}, []string{`unknown-table.toml:2: unknown setting "gateway.listen"`}},
		{"ConfigBadCIDR", []string{"--config", "bad-cidr.toml", "credit", "add", "acme", "1.00"}, []string{`bad-cidr.toml:2:`, `"10.0.0.0/33"`}},
		{"ConfigBadDuration", []string{"--config", "bad-duration.toml", "credit", "add", "acme", "1.00"}, []string{`bad-duration.toml:2:`, `"5 minutes" is not a duration`}},
		{"ConfigNegativeDuration", []string{"--config", "negative.toml", "credit", "add", "acme", "1.00"}, []string{`negative.toml:2:`, `must not be negative`}},
		{"ConfigBadLevel", []string{"--config", "bad-level.toml", "credit", "add", "acme", "1.00"}, []string{`bad-level.toml:2: log level "loud"`}},
		{"ConfigBadListen", []string{"--config", "bad-listen.toml", "credit", "add", "acme", "1.00"}, []string{`bad-listen.toml:2:`, `"4573": want host:port`}},
		{"ConfigBadCountry", []string{"--config", "bad-country.toml", "credit", "add", "acme", "1.00"}, []string{`bad-country.toml:2:`, `"GBR"`}},
		{"ConfigWrongType", []string{"--config", "wrong-type.toml", "credit", "add", "acme", "1.00"}, []string{`wrong-type.toml:2:`, `max_sessions`}},
		{"ConfigBadWebhook", []string{"--config", "bad-webhook.toml", "credit", "add", "acme", "1.00"}, []string{`bad-webhook.toml:3:`, `"ftp://example.net/hook"`}},
		{"ConfigMissing", []string{"--config", "no-such.toml", "credit", "add", "acme", "1.00"}, []string{`no-such.toml`}},
		{"ConfigCheck", []string{"--config", "unknown-key.toml", "config", "check"}, []string{`unknown-key.toml:3:`}},
		{"ServeBadConfig", []string{"--config", "bad-cidr.toml", "serve"}, []string{`bad-cidr.toml:2:`}},
	}

	before := e.Digest()
	dbBytes := fileHash(t, e.DB)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.CLI(c.args...)
			if r.Code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.Code, r)
			}
			if !strings.HasPrefix(r.Stderr, "tollguard: ") {
				t.Errorf("stderr does not start with \"tollguard: \":\n%s", r.Stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
				}
			}
			if r.Stdout != "" {
				t.Errorf("stdout not empty: %q", r.Stdout)
			}
			// Nothing written: the rows, and the file itself.
			if after := e.Digest(); after.Hash != before.Hash {
				t.Fatalf("the database changed: %v → %v", before.Counts, after.Counts)
			}
			if h := fileHash(t, e.DB); h != dbBytes {
				t.Errorf("the database file's bytes changed")
			}
			if b, _ := os.ReadFile(e.DB + "-wal"); len(bytes.TrimRight(b, "\x00")) > 0 {
				t.Errorf("a write-ahead log with %d bytes was left behind", len(b))
			}
		})
	}

	t.Run("ServeBadConfigCreatesNothing", func(t *testing.T) {
		fresh := filepath.Join(e.Dir, "fresh.db")
		cfg := filepath.Join(e.Dir, "fresh.toml")
		os.WriteFile(cfg, []byte("db = \""+fresh+"\"\n[agi]\nlisten = \"127.0.0.1:0\"\ndecision_timeout = \"9s\"\n"), 0o600)
		r := e.CLI("--config", cfg, "--db", fresh, "serve")
		if r.Code != 2 || !strings.Contains(r.Stderr, "fresh.toml:4:") || !strings.Contains(r.Stderr, "decision_timeout") {
			t.Errorf("%s", r)
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Errorf("serve with a broken config created its database (%v)", err)
		}
	})
}

// TestServePortInUse: a FastAGI address that cannot be bound (taken, or
// not up yet at boot) is not bad input: serve exits 1, which the unit's
// Restart= retries, not 2, which RestartPreventExitStatus leaves down.
func TestServePortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	e := NewEnv(t, map[string]Section{"agi": {"listen": fmt.Sprintf("%q", taken.Addr().String())}})
	e.Seed(testDeck, Account{ID: "acme", Credit: "10.00", Extensions: []string{"1001"}})
	r := e.CLI("serve")
	if r.Code != 1 || !strings.Contains(r.Stderr, "cannot listen on "+taken.Addr().String()) {
		t.Errorf("serve on a taken port: exit %d, want 1\n%s", r.Code, r)
	}
}
