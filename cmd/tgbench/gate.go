package main

import (
	"context"
	"sync/atomic"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

// gateUnderTest returns the gate the benchmark drives, and a function
// that releases it. This is the seam for the store-backed gate: open a
// populated database here and return the policy over it.
//
// For now it is a fake that does no I/O: it allows every call with a
// one-hour limit and a fresh call id, so the figures measure the FastAGI
// path alone.
func gateUnderTest(ctx context.Context) (tollguard.Gate, func(), error) {
	var ids atomic.Int64
	g := &agitest.Gate{
		DecideFunc: func(ctx context.Context, c tollguard.Call) (tollguard.Decision, error) {
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 3600, CallID: ids.Add(1)}, nil
		},
	}
	return g, func() {}, nil
}
