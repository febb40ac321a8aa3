package main

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/store"
)

// TestServersAnswer starts every server `make bench` measures, on the
// issue's population, and plays a short load against each: a server
// that fails its sessions would make the benchmark's figures
// meaningless (and `make bench` fail) without any other test noticing.
func TestServersAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cache := t.TempDir()
	addrs, stopServers, err := startServers(ctx, serverOpts{cache: cache, logMode: "text", setVar: true, stub: true, record: true})
	if err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceFunc(stopServers)
	defer stop()
	chans := callers()[:200]
	for _, name := range []string{"bare", "gate", "gate(set-variable)", "agi(stub gate)", "agi(record-only gate)"} {
		addr := addrs[name]
		if addr == "" {
			t.Fatalf("%s: not started (servers: %v)", name, addrs)
		}
		tg := &target{name: name, addr: addr, channels: chans, check: allowed}
		if name == "bare" {
			tg.check = bareAnswered
		}
		if name == "gate(set-variable)" {
			tg.channels = withoutMSet(chans)
		}
		res, err := tg.load(4, 0, 300*time.Millisecond).Run(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Errors > 0 || res.Sessions == 0 {
			t.Errorf("%s: %d sessions, %d failed, first: %v", name, res.Sessions, res.Errors, res.FirstError)
		}
	}
	// Every allowed call was settled (the hangup sessions' settles are
	// invisible to the channel), and charged: the record-only gate's
	// settlement is the real one.
	stop()
	db, err := store.Open(ctx, filepath.Join(cache, "bench-v2-h0.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var open, charged int
	if err := db.SQL().QueryRowContext(ctx, `SELECT COALESCE(SUM(verdict = 'allow' AND settled_at IS NULL), 0),
		COALESCE(SUM(charge > 0), 0) FROM calls`).Scan(&open, &charged); err != nil {
		t.Fatal(err)
	}
	if open != 0 || charged == 0 {
		t.Errorf("after the loads: %d allowed calls still open, %d charged", open, charged)
	}
}
