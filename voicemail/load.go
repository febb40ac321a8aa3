package voicemail

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxIncludeDepth bounds #include nesting, as Asterisk does.
const maxIncludeDepth = 10

// maxFileReads bounds the files read in all: Asterisk follows a file
// that includes itself (or includes one that does) down to
// maxIncludeDepth, which grows exponentially with several such lines.
const maxFileReads = 1000

// Tree is voicemail.conf and every file it includes, in the order
// Asterisk reads them.
type Tree struct {
	Files []*File
	// Problems are what Asterisk would warn about or refuse: a missing
	// #include (Asterisk then refuses the whole file), an #exec that
	// tollguard does not run, a file included twice.
	Problems []string
	// PasswordLocation is [general] passwordlocation, read from the
	// [general] app_voicemail reads (the first that is no template,
	// with its inherited and "(+)" lines; the first setting in it):
	// "spooldir", "voicemailconf", or "" if none is set.
	PasswordLocation string
	// AliasesContext is [general] aliasescontext, read the same way: a
	// context of aliases ("1001@devices => 1001@default"), not mailboxes.
	AliasesContext string
	// SearchContexts is [general] searchcontexts: a mailbox number is
	// then one mailbox across all contexts, and app_voicemail ignores
	// its definitions after the first.
	SearchContexts bool
	// ExternPass is [general] externpass, or else externpassnotify, as
	// "name=command": a program that keeps the PINs elsewhere too.
	ExternPass string
	// UsersContext is [general] userscontext: the context of the
	// mailboxes users.conf defines ("default" if unset).
	UsersContext string
	// Dialout and Callback are [general] dialout and callback: the
	// dialplan contexts every mailbox without its own option sends its
	// caller to from VoiceMailMain's advanced options ("" for none),
	// read like PasswordLocation; *At is where ("file:line").
	Dialout, DialoutAt   string
	Callback, CallbackAt string

	name string // "voicemail.conf" or "users.conf", for problems
	// hasVoicemail is [general] hasvoicemail, which a users.conf
	// category without its own takes (ast_config_option).
	hasVoicemail    string
	hasVoicemailSet bool

	// boxes are the mailbox lines in reading order (an inherited line
	// where its category opens); Boxes gives them category by category.
	boxes []Box
	cats  []*category
	// current is the category opened last, in any file: an included
	// file's first lines go there (config.c starts each file in the
	// config's current category), even when its includer is elsewhere.
	current *category
	// reads counts how often each file (its real path) is read: config.c
	// reads a file each time it is included, so one included twice (or
	// in a loop) defines its mailboxes twice, maybe in two categories.
	reads map[string]int
}

// Box is a mailbox line as app_voicemail sees it: an entry of one of
// the files, in Context (which differs from the entry's when the line
// is inherited from a template or category).
type Box struct {
	File      *File
	Index     int // in File.Entries
	Context   string
	Inherited string // the category the line is inherited from, "" for its own
	Template  bool   // the line is in a template: not a mailbox
	// Appended are the "name += text" lines (file:line) that config.c
	// appended to the line's value in this category; value is then the
	// value Asterisk reads, not the line's.
	Appended []string
	// appendedIn is the category each Appended line is in: the line's
	// own, or one inheriting it, whose mailbox alone reads it.
	appendedIn []string
	value      string
	// home is the category the line is written in (Context, for a
	// line of its own): the one to name when the line is inherited.
	home string
}

// Entry is the box's line, with the value Asterisk reads when "+="
// lines appended to it.
func (b Box) Entry() Entry {
	e := b.File.Entries[b.Index]
	if len(b.Appended) > 0 {
		e.setValue(b.value)
	}
	return e
}

// category is a category as main/config.c builds it: its blocks' lines
// and the lines it inherits, in order.
type category struct {
	name string
	file *File // where it was first opened
	line int
	// last is the last header opening it (file:line): "(+)" opens it
	// again, and a line below that header comes after all it inherits.
	last     string
	template bool
	boxes    []int     // indexes in Tree.boxes
	settings []setting // inherited ones first
}

