package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// cli runs tollguard's CLI in process against one database.
type cli struct {
	t  *testing.T
	db string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	t.Setenv("TOLLGUARD_CONFIG", "")
	return &cli{t: t, db: filepath.Join(t.TempDir(), "tollguard.db")}
}

// run returns exit code, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--db", c.db}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("tollguard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c *cli) seed() {
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP", "--name", "Acme Ltd")
	c.ok("credit", "add", "acme", "10.00", "--note", "opening")
	c.ok("ext", "add", "1001", "--account", "acme", "--cidr", "192.0.2.0/24")
	deck := filepath.Join(c.t.TempDir(), "deck.csv")
	os.WriteFile(deck, []byte("Dial Code;Destination;Rate per minute\n44;United Kingdom;0,0100\n447;UK mobile;0,0800\n33;France;0,0150\n"), 0o600)
	c.ok("rates", "import", deck)
}

// TestCLICheckNamesTheAttemptTally: `tollguard check` judges a call
// without --from as a forwarded or originated one, and says so in the
// rate-limit step: the admin asking why a phone is refused must see that
// its own calls are counted apart.
func TestCLICheckNamesTheAttemptTally(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("account", "set", "acme", "--ext-per-hour", "3")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "192.0.2.7"}, "counted among calls from phones (with a source address): extension 1001: 0 in the last hour (limit 3, 2 more after this call)"},
		{nil, "counted among forwarded or originated calls (no source address): extension 1001: 0 in the last hour (limit 3, 2 more after this call)"},
	} {
		if out := c.ok(append([]string{"check", "1001", "02079460000"}, tc.args...)...); !strings.Contains(out, tc.want) {
			t.Errorf("check %v: output lacks %q:\n%s", tc.args, tc.want, out)
		}
	}
}

// TestCLICheckReadsFromAsTheGate: --from is read as the FastAGI server
// reads the source the include sends: trimmed, a v4-mapped address as
// IPv4 and an IPv6 zone dropped, so the access list judges the address
// the gate would judge.
func TestCLICheckReadsFromAsTheGate(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("ext", "add", "1002", "--account", "acme", "--cidr", "fe80::/10")
	for _, tc := range []struct{ ext, from, want string }{
		{"1001", " 192.0.2.7 ", "source 192.0.2.7 is allowed"},
		{"1001", "::ffff:192.0.2.7", "source 192.0.2.7 is allowed"},
		{"1002", "fe80::1%eth0", "source fe80::1 is allowed"},
		{"1002", "\tfe80::1%eth0\n", "source fe80::1 is allowed"},
	} {
		if out := c.ok("check", tc.ext, "02079460000", "--from", tc.from); !strings.Contains(out, tc.want) || !strings.Contains(out, "verdict: allow (ok)") {
			t.Errorf("check %s --from %q: output lacks %q:\n%s", tc.ext, tc.from, tc.want, out)
		}
	}
}

func TestCLIGateWorkflow(t *testing.T) {
	c := newCLI(t)
	c.seed()

	out := c.ok("check", "1001", "02079460000", "--from", "192.0.2.7")
	for _, want := range []string{"+442079460000", "verdict: allow (ok)", "MAXSEC 7200", "reserving 1.20", "\n  9. credit "} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	out = c.ok("check", "1001", "02079460000", "--from", "203.0.113.9")
	if !strings.Contains(out, "verdict: deny (ip_not_allowed), cause 21") {
		t.Errorf("check from outside the ACL:\n%s", out)
	}
	// A transfer by another phone: the list holds against the
	// transferred phone's address, and the step says whose it is.
	// Without a list, the record still says the call was a transfer.
	c.ok("ext", "add", "1002", "--account", "acme")
	if out := c.ok("check", "1002", "02079460000", "--from", "192.0.2.7", "--transferred"); !strings.Contains(out, "has no IP access list (source 192.0.2.7, a phone in the call another phone transferred)") {
		t.Errorf("check of a transfer, no list:\n%s", out)
	}
	// The include sends no mark without an address.
	if code, _, errs := c.run("check", "1002", "02079460000", "--transferred"); code != exitUsage || !strings.Contains(errs, "--transferred needs --from") {
		t.Errorf("--transferred alone: exit %d %s", code, errs)
	}
	out = c.ok("check", "1001", "02079460000", "--from", "192.0.2.7", "--transferred")
	if !strings.Contains(out, "verdict: allow (ok)") || !strings.Contains(out, "a phone in the call another phone transferred") {
		t.Errorf("check of a transfer:\n%s", out)
	}
	var d map[string]any
	json.Unmarshal([]byte(c.ok("check", "1001", "00252612345678", "--json")), &d)
	if d["verdict"] != "deny" || d["reason"] != "high_risk" {
		t.Errorf("check --json: %v", d)
	}
	// Dry runs record nothing.
	var calls []map[string]any
	json.Unmarshal([]byte(c.ok("calls", "--json")), &calls)
	if len(calls) != 0 {
		t.Fatalf("check recorded %d calls", len(calls))
	}

	c.ok("rule", "add", "deny", "+4420", "--account", "acme", "--note", "test")
	if out := c.ok("check", "1001", "02079460000"); !strings.Contains(out, "destination_denied") {
		t.Errorf("deny rule not applied:\n%s", out)
	}
	var rules []map[string]any
	json.Unmarshal([]byte(c.ok("rule", "list", "--json")), &rules)
	if len(rules) != 1 || rules[0]["prefix"] != "+4420" {
		t.Fatalf("rules %v", rules)
	}
	c.ok("rule", "rm", "1")
	// An allow rule of a shared calling code says what it does not reach.
	code, out, errs := c.run("rule", "add", "allow", "+44")
	if code != 0 || !strings.Contains(errs, "+44 allows GB only; the other regions sharing +44 (GG, IM, JE)") {
		t.Fatalf("rule add allow +44: exit %d, stderr %s", code, errs)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(out, "rule "), ":")
	c.ok("rule", "rm", id)

	c.ok("schedule", "set", "acme", "--zone", "Europe/London", "--hours", "mon-fri 09:00-17:00", "--holiday", "12-25")
	if out := c.ok("check", "1001", "0033123456789", "--at", "2026-11-21 12:00"); !strings.Contains(out, "after_hours") {
		t.Errorf("Saturday international call:\n%s", out)
	}

	c.ok("ext", "block", "1001", "--reason", "left the company")
	if out := c.ok("check", "1001", "02079460000", "--from", "192.0.2.7"); !strings.Contains(out, "blocked_extension") {
		t.Errorf("blocked:\n%s", out)
	}
	if out := c.ok("check", "1001", "999"); !strings.Contains(out, "verdict: allow (emergency)") {
		t.Errorf("emergency while blocked:\n%s", out)
	}
	c.ok("unblock", "1001")
	var ext map[string]any
	json.Unmarshal([]byte(c.ok("ext", "show", "1001", "--json")), &ext)
	if ext["blocked"] != false || len(ext["block_history"].([]any)) != 1 {
		t.Fatalf("ext show after unblock: %v", ext)
	}

	var credit map[string]any
	json.Unmarshal([]byte(c.ok("credit", "show", "acme", "--json")), &credit)
	if credit["balance"] != "10.00" || credit["available"] != "10.00" {
		t.Fatalf("credit %v", credit)
	}
	// A debit, written as the help's example shows.
	if out := c.ok("credit", "add", "acme", "--note", "correction", "--", "-3.50"); !strings.Contains(out, "balance now 6.50 GBP") {
		t.Fatalf("debit: %s", out)
	}
	c.ok("credit", "add", "acme", "3.50")
	json.Unmarshal([]byte(c.ok("credit", "show", "acme", "--json")), &credit)
	if l := credit["ledger"].([]any); len(l) != 3 || l[0].(map[string]any)["calls_after"] != "0.00" || l[1].(map[string]any)["balance_after"] != "6.50" {
		t.Fatalf("credit ledger %v", credit["ledger"])
	}
	if out := c.ok("credit", "show", "acme"); !strings.Contains(out, "CALLS AFTER") {
		t.Fatalf("credit show:\n%s", out)
	}
	c.ok("account", "set", "acme", "--credit-limit", "5", "--intl-ceiling", "none", "--ext-per-minute", "3", "--spend-factor", "1.5")
	var acct map[string]any
	json.Unmarshal([]byte(c.ok("account", "show", "acme", "--json")), &acct)
	if acct["credit_limit"] != "5.00" || acct["international_ceiling_per_min"] != "none" || acct["spend_factor"] != "1.500" {
		t.Fatalf("account %v", acct)
	}
	if out := c.ok("rates", "lookup", "+447400123456"); !strings.Contains(out, "rate 0.08/min (prefix +447") {
		t.Errorf("lookup:\n%s", out)
	}
	// Nor Jersey by the United Kingdom's row, as in the gate.
	if out := c.ok("rates", "lookup", "+441534123456"); !strings.Contains(out, "no rate: the deck's +44 row (United Kingdom) prices GB only, not JE") {
		t.Errorf("lookup of a Jersey number:\n%s", out)
	}
	// A short code is not priced by the deck's +441 (Reading), as in the gate.
	// Classified by the stored high-risk list, as the gate does.
	if out := c.ok("rates", "lookup", "+252612345678"); !strings.Contains(out, "class high_risk") {
		t.Errorf("lookup of a high-risk number:\n%s", out)
	}
	if out := c.ok("rates", "lookup", "118118"); !strings.Contains(out, "118118: GB short code, class national (short_code)") || !strings.Contains(out, "of unknown cost, the gate denies it") {
		t.Errorf("lookup short code:\n%s", out)
	}
	// What the gate does with them, as `check` would say: 112 was "not a
	// dialable number" (exit 2), and every short code "denied".
	for num, want := range map[string]string{
		"112":    "112: an emergency number in GB: the gate always allows it",
		"116123": "class tollfree (toll_free); short codes have no E.164 form, so the deck cannot price them: free to call, the gate allows it",
		"1002":   "1002: an internal extension number",
	} {
		if out := c.ok("rates", "lookup", num); !strings.Contains(out, want) {
			t.Errorf("lookup %s:\n%s", num, out)
		}
	}
}

