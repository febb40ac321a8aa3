package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	_ "github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/cron"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/voicemail"
)

// auditCLI runs the tollguard command against a temp database, a config
// file and the fixture-built fake ARI over HTTP.
type auditCLI struct {
	t            *testing.T
	dir, db, cfg string
	fake         *aritest.Server
}

func newAuditCLI(t *testing.T, config string) *auditCLI {
	t.Helper()
	c := &auditCLI{t: t, dir: t.TempDir()}
	c.db = filepath.Join(c.dir, "tollguard.db")
	c.cfg = filepath.Join(c.dir, "tollguard.toml")
	if err := os.WriteFile(c.cfg, []byte(fmt.Sprintf("db = %q\n", c.db)+config), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := newFakeARI(t)
	c.fake = fake
	prev := ariClient
	ariClient = func(*App) (tollguard.Asterisk, func(), error) {
		cl, err := ari.NewClient(ari.Config{URL: fake.URL, User: fake.User, Password: fake.Password})
		if err != nil {
			return nil, nil, err
		}
		return cl, cl.Close, nil
	}
	t.Cleanup(func() { ariClient = prev })
	return c
}

func (c *auditCLI) run(args ...string) (string, string, int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--config", c.cfg}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func (c *auditCLI) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("tollguard %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestCLIExtensionLifecycle(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP", "--max-extensions", "2")

	out := c.ok("ext", "add", "1009", "--account", "acme", "--json")
	var added struct {
		Name     string   `json:"name"`
		Password string   `json:"password"`
		Objects  []string `json:"asterisk_objects"`
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if added.Name != "1009" || len(added.Password) != 24 || len(added.Objects) != 3 {
		t.Errorf("added %+v", added)
	}
	if o, _ := c.fake.Object("auth", "1009"); o.Get("password") != added.Password {
		t.Error("printed password is not Asterisk's")
	}

	out = c.ok("ext", "rotate-password", "1009")
	if !strings.Contains(out, "SIP password: ") || strings.Contains(out, added.Password) {
		t.Errorf("rotate: %s", out)
	}

	// Store only, then over quota: exit 2 (bad input) with the reason.
	c.ok("ext", "add", "1001", "--account", "acme", "--no-asterisk")
	_, errOut, code := c.run("ext", "add", "1010", "--account", "acme")
	if code != exitUsage || !strings.Contains(errOut, "max_extensions 2") {
		t.Errorf("over quota: exit %d, %s", code, errOut)
	}

	out = c.ok("ext", "purge", "1009", "--dry-run")
	if !strings.Contains(out, "dry run") {
		t.Errorf("dry run: %s", out)
	}
	if _, ok := c.fake.Object("endpoint", "1009"); !ok {
		t.Fatal("dry run deleted")
	}
	out = c.ok("ext", "purge", "1009", "--now", "--reason", "left the company")
	if !strings.Contains(out, "3 PJSIP objects deleted") || strings.Contains(out, "not blocked") {
		t.Errorf("purge: %s", out)
	}
	if _, ok := c.fake.Object("endpoint", "1009"); ok {
		t.Fatal("not deleted")
	}
	out = c.ok("ext", "snapshots", "1009")
	if !strings.Contains(out, "auth/1009,aor/1009,endpoint/1009") || !strings.Contains(out, "left the company") {
		t.Errorf("snapshots: %s", out)
	}
	out = c.ok("ext", "restore", "1009")
	if !strings.Contains(out, "auth/1009, aor/1009, endpoint/1009") || !strings.Contains(out, "block lifted") {
		t.Errorf("restore: %s", out)
	}
	if _, ok := c.fake.Object("endpoint", "1009"); !ok {
		t.Error("not restored")
	}

	// pjsip.conf objects: 403, exit 1, and what to configure.
	_, errOut, code = c.run("ext", "rotate-password", "1001")
	if code != exitFailure || !strings.Contains(errOut, "sorcery.conf") {
		t.Errorf("403: exit %d, %s", code, errOut)
	}
}

// newPinsCLI is an audit CLI whose voicemail.conf (a copy of the
// voicemail package's) has 11 weak PINs, and two that nobody can type
// (a blank before the comma), which are reported and left alone.
func newPinsCLI(t *testing.T) *auditCLI {
	dir := t.TempDir()
	err := filepath.WalkDir("../../voicemail/testdata/etc", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../../voicemail/testdata/etc", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
	return newAuditCLI(t, fmt.Sprintf("[audit.pins]\nvoicemail_conf = %q\nbackup_dir = %q\n", filepath.Join(dir, "voicemail.conf"), t.TempDir()))
}

// TestCLIAuditApplyFailedActionExits1: the PINs are rewritten but
// app_voicemail cannot be reloaded (no ARI); the run exited 0, so a cron
// job never noticed voicemail still had the old PINs.
func TestCLIAuditApplyFailedActionExits1(t *testing.T) {
	c := newPinsCLI(t)
	ariClient = nil
	out, errOut, code := c.run("audit", "pins", "--apply")
	if code != exitFailure || !strings.Contains(out, "FAILED") || !strings.Contains(errOut, "audit pins: 1 of its 12 actions failed") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestCLIAuditPinsApply(t *testing.T) {
	c := newPinsCLI(t)
	out := c.ok("audit", "pins")
	if !strings.Contains(out, "pins: 13 findings, 0 actions (report-only)") || !strings.Contains(out, "run `tollguard audit pins --apply`") {
		t.Errorf("report: %s", out)
	}
	out = c.ok("audit", "pins", "--apply", "--json")
	var run tollguard.AuditRun
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	secrets := 0
	for _, a := range run.Actions {
		if a.Kind == tollguard.AuditActRewritePIN && len(a.Secret) == 6 {
			secrets++
		}
	}
	if secrets != 11 || len(c.fake.RequestsMatching("PUT", "/asterisk/modules/app_voicemail.so")) != 1 {
		t.Errorf("secrets %d, run %+v", secrets, run.Actions)
	}
	out = c.ok("audit", "runs", "--json")
	var runs []tollguard.AuditRun
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("runs %v: %s", err, out)
	}
	if runs[0].Actions[0].Secret != "" || !runs[0].Apply || runs[1].Apply {
		t.Errorf("stored runs %+v", runs)
	}
	if out := c.ok("audit", "runs"); !strings.Contains(out, "pins") {
		t.Errorf("runs table: %s", out)
	}
}

// TestCLIAuditPinsRealtimeReadsVoicemailConf: the realtime table is
// judged with voicemail_conf's [general] searchcontexts: off, 1001@default
// and 1001@sales are two mailboxes, each rewritten; not knowing it, both
// were left, as app_voicemail might read either for a plain 1001.
func TestCLIAuditPinsRealtimeReadsVoicemailConf(t *testing.T) {
	dir := t.TempDir()
	conf, table := filepath.Join(dir, "voicemail.conf"), filepath.Join(dir, "realtime.sqlite3")
	if err := os.WriteFile(conf, []byte("[general]\nsearchcontexts = no\n[default]\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", table)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '1001', '1234'), ('sales', '1001', '1111')`); err != nil {
		t.Fatal(err)
	}
	c := newAuditCLI(t, fmt.Sprintf("[audit.pins]\nvoicemail_conf = %q\nrealtime_dsn = %q\n", conf, "sqlite3://"+table))
	var run tollguard.AuditRun
	if out := c.ok("audit", "pins", "--apply", "--json"); json.Unmarshal([]byte(out), &run) != nil {
		t.Fatalf("output: %s", out)
	}
	var acts []string
	for _, a := range run.Actions {
		acts = append(acts, a.Kind+" "+a.Subject)
	}
	if want := []string{"rewrite_pin mailbox:1001@default", "rewrite_pin mailbox:1001@sales"}; strings.Join(acts, "|") != strings.Join(want, "|") {
		t.Errorf("actions %q, want %q", acts, want)
	}
}

func TestCLIAuditAllWithoutARI(t *testing.T) {
	c := newAuditCLI(t, "[audit]\nfail2ban_client = \"/nonexistent/fail2ban-client\"\n")
	ariClient = nil
	out := c.ok("audit", "all")
	for _, want := range []string{"stale: ", "tests: ", "pins: 1 findings", "passwords: 1 findings", "quotas: ", "spend: 0 findings", "coverage: 2 findings",
		"ARI is not configured", "fail2ban is not installed", "no voicemail source is configured"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, errOut, code := c.run("audit", "nope"); code != exitUsage || !strings.Contains(errOut, "unknown audit") {
		t.Errorf("unknown audit: %d %s", code, errOut)
	}
	// A report-only audit does not suggest --apply, nor one with
	// nothing to act on (pins without a voicemail source); one that
	// acts does.
	if strings.Contains(out, "audit coverage --apply") || strings.Contains(out, "audit pins --apply") || !strings.Contains(out, "audit passwords --apply") {
		t.Errorf("--apply hints:\n%s", out)
	}
	if !strings.Contains(out, "set [audit.pins] voicemail_conf") {
		t.Errorf("the PIN hint names the wrong section:\n%s", out)
	}
	// A purge scheduled without ARI says who will carry it out.
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("ext", "add", "1001", "--account", "acme")
	if out := c.ok("ext", "purge", "1001"); !strings.Contains(out, "will be deleted after") ||
		!strings.Contains(out, "nothing in this config deletes them by itself: after ") || !strings.Contains(out, "run `tollguard audit stale --apply`") {
		t.Errorf("purge without audits:\n%s", out)
	}
	// A selftest that could test nothing is not a pass.
	if out, errOut, code := c.run("selftest"); code != exitFailure || !strings.Contains(errOut, "selftest tested nothing") {
		t.Errorf("selftest without ARI: exit %d\n%s%s", code, out, errOut)
	}
}

func TestCLISelftestFailsWithoutGate(t *testing.T) {
	c := newAuditCLI(t, "[audit.selftest]\nwait = \"1s\"\n")
	out, errOut, code := c.run("selftest", "--context", "from-nowhere")
	if code != exitFailure || !strings.Contains(out, "never saw the selftest call into from-nowhere") || !strings.Contains(errOut, "selftest failed") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestAuditConfigValidation(t *testing.T) {
	odbcWant := "this tollguard was built without ODBC: rebuild with `make build TAGS=odbc`"
	if voicemail.ODBCSupported() { // built with -tags odbc
		odbcWant = "names no DSN= or Driver="
	}
	for _, tc := range []struct {
		name, text, want string
	}{
		{"CronTZPanicIsAnError", "[audit]\nenabled = true\n[audit.schedules]\nstale = \"CRON_TZ=UTC\"\n", `t.toml:4: schedules.stale: schedule "CRON_TZ=UTC": a zone needs the schedule after it`},
		{"UnknownAudit", "[audit.schedules]\nstael = \"@daily\"\n", `unknown audit "stael"`},
		{"TooOften", "[audit.schedules]\nspend = \"@every 5s\"\n", "at most once a minute"},
		{"BadZone", "[audit]\nzone = \"Mars/Olympus\"\n", `zone "Mars/Olympus"`},
		{"ODBC", "[audit.pins]\nrealtime_dsn = \"odbc:UID=ast;PWD=s3cret\"\n", odbcWant},
		{"BadPattern", "[audit]\ntest_patterns = [\"(\"]\n", "test pattern"},
		{"Score", "[audit.passwords]\nmin_score = 5\n", "0 to 4"},
		{"ShortGenerated", "[audit.ext]\npassword_length = 12\n", "password_length 12"},
		{"UnknownApply", "[audit]\napply = [\"everything\"]\n", `apply: unknown audit "everything"`},
		{"UnknownSetting", "[audit]\nstale_dayz = 3\n", `unknown setting "audit.stale_dayz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("t.toml", tc.text, DefaultConfig())
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	cfg, err := parseConfig("t.toml", "[audit]\nenabled = true\nzone = \"Europe/London\"\napply = [\"quotas\"]\n[audit.schedules]\nstale = \"off\"\nselftest = \"0 6 * * 1\"\n", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Audit
	if a.Schedules["stale"] != "off" || a.Schedules["pins"] != DefaultAuditSchedules["pins"] || a.Schedules["selftest"] != "0 6 * * 1" {
		t.Errorf("schedules %v: set ones replace defaults, others keep them", a.Schedules)
	}
	if !a.applies("quotas") || a.applies("stale") {
		t.Error("apply list")
	}
	s := a.Settings("0099", "DE")
	if s.StaleAfter != 60*24*time.Hour || s.SelftestNumber != "0099" || s.DefaultCountry != "DE" || s.Endpoint.Context != "from-internal" {
		t.Errorf("settings %+v", s)
	}
	c := DefaultConfig()
	c.Audit.Pins.RealtimeDSN = "odbc:DSN=asterisk;UID=ast;PWD=s3cret"
	c.maskSecrets() // as config print does
	if got := c.Audit.Pins.RealtimeDSN; got != "odbc:DSN=asterisk;UID=ast;PWD=***" {
		t.Errorf("config print shows realtime_dsn %q", got)
	}
}

// TestScheduledAudits runs scheduled audits through the cron chain, as
// serve does: the run is stored as a cron run, with --apply only where
// [audit] apply says.
func TestScheduledAudits(t *testing.T) {
	ctx := context.Background()
	d := auditDaemon(t, t.TempDir(), "[audit]\nenabled = true\napply = [\"quotas\"]\n[audit.schedules]\nselftest = \"0 6 * * 1\"\n", io.Discard)
	cfg, db := d.app.Config, d.db
	s, err := newAuditScheduler(d)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range s.Entries() {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "coverage,passwords,pins,quotas,selftest,spend,stale,tests" {
		t.Errorf("scheduled %v", names)
	}
	for _, n := range []string{"quotas", "spend", "passwords"} {
		if err := s.Run(n); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := db.AuditRuns(ctx, "", 10)
	if err != nil || len(runs) != 3 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	// Each finding is counted for Prometheus, by audit.
	counted := false
	for _, r := range runs {
		if r.Job != "passwords" {
			continue
		}
		counted = true
		if len(r.Findings) == 0 || counterValue(t, d.metrics, "tollguard_audit_findings_total", "passwords") != float64(len(r.Findings)) {
			t.Errorf("passwords run: %d findings, counted %v", len(r.Findings), counterValue(t, d.metrics, "tollguard_audit_findings_total", "passwords"))
		}
	}
	if !counted {
		t.Error("no passwords run to check the findings counter against")
	}
	for _, r := range runs {
		if r.Trigger != "cron" || r.Apply != (r.Job == "quotas") {
			t.Errorf("run %s: trigger %s apply %v", r.Job, r.Trigger, r.Apply)
		}
	}
	// A spec that slipped past validation fails the start, never panics.
	cfg.Audit.Schedules["stale"] = "CRON_TZ=UTC"
	if _, err := newAuditScheduler(d); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("bad spec: %v", err)
	}
}

// auditDaemon is a daemon as serve starts it for the audit scheduler:
// config parsed from conf, a database in dir, logs (and log alerts)
// written to logw. The test's end closes the database.
func auditDaemon(t *testing.T, dir, conf string, logw io.Writer) *daemon {
	t.Helper()
	cfg, err := parseConfig("t.toml", conf, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	db := openStore(t, filepath.Join(dir, "tg.db"))
	app := NewApp(strings.NewReader(""), io.Discard, io.Discard)
	app.Config = cfg
	log := slog.New(slog.NewTextHandler(logw, nil))
	return &daemon{app: app, db: db, log: log, alerter: logAlerter{log}, metrics: NewMetrics()}
}

// TestQueuedAuditSkippedAtShutdown: an audit that fell due while
// another ran waits its turn; when shutdown begins meanwhile, it does not
// run once the first one finishes. Before, it ran with the daemon's
// context already cancelled and stored a spurious failed run.
func TestQueuedAuditSkippedAtShutdown(t *testing.T) {
	dir := t.TempDir()
	// The pins audit blocks opening a FIFO for voicemail.conf: a slow audit.
	fifo := hungVoicemailConf(t, dir)
	logs := make(chanWriter, 100)
	d := auditDaemon(t, dir, "[audit]\nenabled = true\n[audit.pins]\nvoicemail_conf = \""+fifo+"\"\n", logs)
	db := d.db
	s, err := newAuditScheduler(d)
	if err != nil {
		t.Fatal(err)
	}
	logged := func(what string) {
		t.Helper()
		for !strings.Contains(waitFor(t, logs, what), what) {
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Start(ctx)
	pinsDone, staleDone := make(chan struct{}), make(chan struct{})
	go func() { s.Run("pins"); close(pinsDone) }()
	logged(`msg="scheduled audit starting" job=pins`)
	// The log line comes before the audits' lock: pins holds it once it
	// has the FIFO open for reading (a writer can open it then). Kept
	// open, the FIFO holds pins in its read until closed.
	var w *os.File
	testutil.Eventually(t, 10*time.Second, "the pins audit reading the FIFO", func() bool {
		w, err = os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		return err == nil
	})
	go func() { s.Run("stale"); close(staleDone) }()
	logged(`msg="scheduled audit starting" job=stale`)
	time.Sleep(100 * time.Millisecond) // stale now waits for pins
	cancel()
	stopped := s.Stop()
	w.Close() // pins reads an empty file and finishes
	waitFor(t, pinsDone, "the pins audit")
	waitFor(t, staleDone, "the stale audit")
	waitFor(t, stopped.Done(), "the scheduler to stop")
	runs, err := db.AuditRuns(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, r := range runs {
		jobs = append(jobs, r.Job)
	}
	if strings.Join(jobs, ",") != "pins" {
		t.Errorf("stored runs %v, want only the pins audit that was running", jobs)
	}
}

// TestCLIPurgeUnmanaged: a purge needs something to purge, an endpoint
// only Asterisk knows can have its purge cancelled by unblock, and a
// failed --now leaves nothing pending.
func TestCLIPurgeUnmanaged(t *testing.T) {
	c := newAuditCLI(t, "")
	pending := func() []tollguard.PendingPurge {
		t.Helper()
		return pendingPurges(t, c.db)
	}
	if _, errOut, code := c.run("ext", "purge", "nosuch"); code != exitUsage || !strings.Contains(errOut, "nor a PJSIP endpoint") {
		t.Errorf("purge of nothing: exit %d, %s", code, errOut)
	}
	if _, errOut, code := c.run("ext", "purge", "nosuch", "--now"); code != exitUsage || len(pending()) != 0 {
		t.Errorf("purge --now of nothing: exit %d, %s; pending %+v", code, errOut, pending())
	}
	// 1002 is a recorded endpoint tollguard does not manage.
	if out := c.ok("ext", "purge", "1002"); !strings.Contains(out, "not blocked") {
		t.Errorf("purge of an unmanaged endpoint: %s", out)
	}
	if out := c.ok("unblock", "1002"); !strings.Contains(out, "pending purge of 1002 cancelled") || len(pending()) != 0 {
		t.Errorf("unblock: %s; pending %+v", out, pending())
	}
	c.fake.Fault(http.MethodDelete, "/asterisk/config/dynamic/res_pjsip/", http.StatusInternalServerError, "Internal Server Error", 0)
	if _, errOut, code := c.run("ext", "purge", "1002", "--now"); code == exitOK || !strings.Contains(errOut, "Nothing stays scheduled") || len(pending()) != 0 {
		t.Errorf("failed purge --now: exit %d, %s; pending %+v", code, errOut, pending())
	}
}

// TestDefaultAuditSchedulesAvoidClockChanges: each nightly default runs
// once every local day at its time across both clock changes of the
// zones admins commonly run in. At 03:30-03:50 they fell in the hour
// Helsinki's clocks change (03:00 to 04:00 in March, 04:00 back to 03:00
// in October), so cron, which follows the wall clock, skipped them in
// spring and ran them twice in autumn.
func TestDefaultAuditSchedulesAvoidClockChanges(t *testing.T) {
	for _, zone := range []string{"Europe/London", "Europe/Berlin", "Europe/Helsinki", "America/New_York", "America/Los_Angeles", "Australia/Sydney"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatalf("no zone data: %v", err) // the root package embeds time/tzdata
		}
		changes := clockChanges(loc, 2026)
		if len(changes) != 2 {
			t.Fatalf("%s: %d clock changes in 2026, want 2", zone, len(changes))
		}
		for job, spec := range DefaultAuditSchedules {
			var hour, min int
			if _, err := fmt.Sscanf(spec, "%d %d * * *", &min, &hour); err != nil {
				continue // hourly
			}
			for _, change := range changes {
				day := change.In(loc)
				from := time.Date(day.Year(), day.Month(), day.Day()-3, 0, 0, 0, 0, loc)
				var runs []string
				for at := from; ; {
					if at, err = cron.Next(spec, loc, at); err != nil {
						t.Fatal(err)
					}
					if at.After(from.AddDate(0, 0, 7)) {
						break
					}
					runs = append(runs, at.Format("Jan 2 15:04 MST"))
					if at.Hour() != hour || at.Minute() != min {
						t.Errorf("%s %s (%s): ran at %s", zone, job, spec, at.Format("Jan 2 15:04 MST"))
					}
				}
				if len(runs) != 7 {
					t.Errorf("%s %s (%s) around the clock change of %s: %d runs in 7 days: %v",
						zone, job, spec, day.Format("Jan 2"), len(runs), runs)
				}
			}
		}
	}
}

// clockChanges returns when loc's UTC offset changes in year.
func clockChanges(loc *time.Location, year int) []time.Time {
	var out []time.Time
	t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	_, prev := t.In(loc).Zone()
	for end := t.AddDate(1, 0, 0); t.Before(end); t = t.Add(15 * time.Minute) {
		if _, off := t.In(loc).Zone(); off != prev {
			out, prev = append(out, t), off
		}
	}
	return out
}

// TestPurgeRunner: `ext purge` says what will delete the objects; by
// default (audits off) nothing does, and it said the stale audit would;
// without ARI not even that, and it said to run it.
func TestPurgeRunner(t *testing.T) {
	for _, tc := range []struct {
		toml string
		ari  bool
		want string
	}{
		{"", false, "nothing in this config deletes them by itself"},
		{"", false, "either needs [ari] enabled, with its password: without ARI nothing can"}, // the audit deletes through ARI
		{"[ari]\nenabled = true\n", true, "or have serve do it ([audit] enabled = true, with \"stale\" in [audit] apply)"},
		{"[audit]\nenabled = true\n", false, "nothing in this config deletes them by itself"}, // not in apply: reports only
		{"[audit]\nenabled = true\napply = [\"stale\"]\nschedules = { stale = \"off\" }\n", false, "nothing in this config"},
		{"[audit]\nenabled = true\napply = [\"stale\"]\nschedules = { stale = \" OFF \" }\n", false, "nothing in this config"}, // as serve reads it
		{"[audit]\nenabled = true\napply = [\"stale\"]\n", false, "the daemon's stale audit (30 4 * * *) deletes them once [ari] is enabled"},
		{"[audit]\nenabled = true\napply = [\"stale\", \"tests\"]\n[ari]\nenabled = true\n", false, "the daemon's stale and tests audits delete them (this command has no ARI password"},
		{"[audit]\nenabled = true\napply = [\"tests\"]\n[ari]\nenabled = true\n", true, "the daemon's tests audit (35 4 * * *) deletes them"},
	} {
		cfg := DefaultConfig()
		if _, err := toml.Decode(tc.toml, cfg); err != nil {
			t.Fatal(err)
		}
		got := purgeRunner(cfg, tc.ari, "2026-12-01")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q (ari %v): %q, want %q", tc.toml, tc.ari, got, tc.want)
		}
		if cfg.ARI.Enabled && strings.Contains(got, "without ARI") {
			t.Errorf("%q (ari %v): %q speaks of no ARI", tc.toml, tc.ari, got)
		}
	}
}

// TestCLIExtAddARIDown: with ARI configured but down, ext add said only
// that ARI could not be reached, not how to record a pjsip.conf line.
func TestCLIExtAddARIDown(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.fake.Close()
	_, errOut, code := c.run("ext", "add", "1001", "--account", "acme")
	if code != exitFailure || !strings.Contains(errOut, "cannot reach") || !strings.Contains(errOut, "nothing was created") || !strings.Contains(errOut, "--no-asterisk") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if out := c.ok("ext", "list"); strings.Contains(out, "1001") {
		t.Errorf("recorded anyway: %s", out)
	}
}

// TestCLIPurgeNowBlockReason: after `ext purge --now` deleted the
// objects, the block it left said they "will be deleted after" the grace
// period and that unblocking would cancel that.
func TestCLIPurgeNowBlockReason(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("ext", "add", "1009", "--account", "acme")
	c.ok("ext", "purge", "1009", "--now")
	out := c.ok("ext", "show", "1009")
	if strings.Contains(out, "will be deleted after") || strings.Contains(out, "unblock it to cancel") || !strings.Contains(out, "deleted at once") {
		t.Errorf("after purge --now:\n%s", out)
	}
	// The grace-period purge still says when.
	c.ok("ext", "add", "1010", "--account", "acme")
	c.ok("ext", "purge", "1010")
	if out := c.ok("ext", "show", "1010"); !strings.Contains(out, "will be deleted after") {
		t.Errorf("after purge:\n%s", out)
	}
}

// failedPurge adds extension 2001 (account acme), schedules its purge
// and runs it as the audit would when due, with Asterisk answering the
// delete of its typ object with status: the purge must fail.
func failedPurge(t *testing.T, c *auditCLI, typ string, status int, text string) {
	t.Helper()
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("ext", "add", "2001", "--account", "acme")
	c.ok("ext", "purge", "2001")
	db := openStore(t, c.db)
	cl, err := ari.NewClient(ari.Config{URL: c.fake.URL, User: c.fake.User, Password: c.fake.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c.fake.Fault(http.MethodDelete, "/asterisk/config/dynamic/res_pjsip/"+typ+"/2001", status, text, 1)
	env := &tollguard.AuditEnv{Store: db, Asterisk: cl}
	if _, err := env.PurgeExtension(context.Background(), "2001", "purged by an admin"); err == nil {
		t.Fatal("the purge did not fail")
	}
}

// TestCLIUnblockAfterPartialPurge: a run of a purge deleted the
// endpoint and failed on the aor, as the block said, "unblock it to
// cancel": unblock said "pending purge cancelled" and nothing else, and
// the phone stayed without its endpoint.
func TestCLIUnblockAfterPartialPurge(t *testing.T) {
	c := newAuditCLI(t, "")
	// The audit's run of the purge, when due, fails partway.
	failedPurge(t, c, "aor", http.StatusInternalServerError, "Internal Server Error")
	if _, ok := c.fake.Object("endpoint", "2001"); ok {
		t.Fatal("endpoint still there: nothing to test")
	}
	out := c.ok("unblock", "2001")
	if !strings.Contains(out, "pending purge of 2001 cancelled") || !strings.Contains(out, "tollguard ext restore 2001") {
		t.Errorf("unblock after a partial purge:\n%s", out)
	}
	c.ok("ext", "restore", "2001")
	for _, typ := range []string{"auth", "aor", "endpoint"} {
		if _, ok := c.fake.Object(typ, "2001"); !ok {
			t.Errorf("%s/2001 not back", typ)
		}
	}
}

// TestHungAuditDoesNotHoldUpTheOthers: a scheduled audit stuck in a call
// that ignores cancellation (pins reading voicemail.conf from a FIFO
// nothing writes, as a hung file system would) held the audits' lock
// for good, and every other audit waited behind it. Now its run is
// stored as failed once [audit] timeout and a grace have passed, the
// next audit runs, and what the stuck one finds when it returns is
// stored as a run of its own.
func TestHungAuditDoesNotHoldUpTheOthers(t *testing.T) {
	dir := t.TempDir()
	fifo := hungVoicemailConf(t, dir)
	d := auditDaemon(t, dir, "[audit]\nenabled = true\ntimeout = \"1s\"\n[audit.pins]\nvoicemail_conf = \""+fifo+"\"\n", io.Discard)
	db := d.db
	s, err := newAuditScheduler(d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Start(ctx)
	defer func() { <-s.Stop().Done() }()
	defer func() { // a pins audit still stuck (the test failed) reads an empty file
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	}()
	ran := make(chan struct{})
	go func() {
		s.Run("pins")
		s.Run("quotas")
		close(ran)
	}()
	select {
	case <-ran:
	case <-time.After(30 * time.Second): // a hang, not a speed check
		t.Fatal("the audits still wait behind the hung pins audit")
	}
	runs, err := db.AuditRuns(context.Background(), "", 10)
	if err != nil || len(runs) != 2 || runs[0].Job != "quotas" || runs[0].Error != "" ||
		runs[1].Job != "pins" || !strings.Contains(runs[1].Error, "nor stop within 1s of being cancelled") {
		t.Fatalf("runs %+v, %v; want the pins run failed for its deadline, then quotas", runs, err)
	}
	// The file system answers at last: what pins found is stored too.
	if err := os.WriteFile(fifo, []byte("[default]\n1001 => 1234,Bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var late *tollguard.AuditRun
	testutil.Eventually(t, 10*time.Second, "the late pins run", func() bool {
		runs, err := db.AuditRuns(context.Background(), "pins", 10)
		if err == nil && len(runs) == 2 {
			late = runs[0]
		}
		return late != nil
	})
	if !strings.Contains(late.Error, "returned after tollguard stopped waiting") || len(late.Findings) == 0 || late.Findings[0].Check != tollguard.AuditCheckWeakPIN {
		t.Errorf("late pins run: error %q, findings %+v", late.Error, late.Findings)
	}
}

// TestCLIAbandonedAuditSaysItEnds: `tollguard audit pins` stuck on a
// voicemail.conf that never answers is abandoned at its deadline. The
// command then exits, which ends the job: it says so (exit 1) instead of
// leaving only the stored run's promise of a late run.
func TestCLIAbandonedAuditSaysItEnds(t *testing.T) {
	dir := t.TempDir()
	fifo := hungVoicemailConf(t, dir)
	// Nothing ever writes the FIFO: the job stays stuck in open(2) for
	// the rest of the test binary, and never logs into this test's
	// buffers again.
	c := newAuditCLI(t, fmt.Sprintf("[audit]\ntimeout = \"1s\"\n[audit.pins]\nvoicemail_conf = %q\n", fifo))
	out, errOut, code := c.run("audit", "pins")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "audit pins: still running, abandoned at its deadline; this command exits now and ends it") {
		t.Errorf("stderr does not say the abandoned audit ends with the command:\n%s", errOut)
	}
	if !strings.Contains(out+errOut, "if it returns while tollguard runs") {
		t.Errorf("the run's error still promises a late run unconditionally:\n%s%s", out, errOut)
	}
}

// hungVoicemailConf makes dir/voicemail.conf a FIFO nothing writes: the
// pins audit blocks opening it, as on a hung file system.
func hungVoicemailConf(t *testing.T, dir string) string {
	t.Helper()
	fifo := filepath.Join(dir, "voicemail.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("no FIFO: %v", err)
	}
	return fifo
}
