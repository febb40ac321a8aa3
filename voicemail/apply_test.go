package voicemail_test

import (
	"context"
	"database/sql"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/store"
	"github.com/tollguard/tollguard/voicemail"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type mailer struct {
	mu   sync.Mutex
	sent []string
}

func (m *mailer) SendMail(ctx context.Context, to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, to+": "+body)
	return nil
}

type alerter struct{ n int }

func (a *alerter) Raise(context.Context, tollguard.Alert) error { a.n++; return nil }

func env(t *testing.T, src ...tollguard.MailboxSource) (*tollguard.AuditEnv, *aritest.Server, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fake, err := aritest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	c, err := ari.NewClient(ari.Config{URL: fake.URL, User: fake.User, Password: fake.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &tollguard.AuditEnv{
		Now: func() time.Time { return t0 }, Store: db, Asterisk: c, Alerter: &alerter{}, Mailboxes: src,
		Settings: tollguard.DefaultAuditSettings(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, fake, db
}

// copyTree copies testdata/etc into a temp config dir.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir("testdata/etc", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/etc", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestPINsAuditApplyChangesOnlyPINs runs `audit pins --apply` over the
// sample config (includes, comments, odd spacing, contexts, options
// after the PIN) and proves, without the parser, that each changed line
// differs from the original only in one run of digits: the PIN.
func TestPINsAuditApplyChangesOnlyPINs(t *testing.T) {
	dir := copyTree(t)
	src := &voicemail.Source{Path: filepath.Join(dir, "voicemail.conf"), BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	e, fake, db := env(t, src)
	m := &mailer{}
	e.Mailer, e.Settings.NotifyOwners = m, true
	before := readAll(t, dir)

	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, false, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	weak := []string{"1001@default", "1002@default", "1004@default", "1006@default", "1008@default", "1234@default",
		"2001@other", "2002@other", "3001@sales", "4001@default", "4002@support"}
	// "839217 ," and "1212 ,": app_voicemail keeps the blank, so no
	// caller can type these PINs; reported, not rewritten.
	untypable := []string{"1003@default", "1009@default"}
	var got, gotUntypable []string
	for _, f := range run.Findings {
		switch {
		case f.Check == tollguard.AuditCheckWeakPIN && f.Severity == tollguard.SeverityInfo:
			gotUntypable = append(gotUntypable, strings.TrimPrefix(f.Subject, "mailbox:"))
			if !strings.Contains(f.Message, "blank") || f.Fixable {
				t.Errorf("untypable PIN finding %+v", f)
			}
		case f.Check == tollguard.AuditCheckWeakPIN:
			got = append(got, strings.TrimPrefix(f.Subject, "mailbox:"))
		}
	}
	sort.Strings(got)
	sort.Strings(gotUntypable)
	if !reflect.DeepEqual(got, weak) || !reflect.DeepEqual(gotUntypable, untypable) {
		t.Fatalf("weak %q\nwant %q\nuntypable %q, want %q", got, weak, gotUntypable, untypable)
	}
	if !reflect.DeepEqual(readAll(t, dir), before) {
		t.Fatal("report-only run changed files")
	}

	run, err = tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	newPINs := map[string]string{}
	kinds := map[string]int{}
	for _, a := range run.Actions {
		kinds[a.Kind]++
		if a.Kind == tollguard.AuditActRewritePIN {
			newPINs[strings.TrimPrefix(a.Subject, "mailbox:")] = a.Secret
		}
	}
	if kinds[tollguard.AuditActRewritePIN] != 11 || kinds[tollguard.AuditActReloadModule] != 1 || kinds[tollguard.AuditActNotifyOwner] != 11 {
		t.Errorf("actions %v", kinds)
	}
	if r := fake.RequestsMatching("PUT", "/asterisk/modules/app_voicemail.so"); len(r) != 1 {
		t.Errorf("reload requests %d", len(r))
	}
	after := readAll(t, dir)
	changedLines := 0
	for name, old := range before {
		oldLines, newLines := strings.Split(old, "\n"), strings.Split(after[name], "\n")
		if len(oldLines) != len(newLines) {
			t.Fatalf("%s: %d lines became %d", name, len(oldLines), len(newLines))
		}
		for i := range oldLines {
			if oldLines[i] == newLines[i] {
				continue
			}
			changedLines++
			o, n := digitDiff(oldLines[i], newLines[i])
			if o == "" || n == "" || len(n) < 6 {
				t.Errorf("%s:%d: change is not a PIN: %q → %q", name, i+1, oldLines[i], newLines[i])
			}
		}
	}
	if changedLines != 11 {
		t.Errorf("%d lines changed, want 11", changedLines)
	}
	// The new PINs are strong and where the actions say; the locked one
	// keeps its "-".
	boxes, _, err := src.Mailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		if pin, ok := newPINs[b.Key()]; ok && b.PIN != pin {
			t.Errorf("%s: PIN %q, action says %q", b.Key(), b.PIN, pin)
		}
		if why := tollguard.PINWeakness(b.PIN, b.Mailbox, 6); why != nil {
			t.Errorf("%s still weak: %q", b.Key(), why)
		}
		if b.Key() == "1002@default" && !b.Locked {
			t.Error("1002 lost its '-' lock")
		}
	}
	st, _ := os.Stat(filepath.Join(dir, "voicemail.conf"))
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if bu, _ := os.ReadDir(src.BackupDir); len(bu) != 3 {
		t.Errorf("%d backups, want one per rewritten file (3)", len(bu))
	}
	if len(m.sent) != 11 || !strings.Contains(m.sent[0], "Ask your phone system administrator") {
		t.Errorf("mails %q", m.sent)
	}
	for _, mail := range m.sent {
		for _, pin := range newPINs {
			if strings.Contains(mail, pin) {
				t.Errorf("mail carries the PIN without mail_pin: %q", mail)
			}
		}
	}
	// Nothing secret reaches the database.
	var raw string
	if err := db.SQL().QueryRow(`SELECT findings || actions FROM audit_runs WHERE id = ?`, run.ID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	for _, pin := range newPINs {
		if strings.Contains(raw, pin) {
			t.Errorf("new PIN %s stored in the run", pin)
		}
	}
	// A second apply finds nothing weak and writes nothing; the two
	// untypable PINs are still reported, and still untouched.
	run, err = tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil || len(run.Findings) != len(untypable) || len(run.Actions) != 0 {
		t.Errorf("second run: findings %v actions %v err %v", run.Findings, run.Actions, err)
	}
}

// digitDiff strips the common prefix and suffix of two lines and
// returns the differing middles if both are digits only.
func digitDiff(a, b string) (string, string) {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	// Back up into the digit run, so "1234" → "1987" is not seen as "234" → "987".
	for p > 0 && isDigit(a[p-1]) {
		p--
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	for s > 0 && isDigit(a[len(a)-s]) {
		s--
	}
	ma, mb := a[p:len(a)-s], b[p:len(b)-s]
	if strings.Trim(ma, "0123456789") != "" || strings.Trim(mb, "0123456789") != "" {
		return "", ""
	}
	return ma, mb
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPINsAuditMissingInclude(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "voicemail.conf"), []byte("[default]\n#include gone.conf\n1001 => 839217\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	e, _, _ := env(t, &voicemail.Source{Path: filepath.Join(dir, "voicemail.conf")})
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, false, "cli", nil)
	if err != nil || len(run.Findings) != 1 || run.Findings[0].Check != tollguard.AuditCheckSource || !strings.Contains(run.Findings[0].Message, "no such file") {
		t.Errorf("findings %+v, %v", run.Findings, err)
	}
}

func TestRealtimeSource(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password, fullname, email) VALUES
			('default', '1001', '1001', 'Alice', 'alice@example.com'),
			('default', '1002', '-4444', 'Bob', NULL),
			('sales', '3002', '620493', 'Ken', 'ken@example.com'),
			('support', '5000', ' 123456 ', NULL, NULL)`)
	src := &voicemail.Realtime{DSN: "sqlite3://" + file}
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, a := range run.Actions {
		subjects = append(subjects, a.Kind+" "+a.Subject)
	}
	sort.Strings(subjects)
	// 5000's PIN is " 123456 ": res_config_sqlite3 keeps the blanks, and
	// nobody can type them (reported, not rewritten).
	want := []string{"rewrite_pin mailbox:1001@default", "rewrite_pin mailbox:1002@default"}
	if !reflect.DeepEqual(subjects, want) {
		t.Errorf("actions %q, want %q (no reload: realtime rows are read live)", subjects, want)
	}
	rows, err := db.Query(`SELECT mailbox, password FROM voicemail ORDER BY mailbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var mb, pw string
		if err := rows.Scan(&mb, &pw); err != nil {
			t.Fatal(err)
		}
		switch mb {
		case "1002":
			if !strings.HasPrefix(pw, "-") || len(pw) != 7 {
				t.Errorf("1002: %q lost its lock or was not replaced", pw)
			}
		case "3002", "5000":
			if pw != "620493" && pw != " 123456 " {
				t.Errorf("%s: a PIN that is not weak changed: %q", mb, pw)
			}
		default:
			if why := tollguard.PINWeakness(pw, mb, 6); why != nil {
				t.Errorf("%s: %q still weak", mb, pw)
			}
		}
	}
	for _, dsn := range []string{"odbc:asterisk", "odbc://dsn=asterisk", "mysql://u@h/db", ""} {
		if _, err := voicemail.ParseRealtimeDSN(dsn, ""); tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("%q: %v", dsn, err)
		}
	}
	if _, err := voicemail.ParseRealtimeDSN("/x.db", "voicemail; DROP TABLE x"); err == nil {
		t.Error("table name not checked")
	}
}

// TestRealtimeSeveralRows: app_voicemail reads one row of a mailbox
// (ast_load_realtime, the first the database returns), so a mailbox in
// several rows of an SQLite table is reported with its rows and left to
// the admin: --apply wrote a different PIN to each row, mailed both to
// the owner, and only one of them was ever asked for.
func TestRealtimeSeveralRows(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password, fullname, email) VALUES
			('default', '1001', '1234', 'Alice', 'alice@example.com'),
			('sales', '2000', '0000', 'One', NULL),
			('default', '1001', '1111', 'Alice again', NULL),
			('sales', '2000', '0000', 'Two', NULL),
			('sales', '3000', '3000', 'Kim', NULL)`)
	src := &voicemail.Realtime{DSN: "sqlite3://" + file}
	e, _, _ := env(t, src)
	m := &mailer{}
	e.Mailer = m
	e.Settings.NotifyOwners = true
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"1001@default": "mailbox 1001@default is in 2 rows of voicemail (rowids 1, 3), and app_voicemail reads only the first row the database returns: keep one row for 1001@default in voicemail, with a random PIN (digits), and delete the others",
		"2000@sales":   "mailbox 2000@sales is in 2 rows of voicemail (rowids 2, 4), and app_voicemail reads only the first row the database returns: keep one row for 2000@sales in voicemail, with a random PIN (digits), and delete the others",
	}
	var problems []string
	for _, f := range run.Findings {
		box, _ := strings.CutPrefix(f.Subject, "mailbox:")
		switch {
		case f.Check == tollguard.AuditCheckSource:
			problems = append(problems, f.Message)
		case box == "3000@sales":
			if !f.Fixable {
				t.Errorf("3000@sales, in one row, is not fixable: %s", f.Message)
			}
		case want[box] == "" || f.Fixable || !strings.Contains(f.Message, "change it by hand: "+want[box]):
			t.Errorf("%s (fixable %v): %s\nwant it to say %q", f.Subject, f.Fixable, f.Message, want[box])
		}
	}
	sort.Strings(problems)
	if len(problems) != 3 || !strings.HasPrefix(problems[0], "[audit.pins] voicemail_conf is not set") ||
		!strings.HasPrefix(problems[1], "mailbox 1001@default is in 2 rows of voicemail (rowids 1, 3): ") ||
		!strings.HasPrefix(problems[2], "mailbox 2000@sales is in 2 rows of voicemail (rowids 2, 4): ") {
		t.Errorf("problems %q: want each duplicated mailbox once, and that voicemail_conf is not set", problems)
	}
	var acts []string
	for _, a := range run.Actions {
		acts = append(acts, a.Kind+" "+a.Subject)
	}
	if want := []string{"rewrite_pin mailbox:3000@sales"}; !reflect.DeepEqual(acts, want) {
		t.Errorf("actions %q, want %q", acts, want)
	}
	if len(m.sent) != 0 {
		t.Errorf("mailed %q", m.sent)
	}
	var pws []string
	rows, err := db.Query(`SELECT password FROM voicemail WHERE mailbox != '3000' ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pw string
		if err := rows.Scan(&pw); err != nil {
			t.Fatal(err)
		}
		pws = append(pws, pw)
	}
	if want := []string{"1234", "0000", "1111", "0000"}; !reflect.DeepEqual(pws, want) {
		t.Errorf("passwords %q, want %q untouched", pws, want)
	}
}

// TestRealtimeSeveralRowsAsTheDatabaseCompares: which rows are one
// mailbox's is the database's comparison, as in app_voicemail's lookup
// (context = 'sales'): with a case-insensitive column (SQLite's NOCASE,
// MySQL's default collation) 'Sales' is 'sales'. Both rows are left to
// the admin, as the writers would skip them: they were said to be fixable
// and then to have "changed while the audit ran", run after run.
func TestRealtimeSeveralRowsAsTheDatabaseCompares(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT COLLATE NOCASE, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('sales', '2000', '0000'), ('Sales', '2000', '1234'), ('sales', '3000', '3000')`)
	e, _, _ := env(t, &voicemail.Realtime{DSN: "sqlite3://" + file})
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, f := range run.Findings {
		box, _ := strings.CutPrefix(f.Subject, "mailbox:")
		switch {
		case f.Check == tollguard.AuditCheckSource:
			problems = append(problems, f.Message)
		case box == "3000@sales":
		case box == "2000@sales" || box == "2000@Sales":
			if want := "change it by hand: mailbox " + box + " is in 2 rows of voicemail (rowids 1, 2; the database takes differently written ones, such as in another letter case, as the same), " +
				"and app_voicemail reads only the first row the database returns"; f.Fixable || !strings.Contains(f.Message, want) {
				t.Errorf("%s (fixable %v): %s\nwant it to say %q", f.Subject, f.Fixable, f.Message, want)
			}
		default:
			t.Errorf("finding %s: %s", f.Subject, f.Message)
		}
	}
	sort.Strings(problems)
	if len(problems) != 3 || !strings.HasPrefix(problems[0], "[audit.pins] voicemail_conf is not set") ||
		!strings.HasPrefix(problems[1], "mailbox 2000@Sales is in 2 rows of voicemail (rowids 1, 2;") ||
		!strings.HasPrefix(problems[2], "mailbox 2000@sales is in 2 rows of voicemail (rowids 1, 2;") {
		t.Errorf("problems %q", problems)
	}
	var acts []string
	for _, a := range run.Actions {
		acts = append(acts, a.Kind+" "+a.Subject)
	}
	if want := []string{"rewrite_pin mailbox:3000@sales"}; !reflect.DeepEqual(acts, want) {
		t.Errorf("actions %q, want %q", acts, want)
	}
	var pws []string
	rows, err := db.Query(`SELECT password FROM voicemail WHERE mailbox = '2000' ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pw string
		if err := rows.Scan(&pw); err != nil {
			t.Fatal(err)
		}
		pws = append(pws, pw)
	}
	if want := []string{"0000", "1234"}; !reflect.DeepEqual(pws, want) {
		t.Errorf("passwords %q, want %q untouched", pws, want)
	}
}

