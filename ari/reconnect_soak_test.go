package ari

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
)

// TestReconnectsDoNotLeakSoak: the websocket drops and Asterisk restarts,
// again and again (100 times; 20 in the short form). Each time the
// listener is back within 5 s and resynchronised, and goroutines and
// memory stay flat.
func TestReconnectsDoNotLeakSoak(t *testing.T) {
	n := 20
	if os.Getenv("TOLLGUARD_SOAK") != "" {
		n = 100
	}
	h := newHarness(t, withConfig(func(c *Config) { c.ReconnectMin, c.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond }))
	h.start()
	settle := func() (int, uint64) {
		runtime.GC()
		time.Sleep(50 * time.Millisecond) // let closed connections' goroutines finish
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return testutil.Goroutines(), ms.HeapAlloc
	}
	// Warm up: the first few reconnects allocate pools and caches.
	for i := 2; i <= 4; i++ {
		h.fake.Drop()
		h.waitConnected(i)
		h.waitResyncs(i)
	}
	g0, heap0 := settle()
	var slowest time.Duration
	for i := 5; i < 5+n; i++ {
		start := time.Now()
		if i%2 == 0 {
			h.fake.Drop() // the websocket goes away
		} else if err := h.fake.Restart(); err != nil { // Asterisk restarts
			t.Fatal(err)
		}
		h.waitConnected(i)
		h.waitResyncs(i)
		if d := time.Since(start); d > slowest {
			slowest = d
		}
	}
	if slowest > 5*time.Second {
		t.Errorf("slowest reconnect and resync took %s, want under 5s", slowest)
	}
	g1, heap1 := settle()
	if g1 > g0+5 {
		t.Errorf("goroutines grew from %d to %d over %d reconnects", g0, g1, n)
	}
	if heap1 > heap0+8<<20 {
		t.Errorf("heap grew from %d to %d bytes over %d reconnects", heap0, heap1, n)
	}
	t.Logf("%d reconnects: slowest %s; goroutines %d -> %d; heap %d KB -> %d KB", n, slowest, g0, g1, heap0>>10, heap1>>10)
}
