package agi

import (
	"context"
	"net/netip"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestTransferredSourceIsMarked: the include sends a transfer by another
// phone's source as xfer/ADDRESS (the transferred phone's own address).
// The gate reads the address under the mark and holds the extension's
// access list against it: not read, the mark made every such call from
// inside the list a deny (no IP address), and the list had nothing to
// hold against one from outside.
func TestTransferredSourceIsMarked(t *testing.T) {
	h := policyServer(t, "GB", []testAccount{{id: "acme", country: "GB", currency: "GBP", ext: "1001"}}, func(db *store.DB) {
		importRate(t, db, "44", "0.01")
		if _, err := db.UpdateExtension(context.Background(), "1001", func(e *tollguard.Extension) error {
			e.CIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
	for _, tt := range []struct{ src, verdict, reason string }{
		{tollguard.TransferSourcePrefix + "127.0.0.1:5072", "allow", string(tollguard.ReasonOK)},
		{tollguard.TransferSourcePrefix + "[2001:db8::7]:5060", "allow", string(tollguard.ReasonOK)},
		{tollguard.TransferSourcePrefix + "203.0.113.9:5060", "deny", string(tollguard.ReasonIPNotAllowed)},
		// A mark on no address is no address: denied, not skipped.
		{tollguard.TransferSourcePrefix + "host.example", "deny", string(tollguard.ReasonIPNotAllowed)},
	} {
		ch := gated("02079460000")
		ch.SetIncludeArgs(tollguard.ScriptOutbound, "02079460000", "1001", tt.src)
		if res := h.run(ch); res.Verdict() != tt.verdict || res.Reason() != tt.reason {
			t.Errorf("source %q: verdict %q reason %q, want %s %s", tt.src, res.Verdict(), res.Reason(), tt.verdict, tt.reason)
		}
	}
	// The log says which calls were transfers, under a stable key.
	for _, e := range append(h.logs.find("call allowed"), h.logs.find("call denied")...) {
		if e.Attrs[tollguard.LogTransferred] != "true" {
			t.Errorf("decision logged without %s=true:\n%s", tollguard.LogTransferred, h.logs.dump())
			break
		}
	}
	if len(h.logs.find("call allowed")) == 0 {
		t.Errorf("no decision logged:\n%s", h.logs.dump())
	}
}
