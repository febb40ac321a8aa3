package voicemail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
	"golang.org/x/sys/unix"
)

// Source is voicemail.conf as a tollguard.MailboxSource.
type Source struct {
	Path      string // voicemail.conf
	ConfigDir string // for relative #include paths; "" = Path's directory
	// BackupDir receives a copy of each file before it is rewritten;
	// "" = next to the file, as a dot-file (".voicemail.conf.tollguard-
	// 20261123T010203Z.bak") so that "#include *.conf" globs skip it.
	BackupDir string
	// UsersConf is users.conf, whose categories with hasvoicemail = yes
	// app_voicemail (Asterisk 22 and older) loads as mailboxes too; ""
	// = users.conf in ConfigDir, as Asterisk reads it from its config
	// directory. A missing file is normal: it has no mailboxes.
	UsersConf string
	// SpoolDir is Asterisk's voicemail spool ("" = DefaultSpoolDir),
	// where a mailbox with passwordlocation=spooldir keeps its PIN in
	// CONTEXT/MAILBOX/secret.conf.
	SpoolDir string
	Now      func() time.Time
}

// DefaultSpoolDir is astspooldir/voicemail on a stock install.
const DefaultSpoolDir = "/var/spool/asterisk/voicemail"

var _ tollguard.MailboxSource = (*Source)(nil)

// Name is the config file's path.
func (s *Source) Name() string { return s.Path }

// ReloadModule is app_voicemail, which rereads voicemail.conf on reload.
func (s *Source) ReloadModule() string { return "app_voicemail.so" }

// Mailboxes lists every mailbox in voicemail.conf and its includes,
// each with the PIN Asterisk uses (see located).
func (s *Source) Mailboxes(ctx context.Context) ([]tollguard.Mailbox, []string, error) {
	t, ut, err := s.load()
	if err != nil {
		return nil, nil, err
	}
	boxes, problems := s.locate(t, ut)
	out := make([]tollguard.Mailbox, len(boxes))
	for i, b := range boxes {
		out[i] = b.Mailbox
	}
	return out, problems, nil
}

// load reads voicemail.conf and, if there is one, users.conf (nil if
// not; one that cannot be read is a problem in the returned Tree).
func (s *Source) load() (*Tree, *Tree, error) {
	t, err := Load(s.Path, s.ConfigDir)
	if err != nil {
		return nil, nil, err
	}
	configDir := s.ConfigDir
	if configDir == "" {
		configDir = filepath.Dir(s.Path)
	}
	path := s.UsersConf
	if path == "" {
		path = filepath.Join(configDir, "users.conf")
	}
	ut, err := load(path, configDir, "users.conf")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil, nil
	case err != nil:
		t.Problems = append(t.Problems, fmt.Sprintf("%v: app_voicemail loads the mailboxes of users.conf (hasvoicemail = yes) too, and those are not audited: give tollguard read access (write access for --apply), or set [audit.pins] users_conf", err))
		return t, nil, nil
	}
	return t, ut, nil
}

// located is a mailbox and the file entry that holds its PIN.
type located struct {
	tollguard.Mailbox
	file  *File
	entry int
	// shared: the line is not this mailbox's alone (it is inherited
	// from another category, is the PIN of other mailboxes too, or is in
	// a file read more than once); tollguard does not rewrite it, and
	// ByHand says what the admin changes instead.
	shared bool
	// from is the category a voicemail.conf mailbox inherits its line
	// from ("" for its own line).
	from string
	// appends are the "+=" lines this mailbox's PIN has appended
	// ("file:line in [category]").
	appends []string
	// hand, unless ByHand is set, is what the admin changes instead of
	// --apply once the line turns out not to be this mailbox's alone,
	// given the mailboxes whose PIN the line is.
	hand func(readers []located) string
}

// reloadByHand ends every ByHand: a PIN changed by hand is not in force
// before app_voicemail rereads its files.
const reloadByHand = "; then reload app_voicemail (asterisk -rx 'module reload app_voicemail.so')"