// Load reads the config file at path and follows its includes.
// Relative include paths are resolved against configDir ("" means the
// directory of path), as Asterisk resolves them against its config
// directory. Only a missing or unreadable top file is an error.
func Load(path, configDir string) (*Tree, error) {
	return load(path, configDir, "voicemail.conf")
}

// load is Load for a file Asterisk knows as name.
func load(path, configDir, name string) (*Tree, error) {
	if configDir == "" {
		configDir = filepath.Dir(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	t := &Tree{reads: map[string]int{}, name: name, UsersContext: "default"}
	t.add(path, data, section{block: -1}, nil, configDir, 0)
	reported := map[string]bool{}
	for _, f := range t.Files {
		n := t.reads[f.key]
		if n < 2 {
			continue
		}
		f.multi = true
		if !reported[f.key] {
			reported[f.key] = true
			t.Problems = append(t.Problems, fmt.Sprintf("%s is included %d times (more than once, or in a loop): Asterisk reads it each time, "+
				"so its mailboxes are audited as each read places them, but tollguard rewrites none of its PINs (a new PIN would change every copy): change them by hand", f.Path, n))
		}
	}
	t.readGeneral()
	// A category is a template if any of its blocks says so.
	for _, c := range t.cats {
		for _, i := range c.boxes {
			b := &t.boxes[i]
			b.Template = c.template
			if b.Inherited == "" {
				b.File.Entries[b.Index].Template = c.template
			}
		}
	}
	return t, nil
}

// readGeneral reads the settings of the [general] app_voicemail reads
// (ast_variable_retrieve): the first category of that name that is no
// template, with what it inherits and what "(+)" adds to it, and in it
// the first line of each setting. A second [general] is another
// category, which app_voicemail never reads.
func (t *Tree) readGeneral() {
	var gen *category
	for _, c := range t.cats {
		if !c.template && strings.EqualFold(c.name, "general") {
			gen = c
			break
		}
	}
	if gen == nil {
		return
	}
	externs := map[string]string{}
	seen := map[string]bool{}
	for _, s := range gen.settings {
		// ast_variable_retrieve returns the first line of a name
		// (inherited ones first), not the last.
		if seen[s.name] {
			continue
		}
		seen[s.name] = true
		switch s.name {
		case "passwordlocation":
			// Compared case-sensitively, unlike a mailbox's own option
			// (actual_load_config uses strcmp).
			t.PasswordLocation = "voicemailconf"
			if s.value == "spooldir" {
				t.PasswordLocation = "spooldir"
			}
		case "aliasescontext":
			t.AliasesContext = s.value
		case "userscontext":
			t.UsersContext = s.value
		case "hasvoicemail":
			t.hasVoicemail, t.hasVoicemailSet = s.value, true
		case "searchcontexts":
			t.SearchContexts = astTrue(s.value)
		case "externpass", "externpassnotify":
			externs[s.name] = s.value
		case "dialout":
			t.Dialout, t.DialoutAt = s.value, fmt.Sprintf("%s:%d", s.file, s.line)
		case "callback":
			t.Callback, t.CallbackAt = s.value, fmt.Sprintf("%s:%d", s.file, s.line)
		}
	}
	// externpass wins over externpassnotify (actual_load_config).
	for _, name := range []string{"externpassnotify", "externpass"} {
		if v := externs[name]; v != "" {
			t.ExternPass = name + "=" + v
		}
	}
}

// Boxes are the mailbox lines in the order app_voicemail reads them,
// templates and aliases included (see Box.Template and AliasesContext).
// That is category by category (load_users browses the categories),
// not line by line: the first definition of a mailbox is the first in
// that order, which differs when a category is added to with "(+)" or
// an #include opens another category in the middle of one.
func (t *Tree) Boxes() []Box {
	out := make([]Box, 0, len(t.boxes))
	for _, c := range t.cats {
		for _, i := range c.boxes {
			out = append(out, t.boxes[i])
		}
	}
	return out
}

// astTrue is Asterisk's ast_true.
func astTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

// findCategory is config.c's lookup: the first category of that name,
// templates included only if templates is set (inheritance looks them
// up; "(+)" does not, so it adds to the first category that is none).
func (t *Tree) findCategory(name string, templates bool) *category {
	for _, c := range t.cats {
		if strings.EqualFold(c.name, name) && (templates || !c.template) {
			return c
		}
	}
	return nil
}

// add reads one file's lines in order, following each #include where
// it is. cur is the category its first lines go to (nil at the top).
func (t *Tree) add(path string, data []byte, sec section, cur *category, configDir string, depth int) {
	key, err := filepath.Abs(path)
	if err != nil {
		key = path
	}
	if real, err := filepath.EvalSymlinks(key); err == nil {
		key = real
	}
	t.reads[key]++
	f := &File{Path: path, key: key}
	f.parse(data, sec)
	t.Files = append(t.Files, f)
	t.Problems = append(t.Problems, f.Problems...)
	// The file's headers, mailbox lines, settings and includes, by line.
	type event struct {
		line, kind, i int
	}
	const (
		evBlock = iota
		evEntry
		evSetting
		evInclude
	)
	var evs []event
	for i, b := range f.blocks {
		evs = append(evs, event{b.line, evBlock, i})
	}
	for i, e := range f.Entries {
		evs = append(evs, event{e.Line, evEntry, i})
	}
	for i, s := range f.settings {
		evs = append(evs, event{s.line, evSetting, i})
	}
	for i, inc := range f.Includes {
		evs = append(evs, event{inc.Line, evInclude, i})
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].line < evs[b].line })
	for _, ev := range evs {
		switch ev.kind {
		case evBlock:
			cur = t.openBlock(f, ev.i)
			t.current = cur
		case evEntry:
			if cur == nil {
				continue
			}
			if e := f.Entries[ev.i]; e.appendOp {
				if t.appendTo(cur, e, fmt.Sprintf("%s:%d", f.Path, e.Line)) {
					continue
				}
			}
			// The category's name as first written: "[Default](+)"
			// adds to [default], whose spool directory is default/.
			t.boxes = append(t.boxes, Box{File: f, Index: ev.i, Context: cur.name, home: cur.name})
			cur.boxes = append(cur.boxes, len(t.boxes)-1)
		case evSetting:
			if cur != nil {
				cur.settings = append(cur.settings, f.settings[ev.i])
			}
		case evInclude:
			t.include(f, f.Includes[ev.i], configDir, depth)
		}
	}
}

