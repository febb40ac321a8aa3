package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi"
	"github.com/tollguard/tollguard/agi/agitest"
)

// With -separate the servers run in a child process of their own, as
// tollguard runs beside Asterisk: the load client's goroutines then do
// not share the Go scheduler with the gate's, and the CPU figures are
// the servers' alone.

// serverOpts are what the child needs to start the servers.
type serverOpts struct {
	history    int
	cache      string
	logMode    string
	setVar     bool
	stub       bool
	record     bool
	cpuProfile string
}

func (o serverOpts) args() []string {
	return []string{"-serve-for-parent", "-history", strconv.Itoa(o.history), "-cache", o.cache,
		"-log", o.logMode, "-setvar=" + strconv.FormatBool(o.setVar), "-stub=" + strconv.FormatBool(o.stub), "-record=" + strconv.FormatBool(o.record), "-cpuprofile", o.cpuProfile}
}

// serveForParent is the child: it starts the servers, prints
// "addr<TAB>NAME<TAB>HOST:PORT" for each and then "ready", and serves until its
// standard input closes.
func serveForParent(ctx context.Context, o serverOpts) error {
	addrs, stop, err := startServers(ctx, o)
	if err != nil {
		return err
	}
	stopProfile, err := startProfile(o.cpuProfile)
	if err != nil {
		stop()
		return err
	}
	defer stopProfile()
	for name, addr := range addrs {
		fmt.Printf("addr\t%s\t%s\n", name, addr) // names hold spaces
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	stop()
	return nil
}

func histName(history int) string { return fmt.Sprintf("gate(%d past calls)", history) }

// startServers opens the benchmark databases and starts every server on
// an ephemeral port. stop shuts them down and closes the databases.
func startServers(ctx context.Context, o serverOpts) (map[string]string, func(), error) {
	var releases []func()
	stopAll := func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	gate, release, err := gateUnderTest(ctx, o.cache, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("gate under test: %w", err)
	}
	releases = append(releases, release)
	var histGate tollguard.Gate
	if o.history > 0 {
		g, release, err := gateUnderTest(ctx, o.cache, o.history)
		if err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("gate with history: %w", err)
		}
		releases = append(releases, release)
		histGate = g
	}
	var logger *slog.Logger
	switch o.logMode {
	case "text":
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	case "off":
		logger = slog.New(slog.DiscardHandler)
	default:
		stopAll()
		return nil, nil, fmt.Errorf("-log %q: want text or off", o.logMode)
	}
	srvCtx, stopServers := context.WithCancel(context.Background())
	var serving []chan error
	releases = append(releases, func() {
		stopServers()
		for _, done := range serving {
			<-done
		}
	})
	addrs := map[string]string{}
	listen := func(name string, serve func(context.Context, net.Listener) error) error {
		// Every server, bare included, on the listener serve uses.
		ln, err := agi.NewListener(srvCtx, "127.0.0.1:0")
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- serve(srvCtx, ln) }()
		serving = append(serving, done)
		addrs[name] = ln.Addr().String()
		return nil
	}
	newGate := func(g tollguard.Gate) *agi.Server {
		return &agi.Server{Gate: g, Logger: logger, MaxSessions: 4096}
	}
	err = listen("bare", agitest.BareServer{}.Serve)
	if err == nil {
		err = listen("gate", newGate(gate).Serve)
	}
	if err == nil && o.setVar {
		// Its own server: the MSet fallback is remembered per server.
		err = listen("gate(set-variable)", newGate(gate).Serve)
	}
	if err == nil && histGate != nil {
		err = listen(histName(o.history), newGate(histGate).Serve)
	}
	if err == nil && o.stub {
		err = listen("agi(stub gate)", newGate(stubGate{}).Serve)
	}
	if err == nil && o.record {
		var rg recordGate
		if p, ok := gate.(*tollguard.Policy); !ok {
			err = fmt.Errorf("record gate: the gate under test is a %T", gate)
		} else if rg, err = newRecordGate(ctx, p); err == nil {
			err = listen("agi(record-only gate)", newGate(rg).Serve)
		}
	}
	if err != nil {
		stopAll()
		return nil, nil, err
	}
	return addrs, stopAll, nil
}

// serverProcess is the running child.
type serverProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs map[string]string
}

// spawnServers starts this program as the server child and waits for
// its addresses. Building the history database the first time takes
// minutes; its progress goes to our standard error.
func spawnServers(ctx context.Context, o serverOpts) (*serverProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, o.args()...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProcess{cmd: cmd, stdin: stdin, addrs: map[string]string{}}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			go io.Copy(io.Discard, stdout)
			return p, nil
		}
		if f := strings.Split(line, "\t"); len(f) == 3 && f[0] == "addr" {
			p.addrs[f[1]] = f[2]
		}
	}
	p.stop()
	return nil, fmt.Errorf("the server process ended before it was ready (its errors are above)")
}

// stop closes the child's standard input and waits for it to exit.
func (p *serverProcess) stop() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		return <-done
	}
}

// cpu is the child's user and system CPU time so far, from
// /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
func (p *serverProcess) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read the server process's CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; fields count from
	// after its closing parenthesis.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("read the server process's CPU time: short /proc stat line")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("read the server process's CPU time: bad /proc stat line")
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// startProfile writes a CPU profile of this process to file ("" for
// none) until the returned function is called.
func startProfile(file string) (func(), error) {
	if file == "" {
		return func() {}, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// stubGate allows every call at once and records nothing: the FastAGI
// server's own cost, without a policy or a database.
type stubGate struct{}

func (stubGate) Decide(ctx context.Context, c tollguard.Call) (tollguard.Decision, error) {
	return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: 600, CallID: 1}, nil
}

func (stubGate) Settle(ctx context.Context, s tollguard.Settlement) (bool, error) { return true, nil }

func (stubGate) Emergency(extension, dialled string) bool { return false }
