package voicemail_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// boxesOf lists src's mailboxes as "mailbox@context=PIN" (a "-" before a
// locked PIN) and its problems.
func boxesOf(t *testing.T, src *voicemail.Source) ([]string, []string) {
	t.Helper()
	boxes, problems, err := src.Mailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range boxes {
		lock := ""
		if b.Locked {
			lock = "-"
		}
		got = append(got, b.Key()+"="+lock+b.PIN)
	}
	return got, problems
}

// copyFiles copies testdata/asterisk/<names> into a new directory.
func copyFiles(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", "asterisk", n))
		if err != nil {
			t.Fatal(err)
		}
		writeConf(t, filepath.Join(dir, filepath.Base(n)), string(b))
	}
	return dir
}

// TestAsteriskSampleConfigs reads the voicemail.conf Asterisk ships (and
// Debian installs), its basic-pbx example and a FreePBX-shaped tree:
// every mailbox app_voicemail loads is seen with the PIN it checks, and
// no settings, comment or zone line is taken for one.
func TestAsteriskSampleConfigs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  []string
	}{
		// [myaliases] holds mailboxes while aliasescontext stays
		// commented out, as in the sample: load_users skips only
		// general, zonemessages and the aliases context.
		{"voicemail.conf.sample", []string{"voicemail.conf.sample"},
			[]string{"1234@default=4242", "1234@devices@myaliases=1234@default", "1234@other=5678"}},
		{"basic-pbx", []string{"basic-pbx-voicemail.conf"},
			[]string{"1101@example=0717", "1102@example=7085", "1103@example=1809", "1104@example=0039", "1105@example=6618",
				"1106@example=9805", "1107@example=7484", "1108@example=7788", "1109@example=5750", "1110@example=3702",
				"1111@example=1878", "1112@example=5497", "1113@example=1637", "1114@example=3717", "1115@example=3088"}},
		{"freepbx", []string{"freepbx/voicemail.conf", "freepbx/vm_general.inc", "freepbx/vm_email.inc"},
			[]string{"1001@default=1234", "1002@default=-4321", "1003@default=83917264", "1004@default=1004"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFiles(t, tc.files...)
			src := &voicemail.Source{Path: filepath.Join(dir, filepath.Base(tc.files[0])), SpoolDir: t.TempDir()}
			got, problems := boxesOf(t, src)
			if !reflect.DeepEqual(got, tc.want) || len(problems) != 0 {
				t.Errorf("mailboxes %q, problems %q\nwant %q", got, problems, tc.want)
			}
		})
	}

	// With aliasescontext set, [myaliases] maps aliases: no mailbox.
	dir := copyFiles(t, "voicemail.conf.sample")
	p := filepath.Join(dir, "voicemail.conf.sample")
	b, _ := os.ReadFile(p)
	writeConf(t, p, strings.Replace(string(b), ";aliasescontext=myaliases", "aliasescontext=myaliases", 1))
	got, problems := boxesOf(t, &voicemail.Source{Path: p, SpoolDir: t.TempDir()})
	if want := []string{"1234@default=4242", "1234@other=5678"}; !reflect.DeepEqual(got, want) || len(problems) != 0 {
		t.Errorf("with aliasescontext: %q %q, want %q", got, problems, want)
	}
}

// TestSampleRewriteTouchesOnlyPINs sets a new PIN on every mailbox line
// of Asterisk's sample and checks the result byte for byte against the
// original with only those PINs replaced.
func TestSampleRewriteTouchesOnlyPINs(t *testing.T) {
	data, err := os.ReadFile("testdata/asterisk/voicemail.conf.sample")
	if err != nil {
		t.Fatal(err)
	}
	f := voicemail.Parse("voicemail.conf", data, "")
	lines := strings.SplitAfter(string(data), "\n")
	for i, e := range f.Entries {
		if err := f.SetPIN(i, "90817"); err != nil {
			t.Fatal(err)
		}
		old := e.Mailbox + " => " + e.PIN
		if l := lines[e.Line-1]; !strings.HasPrefix(l, old) {
			t.Fatalf("line %d %q does not start with %q", e.Line, l, old)
		}
		lines[e.Line-1] = e.Mailbox + " => 90817" + strings.TrimPrefix(lines[e.Line-1], old)
	}
	want := strings.Join(lines, "")
	if len(f.Entries) != 3 {
		t.Fatalf("entries %+v", f.Entries)
	}
	if got := f.Bytes(); !bytes.Equal(got, []byte(want)) {
		t.Errorf("rewrite changed more than the PINs")
	}
}

