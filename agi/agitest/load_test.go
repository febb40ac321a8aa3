package agitest

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func startBare(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- BareServer{}.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// startServer serves each connection with session until the test ends.
func startServer(t *testing.T, session func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go session(conn)
		}
	}()
	return ln.Addr().String()
}

func TestLoad(t *testing.T) {
	addr := startBare(t)
	check := func(r *Result) error {
		if r.Verdict() != "allow" || r.AGIStatus != "SUCCESS" {
			return errors.New("no verdict")
		}
		return nil
	}
	t.Run("ClosedLoop", func(t *testing.T) {
		res, err := Load{Addr: addr, Concurrency: 4, Duration: 300 * time.Millisecond, Check: check}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 || res.Sessions < 10 {
			t.Fatalf("sessions %d errors %d (%v)", res.Sessions, res.Errors, res.FirstError)
		}
		if p50, p99 := res.Percentile(0.5), res.Percentile(0.99); p50 <= 0 || p99 < p50 || res.Throughput() <= 0 {
			t.Errorf("p50 %v p99 %v throughput %v", p50, p99, res.Throughput())
		}
	})
	t.Run("Paced", func(t *testing.T) {
		res, err := Load{Addr: addr, Rate: 200, Duration: 500 * time.Millisecond, Check: check}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 || res.Sessions != 100 {
			t.Errorf("sessions %d errors %d (%v), want 100 at 200/s for 0.5s", res.Sessions, res.Errors, res.FirstError)
		}
	})
	t.Run("PacedWithSettlement", func(t *testing.T) {
		// Each call is two sessions: Rate counts sessions, not calls.
		addr := startServer(t, func(conn net.Conn) {
			defer conn.Close()
			br := bufio.NewReader(conn)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\n" {
					break
				}
			}
			for _, cmd := range []string{"SET VARIABLE TOLLGUARD_VERDICT allow\n", "SET VARIABLE TOLLGUARD_CALLID 7\n"} {
				if _, err := conn.Write([]byte(cmd)); err != nil {
					return
				}
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
			}
		})
		res, err := Load{Addr: addr, Rate: 200, Duration: 500 * time.Millisecond, Check: check, Settle: true}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 || res.Sessions != 100 {
			t.Errorf("sessions %d errors %d (%v), want 100 (50 calls and their hangups) at 200/s for 0.5s",
				res.Sessions, res.Errors, res.FirstError)
		}
	})
	t.Run("CountsFailures", func(t *testing.T) {
		res, err := Load{Addr: addr, Concurrency: 2, Duration: 100 * time.Millisecond,
			Check: func(*Result) error { return errors.New("nope") }}.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Sessions != 0 || res.Errors == 0 || res.FirstError == nil {
			t.Errorf("sessions %d errors %d", res.Sessions, res.Errors)
		}
	})
	t.Run("Percentile", func(t *testing.T) {
		r := &LoadResult{}
		for i := 1; i <= 100; i++ {
			r.Latencies = append(r.Latencies, time.Duration(i))
		}
		if r.Percentile(0.5) != 50 || r.Percentile(0.99) != 99 || r.Percentile(1) != 100 {
			t.Errorf("p50 %d p99 %d p100 %d", r.Percentile(0.5), r.Percentile(0.99), r.Percentile(1))
		}
	})
}