// TestRealtimeRowChangedMeanwhile: an SQLite row is rewritten by the
// rowid read only while it is still its mailbox's one row: a second row
// added since (app_voicemail might read either) or a row renamed to
// another mailbox leaves it alone.
func TestRealtimeRowChangedMeanwhile(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '1001', '1234'), ('default', '1002', '0000'), ('default', '1003', '1111')`)
	changeRowsMeanwhile(t, db, &voicemail.Realtime{DSN: "sqlite3://" + file})
	rows, err := db.Query(`SELECT mailbox, password FROM voicemail ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var mb, pw string
		if err := rows.Scan(&mb, &pw); err != nil {
			t.Fatal(err)
		}
		got = append(got, mb+"="+pw)
	}
	if want := []string{"1001=1234", "2002=0000", "1003=480913", "1001=5555"}; !reflect.DeepEqual(got, want) {
		t.Errorf("table %q, want %q", got, want)
	}
}

// changeRowsMeanwhile reads src's mailboxes 1001, 1002 and 1003@default,
// then adds a second 1001 row and renames 1002 to 2002 in db, and gives
// every mailbox read a new PIN: only 1003's may be written.
func changeRowsMeanwhile(t *testing.T, db *sql.DB, src *voicemail.Realtime) {
	t.Helper()
	ctx := context.Background()
	boxes, _, err := src.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '1001', '5555');
		UPDATE voicemail SET mailbox = '2002' WHERE mailbox = '1002'`); err != nil {
		t.Fatal(err)
	}
	var changes []tollguard.PINChange
	for _, m := range boxes {
		changes = append(changes, tollguard.PINChange{Mailbox: m, NewPIN: "480913"})
	}
	done, err := src.SetPINs(ctx, changes)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].Mailbox.Key() != "1003@default" {
		t.Errorf("done %v, want 1003@default only", done)
	}
}

// writeConf writes a config file at p as Asterisk's would be (0640),
// with its directories.
func writeConf(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestPINsAuditSpoolDir: with passwordlocation = spooldir, app_voicemail
// uses the PIN in the mailbox's secret.conf when it has one, so that is
// the PIN audited and rewritten; the voicemail.conf line is left alone.
// A mailbox's own option overrides [general]; a mailbox with no
// secret.conf falls back to voicemail.conf; an unreadable one is
// reported, not guessed.
func TestPINsAuditSpoolDir(t *testing.T) {
	dir, spool, backups := t.TempDir(), t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	vm := "[general]\npasswordlocation = spooldir\n\n[default]\n" +
		"1001 => 482916,Alice,alice@example.com\n" + // secret.conf: 1234
		"1002 => 1111,Bob\n" + // no secret.conf
		"1003 => 739104,Carol,,,attach=yes|passwordlocation=voicemailconf\n" + // secret.conf 0000 not used
		"1004 => 1212,Dan\n" + // secret.conf: a strong PIN
		"1005 => 902817,Eve\n" // secret.conf unreadable
	write := func(p, s string) { writeConf(t, p, s) }
	write(conf, vm)
	secret := func(box string) string { return filepath.Join(spool, "default", box, "secret.conf") }
	write(secret("1001"), "; written by app_voicemail\n[general]\npassword = 1234\n")
	write(secret("1003"), "[general]\npassword=0000\n")
	write(secret("1004"), "[general]\npassword=582049\n")
	if err := os.MkdirAll(secret("1005"), 0o750); err != nil { // a directory: reading it fails
		t.Fatal(err)
	}
	src := &voicemail.Source{Path: conf, SpoolDir: spool, BackupDir: backups, Now: func() time.Time { return t0 }}
	e, _, _ := env(t, src)

	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	weak, problems := map[string]string{}, 0
	for _, f := range run.Findings {
		switch f.Check {
		case tollguard.AuditCheckWeakPIN:
			weak[strings.TrimPrefix(f.Subject, "mailbox:")], _ = f.Evidence["where"].(string)
		case tollguard.AuditCheckSource:
			problems++
			if !strings.Contains(f.Message, "1005@default") || !strings.Contains(f.Message, "spool_dir") {
				t.Errorf("problem %q", f.Message)
			}
		}
	}
	if len(weak) != 2 || !strings.HasPrefix(weak["1001@default"], secret("1001")+":3") || !strings.HasPrefix(weak["1002@default"], conf+":6") || problems != 1 {
		t.Fatalf("weak %v, %d problems; findings %+v", weak, problems, run.Findings)
	}
	newPINs := map[string]string{}
	for _, a := range run.Actions {
		if a.Kind == tollguard.AuditActRewritePIN {
			newPINs[strings.TrimPrefix(a.Subject, "mailbox:")] = a.Secret
		}
	}
	b, _ := os.ReadFile(secret("1001"))
	if want := "; written by app_voicemail\n[general]\npassword = " + newPINs["1001@default"] + "\n"; newPINs["1001@default"] == "" || string(b) != want {
		t.Errorf("1001's secret.conf = %q, want %q", b, want)
	}
	b, _ = os.ReadFile(conf)
	if want := strings.Replace(vm, "1002 => 1111,", "1002 => "+newPINs["1002@default"]+",", 1); string(b) != want {
		t.Errorf("voicemail.conf =\n%s\nwant\n%s", b, want)
	}
	if b, _ := os.ReadFile(secret("1003")); string(b) != "[general]\npassword=0000\n" {
		t.Errorf("1003's unused secret.conf rewritten: %q", b)
	}
	names := map[string]bool{}
	bu, _ := os.ReadDir(backups)
	for _, d := range bu {
		names[strings.SplitN(d.Name(), ".tollguard-", 2)[0]] = true
	}
	if !names[".secret.conf-default-1001"] || !names[".voicemail.conf"] || len(bu) != 2 {
		t.Errorf("backups %v", bu)
	}
}

// TestSpoolDirPINReloadSeesIt: when only secret.conf files change,
// voicemail.conf is touched (contents unchanged), because app_voicemail's
// reload rereads nothing, secret.conf included, unless voicemail.conf
// changed.
func TestSpoolDirPINReloadSeesIt(t *testing.T) {
	dir, spool := t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	vm := "[general]\npasswordlocation = spooldir\n\n[default]\n1001 => 482916,Alice\n"
	writeConf(t, conf, vm)
	writeConf(t, filepath.Join(spool, "default", "1001", "secret.conf"), "[general]\npassword=1234\n")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(conf, old, old); err != nil {
		t.Fatal(err)
	}
	src := &voicemail.Source{Path: conf, SpoolDir: spool, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	rewrote := false
	for _, a := range run.Actions {
		rewrote = rewrote || a.Kind == tollguard.AuditActRewritePIN && a.Err == ""
	}
	fi, _ := os.Stat(conf)
	b, _ := os.ReadFile(conf)
	if !rewrote || !fi.ModTime().After(old) || string(b) != vm {
		t.Errorf("rewrote %v; voicemail.conf mtime %v, content changed %v; actions %+v", rewrote, fi.ModTime(), string(b) != vm, run.Actions)
	}
}

// TestPasswordLocationAsAsteriskReadsIt: which PIN is in force follows
// app_voicemail's reading of passwordlocation: the first [general]
// setting in reading order (an #include's lines where the #include
// is), a mailbox option named exactly, an empty option meaning
// voicemail.conf; a mailbox defined twice is audited once.
func TestPasswordLocationAsAsteriskReadsIt(t *testing.T) {
	dir, spool := t.TempDir(), t.TempDir()
	write := func(p, s string) { writeConf(t, p, s) }
	// The include says voicemailconf, the line after it spooldir: the
	// include's line comes first, so it wins (ast_variable_retrieve).
	write(filepath.Join(dir, "general.inc"), "passwordlocation = voicemailconf\n")
	write(filepath.Join(dir, "voicemail.conf"), "[general]\n#include general.inc\npasswordlocation = spooldir\n\n[default]\n"+
		"1001 => 482916,A,,,attach=yes| passwordlocation=spooldir\n"+ // " passwordlocation" is not the option's name
		"1002 => 582049,B,,,passwordlocation=spooldir\n"+
		"1003 => 739104,C,,,passwordlocation=SpoolDir\n"+
		"1002 => 111111,B again\n") // Asterisk ignores a duplicate
	for _, box := range []string{"1001", "1002", "1003"} {
		write(filepath.Join(spool, "default", box, "secret.conf"), "[general]\npassword=9"+box+"\n")
	}
	src := &voicemail.Source{Path: filepath.Join(dir, "voicemail.conf"), SpoolDir: spool}
	boxes, problems, err := src.Mailboxes(context.Background())
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "voicemail.conf:9: mailbox 1002@default is defined again (first at ") {
		t.Fatalf("%v %v", problems, err)
	}
	got := map[string]string{}
	for _, b := range boxes {
		got[b.Key()+" "+filepath.Base(strings.SplitN(b.Where, ":", 2)[0])] = b.PIN
	}
	want := map[string]string{
		"1001@default voicemail.conf": "482916",
		"1002@default secret.conf":    "91002",
		"1003@default secret.conf":    "91003",
		// The second 1002 is not audited: app_voicemail ignores it.
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PINs in force %v\nwant %v", got, want)
	}

	// [general] alone in spooldir mode, a mailbox defined twice: one entry.
	write(filepath.Join(dir, "voicemail.conf"), "[general]\npasswordlocation = spooldir\n[default]\n1001 => 1,A\n1001 => 2,A\n")
	boxes, _, err = src.Mailboxes(context.Background())
	if err != nil || len(boxes) != 1 || boxes[0].PIN != "91001" {
		t.Fatalf("duplicate in spooldir mode: %+v %v", boxes, err)
	}
	// An empty option means voicemail.conf, whatever [general] says.
	write(filepath.Join(dir, "voicemail.conf"), "[general]\npasswordlocation = spooldir\n[default]\n1001 => 482916,A,,,passwordlocation=\n")
	boxes, _, err = src.Mailboxes(context.Background())
	if err != nil || len(boxes) != 1 || boxes[0].PIN != "482916" {
		t.Fatalf("empty option: %+v %v", boxes, err)
	}
}

// TestPINsAuditDirSyncFails: when the directory's fsync fails after
// the rename, the new PINs are in force, so they are reported, and the
// run says the rewrite may not survive a crash.
func TestPINsAuditDirSyncFails(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[default]\n1001 => 1111,Ann\n")
	voicemail.FailSync(t, func(name string) error {
		if strings.TrimSuffix(name, "/") == dir {
			return syscall.EIO
		}
		return nil
	})
	src := &voicemail.Source{Path: conf, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pin, warned string
	for _, a := range run.Actions {
		if a.Kind != tollguard.AuditActRewritePIN {
			continue
		}
		if a.Secret != "" {
			pin = a.Secret
		} else {
			warned = a.Message + ": " + a.Err
		}
	}
	if b, _ := os.ReadFile(conf); pin == "" || string(b) != "[default]\n1001 => "+pin+",Ann\n" {
		t.Errorf("new PIN %q not reported, or file %q", pin, b)
	}
	if !strings.Contains(warned, "not safely") || !strings.Contains(warned, "crash") || !strings.Contains(warned, conf) {
		t.Errorf("the run does not say the rewrite may not survive a crash: %q", warned)
	}
}

// TestPINsAuditUsersConf: app_voicemail (Asterisk 22) also loads the
// categories of users.conf with hasvoicemail = yes (theirs, or else
// [general]'s: ast_config_option) as mailboxes in voicemail.conf's
// userscontext, before voicemail.conf's own, with the PIN that
// apply_options_full leaves: the last vmsecret, else the SIP secret.
// --apply rewrites only a PIN on one vmsecret line of its own.
func TestPINsAuditUsersConf(t *testing.T) {
	dir := t.TempDir()
	conf, users := filepath.Join(dir, "voicemail.conf"), filepath.Join(dir, "users.conf")
	writeConf(t, conf, "[general]\nuserscontext = office\n\n[office]\n1005 => 4444,Eve\n\n[default]\n1001 => 739104,Own\n")
	uc := "[general]\nhasvoicemail = yes\n\n[tmpl](!)\nvmsecret = 2222\n\n" +
		"[1001]\nfullname = Ann\nemail = ann@example.com\nvmsecret = 1234\n\n" + // line 7
		"[1002](tmpl)\n\n" + // inherited: not its own line
		"[1003]\nsecret = 1111\n\n" + // the SIP secret is the PIN
		"[1004]\nhasvoicemail = no\nvmsecret = 0000\n\n" + // no mailbox
		"[1005]\nvmsecret = 5555\n\n" + // line 22; voicemail.conf's 1005@office is ignored
		"[1006]\ncontext = other\n\n" + // no PIN at all
		"[1007]\nvmsecret = 582946\n"
	writeConf(t, users, uc)
	src := &voicemail.Source{Path: conf, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	e, fake, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	var problems []string
	for _, f := range run.Findings {
		switch f.Check {
		case tollguard.AuditCheckWeakPIN:
			if box, ok := strings.CutPrefix(f.Subject, "mailbox:"); ok {
				where[box], _ = f.Evidence["where"].(string)
			} else {
				// The by-hand ones are not offered: none was left alone.
				t.Errorf("unexpected summary: %q", f.Message)
			}
		case tollguard.AuditCheckSource:
			problems = append(problems, f.Message)
		}
	}
	for box, want := range map[string]string{
		"1001@office": users + ":10",
		"1002@office": users + ":5 (inherited by [1002] from [tmpl])",
		"1003@office": users + ":15 (no vmsecret in [1003]: app_voicemail takes its secret, the SIP password, as the PIN",
		"1005@office": users + ":22",
		"1006@office": users + ":24 ([1006] has voicemail and no vmsecret",
	} {
		if !strings.HasPrefix(where[box], want) {
			t.Errorf("%s: where %q, want %q", box, where[box], want)
		}
	}
	if len(where) != 5 {
		t.Errorf("weak PINs %v", where)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], conf+":5: mailbox 1005@office is defined again (first at "+users+":21)") {
		t.Errorf("problems %q", problems)
	}
	newPINs := map[string]string{}
	for _, a := range run.Actions {
		if a.Kind == tollguard.AuditActRewritePIN && a.Secret != "" {
			newPINs[strings.TrimPrefix(a.Subject, "mailbox:")] = a.Secret
		}
	}
	want := strings.Replace(strings.Replace(uc, "vmsecret = 1234", "vmsecret = "+newPINs["1001@office"], 1), "vmsecret = 5555", "vmsecret = "+newPINs["1005@office"], 1)
	if b, _ := os.ReadFile(users); len(newPINs) != 2 || string(b) != want {
		t.Errorf("new PINs %v; users.conf =\n%s\nwant\n%s", newPINs, b, want)
	}
	if r := fake.RequestsMatching("PUT", "/asterisk/modules/app_voicemail.so"); len(r) != 1 {
		t.Errorf("reload requests %d: app_voicemail rereads users.conf when it changed", len(r))
	}
	boxes, _, err := src.Mailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		if pin, ok := newPINs[b.Key()]; ok && b.PIN != pin {
			t.Errorf("%s: PIN %q after --apply, want %q", b.Key(), b.PIN, pin)
		}
	}
}

// TestPINsAuditUsersConfByHand: a users.conf mailbox whose PIN is not
// all of one vmsecret line of its own (the SIP secret, none, inherited,
// several vmsecret lines) is never rewritten, so --apply must not count
// it as "changed while the audit ran" (every run said so, and run again)
// nor its finding suggest --apply: it says what to change by hand.
func TestPINsAuditUsersConfByHand(t *testing.T) {
	dir := t.TempDir()
	conf, users := filepath.Join(dir, "voicemail.conf"), filepath.Join(dir, "users.conf")
	vc := "[general]\nuserscontext = office\n\n[office]\n"
	uc := "[tmpl](!)\nvmsecret = 2222\n\n" +
		"[1002](tmpl)\nhasvoicemail = yes\n\n" + // inherited
		"[1003]\nsecret = 1111\nhasvoicemail = yes\n\n" + // the SIP secret
		"[1004]\nhasvoicemail = yes\n\n" + // no PIN at all
		"[1005]\nhasvoicemail = yes\nvmsecret = 739104\nvmsecret = 5555\n" // the last of two
	writeConf(t, conf, vc)
	writeConf(t, users, uc)
	src := &voicemail.Source{Path: conf, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	e, fake, db := env(t, src)
	for _, apply := range []bool{false, true, true} {
		run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, apply, "cli", nil)
		if err != nil {
			t.Fatal(err)
		}
		var weak []string
		for _, f := range run.Findings {
			if !strings.HasPrefix(f.Subject, "mailbox:") {
				t.Errorf("apply=%v: finding %s %s: %s", apply, f.Check, f.Subject, f.Message)
				continue
			}
			weak = append(weak, strings.TrimPrefix(f.Subject, "mailbox:"))
			if f.Fixable || strings.Contains(f.Message, "--apply`") || !strings.Contains(f.Message, "vmsecret = ") || !strings.Contains(f.Message, "by hand") {
				t.Errorf("apply=%v: %s (fixable %v) does not say what to do by hand: %s", apply, f.Subject, f.Fixable, f.Message)
			}
		}
		if want := []string{"1002@office", "1003@office", "1004@office", "1005@office"}; !reflect.DeepEqual(weak, want) {
			t.Errorf("apply=%v: weak PINs %q, want %q", apply, weak, want)
		}
		for _, a := range run.Actions {
			t.Errorf("apply=%v: action %s %s: %s %s", apply, a.Kind, a.Subject, a.Message, a.Err)
		}
		if run.Fixable() {
			t.Errorf("apply=%v: the run says --apply would fix something", apply)
		}
	}
	if b, _ := os.ReadFile(users); string(b) != uc {
		t.Errorf("users.conf rewritten:\n%s", b)
	}
	wantNoReload(t, fake, db)
}

