package notify_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

// switchedHook is a webhook that is up or down as up says, and the
// kinds it delivered.
type switchedHook struct {
	*funcNotifier
	up  atomic.Bool
	mu  sync.Mutex
	got []string
}

func newSwitchedHook() *switchedHook {
	h := &switchedHook{}
	h.funcNotifier = &funcNotifier{name: "webhook", fn: func(_ context.Context, n tollguard.Notice) error {
		if !h.up.Load() {
			return errDown
		}
		h.mu.Lock()
		h.got = append(h.got, n.Alert.Kind)
		h.mu.Unlock()
		return nil
	}}
	return h
}

func (h *switchedHook) delivered() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// outageOf raises credentials_compromised and keeps the webhook down
// for three hours (a look every minute), then brings it back and raises
// a burst warning.
func outageOf(t *testing.T, d *notify.Dispatcher, clk *clock, h *switchedHook) {
	t.Helper()
	ctx := context.Background()
	h.up.Store(false)
	if err := d.Raise(ctx, compromised()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 180; i++ {
		deliverDue(t, d)
		clk.Add(time.Minute)
	}
	h.up.Store(true)
	if err := d.Raise(ctx, burst("1002")); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, d)
}

// allSent fails the test for every webhook notice not sent.
func allSent(t *testing.T, db *store.DB, clk *clock) {
	t.Helper()
	for _, r := range outboxRows(t, db, "webhook") {
		if r.Status != store.DeliverySent {
			t.Errorf("%s notice: %s after %d attempts, next attempt in %s", r.Notice.Alert.Kind, r.Status, r.Attempts, r.NextAt.Sub(clk.Now()))
		}
	}
}

// TestBacklogGoesOutWhenTheNotifierRecovers: a notice that failed
// through an outage is sent as soon as the notifier delivers again, not
// when its backoff (up to retry_max plus jitter) runs out. A fraud alert
// raised three hours into a webhook outage waited another hour after the
// webhook was back, while later warnings went straight through.
func TestBacklogGoesOutWhenTheNotifierRecovers(t *testing.T) {
	clk := newClock()
	hook := newSwitchedHook()
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Now: clk.Now}, hook)
	outageOf(t, d, clk, hook)
	if got := hook.delivered(); len(got) != 2 {
		t.Errorf("delivered %v once the webhook was back, want the burst and the held-back credentials_compromised", got)
	}
	allSent(t, db, clk)
}

// TestBacklogOfOneGoesOutWhenTheNotifierRecovers: the webhook delivered
// (so it is not "down" from the start), then went down for three hours
// with one notice pending. Once it is back, the next delivery must bring
// that notice forward, as for a backlog of two.
func TestBacklogOfOneGoesOutWhenTheNotifierRecovers(t *testing.T) {
	clk := newClock()
	hook := newSwitchedHook()
	hook.up.Store(true)
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Now: clk.Now}, hook)
	if err := d.Raise(context.Background(), burst("1000")); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, d)
	outageOf(t, d, clk, hook)
	if got := hook.delivered(); len(got) != 3 {
		t.Errorf("delivered %v, want both bursts and the held-back credentials_compromised", got)
	}
	allSent(t, db, clk)
}

// TestARefusedNoticeKeepsItsBackoff: the webhook works, but refuses one
// notice (its receiver rejects that payload). Each other notice it
// delivers is not the webhook coming back from an outage: the refused
// notice must keep its backoff, not be tried again after every other
// delivery and given up after max_attempts of them (ALERT NOT DELIVERED
// within minutes instead of hours). In a quiet spell, when nothing else
// is delivered between two of its own attempts (the usual case), its
// second refusal must not make the webhook "down" either: the next
// other delivery then brought it forward and it used up two attempts per
// backoff.
func TestARefusedNoticeKeepsItsBackoff(t *testing.T) {
	for _, tt := range []struct {
		name         string
		quiet        bool
		wantAttempts int
	}{
		{"AmongOthers", false, 1},
		{"AfterAQuietSpell", true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			hook := &funcNotifier{name: "webhook", fn: func(_ context.Context, n tollguard.Notice) error {
				if n.Alert.Kind == tollguard.AlertCredentialsCompromised {
					return fmt.Errorf("webhook: HTTP 413 Payload Too Large: %w", notify.ErrRefused)
				}
				return nil
			}}
			db := openDB(t, "")
			d := newDispatcher(t, db, notify.Options{Now: clk.Now, Retry: notify.Retry{Initial: time.Hour, Max: time.Hour, MaxAttempts: 5}}, hook)
			// A first delivery: the webhook is up (the start's flag is spent).
			if err := d.Raise(ctx, burst("1000")); err != nil {
				t.Fatal(err)
			}
			deliverDue(t, d)
			if err := d.Raise(ctx, compromised()); err != nil {
				t.Fatal(err)
			}
			deliverDue(t, d)
			if tt.quiet {
				// Its retry (1 h, jitter up to 12 min) is refused again.
				clk.Add(73 * time.Minute)
				deliverDue(t, d)
			}
			for i := 1; i <= 10; i++ {
				clk.Add(time.Second)
				if err := d.Raise(ctx, burst(fmt.Sprint(1000+i))); err != nil {
					t.Fatal(err)
				}
				deliverDue(t, d)
			}
			for _, r := range outboxRows(t, db, "webhook") {
				if r.Notice.Alert.Kind != tollguard.AlertCredentialsCompromised {
					continue
				}
				if r.Attempts != tt.wantAttempts || r.Status != store.DeliveryPending {
					t.Errorf("the refused notice, then 10 s and 10 other deliveries (retry_initial 1h): %s after %d attempts, want pending after %d", r.Status, r.Attempts, tt.wantAttempts)
				}
			}
		})
	}
}
