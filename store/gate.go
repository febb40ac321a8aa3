package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tollguard/tollguard"
)

var _ tollguard.GateStore = (*DB)(nil)

// gateTx is one decision's IMMEDIATE transaction.
type gateTx struct {
	tx   *sql.Tx
	st   *gateStmts
	dest *destSnapshot
}

// destSnapshot is the rate deck, the high-risk list and the prefix
// rules, loaded into memory: a decision matches its number against
// them with map probes instead of three SQL queries. Writes to any of
// them bump the dest_version setting in the same transaction, and the
// next decision reloads.
type destSnapshot struct {
	version  string
	rates    map[string]tollguard.RateEntry
	highRisk map[string]tollguard.HighRiskEntry
	rules    map[string][]tollguard.Rule // by prefix digits
}

// destCache holds the current snapshot. Decisions run one at a time on
// the single writer connection, but `tollguard check` and tests may
// share the DB, so it is guarded.
type destCache struct {
	mu   sync.Mutex
	snap *destSnapshot
}

// bumpDestVersion marks rates, high-risk or rules as changed; call it
// inside the writing transaction.
func bumpDestVersion(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES ('dest_version', '1')
		ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)`)
	return err
}

// snapshot returns the destination data as of tx, reloading it when its
// version changed.
func (s *DB) snapshot(ctx context.Context, tx *sql.Tx) (*destSnapshot, error) {
	var version string
	err := tx.StmtContext(ctx, s.gate.destVersion).QueryRowContext(ctx).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		version, err = "0", nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dest_version: %w", err)
	}
	s.dest.mu.Lock()
	defer s.dest.mu.Unlock()
	if s.dest.snap != nil && s.dest.snap.version == version {
		return s.dest.snap, nil
	}
	snap, err := loadDest(ctx, tx, version)
	if err != nil {
		return nil, err
	}
	s.dest.snap = snap
	return snap, nil
}

func loadDest(ctx context.Context, tx *sql.Tx, version string) (*destSnapshot, error) {
	d := &destSnapshot{version: version, rates: map[string]tollguard.RateEntry{},
		highRisk: map[string]tollguard.HighRiskEntry{}, rules: map[string][]tollguard.Rule{}}
	rows, err := tx.QueryContext(ctx, `SELECT prefix, destination, rate FROM rates`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r tollguard.RateEntry
		if err := rows.Scan(&r.Prefix, &r.Destination, &r.Rate); err != nil {
			rows.Close()
			return nil, err
		}
		d.rates[r.Prefix] = r
	}
	rows.Close()
	if rows, err = tx.QueryContext(ctx, `SELECT prefix, description, source FROM high_risk`); err != nil {
		return nil, err
	}
	for rows.Next() {
		var h tollguard.HighRiskEntry
		if err := rows.Scan(&h.Prefix, &h.Description, &h.Source); err != nil {
			rows.Close()
			return nil, err
		}
		d.highRisk[h.Prefix] = h
	}
	rows.Close()
	if rows, err = tx.QueryContext(ctx, `SELECT id, account_id, prefix, action, note FROM rules`); err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r tollguard.Rule
		if err := rows.Scan(&r.ID, &r.Account, &r.Prefix, &r.Action, &r.Note); err != nil {
			return nil, err
		}
		d.rules[r.Prefix] = append(d.rules[r.Prefix], r)
	}
	return d, rows.Err()
}

// maxPrefixes is the most prefixes a longest-prefix match tries: an
// E.164 number has at most 15 digits.
const maxPrefixes = 15

// gateStmts are the decision's queries, prepared once: preparing them
// per call cost more than running them.
type gateStmts struct {
	extension, account, destVersion, countExt, countAcct, open, insert *sql.Stmt
}

func prepareGate(ctx context.Context, db *sql.DB) (*gateStmts, error) {
	var st gateStmts
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.extension, `SELECT ` + extensionCols + ` FROM extensions WHERE name = ?`},
		{&st.account, `SELECT ` + accountCols + ` FROM accounts WHERE id = ?`},
		{&st.destVersion, `SELECT value FROM settings WHERE key = 'dest_version'`},
		{&st.countExt, attemptsQuery("extension", "calls_ext_time")},
		{&st.countAcct, attemptsQuery("account_id", "calls_acct_time")},
		{&st.open, `SELECT COUNT(*), COALESCE(SUM(extension = ?), 0), COALESCE(SUM(reserve), 0)
			FROM calls WHERE account_id = ? AND verdict = 'allow' AND settled_at IS NULL`},
		{&st.insert, callInsert},
	} {
		stmt, err := db.PrepareContext(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", q.sql, err)
		}
		*q.dst = stmt
	}
	return &st, nil
}

// attemptsQuery counts the newest rows of one extension or account over
// the last day, and how many of them fall in the last hour and minute.
// INDEXED BY pins the (col, created_at) index: ordered by created_at,
// the planner may otherwise walk every call of the day.
func attemptsQuery(col, index string) string {
	return `SELECT COALESCE(SUM(created_at >= ?), 0), COALESCE(SUM(created_at >= ?), 0), COUNT(*) FROM
		(SELECT created_at FROM calls INDEXED BY ` + index + ` WHERE ` + col + ` = ? AND created_at >= ? ORDER BY created_at DESC LIMIT ?)`
}

// BeginGate starts a decision's transaction.
func (s *DB) BeginGate(ctx context.Context) (tollguard.GateTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	snap, err := s.snapshot(ctx, tx)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return &gateTx{tx: tx, st: s.gate, dest: snap}, nil
}

// stmt binds a prepared statement to the transaction's connection
// (database/sql reuses the connection's prepared copy).
func (g *gateTx) stmt(ctx context.Context, s *sql.Stmt) *sql.Stmt { return g.tx.StmtContext(ctx, s) }

// longest calls fn with each leading substring of e164's digits,
// longest first, until fn returns true.
func longest(e164 string, fn func(prefix string) bool) {
	d := e164Digits(e164)
	for i := min(len(d), maxPrefixes); i >= 1; i-- {
		if fn(d[:i]) {
			return
		}
	}
}

func (g *gateTx) Commit() error   { return g.tx.Commit() }
func (g *gateTx) Rollback() error { return g.tx.Rollback() }

func (g *gateTx) Extension(ctx context.Context, name string) (*tollguard.Extension, error) {
	e, err := scanExtension(g.stmt(ctx, g.st.extension).QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return e, err
}

func (g *gateTx) Account(ctx context.Context, id string) (*tollguard.Account, error) {
	a, err := scanAccount(g.stmt(ctx, g.st.account).QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return a, err
}

// prefixes returns every leading substring of digits, longest first:
// the candidates for a longest-prefix match through the primary key.
func prefixes(digits string) []any {
	out := make([]any, 0, len(digits))
	for i := len(digits); i >= 1; i-- {
		out = append(out, digits[:i])
	}
	return out
}

func e164Digits(e164 string) string { return strings.TrimPrefix(e164, "+") }

func (g *gateTx) MatchRules(ctx context.Context, account, e164 string) (allow, deny *tollguard.Rule, err error) {
	longest(e164, func(p string) bool {
		for _, r := range g.dest.rules[p] {
			if r.Account != "" && r.Account != account {
				continue
			}
			r.Prefix = "+" + r.Prefix
			switch {
			case r.Action == tollguard.RuleAllow && allow == nil:
				allow = &r
			case r.Action == tollguard.RuleDeny && deny == nil:
				deny = &r
			}
		}
		return allow != nil && deny != nil
	})
	return allow, deny, nil
}

func (g *gateTx) HighRisk(ctx context.Context, e164 string) (h *tollguard.HighRiskEntry, err error) {
	longest(e164, func(p string) bool {
		if e, ok := g.dest.highRisk[p]; ok {
			h = &e
		}
		return h != nil
	})
	return h, nil
}

func (g *gateTx) Rate(ctx context.Context, e164 string) (r *tollguard.RateEntry, err error) {
	longest(e164, func(p string) bool {
		if e, ok := g.dest.rates[p]; ok {
			r = &e
		}
		return r != nil
	})
	return r, nil
}

func (g *gateTx) Attempts(ctx context.Context, scope, id string, now time.Time, max int) (minute, hour, day int, err error) {
	var q *sql.Stmt
	switch scope {
	case "ext":
		q = g.st.countExt
	case "acct":
		q = g.st.countAcct
	default:
		return 0, 0, 0, fmt.Errorf("count attempts: unknown scope %q", scope)
	}
	t := now.Unix()
	err = g.stmt(ctx, q).QueryRowContext(ctx, t-60, t-3600, id, t-86400, max).Scan(&minute, &hour, &day)
	return
}

func (g *gateTx) OpenCalls(ctx context.Context, account, extension string) (acct, ext int, reserved tollguard.Amount, err error) {
	err = g.stmt(ctx, g.st.open).QueryRowContext(ctx, extension, account).Scan(&acct, &ext, &reserved)
	return
}

const callInsert = `INSERT INTO calls(created_at, extension, account_id, dialled, e164, class, region, remote,
	channel, uniqueid, linkedid, verdict, reason, cause, rate, reserve, maxsec, scale, steps)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (g *gateTx) InsertCall(ctx context.Context, r *tollguard.CallRecord) (int64, error) {
	steps, err := json.Marshal(r.Steps)
	if err != nil {
		return 0, err
	}
	res, err := g.stmt(ctx, g.st.insert).ExecContext(ctx, r.CreatedAt.Unix(), r.Extension, r.Account, r.Dialled,
		r.E164, string(r.Class), r.Country, r.Remote, r.Channel, r.UniqueID, r.LinkedID,
		string(r.Verdict), string(r.Reason), r.Cause, r.Rate, r.Reserve, r.MaxSec, r.Scale, string(steps))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}
