package tollguard_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tollguard/tollguard"
)

func TestPINUnusable(t *testing.T) {
	for pin, want := range map[string]string{
		"*1234":      "begins with '*'",
		"2222 ":      `is "2222 " with its blanks`, // "2222 ,Bob": append_mailbox keeps the blank
		"22 22":      "blank",
		"\t3333":     `is "\t3333" with its blanks`, // a realtime SQLite value as stored
		"4444\n":     `(the PIN is then "4444"`,
		"\x01839217": "blanks",
		"2222":       "",
		"":           "",
	} {
		got := tollguard.PINUnusableReason(pin)
		if (want == "") != (got == "") || !strings.Contains(got, want) || tollguard.PINUnusable(pin) != (want != "") {
			t.Errorf("PINUnusableReason(%q) = %q, want %q", pin, got, want)
		}
	}
}

func TestPINWeakness(t *testing.T) {
	for _, tc := range []struct {
		name, pin, mailbox string
		want               []string // substrings, in order; nil = strong
	}{
		{"Strong", "839217", "1003", nil},
		{"StrongLong", "4831967204", "1007", nil},
		{"Common4", "1234", "5000", []string{"common-PIN list", "ascending", "shorter than 6"}},
		{"Common6Keypad", "147258", "5000", []string{"common-PIN list"}},
		{"DataGenetics2580", "2580", "5000", []string{"common-PIN list", "shorter"}},
		{"Mailbox", "100100", "100100", []string{"equal to the mailbox"}},
		{"MailboxReversed", "654321", "123456", []string{"mailbox number reversed", "descending"}},
		{"Repeated", "777777", "5000", []string{"one repeated digit"}},
		{"Ascending", "345678", "5000", []string{"ascending"}},
		{"AscendingWraps", "789012", "5000", []string{"ascending"}},
		{"Descending", "987654", "5000", []string{"descending"}},
		{"Short", "5821", "5000", []string{"shorter than 6 digits (4)"}},
		{"Empty", "", "5000", []string{"empty"}},
		{"TwoDigitsNotARun", "59", "5000", []string{"shorter"}},
		// Untypable, so not weak: PINUnusable reports them.
		{"Star", "*1234", "5000", nil},
		{"BlankBeforeComma", "2222 ", "5000", nil},
		{"TabBeforeComma", "2222\t", "5000", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tollguard.PINWeakness(tc.pin, tc.mailbox, 6)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d reasons like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("reason %d %q lacks %q", i, got[i], w)
				}
			}
		})
	}
	if !tollguard.IsCommonPIN("1111") || tollguard.IsCommonPIN("# DataGenetics top 20 (4 digits)") {
		t.Error("common-PIN list not loaded as data lines")
	}
}

func TestPasswordWeakness(t *testing.T) {
	s := tollguard.DefaultAuditSettings()
	for _, tc := range []struct {
		name, pw, user, ext string
		want                []string
	}{
		{"RecordedStrong", "Str0ng!Pass-1001", "1001", "1001", nil},
		{"Generated", "k7Qp-x2Lm9.vR4tZ8wNc3Hy_", "1009", "1009", nil},
		{"Default", "1234", "1002", "1002", []string{"well-known default", "shorter than 12", "zxcvbn score 0"}},
		{"DefaultWord", "password", "1003", "1003", []string{"well-known default", "shorter than 12", "zxcvbn"}},
		{"Username", "Alice-Office", "alice-office", "2001", []string{"equal to the username", "zxcvbn score 0"}},
		{"Extension", "2001", "alice", "2001", []string{"equal to the extension", "shorter", "zxcvbn"}},
		{"ShortButRandom", "x7#Qk9!v", "1", "1", []string{"shorter than 12 characters (8)", "zxcvbn score 2"}},
		{"LongButGuessable", "passwordpassword", "1", "1", []string{"zxcvbn"}},
		{"Empty", "", "1", "1", []string{"empty"}},
		// zxcvbn alone scores it 3 (three dictionary words, 10^8).
		{"OwnNumberTwice", "1001pass1001", "1001", "1001", []string{"guessable once the line's own names and numbers are taken out: zxcvbn score 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tollguard.PasswordWeakness(tc.pw, tc.user, tc.ext, s)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want reasons like %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("reason %d %q lacks %q", i, got[i], w)
				}
			}
		})
	}
}

