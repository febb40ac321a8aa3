package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard/agi/agitest"
)

// binary is the tollguard binary the CLI runs from; daemonBinary is
// the one `serve` runs from: the same code, built with the race
// detector when the tests run under it. The CLI is not, because a
// race-built process takes several times as long to start, and the
// suite runs hundreds of CLI commands.
var binary, daemonBinary string

// TestMain builds the binaries once for every test: one build instead
// of one per test keeps the short forms within `make test`'s budget.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollguard-faulttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tollguard")
	daemonBinary = binary
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = build(binary, false) })
	if raceEnabled {
		// The daemon's own races under faults are what this suite is
		// best placed to find.
		daemonBinary = filepath.Join(dir, "tollguard-race")
		wg.Go(func() { errs[1] = build(daemonBinary, true) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(out string, race bool) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/tollguard/tollguard/cmd/tollguard")
	cmd := exec.Command(goBin, args...)
	// go-sqlite3 needs cgo; without it the binary fails at run time.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build tollguard: %v\n%s", err, b)
	}
	return nil
}

// soak reports whether the long forms run (make soak).
func soak() bool { return os.Getenv("TOLLGUARD_SOAK") != "" }

// pick returns short under make test and long under make soak.
func pick[T any](short, long T) T {
	if soak() {
		return long
	}
	return short
}

// ---------------------------------------------------------------------
// A test environment: a directory with the database and a config file.

// Env is one test's tollguard installation: its database, config file
// and the environment every process gets.
type Env struct {
	t      *testing.T
	Dir    string
	DB     string
	Config string
	// Timing makes Start run the plain build even under the race
	// detector, for tests whose assertions are about time: the race
	// runtime slows the daemon four- to fivefold.
	Timing bool
	// Environ is added to the processes' environment (KEY=value).
	Environ []string
}

// Section holds config lines for one TOML table, key to raw TOML value.
type Section map[string]string

// defaultConfig is what every test's daemon runs with: JSON logs (to
// read them), ephemeral ports, a quick sweep.
func defaultConfig() map[string]Section {
	return map[string]Section{
		"log":     {"format": `"json"`, "level": `"info"`},
		"agi":     {"listen": `"127.0.0.1:0"`},
		"metrics": {"listen": `"127.0.0.1:0"`},
		"gate":    {"sweep_interval": `"250ms"`, "sweep_grace": `"1s"`},
	}
}

// NewEnv makes an environment whose config is the defaults with over
// applied on top.
func NewEnv(t *testing.T, over map[string]Section) *Env {
	t.Helper()
	dir := t.TempDir()
	e := &Env{t: t, Dir: dir, DB: filepath.Join(dir, "tollguard.db"), Config: filepath.Join(dir, "tollguard.toml")}
	cfg := defaultConfig()
	for sec, kv := range over {
		if cfg[sec] == nil {
			cfg[sec] = Section{}
		}
		for k, v := range kv {
			cfg[sec][k] = v
		}
	}
	e.WriteConfig(cfg)
	return e
}

// WriteConfig writes cfg as the config file.
func (e *Env) WriteConfig(cfg map[string]Section) {
	var b strings.Builder
	secs := make([]string, 0, len(cfg))
	for s := range cfg {
		secs = append(secs, s)
	}
	sort.Strings(secs)
	for _, s := range secs {
		fmt.Fprintf(&b, "[%s]\n", s)
		keys := make([]string, 0, len(cfg[s]))
		for k := range cfg[s] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", k, cfg[s][k])
		}
	}
	if err := os.WriteFile(e.Config, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// environ is the child processes' environment: this one's without any
// TOLLGUARD_* a developer's shell may hold, plus the test's database
// and config.
func (e *Env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOLLGUARD_") {
			out = append(out, kv)
		}
	}
	return append(append(out, "TOLLGUARD_DB="+e.DB, "TOLLGUARD_CONFIG="+e.Config), e.Environ...)
}

// CLIResult is what one CLI run printed and returned.
type CLIResult struct {
	Args           []string
	Stdout, Stderr string
	Code           int
	Took           time.Duration
}

