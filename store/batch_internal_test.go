package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"
)

func openBatchDB(t *testing.T) *DB {
	t.Helper()
	db := openInternalDB(t)
	if _, err := db.db.Exec(`CREATE TABLE t(v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// queued waits until n requests wait in the writer's queue.
func queued(t *testing.T, db *DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		db.w.mu.Lock()
		q := len(db.w.queue)
		db.w.mu.Unlock()
		if q >= n {
			return
		}
	}
	t.Fatalf("fewer than %d requests queued", n)
}

// TestBatchedGroupsAndIsolates: requests queued behind a running batch
// share the next ones; each sees the writes before it; a failing one is
// rolled back alone; every caller gets its own result.
func TestBatchedGroupsAndIsolates(t *testing.T) {
	db := openBatchDB(t)
	ctx := context.Background()
	release, started := make(chan struct{}), make(chan struct{})
	defer close(release)
	first := make(chan error, 1)
	go func() {
		first <- db.batched(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			<-release // hold the leader until the others queue
			_, err := tx.ExecContext(ctx, `INSERT INTO t(v) VALUES (0)`)
			return err
		})
	}()
	<-started
	const n = 200
	errBad := errors.New("bad request")
	errs := make([]error, n)
	seen := make([]int, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.batched(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&seen[i]); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO t(v) VALUES (?)`, i); err != nil {
					return err
				}
				if i%10 == 0 {
					return errBad // after its write: the savepoint undoes it
				}
				return nil
			})
		}()
	}
	queued(t, db, n-1)
	seq0 := db.batchSeq
	release <- struct{}{}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if batches := db.batchSeq - seq0; batches > 1+(n-1+maxBatch-1)/maxBatch {
		t.Errorf("%d queued requests ran in %d batches, want them grouped by up to %d", n-1, batches, maxBatch)
	}
	want := 1
	for i := 1; i < n; i++ {
		if i%10 == 0 {
			if !errors.Is(errs[i], errBad) {
				t.Errorf("request %d: %v, want its own error", i, errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("request %d: %v", i, errs[i])
		}
		want++
	}
	var got int
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&got); err != nil || got != want {
		t.Fatalf("%d rows (%v), want %d: the failed requests' writes rolled back, the others kept", got, err, want)
	}
	for i := 1; i < n; i++ {
		if seen[i] < 1 {
			t.Fatalf("request %d saw %d rows: it ran before the batch that was ahead of it", i, seen[i])
		}
	}
}

// TestBatchedClose: Close lets the batch in progress commit, fails the
// requests still queued, and refuses new ones.
func TestBatchedClose(t *testing.T) {
	db := openBatchDB(t)
	ctx := context.Background()
	release, started := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.batched(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			<-release
			_, err := tx.ExecContext(ctx, `INSERT INTO t(v) VALUES (1)`)
			return err
		})
	}()
	<-started
	waiting := make(chan error, 3)
	for range 3 {
		go func() {
			waiting <- db.batched(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO t(v) VALUES (2)`)
				return err
			})
		}()
	}
	queued(t, db, 3)
	closed := make(chan struct{})
	go func() { db.stopWriter(); close(closed) }()
	for range 3 {
		if err := <-waiting; !errors.Is(err, errClosed) {
			t.Fatalf("queued request at close: %v, want %v", err, errClosed)
		}
	}
	select {
	case <-closed:
		t.Fatal("close returned before the batch in progress ended")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if err := <-first; err != nil {
		t.Fatalf("the batch in progress at close: %v", err)
	}
	if err := db.batched(ctx, false, func(context.Context, *sql.Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Fatalf("request after close: %v, want %v", err, errClosed)
	}
	var n int
	if err := db.db.QueryRow(`SELECT COUNT(*) FROM t WHERE v = 1`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the batch in progress at close wrote %d rows (%v), want 1", n, err)
	}
}