// TestPINsAuditVoicemailConfByHand: a voicemail.conf PIN whose line is
// not its mailbox's alone (a template's, which every category
// inheriting it reads) is never rewritten, so, as for users.conf,
// --apply must not offer it and then count it as "changed while the
// audit ran": its finding says what to change by hand, and where.
func TestPINsAuditVoicemailConfByHand(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	vc := "[general]\n[tmpl](!)\n1001 => 1234,Shared\n[sales](tmpl)\n[support](tmpl)\n"
	writeConf(t, conf, vc)
	src := &voicemail.Source{Path: conf, SpoolDir: t.TempDir(), BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	e, fake, db := env(t, src)
	for _, apply := range []bool{false, true, true} {
		run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, apply, "cli", nil)
		if err != nil {
			t.Fatal(err)
		}
		weak := byHandFindings(t, run, "the 1001 line of [tmpl] at "+conf+":3 is the PIN of 2 mailboxes (1001@sales, 1001@support)")
		if want := []string{"1001@sales", "1001@support"}; !reflect.DeepEqual(weak, want) {
			t.Errorf("apply=%v: weak PINs %q, want %q", apply, weak, want)
		}
	}
	if b, _ := os.ReadFile(conf); string(b) != vc {
		t.Errorf("voicemail.conf rewritten:\n%s", b)
	}
	wantNoReload(t, fake, db)
}

