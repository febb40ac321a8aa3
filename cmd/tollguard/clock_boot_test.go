package main

import (
	"testing"
	"time"
)

// TestSinceBootClockRunsWithTheMonotonicClock: without a suspend, the
// clock watch's boot clock moves as Go's monotonic clock does (a clock
// that did not, or ran in other units, would look like a wall-clock
// step at every sweep and hold pruning for good).
func TestSinceBootClockRunsWithTheMonotonicClock(t *testing.T) {
	boot := sinceBootClock()
	b0, m0 := boot(), time.Now()
	time.Sleep(200 * time.Millisecond)
	elapsed := boot() - b0
	if mono := time.Since(m0); elapsed < mono-50*time.Millisecond || elapsed > mono+50*time.Millisecond {
		t.Errorf("boot clock moved %v while the monotonic clock moved %v", elapsed, mono)
	}
	if b0 <= 0 {
		t.Errorf("boot clock reads %v: want the time since boot", b0)
	}
}
