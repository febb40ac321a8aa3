// Command tgbench measures the FastAGI gate against a bare FastAGI
// server, with the same load client in the same run (design.md §6):
// throughput with closed-loop callers, latency at a paced rate counted
// from each session's scheduled start, p99 with ten million past calls
// against an empty history, CPU per 1000 sessions, and the ARI
// listener's events per second and memory.
//
// The gate is the real one: the policy over SQLite populated as issue 2
// asks (100 accounts, 10,000 extensions, a 50,000-prefix rate deck).
// Calls come from all 10,000 extensions, and every allowed call is
// followed by its hangup session, as Asterisk plays them.
//
//	go run ./cmd/tgbench [-duration 2s] [-rounds 3] [-conc 32] [-rate 300] [-history 10000000]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/ari"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tgbench:", err)
		os.Exit(1)
	}
}

type target struct {
	name     string
	addr     string
	channels []*agitest.Channel
	check    func(*agitest.Result) error

	closed, paced agitest.LoadResult
	cpu           time.Duration // process CPU over its closed-loop rounds
}

func run() error {
	duration := flag.Duration("duration", 1500*time.Millisecond, "length of each closed-loop round")
	rounds := flag.Int("rounds", 3, "closed-loop rounds per server (alternating servers)")
	conc := flag.Int("conc", 32, "closed-loop callers")
	rate := flag.Float64("rate", 300, "paced sessions per second (gate calls start at half this: each is an outbound and a hangup session)")
	pacedDuration := flag.Duration("paced-duration", 5*time.Second, "length of each paced round")
	pacedRounds := flag.Int("paced-rounds", 3, "paced rounds per server")
	setVar := flag.Bool("setvar", true, "also measure the gate answering with SET VARIABLE (an Asterisk without MSet)")
	logMode := flag.String("log", "text", "gate server logging: text (slog text to io.Discard: formatting cost included) or off")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the servers to this file")
	profileOnly := flag.String("profile-only", "", "run only this server's closed-loop rounds (bare, gate, gate(set-variable), agi(stub gate) or agi(record-only gate)), for a profile of it alone")
	history := flag.Int("history", 10_000_000, "past call rows in the history database (0 skips that figure)")
	cacheDir := flag.String("cache", defaultCache(), "where the populated benchmark databases are kept between runs")
	events := flag.String("events", "1000000,10000000", "ARI events to push through the listener, per figure (\"\" skips)")

	stub := flag.Bool("stub", true, "also measure the FastAGI server over a stub gate that allows every call and records nothing: the server's own cost")
	record := flag.Bool("record", true, "also measure the FastAGI server over a gate that records and settles every call exactly as the gate does but decides nothing: what the durable record alone costs")
	separate := flag.Bool("separate", false, "run the servers in a child process, as tollguard runs beside Asterisk: CPU figures are then the servers' alone")
	serveChild := flag.Bool("serve-for-parent", false, "internal: run the servers for a parent tgbench and print their addresses")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	opts := serverOpts{history: *history, cache: *cacheDir, logMode: *logMode, setVar: *setVar, stub: *stub, record: *record, cpuProfile: *cpuProfile}
	if *serveChild {
		return serveForParent(ctx, opts)
	}
	var addrs map[string]string
	var cpuTime func() time.Duration
	where := "client and servers share this process"
	if *separate {
		srv, err := spawnServers(ctx, opts)
		if err != nil {
			return err
		}
		defer srv.stop()
		addrs = srv.addrs
		cpuTime = func() time.Duration {
			d, err := srv.cpu()
			if err != nil {
				fmt.Fprintln(os.Stderr, "tgbench:", err)
			}
			return d
		}
		where = "the servers run in a process of their own; CPU is theirs alone"
	} else {
		a, stop, err := startServers(ctx, opts)
		if err != nil {
			return err
		}
		defer stop()
		if stopProfile, err := startProfile(*cpuProfile); err != nil {
			return err
		} else {
			defer stopProfile()
		}
		addrs, cpuTime = a, processCPU
	}
	chans := callers()

	targets := []*target{
		{name: "bare", addr: addrs["bare"], channels: chans, check: bareAnswered},
		{name: "gate", addr: addrs["gate"], channels: chans, check: allowed},
	}
	if *setVar {
		targets = append(targets, &target{name: "gate(set-variable)", addr: addrs["gate(set-variable)"], channels: withoutMSet(chans), check: allowed})
	}
	if *stub {
		targets = append(targets, &target{name: "agi(stub gate)", addr: addrs["agi(stub gate)"], channels: chans, check: allowed})
	}
	if *record {
		targets = append(targets, &target{name: "agi(record-only gate)", addr: addrs["agi(record-only gate)"], channels: chans, check: allowed})
	}
	var hist *target
	if *history > 0 {
		hist = &target{name: histName(*history), addr: addrs[histName(*history)], channels: chans, check: allowed}
	}
	for _, tg := range append(append([]*target(nil), targets...), hist) {
		if tg != nil && tg.addr == "" {
			return fmt.Errorf("the server process did not report %s's address", tg.name)
		}
	}
	fmt.Printf("# tgbench: %d CPUs, GOMAXPROCS %d, %s, load average %s; %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadAverage(), where)
	fmt.Printf("# sessions: PJSIP env of recorded session A from each of %d extensions, AGI(agi://…/outbound?a1=…&a4=<random>,<number>,<ext>,<source>,<random>) as the include calls it;\n", len(chans))
	fmt.Printf("#   each allowed call is followed by its hangup session (settlement); both count as sessions, closed loop and paced. Gate database: %d accounts, %d extensions, %d rates\n",
		population.Accounts, population.Extensions, population.Rates)

	// Warm up every server (connections, pools, caches).
	warm := append([]*target(nil), targets...)
	if hist != nil {
		warm = append(warm, hist)
	}
	for _, tg := range warm {
		if _, err := tg.load(*conc, 0, 300*time.Millisecond).Run(ctx); err != nil {
			return err
		}
	}

	if *profileOnly != "" {
		for _, tg := range targets {
			if tg.name == *profileOnly {
				cpu0 := cpuTime()
				for range *rounds {
					res, err := tg.load(*conc, 0, *duration).Run(ctx)
					if err != nil {
						return err
					}
					tg.closed.Merge(res)
				}
				fmt.Printf("%s %d conc: %.0f sessions/s p50 %.2f ms p99 %.2f ms; cpu per 1000 sessions %.3f s\n", tg.name, *conc,
					tg.closed.Throughput(), float64(tg.closed.Percentile(0.5))/1e6, float64(tg.closed.Percentile(0.99))/1e6,
					(cpuTime()-cpu0).Seconds()/float64(tg.closed.Sessions)*1000)
				return nil
			}
		}
		return fmt.Errorf("-profile-only %q: want bare, gate, gate(set-variable), agi(stub gate) or agi(record-only gate)", *profileOnly)
	}
	for r := range *rounds {
		for i := range targets {
			tg := targets[i]
			if r%2 == 1 {
				tg = targets[len(targets)-1-i]
			}
			runtime.GC()
			cpu0 := cpuTime()
			res, err := tg.load(*conc, 0, *duration).Run(ctx)
			if err != nil {
				return err
			}
			tg.cpu += cpuTime() - cpu0
			tg.closed.Merge(res)
		}
	}
	paced := append([]*target(nil), targets[:2]...)
	if hist != nil {
		paced = append(paced, hist)
	}
	for r := range *pacedRounds {
		for i := range paced {
			tg := paced[i]
			if r%2 == 1 {
				tg = paced[len(paced)-1-i]
			}
			runtime.GC()
			res, err := tg.load(0, *rate, *pacedDuration).Run(ctx)
			if err != nil {
				return err
			}
			tg.paced.Merge(res)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	for _, tg := range targets {
		fmt.Printf("%s %d conc: %.0f sessions/s p50 %s p99 %s\n", tg.name, *conc, tg.closed.Throughput(),
			ms(tg.closed.Percentile(0.5)), ms(tg.closed.Percentile(0.99)))
	}
	bare, gateT := targets[0], targets[1]
	fmt.Printf("gate/bare throughput ratio: %.2f\n", gateT.closed.Throughput()/bare.closed.Throughput())
	for _, tg := range targets[2:] {
		fmt.Printf("%s/bare throughput ratio: %.2f\n", tg.name, tg.closed.Throughput()/bare.closed.Throughput())
	}
	if *pacedRounds > 0 {
		for _, tg := range targets[:2] {
			fmt.Printf("%s paced %.0f/s: p50 %s p99 %s (ran at %.0f sessions/s)\n", tg.name, *rate, ms(tg.paced.Percentile(0.5)), ms(tg.paced.Percentile(0.99)), tg.paced.Throughput())
		}
		fmt.Printf("gate p99 - bare p99 at %.0f/s: %+.2f ms\n", *rate,
			float64(gateT.paced.Percentile(0.99)-bare.paced.Percentile(0.99))/float64(time.Millisecond))
	}
	if hist != nil && *pacedRounds > 0 {
		fmt.Printf("%s paced %.0f/s: p50 %s p99 %s (ran at %.0f sessions/s)\n", hist.name, *rate, ms(hist.paced.Percentile(0.5)), ms(hist.paced.Percentile(0.99)), hist.paced.Throughput())
		fmt.Printf("history p99 ratio (%d past calls / empty history): %.2f\n", *history,
			float64(hist.paced.Percentile(0.99))/float64(gateT.paced.Percentile(0.99)))
	}
	perK := func(tg *target) float64 { return tg.cpu.Seconds() / float64(tg.closed.Sessions) * 1000 }
	fmt.Printf("cpu per 1000 sessions: gate %.3f s bare %.3f s", perK(gateT), perK(bare))
	for _, tg := range targets[2:] {
		fmt.Printf(" %s %.3f s", tg.name, perK(tg))
	}
	if *separate {
		fmt.Printf(" (the server process's CPU over the closed-loop rounds)\n")
	} else {
		fmt.Printf(" (process CPU from getrusage over the closed-loop rounds, load client included)\n")
	}

	for _, f := range strings.Split(*events, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return fmt.Errorf("-events %q: want counts such as 1000000,10000000", *events)
		}
		fmt.Println(ari.RunEventBenchDetail(n))
	}

	failed := 0
	for _, tg := range append(targets, paced...) {
		for _, res := range []*agitest.LoadResult{&tg.closed, &tg.paced} {
			if res.Errors > 0 {
				failed += res.Errors
				fmt.Printf("# %s: %d failed sessions, first: %v\n", tg.name, res.Errors, res.FirstError)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d sessions failed", failed)
	}
	return nil
}

// withoutMSet returns copies of chans played by an Asterisk without
// the MSet application.
func withoutMSet(chans []*agitest.Channel) []*agitest.Channel {
	out := make([]*agitest.Channel, len(chans))
	for i, ch := range chans {
		c := *ch
		c.NoMSet = true
		out[i] = &c
	}
	return out
}

// allowed judges a gate session: it must end with an allow and a limit.
func allowed(r *agitest.Result) error {
	if r.Verdict() != "allow" || r.MaxSec() == "" || r.AGIStatus != "SUCCESS" {
		return fmt.Errorf("gate session ended without an allow: %+v", r)
	}
	return nil
}

// bareAnswered judges a bare server's session: it must set its variable.
func bareAnswered(r *agitest.Result) error {
	if r.Verdict() == "" {
		return errors.New("bare session ended without its variable")
	}
	return nil
}

// load is a closed-loop (conc callers) or paced (rate) run against tg,
// settling every allowed call with its hangup session.
func (tg *target) load(conc int, rate float64, d time.Duration) agitest.Load {
	// The bare server records no calls: nothing to settle.
	return agitest.Load{Addr: tg.addr, Channels: tg.channels, Concurrency: conc, Rate: rate, Duration: d, Check: tg.check, Settle: tg.name != "bare"}
}

func defaultCache() string {
	if d := os.Getenv("TOLLGUARD_BENCH_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "tollguard-bench")
	}
	return filepath.Join(os.TempDir(), "tollguard-bench")
}

// processCPU is this process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage reports the machine's 1-minute load, which says how far
// to trust the figures: other processes share the CPUs.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}
