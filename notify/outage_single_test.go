package notify_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

// TestBacklogOfOneGoesOutWhenTheNotifierRecovers: the webhook delivered
// (so it is not "down" from the start), then went down for three hours
// with one notice pending. Once it is back, the next delivery must bring
// that notice forward, as for a backlog of two.
func TestBacklogOfOneGoesOutWhenTheNotifierRecovers(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	var up atomic.Bool
	up.Store(true)
	var mu sync.Mutex
	var got []string
	hook := &funcNotifier{name: "webhook", fn: func(_ context.Context, n tollguard.Notice) error {
		if !up.Load() {
			return errDown
		}
		mu.Lock()
		got = append(got, n.Alert.Kind)
		mu.Unlock()
		return nil
	}}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Now: clk.Now}, hook)
	if err := d.Raise(ctx, burst("1000")); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, d)
	up.Store(false)
	if err := d.Raise(ctx, compromised()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 180; i++ { // three hours down, a look every minute
		deliverDue(t, d)
		clk.Add(time.Minute)
	}
	up.Store(true)
	if err := d.Raise(ctx, burst("1002")); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, d)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Errorf("delivered %v, want both bursts and the held-back credentials_compromised", got)
	}
	for _, r := range outboxRows(t, db, "webhook") {
		if r.Status != store.DeliverySent {
			t.Errorf("%s notice: %s after %d attempts, next attempt in %s", r.Notice.Alert.Kind, r.Status, r.Attempts, r.NextAt.Sub(clk.Now()))
		}
	}
}
