package notify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

// TestANoticeFailingForItsOwnReasonKeepsItsBackoff: the webhook works,
// but refuses one notice (its receiver rejects that payload). Each
// other notice it delivers is not the webhook coming back from an
// outage: the refused notice must keep its backoff, not be tried again
// after every other delivery and given up after max_attempts of them
// (ALERT NOT DELIVERED within minutes instead of hours).
func TestANoticeFailingForItsOwnReasonKeepsItsBackoff(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	refused := fmt.Errorf("webhook: HTTP 413 Payload Too Large: %w", notify.ErrRefused)
	hook := &funcNotifier{name: "webhook", fn: func(_ context.Context, n tollguard.Notice) error {
		if n.Alert.Kind == tollguard.AlertCredentialsCompromised {
			return refused
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
		if r.Attempts != 1 || r.Status != store.DeliveryPending {
			t.Errorf("the refused notice, 10 s and 10 other deliveries later (retry_initial 1h): %s after %d attempts, want pending after 1", r.Status, r.Attempts)
		}
	}
}
