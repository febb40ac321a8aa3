package voicemail

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// WriteFileAtomic replaces the file at path, whose contents were old
// when read, with data: it refuses if the file changed since, copies
// the original to a backup, writes a temporary file in the same
// directory with the same mode and owner, syncs it and renames it over
// the original. A symlink is followed and its target replaced.
func WriteFileAtomic(path string, old, data []byte, backupDir string, now time.Time) error {
	return writeFileAtomic(path, old, data, backupDir, "", now)
}

// writeFileAtomic is WriteFileAtomic with the backup named after
// backupBase ("" = the file's name): every mailbox's secret.conf has
// the same name, and their backups may share one directory.
func writeFileAtomic(path string, old, data []byte, backupDir, backupBase string, now time.Time) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return err
	}
	cur, err := os.ReadFile(real)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, old) {
		return fmt.Errorf("%s changed while tollguard was rewriting PINs; nothing written: run the audit again", path)
	}
	uid, gid, hasOwner := owner(st)
	dir, base := filepath.Split(real)
	if backupDir == "" {
		backupDir = dir
	}
	// A backup is never overwritten: a second rewrite within the same
	// second gets the next free name.
	if backupBase == "" {
		backupBase = base
	}
	stem := filepath.Join(backupDir, "."+backupBase+".tollguard-"+now.UTC().Format("20060102T150405Z"))
	for n := 1; ; n++ {
		backup := stem + ".bak"
		if n > 1 {
			backup = fmt.Sprintf("%s-%d.bak", stem, n)
		}
		// The old PINs stay readable by the file's owner only.
		err := writeNew(backup, cur, st.Mode().Perm()&0o600, uid, gid, hasOwner)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || n >= 100 {
			return fmt.Errorf("back up %s (nothing written): %w", path, err)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tollguard-*.tmp")
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := fixOwnerMode(tmp, st.Mode().Perm(), uid, gid, hasOwner); err != nil {
		tmp.Close()
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := os.Rename(name, real); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable
		d.Close()
	}
	return nil
}

// writeNew creates path exclusively (never overwriting) with data,
// mode and owner.
func writeNew(path string, data []byte, mode os.FileMode, uid, gid int, hasOwner bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := fixOwnerMode(f, mode, uid, gid, hasOwner); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fixOwnerMode gives f the original's mode and owner. Changing the
// owner needs root; when tollguard is not root the owner can only stay
// its own, and a file owned by someone else cannot be replaced safely.
func fixOwnerMode(f *os.File, mode os.FileMode, uid, gid int, hasOwner bool) error {
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if !hasOwner {
		return nil
	}
	fst, err := f.Stat()
	if err != nil {
		return err
	}
	if u, g, ok := owner(fst); ok && u == uid && g == gid {
		return nil
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("keep owner %d:%d (run tollguard as root or as the file's owner): %w", uid, gid, err)
	}
	return nil
}

func owner(fi os.FileInfo) (uid, gid int, ok bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid), true
	}
	return 0, 0, false
}
