//go:build odbc

package voicemail_test

// These tests go through real ODBC: unixODBC and Debian's SQLite ODBC
// driver (apt-get install unixodbc-dev libsqliteodbc; `odbcinst -q -d`
// lists SQLite3). The table is created and checked with go-sqlite3, so
// what is read and written through ODBC is checked by another driver.

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// odbcTable creates an Asterisk-style realtime voicemail table in a new
// SQLite file and returns it open (through go-sqlite3) and the ODBC DSN.
func odbcTable(t *testing.T, rows string) (*sql.DB, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "realtime.sqlite3")
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context VARCHAR(80), mailbox VARCHAR(80),
		password VARCHAR(80), fullname VARCHAR(80), email VARCHAR(80), pager VARCHAR(80));
		INSERT INTO voicemail(context, mailbox, password, fullname, email) VALUES ` + rows); err != nil {
		t.Fatal(err)
	}
	return db, "odbc:Driver=SQLite3;Database=" + file
}

func passwords(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.Query(`SELECT uniqueid, COALESCE(context, 'NULL'), mailbox, password FROM voicemail`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id int
		var c, mb, pw string
		if err := rows.Scan(&id, &c, &mb, &pw); err != nil {
			t.Fatal(err)
		}
		key := mb + "@" + c
		if _, dup := out[key]; dup {
			key += "#2"
		}
		out[key] = pw
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestODBCRealtimeRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, dsn := odbcTable(t, `
		('default', '1001', '1001', 'Alice', 'alice@example.com'),
		('sales', '1001', '839217', 'Sam', NULL),
		('default', '1002', '-4444', 'Bob', NULL),
		('sales', '3002', '620493', 'Ken', 'ken@example.com'),
		(NULL, '5000', ' 123456 ', NULL, NULL),
		('default', '7000', '111111', 'Raced', NULL),
		('dup', '2000', '0000', 'One', NULL),
		('dup', '2000', '0000', 'Two', NULL)`)
	// The SQLite driver ignores PWD. searchcontexts is off: 1001@default
	// and 1001@sales are two mailboxes, and the row without a context is
	// never read.
	src := &voicemail.Realtime{DSN: dsn + ";PWD=odbc-secret", Conf: realtimeConf(t, "[general]\n", "")}
	if !voicemail.ODBCSupported() {
		t.Fatal("built with the odbc tag but ODBC is off")
	}
	if _, err := voicemail.ParseRealtimeDSN(src.DSN, ""); err != nil {
		t.Fatal(err)
	}

	boxes, problems, err := src.Mailboxes(ctx)
	if err != nil {
		t.Fatalf("Mailboxes through ODBC (is libsqliteodbc installed? `odbcinst -q -d` should list SQLite3): %v", err)
	}
	var got []string
	for _, m := range boxes {
		got = append(got, strings.Join([]string{m.Key(), m.PIN, map[bool]string{true: "locked"}[m.Locked], m.FullName, m.Email, m.Where}, "|"))
		if m.Source != src.Name() || strings.Contains(m.Source, "odbc-secret") {
			t.Errorf("source %q: want the masked name", m.Source)
		}
	}
	sort.Strings(got)
	want := []string{
		"1001@default|1001||Alice|alice@example.com|voicemail row of 1001@default",
		"1001@sales|839217||Sam||voicemail row of 1001@sales",
		"1002@default|4444|locked|Bob||voicemail row of 1002@default",
		"2000@dup|0000||One||voicemail row of 2000@dup",
		"2000@dup|0000||Two||voicemail row of 2000@dup",
		"3002@sales|620493||Ken|ken@example.com|voicemail row of 3002@sales",
		"5000@| 123456||||voicemail row of 5000 with no context", // res_config_odbc keeps a leading blank
		"7000@default|111111||Raced||voicemail row of 7000@default",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mailboxes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(problems) != 2 || !strings.Contains(problems[0], "voicemail row of 5000 with no context (mailbox 5000) has no context (NULL), so app_voicemail never reads it") ||
		!strings.Contains(problems[1], "mailbox 2000@dup is in 2 rows of voicemail") {
		t.Errorf("problems %q: want the row without a context, and the duplicated mailbox once", problems)
	}
	// app_voicemail reads one of 2000@dup's rows, and never 5000's:
	// they are left to the admin.
	for _, m := range boxes {
		want := ""
		switch m.Key() {
		case "2000@dup":
			want = "mailbox 2000@dup is in 2 rows of voicemail, and app_voicemail reads only the first row the database returns: keep one row for 2000@dup in voicemail, with a random PIN (digits), and delete the others"
		case "5000@":
			want = "voicemail row of 5000 with no context has no context (NULL), and with searchcontexts off app_voicemail looks a mailbox up by its number and context (default, if the dialplan names none), so it never reads it (NULL equals no context a lookup names): " +
				"set its context to the mailbox's voicemail context (default, if the dialplan names none) and its password to a random PIN (digits), or delete the row"
		}
		if m.ByHand != want {
			t.Errorf("%s: ByHand %q, want %q", m.Key(), m.ByHand, want)
		}
	}

	// The audit, report only: the weak PINs and the duplicate.
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(ctx, e, tollguard.PINsAudit{}, false, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var weak []string
	for _, f := range run.Findings {
		weak = append(weak, f.Check+" "+f.Subject)
	}
	sort.Strings(weak)
	wantWeak := []string{
		tollguard.AuditCheckSource + " voicemail:" + src.Name(), // the row without a context
		tollguard.AuditCheckSource + " voicemail:" + src.Name(), // 2000@dup
		tollguard.AuditCheckWeakPIN + " mailbox:1001@default",
		tollguard.AuditCheckWeakPIN + " mailbox:1002@default",
		tollguard.AuditCheckWeakPIN + " mailbox:2000@dup",
		tollguard.AuditCheckWeakPIN + " mailbox:2000@dup",
		tollguard.AuditCheckWeakPIN + " mailbox:5000@",
		tollguard.AuditCheckWeakPIN + " mailbox:7000@default",
	}
	sort.Strings(wantWeak)
	if !reflect.DeepEqual(weak, wantWeak) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(weak, "\n"), strings.Join(wantWeak, "\n"))
	}
	if before := passwords(t, db); before["1001@default"] != "1001" {
		t.Fatalf("report-only audit wrote: %v", before)
	}

	// SetPINs: 7000's password changes after it was read, so it is left
	// alone; the duplicated 2000@dup and 5000, never read, are left
	// alone; the rest change, 1002 staying locked, and 1001@sales (same
	// mailbox, other context) is not touched.
	if _, err := db.Exec(`UPDATE voicemail SET password = '222222' WHERE mailbox = '7000'`); err != nil {
		t.Fatal(err)
	}
	newPIN := map[string]string{"1001@default": "480913", "1002@default": "571824", "5000@": "693025",
		"7000@default": "704136", "2000@dup": "815247"}
	var changes []tollguard.PINChange
	for _, m := range boxes {
		if p, ok := newPIN[m.Key()]; ok {
			changes = append(changes, tollguard.PINChange{Mailbox: m, NewPIN: p})
		}
	}
	done, err := src.SetPINs(ctx, changes)
	if err != nil {
		t.Fatal(err)
	}
	var doneKeys []string
	for _, c := range done {
		doneKeys = append(doneKeys, c.Mailbox.Key())
	}
	sort.Strings(doneKeys)
	if want := []string{"1001@default", "1002@default"}; !reflect.DeepEqual(doneKeys, want) {
		t.Errorf("done %q, want %q", doneKeys, want)
	}
	wantPW := map[string]string{
		"1001@default": "480913", "1001@sales": "839217", "1002@default": "-571824", "3002@sales": "620493",
		"5000@NULL": " 123456 ", "7000@default": "222222", "2000@dup": "0000", "2000@dup#2": "0000",
	}
	if after := passwords(t, db); !reflect.DeepEqual(after, wantPW) {
		t.Errorf("table after SetPINs:\n%v\nwant\n%v", after, wantPW)
	}

	// The same changes again: every password differs from the one read,
	// so nothing is written.
	if done, err := src.SetPINs(ctx, changes); err != nil || len(done) != 0 {
		t.Errorf("stale changes applied: %v %v", done, err)
	}

	// The audit with --apply fixes what is left that it may: 7000.
	run, err = tollguard.RunAudit(ctx, e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, a := range run.Actions {
		acts = append(acts, a.Kind+" "+a.Subject+" "+a.Err)
	}
	if want := []string{tollguard.AuditActRewritePIN + " mailbox:7000@default "}; !reflect.DeepEqual(acts, want) {
		t.Errorf("actions %q, want %q (no reload: realtime rows are read live)", acts, want)
	}
	after := passwords(t, db)
	if pw := after["7000@default"]; pw == "222222" || tollguard.PINWeakness(pw, "7000", 6) != nil {
		t.Errorf("7000: %q still weak", pw)
	}
	if after["2000@dup"] != "0000" || after["2000@dup#2"] != "0000" {
		t.Errorf("a duplicated mailbox was written: %v", after)
	}
	// The duplicated rows were never offered, so none is said to have
	// changed while the audit ran; their findings say what to do.
	for _, f := range run.Findings {
		switch {
		case f.Subject == "voicemail:"+src.Name() && f.Check == tollguard.AuditCheckWeakPIN:
			t.Errorf("skipped: %q", f.Message)
		case f.Subject == "mailbox:2000@dup" && (f.Fixable || !strings.Contains(f.Message, "change it by hand: mailbox 2000@dup is in 2 rows of voicemail")):
			t.Errorf("2000@dup (fixable %v): %s", f.Fixable, f.Message)
		}
	}
}

// TestODBCRealtimeErrors: a missing table, a missing driver and a bad
// connection string are errors that name the problem and never the
// password.
func TestODBCRealtimeErrors(t *testing.T) {
	ctx := context.Background()
	_, dsn := odbcTable(t, `('default', '1001', '1001', NULL, NULL)`)
	// The table's name is also the "password": the driver's message
	// names the table, so it shows that driver messages are scrubbed.
	src := &voicemail.Realtime{DSN: dsn + ";PWD=nosuchtable", Table: "nosuchtable"}
	_, _, err := src.Mailboxes(ctx)
	if err == nil || !strings.Contains(err.Error(), "no such table: ***") {
		t.Errorf("missing table: %v", err)
	}
	src = &voicemail.Realtime{DSN: "odbc:Driver=NoSuchDriver;Database=/x.db;UID=u;Password={pa;ss}"}
	_, _, err = src.Mailboxes(ctx)
	if err == nil || strings.Contains(err.Error(), "pa;ss") || !strings.Contains(err.Error(), "connect to realtime voicemail (odbc:Driver=NoSuchDriver;Database=/x.db;UID=u;Password=***) through ODBC") ||
		!strings.Contains(err.Error(), "NoSuchDriver' : file not found") {
		t.Errorf("missing driver: %v", err)
	}
	if _, err := src.SetPINs(ctx, []tollguard.PINChange{{Mailbox: tollguard.Mailbox{Context: "default", Mailbox: "1001", PIN: "1001"}, NewPIN: "480913"}}); err == nil {
		t.Error("SetPINs without a driver: no error")
	}
	for dsn, want := range map[string]string{
		"odbc:asterisk":               `"asterisk" is not key=value`,
		"odbc://dsn=asterisk":         "not a URL",
		"odbc:":                       "names no DSN= or Driver=",
		"odbc:UID=u;PWD=hunter22":     "names no DSN= or Driver=",
		"odbc:DSN=a;PWD={hunter22":    "has a { without its }",
		"odbc:DSN=a;Database=x;PWD":   `"PWD" is not key=value`,
		"odbc:DSN=a;PWD=ab;hunter22":  "put a password that holds ; or } in braces",
		"odbc:DSN=a;PWD={ab}hunter22": "put a password that holds ; or } in braces",
	} {
		_, err := voicemail.ParseRealtimeDSN(dsn, "")
		if tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter22") {
			t.Errorf("%q: %v, want %q", dsn, err, want)
		}
	}
	for _, dsn := range []string{"odbc:DSN=asterisk", "odbc:Driver={SQLite3};Database=/x.db", "ODBC:dsn=asterisk;uid=ast;pwd={a;b}", "odbc:FILEDSN=/etc/ast.dsn"} {
		if file, err := voicemail.ParseRealtimeDSN(dsn, "voicemail"); err != nil || file != "" {
			t.Errorf("%q: %q %v", dsn, file, err)
		}
	}
	if _, err := voicemail.ParseRealtimeDSN("odbc:DSN=asterisk", "voicemail; DROP TABLE x"); err == nil {
		t.Error("table name not checked")
	}
}

func TestODBCMaskDSN(t *testing.T) {
	for in, want := range map[string]string{
		"odbc:DSN=asterisk;UID=ast;PWD=s3cret":                                     "odbc:DSN=asterisk;UID=ast;PWD=***",
		"odbc:Driver={MySQL ODBC 8.0};Server=db;Password={se;cr}}et};Database=ast": "odbc:Driver={MySQL ODBC 8.0};Server=db;Password=***;Database=ast",
		"odbc:DSN=a;pwd=ab;cd;UID=u":                                               "odbc:DSN=a;pwd=***;***;UID=u",
		"odbc:DSN=a;PWD={unclosed;secret":                                          "odbc:DSN=a;PWD=***",
		"ODBC:Driver=PostgreSQL Unicode;SSLPassword=kp;Database=asterisk;UID=ast":  "ODBC:Driver=PostgreSQL Unicode;SSLPassword=***;Database=asterisk;UID=ast",
		"odbc:DSN=asterisk":                                                        "odbc:DSN=asterisk",
		"mysql://ast:s3cret@db/asterisk":                                           "mysql://ast:xxxxx@db/asterisk",
		"sqlite3:///var/lib/asterisk/realtime.sqlite3":                             "sqlite3:///var/lib/asterisk/realtime.sqlite3",
	} {
		if got := voicemail.MaskDSN(in); got != want {
			t.Errorf("MaskDSN(%q) = %q, want %q", in, got, want)
		}
	}
	src := &voicemail.Realtime{DSN: "odbc:DSN=asterisk;UID=ast;PWD=s3cret"}
	if got, want := src.Name(), "realtime voicemail (odbc:DSN=asterisk;UID=ast;PWD=***)"; got != want {
		t.Errorf("Name %q, want %q", got, want)
	}
	if _, err := voicemail.ParseRealtimeDSN("mysql://ast:s3cret@db/asterisk", ""); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("URL DSN: %v", err)
	}
}

// TestODBCRealtimeStarPassword: through ODBC (rows updated by key, not
// rowid) a "*" password, which leaves the mailbox open, is replaced too.
func TestODBCRealtimeStarPassword(t *testing.T) {
	ctx := context.Background()
	db, dsn := odbcTable(t, `('default', '5001', '*5839201', 'Star', NULL)`)
	e, _, _ := env(t, &voicemail.Realtime{DSN: dsn})
	if _, err := tollguard.RunAudit(ctx, e, tollguard.PINsAudit{}, true, "cli", nil); err != nil {
		t.Fatal(err)
	}
	if pw := passwords(t, db)["5001@default"]; strings.HasPrefix(pw, "*") || len(pw) < 6 {
		t.Errorf("password %q: not replaced", pw)
	}
}

// TestODBCRealtimeSeveralRowsAsTheDatabaseCompares: through ODBC too,
// the rows of a mailbox are those the database matches (a
// case-insensitive column, as MySQL's default collation makes one):
// both are left to the admin, not offered and skipped as "changed while
// the audit ran".
func TestODBCRealtimeSeveralRowsAsTheDatabaseCompares(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "realtime.sqlite3")
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context VARCHAR(80) COLLATE NOCASE, mailbox VARCHAR(80),
		password VARCHAR(80), fullname VARCHAR(80), email VARCHAR(80), pager VARCHAR(80));
		INSERT INTO voicemail(context, mailbox, password) VALUES ('sales', '2000', '0000'), ('Sales', '2000', '1234'), ('sales', '3000', '3000')`); err != nil {
		t.Fatal(err)
	}
	src := &voicemail.Realtime{DSN: "odbc:Driver=SQLite3;Database=" + file}
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(ctx, e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range run.Findings {
		switch box, _ := strings.CutPrefix(f.Subject, "mailbox:"); {
		case f.Check == tollguard.AuditCheckSource, box == "3000@sales":
		case box == "2000@sales" || box == "2000@Sales":
			if want := "change it by hand: mailbox " + box + " is in 2 rows of voicemail (the database takes differently written ones"; f.Fixable || !strings.Contains(f.Message, want) {
				t.Errorf("%s (fixable %v): %s\nwant it to say %q", f.Subject, f.Fixable, f.Message, want)
			}
		default:
			t.Errorf("finding %s: %s", f.Subject, f.Message)
		}
	}
	var acts []string
	for _, a := range run.Actions {
		acts = append(acts, a.Kind+" "+a.Subject)
	}
	if want := []string{"rewrite_pin mailbox:3000@sales"}; !reflect.DeepEqual(acts, want) {
		t.Errorf("actions %q, want %q", acts, want)
	}
}

