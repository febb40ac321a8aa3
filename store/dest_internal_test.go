package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// importBefore runs hook once, just before the snapshot reads the rates.
type importBefore struct {
	querier
	hook func()
}

func (m *importBefore) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if m.hook != nil && strings.Contains(q, "FROM rates") {
		h := m.hook
		m.hook = nil
		h()
	}
	return m.querier.QueryContext(ctx, q, args...)
}

// TestSnapshotPairsRatesWithTheirCurrency: an import going live while
// the gate reloads its snapshot must not leave the new deck's rates
// with the old deck's currency (a USD deck's figures pricing a JPY
// account as yen).
func TestSnapshotPairsRatesWithTheirCurrency(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deck := func(rate tollguard.Rate, currency string) {
		imp, err := db.BeginRateImport(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := imp.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: rate}); err != nil {
			t.Fatal(err)
		}
		imp.SetCurrency(currency)
		if err := imp.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	deck(2_000000, "JPY")
	snap, err := loadDest(ctx, &importBefore{querier: db.rdb, hook: func() { deck(20000, "USD") }})
	if err != nil {
		t.Fatal(err)
	}
	if e := snap.rates["44"]; (e.Rate == 20000) != (e.Currency == "USD") {
		t.Errorf("the snapshot pairs rate %s with currency %q", e.Rate, e.Currency)
	}
}
