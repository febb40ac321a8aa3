package voicemail_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// realtimeConf writes voicemail.conf (and users.conf, unless uc is "")
// in a new directory, as the Conf a Realtime reads.
func realtimeConf(t *testing.T, vc, uc string) *voicemail.Source {
	t.Helper()
	dir := t.TempDir()
	writeConf(t, filepath.Join(dir, "voicemail.conf"), vc)
	if uc != "" {
		writeConf(t, filepath.Join(dir, "users.conf"), uc)
	}
	return &voicemail.Source{Path: filepath.Join(dir, "voicemail.conf"), SpoolDir: t.TempDir()}
}

// applyEvery offers every mailbox src lists to SetPINs and checks that
// exactly those without ByHand are written (one offered and skipped
// would be reported as changed while the audit ran, run after run). It
// returns the mailboxes with their ByHand, "" for those written.
func applyEvery(t *testing.T, src tollguard.MailboxSource) map[string]string {
	t.Helper()
	ctx := context.Background()
	boxes, _, err := src.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var changes []tollguard.PINChange
	for i, m := range boxes {
		changes = append(changes, tollguard.PINChange{Mailbox: m, NewPIN: "90" + strings.Repeat(string(rune('1'+i%9)), 5)})
	}
	done, err := src.SetPINs(ctx, changes)
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, c := range done {
		written[c.Mailbox.Where] = true
	}
	out := map[string]string{}
	for _, m := range boxes {
		if written[m.Where] == (m.ByHand != "") {
			t.Errorf("%s (%s): written %v, by hand %q", m.Key(), m.Where, written[m.Where], m.ByHand)
		}
		out[m.Where+" "+m.Key()] = m.ByHand
	}
	return out
}

