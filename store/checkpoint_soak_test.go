package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard/store"
)

// TestWALStaysBoundedAfterACheckpointFails: serve turns SQLite's
// automatic checkpoints off and checkpoints from RunCheckpointer. One
// failed checkpoint (a disk that was full for a moment, an I/O error)
// ended the checkpointer, and with automatic checkpoints still off
// nothing checkpointed again: the WAL grew by every write for as long
// as the daemon ran. After a failure the WAL must stay bounded.
func TestWALStaysBoundedAfterACheckpointFails(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var calls atomic.Int64
	store.SetCheckpointFault(db, func() error {
		if calls.Add(1) == 3 {
			return errors.New("disk I/O error (injected)")
		}
		return nil
	})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- db.RunCheckpointer(cctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	w := db.SQL()
	if _, err := w.Exec(`CREATE TABLE big(b BLOB)`); err != nil {
		t.Fatal(err)
	}
	// The failure comes, and the checkpointer gives up.
	select {
	case err := <-done:
		t.Logf("checkpointer returned: %v", err)
		done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("the injected checkpoint failure never came")
	}
	// 48 MB of ordinary commits, 256 KB each.
	for i := 0; i < 192; i++ {
		if _, err := w.Exec(`INSERT INTO big(b) VALUES (randomblob(256 << 10))`); err != nil {
			t.Fatal(err)
		}
		if i%8 == 0 {
			if _, err := w.Exec(`DELETE FROM big`); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // let a running checkpointer work
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 24<<20 {
		t.Errorf("WAL is %d MB after 48 MB of writes following one failed checkpoint; want it bounded (16 MB journal_size_limit plus a commit)", fi.Size()>>20)
	}
	t.Logf("WAL %d KB", fi.Size()>>10)
}
