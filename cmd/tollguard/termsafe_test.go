package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestTermSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain\ttab\nline", "plain\ttab\nline"},
		{"\x1b[2Jcleared", `\x1b[2Jcleared`},
		{"title\x1b]0;pwned\x07", `title\x1b]0;pwned\x07`},
		{"c1 \u009b31m csi", `c1 \u009b31m csi`},
		{"crlf\r\n", "crlf\\x0d\n"},
		{"ünïcode €", "ünïcode €"},
		{"del\x7f", `del\u007f`},
		{"latin-1 \x9b2J and M\xfcller", `latin-1 \x9b2J and M\xfcller`},
		{"cut \xe2\x82", `cut \xe2\x82`},
	} {
		if got := safeText(tc.in); got != tc.want {
			t.Errorf("safeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// JSON stays JSON, and reads back the same string.
	ua := "Yealink\x7fX\u0085\x1b[2J"
	b, _ := json.Marshal(map[string]string{"user_agent": ua})
	var back map[string]string
	if err := json.Unmarshal([]byte(safeText(string(b))), &back); err != nil || back["user_agent"] != ua {
		t.Errorf("JSON through termSafe: %v, %q", err, back["user_agent"])
	}
}

// TestCLIEscapesWhatOutsidersWrite: a name the admin did not choose
// (here an account name given on the command line, as any stored text
// is printed) reaches the terminal escaped, in tables and errors.
func TestCLIEscapesWhatOutsidersWrite(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("account", "set", "acme", "--name", "Acme\x1b]0;pwned\x07 Ltd")
	out := c.ok("account", "list")
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `Acme\x1b]0;pwned\x07 Ltd`) {
		t.Errorf("account list printed raw control characters:\n%q", out)
	}
	_, _, errs := c.run("account", "show", "no\x1b[2Jsuch")
	if strings.ContainsRune(errs, 0x1b) {
		t.Errorf("error printed raw control characters: %q", errs)
	}
	// An error that carries the text raw (an os error naming a path),
	// not quoted by whoever built it.
	_, _, errs = c.run("rates", "import", filepath.Join(t.TempDir(), "no\x1b[2Jsuch.csv"))
	if strings.ContainsRune(errs, 0x1b) || !strings.Contains(errs, `no\x1b[2Jsuch.csv`) {
		t.Errorf("error printed raw control characters: %q", errs)
	}
}
