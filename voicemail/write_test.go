package voicemail

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWriteFileAtomic(t *testing.T) {
	now := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)
	t.Run("KeepsModeOwnerAndBacksUp", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "voicemail.conf")
		old := []byte("[default]\n1001 => 1234\n")
		write(t, p, string(old))
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
		// As root, give the file to another owner so keeping it means
		// something; otherwise it stays ours and must stay ours.
		_ = os.Chown(p, 4242, 4243)
		before, _ := os.Stat(p)
		if err := WriteFileAtomic(p, old, []byte("[default]\n1001 => 739104\n"), "", now); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		if string(got) != "[default]\n1001 => 739104\n" {
			t.Errorf("content %q", got)
		}
		after, _ := os.Stat(p)
		if after.Mode() != before.Mode() {
			t.Errorf("mode %v, want %v", after.Mode(), before.Mode())
		}
		bu, bg, _ := owner(before)
		au, ag, _ := owner(after)
		if au != bu || ag != bg {
			t.Errorf("owner %d:%d, want %d:%d", au, ag, bu, bg)
		}
		backup := filepath.Join(dir, ".voicemail.conf.tollguard-20261123T010203Z.bak")
		b, err := os.ReadFile(backup)
		if err != nil || string(b) != string(old) {
			t.Errorf("backup %q, %v", b, err)
		}
		if st, _ := os.Stat(backup); st.Mode().Perm() != 0o600 {
			t.Errorf("backup mode %v, want 0600: the old PINs are the owner's only", st.Mode().Perm())
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("temporary file left behind: %s", e.Name())
			}
		}
	})
	t.Run("RefusesWhenChangedMeanwhile", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "voicemail.conf")
		write(t, p, "[default]\n1001 => 1234\n")
		err := WriteFileAtomic(p, []byte("something else"), []byte("x"), "", now)
		if err == nil || !strings.Contains(err.Error(), "changed while") {
			t.Fatalf("err %v", err)
		}
		if got, _ := os.ReadFile(p); string(got) != "[default]\n1001 => 1234\n" {
			t.Errorf("file was written: %q", got)
		}
	})
	t.Run("FollowsSymlink", func(t *testing.T) {
		dir := t.TempDir()
		real := filepath.Join(dir, "real.conf")
		link := filepath.Join(dir, "voicemail.conf")
		write(t, real, "a")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(link, []byte("a"), []byte("b"), t.TempDir(), now); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
			t.Error("the symlink was replaced by a file")
		}
		if got, _ := os.ReadFile(real); string(got) != "b" {
			t.Errorf("target %q", got)
		}
	})
	t.Run("BackupNeverOverwritten", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "voicemail.conf")
		write(t, p, "a")
		if err := WriteFileAtomic(p, []byte("a"), []byte("b"), "", now); err != nil {
			t.Fatal(err)
		}
		// Same second again: the first backup keeps "a".
		if err := WriteFileAtomic(p, []byte("b"), []byte("c"), "", now); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{".voicemail.conf.tollguard-20261123T010203Z.bak": "a", ".voicemail.conf.tollguard-20261123T010203Z-2.bak": "b", "voicemail.conf": "c"} {
			if got, err := os.ReadFile(filepath.Join(dir, name)); string(got) != want {
				t.Errorf("%s: %q, %v; want %q", name, got, err, want)
			}
		}
	})
}

// TestWriteFileAtomicStaysInItsDirectory: a secret.conf's directory in
// the spool is Asterisk's to change. If it is swapped for a symlink to
// another directory after the file was read and checked (as its owner
// could do, watching for tollguard's backup), the new file must still
// land in the directory that was checked, never in the symlink's
// target: tollguard may run as root, and that target may be /etc.
func TestWriteFileAtomicStaysInItsDirectory(t *testing.T) {
	spool, elsewhere := t.TempDir(), t.TempDir()
	box := filepath.Join(spool, "1001")
	p := filepath.Join(box, "secret.conf")
	if err := os.Mkdir(box, 0o750); err != nil {
		t.Fatal(err)
	}
	write(t, p, "[general]\npassword=1234\n")
	afterCheck = func() {
		if err := os.Rename(box, box+".moved"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, box); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { afterCheck = nil }()
	err := WriteFileAtomic(p, []byte("[general]\npassword=1234\n"), []byte("[general]\npassword=739104\n"), "", time.Now())
	ents, _ := os.ReadDir(elsewhere)
	if len(ents) != 0 {
		t.Fatalf("wrote %d files into the symlink's target (err %v): %v", len(ents), err, ents)
	}
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(box+".moved", "secret.conf")); string(b) != "[general]\npassword=739104\n" {
		t.Errorf("the checked directory's file is %q", b)
	}
}