func (r CLIResult) String() string {
	return fmt.Sprintf("tollguard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// CLI runs `tollguard args...` in the environment and returns what it
// did; a process that cannot start fails the test.
func (e *Env) CLI(args ...string) CLIResult {
	e.t.Helper()
	return e.CLIContext(context.Background(), args...)
}

// CLIContext is CLI bounded by ctx (and by a minute in any case).
func (e *Env) CLIContext(ctx context.Context, args ...string) CLIResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = e.environ()
	cmd.Dir = e.Dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := CLIResult{Args: args, Stdout: out.String(), Stderr: errb.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		e.t.Fatalf("run tollguard %v: %v", args, err)
	}
	return r
}

// MustCLI runs the CLI and fails the test unless it exits 0.
func (e *Env) MustCLI(args ...string) string {
	e.t.Helper()
	r := e.CLI(args...)
	if r.Code != 0 {
		e.t.Fatalf("%s", r)
	}
	return r.Stdout
}

// ---------------------------------------------------------------------
// The daemon.

// Daemon is a running `tollguard serve`.
type Daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	Log     *LogSink
	AGI     string // the FastAGI address it listens on
	Metrics string // the metrics address
	exited  chan struct{}
	state   *os.ProcessState
	// crashing says the test kills it with a crash dump (SIGABRT under
	// GOTRACEBACK=crash): the runtime's "fatal error:" lines are then
	// the dump's, not a failure (a race report still is).
	crashing bool
}

// Start starts `tollguard serve` and waits until it is serving. The
// daemon is killed at the end of the test if it is still running, and
// its log is checked for races and panics.
func (e *Env) Start() *Daemon {
	e.t.Helper()
	bin := daemonBinary
	if e.Timing {
		bin = binary
	}
	cmd := exec.Command(bin, "serve")
	// The race runtime sleeps a second at exit by default.
	cmd.Env = append(e.environ(), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	cmd.Dir = e.Dir
	sink := newLogSink()
	cmd.Stdout, cmd.Stderr = sink, sink
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start tollguard serve: %v", err)
	}
	d := &Daemon{t: e.t, cmd: cmd, Log: sink, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		d.state = cmd.ProcessState
		sink.closeWith(fmt.Sprintf("process exited: %v", cmd.ProcessState))
		close(d.exited)
	}()
	e.t.Cleanup(func() {
		if !d.Exited() {
			cmd.Process.Kill()
			<-d.exited
		}
		d.checkLog()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, ok := sink.WaitFor(ctx, func(l LogLine) bool { return l.Msg() == "tollguard serving" }); !ok {
		d.dump()
		e.t.Fatalf("tollguard serve did not start (%v)", ctx.Err())
	}
	for _, l := range sink.Lines() {
		switch l.Msg() {
		case "FastAGI gate listening":
			d.AGI = l.Str("addr")
		case "metrics listening":
			d.Metrics = l.Str("addr")
		}
	}
	if d.AGI == "" {
		d.dump()
		e.t.Fatal("no FastAGI address in the log")
	}
	return d
}

// PID is the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to die.
func (d *Daemon) Kill() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		d.t.Fatalf("kill -9: %v", err)
	}
	<-d.exited
}

// Signal sends sig.
func (d *Daemon) Signal(sig os.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 if a signal ended it); it fails the test on timeout.
func (d *Daemon) Wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.dump()
		d.t.Fatalf("tollguard serve did not exit within %v", timeout)
	}
	return d.state.ExitCode()
}

// dump logs the daemon's last lines, for a failing test.
func (d *Daemon) dump() {
	lines := d.Log.Lines()
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	for _, l := range lines {
		d.t.Logf("serve: %s", l.Raw)
	}
}

// checkLog fails the test on a race report or a panic in the output.
func (d *Daemon) checkLog() {
	for _, l := range d.Log.Lines() {
		if strings.Contains(l.Raw, "WARNING: DATA RACE") || !d.crashing && (strings.HasPrefix(l.Raw, "panic:") ||
			strings.HasPrefix(l.Raw, "fatal error:")) {
			d.dump()
			d.t.Errorf("tollguard serve reported: %s", l.Raw)
			return
		}
	}
}

// ---------------------------------------------------------------------
// The daemon's log.

// LogLine is one line of output: JSON log records are decoded.
type LogLine struct {
	Raw    string
	Fields map[string]any // nil if the line is not JSON
}

// Msg returns the record's message.
func (l LogLine) Msg() string { return l.Str("msg") }