// TestRealtimeRowWithoutContext: app_voicemail's realtime lookup
// (find_user_realtime) asks for mailbox and context, "default" when the
// dialplan names none, which never matches a NULL context (an empty one
// only for a mailbox named "1001@"); only with searchcontexts = yes and
// no context named does it ask for the mailbox alone, and then reads
// the first row of that number the database returns, whatever its
// context. So a row without a context is never read with searchcontexts
// off (it was read as 1001@default: rewritten, and its owner mailed, or
// beside a real 1001@default row both were left as duplicates), and
// with it on it is one of the mailbox number's rows. Without
// voicemail.conf, tollguard does not know which, and rewrites neither.
func TestRealtimeRowWithoutContext(t *testing.T) {
	const rows = `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password, fullname, email) VALUES
			('default', '1001', '1234', 'Alice', 'alice@example.com'),
			(NULL, '1001', '1111', 'Alice again', 'alice2@example.com'),
			(NULL, '5000', '5000', 'Nell', 'nell@example.com'),
			('', '6000', '6000', 'Emma', 'emma@example.com'),
			('sales', '7000', '7000', 'Sam', 'sam@example.com')`
	noContext := func(row, what, how string) string {
		return "voicemail row " + row + " has " + what + ", and with searchcontexts off app_voicemail looks a mailbox up by its number and context (default, if the dialplan names none), so it " + how +
			": set its context to the mailbox's voicemail context (default, if the dialplan names none) and its password to a random PIN (digits), or delete the row"
	}
	unknown := func(row, what string) string {
		return "voicemail row " + row + " has " + what + ", and app_voicemail reads such a row only with searchcontexts = yes in voicemail.conf's [general] (a mailbox named without a context is then looked up by its number alone); " +
			"tollguard does not know that setting, as [audit.pins] voicemail_conf is not set: set voicemail_conf and run the audit again, or set its context"
	}
	for _, tc := range []struct {
		name string
		conf string // voicemail.conf; "-" for none
		want map[string]string
		mail []string
	}{
		{name: "SearchContextsOff", conf: "[general]\n[default]\n", want: map[string]string{
			"voicemail row 1 1001@default": "",
			"voicemail row 2 1001@":        noContext("2", "no context (NULL)", "never reads it (NULL equals no context a lookup names)"),
			"voicemail row 3 5000@":        noContext("3", "no context (NULL)", "never reads it (NULL equals no context a lookup names)"),
			"voicemail row 4 6000@":        noContext("4", "an empty context", "reads it only for a mailbox named with an empty context (6000@, as VoiceMail(6000@${CTX}) gives with CTX unset)"),
			"voicemail row 5 7000@sales":   "",
		}, mail: []string{"alice@example.com", "sam@example.com"}},
		{name: "SearchContextsOn", conf: "[general]\nsearchcontexts = yes\n", want: map[string]string{
			"voicemail row 1 1001@default": "mailbox 1001 is in 2 rows of voicemail (rowids 1, 2; 1001@default, 1001 with no context), and with searchcontexts = yes app_voicemail looks a mailbox named without a context up by its number alone " +
				"and reads only the first row the database returns: keep one row for mailbox 1001 in voicemail, with a random PIN (digits), and delete the others or give them numbers of their own",
			"voicemail row 2 1001@":      "mailbox 1001 is in 2 rows of voicemail (rowids 1, 2; 1001@default, 1001 with no context), and with searchcontexts = yes",
			"voicemail row 3 5000@":      "",
			"voicemail row 4 6000@":      "",
			"voicemail row 5 7000@sales": "",
		}, mail: []string{"emma@example.com", "nell@example.com", "sam@example.com"}},
		{name: "NoVoicemailConf", conf: "-", want: map[string]string{
			"voicemail row 1 1001@default": "mailbox 1001 is in 2 rows of voicemail (rowids 1, 2; 1001@default, 1001 with no context), and with searchcontexts = yes in voicemail.conf's [general] app_voicemail looks a mailbox named without a context up by its number alone " +
				"and reads only the first row the database returns; tollguard does not know that setting, as [audit.pins] voicemail_conf is not set: set voicemail_conf and run the audit again",
			"voicemail row 2 1001@":      unknown("2", "no context (NULL)"),
			"voicemail row 3 5000@":      unknown("3", "no context (NULL)"),
			"voicemail row 4 6000@":      unknown("4", "an empty context"),
			"voicemail row 5 7000@sales": "",
		}, mail: []string{"sam@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, _ := realtimeDB(t, rows)
			src := &voicemail.Realtime{DSN: "sqlite3://" + file}
			if tc.conf != "-" {
				src.Conf = realtimeConf(t, tc.conf, "")
			}
			e, _, _ := env(t, src)
			m := &mailer{}
			e.Mailer, e.Settings.NotifyOwners = m, true
			run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range run.Findings {
				if f.Check == tollguard.AuditCheckWeakPIN && !strings.HasPrefix(f.Subject, "mailbox:") {
					t.Errorf("%s: %s", f.Subject, f.Message) // offered and skipped
				}
			}
			var mailed []string
			for _, s := range m.sent {
				to, _, _ := strings.Cut(s, ": ")
				mailed = append(mailed, to)
			}
			sort.Strings(mailed)
			if !reflect.DeepEqual(mailed, tc.mail) {
				t.Errorf("mailed %q, want %q: only owners whose new PIN app_voicemail asks for", mailed, tc.mail)
			}
			// The rows left are left for good: offering them again writes
			// nothing, and each says what to change.
			got := applyEvery(t, src)
			for k, want := range tc.want {
				hand, ok := got[k]
				switch {
				case !ok:
					t.Errorf("%s: not listed (%v)", k, got)
				case want == "" && hand != "":
					t.Errorf("%s: by hand %q, want it rewritten", k, hand)
				case !strings.HasPrefix(hand, want):
					t.Errorf("%s: by hand\n%q\nwant it to start\n%q", k, hand, want)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("mailboxes %v", got)
			}
		})
	}
}

// TestRealtimeRowHiddenByConf: find_user looks in the mailboxes
// voicemail.conf and users.conf define before it asks the table, by
// name and context in any letter case, or with searchcontexts by name
// alone: a row of such a mailbox is never read, so its PIN is left
// alone (and its owner not mailed a PIN nobody asks for).
func TestRealtimeRowHiddenByConf(t *testing.T) {
	const rows = `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('Default', '1001', '1234'), ('sales', '1001', '1111'), ('default', '2002', '2002'), ('sales', '3003', '3003')`
	const uc = "[general]\nhasvoicemail = yes\n[2002]\nvmsecret = 739104\n"
	for _, tc := range []struct {
		name, vc string
		want     map[string]string
	}{
		{name: "SearchContextsOff", vc: "[default]\n1001 => 502816\n", want: map[string]string{
			"voicemail row 1 1001@Default": "mailbox 1001@Default is also defined at DIR/voicemail.conf:2 (its context in any letter case), and app_voicemail looks there before voicemail, so it never reads this row: its PIN is not in force; " +
				"delete the row, or delete that definition and give the row a random PIN (digits)",
			"voicemail row 2 1001@sales":   "",
			"voicemail row 3 2002@default": "mailbox 2002@default is also defined at DIR/users.conf:3 (its context in any letter case), and app_voicemail looks there before voicemail, so it never reads this row:",
			"voicemail row 4 3003@sales":   "",
		}},
		{name: "SearchContextsOn", vc: "[general]\nsearchcontexts = yes\n[other]\n1001 => 502816\n", want: map[string]string{
			"voicemail row 1 1001@Default": "mailbox 1001 is also defined at DIR/voicemail.conf:4 (with searchcontexts = yes a mailbox 1001 in any context there hides every row of that number), " +
				"and app_voicemail looks there before voicemail, so it never reads this row: its PIN is not in force",
			"voicemail row 2 1001@sales":   "mailbox 1001 is also defined at DIR/voicemail.conf:4",
			"voicemail row 3 2002@default": "mailbox 2002 is also defined at DIR/users.conf:3",
			"voicemail row 4 3003@sales":   "",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, _ := realtimeDB(t, rows)
			conf := realtimeConf(t, tc.vc, uc)
			src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: conf}
			_, problems, err := src.Mailboxes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := applyEvery(t, src)
			for k, want := range tc.want {
				want = strings.ReplaceAll(want, "DIR", filepath.Dir(conf.Path))
				if hand, ok := got[k]; !ok || !strings.HasPrefix(hand, want) || (want == "") != (hand == "") {
					t.Errorf("%s: by hand\n%q\nwant it to start\n%q", k, hand, want)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("mailboxes %v", got)
			}
			for _, p := range problems {
				if !strings.Contains(p, ") is never read: app_voicemail finds the mailbox at "+filepath.Dir(conf.Path)) {
					t.Errorf("problem %q", p)
				}
			}
		})
	}
}

// TestRealtimeSetPINsRereadsConf: SetPINs reads voicemail.conf again,
// so a row that another row may answer for since the audit read it
// (searchcontexts turned on) is not written.
func TestRealtimeSetPINsRereadsConf(t *testing.T) {
	ctx := context.Background()
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '1001', '1234'), ('sales', '1001', '1111'), ('sales', '2002', '2002')`)
	conf := realtimeConf(t, "[general]\nsearchcontexts = no\n", "")
	src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: conf}
	boxes, _, err := src.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var changes []tollguard.PINChange
	for _, m := range boxes {
		if m.ByHand != "" {
			t.Errorf("%s: by hand %q", m.Key(), m.ByHand)
		}
		changes = append(changes, tollguard.PINChange{Mailbox: m, NewPIN: "480913"})
	}
	writeConf(t, conf.Path, "[general]\nsearchcontexts = yes\n")
	done, err := src.SetPINs(ctx, changes)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].Mailbox.Key() != "2002@sales" {
		t.Errorf("done %v, want 2002@sales only", done)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM voicemail WHERE password = '480913'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d rows written (%v), want 1", n, err)
	}
}

// TestRealtimeRowWithoutMailbox: a row whose mailbox is NULL matches no
// lookup (mailbox = '1001' never equals NULL), so app_voicemail never
// reads it, and neither does the writers' condition: it is left to the
// admin, not offered and skipped as "changed while the audit ran" on
// every run.
func TestRealtimeRowWithoutMailbox(t *testing.T) {
	const rows = `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', NULL, '1234'), ('sales', '2002', '2002'), ('default', '', '1111')`
	for _, conf := range []string{"[general]\n", "[general]\nsearchcontexts = yes\n", "-"} {
		file, _ := realtimeDB(t, rows)
		src := &voicemail.Realtime{DSN: "sqlite3://" + file}
		if conf != "-" {
			src.Conf = realtimeConf(t, conf, "")
		}
		got := applyEvery(t, src)
		want := "voicemail row 1 has no mailbox (NULL), which no lookup names, so app_voicemail never reads it: set its mailbox"
		if hand := got["voicemail row 1 @default"]; !strings.HasPrefix(hand, want) {
			t.Errorf("%q: by hand %q, want it to start %q", conf, hand, want)
		}
		// Nor is it a second row of an empty mailbox (VoiceMail(@default)).
		for _, k := range []string{"voicemail row 2 2002@sales", "voicemail row 3 @default"} {
			if hand := got[k]; hand != "" {
				t.Errorf("%q: %s by hand %q, want it rewritten", conf, k, hand)
			}
		}
	}
}

