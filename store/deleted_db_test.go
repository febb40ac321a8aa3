package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestOpenRefusesANewDatabaseBesideALiveWAL: the database file deleted
// (or moved away) while a daemon has it open leaves its -wal and -shm
// at the path. A command that then created a new, empty database there
// shared them with the daemon: SQLite took the daemon's WAL for the new
// file's, reset it, and the daemon read the new file's pages as its own
// ("file is not a database"), denying every call from then on. Open
// refuses instead, and the daemon goes on deciding.
func TestOpenRefusesANewDatabaseBesideALiveWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	live, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	a, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := live.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("opened a new database beside the live one's -wal and -shm")
	}
	if tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Errorf("error code %q, want %q: %v", tollguard.ErrorCode(err), tollguard.EINVALID, err)
	}
	for _, want := range []string{path, "-wal", "deleted or moved", "restore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a new database file was created")
	}
	// The daemon's database still reads and writes.
	b, _ := store.NewAccount("beta", "GB", "GBP")
	if err := live.CreateAccount(ctx, b); err != nil {
		t.Fatalf("the open database broke: %v", err)
	}
	if _, err := live.Account(ctx, "acme"); err != nil {
		t.Fatalf("the open database broke: %v", err)
	}
}

// TestDeletedDatabaseIsNotRecreatedByItsOwnReaders: a reader connection
// the pool opened after the file was deleted under the daemon created a
// new, empty file at the path, with the same -wal and -shm: the daemon's
// own reads then failed ("file is not a database"), and the file looked
// replaced rather than deleted. The DB reports the deletion, and saves
// a copy of what it holds.
func TestDeletedDatabaseIsNotRecreatedByItsOwnReaders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tollguard.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := store.NewAccount("acme", "GB", "GBP")
	if err := db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.FileReplaced(); err != nil {
		t.Fatalf("FileReplaced before anything happened: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// Enough readers at once that the pool opens new connections.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db.HighRiskList(ctx)
		}()
	}
	wg.Wait()
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a reader created a new file at the deleted database's path")
	}
	if err := db.FileReplaced(); err == nil || !strings.Contains(err.Error(), "deleted or moved away") {
		t.Errorf("FileReplaced = %v, want the deletion", err)
	}
	saved := filepath.Join(dir, "saved.db")
	if err := db.SaveCopy(ctx, saved); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveCopy(ctx, saved); err == nil {
		t.Error("SaveCopy wrote over an existing file")
	}
	cp, err := store.Open(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.Account(ctx, "acme"); err != nil {
		t.Errorf("the copy lacks the account: %v", err)
	}
}

// TestSaveCopyIsPrivate: the copy holds what the database holds
// (balances, the purge snapshots' SIP passwords), so it is 0600 as the
// database is, whatever the umask of the process (serve sets 077; a
// library user may not), and it never overwrites a file.
func TestSaveCopyIsPrivate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dst := filepath.Join(dir, "copy.db")
	if err := db.SaveCopy(ctx, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("the copy: mode %v, size %d; want 0600 and a database", fi.Mode().Perm(), fi.Size())
	}
	if err := db.SaveCopy(ctx, dst); err == nil {
		t.Error("a second copy overwrote the first")
	}
}
