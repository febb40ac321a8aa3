package voicemail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WriteFileAtomic replaces the file at path, whose contents were old
// when read, with data: it refuses if the file changed since, copies
// the original to a backup, writes a temporary file in the same
// directory with the same mode and owner, syncs it and renames it over
// the original. A symlink is followed and its target replaced; the
// directory is held open meanwhile, so a later swap cannot move the
// write elsewhere.
func WriteFileAtomic(path string, old, data []byte, backupDir string, now time.Time) error {
	return writeFileAtomic(path, old, data, backupDir, "", now)
}

// writeFileAtomic is WriteFileAtomic with the backup named after
// backupBase ("" = the file's name): every mailbox's secret.conf has
// the same name, and their backups may share one directory. A file
// with a backupBase (a secret.conf) is not replaced if it is a symlink.
func writeFileAtomic(path string, old, data []byte, backupDir, backupBase string, now time.Time) error {
	real, err := filepath.EvalSymlinks(path)
	if backupBase != "" {
		// A secret.conf in the spool, which Asterisk's user may turn
		// into a symlink at any time: never followed (readAt refuses).
		real, err = filepath.Abs(path)
	}
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	dir, base := filepath.Split(real)
	// Everything below happens in the directory as opened here, by its
	// descriptor: a secret.conf's directory is Asterisk's to change, and
	// one swapped for a symlink after the check must not send the write
	// (as root, maybe) into the symlink's target.
	var d *os.File
	if backupBase != "" {
		d, err = openSecretDir(real)
	} else {
		d, err = os.Open(dir)
	}
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	defer d.Close()
	dfd := int(d.Fd())
	st, cur, err := readAt(dfd, base, path, old)
	if err != nil {
		return err
	}
	if n := links(st); n > 1 {
		// The rename replaces this name only: the others would keep
		// the weak PINs, and whoever reads the file by them too.
		return fmt.Errorf("%s has %d hard links: a rewrite would replace this name only and leave the old PINs under the others; nothing written: make it a file of its own (cp, then mv over the link) and run the audit again", path, n)
	}
	uid, gid, hasOwner := owner(st)
	bfd := dfd
	if backupDir == "" {
		backupDir = dir
	} else {
		bfd = unix.AT_FDCWD // the admin's own choice
	}
	// A backup is never overwritten: a second rewrite within the same
	// second gets the next free name.
	if backupBase == "" {
		backupBase = base
	}
	stem := "." + backupBase + ".tollguard-" + now.UTC().Format("20060102T150405Z")
	if bfd == unix.AT_FDCWD {
		stem = filepath.Join(backupDir, stem)
	}
	for n := 1; ; n++ {
		backup := stem + ".bak"
		if n > 1 {
			backup = fmt.Sprintf("%s-%d.bak", stem, n)
		}
		// The old PINs stay readable by the file's owner only.
		err := writeNew(bfd, backup, cur, st.Mode().Perm()&0o600, uid, gid, hasOwner)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || n >= 100 {
			return fmt.Errorf("back up %s (nothing written): %w", path, err)
		}
	}
	// A backup in a directory of its own is made to last before the
	// rewrite: the directory's fsync after the rename covers only a
	// backup kept beside the file.
	if bfd == unix.AT_FDCWD {
		if err := syncDir(backupDir); err != nil {
			return fmt.Errorf("back up %s to %s (nothing written): syncing the backup directory failed: %w", path, backupDir, err)
		}
	}
	var tmp *os.File
	var name string
	for range 100 {
		name = fmt.Sprintf(".%s.tollguard-%d.tmp", base, rand.Uint64())
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			tmp = os.NewFile(uintptr(fd), filepath.Join(dir, name))
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("rewrite %s: %w", path, err)
		}
	}
	if tmp == nil {
		return fmt.Errorf("rewrite %s: no free temporary name in %s", path, dir)
	}
	ok := false
	defer func() {
		if !ok {
			_ = unix.Unlinkat(dfd, name, 0)
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
	if err := syncFile(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if afterCheck != nil {
		afterCheck()
	}
	// Once more, just before the rename: an edit made while the new
	// file was written and synced (Asterisk saves a PIN a user changed
	// by phone in place) would otherwise be lost without a word.
	if _, _, err := readAt(dfd, base, path, old); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, name, dfd, base); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	ok = true
	// The rename is done, but only the directory's fsync makes it
	// survive a crash: if that fails, say so rather than claim it safe.
	if err := syncFile(d); err != nil {
		return &NotDurableError{Path: path, Err: err}
	}
	return nil
}

// NotDurableError is a rewrite that is in place but whose directory
// could not be synced: a crash (power loss) may undo the rename and
// bring the old file, with the old PINs, back.
type NotDurableError struct {
	Path string
	Err  error
}

func (e *NotDurableError) Error() string {
	return fmt.Sprintf("the new %s is in place, but syncing its directory failed (%v): a crash or power loss may bring the old file, and the old PINs, back; run sync, check the file, and look at the disk", e.Path, e.Err)
}

func (e *NotDurableError) Unwrap() error { return e.Err }

// syncFile is f.Sync; tests replace it to make an fsync fail.
var syncFile = (*os.File).Sync

// syncDir opens dir and syncs it through syncFile.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return syncFile(d)
}