// TestCLIBadInput: wrong invocations exit 2 with a message, and write nothing.
func TestCLIBadInput(t *testing.T) {
	c := newCLI(t)
	c.seed()
	before := c.ok("account", "show", "acme", "--json")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"account", "add", "x", "--country", "XX", "--currency", "GBP"}, "country"},
		// A mistyped verb printed the group's help and exited 0.
		{[]string{"config", "validate"}, `unknown command "validate" for "tollguard config"; its commands: check, print`},
		{[]string{"ext", "remove", "1001"}, `unknown command "remove" for "tollguard ext"`},
		{[]string{"account", "delete", "acme"}, `unknown command "delete" for "tollguard account"`},
		{[]string{"account", "add", "y", "--country", "GB", "--currency", "POUNDS"}, "ISO 4217"},
		{[]string{"account", "add", "bad id", "--country", "GB", "--currency", "GBP"}, "letters, digits"},
		{[]string{"account", "set", "acme", "--credit-limit", "1.234"}, "decimal places"},
		{[]string{"account", "set", "acme", "--call-cap", "-1"}, "negative"},
		{[]string{"account", "set", "acme", "--alert-mode", "loud"}, "alert mode"},
		{[]string{"account", "set", "acme", "--zone", "Mars/Olympus"}, "zone"},
		{[]string{"account", "set", "acme", "--zone", ""}, "--zone is empty"},
		{[]string{"account", "add", "zoneless", "--country", "GB", "--currency", "GBP", "--zone", " "}, "--zone is empty"},
		{[]string{"schedule", "set", "acme", "--zone", ""}, "--zone is empty"},
		{[]string{"account", "set", "acme", "--intl-prefix", "0", "--national-prefix", "0"}, "could not tell"},
		// The prefix not given is the country's own (GB: 0 and 00).
		{[]string{"account", "set", "acme", "--national-prefix", "00"}, "could not tell"},
		{[]string{"account", "set", "acme", "--intl-prefix", "0"}, "could not tell"},
		{[]string{"account", "add", "us2", "--country", "US", "--currency", "USD", "--intl-prefix", "1"}, "could not tell"},
		{[]string{"account", "set", "acme", "--max-extensions", "-1"}, "must not be negative"},
		{[]string{"account", "set", "acme", "--max-call-secs", "86401"}, "--max-call-secs 86401: want 0 (no cap of its own) to 86400"},
		{[]string{"account", "set", "acme", "--max-created-per-day", "-5"}, "must not be negative"},
		{[]string{"schedule", "set", "acme", "--hours", "mon-fri 09:00-17:00", "--holiday", "0000-12-25"}, "typo"},
		{[]string{"detectors", "set", "acme", "long_intl", "--duration", "-5m"}, "must not be negative"},
		{[]string{"detectors", "set", "acme", "burst_ext", "--duration", "1h"}, "--duration applies to long_intl only"},
		{[]string{"detectors", "set", "acme", "sweep", "--threshold", "9", "--duration", "1h"}, "--duration applies to long_intl only"},
		{[]string{"account", "set", "acme", "--spend-factor", "10000000000000"}, "at most 1000"},
		{[]string{"account", "set", "acme", "--spend-factor", "1.2345"}, "with at most 3 decimals"},
		{[]string{"schedule", "set", "acme", "--hours", "mon-fri 08:00-18:00, sat 09:00-13:00"}, `separate groups of days with ";"`},
		// Stored in whole seconds: 500ms was saved as 0 and said ok.
		{[]string{"detectors", "set", "acme", "burst_ext", "--window", "500ms", "--threshold", "5"}, "must be whole seconds"},
		{[]string{"detectors", "set", "acme", "sweep", "--threshold", "0", "--action", "nuke"}, `action "nuke"`},
		{[]string{"detectors", "clear", "nope", "burst_ext"}, "not found"},
		{[]string{"detectors", "clear", "acme", "burst"}, "want one of"},
		{[]string{"rates", "import", os.TempDir()}, "is a directory"},
		{[]string{"account", "set", "acme"}, "nothing to change"},
		{[]string{"account", "set", "nope", "--credit-limit", "1"}, "not found"},
		{[]string{"credit", "add", "acme", "12,50"}, "not a decimal"},
		{[]string{"credit", "add", "acme", "£5"}, "not a decimal"},
		{[]string{"credit", "add", "acme", "-3.50"}, "put -- before it"},
		{[]string{"credit", "add", "acme", "99999999999999.99"}, "too large"},
		{[]string{"credit", "add", "acme", "9999999999999.99"}, "a balance of 10.00 +9999999999999.99 is beyond what tollguard keeps"}, // on top of the 10.00
		{[]string{"account", "set", "acme", "--credit-limit", "99999999999999"}, "too large"},
		{[]string{"ext", "add", "1002", "--account", "nope"}, "not found"},
		{[]string{"ext", "add", "1001", "--account", "acme"}, "already exists"},
		{[]string{"account", "add", "acme", "--country", "GB", "--currency", "GBP"}, `account "acme" already exists`},
		// A typo of an existing id made a second account, unnoticed.
		{[]string{"account", "add", "ACME", "--country", "GB", "--currency", "GBP"}, `account "ACME" differs only in case from account "acme"`},
		{[]string{"ext", "set", "1001", "--cidr", "10.0.0.0/33"}, "CIDR"},
		// An unset variable in a script must not clear the access list.
		{[]string{"ext", "set", "1001", "--cidr", ""}, "empty network in --cidr"},
		{[]string{"ext", "set", "1001", "--cidr", "10.0.0.0/8,"}, "empty network in --cidr"},
		{[]string{"ext", "set", "1001", "--cidr", "fe80::1%eth0"}, "without a %zone"},
		{[]string{"ext", "set", "1001", "--cidr", "10.0.0.0/8", "--add-cidr", "192.0.2.1"}, "not both"},
		{[]string{"ext", "set", "1001", "--add-cidr", "none"}, "--add-cidr needs a network"},
		{[]string{"ext", "block", "1001"}, "--reason"},
		{[]string{"rule", "add", "maybe", "+44"}, "allow or deny"},
		{[]string{"rule", "add", "deny", "+44x"}, "digits"},
		{[]string{"rule", "add", "deny", "00881"}, "E.164 form"}, // stored as +00881, it would block nothing
		{[]string{"rule", "rm", "abc"}, "rule id"},
		{[]string{"schedule", "set", "acme", "--hours", "monday 9-5"}, ""},
		{[]string{"schedule", "set", "acme", "--deny", "expensive"}, "want one of internal, national"},
		{[]string{"schedule", "set", "acme", "--deny", "premium,emergency"}, "--deny emergency: emergency calls are never denied"},
		{[]string{"schedule", "set", "acme", "--deny", "none,premium"}, "--deny none with classes ([premium])"},
		{[]string{"calls", "--since", "yesterday"}, "--since"},
		{[]string{"calls", "--since", "0"}, `--since "0": since now`},
		{[]string{"calls", "--limit", "0"}, "--limit 0: want at least 1"},
		{[]string{"calls", "--limit", "-3"}, "--limit -3: want at least 1"},
		{[]string{"audit", "runs", "--limit", "0"}, "--limit 0: want at least 1"},
		{[]string{"calls", "--reason", "because"}, "reason code"},
		// Filters no call can match listed nothing, as if there were none.
		{[]string{"calls", "--open", "--verdict", "deny"}, "--open with --verdict deny: calls in progress were allowed"},
		{[]string{"calls", "--open", "--reason", "high_risk"}, "--open with --reason high_risk"},
		{[]string{"calls", "--verdict", "deny", "--reason", "ok"}, "calls with reason ok are allowed"},
		{[]string{"calls", "--verdict", "allow", "--reason", "premium"}, "calls with reason premium are denied"},
		{[]string{"check", "1001"}, "accepts 2 arg"},
		{[]string{"check", "1001", "02079460000", "--from", "999.1.1.1"}, `--from "999.1.1.1": not an IP address`},
		{[]string{"check", "1001", "02079460000", "--from", "192.0.2.0/24"}, `--from "192.0.2.0/24": not an IP address`},
		{[]string{"check", "1001", "02079460000", "--from", "192.0.2.7:5060"}, "without a port"},
		{[]string{"nosuchcommand"}, "unknown command"},
		{[]string{"account", "list", "--frobnicate"}, "unknown flag"},
	} {
		code, out, errs := c.run(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.msg) || !strings.HasPrefix(errs, "tollguard: ") {
			t.Errorf("tollguard %s: exit %d, stderr %q (want exit 2 mentioning %q); stdout %q", strings.Join(tc.args, " "), code, errs, tc.msg, out)
		}
	}
	if after := c.ok("account", "show", "acme", "--json"); after != before {
		t.Fatalf("bad input changed the account:\n%s\n%s", before, after)
	}
	// An empty high-risk file would turn the check off: refused.
	empty := filepath.Join(t.TempDir(), "empty.csv")
	os.WriteFile(empty, []byte("prefix,description,source\n\n"), 0o600)
	if code, _, errs := c.run("highrisk", "import", empty); code != exitUsage || !strings.Contains(errs, "--allow-empty") {
		t.Errorf("empty high-risk import: exit %d: %s", code, errs)
	}
	if out := c.ok("check", "1001", "00881612345678", "--from", "192.0.2.7"); !strings.Contains(out, "high_risk") {
		t.Errorf("an empty import emptied the high-risk list:\n%s", out)
	}
	// A bad rate deck imports nothing and keeps the old one.
	deck := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(deck, []byte("prefix,rate\n44,0.01\n33,abc\n,0.02\n"), 0o600)
	code, _, errs := c.run("rates", "import", deck)
	if code != exitUsage || !strings.Contains(errs, "line 3") || !strings.Contains(errs, "line 4") || !strings.Contains(errs, "nothing was imported") {
		t.Fatalf("bad deck: exit %d: %s", code, errs)
	}
	if out := c.ok("rates", "lookup", "+33123456789"); !strings.Contains(out, "0.015") {
		t.Fatalf("a bad import replaced the deck:\n%s", out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[agi]\nlisten = \"127.0.0.1:4573\"\nallowed = [\"127.0.0.1/32\", \"10.0.0.0/8\"]\n"), 0o600)
	c := newCLI(t)
	if code, out, errs := c.run("config", "check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("good config: %d %s %s", code, out, errs)
	}
	// World-writable: any local user could rewrite who may connect.
	open := filepath.Join(dir, "open.toml")
	os.WriteFile(open, []byte("[agi]\nlisten = \"127.0.0.1:4573\"\n"), 0o600)
	os.Chmod(open, 0o666)
	if code, _, errs := c.run("config", "check", open); code != exitUsage || !strings.Contains(errs, "every local user can change it; chmod 600") {
		t.Errorf("world-writable config: exit %d, %s", code, errs)
	}
	for _, tc := range []struct{ text, want string }{
		{"[agi]\nlisten = 127.0.0.1\n", "bad.toml:2:"},
		{"[agi]\nlisen = \"127.0.0.1:4573\"\n", `bad.toml:2: unknown setting "agi.lisen"`},
		{"[ari]\nenabled = true\npassword = \"hunter2\"\n", "bad.toml:3: ari.password: secrets do not belong in the config file; put it in the file [ari] password_file names, or TOLLGUARD_ARI_PASSWORD"},
		{"[alerts.webhook]\nsecret = \"s3\"\n", "bad.toml:2: alerts.webhook.secret: secrets do not belong in the config file; put it in the file [alerts.webhook] secret_file names, or TOLLGUARD_WEBHOOK_SECRET"},
		{"[agi]\nmax_sessions = 0\n\n[bogus]\nx = 1\n", "bad.toml:4: unknown setting \"bogus\""},           // its section's line
		{"[agi]\nmax_sessions = 0\n\n[bogus]\nx = 1\n", "bad.toml:2: agi max_sessions must be at least 1"}, // and the value errors too
		{"\n\n[agi]\nallowed = [\"10.0.0.0/40\"]\n", "bad.toml:4:"},
		{"[agi]\ndecision_timeout = \"soon\"\n", "bad.toml:2:"},
		{"[agi]\nmax_sessions = \"512\"\n", "bad.toml:2: agi.max_sessions: want a whole number, without quotes (max_sessions = 512)"},
		// The example names the setting itself, not another one.
		{"[agi]\nlisten = 5\n", `bad.toml:2: agi.listen: want a quoted string (listen = "...")`},
		{"[agi]\nallowed = \"127.0.0.1/32\"\n", `bad.toml:2: agi.allowed: want a list in brackets (allowed = ["..."])`},
		// A wrong type no longer hides the rest: the typo before it, the
		// next wrong type and the bad value after it are reported too.
		{"[agi]\ndecison_timeout = \"1s\"\nmax_sessions = \"512\"\nsession_timeout = 5\n[log]\nlevel = \"loud\"\n", "bad.toml:4: agi.session_timeout"},
		{"[agi]\ndecison_timeout = \"1s\"\nmax_sessions = \"512\"\nsession_timeout = 5\n[log]\nlevel = \"loud\"\n", `bad.toml:2: unknown setting "agi.decison_timeout"`},
		{"[agi]\ndecison_timeout = \"1s\"\nmax_sessions = \"512\"\nsession_timeout = 5\n[log]\nlevel = \"loud\"\n", "bad.toml:6: log level"},
		{"[agi]\ndecison_timeout = \"1s\"\nmax_sessions = \"512\"\nsession_timeout = 5\n[log]\nlevel = \"loud\"\n", "bad.toml:3: agi.max_sessions: want a whole number"},
		{"[log]\nlevel = \"loud\"\n", "bad.toml:2: log level"},
		{"[gate]\ndefault_country = \"Britain\"\n", "bad.toml:2:"},
		{"[gate]\ndefault_country = \"UK\"\n", "not UK"},
		{"[gate]\nfree_short_codes = [\"+711\"]\n", "bad.toml:2: gate free_short_codes \"+711\""},
		{"[agi]\nallowed_users = [\"no-such-user-tg\"]\n", "bad.toml:2: agi allowed_users \"no-such-user-tg\": no such user"},
		// serve's listen refuses these ports; the check must too.
		{"[agi]\nlisten = \":99999\"\n", "bad.toml:2: agi listen \":99999\""},
		{"[metrics]\nlisten = \"127.0.0.1:http\"\n", "bad.toml:2: metrics listen"},
		// Not an address, so looked up as a host name: serve failed
		// with "no such host" where the check had said ok.
		{"[agi]\nlisten = \"256.1.1.1:4573\"\n", "bad.toml:2: agi listen \"256.1.1.1:4573\": host \"256.1.1.1\" is no IP address"},
		{"[metrics]\nlisten = \"10.0.0:9464\"\n", "bad.toml:2: metrics listen"},
		// Days that overflow time.Duration turned "never" into minutes.
		{"[audit]\nstale_days = 999999\n", "bad.toml:2: stale_days 999999: want between 1 and 36500"},
		{"[audit]\npurge_grace_days = 213504\n", "bad.toml:2: purge_grace_days"},
		{"[alerts]\nretention_days = 213504\n", "bad.toml:2: alerts retention_days"},
		{"[ari]\ncontact_retention_days = 213504\n", "bad.toml:2: ari contact_retention_days"},
		{"[gate]\nretention_days = 9223372036854775807\n", "bad.toml:2: gate retention_days"},
		{"[ari]\nurl = \"http://127.0.0.1:8088\"\n", `bad.toml:2: ari url "http://127.0.0.1:8088" has no path: ARI's base URL ends in /ari`},
		{"[ari]\nsettle_grace = \"1000h\"\n", "bad.toml:2: ari settle_grace 1000h0m0s: want between 0s and 10m"},
		{"[ari]\nresync_interval = \"1m\"\n", "bad.toml:2: ari resync_interval 1m0s: want between 5m0s and 24h0m0s (default 1h0m0s)"},
		{"[ari]\nresync_interval = \"48h\"\n", "bad.toml:2: ari resync_interval 48h0m0s: want between"},
		{"[agi]\nallowed = [\"fe80::1%eth0/64\"]\n", `bad.toml:2: agi allowed "fe80::1%eth0/64": give the network without a %zone`},
		{"[gate]\nsweep_interval = \"1ns\"\n", "bad.toml:2: gate sweep_interval 1ns: want at least 100ms"},
		{"[gate]\nsweep_grace = \"2h\"\n", "bad.toml:2: gate sweep_grace 2h0m0s: want between 0s and 1h"},
		{"[gate]\nafter_hours_grace = \"13h\"\n", "bad.toml:2: gate after_hours_grace 13h0m0s: want at most 12h"},
		{"[gate]\nselftest_number = \"999\"\n", "bad.toml:2: gate selftest_number \"999\": want a full number nobody answers, never an emergency number"},
		{"[gate]\ndefault_country = \"DE\"\nselftest_number = \"110\"\n", "bad.toml:3: gate selftest_number \"110\""},
		// The TOML library kept the default schedules, with no error,
		// for a value where a table of the admin's keys belongs.
		{"[audit]\nschedules = \"off\"\n", "bad.toml:2: audit.schedules: want a section [audit.schedules]"},
		{"[[audit.schedules]]\nstale = \"off\"\n", "bad.toml:1: audit.schedules: want a section [audit.schedules]"},
		{"[audit.ext]\nendpoint = 5\n", "bad.toml:2: audit.ext.endpoint: want a section [audit.ext.endpoint]"},
		// A section written as a value or a list named Go types.
		{"[[agi]]\n", "bad.toml:1: agi: want a section [agi]"},
		{"audit = 5\n", "bad.toml:1: audit: want a section [audit]"},
		{"[gate]\nsweep_interval = [\"1m\"]\n", `bad.toml:2: gate.sweep_interval: want a quoted duration (sweep_interval = "5s"; "300ms", "2h")`},
	} {
		bad := filepath.Join(dir, "bad.toml")
		os.WriteFile(bad, []byte(tc.text), 0o600)
		code, _, errs := c.run("config", "check", bad)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("config %q: exit %d, %q; want exit 2 with %q", tc.text, code, errs, tc.want)
		}
	}
	// A missing file says where configs come from. (An unreadable one
	// names chown; the tests run as root, who reads any file.)
	if code, _, errs := c.run("config", "check", filepath.Join(dir, "nope.toml")); code != exitUsage || !strings.Contains(errs, "give an existing file with --config or TOLLGUARD_CONFIG") {
		t.Errorf("missing config: exit %d, %q", code, errs)
	}
	// A password serve would find missing fails the check too; the
	// environment supplies it.
	ari := filepath.Join(dir, "ari.toml")
	os.WriteFile(ari, []byte("[ari]\nenabled = true\nuser = \"tollguard\"\n"), 0o600)
	if code, _, errs := c.run("config", "check", ari); code != exitUsage || !strings.Contains(errs, "ari password is empty") {
		t.Errorf("ARI without a password: exit %d, %q", code, errs)
	}
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "s3cret")
	if code, out, errs := c.run("config", "check", ari); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("ARI with the password in the environment: exit %d, %s %s", code, out, errs)
	}
	// The daemon refuses a broken config before touching the database.
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[agi]\nmax_sessions = -1\n"), 0o600)
	code, _, errs := c.run("--config", bad, "serve")
	if code != exitUsage || !strings.Contains(errs, "max_sessions") {
		t.Fatalf("serve with a bad config: %d %s", code, errs)
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Fatalf("serve with a bad config created the database: %v", err)
	}
	// So does a bad address from the environment, which no config
	// check saw (it said "is another tollguard running?", exit 1).
	t.Setenv("TOLLGUARD_AGI_ADDR", "4573")
	code, _, errs = c.run("serve")
	if code != exitUsage || !strings.Contains(errs, `FastAGI address "4573" (TOLLGUARD_AGI_ADDR or [agi] listen): want host:port`) {
		t.Fatalf("serve with TOLLGUARD_AGI_ADDR=4573: %d %s", code, errs)
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Fatalf("serve with a bad address created the database: %v", err)
	}
	// And any other setting the environment makes invalid, as config
	// check refuses it: the unit has no ExecStartPre running the check
	// any more. An ARI URL without /ari ran, failing every ARI request.
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	ari = filepath.Join(t.TempDir(), "ari-url.toml")
	os.WriteFile(ari, []byte("[ari]\nenabled = true\nuser = \"tollguard\"\n"), 0o600)
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "secret")
	t.Setenv("TOLLGUARD_ARI_URL", "http://127.0.0.1:8088")
	if code, _, errs := c.run("config", "check", ari); code != exitUsage || !strings.Contains(errs, "has no path") {
		t.Fatalf("config check with TOLLGUARD_ARI_URL without /ari: %d %s", code, errs)
	}
	// Bounded: a serve that starts would run until stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var serr bytes.Buffer
	t.Setenv("TOLLGUARD_AGI_ADDR", "127.0.0.1:0")
	code = run(ctx, []string{"--db", c.db, "--config", ari, "serve"}, strings.NewReader(""), &bytes.Buffer{}, &serr)
	if code != exitUsage || !strings.Contains(serr.String(), "has no path") {
		t.Fatalf("serve with TOLLGUARD_ARI_URL without /ari: %d %s", code, serr.String())
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Fatalf("serve with a bad ARI URL created the database: %v", err)
	}
}

