package ari

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// TestResyncStopsAtItsBoundAndTheNextPassContinues: with Asterisk
// answering slowly, a resync stops feeding endpoints at its bound, so
// the registration events wait no longer than that; it leaves the
// contacts of the endpoints it did not read as they were (not gone),
// says at WARN what it left, and the next pass, without waiting an
// hour, reads those: a contact removed there without an event ends.
func TestResyncStopsAtItsBoundAndTheNextPassContinues(t *testing.T) {
	const budget = 300 * time.Millisecond
	h, names, ids := boundedResyncPBX(t, budget, "20", "@198.51.100.7:5060;x-ast-orig-host=10.0.0.7:5060")

	// The last endpoint's phone unregisters; its event is lost.
	last := names[len(names)-1]
	h.fake.Unregister(last, last, "sip:"+last+"@198.51.100.7:5060;x-ast-orig-host=10.0.0.7:5060", false)
	// Each endpoint read now takes 300ms: eight take 2.4s, eight times
	// the bound.
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/endpoint/", 300*time.Millisecond)
	mark := len(h.logs.String())
	resyncs := h.hooks.snapshot().resyncs
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 1)
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/endpoint/", 0)
	logs := h.logs.String()[mark:]
	m := regexp.MustCompile(`level=WARN msg="registration resync reached its time bound[^"]*" bound=300ms left=(\d+) left_endpoints=\S+ contacts=\d+ took=(\S+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no WARN naming what the cut-short pass left:\n%s", logs)
	}
	// The reads under way finish: one endpoint's more than the bound.
	if took, err := time.ParseDuration(m[2]); err != nil || took > budget+time.Second {
		t.Errorf("the cut-short pass took %s with a bound of %s", m[2], budget)
	}
	if n, _ := strconv.Atoi(m[1]); n < 4 {
		t.Errorf("the cut-short pass left %d endpoints, want most of the 8", n)
	}
	// Every contact but the one removed is live: those the pass did not
	// read were not taken for gone.
	for _, id := range ids[:len(ids)-1] {
		if c := h.mustContact(id); !c.Live {
			t.Errorf("contact %s marked gone by a pass that did not read it", id)
		}
	}

	// The next pass continues without an hour's wait and reaches the
	// last endpoint: its contact ends.
	testutil.Eventually(t, 20*time.Second, "the removed contact ended by a continuing pass", func() bool {
		c, ok := h.contact(ids[len(ids)-1])
		return ok && !c.Live
	})
	for _, id := range ids[:len(ids)-1] {
		if c := h.mustContact(id); !c.Live {
			t.Errorf("contact %s marked gone", id)
		}
	}
	r := h.hooks.snapshot().reports
	if got := r[resyncs]; got.Trigger != ResyncPeriodic || got.Result != ResyncPartial || got.Ended != 0 {
		t.Errorf("the cut-short pass reported %+v, want an hourly partial one ending nothing", got)
	}
	if got := r[len(r)-1]; got.Trigger != ResyncRetry || got.Result != ResyncOK || got.Ended != 1 || got.Contacts != len(ids)-1 {
		t.Errorf("the continuing pass reported %+v, want a retry that read the contacts of the endpoints left and ended one", got)
	}
	cs, _ := h.db.Contacts(context.Background(), store.ContactFilter{Live: true})
	if len(cs) != len(ids)-1 {
		t.Errorf("%d live contacts, want %d", len(cs), len(ids)-1)
	}
}

// TestResyncContinuationEndsItsCycle: on a PBX that Asterisk answers too
// slowly for one pass to read every endpoint within the bound, the
// passes that continue a cut-short one read the endpoints left and stop
// there. A continuation that wrapped around to the endpoints the cycle
// had read already was never complete: passes ran back to back for as
// long as Asterisk stayed slow, each holding the registration events up
// to the bound.
func TestResyncContinuationEndsItsCycle(t *testing.T) {
	const budget = 300 * time.Millisecond
	h, names, ids := boundedResyncPBX(t, budget, "30", "@198.51.100.8:5060")

	// Asterisk stays slow: a pass reads two or three of the eight.
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/endpoint/", 200*time.Millisecond)
	resyncs := h.hooks.snapshot().resyncs
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 1)
	if r := h.hooks.snapshot().reports[resyncs]; r.Result != ResyncPartial {
		t.Fatalf("the first pass %+v, want one cut short", r)
	}
	testutil.Eventually(t, 20*time.Second, "a continuing pass reading the last endpoints left", func() bool {
		r := h.hooks.snapshot().reports
		return r[len(r)-1].Result == ResyncOK
	})
	done := h.hooks.snapshot()
	if n := done.resyncs - resyncs; n > len(names) {
		t.Errorf("%d passes to read %d endpoints", n, len(names))
	}
	time.Sleep(4*tickEvery + budget)
	if after := h.hooks.snapshot(); after.resyncs != done.resyncs {
		t.Errorf("%d more passes after the cycle was complete: %+v", after.resyncs-done.resyncs, after.reports[len(done.reports):])
	}
	for _, id := range ids {
		if c := h.mustContact(id); !c.Live {
			t.Errorf("contact %s marked gone", id)
		}
	}
}

// TestResyncAfterReconnectStartsOver: the pass after a reconnect reads
// every endpoint, not only those a cut-short cycle had left: a contact
// removed while tollguard was away from an endpoint read earlier in the
// cycle ends at the reconnect.
func TestResyncAfterReconnectStartsOver(t *testing.T) {
	const budget = 300 * time.Millisecond
	h := newHarness(t, withConfig(func(c *Config) { c.ResyncWorkers, c.ResyncBudget = 1, budget }))
	var names []string
	for i := 0; i < 8; i++ {
		name := fmt.Sprintf("01%02d", i) // before the harness's own endpoints
		fields := []tollguard.ConfigField{{Attribute: "aors", Value: name}, {Attribute: "rewrite_contact", Value: "true"}}
		h.fake.SetObject("endpoint", name, fields, true)
		names = append(names, name)
	}
	h.start()
	uri := func(name string) string { return "sip:" + name + "@198.51.100.9:5060" }
	first := h.fake.Register(names[0], names[0], uri(names[0]), map[string]string{"user_agent": "Yealink"}, true)
	for _, name := range names[1:] {
		h.fake.Register(name, name, uri(name), map[string]string{"user_agent": "Yealink"}, true)
	}
	testutil.Eventually(t, waitLimit, "the registrations recorded", func() bool {
		live, err := h.db.LiveContacts(context.Background())
		return err == nil && len(live) == len(names)
	})
	h.drainRegistrations()

	// A slow Asterisk cuts the hourly pass short after the first endpoints.
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/endpoint/", 200*time.Millisecond)
	resyncs := h.hooks.snapshot().resyncs
	h.advance(resyncEvery)
	h.waitResyncs(resyncs + 1)
	if r := h.hooks.snapshot().reports[resyncs]; r.Result != ResyncPartial || r.Contacts == 0 {
		t.Fatalf("the first pass %+v, want one cut short after reading some", r)
	}

	// Away; the first endpoint's phone unregisters meanwhile.
	h.fake.Stop()
	h.fake.Delay("GET", "/asterisk/config/dynamic/res_pjsip/endpoint/", 0)
	h.fake.Unregister(names[0], names[0], uri(names[0]), false)
	if err := h.fake.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitConnected(2)
	testutil.Eventually(t, waitLimit, "the reconnect's pass", func() bool {
		n := 0
		for _, r := range h.hooks.snapshot().reports {
			if r.Trigger == ResyncConnect && r.Result == ResyncOK {
				n++
			}
		}
		return n == 2
	})
	if c := h.mustContact(first); c.Live {
		t.Errorf("the contact removed while away is still live after the reconnect's pass: %+v", h.hooks.snapshot().reports)
	}
}

// boundedResyncPBX starts a listener whose resync reads one endpoint at
// a time within budget, over eight endpoints (prefix00 to prefix07)
// whose phones registered at "sip:NAME"+host, and returns once every
// registration is recorded: the ids are their contacts'.
func boundedResyncPBX(t *testing.T, budget time.Duration, prefix, host string) (h *harness, names, ids []string) {
	t.Helper()
	h = newHarness(t, withConfig(func(c *Config) { c.ResyncWorkers, c.ResyncBudget = 1, budget }))
	for i := 0; i < 8; i++ {
		name := fmt.Sprintf("%s%02d", prefix, i)
		fields := []tollguard.ConfigField{{Attribute: "aors", Value: name}, {Attribute: "rewrite_contact", Value: "true"}}
		h.fake.SetObject("endpoint", name, fields, true)
		names = append(names, name)
	}
	h.start()
	for _, name := range names {
		ids = append(ids, h.fake.Register(name, name, "sip:"+name+host, map[string]string{"user_agent": "Yealink"}, true))
	}
	testutil.Eventually(t, waitLimit, "the registrations recorded", func() bool {
		live, err := h.db.LiveContacts(context.Background())
		return err == nil && len(live) == len(names)
	})
	h.drainRegistrations()
	return h, names, ids
}
