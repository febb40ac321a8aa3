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
// as the daemon ran. While checkpoints fail the WAL must stay bounded,
// the failure is reported once, and the loop takes over again once they
// succeed.
func TestWALStaysBoundedAfterACheckpointFails(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db := MustOpenPath(t, path)
	var calls atomic.Int64
	var failing atomic.Bool
	store.SetCheckpointFault(db, func() error {
		if calls.Add(1) >= 3 && failing.Load() {
			return errors.New("disk I/O error (injected)")
		}
		return nil
	})
	failing.Store(true)
	reports := make(chan error, 16)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- db.RunCheckpointer(cctx, 5*time.Millisecond, func(err error) { reports <- err }) }()
	defer func() { cancel(); <-done }()

	w := db.SQL()
	if _, err := w.Exec(`CREATE TABLE big(b BLOB)`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reports:
		if err == nil {
			t.Fatal("recovery reported before any failure")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the injected checkpoint failure was never reported")
	}
	// 48 MB of ordinary commits, 256 KB each, while every checkpoint of
	// the loop fails.
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
		t.Errorf("WAL is %d MB after 48 MB of writes while checkpoints failed; want it bounded (16 MB journal_size_limit plus a commit)", fi.Size()>>20)
	}
	t.Logf("WAL %d KB", fi.Size()>>10)
	select {
	case err := <-reports:
		t.Errorf("a failure that went on was reported again: %v", err)
	default:
	}
	// The disk has room again: the loop takes over.
	failing.Store(false)
	select {
	case err := <-reports:
		if err != nil {
			t.Errorf("want the recovery reported, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the recovery was never reported")
	}
}
