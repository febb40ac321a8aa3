package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/agi/agitest"
)

// bigDeck writes a carrier-sized rate deck: n prefixes under +9 (away
// from the numbers the test dials) plus the UK rows the calls use. Every
// salt gives the same prefixes with a month's changes: about 1 in 100
// rows dropped and 1 in 20 repriced, as a carrier's monthly deck
// differs from the last.
func bigDeck(t *testing.T, path string, n int, salt int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("prefix,destination,rate per minute\n44,United Kingdom,0.12\n4420,London premium test,6.00\n")
	base := rand.New(rand.NewPCG(42, 42))
	month := rand.New(rand.NewPCG(uint64(salt), 7))
	seen := map[string]bool{}
	for len(seen) < n {
		p := "9" + strconv.Itoa(100000+base.IntN(900_000_000))
		if seen[p] {
			continue
		}
		seen[p] = true
		rate := base.IntN(10000)
		switch month.IntN(100) {
		case 0:
			continue
		case 1, 2, 3, 4, 5:
			rate = month.IntN(10000)
		}
		fmt.Fprintf(&b, "%s,Destination %d,0.%04d\n", p, len(seen), rate)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// opStats is one kind of CLI write's record.
type opStats struct {
	mu       sync.Mutex
	n, fails int
	firstErr string
	took     []time.Duration
}

func (o *opStats) add(r CLIResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	o.took = append(o.took, r.Took)
	if r.Code != 0 || strings.Contains(strings.ToLower(r.Stderr), "locked") || strings.Contains(strings.ToLower(r.Stderr), "busy") {
		o.fails++
		if o.firstErr == "" {
			o.firstErr = r.String()
		}
	}
}

func (o *opStats) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	slices.Sort(o.took)
	return fmt.Sprintf("%d runs, %d failed, took p50 %v max %v", o.n, o.fails,
		percentile(o.took, .5).Round(time.Millisecond), percentile(o.took, 1).Round(time.Millisecond))
}

// TestContentionSoak runs admin commands from other processes (credit
// adds, extension changes, reads, audits, and importing a 100,000-row
// rate deck over and over, each a month's update of the last) while the
// gate decides a paced stream of calls. No command may
// fail with "database is locked", no call may be failed closed (reason
// error), and every write must land.
func TestContentionSoak(t *testing.T) {
	loadFor := pick(8*time.Second, 90*time.Second)
	// Carrier-sized decks in both forms: an import used to hold the
	// write lock for a few hundred milliseconds and pushed a handful of
	// decisions past the 300 ms deadline; now it holds it a chunk at a
	// time (store/rates.go).
	const deckRows = 100_000
	const rate = 100 // sessions a second: a third of design.md's paced load, on a shared box

	e := NewEnv(t, nil)
	e.Timing = true // it asserts the decision deadline
	e.Seed(testDeck, Account{ID: "rich", Credit: "1000.00", Flags: []string{"--max-call-secs", "2"},
		Extensions: extensions(2000, 4), Dial: numLeeds})
	decks := []string{filepath.Join(e.Dir, "deck-a.csv"), filepath.Join(e.Dir, "deck-b.csv")}
	for i, p := range decks {
		bigDeck(t, p, deckRows, i+1)
	}
	// The first big import before the daemon starts: the gate's
	// in-memory copy of the deck is then carrier-sized from the start.
	e.MustCLI("rates", "import", "--quiet", decks[0])
	ledgerBefore := e.Digest().Counts["credit_ledger"]

	d := e.Start()
	ctx, cancel := context.WithTimeout(context.Background(), loadFor)
	defer cancel()

	// Allowed calls are settled as the include would, off the
	// latency path.
	settles := make(chan *agitest.Result, 1024)
	var settled, settleErrs atomic.Int64
	var settleWG sync.WaitGroup
	for range 4 {
		settleWG.Go(func() {
			for r := range settles {
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := settleChannel("2000", r.CallID(), rand.IntN(3), 3).Run(sctx, d.AGI)
				scancel()
				if err != nil {
					settleErrs.Add(1)
				}
				settled.Add(1)
			}
		})
	}

	var credit, extSet, imports, reads, audits opStats
	var writers sync.WaitGroup
	loop := func(o *opStats, args func(i int) []string) {
		writers.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				o.add(e.CLIContext(context.Background(), args(i)...))
			}
		})
	}
	loop(&credit, func(int) []string { return []string{"credit", "add", "rich", "0.01", "--note", "contention"} })
	loop(&extSet, func(i int) []string {
		return []string{"ext", "set", "2001", "--description", "contention " + strconv.Itoa(i), "--cidr", "127.0.0.0/8"}
	})
	loop(&imports, func(i int) []string { return []string{"rates", "import", "--quiet", decks[(i+1)%2]} })
	// Audits as the CLI runs them (the daemon's cron runs the same
	// code): each stores its run and raises alerts for its findings.
	loop(&audits, func(i int) []string {
		return []string{"audit", []string{"spend", "quotas", "stale", "tests"}[i%4]}
	})
	loop(&reads, func(i int) []string {
		if i%2 == 0 {
			return []string{"calls", "--json", "--limit", "20"}
		}
		return []string{"credit", "show", "rich"}
	})

	var denied sync.Map
	var deniedN atomic.Int64
	res, err := agitest.Load{
		Addr:     d.AGI,
		Rate:     rate,
		Duration: loadFor,
		Channel:  gateChannel("2000", numLeeds, 3),
		Timeout:  10 * time.Second,
		Check: func(r *agitest.Result) error {
			if r.Verdict() != "allow" {
				deniedN.Add(1)
				denied.Store(r.Reason(), true)
				return fmt.Errorf("verdict %q reason %q", r.Verdict(), r.Reason())
			}
			select {
			case settles <- r:
			default:
			}
			return nil
		},
	}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	writers.Wait()
	close(settles)
	settleWG.Wait()

	t.Logf("gate at %d/s for %v beside the CLI: %d decided, %d failed; latency from scheduled start p50 %v p99 %v max %v; %d settles (%d failed)",
		rate, loadFor, res.Sessions, res.Errors, res.Percentile(.5), res.Percentile(.99), res.Percentile(1), settled.Load(), settleErrs.Load())
	t.Logf("credit add: %s", &credit)
	t.Logf("ext set: %s", &extSet)
	t.Logf("rates import (%d rows): %s", deckRows, &imports)
	t.Logf("reads (calls --json, credit show): %s", &reads)
	t.Logf("audits (spend, quotas, stale, tests): %s", &audits)
	t.Logf("serve's warnings and errors: %v", d.Log.Summary())

	if res.Errors > 0 {
		var reasons []string
		denied.Range(func(k, _ any) bool { reasons = append(reasons, k.(string)); return true })
		t.Errorf("%d of %d calls failed (denied %d, reasons %v); first: %v", res.Errors, res.Errors+res.Sessions, deniedN.Load(), reasons, res.FirstError)
	}
	if settleErrs.Load() > 0 {
		t.Errorf("%d settles failed", settleErrs.Load())
	}
	for name, o := range map[string]*opStats{"credit add": &credit, "ext set": &extSet, "rates import": &imports, "reads": &reads, "audits": &audits} {
		if o.fails > 0 {
			t.Errorf("%s: %d of %d failed; first:\n%s", name, o.fails, o.n, o.firstErr)
		}
		if o.n == 0 {
			t.Errorf("%s never ran", name)
		}
	}
	for _, l := range d.Log.Lines() {
		low := strings.ToLower(l.Raw)
		if strings.Contains(low, "database is locked") || strings.Contains(low, "sqlite_busy") ||
			l.Msg() == "decision took too long; call denied with cause 34. Check the store's health, or raise the decision timeout if the box is just slow" {
			t.Errorf("serve: %s", l.Raw)
			break
		}
	}

	// Every credit add landed, once.
	if got := e.Digest().Counts["credit_ledger"] - ledgerBefore; got != credit.n {
		t.Errorf("%d credit adds succeeded, %d ledger rows written", credit.n, got)
	}
	e.CheckBooks("after contention")
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(30 * time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM", code)
	}
	e.IntegrityCheck()
}
