package voicemail

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSample(t *testing.T) {
	tree, err := Load("testdata/etc/voicemail.conf", "")
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		File, Context, Mailbox, PIN string
		Locked                      bool
		Name, Email                 string
	}
	var entries []got
	for _, f := range tree.Files {
		for _, e := range f.Entries {
			entries = append(entries, got{filepath.Base(f.Path), e.Context, e.Mailbox, e.PIN, e.Locked, e.FullName, e.Email})
		}
	}
	want := []got{
		{"voicemail.conf", "default", "1234", "4242", false, "Example Mailbox", "root@localhost"},
		{"voicemail.conf", "default", "1001", "1001", false, "Alice Able", "alice@example.com"},
		{"voicemail.conf", "default", "1002", "1111", true, "Bob Baker", "bob@example.com"},
		// append_mailbox keeps the blank before the comma (strsep, no
		// trim): this PIN cannot be typed.
		{"voicemail.conf", "default", "1003", "839217 ", false, "Carol Chen", "carol@example.com"},
		{"voicemail.conf", "default", "1004", "2580", false, "Dan Doe", "dan@example.com"},
		// Asterisk joins the text around an inline block comment.
		{"voicemail.conf", "default", "1006", "5012", false, "ErinEve", "erin@example.com"},
		{"voicemail.conf", "default", "1007", "4831967204", false, "Frank Long PIN", "frank@example.com"},
		{"voicemail.conf", "default", "1008", "4321", false, "Grace After Include", "grace@example.com"},
		{"voicemail.conf", "other", "2001", "123456", false, "Heidi", "heidi;x@example.com"},
		{"voicemail.conf", "other", "2002", "9753", false, "Ivan Spaces", "ivan@example.com"},
		{"voicemail.conf", "default", "1009", "1212 ", false, "Olivia Appended", ""},
		// Included files: the glob is read in name order; a file with no
		// [context] of its own continues the includer's.
		{"no-context.conf", "default", "4001", "4001", false, "Leo Inherits", "leo@example.com"},
		{"no-context.conf", "support", "4002", "2468", false, "Mallory Support", "mallory@example.com"},
		{"sales.conf", "sales", "3001", "0000", false, "Judy CRLF", "judy@example.com"},
		{"sales.conf", "sales", "3002", "620493", false, "Ken CRLF", "ken@example.com"},
	}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", entries, want)
	}
	if len(tree.Problems) != 0 {
		t.Errorf("problems in a valid sample: %q", tree.Problems)
	}
}

func TestParseComments(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // context/mailbox=pin
	}{
		{"LineComment", "[default]\n;1000 => 1234\n1001 => 1111 ; 1002 => 2222\n", []string{"default/1001=1111"}},
		{"EscapedSemicolon", "[default]\n1001 => 12\\;34,x\n", []string{`default/1001=12\;34`}},
		{"BlockOverLines", "[default]\n;--\n1000 => 1234\n--;\n1001 => 5678\n", []string{"default/1001=5678"}},
		{"NestedBlock", "[default]\n;-- a ;-- b --; 1000 => 1 --;1001 => 2\n", []string{"default/1001=2"}},
		{"FourDashesIsLineComment", "[default]\n;---- 1000 => 1\n1001 => 2\n", []string{"default/1001=2"}},
		{"SettingsSections", "[general]\nmaxmsg=100\n[zonemessages]\neastern=America/New_York|x\n[Default]\n1 => 2\n", []string{"Default/1=2"}},
		{"AppendIsLeftToTheLoader", "[default]\n1001 => 1111\n1001 += ,more\n", []string{"default/1001=1111"}},
		{"EscapedName", "[default]\n\\1001 => 1111\n", []string{"default/1001=1111"}},
		{"EmptyPIN", "[default]\n1001 =>\n1002 => ,Name\n", []string{"default/1001=", "default/1002="}},
		{"NoContext", "1001 => 1111\n", nil},
		{"CRLF", "[default]\r\n1001 => 1111\r\n", []string{"default/1001=1111"}},
		// config.c counts a "--;" outside a block comment: the line is
		// read whole, the next ones skipped until a ";--".
		{"StrayBlockEnd", "[default]\n1001 => 4826,A --; moved\n1002 => 1234\n;--\n1003 => 1111\n--;\n1004 => 2222\n",
			[]string{"default/1001=4826", "default/1003=1111"}},
		// fgets into BUFSIZ: a longer line is skipped, ";--" and all.
		{"LongLineSkipped", "[default]\n1001 => 1234," + strings.Repeat("x", 8200) + ";--\n1002 => 4826\n", []string{"default/1002=4826"}},
		{"NULEndsLine", "[default]\n1001 => 1234\x00;--\n1002 => 4826\n", []string{"default/1001=1234", "default/1002=4826"}},
		{"CommentInsidePIN", "[default]\n1001 => 12;-- x --;34,Name\n", []string{"default/1001=1234"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Parse("x.conf", []byte(tc.text), "")
			var got []string
			for _, e := range f.Entries {
				if !e.appendOp {
					got = append(got, e.Context+"/"+e.Mailbox+"="+e.PIN)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if b := f.Bytes(); string(b) != tc.text {
				t.Errorf("unchanged file does not round-trip: %q", b)
			}
		})
	}
}

func TestLoadProblems(t *testing.T) {
	tree, err := Load("testdata/broken.conf", "testdata")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(tree.Problems, "\n")
	for _, want := range []string{"#include missing-for-sure.conf: no such file", "#exec /usr/local/bin/make-mailboxes is not run"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems %q lack %q", tree.Problems, want)
		}
	}
	if _, err := Load("testdata/nope.conf", ""); err == nil {
		t.Error("a missing top file is not an error")
	}
}

