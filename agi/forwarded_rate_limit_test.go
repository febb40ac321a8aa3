package agi

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/store"
)

// TestForwardedLegsDoNotLockThePhoneOut: through the include, calls
// forwarded out on extension 1001 (a Local channel, no source address)
// use up the extension's hourly attempt limit; the phone's own call
// (its source address passed as the include passes it) still goes out,
// and the next forwarded leg is denied rate_limit. Counted together,
// anyone ringing the number kept the phone from calling out.
func TestForwardedLegsDoNotLockThePhoneOut(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	acct, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	acct.Balance = 100000
	acct.Limits.ExtPerHour = 2
	if err := db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateExtension(ctx, &tollguard.Extension{Name: "1001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	imp, err := db.BeginRateImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rate, err := tollguard.ParseRate("0.01")
	if err != nil {
		t.Fatal(err)
	}
	if err := imp.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: rate}); err != nil {
		t.Fatal(err)
	}
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	p := &tollguard.Policy{Now: time.Now, Store: db, DefaultPlan: tollguard.NumberPlan{Country: "GB"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := startServer(t, func(s *Server) { s.Gate = p })
	forwarded := func() *agitest.Channel {
		ch := agitest.Local("02079460000")
		ch.SetIncludeArgs(tollguard.ScriptOutbound, "02079460000", "1001", "") // inherited extension, no source
		return ch
	}
	for i := range 2 {
		if res := h.run(forwarded()); res.Verdict() != "allow" {
			t.Fatalf("forwarded leg %d: verdict %q reason %q, want allow", i+1, res.Verdict(), res.Reason())
		}
	}
	if res := h.run(gated("02079460000")); res.Verdict() != "allow" {
		t.Fatalf("the phone's own call after two forwarded legs: verdict %q reason %q, want allow", res.Verdict(), res.Reason())
	}
	if res := h.run(forwarded()); res.Verdict() != "deny" || res.Reason() != string(tollguard.ReasonRateLimit) {
		t.Fatalf("third forwarded leg: verdict %q reason %q, want deny rate_limit", res.Verdict(), res.Reason())
	}
}