// TestTemplatesDuplicatesAndStars: app_voicemail never sees a template
// ("[name](!)"); a category inheriting one ("[name](tmpl)") gets its
// lines first; a mailbox defined again (compared case-insensitively) and
// one named "*..." are ignored (find_or_create). None of these lines
// may be judged as a mailbox of its own, nor rewritten.
func TestTemplatesDuplicatesAndStars(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	text := "[general]\n" +
		"[tmpl](!)\n1001 => 1234,Template Line\n" +
		"[sales](tmpl)\n1001 => 4826,Own Line Ignored\n2001 => 839217,Own\n" +
		"[default]\n1001 => 502816,A\n1001 => 1111,A Again\n*1003 => 1234,Star\n" +
		"[Default](+)\n1001 => 2222,A Case\n1002 => 739104,B\n"
	writeConf(t, conf, text)
	src := &voicemail.Source{Path: conf, SpoolDir: t.TempDir()}
	got, problems := boxesOf(t, src)
	want := []string{"1001@sales=1234", "2001@sales=839217", "1001@default=502816", "1002@default=739104"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mailboxes %q, want %q", got, want)
	}
	joined := strings.Join(problems, "\n")
	for _, w := range []string{"voicemail.conf:5: mailbox 1001@sales is defined again (first at " + conf + ":3)",
		"voicemail.conf:9: mailbox 1001@default is defined again", "voicemail.conf:10: mailbox *1003@default begins with '*'",
		"voicemail.conf:12: mailbox 1001@default is defined again"} {
		if !strings.Contains(joined, w) {
			t.Errorf("problems %q lack %q", problems, w)
		}
	}

	// --apply: the inherited PIN lives in the template, shared by every
	// category inheriting it; tollguard leaves it for the admin.
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var weak []string
	for _, f := range run.Findings {
		if f.Check == tollguard.AuditCheckWeakPIN && f.Severity == tollguard.SeverityWarning {
			weak = append(weak, f.Subject)
		}
	}
	if want := []string{"mailbox:1001@sales"}; !reflect.DeepEqual(weak, want) {
		t.Errorf("weak PINs %q, want %q", weak, want)
	}
	if b, _ := os.ReadFile(conf); string(b) != text {
		t.Errorf("the template line was rewritten:\n%s", b)
	}
}

// TestSearchContextsDuplicates: with searchcontexts, a mailbox number
// is one mailbox across contexts; app_voicemail keeps the first.
func TestSearchContextsDuplicates(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "voicemail.conf")
	writeConf(t, conf, "[general]\nsearchcontexts=yes\n[default]\n1001 => 502816\n[other]\n1001 => 1111\n1002 => 739104\n")
	got, problems := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
	if want := []string{"1001@default=502816", "1002@other=739104"}; !reflect.DeepEqual(got, want) || len(problems) != 1 {
		t.Errorf("%q %q, want %q", got, problems, want)
	}
}

// TestGeneralPasswordLocationIsCaseSensitive: actual_load_config
// compares [general] passwordlocation with strcmp, so "SpoolDir" there
// means voicemail.conf (a mailbox's own option is compared ignoring
// case).
func TestGeneralPasswordLocationIsCaseSensitive(t *testing.T) {
	dir, spool := t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[general]\npasswordlocation=SpoolDir\n[default]\n1001 => 502816\n1002 => 739104,B,,,passwordlocation=SpoolDir\n")
	writeConf(t, filepath.Join(spool, "default", "1001", "secret.conf"), "[general]\npassword=1234\n")
	writeConf(t, filepath.Join(spool, "default", "1002", "secret.conf"), "[general]\npassword=4321\n")
	got, problems := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: spool})
	if want := []string{"1001@default=502816", "1002@default=4321"}; !reflect.DeepEqual(got, want) || len(problems) != 0 {
		t.Errorf("%q %q, want %q", got, problems, want)
	}
}