// lineKey names a file entry: its file's real path (the file's key, as
// a file read twice is one file) and its index.
type lineKey struct {
	file  string
	entry int
}

func keyOf(f *File, entry int) lineKey {
	if f.key != "" {
		return lineKey{f.key, entry}
	}
	return lineKey{f.Path, entry}
}

// locate finds the mailboxes app_voicemail loads and where each one's
// PIN lives, as app_voicemail does: every category but [general],
// [zonemessages], the aliases context and templates, in reading order,
// each with the lines it inherits first; a mailbox name starting with
// "*" and a second definition of a mailbox (its name and context
// compared case-insensitively; its name alone with searchcontexts) are
// ignored. The PIN is the voicemail.conf line's, unless passwordlocation
// (the mailbox's own option, else [general]'s) is spooldir and the
// mailbox's secret.conf has a [general] password, which then wins. A
// secret.conf that cannot be read leaves the mailbox out, with a
// problem: its PIN is unknown.
func (s *Source) locate(t, ut *Tree) ([]located, []string) {
	out, problems, _ := s.locateDefined(t, ut)
	return out, problems
}

// locateDefined is locate, and also every mailbox app_voicemail loads
// (by boxKey, with where it is defined), those whose PIN is unknown too.
func (s *Source) locateDefined(t, ut *Tree) ([]located, []string, map[string]string) {
	problems := append([]string(nil), t.Problems...)
	if name, cmd, ok := strings.Cut(t.ExternPass, "="); ok && strings.TrimSpace(cmd) != "" {
		problems = append(problems, fmt.Sprintf("%s: [general] %s = %s: voicemail PINs are also kept by that program; "+
			"a PIN tollguard writes here is not passed to it, and whatever it keeps may write the old PIN back: change weak PINs there too", s.Path, name, cmd))
	}
	var out []located
	// lines maps each file entry to the mailboxes (in out) whose PIN it
	// is; filled once out is complete, which is when the hands read it.
	lines := map[lineKey][]int{}
	readersOf := func(f *File, entry int) []located {
		var rs []located
		for _, i := range lines[keyOf(f, entry)] {
			rs = append(rs, out[i])
		}
		return rs
	}
	first := map[string]string{} // boxKey → where it was defined
	again := func(at, name, ctx, prev string) {
		problems = append(problems, fmt.Sprintf("%s: mailbox %s@%s is defined again (first at %s); app_voicemail ignores this definition, so it is not audited", at, name, ctx, prev))
	}
	spoolSeen, spoolMissing := false, false
	// spool gives b the PIN of its secret.conf when passwordlocation
	// (where) is spooldir and it has one; false: the PIN is unknown.
	spool := func(b located, where, at, ctx, box, fullName, email string) (located, bool) {
		if where != "spooldir" {
			return b, true
		}
		if !spoolSeen {
			spoolSeen = true
			if _, err := os.Stat(s.spoolDir()); errors.Is(err, fs.ErrNotExist) {
				spoolMissing = true
				problems = append(problems, fmt.Sprintf("%s: passwordlocation = spooldir, but the voicemail spool %s does not exist, so no mailbox's secret.conf was found and the voicemail.conf PINs are audited; "+
					"if Asterisk's spool is elsewhere (astspooldir in asterisk.conf), set [audit.pins] spool_dir: until then --apply rewrites none of these PINs, as Asterisk may use others", s.Path, s.spoolDir()))
			}
		}
		if spoolMissing {
			// Without a secret.conf the PIN is the config line's: name
			// what changing that line changes too.
			lineHand, lineShared := b.hand, b.shared
			b.shared = true
			b.Where += " (voicemail spool not found)"
			b.hand = func(rs []located) string {
				fallback := fmt.Sprintf("or at %s if it has none", at)
				if lineHand != nil && (lineShared || len(rs) > 1) {
					fallback = "or, if it has none: " + lineHand(rs)
				}
				return fmt.Sprintf("the voicemail spool %s was not found, so tollguard cannot tell whether app_voicemail uses this PIN or the one in %s/%s/secret.conf there: "+
					"set [audit.pins] spool_dir to Asterisk's spool (astspooldir in asterisk.conf, plus /voicemail) and run the audit again, or give the mailbox a random PIN (digits) in its secret.conf, %s",
					s.spoolDir(), ctx, box, fallback)
			}
		}
		sf, err := s.secretFile(ctx, box)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: mailbox %s@%s keeps its PIN in the spool (passwordlocation = spooldir), and %v; "+
				"not audited: give tollguard read access (and write access for --apply), or set [audit.pins] spool_dir", at, box, ctx, err))
			return b, false
		case sf != nil:
			se := sf.Entries[0] // the password app_voicemail reads (foldSecret)
			b = located{Mailbox: mailbox(s.Path, sf, se), file: sf, entry: 0, shared: se.pinSplit}
			b.Context, b.Mailbox.Mailbox, b.FullName, b.Email = ctx, box, fullName, email
			if se.pinSplit {
				b.Where += " (with \"+=\" or a ';' or comment inside: change it by hand)"
				b.ByHand = fmt.Sprintf("make the password of %s password = <digits>, a random PIN, with no += line, ';' or comment", sf.Path) + reloadByHand
			}
		}
		return b, true
	}
	if ut != nil {
		problems = append(problems, ut.Problems...)
		for _, u := range ut.usersBoxes() {
			ctx, name := t.UsersContext, u.cat.name
			at := fmt.Sprintf("%s:%d", u.cat.file.Path, u.cat.line)
			// find_or_create: users.conf's mailboxes are created first.
			if strings.HasPrefix(name, "*") {
				problems = append(problems, fmt.Sprintf("%s: users.conf mailbox %s@%s begins with '*', which app_voicemail ignores; rename the category", at, name, ctx))
				continue
			}
			key := boxKey(t.SearchContexts, name, ctx)
			if prev, ok := first[key]; ok {
				again(at, name, ctx, prev)
				continue
			}
			first[key] = at
			b := located{Mailbox: tollguard.Mailbox{Source: s.Path, Where: at, Context: ctx, Mailbox: name,
				PIN: u.pin, Locked: u.locked, FullName: u.fullName, Email: u.email}, file: u.cat.file, entry: -1, shared: true}
			self := b.Key()
			b.hand = usersHand(u, self)
			if u.src == nil {
				b.Where += fmt.Sprintf(" ([%s] has voicemail and no vmsecret)", name)
			} else {
				f, e := u.src.File, u.src.File.Entries[u.src.Index]
				b.file, b.entry, b.Where = f, u.src.Index, fmt.Sprintf("%s:%d", f.Path, e.Line)
				// Rewritten only when the PIN is all of one vmsecret line
				// of the category's own, like a voicemail.conf line.
				whole := string(f.data[e.pinStart:e.pinEnd]) == u.pin && !e.pinSplit
				b.shared = !u.fromVMSecret() || len(u.vmLines) > 1 || u.src.Inherited != "" || len(u.src.Appended) > 0 || f.multi || !whole
				switch {
				case !u.fromVMSecret():
					b.Where += fmt.Sprintf(" (no vmsecret in [%s]: app_voicemail takes its %s, the SIP password, as the PIN)", name, e.Mailbox)
				case len(u.vmLines) > 1:
					b.Where += fmt.Sprintf(" (the last of %d vmsecret lines [%s] reads)", len(u.vmLines), name)
					b.hand = func([]located) string { return vmsecretsHand(u, self, readersOf) }
				case u.src.Inherited != "":
					b.Where += fmt.Sprintf(" (inherited by [%s] from [%s])", name, u.src.Inherited)
					if len(u.src.Appended) > 0 {
						b.Where += fmt.Sprintf(" (with += at %s)", strings.Join(u.src.Appended, ", "))
					}
				case len(u.src.Appended) > 0:
					b.Where += fmt.Sprintf(" (with += at %s)", strings.Join(u.src.Appended, ", "))
				case !whole:
					b.Where += " (a comma, ';' or comment inside the PIN)"
				case f.multi:
					b.Where += " (in a file read more than once)"
				}
			}
			where := t.PasswordLocation
			if u.pwLoc != "" {
				where = u.pwLoc
			}
			var ok bool
			if b, ok = spool(b, where, at, ctx, name, u.fullName, u.email); ok {
				out = append(out, b)
			}
		}
	}
	for _, box := range t.Boxes() {
		f, e := box.File, box.Entry()
		// A template's lines inherited by [general] or [zonemessages]
		// are settings there, not mailboxes (load_users skips both).
		if box.Template || !MailboxContext(box.Context) || (t.AliasesContext != "" && strings.EqualFold(box.Context, t.AliasesContext)) {
			continue
		}
		at := fmt.Sprintf("%s:%d", f.Path, e.Line)
		if strings.HasPrefix(e.Mailbox, "*") {
			problems = append(problems, fmt.Sprintf("%s: mailbox %s@%s begins with '*', which app_voicemail ignores (a caller's '*' jumps to extension a); remove the line", at, e.Mailbox, box.Context))
			continue
		}
		key := boxKey(t.SearchContexts, e.Mailbox, box.Context)
		if prev, ok := first[key]; ok {
			if prev != at {
				again(at, e.Mailbox, box.Context, prev)
			}
			continue
		}
		first[key] = at
		b := located{Mailbox: mailbox(s.Path, f, e), file: f, entry: box.Index, from: box.Inherited}
		b.Mailbox.Context = box.Context
		for i, a := range box.Appended {
			b.appends = append(b.appends, fmt.Sprintf("%s in [%s]", a, box.appendedIn[i]))
		}
		if box.Inherited != "" || f.multi || len(box.Appended) > 0 || e.pinSplit {
			b.shared = true
		}
		if box.Inherited != "" {
			b.Where = fmt.Sprintf("%s (inherited by [%s] from [%s])", at, box.Context, box.Inherited)
		}
		if len(box.Appended) > 0 {
			// The PIN may be partly on the "+=" lines: change it by hand.
			b.Where += fmt.Sprintf(" (with += at %s)", strings.Join(box.Appended, ", "))
		}
		if e.pinSplit {
			// A rewrite would change more than the PIN: SetPIN refuses,
			// and one such mailbox must not stop the others' rewrite.
			b.Where += " (a ';' or comment inside the PIN: change it by hand)"
		}
		b.hand = vmConfHand(t, box, e, at)
		where := t.PasswordLocation
		if e.PasswordLocation != "" {
			where = e.PasswordLocation
		}
		var ok bool
		if b, ok = spool(b, where, at, box.Context, e.Mailbox, e.FullName, e.Email); ok {
			out = append(out, b)
		}
	}
	// A line inherited by another category is that category's
	// mailbox's PIN too: a new PIN there would change both.
	for i, b := range out {
		if b.entry < 0 {
			continue // a users.conf mailbox with no PIN line
		}
		k := keyOf(b.file, b.entry)
		lines[k] = append(lines[k], i)
	}
	for _, us := range lines {
		if len(us) < 2 {
			continue
		}
		rs := readersOf(out[us[0]].file, out[us[0]].entry)
		for _, i := range us {
			out[i].shared = true
			if out[i].Where == fmt.Sprintf("%s:%d", out[i].file.Path, out[i].file.Entries[out[i].entry].Line) {
				out[i].Where += fmt.Sprintf(" (also the PIN of %s)", strings.Join(others(keys(rs), out[i].Key()), ", "))
			}
		}
	}
	// Every PIN --apply leaves alone says why and what to do instead:
	// one offered to SetPINs and skipped would be reported as changed
	// while the audit ran.
	for i := range out {
		switch b := &out[i]; {
		case !b.shared || b.ByHand != "":
		case b.hand != nil:
			var rs []located
			if b.entry >= 0 {
				rs = readersOf(b.file, b.entry)
			}
			b.ByHand = b.hand(rs) + reloadByHand
		default:
			b.ByHand = fmt.Sprintf("the line at %s is not this mailbox's alone: give it a line of its own with a random PIN (digits)", b.Where) + reloadByHand
		}
	}
	return out, problems, first
}

