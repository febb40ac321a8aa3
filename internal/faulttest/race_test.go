//go:build race

package faulttest

// raceEnabled: the tests run under the race detector, so the daemon is
// built with it too.
const raceEnabled = true
