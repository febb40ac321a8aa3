package main

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/tollguard/tollguard"
)

// sinceBootClock is the clock watch's elapsed time: CLOCK_BOOTTIME,
// which counts a suspend (Go's monotonic clock stops during one, so
// each resume looked like the wall clock stepping ahead and held
// pruning for a day: a box that sleeps daily would never prune). It is
// slewed by NTP as the wall clock is. Where the kernel lacks it, Go's
// monotonic clock, for the whole run: mixing the two would be a step.
func sinceBootClock() func() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return tollguard.MonotonicClock
	}
	return func() time.Duration {
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) // worked at start: it does not stop working
		return time.Duration(ts.Nano())
	}
}
