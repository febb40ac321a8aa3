// Package voicemail reads Asterisk's voicemail.conf (following its
// #include and #tryinclude directives) and a realtime voicemail table,
// and rewrites mailbox PINs in place. The parser keeps every byte it
// does not change: comments, blank lines, odd spacing, "=>" or "=",
// line endings and the options after the PIN all survive a rewrite, so
// a diff of a rewritten file shows only PINs.
//
// It follows Asterisk's own config reader (main/config.c): ";" starts a
// comment unless escaped as "\;"; ";--" ... "--;" is a block comment
// that may span lines and nest; "[name]" opens a context (anything
// after "]" is template syntax); a line is "name = value" or
// "name => value", split at the first "="; an included file starts in
// the context in effect at its #include, and the including file goes on
// in its own context afterwards. Relative include paths are relative to
// the config directory, and may be globs.
package voicemail

import (
	"bytes"
	"fmt"
	"strings"
)

// File is one parsed config file. Bytes returns it with the PINs set
// through SetPIN replaced and nothing else changed.
type File struct {
	Path     string
	Entries  []Entry
	Includes []Include
	// Problems are lines Asterisk would complain about; they do not stop
	// the parse.
	Problems []string
	// settings are the file's passwordlocation, aliasescontext,
	// searchcontexts, externpass and externpassnotify lines, in order,
	// whatever their category: Tree files them under the category each
	// belongs to, and reads only the [general] app_voicemail reads.
	settings []setting
	// blocks are its "[name](options)" headers, in order; an entry's
	// block is the last one before it (-1: the includer's).
	blocks []block

	secret     bool   // a mailbox's secret.conf: [general] password is the entry
	key        string // its real path, set by Load
	multi      bool   // Load read it more than once: its PINs are not rewritten
	backupBase string // the name its backups take ("" = the file's)
	unsure     string // a secret.conf whose PIN tollguard cannot tell: why
	data       []byte
	comment    []bool         // comment[i]: byte i is part of a comment
	edits      map[int]string // entry index → new PIN
}

// Entry is one mailbox line: mailbox => [-]pin,full name,email,pager,options.
type Entry struct {
	Context  string
	Mailbox  string
	PIN      string // without the leading "-"
	Locked   bool   // the PIN had a leading "-": the user may not change it
	FullName string
	Email    string
	Line     int
	// PasswordLocation is the mailbox's own passwordlocation option, as
	// app_voicemail reads it: "spooldir", "voicemailconf" (any other
	// value), or "" if the mailbox has none and [general]'s applies.
	PasswordLocation string

	// Template: the line is in a template ("[name](!)"), which Asterisk
	// hides from app_voicemail: not a mailbox, though a category that
	// inherits the template gets it.
	Template bool

	pinStart, pinEnd int  // byte offsets of PIN in the file
	pinSplit         bool // a comment sits inside the PIN: not rewritable
	block            int  // index in the file's blocks, -1 for the includer's

	value      string // the value as Asterisk reads it
	appendOp   bool   // a "name += text" line
	appendText string // its text after "=", as config.c appends it
}

// setValue sets the fields app_voicemail's append_mailbox reads from a
// mailbox line's value: PIN, full name, email, pager, options.
func (ent *Entry) setValue(v string) {
	fields := strings.Split(v, ",")
	pin := fields[0] // untrimmed, as append_mailbox keeps it
	ent.Locked = strings.HasPrefix(pin, "-")
	ent.PIN = strings.TrimPrefix(pin, "-")
	ent.FullName, ent.Email, ent.PasswordLocation = "", "", ""
	if len(fields) > 1 {
		ent.FullName = strings.TrimSpace(fields[1])
	}
	if len(fields) > 2 {
		ent.Email = strings.TrimSpace(strings.ReplaceAll(fields[2], `\;`, ";"))
	}
	// Options are everything after the fourth comma, "name=value"
	// pairs split by '|', as app_voicemail's apply_options reads them:
	// names compared whole, spaces and all.
	if len(fields) > 4 {
		for _, opt := range strings.Split(strings.Join(fields[4:], ","), "|") {
			if k, v, ok := strings.Cut(opt, "="); ok && strings.EqualFold(k, "passwordlocation") {
				ent.PasswordLocation = passwordLocation(v)
			}
		}
	}
}

