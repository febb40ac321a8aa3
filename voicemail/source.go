package voicemail

import (
	"context"
	"fmt"
	"time"

	"github.com/tollguard/tollguard"
)

// Source is voicemail.conf as a tollguard.MailboxSource.
type Source struct {
	Path      string // voicemail.conf
	ConfigDir string // for relative #include paths; "" = Path's directory
	// BackupDir receives a copy of each file before it is rewritten;
	// "" = next to the file, as a dot-file (".voicemail.conf.tollguard-
	// 20261123T010203Z.bak") so that "#include *.conf" globs skip it.
	BackupDir string
	Now       func() time.Time
}

var _ tollguard.MailboxSource = (*Source)(nil)

// Name is the config file's path.
func (s *Source) Name() string { return s.Path }

// ReloadModule is app_voicemail, which rereads voicemail.conf on reload.
func (s *Source) ReloadModule() string { return "app_voicemail.so" }

// Mailboxes lists every mailbox in voicemail.conf and its includes.
func (s *Source) Mailboxes(ctx context.Context) ([]tollguard.Mailbox, []string, error) {
	t, err := Load(s.Path, s.ConfigDir)
	if err != nil {
		return nil, nil, err
	}
	var out []tollguard.Mailbox
	for _, f := range t.Files {
		for _, e := range f.Entries {
			out = append(out, mailbox(s.Path, f, e))
		}
	}
	return out, t.Problems, nil
}

func mailbox(src string, f *File, e Entry) tollguard.Mailbox {
	return tollguard.Mailbox{Source: src, Where: fmt.Sprintf("%s:%d", f.Path, e.Line), Context: e.Context, Mailbox: e.Mailbox,
		PIN: e.PIN, Locked: e.Locked, FullName: e.FullName, Email: e.Email}
}

// SetPINs rereads the files and rewrites, atomically per file, each
// PIN whose mailbox is still where it was read with the same PIN. The
// rest of every file is kept byte for byte.
func (s *Source) SetPINs(ctx context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	t, err := Load(s.Path, s.ConfigDir)
	if err != nil {
		return nil, err
	}
	want := map[string]tollguard.PINChange{}
	for _, c := range changes {
		want[c.Mailbox.Where+"\x00"+c.Mailbox.Key()] = c
	}
	var done []tollguard.PINChange
	for _, f := range t.Files {
		var mine []tollguard.PINChange
		for i, e := range f.Entries {
			m := mailbox(s.Path, f, e)
			c, ok := want[m.Where+"\x00"+m.Key()]
			if !ok || m.PIN != c.Mailbox.PIN {
				continue // not asked for, or changed since it was read
			}
			if err := f.SetPIN(i, c.NewPIN); err != nil {
				return done, err
			}
			mine = append(mine, c)
		}
		if !f.Changed() {
			continue
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if err := WriteFileAtomic(f.Path, f.Original(), f.Bytes(), s.BackupDir, s.now()); err != nil {
			return done, err
		}
		done = append(done, mine...)
	}
	return done, nil
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