// TestWriteFileAtomicKeepsAnEditMadeMeanwhile: a file edited while the
// new one was being written and synced (Asterisk saving a PIN its user
// changed by phone) is left as edited, with an error, not overwritten.
func TestWriteFileAtomicKeepsAnEditMadeMeanwhile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "voicemail.conf")
	write(t, p, "[default]\n1001 => 1234\n")
	afterCheck = func() { write(t, p, "[default]\n1001 => 583920\n") }
	defer func() { afterCheck = nil }()
	err := WriteFileAtomic(p, []byte("[default]\n1001 => 1234\n"), []byte("[default]\n1001 => 739104\n"), t.TempDir(), time.Now())
	refused(t, err, "changed while tollguard was rewriting PINs; nothing written", p, "[default]\n1001 => 583920\n", dir)
}

// refused wants err to say msg, file to hold want still, and nothing
// but that file in dir: no backup, no temporary file left.
func refused(t *testing.T, err error, msg, file, want, dir string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), msg) {
		t.Errorf("err %v, want %q", err, msg)
	}
	if b, _ := os.ReadFile(file); string(b) != want {
		t.Errorf("%s is %q, want %q", file, b, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files in %s: %v", dir, ents)
	}
}

// TestSecretWriteFollowsNoSymlink: a secret.conf turned into a symlink
// between SetPINs' read and its write (the spool is Asterisk's user's)
// is not written through, even to a file holding the same bytes.
func TestSecretWriteFollowsNoSymlink(t *testing.T) {
	box, other := t.TempDir(), t.TempDir()
	target := filepath.Join(other, "target.conf")
	old := "[general]\npassword=1234\n"
	write(t, target, old)
	link := filepath.Join(box, "secret.conf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	err := writeFileAtomic(link, []byte(old), []byte("[general]\npassword=739104\n"), "", "secret.conf-default-1001", time.Now())
	refused(t, err, "changed while tollguard was rewriting PINs", target, old, other)
}

// TestRewriteRefusesHardLinks: the rename replaces one name, so a file
// with other hard links would keep its weak PINs under those: nothing
// is written, and the error says what to do.
func TestRewriteRefusesHardLinks(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	const text = "[default]\n1001 => 1234,Ann\n"
	if err := os.WriteFile(conf, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "voicemail.conf.link")
	if err := os.Link(conf, other); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(conf, []byte(text), []byte("[default]\n1001 => 908172,Ann\n"), "", time.Now())
	if err == nil || !strings.Contains(err.Error(), "has 2 hard links") || !strings.Contains(err.Error(), "make it a file of its own") {
		t.Fatalf("err %v", err)
	}
	for _, p := range []string{conf, other} {
		if b, _ := os.ReadFile(p); string(b) != text {
			t.Errorf("%s: %q", p, b)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 2 {
		t.Errorf("files left: %v", es)
	}
}

// TestSecretWriteFollowsNoDirSymlink: a mailbox directory swapped for
// a symlink between SetPINs' read and its write is not followed, even
// to a directory holding a secret.conf with the same bytes.
func TestSecretWriteFollowsNoDirSymlink(t *testing.T) {
	spool, other := t.TempDir(), t.TempDir()
	old := "[general]\npassword=1234\n"
	write(t, filepath.Join(other, "secret.conf"), old)
	if err := os.Mkdir(filepath.Join(spool, "default"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(spool, "default", "1001")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(spool, "default", "1001", "secret.conf")
	err := writeFileAtomic(p, []byte(old), []byte("[general]\npassword=739104\n"), "", "secret.conf-default-1001", time.Now())
	refused(t, err, "is a symlink", filepath.Join(other, "secret.conf"), old, other)
}

// TestWriteFileAtomicFIFODoesNotHang: a file swapped for a FIFO between
// the read and the write (the spool's owner can make one) ends the
// rewrite with an error instead of an open that never returns.
func TestWriteFileAtomicFIFODoesNotHang(t *testing.T) {
	box := t.TempDir()
	p := filepath.Join(box, "secret.conf")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		res <- WriteFileAtomic(p, []byte("[general]\npassword=1234\n"), []byte("[general]\npassword=739104\n"), "", time.Now())
	}()
	select {
	case err := <-res:
		if err == nil || !strings.Contains(err.Error(), "changed while tollguard was rewriting PINs") {
			t.Errorf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("rewriting a FIFO hung")
	}
}

// TestWriteFileAtomicFullDisk: a write that fails halfway (a full disk;
// here the file size limit, which fails the write the same way) leaves
// the original as it was, no temporary file, and says what failed.
func TestWriteFileAtomicFullDisk(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "voicemail.conf")
	old := "[default]\n1001 => 1234\n"
	write(t, p, old)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	short := lim
	short.Cur = uint64(len(old) + 4) // room for the backup, not the new file
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &short); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(p, []byte(old), []byte("[default]\n1001 => 739104\n; "+strings.Repeat("x", 4096)+"\n"), "", time.Now())
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	if err == nil || !strings.Contains(err.Error(), "rewrite "+p) || !errors.Is(err, unix.EFBIG) {
		t.Errorf("err %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != old {
		t.Errorf("original is %q", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}

	// No room for the backup either: nothing is left but the original.
	dir = t.TempDir()
	p = filepath.Join(dir, "voicemail.conf")
	write(t, p, old)
	short.Cur = 4
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &short); err != nil {
		t.Fatal(err)
	}
	err = WriteFileAtomic(p, []byte(old), []byte("[default]\n1001 => 739104\n"), "", time.Now())
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	if err == nil || !strings.Contains(err.Error(), "back up "+p+" (nothing written)") {
		t.Errorf("err %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestWriteFileAtomicSeesSameSizeEdit: the check before the rename
// compares bytes, so an edit of the same size with the mtime put back
// (a PIN changed to another of the same length within the second) is
// still seen and kept.
func TestWriteFileAtomicSeesSameSizeEdit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "voicemail.conf")
	write(t, p, "[default]\n1001 => 1234\n")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	afterCheck = func() {
		write(t, p, "[default]\n1001 => 5839\n")
		if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { afterCheck = nil }()
	err = WriteFileAtomic(p, []byte("[default]\n1001 => 1234\n"), []byte("[default]\n1001 => 739104\n"), t.TempDir(), time.Now())
	if err == nil || !strings.Contains(err.Error(), "changed while tollguard was rewriting PINs") {
		t.Errorf("err %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "[default]\n1001 => 5839\n" {
		t.Errorf("file is %q", b)
	}
}

// TestWriteFileAtomicSyncFails: a backup whose fsync fails is removed
// (nothing is written and nothing is left but the original), and a
// failed fsync of the directory after the rename is an error that says
// the new file may not survive a crash.
func TestWriteFileAtomicSyncFails(t *testing.T) {
	old := "[default]\n1001 => 1234\n"
	t.Run("Backup", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "voicemail.conf")
		write(t, p, old)
		FailSync(t, func(name string) error {
			if strings.HasSuffix(name, ".bak") {
				return unix.EIO
			}
			return nil
		})
		err := WriteFileAtomic(p, []byte(old), []byte("[default]\n1001 => 739104\n"), "", time.Now())
		if err == nil || !strings.Contains(err.Error(), "back up "+p+" (nothing written)") || !errors.Is(err, unix.EIO) {
			t.Errorf("err %v", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("left behind: %v", ents)
		}
		if b, _ := os.ReadFile(p); string(b) != old {
			t.Errorf("original is %q", b)
		}
	})
	t.Run("BackupDirectory", func(t *testing.T) {
		// A backup_dir of the admin's: its entry for the backup is
		// synced before the rewrite, or nothing is written.
		dir, bdir := t.TempDir(), t.TempDir()
		p := filepath.Join(dir, "voicemail.conf")
		write(t, p, old)
		FailSync(t, func(name string) error {
			if filepath.Clean(name) == bdir {
				return unix.EIO
			}
			return nil
		})
		err := WriteFileAtomic(p, []byte(old), []byte("[default]\n1001 => 739104\n"), bdir, time.Now())
		if err == nil || !errors.Is(err, unix.EIO) || !strings.Contains(err.Error(), "nothing written") {
			t.Fatalf("err %v, want the backup directory's sync failure", err)
		}
		if b, _ := os.ReadFile(p); string(b) != old {
			t.Errorf("file is %q: nothing may be written", b)
		}
	})
	t.Run("Directory", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "voicemail.conf")
		write(t, p, old)
		FailSync(t, func(name string) error {
			if name == dir || name == dir+"/" {
				return unix.EIO
			}
			return nil
		})
		err := WriteFileAtomic(p, []byte(old), []byte("[default]\n1001 => 739104\n"), "", time.Now())
		var nd *NotDurableError
		if !errors.As(err, &nd) || !errors.Is(err, unix.EIO) || !strings.Contains(err.Error(), "crash") {
			t.Fatalf("err %v, want a NotDurableError", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "[default]\n1001 => 739104\n" {
			t.Errorf("file is %q: the rename was done and must stay", b)
		}
	})
}