// block is a context header and what its parentheses say (main/config.c):
// "!" makes a template, "+" adds to the category already read, any other
// name is a category or template whose lines are copied in first.
type block struct {
	name     string
	line     int
	template bool
	add      bool
	inherits []string
}

// section is the context in effect and whether it is a template.
type section struct {
	name     string
	template bool
	block    int // the file's block index, -1 for the includer's
}

// Include is a #include, #tryinclude or #exec directive.
type Include struct {
	Directive string // include, tryinclude, exec
	Target    string // as written, quotes removed
	Line      int
	Context   string // the context in effect at the directive
}

// nonMailboxContexts are voicemail.conf's settings sections.
var nonMailboxContexts = map[string]bool{"general": true, "zonemessages": true}

// MailboxContext reports whether lines in context ctx define mailboxes.
func MailboxContext(ctx string) bool {
	return ctx != "" && !nonMailboxContexts[strings.ToLower(ctx)]
}

// Parse parses data, the contents of path, starting in context ctx
// ("" for a top-level file). It never fails: what it cannot make sense
// of is kept as is and noted in Problems.
func Parse(path string, data []byte, ctx string) *File {
	f := &File{Path: path}
	f.parse(data, section{name: ctx, block: -1})
	return f
}

func (f *File) parse(data []byte, sec section) {
	f.data = data
	eff, mask := blankComments(data)
	f.comment = mask
	line := 0
	for off := 0; off < len(eff); {
		end := bytes.IndexByte(eff[off:], '\n')
		next := off + end + 1
		if end < 0 {
			end, next = len(eff)-off, len(eff)
		}
		line++
		sec = f.parseLine(eff, off, off+end, line, sec)
		off = next
	}
}

// ParseSecret parses a mailbox's secret.conf, which app_voicemail
// reads when passwordlocation is spooldir: its one entry, if any, is
// [general] password, the PIN in force.
func ParseSecret(path string, data []byte) *File {
	f := &File{Path: path, secret: true}
	f.parse(data, section{block: -1})
	f.foldSecret()
	return f
}

// foldSecret leaves in Entries the one password app_voicemail reads
// (ast_variable_retrieve of "general", "password"): the first one in the
// first [general] that is no template, with "password += text" lines
// appended as config.c does. A second [general] is never read. Such a
// PIN, partly on "+=" lines, is not rewritable; a file whose [general]
// is built by "(+)", inheritance or #include is not read at all
// (unsure says why), as tollguard cannot tell its PIN for certain.
func (f *File) foldSecret() {
	g := -1
	for i, b := range f.blocks {
		if !strings.EqualFold(b.name, "general") {
			continue
		}
		switch {
		case g < 0 && !b.template && !b.add && len(b.inherits) == 0:
			g = i
		case b.add || len(b.inherits) > 0:
			f.unsure = fmt.Sprintf("line %d: [%s] is added to or inherits", b.line, b.name)
		}
	}
	if len(f.Includes) > 0 {
		f.unsure = fmt.Sprintf("line %d: #%s", f.Includes[0].Line, f.Includes[0].Directive)
	}
	var vars []*Entry
	appended := map[*Entry]bool{}
	for _, e := range f.Entries {
		if e.block != g || g < 0 {
			continue
		}
		if e.appendOp {
			// config.c appends to the last line of exactly that name.
			var to *Entry
			for _, v := range vars {
				if v.Mailbox == e.Mailbox {
					to = v
				}
			}
			if to != nil {
				to.value = strings.TrimLeft(strings.TrimRight(to.value+e.appendText, " \t\r\v\f\n"), " \t\r\v\f\n")
				appended[to] = true
				continue
			}
		}
		vars = append(vars, &e)
	}
	f.Entries = nil
	if len(vars) == 0 {
		return
	}
	first := vars[0] // ast_variable_retrieve returns the first match
	if appended[first] {
		// Partly on the "+=" lines: read, never rewritten.
		first.pinSplit = true
		first.Locked = strings.HasPrefix(first.value, "-")
		first.PIN = strings.TrimPrefix(first.value, "-")
	}
	f.Entries = []Entry{*first}
}

