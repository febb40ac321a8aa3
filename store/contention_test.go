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

// contentionDB is a database of the benchmark's population with
// history past calls, and the real policy over it, at benchNow.
func contentionDB(t *testing.T, history int) (*store.DB, *tollguard.Policy) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Now = func() time.Time { return benchNow }
	if err := storetest.Populate(ctx, db, storetest.Population{Accounts: 100, Extensions: 10000, Rates: 50000, History: history}, benchNow); err != nil {
		t.Fatal(err)
	}
	if err := db.WarmGate(ctx); err != nil {
		t.Fatal(err)
	}
	return db, &tollguard.Policy{Now: func() time.Time { return benchNow }, Store: db, DefaultPlan: tollguard.NumberPlan{Country: "GB"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// decideDuring runs job while 4 callers ask p for decisions, each under
// deadline (the gate's default is 300 ms), and fails the test if any
// was not an allow. It returns how many decisions were made.
func decideDuring(t *testing.T, p *tollguard.Policy, deadline time.Duration, job func()) int {
	t.Helper()
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
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				start := time.Now()
				d, err := p.Decide(ctx, tollguard.Call{Extension: fmt.Sprint(1000 + i%10000), Dialled: "02079460000", Remote: "127.0.0.1"})
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
	job()
	close(done)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d decisions made during the job failed, first: %s", len(failed), decisions, failed[0])
	}
	if decisions < 10 {
		t.Fatalf("only %d decisions ran during the job", decisions)
	}
	return decisions
}

// TestRollupLeavesTheGateItsDeadline: the hourly rollup of a large
// history deleted 5,000 calls per transaction, holding the write lock
// 0.2 to 0.6 s a batch (2 million calls, cold cache), and the gate,
// whose decisions wait for that lock, denied calls `error` past its
// 300 ms deadline. However large the batch asked for, the rollup must
// hold the lock briefly and let decisions through between batches.
func TestRollupLeavesTheGateItsDeadline(t *testing.T) {
	ctx := context.Background()
	db, p := contentionDB(t, 400_000)
	var n int
	var err error
	// Half the history is older than 40 days: 200,000 calls, asked in
	// batches of 50,000.
	decisions := decideDuring(t, p, 300*time.Millisecond, func() { n, err = db.Rollup(ctx, benchNow.AddDate(0, 0, -40), 50_000) })
	if err != nil || n < 190_000 {
		t.Fatalf("rolled up %d, %v; want about 200,000", n, err)
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

// TestHistoryPruneLeavesTheGateItsDeadline: PruneContacts deleted every
// registration-history value past its retention in one statement. With
// 10,000 extensions at the 64-value cap (softphones on mobile data), the
// first prune after the values aged held the write lock 2.1 s, and the
// gate's decisions missed their deadline.
func TestHistoryPruneLeavesTheGateItsDeadline(t *testing.T) {
	ctx := context.Background()
	db, p := contentionDB(t, 0)
	// Value j of each extension was last seen j days ago.
	if _, err := db.SQL().ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < 640000)
		INSERT INTO registration_history(extension, kind, value, first_seen, last_seen)
		SELECT 1000 + i / 64, 'ip', '10.0.' || (i % 64) || '.1', ?1 - (i % 64) * 86400, ?1 - (i % 64) * 86400 FROM n`, benchNow.Unix()); err != nil {
		t.Fatal(err)
	}
	var err error
	// A second, not 300 ms: the old statement held the lock 2.1 s, and
	// under -race on a loaded 2-core machine a single delete batch has
	// run 0.26 s (about 10 times its time without -race), which a 300 ms
	// deadline missed now and then though the pacing was right.
	decideDuring(t, p, time.Second, func() {
		_, err = db.PruneContacts(ctx, benchNow.AddDate(0, 0, -7), benchNow.AddDate(0, 0, -5).Add(-time.Hour))
	})
	if err != nil {
		t.Fatal(err)
	}
	// The values of the last 5 days stay, of every extension.
	var left, exts int
	if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT extension) FROM registration_history`).Scan(&left, &exts); err != nil {
		t.Fatal(err)
	}
	if left != 60000 || exts != 10000 {
		t.Fatalf("%d values of %d extensions left; want 6 of each of 10,000", left, exts)
	}
}

// TestHighRiskReplaceLeavesTheGateItsDeadline: a replace of the
// high-risk list inserted it row by row in one write transaction, about
// 11 µs an entry: a list of 40,000 held the write lock over 400 ms, and
// the gate's decisions waiting for it missed their 300 ms deadline.
func TestHighRiskReplaceLeavesTheGateItsDeadline(t *testing.T) {
	ctx := context.Background()
	db, p := contentionDB(t, 0)
	var list []tollguard.HighRiskEntry
	for i := range 40_000 {
		list = append(list, tollguard.HighRiskEntry{Prefix: fmt.Sprint(44740000 + i), Description: "mobile range", Source: "test"})
	}
	var err error
	decideDuring(t, p, 300*time.Millisecond, func() { err = db.ReplaceHighRisk(ctx, list) })
	if err != nil {
		t.Fatal(err)
	}
	if hr, err := db.HighRiskList(ctx); err != nil || len(hr) != len(list) {
		t.Fatalf("%d prefixes on the list after the replace (%v), want %d", len(hr), err, len(list))
	}
	// The gate decides on the new list, not on the shipped one it had
	// (+881, satellite).
	if d, err := p.Decide(ctx, tollguard.Call{Extension: "1000", Dialled: "07400123456", Remote: "127.0.0.1"}); err != nil || d.Reason != tollguard.ReasonHighRisk {
		t.Errorf("07400123456, on the new list: %q (%v), want high_risk", d.Reason, err)
	}
	if d, err := p.Decide(ctx, tollguard.Call{Extension: "1000", Dialled: "+881612345678", Remote: "127.0.0.1"}); err != nil || d.Reason == tollguard.ReasonHighRisk {
		t.Errorf("+881612345678, only on the replaced list: %q (%v), want no longer high_risk", d.Reason, err)
	}
}