// boxKey is how app_voicemail's find_user finds a mailbox it has loaded:
// by name and context, in any letter case, or by name alone with
// searchcontexts. A second definition is ignored (again), and a
// realtime row of a mailbox it has is never read.
func boxKey(search bool, name, ctx string) string {
	if search {
		return strings.ToLower(name)
	}
	return strings.ToLower(name) + "@" + strings.ToLower(ctx)
}

// usersHand is what the admin changes instead of --apply for users.conf
// mailbox u (key), given the mailboxes whose PIN its line is.
func usersHand(u usersBox, key string) func(readers []located) string {
	name := u.cat.name
	cat := fmt.Sprintf("[%s] in %s", name, u.cat.file.Path)
	return func(rs []located) string {
		// also: other categories inheriting [name] read the line too,
		// and get whatever is written there.
		also := ""
		switch o := others(keys(rs), key); {
		case len(o) == 1:
			also = fmt.Sprintf(" (the line is also the PIN of %s, which inherits it from [%s] and gets the new PIN too unless it has a vmsecret of its own)", o[0], name)
		case len(o) > 1:
			also = fmt.Sprintf(" (the line is also the PIN of %s, which inherit it from [%s] and get the new PIN too unless they have a vmsecret of their own)", strings.Join(o, ", "), name)
		}
		if u.src == nil || !u.fromVMSecret() {
			return fmt.Sprintf("add vmsecret = <digits>, a random PIN, to %s, or set hasvoicemail = no there if it needs no mailbox", cat)
		}
		f, e := u.src.File, u.src.File.Entries[u.src.Index]
		switch {
		case u.src.Inherited != "":
			// "[name](+,tmpl)" brings the line in at that header: a line
			// above it comes first, and is not the PIN.
			var after []string
			if u.cat.last != fmt.Sprintf("%s:%d", u.cat.file.Path, u.cat.line) {
				after = append(after, "its header at "+u.cat.last)
			}
			why := ""
			if own := appendsIn(u.src, name); len(own) > 0 {
				after = append(after, "its vmsecret += "+lines(own))
				why = "; a += line adds its text to the last vmsecret line above it, so a line added above it would get that text too"
			}
			below := ""
			if len(after) > 0 {
				below = " below " + strings.Join(after, " and ")
			}
			return fmt.Sprintf("add vmsecret = <digits>, a random PIN, to %s%s (a line of its own wins over [%s]'s, which is the PIN of every category inheriting it%s), or set hasvoicemail = no there if it needs no mailbox", cat, below, u.src.home, why)
		case len(u.src.Appended) > 0:
			return fmt.Sprintf("replace the vmsecret and its += lines in %s with one vmsecret = <digits>, a random PIN%s", cat, also)
		case string(f.data[e.pinStart:e.pinEnd]) != u.pin || e.pinSplit:
			return fmt.Sprintf("make the vmsecret line of %s vmsecret = <digits>, a random PIN with nothing after it%s", cat, also)
		case f.multi:
			return fmt.Sprintf("set vmsecret = <digits>, a random PIN, in %s", cat)
		}
		// Its own vmsecret line, which categories inheriting [name] may
		// read too (their own vmsecret wins).
		return fmt.Sprintf("the vmsecret line at %s:%d is also the PIN of %s: add vmsecret = <digits>, a random PIN, to the category of each that inherits it from [%s], and it is [%s]'s alone",
			f.Path, e.Line, strings.Join(others(keys(rs), key), ", "), name, name)
	}
}

