package tollguard_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

func TestTestsAudit(t *testing.T) {
	h := newAudHarness(t)
	h.account("acme", nil)
	h.extension("demo1", "acme", audT0, nil)
	h.extension("2001", "acme", audT0, func(e *tollguard.Extension) { e.CallerID = "Temp Reception <2001>" })
	h.extension("2002", "acme", audT0, func(e *tollguard.Extension) { e.Description = "for TESTING the IVR" })
	h.extension("2003", "acme", audT0, func(e *tollguard.Extension) { e.Description = "Sales" })
	// In Asterisk only, with a caller ID that gives it away.
	h.fake.SetObject("endpoint", "3000", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "callerid", Value: `"Demo phone" <3000>`}}, true)
	h.env.Settings.Ignore = []string{"2002"}
	run := h.run(tollguard.TestsAudit{}, false)
	want := []string{"test_extension ext:2001 warning", "test_extension ext:3000 warning", "test_extension ext:demo1 warning"}
	if got := audFindings(run); !reflect.DeepEqual(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
	if f := audFinding(t, run, "test_extension", "ext:3000"); !strings.Contains(f.Message, `asterisk caller id "\"Demo phone\" <3000>" matches "Demo"`) {
		t.Errorf("finding %s", f.Message)
	}
	if len(run.Actions) != 0 || len(h.writes()) != 0 {
		t.Errorf("report-only run acted: %q %q", audActions(run), h.writes())
	}
	h.env.Settings.TestPatterns = []string{`^9{4}$`}
	h.env.Settings.Ignore = nil
	h.extension("9999", "acme", audT0, nil)
	if got := audFindings(h.run(tollguard.TestsAudit{}, false)); !reflect.DeepEqual(got, []string{"test_extension ext:9999 warning"}) {
		t.Errorf("custom pattern: %q", got)
	}
}

// Look-alikes do not hide a test line: an accent (a French "Démo"), a
// Cyrillic е, fullwidth letters, a zero-width space; a word in another
// script that only partly reads as Latin is no test. The finding shows
// the value ASCII-escaped, so the admin sees why it matched.
func TestTestsAuditLookalikes(t *testing.T) {
	h := newAudHarness(t)
	h.account("acme", nil)
	h.extension("2010", "acme", audT0, func(e *tollguard.Extension) { e.Description = "Démo accueil" })
	h.extension("2011", "acme", audT0, func(e *tollguard.Extension) { e.CallerID = "t\u0435st <2011>" })
	h.extension("2012", "acme", audT0, func(e *tollguard.Extension) { e.CallerID = "ｄｅｍｏ <2012>" })
	h.extension("2013", "acme", audT0, func(e *tollguard.Extension) { e.Description = "te\u200bst line" })
	h.extension("2014", "acme", audT0, func(e *tollguard.Extension) { e.Description = "Atención al cliente" })
	// Folded, a letter the table leaves alone is still a letter, not the
	// end of a word: ТЕМРЮК, a town, reads TEMPЮК, not TEMP.
	h.extension("2015", "acme", audT0, func(e *tollguard.Extension) { e.CallerID = "ТЕМРЮК <2015>" })
	run := h.run(tollguard.TestsAudit{}, false)
	want := []string{"test_extension ext:2010 warning", "test_extension ext:2011 warning", "test_extension ext:2012 warning", "test_extension ext:2013 warning"}
	if got := audFindings(run); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	if f := audFinding(t, run, "test_extension", "ext:2011"); !strings.Contains(f.Message, `caller id "t\u0435st <2011>" matches "test"`) {
		t.Errorf("message %s", f.Message)
	}
}

