package tollguard_test

import (
	"context"
	"testing"

	"github.com/tollguard/tollguard"
)

// The ledger holds payments; what calls were charged between them is
// told beside each, so its "balance after" adds up.
func TestLedgerShowsCallChargesBetweenEntries(t *testing.T) {
	f := newFixture(t) // balance 10.00
	ctx := context.Background()
	charge := func(billsec int64) {
		t.Helper()
		d := f.want(tollguard.Call{Dialled: "07400123456"}, tollguard.Allow, tollguard.ReasonOK) // 0.10/min
		if _, err := f.p.Settle(ctx, tollguard.Settlement{CallID: d.CallID, Billsec: billsec, DialStatus: "ANSWER", By: "agi"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.db.AddCredit(ctx, "acme", 500, "invoice 1", "admin"); err != nil {
		t.Fatal(err)
	}
	charge(61) // 11p
	charge(60) // 10p
	if _, err := f.db.AddCredit(ctx, "acme", -100, "refund", "admin"); err != nil {
		t.Fatal(err)
	}
	charge(120) // 20p
	l, err := f.db.Ledger(ctx, "acme", 10)
	if err != nil || len(l) != 2 {
		t.Fatalf("ledger %+v %v", l, err)
	}
	if l[0].Amount != -100 || l[0].BalanceAfter != 1500-21-100 || l[0].CallsAfter != 20 {
		t.Fatalf("newest entry %+v, want 20 charged to calls after it", l[0])
	}
	if l[1].Amount != 500 || l[1].BalanceAfter != 1500 || l[1].CallsAfter != 21 {
		t.Fatalf("older entry %+v, want 21 charged to calls after it", l[1])
	}
	if cr, _ := f.db.CreditOf(ctx, "acme"); cr.Balance != l[0].BalanceAfter-l[0].CallsAfter {
		t.Fatalf("balance %d, ledger says %d", cr.Balance, l[0].BalanceAfter-l[0].CallsAfter)
	}
}