// Str returns a field as a string ("" if absent).
func (l LogLine) Str(key string) string {
	v, ok := l.Fields[key]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Num returns a numeric field (0 if absent).
func (l LogLine) Num(key string) float64 {
	f, _ := l.Fields[key].(float64)
	return f
}

// LogSink collects a process's output line by line and lets tests wait
// for a line.
type LogSink struct {
	mu      sync.Mutex
	partial []byte
	lines   []LogLine
	changed chan struct{} // closed and replaced on every new line
	closed  bool
}

func newLogSink() *LogSink { return &LogSink{changed: make(chan struct{})} }

// Write splits p into lines.
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.add(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
		added = true
	}
	if added {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return len(p), nil
}

func (s *LogSink) add(raw string) {
	l := LogLine{Raw: raw}
	if strings.HasPrefix(raw, "{") {
		var f map[string]any
		if json.Unmarshal([]byte(raw), &f) == nil {
			l.Fields = f
		}
	}
	s.lines = append(s.lines, l)
}

// closeWith records the end of the output.
func (s *LogSink) closeWith(note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.add(string(s.partial))
		s.partial = nil
	}
	s.add("# " + note)
	s.closed = true
	close(s.changed)
	s.changed = make(chan struct{})
}

// Lines returns the lines so far.
func (s *LogSink) Lines() []LogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

// Count returns how many lines match.
func (s *LogSink) Count(match func(LogLine) bool) int {
	n := 0
	for _, l := range s.Lines() {
		if match(l) {
			n++
		}
	}
	return n
}

// WaitFor waits for a line that matches; false if ctx ends or the
// output ends first.
func (s *LogSink) WaitFor(ctx context.Context, match func(LogLine) bool) (LogLine, bool) {
	seen := 0
	for {
		s.mu.Lock()
		lines, ch, closed := s.lines[seen:], s.changed, s.closed
		seen = len(s.lines)
		s.mu.Unlock()
		for _, l := range lines {
			if match(l) {
				return l, true
			}
		}
		if closed {
			return LogLine{}, false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return LogLine{}, false
		}
	}
}

// msgIs matches log records by message.
func msgIs(msg string) func(LogLine) bool {
	return func(l LogLine) bool { return l.Msg() == msg }
}

// ---------------------------------------------------------------------
// The database, read directly: what the daemon and the CLI left there.

// OpenDB opens the test's database for reading. It is closed at the
// end of the test; close it sooner with the returned function's result.
func (e *Env) OpenDB() *sql.DB {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+e.DB+"?_busy_timeout=10000")
	if err != nil {
		e.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	e.t.Cleanup(func() { db.Close() })
	return db
}

// IntegrityCheck runs PRAGMA integrity_check and foreign_key_check.
func (e *Env) IntegrityCheck() {
	e.t.Helper()
	db := e.OpenDB()
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		e.t.Fatalf("integrity_check: %v", err)
	}
	if res != "ok" {
		e.t.Fatalf("PRAGMA integrity_check: %s", res)
	}
	rows, err := db.Query("PRAGMA foreign_key_check")
	if err != nil {
		e.t.Fatalf("foreign_key_check: %v", err)
	}
	defer rows.Close()
	if rows.Next() {
		e.t.Fatal("PRAGMA foreign_key_check reports violations")
	}
}

// Digest is a hash of every row of every table, in a stable order, and
// the row count of each table: equal digests mean nothing was written.
type Digest struct {
	Hash   string
	Counts map[string]int
}

// Digest reads the database's content.
func (e *Env) Digest() Digest {
	e.t.Helper()
	db := e.OpenDB()
	defer db.Close()
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	h := sha256.New()
	d := Digest{Counts: map[string]int{}}
	var schema string
	db.QueryRow(`SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema ORDER BY name)`).Scan(&schema)
	io.WriteString(h, schema)
	for _, tb := range tables {
		// Order by every column: a total order, whatever the keys.
		probe, err := db.Query(`SELECT * FROM "` + tb + `" LIMIT 0`)
		if err != nil {
			e.t.Fatalf("digest %s: %v", tb, err)
		}
		cols, _ := probe.Columns()
		probe.Close()
		order := make([]string, len(cols))
		for i := range order {
			order[i] = strconv.Itoa(i + 1)
		}
		rows, err := db.Query(`SELECT * FROM "` + tb + `" ORDER BY ` + strings.Join(order, ", "))
		if err != nil {
			e.t.Fatalf("digest %s: %v", tb, err)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		fmt.Fprintf(h, "\x00table %s\n", tb)
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(h, "%T:%v\x1f", v, v)
			}
			h.Write([]byte{'\n'})
			d.Counts[tb]++
		}
		rows.Close()
	}
	d.Hash = hex.EncodeToString(h.Sum(nil))
	return d
}

