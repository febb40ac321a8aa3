package tollguard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// failingSettles is the real store whose settlements fail with err
// while it is set: what a full disk (SQLITE_FULL) or a write lock held
// past the busy timeout does to them.
type failingSettles struct {
	*store.DB
	err atomic.Pointer[error]
}

func (s *failingSettles) fail(err error) {
	if err == nil {
		s.err.Store(nil)
		return
	}
	s.err.Store(&err)
}

func (s *failingSettles) SettleCall(ctx context.Context, st tollguard.Settlement) (tollguard.CallRecord, bool, error) {
	if e := s.err.Load(); e != nil {
		return tollguard.CallRecord{}, false, fmt.Errorf("settle call %d: %w", st.CallID, *e)
	}
	return s.DB.SettleCall(ctx, st)
}

var diskFull error = sqlite3.Error{Code: sqlite3.ErrFull, ExtendedCode: sqlite3.ErrFull.Extend(0)}

// syncBuffer is a log sink tests read while the policy writes.
type syncBuffer struct{ testutil.Buffer }

// lines returns the log lines at level that contain msg.
func (b *syncBuffer) lines(level, msg string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, "level="+level) && strings.Contains(l, msg) {
			out = append(out, l)
		}
	}
	return out
}

func failingFixture(t *testing.T) (*fixture, *failingSettles, *syncBuffer) {
	f := newFixture(t)
	fs := &failingSettles{DB: f.db}
	f.p.Store = fs
	logs := &syncBuffer{}
	f.p.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return f, fs, logs
}

func (f *fixture) call(id int64) *tollguard.CallRecord {
	f.t.Helper()
	c, err := f.db.Call(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) balance() tollguard.Amount {
	f.t.Helper()
	a, err := f.db.Account(context.Background(), "acme")
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Balance
}

// TestFailedSettlementIsNotSwept: settlements that failed while the
// disk was full left their calls open, and the sweep charged each its
// full reservation. The settlement is now kept: the sweep leaves the
// call alone while the store fails, and once it works the call is
// charged what the settlement said, with the settlement's own time
// (not the clock at the retry) capping the seconds at the time since
// the decision.
func TestFailedSettlementIsNotSwept(t *testing.T) {
	f, fs, logs := failingFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 600 })
	before := f.balance()
	d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-9.1"}, tollguard.Allow, tollguard.ReasonOK)
	other := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-9.2"}, tollguard.Allow, tollguard.ReasonOK)
	f.now = f.now.Add(60 * time.Second)

	fs.fail(diskFull)
	// ANSWEREDTIME 100 s on a line answered 40 s before the gate: 60 s
	// since the decision are billed.
	_, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, UniqueID: "pbx-9.1", Billsec: 100, DialStatus: "ANSWER", By: "agi", SinceDecision: true})
	if !errors.Is(err, tollguard.ErrSettlementPending) || !errors.Is(err, diskFull) {
		t.Fatalf("settle while the disk is full: %v; want the store's error, marked pending", err)
	}
	_, err = f.p.Settle(ctx, tollguard.Settlement{CallID: other.CallID, Billsec: 5, By: "agi"})
	if !errors.Is(err, tollguard.ErrSettlementPending) {
		t.Fatalf("second settle: %v", err)
	}
	if n := f.p.PendingSettlements(); n != 2 {
		t.Fatalf("%d pending, want 2", n)
	}
	if w := logs.lines("WARN", "kept in memory and retried"); len(w) != 1 || !strings.Contains(w[0], fmt.Sprintf("settlement of call %d failed", d.CallID)) ||
		!strings.Contains(w[0], "disk space?") {
		t.Fatalf("want one WARN naming the first call; log:\n%s", logs)
	}

	// Past MAXSEC + grace, the store still failing: nothing is swept.
	f.now = f.now.Add(2 * time.Hour)
	r, err := f.p.Sweep(ctx, f.db, nil, nil, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.SettledFull != 0 || r.Pending != 2 {
		t.Fatalf("sweep while the store fails: %+v; want both calls left pending", r)
	}
	if c := f.call(d.CallID); !c.Open() {
		t.Fatalf("call settled by %s while its settlement was pending", c.SettledBy)
	}
	if n := f.p.FlushSettlements(ctx); n != 2 || len(logs.lines("ERROR", "settlement lost at shutdown")) != 2 ||
		len(logs.lines("ERROR", fmt.Sprintf("calls=%d,%d", d.CallID, other.CallID))) != 1 {
		t.Fatalf("flush with the store failing: %d left; log:\n%s", n, logs)
	}

	fs.fail(nil)
	r, err = f.p.Sweep(ctx, f.db, nil, nil, 30*time.Second)
	if err != nil || r.SettledFull != 0 || r.Checked != 0 {
		t.Fatalf("sweep once the store works: %+v %v; want the retried settlements first, nothing left to sweep", r, err)
	}
	c := f.call(d.CallID)
	want := tollguard.Cost(c.Rate, c.Billing, 60, c.Scale)
	if c.SettledBy != "agi" || c.Billsec != 60 || c.Charge != want || !c.SettledAt.Equal(friday.Add(60*time.Second)) {
		t.Fatalf("retried settlement: by %s, %d s, charged %d at %v; want agi, 60 s, %d at the settlement's time", c.SettledBy, c.Billsec, c.Charge, c.SettledAt, want)
	}
	o := f.call(other.CallID)
	if o.Billsec != 5 || o.SettledBy != "agi" {
		t.Fatalf("second call: %+v", o)
	}
	if got := f.balance(); got != before-c.Charge-o.Charge {
		t.Fatalf("balance %d, want %d", got, before-c.Charge-o.Charge)
	}
	if n := f.p.PendingSettlements(); n != 0 {
		t.Fatalf("%d still pending", n)
	}
	if len(logs.lines("INFO", "every settlement kept in memory has reached the store")) != 1 {
		t.Fatalf("want one INFO when the queue drains; log:\n%s", logs)
	}

	// The ARI fallback's settlement, late: the call stays as it is.
	changed, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 70, By: "ari"})
	if err != nil || changed {
		t.Fatalf("later duplicate: changed %v, %v", changed, err)
	}
	if got := f.balance(); got != before-c.Charge-o.Charge {
		t.Fatalf("balance %d after a duplicate, want %d", got, before-c.Charge-o.Charge)
	}
}

