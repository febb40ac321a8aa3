package tollguard

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Settlements the store failed (a full disk, a lock held past the busy
// timeout, an I/O error) are kept in memory and retried: left to the
// sweep, each such call was charged its full reservation, not the
// seconds Asterisk billed.

// MaxPendingSettlements bounds the settlements kept in memory. Past it
// a failed settlement is dropped, and the sweep settles its call.
const MaxPendingSettlements = 10_000

// settleRewarn is how often the WARN of failing settlements comes again
// while they go on failing.
const settleRewarn = 15 * time.Minute

// SettleRetryInterval is how often serve retries the pending
// settlements while there are any.
const SettleRetryInterval = 3 * time.Second

// ErrSettlementPending marks a settlement the store failed and the
// policy kept in memory, to be retried until the store takes it.
var ErrSettlementPending = errors.New("the settlement is kept in memory and retried until the store takes it")

// settleQueue is the pending settlements, one per call (the first
// that failed: it was the first to arrive), oldest first, but for one a retry failed (to the back).
type settleQueue struct {
	order  []int64
	byCall map[int64]Settlement
	// warned: the WARN for this outage is out (at warnedAt); the INFO
	// goes when the queue drains. dropping: the ERROR for this burst of
	// drops is out.
	warned, dropping bool
	warnedAt         time.Time
	burstDropped     int
	dropped          uint64 // since start, for the metric
}

// retryable reports whether a failed settlement is worth keeping: any
// failure that is not the store's answer about the call (unknown,
// another channel's, invalid).
func retryable(err error) bool {
	switch ErrorCode(err) {
	case EINTERNAL, EUNAVAILABLE: // EUNAVAILABLE: the write lock held past the busy timeout
		return true
	}
	return false
}

// queueSettlement keeps s, which failed with err, and returns the error
// to report: err marked ErrSettlementPending, or err itself when the
// queue is full and s was dropped.
func (p *Policy) queueSettlement(s Settlement, err error) error {
	log := p.logger()
	p.pendMu.Lock()
	q := &p.pending
	if _, ok := q.byCall[s.CallID]; ok {
		// Already waiting: the earlier one lands first.
		p.pendMu.Unlock()
		return fmt.Errorf("%w; %w", err, ErrSettlementPending)
	}
	if len(q.order) >= MaxPendingSettlements {
		q.dropped++
		q.burstDropped++
		first := !q.dropping
		q.dropping = true
		p.pendMu.Unlock()
		if first {
			log.Error(fmt.Sprintf("settlements are being dropped: %d are kept in memory already, the most there is room for; "+
				"the sweep will settle the calls whose settlement is dropped as lost ones (up to their full reservation). Fix the store (disk space?)", MaxPendingSettlements),
				LogCallID, s.CallID, LogError, err)
		}
		// Each one, for the refunds: the sweep overcharges it.
		log.Info("settlement dropped: no room left in memory; the sweep will settle the call as a lost one (up to its full reservation)",
			LogCallID, s.CallID, LogBillsec, s.Billsec, LogDialStatus, s.DialStatus, "by", s.By, "at", s.At)
		return err
	}
	if q.byCall == nil {
		q.byCall = make(map[int64]Settlement)
	}
	q.order = append(q.order, s.CallID)
	q.byCall[s.CallID] = s
	// Again every settleRewarn while settlements keep failing: one call
	// the store never takes keeps the queue from draining, and a later
	// outage must not pass with INFO lines only.
	now := p.Now()
	warn := !q.warned || now.Sub(q.warnedAt) >= settleRewarn
	if warn {
		q.warnedAt = now
	}
	q.warned = true
	kept := len(q.order)
	if q.dropping {
		q.dropping = false
		log.Warn("settlements are kept in memory again: there is room", "dropped", q.burstDropped)
		q.burstDropped = 0
	}
	p.pendMu.Unlock()
	if warn {
		log.Warn(fmt.Sprintf("settlement of call %d failed: %s; kept in memory and retried, with later ones that fail, "+
			"until the store takes them (the sweep leaves their calls alone meanwhile). Fix the store (disk space?)", s.CallID, ErrorMessage(err)),
			LogCallID, s.CallID, LogError, err, "pending", kept)
	}
	return fmt.Errorf("%w; %w", err, ErrSettlementPending)
}

// settlementPending reports whether call id's settlement waits in memory.
func (p *Policy) settlementPending(id int64) (Settlement, bool) {
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	s, ok := p.pending.byCall[id]
	return s, ok
}

// donePending removes call id's pending settlement.
func (p *Policy) donePending(id int64) {
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	q := &p.pending
	if _, ok := q.byCall[id]; !ok {
		return
	}
	delete(q.byCall, id)
	for i, c := range q.order {
		if c == id {
			q.order = append(q.order[:i], q.order[i+1:]...)
			break
		}
	}
}

// requeue moves call id's pending settlement, if any, to the back of
// the queue.
func (p *Policy) requeue(id int64) {
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	q := &p.pending
	if _, ok := q.byCall[id]; !ok {
		return
	}
	for i, c := range q.order {
		if c == id {
			q.order = append(append(q.order[:i], q.order[i+1:]...), id)
			break
		}
	}
}

// PendingSettlements is the number of settlements waiting in memory
// for the store.
func (p *Policy) PendingSettlements() int {
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	return len(p.pending.order)
}

// DroppedSettlements counts the settlements dropped since start because
// the queue was full.
func (p *Policy) DroppedSettlements() uint64 {
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	return p.pending.dropped
}

// retryPending tries call id's pending settlement, if any: a later
// settlement of the same call then finds it settled (the first wins).
func (p *Policy) retryPending(ctx context.Context, id int64) error {
	s, ok := p.settlementPending(id)
	if !ok {
		return nil
	}
	err := p.landPending(ctx, s)
	if err == nil || !retryable(err) {
		p.donePending(id)
		if err != nil {
			p.pendingRefused(s, err)
		}
	}
	return err
}

// landPending writes a pending settlement. One that finds its call
// charged by the sweep lost the race settle_queue leaves open (the
// sweep found nothing pending, then the settlement failed and was kept,
// then the sweep's landed): the call is charged its reservation, or
// its time since the decision, not its seconds, and the admin is told.
func (p *Policy) landPending(ctx context.Context, s Settlement) error {
	rec, changed, err := p.settleStored(ctx, s)
	if err == nil && !changed && strings.HasPrefix(rec.SettledBy, "sweep") {
		p.logger().Error("a settlement kept in memory reached the store after the sweep had settled its call: the call is charged the sweep's seconds, not these. "+
			"Refund the difference by hand (tollguard calls show ID, then tollguard credit add ACCOUNT AMOUNT)",
			LogCallID, s.CallID, LogAccount, rec.Account, LogBillsec, s.Billsec, "by", s.By,
			"settled_by", rec.SettledBy, "settled_billsec", rec.Billsec, "charged", int64(rec.Charge))
	}
	return err
}

func (p *Policy) pendingRefused(s Settlement, err error) {
	p.logger().Warn("a settlement kept in memory was refused when retried; dropped",
		LogCallID, s.CallID, LogBillsec, s.Billsec, "by", s.By, LogError, ErrorMessage(err))
}

// RetrySettlements settles the pending settlements, oldest first, until
// the store fails one, which goes to the back. It returns how many are
// left and the store's error. One pass runs at a time.
func (p *Policy) RetrySettlements(ctx context.Context) (left int, err error) {
	p.retryMu.Lock()
	defer p.retryMu.Unlock()
	return p.retryLocked(ctx)
}

// retryIdle is RetrySettlements unless a pass is running already, which
// the sweep does not wait for: a pass over thousands on a slow store
// takes hours, and the sweep leaves a pending call alone anyway.
func (p *Policy) retryIdle(ctx context.Context) {
	if !p.retryMu.TryLock() {
		return
	}
	defer p.retryMu.Unlock()
	p.retryLocked(ctx)
}

func (p *Policy) retryLocked(ctx context.Context) (left int, err error) {
	for {
		p.pendMu.Lock()
		if len(p.pending.order) == 0 {
			drained := p.pending.warned
			p.pending.warned = false
			p.pendMu.Unlock()
			if drained {
				p.logger().Info("every settlement kept in memory has reached the store; settlements are written directly again")
			}
			return 0, nil
		}
		s := p.pending.byCall[p.pending.order[0]]
		p.pendMu.Unlock()
		if err := p.landPending(ctx, s); retryable(err) {
			// To the back: one the store fails alone (a corrupt page
			// under its row) must not hold those behind it for good.
			p.requeue(s.CallID)
			return p.PendingSettlements(), err
		} else if err != nil {
			p.pendingRefused(s, err)
		}
		p.donePending(s.CallID)
	}
}

// RunSettlementRetry retries the pending settlements every interval
// until ctx ends. Each failed pass is logged once per outage by the
// queue's WARN; the pass itself says nothing more.
func (p *Policy) RunSettlementRetry(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = SettleRetryInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.pendMu.Lock()
		// warned: a settlement that came later may have emptied the
		// queue; the pass says so.
		due := len(p.pending.order) > 0 || p.pending.warned
		p.pendMu.Unlock()
		if due {
			p.RetrySettlements(ctx)
		}
	}
}

