package ari

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestRestartingAsteriskIsNotCalledAWrongURL: while Asterisk restarts,
// its HTTP server answers 404 pages for a moment before res_ari loads,
// and the listener logged on every retry that [ari] url "is not ARI's
// base URL". An episode of 404s is now logged once as "still loading,
// or a wrong URL", and called a wrong URL, once, only if it lasts.
func TestRestartingAsteriskIsNotCalledAWrongURL(t *testing.T) {
	var skew atomic.Int64 // the listener's wall clock runs this far ahead
	h := newHarness(t, func(h *harness, _ *Config, _ *tollguard.DetectorSettings) {
		h.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}).start()
	const (
		soft = `msg="ARI answers 404 for Asterisk's info: Asterisk may still be loading res_ari, or [ari] url is wrong; retrying"`
		firm = `msg="[ari] url is not ARI's base URL; tollguard keeps retrying"`
	)
	count := func(s string) int { return strings.Count(h.logs.String(), s) }
	probes := func() int {
		n := 0
		for _, r := range h.fake.RequestsMatching(http.MethodGet, "/asterisk/info") {
			if r.Status == http.StatusNotFound {
				n++
			}
		}
		return n
	}
	waitProbes := func(n int) {
		t.Helper()
		testutil.Eventually(t, waitLimit, "404s for Asterisk's info", func() bool { return probes() >= n })
	}
	// restart unloads res_ari and drops the events, as a restarting
	// Asterisk does, until loaded is called.
	restart := func() (loaded func()) {
		h.fake.SetModule("res_ari.so", false)
		h.fake.Drop()
		return func() { h.fake.SetModule("res_ari.so", true) }
	}

	t.Run("Brief", func(t *testing.T) {
		loaded := restart()
		waitProbes(probes() + 4)
		loaded()
		h.waitConnected(2)
		testutil.Eventually(t, waitLimit, "reconnected", func() bool { return h.l.State().Connected })
		if n := count(soft); n != 1 {
			t.Errorf("4 retries answered 404 logged %d times %s, want once for the episode", n, soft)
		}
		if n := count(firm); n != 0 {
			t.Errorf("a restart's 404s logged %s %d times; res_ari was only loading", firm, n)
		}
		if strings.Contains(h.logs.String(), "level=WARN msg=\"ARI events connection down; reconnecting\" err=\"ask ARI for the Asterisk info: not found") {
			t.Error("each retry answered 404 was logged as a warning too; want once per episode")
		}
	})

	t.Run("Lasting", func(t *testing.T) {
		loaded := restart()
		waitProbes(probes() + 2)
		if n := count(soft); n != 2 {
			t.Errorf("a second episode logged %s %d times in all, want 2 (once each)", soft, n)
		}
		skew.Add(int64(time.Minute + time.Second))
		waitProbes(probes() + 4)
		if n := count(firm); n != 1 {
			t.Errorf("404s lasting past %s logged %s %d times, want once", time.Minute, firm, n)
		}
		if msg := h.l.State().LastError; !strings.Contains(msg, "longer than Asterisk takes to load res_ari") {
			t.Errorf("state after lasting 404s says %q; want the URL called wrong", msg)
		}
		loaded()
		h.waitConnected(3)
		testutil.Eventually(t, waitLimit, "reconnected", func() bool { return h.l.State().Connected })
		// The episode ended: the next restart starts a new one.
		loaded = restart()
		waitProbes(probes() + 2)
		loaded()
		if n, f := count(soft), count(firm); n != 3 || f != 1 {
			t.Errorf("after a third episode: %d soft and %d firm messages, want 3 and 1", n, f)
		}
	})
}
