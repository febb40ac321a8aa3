package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// termSafe writes what the CLI prints with control characters shown as
// escapes, not sent: a user agent, caller name or account name comes
// from outside (a phone with stolen credentials picks its user agent),
// and an escape sequence in it would drive the admin's terminal. Tab and
// newline, which lay the tables out, pass. C0 controls become \xNN; DEL
// and C1 controls become \uNNNN, which JSON reads back as the same
// character (encoding/json escapes C0 itself but not those). A byte that
// is not valid UTF-8 (0x9b alone is CSI on an 8-bit terminal) becomes
// \xNN: JSON never holds one, since the encoder replaces invalid UTF-8.
// The CLI writes whole strings, so a character is never split across
// writes.
type termSafe struct{ w io.Writer }

func (t *termSafe) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0x7f:
				out = append(out, `\u007f`...)
			case c < 0x20 && c != '\t' && c != '\n':
				out = fmt.Appendf(out, `\x%02x`, c)
			default:
				out = append(out, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = fmt.Appendf(out, `\x%02x`, c)
		case r >= 0x80 && r <= 0x9f: // C1 controls: CSI and OSC in one character
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, p[i:i+size]...)
		}
		i += size
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// oneLine is s with tab and newline escaped too, as termSafe escapes
// the other controls: for a value printed within a line (a dialled
// string is whatever the caller or admin typed), where they would break
// the line or the table.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\t\n\r") {
		return s
	}
	// CR too: where the output is not a terminal (a file, a mail from
	// cron) termSafe's escape is all there is.
	return strings.NewReplacer("\t", `\x09`, "\n", `\x0a`, "\r", `\x0d`).Replace(s)
}

// safeText is s as termSafe prints it, for messages built outside it.
func safeText(s string) string {
	var b strings.Builder
	(&termSafe{w: &b}).Write([]byte(s))
	return b.String()
}
