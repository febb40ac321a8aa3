// Package storetest has helpers for tests and benchmarks that need a
// populated database.
package storetest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// Population is the benchmark database's shape (issue 2): 100 accounts,
// 10,000 extensions, a 50,000-prefix rate deck, and optionally a call
// history.
type Population struct {
	Accounts   int
	Extensions int
	Rates      int
	History    int // past call rows
}

// Populate fills db. Extensions are named 1000..; extension i belongs to
// account acct<i % Accounts> (AccountOf). Each account has a large balance, limits
// set (so the gate counts attempts), and the default ceilings.
func Populate(ctx context.Context, db *store.DB, p Population, now time.Time) error {
	for i := range p.Accounts {
		a, err := store.NewAccount(fmt.Sprintf("acct%d", i), "GB", "GBP")
		if err != nil {
			return err
		}
		a.Balance = 100_000_000
		a.Zone = "Europe/London"
		a.HoursSpec = "daily 00:00-24:00"
		a.Limits = tollguard.Limits{ExtPerMinute: 1000, ExtPerHour: 10000, ExtPerDay: 100000,
			AcctPerMinute: 100000, AcctPerHour: 1000000, AcctPerDay: 10000000, ExtConcurrent: 1000, AcctConcurrent: 100000}
		if err := db.CreateAccount(ctx, a); err != nil {
			return err
		}
	}
	sqldb := db.SQL()
	// Bulk rows are generated inside SQLite: a Go loop over 10 million
	// inserts would take minutes.
	if _, err := sqldb.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?)
		INSERT INTO extensions(name, account_id, created_at) SELECT 1000+i, 'acct' || (i % ?), ? FROM n`,
		p.Extensions, p.Accounts, now.Unix()); err != nil {
		return fmt.Errorf("extensions: %w", err)
	}
	// 50,000 prefixes: +44 national ranges first (so a GB call matches a
	// long prefix), then the rest of the world.
	if _, err := sqldb.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?)
		INSERT OR IGNORE INTO rates(deck, prefix, destination, rate)
		SELECT (SELECT id FROM rate_decks WHERE state = 'live'), CASE WHEN i < 20000 THEN '44' || (1000 + i) ELSE (200 + (i - 20000) % 700) || ((i - 20000) / 700) END,
		       'dest ' || i, 1000 + (i % 19000) FROM n`, p.Rates); err != nil {
		return fmt.Errorf("rates: %w", err)
	}
	if p.History > 0 {
		// Spread over the retention window, all settled.
		span := int64(80 * 24 * 3600)
		if _, err := sqldb.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?)
			INSERT INTO calls(created_at, extension, account_id, dialled, e164, class, verdict, reason, rate, reserve, maxsec, scale,
				settled_at, settled_by, billsec, charge)
			SELECT ? - (i * ?) / ?, 1000 + (i % ?), 'acct' || ((i % ?) % ?), '02079460000', '+442079460000', 'national',
				'allow', 'ok', 10000, 100, 600, 2, ? - (i * ?) / ?, 'agi', 60, 1 FROM n`,
			p.History, now.Add(-time.Hour).Unix(), span, p.History, p.Extensions, p.Extensions, p.Accounts,
			now.Add(-time.Hour).Unix(), span, p.History); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	_, err := sqldb.ExecContext(ctx, `ANALYZE`)
	return err
}

// AccountOf is the account Populate gives extension ext (1000 + i), ""
// for a name it did not create.
func (p Population) AccountOf(ext string) string {
	n, err := strconv.Atoi(ext)
	if err != nil || n < 1000 || n >= 1000+p.Extensions || p.Accounts <= 0 {
		return ""
	}
	return fmt.Sprintf("acct%d", (n-1000)%p.Accounts)
}
