package tollguard_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

var chanGone = func(context.Context, *tollguard.CallRecord) (bool, bool, error) { return false, true, nil }

// TestSweepGoneChargeOnTheMonotonicClock: a call this process decided
// was timed on its monotonic clock for overruns, but a gone one was
// charged to its first sighting on the wall clock: set a day ahead
// before that sighting, it paid its whole reservation for a minute.
func TestSweepGoneChargeOnTheMonotonicClock(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var mono time.Duration
	f.p.Mono = func() time.Duration { return mono }
	f.account(func(a *tollguard.Account) { a.MaxCallSecs = 3600 })
	d := f.want(tollguard.Call{Dialled: "07400123456", UniqueID: "pbx-5.1"}, tollguard.Allow, tollguard.ReasonOK)
	mono += time.Minute
	f.now = f.now.Add(24*time.Hour + time.Minute)
	if r, err := f.p.Sweep(ctx, f.db, chanGone, nil, 30*time.Second); err != nil || r.GoneWaiting != 1 {
		t.Fatalf("first sweep: %+v, %v", r, err)
	}
	mono += 30 * time.Second
	f.now = f.now.Add(30 * time.Second)
	if r, err := f.p.Sweep(ctx, f.db, chanGone, nil, 30*time.Second); err != nil || r.SettledGone != 1 {
		t.Fatalf("second sweep: %+v, %v", r, err)
	}
	if c, _ := f.db.Call(ctx, d.CallID); c.SettledBy != "sweep:gone" || c.Billsec != 60 {
		t.Errorf("call %+v; want charged 60 s, to its first sighting", c)
	}
}
