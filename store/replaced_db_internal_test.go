package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestNoConnectionToAFileReplacedUnderIt: `mv backup.db tollguard.db`
// under a running daemon leaves the daemon's -wal and -shm at the path.
// A reader connection the pool opened then read the restored file
// through the daemon's WAL (the daemon's rows in the backup), and a
// checkpoint on it wrote them into the backup. The pools open no
// connection to a file that is not the one Open opened.
func TestNoConnectionToAFileReplacedUnderIt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tollguard.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := db.SaveCopy(ctx, backup); err != nil {
		t.Fatal(err)
	}
	a, err := NewAccount("live", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backup, path); err != nil {
		t.Fatal(err)
	}
	// Every reader the pool has is busy: the next read needs a new one.
	release := holdConns(t, db.rdb)
	_, err = db.Account(ctx, "live")
	if err == nil || tollguard.ErrorCode(err) != tollguard.EUNAVAILABLE || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("a read through a new connection after the file was replaced: %v; want it refused (unavailable, replaced)", err)
	}
	if _, err := db.rdb.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err == nil {
		t.Error("a checkpoint through a new connection ran on the replaced file")
	}
	release()
	db.Close()
	// The restored file itself holds none of the daemon's rows.
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = raw.QueryRow(`SELECT count(*) FROM accounts WHERE id = 'live'`).Scan(&n)
	raw.Close()
	if err != nil || n != 0 {
		t.Errorf("the restored backup has the daemon's account written after it (%d, %v)", n, err)
	}
	// Then as docs/troubleshooting.md says: the daemon's -wal and -shm
	// go before the next start.
	for _, f := range []string{path + "-wal", path + "-shm"} {
		os.Remove(f)
	}
	restored, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if _, err := restored.Account(ctx, "live"); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Errorf("the restored backup has the daemon's account written after it (%v)", err)
	}
}