// TestRealtimeWithoutConfSaysSo: without voicemail_conf, tollguard knows
// neither searchcontexts nor which mailboxes voicemail.conf and
// users.conf define ahead of the table (hiding its rows), whatever the
// rows are: the run says so once, not only when a row was left alone.
func TestRealtimeWithoutConfSaysSo(t *testing.T) {
	const note = "[audit.pins] voicemail_conf is not set, so tollguard does not know how app_voicemail looks realtime mailboxes up"
	for _, tc := range []struct {
		name, rows string
		conf       bool
		want       int // times the note is reported
	}{
		{"EveryRowRewritable", `('default', '1001', '1234'), ('sales', '2002', '839217')`, false, 1},
		{"RowsLeftAlone", `('default', '1001', '1234'), (NULL, '1001', '1111'), (NULL, '5000', '5000')`, false, 1},
		{"WithConf", `('default', '1001', '1234')`, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, _ := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
				INSERT INTO voicemail(context, mailbox, password) VALUES `+tc.rows)
			src := &voicemail.Realtime{DSN: "sqlite3://" + file}
			if tc.conf {
				src.Conf = realtimeConf(t, "[general]\n", "")
			}
			e, _, _ := env(t, src)
			run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, false, "cli", nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, f := range run.Findings {
				if f.Check == tollguard.AuditCheckSource && strings.HasPrefix(f.Message, note) {
					n++
				}
			}
			if n != tc.want {
				t.Errorf("the note is reported %d times, want %d (findings %+v)", n, tc.want, run.Findings)
			}
		})
	}
}

// TestRealtimeMailboxNotText: app_voicemail's lookup asks for the
// mailbox as text (res_config_sqlite3 writes mailbox = '1001' into its
// query), and SQLite never takes the INTEGER 1001 of a column without a
// type as equal to it: such a row is never read, so it is left to the
// admin (store the mailbox as text), not offered and skipped as
// "changed while the audit ran" on every run. It is no rival of the
// row of the same mailbox stored as text, which is read alone. A
// context stored as a number is never matched by a lookup that names
// it, nor by the writers' condition.
func TestRealtimeMailboxNotText(t *testing.T) {
	const rows = `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context, mailbox, password, fullname, email, pager);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', 2002, '2222'), ('default', 1001, '1234'), ('default', '1001', '1111'),
			('sales', '3003', '3333'), (5, '4004', '4444'), ('sales', 5005.0, '5555')`
	notText := func(row, box, kind string) string {
		return "voicemail row " + row + " holds its mailbox " + box + " as " + kind + ", not text, and app_voicemail's lookup asks for the text '" + box +
			"', which the database does not take as equal, so app_voicemail never reads this row: store the mailbox as text (UPDATE voicemail SET mailbox = CAST(mailbox AS TEXT) WHERE rowid = " + row + ")"
	}
	for _, conf := range []string{"[general]\n", "-"} {
		file, db := realtimeDB(t, rows)
		src := &voicemail.Realtime{DSN: "sqlite3://" + file}
		if conf != "-" {
			src.Conf = realtimeConf(t, conf, "")
		}
		_, problems, err := src.Mailboxes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := applyEvery(t, src)
		want := map[string]string{
			"voicemail row 1 2002@default": notText("1", "2002", "an integer"),
			"voicemail row 2 1001@default": notText("2", "1001", "an integer"),
			"voicemail row 3 1001@default": "",
			"voicemail row 4 3003@sales":   "",
			"voicemail row 5 4004@5":       "voicemail row 5 holds its context 5 as an integer, not text, and app_voicemail's lookup of 4004@5 asks for the text '5', which the database does not take as equal: store the context as text (UPDATE voicemail SET context = CAST(context AS TEXT) WHERE rowid = 5)",
			"voicemail row 6 5005.0@sales": notText("6", "5005.0", "a real"), // as res_config_sqlite3 reads it
		}
		for k, w := range want {
			if hand, ok := got[k]; !ok || !strings.HasPrefix(hand, w) || (w == "") != (hand == "") {
				t.Errorf("%q: %s: by hand\n%q\nwant it to start\n%q", conf, k, hand, w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%q: mailboxes %v", conf, got)
		}
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM voicemail WHERE password IN ('2222', '1234', '4444', '5555')`).Scan(&n); err != nil || n != 4 {
			t.Errorf("%q: %d rows never read keep their PINs (%v), want 4", conf, n, err)
		}
		var said []string
		for _, p := range problems {
			if strings.Contains(p, "not text") {
				said = append(said, p)
			}
		}
		if len(said) != 4 || !strings.HasPrefix(said[0], "voicemail row 1 (mailbox 2002@default) holds its mailbox as an integer, not text, so app_voicemail's lookup (mailbox = '2002') never finds it; tollguard leaves its PIN alone (--apply): store the mailbox as text") {
			t.Errorf("%q: problems %q", conf, said)
		}
	}
}

