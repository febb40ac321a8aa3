package store

import (
	"context"
	"database/sql"
	"time"
)

// batchPacer sizes the write transactions of a long job (the rollup,
// the registration prunes) by how long each held the write lock, and
// waits as long again between them. The gate's decisions poll for that
// lock under a 300 ms deadline: a rollup batch of 5,000 calls held it
// 0.2 to 0.6 s (2 million calls, cold cache), and a fixed 2 ms gap
// after 35–100 ms prune batches let loaded machines miss it.
type batchPacer struct{ size, most int }

// Batches start at batchFirst rows, are halved while one holds the lock
// longer than batchHold and doubled (up to the most asked) only while
// one takes less than a quarter of it: a batch's time is not linear in
// its size on a loaded machine (a prune batch of 2,048 held 263 ms
// after one of 1,024 took under 12.5 ms), so growth keeps a margin.
const (
	batchFirst = 256
	batchHold  = 25 * time.Millisecond
)

func newBatchPacer(most int) *batchPacer {
	return &batchPacer{size: max(min(most, batchFirst), 1), most: max(most, 1)}
}

// tx runs fn in one write transaction of s and returns how long it held
// the lock: from inside the transaction (the wait for the lock is not
// holding it) to after the commit.
func (p *batchPacer) tx(ctx context.Context, s *DB, fn func(size int, tx *sql.Tx) error) (time.Duration, error) {
	var start time.Time
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		start = time.Now()
		return fn(p.size, tx)
	})
	if start.IsZero() {
		return 0, err
	}
	return time.Since(start), err
}

// next resizes the batch after one that held the lock for held, and
// waits as long without it, or until ctx ends.
func (p *batchPacer) next(ctx context.Context, held time.Duration) error {
	switch {
	case held > batchHold:
		p.size = max(p.size/2, 1)
	case held < batchHold/4:
		p.size = min(p.size*2, p.most)
	}
	t := time.NewTimer(max(held, chunkPause))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs fn in paced write transactions until one handles fewer rows
// than its batch size (fn returns how many it handled), and returns the
// total. Between batches the gate's decisions and the admin's commands,
// polling for the lock, take it.
func (p *batchPacer) run(ctx context.Context, s *DB, fn func(size int, tx *sql.Tx) (int, error)) (int, error) {
	total := 0
	for {
		var n int
		held, err := p.tx(ctx, s, func(size int, tx *sql.Tx) error {
			var err error
			n, err = fn(size, tx)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < p.size {
			return total, nil
		}
		if err := p.next(ctx, held); err != nil {
			return total, err
		}
	}
}
