package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
	"github.com/tollguard/tollguard/store/storetest"
)

// BenchmarkDecide measures one gate decision (all nine steps, the
// IMMEDIATE transaction and the call row) on the population.
func BenchmarkDecide(b *testing.B) {
	for _, history := range benchHistories {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			ctx := context.Background()
			p := benchPolicy(b, history)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					d, err := p.Decide(ctx, tollguard.Call{Extension: fmt.Sprint(1000 + i%10000), Dialled: "02079460000", Remote: "127.0.0.1"})
					if err != nil || !d.Allowed() {
						b.Fatalf("%+v %v", d, err)
					}
				}
			})
		})
	}
}

var benchHistories = []int{0}

// BenchmarkDecideSettle measures one call as the gate sees it: its
// decision, then its settlement, one at a time, on the issue's
// population. The CPU the policy and the store spend per call.
func BenchmarkDecideSettle(b *testing.B) {
	ctx := context.Background()
	now := benchNow
	p := benchPolicy(b, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d, err := p.Decide(ctx, tollguard.Call{Extension: fmt.Sprint(1000 + i%10000), Dialled: fmt.Sprintf("020794%05d", i%10000), Remote: "127.0.0.1"})
		if err != nil || !d.Allowed() {
			b.Fatalf("%+v %v", d, err)
		}
		if _, err := p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: 30, DialStatus: "ANSWER", By: "agi", At: now}); err != nil {
			b.Fatal(err)
		}
	}
}

var benchNow = time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)

// benchPolicy is the real policy over a database populated as issue 2
// asks (100 accounts, 10,000 extensions, 50,000 rates) with history
// past calls, its checkpointer running, at benchNow.
func benchPolicy(b *testing.B, history int) *tollguard.Policy {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { db.RunCheckpointer(cctx, 200*time.Millisecond, nil); close(done) }()
	b.Cleanup(func() { stop(); <-done; db.Close() })
	if err := storetest.Populate(ctx, db, storetest.Population{Accounts: 100, Extensions: 10000, Rates: 50000, History: history}, benchNow); err != nil {
		b.Fatal(err)
	}
	return &tollguard.Policy{Now: func() time.Time { return benchNow }, Store: db, DefaultPlan: tollguard.NumberPlan{Country: "GB"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}
