package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/tollguard/tollguard/store"
)

// rollupHistory fills db with a mixed history: four accounts, five
// months, allowed and denied calls, settled and open, some exactly at
// cutoff and a second before it. The same seed gives the same rows.
func rollupHistory(t *testing.T, db *store.DB, seed uint64, cutoff time.Time) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	from := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
	span := time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC).Unix() - from
	tx, err := db.SQL().Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range 3000 {
		at := from + r.Int64N(span)
		switch i % 50 {
		case 0:
			at = cutoff.Unix()
		case 1:
			at = cutoff.Unix() - 1
		}
		verdict, settled := "deny", any(nil)
		var reserve, charge, billsec int64
		if r.IntN(3) > 0 {
			verdict = "allow"
			reserve = r.Int64N(1_000_000)
			if r.IntN(5) > 0 { // a fifth stay open
				settled, billsec, charge = at+60, r.Int64N(7200), r.Int64N(reserve+1)
			}
		}
		if _, err := tx.Exec(`INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, reserve, settled_at, billsec, charge)
			VALUES (?, ?, ?, '0207', 'national', ?, 'ok', ?, ?, ?, ?)`,
			at, fmt.Sprint(1000+r.IntN(20)), fmt.Sprint("acct", r.IntN(4)), verdict, reserve, settled, billsec, charge); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// rollupSums are monthly totals by account and month.
type rollupSums map[string][5]int64

func querySums(t *testing.T, db *sql.DB, q string, args ...any) rollupSums {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := rollupSums{}
	for rows.Next() {
		var acct, month string
		var s [5]int64
		if err := rows.Scan(&acct, &month, &s[0], &s[1], &s[2], &s[3], &s[4]); err != nil {
			t.Fatal(err)
		}
		out[acct+" "+month] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// oneShotSums is what the rollup of every call due before cutoff, in
// one statement, puts in the monthly totals.
const oneShotSums = `SELECT account_id, strftime('%Y-%m', created_at, 'unixepoch'), COUNT(*),
	SUM(verdict = 'allow'), SUM(verdict = 'deny'), SUM(billsec), SUM(charge)
	FROM calls WHERE created_at < ? AND NOT (verdict = 'allow' AND settled_at IS NULL)
		AND id < (SELECT MAX(id) FROM calls) GROUP BY 1, 2`

const totalsSums = `SELECT account_id, month, calls, allowed, denied, billsec, charge FROM monthly_totals`

// callIDs are the ids left in the calls table.
func callIDs(t *testing.T, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM calls ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestBatchedRollupMatchesOneShot: the rollup's transactions, however
// it sizes them, fold exactly the calls (and sums) one statement would,
// and leave every open call and every call from the cutoff on.
func TestBatchedRollupMatchesOneShot(t *testing.T) {
	ctx := context.Background()
	cutoff := time.Date(2026, 9, 14, 12, 0, 0, 0, time.UTC)
	for _, batch := range []int{5, 64, 5000} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			db := MustOpenDB(t)
			db.Now = rollupClock
			rollupHistory(t, db, 1, cutoff)
			want := querySums(t, db.SQL(), oneShotSums, cutoff.Unix())
			var wantLeft []int64
			rows, err := db.SQL().Query(`SELECT id FROM calls WHERE NOT (created_at < ? AND NOT (verdict = 'allow' AND settled_at IS NULL)
				AND id < (SELECT MAX(id) FROM calls)) ORDER BY id`, cutoff.Unix())
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				rows.Scan(&id)
				wantLeft = append(wantLeft, id)
			}
			rows.Close()
			n, err := db.Rollup(ctx, cutoff, batch)
			if err != nil {
				t.Fatal(err)
			}
			if got := querySums(t, db.SQL(), totalsSums); !reflect.DeepEqual(got, want) {
				t.Fatalf("batched totals\n%v\nwant the one-shot rollup's\n%v", got, want)
			}
			if left := callIDs(t, db.SQL()); !reflect.DeepEqual(left, wantLeft) || n != 3000-len(wantLeft) {
				t.Fatalf("rolled up %d, left %d calls; want %d left", n, len(left), len(wantLeft))
			}
		})
	}
}

// TestRollupStoppedBetweenBatches: a rollup cancelled between its
// transactions leaves totals and calls agreeing (every call in one or
// the other, once), and the next run ends where one run would.
func TestRollupStoppedBetweenBatches(t *testing.T) {
	store.SetChunkPause(t, time.Second) // a pause long enough to cancel in
	cutoff := time.Date(2026, 9, 14, 12, 0, 0, 0, time.UTC)
	db := MustOpenDB(t)
	db.Now = rollupClock
	rollupHistory(t, db, 2, cutoff)
	want := querySums(t, db.SQL(), oneShotSums, cutoff.Unix())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var n int
	go func() {
		var err error
		n, err = db.Rollup(ctx, cutoff, 100)
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var rolled int64
		if err := db.SQL().QueryRow(`SELECT COALESCE(SUM(calls), 0) FROM monthly_totals`).Scan(&rolled); err != nil {
			t.Fatal(err)
		}
		if rolled > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no batch committed in 10 s")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rollup returned %v", err)
	}
	// Totals plus the due calls still there are the one-shot totals.
	partial := querySums(t, db.SQL(), totalsSums)
	left := querySums(t, db.SQL(), oneShotSums, cutoff.Unix())
	if n <= 0 || n >= 2000 {
		t.Fatalf("the cancelled rollup folded %d calls; want one batch or a few", n)
	}
	for k, w := range want {
		p, l := partial[k], left[k]
		for i := range w {
			if p[i]+l[i] != w[i] {
				t.Fatalf("%s: totals %v plus the calls left %v; want %v", k, p, l, w)
			}
		}
	}
	store.SetChunkPause(t, time.Millisecond)
	if _, err := db.Rollup(context.Background(), cutoff, 100); err != nil {
		t.Fatal(err)
	}
	if got := querySums(t, db.SQL(), totalsSums); !reflect.DeepEqual(got, want) {
		t.Fatalf("totals after the next run\n%v\nwant\n%v", got, want)
	}
}
