package store

import (
	"math/rand/v2"
	"testing"
)

// TestAttemptSeries checks the running totals against a plain list of
// attempt times, for in-order, jittered and duplicate arrivals and trims.
func TestAttemptSeries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		adds   []int64
		trimAt int64 // 0: no trim
		since  []int64
	}{
		{"empty", nil, 0, []int64{0, 100}},
		{"in order", []int64{10, 11, 11, 20, 30}, 0, []int64{0, 10, 11, 12, 20, 30, 31}},
		{"late arrival", []int64{10, 20, 15, 20, 5}, 0, []int64{0, 5, 6, 10, 15, 16, 20, 21}},
		{"trimmed", []int64{10, 20, 30, 40}, 25, []int64{25, 30, 35, 40, 41}},
		{"added after trim", []int64{100, 200, 150, 50}, 120, []int64{120, 150, 151, 200, 201}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s attemptSeries
			for _, a := range tc.adds {
				s.add(a)
			}
			if tc.trimAt > 0 {
				s.trim(tc.trimAt)
			}
			for _, from := range tc.since {
				want := int64(0)
				for _, a := range tc.adds {
					if a >= from && a >= tc.trimAt {
						want++
					}
				}
				if got := s.since(from); got != want {
					t.Errorf("since(%d) = %d, want %d (series %+v)", from, got, want, s)
				}
			}
		})
	}
}

// TestAttemptSeriesRandom: a long random run with jitter and periodic
// trims agrees with counting the list.
func TestAttemptSeriesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s attemptSeries
	var all []int64
	now := int64(1_000_000)
	for i := range 20000 {
		now += r.Int64N(30)
		at := now - r.Int64N(3) // sessions' clocks jitter
		s.add(at)
		all = append(all, at)
		if i%997 == 0 {
			s.trim(now - attemptDay)
		}
		if i%101 == 0 {
			for _, w := range []int64{60, 3600, attemptDay} {
				want := int64(0)
				for _, a := range all {
					if a >= now-w {
						want++
					}
				}
				if got := s.since(now - w); got != want {
					t.Fatalf("after %d attempts: window %d s counts %d, want %d", i+1, w, got, want)
				}
			}
		}
	}
	if len(s.secs) > attemptDay {
		t.Fatalf("series keeps %d seconds, more than a day's", len(s.secs))
	}
}

// TestOpenCallsCovered: a decision sums its account's calls in progress
// from the calls_open index without reading call rows, so the cost per
// open call stays one index entry.
func TestOpenCallsCovered(t *testing.T) {
	db, err := Open(t.Context(), t.TempDir()+"/tollguard.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+openCallsQuery, "1001", "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) != 1 || plan[0] != "SEARCH calls USING COVERING INDEX calls_open (account_id=?)" {
		t.Fatalf("open calls query plan %q, want one search of the covering calls_open index", plan)
	}
}
