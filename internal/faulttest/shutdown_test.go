package faulttest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/internal/testutil"
)

// rawSession is a FastAGI connection driven by hand, one line at a
// time, so a test can hold Asterisk's reply back across a signal.
type rawSession struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawSession {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawSession{t: t, c: c, br: bufio.NewReader(c)}
}

func (s *rawSession) send(b []byte) {
	s.t.Helper()
	if _, err := s.c.Write(b); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

// command reads the server's next command line.
func (s *rawSession) command() string {
	s.t.Helper()
	line, err := s.br.ReadString('\n')
	if err != nil {
		s.t.Fatalf("reading a command: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\n")
}

// closed asserts that the server closes the session without sending
// anything more.
func (s *rawSession) closed() {
	s.t.Helper()
	line, err := s.br.ReadString('\n')
	if line != "" || (!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
		s.t.Fatalf("want the server to close the session; got %q, %v", line, err)
	}
}

// msetVars parses "EXEC MSet K=V,K=V".
func msetVars(t *testing.T, cmd string) map[string]string {
	t.Helper()
	argv := agitest.ParseArgs(cmd)
	if len(argv) < 3 || !strings.EqualFold(argv[0], "EXEC") || !strings.EqualFold(argv[1], "MSet") {
		t.Fatalf("want EXEC MSet, got %q", cmd)
	}
	out := map[string]string{}
	for _, kv := range strings.Split(argv[2], ",") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// TestGracefulShutdownSoak sends SIGTERM with sessions in flight: a
// decided allow and a decided deny whose replies Asterisk has not yet
// acknowledged, a request whose env block is half sent, and a settle
// half sent. The listener must close at once, each of them must still
// get its answer, and then the process exits 0 with the database
// intact. Then the same under load: every decision the daemon made
// reached its channel. The long form repeats the load part.
func TestGracefulShutdownSoak(t *testing.T) {
	t.Run("InFlight", testShutdownInFlight)
	t.Run("StuckSession", testShutdownStuck)
	for i := range pick(1, 5) {
		t.Run("UnderLoad"+strconv.Itoa(i+1), testShutdownUnderLoad)
	}
}

func shutdownAccounts() []Account {
	return []Account{
		{ID: "rich", Credit: "1000.00", Flags: []string{"--max-call-secs", "60"}, Extensions: extensions(2000, 4), Dial: numLeeds},
		{ID: "broke", Flags: []string{"--max-call-secs", "60"}, Extensions: []string{"3000"}, Dial: numLeeds},
	}
}

func testShutdownInFlight(t *testing.T) {
	e := NewEnv(t, nil)
	e.Seed(testDeck, shutdownAccounts()...)
	d := e.Start()

	// A call to settle later, decided now.
	res, err := gateChannel("2001", numLeeds, 10).Run(context.Background(), d.AGI)
	if err != nil || res.Verdict() != "allow" {
		t.Fatalf("setup call: %v %+v", err, resSet(res))
	}
	settleID := res.CallID()

	allow := dialRaw(t, d.AGI)
	allow.send(gateChannel("2000", numLeeds, 11).Env.Bytes())
	allowVars := msetVars(t, allow.command())

	deny := dialRaw(t, d.AGI)
	deny.send(gateChannel("3000", numLeeds, 12).Env.Bytes())
	denyVars := msetVars(t, deny.command())

	half := dialRaw(t, d.AGI)
	halfEnv := gateChannel("2002", numLeeds, 13).Env.Bytes()
	half.send(halfEnv[:len(halfEnv)/2])

	settle := dialRaw(t, d.AGI)
	// 1 s: a call's answered seconds are capped at the time since its
	// decision, a second or so ago.
	settleEnv := settleChannel("2001", settleID, 1, 10).Env.Bytes()
	settle.send(settleEnv[:len(settleEnv)/2])

	if allowVars["TOLLGUARD_VERDICT"] != "allow" || denyVars["TOLLGUARD_VERDICT"] != "deny" || denyVars["TOLLGUARD_REASON"] != "no_credit" {
		t.Fatalf("decisions before the signal: allow %v, deny %v", allowVars, denyVars)
	}

	// The kernel completes a connection before the server accepts it,
	// and one still in the listen queue when the listener closes is
	// reset. These four must be the server's before the signal.
	testutil.Eventually(t, 5*time.Second, "the four sessions accepted", func() bool {
		return d.Scrape()["tollguard_agi_sessions_in_flight"] == 4
	})
	sent := time.Now()
	d.Signal(syscall.SIGTERM)
	testutil.Eventually(t, 5*time.Second, "the FastAGI listener closed", func() bool { return dialRefused(d.AGI) })
	closedIn := time.Since(sent)
	if d.Exited() {
		t.Fatal("serve exited with sessions in flight")
	}

	// Each session in flight completes.
	allow.send([]byte("200 result=0\n"))
	allow.closed()

	deny.send([]byte("200 result=0\n"))
	if cmd := deny.command(); cmd != "EXEC Hangup 21" {
		t.Errorf("deny after the signal: want EXEC Hangup 21, got %q", cmd)
	}
	deny.send([]byte("200 result=-1\nHANGUP\n"))
	deny.closed()

	half.send(halfEnv[len(halfEnv)/2:])
	halfVars := msetVars(t, half.command())
	if halfVars["TOLLGUARD_VERDICT"] != "allow" || halfVars["TOLLGUARD_CALLID"] == "" {
		t.Errorf("a request begun before the signal and finished after it: %v", halfVars)
	}
	half.send([]byte("200 result=0\n"))
	half.closed()

	settle.send(settleEnv[len(settleEnv)/2:])
	settle.closed()

	code := d.Wait(30 * time.Second)
	t.Logf("listener closed %v after SIGTERM; process exited %d %v after it", closedIn.Round(time.Millisecond), code, time.Since(sent).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if d.Log.Count(msgIs("tollguard stopped")) != 1 {
		t.Error(`no "tollguard stopped" in the log`)
	}
	e.IntegrityCheck()

	calls := e.Calls()
	for name, id := range map[string]string{"allow": allowVars["TOLLGUARD_CALLID"], "deny": denyVars["TOLLGUARD_CALLID"], "half": halfVars["TOLLGUARD_CALLID"]} {
		n, _ := strconv.ParseInt(id, 10, 64)
		if _, ok := calls[n]; !ok {
			t.Errorf("%s call %s is not in the database", name, id)
		}
	}
	n, _ := strconv.ParseInt(settleID, 10, 64)
	if c := calls[n]; !c.SettledAt.Valid || c.SettledBy != "agi" || c.Billsec != 1 {
		t.Errorf("the settle sent across the shutdown: %+v", c)
	}
	e.CheckBooks("after shutdown")
}

// testShutdownStuck: a session whose Asterisk never answers cannot hold
// the shutdown past its session timeout. Its allow is left open, not
// settled at 0 s: Asterisk read it and may be dialling, so the call's
// hangup (or ARI, or the sweep) settles it.
func testShutdownStuck(t *testing.T) {
	e := NewEnv(t, map[string]Section{"agi": {"session_timeout": `"2s"`}})
	e.Seed(testDeck, shutdownAccounts()...)
	d := e.Start()
	stuck := dialRaw(t, d.AGI)
	stuck.send(gateChannel("2000", numLeeds, 20).Env.Bytes())
	vars := msetVars(t, stuck.command())
	sent := time.Now()
	d.Signal(syscall.SIGTERM)
	code := d.Wait(20 * time.Second)
	took := time.Since(sent)
	t.Logf("exit %d %v after SIGTERM with a session stuck", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if took > 2*time.Second+5*time.Second {
		t.Errorf("shutdown took %v with a 2s session timeout", took)
	}
	id, _ := strconv.ParseInt(vars["TOLLGUARD_CALLID"], 10, 64)
	if c, ok := e.Calls()[id]; !ok || c.SettledAt.Valid {
		t.Errorf("the unconfirmed allow %d was settled before its hangup: %+v", id, c)
	}
	if d.Log.Count(func(l LogLine) bool {
		return strings.HasPrefix(l.Msg(), "could not confirm that the allow reached Asterisk")
	}) != 1 {
		t.Error("no log line for the unconfirmed allow")
	}
	e.IntegrityCheck()
}

// testShutdownUnderLoad: SIGTERM in the middle of closed-loop load.
// Every decision the daemon recorded reached its channel, and every
// call a channel was told about is recorded.
func testShutdownUnderLoad(t *testing.T) {
	clients := pick(50, 200)
	e := NewEnv(t, nil)
	accts := shutdownAccounts()
	e.Seed(testDeck, accts...)
	d := e.Start()

	var seq atomic.Int64
	var mu sync.Mutex
	got := map[string]*agitest.Result{} // uniqueid → what the channel received
	var noAnswer, refusedN int
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			ext := accts[0].Extensions[i%len(accts[0].Extensions)]
			for !stop.Load() {
				n := seq.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := gateChannel(ext, numLeeds, n).Run(ctx, d.AGI)
				cancel()
				mu.Lock()
				switch {
				case err != nil && dialFailed(err):
					refusedN++
					stop.Store(true)
				case err != nil:
					t.Errorf("session %d: %v", n, err)
				case res.Verdict() == "":
					noAnswer++
				default:
					got[uniqueID(n)] = res
				}
				mu.Unlock()
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, "load under way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 4*clients
	})
	d.Signal(syscall.SIGTERM)
	code := d.Wait(30 * time.Second)
	stop.Store(true)
	wg.Wait()
	if code != 0 {
		t.Errorf("serve exited %d", code)
	}
	for _, l := range d.Log.Lines() {
		if strings.HasPrefix(l.Msg(), "could not deliver the decision") || strings.HasPrefix(l.Msg(), "could not confirm that the allow") {
			t.Errorf("serve: %s", l.Raw)
		}
	}

	// The database is the daemon's record of every decision it made.
	mu.Lock()
	defer mu.Unlock()
	rows := e.Calls()
	late, failed := 0, 0
	for _, c := range rows {
		r, ok := got[c.UniqueID]
		switch {
		case !ok:
			t.Errorf("call %d (%s %s) was decided but its channel got no verdict", c.ID, c.UniqueID, c.Verdict)
		case r.Verdict() == c.Verdict:
		case r.Reason() == "error" && c.SettledBy == "deadline":
			late++ // decided after the deadline: the channel was denied, the row released
		default:
			t.Errorf("call %d: channel got %s/%s, row says %s/%s", c.ID, r.Verdict(), r.Reason(), c.Verdict, c.Reason)
		}
	}
	byUnique := map[string]bool{}
	for _, c := range rows {
		byUnique[c.UniqueID] = true
	}
	for u, r := range got {
		if r.Reason() == "error" {
			failed++
		}
		if r.CallID() != "" && !byUnique[u] {
			t.Errorf("channel %s got call id %s, which is not in the database", u, r.CallID())
		}
	}
	t.Logf("%d clients: %d verdicts received (%d failed closed at the decision deadline, %d of them decided late), %d call rows; "+
		"after the signal %d connections refused or reset at connect, %d closed unanswered (still in the kernel's accept queue when the listener closed)",
		clients, len(got), failed, late, len(rows), refusedN, noAnswer)
	e.IntegrityCheck()
	e.CheckBooks("after shutdown under load")
}
