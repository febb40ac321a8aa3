package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tollguard/tollguard"
)

// RateImport replaces the rate deck: Add stages each entry in a
// temporary table, then Commit copies the staged deck in as a new
// generation and makes it live; any error (or a Rollback) leaves the
// old deck in force.
//
// No step holds SQLite's write lock for long, however big the deck:
// the gate in `tollguard serve` decides calls under a deadline of a few
// hundred milliseconds, and waits for the lock like any writer.
//   - Staging writes only the connection's temp database, which locks
//     nothing in the database file (a carrier deck of 100,000 rows takes
//     over a second to read and stage).
//   - Commit copies the staged rows into the rates table under a new
//     deck id, importChunk rows per transaction. Readers see only the
//     live deck, so a half-copied deck is never seen, and one left by an
//     import that died is deleted later.
//   - One tiny transaction then makes the new deck live (and tells the
//     gate to reload); the old deck is deleted, a chunk per transaction.
type RateImport struct {
	conn     *sql.Conn
	currency string // the deck's, "" if unknown
	stmt     *sql.Stmt
	now      func() time.Time
	count    int
	done     bool
	// unchanged is set by Commit when the staged deck equals the live
	// one, and nothing was written.
	unchanged bool
	// leftover is why deleting replaced decks failed (the import itself
	// succeeded; the next one retries).
	leftover error
	// afterChunk, when set (tests), runs after each committed chunk.
	afterChunk func()
}

// importChunk is how many rows one write transaction of an import
// copies or deletes: a few milliseconds of the write lock. Between
// chunks the import pauses for chunkPause, long enough for writers
// polling for the lock (begin) to take it: the gate's calls first.
const importChunk = 2000

var chunkPause = 2 * time.Millisecond // a variable for a test

// abandonedAfter is how old a deck still staging must be before it is
// taken for the leftover of an import that died, and deleted.
const abandonedAfter = 24 * time.Hour

// liveDeck is the id of the deck in force, as an SQL expression.
const liveDeck = `(SELECT id FROM main.rate_decks WHERE state = 'live')`

