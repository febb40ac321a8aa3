package main

import (
	"context"
	"io"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari/aritest"
)

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
	app := NewApp(nil, io.Discard, io.Discard)
	app.DBPath = path
	defer app.Close()
	if err := app.Init(); err != nil {
		t.Fatal(err)
	}
	st, err := app.Store(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dec, err := app.Policy(st).Decide(context.Background(), c)
	if err != nil || !dec.Allowed() {
		t.Fatalf("call %+v: %+v %v; want it allowed", c, dec, err)
	}
	return dec
}
