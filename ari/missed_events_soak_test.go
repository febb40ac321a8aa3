package ari

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
)

// TestMissedEventsDoNotAccumulateSoak: calls through Local pairs whose
// ChannelDestroyed (and other ends) are lost across reconnects, round
// after round. After each reconnect the channel list makes the listener
// forget them: the tracker, its Local halves, the detectors' calls and
// the listener's goroutines come back to where they were.
func TestMissedEventsDoNotAccumulateSoak(t *testing.T) {
	rounds, perRound := 6, 30
	if os.Getenv("TOLLGUARD_SOAK") != "" {
		rounds, perRound = 40, 100
	}
	h := newHarness(t).start()
	settle := func() int {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		return testutil.Goroutines()
	}
	g0 := settle()
	k := 0
	for r := 0; r < rounds; r++ {
		var frames [][]byte
		for i := 0; i < perRound; i++ {
			k++
			for _, f := range callFlow(t, k, "1001", "0044207946000", time.Duration(k)*time.Millisecond) {
				typ, _ := eventType(f)
				// Two calls in three lose their ends: the ChannelDestroyed
				// of every leg (the websocket dropped before they came).
				if k%3 != 0 && (typ == "ChannelDestroyed" || typ == "ChannelHangupRequest") {
					continue
				}
				frames = append(frames, f)
			}
		}
		h.push(frames...)
		before := strings.Count(h.logs.String(), "forgot channels that ended while their events were not seen")
		h.fake.Drop()
		h.waitConnected(r + 2)
		testutil.Eventually(t, waitLimit, "the lost channels forgotten", func() bool {
			return strings.Count(h.logs.String(), "forgot channels that ended while their events were not seen") > before
		})
		if n := h.l.Detectors.Stats().Calls; n != 0 {
			t.Fatalf("round %d: %d calls still tracked by the detectors", r, n)
		}
	}
	g1 := settle()
	h.stop() // the tracker is the dispatch goroutine's: read it once stopped
	if n, nl := len(h.l.tr.chans), len(h.l.tr.locals); n != 0 || nl != 0 {
		t.Errorf("after %d calls, %d with lost ends: %d channels and %d Local halves still tracked", k, k*2/3, n, nl)
	}
	if len(h.l.pending) > 0 {
		t.Errorf("%d settlements pending", len(h.l.pending))
	}
	if g1 > g0+2 { // one leaked per reconnect would show
		t.Errorf("goroutines grew from %d to %d over %d reconnects", g0, g1, rounds)
	}
	t.Logf("%d calls over %d reconnects: goroutines %d -> %d", k, rounds, g0, g1)
}