// TestStarPINs: a voicemail.conf PIN starting with "*" can never be
// typed (vm_authenticate jumps to extension a on a leading "*"): it is
// not weak, and --apply leaves it; it is reported as a mailbox nobody
// can open.
func TestStarPINs(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "voicemail.conf")
	text := "[default]\n1001 => *\n1002 => -****,Locked Stars\n"
	writeConf(t, conf, text)
	e, _, _ := env(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range run.Findings {
		got = append(got, string(f.Severity)+" "+f.Subject)
	}
	if want := []string{"info mailbox:1001@default", "info mailbox:1002@default"}; !reflect.DeepEqual(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(conf); string(b) != text {
		t.Errorf("rewritten:\n%s", b)
	}
}

// TestRealtimeStarPasswordIsOpen: app_voicemail's realtime loader
// (apply_options_full) refuses a password starting with "*" and leaves
// the mailbox without one, and vm_authenticate then asks for no PIN:
// the mailbox is open. The audit says so and --apply gives it a PIN.
func TestRealtimeStarPasswordIsOpen(t *testing.T) {
	file := filepath.Join(t.TempDir(), "realtime.sqlite3")
	db, err := sql.Open("sqlite3", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT);
		INSERT INTO voicemail(context, mailbox, password) VALUES ('default', '5001', '*5839201'), ('default', '5002', '-*5839201')`); err != nil {
		t.Fatal(err)
	}
	src := &voicemail.Realtime{DSN: "sqlite3://" + file}
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range run.Findings {
		if f.Check != tollguard.AuditCheckSource { // voicemail_conf is not set
			got = append(got, string(f.Severity)+" "+f.Subject)
		}
	}
	// 5002's "-" comes first, so the value is kept and "*5839201" is
	// what a caller would have to type: nobody can.
	if want := []string{"warning mailbox:5001@default", "info mailbox:5002@default"}; !reflect.DeepEqual(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
	var pw string
	if err := db.QueryRow(`SELECT password FROM voicemail WHERE mailbox = '5001'`).Scan(&pw); err != nil || strings.HasPrefix(pw, "*") || len(pw) < 6 {
		t.Errorf("5001's password %q %v: not replaced", pw, err)
	}
}

// TestExternPassIsReported: with [general] externpass (or
// externpassnotify) another program keeps the PINs as well; a PIN
// written in voicemail.conf does not reach it, so the audit says so.
func TestExternPassIsReported(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[general]\nexternpassnotify=/usr/local/bin/notify\n#include extern.inc\n[default]\n1001 => 502816\n")
	writeConf(t, filepath.Join(dir, "extern.inc"), "externpass=/usr/local/bin/vmpass\n")
	_, problems := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
	if len(problems) != 1 || !strings.Contains(problems[0], "[general] externpass = /usr/local/bin/vmpass: voicemail PINs are also kept by that program") {
		t.Errorf("problems %q", problems)
	}
}

// TestGeneralAsAppVoicemailReadsIt: app_voicemail reads its settings
// from the first [general] that is no template (ast_variable_retrieve),
// with the lines it inherits and those "[general](+)" adds; a second
// [general] is a category of its own, never read. Mailboxes added with
// "[Default](+)" belong to [default], whose secret.conf is under default/.
func TestGeneralAsAppVoicemailReadsIt(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"second [general] ignored",
			"[general]\npasswordlocation=spooldir\n[default]\n1001 => 502816\n1002 => 739104\n" +
				"[general]\npasswordlocation=voicemailconf\nsearchcontexts=yes\naliasescontext=other\n[other]\n1001 => 839201\n",
			[]string{"1001@default=1234", "1002@default=739104", "1001@other=839201"}},
		{"[general] inheriting a template",
			"[gen](!)\npasswordlocation=spooldir\n[general](gen)\n[default]\n1001 => 502816\n",
			[]string{"1001@default=1234"}},
		{"[general](+)",
			"[general]\n[default]\n1001 => 502816\n[general](+)\npasswordlocation=spooldir\n",
			[]string{"1001@default=1234"}},
		{"a template named general is not read",
			"[general](!)\npasswordlocation=spooldir\n[default]\n1001 => 502816\n",
			[]string{"1001@default=502816"}},
		{"[Default](+) is [default]",
			"[general]\npasswordlocation=spooldir\n[default]\n1002 => 739104\n[Default](+)\n1003 => 839201\n",
			[]string{"1002@default=739104", "1003@default=4321"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, spool := t.TempDir(), t.TempDir()
			conf := filepath.Join(dir, "voicemail.conf")
			writeConf(t, conf, tc.conf)
			writeConf(t, filepath.Join(spool, "default", "1001", "secret.conf"), "[general]\npassword=1234\n")
			writeConf(t, filepath.Join(spool, "default", "1003", "secret.conf"), "[general]\npassword=4321\n")
			got, problems := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: spool})
			if !reflect.DeepEqual(got, tc.want) || len(problems) != 0 {
				t.Errorf("%q %q, want %q", got, problems, tc.want)
			}
		})
	}
}

// TestIncludeStartsInCurrentCategory: config.c starts an included file
// in the category opened last, in any file, not in its includer's: after
// an #include that opened [sales], a second #include's first lines are
// [sales] mailboxes, while the includer's own lines stay in [default].
func TestIncludeStartsInCurrentCategory(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[general]\n[default]\n1001 => 502816\n#include sales.inc\n#include more.inc\n1003 => 739104\n")
	writeConf(t, filepath.Join(dir, "sales.inc"), "[sales]\n2001 => 839217\n")
	writeConf(t, filepath.Join(dir, "more.inc"), "2002 => 1234\n")
	got, problems := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
	want := []string{"1001@default=502816", "1003@default=739104", "2001@sales=839217", "2002@sales=1234"}
	if !reflect.DeepEqual(got, want) || len(problems) != 0 {
		t.Errorf("%q %q, want %q", got, problems, want)
	}
}

// TestFirstDefinitionInCategoryOrder: app_voicemail reads mailboxes
// category by category, so with searchcontexts a mailbox "(+)" adds to
// [default] comes before one [other] defined earlier in the file: the
// PIN in force is [default]'s.
func TestFirstDefinitionInCategoryOrder(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "voicemail.conf")
	writeConf(t, conf, "[general]\nsearchcontexts=yes\n[default]\n[other]\n1001 => 839217\n[default](+)\n1001 => 1234\n")
	got, problems := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
	if want := []string{"1001@default=1234"}; !reflect.DeepEqual(got, want) || len(problems) != 1 || !strings.Contains(problems[0], "voicemail.conf:5: mailbox 1001@other is defined again") {
		t.Errorf("%q %q, want %q", got, problems, want)
	}
}

// TestAddToCategoryAsConfigC: "(+)" adds to the first category of that
// name that is no template (a template of the same name is skipped), and
// "(+,tmpl)" adds a template's lines to it as well.
func TestAddToCategoryAsConfigC(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "voicemail.conf")
	writeConf(t, conf, "[general]\n[default](!)\n1009 => 1111\n[tmpl](!)\n2001 => 4321\n[default]\n1001 => 502816\n[default](+,tmpl)\n1002 => 1234\n")
	got, problems := boxesOf(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
	if want := []string{"1001@default=502816", "2001@default=4321", "1002@default=1234"}; !reflect.DeepEqual(got, want) || len(problems) != 0 {
		t.Errorf("%q %q, want %q", got, problems, want)
	}
}

// applyAll asks src to set every mailbox's PIN to 908172 and returns
// the mailboxes it reports and those it changed, as "mailbox@context".
func applyAll(t *testing.T, src *voicemail.Source) (listed, changed []string) {
	t.Helper()
	boxes, _, err := src.Mailboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ch []tollguard.PINChange
	for _, b := range boxes {
		listed = append(listed, b.Key()+"="+b.PIN)
		ch = append(ch, tollguard.PINChange{Mailbox: b, NewPIN: "908172"})
	}
	done, err := src.SetPINs(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range done {
		changed = append(changed, c.Mailbox.Key())
	}
	return listed, changed
}

// TestFileIncludedTwice: config.c reads a file each time it is
// included, so one included in two categories defines mailboxes in
// both; its line is the PIN of both, and tollguard rewrites neither.
func TestFileIncludedTwice(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	main := "[default]\n1000 => 1234\n#include users.inc\n[other]\n#include users.inc\n"
	users := "1001 => 1111,Ann\n"
	writeConf(t, conf, main)
	writeConf(t, filepath.Join(dir, "users.inc"), users)
	src := &voicemail.Source{Path: conf, SpoolDir: t.TempDir()}
	_, problems := boxesOf(t, src)
	listed, changed := applyAll(t, src)
	if want := []string{"1000@default=1234", "1001@default=1111", "1001@other=1111"}; !reflect.DeepEqual(listed, want) {
		t.Errorf("mailboxes %q, want %q", listed, want)
	}
	if want := []string{"1000@default"}; !reflect.DeepEqual(changed, want) {
		t.Errorf("changed %q, want %q", changed, want)
	}
	if !strings.Contains(strings.Join(problems, "\n"), "users.inc is included 2 times") {
		t.Errorf("problems %q", problems)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "users.inc")); string(b) != users {
		t.Errorf("users.inc rewritten: %q", b)
	}
	if b, _ := os.ReadFile(conf); string(b) != strings.Replace(main, "1234", "908172", 1) {
		t.Errorf("voicemail.conf: %q", b)
	}
}

// TestLineInheritedByAnotherCategory: "[b](a)" copies [a]'s lines, so
// [a]'s own line is 1001@b's PIN as well; a new PIN there would change
// a mailbox the audit never reported, so it is left alone.
func TestLineInheritedByAnotherCategory(t *testing.T) {
	applyText(t, "[a]\n1001 => 1111\n[b](a)\n1002 => 2222\n",
		[]string{"1001@a=1111", "1001@b=1111", "1002@b=2222"}, []string{"1002@b"},
		"[a]\n1001 => 1111\n[b](a)\n1002 => 908172\n")
}

// applyText writes text as a voicemail.conf, applies a new PIN to every
// mailbox (applyAll), and wants the mailboxes listed, those changed and
// the file after.
func applyText(t *testing.T, text string, listed, changed []string, after string) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "voicemail.conf")
	writeConf(t, conf, text)
	gotListed, gotChanged := applyAll(t, &voicemail.Source{Path: conf, SpoolDir: t.TempDir()})
	if !reflect.DeepEqual(gotListed, listed) {
		t.Errorf("mailboxes %q, want %q", gotListed, listed)
	}
	if !reflect.DeepEqual(gotChanged, changed) {
		t.Errorf("changed %q, want %q", gotChanged, changed)
	}
	if b, _ := os.ReadFile(conf); string(b) != after {
		t.Errorf("voicemail.conf: %q, want %q", b, after)
	}
}

// TestEscapedAndAppendedLines: config.c drops a leading "\" of a name,
// and takes "name += text" for "name = text" when the category has no
// "name" line yet, else appends text to that line's value (so the PIN
// Asterisk checks is partly on the "+=" line: not rewritten).
func TestEscapedAndAppendedLines(t *testing.T) {
	applyText(t, "[default]\n\\1001 => 1111,Ann\n1002 += 2222,Bob\n1003 => 12\n1003 +=34,Cy\n1004 => 4444,Di\n1004 += ,x\n",
		[]string{"1001@default=1111", "1002@default=2222", "1003@default=1234", "1004@default=4444"}, []string{"1001@default", "1002@default"},
		"[default]\n\\1001 => 908172,Ann\n1002 += 908172,Bob\n1003 => 12\n1003 +=34,Cy\n1004 => 4444,Di\n1004 += ,x\n")
}
