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
	go func() { db.RunCheckpointer(cctx, store.CheckpointInterval, nil); close(done) }() // as serve does
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
		ch.SetIncludeArgs("outbound", num, ext, "127.0.0.1:5072")
		chans[i] = ch
	}
	return chans
}

// recordGate is a reference, not a gate: it allows every call and
// records it through the real gate's store path (a call row of the same
// size, the same group commit, the same settlement charging the
// account), but decides nothing. Its throughput against the bare server's is what
// keeping a durable record of every call costs on its own: the part of
// the gate's cost no policy work can remove.
type recordGate struct {
	db    *store.DB
	steps []tollguard.Step // a real allow's steps, so the rows are as big as the gate's
}

// newRecordGate returns the reference over the gate's database, with
// the steps the real policy gives a benchmark call.
func newRecordGate(ctx context.Context, p *tollguard.Policy) (recordGate, error) {
	db, ok := p.Store.(*store.DB)
	if !ok {
		return recordGate{}, fmt.Errorf("record gate: the policy's store is a %T, not the SQLite store", p.Store)
	}
	ch := callers()[0]
	num, _ := ch.Env.Get("agi_arg_1")
	ext, _ := ch.Env.Get("agi_arg_2")
	d, err := p.Explain(ctx, tollguard.Call{Extension: ext, Dialled: num, Remote: "127.0.0.1"})
	if err != nil || !d.Allowed() {
		return recordGate{}, fmt.Errorf("record gate: the policy did not allow the benchmark call (%+v): %v", d, err)
	}
	return recordGate{db: db, steps: d.Steps}, nil
}

func (g recordGate) Decide(ctx context.Context, c tollguard.Call) (tollguard.Decision, error) {
	// The account Populate gave this extension, without reading it.
	acct := population.AccountOf(c.Extension)
	if acct == "" {
		return tollguard.Decision{}, fmt.Errorf("record gate: extension %q is not one the benchmark populated", c.Extension)
	}
	rec := &tollguard.CallRecord{CreatedAt: time.Now(), Extension: c.Extension, Account: acct, Dialled: c.Dialled,
		E164: c.Dialled, Class: tollguard.ClassNational, Country: "GB", Remote: c.Remote, Channel: c.Channel, UniqueID: c.UniqueID,
		Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, Rate: 1000, Reserve: 10_000, Scale: 2, MaxSec: 600, Steps: g.steps}
	var id int64
	err := g.db.Gate(ctx, false, func(tx tollguard.GateTx) error {
		var err error
		id, err = tx.InsertCall(ctx, rec)
		return err
	})
	if err != nil {
		return tollguard.Decision{}, err
	}
	return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: rec.MaxSec, CallID: id}, nil
}

func (g recordGate) Settle(ctx context.Context, s tollguard.Settlement) (bool, error) {
	_, changed, err := g.db.SettleCall(ctx, s)
	return changed, err
}

func (recordGate) Emergency(extension, dialled string) bool { return false }
