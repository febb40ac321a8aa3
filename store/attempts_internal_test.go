package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
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

// TestAttemptSeriesEarly: attempts counted early count at their second
// in every window, until a trim past it, beside the dated ones.
func TestAttemptSeriesEarly(t *testing.T) {
	var s attemptSeries
	for _, a := range []int64{10, 20, 60} {
		s.add(a)
	}
	s.early, s.earlyAt = 2, 30
	for _, c := range []struct{ since, want int64 }{{0, 5}, {20, 4}, {30, 3}, {31, 1}, {61, 0}} {
		if got := s.since(c.since); got != c.want {
			t.Errorf("since(%d) = %d, want %d", c.since, got, c.want)
		}
	}
	if s.trim(30); s.since(0) != 3 {
		t.Errorf("trimmed up to them: %d, want 3", s.since(0))
	}
	if s.trim(31); s.since(0) != 1 || s.early != 0 {
		t.Errorf("trimmed past them: %d (%d early), want 1 (none)", s.since(0), s.early)
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

// BenchmarkAttemptCounts: one scope's counts on a busy account's day (a
// call a second), as the gate reads them per decision.
func BenchmarkAttemptCounts(b *testing.B) {
	now := int64(1_800_000_000)
	c := &attemptCounter{valid: true, newest: now, series: map[attemptKey]*attemptSeries{}}
	for at := now - attemptDay; at <= now; at++ {
		c.add("1001", "acme", tollguard.TallySourced, at)
	}
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, d, err := c.counts(ctx, nil, 'a', tollguard.TallySourced, "acme", now, now); err != nil || d == 0 {
			b.Fatal(d, err)
		}
	}
}

// TestOpenCallsCovered: a decision sums its account's calls in progress
// from the calls_open index without reading call rows, so the cost per
// open call stays one index entry.
func TestOpenCallsCovered(t *testing.T) {
	plan := queryPlan(t, openCallsQuery, "1001", "acme")
	if len(plan) != 1 || plan[0] != "SEARCH calls USING COVERING INDEX calls_open (account_id=?)" {
		t.Fatalf("open calls query plan %q, want one search of the covering calls_open index", plan)
	}
}

// TestAttemptCatchUp: calls another connection records are read and
// added (a second daemon on the same database costs its new rows, not
// a day of calls per batch), each in its tally: with a source address
// or without; rows gone from the top force a rebuild.
func TestAttemptCatchUp(t *testing.T) {
	ctx := t.Context()
	path := t.TempDir() + "/tollguard.db"
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	now := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	// count is the extension's and the account's day in each tally:
	// sourced, then no source.
	count := func() (got [4]int) {
		t.Helper()
		err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			for i, q := range []struct {
				scope, id string
				tally     tollguard.Tally
			}{{"ext", "1001", tollguard.TallySourced}, {"ext", "1001", tollguard.TallyNoSource},
				{"acct", "acme", tollguard.TallySourced}, {"acct", "acme", tollguard.TallyNoSource}} {
				var err error
				if _, _, got[i], err = tx.Attempts(ctx, q.scope, q.id, q.tally, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	insert := func(h *DB, remote string) {
		t.Helper()
		if _, err := h.db.ExecContext(ctx, `INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, remote)
			VALUES (?, '1001', 'acme', '02079460000', 'national', 'deny', 'rate_limit', ?)`, now.Unix(), remote); err != nil {
			t.Fatal(err)
		}
	}
	insert(db, "")
	insert(db, "192.0.2.7")
	if n := count(); n != [4]int{1, 1, 1, 1} || db.att.rebuilds != 1 {
		t.Fatalf("first counts %v after %d rebuilds, want 1 in each tally after 1", n, db.att.rebuilds)
	}
	for range 3 {
		insert(other, "")
	}
	insert(other, "192.0.2.7")
	if n := count(); n != [4]int{2, 4, 2, 4} || db.att.rebuilds != 1 || db.att.foreign != 1 {
		t.Fatalf("after another connection's inserts: %v attempts (sourced, no source; extension, then account), %d rebuilds, %d catch-ups; want [2 4 2 4], 1, 1",
			n, db.att.rebuilds, db.att.foreign)
	}
	if _, err := other.db.ExecContext(ctx, `DELETE FROM calls WHERE id = (SELECT MAX(id) FROM calls)`); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != [4]int{1, 4, 1, 4} || db.att.rebuilds != 2 {
		t.Fatalf("after the newest row (with a source) was deleted: %v attempts after %d rebuilds, want [1 4 1 4] after 2", n, db.att.rebuilds)
	}
}

// TestLatestAlertIndexed: an audit finding raised again finds its latest
// alert through an index, not by scanning every alert ever raised.
func TestLatestAlertIndexed(t *testing.T) {
	plan := queryPlan(t, latestAlertQuery, "weak_pin", "mailbox:1001")
	if len(plan) == 0 || !strings.Contains(plan[0], "USING INDEX alerts_kind_subject") {
		t.Fatalf("latest alert query plan %q, want a search of alerts_kind_subject", plan)
	}
}

// queryPlan is SQLite's plan for query on a fresh database, one detail
// line per step.
func queryPlan(t *testing.T, query string, args ...any) []string {
	t.Helper()
	db := openInternalDB(t)
	rows, err := db.db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
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
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestAttemptsAheadHoldADay: of the attempts a rebuild finds ahead of a
// clock set back, the counter holds (to move them to their dates) a
// day's at a time, reading the next from the table as the clock gets
// there, and counts as if it held them all. It held them all: a box
// booted with its clock months behind (no RTC) held every call row kept
// (retention_days = 90) in memory until the sync.
func TestAttemptsAheadHoldADay(t *testing.T) {
	ctx := t.Context()
	db := openInternalDB(t)
	t0 := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC).Unix()
	// A call every ten minutes over the three days before t0.
	var dates []int64
	for at := t0 - 3*attemptDay; at <= t0; at += 600 {
		if _, err := db.db.ExecContext(ctx, `INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, remote)
			VALUES (?, '1001', 'acme', '02079460000', 'national', 'allow', 'ok', '192.0.2.7')`, at); err != nil {
			t.Fatal(err)
		}
		dates = append(dates, at)
	}
	clock0 := t0 - 3*attemptDay - 3600
	clock := clock0
	db.Now = func() time.Time { return time.Unix(clock, 0) }
	if err := db.WarmGate(ctx); err != nil {
		t.Fatal(err)
	}
	aDay := 0 // the most calls in a day (and the tolerance)
	for _, at := range dates {
		if at <= dates[0]+attemptDay+clockBackTolerance {
			aDay++
		}
	}
	check := func(when string) {
		t.Helper()
		var got, want [3]int
		if err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			var err error
			got[0], got[1], got[2], err = tx.Attempts(ctx, "acct", "acme", tollguard.TallySourced, time.Unix(clock, 0))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// Those the clock reached count from their dates, the others
		// from the rebuild.
		for i, w := range []int64{60, 3600, attemptDay} {
			for _, at := range dates {
				if at <= clock && at >= clock-w || at > clock && clock0 >= clock-w {
					want[i]++
				}
			}
		}
		if got != want {
			t.Fatalf("%s: %v (minute, hour, day), want %v", when, got, want)
		}
		if len(db.att.ahead) > aDay {
			t.Fatalf("%s: %d attempts ahead held, more than a day's %d", when, len(db.att.ahead), aDay)
		}
	}
	check("at the rebuild")
	for i := 0; clock < t0-attemptDay/2; i++ { // the clock runs on, still behind
		clock += 600
		if i%6 == 0 { // and calls are made, dated by it
			if err := db.Gate(ctx, false, func(tx tollguard.GateTx) error {
				_, err := tx.InsertCall(ctx, &tollguard.CallRecord{CreatedAt: time.Unix(clock, 0), Extension: "1001", Account: "acme",
					Remote: "192.0.2.7", Dialled: "02079460000", Class: tollguard.ClassNational, Verdict: tollguard.Allow, Reason: tollguard.ReasonOK})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			dates = append(dates, clock)
		}
		check(fmt.Sprintf("%v behind", time.Duration(t0-clock)*time.Second))
	}
	clock = t0 + 60 // NTP
	check("after the sync")
	if db.att.ahead != nil {
		t.Errorf("after the sync, %d attempts still held ahead", len(db.att.ahead))
	}
}

// TestAttemptsReadAheadAnHourAtATime: past the day a rebuild holds, the
// attempts ahead of a clock still behind are read from the table an
// hour's at a time as the clock gets there. A day's at once held the
// write lock for a busy box's day of rows, each day the clock crawled
// on: 140 to 280 ms with 100,000 calls a day, every call waiting, near
// the default decision_timeout of 300 ms.
func TestAttemptsReadAheadAnHourAtATime(t *testing.T) {
	ctx := t.Context()
	db := openInternalDB(t)
	t0 := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC).Unix()
	const every = 20 // a call every 20 s over the three days before t0
	if _, err := db.db.ExecContext(ctx, `WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM i WHERE k+1 < ?)
		INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, remote)
		SELECT ? - k * ?, '1001', 'acme', '02079460000', 'national', 'deny', 'rate_limit', '192.0.2.7' FROM i`,
		3*attemptDay/every+1, t0, every); err != nil {
		t.Fatal(err)
	}
	clock0 := t0 - 3*attemptDay - 3600
	clock := clock0
	db.Now = func() time.Time { return time.Unix(clock, 0) }
	if err := db.WarmGate(ctx); err != nil {
		t.Fatal(err)
	}
	anHour := (readAheadSpan+clockBackTolerance)/every + 1
	for clock < t0-attemptDay/2 { // the clock runs on, still behind
		clock += 300
		var got [3]int
		if err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			var err error
			got[0], got[1], got[2], err = tx.Attempts(ctx, "acct", "acme", tollguard.TallySourced, time.Unix(clock, 0))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		// Those the clock reached count from their dates, the others
		// from the rebuild, until it is a day old.
		var want [3]int
		for i, w := range []int64{60, 3600, attemptDay} {
			for at := t0 - 3*attemptDay; at <= t0; at += every {
				if at <= clock && at >= clock-w || at > clock && clock0 >= clock-w {
					want[i]++
				}
			}
		}
		if got != want {
			t.Fatalf("%v behind: %v (minute, hour, day), want %v", time.Duration(t0-clock)*time.Second, got, want)
		}
		if clock > clock0+attemptDay+clockBackTolerance && len(db.att.ahead) > anHour {
			t.Fatalf("%v behind: %d attempts read ahead, more than an hour's %d", time.Duration(t0-clock)*time.Second, len(db.att.ahead), anHour)
		}
	}
}

// openInternalDB opens a fresh store in t's temporary directory, closed
// when t ends.
func openInternalDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), t.TempDir()+"/tollguard.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