// Books is one account's money as the database has it, in minor units.
type Books struct {
	Account     string
	Balance     int64
	CreditLimit int64
	Credited    int64 // the ledger's sum
	Charged     int64 // settled calls' charges
	Reserved    int64 // open calls' reservations
	Open        int   // allowed calls not settled
	Settled     int   // allowed calls settled
}

// Books reads every account's money.
func (e *Env) Books() map[string]Books {
	e.t.Helper()
	db := e.OpenDB()
	defer db.Close()
	rows, err := db.Query(`SELECT a.id, a.balance, a.credit_limit,
		(SELECT COALESCE(SUM(amount), 0) FROM credit_ledger l WHERE l.account_id = a.id),
		(SELECT COALESCE(SUM(charge), 0) FROM calls c WHERE c.account_id = a.id AND c.verdict = 'allow' AND c.settled_at IS NOT NULL),
		(SELECT COALESCE(SUM(reserve), 0) FROM calls c WHERE c.account_id = a.id AND c.verdict = 'allow' AND c.settled_at IS NULL),
		(SELECT COUNT(*) FROM calls c WHERE c.account_id = a.id AND c.verdict = 'allow' AND c.settled_at IS NULL),
		(SELECT COUNT(*) FROM calls c WHERE c.account_id = a.id AND c.verdict = 'allow' AND c.settled_at IS NOT NULL)
		FROM accounts a`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]Books{}
	for rows.Next() {
		var b Books
		if err := rows.Scan(&b.Account, &b.Balance, &b.CreditLimit, &b.Credited, &b.Charged, &b.Reserved, &b.Open, &b.Settled); err != nil {
			e.t.Fatal(err)
		}
		out[b.Account] = b
	}
	return out
}

// CheckBooks asserts the money invariants: no account has settled and
// reserved more than its credit (ledger plus credit limit), and each
// balance is its credit minus its charges, so no charge was applied
// twice or lost.
func (e *Env) CheckBooks(when string) map[string]Books {
	e.t.Helper()
	books := e.Books()
	for _, b := range books {
		if b.Charged+b.Reserved > b.Credited+b.CreditLimit {
			e.t.Errorf("%s: account %s has settled %d + reserved %d minor units, over its credit %d (+ limit %d)",
				when, b.Account, b.Charged, b.Reserved, b.Credited, b.CreditLimit)
		}
		if b.Balance != b.Credited-b.Charged {
			e.t.Errorf("%s: account %s balance %d, but ledger %d - charges %d = %d: a charge was applied twice or lost",
				when, b.Account, b.Balance, b.Credited, b.Charged, b.Credited-b.Charged)
		}
	}
	return books
}

// CallRow is a call as stored.
type CallRow struct {
	ID        int64
	Verdict   string
	Reason    string
	Account   string
	UniqueID  string
	Reserve   int64
	Charge    int64
	MaxSec    int64
	Billsec   int64
	SettledAt sql.NullInt64
	SettledBy string
}

// Calls reads every call row.
func (e *Env) Calls() map[int64]CallRow {
	e.t.Helper()
	db := e.OpenDB()
	defer db.Close()
	rows, err := db.Query(`SELECT id, verdict, reason, account_id, uniqueid, reserve, charge, maxsec, billsec, settled_at, settled_by FROM calls`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]CallRow{}
	for rows.Next() {
		var c CallRow
		if err := rows.Scan(&c.ID, &c.Verdict, &c.Reason, &c.Account, &c.UniqueID, &c.Reserve, &c.Charge, &c.MaxSec, &c.Billsec, &c.SettledAt, &c.SettledBy); err != nil {
			e.t.Fatal(err)
		}
		out[c.ID] = c
	}
	return out
}

// ---------------------------------------------------------------------
// Seeding through the CLI.

// Account is an account to seed, with its extensions.
type Account struct {
	ID          string
	Credit      string   // credit add AMOUNT; "" for none
	Flags       []string // extra `account add` flags
	Extensions  []string
	Dial        string // the number its extensions dial
	CreditLimit string
}