// TestPendingSettlementWinsOverALaterOne: the hangup request's
// settlement failed and waits; the ARI listener's comes once the store
// works, before any retry. The first to come is the one charged, once.
// A write lock held past the busy timeout is retried like a full disk.
func TestPendingSettlementWinsOverALaterOne(t *testing.T) {
	f, fs, _ := failingFixture(t)
	ctx := context.Background()
	before := f.balance()
	d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-9.3"}, tollguard.Allow, tollguard.ReasonOK)
	f.now = f.now.Add(90 * time.Second)
	fs.fail(tollguard.Errorf(tollguard.EUNAVAILABLE, "waited 5s for the database's write lock (database is locked)"))
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 30, By: "agi"}); !errors.Is(err, tollguard.ErrSettlementPending) {
		t.Fatalf("settle with the lock held: %v", err)
	}
	// The ARI listener's, the store still failing: the first one stays.
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 50, By: "ari"}); !errors.Is(err, tollguard.ErrSettlementPending) || f.p.PendingSettlements() != 1 {
		t.Fatalf("second settle during the outage: %v, %d pending; want the first kept alone", err, f.p.PendingSettlements())
	}
	fs.fail(nil)
	f.now = f.now.Add(10 * time.Second)
	changed, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 45, By: "ari"})
	if err != nil || changed {
		t.Fatalf("the ARI settlement after the pending one: changed %v, %v; want unchanged", changed, err)
	}
	c := f.call(d.CallID)
	if c.SettledBy != "agi" || c.Billsec != 30 || f.balance() != before-c.Charge || c.Charge != tollguard.Cost(c.Rate, c.Billing, 30, c.Scale) {
		t.Fatalf("settled by %s, %d s, charged %d (balance %d from %d)", c.SettledBy, c.Billsec, c.Charge, f.balance(), before)
	}
	if n := f.p.PendingSettlements(); n != 0 {
		t.Fatalf("%d still pending", n)
	}

	// A refusal is not kept: an unknown call, another channel's.
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: 999999, By: "agi"}); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatalf("settle an unknown call: %v", err)
	}
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, UniqueID: "pbx-other", By: "agi"}); tollguard.ErrorCode(err) != tollguard.ECONFLICT {
		t.Fatalf("settle another channel's call: %v", err)
	}
	if n := f.p.PendingSettlements(); n != 0 {
		t.Fatalf("%d pending after refusals", n)
	}
}

