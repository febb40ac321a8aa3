package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestServeWithARI runs `tollguard serve` with [ari] enabled against
// the fake ARI: registrations reach the store (and `regs`), a
// registration from outside the access list locks the extension down,
// and SIGTERM-style cancellation stops it cleanly.
func TestServeWithARI(t *testing.T) {
	fake := newFakeARI(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "tollguard.db")
	pw := filepath.Join(dir, "ari.secret")
	os.WriteFile(pw, []byte(fake.Password+"\n"), 0o600)
	cfg := filepath.Join(dir, "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`db = %q
[agi]
listen = "127.0.0.1:0"
[metrics]
enabled = false
[ari]
enabled = true
url = %q
user = %q
password_file = %q
reconnect_min = "20ms"
reconnect_max = "200ms"
settle_grace = "0s"
[detectors.burst_ext]
threshold = 20
`, db, fake.URL, fake.User, pw)), 0o600)
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "")
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := cli(args...)
		if code != 0 {
			t.Fatalf("tollguard %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	ok("ext", "add", "1001", "--account", "acme", "--cidr", "192.0.2.0/24", "--no-asterisk")
	ok("ext", "add", "1002", "--account", "acme", "--no-asterisk")
	// A call in progress from 1001 (national, unrated: free): the
	// lockdown below hangs it up.
	liveCall(t, fake, db, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.10", UniqueID: "pbx-7.1"})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var serveErr bytes.Buffer
	go func() {
		var out bytes.Buffer
		done <- run(ctx, []string{"--config", cfg, "serve"}, strings.NewReader(""), &out, &serveErr)
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := fake.WaitConnections(wctx, 1); err != nil {
		cancel()
		t.Fatalf("%v\n%s", err, serveErr.String())
	}

	fake.Register("1002", "1002", "sip:1002@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062", map[string]string{"user_agent": "Snom D785"}, true)
	thief := fake.Register("1001", "1001", "sip:1001@203.0.113.66:5060;x-ast-orig-host=203.0.113.66:5060", map[string]string{"user_agent": "friendly-scanner"}, true)

	var regs []regView
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := cli("regs", "--json")
		regs = nil
		if code == 0 {
			json.Unmarshal([]byte(out), &regs)
		}
		if len(regs) == 2 && !regs[0].Live { // 1001's contact removed by the lockdown
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("regs: %s\nserve log:\n%s", out, serveErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if regs[1].Extension != "1002" || regs[1].IP != "198.51.100.20" || regs[1].UserAgent != "Snom D785" || regs[1].AddressSource != tollguard.AddrRewritten {
		t.Errorf("regs %+v", regs[1])
	}
	if _, still := fake.Object("contact", thief); still {
		t.Error("attacker's contact not removed")
	}
	if fake.HasChannel("pbx-7.1") || len(fake.RequestsMatching(http.MethodDelete, "/channels/pbx-7.1")) != 1 {
		t.Error("the locked-down extension's call in progress was not hung up")
	}
	out := ok("regs", "1002")
	for _, want := range []string{"EXT", "198.51.100.20:5062", "rewritten", "Snom D785", "live"} {
		if !strings.Contains(out, want) {
			t.Errorf("regs 1002 lacks %q:\n%s", want, out)
		}
	}
	out = ok("ext", "show", "1001")
	if !strings.Contains(out, "registration:acl") {
		t.Errorf("ext show 1001 does not show the lockdown:\n%s", out)
	}

	stopServe(t, cancel, done, &serveErr, 15*time.Second)
	if !strings.Contains(serveErr.String(), "ARI listener starting") || !strings.Contains(serveErr.String(), "credentials_compromised") {
		t.Errorf("serve log:\n%s", serveErr.String())
	}
}

func TestRegsCommand(t *testing.T) {
	c := newCLI(t)
	if out := c.ok("regs"); !strings.Contains(out, "no registrations seen yet") {
		t.Errorf("empty: %s", out)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, c.db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for _, r := range []struct{ ext, uri, ip, ua string }{
		{"1001", "sip:1001@192.0.2.10:5060;x-ast-orig-host=10.0.0.5:5060", "192.0.2.10", "Yealink T46U"},
		{"1001", "sip:1001@198.51.100.7:40000", "198.51.100.7", "Zoiper"},
		{"1002", "sip:1002@127.0.0.1:5081", "127.0.0.1", "SIPp"},
		// A user agent that would print a forged row of its own.
		{"1004", "sip:1004@203.0.113.4:5060", "203.0.113.4", "Yealink\n1003\tregistered\t10.0.0.9"},
	} {
		src := tollguard.AddrContact
		if strings.Contains(r.uri, "x-ast-orig-host") {
			src = tollguard.AddrRewritten
		}
		if _, err := db.ObserveContact(ctx, tollguard.Contact{ID: tollguard.ContactID(r.ext, r.uri), AOR: r.ext, Extension: r.ext, URI: r.uri,
			IP: r.ip, Port: 5060, AddrSource: src, UserAgent: r.ua, LastSeen: at}); err != nil {
			t.Fatal(err)
		}
	}
	db.ContactGone(ctx, tollguard.ContactID("1001", "sip:1001@198.51.100.7:40000"), at.Add(time.Hour))
	db.Close()

	out := c.ok("regs", "1001")
	if !strings.Contains(out, "192.0.2.10:5060") || !strings.Contains(out, "gone 2026-11-23 10:00:00Z") || strings.Contains(out, "1002") {
		t.Errorf("regs 1001:\n%s", out)
	}
	if out := c.ok("regs", "1004"); strings.Count(out, "\n") != 2 || !strings.Contains(out, `Yealink\n1003\tregistered`) {
		t.Errorf("regs 1004: the user agent's line break and tabs were printed, not shown:\n%s", out)
	}
	var vs []regView
	if err := json.Unmarshal([]byte(c.ok("regs", "--live", "--json")), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || !vs[0].Live || vs[0].FirstSeen == nil || *vs[0].FirstSeen != "2026-11-23T09:00:00Z" || vs[0].RemovedAt != nil {
		t.Errorf("live json: %+v", vs)
	}
	// Known to the store but never registered, and known to neither.
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	// Without ARI, ext add says it made only tollguard's record; with
	// --json on stderr, stdout keeping its JSON.
	code, out, errs := c.run("ext", "add", "1003", "--account", "acme", "--json")
	if code != exitOK || !json.Valid([]byte(out)) || !strings.Contains(errs, "only tollguard's record was made") {
		t.Errorf("ext add --json without ARI: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if out := c.ok("regs", "1003"); !strings.Contains(out, "no registrations seen for 1003") {
		t.Errorf("never registered: %s", out)
	}
	if code, _, errs := c.run("regs", "1009"); code != exitUsage || !strings.Contains(errs, `extension "1009" not found, and no registration of it was seen`) {
		t.Errorf("unknown: exit %d, %s", code, errs)
	}
	if code, _, _ := c.run("regs", "1001", "1002"); code != exitUsage {
		t.Errorf("two args: exit %d", code)
	}
}

func TestDetectorsCommand(t *testing.T) {
	c := newCLI(t)
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	out := c.ok("detectors")
	for _, want := range []string{"burst_ext", "10", "1m0s", "sweep", "block_extension", "long_intl", "1h0m0s", "config"} {
		if !strings.Contains(out, want) {
			t.Errorf("detectors lacks %q:\n%s", want, out)
		}
	}
	c.ok("detectors", "set", "acme", "burst_ext", "--threshold", "60")
	var vs []detectorView
	if err := json.Unmarshal([]byte(c.ok("detectors", "acme", "--json")), &vs); err != nil {
		t.Fatal(err)
	}
	if vs[0].Detector != "burst_ext" || vs[0].Threshold != 60 || vs[0].Window != "1m0s" || vs[0].Source != "account acme" || vs[1].Source != "config" {
		t.Errorf("acme: %+v", vs[:2])
	}
	// One event must never block: refused, exit 2.
	code, _, errs := c.run("detectors", "set", "acme", "high_risk", "--threshold", "1", "--action", "intl_block")
	if code != exitUsage || !strings.Contains(errs, "misdial") {
		t.Errorf("block on one event: exit %d %s", code, errs)
	}
	for _, bad := range [][]string{
		{"detectors", "set", "acme", "nope", "--threshold", "3"},
		{"detectors", "set", "acme", "burst_ext"},
		{"detectors", "set", "nobody", "burst_ext", "--threshold", "3"},
		{"detectors", "nobody"},
	} {
		if code, _, _ := c.run(bad...); code != exitUsage {
			t.Errorf("%v: exit %d", bad, code)
		}
	}
	if out := c.ok("detectors", "clear", "acme", "burst_ext"); !strings.Contains(out, "back to the default") {
		t.Errorf("clear: %s", out)
	}
	if out := c.ok("detectors", "acme"); strings.Contains(out, "account acme") {
		t.Errorf("override still shown:\n%s", out)
	}
}

func TestARIConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, fmt.Sprintf("c%d.toml", time.Now().UnixNano()))
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	c, err := LoadConfig(write("[ari]\nenabled = true\nurl = \"http://pbx:8088/ari\"\nuser = \"tg\"\n[detectors.sweep]\nthreshold = 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyEnv(func(k string) string { return map[string]string{"TOLLGUARD_ARI_PASSWORD": "s3cret"}[k] })
	cc, err := c.ARI.ClientConfig()
	if err != nil || cc.Password != "s3cret" || cc.App != "tollguard" || cc.URL != "http://pbx:8088/ari" || cc.ResyncInterval != time.Hour {
		t.Fatalf("client config %+v %v", cc, err)
	}
	c3, err := LoadConfig(write("[ari]\nenabled = true\nresync_interval = \"15m\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c3.ApplyEnv(func(k string) string { return map[string]string{"TOLLGUARD_ARI_PASSWORD": "s3cret"}[k] })
	if cc, err := c3.ARI.ClientConfig(); err != nil || cc.ResyncInterval != 15*time.Minute {
		t.Errorf("resync_interval = \"15m\": client config %+v %v", cc, err)
	}
	if r := c.Detectors.Settings().Rules[tollguard.DetectSweep]; r.Threshold != 7 || r.Action != tollguard.ActionBlockExtension || r.Window != 10*time.Minute {
		t.Errorf("sweep rule %+v: the file's threshold over the defaults", r)
	}
	c.maskSecrets()
	if c.ARI.password == "s3cret" {
		t.Error("password not masked")
	}
	// No password anywhere: a clear error when the client is built.
	c2, _ := LoadConfig(write("[ari]\nenabled = true\n"))
	if _, err := c2.ARI.ClientConfig(); err == nil || !strings.Contains(err.Error(), "TOLLGUARD_ARI_PASSWORD") {
		t.Errorf("no password: %v", err)
	}
	for _, bad := range []string{
		"[ari]\nurl = \"pbx:8088\"\n",
		"[ari]\nurl = \"http://u:p@pbx:8088/ari\"\n",
		"[ari]\nreconnect_min = \"1m\"\nreconnect_max = \"1s\"\n",
		"[ari]\nenabled = true\npassword_file = \"/nonexistent/secret\"\n",
		"[detectors.high_risk]\nthreshold = 1\naction = \"intl_block\"\n",
		"[detectors.burst_ext]\naction = \"hangup\"\n",
		"[detectors]\nsweep_digits = 0\n",
		"[detectors.nope]\nthreshold = 1\n",
	} {
		if _, err := LoadConfig(write(bad)); tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// A secret file every local user can read is refused.
	secret := filepath.Join(t.TempDir(), "ari.secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	withFile, err := LoadConfig(write(fmt.Sprintf("[ari]\nenabled = true\npassword_file = %q\n", secret)))
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(secret, 0o644)
	if _, err := withFile.ARI.ClientConfig(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secret file: %v", err)
	}
	// config check refuses it too, so a check before a restart never
	// passes what serve then refuses with exit 2.
	if _, err := LoadConfig(write(fmt.Sprintf("[ari]\nenabled = true\npassword_file = %q\n", secret))); tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("config check of a world-readable secret file: %v", err)
	}
	os.Chmod(secret, 0o640) // group tollguard: fine
	if cc, err := withFile.ARI.ClientConfig(); err != nil || cc.Password != "s3cret" {
		t.Errorf("0640 secret file: %v", err)
	}
}

// TestRegistrationAdviceNamesRealCommands: the registration alerts tell
// the admin which command to run; each one they name must exist (they
// said `tollguard ext rotate`, which the CLI refuses as unknown).
func TestRegistrationAdviceNamesRealCommands(t *testing.T) {
	ext := &tollguard.Extension{Name: "1001", Account: "acme", CIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	seen := tollguard.ContactHistory{Registered: true, IPs: []string{"192.0.2.10"}, Agents: []string{"Yealink T46U"}}
	var msgs []string
	for _, c := range []tollguard.Contact{
		{Extension: "1001", IP: "203.0.113.66", AddrSource: tollguard.AddrRewritten, UserAgent: "friendly-scanner"}, // lockdown
		{Extension: "1001", IP: "192.168.1.20", AddrSource: tollguard.AddrContact, UserAgent: "Zoiper"},             // new IP and agent
	} {
		for _, f := range tollguard.JudgeContact(ext, &tollguard.Account{ID: "acme"}, seen, c, time.Now()).Findings {
			msgs = append(msgs, f.Message)
		}
	}
	root := newRootCommand(NewApp(strings.NewReader(""), io.Discard, io.Discard))
	named := regexp.MustCompile("`tollguard ([a-z-]+(?: [a-z-]+)?)")
	for _, m := range msgs {
		for _, sub := range named.FindAllStringSubmatch(m, -1) {
			cmd, rest, err := root.Find(strings.Fields(sub[1]))
			if err != nil || len(rest) > 0 || isGroup(cmd) {
				t.Errorf("message names `tollguard %s`, which is no command: %s", sub[1], m)
			}
		}
	}
	if len(msgs) < 3 {
		t.Fatalf("want lockdown, new_ip and new_user_agent findings, got %q", msgs)
	}
}