// TestRealtimePasswordAsSQLiteHandsItOver: res_config_sqlite3 hands
// app_voicemail every value as stored (row_to_varlist), and
// ast_load_realtime only drops empty ones and makes a lone blank empty:
// a password with a blank, tab or newline around it is the PIN with
// them, which nobody can type. It is reported so, not judged (and
// rewritten, or offered and skipped run after run) as the PIN without
// them; a lone blank is no PIN at all.
func TestRealtimePasswordAsSQLiteHandsItOver(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '1001', char(9) || '3333'), ('default', '1002', ' 839217 '),
			('default', '1003', '4444' || char(10)), ('default', '1004', ' '), ('default', '1005', '')`)
	src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: realtimeConf(t, "[general]\n", "")}
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var acts, blanks []string
	for _, a := range run.Actions {
		acts = append(acts, a.Kind+" "+a.Subject)
	}
	for _, f := range run.Findings {
		switch {
		case f.Check == tollguard.AuditCheckWeakPIN && strings.Contains(f.Message, "with its blanks"):
			blanks = append(blanks, f.Subject)
		case f.Check == tollguard.AuditCheckWeakPIN && strings.HasPrefix(f.Subject, "mailbox:100"):
		default:
			t.Errorf("finding %s: %s", f.Subject, f.Message)
		}
	}
	if want := []string{"rewrite_pin mailbox:1004@default", "rewrite_pin mailbox:1005@default"}; !reflect.DeepEqual(acts, want) {
		t.Errorf("actions %q, want %q", acts, want)
	}
	if want := []string{"mailbox:1001@default", "mailbox:1002@default", "mailbox:1003@default"}; !reflect.DeepEqual(blanks, want) {
		t.Errorf("PINs with blanks reported %q, want %q", blanks, want)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM voicemail WHERE password IN (char(9) || '3333', ' 839217 ', '4444' || char(10))`).Scan(&n); err != nil || n != 3 {
		t.Errorf("%d passwords with blanks kept (%v), want 3", n, err)
	}
	applyEvery(t, src)
}

