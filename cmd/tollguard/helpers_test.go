package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// startServe runs `tollguard serve --config cfg` in a goroutine: cancel
// stops it as SIGTERM does, its exit code goes to done, and logs holds
// what it wrote.
func startServe(t *testing.T, cfg string) (cancel context.CancelFunc, done <-chan int, logs *testutil.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs = &testutil.Buffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--config", cfg, "serve"}, strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	return cancel, exit, logs
}

// stopServe cancels a serve that run started in a goroutine (its exit
// code goes to done) and fails t unless it exits 0 within wait; logs is
// what it wrote, for the failure.
func stopServe(t *testing.T, cancel context.CancelFunc, done <-chan int, logs fmt.Stringer, wait time.Duration) {
	t.Helper()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		}
	case <-time.After(wait):
		t.Fatalf("serve did not stop within %s:\n%s", wait, logs.String())
	}
}

// newFakeARI starts the fake Asterisk ARI (built from recordings) for
// the test.
func newFakeARI(t *testing.T) *aritest.Server {
	t.Helper()
	fake, err := aritest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	return fake
}

// decideOn has the gate decide c against the database at path, as the
// daemon would, and wants it allowed: a call in progress for a test to
// act on.
func decideOn(t *testing.T, path string, c tollguard.Call) tollguard.Decision {
	t.Helper()
	app, st := openApp(t, path)
	defer app.Close()
	dec, err := app.Policy(st).Decide(context.Background(), c)
	if err != nil || !dec.Allowed() {
		t.Fatalf("call %+v: %+v %v; want it allowed", c, dec, err)
	}
	return dec
}

// liveCall is a call in progress as Asterisk carries it: its channel
// (c.UniqueID) exists on fake and carries the TOLLGUARD_CALLID the
// gate's reply sets there.
func liveCall(t *testing.T, fake *aritest.Server, path string, c tollguard.Call) tollguard.Decision {
	t.Helper()
	fake.SetChannel(c.UniqueID, "PJSIP/"+c.Extension+"-"+c.UniqueID)
	dec := decideOn(t, path, c)
	fake.SetChannelVar(c.UniqueID, tollguard.VarCallID, strconv.FormatInt(dec.CallID, 10))
	return dec
}

// openApp opens the CLI's App on the database at path, with no config
// file, as the daemon's parts see it. The caller closes it (the test's
// end does too).
func openApp(t *testing.T, path string) (*App, *store.DB) {
	t.Helper()
	t.Setenv("TOLLGUARD_CONFIG", "")
	app := NewApp(nil, io.Discard, io.Discard)
	app.DBPath = path
	t.Cleanup(app.Close)
	if err := app.Init(); err != nil {
		t.Fatal(err)
	}
	db, err := app.Store(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return app, db
}

// openStore opens the database at path beside the CLI, for what a test
// sets up or checks there directly; the test's end closes it.
func openStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runWithARI runs the CLI against the database at db with [ari] pointing
// at fake, and returns its exit code and output.
func runWithARI(t *testing.T, fake *aritest.Server, db string, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "ari.secret")
	cfg := filepath.Join(dir, "tollguard.toml")
	if err := os.WriteFile(pw, []byte(fake.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[ari]\nenabled = true\nurl = %q\nuser = %q\npassword_file = %q\n",
		db, fake.URL, fake.User, pw)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "")
	stdout, stderr, code := runCLI(t, append([]string{"--config", cfg}, args...)...)
	return code, stdout, stderr
}

// reloadableDaemon is a daemon as serve starts it, enough for d.reload:
// its config read from path, its log written to the returned buffer.
func reloadableDaemon(t *testing.T, path string, db *store.DB) (*daemon, *testutil.Buffer) {
	t.Helper()
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	d := &daemon{
		app:    &App{Config: cfg, ConfigPath: path},
		db:     db,
		policy: &tollguard.Policy{},
		log:    slog.New(slog.NewTextHandler(logs, nil)),
	}
	g := cfg.Gate
	d.gate.Store(&g)
	return d, logs
}