// vmsecretsHand is what the admin changes when users.conf mailbox u
// (key) reads several vmsecret lines: apply_options_full reads them all,
// inherited ones first, and keeps the last, so the others may be another
// category's (a template's) and cannot be dropped from [name] itself.
func vmsecretsHand(u usersBox, key string, readersOf func(*File, int) []located) string {
	name := u.cat.name
	var where, drop []string
	own := 0
	seen := map[string]bool{}
	for _, l := range u.vmLines {
		at := fmt.Sprintf("%s:%d", l.File.Path, l.File.Entries[l.Index].Line)
		if l.Inherited == "" {
			own++
			where = append(where, at+" (its own)")
			continue
		}
		through := ""
		if !strings.EqualFold(l.home, l.Inherited) {
			through = " through [" + l.Inherited + "]"
		}
		where = append(where, fmt.Sprintf("%s (in [%s], which [%s] inherits%s)", at, l.home, name, through))
		if seen[l.home+"\x00"+l.Inherited] {
			continue
		}
		seen[l.home+"\x00"+l.Inherited] = true
		rs := readersOf(l.File, l.Index)
		o := others(keys(rs), key)
		homeReads := false // [home] is a mailbox, and the line its PIN
		for _, r := range rs {
			homeReads = homeReads || strings.EqualFold(r.Mailbox.Mailbox, l.home)
		}
		also := ""
		switch {
		case homeReads:
			drop = append(drop, fmt.Sprintf("make [%s] stop inheriting [%s] (the line is the PIN of %s)", name, l.Inherited, strings.Join(o, ", ")))
			continue
		case len(o) == 1:
			also = fmt.Sprintf(" (also the PIN of %s: give it a vmsecret line of its own first)", o[0])
		case len(o) > 1:
			also = fmt.Sprintf(" (also the PIN of %s: give each a vmsecret line of its own first)", strings.Join(o, ", "))
		}
		drop = append(drop, fmt.Sprintf("delete the vmsecret line of [%s]%s or make [%s] stop inheriting [%s]", l.home, also, name, l.Inherited))
	}
	// The last line is the PIN: changing it, or adding a line after it,
	// is enough. The rest only lets a later --apply rewrite it itself.
	// An inherited last line comes in at a header of [name] ("(+,t)"
	// adds [t]'s after [name]'s own), so a line below its last header
	// comes after it.
	// A "vmsecret +=" line of [name]'s adds its text to the last line
	// above it: to the one set, or to one added above it.
	last := u.vmLines[len(u.vmLines)-1]
	appends := appendsIn(last, name)
	fix := fmt.Sprintf("set [%s]'s own vmsecret line to vmsecret = <digits>, a random PIN", name)
	switch {
	case last.Inherited != "":
		below, why := "its header at "+u.cat.last, ""
		if len(appends) > 0 {
			below += " and its vmsecret += " + lines(appends)
			why = ", and a += line adds its text to the last vmsecret line above it"
		}
		fix = fmt.Sprintf("add vmsecret = <digits>, a random PIN, to [%s] below %s (a line there comes after every line [%s] inherits%s)", name, below, name, why)
		if own > 0 {
			drop = append(drop, fmt.Sprintf("keep one vmsecret line of [%s]'s own", name))
		}
	case own > 1:
		fix = fmt.Sprintf("set the last of [%s]'s own vmsecret lines to vmsecret = <digits>, a random PIN", name)
		drop = append(drop, fmt.Sprintf("keep one vmsecret line of [%s]'s own", name))
	}
	if last.Inherited == "" && len(appends) > 0 {
		fix += ", and delete its += " + lines(appends) + ": a += line adds its text to the last vmsecret line above it"
	}
	return fmt.Sprintf("[%s] in %s reads %d vmsecret lines, %s, and app_voicemail takes the last (%s:%d) as the PIN: %s. tollguard rewrites it itself only once [%s] reads one vmsecret line: %s",
		name, u.cat.file.Path, len(u.vmLines), strings.Join(where, ", "), last.File.Path, last.File.Entries[last.Index].Line, fix, name, strings.Join(drop, "; "))
}