// TestODBCRealtimeRowWithoutContext: through ODBC, where a row is found
// by mailbox and context, a row without a context is written only where
// app_voicemail reads it alone (searchcontexts on, its number in no
// other row), and 1001@default beside such a row is its mailbox's one
// row with searchcontexts off.
func TestODBCRealtimeRowWithoutContext(t *testing.T) {
	const rows = `('default', '1001', '1234', NULL, NULL), (NULL, '1001', '1111', NULL, NULL), ('', '1001', '2222', NULL, NULL),
		(NULL, '5000', '5000', NULL, NULL), ('', '6000', '6000', NULL, NULL), ('sales', '7000', '7000', NULL, NULL), ('sales', '1001', '3333', NULL, NULL)`
	for _, tc := range []struct {
		conf    string
		written []string
	}{
		{"[general]\n", []string{"1001@default", "1001@sales", "7000@sales"}},
		{"[general]\nsearchcontexts = yes\n", []string{"5000@NULL", "6000@", "7000@sales"}},
	} {
		db, dsn := odbcTable(t, rows)
		before := passwords(t, db)
		got := applyEvery(t, &voicemail.Realtime{DSN: dsn, Conf: realtimeConf(t, tc.conf, "")})
		var written []string
		for k, pw := range passwords(t, db) {
			if pw != before[k] {
				written = append(written, k)
			}
		}
		sort.Strings(written)
		if !reflect.DeepEqual(written, tc.written) {
			t.Errorf("%q: rows written %q, want %q (mailboxes %v)", tc.conf, written, tc.written, got)
		}
	}
}

