package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// checkConfigPath refuses a config that a local user other than root
// and tollguard's own user could swap for theirs, as sshd's StrictModes
// does: one reached through a directory every user can write, whether
// the config's own, an ancestor's or a symlink's on the way. A sticky
// directory (/tmp) is kept where root or tollguard's user owns both it
// and the entry in it: no one else can then rename or remove that
// entry. It walks path as the kernel resolves it, so every directory
// looked in is checked.
func checkConfigPath(path string) error { return checkPathDirs(path, "tollguard's config") }

// checkSecretPath is checkConfigPath for a secret file (password_file,
// secret_file): whoever can swap it chooses the webhook's signing key or
// the password tollguard gives ARI and the SMTP server.
func checkSecretPath(path string) error { return checkPathDirs(path, "the secret") }

// checkPathDirs is checkConfigPath for a file holding what (for the
// messages).
func checkPathDirs(path, what string) error {
	if !filepath.IsAbs(path) {
		wd, err := os.Getwd()
		if err != nil {
			return nil // reading the file went through; nothing to walk from
		}
		// Not filepath.Join: cleaning "a/../b" lexically is wrong where
		// a is a symlink.
		path = wd + "/" + path
	}
	uid := os.Geteuid()
	todo := strings.Split(path, "/")
	cur := "/" // resolved so far, with no symlink in it
	for links := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return nil // gone since it was read: reading it again reports that
		}
		if err := checkEntry(cur, name, fi, uid, what); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > 40 { // the kernel's limit: reading it failed already
			return nil
		}
		target, err := os.Readlink(next)
		if err != nil {
			return nil
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return nil
}

// checkEntry says whether someone other than root and uid can replace
// name (fi) in dir.
func checkEntry(dir, name string, fi fs.FileInfo, uid int, what string) error {
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm()&0o002 == 0 {
		return nil
	}
	mode := di.Mode().Perm()
	if di.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("%s has mode %04o: every local user can replace %s in it, and with it %s; "+
			"chmod o-w %s (or +t), or keep the file in a directory only root can write, such as /etc/tollguard", dir, mode, name, what, dir)
	}
	// Sticky: only the directory's owner, the entry's owner and root
	// may rename or remove the entry.
	if o := owner(di); o != 0 && o != uid {
		return fmt.Errorf("the shared directory %s (mode 1%03o) is owned by uid %d, who can replace %s in it, and with it %s; "+
			"keep the file in a directory only root can write, such as /etc/tollguard", dir, mode, o, name, what)
	}
	if o := owner(fi); o != 0 && o != uid {
		return fmt.Errorf("%s is owned by uid %d, who can replace it in the shared directory %s (mode 1%03o), and with it %s; "+
			"chown it to root or to the user tollguard runs as, or keep the file in a directory only root can write, such as /etc/tollguard",
			filepath.Join(dir, name), o, dir, mode, what)
	}
	return nil
}

// owner is fi's owner's uid; root's where the system does not say.
func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return 0
}