// appendsIn are the "+=" lines of category name (file:line) that
// appended to b's value.
func appendsIn(b *Box, name string) []string {
	var out []string
	for i, a := range b.Appended {
		if b.appendedIn[i] == name {
			out = append(out, a)
		}
	}
	return out
}

// lines is "line at A" or "lines at A, B".
func lines(at []string) string {
	if len(at) == 1 {
		return "line at " + at[0]
	}
	return "lines at " + strings.Join(at, ", ")
}

// vmConfHand is what the admin changes instead of --apply when the
// voicemail.conf line e (at, as box places it) is not the mailbox's
// alone, given the mailboxes whose PIN it is.
func vmConfHand(t *Tree, box Box, e Entry, at string) func(readers []located) string {
	cat := box.home
	return func(rs []located) string {
		shared := len(rs) > 1 || box.Inherited != ""
		switch {
		case box.File.multi:
			return fmt.Sprintf("%s is read %d times (included more than once), so its %s line at %s is the PIN of every copy (%s): give it a random PIN (digits) there, which all of them get, or include the file once",
				box.File.Path, t.reads[box.File.key], e.Mailbox, at, strings.Join(keys(rs), ", "))
		case len(box.Appended) > 0 && !shared:
			return fmt.Sprintf("the %s line at %s has += lines (%s) that may hold part of the PIN: replace them all with one %s line with a random PIN (digits)",
				e.Mailbox, at, strings.Join(box.Appended, ", "), e.Mailbox)
		case e.pinSplit && !shared:
			return fmt.Sprintf("the PIN of the %s line at %s has a ';' or comment inside it: make it a random PIN (digits) with nothing inside", e.Mailbox, at)
		}
		// The line, and the "+=" lines any of its readers append to it
		// (in its category, which all of them read, or in one of
		// theirs), and whose PIN it is.
		line := fmt.Sprintf("the %s line of [%s] at %s", e.Mailbox, cat, at)
		var appends []string
		seen := map[string]bool{}
		for _, r := range rs {
			for _, a := range r.appends {
				if !seen[a] {
					seen[a] = true
					appends = append(appends, a)
				}
			}
		}
		whose := fmt.Sprintf("is the PIN of %d mailboxes (%s)", len(rs), strings.Join(keys(rs), ", "))
		if len(rs) < 2 {
			whose = fmt.Sprintf("is the PIN of every category inheriting [%s]", cat)
		}
		fix := "give it a random PIN (digits) there"
		switch {
		case len(appends) > 0:
			line += fmt.Sprintf(", with += lines at %s,", strings.Join(appends, ", "))
			whose = strings.Replace(whose, "is the PIN of", "is read by", 1)
			fix = fmt.Sprintf("delete the += lines and give the %s line a random PIN (digits)", e.Mailbox)
		case e.pinSplit:
			line += ", with a ';' or comment inside its PIN,"
			fix = "give it a random PIN (digits) there, with nothing inside"
		}
		// A category inheriting another reader's category gets the line
		// (or the new one there) first, whatever line it has of its own.
		var stop []string
		for _, r := range rs {
			for _, q := range rs {
				if r.from != "" && strings.EqualFold(r.from, q.Context) {
					stop = append(stop, fmt.Sprintf("[%s] stop inheriting [%s]", r.Context, r.from))
					break
				}
			}
		}
		own := "give each of them a line of its own with its own PIN instead of this one"
		if len(stop) > 0 {
			own += " and make " + strings.Join(stop, ", ")
		}
		return fmt.Sprintf("%s %s: %s, which all of them get, "+
			"or %s (a mailbox's own line is ignored while an inherited one comes first)",
			line, whose, fix, own)
	}
}

