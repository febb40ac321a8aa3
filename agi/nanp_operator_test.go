package agi

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestNANPOperatorThroughTheGate: a US phone dials 00 (the long-distance
// carrier's operator, who places calls anywhere billed to the line)
// through the include. The gate took it for an internal call and
// allowed it for two hours, free.
func TestNANPOperatorThroughTheGate(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	acct, err := store.NewAccount("acme", "US", "USD")
	if err != nil {
		t.Fatal(err)
	}
	acct.Balance = 100000
	if err := db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateExtension(ctx, &tollguard.Extension{Name: "1001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	p := &tollguard.Policy{Now: time.Now, Store: db, DefaultPlan: tollguard.NumberPlan{Country: "US"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := startServer(t, func(s *Server) { s.Gate = p })
	res := h.run(gated("00"))
	if res.Verdict() != "deny" || res.Reason() != string(tollguard.ReasonRateCeiling) || !res.Hangup {
		t.Errorf("US phone dialling 00: verdict %q reason %q hangup %v; commands %q", res.Verdict(), res.Reason(), res.Hangup, res.Commands)
	}
}
