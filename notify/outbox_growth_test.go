package notify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

// TestOutboxOfAStandingAlertIsPruned: a condition that recurs within
// the cool-down (an endpoint calling round the gate every ten minutes,
// an alert nobody acknowledges) stays one alert, merged for ever, and
// each cool-down's digest queues a notice per notifier. The alert is
// never old enough to prune, and its delivered notices went with it: the
// outbox grew by 96 notices a day per notifier, each carrying the
// alert's evidence, for as long as the condition stood. Delivered
// notices past the retention must go, whatever became of their alert.
func TestOutboxOfAStandingAlertIsPruned(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	db := openDB(t, "")
	ok := func(context.Context, tollguard.Notice) error { return nil }
	const days, retention = 40, 10 * 24 * time.Hour
	d := newDispatcher(t, db, notify.Options{Now: clk.Now, Retention: retention},
		&funcNotifier{name: "email", fn: ok}, &funcNotifier{name: "webhook", fn: ok})
	for i := 0; i < days*24*6; i++ { // every 10 minutes
		a := burst("1001")
		a.Evidence = fmt.Sprintf(`{"calls":30,"window_s":60,"n":%d}`, i)
		if err := d.Raise(ctx, a); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			deliverDue(t, d)
		}
		clk.Add(10 * time.Minute)
	}
	deliverDue(t, d)
	if _, err := db.PruneAlerts(ctx, clk.Now().Add(-retention)); err != nil {
		t.Fatal(err)
	}
	all, err := db.Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bytes int
	for _, dl := range all {
		bytes += len(dl.Notice.Alert.Evidence)
	}
	// Within the retention: 10 days of a digest every 15 minutes, per notifier.
	limit := 2 * int(retention/(15*time.Minute)) * 12 / 10
	t.Logf("%d days: %d outbox rows left (evidence alone %d KB), want at most %d", days, len(all), bytes>>10, limit)
	if len(all) > limit {
		t.Errorf("%d outbox rows after %d days of a standing alert and a prune at %s retention; want at most %d", len(all), days, retention, limit)
	}
}
