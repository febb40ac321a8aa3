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
	h := newHarness(t, withConfig(func(c *Config) { c.ResyncWorkers, c.ResyncBudget = 1, budget }))
	var names, ids []string
	for i := 0; i < 8; i++ {
		name := fmt.Sprintf("20%02d", i)
		fields := []tollguard.ConfigField{{Attribute: "aors", Value: name}, {Attribute: "rewrite_contact", Value: "true"}}
		h.fake.SetObject("endpoint", name, fields, true)
		names = append(names, name)
	}
	h.start()
	for _, name := range names {
		ids = append(ids, h.fake.Register(name, name, "sip:"+name+"@198.51.100.7:5060;x-ast-orig-host=10.0.0.7:5060", map[string]string{"user_agent": "Yealink"}, true))
	}
	testutil.Eventually(t, waitLimit, "the registrations recorded", func() bool {
		live, err := h.db.LiveContacts(context.Background())
		return err == nil && len(live) == len(names)
	})
	h.drainRegistrations()

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
		t.Errorf("the continuing pass reported %+v, want a retry that read every contact and ended one", got)
	}
	cs, _ := h.db.Contacts(context.Background(), store.ContactFilter{Live: true})
	if len(cs) != len(ids)-1 {
		t.Errorf("%d live contacts, want %d", len(cs), len(ids)-1)
	}
}