// TestPINsAuditSharedLinesByHand: every other PIN --apply leaves alone
// (a line another category inherits, a file included twice, "+=" lines,
// a comment inside the PIN, an unknown spool, a users.conf vmsecret line
// another category inherits) is reported the same way: by hand, never
// as changed while the audit ran.
func TestPINsAuditSharedLinesByHand(t *testing.T) {
	for _, tc := range []struct {
		name, vc, inc, uc string
		spool             bool // the spool exists
		want              map[string]string
	}{
		// [b]'s own line would be ignored while it inherits [a]'s.
		{name: "InheritedCategory", vc: "[a]\n1001 => 1111\n[b](a)\n", spool: true, want: map[string]string{
			"1001@a": "the 1001 line of [a] at CONF:2 is the PIN of 2 mailboxes (1001@a, 1001@b): give it a random PIN (digits) there, which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one and make [b] stop inheriting [a] (",
			"1001@b": "the 1001 line of [a] at CONF:2 is the PIN of 2 mailboxes (1001@a, 1001@b): give it a random PIN (digits) there, which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one and make [b] stop inheriting [a] ("}},
		// [b] gets the template's line through [a]: the line is [tmpl]'s.
		{name: "InheritedTwice", vc: "[tmpl](!)\n1001 => 1234\n[a](tmpl)\n[b](a)\n", spool: true, want: map[string]string{
			"1001@a": "the 1001 line of [tmpl] at CONF:2 is the PIN of 2 mailboxes (1001@a, 1001@b): give it a random PIN (digits) there, which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one and make [b] stop inheriting [a] (",
			"1001@b": "the 1001 line of [tmpl] at CONF:2 is the PIN of 2 mailboxes (1001@a, 1001@b): give it a random PIN (digits) there, which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one and make [b] stop inheriting [a] ("}},
		{name: "InheritedTemplate", vc: "[tmpl](!)\n1001 => 1234\n[a](tmpl)\n[b](tmpl)\n", spool: true, want: map[string]string{
			"1001@a": "the 1001 line of [tmpl] at CONF:2 is the PIN of 2 mailboxes (1001@a, 1001@b): give it a random PIN (digits) there, which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one (",
			"1001@b": "the 1001 line of [tmpl] at CONF:2 is the PIN of 2 mailboxes (1001@a, 1001@b): give it a random PIN (digits) there, which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one ("}},
		{name: "IncludedTwice", vc: "[default]\n#include u.inc\n[other]\n#include u.inc\n", inc: "1001 => 1111\n", spool: true, want: map[string]string{
			"1001@default": "DIR/u.inc is read 2 times (included more than once)",
			"1001@other":   "DIR/u.inc is read 2 times (included more than once)"}},
		{name: "Appended", vc: "[default]\n1001 => 11\n1001 +=11\n", spool: true, want: map[string]string{
			"1001@default": "the 1001 line at CONF:2 has += lines (CONF:3)"}},
		{name: "CommentInside", vc: "[default]\n1001 => 12;-- x --;34,Name\n", spool: true, want: map[string]string{
			"1001@default": "the PIN of the 1001 line at CONF:2 has a ';' or comment inside it"}},
		{name: "SpoolNotFound", vc: "[general]\npasswordlocation = spooldir\n[default]\n1001 => 1234\n", want: map[string]string{
			"1001@default": "set [audit.pins] spool_dir to Asterisk's spool"}},
		{name: "UsersConfLineInherited", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[1001]\nvmsecret = 1234\n[1002](1001)\n", spool: true, want: map[string]string{
			"1001@office": "the vmsecret line at DIR/users.conf:4 is also the PIN of 1002@office: add vmsecret = <digits>",
			"1002@office": "add vmsecret = <digits>, a random PIN, to [1002] in DIR/users.conf (a line of its own wins over [1001]'s"}},
		// [1003] gets [1001]'s line through [1002].
		{name: "UsersConfLineInheritedTwice", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[1001]\nvmsecret = 1234\n[1002](1001)\n[1003](1002)\n", spool: true, want: map[string]string{
			"1001@office": "the vmsecret line at DIR/users.conf:4 is also the PIN of 1002@office, 1003@office: add vmsecret = <digits>",
			"1002@office": "add vmsecret = <digits>, a random PIN, to [1002] in DIR/users.conf (a line of its own wins over [1001]'s",
			"1003@office": "add vmsecret = <digits>, a random PIN, to [1003] in DIR/users.conf (a line of its own wins over [1001]'s"}},
		// [sales] appends to the template's line, which [support] reads too.
		{name: "AppendedInInheritingCategory", vc: "[tmpl](!)\n1001 => 11\n[sales](tmpl)\n1001 +=11\n[support](tmpl)\n", spool: true, want: map[string]string{
			"1001@sales": "the 1001 line of [tmpl] at CONF:2, with += lines at CONF:4 in [sales], is read by 2 mailboxes (1001@sales, 1001@support): delete the += lines and give the 1001 line a random PIN (digits), which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one (",
			"1001@support": "the 1001 line of [tmpl] at CONF:2, with += lines at CONF:4 in [sales], is read by 2 mailboxes (1001@sales, 1001@support): delete the += lines and give the 1001 line a random PIN (digits), which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one ("}},
		{name: "AppendedInTemplate", vc: "[tmpl](!)\n1001 => 11\n1001 +=11\n[sales](tmpl)\n[support](tmpl)\n", spool: true, want: map[string]string{
			"1001@sales":   "the 1001 line of [tmpl] at CONF:2, with += lines at CONF:3 in [tmpl], is read by 2 mailboxes (1001@sales, 1001@support): delete the += lines and give the 1001 line a random PIN (digits), which all of them get",
			"1001@support": "the 1001 line of [tmpl] at CONF:2, with += lines at CONF:3 in [tmpl], is read by 2 mailboxes (1001@sales, 1001@support): delete the += lines and give the 1001 line a random PIN (digits), which all of them get"}},
		// [b] appends to [a]'s own line, which is 1001@a's PIN.
		{name: "AppendedToInheritedLine", vc: "[a]\n1001 => 1234\n[b](a)\n1001 +=5\n", spool: true, want: map[string]string{
			"1001@a": "the 1001 line of [a] at CONF:2, with += lines at CONF:4 in [b], is read by 2 mailboxes (1001@a, 1001@b): delete the += lines and give the 1001 line a random PIN (digits), which all of them get, " +
				"or give each of them a line of its own with its own PIN instead of this one and make [b] stop inheriting [a] (",
			"1001@b": "the 1001 line of [a] at CONF:2, with += lines at CONF:4 in [b], is read by 2 mailboxes (1001@a, 1001@b): delete the += lines"}},
		{name: "CommentInsideTemplate", vc: "[tmpl](!)\n1001 => 12;-- x --;34,Name\n[sales](tmpl)\n[support](tmpl)\n", spool: true, want: map[string]string{
			"1001@sales":   "the 1001 line of [tmpl] at CONF:2, with a ';' or comment inside its PIN, is the PIN of 2 mailboxes (1001@sales, 1001@support): give it a random PIN (digits) there, with nothing inside, which all of them get",
			"1001@support": "the 1001 line of [tmpl] at CONF:2, with a ';' or comment inside its PIN, is the PIN of 2 mailboxes (1001@sales, 1001@support): give it a random PIN (digits) there, with nothing inside, which all of them get"}},
		// Without a secret.conf the PIN is the template's line.
		{name: "SpoolNotFoundTemplate", vc: "[general]\npasswordlocation = spooldir\n[tmpl](!)\n1001 => 1234\n[sales](tmpl)\n[support](tmpl)\n", want: map[string]string{
			"1001@sales": "set [audit.pins] spool_dir to Asterisk's spool (astspooldir in asterisk.conf, plus /voicemail) and run the audit again, or give the mailbox a random PIN (digits) in its secret.conf, " +
				"or, if it has none: the 1001 line of [tmpl] at CONF:4 is the PIN of 2 mailboxes (1001@sales, 1001@support): give it a random PIN (digits) there, which all of them get",
			"1001@support": "or, if it has none: the 1001 line of [tmpl] at CONF:4 is the PIN of 2 mailboxes (1001@sales, 1001@support): give it a random PIN (digits) there, which all of them get"}},
		{name: "SpoolNotFoundUsersConfInherited", vc: "[general]\npasswordlocation = spooldir\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[1001]\nvmsecret = 1234\n[1002](1001)\n", want: map[string]string{
			"1001@office": "or, if it has none: the vmsecret line at DIR/users.conf:4 is also the PIN of 1002@office: add vmsecret = <digits>",
			"1002@office": "or, if it has none: add vmsecret = <digits>, a random PIN, to [1002] in DIR/users.conf (a line of its own wins over [1001]'s"}},
		// A users.conf line [1002] inherits: rewriting it changes both.
		{name: "UsersConfCommentInherited", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[1001]\nvmsecret = 12;-- x --;34\n[1002](1001)\n", spool: true, want: map[string]string{
			"1001@office": "make the vmsecret line of [1001] in DIR/users.conf vmsecret = <digits>, a random PIN with nothing after it (the line is also the PIN of 1002@office, which inherits it from [1001] and gets the new PIN too unless it has a vmsecret of its own)",
			"1002@office": "add vmsecret = <digits>, a random PIN, to [1002] in DIR/users.conf (a line of its own wins over [1001]'s"}},
		// "(+,t)" brings [t]'s line in at line 7: a line of [1001]'s own
		// above that header would come before it, and not be the PIN.
		{name: "UsersConfVMSecretInheritedByAddition", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1111\n[1001]\nfullname = A\n[1001](+,t)\n", spool: true, want: map[string]string{
			"1001@office": "add vmsecret = <digits>, a random PIN, to [1001] in DIR/users.conf below its header at DIR/users.conf:7 (a line of its own wins over [t]'s"}},
		// [1001] reads [t]'s vmsecret, then its own: the PIN is its own
		// (the last), so setting it is enough; [t]'s line cannot be
		// dropped from [1001], so --apply leaves it.
		{name: "UsersConfTemplateAndOwnVMSecret", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1111\n[1001](t)\nvmsecret = 1234\n[1002](t)\n", spool: true, want: map[string]string{
			"1001@office": "[1001] in DIR/users.conf reads 2 vmsecret lines, DIR/users.conf:4 (in [t], which [1001] inherits), DIR/users.conf:6 (its own), and app_voicemail takes the last (DIR/users.conf:6) as the PIN: " +
				"set [1001]'s own vmsecret line to vmsecret = <digits>, a random PIN. tollguard rewrites it itself only once [1001] reads one vmsecret line: " +
				"delete the vmsecret line of [t] (also the PIN of 1002@office: give it a vmsecret line of its own first) or make [1001] stop inheriting [t]; then reload",
			"1002@office": "add vmsecret = <digits>, a random PIN, to [1002] in DIR/users.conf (a line of its own wins over [t]'s"}},
		// Two of [1001]'s own lines: the last is the PIN.
		{name: "UsersConfTwoOwnVMSecrets", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[1001]\nvmsecret = 1111\nvmsecret = 1234\n", spool: true, want: map[string]string{
			"1001@office": "and app_voicemail takes the last (DIR/users.conf:5) as the PIN: set the last of [1001]'s own vmsecret lines to vmsecret = <digits>, a random PIN. " +
				"tollguard rewrites it itself only once [1001] reads one vmsecret line: keep one vmsecret line of [1001]'s own; then reload"}},
		// "(+,t)" adds [t]'s line after [1001]'s own: [t]'s is the PIN,
		// and setting [1001]'s own line would leave it so.
		{name: "UsersConfVMSecretInheritedAfterOwn", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1111\n[1001]\nvmsecret = 1234\n[1001](+,t)\n", spool: true, want: map[string]string{
			"1001@office": "and app_voicemail takes the last (DIR/users.conf:4) as the PIN: add vmsecret = <digits>, a random PIN, to [1001] below its header at DIR/users.conf:7 (a line there comes after every line [1001] inherits). " +
				"tollguard rewrites it itself only once [1001] reads one vmsecret line: delete the vmsecret line of [t] or make [1001] stop inheriting [t]; keep one vmsecret line of [1001]'s own; then reload"}},
		// "vmsecret +=" in [1001] appends to the last vmsecret line above
		// it: a line of its own added above it would get "5" too.
		{name: "UsersConfAppendToInheritedVMSecret", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1234\n[1001](t)\nvmsecret +=5\n", spool: true, want: map[string]string{
			"1001@office": "add vmsecret = <digits>, a random PIN, to [1001] in DIR/users.conf below its vmsecret += line at DIR/users.conf:6 (a line of its own wins over [t]'s, which is the PIN of every category inheriting it; " +
				"a += line adds its text to the last vmsecret line above it, so a line added above it would get that text too), or set hasvoicemail = no"}},
		{name: "UsersConfAppendToOwnVMSecretBesideTemplate", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1111\n[1001](t)\nvmsecret = 1234\nvmsecret +=5\n", spool: true, want: map[string]string{
			"1001@office": "app_voicemail takes the last (DIR/users.conf:6) as the PIN: set [1001]'s own vmsecret line to vmsecret = <digits>, a random PIN, and delete its += line at DIR/users.conf:7: " +
				"a += line adds its text to the last vmsecret line above it. tollguard rewrites it itself only once"}},
		{name: "UsersConfAppendToInheritedLastVMSecret", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1111\n[1001]\nvmsecret = 1234\n[1001](+,t)\nvmsecret +=5\n", spool: true, want: map[string]string{
			"1001@office": "app_voicemail takes the last (DIR/users.conf:4) as the PIN: add vmsecret = <digits>, a random PIN, to [1001] below its header at DIR/users.conf:7 and its vmsecret += line at DIR/users.conf:8 " +
				"(a line there comes after every line [1001] inherits, and a += line adds its text to the last vmsecret line above it). tollguard rewrites"}},
		// Both of [1003]'s lines are inherited, one through [1002].
		{name: "UsersConfVMSecretsInherited", vc: "[general]\nuserscontext = office\n", uc: "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1111\n[1001]\nvmsecret = 2222\n[1002](1001)\n[1003](t,1002)\n", spool: true, want: map[string]string{
			"1001@office": "the vmsecret line at DIR/users.conf:6 is also the PIN of 1002@office, 1003@office: add vmsecret",
			"1002@office": "add vmsecret = <digits>, a random PIN, to [1002] in DIR/users.conf (a line of its own wins over [1001]'s",
			"1003@office": "[1003] in DIR/users.conf reads 2 vmsecret lines, DIR/users.conf:4 (in [t], which [1003] inherits), DIR/users.conf:6 (in [1001], which [1003] inherits through [1002]), and app_voicemail takes the last (DIR/users.conf:6) as the PIN: " +
				"add vmsecret = <digits>, a random PIN, to [1003] below its header at DIR/users.conf:8 (a line there comes after every line [1003] inherits). tollguard rewrites it itself only once [1003] reads one vmsecret line: " +
				"delete the vmsecret line of [t] or make [1003] stop inheriting [t]; make [1003] stop inheriting [1002] (the line is the PIN of 1001@office, 1002@office); then reload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "voicemail.conf")
			writeConf(t, conf, tc.vc)
			if tc.inc != "" {
				writeConf(t, filepath.Join(dir, "u.inc"), tc.inc)
			}
			if tc.uc != "" {
				writeConf(t, filepath.Join(dir, "users.conf"), tc.uc)
			}
			spool := filepath.Join(dir, "spool")
			if tc.spool {
				spool = t.TempDir()
			}
			before := readAll(t, dir)
			src := &voicemail.Source{Path: conf, SpoolDir: spool, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
			e, _, _ := env(t, src)
			for _, apply := range []bool{false, true} {
				run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, apply, "cli", nil)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]bool{}
				for box, want := range tc.want {
					want = strings.NewReplacer("CONF", conf, "DIR", dir).Replace(want)
					for _, f := range run.Findings {
						if f.Subject == "mailbox:"+box && !strings.Contains(f.Message, want) {
							t.Errorf("apply=%v: %s: %s\nwant it to say %q", apply, box, f.Message, want)
						}
					}
					got[box] = true
				}
				weak := byHandFindings(t, run, "")
				if len(weak) != len(tc.want) {
					t.Errorf("apply=%v: weak PINs %q, want those of %v", apply, weak, tc.want)
				}
				for _, box := range weak {
					if !got[box] {
						t.Errorf("apply=%v: %s reported", apply, box)
					}
				}
			}
			if after := readAll(t, dir); !reflect.DeepEqual(after, before) {
				t.Errorf("files rewritten: %v", after)
			}
		})
	}
}

