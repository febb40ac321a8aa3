package main

import (
	"context"
	"testing"
	"time"
)

// TestServersAnswer starts every server `make bench` measures, on the
// issue's population, and plays a short load against each: a server
// that fails its sessions would make the benchmark's figures
// meaningless (and `make bench` fail) without any other test noticing.
func TestServersAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addrs, stop, err := startServers(ctx, serverOpts{cache: t.TempDir(), logMode: "text", setVar: true, stub: true, record: true})
	if err != nil {
		t.Fatal(err)
	}
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
}
