package agi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

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
