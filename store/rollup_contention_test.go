package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
	"github.com/tollguard/tollguard/store/storetest"
)

// TestRollupLeavesTheGateItsDeadline: the hourly rollup of a large
// history deleted 5,000 calls per transaction, holding the write lock
// 0.2 to 0.6 s a batch (2 million calls, cold cache), and the gate,
// whose decisions wait for that lock, denied calls `error` past its
// 300 ms deadline. However large the batch asked for, the rollup must
// hold the lock briefly and let decisions through between batches.
func TestRollupLeavesTheGateItsDeadline(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Now = func() time.Time { return benchNow }
	if err := storetest.Populate(ctx, db, storetest.Population{Accounts: 100, Extensions: 10000, Rates: 50000, History: 400_000}, benchNow); err != nil {
		t.Fatal(err)
	}
	p := &tollguard.Policy{Now: func() time.Time { return benchNow }, Store: db, DefaultPlan: tollguard.NumberPlan{Country: "GB"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := db.WarmGate(ctx); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var mu sync.Mutex
	var failed []string
	decisions := 0
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += 4 {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				// The gate's own deadline (gate.decision_timeout's default).
				dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				start := time.Now()
				d, err := p.Decide(dctx, tollguard.Call{Extension: fmt.Sprint(1000 + i%10000), Dialled: "02079460000", Remote: "127.0.0.1"})
				cancel()
				mu.Lock()
				decisions++
				if err != nil || !d.Allowed() {
					failed = append(failed, fmt.Sprintf("%s after %v: %v", d.Reason, time.Since(start).Round(time.Millisecond), err))
				}
				mu.Unlock()
			}
		}()
	}
	// Half the history is older than 40 days: 200,000 calls, asked in
	// batches of 50,000.
	n, err := db.Rollup(ctx, benchNow.AddDate(0, 0, -40), 50_000)
	close(done)
	wg.Wait()
	if err != nil || n < 190_000 {
		t.Fatalf("rolled up %d, %v; want about 200,000", n, err)
	}
	if decisions < 10 {
		t.Fatalf("only %d decisions ran during the rollup", decisions)
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d decisions made during the rollup failed, first: %s", len(failed), decisions, failed[0])
	}
	// Nothing is lost: every call rolled up is in the monthly totals.
	var calls, rolled int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM calls), (SELECT SUM(calls) FROM monthly_totals)`).Scan(&calls, &rolled); err != nil {
		t.Fatal(err)
	}
	if rolled != int64(n) || calls+rolled != 400_000+int64(decisions) {
		t.Fatalf("%d calls left and %d in the totals; want %d rolled up, %d in all", calls, rolled, n, 400_000+decisions)
	}
}