// BeginRateImport starts replacing the whole rate deck.
func (s *DB) BeginRateImport(ctx context.Context) (*RateImport, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	ri := &RateImport{conn: conn, now: s.now}
	for _, q := range []string{
		// The same shape and checks as rates, so a bad row fails at Add.
		`CREATE TEMP TABLE IF NOT EXISTS rates_import (
			prefix TEXT PRIMARY KEY, destination TEXT NOT NULL DEFAULT '', rate INTEGER NOT NULL CHECK (rate >= 0),
			bill_first INTEGER NOT NULL CHECK (bill_first BETWEEN 1 AND 3600),
			bill_step INTEGER NOT NULL CHECK (bill_step BETWEEN 1 AND 3600),
			connect_fee INTEGER NOT NULL CHECK (connect_fee >= 0)
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
	ri.stmt, err = conn.PrepareContext(ctx, `INSERT INTO temp.rates_import(`+rateCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT(prefix) DO UPDATE SET destination = excluded.destination, rate = excluded.rate,
			bill_first = excluded.bill_first, bill_step = excluded.bill_step, connect_fee = excluded.connect_fee`)
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
	first, step := e.Billing.StepSeconds()
	if _, err := ri.stmt.ExecContext(ctx, p, e.Destination, e.Rate, first, step, e.Billing.Connect); err != nil {
		return fmt.Errorf("rate +%s: %w", p, err)
	}
	ri.count++
	return nil
}

// SetCurrency records the deck's ISO 4217 currency ("" for unknown).
func (ri *RateImport) SetCurrency(code string) { ri.currency = code }

// Count is how many entries were staged.
func (ri *RateImport) Count() int { return ri.count }

// Unchanged reports whether Commit found the staged deck equal to the
// live one, and so wrote nothing (a nightly import of a deck that did
// not change costs the gate nothing).
func (ri *RateImport) Unchanged() bool { return ri.unchanged }

// Leftover is why Commit could not delete the decks replaced (now or by
// an earlier import), nil when it could: the deck in force is right
// either way, and the next import tries again.
func (ri *RateImport) Leftover() error { return ri.leftover }

// Commit makes the staged deck live, replacing the old one whole. When
// two imports run at once, the one that finishes last is in force.
func (ri *RateImport) Commit() error { return ri.CommitContext(context.Background()) }

// ErrImportInterrupted is CommitContext's error when stop ended before
// the new deck went live: the previous deck is still in force.
var ErrImportInterrupted = errors.New("interrupted before the new deck went live")

// CommitContext is Commit, stopped by stop (Ctrl-C) until the moment the
// new deck goes live: the copy is abandoned between chunks, and the
// previous deck stays in force. Past that moment it runs to the end.
func (ri *RateImport) CommitContext(stop context.Context) error {
	ctx := context.Background()
	if ri.done {
		return errors.New("rate import already finished")
	}
	ri.stmt.Close()
	if _, err := ri.conn.ExecContext(ctx, `COMMIT`); err != nil {
		ri.Rollback()
		return fmt.Errorf("stage rate deck: %w", err)
	}
	same, err := ri.sameAsLive(ctx)
	if err == nil && !same {
		err = ri.swap(ctx, stop)
	}
	if err == nil {
		// Replaced decks, and any an earlier import left behind.
		ri.leftover = dropRateDecks(ctx, ri.conn, ri.now())
	}
	ri.unchanged = same
	ri.finish()
	return err
}

// sameAsLive compares the staged deck with the live one, row for row,
// reading without a lock.
func (ri *RateImport) sameAsLive(ctx context.Context) (bool, error) {
	var differ int
	err := ri.conn.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM main.rate_decks WHERE state = 'live' AND currency = ?)
		OR EXISTS (
			SELECT `+rateCols+` FROM temp.rates_import
			EXCEPT SELECT `+rateCols+` FROM main.rates WHERE deck = `+liveDeck+`)
		OR EXISTS (
			SELECT `+rateCols+` FROM main.rates WHERE deck = `+liveDeck+`
			EXCEPT SELECT `+rateCols+` FROM temp.rates_import)`, ri.currency).Scan(&differ)
	if err != nil {
		return false, fmt.Errorf("compare with the live rate deck: %w", err)
	}
	return differ == 0, nil
}

// swap copies the staged deck in as a new deck, makes it live and
// deletes the old one.
func (ri *RateImport) swap(ctx, stop context.Context) error {
	now := ri.now().Unix()
	var deck int64
	err := runTx(ctx, ri.conn, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO main.rate_decks(state, started_at, currency) VALUES ('staging', ?, ?) RETURNING id`,
			now, ri.currency).Scan(&deck)
	})
	if err != nil {
		return fmt.Errorf("start a new rate deck: %w", err)
	}
	// Copy in prefix order, each chunk after the last one's final prefix.
	var rows int64
	for last := ""; ; {
		var n int64
		err := runTx(ctx, ri.conn, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `INSERT INTO main.rates(deck, `+rateCols+`)
				SELECT ?, `+rateCols+` FROM temp.rates_import WHERE prefix > ? ORDER BY prefix LIMIT ?`,
				deck, last, importChunk)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			return tx.QueryRowContext(ctx, `SELECT prefix FROM main.rates WHERE deck = ? ORDER BY prefix DESC LIMIT 1`, deck).Scan(&last)
		})
		if err != nil {
			ri.abandon(ctx, deck)
			return fmt.Errorf("copy the rate deck in (the previous deck is still in force): %w", err)
		}
		rows += n
		if ri.afterChunk != nil {
			ri.afterChunk()
		}
		if stop.Err() != nil {
			ri.abandon(ctx, deck)
			return ErrImportInterrupted
		}
		if n < importChunk {
			break
		}
		time.Sleep(chunkPause)
	}
	err = runTx(ctx, ri.conn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE main.rate_decks SET state = 'old' WHERE state = 'live'`); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE main.rate_decks SET state = 'live', rows = ?, live_at = ? WHERE id = ? AND state = 'staging'`,
			rows, now, deck)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("rate deck %d was deleted while it was copied in; run the import again", deck)
		}
		return bumpDestVersion(ctx, tx)
	})
	if err != nil {
		ri.abandon(ctx, deck)
		return fmt.Errorf("make the new rate deck live (the previous deck is still in force): %w", err)
	}
	return nil
}

