package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tollguard/tollguard"
)

// RateImport replaces the rate deck inside one transaction: Add each
// entry, then Commit; any error (or a Rollback) leaves the old deck.
type RateImport struct {
	tx    *sql.Tx
	stmt  *sql.Stmt
	count int
}

// BeginRateImport starts replacing the whole rate deck.
func (s *DB) BeginRateImport(ctx context.Context) (*RateImport, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rates`); err != nil {
		tx.Rollback()
		return nil, err
	}
	// A deck repeating a prefix keeps its last row, as carriers' amendments do.
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO rates(prefix, destination, rate) VALUES (?, ?, ?)
		ON CONFLICT(prefix) DO UPDATE SET destination = excluded.destination, rate = excluded.rate`)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return &RateImport{tx: tx, stmt: stmt}, nil
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

// Commit makes the new deck live.
func (ri *RateImport) Commit() error {
	ri.stmt.Close()
	if err := bumpDestVersion(context.Background(), ri.tx); err != nil {
		ri.tx.Rollback()
		return err
	}
	return ri.tx.Commit()
}

// Rollback keeps the old deck.
func (ri *RateImport) Rollback() error { ri.stmt.Close(); return ri.tx.Rollback() }

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