// byHandFindings checks that run wrote nothing and its findings are all
// weak mailbox PINs to change by hand (their message saying want), and
// returns those mailboxes.
func byHandFindings(t *testing.T, run *tollguard.AuditRun, want string) []string {
	t.Helper()
	var weak []string
	for _, f := range run.Findings {
		if f.Check == tollguard.AuditCheckSource {
			continue
		}
		box, ok := strings.CutPrefix(f.Subject, "mailbox:")
		if !ok || f.Check != tollguard.AuditCheckWeakPIN {
			t.Errorf("finding %s %s: %s", f.Check, f.Subject, f.Message)
			continue
		}
		weak = append(weak, box)
		if f.Fixable || strings.Contains(f.Message, "--apply`") || !strings.Contains(f.Message, "; change it by hand: ") || !strings.Contains(f.Message, want) || !strings.Contains(f.Message, "reload app_voicemail") {
			t.Errorf("%s (fixable %v) does not say what to do by hand (%q): %s", f.Subject, f.Fixable, want, f.Message)
		}
	}
	for _, a := range run.Actions {
		t.Errorf("action %s %s: %s %s", a.Kind, a.Subject, a.Message, a.Err)
	}
	if run.Fixable() {
		t.Error("the run says --apply would fix something")
	}
	return weak
}

