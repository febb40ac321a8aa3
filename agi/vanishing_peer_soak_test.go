package agi

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

// TestVanishingPeersLeaveNothingSoak: session after session whose peer
// goes away at every point (before the env block, right after it, by a
// HANGUP, while the gate is still deciding), and decisions that come
// after the deadline. Every slot, goroutine and in-flight count comes
// back, and every late allow is settled.
func TestVanishingPeersLeaveNothingSoak(t *testing.T) {
	n := 400
	if os.Getenv("TOLLGUARD_SOAK") != "" {
		n = 5000
	}
	baseline := runtime.NumGoroutine()
	var allowed, settled atomic.Int64
	h := startServer(t, func(s *Server) {
		s.EnvTimeout = 200 * time.Millisecond
		s.DecisionTimeout = 100 * time.Millisecond
		s.SessionTimeout = time.Second
		s.MaxSessions = 64
		g := s.Gate.(*agitest.Gate)
		g.DecideFunc = func(ctx context.Context, c tollguard.Call) (tollguard.Decision, error) {
			if c.Dialled == "0044207946001" { // slow: past the deadline
				time.Sleep(150 * time.Millisecond)
			}
			allowed.Add(1)
			return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1, CallID: 1}, nil
		}
		g.SettleFunc = func(context.Context, tollguard.Settlement) (bool, error) {
			settled.Add(1)
			return true, nil
		}
	})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var ch *agitest.Channel
			switch i % 5 {
			case 0:
				ch = gated("0044207946000")
			case 1:
				ch = gated("0044207946000")
				ch.Silent = true // connects and says nothing
			case 2:
				ch = gated("0044207946000")
				ch.HangupAtStart = true
			case 3:
				ch = gated("0044207946001") // decided after the deadline
			case 4:
				ch = gated("0044207946000")
				ch.CloseWrite = true
			}
			c, err := ch.Start(ctx, h.addr)
			if err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				c.Close() // the peer vanishes mid-session
			}
			c.Wait(ctx)
		}(i)
	}
	wg.Wait()
	h.stop()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	inFlight, started, _, _, _ := h.metrics.snapshot()
	if g := runtime.NumGoroutine(); g > baseline+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines %d after %d sessions, baseline %d:\n%s", g, n, baseline, buf[:runtime.Stack(buf, true)])
	}
	if inFlight != 0 || len(h.srv.sem) != 0 || len(h.srv.overflowSem) != 0 {
		t.Errorf("after %d sessions: %d in flight, %d slots and %d overflow slots held", n, inFlight, len(h.srv.sem), len(h.srv.overflowSem))
	}
	t.Logf("%d sessions (%d started, %d decided allow, %d settled)", n, started, allowed.Load(), settled.Load())
}
