package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSaveCopyIsPrivateFromTheWriter: with the file deleted, a reader
// connection the pool must open fails, and the writer makes the copy.
// That path removed the empty 0600 file first, and VACUUM INTO created
// it anew by the umask: 0644 for a process with the usual 022.
func TestSaveCopyIsPrivateFromTheWriter(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	db, dir, path := openInDir(t)
	// Every reader the pool has is busy: the copy needs a new one.
	defer holdConns(t, db.rdb)()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "copy.db")
	if err := db.SaveCopy(ctx, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("the writer's copy: mode %v, size %d; want 0600 and a database", fi.Mode().Perm(), fi.Size())
	}
}

// TestSaveCopyLeavesNoFileWhenItFails: a copy neither a reader nor the
// writer could make leaves nothing at dst (serve tries again at each
// sweep, under a new name).
func TestSaveCopyLeavesNoFileWhenItFails(t *testing.T) {
	ctx := context.Background()
	db, dir, path := openInDir(t)
	// The readers and the writer are all busy, and the file is gone: no
	// connection is to be had before the deadline.
	defer holdConns(t, db.rdb, db.db)()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "copy.db")
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := db.SaveCopy(tctx, dst); err == nil {
		t.Fatal("SaveCopy succeeded with no connection to be had")
	}
	if _, err := os.Lstat(dst); err == nil {
		t.Error("the failed copy left a file at dst")
	}
}

// openInDir opens a new database in a directory of its own, closed when
// the test ends; dir is where a copy can go.
func openInDir(t *testing.T) (db *DB, dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "tollguard.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir, path
}

// holdConns takes every connection the pools have open, so that their
// next use needs a new one; the func it returns gives them back.
func holdConns(t *testing.T, pools ...*sql.DB) (release func()) {
	t.Helper()
	var held []*sql.Conn
	for _, p := range pools {
		for n := p.Stats().OpenConnections; n > 0; n-- {
			c, err := p.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
	}
	return func() {
		for _, c := range held {
			c.Close()
		}
	}
}