// abandon marks a deck that will not go live as old and deletes it,
// as far as it can: what is left is cleared by the next import.
func (ri *RateImport) abandon(ctx context.Context, deck int64) {
	err := runTx(ctx, ri.conn, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE main.rate_decks SET state = 'old' WHERE id = ? AND state = 'staging'`, deck)
		return err
	})
	if err == nil {
		dropRateDecks(ctx, ri.conn, ri.now())
	}
}

// dropRateDecks deletes replaced decks, and decks an import left
// staging more than abandonedAfter ago, importChunk rows per
// transaction.
func dropRateDecks(ctx context.Context, conn *sql.Conn, now time.Time) error {
	var decks []int64
	rows, err := conn.QueryContext(ctx, `SELECT id FROM main.rate_decks
		WHERE state = 'old' OR (state = 'staging' AND started_at < ?) ORDER BY id`, now.Add(-abandonedAfter).Unix())
	if err != nil {
		return fmt.Errorf("list replaced rate decks: %w", err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		decks = append(decks, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, deck := range decks {
		for {
			var n int64
			err := runTx(ctx, conn, func(tx *sql.Tx) error {
				// The list was read without the lock: check again that
				// the deck is still one to delete (another import may
				// have deleted it, and a new deck reused its id).
				const deletable = `EXISTS (SELECT 1 FROM main.rate_decks WHERE id = ?1
					AND (state = 'old' OR (state = 'staging' AND started_at < ?3)))`
				cutoff := now.Add(-abandonedAfter).Unix()
				res, err := tx.ExecContext(ctx, `DELETE FROM main.rates WHERE deck = ?1 AND `+deletable+`
					AND prefix IN (SELECT prefix FROM main.rates WHERE deck = ?1 ORDER BY prefix LIMIT ?2)`, deck, importChunk, cutoff)
				if err != nil {
					return err
				}
				if n, err = res.RowsAffected(); err != nil || n > 0 {
					return err
				}
				_, err = tx.ExecContext(ctx, `DELETE FROM main.rate_decks WHERE id = ?1 AND `+deletable, deck, importChunk, cutoff)
				return err
			})
			if err != nil {
				return fmt.Errorf("delete rate deck %d: %w", deck, err)
			}
			if n == 0 {
				break
			}
			time.Sleep(chunkPause)
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
	ri.finish() // rolls the staging back
	return nil
}

// finish drops the staged rows and hands the connection back.
func (ri *RateImport) finish() {
	ri.done = true
	// Never hand back a connection inside a transaction; an error here
	// only means none was open.
	ri.conn.ExecContext(context.Background(), `ROLLBACK`)
	ri.conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS temp.rates_import`)
	ri.conn.Close()
}

// LookupRate returns the deck entry with the longest prefix of e164, or nil.
func (s *DB) LookupRate(ctx context.Context, e164 string) (*tollguard.RateEntry, error) {
	return rateLookup(ctx, s.rdb, e164)
}

// DeckCurrency returns the live deck's currency, "" when its import
// did not know it or there is no deck.
func (s *DB) DeckCurrency(ctx context.Context) (string, error) {
	var c string
	err := s.rdb.QueryRowContext(ctx, `SELECT currency FROM rate_decks WHERE state = 'live'`).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return c, err
}