// TestTestsAuditMatchesWordsAndSparesNewLines: the default patterns are
// words (a DID ending 9999, "latest", "Contemporary" are ordinary), and
// a line made an hour ago, not provisioned yet, is reported, not
// blocked.
func TestTestsAuditMatchesWordsAndSparesNewLines(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	for _, spec := range []tollguard.ExtensionSpec{
		{Name: "2005", Account: "acme", CallerID: "Reception <02079469999>"},
		{Name: "2006", Account: "acme", Description: "our latest hire, Ann"},
		{Name: "2007", Account: "acme", CallerID: "Contemporary Art Desk <2007>"},
		{Name: "2008", Account: "acme", Description: "contest line, attemptive"},
		{Name: "2009", Account: "acme", CallerID: "Demo room <2009>"},
	} {
		if _, err := h.env.AddExtension(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	h.advance(time.Hour)
	run := h.run(tollguard.TestsAudit{}, true)
	var ours []string
	for _, f := range audFindings(run) {
		if strings.Contains(f, "ext:20") {
			ours = append(ours, f)
		}
	}
	if !reflect.DeepEqual(ours, []string{"test_extension ext:2009 warning"}) {
		t.Errorf("findings %q, want only the demo room", ours)
	}
	if f := audFinding(t, run, "test_extension", "ext:2009"); !strings.Contains(f.Message, "it is new") {
		t.Errorf("finding %s", f.Message)
	}
	for _, a := range audActions(run) {
		if strings.Contains(a, "ext:20") {
			t.Errorf("acted on a new line: %s", a)
		}
	}
	// Defaults still catch the usual test lines.
	for _, name := range []string{"test", "Test1", "testuser", "demo", "temp_2", "9999", "1001_test", "sip_test", "room_demo", "1001test", "x-TEMP"} {
		re := regexp.MustCompile(`(?i)` + strings.Join(tollguard.DefaultTestPatterns, "|"))
		if !re.MatchString(name) {
			t.Errorf("%q not matched by the default patterns", name)
		}
	}
}

func TestPasswordsAudit(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "1009", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	// A writable (astdb) extension with its own number as password.
	h.fake.SetObject("auth", "0900", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "0900"}, {Attribute: "password", Value: "0900"}}, true)
	h.fake.SetObject("endpoint", "0900", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "0900"}, {Attribute: "aors", Value: "0900"}}, true)
	h.fake.SetObject("auth", "trunk", tollguard.ConfigObject{{Attribute: "auth_type", Value: "md5"}, {Attribute: "username", Value: "trunk"}, {Attribute: "md5_cred", Value: "0f2b"}}, true)
	h.fake.SetObject("endpoint", "trunk", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "trunk"}}, true)
	// Asterisk 22's auth_type=digest with no stored digest checks the
	// plain password: it is judged.
	h.fake.SetObject("auth", "0901", tollguard.ConfigObject{{Attribute: "auth_type", Value: "digest"}, {Attribute: "username", Value: "0901"}, {Attribute: "password", Value: "1234"}, {Attribute: "password_digest", Value: ""}}, true)
	h.fake.SetObject("endpoint", "0901", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "0901"}}, true)
	// userpass with a leftover md5 digest and no supported_algorithms_uas
	// (Asterisk before 22.2): the weak password is what Asterisk checks,
	// critical; a new password would not change the digest, which an
	// upgrade puts in force, so it is not rotated.
	h.fake.SetObject("auth", "0903", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "0903"}, {Attribute: "password", Value: "1234"}, {Attribute: "md5_cred", Value: "81dc9bdb52d04dc20036dbd8313ed055"}}, true)
	h.fake.SetObject("endpoint", "0903", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "0903"}}, true)

	run := h.run(tollguard.PasswordsAudit{}, false)
	// The recordings: 1001 "Str0ng!Pass-1001" passes, 1002 "1234" and
	// 1003 "password" are defaults; 1009 was generated.
	want := []string{"weak_password ext:0900 critical", "weak_password ext:0901 critical", "weak_password ext:0903 critical", "weak_password ext:1002 critical", "weak_password ext:1003 critical", "weak_password ext:trunk info"}
	if got := audFindings(run); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	for _, f := range run.Findings {
		if _, ok := f.Evidence["password"]; ok || strings.Contains(f.Message, "Str0ng") {
			t.Errorf("a finding carries a password: %+v", f)
		}
		// --apply rotates none of the stored-digest auths (0903, trunk).
		if want := f.Subject != "ext:0903" && f.Subject != "ext:trunk"; f.Fixable != want {
			t.Errorf("%s: fixable %v, want %v", f.Subject, f.Fixable, want)
		}
		// Its message must not send the admin to a rotation that refuses.
		if f.Subject == "ext:0903" && (strings.Contains(f.Message, "--apply") || strings.Contains(f.Message, "rotate-password") || !strings.Contains(f.Message, "remove md5_cred")) {
			t.Errorf("%s: message %q", f.Subject, f.Message)
		}
	}

	h.fake.ResetRequests()
	old := h.object("auth", "0900").Get("password")
	run = h.run(tollguard.PasswordsAudit{}, true)
	// 0900 is rotated; 1002 and 1003 (pjsip.conf) answer 403 each, and
	// are reported: a 403 is per object, so one pjsip.conf auth does not
	// stop the rotation of the others.
	if got := h.writes(); !reflect.DeepEqual(got, []string{"PUT auth/0900", "PUT auth/0901", "PUT auth/1002", "PUT auth/1003"}) {
		t.Errorf("writes %q", got)
	}
	if got := audActions(run); !reflect.DeepEqual(got, []string{"rotate_password ext:0900", "rotate_password ext:0901", "rotate_password ext:0903 FAILED",
		"rotate_password ext:1002 FAILED", "rotate_password ext:1003 FAILED"}) {
		t.Errorf("actions %q", got)
	}
	newPW := h.object("auth", "0900").Get("password")
	if newPW == old || run.Actions[0].Secret != newPW {
		t.Errorf("password %q → %q, action secret %q", old, newPW, run.Actions[0].Secret)
	}
	audFinding(t, run, "asterisk_read_only", "asterisk")
	stored, err := h.db.AuditRuns(ctx, "passwords", 1)
	if err != nil || len(stored) != 1 {
		t.Fatal(err)
	}
	if stored[0].Actions[0].Secret != "" {
		t.Error("the new password was stored with the run")
	}
	if got := audFindings(h.run(tollguard.PasswordsAudit{}, false)); len(got) != 4 { // 0903 still weak: not rotatable
		t.Errorf("after rotating 0900: %q", got)
	}
}

func TestQuotasAudit(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.MaxExtensions, a.MaxCreatedPerDay = 3, 1 })
	h.account("beta", nil)
	h.extension("a1", "acme", audT0.Add(-10*24*time.Hour), nil)
	h.extension("a2", "acme", audT0.Add(-2*time.Hour), nil)
	h.extension("a3", "acme", audT0.Add(-1*time.Hour), nil)
	// Created in Asterisk behind tollguard's back, billed to acme.
	h.fake.SetObject("endpoint", "7777", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "accountcode", Value: "acme"}}, true)
	h.env.Settings.CreationAlert = 1

	run := h.run(tollguard.QuotasAudit{}, false)
	want := []string{
		"creation_burst account:acme warning",
		"over_daily_quota account:acme warning",
		"over_quota account:acme warning", // a1-a3 and 7777
		"unmanaged ext:1001 warning", "unmanaged ext:1002 warning", "unmanaged ext:1003 warning",
		"unmanaged ext:7777 warning",
	}
	if got := audFindings(run); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings %q\nwant %q", got, want)
	}
	if f := audFinding(t, run, "unmanaged", "ext:7777"); f.Account != "acme" || !strings.Contains(f.Message, "accountcode is acme") {
		t.Errorf("unmanaged finding %+v", f)
	}
	// The newest beyond each quota: a3 (over the total), a3 (daily).
	if f := audFinding(t, run, "over_quota", "account:acme"); !reflect.DeepEqual(f.Evidence["newest"], []string{"a3"}) || !f.Fixable {
		t.Errorf("over-quota evidence %v (fixable %v)", f.Evidence, f.Fixable)
	}
	// --apply blocks beyond a quota; it does nothing about the rest.
	for _, f := range run.Findings {
		if f.Fixable != strings.HasPrefix(f.Check, "over_") {
			t.Errorf("%s %s: fixable %v", f.Check, f.Subject, f.Fixable)
		}
	}

	run = h.run(tollguard.QuotasAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"block ext:a3"}) {
		t.Errorf("actions %q", got)
	}
	if e, _ := h.db.Extension(ctx, "a3"); !e.Blocked || e.BlockedBy != "audit:quotas" {
		t.Errorf("a3 %+v", e)
	}
	if f := audFinding(t, run, "over_quota", "account:acme"); f.Severity != tollguard.SeverityWarning {
		t.Errorf("first apply: %+v", f)
	}
	// Beyond the quota is blocked already: nothing left for --apply.
	if f := audFinding(t, h.run(tollguard.QuotasAudit{}, false), "over_quota", "account:acme"); f.Fixable {
		t.Errorf("after the block: %+v", f)
	}

	// A new endpoint appears in Asterisk for acme: it is the newest, so
	// it is recorded in tollguard (unmanaged) and blocked.
	h.advance(5 * time.Minute)
	h.fake.SetObject("endpoint", "7778", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "accountcode", Value: "acme"}}, true)
	run = h.run(tollguard.QuotasAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"adopt ext:7778", "block ext:7778"}) {
		t.Errorf("actions %q", got)
	}
	e, err := h.db.Extension(ctx, "7778")
	if err != nil || !e.Blocked || e.Managed || e.Account != "acme" {
		t.Errorf("7778 %+v, %v", e, err)
	}
	// Everything beyond the quota is blocked now: info, not another alert.
	run = h.run(tollguard.QuotasAudit{}, true)
	if f := audFinding(t, run, "over_quota", "account:acme"); f.Severity != tollguard.SeverityInfo || len(run.Actions) != 0 {
		t.Errorf("after blocking: %+v, actions %q", f, audActions(run))
	}
}

