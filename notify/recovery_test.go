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

// TestBacklogGoesOutWhenTheNotifierRecovers: a notice that failed
// through an outage is sent as soon as the notifier delivers again, not
// when its backoff (up to retry_max plus jitter) runs out. A fraud alert
// raised three hours into a webhook outage waited another hour after the
// webhook was back, while later warnings went straight through.
func TestBacklogGoesOutWhenTheNotifierRecovers(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	var up atomic.Bool
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
	if len(got) != 2 {
		t.Errorf("delivered %v once the webhook was back, want the burst and the held-back credentials_compromised", got)
	}
	for _, r := range outboxRows(t, db, "webhook") {
		if r.Status != store.DeliverySent {
			t.Errorf("%s notice: %s, next attempt in %s", r.Notice.Alert.Kind, r.Status, r.NextAt.Sub(clk.Now()))
		}
	}
}
