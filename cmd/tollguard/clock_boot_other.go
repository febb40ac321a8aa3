//go:build !linux

package main

import (
	"time"

	"github.com/tollguard/tollguard"
)

// sinceBootClock is Go's monotonic clock where CLOCK_BOOTTIME is not
// Linux's (x/sys/unix has no such clock on macOS, and not on most
// FreeBSD ports): a resume from suspend looks like a step there, and
// holds pruning a day.
func sinceBootClock() func() time.Duration { return tollguard.MonotonicClock }