// TestODBCRealtimeRowWithoutMailbox: through ODBC too, a row with a NULL
// mailbox, which no lookup finds, is left to the admin.
func TestODBCRealtimeRowWithoutMailbox(t *testing.T) {
	_, dsn := odbcTable(t, `('default', NULL, '1234', NULL, NULL), ('sales', '2002', '2002', NULL, NULL)`)
	got := applyEvery(t, &voicemail.Realtime{DSN: dsn, Conf: realtimeConf(t, "[general]\n", "")})
	if hand := got["voicemail row of @default @default"]; !strings.Contains(hand, "has no mailbox (NULL)") {
		t.Errorf("by hand %q (mailboxes %v)", hand, got)
	}
}

// TestODBCRealtimeMailboxNotText: through ODBC too, a mailbox stored as
// a number where the database does not take it as equal to the text a
// lookup binds (SQLite's column without a type) is never read: left to
// the admin. Without a rowid, rows of one mailbox some of which are
// stored as text stay rivals.
func TestODBCRealtimeMailboxNotText(t *testing.T) {
	file := filepath.Join(t.TempDir(), "realtime.sqlite3")
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context, mailbox, password VARCHAR(80), fullname VARCHAR(80), email VARCHAR(80));
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', 2002, '2222'), ('sales', '3003', '3333'), ('default', 1001, '1234'), ('default', '1001', '1111')`); err != nil {
		t.Fatal(err)
	}
	got := applyEvery(t, &voicemail.Realtime{DSN: "odbc:Driver=SQLite3;Database=" + file, Conf: realtimeConf(t, "[general]\n", "")})
	want := "voicemail row of 2002@default holds its mailbox 2002 in a form the database does not take as equal to the text '2002' app_voicemail's lookup asks for (a number in a column without a text type?), so app_voicemail never reads this row: store the mailbox as text"
	if hand := got["voicemail row of 2002@default 2002@default"]; !strings.HasPrefix(hand, want) {
		t.Errorf("by hand %q\nwant it to start %q", hand, want)
	}
	if hand := got["voicemail row of 3003@sales 3003@sales"]; hand != "" {
		t.Errorf("3003@sales: by hand %q", hand)
	}
	if hand := got["voicemail row of 1001@default 1001@default"]; !strings.Contains(hand, "is in 2 rows of voicemail") {
		t.Errorf("1001@default: by hand %q", hand)
	}
}

