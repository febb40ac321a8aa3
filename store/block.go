package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tollguard/tollguard"
)

// Block blocks an extension (kind BlockExtension, subject its name) or
// an account's international calls (kind BlockIntl, subject its id), and
// records who, why and the evidence. Blocking a blocked subject adds a
// history row and keeps the first reason visible on the subject.
func (s *DB) Block(ctx context.Context, b tollguard.Block) (tollguard.Block, error) {
	if b.SetAt.IsZero() {
		b.SetAt = s.now()
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error { return s.blockTx(ctx, tx, &b) })
	return b, err
}

func (s *DB) blockTx(ctx context.Context, tx *sql.Tx, b *tollguard.Block) error {
	var res sql.Result
	var err error
	switch b.Kind {
	case tollguard.BlockExtension:
		res, err = tx.ExecContext(ctx, `UPDATE extensions SET blocked = 1,
			block_reason = CASE WHEN blocked = 1 THEN block_reason ELSE ? END,
			blocked_by = CASE WHEN blocked = 1 THEN blocked_by ELSE ? END,
			blocked_at = CASE WHEN blocked = 1 THEN blocked_at ELSE ? END
			WHERE name = ?`, b.Reason, b.SetBy, b.SetAt.Unix(), b.Subject)
	case tollguard.BlockIntl:
		res, err = tx.ExecContext(ctx, `UPDATE accounts SET intl_block = 1,
			intl_block_reason = CASE WHEN intl_block = 1 THEN intl_block_reason ELSE ? END, updated_at = ?
			WHERE id = ?`, b.Reason, b.SetAt.Unix(), b.Subject)
	default:
		return tollguard.Errorf(tollguard.EINVALID, "block kind %q: want extension or intl", b.Kind)
	}
	if err != nil {
		return fmt.Errorf("block %s %s: %w", b.Kind, b.Subject, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return tollguard.Errorf(tollguard.ENOTFOUND, "%s %q not found", kindNoun(b.Kind), b.Subject)
	}
	r, err := tx.ExecContext(ctx, `INSERT INTO blocks(kind, subject, set_by, reason, evidence, set_at) VALUES (?, ?, ?, ?, ?, ?)`,
		b.Kind, b.Subject, b.SetBy, b.Reason, b.Evidence, b.SetAt.Unix())
	if err != nil {
		return err
	}
	b.ID, _ = r.LastInsertId()
	return nil
}

func kindNoun(kind string) string {
	if kind == tollguard.BlockIntl {
		return "account"
	}
	return "extension"
}

// Unblock lifts a block and stamps every open history row for the
// subject as cleared by `by`. It reports whether anything was blocked.
func (s *DB) Unblock(ctx context.Context, kind, subject, by string) (bool, error) {
	was := false
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		now := s.now().Unix()
		switch kind {
		case tollguard.BlockExtension:
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM extensions WHERE name = ?`, subject).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found", subject)
			}
			res, err = tx.ExecContext(ctx, `UPDATE extensions SET blocked = 0, block_reason = '', blocked_by = '', blocked_at = 0
				WHERE name = ? AND blocked = 1`, subject)
		case tollguard.BlockIntl:
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE id = ?`, subject).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				return accountNotFound(ctx, tx, subject)
			}
			res, err = tx.ExecContext(ctx, `UPDATE accounts SET intl_block = 0, intl_block_reason = '', updated_at = ?
				WHERE id = ? AND intl_block = 1`, now, subject)
		default:
			return tollguard.Errorf(tollguard.EINVALID, "block kind %q: want extension or intl", kind)
		}
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		was = n > 0
		_, err = tx.ExecContext(ctx, `UPDATE blocks SET cleared_by = ?, cleared_at = ? WHERE kind = ? AND subject = ? AND cleared_at = 0`,
			by, now, kind, subject)
		return err
	})
	return was, err
}

// Blocks lists the block history of a subject (or all, with subject "").
func (s *DB) Blocks(ctx context.Context, kind, subject string, since time.Time) ([]tollguard.Block, error) {
	q := `SELECT id, kind, subject, set_by, reason, evidence, set_at, cleared_by, cleared_at FROM blocks WHERE set_at >= ?`
	args := []any{unix(since)}
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, kind)
	}
	if subject != "" {
		q += ` AND subject = ?`
		args = append(args, subject)
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tollguard.Block
	for rows.Next() {
		var b tollguard.Block
		var set, cleared int64
		if err := rows.Scan(&b.ID, &b.Kind, &b.Subject, &b.SetBy, &b.Reason, &b.Evidence, &set, &b.ClearedBy, &cleared); err != nil {
			return nil, err
		}
		b.SetAt, b.ClearedAt = fromUnix(set), fromUnix(cleared)
		out = append(out, b)
	}
	return out, rows.Err()
}
