package ari

import (
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
)

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
	before := h.hooks.snapshot().resyncs
	// The first retry comes within seconds, as for a transient error.
	testutil.Eventually(t, waitLimit, "a resync after the failed write", func() bool { return h.hooks.snapshot().resyncs > before })
	first := h.hooks.snapshot().resyncs
	logs0 := strings.Count(h.logs.String(), "recording a registration failed")
	time.Sleep(9 * time.Second)
	if n := h.hooks.snapshot().resyncs - first; n > 1 {
		logs := strings.Count(h.logs.String(), "recording a registration failed") - logs0
		t.Errorf("%d more full resyncs (and %d error lines) in 9 s with the store still failing: want a backoff", n, logs)
	}
}
