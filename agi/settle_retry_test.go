package agi

import (
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// TestHangupDuringStoreOutageIsChargedItsBilledSeconds: a red team
// filled the disk under serve; the hangup requests that came meanwhile
// failed, their calls stayed open, and the sweep later charged each
// its full reservation (sweep:maxsec). Here another process holds the
// database's write lock while the hangup request comes over FastAGI:
// the settlement is kept, the sweep past MAXSEC retries it first, and
// the call is charged the seconds Asterisk billed, once, by agi. A
// repeated hangup request then changes nothing.
func TestHangupDuringStoreOutageIsChargedItsBilledSeconds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	acct, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	acct.Balance = 100000
	acct.NationalCeiling = tollguard.NoCeiling
	if err := db.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateExtension(ctx, &tollguard.Extension{Name: "1001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	importRate(t, db, "44", "0.60") // a penny a second

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	db.Now = clock
	logs := newLogRecorder()
	p := &tollguard.Policy{Now: clock, Store: db, DefaultPlan: tollguard.NumberPlan{Country: "GB"}, Logger: slog.New(logs)}
	h := startServer(t, func(s *Server) {
		s.Gate = p
		s.Now = clock
	})

	ch := gated("02079460000")
	res := h.run(ch)
	if res.Verdict() != "allow" {
		t.Fatalf("verdict %q reason %q, want allow", res.Verdict(), res.Reason())
	}
	callID, err := strconv.ParseInt(res.CallID(), 10, 64)
	if err != nil {
		t.Fatalf("call id %q: %v", res.CallID(), err)
	}
	advance(50 * time.Second)

	// The store fails writes: another process holds the write lock.
	release := testutil.HoldWriteLock(t, path)
	hangup := func() {
		ch.SetIncludeArgs(tollguard.ScriptHangup, res.CallID(), "41", "ANSWER", "41200") // 42 s billed
		h.run(ch)
	}
	hangup() // the store gives up on the lock after its 5 s busy timeout
	if n := p.PendingSettlements(); n != 1 {
		t.Errorf("%d settlements pending after the failed hangup, want 1", n)
	}
	if warns := logs.find("kept in memory and retried"); len(warns) == 0 {
		t.Errorf("no log says the settlement is kept; log:\n%s", logs.dump())
	}
	release()

	// Long past MAXSEC: the sweep would charge the full reservation.
	advance(48 * time.Hour)
	r, err := p.Sweep(ctx, db, nil, nil, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r.SettledFull != 0 {
		t.Errorf("the sweep charged %d calls their reservation", r.SettledFull)
	}
	c, err := db.Call(ctx, callID)
	if err != nil {
		t.Fatal(err)
	}
	want := min(tollguard.Cost(c.Rate, c.Billing, 42, c.Scale), c.Reserve)
	if c.SettledBy != ByAGI || c.Billsec != 42 || c.Charge != want {
		t.Fatalf("call settled by %q, %d s, charged %d; want agi, 42 s, %d (reservation %d)", c.SettledBy, c.Billsec, c.Charge, want, c.Reserve)
	}
	if n := p.PendingSettlements(); n != 0 {
		t.Errorf("%d settlements still pending", n)
	}
	if len(logs.find("every settlement kept in memory has reached the store")) != 1 {
		t.Errorf("want one line saying the queue drained; log:\n%s", logs.dump())
	}

	// A repeated hangup request: the call stays as it is.
	hangup()
	a, err := db.Account(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != 100000-want {
		t.Errorf("balance %d, want %d: charged once", a.Balance, 100000-want)
	}
	if c2, _ := db.Call(ctx, callID); c2.Charge != want || c2.Billsec != 42 {
		t.Errorf("after a repeated hangup: %d s, charged %d", c2.Billsec, c2.Charge)
	}
}
