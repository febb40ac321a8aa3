package ari

import (
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestRecoveredStoreJudgesMissedRegistrationSoon: a registration from
// outside the access list came while the store failed, and the resync
// that followed failed too (backoff 30 s, up to 5 min). The store then
// recovers, and registrations are recorded again: the missed one must
// be judged at the next tick, not when the backoff runs out.
func TestRecoveredStoreJudgesMissedRegistrationSoon(t *testing.T) {
	h := newHarness(t)
	setCIDRs(t, h.db, "1001", "192.0.2.0/24")
	fs := &flakyStore{Store: h.db}
	h.l.Store = fs
	h.start()
	fs.fail.Store(1 << 30)
	before := h.hooks.snapshot().resyncs
	h.fake.Register("1001", "1001", uriThief, map[string]string{"user_agent": "friendly-scanner"}, true)
	testutil.Eventually(t, waitLimit, "a resync that meets the failing store", func() bool { return h.hooks.snapshot().resyncs > before })
	fs.fail.Store(0) // recovered
	h.fake.Register("1002", "1002", "sip:1002@192.0.2.20:5060", map[string]string{"user_agent": "desk"}, true)
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the registration missed while the store failed is still not judged 8 s after the store recovered (it waits for the resync backoff)")
}