// TestQuotasCountRecordsAsExtAddDoes: `ext add --no-asterisk` records a
// line that exists elsewhere (without ARI the only way to add one, and
// the way for chan_sip and IAX2 lines), and does not count it against
// max_created_per_day. The quotas audit dated such a record from when
// it was made, so three lines `ext add` had accepted were "created
// today", and --apply blocked the newest.
func TestQuotasCountRecordsAsExtAddDoes(t *testing.T) {
	ctx := context.Background()
	for _, ari := range []bool{false, true} {
		t.Run(map[bool]string{false: "WithoutARI", true: "NotListedByAsterisk"}[ari], func(t *testing.T) {
			h := newAudHarness(t)
			if !ari {
				h.env.Asterisk = nil
			}
			h.account("acme", func(a *tollguard.Account) { a.MaxCreatedPerDay = 2 })
			h.run(tollguard.QuotasAudit{}, false) // the first look
			h.advance(time.Hour)
			for _, n := range []string{"4001", "4002", "4003"} {
				e := &tollguard.Extension{Name: n, Account: "acme", CreatedAt: h.clock()}
				if _, err := h.db.CreateExtensionWithinQuota(ctx, e, h.clock()); err != nil {
					t.Fatalf("ext add %s --no-asterisk: %v", n, err)
				}
				h.advance(time.Minute)
			}
			run := h.run(tollguard.QuotasAudit{}, true)
			if got := strings.Join(audFindings(run), ","); strings.Contains(got, "over_daily_quota") || len(run.Actions) != 0 {
				t.Errorf("findings %q, actions %q", got, audActions(run))
			}
			for _, n := range []string{"4001", "4002", "4003"} {
				if e, _ := h.db.Extension(ctx, n); e.Blocked {
					t.Errorf("%s blocked: %s", n, e.BlockReason)
				}
			}
		})
	}
}

func TestSpendAudit(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.SpendThreshold, a.SpendFactorPermil = 1000, 1200 })
	h.account("quiet", func(a *tollguard.Account) { a.SpendFactorPermil = 1200 })
	call := func(acct string, at time.Time, charge int64) {
		t.Helper()
		if _, err := h.db.SQL().Exec(`INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, reserve, charge, settled_at)
			VALUES (?, 'x', ?, '0044', 'international', 'allow', 'ok', ?, ?, ?)`, at.Unix(), acct, charge, charge, at.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	call("acme", time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC), 900) // last month: factor threshold 1080
	call("acme", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), 1050)
	call("quiet", time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), 5000) // no last month, no fixed threshold
	run := h.run(tollguard.SpendAudit{}, false)
	if got := audFindings(run); !reflect.DeepEqual(got, []string{"spend account:acme warning"}) {
		t.Fatalf("findings %q (1050 is over the fixed 1000, not over 1.2 × 900)", got)
	}
	if f := run.Findings[0]; f.Evidence["kind"] != "fixed" || !strings.Contains(f.Message, "10.50 GBP") || !strings.Contains(f.Message, "10.00") {
		t.Errorf("finding %+v", f)
	}
	call("acme", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), 100)
	h.alerts.reset()
	run = h.run(tollguard.SpendAudit{}, false)
	want := []string{"spend account:acme info", "spend account:acme warning"} // fixed: already alerted; factor: new crossing
	if got := audFindings(run); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	if got := h.alerts.kinds(); !reflect.DeepEqual(got, []string{"spend account:acme"}) {
		t.Errorf("alerts %q: one per crossing", got)
	}
	// The admin raises the fixed threshold; crossing it again alerts again.
	if _, err := h.db.UpdateAccount(ctx, "acme", func(a *tollguard.Account) error { a.SpendThreshold = 1500; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); !reflect.DeepEqual(got, []string{"spend account:acme info"}) {
		t.Errorf("below the raised threshold: %q", got)
	}
	call("acme", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 400)
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); !reflect.DeepEqual(got, []string{"spend account:acme info", "spend account:acme warning"}) {
		t.Errorf("over the raised threshold: %q", got)
	}
	// A new month starts afresh: December's spend is 0.
	h.advance(9 * 24 * time.Hour)
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); len(got) != 0 {
		t.Errorf("December: %q", got)
	}
	call("acme", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), 1600)
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); !reflect.DeepEqual(got, []string{"spend account:acme warning"}) {
		t.Errorf("December over the fixed threshold: %q (1.2 × 1650 = 1980 not crossed)", got)
	}
}

// TestSpendAuditSettledAfterTheMonth: calls placed in the last hour of
// October and settled after midnight are October's spend, and from
// November 1st only November was checked: the burst never warned. For
// two days into a month, last month is checked too.
func TestSpendAuditSettledAfterTheMonth(t *testing.T) {
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.SpendThreshold = 500 })
	settledLate := func(at time.Time, charge int64) {
		t.Helper()
		if _, err := h.db.SQL().Exec(`INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, reserve, charge, settled_at)
			VALUES (?, 'x', 'acme', '00252612345678', 'international', 'allow', 'ok', ?, ?, ?)`, at.Unix(), charge, charge, at.Add(time.Hour).Unix()); err != nil {
			t.Fatal(err)
		}
	}
	h.now = time.Date(2026, 10, 31, 23, 10, 0, 0, time.UTC)
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); len(got) != 0 {
		t.Fatalf("before: %q", got)
	}
	for i := range 5 {
		settledLate(time.Date(2026, 10, 31, 23, 15+i*5, 0, 0, time.UTC), 200) // 10.00 of October's, settled in November
	}
	h.now = time.Date(2026, 11, 1, 1, 10, 0, 0, time.UTC)
	run := h.run(tollguard.SpendAudit{}, false)
	if got := audFindings(run); !reflect.DeepEqual(got, []string{"spend account:acme warning"}) || !strings.Contains(run.Findings[0].Message, "in 2026-10") {
		t.Fatalf("November 1st, 01:10: %q %+v", got, run.Findings)
	}
	// Alerted once (last month's crossing is not repeated as info); two
	// days on, October is no longer checked.
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); len(got) != 0 {
		t.Errorf("the next run: %q", got)
	}
	h.now = time.Date(2026, 11, 3, 1, 10, 0, 0, time.UTC)
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); len(got) != 0 {
		t.Errorf("November 3rd: %q", got)
	}
}