// TestUsersConfNeedsHasVoicemail: a users.conf category is a mailbox
// only with hasvoicemail true, its own or [general]'s; its context is
// "default" when voicemail.conf sets no userscontext; users_conf names
// the file, and without one users.conf is looked for in config_dir.
func TestUsersConfNeedsHasVoicemail(t *testing.T) {
	dir, etc := t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[default]\n")
	uc := "[general]\nhasvoicemail = no\n[1001]\nvmsecret = 1234\n[1002]\nhasvoicemail = yes\nvmsecret = 2222\n[1003]\nvmsecret = 3333\nhasvoicemail = on\nhasvoicemail = no\n"
	writeConf(t, filepath.Join(etc, "users.conf"), uc)
	writeConf(t, filepath.Join(dir, "mine.conf"), "[1004]\nhasvoicemail = yes\n")
	for _, tc := range []struct {
		name string
		src  *voicemail.Source
		want []string
	}{
		{"NoneNextToVoicemailConf", &voicemail.Source{Path: conf}, nil},
		// [1003]'s first hasvoicemail line is the one read.
		{"ConfigDir", &voicemail.Source{Path: conf, ConfigDir: etc}, []string{"1002@default=2222", "1003@default=3333"}},
		{"UsersConf", &voicemail.Source{Path: conf, UsersConf: filepath.Join(dir, "mine.conf")}, []string{"1004@default="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := boxesOf(t, tc.src)
			if len(problems) != 0 {
				t.Fatalf("problems %q", problems)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mailboxes %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUsersConfWhichLineCounts: users.conf lines are read two ways.
// hasvoicemail through ast_config_option, whose ast_variable_retrieve
// returns the first line of that name (config.c), an inherited one
// before the category's own: a template's "yes" makes a mailbox whatever
// the category says after it, and one left out would keep its weak PIN
// unaudited. The PIN not so: app_voicemail's apply_options_full walks
// all of the category's lines, the ones it inherits first (config.c
// inherit_category), and every vmsecret overwrites the PIN, so the last
// one is in force: [1001]'s own after [t]'s, and [t2]'s when [1002]
// inherits it after [t].
func TestUsersConfWhichLineCounts(t *testing.T) {
	for _, tc := range []struct {
		name, users string
		want        []string
	}{
		{"HasVoicemailFirstLine", "[vm](!)\nhasvoicemail = yes\n[novm](!)\nhasvoicemail = no\n" +
			"[1001]\nhasvoicemail = on\nhasvoicemail = no\nvmsecret = 1111\n" + // the first says on
			"[1002](vm)\nhasvoicemail = no\nvmsecret = 2222\n" + // the template's yes comes first
			"[1003](novm)\nhasvoicemail = yes\nvmsecret = 3333\n", // the template's no comes first
			[]string{"1001@default=1111", "1002@default=2222"}},
		{"LastVMSecret", "[general]\nhasvoicemail = yes\n[t](!)\nvmsecret = 1111\n[t2](!)\nvmsecret = 2222\n" +
			"[1001](t)\nvmsecret = 739104\n" +
			"[1002](t,t2)\n",
			[]string{"1001@default=739104", "1002@default=2222"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "voicemail.conf")
			writeConf(t, conf, "[default]\n")
			writeConf(t, filepath.Join(dir, "users.conf"), tc.users)
			got, problems := boxesOf(t, &voicemail.Source{Path: conf})
			if len(problems) != 0 {
				t.Fatalf("problems %q", problems)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mailboxes %q, want %q", got, tc.want)
			}
		})
	}
}

// TestGeneralSettingFirstLine: app_voicemail reads each [general]
// setting with ast_variable_retrieve, which returns the first line of
// that name (config.c), not the last: with passwordlocation set twice
// the spool's secret.conf PINs are in force, and userscontext and
// users.conf's [general] hasvoicemail are read the same way.
func TestGeneralSettingFirstLine(t *testing.T) {
	dir, spool := t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[general]\npasswordlocation = spooldir\npasswordlocation = voicemailconf\n"+
		"userscontext = office\nuserscontext = other\n[default]\n1001 => 482916,Ann\n")
	writeConf(t, filepath.Join(spool, "default", "1001", "secret.conf"), "[general]\npassword=1234\n")
	writeConf(t, filepath.Join(spool, "office", "2001", "secret.conf"), "[general]\npassword=2222\n")
	writeConf(t, filepath.Join(dir, "users.conf"), "[general]\nhasvoicemail = yes\nhasvoicemail = no\n[2001]\nvmsecret = 739104\n")
	boxes, problems, err := (&voicemail.Source{Path: conf, SpoolDir: spool}).Mailboxes(context.Background())
	if err != nil || len(problems) != 0 {
		t.Fatalf("err %v, problems %q", err, problems)
	}
	var got []string
	for _, b := range boxes {
		got = append(got, b.Key()+"="+b.PIN+" "+filepath.Base(strings.SplitN(b.Where, ":", 2)[0]))
	}
	if want := []string{"2001@office=2222 secret.conf", "1001@default=1234 secret.conf"}; !reflect.DeepEqual(got, want) {
		t.Errorf("mailboxes %q, want %q", got, want)
	}
}

// wantNoReload checks that a run which wrote nothing neither reloaded
// app_voicemail nor left a reload owed.
func wantNoReload(t *testing.T, fake *aritest.Server, db *store.DB) {
	t.Helper()
	if r := fake.RequestsMatching("PUT", "/asterisk/modules/app_voicemail.so"); len(r) != 0 {
		t.Errorf("%d reloads, with nothing written", len(r))
	}
	if owed, err := db.VoicemailReloads(context.Background()); err != nil || len(owed) != 0 {
		t.Errorf("reload markers %v (%v)", owed, err)
	}
}

// realtimeDB creates an SQLite realtime voicemail table by running
// sqlText in a new file, and returns the file and a handle to it,
// closed with the test.
func realtimeDB(t *testing.T, sqlText string) (string, *sql.DB) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "realtime.sqlite3")
	db, err := sql.Open("sqlite3", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(sqlText); err != nil {
		t.Fatal(err)
	}
	return file, db
}

// TestUsersConfLineAddedAboveAppend: config.c adds a "+=" line's text
// to the last line of that name above it, so a vmsecret line added
// above "vmsecret +=" gets its text too, and one added below it is the
// PIN as written (what the by-hand advice says to do).
func TestUsersConfLineAddedAboveAppend(t *testing.T) {
	dir := t.TempDir()
	conf, users := filepath.Join(dir, "voicemail.conf"), filepath.Join(dir, "users.conf")
	writeConf(t, conf, "[general]\n")
	for _, tc := range []struct{ uc, pin string }{
		{"[t](!)\nvmsecret = 1234\n[1001](t)\nvmsecret = 839217\nvmsecret +=5\n", "8392175"},
		{"[t](!)\nvmsecret = 1234\n[1001](t)\nvmsecret +=5\nvmsecret = 839217\n", "839217"},
	} {
		writeConf(t, users, "[general]\nhasvoicemail = yes\n"+tc.uc)
		boxes, _ := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
		if want := []string{"1001@default=" + tc.pin}; !reflect.DeepEqual(boxes, want) {
			t.Errorf("%q: %q, want %q", tc.uc, boxes, want)
		}
	}
}