// TestPendingSettlementsBounded: the queue holds at most
// MaxPendingSettlements; past it settlements are dropped, with one
// ERROR for the burst, and left to the sweep.
func TestPendingSettlementsBounded(t *testing.T) {
	f, fs, logs := failingFixture(t)
	ctx := context.Background()
	fs.fail(diskFull)
	for id := int64(1); id <= tollguard.MaxPendingSettlements; id++ {
		if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: id, Billsec: 1, By: "agi"}); !errors.Is(err, tollguard.ErrSettlementPending) {
			t.Fatalf("settle %d: %v", id, err)
		}
	}
	for id := int64(tollguard.MaxPendingSettlements + 1); id <= tollguard.MaxPendingSettlements+3; id++ {
		_, err := f.p.Settle(ctx, tollguard.Settlement{CallID: id, Billsec: 1, By: "agi"})
		if err == nil || errors.Is(err, tollguard.ErrSettlementPending) || !errors.Is(err, diskFull) {
			t.Fatalf("settle %d with the queue full: %v; want the store's error, not kept", id, err)
		}
	}
	if n, dropped := f.p.PendingSettlements(), f.p.DroppedSettlements(); n != tollguard.MaxPendingSettlements || dropped != 3 {
		t.Fatalf("%d pending, %d dropped; want %d and 3", n, dropped, tollguard.MaxPendingSettlements)
	}
	if e := logs.lines("ERROR", "settlements are being dropped"); len(e) != 1 || !strings.Contains(e[0], "up to their full reservation") {
		t.Fatalf("want one ERROR for the burst, got %d:\n%s", len(e), strings.Join(e, "\n"))
	}
	if len(logs.lines("WARN", "kept in memory and retried")) != 1 {
		t.Fatal("want one WARN for the outage")
	}
}

// failOne is failingSettles whose settlements of one call fail with
// err while every other's reaches the store: a corrupt page under that
// call's row (SQLITE_CORRUPT) fails it, and only it, on every try.
type failOne struct {
	*failingSettles
	id  atomic.Int64
	err error
}

func (s *failOne) SettleCall(ctx context.Context, st tollguard.Settlement) (tollguard.CallRecord, bool, error) {
	if st.CallID == s.id.Load() {
		return tollguard.CallRecord{}, false, fmt.Errorf("settle call %d: %w", st.CallID, s.err)
	}
	return s.failingSettles.SettleCall(ctx, st)
}

// oneFailingAlone queues two settlements (20 s each) while the disk is
// full, then frees it: call bad's row stays unreadable (the store fails
// its settlement alone, as a corrupt page would), good's settles.
func oneFailingAlone(t *testing.T, pbx string) (f *fixture, logs *syncBuffer, bad, good tollguard.Decision) {
	t.Helper()
	f, fs, logs := failingFixture(t)
	one := &failOne{failingSettles: fs, err: sqlite3.Error{Code: sqlite3.ErrCorrupt, ExtendedCode: sqlite3.ErrCorrupt.Extend(0)}}
	f.p.Store = one
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 600 })
	bad = f.want(tollguard.Call{Dialled: "07400123456", UniqueID: pbx + ".1"}, tollguard.Allow, tollguard.ReasonOK)
	good = f.want(tollguard.Call{Dialled: "07400123456", UniqueID: pbx + ".2"}, tollguard.Allow, tollguard.ReasonOK)
	f.now = f.now.Add(30 * time.Second)
	one.id.Store(bad.CallID)
	fs.fail(diskFull)
	for _, id := range []int64{bad.CallID, good.CallID} {
		if _, err := f.p.Settle(context.Background(), tollguard.Settlement{CallID: id, Billsec: 20, By: "agi"}); !errors.Is(err, tollguard.ErrSettlementPending) {
			t.Fatalf("settle %d with the disk full: %v", id, err)
		}
	}
	fs.fail(nil)
	return f, logs, bad, good
}