// TestIncludeLoop: config.c reads a file each time it is included, a
// loop down to the include depth limit; such files' PINs are audited
// but not rewritten.
func TestIncludeLoop(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.conf"), "[default]\n#include b.conf\n1 => 1\n")
	write(t, filepath.Join(dir, "b.conf"), "#include a.conf\n2 => 2\n")
	tree, err := Load(filepath.Join(dir, "a.conf"), "")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(tree.Problems, "\n")
	if len(tree.Files) != maxIncludeDepth || !strings.Contains(joined, "a.conf is included 5 times") || !strings.Contains(joined, "b.conf is included 5 times") {
		t.Errorf("files %d, problems %q", len(tree.Files), tree.Problems)
	}
	for _, f := range tree.Files {
		if !f.multi {
			t.Errorf("%s is marked rewritable", f.Path)
		}
	}
}

// TestIncludeGlobSkipsDotFiles: as glob(3) in Asterisk, a wildcard does
// not match dot-files, such as the backups a PIN rewrite leaves beside
// the file; a pattern that names them does.
func TestIncludeGlobSkipsDotFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "vm.d"), 0o700)
	write(t, filepath.Join(dir, "voicemail.conf"), "[default]\n#include vm.d/*\n")
	write(t, filepath.Join(dir, "vm.d", "users.conf"), "1001 => 4826,Ann\n")
	write(t, filepath.Join(dir, "vm.d", ".users.conf.tollguard-1.bak"), "1001 => 1234,Ann\n")
	tree, err := Load(filepath.Join(dir, "voicemail.conf"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Files) != 2 {
		var names []string
		for _, f := range tree.Files {
			names = append(names, f.Path)
		}
		t.Errorf("files %q: the backup was read", names)
	}
}

// TestSetPINGolden rewrites the sample's weak PINs with fixed new ones
// and compares every file with golden copies edited by hand: only the
// PIN bytes differ, CRLF endings, the missing final newline, comments,
// "=" vs "=>", spacing and the options after each PIN all survive.
func TestSetPINGolden(t *testing.T) {
	newPINs := map[string]string{
		"default/1234": "739104", "default/1001": "582046", "default/1002": "604918", "default/1004": "417352",
		"default/1006": "936027", "default/1008": "250819", "other/2001": "847260", "other/2002": "318594",
		"default/1009": "503718", "sales/3001": "725913", "default/4001": "093857", "support/4002": "661029",
	}
	tree, err := Load("testdata/etc/voicemail.conf", "")
	if err != nil {
		t.Fatal(err)
	}
	set := 0
	for _, f := range tree.Files {
		for i, e := range f.Entries {
			if pin, ok := newPINs[e.Context+"/"+e.Mailbox]; ok {
				if err := f.SetPIN(i, pin); err != nil {
					t.Fatal(err)
				}
				set++
			}
		}
		rel, _ := filepath.Rel("testdata/etc", f.Path)
		want, err := os.ReadFile(filepath.Join("testdata/golden", rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Bytes(); string(got) != string(want) {
			t.Errorf("%s:\n got %q\nwant %q", rel, got, want)
		}
	}
	if set != len(newPINs) {
		t.Errorf("set %d PINs, want %d", set, len(newPINs))
	}
	if err := tree.Files[0].SetPIN(0, "12a4"); err == nil {
		t.Error("a non-digit PIN was accepted")
	}
	split := Parse("x.conf", []byte("[default]\n1001 => 12;-- x --;34,Name\n"), "")
	if err := split.SetPIN(0, "739104"); err == nil {
		t.Error("a PIN with a comment inside was rewritten (the comment would be lost)")
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestIncludeBraces: Asterisk globs #include patterns with GLOB_BRACE,
// so "vm_{sales,support}.conf" reads both files, each alternative's
// matches in turn.
func TestIncludeBraces(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "voicemail.conf"), "[default]\n#include vm_{support,sa{les,ndbox}}.conf\n")
	write(t, filepath.Join(dir, "vm_sales.conf"), "1001 => 4826\n")
	write(t, filepath.Join(dir, "vm_support.conf"), "1002 => 1234\n")
	tree, err := Load(filepath.Join(dir, "voicemail.conf"), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range tree.Boxes() {
		got = append(got, b.Entry().Mailbox+"@"+b.Context)
	}
	if want := []string{"1002@default", "1001@default"}; !reflect.DeepEqual(got, want) || len(tree.Problems) != 0 {
		t.Errorf("mailboxes %q, problems %q; want %q", got, tree.Problems, want)
	}
	if got := expandBraces("a{b,c{d,e}}f{g"); !reflect.DeepEqual(got, []string{"abf{g", "acdf{g", "acef{g"}) {
		t.Errorf("expandBraces: %q", got)
	}
}