// TestSpendAuditHugeFactor: k × last month past int64 is never reached;
// it wrapped negative and warned on any spend.
func TestSpendAuditHugeFactor(t *testing.T) {
	h := newAudHarness(t)
	h.account("acme", func(a *tollguard.Account) { a.SpendFactorPermil = 1_000_000 })
	for _, c := range []struct {
		at     time.Time
		charge int64
	}{{time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC), 1 << 62}, {time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), 1}} {
		if _, err := h.db.SQL().Exec(`INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, reserve, charge, settled_at)
			VALUES (?, 'x', 'acme', '0044', 'international', 'allow', 'ok', ?, ?, ?)`, c.at.Unix(), c.charge, c.charge, c.at.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	if got := audFindings(h.run(tollguard.SpendAudit{}, false)); len(got) != 0 {
		t.Fatalf("findings %q for a spend of 0.01", got)
	}
}

type audFail2ban struct {
	st  tollguard.Fail2banStatus
	err error
}

func (f audFail2ban) Status(context.Context) (tollguard.Fail2banStatus, error) { return f.st, f.err }

// An endpoint without inbound auth that Asterisk identifies by username
// is anyone who sends its name: critical where its context reaches the
// trunks through the gate, a warning elsewhere. The fields are the
// recorded endpoint's (identify_by "username,ip", auth "1001").
func TestCoverageNoInboundAuth(t *testing.T) {
	h := newAudHarness(t)
	rec := h.object("endpoint", "1001")
	if rec.Get("identify_by") != "username,ip" || rec.Get("auth") != "1001" {
		t.Fatalf("recorded endpoint: identify_by %q auth %q", rec.Get("identify_by"), rec.Get("auth"))
	}
	endpoint := func(name, context, auth, identifyBy string, acl ...string) {
		var o tollguard.ConfigObject
		for _, f := range rec {
			switch f.Attribute {
			case "context":
				f.Value = context
			case "auth":
				f.Value = auth
			case "identify_by":
				f.Value = identifyBy
			case "acl":
				f.Value = strings.Join(acl, ",")
			}
			o = append(o, f)
		}
		h.fake.SetObject("endpoint", name, o, false)
	}
	endpoint("2001", "from-internal", "", "username,ip")        // a phone that lost its auth
	endpoint("itsp", "from-trunk", "", "username,ip")           // a trunk left at the default
	endpoint("itsp2", "from-trunk", "", "ip")                   // a trunk identified by address only
	endpoint("2002", "from-internal", "2002", "username")       // a phone with its auth
	endpoint("2003", "from-internal", "", "auth_username")      // an Authorization header's user, unchecked
	endpoint("2004", "from-internal", "", "username", "office") // only from the acl's addresses
	run := h.run(tollguard.CoverageAudit{}, false)
	var got []string
	for _, f := range run.Findings {
		if f.Check == tollguard.AuditCheckNoAuth {
			got = append(got, f.Subject+" "+string(f.Severity))
		}
	}
	if want := []string{"ext:2001 critical", "ext:2003 critical", "ext:2004 warning", "ext:itsp warning"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("no_inbound_auth findings %q, want %q", got, want)
	}
	if f := audFinding(t, run, tollguard.AuditCheckNoAuth, "ext:2001"); !strings.Contains(f.Message, "of 2001 can dial out from its context from-internal through the gate") ||
		!strings.Contains(f.Message, "identify_by = ip") {
		t.Errorf("message %q", f.Message)
	}
	if f := audFinding(t, run, tollguard.AuditCheckNoAuth, "ext:2004"); !strings.Contains(f.Message, "its acl (office) limits that") {
		t.Errorf("message %q", f.Message)
	}
	if f := audFinding(t, run, tollguard.AuditCheckNoAuth, "ext:itsp"); !strings.Contains(f.Message, "can send calls into its context from-trunk without a password") {
		t.Errorf("message %q", f.Message)
	}
}

func TestCoverageAudit(t *testing.T) {
	h := newAudHarness(t)
	h.fake.SetObject("endpoint", "trunk1", tollguard.ConfigObject{{Attribute: "context", Value: "from-trunk"}}, false)
	h.fake.SetObject("endpoint", "anonymous", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}}, false)
	for _, tc := range []struct {
		name string
		f2b  audFail2ban
		msg  string
		sev  string // "" for warning
	}{
		{"NotInstalled", audFail2ban{}, "fail2ban is not installed", ""},
		{"NotRunning", audFail2ban{st: tollguard.Fail2banStatus{Installed: true, Detail: "Is fail2ban running?"}}, "not running (Is fail2ban running?)", ""},
		{"NoAsteriskJail", audFail2ban{st: tollguard.Fail2banStatus{Installed: true, Running: true, Jails: []string{"sshd"}}}, "no asterisk jail (jails: sshd)", ""},
		{"ClientError", audFail2ban{err: errors.New("timeout")}, "could not ask fail2ban", ""},
		// Run as the tollguard user, fail2ban-client may not use
		// fail2ban's root-only socket: not a warning that it is down.
		{"PermissionDenied", audFail2ban{st: tollguard.Fail2banStatus{Installed: true, Denied: true,
			Detail: "ERROR   Permission denied to socket: /var/run/fail2ban/fail2ban.sock, (you must be root)"}}, "cannot check fail2ban as this user", "info"},
		{"Fine", audFail2ban{st: tollguard.Fail2banStatus{Installed: true, Running: true, Jails: []string{"sshd", "asterisk-pjsip"}}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.env.Fail2ban = tc.f2b
			run := h.run(tollguard.CoverageAudit{}, true)
			// The recorded endpoints (1001 to 1003, from-internal)
			// accept transfers, Asterisk's default.
			want := []string{"anonymous_endpoint ext:anonymous critical", "transfers_allowed transfers info", "ungated_context ext:trunk1 warning"}
			if tc.msg != "" {
				sev := tc.sev
				if sev == "" {
					sev = "warning"
				}
				want = []string{want[0], "fail2ban fail2ban " + sev, want[1], want[2]}
			}
			if got := audFindings(run); !reflect.DeepEqual(got, want) {
				t.Fatalf("findings %q, want %q", got, want)
			}
			if tc.msg != "" {
				if f := audFinding(t, run, "fail2ban", "fail2ban"); !strings.Contains(f.Message, tc.msg) {
					t.Errorf("message %q lacks %q", f.Message, tc.msg)
				}
			}
			if len(run.Actions) != 0 {
				t.Errorf("coverage acted: %q", audActions(run))
			}
		})
	}
	h.env.Settings.GatedContexts = []string{"from-internal", "from-trunk"}
	h.env.Fail2ban = nil
	run := h.run(tollguard.CoverageAudit{}, false)
	if got := audFindings(run); !reflect.DeepEqual(got, []string{"anonymous_endpoint ext:anonymous critical", "transfers_allowed transfers info"}) {
		t.Errorf("with from-trunk gated: %q", got)
	}
	// One finding names the gated endpoints that accept transfers
	// (trunk1's object has no allow_transfer: it says nothing).
	f := audFinding(t, run, "transfers_allowed", "transfers")
	if !strings.Contains(f.Message, "3 endpoint(s)") || !strings.Contains(f.Message, "1001, 1002, 1003") ||
		!strings.Contains(f.Message, "allow_transfer = no") || !strings.Contains(f.Message, "b(tollguard-callee^s^1(${TOLLGUARD_MAXSEC}))") {
		t.Errorf("transfers finding: %q", f.Message)
	}
	// Endpoints set to allow_transfer = no, or outside the gated
	// contexts, are not named; with none left there is no finding.
	noTransfer := func(name string) {
		obj := h.object("endpoint", name)
		for i := range obj {
			if obj[i].Attribute == "allow_transfer" {
				obj[i].Value = "false"
			}
		}
		h.fake.SetObject("endpoint", name, obj, false)
	}
	noTransfer("1002")
	h.env.Settings.GatedContexts = []string{"from-trunk"}
	if got := audFindings(h.run(tollguard.CoverageAudit{}, false)); slices.Contains(got, "transfers_allowed transfers info") {
		t.Errorf("transfers reported for endpoints outside the gated contexts: %q", got)
	}
	h.env.Settings.GatedContexts = []string{"from-internal", "from-trunk"}
	if f := audFinding(t, h.run(tollguard.CoverageAudit{}, false), "transfers_allowed", "transfers"); !strings.Contains(f.Message, "2 endpoint(s)") ||
		!strings.Contains(f.Message, "1001, 1003.") {
		t.Errorf("after 1002 turned transfers off: %q", f.Message)
	}
	noTransfer("1001")
	noTransfer("1003")
	if got := audFindings(h.run(tollguard.CoverageAudit{}, false)); slices.Contains(got, "transfers_allowed transfers info") {
		t.Errorf("transfers reported with allow_transfer = no everywhere: %q", got)
	}
	// A trunk that follows a far end's redirect to any URI: a Dial
	// without the i option would call it past the gate.
	if got := audFindings(h.run(tollguard.CoverageAudit{}, false)); slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "redirects_followed") }) {
		t.Errorf("redirects reported with redirect_method = user: %q", got)
	}
	trunk := h.object("endpoint", "trunk1")
	trunk = append(trunk, tollguard.ConfigField{Attribute: "redirect_method", Value: "uri_core"})
	h.fake.SetObject("endpoint", "trunk1", trunk, false)
	if f := audFinding(t, h.run(tollguard.CoverageAudit{}, false), "redirects_followed", "redirects"); f.Severity != tollguard.SeverityWarning ||
		!strings.Contains(f.Message, "1 endpoint(s)") || !strings.Contains(f.Message, ": trunk1.") || !strings.Contains(f.Message, "i option") {
		t.Errorf("redirects finding: %+v", f)
	}
	// [audit] ignore, as the sample pjsip.conf advises for the trunk,
	// silences its ungated context, not this.
	h.env.Settings.Ignore = []string{"trunk1"}
	if f := audFinding(t, h.run(tollguard.CoverageAudit{}, false), "redirects_followed", "redirects"); !strings.Contains(f.Message, ": trunk1.") {
		t.Errorf("redirects finding of an ignored trunk: %+v", f)
	}
	h.env.Settings.Ignore = nil
	// redirect_method = user is no way out on its own: Dial takes a
	// Contact user holding a "/" (PJSIP/NUMBER%40trunk) for a dial string
	// (app_dial.c do_forward), so the finding must not offer it instead
	// of the i option.
	if f := audFinding(t, h.run(tollguard.CoverageAudit{}, false), "redirects_followed", "redirects"); strings.Contains(f.Message, "or set redirect_method = user") ||
		!strings.Contains(f.Message, "redirect_method = user needs it as much") {
		t.Errorf("redirects finding offers redirect_method = user instead of the i option: %s", f.Message)
	}
	// uri_pjsip: chan_pjsip follows the 302 itself, and Dial's i option
	// never sees it. Saying that i helps would leave the hole open.
	trunk[len(trunk)-1].Value = "uri_pjsip"
	h.fake.SetObject("endpoint", "trunk1", trunk, false)
	run = h.run(tollguard.CoverageAudit{}, false)
	if f := audFinding(t, run, "redirects_followed", "redirects_pjsip"); f.Severity != tollguard.SeverityCritical ||
		!strings.Contains(f.Message, ": trunk1.") || !strings.Contains(f.Message, "cannot stop it") || !strings.Contains(f.Message, "redirect_method = user") ||
		!strings.Contains(f.Message, "and give every Dial to them the i option") {
		t.Errorf("uri_pjsip finding: %+v", f)
	}
	if got := audFindings(run); slices.Contains(got, "redirects_followed redirects warning") {
		t.Errorf("uri_pjsip reported as one the i option stops: %q", got)
	}
	h.env.Asterisk = nil
	if got := audFindings(h.run(tollguard.CoverageAudit{}, false)); !reflect.DeepEqual(got, []string{"asterisk_unavailable asterisk warning"}) {
		t.Errorf("without ARI: %q", got)
	}
}