// appendTo applies a "name += text" line to the category's last line
// of that name (compared case-sensitively, inherited lines included), as
// config.c does: the text is added to its value, trailing blanks and
// leading ones trimmed. It reports false if there is no such line: the
// "+=" line is then a line of its own.
func (t *Tree) appendTo(c *category, e Entry, where string) bool {
	for k := len(c.boxes) - 1; k >= 0; k-- {
		b := &t.boxes[c.boxes[k]]
		if b.File.Entries[b.Index].Mailbox != e.Mailbox {
			continue
		}
		v := b.value
		if len(b.Appended) == 0 {
			v = b.File.Entries[b.Index].value
		}
		b.value = strings.TrimLeft(strings.TrimRight(v+e.appendText, " \t\r\v\f\n"), " \t\r\v\f\n")
		n := len(b.Appended)
		b.Appended = append(b.Appended[:n:n], where)
		b.appendedIn = append(b.appendedIn[:n:n], c.name)
		return true
	}
	return false
}

// openBlock starts the category of f's block i, as main/config.c does:
// "(+)" goes on with the category read first under that name, "(!)"
// makes a template, and any other name copies that category's lines
// in first. It returns the category the following lines go to.
func (t *Tree) openBlock(f *File, i int) *category {
	b := f.blocks[i]
	where := fmt.Sprintf("%s:%d", f.Path, b.line)
	if b.add {
		c := t.findCategory(b.name, false)
		if c == nil {
			t.Problems = append(t.Problems, fmt.Sprintf("%s: [%s](+) adds to a category that does not exist; Asterisk refuses to load %s", where, b.name, t.name))
			c = &category{name: b.name, file: f, line: b.line}
			t.cats = append(t.cats, c)
		}
		c.template = c.template || b.template
		c.last = where
		t.inherit(c, b, where)
		return c
	}
	c := &category{name: b.name, template: b.template, file: f, line: b.line, last: where}
	t.inherit(c, b, where)
	t.cats = append(t.cats, c)
	return c
}

