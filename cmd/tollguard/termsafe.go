package main

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// termSafe writes what the CLI prints with control characters shown as
// \xNN, not sent: a user agent, caller name or account name comes from
// outside (a phone with stolen credentials picks its user agent), and an
// escape sequence in it would drive the admin's terminal. Tab and
// newline, which lay the tables out, pass. JSON needs nothing: the
// encoder escapes these already (and \u0085-style text decodes back to
// the same string).
type termSafe struct {
	w       io.Writer
	pending []byte // a rune split across writes
}

func (t *termSafe) Write(p []byte) (int, error) {
	in := p
	if len(t.pending) > 0 {
		in = append(t.pending, p...)
		t.pending = nil
	}
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		c := in[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
				out = fmt.Appendf(out, `\x%02x`, c)
			} else {
				out = append(out, c)
			}
			i++
			continue
		}
		if !utf8.FullRune(in[i:]) {
			t.pending = append([]byte(nil), in[i:]...)
			break
		}
		r, size := utf8.DecodeRune(in[i:])
		if r >= 0x80 && r <= 0x9f { // C1 controls: CSI and OSC in one byte pair
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, in[i:i+size]...)
		}
		i += size
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// safeText is s as termSafe prints it, for messages built outside it.
func safeText(s string) string {
	var b stringWriter
	(&termSafe{w: &b}).Write([]byte(s))
	return string(b)
}

type stringWriter []byte

func (s *stringWriter) Write(p []byte) (int, error) { *s = append(*s, p...); return len(p), nil }
