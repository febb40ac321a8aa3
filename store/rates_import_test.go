package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestRateImportStagesWithoutLocking: while a deck is being staged, the
// database stays writable from another process (here another handle):
// only the swap at Commit takes the write lock. A carrier deck takes
// over a second to stage, longer than the gate's decision deadline.
func TestRateImportStagesWithoutLocking(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	importer, other := MustOpenPath(t, path), MustOpenPath(t, path)
	seedAccount(t, other)

	old, _ := importer.BeginRateImport(ctx)
	old.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: 10000})
	if err := old.Commit(); err != nil {
		t.Fatal(err)
	}

	imp, err := importer.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if err := imp.Add(ctx, tollguard.RateEntry{Prefix: fmt.Sprintf("9%06d", i), Destination: "d", Rate: tollguard.Rate(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Well under the store's 5 s busy timeout: a lock would show.
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := other.AddCredit(wctx, "acme", 100, "during import", "test"); err != nil {
		t.Fatalf("write during a staged import: %v", err)
	}
	if n, _ := other.RateCount(ctx); n != 1 {
		t.Fatalf("staged rows visible before Commit: %d rates", n)
	}
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	if n, _ := other.RateCount(ctx); n != 5000 {
		t.Fatalf("after Commit: %d rates, want the 5000 staged (the old deck replaced)", n)
	}
	if r, _ := other.LookupRate(ctx, "+441134960000"); r != nil {
		t.Fatalf("old deck's +44 survived the import: %+v", r)
	}

	// A second import on the same handle starts from an empty stage.
	imp, _ = importer.BeginRateImport(ctx)
	imp.Add(ctx, tollguard.RateEntry{Prefix: "33", Rate: 1})
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	if n, _ := other.RateCount(ctx); n != 1 {
		t.Fatalf("second import: %d rates, want 1", n)
	}
}

// TestRateImportReplacesExactly: the swap writes only changed rows, and
// the result is exactly the staged deck: rows kept, changed (rate or
// destination), added and dropped.
func TestRateImportReplacesExactly(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	load := func(entries ...tollguard.RateEntry) {
		t.Helper()
		imp, err := db.BeginRateImport(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := imp.Add(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := imp.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	load(tollguard.RateEntry{Prefix: "44", Destination: "UK", Rate: 100},
		tollguard.RateEntry{Prefix: "4420", Destination: "London", Rate: 200},
		tollguard.RateEntry{Prefix: "447", Destination: "UK mobile", Rate: 300},
		tollguard.RateEntry{Prefix: "33", Destination: "France", Rate: 400})
	load(tollguard.RateEntry{Prefix: "44", Destination: "UK", Rate: 100}, // kept
		tollguard.RateEntry{Prefix: "4420", Destination: "London", Rate: 250},    // rate changed
		tollguard.RateEntry{Prefix: "447", Destination: "UK mobiles", Rate: 300}, // name changed
		tollguard.RateEntry{Prefix: "49", Destination: "Germany", Rate: 500},     // added; 33 dropped
		tollguard.RateEntry{Prefix: "49", Destination: "Germany", Rate: 550})     // repeated: the last row wins
	want := map[string]tollguard.RateEntry{
		"+442079460000": {Prefix: "4420", Destination: "London", Rate: 250},
		"+447700900000": {Prefix: "447", Destination: "UK mobiles", Rate: 300},
		"+441134960000": {Prefix: "44", Destination: "UK", Rate: 100},
		"+4930123456":   {Prefix: "49", Destination: "Germany", Rate: 550},
	}
	for num, w := range want {
		r, err := db.LookupRate(ctx, num)
		if err != nil || r == nil || *r != w {
			t.Errorf("%s: got %+v (%v), want %+v", num, r, err, w)
		}
	}
	if r, _ := db.LookupRate(ctx, "+33123456789"); r != nil {
		t.Errorf("dropped prefix 33 still rated: %+v", r)
	}
	if n, _ := db.RateCount(ctx); n != 4 {
		t.Errorf("%d rates, want 4", n)
	}
}

// TestRateImportConcurrent: imports racing from two processes (two
// handles) each leave one whole deck, never a mixture, even when one
// commits between the other's comparison and its swap.
func TestRateImportConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	var dbs [2]*store.DB
	for i := range dbs {
		dbs[i] = MustOpenPath(t, path)
	}
	// Deck k: 20000 prefixes from k*10000, all at rate k+1: neighbouring
	// decks overlap by half, with different rates.
	const size = 20000
	deck := func(k int) []tollguard.RateEntry {
		var out []tollguard.RateEntry
		for i := range size {
			out = append(out, tollguard.RateEntry{Prefix: fmt.Sprint(9000000 + k*size/2 + i), Rate: tollguard.Rate(k + 1)})
		}
		return out
	}
	errs := make(chan error, 2)
	for w := range 2 {
		go func() {
			for n := range 4 {
				imp, err := dbs[w].BeginRateImport(ctx)
				if err != nil {
					errs <- err
					return
				}
				for _, e := range deck((w + n) % 3) {
					if err := imp.Add(ctx, e); err != nil {
						errs <- err
						return
					}
				}
				if err := imp.Commit(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Exactly one deck: its prefixes at its rate, nothing else.
	n, _ := dbs[0].RateCount(ctx)
	var whole []int
	for k := range 3 {
		ok := n == size
		for _, e := range deck(k) {
			if r, _ := dbs[0].LookupRate(ctx, "+"+e.Prefix); r == nil || r.Prefix != e.Prefix || r.Rate != e.Rate {
				ok = false
				break
			}
		}
		if ok {
			whole = append(whole, k)
		}
	}
	if len(whole) != 1 {
		t.Fatalf("not one whole deck: %d rates, whole decks %v", n, whole)
	}
}