// TestODBCRealtimePasswordAsODBCHandsItOver: res_config_odbc splits a
// value at ";", drops a piece of only blanks and control characters,
// cuts them off the end of the others but keeps leading ones (it tests
// ast_strip's result, yet hands over the piece it stripped in place),
// and apply_options_full takes the first piece: '4444\n' is the weak
// 4444, rewritten (the whole value), while '\t3333' is a PIN nobody can
// type: reported, not rewritten.
func TestODBCRealtimePasswordAsODBCHandsItOver(t *testing.T) {
	db, dsn := odbcTable(t, `('default', '1001', char(9) || '3333', NULL, NULL), ('default', '1002', ' 839217 ', NULL, NULL),
		('default', '1003', '4444' || char(10), NULL, NULL), ('default', '1004', ' ', NULL, NULL), ('default', '1005', '839217;1234', NULL, NULL),
		('default', '1006', ' ;5555', NULL, NULL), ('default', '1007', char(1) || '839217' || char(13), NULL, NULL)`)
	src := &voicemail.Realtime{DSN: dsn, Conf: realtimeConf(t, "[general]\n", "")}
	before := passwords(t, db)
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, a := range run.Actions {
		acts = append(acts, a.Kind+" "+a.Subject)
	}
	if want := []string{"rewrite_pin mailbox:1003@default", "rewrite_pin mailbox:1004@default", "rewrite_pin mailbox:1006@default"}; !reflect.DeepEqual(acts, want) {
		t.Errorf("actions %q, want %q", acts, want)
	}
	untypable := map[string]string{"mailbox:1001@default": `"\t3333"`, "mailbox:1002@default": `" 839217"`, "mailbox:1007@default": `"\x01839217"`}
	for _, f := range run.Findings {
		switch pin, ok := untypable[f.Subject]; {
		case ok:
			if f.Severity != tollguard.SeverityInfo || !strings.Contains(f.Message, "is "+pin+" with its blanks") {
				t.Errorf("finding %s (%s): %s; want the untypable PIN %s", f.Subject, f.Severity, f.Message, pin)
			}
			delete(untypable, f.Subject)
		case !strings.HasPrefix(f.Subject, "mailbox:") || f.Severity != tollguard.SeverityWarning:
			t.Errorf("finding %s: %s", f.Subject, f.Message)
		}
	}
	if len(untypable) > 0 {
		t.Errorf("no untypable-PIN finding for %v", untypable)
	}
	after := passwords(t, db)
	for k, pw := range after {
		switch k {
		case "1001@default", "1002@default", "1005@default", "1007@default":
			if pw != before[k] {
				t.Errorf("%s: strong PIN %q rewritten to %q", k, before[k], pw)
			}
		default:
			if tollguard.PINWeakness(pw, k[:4], 6) != nil || strings.TrimSpace(pw) != pw {
				t.Errorf("%s: %q not rewritten", k, pw)
			}
		}
	}
	applyEvery(t, src)
}

