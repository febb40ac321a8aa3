package faulttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/internal/testutil"
)

// envDeadline is the FastAGI server's env-read deadline: agi.Server's
// EnvTimeout, which serve leaves at agi.DefaultEnvTimeout.
const envDeadline = time.Second

// idleConn is one flood connection's life.
type idleConn struct {
	lifetime time.Duration // from connect to the server's close
	byServer bool          // the server closed it (EOF or reset)
	reset    bool          // by a reset, not a FIN
	dribble  bool
	err      error
}

// TestFloodSoak holds 1,000 connections open on the FastAGI port that
// send nothing, or dribble an env block a byte at a time, reconnecting
// as soon as the server drops them, while real sessions (and slow but
// complete ones) go on. Real sessions must still be decided (no
// fail-closed error answers, no refusals), the idle ones must be
// closed by the env-read deadline, and the daemon must hand back every
// descriptor afterwards.
func TestFloodSoak(t *testing.T) {
	const idle = 1000
	floodFor := pick(3*time.Second, 60*time.Second)
	// Each idle connection holds a descriptor here and one in serve.
	raiseFDLimit(t, 3*idle+1024)

	e := NewEnv(t, map[string]Section{
		// Above the flood, or idle connections would take every
		// session slot for a second at a time.
		"agi": {"max_sessions": "4096"},
	})
	e.Timing = true // it asserts the decision deadline
	e.Seed(testDeck, Account{ID: "rich", Credit: "1000.00", Flags: []string{"--max-call-secs", "2"}, Extensions: []string{"2000"}, Dial: numLeeds})
	d := e.Start()
	baseFDs, err := openFDs(d.PID())
	if err != nil {
		t.Fatal(err)
	}
	envBlock := gateChannel("2000", numLeeds, 1).Env.Bytes()

	ctx, cancel := context.WithTimeout(context.Background(), floodFor)
	defer cancel()

	// The flood.
	var mu sync.Mutex
	var lives []idleConn
	var open atomic.Int64
	var flood sync.WaitGroup
	for i := range idle {
		flood.Add(1)
		go func() {
			defer flood.Done()
			dribble := i%2 == 1
			for ctx.Err() == nil {
				c := floodConn(ctx, d.AGI, dribble, envBlock, &open)
				mu.Lock()
				lives = append(lives, c)
				mu.Unlock()
			}
		}()
	}

	// The server holds them all at once.
	testutil.Eventually(t, 5*time.Second, "the flood's sessions in flight", func() bool {
		return d.Scrape()["tollguard_agi_sessions_in_flight"] >= 0.9*idle
	})
	peakFDs, _ := openFDs(d.PID())

	// Real sessions through the flood: paced, and slow senders that
	// still finish their env block well within the deadline.
	var slowOK, slowBad atomic.Int64
	var slowErr atomic.Value
	var slow sync.WaitGroup
	for i := range 10 {
		slow.Add(1)
		go func() {
			defer slow.Done()
			for n := int64(0); ctx.Err() == nil; n++ {
				ch := gateChannel("2000", numLeeds, 1_000_000+int64(i)*100_000+n)
				ch.Chunk, ch.ChunkDelay = 64, 20*time.Millisecond
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := ch.Run(sctx, d.AGI)
				scancel()
				if err == nil && res.Verdict() == "allow" {
					slowOK.Add(1)
				} else {
					slowBad.Add(1)
					slowErr.Store(fmt.Sprintf("err %v, reply %v", err, resSet(res)))
				}
			}
		}()
	}
	var check atomic.Int64
	load := agitest.Load{
		Addr:     d.AGI,
		Rate:     50,
		Duration: time.Until(deadlineOf(ctx)) - 500*time.Millisecond,
		Channel:  gateChannel("2000", numLeeds, 2),
		Timeout:  10 * time.Second,
		Check: func(r *agitest.Result) error {
			check.Add(1)
			if r.Verdict() != "allow" {
				return fmt.Errorf("verdict %q reason %q", r.Verdict(), r.Reason())
			}
			return nil
		},
	}
	res, err := load.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	flood.Wait()
	slow.Wait()

	// Real sessions.
	t.Logf("real sessions through %d idle connections for %v: %d decided, %d failed; latency from scheduled start p50 %v p99 %v max %v; slow senders %d decided, %d failed",
		idle, floodFor, res.Sessions, res.Errors, res.Percentile(.5), res.Percentile(.99), res.Percentile(1), slowOK.Load(), slowBad.Load())
	if res.Errors > 0 {
		t.Errorf("%d of %d real sessions failed during the flood; first: %v", res.Errors, res.Errors+res.Sessions, res.FirstError)
	}
	if res.Sessions < 10 {
		t.Errorf("only %d real sessions ran", res.Sessions)
	}
	// Decided means answered, not failed closed at the decision
	// deadline; and not queued behind the flood for seconds (one
	// silent connection used to stall every caller: pitfalls.md).
	if p := res.Percentile(.99); p > time.Second {
		t.Errorf("real sessions' p99 %v during the flood: they wait behind the idle connections", p)
	}
	if slowBad.Load() > 0 || slowOK.Load() == 0 {
		t.Errorf("slow but complete senders: %d decided, %d failed (%v)", slowOK.Load(), slowBad.Load(), slowErr.Load())
	}

	// Idle connections.
	var lts []time.Duration
	notByServer, early, late := 0, 0, 0
	var firstErr error
	for _, c := range lives {
		if ctx.Err() != nil && c.err != nil && errors.Is(c.err, context.DeadlineExceeded) {
			continue // cut by the test's end, not the server
		}
		if !c.byServer {
			notByServer++
			if firstErr == nil {
				firstErr = c.err
			}
			continue
		}
		lts = append(lts, c.lifetime)
		if c.lifetime < envDeadline-100*time.Millisecond {
			early++
		}
		if c.lifetime > envDeadline+2*time.Second {
			late++
		}
	}
	slices.Sort(lts)
	t.Logf("idle connections closed by the server: %d; lifetime min %v p50 %v p99 %v max %v; fds in serve: %d before, %d in the flood",
		len(lts), percentile(lts, 0), percentile(lts, .5), percentile(lts, .99), percentile(lts, 1), baseFDs, peakFDs)
	if notByServer > 0 {
		t.Errorf("%d idle connections did not end by the server closing them; first: %v", notByServer, firstErr)
	}
	if len(lts) < idle {
		t.Errorf("only %d idle connections were closed by the server", len(lts))
	}
	if early > 0 {
		t.Errorf("%d idle connections closed before the env deadline (refused: sessions exhausted?)", early)
	}
	if late > 0 {
		t.Errorf("%d idle connections outlived the env deadline (%v) by over 2s", late, envDeadline)
	}
	m := d.Scrape()
	if got := m[`tollguard_agi_refused_total{reason="malformed"}`]; int(got) < len(lts) {
		t.Errorf("refused{malformed} = %v, want at least %d (each idle connection)", got, len(lts))
	}
	if got := m[`tollguard_agi_refused_total{reason="busy"}`]; got != 0 {
		t.Errorf("refused{busy} = %v: a session was turned away", got)
	}

	// Everything is handed back.
	testutil.Eventually(t, 10*time.Second, "serve's descriptors back to normal", func() bool {
		n, err := openFDs(d.PID())
		return err == nil && n <= baseFDs+8
	})
	testutil.Eventually(t, 5*time.Second, "no session in flight", func() bool {
		return d.Scrape()["tollguard_agi_sessions_in_flight"] == 0
	})
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(30 * time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM", code)
	}
	e.IntegrityCheck()
}

