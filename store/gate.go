package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

var _ tollguard.GateStore = (*DB)(nil)

// gateTx is one decision's IMMEDIATE transaction.
type gateTx struct {
	tx *sql.Tx
}

// BeginGate starts a decision's transaction.
func (s *DB) BeginGate(ctx context.Context) (tollguard.GateTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &gateTx{tx: tx}, nil
}

func (g *gateTx) Commit() error   { return g.tx.Commit() }
func (g *gateTx) Rollback() error { return g.tx.Rollback() }

func (g *gateTx) Extension(ctx context.Context, name string) (*tollguard.Extension, error) {
	e, err := scanExtension(g.tx.QueryRowContext(ctx, `SELECT `+extensionCols+` FROM extensions WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return e, err
}

func (g *gateTx) Account(ctx context.Context, id string) (*tollguard.Account, error) {
	return accountTx(ctx, g.tx, id)
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
	ps := prefixes(e164Digits(e164))
	if len(ps) == 0 {
		return nil, nil, nil
	}
	args := append([]any{account}, ps...)
	rows, err := g.tx.QueryContext(ctx, `SELECT id, account_id, prefix, action, note FROM rules
		WHERE account_id IN ('', ?) AND prefix IN (`+placeholders(len(ps))+`)`, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r tollguard.Rule
		if err := rows.Scan(&r.ID, &r.Account, &r.Prefix, &r.Action, &r.Note); err != nil {
			return nil, nil, err
		}
		r.Prefix = "+" + r.Prefix
		switch r.Action {
		case tollguard.RuleAllow:
			if allow == nil || len(r.Prefix) > len(allow.Prefix) {
				allow = &r
			}
		case tollguard.RuleDeny:
			if deny == nil || len(r.Prefix) > len(deny.Prefix) {
				deny = &r
			}
		}
	}
	return allow, deny, rows.Err()
}

func (g *gateTx) HighRisk(ctx context.Context, e164 string) (*tollguard.HighRiskEntry, error) {
	ps := prefixes(e164Digits(e164))
	if len(ps) == 0 {
		return nil, nil
	}
	var h tollguard.HighRiskEntry
	err := g.tx.QueryRowContext(ctx, `SELECT prefix, description, source FROM high_risk
		WHERE prefix IN (`+placeholders(len(ps))+`) ORDER BY length(prefix) DESC LIMIT 1`, ps...).
		Scan(&h.Prefix, &h.Description, &h.Source)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &h, err
}

func (g *gateTx) Rate(ctx context.Context, e164 string) (*tollguard.RateEntry, error) {
	return rateLookup(ctx, g.tx, e164)
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

func (g *gateTx) CountAttempts(ctx context.Context, scope, id string, since time.Time, max int) (int, error) {
	var q string
	switch scope {
	case "ext":
		q = `SELECT COUNT(*) FROM (SELECT 1 FROM calls WHERE extension = ? AND created_at >= ? LIMIT ?)`
	case "acct":
		q = `SELECT COUNT(*) FROM (SELECT 1 FROM calls WHERE account_id = ? AND created_at >= ? LIMIT ?)`
	default:
		return 0, fmt.Errorf("count attempts: unknown scope %q", scope)
	}
	var n int
	err := g.tx.QueryRowContext(ctx, q, id, since.Unix(), max+1).Scan(&n)
	return n, err
}

func (g *gateTx) OpenCalls(ctx context.Context, account, extension string) (acct, ext int, reserved tollguard.Amount, err error) {
	err = g.tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(extension = ?), 0), COALESCE(SUM(reserve), 0)
		FROM calls WHERE account_id = ? AND verdict = 'allow' AND settled_at IS NULL`, extension, account).
		Scan(&acct, &ext, &reserved)
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
	res, err := g.tx.ExecContext(ctx, callInsert, r.CreatedAt.Unix(), r.Extension, r.Account, r.Dialled,
		r.E164, string(r.Class), r.Country, r.Remote, r.Channel, r.UniqueID, r.LinkedID,
		string(r.Verdict), string(r.Reason), r.Cause, r.Rate, r.Reserve, r.MaxSec, r.Scale, string(steps))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}