// audGate stands in for the dialplan: once Asterisk accepted the
// originate, the Local channel's ;2 half reaches the gate (or not, in
// contexts without tollguard's include).
type audGate struct {
	tollguard.Asterisk
	policy *tollguard.Policy
	gated  map[string]bool
	n      int
}

func (g *audGate) Originate(ctx context.Context, o tollguard.Originate) (string, error) {
	id, err := g.Asterisk.Originate(ctx, o)
	if err != nil {
		return id, err
	}
	num, dialCtx, _ := strings.Cut(strings.TrimPrefix(o.Endpoint, "Local/"), "@")
	if g.gated[dialCtx] {
		g.n++
		_, err = g.policy.Decide(ctx, tollguard.Call{Dialled: num, Context: dialCtx, Channel: "Local/" + num + "@" + dialCtx + "-0000000" + string(rune('0'+g.n)) + ";2"})
	}
	return id, err
}

func TestSelftest(t *testing.T) {
	h := newAudHarness(t)
	policy := &tollguard.Policy{Now: h.clock, Store: h.db, DefaultPlan: tollguard.NumberPlan{Country: "GB"}, SelftestNumber: "0099999999999"}
	gate := &audGate{Asterisk: h.ast, policy: policy, gated: map[string]bool{"from-internal": true, "from-sales": true}}
	h.env.Asterisk = gate
	h.env.Settings.GatedContexts = []string{"from-internal", "from-ivr"}
	h.env.Settings.SelftestNumber = "0099999999999"
	h.env.Settings.SelftestApp = "tollguard"
	h.env.Settings.SelftestWait = 300 * time.Millisecond // the ungated context's wait
	run := h.run(tollguard.SelftestAudit{}, false)
	want := []string{"selftest context:from-internal info", "selftest context:from-ivr critical"}
	if got := audFindings(run); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	if f := audFinding(t, run, "selftest", "context:from-ivr"); !strings.Contains(f.Message, "never saw") {
		t.Errorf("finding %s", f.Message)
	}
	var orig []map[string]any
	for _, r := range h.fake.RequestsMatching("POST", "/channels") {
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		orig = append(orig, body)
	}
	if len(orig) != 2 || orig[0]["endpoint"] != "Local/0099999999999@from-internal" || orig[0]["app"] != "tollguard" || orig[1]["endpoint"] != "Local/0099999999999@from-ivr" {
		t.Errorf("originates %v", orig)
	}
	if got := h.fake.RequestsMatching("DELETE", "/channels/"); len(got) != 2 {
		t.Errorf("hangups %d, want 2", len(got))
	}
	// A daemon without the selftest number lets the gate answer
	// something else: that is as bad as no gate.
	policy.SelftestNumber = ""
	h.env.Settings.GatedContexts = []string{"from-sales"}
	h.advance(time.Minute)
	run = h.run(tollguard.SelftestAudit{}, false)
	if f := audFinding(t, run, "selftest", "context:from-sales"); f.Severity != tollguard.SeverityCritical || !strings.Contains(f.Message, "deny/unknown_extension instead of deny/selftest") {
		t.Errorf("finding %+v", f)
	}
	// A TOLLGUARD_EMERGENCY that matches the selftest number would send
	// the selftest call out past the gate: none is placed.
	h.fake.SetGlobal(tollguard.EmergencyVar, "999|00[0-9]*")
	h.fake.ResetRequests()
	h.advance(time.Minute)
	run = h.run(tollguard.SelftestAudit{}, false)
	if f := audFinding(t, run, "selftest", "dialplan:"+tollguard.EmergencyVar); f.Severity != tollguard.SeverityCritical || !strings.Contains(f.Message, "no selftest call was placed") {
		t.Errorf("finding %+v", f)
	}
	if got := h.fake.RequestsMatching("POST", "/channels"); len(got) != 0 {
		t.Errorf("%d originates with the selftest number past the gate", len(got))
	}
	h.env.Settings.SelftestNumber = ""
	if _, err := tollguard.RunAudit(context.Background(), h.env, tollguard.SelftestAudit{}, false, "cli", nil); tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Errorf("no number: %v", err)
	}
}

