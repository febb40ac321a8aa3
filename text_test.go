package tollguard_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tollguard/tollguard"
)

// TestValidText: control characters and bytes that are not UTF-8 are
// refused with the field and the byte's position (from 1); any other
// Unicode passes, names in other scripts above all.
func TestValidText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want string // "" = accepted; else what the message must hold
	}{
		{"", ""},
		{"Acme Ltd", ""},
		{"株式会社アクメ", ""},
		{"Zoë's café — Ünïcode ☎ 🎉", ""},
		{"\u00a0non-breaking", ""},
		{"U+FFFD itself \ufffd", ""},
		{"right-to-left עברית", ""},
		{"Acme\nLtd", "byte 5 is a control character (a line break)"},
		{"\tAcme", "byte 1 is a control character (a tab)"},
		{"Acme\r", "byte 5 is a control character (a carriage return)"},
		{"red\x1b[31m", "byte 4 is a control character (ESC)"},
		{"nul\x00", "byte 4 is a control character (U+0000)"},
		{"del\x7f", "byte 4 is a control character (U+007F)"},
		{"csi\u009b", "byte 4 is a control character (U+009B)"},
		{"nel\u0085x", "byte 4 is a control character (U+0085)"},
		{"é\x1b", "byte 3 is a control character (ESC)"},
		{"Caf\xe9", "byte 4 (0xe9) is not UTF-8"},
		{"\xff", "byte 1 (0xff) is not UTF-8"},
		{"ok\xc3", "byte 3 (0xc3) is not UTF-8"},       // cut short
		{"\xed\xa0\x80", "byte 1 (0xed) is not UTF-8"}, // a surrogate
		{"\xc0\xaf", "byte 1 (0xc0) is not UTF-8"},     // overlong
	} {
		err := tollguard.ValidText("--name", tc.s)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q refused: %v", tc.s, err)
		case tc.want != "" && err == nil:
			t.Errorf("%q accepted", tc.s)
		case tc.want != "" && (tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(tollguard.ErrorMessage(err), "--name ")):
			t.Errorf("%q: %v (code %s), want it to name --name and say %q", tc.s, err, tollguard.ErrorCode(err), tc.want)
		case err != nil && (strings.ContainsFunc(err.Error(), unicode.IsControl) || !utf8.ValidString(err.Error())):
			t.Errorf("%q: the message holds the raw bytes: %q", tc.s, err.Error())
		}
	}
}