// keys are the mailboxes' keys.
func keys(bs []located) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Key()
	}
	return out
}

// others is keys without key.
func others(keys []string, key string) []string {
	var out []string
	for _, k := range keys {
		if k != key {
			out = append(out, k)
		}
	}
	return out
}

// secretFile reads CONTEXT/MAILBOX/secret.conf under the spool: nil if
// it does not exist or holds no password (Asterisk then falls back to
// voicemail.conf).
func (s *Source) secretFile(context, box string) (*File, error) {
	dir := s.spoolDir()
	if strings.ContainsAny(context+box, "/\x00") || context == "." || context == ".." || box == "." || box == ".." {
		return nil, fmt.Errorf("its name cannot be a spool path")
	}
	path := filepath.Join(dir, context, box, "secret.conf")
	data, err := readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sf := ParseSecret(path, data)
	if sf.unsure != "" {
		return nil, fmt.Errorf("%s (%s) may hold its PIN in a way tollguard does not read", path, sf.unsure)
	}
	if len(sf.Entries) == 0 {
		return nil, nil
	}
	sf.backupBase = "secret.conf-" + context + "-" + box
	return sf, nil
}

// readSecret reads a spool secret.conf following no symlink at CONTEXT,
// MAILBOX or secret.conf: Asterisk writes plain files there, and the
// spool is its user's, so a symlink could point --apply, run as root, at
// any file that reads as a secret.conf (or show such a file's PIN).
func readSecret(path string) ([]byte, error) {
	d, err := openSecretDir(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), filepath.Base(path), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) {
		return nil, fmt.Errorf("%s is a symlink, which Asterisk never writes there; make it a plain file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading it failed: %w", &fs.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a plain file (%v); make it one", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading it failed: %w", err)
	}
	return data, nil
}

