package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/store"
	"github.com/tollguard/tollguard/store/storetest"
)

// population is the benchmark database: 100 accounts, 10,000
// extensions, a 50,000-prefix rate deck.
var population = storetest.Population{Accounts: 100, Extensions: 10000, Rates: 50000}

// gateUnderTest opens a database populated as the issue asks, with
// history past call rows, and returns the real policy over it (the
// gate `tollguard serve` runs) and a function that releases it.
// Databases are built once into dir and reused: ten million rows take
// a while to write.
func gateUnderTest(ctx context.Context, dir string, history int) (tollguard.Gate, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, fmt.Sprintf("bench-v2-h%d.db", history))
	now := time.Now()
	fresh := false
	if _, err := os.Stat(path); err != nil {
		fresh = true
	}
	if fresh {
		// Build under a temporary name, so an interrupted build is not reused.
		tmp := path + ".building"
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
		fmt.Fprintf(os.Stderr, "# building %s (%d past calls)...\n", path, history)
		db, err := store.Open(ctx, tmp)
		if err != nil {
			return nil, nil, err
		}
		p := population
		p.History = history
		err = storetest.Populate(ctx, db, p, now)
		if err == nil {
			// Every run's own calls are deleted at the next start, so
			// "history" means the populated rows and nothing more.
			_, err = db.SQL().ExecContext(ctx, `INSERT INTO settings(key, value) SELECT 'bench_base_id', COALESCE(MAX(id), 0) FROM calls`)
		}
		db.Close()
		if err != nil {
			return nil, nil, err
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, nil, err
		}
	}
	db, err := store.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	// Drop the calls earlier runs recorded: each run starts from the
	// populated history alone.
	if _, err := db.SQL().ExecContext(ctx, `DELETE FROM calls WHERE id > (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'bench_base_id')`); err != nil {
		db.Close()
		return nil, nil, err
	}
	if err := db.WarmGate(ctx); err != nil {
		db.Close()
		return nil, nil, err
	}
	cctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { db.RunCheckpointer(cctx, 100*time.Millisecond); close(done) }()
	p := &tollguard.Policy{
		Now: time.Now, Store: db, DefaultPlan: tollguard.NumberPlan{Country: "GB"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return p, func() { stop(); <-done; db.Close() }, nil
}

// callers returns the sessions the load plays: each of the 10,000
// extensions calling a London number, as the include asks the gate.
func callers() []*agitest.Channel {
	chans := make([]*agitest.Channel, population.Extensions)
	for i := range chans {
		ext := fmt.Sprint(1000 + i)
		num := fmt.Sprintf("020794%05d", i)
		ch := agitest.PJSIP(num)
		ch.Env.Set("agi_channel", fmt.Sprintf("PJSIP/%s-%08x", ext, i))
		ch.SetArgs(num, ext, "127.0.0.1:5072")
		chans[i] = ch
	}
	return chans
}