// A line's caller ID, description and account name are known to an
// attacker as well as its number.
func TestPasswordWeaknessKnownNames(t *testing.T) {
	s := tollguard.DefaultAuditSettings()
	for _, pw := range []string{"AcmeCorp1001!"} {
		if why := tollguard.PasswordWeakness(pw, "1001", "1001", s); why != nil {
			t.Fatalf("%q without its line's names: %q, want strong (the test needs a password zxcvbn passes)", pw, why)
		}
		why := tollguard.PasswordWeakness(pw, "1001", "1001", s, "Alice Smith <1001>", "Reception", "acme", "Acme Corp")
		if len(why) != 1 || !strings.Contains(why[0], "names and numbers") {
			t.Errorf("%q: %q, want it weak once the line's names are taken out", pw, why)
		}
	}
	if why := tollguard.PasswordWeakness("Str0ng!Pass-1001", "1001", "1001", s, "Alice Smith", "acme"); why != nil {
		t.Errorf("a strong password that holds the extension: %q", why)
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		pw, err := tollguard.GeneratePassword(nil2rand(), 24)
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != 24 || seen[pw] {
			t.Fatalf("password %q (len %d, repeated %v)", pw, len(pw), seen[pw])
		}
		seen[pw] = true
		if strings.ContainsAny(pw, ";#,\"'\\ =:@<>&01lIoO") {
			t.Errorf("password %q has a character that needs quoting somewhere or looks like another", pw)
		}
		if why := tollguard.PasswordWeakness(pw, "1009", "1009", tollguard.DefaultAuditSettings()); why != nil {
			t.Errorf("generated password %q judged weak: %q", pw, why)
		}
	}
	if pw, _ := tollguard.GeneratePassword(nil2rand(), 8); len(pw) != tollguard.MinGeneratedPassword {
		t.Errorf("short request gave %d characters, want the minimum %d", len(pw), tollguard.MinGeneratedPassword)
	}
	// Bytes at or above the largest multiple of the alphabet are thrown
	// away, not folded (no modulo bias): 255s are all rejected.
	src := bytes.NewReader(append(bytes.Repeat([]byte{255}, 100), bytes.Repeat([]byte{0}, 100)...))
	pw, err := tollguard.GeneratePassword(src, 20)
	if err != nil || pw != strings.Repeat("A", 20) {
		t.Errorf("got %q, %v", pw, err)
	}
	if _, err := tollguard.GeneratePassword(iotest.ErrReader(errors.New("no entropy")), 20); err == nil {
		t.Error("a failing random source gave a password")
	}
	pin, err := tollguard.GeneratePIN(nil2rand(), 8)
	if err != nil || len(pin) != 8 || strings.Trim(pin, "0123456789") != "" {
		t.Errorf("PIN %q, %v", pin, err)
	}
}

func TestAuditJobNamed(t *testing.T) {
	var names []string
	for _, j := range tollguard.AuditJobs() {
		got, err := tollguard.AuditJobNamed(j.Name())
		if err != nil || got.Name() != j.Name() {
			t.Errorf("%s: %v", j.Name(), err)
		}
		names = append(names, j.Name())
	}
	if want := []string{"stale", "tests", "pins", "passwords", "quotas", "spend", "coverage"}; !reflect.DeepEqual(names, want) {
		t.Errorf("jobs %q, want %q", names, want)
	}
	if _, err := tollguard.AuditJobNamed("nope"); tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), "stale, tests") {
		t.Errorf("unknown job: %v", err)
	}
	if _, err := tollguard.CompileTestPatterns([]string{"("}); tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Errorf("bad pattern: %v", err)
	}
}

func TestValidExtensionName(t *testing.T) {
	for name, ok := range map[string]bool{"1001": true, "alice.office": true, "sales-1": true, "": false, "anonymous": false,
		"a;b": false, "a@b": false, "a/b": false, "-x": false, "a b": false, strings.Repeat("9", 64): false} {
		if err := tollguard.ValidExtensionName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// A password tollguard generates passes its own audit whatever the
// line is called, even when a name's word occurs in it (a 3-character
// one does in about 1 of 1,400 passwords): judged weak, apply =
// ["passwords"] would rotate it on every run.
func TestGeneratedPasswordStrongWithItsLineNames(t *testing.T) {
	s := tollguard.DefaultAuditSettings()
	for range 300 {
		pw, err := tollguard.GeneratePassword(nil2rand(), tollguard.MinGeneratedPassword)
		if err != nil {
			t.Fatal(err)
		}
		// Worse than any real line: two of its names are cut from the
		// password itself (7 of its 20 characters).
		known := []string{"Alice Smith <2345>", pw[0:3] + " Smith", "Front desk " + pw[10:14], "Acme Corp"}
		if why := tollguard.PasswordWeakness(pw, "2345", "2345", s, known...); why != nil {
			t.Errorf("generated password %q judged weak with names %q: %q", pw, known, why)
		}
	}
}
