package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tollguard/tollguard"
)

// RateImport replaces the rate deck: Add stages each entry in a
// temporary table, then Commit swaps the staged deck in; any error (or
// a Rollback) leaves the old deck.
//
// Staging writes only the connection's temp database, so it takes no
// lock on the database file however long the deck: a carrier deck of
// 100,000 rows takes over a second to read and stage, and the gate in
// `tollguard serve` must not wait for it (its decisions have a deadline
// of a few hundred milliseconds). The swap is one short IMMEDIATE
// transaction, copying the staged rows inside SQLite.
type RateImport struct {
	conn  *sql.Conn
	stmt  *sql.Stmt
	count int
	done  bool
}

// BeginRateImport starts replacing the whole rate deck.
func (s *DB) BeginRateImport(ctx context.Context) (*RateImport, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	ri := &RateImport{conn: conn}
	for _, q := range []string{
		// The same shape and checks as rates, so a bad row fails at Add.
		`CREATE TEMP TABLE IF NOT EXISTS rates_import (
			prefix TEXT PRIMARY KEY, destination TEXT NOT NULL DEFAULT '', rate INTEGER NOT NULL CHECK (rate >= 0)
		) WITHOUT ROWID`,
		`DELETE FROM temp.rates_import`,
		// DEFERRED (not the DSN's IMMEDIATE): a transaction that
		// writes only temp tables locks nothing in the database file.
		`BEGIN DEFERRED`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			ri.Rollback()
			return nil, fmt.Errorf("stage rate deck: %w", err)
		}
	}
	// A deck repeating a prefix keeps its last row, as carriers' amendments do.
	ri.stmt, err = conn.PrepareContext(ctx, `INSERT INTO temp.rates_import(prefix, destination, rate) VALUES (?, ?, ?)
		ON CONFLICT(prefix) DO UPDATE SET destination = excluded.destination, rate = excluded.rate`)
	if err != nil {
		ri.Rollback()
		return nil, err
	}
	return ri, nil
}

// Add stages one entry.
func (ri *RateImport) Add(ctx context.Context, e tollguard.RateEntry) error {
	p, err := NormalizePrefix(e.Prefix)
	if err != nil {
		return err
	}
	if _, err := ri.stmt.ExecContext(ctx, p, e.Destination, e.Rate); err != nil {
		return fmt.Errorf("rate +%s: %w", p, err)
	}
	ri.count++
	return nil
}

// Count is how many entries were staged.
func (ri *RateImport) Count() int { return ri.count }

// Commit makes the new deck live. What changed is worked out first,
// reading the live deck without a lock; the write transaction then
// applies only that (a month's new deck mostly repeats the last one),
// unless something changed the deck meanwhile, when it works it out
// again inside the transaction.
func (ri *RateImport) Commit() error {
	ctx := context.Background()
	if ri.done {
		return errors.New("rate import already finished")
	}
	ri.stmt.Close()
	if _, err := ri.conn.ExecContext(ctx, `COMMIT`); err != nil {
		ri.Rollback()
		return fmt.Errorf("stage rate deck: %w", err)
	}
	err := func() error {
		// A DEFERRED transaction that reads the database and writes
		// only temp tables takes no write lock.
		if _, err := ri.conn.ExecContext(ctx, `BEGIN DEFERRED`); err != nil {
			return err
		}
		seen, err := destVersion(ctx, ri.conn)
		if err == nil {
			err = diffRates(ctx, ri.conn)
		}
		if err != nil {
			ri.conn.ExecContext(ctx, `ROLLBACK`)
			return err
		}
		if _, err := ri.conn.ExecContext(ctx, `COMMIT`); err != nil {
			return err
		}

		tx, err := ri.conn.BeginTx(ctx, nil) // IMMEDIATE, from the DSN
		if err != nil {
			return err
		}
		defer tx.Rollback()
		now, err := destVersion(ctx, tx)
		if err != nil {
			return err
		}
		if now != seen {
			if err := diffRates(ctx, tx); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM main.rates WHERE prefix IN (SELECT prefix FROM temp.rates_gone)`)
		if err != nil {
			return err
		}
		gone, _ := res.RowsAffected()
		res, err = tx.ExecContext(ctx, `INSERT INTO main.rates(prefix, destination, rate)
			SELECT prefix, destination, rate FROM temp.rates_changed WHERE true
			ON CONFLICT(prefix) DO UPDATE SET destination = excluded.destination, rate = excluded.rate`)
		if err != nil {
			return err
		}
		changed, _ := res.RowsAffected()
		if gone+changed > 0 {
			if err := bumpDestVersion(ctx, tx); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	ri.finish()
	return err
}

// destVersion reads the destination data's version ("0" if never set).
func destVersion(ctx context.Context, q querier) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM main.settings WHERE key = 'dest_version'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "0", nil
	}
	return v, err
}

// diffRates compares the staged deck with the live one into
// temp.rates_gone (prefixes to drop) and temp.rates_changed (rows new
// or different).
func diffRates(ctx context.Context, q querier) error {
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS temp.rates_gone`,
		`DROP TABLE IF EXISTS temp.rates_changed`,
		`CREATE TEMP TABLE rates_gone AS SELECT prefix FROM main.rates
			WHERE prefix NOT IN (SELECT prefix FROM temp.rates_import)`,
		`CREATE TEMP TABLE rates_changed AS SELECT i.prefix, i.destination, i.rate
			FROM temp.rates_import i LEFT JOIN main.rates r ON r.prefix = i.prefix
			WHERE r.prefix IS NULL OR r.destination IS NOT i.destination OR r.rate IS NOT i.rate`,
	} {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("compare rate decks: %w", err)
		}
	}
	return nil
}

