package ari

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/internal/testutil"
)

// flood1001 pushes refresh events of 1001's contact uri, about rate a
// second, until the returned stop is called; Asterisk answers contact
// reads slowly (5 ms), so that the registration queue fills.
func flood1001(t *testing.T, h *harness, uri string, rate int) (stop func()) {
	t.Helper()
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/contact/", 5*time.Millisecond)
	frame := mustJSON(t, aritest.ContactEvent("1001", "1001", uri, tollguard.ContactUnknown, time.Now()))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for i := 0; i < rate/100; i++ {
				h.fake.Push(frame)
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/contact/", 0)
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestRefreshFloodDoesNotHoldOtherPhonesEvents: one phone's password
// REGISTERing as fast as Asterisk takes it (each refresh publishes a
// ContactStatusChange) filled the registration queue; another phone's
// event was then dropped, and the resync that would find it waited for
// an empty queue: for as long as the flood lasted. Its new_ip alert now
// comes while the flood goes on, and no full resync is run for it.
func TestRefreshFloodDoesNotHoldOtherPhonesEvents(t *testing.T) {
	h := newHarness(t).start()
	const flooder = "sip:1001@198.51.100.201:5060;x-ast-orig-host=10.0.0.1:5060"
	h.fake.Register("1001", "1001", flooder, map[string]string{"user_agent": "Yealink SIP-T46U"}, true)
	h.fake.Register("1002", "1002", "sip:1002@198.51.100.202:5060;x-ast-orig-host=10.0.0.2:5060", map[string]string{"user_agent": "Snom D785"}, true)
	h.drainRegistrations()
	resyncs := h.hooks.snapshot().resyncs

	stop := flood1001(t, h, flooder, 1000)
	// Long enough for the queue (1024) to fill at 200 reads a second.
	time.Sleep(3 * time.Second)
	moved := h.fake.Register("1002", "1002", "sip:1002@203.0.113.50:5060;x-ast-orig-host=10.0.0.2:5060", map[string]string{"user_agent": "Snom D785"}, true)
	testutil.Eventually(t, 10*time.Second, "1002's new_ip alert during the flood", func() bool {
		for _, a := range h.alerts.kind(tollguard.AlertNewIP) {
			if a.Extension == "1002" {
				return true
			}
		}
		return false
	})
	if c := h.mustContact(moved); !c.Live {
		t.Errorf("1002's new contact %+v", c)
	}
	if n := h.hooks.snapshot().resyncs - resyncs; n != 0 {
		t.Errorf("%d full resyncs during one phone's flood, want none", n)
	}
	stop()
}

// TestFoldedEventsAreReadFromAsterisk: the events an endpoint sends past
// its share of the queue are not lost: the read of its contacts that
// replaces them judges a contact registered meanwhile (new_ip) and ends
// one removed, without a full resync.
func TestFoldedEventsAreReadFromAsterisk(t *testing.T) {
	h := newHarness(t).start()
	const desk = "sip:1001@198.51.100.201:5060;x-ast-orig-host=10.0.0.1:5060"
	deskID := h.fake.Register("1001", "1001", desk, map[string]string{"user_agent": "Yealink SIP-T46U"}, true)
	h.drainRegistrations()
	resyncs := h.hooks.snapshot().resyncs
	mark := len(h.logs.String())

	stop := flood1001(t, h, desk, 1000)
	time.Sleep(time.Second)
	// While 1001's share of the queue is full: a phone elsewhere
	// registers with its password, and the desk phone's contact goes.
	thief := h.fake.Register("1001", "1001", "sip:1001@203.0.113.60:5060;x-ast-orig-host=10.9.9.9:5060", map[string]string{"user_agent": "Zoiper"}, true)
	stop()
	h.fake.Unregister("1001", "1001", desk, true)
	testutil.Eventually(t, waitLimit, "1001's new_ip alert", func() bool { return len(h.alerts.kind(tollguard.AlertNewIP)) == 1 })
	testutil.Eventually(t, waitLimit, "the desk phone's contact ended", func() bool {
		c, ok := h.contact(deskID)
		return ok && !c.Live
	})
	if c := h.mustContact(thief); !c.Live || c.UserAgent != "Zoiper" {
		t.Errorf("the thief's contact %+v", c)
	}
	logs := h.logs.String()[mark:]
	if n := strings.Count(logs, "registration events from one endpoint come faster than they can be handled"); n != 1 {
		t.Errorf("%d warnings of the flood, want one:\n%s", n, logs)
	}
	if strings.Contains(logs, "registration queue full") {
		t.Errorf("events dropped:\n%s", logs)
	}
	if n := h.hooks.snapshot().resyncs - resyncs; n != 0 {
		t.Errorf("%d full resyncs, want none", n)
	}
}

// TestQueueFullWarnsOnceAMinute: with the whole registration queue full
// (many endpoints at once), each dropped event wrote a WARN line: a
// flood of thousands a second went to the log.
func TestQueueFullWarnsOnceAMinute(t *testing.T) {
	logs := &testutil.Buffer{}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	l := &Listener{Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: func() time.Time { return now }}
	l.init()
	// No registration goroutine: the queue fills and stays full.
	for i := 0; i < regQueueSize+2000; i++ {
		ep := fmt.Sprintf("5%04d", i)
		l.enqueueContact(&ariv5.ContactStatusChange{Endpoint: ariv5.EndpointData{Technology: "PJSIP", Resource: ep},
			ContactInfo: ariv5.ContactInfo{Aor: ep, Uri: "sip:" + ep + "@198.51.100.1", ContactStatus: tollguard.ContactUnknown}}, now)
	}
	if n := strings.Count(logs.String(), "registration queue full"); n != 1 {
		t.Fatalf("%d queue-full warnings for 2000 dropped events, want one", n)
	}
	now = now.Add(61 * time.Second)
	l.enqueueContact(&ariv5.ContactStatusChange{Endpoint: ariv5.EndpointData{Technology: "PJSIP", Resource: "1001"},
		ContactInfo: ariv5.ContactInfo{Aor: "1001", Uri: "sip:1001@198.51.100.1", ContactStatus: tollguard.ContactUnknown}}, now)
	// The first drop is said at once; the next line, a minute on, counts
	// those since.
	if n := strings.Count(logs.String(), "registration queue full"); n != 2 || !strings.Contains(logs.String(), "dropped=1\n") || !strings.Contains(logs.String(), "dropped=2000\n") {
		t.Errorf("the warnings do not count what was dropped:\n%s", logs.String())
	}
	if !l.needResync.Load() {
		t.Error("no resync due after dropped events")
	}
}

// TestFoldedEventIsNotAppliedBeforeEarlierQueuedOnes: while an
// endpoint's read is queued, a slot freed in its share let the next
// event queue behind the read, and the one after was folded into it:
// the later event then took effect before the earlier one. A contact
// registered (queued) and removed again (folded) was left live.
func TestFoldedEventIsNotAppliedBeforeEarlierQueuedOnes(t *testing.T) {
	h := newHarness(t).start()
	const desk = "sip:1001@198.51.100.201:5060;x-ast-orig-host=10.0.0.1:5060"
	h.fake.Register("1001", "1001", desk, map[string]string{"user_agent": "Yealink SIP-T46U"}, true)
	h.drainRegistrations()
	// Slow reads: 1001's read stays queued for seconds behind its 32.
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/contact/", 100*time.Millisecond)
	refresh := mustJSON(t, aritest.ContactEvent("1001", "1001", desk, tollguard.ContactUnknown, time.Now()))
	for i := 0; i < endpointQueued+8; i++ {
		h.fake.Push(refresh)
	}
	queued := func() (int, bool) {
		h.l.regMu.Lock()
		defer h.l.regMu.Unlock()
		return h.l.regQueued["1001"], h.l.regReread["1001"]
	}
	testutil.Eventually(t, waitLimit, "two places freed while the read is queued", func() bool {
		n, reread := queued()
		return reread && n <= endpointQueued-1
	})
	second := h.fake.Register("1001", "1001", "sip:1001@203.0.113.60:5060;x-ast-orig-host=10.9.9.9:5060", map[string]string{"user_agent": "Zoiper"}, true)
	h.fake.Unregister("1001", "1001", "sip:1001@203.0.113.60:5060;x-ast-orig-host=10.9.9.9:5060", true)
	if _, reread := queued(); !reread {
		t.Fatal("the read started before the contact came and went; the test needs slower reads")
	}
	testutil.Eventually(t, waitLimit, "1001's events handled", func() bool { n, _ := queued(); return n == 0 })
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/contact/", 0)
	h.drainRegistrations()
	if c, ok := h.contact(second); ok && c.Live {
		t.Errorf("a contact registered and removed again is live: %+v", c)
	}
}
