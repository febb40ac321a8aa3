package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

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

// TestRateImportReplacesExactly: the result is exactly the staged deck:
// rows kept, changed (rate or destination), added and dropped.
func TestRateImportReplacesExactly(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	load := func(entries ...tollguard.RateEntry) { importRates(t, db, entries...) }
	load(tollguard.RateEntry{Prefix: "44", Destination: "UK", Rate: 100},
		tollguard.RateEntry{Prefix: "4420", Destination: "London", Rate: 200},
		tollguard.RateEntry{Prefix: "447", Destination: "UK mobile", Rate: 300},
		tollguard.RateEntry{Prefix: "33", Destination: "France", Rate: 400})
	load(tollguard.RateEntry{Prefix: "44", Destination: "UK", Rate: 100}, // kept
		tollguard.RateEntry{Prefix: "4420", Destination: "London", Rate: 250},    // rate changed
		tollguard.RateEntry{Prefix: "447", Destination: "UK mobiles", Rate: 300}, // name changed
		tollguard.RateEntry{Prefix: "49", Destination: "Germany", Rate: 500},     // added; 33 dropped
		tollguard.RateEntry{Prefix: "49", Destination: "Germany", Rate: 550})     // repeated: the last row wins
	perSecond := tollguard.Billing{Initial: 1, Increment: 1} // an entry without terms
	want := map[string]tollguard.RateEntry{
		"+442079460000": {Prefix: "4420", Destination: "London", Rate: 250, Billing: perSecond},
		"+447700900000": {Prefix: "447", Destination: "UK mobiles", Rate: 300, Billing: perSecond},
		"+441134960000": {Prefix: "44", Destination: "UK", Rate: 100, Billing: perSecond},
		"+4930123456":   {Prefix: "49", Destination: "Germany", Rate: 550, Billing: perSecond},
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
// handles), their chunks interleaving, leave one whole deck, never a
// mixture.
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

// TestRateImportCopiesInChunks: Commit copies a big deck in short write
// transactions, and pauses between them, so another process writing
// meanwhile gets in before the import ends; reads still see the old deck
// whole until the new one appears, in one step, and the old one's rows
// are deleted.
func TestRateImportCopiesInChunks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	importer, other := MustOpenPath(t, path), MustOpenPath(t, path)
	seedAccount(t, other)
	load := func(n int, rate tollguard.Rate, between func()) {
		t.Helper()
		imp, err := importer.BeginRateImport(ctx)
		if err != nil {
			t.Fatal(err)
		}
		store.SetAfterChunk(imp, between)
		for i := range n {
			if err := imp.Add(ctx, tollguard.RateEntry{Prefix: fmt.Sprint(9000000 + i), Rate: rate}); err != nil {
				t.Fatal(err)
			}
		}
		if err := imp.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	load(3000, 1, nil)

	const size = 20000
	chunks := 0
	load(size, 2, func() {
		chunks++
		if n, _ := other.RateCount(ctx); n != 3000 {
			t.Errorf("after chunk %d: %d rates visible, want the old deck's 3000", chunks, n)
		}
		if r, _ := other.LookupRate(ctx, "+9000000"); r == nil || r.Rate != 1 {
			t.Errorf("after chunk %d: +9000000 rated %+v, want the old deck's rate 1", chunks, r)
		}
	})
	if want := size/store.ImportChunk + 1; chunks < want {
		t.Errorf("%d rows copied in %d transactions, want at least %d of %d rows", size, chunks, want, store.ImportChunk)
	}
	if n, _ := other.RateCount(ctx); n != size {
		t.Errorf("after Commit: %d rates, want %d", n, size)
	}
	if r, _ := other.LookupRate(ctx, "+9000000"); r == nil || r.Rate != 2 {
		t.Errorf("after Commit: +9000000 rated %+v, want the new deck's rate 2", r)
	}
	var all, decks int
	if err := other.SQL().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM rates), (SELECT COUNT(*) FROM rate_decks)`).Scan(&all, &decks); err != nil {
		t.Fatal(err)
	}
	if all != size || decks != 1 {
		t.Errorf("old decks not deleted: %d rate rows in %d decks, want %d in 1", all, decks, size)
	}

	// Another process writing back to back gets in between the chunks
	// (the import pauses after each), not only once the import is over.
	// Here the hook only counts, so the gaps are the import's own; they
	// are made long enough that a busy box (make test runs the packages
	// side by side under the race detector) does not decide the result.
	store.SetChunkPause(t, 60*time.Millisecond)
	var chunk atomic.Int32
	stop := make(chan struct{})
	between := make(chan int)
	go func() {
		gaps := map[int32]bool{}
		for {
			select {
			case <-stop:
				between <- len(gaps)
				return
			default:
			}
			if _, err := other.AddCredit(ctx, "acme", 1, "during import", "test"); err != nil {
				t.Errorf("write during the import: %v", err)
			}
			if c := chunk.Load(); c >= 1 && c < size/store.ImportChunk {
				gaps[c] = true // after chunk c's commit, before the last's
			}
		}
	}()
	load(size, 3, func() { chunk.Add(1) })
	close(stop)
	gaps := size/store.ImportChunk - 1
	if n := <-between; n < gaps/2+1 {
		t.Errorf("writes from another process got in after %d of the import's %d chunks; want most", n, gaps)
	} else {
		t.Logf("writes from another process got in after %d of the import's %d chunks", n, gaps)
	}
}

// TestRateImportClearsAbandonedDecks: a deck left staging by an import
// that died (a day ago) is deleted by the next import; one staging now
// (another import running) is left alone.
func TestRateImportClearsAbandonedDecks(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	now := time.Now()
	for deck, started := range map[int]time.Time{100: now.Add(-25 * time.Hour), 101: now.Add(-time.Minute)} {
		if _, err := db.SQL().ExecContext(ctx, `INSERT INTO rate_decks(id, state, started_at) VALUES (?, 'staging', ?)`, deck, started.Unix()); err != nil {
			t.Fatal(err)
		}
		for i := range 2500 {
			if _, err := db.SQL().ExecContext(ctx, `INSERT INTO rates(deck, prefix, rate) VALUES (?, ?, 7)`, deck, fmt.Sprint(8000000+i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r, _ := db.LookupRate(ctx, "+8000000"); r != nil {
		t.Fatalf("a staging deck is visible: %+v", r)
	}
	imp, _ := db.BeginRateImport(ctx)
	imp.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: 1})
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	count := func(deck int) (n int) {
		t.Helper()
		if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM rates WHERE deck = ?`, deck).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(100); n != 0 {
		t.Errorf("abandoned deck kept %d rows", n)
	}
	if n := count(101); n != 2500 {
		t.Errorf("the deck another import is staging lost rows: %d of 2500 left", n)
	}
	if n, _ := db.RateCount(ctx); n != 1 {
		t.Errorf("%d live rates, want 1", n)
	}
	// An import that changes nothing still clears what a dead one left.
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO rate_decks(id, state, started_at) VALUES (900, 'staging', ?);
		INSERT INTO rates(deck, prefix, rate) VALUES (900, '8000000', 7)`, now.Add(-48*time.Hour).Unix()); err != nil {
		t.Fatal(err)
	}
	imp, _ = db.BeginRateImport(ctx)
	imp.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: 1})
	if err := imp.Commit(); err != nil || !imp.Unchanged() || imp.Leftover() != nil {
		t.Fatalf("the same deck again: %v, unchanged %v, leftover %v", err, imp.Unchanged(), imp.Leftover())
	}
	if n := count(900); n != 0 {
		t.Errorf("an unchanged import left the abandoned deck's %d rows", n)
	}
}

// TestRatesMigrateToDecks: a database from before rate decks (schema 5)
// keeps its rates as the live deck.
func TestRatesMigrateToDecks(t *testing.T) {
	ctx := context.Background()
	path := migratedTo(t, 5, `INSERT INTO rates(prefix, destination, rate) VALUES ('44', 'UK', 100), ('4420', 'London', 200);`)

	db := MustOpenPath(t, path)
	if r, err := db.LookupRate(ctx, "+442079460000"); err != nil || r == nil || r.Rate != 200 || r.Destination != "London" {
		t.Fatalf("after migration: %+v, %v", r, err)
	}
	if n, _ := db.RateCount(ctx); n != 2 {
		t.Fatalf("after migration: %d rates, want 2", n)
	}
	imp, _ := db.BeginRateImport(ctx)
	imp.Add(ctx, tollguard.RateEntry{Prefix: "33", Rate: 1})
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	if r, _ := db.LookupRate(ctx, "+442079460000"); r != nil {
		t.Fatalf("migrated deck survived an import: %+v", r)
	}
}

// TestRateImportUnchangedDeck: importing the deck in force again (a
// nightly job) writes nothing: no new deck, no reload for the gate.
// Any difference (a rate, a name, a row more or less) is imported.
func TestRateImportUnchangedDeck(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	deck := []tollguard.RateEntry{{Prefix: "44", Destination: "UK", Rate: 100}, {Prefix: "33", Destination: "France", Rate: 200}}
	load := func(entries ...tollguard.RateEntry) bool { return importRates(t, db, entries...).Unchanged() }
	// The live deck, the destination version, and every deck and rate
	// row there is.
	state := func() (deck int, version string) {
		t.Helper()
		if err := db.SQL().QueryRowContext(ctx, `SELECT id FROM rate_decks WHERE state = 'live'`).Scan(&deck); err != nil {
			t.Fatal(err)
		}
		if err := db.SQL().QueryRowContext(ctx, `SELECT value || '/' || (SELECT group_concat(id || state || rows) FROM rate_decks)
			|| '/' || (SELECT group_concat(deck || prefix || destination || rate) FROM rates)
			FROM settings WHERE key = 'dest_version'`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		return deck, version
	}
	if load(deck...) {
		t.Fatal("a first deck reported unchanged")
	}
	d1, v1 := state()
	if !load(deck[1], deck[0]) { // the same rows, in another order
		t.Error("the same deck again was imported")
	}
	if d, v := state(); d != d1 || v != v1 {
		t.Errorf("an unchanged deck wrote: live deck %d -> %d, dest_version/decks/rates %s -> %s", d1, d, v1, v)
	}
	for name, other := range map[string][]tollguard.RateEntry{
		"rate":  {{Prefix: "44", Destination: "UK", Rate: 101}, deck[1]},
		"name":  {{Prefix: "44", Destination: "United Kingdom", Rate: 100}, deck[1]},
		"fewer": {deck[0]},
		"more":  {deck[0], deck[1], {Prefix: "49", Rate: 1}},
	} {
		if load(other...) {
			t.Errorf("%s changed, but the import reported the deck unchanged", name)
		}
		load(deck...) // back to the original
	}
}

// importRates imports entries as the whole deck, failing the test on
// any error, and returns the finished import.
func importRates(t *testing.T, db *store.DB, entries ...tollguard.RateEntry) *store.RateImport {
	t.Helper()
	ctx := context.Background()
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
	return imp
}

// TestRatesKeepBillingTerms: a deck's billing steps and connection fee
// are stored, read back by the gate and the lookup, and count as a change
// of the deck; a database from before them (schema 9) bills its rates
// and its open calls by the second, as it did.
func TestRatesKeepBillingTerms(t *testing.T) {
	ctx := context.Background()
	path := migratedTo(t, 9, `INSERT INTO rates(deck, prefix, destination, rate) VALUES (1, '44', 'UK', 100000);
		INSERT INTO accounts(id, country, currency, scale, created_at, updated_at) VALUES ('acme', 'GB', 'GBP', 2, 1, 1);
		INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, rate, reserve, maxsec)
			VALUES (1, '1001', 'acme', '02079460000', 'national', 'allow', 'ok', 100000, 100, 600);`)
	db := MustOpenPath(t, path)
	perSecond := tollguard.Billing{Initial: 1, Increment: 1}
	if r, err := db.LookupRate(ctx, "+442079460000"); err != nil || r == nil || r.Billing != perSecond {
		t.Fatalf("migrated rate: %+v, %v", r, err)
	}
	// 61 s at 0.10/min by the second: 10.17p, so 11p.
	if c, _, err := db.SettleCall(ctx, tollguard.Settlement{CallID: 1, Billsec: 61, By: "agi"}); err != nil || c.Charge != 11 {
		t.Fatalf("migrated call settled at %d (%v), want 11p", c.Charge, err)
	}

	terms := tollguard.Billing{Initial: 30, Increment: 6, Connect: 50000}
	if importRates(t, db, tollguard.RateEntry{Prefix: "44", Destination: "UK", Rate: 100000, Billing: terms}).Unchanged() {
		t.Fatal("new billing terms were taken for the deck in force")
	}
	if r, err := db.LookupRate(ctx, "+442079460000"); err != nil || r == nil || r.Billing != terms {
		t.Fatalf("rate after import: %+v, %v", r, err)
	}
	if !importRates(t, db, tollguard.RateEntry{Prefix: "44", Destination: "UK", Rate: 100000, Billing: terms}).Unchanged() {
		t.Fatal("the same deck again was imported")
	}
	// Out-of-range terms never reach the deck.
	imp, err := db.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Rollback()
	if err := imp.Add(ctx, tollguard.RateEntry{Prefix: "33", Rate: 1, Billing: tollguard.Billing{Initial: 7200, Increment: 60}}); err == nil {
		t.Fatal("a 7200 s first step was staged")
	}
}

// TestRateImportInterruptedWhileCopying: Ctrl-C during the copy (after
// the deck was read) was ignored: the copy ran on and the new deck went
// live, though the admin stopped the import. It now stops between
// chunks, deletes what it copied and leaves the previous deck in force.
func TestRateImportInterruptedWhileCopying(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	importRates(t, db, tollguard.RateEntry{Prefix: "44", Rate: 1})
	imp, err := db.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * store.ImportChunk {
		if err := imp.Add(ctx, tollguard.RateEntry{Prefix: fmt.Sprint(9000000 + i), Rate: 2}); err != nil {
			t.Fatal(err)
		}
	}
	stop, cancel := context.WithCancel(ctx)
	chunks := 0
	store.SetAfterChunk(imp, func() { chunks++; cancel() })
	if err := imp.CommitContext(stop); !errors.Is(err, store.ErrImportInterrupted) {
		t.Fatalf("CommitContext after Ctrl-C: %v, want ErrImportInterrupted", err)
	}
	if chunks != 1 {
		t.Errorf("%d chunks copied after Ctrl-C, want the one in progress", chunks)
	}
	if r, _ := db.LookupRate(ctx, "+442079460000"); r == nil || r.Rate != 1 {
		t.Errorf("after the interrupted import +44 is rated %+v, want the previous deck's rate 1", r)
	}
	var rows, decks int
	if err := db.SQL().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM rates), (SELECT COUNT(*) FROM rate_decks)`).Scan(&rows, &decks); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || decks != 1 {
		t.Errorf("the interrupted copy left %d rate rows in %d decks, want the previous deck's 1 in 1", rows, decks)
	}
}