func (s *Source) spoolDir() string {
	if s.SpoolDir == "" {
		return DefaultSpoolDir
	}
	return s.SpoolDir
}

func mailbox(src string, f *File, e Entry) tollguard.Mailbox {
	return tollguard.Mailbox{Source: src, Where: fmt.Sprintf("%s:%d", f.Path, e.Line), Context: e.Context, Mailbox: e.Mailbox,
		PIN: e.PIN, Locked: e.Locked, FullName: e.FullName, Email: e.Email}
}

// SetPINs rereads the files and rewrites, atomically per file, each
// PIN whose mailbox is still where it was read with the same PIN. The
// rest of every file is kept byte for byte.
func (s *Source) SetPINs(ctx context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	t, ut, err := s.load()
	if err != nil {
		return nil, err
	}
	want := map[string]tollguard.PINChange{}
	for _, c := range changes {
		want[c.Mailbox.Where+"\x00"+c.Mailbox.Key()] = c
	}
	boxes, _ := s.locate(t, ut)
	var files []*File // in the order first seen
	mine := map[*File][]tollguard.PINChange{}
	for _, b := range boxes {
		c, ok := want[b.Where+"\x00"+b.Key()]
		if !ok || b.PIN != c.Mailbox.PIN || b.shared {
			continue // not asked for, changed since it was read, or not this mailbox's alone
		}
		if err := b.file.SetPIN(b.entry, c.NewPIN); err != nil {
			return nil, err
		}
		if mine[b.file] == nil {
			files = append(files, b.file)
		}
		mine[b.file] = append(mine[b.file], c)
	}
	var done []tollguard.PINChange
	var notDurable []error
	confWritten, secretWritten := false, false
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return done, errors.Join(append(notDurable, err)...)
		}
		if err := writeFileAtomic(f.Path, f.Original(), f.Bytes(), s.BackupDir, f.backupBase, s.now()); err != nil {
			var nd *NotDurableError
			if !errors.As(err, &nd) {
				return done, errors.Join(append(notDurable, err)...)
			}
			// Written: its PINs are in force and must be reported.
			notDurable = append(notDurable, err)
		}
		done = append(done, mine[f]...)
		if f.secret {
			secretWritten = true
		} else {
			confWritten = true
		}
	}
	if secretWritten && !confWritten {
		// app_voicemail's reload rereads nothing unless voicemail.conf
		// changed (its size or mtime), and reads secret.conf files only
		// then: without this the old PINs would work until a restart.
		// Set to now, as touch does: that needs write access, where
		// explicit times need the owner (Asterisk's user, not ours).
		if err := unix.Utimes(s.Path, nil); err != nil {
			return done, errors.Join(append(notDurable, fmt.Errorf("the new PINs are in secret.conf, but app_voicemail rereads them only when %s changes, and tollguard could not touch it (%v): touch it as its owner and reload app_voicemail, or restart Asterisk; until then the old PINs work", s.Path, err))...)
		}
	}
	return done, errors.Join(notDurable...)
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