// openSecretDir opens the directory of a spool secret.conf
// (SPOOL/CONTEXT/MAILBOX/secret.conf) without following a symlink at
// CONTEXT or MAILBOX: both are Asterisk's user's to swap, and one made a
// symlink to a root-owned directory must not lead tollguard's read or
// write there. SPOOL itself is the admin's setting and is followed.
func openSecretDir(path string) (*os.File, error) {
	box := filepath.Dir(path)
	ctx := filepath.Dir(box)
	d, err := os.Open(filepath.Dir(ctx))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{filepath.Base(ctx), filepath.Base(box)} {
		sub := filepath.Join(d.Name(), name)
		fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		d.Close()
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.ENOTDIR) {
			// ELOOP (Linux, macOS) or EMLINK (FreeBSD): a symlink.
			return nil, fmt.Errorf("%s is a symlink or not a directory, which Asterisk never makes in its spool; make it a plain directory", sub)
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: sub, Err: err}
		}
		d = os.NewFile(uintptr(fd), sub)
	}
	return d, nil
}

// readAt reads base in the directory dfd, not following a symlink, and
// fails unless it is a regular file holding old.
func readAt(dfd int, base, path string, old []byte) (os.FileInfo, []byte, error) {
	changed := fmt.Errorf("%s changed while tollguard was rewriting PINs; nothing written: run the audit again", path)
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0) // O_NONBLOCK: a FIFO put there must not hang the run
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", changed, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	cur, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() || !bytes.Equal(cur, old) {
		return nil, nil, changed
	}
	return st, cur, nil
}

// afterCheck, if set (by tests), runs once the new file is written,
// before the last check.
var afterCheck func()

// writeNew creates path (relative to the directory dfd) exclusively,
// never overwriting, with data, mode and owner.
func writeNew(dfd int, path string, data []byte, mode os.FileMode, uid, gid int, hasOwner bool) error {
	fd, err := unix.Openat(dfd, path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), path)
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = unix.Unlinkat(dfd, path, 0)
		return err
	}
	if err := fixOwnerMode(f, mode, uid, gid, hasOwner); err != nil {
		f.Close()
		_ = unix.Unlinkat(dfd, path, 0)
		return err
	}
	// A backup that is not synced or closed is not a backup: removed,
	// so a failed run leaves only the original.
	if err := syncFile(f); err != nil {
		f.Close()
		_ = unix.Unlinkat(dfd, path, 0)
		return err
	}
	if err := f.Close(); err != nil {
		_ = unix.Unlinkat(dfd, path, 0)
		return err
	}
	return nil
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

// links is fi's hard-link count, 1 if the system does not say.
func links(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

func owner(fi os.FileInfo) (uid, gid int, ok bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid), true
	}
	return 0, 0, false
}