// floodConn opens one idle connection and waits for the server to
// close it: a silent one sends nothing, a dribbling one sends env a
// byte every 50 ms.
func floodConn(ctx context.Context, addr string, dribble bool, env []byte, open *atomic.Int64) idleConn {
	var dl net.Dialer
	// From before the dial: the server's clock for the connection
	// starts later, so a lifetime under the deadline is the server's
	// doing, not this goroutine being scheduled late.
	start := time.Now()
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		// A dial still waiting for the accept queue when the flood ends
		// is cut by the test: the poller's deadline can fire before ctx
		// reports done, so the error is poll's "i/o timeout", not
		// context.DeadlineExceeded. One pending for seconds is not.
		if ctx.Err() != nil && time.Since(start) < 3*time.Second {
			return idleConn{err: context.DeadlineExceeded}
		}
		return idleConn{err: err}
	}
	open.Add(1)
	defer open.Add(-1)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if dribble {
		go func() {
			for i := 0; i < len(env); i++ {
				if _, err := c.Write(env[i : i+1]); err != nil {
					return
				}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // the server wrote something: not expected, keep reading to its close
		}
		life := time.Since(start)
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return idleConn{lifetime: life, byServer: true, reset: errors.Is(err, syscall.ECONNRESET), dribble: dribble}
		}
		if ctx.Err() != nil {
			return idleConn{lifetime: life, err: context.DeadlineExceeded}
		}
		return idleConn{lifetime: life, err: err}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func resSet(r *agitest.Result) map[string]string {
	if r == nil {
		return nil
	}
	return r.Set
}