type audJob struct {
	name string
	run  func() ([]tollguard.AuditFinding, []tollguard.AuditAction, error)
}

func (j audJob) Name() string { return j.name }
func (j audJob) Run(ctx context.Context, env *tollguard.AuditEnv, apply bool, p tollguard.AuditProgress) ([]tollguard.AuditFinding, []tollguard.AuditAction, error) {
	if p != nil {
		p(1, 1, "item")
	}
	return j.run()
}

func TestRunAudit(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	t.Run("StoresRunAlertsWarningsDropsSecrets", func(t *testing.T) {
		job := audJob{"fake", func() ([]tollguard.AuditFinding, []tollguard.AuditAction, error) {
			h.advance(2 * time.Second)
			return []tollguard.AuditFinding{
					{Check: "a", Severity: tollguard.SeverityInfo, Subject: "x"},
					{Check: "b", Severity: tollguard.SeverityWarning, Subject: "ext:1", Extension: "1", Evidence: map[string]any{"n": 1}},
					{Check: "spend", Severity: tollguard.SeverityCritical, Subject: "account:a", Account: "a"},
				}, []tollguard.AuditAction{{Kind: "rotate_password", Subject: "ext:1", Secret: "s3cret-never-stored"}},
				nil
		}}
		var progress []string
		var mu sync.Mutex
		run, err := tollguard.RunAudit(ctx, h.env, job, true, "cron", func(done, total int, item string) {
			mu.Lock()
			progress = append(progress, item)
			mu.Unlock()
		})
		if err != nil || run.ID == 0 || run.Worst() != tollguard.SeverityCritical || run.EndedAt.Sub(run.StartedAt) != 2*time.Second {
			t.Fatalf("run %+v, %v", run, err)
		}
		if len(progress) != 1 {
			t.Errorf("progress %q", progress)
		}
		if got := h.alerts.kinds(); !reflect.DeepEqual(got, []string{"audit_b ext:1", "spend account:a"}) {
			t.Errorf("alerts %q", got)
		}
		if run.Actions[0].Secret == "" {
			t.Error("the CLI lost the secret")
		}
		var raw string
		if err := h.db.SQL().QueryRow(`SELECT actions || findings FROM audit_runs WHERE id = ?`, run.ID).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, "s3cret") {
			t.Error("secret stored")
		}
		runs, err := h.db.AuditRuns(ctx, "fake", 5)
		if err != nil || len(runs) != 1 || runs[0].Trigger != "cron" || !runs[0].Apply || len(runs[0].Findings) != 3 {
			t.Errorf("stored %+v, %v", runs, err)
		}
	})
	t.Run("PanicIsARecordedFailure", func(t *testing.T) {
		job := audJob{"boom", func() ([]tollguard.AuditFinding, []tollguard.AuditAction, error) { panic("nil map") }}
		run, err := tollguard.RunAudit(ctx, h.env, job, false, "cron", nil)
		if err == nil || !strings.Contains(run.Error, "audit boom crashed: nil map") {
			t.Fatalf("run %+v, %v", run, err)
		}
		runs, _ := h.db.AuditRuns(ctx, "boom", 5)
		if len(runs) != 1 || runs[0].Error == "" {
			t.Errorf("stored %+v", runs)
		}
	})
}

