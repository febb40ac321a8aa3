package agi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

// benchSessions plays b.N gated sessions against serve, in parallel.
func benchSessions(b *testing.B, serve func(context.Context, net.Listener) error, ch *agitest.Channel) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := ch.Run(context.Background(), ln.Addr().String())
			if err != nil || res.Verdict() == "" {
				b.Errorf("session: %v %+v", err, res)
				return
			}
		}
	})
}

func BenchmarkSession(b *testing.B) {
	gate := &agitest.Gate{DecideFunc: func(context.Context, tollguard.Call) (tollguard.Decision, error) {
		return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 3600, CallID: 1}, nil
	}}
	b.Run("Bare", func(b *testing.B) {
		benchSessions(b, agitest.BareServer{}.Serve, agitest.Gated("0044207946000"))
	})
	b.Run("Gate", func(b *testing.B) {
		s := &Server{Gate: gate, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		benchSessions(b, s.Serve, agitest.Gated("0044207946000"))
	})
	b.Run("GateNoLog", func(b *testing.B) {
		s := &Server{Gate: gate, Logger: slog.New(slog.DiscardHandler)}
		benchSessions(b, s.Serve, agitest.Gated("0044207946000"))
	})
}

// cpuTime is the process's user and system CPU time: the client and the
// server of a benchmark share it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
