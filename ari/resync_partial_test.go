package ari

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
)

// rowStore fails ObserveContact for one extension only: a store broken
// for some rows (a corrupt page, a constraint), fine for the others.
type rowStore struct {
	Store
	bad string
}

func (s *rowStore) ObserveContact(ctx context.Context, c tollguard.Contact) (tollguard.ContactHistory, error) {
	if c.Extension == s.bad {
		return tollguard.ContactHistory{}, errors.New("database disk image is malformed")
	}
	return s.Store.ObserveContact(ctx, c)
}

// TestStoreFailingOneRowKeepsResyncBackoff: the store keeps failing one
// extension's row while it records the others. Every registration of
// another phone must not clear the backoff: otherwise every contact of
// the PBX is read again through ARI every tick (2 s), for as long as
// that row stays broken.
func TestStoreFailingOneRowKeepsResyncBackoff(t *testing.T) {
	h := newHarness(t)
	h.l.Store = &rowStore{Store: h.db, bad: "1001"}
	h.start()
	h.fake.Register("1001", "1001", "sip:1001@192.0.2.10:5060", map[string]string{"user_agent": "desk"}, true)
	before := h.hooks.snapshot().resyncs
	testutil.Eventually(t, waitLimit, "a resync after the failed write", func() bool { return h.hooks.snapshot().resyncs > before })
	first := h.hooks.snapshot().resyncs
	logs0 := strings.Count(h.logs.String(), "recording a registration failed")
	// Other phones keep registering (and are recorded) meanwhile.
	for i := 0; i < 9; i++ {
		h.fake.Register("1002", "1002", fmt.Sprintf("sip:1002@192.0.2.%d:5060", 20+i), map[string]string{"user_agent": "desk"}, true)
		time.Sleep(time.Second)
	}
	if n := h.hooks.snapshot().resyncs - first; n > 1 {
		logs := strings.Count(h.logs.String(), "recording a registration failed") - logs0
		t.Errorf("%d more full resyncs (and %d error lines) in 9 s with one row still failing: want a backoff", n, logs)
	}
}
