package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

// TestPruneHeldKeepsAlerts: the hourly prune deletes alerts by their
// age on the wall clock; one stepped 200 days ahead deleted them all.
// While Options.PruneHeld says so (serve's ClockWatch), they stay.
func TestPruneHeldKeepsAlerts(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openDB(t, "")
	if err := newDispatcher(t, db, notify.Options{Now: clk.Now}).Raise(ctx, burst("1001")); err != nil {
		t.Fatal(err)
	}
	clk.Add(200 * 24 * time.Hour)
	count := func() int {
		a, err := db.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(a)
	}
	run := func(held bool, until func() bool) {
		t.Helper()
		asked := make(chan struct{}, 1)
		d := newDispatcher(t, db, notify.Options{Now: clk.Now, Retention: 90 * 24 * time.Hour, PollInterval: 10 * time.Millisecond,
			PruneHeld: func() bool {
				select {
				case asked <- struct{}{}:
				default:
				}
				return held
			}})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { d.Run(rctx); close(done) }()
		defer func() { cancel(); <-done }()
		within(t, 5*time.Second, "PruneHeld to be asked", asked)
		testutil.Eventually(t, 5*time.Second, "the prune", until)
	}
	run(true, func() bool { return true })
	if n := count(); n != 1 {
		t.Fatalf("%d alerts after a prune held; want the one", n)
	}
	run(false, func() bool { return count() == 0 })
}