// RateCount returns the number of prefixes in the deck.
func (s *DB) RateCount(ctx context.Context) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM rates WHERE deck = `+liveDeck).Scan(&n)
	return n, err
}

// ReplaceHighRisk replaces the high-risk destination list, all or
// nothing; a prefix listed twice keeps its last entry.
//
// The write lock is held only for the swap: inserting 40,000 entries
// one by one in the write transaction held it over half a second, and
// the gate's decisions waiting for it missed their deadline. The list
// is staged in a temporary table first, which locks nothing in the
// database file, then one short transaction replaces the live rows
// with the staged ones (about 25 ms for 40,000) and tells the gate to
// reload. A replace that fails, is cancelled or dies before that
// transaction commits leaves the old list whole: the staging is the
// connection's own and goes with it, so nothing is left to clear, and
// two replaces at once each swap in their own list whole.
func (s *DB) ReplaceHighRisk(ctx context.Context, entries []tollguard.HighRiskEntry) error {
	// Checked and encoded before the connection is taken: in-process
	// decisions share it.
	rows := make([][3]string, 0, len(entries))
	for _, e := range entries {
		p, err := NormalizePrefix(e.Prefix)
		if err != nil {
			return err
		}
		rows = append(rows, [3]string{p, e.Description, e.Source})
	}
	list, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() {
		conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS temp.high_risk_import`)
		conn.Close()
	}()
	// One statement stages the whole list (row by row from Go cost
	// 70 ms for 40,000), writing only the temp database.
	for _, q := range []string{
		`CREATE TEMP TABLE IF NOT EXISTS high_risk_import (
			prefix TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT ''
		) WITHOUT ROWID`,
		`DELETE FROM temp.high_risk_import`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("stage the high-risk list (the previous list is still in force): %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO temp.high_risk_import(prefix, description, source)
		SELECT value->>0, value->>1, value->>2 FROM json_each(?) WHERE true
		ON CONFLICT(prefix) DO UPDATE SET description = excluded.description, source = excluded.source`, string(list)); err != nil {
		return fmt.Errorf("stage the high-risk list (the previous list is still in force): %w", err)
	}
	if afterHighRiskStage != nil {
		afterHighRiskStage(conn)
	}
	err = runTx(ctx, conn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM main.high_risk`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO main.high_risk(prefix, description, source)
			SELECT prefix, description, source FROM temp.high_risk_import`); err != nil {
			return err
		}
		return bumpDestVersion(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("replace the high-risk list (the previous list is still in force): %w", err)
	}
	return nil
}

// afterHighRiskStage, when set (tests), runs between a replace's
// staging and its swap.
var afterHighRiskStage func(*sql.Conn)

// replaceHighRiskTx replaces the high-risk list in tx, row by row: for
// the seed's short default list, in the transaction that marks it seeded.
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

// rateCols are a rate's columns, in rateDest's order.
const rateCols = `prefix, destination, rate, bill_first, bill_step, connect_fee`

func rateDest(r *tollguard.RateEntry) []any {
	return []any{&r.Prefix, &r.Destination, &r.Rate, &r.Billing.Initial, &r.Billing.Increment, &r.Billing.Connect}
}

func rateLookup(ctx context.Context, q querier, e164 string) (*tollguard.RateEntry, error) {
	ps := prefixes(e164Digits(e164))
	if len(ps) == 0 {
		return nil, nil
	}
	var r tollguard.RateEntry
	err := q.QueryRowContext(ctx, `SELECT `+rateCols+`, d.currency FROM rates JOIN rate_decks d ON d.id = rates.deck
		WHERE d.state = 'live' AND prefix IN (`+placeholders(len(ps))+`) ORDER BY length(prefix) DESC LIMIT 1`, ps...).
		Scan(append(rateDest(&r), &r.Currency)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &r, err
}