// TestShutdownWait: serve never stops waiting before a session in
// flight could reach its own deadline, whatever shutdown_timeout says.
func TestShutdownWait(t *testing.T) {
	for _, tc := range []struct{ shutdown, session, decision, want time.Duration }{
		{10 * time.Second, 10 * time.Second, 300 * time.Millisecond, 10300 * time.Millisecond},
		{time.Second, 10 * time.Second, 300 * time.Millisecond, 10300 * time.Millisecond},
		{0, 5 * time.Second, time.Second, 6 * time.Second},
		{time.Minute, 10 * time.Second, 300 * time.Millisecond, time.Minute},
	} {
		a := AGIConfig{ShutdownTimeout: Duration{tc.shutdown}, SessionTimeout: Duration{tc.session}, DecisionTimeout: Duration{tc.decision}}
		if got := a.ShutdownWait(); got != tc.want {
			t.Errorf("shutdown %v, session %v, decision %v: wait %v, want %v", tc.shutdown, tc.session, tc.decision, got, tc.want)
		}
	}
}

// cancelOn is stderr that cancels the command's context once it prints
// a given text: Ctrl-C at a known point.
type cancelOn struct {
	text   string
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.text) {
		c.cancel()
	}
	return len(p), nil
}

// TestRatesImportInterrupted: Ctrl-C during an import leaves the deck in
// force as it was.
func TestRatesImportInterrupted(t *testing.T) {
	c := newCLI(t)
	c.seed()
	var deck strings.Builder
	deck.WriteString("prefix,destination,rate\n44,United Kingdom,0.99\n")
	for i := range 30_000 {
		fmt.Fprintf(&deck, "%d,Somewhere,0.05\n", 3_000_000+i)
	}
	path := filepath.Join(t.TempDir(), "big.csv")
	os.WriteFile(path, []byte(deck.String()), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errw := &cancelOn{text: "10000 rates read", cancel: cancel}
	var out bytes.Buffer
	code := run(ctx, []string{"--db", c.db, "rates", "import", path}, strings.NewReader(""), &out, errw)
	if code == exitOK || !strings.Contains(errw.buf.String(), "interrupted") || !strings.Contains(errw.buf.String(), "previous deck is still in force") {
		t.Fatalf("interrupted import: exit %d\n%s%s", code, out.String(), errw.buf.String())
	}
	if got := c.ok("rates", "lookup", "+442079460000"); !strings.Contains(got, "0.01") {
		t.Errorf("the interrupted deck went live:\n%s", got)
	}
}

// TestConfigPrintMasksWebhookToken: config print hides a webhook URL's
// query and path, where services put the token.
func TestConfigPrintMasksWebhookToken(t *testing.T) {
	c := newCLI(t)
	cfg := filepath.Join(t.TempDir(), "tollguard.toml")
	os.WriteFile(cfg, []byte("[alerts.webhook]\nenabled = true\nurl = \"https://hooks.example.net/services/T0/B0/SECRETTOKEN123?key=SECRET2\"\n"), 0o600)
	out := c.ok("--config", cfg, "config", "print")
	if strings.Contains(out, "SECRET") || !strings.Contains(out, "https://hooks.example.net/********") {
		t.Errorf("config print shows the webhook token:\n%s", out)
	}
}

// TestConfigPrintJSON: --json has the file's keys and values, and masks
// secrets as the TOML form does.
func TestConfigPrintJSON(t *testing.T) {
	c := newCLI(t)
	cfg := filepath.Join(t.TempDir(), "tollguard.toml")
	os.WriteFile(cfg, []byte("[agi]\ndecision_timeout = \"250ms\"\n[gate]\ndefault_country = \"DE\"\n[alerts.webhook]\nenabled = true\nurl = \"https://hooks.example.net/T0/SECRETTOKEN\"\n"), 0o600)
	out := c.ok("--config", cfg, "config", "print", "--json")
	var got struct {
		AGI struct {
			DecisionTimeout string   `json:"decision_timeout"`
			Allowed         []string `json:"allowed"`
		} `json:"agi"`
		Gate struct {
			DefaultCountry string `json:"default_country"`
		} `json:"gate"`
		Alerts struct {
			Webhook struct {
				URL string `json:"url"`
			} `json:"webhook"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("config print --json is not JSON: %v\n%s", err, out)
	}
	if got.AGI.DecisionTimeout != "250ms" || got.Gate.DefaultCountry != "DE" || len(got.AGI.Allowed) == 0 {
		t.Errorf("config print --json = %+v\n%s", got, out)
	}
	if strings.Contains(out, "SECRET") || got.Alerts.Webhook.URL != "https://hooks.example.net/********" {
		t.Errorf("config print --json shows the webhook token: %q", got.Alerts.Webhook.URL)
	}
}

// TestCLIUnknownNames: a filter or argument naming an account,
// extension or audit that does not exist exits 2 saying so, instead of
// an empty list (or the global rules, as if they applied); an extension
// gone from the store keeps its calls and snapshots listable.
func TestCLIUnknownNames(t *testing.T) {
	c := newCLI(t)
	c.seed()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"ext", "list", "--account", "nosuch"}, `account "nosuch" not found`},
		{[]string{"rule", "list", "--account", "nosuch"}, `account "nosuch" not found`},
		{[]string{"calls", "--account", "nosuch"}, `--account: account "nosuch" not found`},
		{[]string{"calls", "--ext", "nosuch"}, `--ext: extension "nosuch" not found`},
		{[]string{"audit", "runs", "--job", "nosuch"}, `--job: unknown audit "nosuch"`},
		{[]string{"ext", "snapshots", "nosuch"}, `extension "nosuch" not found`},
		{[]string{"ext", "purge", "nosuch", "--dry-run"}, `extension "nosuch" is not in tollguard's store`},
	} {
		code, out, errs := c.run(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.msg) {
			t.Errorf("tollguard %s: exit %d, stderr %q (want exit 2 mentioning %q); stdout %q", strings.Join(tc.args, " "), code, errs, tc.msg, out)
		}
	}
	for _, args := range [][]string{
		{"ext", "list", "--account", "acme"},
		{"rule", "list", "--account", "acme"},
		{"calls", "--account", "acme"},
		{"calls", "--ext", "1001"},
		{"audit", "runs", "--job", "stale"},
		{"audit", "runs", "--job", "selftest"},
		{"ext", "snapshots", "1001"},
	} {
		c.ok(args...)
	}
	if out := c.ok("ext", "purge", "1001", "--dry-run"); !strings.Contains(out, "would block 1001") {
		t.Errorf("dry run: %s", out)
	}

	// 1001 leaves the store, with a call and a snapshot behind.
	decideOn(t, c.db, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.7"})
	app, db := openApp(t, c.db)
	ctx := context.Background()
	if err := db.SaveSnapshot(ctx, &tollguard.ExtensionSnapshot{Extension: "1001", Account: "acme", TakenAt: time.Now(), Reason: "left",
		Objects: []tollguard.SnapshotObject{{Type: "endpoint", ID: "1001"}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteExtension(ctx, "1001"); err != nil {
		t.Fatal(err)
	}
	app.Close()
	if out := c.ok("calls", "--ext", "1001"); !strings.Contains(out, "02079460000") {
		t.Errorf("calls of a deleted extension:\n%s", out)
	}
	if out := c.ok("ext", "snapshots", "1001"); !strings.Contains(out, "endpoint/1001") {
		t.Errorf("snapshots of a deleted extension:\n%s", out)
	}
}

// TestCLIHighRiskImportRefusesRateDeck: the shipped example rate deck
// is refused by highrisk import (it made +44, +1 and +33 high-risk); the
// shipped high-risk list imports.
func TestCLIHighRiskImportRefusesRateDeck(t *testing.T) {
	c := newCLI(t)
	c.seed()
	code, _, errs := c.run("highrisk", "import", filepath.Join("..", "..", "contrib", "example-deck.csv"))
	if code != exitUsage || !strings.Contains(errs, "looks like a rate deck") || !strings.Contains(errs, "nothing was imported") {
		t.Errorf("rate deck as a high-risk list: exit %d, %s", code, errs)
	}
	if out := c.ok("check", "1001", "02079460000", "--from", "192.0.2.7"); strings.Contains(out, "high_risk") {
		t.Errorf("the refused deck changed the list:\n%s", out)
	}
	c.ok("highrisk", "import", filepath.Join("..", "..", "highrisk.csv"))
}

// TestCLIAccountShowInternalMaxLen: account show prints the longest
// internal number, the default and a set one.
func TestCLIAccountShowInternalMaxLen(t *testing.T) {
	c := newCLI(t)
	c.seed()
	for _, tc := range []struct {
		set  string // "" leaves the default
		want float64
	}{{"", 4}, {"6", 6}} {
		if tc.set != "" {
			c.ok("account", "set", "acme", "--internal-max-len", tc.set)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(c.ok("account", "show", "acme", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		if v["internal_max_len"] != tc.want {
			t.Errorf("--json internal_max_len %v, want %v", v["internal_max_len"], tc.want)
		}
		if out := c.ok("account", "show", "acme"); !regexp.MustCompile(fmt.Sprintf(`internal numbers +up to %d digits`, int(tc.want))).MatchString(out) {
			t.Errorf("table:\n%s", out)
		}
	}
}

// TestCLIAccountShowNoCeiling: account show prints a ceiling set to
// none as "none", not as the price "none/min".
func TestCLIAccountShowNoCeiling(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("account", "set", "acme", "--intl-ceiling", "none")
	out := c.ok("account", "show", "acme")
	for _, want := range []string{`(?m)^international ceiling +none$`, `(?m)^national ceiling +0\.20/min$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("account show lacks %s:\n%s", want, out)
		}
	}
}

// TestCLIStepsJSON: check --json and calls show --json name the steps'
// fields in snake_case, like every other --json key, and a call stored
// with the old keys ("Rule", "Result", "Detail") still reads.
func TestCLIStepsJSON(t *testing.T) {
	c := newCLI(t)
	c.seed()
	firstStep := func(args ...string) map[string]any {
		t.Helper()
		var v struct {
			Steps []map[string]any `json:"steps"`
		}
		if err := json.Unmarshal([]byte(c.ok(args...)), &v); err != nil || len(v.Steps) == 0 {
			t.Fatalf("%v: %v, steps %v", args, err, v.Steps)
		}
		return v.Steps[0]
	}
	want := map[string]any{"rule": "emergency", "result": "pass", "detail": "not an emergency number"}
	if s := firstStep("check", "1001", "02079460000", "--json"); fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("check --json step %v, want %v", s, want)
	}
	dec := decideOn(t, c.db, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.7"})
	id := fmt.Sprint(dec.CallID)
	if s := firstStep("calls", "show", id, "--json"); fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("calls show --json step %v, want %v", s, want)
	}
	app, db := openApp(t, c.db)
	if _, err := db.SQL().Exec(`UPDATE calls SET steps = ? WHERE id = ?`, `[{"Rule":"emergency","Result":"pass","Detail":"stored before the tags"}]`, dec.CallID); err != nil {
		t.Fatal(err)
	}
	app.Close()
	want["detail"] = "stored before the tags"
	if s := firstStep("calls", "show", id, "--json"); fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("old stored step %v, want %v", s, want)
	}
}

// TestCLIScheduleDedupes: a holiday or class given twice is stored once.
func TestCLIScheduleDedupes(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("schedule", "set", "acme", "--hours", "mon-fri 09:00-17:00", "--holiday", "12-25", "--holiday", " 12-25", "--holiday", "12-26",
		"--deny", "premium,international", "--deny", "premium")
	var v map[string]any
	if err := json.Unmarshal([]byte(c.ok("schedule", "show", "acme", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(v["holidays"], v["denied_after_hours"]); got != "[12-25 12-26] [premium international]" {
		t.Errorf("holidays and classes: %s", got)
	}
}

// TestCLIScheduleDenyNone: `--deny none` empties the classes denied
// outside hours (there was no way to), and an empty class is refused,
// as an unset shell variable would give, rather than read as none.
func TestCLIScheduleDenyNone(t *testing.T) {
	c := newCLI(t)
	c.seed()
	denied := func() string {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal([]byte(c.ok("schedule", "show", "acme", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(v["denied_after_hours"])
	}
	c.ok("schedule", "set", "acme", "--hours", "mon-fri 09:00-17:00", "--deny", "premium")
	for _, bad := range []string{"", "premium,"} {
		code, _, errs := c.run("schedule", "set", "acme", "--deny", bad)
		if code != 2 || !strings.Contains(errs, "or none to deny no class") {
			t.Errorf("--deny %q: exit %d, %s", bad, code, errs)
		}
	}
	if got := denied(); got != "[premium]" {
		t.Errorf("after refused --deny: %s, want [premium]", got)
	}
	if out := c.ok("schedule", "set", "acme", "--deny", "none"); !strings.Contains(out, "denied after hours: -") {
		t.Errorf("--deny none output: %s", out)
	}
	if got := denied(); got != "[]" {
		t.Errorf("after --deny none: %s, want []", got)
	}
	// account show says so too, as schedule show does: a blank read as
	// a setting that failed to print.
	for _, args := range [][]string{{"schedule", "show", "acme"}, {"account", "show", "acme"}} {
		if out := c.ok(args...); !regexp.MustCompile(`(?m)^denied after hours +-$`).MatchString(out) {
			t.Errorf("%s after --deny none:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestCLIPrintsDialledOnOneLine: a dialled string's newline is escaped
// (as ESC is), not printed, and an unknown destination has no stray
// space where its country would be.
func TestCLIPrintsDialledOnOneLine(t *testing.T) {
	c := newCLI(t)
	c.seed()
	out := c.ok("check", "1001", "0207\n946\x1b0000")
	if !strings.Contains(out, `destination: 0207\x0a946\x1b0000 -> - (unknown)`) || strings.Contains(out, "\n946") {
		t.Errorf("check:\n%s", out)
	}
	app, st := openApp(t, c.db)
	dec, err := app.Policy(st).Decide(context.Background(), tollguard.Call{Extension: "1001", Dialled: "abc", Remote: "192.0.2.7"})
	if err != nil || dec.CallID == 0 {
		t.Fatalf("decide: %+v %v", dec, err)
	}
	app.Close()
	if out := c.ok("calls", "show", fmt.Sprint(dec.CallID)); !strings.Contains(out, "dialled abc -> - (unknown)\n") {
		t.Errorf("calls show:\n%s", out)
	}
}

// TestCLIZoneTrimmed: a --zone with spaces around it is stored trimmed.
func TestCLIZoneTrimmed(t *testing.T) {
	c := newCLI(t)
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP", "--zone", " Europe/London ")
	c.ok("account", "add", "bigco", "--country", "GB", "--currency", "GBP")
	c.ok("schedule", "set", "bigco", "--zone", "Europe/Paris\t")
	for acct, want := range map[string]string{"acme": "Europe/London", "bigco": "Europe/Paris"} {
		var v map[string]any
		if err := json.Unmarshal([]byte(c.ok("account", "show", acct, "--json")), &v); err != nil || v["zone"] != want {
			t.Errorf("%s: zone %q, want %q (%v)", acct, v["zone"], want, err)
		}
	}
}

// TestCLIBillingTerms: a carrier deck's billing steps and connection
// fee are imported, shown by lookup, and used by check and calls.
func TestCLIBillingTerms(t *testing.T) {
	c := newCLI(t)
	c.seed()
	deck := filepath.Join(t.TempDir(), "deck.csv")
	os.WriteFile(deck, []byte("Code;Destination;Rate;Billing;Connection Fee\n44;United Kingdom;0,10;60/60;0,05\n33;France;0,015;1/1;\n"), 0o600)
	c.ok("rates", "import", deck)
	if out := c.ok("rates", "lookup", "+442079460000"); !strings.Contains(out, "rate 0.10/min billed 60/60, 0.05 connection fee (prefix +44") {
		t.Errorf("lookup:\n%s", out)
	}
	var v map[string]any
	json.Unmarshal([]byte(c.ok("rates", "lookup", "+33123456789", "--json")), &v)
	if r, _ := v["rate"].(map[string]any); r["billing"] != "1/1" || r["connection_fee"] != "0.00" {
		t.Errorf("lookup --json: %v", v)
	}
	// 10.00 less the fee: 99 whole minutes, ended 2 s early.
	var d map[string]any
	json.Unmarshal([]byte(c.ok("check", "1001", "02079460000", "--json")), &d)
	if d["maxsec"] != float64(99*60-2) || d["reserve"] != "9.95" || d["billing"] != "60/60" || d["connection_fee"] != "0.05" {
		t.Errorf("check --json: %v", d)
	}
	// calls show: the answered seconds, and what the carrier bills.
	ctx := context.Background()
	db, err := store.Open(ctx, c.db)
	if err != nil {
		t.Fatal(err)
	}
	p := &tollguard.Policy{Store: db, Now: time.Now, DefaultPlan: tollguard.NumberPlan{Country: "GB"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	dec, err := p.Decide(ctx, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.10"})
	if err != nil || !dec.Allowed() {
		t.Fatalf("decide: %+v %v", dec, err)
	}
	if _, _, err := db.SettleCall(ctx, tollguard.Settlement{CallID: dec.CallID, Billsec: 61, DialStatus: "ANSWER", By: "agi"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	id := fmt.Sprint(dec.CallID)
	if out := c.ok("calls", "show", id); !strings.Contains(out, "61s answered, billed as 120s (60/60) (ANSWER), charged 0.25") ||
		!strings.Contains(out, ", reserved 9.95, MAXSEC 5938\n") {
		t.Errorf("calls show:\n%s", out)
	}
	var cv map[string]any
	json.Unmarshal([]byte(c.ok("calls", "show", id, "--json")), &cv)
	if cv["billsec"] != float64(61) || cv["billed_seconds"] != float64(120) || cv["billing"] != "60/60" || cv["connection_fee"] != "0.05" {
		t.Errorf("calls show --json: %v", cv)
	}

	// A bad row names its line and imports nothing.
	os.WriteFile(deck, []byte("Code,Rate,Increment\n44,0.02,60/60\n33,0.02,0/60\n"), 0o600)
	if code, _, errs := c.run("rates", "import", deck); code != 2 || !strings.Contains(errs, `line 3: billing increments "0/60"`) {
		t.Errorf("bad increments: exit %d, %s", code, errs)
	}
	if out := c.ok("rates", "lookup", "+442079460000"); !strings.Contains(out, "rate 0.10/min billed 60/60") {
		t.Errorf("a refused deck changed the rates:\n%s", out)
	}
	// Two price columns: which one the carrier bills cannot be known.
	os.WriteFile(deck, []byte("prefix,destination,rate,price\n44,UK,0.01,0.02\n"), 0o600)
	if code, _, errs := c.run("rates", "import", deck); code != 2 || !strings.Contains(errs, `the columns "rate" and "price" are each a price per minute`) || !strings.Contains(errs, "keep one") {
		t.Errorf("two price columns: exit %d, %s", code, errs)
	}
	if out := c.ok("rates", "lookup", "+442079460000"); !strings.Contains(out, "rate 0.10/min billed 60/60") {
		t.Errorf("a deck with two prices changed the rates:\n%s", out)
	}
}

// TestCLIDeckCurrency: rates import records the deck's currency (flag,
// column or unit), refuses a flag that contradicts the deck, and warns
// about the accounts it cannot price.
func TestCLIDeckCurrency(t *testing.T) {
	c := newCLI(t)
	c.seed() // acme in GBP
	if _, _, errs := c.run("account", "add", "tokyo", "--country", "JP", "--currency", "JPY"); !strings.Contains(errs, "the default ceilings (0.20 national, 0.02 international per minute) are AAISP's figures in pounds, here read in JPY") {
		t.Errorf("account add in yen with the default ceilings: %s", errs)
	}
	if _, _, errs := c.run("account", "add", "tokyo2", "--country", "JP", "--currency", "JPY", "--national-ceiling", "40", "--intl-ceiling", "10"); strings.Contains(errs, "default ceilings") {
		t.Errorf("account add in yen with its own ceilings warned: %s", errs)
	}
	deck := filepath.Join(t.TempDir(), "deck.csv")
	os.WriteFile(deck, []byte("prefix,destination,Rate (GBP)\n44,United Kingdom,0.01\n"), 0o600)
	code, out, errs := c.run("rates", "import", deck)
	if code != 0 || !strings.Contains(errs, "warning: the deck is priced in GBP; the gate denies priced calls (rate_ceiling) of 2 account(s) in other currencies: tokyo (JPY), tokyo2 (JPY)") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	if out := c.ok("rates", "lookup", "+442079460000"); !strings.Contains(out, "deck in GBP)") {
		t.Errorf("lookup:\n%s", out)
	}
	if code, _, errs := c.run("rates", "lookup"); code != 2 || !strings.Contains(errs, "accepts 1 arg(s), received 0 (see `tollguard rates lookup --help`)") {
		t.Errorf("a missing argument: exit %d, %s", code, errs)
	}
	// --currency against the unit, or a currency column naming another
	// code, is refused: a carrier's switch of currency is never taken
	// silently.
	if code, _, errs := c.run("rates", "import", deck, "--currency", "usd"); code != 2 || !strings.Contains(errs, `the rate column "Rate (GBP)" says GBP, but the deck is imported as USD`) {
		t.Errorf("--currency against the unit: exit %d, %s", code, errs)
	}
	os.WriteFile(deck, []byte("prefix,rate,currency\n44,0.01,GBP\n"), 0o600)
	if code, _, errs := c.run("rates", "import", deck, "--currency", "usd"); code != 2 || !strings.Contains(errs, "line 2: currency GBP, but the deck is imported as USD") {
		t.Errorf("contradicting --currency: exit %d, %s", code, errs)
	}
	if code, _, errs := c.run("rates", "import", deck, "--currency", "pounds"); code != 2 || !strings.Contains(errs, "--currency") {
		t.Errorf("bad --currency: exit %d, %s", code, errs)
	}
	// A deck that does not say, with accounts in two currencies.
	os.WriteFile(deck, []byte("prefix,rate\n44,0.01\n"), 0o600)
	if _, _, errs := c.run("rates", "import", deck); !strings.Contains(errs, "the deck does not say its currency") {
		t.Errorf("no currency, two account currencies: %s", errs)
	}
	if _, _, errs := c.run("account", "add", "paris", "--country", "FR", "--currency", "EUR"); !strings.Contains(errs, "the rate deck does not say its currency, and account acme holds GBP") {
		t.Errorf("account add beside a deck of unknown currency: %s", errs)
	}
	c.ok("rates", "import", deck, "--currency", "GBP")
	if _, _, errs := c.run("account", "add", "ny", "--country", "US", "--currency", "USD"); !strings.Contains(errs, "the rate deck is priced in GBP") {
		t.Errorf("account add in another currency: %s", errs)
	}
}

// TestCLIDatabasePath: a database path that cannot be opened exits 2
// with what to do, and a command that creates a new database says so.
func TestCLIDatabasePath(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		db, msg string
	}{
		{filepath.Join(dir, "missing", "tg.db"), "the directory " + filepath.Join(dir, "missing") + " does not exist"},
		{dir, "is a directory; give the database file in it"},
	} {
		c := newCLI(t)
		c.db = tc.db
		code, _, errs := c.run("account", "list")
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("--db %s: exit %d, stderr %q; want 2 and %q", tc.db, code, errs, tc.msg)
		}
	}
	c := newCLI(t)
	code, _, errs := c.run("account", "list")
	if code != 0 || !strings.Contains(errs, "no database at "+c.db+": created a new, empty one") {
		t.Errorf("a new database: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := c.run("account", "list"); code != 0 || errs != "" {
		t.Errorf("the same database again: exit %d, stderr %q", code, errs)
	}
}

// TestCLISaysWhatItRead: a network written with host bits is stored as
// the network, and said so; schedule set echoes what it stored.
func TestCLISaysWhatItRead(t *testing.T) {
	c := newCLI(t)
	c.seed()
	code, _, errs := c.run("ext", "set", "1001", "--cidr", "192.0.2.10/24,10.0.0.0/8")
	if code != 0 || !strings.Contains(errs, "note: 192.0.2.10/24 is read as the network 192.0.2.0/24; give 192.0.2.10 alone") || strings.Contains(errs, "10.0.0.0/8") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if out := c.ok("schedule", "set", "acme", "--hours", "mon-fri 08:00-18:00", "--holiday", "12-25", "--zone", "Europe/London"); !strings.Contains(out,
		`account acme: hours "mon-fri 08:00-18:00" in Europe/London; holidays 12-25; denied after hours: international, premium`) {
		t.Errorf("schedule set said %q", out)
	}
}

// TestCLIGroupHelp: a group's help lists its verbs, with no runnable
// usage line of its own, and `tollguard ext help` is help, not an
// unknown verb.
func TestCLIGroupHelp(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"ext"}, {"ext", "--help"}, {"ext", "help"}} {
		code, out, errs := c.run(args...)
		if code != 0 || !strings.Contains(out, "tollguard ext [command]") || strings.Contains(out, "tollguard ext [flags]") || errs != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	// A verb's help keeps its usage line (the group's template is
	// inherited by its verbs).
	for _, args := range [][]string{{"rule", "add", "--help"}, {"ext", "block", "--help"}} {
		code, out, _ := c.run(args...)
		want := "tollguard " + args[0] + " " + args[1] + " "
		if code != 0 || !strings.Contains(out, "Usage:\n  "+want) {
			t.Errorf("%q: exit %d, no usage line %q in %q", args, code, want, out)
		}
	}
}

// TestCLIExtSetCIDRs: --cidr replaces the access list, --add-cidr adds
// to it, and both print the list they leave (the troubleshooting fix
// for ip_not_allowed, read as an add, dropped the office's network).
func TestCLIExtSetCIDRs(t *testing.T) {
	c := newCLI(t)
	c.seed() // 1001 with 192.0.2.0/24
	out := c.ok("ext", "set", "1001", "--add-cidr", "198.51.100.7", "--add-cidr", "192.0.2.0/24")
	if !strings.Contains(out, "allowed networks: 192.0.2.0/24, 198.51.100.7/32 (were: 192.0.2.0/24)") {
		t.Errorf("add: %q", out)
	}
	out = c.ok("ext", "set", "1001", "--cidr", "203.0.113.0/24")
	if !strings.Contains(out, "allowed networks: 203.0.113.0/24 (were: 192.0.2.0/24, 198.51.100.7/32)") {
		t.Errorf("replace: %q", out)
	}
	out = c.ok("ext", "set", "1001", "--cidr", "none")
	if !strings.Contains(out, "allowed networks: any (no access list) (were: 203.0.113.0/24)") {
		t.Errorf("clear: %q", out)
	}
	if out := c.ok("ext", "set", "1001", "--description", "front desk"); strings.Contains(out, "allowed networks") {
		t.Errorf("no access list change, yet: %q", out)
	}
}

// TestCLIAccountShowPrefixes: an account with no prefixes of its own
// uses its country's; show printed "-" for them, as if it had none.
func TestCLIAccountShowPrefixes(t *testing.T) {
	c := newCLI(t)
	c.ok("account", "add", "gb", "--country", "GB", "--currency", "GBP")
	c.ok("account", "add", "us", "--country", "US", "--currency", "USD", "--intl-prefix", "011")
	c.ok("account", "add", "br", "--country", "BR", "--currency", "BRL")
	for acct, want := range map[string]string{
		"gb": "GB (national prefix 0, the country's; international prefix 00, the country's)",
		"us": "US (national prefix 1, the country's; international prefix 011)",
		"br": "BR (national prefix 0, the country's; international prefix any of the country's)",
	} {
		if out := c.ok("account", "show", acct); !strings.Contains(out, want) {
			t.Errorf("%s: %q, want %q", acct, out, want)
		}
	}
}

// TestCLIExtSetAccountQuota: moving an extension into an account at its
// max_extensions went through, and the quotas audit then blocked the
// account's newest extension, another one.
func TestCLIExtSetAccountQuota(t *testing.T) {
	c := newCLI(t)
	c.seed() // 1001 on acme
	c.ok("account", "add", "small", "--country", "GB", "--currency", "GBP", "--max-extensions", "1")
	c.ok("ext", "add", "2001", "--account", "small", "--no-asterisk")
	code, _, errs := c.run("ext", "set", "1001", "--account", "small")
	if code != exitUsage || !strings.Contains(errs, "max_extensions 1") {
		t.Errorf("moved into a full account: exit %d, stderr %q", code, errs)
	}
	if out := c.ok("ext", "show", "1001"); !strings.Contains(out, "account           acme") {
		t.Errorf("a refused move changed the extension:\n%s", out)
	}
	// Changing anything else of an extension in a full account is fine,
	// and so is a move once there is room.
	c.ok("ext", "set", "2001", "--description", "front desk", "--account", "small")
	c.ok("account", "set", "small", "--max-extensions", "2")
	c.ok("ext", "set", "1001", "--account", "small")
}

// TestCLIPurgeNowWithoutARI: `ext purge --now` cannot delete anything
// without ARI. Its dry run said it would, and the real run blocked the
// extension (with a reason saying its objects would be deleted in 7
// days, though nothing was scheduled) before it failed.
func TestCLIPurgeNowWithoutARI(t *testing.T) {
	c := newCLI(t)
	c.seed() // 1001 on acme; no [ari]
	for _, args := range [][]string{
		{"ext", "purge", "1001", "--now", "--dry-run"},
		{"ext", "purge", "1001", "--now"},
	} {
		code, out, errs := c.run(args...)
		if code == exitOK || !strings.Contains(errs, "ARI is not configured") {
			t.Errorf("tollguard %s without ARI: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
		}
	}
	if out := c.ok("ext", "show", "1001"); !strings.Contains(out, "blocked           no") {
		t.Errorf("a purge --now that could not run blocked the extension:\n%s", out)
	}
	if out := c.ok("check", "1001", "02079460000", "--from", "192.0.2.7"); !strings.Contains(out, "verdict: allow") {
		t.Errorf("after the refused purge:\n%s", out)
	}
}

// TestCLIScheduleHolidayEmpty: an empty --holiday (an unset shell
// variable) was read as "clear the list", and "none" beside dates was
// dropped silently; both are refused and the holidays kept.
func TestCLIScheduleHolidayEmpty(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("schedule", "set", "acme", "--hours", "mon-fri 09:00-17:00", "--holiday", "12-25", "--holiday", "01-01")
	holidays := func() string {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal([]byte(c.ok("schedule", "show", "acme", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(v["holidays"])
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--holiday", ""}, "empty --holiday"},
		{[]string{"--holiday", " "}, "empty --holiday"},
		{[]string{"--holiday", "12-25", "--holiday", ""}, "empty --holiday"},
		{[]string{"--holiday", "12-25", "--holiday", "none"}, "--holiday none with dates (12-25)"},
	} {
		code, _, errs := c.run(append([]string{"schedule", "set", "acme"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.msg) {
			t.Errorf("schedule set acme %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
	if got := holidays(); got != "[12-25 01-01]" {
		t.Errorf("after refused --holiday: %s, want [12-25 01-01]", got)
	}
	if out := c.ok("schedule", "set", "acme", "--holiday", "None"); !strings.Contains(out, "holidays -;") {
		t.Errorf("--holiday None: %s", out)
	}
}

// TestCLIUnblockNamesTheOtherForm: `unblock ACCOUNT` without --intl (or
// `unblock --intl EXT`) said only "not found", though the name exists
// as the other kind; it now says which command lifts that block.
func TestCLIUnblockNamesTheOtherForm(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("account", "intl-block", "acme", "--reason", "test")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"unblock", "acme"}, "lift its international block with `tollguard unblock --intl acme`"},
		{[]string{"unblock", "--intl", "1001"}, "lift its block with `tollguard unblock 1001`"},
		{[]string{"unblock", "nosuch"}, `extension "nosuch" not found`},
	} {
		code, _, errs := c.run(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
	if out := c.ok("account", "show", "acme"); !regexp.MustCompile(`(?m)^international block +yes`).MatchString(out) {
		t.Errorf("the refused unblock lifted the block:\n%s", out)
	}
}

// TestCLIExtCallerIDAndContext: a caller ID with a line break (sent to
// Asterisk as the endpoint's callerid, and from there into FastAGI
// requests) and a context no dialplan can have were stored and used.
func TestCLIExtCallerIDAndContext(t *testing.T) {
	c := newCLI(t)
	c.seed()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"ext", "add", "1002", "--account", "acme", "--no-asterisk", "--caller-id", "Alice\n<1002>"}, `--caller-id "Alice\n<1002>": byte 6 is a control character (a line break)`},
		{[]string{"ext", "add", "1002", "--account", "acme", "--no-asterisk", "--context", "from internal"}, `context "from internal": a dialplan context name has no spaces`},
		{[]string{"ext", "add", "1002", "--account", "acme", "--no-asterisk", "--context", "from-internal,1"}, `context "from-internal,1"`},
		{[]string{"ext", "set", "1001", "--caller-id", "Bob\r\n<1001>"}, `--caller-id "Bob\r\n<1001>": byte 4 is a control character (a carriage return)`},
	} {
		code, _, errs := c.run(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
	if code, _, _ := c.run("ext", "show", "1002"); code != exitUsage {
		t.Errorf("a refused ext add stored 1002 (ext show exit %d)", code)
	}
	if out := c.ok("ext", "show", "1001", "--json"); strings.Contains(out, "Bob") {
		t.Errorf("a refused ext set stored the caller ID: %s", out)
	}
	c.ok("ext", "add", "1003", "--account", "acme", "--no-asterisk", "--caller-id", `"Reception" <1003>`, "--context", "from-internal")
}

// TestConfigCheckJSON: config check was the one read command without
// --json; its report keeps each error's line and column, and the exit
// code stays 2 when there are errors.
func TestConfigCheckJSON(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	type report struct {
		Path   string `json:"path"`
		OK     bool   `json:"ok"`
		Errors []struct {
			Line    int    `json:"line"`
			Col     int    `json:"col"`
			Message string `json:"message"`
		} `json:"errors"`
		Warnings []string `json:"warnings"`
	}
	check := func(text string) (int, report) {
		t.Helper()
		path := filepath.Join(dir, "tg.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, _ := c.run("config", "check", "--json", path)
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("config check --json printed no JSON (%v): %q", err, out)
		}
		return code, r
	}
	if code, r := check("[agi]\nlisten = \"127.0.0.1:4573\"\n"); code != 0 || !r.OK || len(r.Errors) != 0 || r.Errors == nil || r.Warnings == nil {
		t.Errorf("good config: exit %d, %+v", code, r)
	}
	code, r := check("[agi]\nlisen = \"x\"\nmax_sessions = 0\n")
	if code != exitUsage || r.OK || len(r.Errors) != 2 || r.Errors[0].Line != 2 || !strings.Contains(r.Errors[0].Message, `unknown setting "agi.lisen"`) ||
		r.Errors[1].Line != 3 || !strings.Contains(r.Errors[1].Message, "max_sessions must be at least 1") {
		t.Errorf("bad config: exit %d, %+v", code, r)
	}
	if code, r := check("[agi]\nlisten = \"127.0.0.1:45"); code != exitUsage || len(r.Errors) != 1 || r.Errors[0].Line != 2 || r.Errors[0].Col == 0 {
		t.Errorf("syntax error: exit %d, %+v", code, r)
	}
}

// TestCLIFlagValueSaysWhatToWrite: a flag value its type cannot parse
// was reported in Go's words ("strconv.ParseInt: parsing \"1.5\":
// invalid syntax"); it now says what the flag wants.
func TestCLIFlagValueSaysWhatToWrite(t *testing.T) {
	c := newCLI(t)
	c.seed()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"account", "set", "acme", "--max-call-secs", "1.5"}, `--max-call-secs "1.5": want a whole number`},
		{[]string{"account", "set", "acme", "--ext-per-minute", "99999999999999999999"}, `--ext-per-minute "99999999999999999999": too large`},
		{[]string{"account", "set", "acme", "--whitelist=maybe"}, `--whitelist "maybe": want true or false (--whitelist alone is true; --whitelist=false)`},
		{[]string{"detectors", "set", "acme", "burst_ext", "--window", "60"}, `--window "60": want a duration with its unit`},
		{[]string{"rates", "import", "-q=x", "deck.csv"}, `--quiet "x": want true or false`},
	} {
		code, _, errs := c.run(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.msg) || strings.Contains(errs, "strconv") || strings.Contains(errs, "time: ") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
}

// TestCLIRuleAddNamesAShadowingDeny: deny rules win, so an allow rule
// under a deny rule's prefix (or a deny added over allow rules) allowed
// nothing, and rule add said nothing of it.
func TestCLIRuleAddNamesAShadowingDeny(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("account", "add", "other", "--country", "GB", "--currency", "GBP")
	c.ok("rule", "add", "deny", "+44")
	code, _, errs := c.run("rule", "add", "allow", "+4420", "--account", "acme")
	if code != 0 || !strings.Contains(errs, "deny rule 1 (+44, all accounts) matches every number allow rule 2 (+4420, account acme) allows, and deny rules win: the allow rule has no effect") {
		t.Errorf("allow under a global deny: exit %d, stderr %q", code, errs)
	}
	c.ok("rule", "add", "allow", "+33")
	code, _, errs = c.run("rule", "add", "deny", "+331", "--account", "other")
	if code != 0 || strings.Contains(errs, "deny rules win") {
		t.Errorf("a deny under an allow's prefix shadows only part of it: exit %d, stderr %q", code, errs)
	}
	code, _, errs = c.run("rule", "add", "deny", "+3", "--account", "other")
	if code != 0 || !strings.Contains(errs, "deny rule 5 (+3, account other) matches every number allow rule 3 (+33, all accounts) allows, and deny rules win: for account other the allow rule has no effect") {
		t.Errorf("an account's deny over a global allow: exit %d, stderr %q", code, errs)
	}
	// Another account's rules are not this one's.
	if code, _, errs := c.run("rule", "add", "allow", "+3312", "--account", "acme"); code != 0 || strings.Contains(errs, "deny rules win") {
		t.Errorf("allow beside another account's deny: exit %d, stderr %q", code, errs)
	}
}

// TestCLICountryUK: UK, the usual slip for GB, got only "use GB, US,
// DE, ..." from the CLI; config check already named it.
func TestCLICountryUK(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{"account", "add", "acme", "--country", "UK", "--currency", "GBP"},
		{"account", "add", "acme", "--country", "uk", "--currency", "GBP"},
		{"rates", "lookup", "02079460000", "--country", "UK"},
		{"dialplan", "emergency", "uk"},
	} {
		code, _, errs := c.run(args...)
		if code != exitUsage || !strings.Contains(errs, "the United Kingdom is GB, not UK") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}

// TestCLICreditDebitPastTheLimit: a debit that took the balance past
// the credit limit (-- -1000 for -- -10.00) was taken without a word,
// though it stops the account's priced calls.
func TestCLICreditDebitPastTheLimit(t *testing.T) {
	c := newCLI(t)
	c.seed() // 10.00 GBP
	code, out, errs := c.run("credit", "add", "acme", "--", "-1000")
	if code != 0 || !strings.Contains(out, "balance now -990.00 GBP") ||
		!strings.Contains(errs, "the balance is 990.00 past what the credit limit (0.00) allows: the account's priced calls are denied (no_credit) until credit is added; undo a mistake with `tollguard credit add acme 1000.00`") {
		t.Errorf("debit past the limit: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	c.ok("credit", "add", "acme", "1000")
	if code, _, errs := c.run("credit", "add", "acme", "--", "-5.00"); code != 0 || errs != "" {
		t.Errorf("a debit within the balance: exit %d, stderr %q", code, errs)
	}
}

// TestCLIWhitelistWithoutAllowRules: strict whitelist mode with no allow
// rule denies every call but emergency ones, and account add/set said
// only "updated".
func TestCLIWhitelistWithoutAllowRules(t *testing.T) {
	c := newCLI(t)
	c.seed()
	const note = "account acme is in strict whitelist mode with no allow rule: every outside call but emergency numbers is denied (not_whitelisted)"
	if code, _, errs := c.run("account", "set", "acme", "--whitelist"); code != 0 || !strings.Contains(errs, note) {
		t.Errorf("--whitelist with no allow rule: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := c.run("account", "add", "wl", "--country", "GB", "--currency", "GBP", "--whitelist"); code != 0 || !strings.Contains(errs, "account wl is in strict whitelist mode with no allow rule") {
		t.Errorf("account add --whitelist: exit %d, stderr %q", code, errs)
	}
	c.ok("rule", "add", "allow", "+4420")
	if code, _, errs := c.run("account", "set", "acme", "--whitelist"); code != 0 || strings.Contains(errs, "no allow rule") {
		t.Errorf("--whitelist with a global allow rule: exit %d, stderr %q", code, errs)
	}
}

// TestCLIScheduleHoursOnlySeparators: --hours "" opens the account all
// the time, on purpose; a spec of only ";" and spaces ("$WEEK; $SAT"
// with both unset) read the same and opened it at night too. It is
// refused, and the hours in force stay.
func TestCLIScheduleHoursOnlySeparators(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("schedule", "set", "acme", "--hours", "mon-fri 09:00-17:00")
	for _, bad := range []string{";", " ; ", " ", ";;", "\r", "\n", "; \u00a0"} {
		code, _, errs := c.run("schedule", "set", "acme", "--hours", bad)
		if code != 2 || !strings.Contains(errs, `--hours ""`) {
			t.Errorf("--hours %q: exit %d, %s", bad, code, errs)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(c.ok("schedule", "show", "acme", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v["hours"] != "mon-fri 09:00-17:00" {
		t.Errorf("hours after the refused specs: %q", v["hours"])
	}
	if out := c.ok("schedule", "set", "acme", "--hours", ""); !strings.Contains(out, "always open") {
		t.Errorf(`--hours "": %s`, out)
	}
}

// TestListenHostMessage: a listen host of digits and dots that is no
// address was refused with "want host:port with a port from 0 to
// 65535", though host:port and the port were fine; the forms serve
// takes (names, IPv6, empty host) stay accepted.
func TestListenHostMessage(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tollguard.toml")
	for _, addr := range []string{"localhost:4573", "pbx.example:4573", "1e100.net:4573", "[::1]:4573", "[fe80::1%eth0]:4573", ":4573", "0.0.0.0:4573"} {
		os.WriteFile(cfg, []byte("[agi]\nlisten = \""+addr+"\"\n"), 0o600)
		if code, _, errs := c.run("config", "check", cfg); code != 0 {
			t.Errorf("listen %q: exit %d, %s", addr, code, errs)
		}
	}
	for _, addr := range []string{"256.1.1.1:4573", "10.0.0:4573", "127.000.000.001:4573"} {
		os.WriteFile(cfg, []byte("[agi]\nlisten = \""+addr+"\"\n"), 0o600)
		code, _, errs := c.run("config", "check", cfg)
		if code != exitUsage || !strings.Contains(errs, "is no IP address") || strings.Contains(errs, "port from 0 to 65535") {
			t.Errorf("listen %q: exit %d, %s", addr, code, errs)
		}
	}
	t.Setenv("TOLLGUARD_AGI_ADDR", "256.1.1.1:4573")
	code, _, errs := c.run("serve")
	if code != exitUsage || !strings.Contains(errs, `FastAGI address "256.1.1.1:4573" (TOLLGUARD_AGI_ADDR or [agi] listen): host "256.1.1.1" is no IP address`) {
		t.Errorf("serve with TOLLGUARD_AGI_ADDR=256.1.1.1:4573: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(c.db); !os.IsNotExist(err) {
		t.Errorf("serve with a bad address created the database: %v", err)
	}
}

// TestBlankDatabasePathRefused: TOLLGUARD_DB=" " (an unset shell
// variable quoted with a space) opened a new, empty database named " "
// in the current directory; commands then read no accounts from it.
func TestBlankDatabasePathRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("TOLLGUARD_CONFIG", "")
	if err := os.WriteFile("tollguard.toml", []byte("[agi]\nlisten = \"127.0.0.1:4573\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  string
		args []string
	}{
		{" ", []string{"account", "list"}},
		{"", []string{"--db", " \t", "account", "list"}},
		{" ", []string{"config", "check", "tollguard.toml"}},
	} {
		t.Setenv("TOLLGUARD_DB", c.env)
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, strings.NewReader(""), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "empty") && !strings.Contains(errb.String(), "blank") {
			t.Errorf("TOLLGUARD_DB=%q tollguard %s: exit %d, %s", c.env, strings.Join(c.args, " "), code, errb.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files created: %v", entries)
	}
}
