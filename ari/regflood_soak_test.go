package ari

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestRegistrationFloodSoak: one phone's password REGISTERing as fast as
// Asterisk takes it (every refresh publishes a ContactStatusChange, and
// alternating a second Contact creates and removes one), on a PBX of
// many endpoints. Another phone registering from a new address meanwhile
// must still be alerted on within seconds, the drop-triggered resyncs
// must stay few (each reads every endpoint), and the heap must not grow
// with the flood. TOLLGUARD_SOAK=1 runs the full size: 2000 endpoints,
// 200, 1000 and 5000 events/s for 10 s.
func TestRegistrationFloodSoak(t *testing.T) {
	endpoints, dur, rates, quiet := 100, 1500*time.Millisecond, []int{2000}, tickEvery+time.Second
	if os.Getenv("TOLLGUARD_SOAK") != "" {
		endpoints, dur, rates, quiet = 2000, 10*time.Second, []int{200, 1000, 5000}, 3*tickEvery
	}
	for _, rate := range rates {
		t.Run(fmt.Sprintf("%d/s", rate), func(t *testing.T) { regFlood(t, endpoints, rate, dur, quiet) })
	}
}

type floodResult struct {
	pushed           int
	alertAfter       time.Duration
	resyncs          int
	resyncsDuring    int
	reads            int // REST GETs from the flood's start until quiet
	drops            int
	heapBefore, peak uint64
	quietAfter       time.Duration // from the flood's end until the queue and resyncs were done
}

var regexpTook = regexp.MustCompile(`msg="registrations resynchronised[^"]*".* took=(\S+)`)

