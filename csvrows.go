package tollguard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// maxReported caps the bad rows one error lists: an admin fixes the
// first fifty and runs the import again, and a wrong file does not
// produce a fifty-thousand-line message.
const maxReported = 50

// rowErrors collects the bad rows of an admin's CSV file, so that one
// run reports every problem with its line number, not just the first.
type rowErrors struct {
	what string // "rate deck", "high-risk list"
	n    int
	msgs []string
}

func (e *rowErrors) add(line int, format string, args ...any) {
	e.n++
	if len(e.msgs) < maxReported {
		e.msgs = append(e.msgs, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
}

// err returns the collected rows as one EINVALID error, or nil.
func (e *rowErrors) err() error {
	if e.n == 0 {
		return nil
	}
	var b strings.Builder
	rows := "rows"
	if e.n == 1 {
		rows = "row"
	}
	them := "them"
	if e.n == 1 {
		them = "it"
	}
	fmt.Fprintf(&b, "%s: %d bad %s; fix %s and try again:", e.what, e.n, rows, them)
	for _, m := range e.msgs {
		b.WriteString("\n  ")
		b.WriteString(m)
	}
	if e.n > len(e.msgs) {
		fmt.Fprintf(&b, "\n  ... and %d more", e.n-len(e.msgs))
	}
	return Errorf(EINVALID, "%s", b.String())
}

// normPrefix turns a prefix as carriers write it ("+44 20", " 4420")
// into E.164 digits without the "+", or says what is wrong with it.
func normPrefix(s string) (string, string) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	if strings.ContainsAny(s, " \t") {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, s)
	}
	switch {
	case s == "":
		return "", "prefix is empty"
	case !allDigits(s):
		return "", fmt.Sprintf("prefix %q: digits only, in E.164 form without the + (e.g. 4420)", clip(s))
	case s[0] == '0':
		return "", fmt.Sprintf("prefix %q starts with 0: write it in E.164 form, without an international or national prefix (44..., not 0044...)", clip(s))
	case len(s) > 15:
		return "", fmt.Sprintf("prefix %q: longer than any E.164 number (15 digits)", clip(s))
	}
	return s, ""
}

// clip shortens a bad value quoted back to the admin.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max]) + "..."
}

// stripBOM removes the UTF-8 byte order mark spreadsheets put in front
// of CSV exports.
func stripBOM(s string) string { return strings.TrimPrefix(s, "\ufeff") }

// guessSep picks the field separator of a CSV line: the one of ',', ';'
// and tab that occurs most often outside quotes (',' on a tie).
// Spreadsheets in much of Europe export with ';'.
func guessSep(line string) rune {
	var n [3]int
	quoted := false
	for _, c := range line {
		switch c {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				n[0]++
			}
		case ';':
			if !quoted {
				n[1]++
			}
		case '\t':
			if !quoted {
				n[2]++
			}
		}
	}
	switch {
	case n[1] > n[0] && n[1] >= n[2]:
		return ';'
	case n[2] > n[0] && n[2] > n[1]:
		return '\t'
	}
	return ','
}

// firstLines returns up to max lines from the start of br's buffer
// without consuming them, with a BOM and line ends removed.
func firstLines(br *bufio.Reader, max int) ([]string, error) {
	buf, err := br.Peek(br.Size())
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, err
	}
	s := stripBOM(string(buf))
	var lines []string
	for len(lines) < max && s != "" {
		line, rest, _ := strings.Cut(s, "\n")
		lines = append(lines, strings.TrimSuffix(line, "\r"))
		s = rest
	}
	return lines, nil
}

// notText returns an EINVALID error naming what (a rate deck, the
// high-risk list) when br's file is no CSV text but a form carriers
// send decks in: UTF-16 (Excel's "Unicode Text", a NUL between every
// letter read as UTF-8), an .xlsx workbook or a ZIP, a gzip file. Each
// was refused as having no header row, with no word of why.
func notText(br *bufio.Reader, what string) error {
	b, _ := br.Peek(64)
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return Errorf(EINVALID, "%s: the file is a ZIP archive (an .xlsx workbook, or a zipped CSV), not CSV: save the sheet as \"CSV UTF-8\" from the spreadsheet, or unzip it, and import that", what)
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return Errorf(EINVALID, "%s: the file is gzip-compressed: gunzip it and import the CSV", what)
	}
	utf16 := len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff)
	if !utf16 && len(b) >= 4 {
		// No byte order mark: ASCII text with every other byte NUL.
		nul := 0
		for _, c := range b {
			if c == 0 {
				nul++
			}
		}
		utf16 = nul*3 >= len(b)
	}
	if utf16 {
		return Errorf(EINVALID, "%s: the file is UTF-16 text (Excel's \"Unicode Text\"), not CSV: save it as \"CSV UTF-8\" (or CSV) and import that", what)
	}
	return nil
}

// bareCRLines returns a reader over br's file in which, if the file ends
// its lines with a bare CR (classic Mac exports, still written by some
// spreadsheet tools), each CR is a newline. encoding/csv keeps a lone CR
// inside the field, so such a file would read as one endless header row.
// The test is the first buffer: CRs and no LF at all. A read error is
// returned: Peek hands it over once, and later reads would not see it.
func bareCRLines(br *bufio.Reader) (*bufio.Reader, error) {
	buf, err := br.Peek(br.Size())
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, err
	}
	if !bytes.Contains(buf, []byte{'\r'}) || bytes.Contains(buf, []byte{'\n'}) {
		return br, nil
	}
	return bufio.NewReaderSize(crAsLF{br}, br.Size()), nil
}

// crAsLF reads r with every CR turned into LF.
type crAsLF struct{ r io.Reader }

func (c crAsLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}

// skipBOM consumes a UTF-8 byte order mark at the start of br.
func skipBOM(br *bufio.Reader) {
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
}