// pinColumnsTable creates a realtime table with the given columns
// besides context and mailbox, fills it (NULL for "NULL"), and returns
// its file and a reader of each mailbox's values.
func pinColumnsTable(t *testing.T, cols []string, rows map[string][]string) (string, func() map[string][]string) {
	t.Helper()
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context VARCHAR(80), mailbox VARCHAR(80), `+
		strings.Join(cols, " VARCHAR(80), ")+` VARCHAR(80), fullname VARCHAR(80), email VARCHAR(80))`)
	for box, vals := range rows {
		args := []any{box}
		for _, v := range vals {
			if v == "NULL" {
				args = append(args, nil)
			} else {
				args = append(args, v)
			}
		}
		if _, err := db.Exec(`INSERT INTO voicemail(context, mailbox, `+strings.Join(cols, ", ")+`) VALUES ('default', ?`+strings.Repeat(", ?", len(cols))+`)`, args...); err != nil {
			t.Fatal(err)
		}
	}
	return file, func() map[string][]string {
		t.Helper()
		out := map[string][]string{}
		r, err := db.Query(`SELECT mailbox, ` + strings.Join(cols, ", ") + ` FROM voicemail`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var box string
			vals := make([]sql.NullString, len(cols))
			dest := []any{&box}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := r.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				out[box] = append(out[box], map[bool]string{true: v.String, false: "NULL"}[v.Valid])
			}
		}
		return out
	}
}

// checkPINColumns runs the audit with --apply on src and checks that
// each mailbox's column want names (-1: none) was rewritten with a
// strong PIN, and nothing else; then that a second run finds no weak
// PIN, and that exactly the rows without ByHand are written.
func checkPINColumns(t *testing.T, src tollguard.MailboxSource, read func() map[string][]string, want map[string]int) {
	t.Helper()
	before := read()
	e, _, _ := env(t, src)
	if _, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil); err != nil {
		t.Fatal(err)
	}
	after := read()
	for box, col := range want {
		for i, v := range after[box] {
			switch {
			case i == col && (v == before[box][i] || tollguard.PINWeakness(strings.TrimPrefix(v, "-"), box, 6) != nil):
				t.Errorf("%s: column %d %q → %q, want a strong PIN", box, i, before[box][i], v)
			case i != col && v != before[box][i]:
				t.Errorf("%s: column %d %q → %q, want it untouched", box, i, before[box][i], v)
			}
		}
	}
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, false, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range run.Findings {
		t.Errorf("second run: %s: %s", f.Subject, f.Message)
	}
	applyEvery(t, src)
}

// TestRealtimeVmsecretAndSecret: app_voicemail's apply_options_full
// takes the row's vmsecret whenever it has one, and its secret or
// password only while it has no password yet (in the table's column
// order), refusing one starting with "*". The PIN in force is judged,
// and rewritten in the column that holds it: password was rewritten
// while a weak vmsecret stayed in force (and a strong one was reported
// weak for a password nobody asks for). Through res_config_sqlite3 a
// vmsecret of one blank is an empty password, in force over password.
func TestRealtimeVmsecretAndSecret(t *testing.T) {
	const (
		pw = iota
		secret
		vmsecret
		none = -1
	)
	file, read := pinColumnsTable(t, []string{"password", "secret", "vmsecret"}, map[string][]string{
		"1001": {"839217", "NULL", "1234"},     // vmsecret wins
		"1002": {"1111", "NULL", "593017"},     // a strong vmsecret wins
		"1003": {"NULL", "2222", "NULL"},       // secret
		"1004": {"*1", "3333", "NULL"},         // a "*" password is refused
		"1005": {"4444", "720394", "NULL"},     // password comes first
		"1006": {"5555", "NULL", " "},          // a lone blank: empty, in force
		"1007": {"", "", ""},                   // none
		"1008": {"-6666", "NULL", "NULL"},      // locked
		"1009": {"720394", "6666", "-8888888"}, // a locked vmsecret
	})
	src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: realtimeConf(t, "[general]\n", "")}
	boxes, _, err := src.Mailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, m := range boxes {
		where[m.Mailbox] = m.Where
	}
	if w := where["1001"]; !strings.HasSuffix(w, ", column vmsecret") || !strings.HasSuffix(where["1003"], ", column secret") || strings.Contains(where["1005"], "column") {
		t.Errorf("where %q: want the column named when it is not password", where)
	}
	checkPINColumns(t, src, read, map[string]int{"1001": vmsecret, "1002": none, "1003": secret, "1004": secret, "1005": pw,
		"1006": vmsecret, "1007": pw, "1008": pw, "1009": vmsecret})

	// In another column order, password comes before vmsecret's blank
	// and secret.
	file, read = pinColumnsTable(t, []string{"vmsecret", "secret", "password"}, map[string][]string{
		"1006": {" ", "NULL", "5555"},
		"1005": {"NULL", "4444", "720394"},
	})
	src = &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: realtimeConf(t, "[general]\n", "")}
	checkPINColumns(t, src, read, map[string]int{"1006": 2, "1005": 1})
}

// TestRealtimeNumericPasswordColumn: a password column of a numeric type
// stores the PIN 038412 as the number 38412, so app_voicemail would ask
// for 38412 while the owner is mailed 038412. SetPINs reads what it
// wrote back and, if that is not the PIN, writes nothing and says why.
func TestRealtimeNumericPasswordColumn(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password INTEGER, fullname TEXT, email TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '1001', 1234), ('default', '1002', 1111)`)
	src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: realtimeConf(t, "[general]\n", "")}
	ctx := context.Background()
	boxes, _, err := src.Mailboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 2 || boxes[0].PIN != "1234" || boxes[0].ByHand != "" {
		t.Fatalf("mailboxes %+v", boxes)
	}
	done, err := src.SetPINs(ctx, []tollguard.PINChange{{Mailbox: boxes[0], NewPIN: "904172"}, {Mailbox: boxes[1], NewPIN: "038412"}})
	if err == nil || len(done) != 0 || !strings.Contains(err.Error(), "as text") || strings.Contains(err.Error(), "38412") {
		t.Errorf("SetPINs: done %v, err %v; want nothing done, and an error that says to store PINs as text and names no PIN", done, err)
	}
	var pins string
	if err := db.QueryRow(`SELECT group_concat(password, ',') FROM voicemail`).Scan(&pins); err != nil || pins != "1234,1111" {
		t.Errorf("passwords %q (%v), want 1234,1111 unchanged", pins, err)
	}
	// Digits without a leading zero read back as written.
	if done, err := src.SetPINs(ctx, []tollguard.PINChange{{Mailbox: boxes[0], NewPIN: "904172"}}); err != nil || len(done) != 1 {
		t.Errorf("SetPINs 904172: done %v, err %v", done, err)
	}
}

