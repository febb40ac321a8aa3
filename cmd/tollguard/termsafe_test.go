package main

import (
	"bytes"
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
		{"del\x7f", `del\x7f`},
	} {
		if got := safeText(tc.in); got != tc.want {
			t.Errorf("safeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A rune split across writes is held, not mangled.
	var b bytes.Buffer
	w := &termSafe{w: &b}
	euro := []byte("€\u009b")
	for _, c := range euro {
		w.Write([]byte{c})
	}
	if b.String() != `€\u009b` {
		t.Errorf("byte-wise writes gave %q", b.String())
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
}
