package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// Group commit for the gate.
//
// Every decision and settlement writes, and SQLite takes one writer at a
// time. Committing each alone costs a WAL append of every page it
// touched; under load most of a decision's time went there, and calls
// queued behind one another. So decisions and settlements go to one
// writer goroutine, which runs whatever is queued (up to maxBatch) in
// one IMMEDIATE transaction, each under its own savepoint, and commits
// once. Each runs after the ones before it in the same transaction and
// sees their writes, so rate limits and reservations stay exact; a
// failing one is rolled back to its savepoint alone; a failed commit
// fails them all. Nobody is answered before the commit.

const maxBatch = 64

var errClosed = errors.New("database is closed")

// errUndo makes a batched function's writes roll back without an error
// (dry runs).
var errUndo = errors.New("undo")

type batchReq struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *sql.Tx) error
	// oneWrite: fn writes with at most one statement, after its reads,
	// so a failure leaves nothing to undo and no savepoint is needed.
	oneWrite bool
	err      error
	done     chan struct{}
}

type writer struct {
	reqs chan *batchReq
	mu   sync.RWMutex // senders hold it for reading; Close for writing
	shut bool
	stop chan struct{}
	done chan struct{}
}

func (s *DB) startWriter() {
	s.w = &writer{reqs: make(chan *batchReq, 4*maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	go s.writeLoop()
}

func (s *DB) stopWriter() {
	if s.w == nil {
		return
	}
	s.w.mu.Lock()
	if !s.w.shut {
		s.w.shut = true
		close(s.w.stop)
	}
	s.w.mu.Unlock()
	<-s.w.done
}

// batched runs fn in the next group-committed transaction and returns
// its error once the transaction committed (or failed). fn gets ctx
// without its cancellation: interrupting a write inside a shared
// transaction would roll back the whole batch. If ctx ends before fn
// starts, fn is skipped.
func (s *DB) batched(ctx context.Context, oneWrite bool, fn func(ctx context.Context, tx *sql.Tx) error) error {
	r := &batchReq{ctx: ctx, fn: fn, oneWrite: oneWrite, done: make(chan struct{})}
	s.w.mu.RLock()
	if s.w.shut {
		s.w.mu.RUnlock()
		return errClosed
	}
	select {
	case s.w.reqs <- r:
	case <-ctx.Done():
		s.w.mu.RUnlock()
		return ctx.Err()
	}
	s.w.mu.RUnlock()
	<-r.done // the writer answers every request it takes
	return r.err
}

func (s *DB) writeLoop() {
	defer close(s.w.done)
	batch := make([]*batchReq, 0, maxBatch)
	for {
		select {
		case r := <-s.w.reqs:
			batch = append(batch[:0], r)
		case <-s.w.stop:
			// Close holds the lock: no sender is mid-send.
			for {
				select {
				case r := <-s.w.reqs:
					r.err = errClosed
					close(r.done)
				default:
					return
				}
			}
		}
		// Let the sessions that are ready to queue do so first: a bigger
		// batch shares one commit. Nothing waits when nothing is ready.
		runtime.Gosched()
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.runBatch(batch)
	}
}

func (s *DB) runBatch(batch []*batchReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	bg := context.Background()
	tx, err := s.db.BeginTx(bg, nil) // IMMEDIATE, from the DSN
	if err != nil {
		for _, r := range batch {
			r.err = fmt.Errorf("begin: %w", err)
		}
		return
	}
	s.batchSeq++
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		fctx := keepDeadline{context.WithoutCancel(r.ctx), r.ctx}
		if r.oneWrite {
			if r.err = runGuarded(fctx, tx, r.fn); r.err == errUndo {
				r.err = nil
			}
			continue
		}
		if _, err := tx.ExecContext(bg, `SAVEPOINT gate`); err != nil {
			r.err = err
			continue
		}
		r.err = runGuarded(fctx, tx, r.fn)
		if r.err != nil {
			if _, err := tx.ExecContext(bg, `ROLLBACK TO gate`); err != nil {
				// The transaction is in an unknown state: give it up.
				tx.Rollback()
				s.att.invalidate()
				for _, o := range batch {
					if o.err == nil || o == r {
						o.err = fmt.Errorf("roll back to savepoint: %w", err)
					}
				}
				return
			}
			if r.err == errUndo {
				r.err = nil
			}
		}
		tx.ExecContext(bg, `RELEASE gate`)
	}
	if err := tx.Commit(); err != nil {
		// The attempt counts include what was rolled back.
		s.att.invalidate()
		for _, r := range batch {
			if r.err == nil {
				r.err = fmt.Errorf("commit: %w", err)
			}
		}
	}
}

// runGuarded runs fn, turning a panic into an error so one bad call
// cannot take the batch (or the daemon) down.
func runGuarded(ctx context.Context, tx *sql.Tx, fn func(ctx context.Context, tx *sql.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in a batched write: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(ctx, tx)
}

// keepDeadline is a context that cannot be cancelled but still reports
// its parent's deadline, so a batched function can budget its time
// (snapshot's patience) without its statements being interrupted.
type keepDeadline struct {
	context.Context
	parent context.Context
}

func (k keepDeadline) Deadline() (time.Time, bool) { return k.parent.Deadline() }
