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
// queued behind one another. So decisions and settlements queue, and
// whatever is queued (up to maxBatch) runs in one IMMEDIATE transaction,
// each under its own savepoint, with one commit. Each runs after the
// ones before it in the same transaction and sees their writes, so rate
// limits and reservations stay exact; a failing one is rolled back to
// its savepoint alone; a failed commit fails them all. Nobody is
// answered before the commit.
//
// The batch is run by the caller at the front of the queue (the
// leader), on its own goroutine, as LevelDB's writers do: an idle gate
// decides a call without handing it to another goroutine and back (two
// wake-ups, a good part of a decision's latency on a busy box). When
// its batch is done the leader wakes the callers it carried and makes
// the next one in the queue the leader.

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
	// wake is closed when the request is finished (err is its result)
	// or when it becomes the leader (finished is false).
	wake     chan struct{}
	finished bool
}

type writer struct {
	mu    sync.Mutex
	queue []*batchReq
	// leader is the request whose caller runs the next or current
	// batch (nil when none): queued at the front until it takes its
	// batch.
	leader *batchReq
	shut   bool
	idle   sync.Cond // broadcast when leader turns nil
}

func (s *DB) startWriter() {
	s.w = &writer{}
	s.w.idle.L = &s.w.mu
}

// stopWriter fails the requests still queued, waits for the batch in
// progress and refuses new ones.
func (s *DB) stopWriter() {
	if s.w == nil {
		return
	}
	w := s.w
	w.mu.Lock()
	w.shut = true
	keep := w.queue[:0]
	for _, r := range w.queue {
		if r == w.leader {
			keep = append(keep, r) // runs its batch, alone
			continue
		}
		r.err, r.finished = errClosed, true
		close(r.wake)
	}
	w.queue = keep
	for w.leader != nil {
		w.idle.Wait()
	}
	w.mu.Unlock()
}

// batched runs fn in the next group-committed transaction and returns
// its error once the transaction committed (or failed). fn gets ctx
// without its cancellation: interrupting a write inside a shared
// transaction would roll back the whole batch. If ctx ends before fn
// starts, fn is skipped.
func (s *DB) batched(ctx context.Context, oneWrite bool, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &batchReq{ctx: ctx, fn: fn, oneWrite: oneWrite, wake: make(chan struct{})}
	w := s.w
	w.mu.Lock()
	if w.shut {
		w.mu.Unlock()
		return errClosed
	}
	w.queue = append(w.queue, r)
	if w.leader == nil {
		w.leader = r
	} else {
		w.mu.Unlock()
		<-r.wake // every queued request is finished or made leader
		w.mu.Lock()
		if r.finished {
			w.mu.Unlock()
			return r.err
		}
	}
	// r leads, from the front of the queue.
	w.mu.Unlock()
	// Let the sessions that are ready to queue do so first: a bigger
	// batch shares one commit. Nothing waits when nothing is ready.
	runtime.Gosched()
	w.mu.Lock()
	n := min(len(w.queue), maxBatch)
	batch := append(make([]*batchReq, 0, n), w.queue[:n]...) // batch[0] is r
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	w.mu.Unlock()

	s.runBatch(batch)

	w.mu.Lock()
	for _, o := range batch[1:] {
		o.finished = true
		close(o.wake)
	}
	if len(w.queue) > 0 {
		w.leader = w.queue[0]
		close(w.leader.wake)
	} else {
		w.leader = nil
		w.idle.Broadcast()
	}
	w.mu.Unlock()
	return r.err
}

// runBatch runs batch in one transaction and sets each request's err.
func (s *DB) runBatch(batch []*batchReq) {
	bg := context.Background()
	tx, err := begin(bg, s.db, gatePoll) // IMMEDIATE, from the DSN
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