// FlushSettlements tries each pending settlement once more (at
// shutdown) and logs each one left, with what it would have charged by,
// so that an admin can settle it by hand: at the next start the sweep
// settles those calls as lost ones (up to their full reservation).
func (p *Policy) FlushSettlements(ctx context.Context) int {
	// Each one is tried: a pass stops at the first the store fails (to
	// the back), and one failing alone (a corrupt page under its row)
	// must not leave those behind it lost.
	left, err := p.RetrySettlements(ctx)
	for tries := left - 1; tries > 0 && ctx.Err() == nil; tries-- {
		if left, err = p.RetrySettlements(ctx); left == 0 {
			break
		}
	}
	if left == 0 {
		return 0
	}
	p.pendMu.Lock()
	lost := make([]Settlement, 0, left)
	for _, id := range p.pending.order {
		lost = append(lost, p.pending.byCall[id])
	}
	p.pendMu.Unlock()
	sort.Slice(lost, func(i, j int) bool { return lost[i].CallID < lost[j].CallID })
	ids := make([]string, len(lost))
	for i, s := range lost {
		ids[i] = strconv.FormatInt(s.CallID, 10)
	}
	log := p.logger()
	log.Error(fmt.Sprintf("stopping with %d settlements the store never took; they are lost, and the sweep will settle their calls as lost ones (up to their full reservation). "+
		"Each is logged below: refund the difference by hand (tollguard calls show ID, then tollguard credit add ACCOUNT AMOUNT)", len(lost)),
		"calls", strings.Join(ids, ","), LogError, err)
	for _, s := range lost {
		log.Error("settlement lost at shutdown", LogCallID, s.CallID, LogBillsec, s.Billsec, LogDialStatus, s.DialStatus,
			"by", s.By, "at", s.At.UTC().Format(time.RFC3339))
	}
	return len(lost)
}
