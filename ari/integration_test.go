//go:build integration

package ari

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestRealAsterisk talks to a real Asterisk: TOLLGUARD_ARI_URL,
// TOLLGUARD_ARI_USER (default tollguard), TOLLGUARD_ARI_PASSWORD. It lists
// endpoints, connects the events websocket and resynchronises the
// registrations into an in-memory store.
func TestRealAsterisk(t *testing.T) {
	url := os.Getenv("TOLLGUARD_ARI_URL")
	if url == "" {
		t.Fatal("the integration tag runs this against a real Asterisk: set TOLLGUARD_ARI_URL (and TOLLGUARD_ARI_PASSWORD)")
	}
	user := os.Getenv("TOLLGUARD_ARI_USER")
	if user == "" {
		user = "tollguard"
	}
	c, err := NewClient(Config{URL: url, User: user, Password: os.Getenv("TOLLGUARD_ARI_PASSWORD"), App: "tollguard-it"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := c.Endpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d endpoints", len(eps))
	store := newMemStore()
	resynced := make(chan error, 1)
	l := &Listener{Client: c, Store: store, Hooks: resyncHook{resynced},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Responder: &tollguard.Responder{Alerter: &memAlerter{}, Blocker: store}}
	go l.Run(ctx)
	select {
	case err := <-resynced:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatalf("no resync: %+v", l.State())
	}
	live, _ := store.LiveContacts(ctx)
	t.Logf("%d live contacts; state %+v", len(live), l.State())
}

type resyncHook struct{ ch chan error }

func (h resyncHook) Connection(bool, error)    {}
func (h resyncHook) Event(string, bool)        {}
func (h resyncHook) Finding(tollguard.Finding) {}
func (h resyncHook) Settled(bool, error)       {}
func (h resyncHook) Resynced(r ResyncReport) {
	select {
	case h.ch <- r.Err:
	default:
	}
}