// parseLine handles eff[start:end] (comments already blanked) and
// returns the context in effect after it.
func (f *File) parseLine(eff []byte, start, end, line int, sec section) section {
	ctx := sec.name
	s, e := trimSpace(eff, start, end)
	if s == e {
		return sec
	}
	text := string(eff[s:e])
	switch text[0] {
	case '[':
		close := strings.IndexByte(text, ']')
		if close < 0 {
			f.problem(line, "no closing ']' in context header")
			return sec
		}
		b := block{name: text[1:close], line: line}
		if rest := text[close+1:]; strings.HasPrefix(rest, "(") {
			opts, _, ok := strings.Cut(rest[1:], ")")
			if !ok {
				f.problem(line, "no closing ')' in context header")
			}
			for _, o := range strings.Split(opts, ",") {
				switch {
				case o == "!":
					b.template = true
				case strings.HasPrefix(o, "+"):
					b.add = true
				case o != "":
					b.inherits = append(b.inherits, o)
				}
			}
		}
		f.blocks = append(f.blocks, b)
		return section{name: b.name, template: b.template, block: len(f.blocks) - 1}
	case '#':
		// The directive is the word up to the first control or space
		// character; the argument is the rest, stripped and unquoted.
		word, arg := text[1:], ""
		if i := strings.IndexFunc(word, func(r rune) bool { return r <= ' ' }); i >= 0 {
			word, arg = word[:i], word[i+1:]
		}
		arg = strings.TrimSpace(arg)
		if len(arg) >= 2 && (arg[0] == '"' && arg[len(arg)-1] == '"' || arg[0] == '<' && arg[len(arg)-1] == '>') {
			arg = arg[1 : len(arg)-1]
		}
		switch d := strings.ToLower(word); d {
		case "include", "tryinclude", "exec":
			if arg == "" {
				f.problem(line, "#%s needs an argument", d)
				return sec
			}
			f.Includes = append(f.Includes, Include{Directive: d, Target: arg, Line: line, Context: ctx})
		default:
			f.problem(line, "unknown directive #%s", word)
		}
		return sec
	}
	if ctx == "" {
		f.problem(line, "line outside any [context]")
		return sec
	}
	// A leading "\\" escapes the name's first character (config.c
	// drops it and looks for "=" after that character).
	skip := 0
	if text[0] == '\\' {
		if len(text) < 2 || text[1] < 33 {
			f.problem(line, "invalid escape; Asterisk refuses to load the file")
			return sec
		}
		skip = 1
	}
	eq, from := -1, 2*skip
	if len(text) > from {
		if i := strings.IndexByte(text[from:], '='); i >= 0 {
			eq = from + i
		}
	}
	if eq < 0 {
		f.problem(line, "no '=' on the line")
		return sec
	}
	// "name += value" appends to the category's last "name" line, or,
	// if there is none, is a "name = value" line (config.c); there is
	// no "=>" after "+=".
	appendOp := eq > from && text[eq-1] == '+'
	nameEnd := eq
	if appendOp {
		nameEnd--
	}
	name := trimSpaces(text[skip:nameEnd])
	vs := s + eq + 1
	rawStart := vs
	if !appendOp && vs < e && eff[vs] == '>' {
		vs++
	}
	vs, ve := trimSpace(eff, vs, e)
	general := strings.EqualFold(ctx, "general") && !sec.template
	if !f.secret && !appendOp {
		switch n := strings.ToLower(name); n {
		case "passwordlocation", "aliasescontext", "searchcontexts", "externpass", "externpassnotify", "userscontext", "hasvoicemail", "dialout", "callback":
			f.settings = append(f.settings, setting{file: f.Path, line: line, name: n, value: f.text(eff, vs, ve)})
		}
	}
	// In a secret.conf, [general] password is the PIN, all of it.
	secretPIN := f.secret && general && strings.EqualFold(name, "password")
	if !secretPIN && (f.secret || name == "" || !MailboxContext(ctx)) {
		return sec
	}
	// The PIN is the value up to the first comma, blanks before the
	// comma included: append_mailbox splits it with strsep and trims
	// nothing ("2222 ,Bob" is the PIN "2222 "). A leading "-" locks it.
	ps := vs
	pe := ve
	if i := bytes.IndexByte(eff[vs:ve], ','); i >= 0 && !secretPIN {
		pe = vs + i
	}
	ent := Entry{Context: ctx, Mailbox: name, Line: line, Template: sec.template, block: sec.block, appendOp: appendOp}
	if ps < pe && eff[ps] == '-' {
		ps++
	}
	ent.pinStart, ent.pinEnd = ps, pe
	// A ";" in the PIN (see blankComments) or a comment inside it
	// would make a rewrite change more than the PIN.
	ent.pinSplit = len(f.text(eff, ps, pe)) != pe-ps || bytes.IndexByte(eff[ps:pe], ';') >= 0
	ent.value = f.text(eff, vs, ve)
	if appendOp {
		_, e := trimSpace(eff, rawStart, e)
		ent.appendText = f.text(eff, rawStart, e)
	}
	if secretPIN {
		ent.PIN = f.text(eff, ps, pe)
		ent.Locked = ps > vs
	} else {
		ent.setValue(ent.value)
	}
	f.Entries = append(f.Entries, ent)
	return sec
}

