package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/internal/testutil"
)

// settleOutage is a serve whose one call's hangup request came while
// the store failed writes: its settlement is kept in memory, and the
// store still fails.
type settleOutage struct {
	cancel  context.CancelFunc
	done    <-chan int
	logs    *testutil.Buffer
	metrics string // host:port
	callID  string
	// other is a second connection to the database; lock, when set,
	// holds its write lock (unlock releases it).
	other *sql.DB
	lock  *sql.Conn
}

// How the store fails the settlement: another process holds the write
// lock (each write waits the store's 5 s busy timeout for it), or a
// trigger refuses every settlement at once.
const (
	failByLock = iota
	failByTrigger
)

// startSettleOutage starts serve (its sweep an hour away, so that only
// the retry loop or the shutdown can settle the call), places a call
// through it and sends the call's hangup (1 s billed) while the store
// fails writes as fail says.
func startSettleOutage(t *testing.T, fail int) *settleOutage {
	t.Helper()
	ctx := context.Background()
	c := newLocalGBCLI(t)

	cfg := filepath.Join(t.TempDir(), "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[gate]\nsweep_interval = \"1h\"\n", c.db)), 0o600)
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	o := &settleOutage{}
	o.cancel, o.done, o.logs = startServe(t, cfg)
	testutil.Eventually(t, 10*time.Second, "serve serving", func() bool { return strings.Contains(o.logs.String(), "tollguard serving") })
	agiAddr := regexp.MustCompile(`FastAGI gate listening" addr=(\S+)`).FindStringSubmatch(o.logs.String())
	metricsAddr := regexp.MustCompile(`metrics listening" addr=(\S+)`).FindStringSubmatch(o.logs.String())
	if agiAddr == nil || metricsAddr == nil {
		t.Fatalf("no FastAGI or metrics address in the log:\n%s", o.logs.String())
	}
	o.metrics = metricsAddr[1]

	ch := agitest.Gated("02079460000")
	res, err := ch.Run(ctx, agiAddr[1])
	if err != nil || res.Verdict() != "allow" || res.CallID() == "" {
		t.Fatalf("gate session: %v %+v; want an allowed call\n%s", err, res, o.logs.String())
	}
	o.callID = res.CallID()

	o.other, err = sql.Open("sqlite3", "file:"+c.db+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.other.Close() })
	switch fail {
	case failByLock:
		o.lock, err = o.other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(o.unlock)
	case failByTrigger:
		if _, err := o.other.ExecContext(ctx, `CREATE TRIGGER test_settle_fails BEFORE UPDATE OF settled_by ON calls
			BEGIN SELECT RAISE(ABORT, 'disk I/O error (a test trigger)'); END`); err != nil {
			t.Fatal(err)
		}
	}
	// 1 s billed: the store caps the seconds at the time since the
	// decision, a moment ago.
	ch.SetIncludeArgs(tollguard.ScriptHangup, o.callID, "1", "ANSWER", "1000")
	if _, err := ch.Run(ctx, agiAddr[1]); err != nil {
		t.Fatalf("hangup session: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "the failed settlement kept", func() bool {
		return strings.Contains(o.logs.String(), "kept in memory and retried")
	})
	return o
}

func (o *settleOutage) unlock() {
	if o.lock != nil {
		o.lock.ExecContext(context.Background(), "ROLLBACK")
		o.lock.Close()
		o.lock = nil
	}
}

// metric returns serve's /metrics line for name.
func (o *settleOutage) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + o.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// TestServeRetriesASettlementTheStoreFailed: a hangup that came while the
// store failed writes was kept in memory, but only the policy's own
// tests drove the retry. Through serve: /metrics shows it pending, and
// once the lock is released serve's retry loop settles the call by agi
// with the billed seconds, within its 3 s interval (the sweep is an
// hour away), not at its full reservation.
func TestServeRetriesASettlementTheStoreFailed(t *testing.T) {
	o := startSettleOutage(t, failByLock)
	if got := o.metric(t, "tollguard_settlements_pending"); got != "tollguard_settlements_pending 1" {
		t.Errorf("/metrics during the outage: %q, want tollguard_settlements_pending 1", got)
	}
	if got := o.metric(t, "tollguard_settlements_dropped_total"); got != "tollguard_settlements_dropped_total 0" {
		t.Errorf("/metrics during the outage: %q, want tollguard_settlements_dropped_total 0", got)
	}
	o.unlock()

	var by string
	var billsec int64
	testutil.Eventually(t, 2*tollguard.SettleRetryInterval, "the call settled by the retry loop", func() bool {
		err := o.other.QueryRow(`SELECT COALESCE(settled_by, ''), billsec FROM calls WHERE id = ?`, o.callID).Scan(&by, &billsec)
		return err == nil && by != ""
	})
	if by != "agi" || billsec != 1 {
		t.Errorf("call %s settled by %q, %d s; want agi, 1 s", o.callID, by, billsec)
	}
	testutil.Eventually(t, 5*time.Second, "tollguard_settlements_pending 0", func() bool {
		return o.metric(t, "tollguard_settlements_pending") == "tollguard_settlements_pending 0"
	})
	stopServe(t, o.cancel, o.done, o.logs, 15*time.Second)
	if strings.Contains(o.logs.String(), "settlement lost at shutdown") {
		t.Errorf("a settlement the store took was logged lost:\n%s", o.logs.String())
	}
}

// TestServeLogsSettlementsLostAtShutdown: serve stopping while the store
// still refuses a kept settlement tries it once more, then logs it,
// call by call, for a refund by hand.
func TestServeLogsSettlementsLostAtShutdown(t *testing.T) {
	// A trigger, not the lock: serve's final WAL checkpoint and the
	// flush would each wait the busy timeout for a lock.
	o := startSettleOutage(t, failByTrigger)
	stopServe(t, o.cancel, o.done, o.logs, 15*time.Second)
	logs := o.logs.String()
	if !strings.Contains(logs, "stopping with 1 settlements the store never took") {
		t.Errorf("no line counts the settlements lost at shutdown:\n%s", logs)
	}
	if !regexp.MustCompile(`"settlement lost at shutdown" call_id=` + o.callID + ` billsec=1 `).MatchString(logs) {
		t.Errorf("no line logs call %s's settlement (1 s) lost at shutdown:\n%s", o.callID, logs)
	}
}

// newLocalGBCLI is a CLI on a database with account acme (GB, 10.00
// GBP), extension 1001 calling from the loopback, and a 1p a minute
// +44 rate.
func newLocalGBCLI(t *testing.T) *cli {
	t.Helper()
	c := newCLI(t)
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("credit", "add", "acme", "10.00")
	c.ok("ext", "add", "1001", "--account", "acme", "--cidr", "127.0.0.0/8", "--no-asterisk")
	deck := filepath.Join(t.TempDir(), "deck.csv")
	os.WriteFile(deck, []byte("Dial Code;Destination;Rate per minute\n44;United Kingdom;0,0100\n"), 0o600)
	c.ok("rates", "import", deck)
	return c
}
