package ari

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
)

// TestPruneHeldKeepsRegistrationHistory: the hourly prune drops the
// addresses an extension registered from by their age on the wall
// clock; one stepped 200 days ahead dropped every phone's older
// addresses, and each came back as a new_ip alert. While PruneHeld says
// so (serve's ClockWatch), they stay.
func TestPruneHeldKeepsRegistrationHistory(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t).start()
	h.fake.Register("1001", "1001", uriOffice, map[string]string{"user_agent": uaSIPp}, true)
	h.fake.Register("1001", "1001", uriHome, map[string]string{"user_agent": uaSIPp}, true)
	history := func() int {
		var n int
		if err := h.db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM registration_history WHERE kind = 'ip'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testutil.Eventually(t, waitLimit, "both addresses in the history", func() bool { return history() == 2 })
	h.stop()
	// The office an hour before home: the prune keeps every address
	// last seen in the newest second, and both registered in the same.
	if _, err := h.db.SQL().ExecContext(ctx, `UPDATE registration_history SET last_seen = last_seen - 3600 WHERE kind = 'ip' AND value = ?`, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}

	h.l.Now = func() time.Time { return time.Now().Add(200 * 24 * time.Hour) }
	held := true
	asked := 0
	h.l.PruneHeld = func() bool { asked++; return held }
	h.l.tick(ctx)
	if n := history(); asked != 1 || n != 2 {
		t.Fatalf("after a held prune (asked %d times): %d addresses in the history, want 2", asked, n)
	}
	held = false
	h.l.lastPrune = time.Time{}
	h.l.tick(ctx)
	if n := history(); n != 1 {
		t.Errorf("after a prune: %d addresses in the history, want the newest", n)
	}
}