func regFlood(t *testing.T, endpoints, rate int, dur, quiet time.Duration) {
	h := newHarness(t)
	// INFO: the DEBUG lines of a flood would fill the test's log buffer
	// and be counted as the listener's heap.
	h.l.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for i := 0; i < endpoints; i++ {
		name := fmt.Sprintf("5%04d", i)
		h.fake.SetObject("endpoint", name, []tollguard.ConfigField{{Attribute: "aors", Value: name}, {Attribute: "rewrite_contact", Value: "true"}}, true)
		h.fake.Register(name, name, fmt.Sprintf("sip:%s@198.51.100.%d:5060;x-ast-orig-host=10.1.%d.%d:5060", name, 1+i%200, i/250, i%250),
			map[string]string{"user_agent": "Yealink SIP-T46U"}, false)
	}
	const flooderA = "sip:1001@198.51.100.201:5060;x-ast-orig-host=10.0.0.1:5060"
	const flooderB = "sip:1001@198.51.100.201:5061;x-ast-orig-host=10.0.0.1:5061"
	h.fake.Register("1001", "1001", flooderA, map[string]string{"user_agent": "Yealink SIP-T46U"}, false)
	h.fake.Register("1002", "1002", "sip:1002@198.51.100.202:5060;x-ast-orig-host=10.0.0.2:5060", map[string]string{"user_agent": "Snom D785"}, false)
	h.start()
	if n := h.l.State().ResyncContacts; n != endpoints+2 {
		t.Fatalf("the first resync read %d contacts, want %d", n, endpoints+2)
	}
	mark := len(h.logs.String())

	var r floodResult
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapBefore, r.peak = ms.HeapAlloc, ms.HeapAlloc
	resyncs0 := h.hooks.snapshot().resyncs
	h.fake.ResetRequests()
	var reads atomic.Int64
	countReads := func() {
		reads.Add(int64(len(h.fake.RequestsMatching("GET", "/"))))
		h.fake.ResetRequests()
	}

	// The flood: refresh events of contact A (status Unknown: qualify has
	// not reached it), and every tenth event contact B registered or
	// removed in turn.
	refresh := mustJSON(t, aritest.ContactEvent("1001", "1001", flooderA, tollguard.ContactUnknown, time.Now()))
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	var pushed atomic.Int64
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		b, burst := false, 0
		for n := 0; time.Since(start) < dur; {
			<-tick.C
			if burst == 0 && time.Since(start) > 500*time.Millisecond {
				// A burst past the queue's size: events dropped, a resync due.
				burst = 2000
				for i := 0; i < burst; i++ {
					h.fake.Push(refresh)
				}
				pushed.Add(int64(burst))
			}
			due := int(time.Since(start) * time.Duration(rate) / time.Second)
			for ; n < due; n++ {
				if n%10 == 0 {
					if b = !b; b {
						h.fake.Register("1001", "1001", flooderB, map[string]string{"user_agent": "Yealink SIP-T46U"}, true)
					} else {
						h.fake.Unregister("1001", "1001", flooderB, true)
					}
				} else {
					h.fake.Push(refresh)
				}
				pushed.Add(1)
			}
		}
		close(stop)
	}()
	go func() {
		defer wg.Done()
		sample := time.NewTicker(100 * time.Millisecond)
		defer sample.Stop()
		for {
			select {
			case <-stop:
				return
			case <-sample.C:
			}
			runtime.ReadMemStats(&ms)
			r.peak = max(r.peak, ms.HeapAlloc)
			countReads()
		}
	}()

	// A second into it, 1002 registers from a new address.
	time.Sleep(time.Second)
	h.fake.Register("1002", "1002", "sip:1002@203.0.113.50:5060;x-ast-orig-host=10.0.0.2:5060", map[string]string{"user_agent": "Snom D785"}, true)
	at := time.Now()
	testutil.Eventually(t, dur+5*time.Minute, "the new_ip alert of 1002", func() bool {
		for _, a := range h.alerts.kind(tollguard.AlertNewIP) {
			if a.Extension == "1002" {
				return true
			}
		}
		return false
	})
	r.alertAfter = time.Since(at)
	wg.Wait()
	end := time.Now()
	r.resyncsDuring = h.hooks.snapshot().resyncs - resyncs0
	// Quiet: the queue empty, no resync due, and none done for a while.
	last, lastAt := h.hooks.snapshot().resyncs, time.Now()
	testutil.Eventually(t, 5*time.Minute, "the listener quiet after the flood", func() bool {
		if n := h.hooks.snapshot().resyncs; n != last {
			last, lastAt = n, time.Now()
		}
		return len(h.l.regQ) == 0 && !h.l.needResync.Load() && time.Since(lastAt) > quiet
	})
	r.quietAfter = lastAt.Sub(end)
	if r.quietAfter < 0 {
		r.quietAfter = 0
	}
	countReads()
	r.reads = int(reads.Load())
	r.resyncs = h.hooks.snapshot().resyncs - resyncs0
	r.pushed = int(pushed.Load())
	r.drops = strings.Count(h.logs.String()[mark:], "registration queue full")
	// One endpoint's flood is held to its share of the queue: the other
	// phone is heard at once, nothing is dropped, nothing read in full.
	if r.alertAfter > 5*time.Second {
		t.Errorf("1002's new_ip came %s after its registration", r.alertAfter)
	}
	if r.resyncs != 0 || r.drops != 0 {
		t.Errorf("%d full resyncs and %d queue-full warnings for one endpoint's flood, want none", r.resyncs, r.drops)
	}
	if grew := int64(r.peak) - int64(r.heapBefore); grew > 64<<20 {
		t.Errorf("the heap grew by %d MiB during the flood", grew>>20)
	}
	took := regexpTook.FindAllStringSubmatch(h.logs.String(), -1)
	t.Logf("resync durations (INFO ones): %v", took)
	t.Logf("%d endpoints, %d events/s for %s (%d pushed): 1002's new_ip after %s; resyncs %d during the flood, %d in all; REST GETs %d (%.0f per event); queue-full WARN lines %d; heap %d KiB -> peak %d KiB; quiet %s after the flood",
		endpoints, rate, dur, r.pushed, r.alertAfter.Round(time.Millisecond), r.resyncsDuring, r.resyncs, r.reads, float64(r.reads)/float64(r.pushed),
		r.drops, r.heapBefore>>10, r.peak>>10, r.quietAfter.Round(time.Millisecond))
}