// TestODBCRealtimeVmsecretAndSecret: through res_config_odbc, a value
// of blanks is no value (vmsecret ' ' leaves password in force), and
// each piece of a vmsecret split at ";" overrides the one before.
func TestODBCRealtimeVmsecretAndSecret(t *testing.T) {
	file, read := pinColumnsTable(t, []string{"password", "secret", "vmsecret"}, map[string][]string{
		"1001": {"839217", "NULL", "1234"},
		"1002": {"1111", "NULL", "593017"},
		"1003": {"NULL", "2222", "NULL"},
		"1006": {"5555", "NULL", " "},
		"1009": {"720394", "NULL", "839217;2468"},
		"1010": {"720394", "NULL", "2468;839217"},
	})
	src := &voicemail.Realtime{DSN: "odbc:Driver=SQLite3;Database=" + file, Conf: realtimeConf(t, "[general]\n", "")}
	checkPINColumns(t, src, read, map[string]int{"1001": 2, "1002": -1, "1003": 1, "1006": 0, "1009": 2, "1010": -1})
}

// TestODBCRealtimeValueTheDriverConverts: SQLite's ODBC driver returns a
// value of a column without a type as the type it takes from the
// column's first value: the database does not take what it returns as
// equal to what it stores (INTEGER 1234 is not '1234'; ” comes back
// NULL after a number). A row whose password columns are not matched by
// their values as read is left to the admin, not offered and skipped
// run after run; a mailbox read back as NULL is no error.
func TestODBCRealtimeValueTheDriverConverts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "realtime.sqlite3")
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context VARCHAR(80), mailbox, password, fullname VARCHAR(80), email VARCHAR(80));
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', 1001, 1234), ('default', '1002', '1111'), ('sales', '', '2222'), ('sales', '1003', 12.5)`); err != nil {
		t.Fatal(err)
	}
	got := applyEvery(t, &voicemail.Realtime{DSN: "odbc:Driver=SQLite3;Database=" + file, Conf: realtimeConf(t, "[general]\nsearchcontexts = yes\n", "")})
	for _, k := range []string{"voicemail row of 1003@sales 1003@sales"} {
		if want := "voicemail row of 1003@sales: the database does not take its password column as equal to the value the ODBC driver returned for it"; !strings.HasPrefix(got[k], want) {
			t.Errorf("%s: by hand %q\nwant it to start %q (mailboxes %v)", k, got[k], want, got)
		}
	}
}

// TestODBCRealtimeRowChangedMeanwhile: through ODBC, where a row is
// known by its mailbox and context, SetPINs writes the one read again
// only while it is still the only row of them: a second row added
// since, or the row renamed to another mailbox, leaves it alone.
func TestODBCRealtimeRowChangedMeanwhile(t *testing.T) {
	db, dsn := odbcTable(t, `('default', '1001', '1234', 'A', ''), ('default', '1002', '0000', 'B', ''), ('default', '1003', '1111', 'C', '')`)
	changeRowsMeanwhile(t, db, &voicemail.Realtime{DSN: dsn})
	want := map[string]string{"1001@default": "1234", "1001@default#2": "5555", "2002@default": "0000", "1003@default": "480913"}
	if got := passwords(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("table %v, want %v", got, want)
	}
}