// Rollback keeps the old deck.
func (ri *RateImport) Rollback() error {
	if ri.done {
		return nil
	}
	if ri.stmt != nil {
		ri.stmt.Close()
	}
	// An error here only means no staging transaction was open.
	ri.conn.ExecContext(context.Background(), `ROLLBACK`)
	ri.finish()
	return nil
}

// finish drops the staged rows and hands the connection back.
func (ri *RateImport) finish() {
	ri.done = true
	// Never hand back a connection inside a transaction; an error here
	// only means none was open.
	ri.conn.ExecContext(context.Background(), `ROLLBACK`)
	for _, t := range []string{"rates_import", "rates_gone", "rates_changed"} {
		ri.conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS temp.`+t)
	}
	ri.conn.Close()
}

// LookupRate returns the deck entry with the longest prefix of e164, or nil.
func (s *DB) LookupRate(ctx context.Context, e164 string) (*tollguard.RateEntry, error) {
	return rateLookup(ctx, s.rdb, e164)
}

// RateCount returns the number of prefixes in the deck.
func (s *DB) RateCount(ctx context.Context) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM rates`).Scan(&n)
	return n, err
}

// ReplaceHighRisk replaces the high-risk destination list.
func (s *DB) ReplaceHighRisk(ctx context.Context, entries []tollguard.HighRiskEntry) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return replaceHighRiskTx(ctx, tx, entries) })
}

func replaceHighRiskTx(ctx context.Context, tx *sql.Tx, entries []tollguard.HighRiskEntry) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM high_risk`); err != nil {
		return err
	}
	if err := bumpDestVersion(ctx, tx); err != nil {
		return err
	}
	for _, e := range entries {
		p, err := NormalizePrefix(e.Prefix)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO high_risk(prefix, description, source) VALUES (?, ?, ?)
			ON CONFLICT(prefix) DO UPDATE SET description = excluded.description, source = excluded.source`,
			p, e.Description, e.Source); err != nil {
			return err
		}
	}
	return nil
}

// HighRiskList returns the high-risk destination list.
func (s *DB) HighRiskList(ctx context.Context) ([]tollguard.HighRiskEntry, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT prefix, description, source FROM high_risk ORDER BY prefix`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tollguard.HighRiskEntry
	for rows.Next() {
		var e tollguard.HighRiskEntry
		if err := rows.Scan(&e.Prefix, &e.Description, &e.Source); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func rateLookup(ctx context.Context, q querier, e164 string) (*tollguard.RateEntry, error) {
	ps := prefixes(e164Digits(e164))
	if len(ps) == 0 {
		return nil, nil
	}
	var r tollguard.RateEntry
	err := q.QueryRowContext(ctx, `SELECT prefix, destination, rate FROM rates
		WHERE prefix IN (`+placeholders(len(ps))+`) ORDER BY length(prefix) DESC LIMIT 1`, ps...).
		Scan(&r.Prefix, &r.Destination, &r.Rate)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &r, err
}
