package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/tollguard/tollguard/store"
)

// pruneHistory fills db with a random registration history: extensions
// whose names sort in every way, values last seen around before (ties in
// the newest second, some exactly at before), a few past the cap.
func pruneHistory(t *testing.T, db *store.DB, seed uint64, before int64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 11))
	names := []string{"1", "10", "100", "1000", "1001", "2", "20", "200", "9", "99", "A", "a", "b", "ext-7", "z", "Ω"}
	offsets := []int64{-86400 * 3, -86400, -2, -1, 0, 1, 3600, 86400}
	tx, err := db.SQL().Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, ext := range names {
		for _, kind := range []string{"ip", "agent"} {
			n := r.IntN(12)
			if r.IntN(8) == 0 {
				n = store.HistoryCap + 20 // over the cap and a trim batch
			}
			for v := range n {
				last := before + offsets[r.IntN(len(offsets))]
				if _, err := tx.Exec(`INSERT INTO registration_history(extension, kind, value, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)`,
					ext, kind, fmt.Sprint("v", v), last-r.Int64N(86400*5), last); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func historyDump(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.SQL().Query(`SELECT extension, kind, value, first_seen, last_seen FROM registration_history ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e, k, v string
		var f, l int64
		if err := rows.Scan(&e, &k, &v, &f, &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(e, " ", k, " ", v, " ", f, " ", l))
	}
	return out
}

// TestBatchedHistoryPruneMatchesOneStatement: PruneContacts' batches,
// walking the extensions in key order, keep exactly what the single
// statement they replaced kept (the values of each extension's newest
// second, whatever their number, and those from before on), then the
// cap's trim, for batches of one value, a few, and more than there are.
func TestBatchedHistoryPruneMatchesOneStatement(t *testing.T) {
	ctx := context.Background()
	store.SetTrimBatch(t, 5)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	before := now.AddDate(0, 0, -30)
	gone := now.AddDate(0, 0, -180)
	for seed := range uint64(6) {
		for _, batch := range []int{1, 3, 10_000} {
			t.Run(fmt.Sprint(seed, "/", batch), func(t *testing.T) {
				// The old prune: one statement, then the trim.
				old := MustOpenDB(t)
				old.Now = func() time.Time { return now }
				pruneHistory(t, old, seed, before.Unix())
				if _, err := old.SQL().Exec(`DELETE FROM registration_history WHERE last_seen < ?
					AND last_seen < (SELECT MAX(h.last_seen) FROM registration_history h WHERE h.extension = registration_history.extension
						AND h.kind = registration_history.kind)`, before.Unix()); err != nil {
					t.Fatal(err)
				}
				if _, err := old.PruneContacts(ctx, gone, time.Unix(0, 0)); err != nil {
					t.Fatal(err)
				}
				db := MustOpenDB(t)
				db.Now = func() time.Time { return now }
				pruneHistory(t, db, seed, before.Unix())
				store.SetPruneBatch(t, batch)
				if _, err := db.PruneContacts(ctx, gone, before); err != nil {
					t.Fatal(err)
				}
				want, got := historyDump(t, old), historyDump(t, db)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("batched prune kept %d values, the one statement %d:\n%v\nwant\n%v", len(got), len(want), got, want)
				}
			})
		}
	}
}
