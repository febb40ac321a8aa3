package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestGateReloadOutlivesDecisionDeadlines: after a deck import, the
// gate reloads its in-memory deck. Each decision has a deadline shorter
// than the reload of a big deck takes; the reload must still finish
// (it used to run inside each decision and be cut short by every one,
// so that every call failed closed until a restart).
func TestGateReloadOutlivesDecisionDeadlines(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	imp, err := db.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 {
		if err := imp.Add(ctx, tollguard.RateEntry{Prefix: fmt.Sprintf("9%07d", i), Destination: "d", Rate: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	// Decisions with a deadline of 2 ms, one after another, as a queue
	// of calls would be: each gives up, the reload carries on.
	deadline := time.Now().Add(30 * time.Second)
	tries := 0
	for {
		tries++
		dctx, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		var r *tollguard.RateEntry
		err := db.Gate(dctx, true, func(tx tollguard.GateTx) error {
			r, _ = tx.Rate(dctx, "+90000123")
			return nil
		})
		if err == nil {
			cancel()
			if r == nil || r.Prefix != "90000123" {
				t.Fatalf("rate after reload: %+v", r)
			}
			t.Logf("a 2 ms decision succeeded after %d tries", tries)
			if tries == 1 {
				t.Error("the first 2 ms decision waited out the whole reload: decisions do not give up at their deadline")
			}
			return
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("after %d decisions of 2 ms each over 30s, none got the deck: %v", tries, err)
		}
		time.Sleep(time.Millisecond) // the next call in the queue
	}
}

// TestGateSeesRuleChangeAtOnce: with a deck of ordinary size, the
// decision right after a rule is added sees it, whichever handle (or
// process) added it.
func TestGateSeesRuleChangeAtOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	db, admin := MustOpenPath(t, path), MustOpenPath(t, path)
	decide := func() *tollguard.Rule {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		var deny *tollguard.Rule
		err := db.Gate(dctx, true, func(tx tollguard.GateTx) error {
			var err error
			_, deny, err = tx.MatchRules(dctx, "", "+252612345678")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return deny
	}
	if deny := decide(); deny != nil {
		t.Fatalf("deny rule before any: %+v", deny)
	}
	for i, h := range []*store.DB{db, admin} {
		// Each rule more specific than the last, so it is the match.
		want := []string{"+252", "+2526"}[i]
		if err := h.AddRule(ctx, &tollguard.Rule{Prefix: want, Action: tollguard.RuleDeny}); err != nil {
			t.Fatal(err)
		}
		if deny := decide(); deny == nil || deny.Prefix != want {
			t.Fatalf("the decision after adding deny %s did not see it: %+v", want, deny)
		}
	}
	// A decision that reaches the reload with almost no time left gives
	// up on it, but must not make the next call skip a quick reload.
	// The reload is held until the next decision waits for it, so the
	// hurried one surely gives up.
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	var waits atomic.Int32
	store.SetReloadHooks(db, func() { <-release }, func() {
		if waits.Add(1) == 2 {
			releaseOnce()
		}
	})
	if err := admin.AddRule(ctx, &tollguard.Rule{Prefix: "+25261", Action: tollguard.RuleDeny}); err != nil {
		t.Fatal(err)
	}
	hurried, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	var deny *tollguard.Rule
	err := db.Gate(hurried, true, func(tx tollguard.GateTx) error {
		var err error
		_, deny, err = tx.MatchRules(hurried, "", "+252612345678")
		return err
	})
	cancel()
	if err != nil {
		t.Fatalf("hurried decision: %v", err)
	}
	if waits.Load() != 1 || deny == nil || deny.Prefix != "+2526" {
		t.Fatalf("the hurried decision did not give up on the held reload (waited %d times, matched %+v)", waits.Load(), deny)
	}
	if deny := decide(); deny == nil || deny.Prefix != "+25261" {
		t.Fatalf("after a hurried decision, the next call did not wait for the reload and see the new rule: %+v", deny)
	}
}

// TestGateDoesNotWaitForSlowReload: while a big deck reloads, calls
// decide on the previous deck instead of queueing behind the reload,
// and the new deck applies once it has loaded.
func TestGateDoesNotWaitForSlowReload(t *testing.T) {
	// From a carrier deck to the next month's, and from a small deck to
	// the first carrier deck (the reload outlasts the patience).
	for _, tc := range []struct {
		name string
		from int
	}{{"BigToBig", 40_000}, {"SmallToBig", 0}} {
		t.Run(tc.name, func(t *testing.T) { testSlowReload(t, tc.from) })
	}
}

func testSlowReload(t *testing.T, from int) {
	ctx := context.Background()
	db := MustOpenDB(t)
	importDeck := func(rate tollguard.Rate, n int) {
		t.Helper()
		imp, err := db.BeginRateImport(ctx)
		if err != nil {
			t.Fatal(err)
		}
		imp.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: rate})
		for i := range n {
			imp.Add(ctx, tollguard.RateEntry{Prefix: fmt.Sprintf("9%07d", i), Rate: rate})
		}
		if err := imp.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	rate := func(timeout time.Duration) (tollguard.Rate, time.Duration) {
		t.Helper()
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var r *tollguard.RateEntry
		if err := db.Gate(dctx, true, func(tx tollguard.GateTx) error {
			r, _ = tx.Rate(dctx, "+441134960000")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if r == nil {
			t.Fatal("no rate for +44")
		}
		return r.Rate, time.Since(start)
	}
	importDeck(1, from)
	// Without a deadline it waits for the reload.
	if err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
		if r, _ := tx.Rate(ctx, "+441134960000"); r == nil || r.Rate != 1 {
			t.Errorf("rate %+v, want 1", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	importDeck(2, 40_000)
	stale := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, took := rate(300 * time.Millisecond)
		// A decision that waited for the reload would miss its 300 ms
		// deadline on a busy box; stale decisions below show it did not.
		if took > 250*time.Millisecond {
			t.Fatalf("a decision waited %v for the reload", took)
		}
		if r == 2 {
			break
		}
		stale++
		if time.Now().After(deadline) {
			t.Fatal("the new deck never applied")
		}
		time.Sleep(2 * time.Millisecond) // calls arriving
	}
	t.Logf("%d decisions on the previous deck while the new one loaded", stale)
	if stale == 0 {
		t.Error("the 40,000-row reload finished within one decision's patience; the test proves nothing")
	}
}
