package main

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// syntaxRewrites word the TOML reader's syntax errors without the text
// it quotes from the file: a secret written unquoted (password =
// hunter2) was printed by `config check` and logged by a reload. The
// position (line:column) says where to look instead. First match wins.
var syntaxRewrites = []struct {
	re  *regexp.Regexp
	msg string // "" keeps the reader's message: it quotes no value
}{
	{regexp.MustCompile(`^expected value but found `), `expected a value: a quoted string ("..."), a number, true or false, or a [list]`},
	{regexp.MustCompile(`^expected a top-level item to end with a newline, comment, or EOF`), `expected the end of the line after the value: quote a text value in full ("...")`},
	{regexp.MustCompile(`^expected a comma \(','\) or array terminator`), `expected ',' or ']' in the list: quote each text item ("...")`},
	{regexp.MustCompile(`^expected a comma or an inline table terminator`), `expected ',' or '}' in the inline table`},
	{regexp.MustCompile(`^expected end of table array name delimiter`), `expected ']]' to end the table array name`},
	{regexp.MustCompile(`^expected '\.' or '\]' to end table name`), `expected '.' or ']' to end the table name`},
	{regexp.MustCompile(`^expected '\.' or '='`), `expected '=' after the setting's name (name = value)`},
	{regexp.MustCompile(`^expected (two|four|eight) hexadecimal digits after '\\(x|u|U)'`), `expected hexadecimal digits after \x, \u or \U in a quoted string`},
	{regexp.MustCompile(`(?i)^(invalid (float|integer|number)|not an? (binary|octal|hexadecimal) number|cannot use sign with non-decimal|expected a digit|floats must start)`), `not a valid number: quote a text value ("...")`},
	{regexp.MustCompile(`is out of (the safe )?range for`), `number out of range: quote a text value ("...")`},
	{regexp.MustCompile(`(?i)^invalid (TOML )?datetime`), `not a valid date and time: quote a text value ("...")`},
	{regexp.MustCompile(`(?i)^invalid duration`), `not a valid duration: quote it ("30s")`},
	{regexp.MustCompile(`^invalid escape`), `invalid escape after \ in a quoted string: write \\ for a backslash, or quote with '...' (no escapes there)`},
	{regexp.MustCompile(`^Escaped character .* is not valid UTF-8`), `an escaped character (\u or \U) is not a valid Unicode character`},
	{regexp.MustCompile(`^TOML files cannot contain control characters`), `a control character: only tabs, newlines and printable text are allowed`},
	{regexp.MustCompile(`^invalid UTF-8 byte`), `not UTF-8 text: save the config as UTF-8`},
	// Names of settings and tables, not values.
	{regexp.MustCompile(`^Key '.*' (was already created|has already been defined)|^".*" is not a table$`), ""},
}

// syntaxMessage is msg, a syntax error from the TOML reader, without
// any value it quotes. A message not known here (a newer reader's) is
// kept only when it quotes nothing.
func syntaxMessage(msg string) string {
	for _, r := range syntaxRewrites {
		if r.re.MatchString(msg) {
			if r.msg == "" {
				return msg
			}
			return r.msg
		}
	}
	// The reader's fixed messages ("unexpected EOF; expected '\"'",
	// "strings cannot contain newlines") quote only TOML's own tokens.
	if strings.HasPrefix(msg, "unexpected ") || !strings.ContainsAny(msg, `"'`) && !strings.ContainsAny(msg, "0123456789") {
		return msg
	}
	return "not valid TOML here"
}

// syntaxPosition is where a syntax error is, as line and column. The
// reader's own line is one too far when it stopped at a line's end
// ("[log" then a newline is reported on the next line), so both are
// counted from its byte offset; the column is in characters. The offset
// is into the text after the byte order mark the reader skips (an editor
// on Windows writes one), so that is skipped here too.
func syntaxPosition(text string, p toml.Position) (line, col int) {
	for _, bom := range []string{"\xff\xfe", "\xfe\xff", "\xef\xbb\xbf"} {
		if strings.HasPrefix(text, bom) {
			text = text[len(bom):]
			break
		}
	}
	if p.Start <= 0 || p.Start > len(text) {
		return p.Line, p.Col
	}
	before := text[:p.Start]
	nl := strings.LastIndexByte(before, '\n')
	return strings.Count(before, "\n") + 1, utf8.RuneCountInString(before[nl+1:]) + 1
}