// inherit copies into c the lines of the categories block b names
// ("[name](tmpl)", or "[name](+,tmpl)", which adds them to [name]).
func (t *Tree) inherit(c *category, b block, where string) {
	for _, base := range b.inherits {
		from := t.findCategory(base, true)
		if from == nil {
			t.Problems = append(t.Problems, fmt.Sprintf("%s: [%s] inherits from [%s], which does not exist; Asterisk refuses to load %s", where, b.name, base, t.name))
			continue
		}
		for _, bi := range from.boxes {
			ib := t.boxes[bi]
			ib.Context, ib.Inherited = c.name, from.name
			t.boxes = append(t.boxes, ib)
			c.boxes = append(c.boxes, len(t.boxes)-1)
		}
		c.settings = append(c.settings, from.settings...)
	}
}

// include reads the files an #include, #tryinclude or #exec names.
func (t *Tree) include(f *File, inc Include, configDir string, depth int) {
	where := fmt.Sprintf("%s:%d", f.Path, inc.Line)
	if inc.Directive == "exec" {
		t.Problems = append(t.Problems, fmt.Sprintf("%s: #exec %s is not run by tollguard, so mailboxes it generates are not audited", where, inc.Target))
		return
	}
	if depth+1 >= maxIncludeDepth {
		t.Problems = append(t.Problems, fmt.Sprintf("%s: #%s %s nests deeper than %d files; not followed", where, inc.Directive, inc.Target, maxIncludeDepth))
		return
	}
	target := inc.Target
	if !filepath.IsAbs(target) {
		target = filepath.Join(configDir, target)
	}
	var files []string
	// glob(3) as Asterisk calls it (GLOB_BRACE) expands "{a,b}" first,
	// and lists each alternative's matches, sorted, in turn.
	for _, pat := range expandBraces(target) {
		matches, err := filepath.Glob(pat)
		if err != nil {
			continue
		}
		sort.Strings(matches)
		for _, m := range matches {
			// glob(3) skips dot-files unless the pattern names them;
			// Go's Glob does not. tollguard's own PIN-rewrite backups
			// are dot-files beside the file.
			if strings.HasPrefix(filepath.Base(m), ".") && !strings.HasPrefix(filepath.Base(pat), ".") {
				continue
			}
			if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
				files = append(files, m)
			}
		}
	}
	if len(files) == 0 {
		if inc.Directive == "include" {
			t.Problems = append(t.Problems, fmt.Sprintf("%s: #include %s: no such file; Asterisk refuses to load %s with a missing #include (use #tryinclude for optional files)", where, inc.Target, t.name))
		}
		return
	}
	for _, m := range files {
		if len(t.Files) >= maxFileReads {
			t.Problems = append(t.Problems, fmt.Sprintf("%s: #%s %s: %d files read already (an include loop?); not followed, so its mailboxes are not audited", where, inc.Directive, m, maxFileReads))
			return
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Problems = append(t.Problems, fmt.Sprintf("%s: #%s %s: %v", where, inc.Directive, m, err))
			continue
		}
		sec := section{block: -1}
		if t.current != nil {
			sec.name, sec.template = t.current.name, t.current.template
		}
		t.add(m, b, sec, t.current, configDir, depth+1)
	}
}

// expandBraces expands the first "{...}" of pattern whose closing brace
// is found (nested braces counted) into one pattern per comma-separated
// alternative, recursively, as glob(3) does with GLOB_BRACE; a pattern
// without one is itself.
func expandBraces(pattern string) []string {
	open := strings.IndexByte(pattern, '{')
	if open < 0 {
		return []string{pattern}
	}
	depth, start := 0, open+1
	var alts []string
	for i := open + 1; i < len(pattern); i++ {
		switch pattern[i] {
		case '{':
			depth++
		case ',':
			if depth == 0 {
				alts = append(alts, pattern[start:i])
				start = i + 1
			}
		case '}':
			if depth > 0 {
				depth--
				continue
			}
			alts = append(alts, pattern[start:i])
			var out []string
			for _, a := range alts {
				out = append(out, expandBraces(pattern[:open]+a+pattern[i+1:])...)
				if len(out) > maxFileReads {
					return out
				}
			}
			return out
		}
	}
	return []string{pattern} // no closing brace: taken literally
}