// setting is a [general] setting line: its name, lower case, and value.
type setting struct {
	file        string
	line        int
	name, value string
}

// passwordLocation reads a passwordlocation value as app_voicemail does:
// "spooldir", case-insensitively, and anything else is voicemail.conf.
func passwordLocation(v string) string {
	if strings.EqualFold(v, "spooldir") {
		return "spooldir"
	}
	return "voicemailconf"
}

// text returns eff[s:e] without its comment bytes: Asterisk joins what
// comes before and after an inline block comment.
func (f *File) text(eff []byte, s, e int) string {
	b := make([]byte, 0, e-s)
	for i := s; i < e; i++ {
		if !f.comment[i] {
			b = append(b, eff[i])
		}
	}
	return string(b)
}

func (f *File) problem(line int, format string, args ...any) {
	f.Problems = append(f.Problems, fmt.Sprintf("%s:%d: %s", f.Path, line, fmt.Sprintf(format, args...)))
}

// trimSpace narrows [s, e) of b past spaces, tabs and carriage returns.
func trimSpace(b []byte, s, e int) (int, int) {
	for s < e && isSpace(b[s]) {
		s++
	}
	for e > s && isSpace(b[e-1]) {
		e--
	}
	return s, e
}

// trimSpaces is trimSpace for a string.
func trimSpaces(s string) string { return strings.Trim(s, " \t\r\v\f") }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// blankComments returns a copy of data with every byte Asterisk does
// not read turned into a space (newlines kept), so that offsets into the
// copy are offsets into data, and which bytes those were.
//
// It follows config_text_file_load: a line of maxLineLength bytes or
// more is skipped whole; a NUL ends a line's text; ";" starts a comment
// to the end of the line; ";--" opens a block comment (nested ones
// counted) and "--;" closes one, and only the close that brings the
// count back to 0 lets the rest of the line be read again. config.c
// counts a "--;" outside any block comment too: the count goes below 0,
// that line is read whole (its later ";" are no comments), and every
// following line is skipped until a ";--" brings the count back to 0.
func blankComments(data []byte) ([]byte, []bool) {
	out := bytes.Clone(data)
	mask := make([]bool, len(data))
	blank := func(i int) { out[i], mask[i] = ' ', true }
	depth := 0 // config.c's comment count
	for start := 0; start < len(data); {
		end := bytes.IndexByte(data[start:], '\n')
		next := start + end + 1
		if end < 0 {
			end, next = len(data)-start, len(data)
		}
		end += start
		if end-start >= maxLineLength {
			for i := start; i < end; i++ {
				blank(i)
			}
			start = next
			continue
		}
		if z := bytes.IndexByte(data[start:end], 0); z >= 0 {
			for i := start + z; i < end; i++ {
				blank(i)
			}
			end = start + z
		}
		live := depth == 0
		from := start // where config.c's scan of the line resumed
		for i := start; i < end; i++ {
			if data[i] != ';' {
				if !live {
					blank(i)
				}
				continue
			}
			switch {
			case i > from && data[i-1] == '\\':
				// "\;" is a literal semicolon.
				if !live {
					blank(i)
				}
				from = i + 1
			case i+2 < end && data[i+1] == '-' && data[i+2] == '-' && (i+3 >= end || data[i+3] != '-'):
				depth++
				live = false
				blank(i)
				blank(i + 1)
				blank(i + 2)
				i += 2
				from = i + 1
			case i-2 >= from && data[i-1] == '-' && data[i-2] == '-':
				depth--
				if depth == 0 && !live {
					live = true
					blank(i)
				} else if !live {
					blank(i)
				}
				from = i + 1
			case depth == 0:
				for ; i < end; i++ {
					blank(i)
				}
			default:
				if !live {
					blank(i)
				}
				from = i + 1
			}
		}
		start = next
	}
	return out, mask
}

