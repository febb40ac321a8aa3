package ari

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// rowStore fails ObserveContact for one extension only: a store broken
// for some rows (a corrupt page, a constraint), fine for the others.
type rowStore struct {
	Store
	bad string
}

func (s *rowStore) ObserveContact(ctx context.Context, c tollguard.Contact) (tollguard.ContactHistory, error) {
	if c.Extension == s.bad {
		return tollguard.ContactHistory{}, errors.New("database disk image is malformed")
	}
	return s.Store.ObserveContact(ctx, c)
}

// resyncBackoff waits for the resync a failed write asks for (the first
// retry comes within seconds, as for a transient error), lets during run
// for 9 s, and fails the test if more than one full resync came in that
// time.
func resyncBackoff(t *testing.T, h *harness, before int, what string, during func()) {
	t.Helper()
	testutil.Eventually(t, waitLimit, "a resync after the failed write", func() bool { return h.hooks.snapshot().resyncs > before })
	first := h.hooks.snapshot().resyncs
	logs0 := strings.Count(h.logs.String(), "recording a registration failed")
	during()
	if n := h.hooks.snapshot().resyncs - first; n > 1 {
		logs := strings.Count(h.logs.String(), "recording a registration failed") - logs0
		t.Errorf("%d more full resyncs (and %d error lines) in 9 s with %s: want a backoff", n, logs, what)
	}
}

// TestBrokenStoreDoesNotResyncEveryTick: a store that keeps failing (a
// full disk, a read-only or corrupt database) made every resync ask for
// the next: every contact of the PBX read again through ARI, and an
// error logged for each, every tick (2 s), for as long as it stayed
// broken.
func TestBrokenStoreDoesNotResyncEveryTick(t *testing.T) {
	h := newHarness(t)
	fs := &flakyStore{Store: h.db}
	h.l.Store = fs
	h.fake.Register("1002", "1002", "sip:1002@192.0.2.20:5060", map[string]string{"user_agent": "desk"}, true)
	h.start()
	fs.fail.Store(1 << 30)
	h.fake.Register("1001", "1001", "sip:1001@192.0.2.10:5060", map[string]string{"user_agent": "desk"}, true)
	resyncBackoff(t, h, h.hooks.snapshot().resyncs, "the store still failing", func() { time.Sleep(9 * time.Second) })
}

// TestStoreFailingOneRowKeepsResyncBackoff: the store keeps failing one
// extension's row while it records the others. Every registration of
// another phone must not clear the backoff: otherwise every contact of
// the PBX is read again through ARI every tick (2 s), for as long as
// that row stays broken.
func TestStoreFailingOneRowKeepsResyncBackoff(t *testing.T) {
	h := newHarness(t)
	h.l.Store = &rowStore{Store: h.db, bad: "1001"}
	h.start()
	h.fake.Register("1001", "1001", "sip:1001@192.0.2.10:5060", map[string]string{"user_agent": "desk"}, true)
	resyncBackoff(t, h, h.hooks.snapshot().resyncs, "one row still failing", func() {
		// Other phones keep registering (and are recorded) meanwhile.
		for i := 0; i < 9; i++ {
			h.fake.Register("1002", "1002", fmt.Sprintf("sip:1002@192.0.2.%d:5060", 20+i), map[string]string{"user_agent": "desk"}, true)
			time.Sleep(time.Second)
		}
	})
}

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
