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

// TestARefusedNoticeRetriedInAQuietSpellKeepsItsBackoff: the webhook
// works but refuses one notice. When nothing else is delivered between
// two of its own attempts (a quiet hour, the usual case), its second
// refusal must not make the webhook "down": the next other delivery
// then brought it forward and it used up two attempts per backoff.
func TestARefusedNoticeRetriedInAQuietSpellKeepsItsBackoff(t *testing.T) {
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
	if err := d.Raise(ctx, burst("1000")); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, d)
	if err := d.Raise(ctx, compromised()); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, d)
	// A quiet spell: its retry (1 h, jitter up to 12 min) is refused again.
	clk.Add(73 * time.Minute)
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
		if r.Attempts != 2 || r.Status != store.DeliveryPending {
			t.Errorf("the refused notice, after its own retry and 10 other deliveries: %s after %d attempts, want pending after 2", r.Status, r.Attempts)
		}
	}
}