// maxLineLength is the length from which config.c skips a line: it
// reads lines with fgets into a BUFSIZ (8192) buffer.
const maxLineLength = 8191

// SetPIN replaces entry i's PIN (keeping its "-" lock); pin must be
// digits only.
func (f *File) SetPIN(i int, pin string) error {
	if i < 0 || i >= len(f.Entries) {
		return fmt.Errorf("%s: no mailbox entry %d", f.Path, i)
	}
	if pin == "" || strings.Trim(pin, "0123456789") != "" {
		return fmt.Errorf("%s: new PIN for %s must be digits only", f.Path, f.Entries[i].Mailbox)
	}
	if f.Entries[i].pinSplit {
		return fmt.Errorf("%s:%d: the PIN of mailbox %s has a comment inside it; change it by hand", f.Path, f.Entries[i].Line, f.Entries[i].Mailbox)
	}
	if f.edits == nil {
		f.edits = map[int]string{}
	}
	f.edits[i] = pin
	return nil
}

// Changed reports whether any PIN was set.
func (f *File) Changed() bool { return len(f.edits) > 0 }

// Original returns the bytes the file was parsed from.
func (f *File) Original() []byte { return f.data }

// Bytes returns the file with the new PINs in place and every other
// byte as it was.
func (f *File) Bytes() []byte {
	if len(f.edits) == 0 {
		return bytes.Clone(f.data)
	}
	var b bytes.Buffer
	b.Grow(len(f.data) + 8*len(f.edits))
	at := 0
	// Entries are in file order, so their spans are increasing.
	for i, ent := range f.Entries {
		pin, ok := f.edits[i]
		if !ok {
			continue
		}
		b.Write(f.data[at:ent.pinStart])
		b.WriteString(pin)
		at = ent.pinEnd
	}
	b.Write(f.data[at:])
	return b.Bytes()
}
