package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard/store"
)

// TestCheckpointBlockedByALongReader: SQLite reports a checkpoint that
// cannot finish (a long read holds WAL frames, a lock conflict) as a
// result row, not an error. The checkpointer ran it with Exec, which
// drops the row, so a reader that held the WAL for good looked like
// success: the WAL grew with nothing in the log, and the final
// checkpoint at shutdown "succeeded" too. It is now reported, then its
// end, and the final checkpoint returns ErrCheckpointBlocked.
func TestCheckpointBlockedByALongReader(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db := MustOpenPath(t, path)
	w := db.SQL()
	if _, err := w.Exec(`CREATE TABLE big(b BLOB)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`INSERT INTO big(b) VALUES (randomblob(4096))`); err != nil {
		t.Fatal(err)
	}

	// Another program (an export, a backup) reads in one long transaction.
	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=100")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM big`).Scan(&n); err != nil {
		t.Fatal(err)
	}

	reports := make(chan error, 16)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- db.RunCheckpointer(cctx, 5*time.Millisecond, func(err error) { reports <- err }) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	// Writes after the reader's snapshot: no checkpoint can copy them.
	for i := 0; i < 4; i++ {
		if _, err := w.Exec(`INSERT INTO big(b) VALUES (randomblob(65536))`); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-reports:
		if !errors.Is(err, store.ErrCheckpointBlocked) {
			t.Fatalf("want ErrCheckpointBlocked reported, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("checkpoints that could not finish were never reported")
	}

	// The reader ends: the next checkpoint finishes, and that is said.
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reports:
		if err != nil {
			t.Fatalf("want the end of the block reported (nil), got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the end of the block was never reported")
	}

	// A reader that still holds the WAL at shutdown: the final TRUNCATE
	// checkpoint cannot finish, and says so.
	tx2, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	if err := tx2.QueryRow(`SELECT count(*) FROM big`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`INSERT INTO big(b) VALUES (randomblob(65536))`); err != nil {
		t.Fatal(err)
	}
	cancel()
	stopped = true
	if err := <-done; !errors.Is(err, store.ErrCheckpointBlocked) {
		t.Errorf("final checkpoint under a long reader returned %v; want ErrCheckpointBlocked", err)
	}
}