// TestPendingSettlementFailingAloneDoesNotHoldTheOthers: a settlement
// the store fails on every try, its call's alone, was first in the
// queue; the retries stopped at it, so the settlements kept behind it
// never reached the store once it worked again: their calls stayed
// open (their reservations held, the sweep leaving them alone) until a
// restart, when the sweep charged each its full reservation.
func TestPendingSettlementFailingAloneDoesNotHoldTheOthers(t *testing.T) {
	f, _, _, good := oneFailingAlone(t, "pbx-8")
	ctx := context.Background()
	for range 3 {
		f.p.RetrySettlements(ctx)
	}
	if c := f.call(good.CallID); c.Open() || c.Billsec != 20 || c.SettledBy != "agi" {
		t.Fatalf("call %d behind the failing one: open %v, %d s by %q; want settled, 20 s by agi", good.CallID, c.Open(), c.Billsec, c.SettledBy)
	}
	if n := f.p.PendingSettlements(); n != 1 {
		t.Fatalf("%d pending, want the failing one alone", n)
	}
}

// TestShutdownFlushTriesEachPendingSettlement: the flush at shutdown
// made one retry pass, which stops at the first settlement the store
// fails: with the one whose call's row is unreadable first in the
// queue, every settlement behind it was logged lost, and the next
// start's sweep charged their calls their full reservation, though the
// store would have taken them.
func TestShutdownFlushTriesEachPendingSettlement(t *testing.T) {
	f, logs, bad, good := oneFailingAlone(t, "pbx-7")
	ctx := context.Background()
	if n := f.p.FlushSettlements(ctx); n != 1 {
		t.Fatalf("flush left %d; want the failing one alone; log:\n%s", n, logs)
	}
	if c := f.call(good.CallID); c.Open() || c.Billsec != 20 || c.SettledBy != "agi" {
		t.Fatalf("call %d behind the failing one: open %v, %d s by %q; want settled, 20 s by agi", good.CallID, c.Open(), c.Billsec, c.SettledBy)
	}
	if l := logs.lines("ERROR", "settlement lost at shutdown"); len(l) != 1 || !strings.Contains(l[0], fmt.Sprintf("call_id=%d ", bad.CallID)) {
		t.Fatalf("want the failing one alone logged lost; log:\n%s", logs)
	}
}

// slowSettles is failingSettles whose settlements each take delay
// first: a store that works, slowly (another writer holding the lock
// for most of its busy timeout, each time).
type slowSettles struct {
	*failingSettles
	delay atomic.Int64
}

func (s *slowSettles) SettleCall(ctx context.Context, st tollguard.Settlement) (tollguard.CallRecord, bool, error) {
	time.Sleep(time.Duration(s.delay.Load()))
	return s.failingSettles.SettleCall(ctx, st)
}