// TestRealtimeSetPINsWaitsForAnotherWriter: Asterisk's res_config_sqlite3
// may hold a write open (its batch mode commits every 100 ms). A
// transaction that reads first and then writes cannot wait for that
// lock (SQLite would deadlock, so it answers "database is locked"):
// SetPINs takes the write lock when it begins, and waits its turn.
func TestRealtimeSetPINsWaitsForAnotherWriter(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT);
		CREATE TABLE other (n INTEGER);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '1001', '1234')`)
	src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: realtimeConf(t, "[general]\n", "")}
	ctx := context.Background()
	boxes, _, err := src.Mailboxes(ctx)
	if err != nil || len(boxes) != 1 {
		t.Fatalf("mailboxes %+v, %v", boxes, err)
	}
	held, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.ExecContext(ctx, `BEGIN IMMEDIATE; INSERT INTO other VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := held.ExecContext(ctx, `COMMIT`)
		committed <- err
	}()
	done, err := src.SetPINs(ctx, []tollguard.PINChange{{Mailbox: boxes[0], NewPIN: "904172"}})
	if err != nil || len(done) != 1 {
		t.Errorf("SetPINs beside another writer: done %v, err %v; want it to wait and write", done, err)
	}
	if err := <-committed; err != nil {
		t.Errorf("the other writer's commit: %v", err)
	}
	var pin string
	if err := db.QueryRow(`SELECT password FROM voicemail`).Scan(&pin); err != nil || pin != "904172" {
		t.Errorf("password %q (%v), want 904172", pin, err)
	}
}

// TestRealtimeRowidColumnAsText: a table's own column named rowid hides
// SQLite's, and one of a text type orders its values as text ('10'
// before '9'): a row is still found among the rows a condition matches
// whatever order the database returns them in.
func TestRealtimeRowidColumnAsText(t *testing.T) {
	file, db := realtimeDB(t, `CREATE TABLE voicemail (rowid TEXT, context, mailbox, password, fullname, email, pager);
		INSERT INTO voicemail(rowid, context, mailbox, password) VALUES ('9', 'default', '1001', '1234'), ('10', 'sales', '1001', '5678')`)
	src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: realtimeConf(t, "[general]\n", "")}
	got := applyEvery(t, src)
	want := map[string]string{"voicemail row 9 1001@default": "", "voicemail row 10 1001@sales": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mailboxes %q, want %q", got, want)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM voicemail WHERE password IN ('1234', '5678')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows keep their PINs (%v), want 0", n, err)
	}
}