// Seed creates accounts, credit, extensions and the rate deck through
// the CLI, as an admin would.
func (e *Env) Seed(deck string, accts ...Account) {
	e.t.Helper()
	deckFile := filepath.Join(e.Dir, "deck.csv")
	if err := os.WriteFile(deckFile, []byte(deck), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.MustCLI("rates", "import", "--quiet", deckFile)
	for _, a := range accts {
		args := append([]string{"account", "add", a.ID, "--country", "GB", "--currency", "GBP"}, a.Flags...)
		if a.CreditLimit != "" {
			args = append(args, "--credit-limit", a.CreditLimit)
		}
		e.MustCLI(args...)
		if a.Credit != "" {
			e.MustCLI("credit", "add", a.ID, a.Credit, "--note", "opening balance")
		}
		for _, x := range a.Extensions {
			e.MustCLI("ext", "add", x, "--account", a.ID, "--cidr", "127.0.0.0/8")
		}
	}
}

// extensions returns n extension names from first.
func extensions(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(first + i)
	}
	return out
}

// testDeck is a small carrier deck: UK numbers at 12p/min, London at
// £6/min (to make credit bind), everything else 1p/min.
const testDeck = "prefix,destination,rate per minute\n44,United Kingdom,0.12\n4420,London premium test,6.00\n1,NANP,0.01\n"

// Numbers the seeded accounts dial (Ofcom drama ranges, both national
// and valid).
const (
	numLeeds  = "01134960000" // +44113: 0.12/min
	numLondon = "02079460000" // +4420: 6.00/min
)

// ---------------------------------------------------------------------
// The fake Asterisk.

// gateChannel is the channel of endpoint ext asking the gate about
// dialled, exactly as the shipped include asks
// (AGI(agi://…/outbound?a1=<number>&a2=<ext>&a3=<source>,<number>,<ext>,<source>));
// seq makes its channel name and uniqueid unique.
func gateChannel(ext, dialled string, seq int64) *agitest.Channel {
	ch := agitest.Gated(dialled)
	ch.SetIncludeArgs("outbound", dialled, ext, "127.0.0.1:5072")
	ch.SetChannel(fmt.Sprintf("PJSIP/%s-%08x", ext, seq))
	ch.Env.Set("agi_uniqueid", uniqueID(seq))
	ch.Env.Set("agi_callerid", ext)
	return ch
}

func uniqueID(seq int64) string { return fmt.Sprintf("faulttest-%d", seq) }

// settleChannel is the include's hangup handler settling callID:
// AGI(agi://…/hangup?a1=...,${TOLLGUARD_CALLID},${ANSWEREDTIME},${DIALSTATUS}).
func settleChannel(ext, callID string, billsec int, seq int64) *agitest.Channel {
	ch := agitest.PJSIP("s")
	ch.Dead = true // the channel has hung up
	ch.SetIncludeArgs("hangup", callID, strconv.Itoa(billsec), "ANSWER")
	ch.SetChannel(fmt.Sprintf("PJSIP/%s-%08x", ext, seq))
	ch.Env.Set("agi_uniqueid", uniqueID(seq))
	ch.Env.Set("agi_context", "tollguard-hangup")
	ch.Env.Set("agi_extension", "s")
	ch.Env.Set("agi_priority", "5")
	return ch
}

// ---------------------------------------------------------------------
// Metrics.

// Scrape reads the daemon's /metrics into series → value, the series
// written as in the exposition ("name{label=\"v\"}").
func (d *Daemon) Scrape() map[string]float64 {
	d.t.Helper()
	resp, err := http.Get("http://" + d.Metrics + "/metrics")
	if err != nil {
		d.t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// openFDs counts a process's open file descriptors.
func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// ---------------------------------------------------------------------
// Small helpers.

// percentile returns the p-th (0..1) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// refused reports whether err is a refused connection (nobody listens).
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// dialFailed reports whether err is a failed connect: refused, or reset
// by a listener closing with connections in its accept queue. To
// Asterisk both mean tollguard is not there (AGISTATUS=FAILURE).
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// dialRefused reports whether addr refuses connections now.
func dialRefused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return refused(err)
}

// raiseFDLimit lifts the soft RLIMIT_NOFILE to at least n (children
// inherit it), failing the test if the hard limit is lower.
func raiseFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d descriptors this test needs (ulimit -Hn)", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raise RLIMIT_NOFILE to %d: %v", n, err)
	}
}

// Summary counts the log's warnings and errors by message.
func (s *LogSink) Summary() map[string]int {
	out := map[string]int{}
	for _, l := range s.Lines() {
		switch lv := l.Str("level"); lv {
		case "WARN", "ERROR":
			out[lv+" "+l.Msg()]++
		}
	}
	return out
}
