package store_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

func TestRollupKeepsTotalsAndOpenCalls(t *testing.T) {
	db := MustOpenDB(t)
	db.Now = rollupClock // the rollup never reaches into its own last day
	ctx := context.Background()
	seedAccount(t, db)
	base := time.Date(2026, 8, 10, 12, 0, 0, 0, time.UTC)
	insert := func(at time.Time, v tollguard.Verdict, reserve tollguard.Amount) int64 {
		return rollupCall(t, db, tollguard.CallRecord{CreatedAt: at, Verdict: v, Reason: tollguard.ReasonOK, Rate: 60000, Reserve: reserve, MaxSec: 600})
	}
	var settled []int64
	for i := range 7 {
		settled = append(settled, insert(base.Add(time.Duration(i)*time.Hour), tollguard.Allow, 100))
	}
	insert(base, tollguard.Deny, 0)
	open := insert(base, tollguard.Allow, 100)
	recent := insert(base.AddDate(0, 2, 0), tollguard.Deny, 0)
	for _, id := range settled {
		if _, _, err := db.SettleCall(ctx, tollguard.Settlement{CallID: id, Billsec: 60, By: "agi", At: base}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := db.Spend(ctx, "acme", "2026-08")
	n, err := db.Rollup(ctx, base.AddDate(0, 1, 0), 3) // small batches
	if err != nil || n != 8 {
		t.Fatalf("rolled up %d, %v; want 8", n, err)
	}
	after, _ := db.Spend(ctx, "acme", "2026-08")
	if after != before || after.Calls != 9 || after.Charge != 7*6 || after.Billsec != 7*60 {
		t.Fatalf("spend before %+v after %+v", before, after)
	}
	if _, err := db.Call(ctx, open); err != nil {
		t.Fatal("an open call must never be rolled up: ", err)
	}
	if _, err := db.Call(ctx, recent); err != nil {
		t.Fatal("a call inside the retention window was rolled up: ", err)
	}
	if _, err := db.Call(ctx, settled[0]); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatal("an old settled call is still there: ", err)
	}
	// The stale audit reads an extension's last call from the calls: the
	// rolled-up ones are kept as its last-seen time, never moved back.
	if e, err := db.Extension(ctx, "1001"); err != nil || !e.LastSeen.Equal(base.Add(6*time.Hour)) {
		t.Fatalf("1001 last seen %v, %v; want its last rolled-up call, %v", e.LastSeen, err, base.Add(6*time.Hour))
	}
	if err := db.TouchExtension(ctx, "1001", base.AddDate(0, 3, 0).Unix()); err != nil {
		t.Fatal(err)
	}
	insert(base.Add(-time.Hour), tollguard.Deny, 0)
	insert(base.Add(time.Hour), tollguard.Deny, 0) // the newest call stays, whatever its time
	if _, err := db.Rollup(ctx, base.AddDate(0, 1, 0), 3); err != nil {
		t.Fatal(err)
	}
	if e, _ := db.Extension(ctx, "1001"); !e.LastSeen.Equal(base.AddDate(0, 3, 0)) {
		t.Fatalf("1001 last seen %v: moved back by a rollup", e.LastSeen)
	}
}

// TestRollupNeverReusesCallIDs: a rollup that emptied the calls table
// made SQLite number the next call 1 again, so a stale hangup request
// for the old call 1 settled the new one.
func TestRollupNeverReusesCallIDs(t *testing.T) {
	db := MustOpenDB(t)
	db.Now = rollupClock // the rollup never reaches into its own last day
	ctx := context.Background()
	seedAccount(t, db)
	at := time.Date(2026, 8, 10, 12, 0, 0, 0, time.UTC)
	insert := func(at time.Time) int64 {
		return rollupCall(t, db, tollguard.CallRecord{CreatedAt: at, Verdict: tollguard.Deny, Reason: tollguard.ReasonNoCredit})
	}
	var last int64
	for range 3 {
		last = insert(at)
	}
	if n, err := db.Rollup(ctx, at.AddDate(0, 1, 0), 0); err != nil || n != 2 {
		t.Fatalf("rolled up %d, %v; want 2 (all but the newest)", n, err)
	}
	if id := insert(at.AddDate(0, 1, 1)); id <= last {
		t.Fatalf("call id %d after a rollup, want more than %d", id, last)
	}
	if t2, _ := db.Spend(ctx, "acme", "2026-08"); t2.Calls != 3 || t2.Denied != 3 {
		t.Fatalf("August after the rollup: %+v, want 3 denied calls", t2)
	}
}

// TestHugeBillsecKeepsSumsWorking: seconds from the dialplan are
// bounded, so that no settlement can make SUM(billsec) overflow, which
// stopped the rollup and the spend audit for good.
func TestHugeBillsecKeepsSumsWorking(t *testing.T) {
	db := MustOpenDB(t)
	db.Now = rollupClock // the rollup never reaches into its own last day
	ctx := context.Background()
	seedAccount(t, db)
	at := time.Date(2026, 8, 10, 12, 0, 0, 0, time.UTC)
	for range 2 {
		id := rollupCall(t, db, tollguard.CallRecord{CreatedAt: at, Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, Rate: 60000, Reserve: 100, MaxSec: -1})
		rec, _, err := db.SettleCall(ctx, tollguard.Settlement{CallID: id, Billsec: math.MaxInt64, By: "agi", At: at})
		if err != nil || rec.Billsec != 365*24*3600 || rec.Charge != 100 {
			t.Fatalf("settled %+v, %v; want a year's seconds, charged the reservation", rec, err)
		}
	}
	if sp, err := db.Spend(ctx, "acme", "2026-08"); err != nil || sp.Billsec != 2*365*24*3600 {
		t.Fatalf("spend %+v, %v", sp, err)
	}
	// A newer row, which the rollup keeps (it holds the largest id), so
	// that both big ones are summed.
	rollupCall(t, db, tollguard.CallRecord{CreatedAt: at, Verdict: tollguard.Deny, Reason: tollguard.ReasonNoCredit})
	if n, err := db.Rollup(ctx, at.AddDate(0, 1, 0), 10); err != nil || n != 2 {
		t.Fatalf("rollup %d, %v", n, err)
	}
}

// rollupCall records a call of the seeded extension 1001 (account acme)
// to 0207, a national number, in the gate's transaction as a decision
// does, and returns its id. The rollup tests' calls are all this one;
// c says when it was made, what was decided and what it reserved.
func rollupCall(t *testing.T, db *store.DB, c tollguard.CallRecord) int64 {
	t.Helper()
	c.Extension, c.Account, c.Dialled, c.Class, c.Scale = "1001", "acme", "0207", tollguard.ClassNational, 2
	var id int64
	err := db.Gate(context.Background(), false, func(tx tollguard.GateTx) error {
		var err error
		id, err = tx.InsertCall(context.Background(), &c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// rollupClock is the store's clock in the rollup tests: well after
// their calls (August to October 2026), whatever the machine's clock.
func rollupClock() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }

func TestSpendRejectsBadMonth(t *testing.T) {
	db := MustOpenDB(t)
	if _, err := db.Spend(context.Background(), "acme", "2026-13"); tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Fatal(err)
	}
	_ = store.CallFilter{}
}

// TestSettledAtTheEpochStaysSettled: a settlement dated 1970-01-01
// 00:00:00 UTC (an ARI ChannelDestroyed with a bad timestamp: the
// listener refuses only times ahead of its clock) stored settled_at 0,
// which reads back as "not settled": the next settle of the call found
// it open, matched no row, and charged the balance again, a charge no
// call row records.
func TestSettledAtTheEpochStaysSettled(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	seedAccount(t, db)
	if _, err := db.AddCredit(ctx, "acme", 1000, "", "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 8, 10, 12, 0, 0, 0, time.UTC)
	id := rollupCall(t, db, tollguard.CallRecord{CreatedAt: now, Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, Rate: 600000, Reserve: 100, MaxSec: 600})
	if _, changed, err := db.SettleCall(ctx, tollguard.Settlement{CallID: id, Billsec: 60, By: "ari", At: time.Unix(0, 0)}); err != nil || !changed {
		t.Fatalf("first settle: %v %v", changed, err)
	}
	if _, changed, err := db.SettleCall(ctx, tollguard.Settlement{CallID: id, Billsec: 60, By: "agi", At: now.Add(time.Minute)}); err != nil || changed {
		t.Fatalf("second settle: changed %v, %v; want nothing changed", changed, err)
	}
	c, err := db.Call(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := db.CreditOf(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if c.Open() || c.Charge != 60 || cr.Balance != 1000-60 {
		t.Fatalf("call open %v charged %d, balance %d: want settled, charged 60 once, balance 940", c.Open(), c.Charge, cr.Balance)
	}
}

// TestRolledUpSince: `tollguard calls` says when monthly totals hold
// calls its listing can no longer show; the totals' grain is an
// account's UTC month and its allowed and denied counts.
func TestRolledUpSince(t *testing.T) {
	db := MustOpenDB(t)
	db.Now = rollupClock
	ctx := context.Background()
	seedAccount(t, db)
	if ok, err := db.RolledUpSince(ctx, time.Time{}, "", ""); err != nil || ok {
		t.Fatalf("nothing rolled up yet: %v, %v", ok, err)
	}
	at := time.Date(2026, 8, 10, 12, 0, 0, 0, time.UTC)
	for _, c := range []time.Time{at, at.AddDate(0, 2, 0)} { // the newest stays
		rollupCall(t, db, tollguard.CallRecord{CreatedAt: c, Verdict: tollguard.Deny, Reason: tollguard.ReasonNoCredit})
	}
	if n, err := db.Rollup(ctx, at.AddDate(0, 1, 0), 0); err != nil || n != 1 {
		t.Fatalf("rolled up %d, %v; want 1", n, err)
	}
	for _, tc := range []struct {
		name    string
		since   time.Time
		account string
		verdict tollguard.Verdict
		want    bool
	}{
		{name: "AnySince", want: true},
		{name: "SinceEarlierMonth", since: at.AddDate(0, -3, 0), want: true},
		{name: "SinceLaterInTheMonth", since: at.AddDate(0, 0, 5), want: true}, // a month is the grain
		{name: "SinceNextMonth", since: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), want: false},
		// 1 September 01:00 in Paris is still August in UTC.
		{name: "SinceIsUTCMonth", since: time.Date(2026, 9, 1, 1, 0, 0, 0, time.FixedZone("CEST", 2*3600)), want: true},
		{name: "ThisAccount", account: "acme", want: true},
		{name: "OtherAccount", account: "other", want: false},
		{name: "Denied", verdict: tollguard.Deny, want: true},
		{name: "NoneAllowed", verdict: tollguard.Allow, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := db.RolledUpSince(ctx, tc.since, tc.account, tc.verdict); err != nil || got != tc.want {
				t.Errorf("RolledUpSince(%v, %q, %q) = %v, %v; want %v", tc.since, tc.account, tc.verdict, got, err, tc.want)
			}
		})
	}
}

func TestRollupBefore(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err) // time/tzdata is linked in (through the domain package): never missing
	}
	// A day back across London's spring change is 23 hours.
	afterDST := time.Date(2026, 3, 30, 0, 30, 0, 0, london)
	for _, tc := range []struct {
		name string
		now  time.Time
		days int
		want time.Time
	}{
		{name: "CalendarDays", now: now, days: 30, want: time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC)},
		// The daemon counts days in its own zone: 30 days back across
		// the spring change are 719 hours.
		{name: "CalendarDaysInNowsZone", now: time.Date(2026, 4, 15, 12, 0, 0, 0, london), days: 30, want: time.Date(2026, 3, 16, 12, 0, 0, 0, london)},
		{name: "NeverTheLastDay", now: now, days: 1, want: now.Add(-86460 * time.Second)},
		{name: "ShortDayKeepsADay", now: afterDST, days: 1, want: afterDST.Add(-86460 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := store.RollupBefore(tc.now, tc.days); !got.Equal(tc.want) {
				t.Errorf("RollupBefore(%v, %d) = %v; want %v", tc.now, tc.days, got, tc.want)
			}
		})
	}
}