// failingBoxes writes the first mailbox's new PIN, then fails.
type failingBoxes struct{ boxes []tollguard.Mailbox }

func (f failingBoxes) Name() string { return "test" }
func (f failingBoxes) Mailboxes(context.Context) ([]tollguard.Mailbox, []string, error) {
	return f.boxes, nil, nil
}
func (f failingBoxes) SetPINs(_ context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	return changes[:1], errors.New("disk full")
}
func (f failingBoxes) ReloadModule() string { return "app_voicemail.so" }

// TestPINsPartlyWritten: PINs written before a failure are still put in
// force (the module reloaded) and reported; before, the audit stopped
// at the error, and nobody learned the new PINs.
func TestPINsPartlyWritten(t *testing.T) {
	h := newAudHarness(t)
	h.env.Mailboxes = []tollguard.MailboxSource{failingBoxes{boxes: []tollguard.Mailbox{
		{Context: "default", Mailbox: "1001", PIN: "1234", Where: "voicemail.conf:5"},
		{Context: "default", Mailbox: "1002", PIN: "0000", Where: "voicemail.conf:6"},
	}}}
	run := h.run(tollguard.PINsAudit{}, true)
	var rewrote, failed, reloaded int
	for _, a := range run.Actions {
		switch {
		case a.Kind == tollguard.AuditActRewritePIN && a.Err == "":
			rewrote++
		case a.Kind == tollguard.AuditActRewritePIN:
			failed++
		case a.Kind == tollguard.AuditActReloadModule:
			reloaded++
		}
	}
	if rewrote != 1 || failed != 1 || reloaded != 1 {
		t.Errorf("rewrote %d, failed %d, reloaded %d: %+v", rewrote, failed, reloaded, run.Actions)
	}
	// 1002 was not written because the write failed, not because its
	// PIN changed while the audit ran.
	var left []string
	for _, f := range run.Findings {
		if f.Subject == "voicemail:test" {
			left = append(left, f.Message)
		}
	}
	if len(left) != 1 || !strings.HasPrefix(left[0], "1 PINs were not rewritten: disk full;") || strings.Contains(left[0], "changed while the audit ran") {
		t.Errorf("findings on the unwritten PIN: %q", left)
	}
}

// racingBoxes writes the first mailbox's new PIN and skips the rest, as
// a source does whose PINs changed since they were read.
type racingBoxes struct{ failingBoxes }

func (f racingBoxes) SetPINs(_ context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	return changes[:1], nil
}

// TestPINsChangedMeanwhile: PINs a source skipped without an error are
// said to have changed while the audit ran, and nothing else: a realtime
// mailbox in several rows is marked ByHand and never offered, so the
// summary no longer names it.
func TestPINsChangedMeanwhile(t *testing.T) {
	h := newAudHarness(t)
	h.env.Mailboxes = []tollguard.MailboxSource{racingBoxes{failingBoxes{boxes: []tollguard.Mailbox{
		{Context: "default", Mailbox: "1001", PIN: "1234", Where: "voicemail.conf:5"},
		{Context: "default", Mailbox: "1002", PIN: "0000", Where: "voicemail.conf:6"},
	}}}}
	run := h.run(tollguard.PINsAudit{}, true)
	var left []string
	for _, f := range run.Findings {
		if f.Subject == "voicemail:test" {
			left = append(left, f.Message)
		}
	}
	if want := []string{"1 PINs changed while the audit ran and were left alone; run the audit again"}; !reflect.DeepEqual(left, want) {
		t.Errorf("findings on the skipped PIN: %q, want %q", left, want)
	}
}

// A password zxcvbn passes, made of the line's account name and number,
// which a scanner guessing for 0904 tries first.
func TestPasswordsAuditLineNames(t *testing.T) {
	h := newAudHarness(t)
	h.account("named", func(a *tollguard.Account) { a.Name = "Acme Corp" })
	h.extension("0904", "named", audT0, nil)
	h.fake.SetObject("auth", "0904", tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: "0904"}, {Attribute: "password", Value: "AcmeCorp0904!"}}, true)
	h.fake.SetObject("endpoint", "0904", tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: "0904"}}, true)
	run := h.run(tollguard.PasswordsAudit{}, false)
	f := audFinding(t, run, "weak_password", "ext:0904")
	if !strings.Contains(f.Message, "names and numbers are taken out") || strings.Contains(f.Message, "AcmeCorp") {
		t.Errorf("message %q", f.Message)
	}
	if _, ok := audFindingOK(run, "weak_password", "ext:1001"); ok { // the recording's Str0ng!Pass-1001
		t.Errorf("1001 judged weak: %q", audFindings(run))
	}
}

func audFindingOK(run *tollguard.AuditRun, check, subject string) (tollguard.AuditFinding, bool) {
	for _, f := range run.Findings {
		if f.Check == check && f.Subject == subject {
			return f, true
		}
	}
	return tollguard.AuditFinding{}, false
}

// One password on several lines: each passes on its own, but one
// phone's leaked configuration opens them all.
func TestPasswordsAuditShared(t *testing.T) {
	h := newAudHarness(t)
	for _, ext := range []string{"0905", "0906", "0907"} {
		pw := "Kq8#vZ2mWx-Lp4t"
		if ext == "0907" {
			pw = "Zt5!nB7wQe-Hr9y"
		}
		h.fake.SetObject("auth", ext, tollguard.ConfigObject{{Attribute: "auth_type", Value: "userpass"}, {Attribute: "username", Value: ext}, {Attribute: "password", Value: pw}}, true)
		h.fake.SetObject("endpoint", ext, tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: ext}}, true)
	}
	run := h.run(tollguard.PasswordsAudit{}, false)
	f := audFinding(t, run, "weak_password", "auth:0905,0906")
	if !strings.Contains(f.Message, "0905 (endpoint 0905), 0906 (endpoint 0906)") || !strings.Contains(f.Message, "rotate-password") || strings.Contains(f.Message, "Kq8") {
		t.Errorf("message %q", f.Message)
	}
	for _, ext := range []string{"0905", "0906", "0907"} {
		if _, ok := audFindingOK(run, "weak_password", "ext:"+ext); ok {
			t.Errorf("%s judged weak on its own: %q", ext, audFindings(run))
		}
	}
	if n := len(run.Findings); n != 3 { // 1002, 1003 and the pair
		t.Errorf("findings %q", audFindings(run))
	}
}

