package tollguard

import (
	"fmt"
	"unicode/utf8"
)

// ValidText returns an EINVALID error when s, a name, note or reason an
// admin gives, holds a control character (line break, tab, ESC, DEL, a
// C1 control) or a byte that is not UTF-8, naming field and the byte's
// position (from 1). The CLI shows such text escaped, but stored it
// reaches logs, alerts, CSV exports and Asterisk as it is. Any other
// Unicode passes: SIP caller names are UTF-8.
func ValidText(field, s string) error {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return Errorf(EINVALID, "%s %q: byte %d (0x%02x) is not UTF-8; write the text in UTF-8 (a Latin-1 file converts with iconv -f latin1 -t utf-8)", field, s, i+1, s[i])
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return Errorf(EINVALID, "%s %q: byte %d is a control character (%s); write the text on one line, without tabs or control characters", field, s, i+1, controlName(r))
		}
		i += size
	}
	return nil
}

func controlName(r rune) string {
	switch r {
	case '\n':
		return "a line break"
	case '\r':
		return "a carriage return"
	case '\t':
		return "a tab"
	case 0x1b:
		return "ESC"
	}
	return fmt.Sprintf("U+%04X", r)
}