// TestSweepDoesNotWaitForARetryPass: the sweep retried the pending
// settlements first, and waited for a pass in progress to end: with
// 10,000 kept and a store that takes seconds a write, hours without a
// sweep, so without a hang-up of a call running past its MAXSEC. The
// sweep leaves a pending call alone anyway: it goes on.
func TestSweepDoesNotWaitForARetryPass(t *testing.T) {
	f, fs, _ := failingFixture(t)
	ctx := context.Background()
	slow := &slowSettles{failingSettles: fs}
	f.p.Store = slow
	fs.fail(diskFull)
	const n = 40
	for id := int64(1_000_001); id <= 1_000_000+n; id++ {
		if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: id, Billsec: 1, By: "agi"}); !errors.Is(err, tollguard.ErrSettlementPending) {
			t.Fatalf("settle %d: %v", id, err)
		}
	}
	fs.fail(nil)
	slow.delay.Store(int64(50 * time.Millisecond)) // the pass takes n × 50 ms
	passDone := make(chan struct{})
	go func() { defer close(passDone); f.p.RetrySettlements(ctx) }()
	for f.p.PendingSettlements() == n { // the pass has begun
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if _, err := f.p.Sweep(ctx, f.db, nil, nil, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	<-passDone
	if took > n*50*time.Millisecond/2 {
		t.Fatalf("the sweep took %v, waiting for the retry pass", took)
	}
}

// heldSweep is failingSettles whose sweep settlements wait for release
// once they reach the store.
type heldSweep struct {
	*failingSettles
	in, release chan struct{}
}

func (s *heldSweep) SettleCall(ctx context.Context, st tollguard.Settlement) (tollguard.CallRecord, bool, error) {
	if strings.HasPrefix(st.By, "sweep") {
		s.in <- struct{}{}
		<-s.release
	}
	return s.failingSettles.SettleCall(ctx, st)
}

// TestPendingSettlementAfterTheSweepIsReported: the race the queue
// leaves open. The sweep found no settlement pending for a call past
// its MAXSEC and went to charge it its reservation; meanwhile the
// hangup request's settlement failed and was kept; the sweep's landed
// first. The kept one then changed nothing, and said nothing: the call
// stayed charged its reservation, not its seconds, with no line for a
// refund. It is an ERROR naming the call, both settlements and what to
// do.
func TestPendingSettlementAfterTheSweepIsReported(t *testing.T) {
	f, fs, logs := failingFixture(t)
	ctx := context.Background()
	held := &heldSweep{failingSettles: fs, in: make(chan struct{}), release: make(chan struct{})}
	f.p.Store = held
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 60 })
	d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-7.1"}, tollguard.Allow, tollguard.ReasonOK)
	later := f.now.Add(2 * time.Minute)
	f.p.Now = func() time.Time { return later }
	swept := make(chan error, 1)
	go func() {
		_, err := f.p.Sweep(ctx, f.db, nil, nil, 30*time.Second)
		swept <- err
	}()
	<-held.in // the sweep checked: nothing pending
	fs.fail(diskFull)
	if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 12, By: "agi", At: later}); !errors.Is(err, tollguard.ErrSettlementPending) {
		t.Fatalf("hangup during the outage: %v", err)
	}
	fs.fail(nil)
	close(held.release)
	if err := <-swept; err != nil {
		t.Fatal(err)
	}
	if left, err := f.p.RetrySettlements(ctx); left != 0 || err != nil {
		t.Fatalf("retry: %d left, %v", left, err)
	}
	c := f.call(d.CallID)
	if c.SettledBy != "sweep:maxsec" {
		t.Fatalf("settled by %q; the race did not happen", c.SettledBy)
	}
	e := logs.lines("ERROR", "sweep")
	if len(e) != 1 || !strings.Contains(e[0], fmt.Sprintf("call_id=%d", d.CallID)) || !strings.Contains(e[0], "billsec=12") ||
		!strings.Contains(e[0], fmt.Sprintf("charged=%d", c.Charge)) || !strings.Contains(e[0], "Refund the difference") {
		t.Fatalf("want one ERROR naming the call, its 12 s, the sweep's charge and the refund; log:\n%s", logs)
	}
}

// TestFailingSettlementsWarnAgain: the WARN came once until the queue
// drained, so with one call the store never takes, a later outage
// passed with INFO lines only. It comes again every 15 minutes while
// settlements go on failing.
func TestFailingSettlementsWarnAgain(t *testing.T) {
	f, fs, logs := failingFixture(t)
	ctx := context.Background()
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 600 })
	var calls []tollguard.Decision
	for i := range 3 {
		calls = append(calls, f.want(tollguard.Call{Dialled: "07400123456", UniqueID: fmt.Sprintf("pbx-7.%d", i)}, tollguard.Allow, tollguard.ReasonOK))
	}
	fs.fail(diskFull)
	settle := func(d tollguard.Decision) {
		t.Helper()
		if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 5, By: "agi"}); !errors.Is(err, tollguard.ErrSettlementPending) {
			t.Fatalf("settle while the disk is full: %v", err)
		}
	}
	settle(calls[0])
	f.now = f.now.Add(10 * time.Minute)
	settle(calls[1]) // the same outage, within 15 minutes: no second WARN
	if n := len(logs.lines("WARN", "kept in memory and retried")); n != 1 {
		t.Fatalf("%d WARNs within 15 minutes, want 1; log:\n%s", n, logs)
	}
	f.now = f.now.Add(6 * time.Minute)
	settle(calls[2])
	w := logs.lines("WARN", "kept in memory and retried")
	if len(w) != 2 || !strings.Contains(w[1], fmt.Sprintf("settlement of call %d failed", calls[2].CallID)) || !strings.Contains(w[1], "pending=3") {
		t.Fatalf("after 16 minutes of failing settlements: WARNs %q, want a second one naming call %d with 3 pending", w, calls[2].CallID)
	}
}