// An md5_cred is checked by Asterisk instead of any password: one that
// is the digest of the username or a default is as weak as the plain
// one, not "cannot be judged".
func TestPasswordsAuditWeakMD5Cred(t *testing.T) {
	h := newAudHarness(t)
	ha1 := func(user, realm, pw string) string {
		sum := md5.Sum([]byte(user + ":" + realm + ":" + pw))
		return hex.EncodeToString(sum[:])
	}
	for _, a := range []struct{ ext, realm, cred string }{
		{"0908", "", ha1("0908", "asterisk", "0908")},
		{"0909", "pbx.example", ha1("0909", "pbx.example", "1234")},
		{"0910", "", ha1("0910", "asterisk", "k7Qp-x2Lm9.vR4tZ8wNc")}, // strong: still only info
	} {
		obj := tollguard.ConfigObject{{Attribute: "auth_type", Value: "md5"}, {Attribute: "username", Value: a.ext}, {Attribute: "md5_cred", Value: a.cred}}
		if a.realm != "" {
			obj = append(obj, tollguard.ConfigField{Attribute: "realm", Value: a.realm})
		}
		h.fake.SetObject("auth", a.ext, obj, true)
		h.fake.SetObject("endpoint", a.ext, tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: a.ext}}, true)
	}
	run := h.run(tollguard.PasswordsAudit{}, true)
	want := []string{"asterisk_read_only asterisk warning", "weak_password ext:0908 critical", "weak_password ext:0909 critical", "weak_password ext:0910 info", "weak_password ext:1002 critical", "weak_password ext:1003 critical"}
	if got := audFindings(run); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	if f := audFinding(t, run, "weak_password", "ext:0909"); !strings.Contains(f.Message, "a well-known default password (realm pbx.example)") || !strings.Contains(f.Message, "remove md5_cred") || f.Fixable {
		t.Errorf("0909: fixable %v, message %q", f.Fixable, f.Message)
	}
	for _, a := range audActions(run) {
		if strings.Contains(a, "ext:090") {
			t.Errorf("acted on an md5_cred auth: %s", a)
		}
	}
}

// An auth without a realm is checked by Asterisk in [global]'s
// default_realm: the audit assumed "asterisk", so an md5_cred of a
// default password under the PBX's own realm passed as strong.
func TestPasswordsAuditMD5CredDefaultRealm(t *testing.T) {
	ha1 := func(user, realm, pw string) string {
		sum := md5.Sum([]byte(user + ":" + realm + ":" + pw))
		return hex.EncodeToString(sum[:])
	}
	md5Auth := func(h *audHarness, ext, cred string) {
		h.fake.SetObject("auth", ext, tollguard.ConfigObject{{Attribute: "auth_type", Value: "md5"}, {Attribute: "username", Value: ext}, {Attribute: "md5_cred", Value: cred}}, true)
		h.fake.SetObject("endpoint", ext, tollguard.ConfigObject{{Attribute: "context", Value: "from-internal"}, {Attribute: "auth", Value: ext}}, true)
	}
	t.Run("ReadFromGlobal", func(t *testing.T) {
		h := newAudHarness(t)
		h.fake.SetObject("global", "global", tollguard.ConfigObject{{Attribute: "type", Value: "global"}, {Attribute: "default_realm", Value: "pbx.example"}}, false)
		md5Auth(h, "0908", ha1("0908", "pbx.example", "1234"))
		md5Auth(h, "0909", ha1("0909", "pbx.example", "0909"))
		run := h.run(tollguard.PasswordsAudit{}, false)
		for _, ext := range []string{"0908", "0909"} {
			f := audFinding(t, run, "weak_password", "ext:"+ext)
			if f.Severity != tollguard.SeverityCritical || !strings.Contains(f.Message, "(realm pbx.example)") || !strings.Contains(f.Message, "PJSIP's default_realm, pbx.example") || f.Evidence["realm"] != "pbx.example" || f.Evidence["realm_from"] != "default_realm" {
				t.Errorf("%s: %s %q %v", ext, f.Severity, f.Message, f.Evidence)
			}
		}
		// Read once a run, not once an auth.
		if n := len(h.fake.RequestsMatching(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/global/global")); n != 1 {
			t.Errorf("read the global object %d times", n)
		}
	})
	t.Run("Assumed", func(t *testing.T) {
		// No global object named "global": none is configured (the
		// default applies), or its section has another name.
		h := newAudHarness(t)
		md5Auth(h, "0908", ha1("0908", "asterisk", "0908"))
		md5Auth(h, "0910", ha1("0910", "asterisk", "k7Qp-x2Lm9.vR4tZ8wNc"))
		run := h.run(tollguard.PasswordsAudit{}, false)
		f := audFinding(t, run, "weak_password", "ext:0908")
		if !strings.Contains(f.Message, "(realm asterisk)") || !strings.Contains(f.Message, "was assumed") || !strings.Contains(f.Message, "pjsip show settings") || f.Evidence["realm"] != "asterisk" || f.Evidence["realm_from"] != "assumed" {
			t.Errorf("0908: %q %v", f.Message, f.Evidence)
		}
		// Not matched in the assumed realm is not proof of strength.
		// Nor is it of one the audit did not try: the message names what it tried.
		if f := audFinding(t, run, "weak_password", "ext:0910"); f.Severity != tollguard.SeverityInfo || !strings.Contains(f.Message, "in realm asterisk. The auth sets no realm") || !strings.Contains(f.Message, "was assumed") ||
			strings.Contains(f.Message, "not the digest of a guessable password") || !strings.Contains(f.Message, "none of the passwords the audit tries (empty, the username, the extension, the line's names, the default list)") {
			t.Errorf("0910: %s %q", f.Severity, f.Message)
		}
	})
	t.Run("Unreadable", func(t *testing.T) {
		h := newAudHarness(t)
		md5Auth(h, "0908", ha1("0908", "asterisk", "0908"))
		h.fake.Fault(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/global/", http.StatusInternalServerError, "boom", 0)
		f := audFinding(t, h.run(tollguard.PasswordsAudit{}, false), "weak_password", "ext:0908")
		if !strings.Contains(f.Message, "(realm asterisk)") || !strings.Contains(f.Message, "could not be read") || !strings.Contains(f.Message, "pjsip show settings") {
			t.Errorf("0908: %q", f.Message)
		}
	})
}
