package agitest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Gated returns a PJSIP channel that calls the gate as the shipped
// include does: AGI(agi://…/outbound?a1=<dialled>&a2=1001&a3=127.0.0.1:5072,
// <dialled>,1001,127.0.0.1:5072).
func Gated(dialled string) *Channel {
	ch := PJSIP(dialled)
	ch.SetIncludeArgs("outbound", dialled, "1001", "127.0.0.1:5072")
	return ch
}

// Load is a load run: sessions played against a FastAGI server exactly
// as Asterisk plays them (the env block, then one reply per command),
// either closed loop (Concurrency callers back to back) or paced (Rate
// sessions a second, whatever the server's speed).
type Load struct {
	Addr    string
	Channel *Channel // the session each caller plays; default Gated("0044207946000")
	// Channels, if set, are played in turn instead of Channel: calls
	// from many extensions, as on a real PBX.
	Channels []*Channel
	// Settle follows every session that ends with an allow and a call
	// id with that call's hangup session (AGI(.../hangup,<callid>,
	// <billsec>,ANSWER)), as the include's hangup handler does, so calls
	// do not pile up open. Each hangup session counts as a session.
	Settle bool
	// Concurrency is the number of closed-loop callers; used when Rate
	// is 0.
	Concurrency int
	// Rate, if positive, starts sessions at this many per second on a
	// fixed schedule; latency counts from each scheduled start, so a
	// server that falls behind shows it. With Settle a call is two
	// sessions, its outbound and its hangup, so calls start at Rate/2 a
	// second: sessions run at Rate when every call is allowed.
	Rate     float64
	Duration time.Duration
	Timeout  time.Duration // per session; default 5s
	// Check, if set, judges each finished session; an error counts it
	// as failed.
	Check func(*Result) error
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Sessions   int // finished without error
	Errors     int
	FirstError error
	Elapsed    time.Duration
	Latencies  []time.Duration // of the good sessions, sorted
}

// Throughput is good sessions per second.
func (r *LoadResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sessions) / r.Elapsed.Seconds()
}

// Percentile returns the p-th (0 < p <= 1) latency, nearest rank.
func (r *LoadResult) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies))*p+0.999999) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// Merge adds o's sessions to r (for results of several rounds).
func (r *LoadResult) Merge(o *LoadResult) {
	r.Sessions += o.Sessions
	r.Errors += o.Errors
	if r.FirstError == nil {
		r.FirstError = o.FirstError
	}
	r.Elapsed += o.Elapsed
	r.Latencies = append(r.Latencies, o.Latencies...)
	slices.Sort(r.Latencies)
}

// Run plays the load and returns its measurements. It returns an error
// only for a bad configuration; failed sessions are counted.
func (l Load) Run(ctx context.Context) (*LoadResult, error) {
	if l.Duration <= 0 {
		return nil, errors.New("agitest: Load.Duration must be positive")
	}
	if l.Rate <= 0 && l.Concurrency <= 0 {
		return nil, errors.New("agitest: Load needs Concurrency or Rate")
	}
	chans := l.Channels
	if len(chans) == 0 {
		ch := l.Channel
		if ch == nil {
			ch = Gated("0044207946000")
		}
		chans = []*Channel{ch}
	}
	envs := make([][]byte, len(chans))
	for i, ch := range chans {
		envs[i] = ch.RawEnv
		if envs[i] == nil {
			envs[i] = ch.Env.Bytes()
		}
	}
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	var next atomic.Uint64

	var mu sync.Mutex
	res := &LoadResult{}
	record := func(lats []time.Duration, errs int, first error) {
		mu.Lock()
		res.Latencies = append(res.Latencies, lats...)
		res.Errors += errs
		if res.FirstError == nil {
			res.FirstError = first
		}
		mu.Unlock()
	}
	// one plays a session; with Settle, also the allowed call's hangup
	// session, whose latency it returns as the second value (0 if none).
	one := func() (time.Duration, error) {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		i := int(next.Add(1)-1) % len(chans)
		ch := chans[i]
		r, err := ch.play(sctx, l.Addr, envs[i])
		if err == nil && l.Check != nil {
			err = l.Check(r)
		}
		if err != nil || !l.Settle || r.Verdict() != "allow" || r.CallID() == "" {
			return 0, err
		}
		hc := &Channel{Env: ch.Env.Clone(), Vars: ch.Vars}
		hc.SetIncludeArgs("hangup", r.CallID(), "30", "ANSWER")
		t0 := time.Now()
		if _, err := hc.play(sctx, l.Addr, hc.Env.Bytes()); err != nil {
			return 0, fmt.Errorf("hangup session for call %s: %w", r.CallID(), err)
		}
		return time.Since(t0), nil
	}

	start := time.Now()
	end := start.Add(l.Duration)
	var wg sync.WaitGroup
	if l.Rate <= 0 {
		for range l.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lats := make([]time.Duration, 0, 4096)
				errs := 0
				var first error
				for ctx.Err() == nil && time.Now().Before(end) {
					t0 := time.Now()
					hang, err := one()
					if err != nil {
						errs++
						if first == nil {
							first = err
						}
						continue
					}
					lats = append(lats, time.Since(t0)-hang)
					if hang > 0 {
						lats = append(lats, hang)
					}
				}
				record(lats, errs, first)
			}()
		}
	} else {
		calls := l.Rate
		if l.Settle {
			calls /= 2
		}
		interval := time.Duration(float64(time.Second) / calls)
		timer := time.NewTimer(0)
		<-timer.C
	schedule:
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if !at.Before(end) {
				break
			}
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					break schedule
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				hang, err := one()
				if err != nil {
					record(nil, 1, err)
					return
				}
				lats := []time.Duration{time.Since(at) - hang}
				if hang > 0 {
					lats = append(lats, hang)
				}
				record(lats, 0, nil)
			}()
		}
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Sessions = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res, nil
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 512) }}

// play runs one session synchronously, recording only the variables set
// and the final state (load generation).
func (ch *Channel) play(ctx context.Context, addr string, env []byte) (*Result, error) {
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(env); err != nil {
		return nil, err
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	st := newState(ch, true)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if closedByPeer(err) {
				return st.result(), nil
			}
			return nil, fmt.Errorf("after %d commands: %w", st.n, err)
		}
		out, stop := st.handle(strings.TrimRight(string(line), "\r\n"))
		if stop {
			return st.result(), nil
		}
		if _, err := conn.Write(out); err != nil && !closedByPeer(err) {
			return nil, err
		}
	}
}

// BareServer is the benchmark's baseline: a FastAGI server that reads
// the env block, sends one SET VARIABLE, reads its reply and closes. It
// reads with a plain bufio.Reader, not the agi library: the least work
// a FastAGI answer can take.
type BareServer struct{}

// Serve accepts on ln until ctx ends, then waits for its sessions.
func (BareServer) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			bareSession(conn)
		}()
	}
}

func bareSession(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			break
		}
	}
	if _, err := conn.Write([]byte("SET VARIABLE TOLLGUARD_VERDICT allow\n")); err != nil {
		return
	}
	br.ReadSlice('\n')
}
