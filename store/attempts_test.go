package store_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestAttemptCounts: the gate's attempt counts follow its own inserts,
// calls written by another connection, a rollup into the last day and
// a clock that goes back, always agreeing with the calls table, in both
// tallies: calls with a source address and calls without.
func TestAttemptCounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	db := MustOpenPath(t, path)
	other := MustOpenPath(t, path) // another process's view

	count := func(scope, id string, tally tollguard.Tally, now int64) (got, want [3]int) {
		t.Helper()
		err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			var err error
			got[0], got[1], got[2], err = tx.Attempts(ctx, scope, id, tally, time.Unix(now, 0))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		col := map[string]string{"ext": "extension", "acct": "account_id"}[scope]
		err = db.SQL().QueryRowContext(ctx, `SELECT COALESCE(SUM(created_at >= ?), 0), COALESCE(SUM(created_at >= ?), 0),
			COALESCE(SUM(created_at >= ?), 0) FROM calls WHERE `+col+` = ? AND class <> 'emergency' AND (remote = '') = ?`,
			now-60, now-3600, now-86400, id, tally == tollguard.TallyNoSource).Scan(&want[0], &want[1], &want[2])
		if err != nil {
			t.Fatal(err)
		}
		return got, want
	}
	agree := func(when string, now int64) {
		t.Helper()
		for _, k := range []struct{ scope, id string }{{"ext", "1001"}, {"ext", "1002"}, {"acct", "acme"}, {"acct", "other"}, {"ext", "none"}} {
			for _, tally := range []tollguard.Tally{tollguard.TallySourced, tollguard.TallyNoSource} {
				if got, want := count(k.scope, k.id, tally, now); got != want {
					t.Fatalf("%s: %s %s counts %v %s (minute, hour, day), the calls table says %v", when, k.scope, k.id, got, tally, want)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	// A third of the calls have no source address (forwarded legs).
	remote := func() string { return []string{"", "192.0.2.7", "2001:db8::7"}[r.IntN(3)] }
	insertClass := func(ext, acct string, at int64, class tollguard.Class) {
		t.Helper()
		err := db.Gate(ctx, false, func(tx tollguard.GateTx) error {
			_, err := tx.InsertCall(ctx, &tollguard.CallRecord{CreatedAt: time.Unix(at, 0), Extension: ext, Account: acct, Remote: remote(),
				Dialled: "02079460000", Class: class, Verdict: tollguard.Deny, Reason: tollguard.ReasonRateLimit})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	insert := func(ext, acct string, at int64) { t.Helper(); insertClass(ext, acct, at, tollguard.ClassNational) }

	now := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC).Unix()
	agree("empty", now)
	for i := range 400 {
		now += r.Int64N(600)
		ext := []string{"1001", "1002"}[r.IntN(2)]
		acct := map[string]string{"1001": "acme", "1002": "other"}[ext]
		insert(ext, acct, now-r.Int64N(2))
		if i%7 == 0 { // an emergency call: recorded, not an attempt
			insertClass(ext, acct, now, tollguard.ClassEmergency)
		}
		if i%25 == 0 {
			agree("after the gate's inserts", now)
		}
	}
	agree("after the gate's inserts", now)

	// A clock that steps back less than the rebuild tolerance still
	// counts a call from just over a day before the newest time seen.
	insert("1001", "acme", now-86400-10)
	agree("a call a day and 10 s ago", now)
	agree("clock 20 s back", now-20)

	// Another process records calls (a second daemon, a restore), with
	// a source address and without, an emergency call among them, which
	// is not an attempt.
	for _, c := range []struct{ class, remote string }{{"national", ""}, {"emergency", "192.0.2.7"}, {"mobile", "192.0.2.7"}, {"national", ""}} {
		if _, err := other.SQL().ExecContext(ctx, `INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, remote)
			VALUES (?, '1001', 'acme', '07700900000', ?, 'allow', 'ok', ?)`, now, c.class, c.remote); err != nil {
			t.Fatal(err)
		}
	}
	agree("after another connection's inserts", now)

	// A rollup reaching into the last day of the decisions' clock:
	// Rollup keeps its own clock's last day, so only a store clock
	// ahead of the decisions' (a second process, a step) gets here.
	db.Now = func() time.Time { return time.Unix(now+2*86400, 0) }
	if n, err := db.Rollup(ctx, time.Unix(now-1800, 0), 0); err != nil || n == 0 {
		t.Fatalf("rollup into the last day folded %d calls, %v; the step checks nothing", n, err)
	}
	db.Now = time.Now
	agree("after a rollup into the last day", now)
	insert("1001", "acme", now)
	agree("after a rollup and an insert", now)

	// The clock goes back two hours, then forward a week.
	agree("clock back", now-7200)
	insert("1002", "other", now-7200)
	agree("clock back, then an insert", now-7200)
	agree("a week on", now+7*86400)
	insert("1001", "acme", now+7*86400)
	agree("a week on, then an insert", now+7*86400)
	agree("back from a week on", now)

	// A restart builds the counts from the table.
	db.Close()
	db = MustOpenPath(t, path)
	db.Now = func() time.Time { return time.Unix(now+7*86400, 0) } // the clock the test left
	if err := db.WarmGate(ctx); err != nil {
		t.Fatal(err)
	}
	agree("after a restart", now+7*86400)
}

// TestAttemptsFromAFastClockAgeOut: attempts recorded while the clock
// ran an hour fast counted in every window until the clock reached
// their dates, once it was set back: an extension at its per-minute
// limit was refused for the hour. They happened just before the clock
// was corrected, so they count from then and age out.
func TestAttemptsFromAFastClockAgeOut(t *testing.T) {
	ctx := context.Background()
	db := MustOpenPath(t, filepath.Join(t.TempDir(), "tollguard.db"))
	t0 := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	var clock time.Time
	db.Now = func() time.Time { return clock }
	counts := func(now time.Time) (m, h, d int) {
		t.Helper()
		clock = now
		if err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			var err error
			m, h, d, err = tx.Attempts(ctx, "ext", "1001", tollguard.TallyNoSource, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return m, h, d
	}
	counts(t0.Add(time.Hour)) // the fast clock
	for range 3 {
		if err := db.Gate(ctx, false, func(tx tollguard.GateTx) error {
			_, err := tx.InsertCall(ctx, &tollguard.CallRecord{CreatedAt: t0.Add(time.Hour), Extension: "1001", Account: "acme",
				Dialled: "02079460000", Class: tollguard.ClassNational, Verdict: tollguard.Allow, Reason: tollguard.ReasonOK})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if m, h, d := counts(t0.Add(2 * time.Minute)); m != 3 || h != 3 || d != 3 { // set back: just now
		t.Errorf("at the step back: %d %d %d, want 3 in each window", m, h, d)
	}
	if m, h, d := counts(t0.Add(4 * time.Minute)); m != 0 || h != 3 || d != 3 {
		t.Errorf("two minutes on: %d %d %d, want 0 in the minute, 3 in the hour and day", m, h, d)
	}
}

// TestAttemptCountsSkipRefusedCallers: calls denied because the caller
// is outside the extension's IP access list, or the extension is
// blocked, are no attempts of the extension or its account, whether
// the counts follow the gate's inserts, catch up with another
// connection's, or are rebuilt from the table. Counted, a stolen
// password used from anywhere spent the customer's attempt limits and
// locked its phones out for a day.
func TestAttemptCountsSkipRefusedCallers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	db := MustOpenPath(t, path)
	other := MustOpenPath(t, path)
	now := time.Now()
	insert := func(db interface {
		Gate(context.Context, bool, func(tollguard.GateTx) error) error
	}, r tollguard.Reason) {
		t.Helper()
		err := db.Gate(ctx, false, func(tx tollguard.GateTx) error {
			_, err := tx.InsertCall(ctx, &tollguard.CallRecord{CreatedAt: now, Extension: "1001", Account: "acme",
				Dialled: "02079460000", Class: tollguard.ClassNational, Verdict: tollguard.Deny, Reason: r})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	counts := func(db interface {
		Gate(context.Context, bool, func(tollguard.GateTx) error) error
	}) (got [2]int) {
		t.Helper()
		err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			var err error
			_, _, got[0], err = tx.Attempts(ctx, "ext", "1001", tollguard.TallyNoSource, now)
			if err == nil {
				_, _, got[1], err = tx.Attempts(ctx, "acct", "acme", tollguard.TallyNoSource, now)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	counts(db) // built
	insert(db, tollguard.ReasonIPNotAllowed)
	insert(db, tollguard.ReasonBlockedExtension)
	insert(db, tollguard.ReasonPremium) // an attempt
	if got := counts(db); got != [2]int{1, 1} {
		t.Fatalf("after the gate's own inserts: extension and account counts %v, want 1 each", got)
	}
	insert(other, tollguard.ReasonIPNotAllowed)
	insert(other, tollguard.ReasonRateLimit)
	if got := counts(db); got != [2]int{2, 2} {
		t.Fatalf("after another connection's inserts: %v, want 2 each", got)
	}
	if got := counts(MustOpenPath(t, path)); got != [2]int{2, 2} {
		t.Fatalf("rebuilt from the table: %v, want 2 each", got)
	}
}

// TestAttemptsOutliveAClockSetBackByMistake: counted from when a clock
// set back found them (the fast clock's case above), the attempts of a
// clock that was right were taken for older than they are once it was
// right again: a box that rebooted with its clock a day behind (no RTC,
// NTP not yet synced) forgot, at the sync, every attempt of the day
// before the reboot, and a password used up to its daily limit had a
// fresh one. Once the clock reaches an attempt's date, it counts from
// that date.
func TestAttemptsOutliveAClockSetBackByMistake(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	db := MustOpenPath(t, path)
	t0 := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	var clock time.Time
	counts := func(db *store.DB, now time.Time) (m, h, d int) {
		t.Helper()
		clock = now
		if err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
			var err error
			m, h, d, err = tx.Attempts(ctx, "ext", "1001", tollguard.TallySourced, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return m, h, d
	}
	db.Now = func() time.Time { return clock }
	counts(db, t0)
	for i := range 3 {
		if err := db.Gate(ctx, false, func(tx tollguard.GateTx) error {
			_, err := tx.InsertCall(ctx, &tollguard.CallRecord{CreatedAt: t0.Add(time.Duration(i) * time.Minute), Extension: "1001", Account: "acme",
				Remote: "192.0.2.7", Dialled: "02079460000", Class: tollguard.ClassNational, Verdict: tollguard.Allow, Reason: tollguard.ReasonOK})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		behind time.Duration
	}{{"SetBackAnHour", time.Hour}, {"RebootedADayBehind", 25 * time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.behind > 24*time.Hour {
				db.Close()
				db = MustOpenPath(t, path)
				db.Now = func() time.Time { return clock }
				clock = t0.Add(-tc.behind)
				if err := db.WarmGate(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if m, h, d := counts(db, t0.Add(-tc.behind)); m != 3 || h != 3 || d != 3 {
				t.Errorf("clock %v behind: %d %d %d, want 3 in each window", tc.behind, m, h, d)
			}
			// The clock is right again, ten minutes after the calls.
			if m, h, d := counts(db, t0.Add(10*time.Minute)); m != 0 || h != 3 || d != 3 {
				t.Errorf("clock right again: %d %d %d, want 0 in the minute, 3 in the hour and day", m, h, d)
			}
		})
	}
}

// TestAttemptsReachedAtOnceCostLittle: a day of attempts found ahead of
// a clock set back, reached all at once when NTP puts it right, is moved
// to their dates in one pass. Each was taken back from the account's
// series one at a time, shifting the whole series: 86,400 attempts held
// the gate for 2 s (53 s under the race detector), every call waiting.
func TestAttemptsReachedAtOnceCostLittle(t *testing.T) {
	ctx := context.Background()
	db := MustOpenPath(t, filepath.Join(t.TempDir(), "tollguard.db"))
	t0 := time.Date(2026, 11, 20, 14, 0, 0, 0, time.UTC)
	const n = 50000 // over the 22 hours before t0, from 100 extensions
	if _, err := db.SQL().ExecContext(ctx, `WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM i WHERE k+1 < ?)
		INSERT INTO calls(created_at, extension, account_id, dialled, class, verdict, reason, remote)
		SELECT ? - (? - k) * 79200 / ?, 1000 + k % 100, 'acme', '02079460000', 'national', 'allow', 'ok', '192.0.2.7' FROM i`,
		n, t0.Unix(), n, n); err != nil {
		t.Fatal(err)
	}
	clock := t0.Add(-23 * time.Hour)
	db.Now = func() time.Time { return clock }
	if err := db.WarmGate(ctx); err != nil {
		t.Fatal(err)
	}
	clock = t0.Add(time.Minute) // NTP
	start := time.Now()
	var m, h, d int
	if err := db.Gate(ctx, true, func(tx tollguard.GateTx) error {
		var err error
		m, h, d, err = tx.Attempts(ctx, "acct", "acme", tollguard.TallySourced, clock)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	wantH := 0
	for k := range int64(n) {
		if t0.Unix()-(n-k)*79200/n >= clock.Unix()-3600 {
			wantH++
		}
	}
	if m != 0 || h != wantH || d != n {
		t.Errorf("after the sync: %d %d %d, want 0 in the minute, %d in the hour and %d in the day", m, h, d, wantH, n)
	}
	if took > time.Second {
		t.Errorf("moving %d attempts to their dates held the gate %v", n, took)
	}
}
