package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/tollguard/tollguard"
)

// NormalizePrefix turns "+44 9", "44-9" style input into E.164 digits
// without the "+", or returns an EINVALID error.
func NormalizePrefix(p string) (string, error) {
	t := strings.NewReplacer(" ", "", "-", "", "(", "", ")", "").Replace(strings.TrimSpace(p))
	t = strings.TrimPrefix(t, "+")
	if t == "" {
		return "", tollguard.Errorf(tollguard.EINVALID, "prefix %q is empty; give E.164 digits such as +44 or +8816", p)
	}
	for _, c := range t {
		if c < '0' || c > '9' {
			return "", tollguard.Errorf(tollguard.EINVALID, "prefix %q: only digits after the '+' (E.164, e.g. +4420)", p)
		}
	}
	if len(t) > 15 {
		return "", tollguard.Errorf(tollguard.EINVALID, "prefix %q is longer than an E.164 number", p)
	}
	// No E.164 number starts with 0: "00881" would be stored as +00881
	// and never match, a deny rule that blocks nothing.
	if t[0] == '0' {
		return "", tollguard.Errorf(tollguard.EINVALID, "prefix %q starts with 0: write it in E.164 form, without an international or national prefix (+881, not 00881; +4420, not 020)", p)
	}
	return t, nil
}

// AddRule adds an allow or deny prefix rule (account "" = global).
func (s *DB) AddRule(ctx context.Context, r *tollguard.Rule) error {
	prefix, err := NormalizePrefix(r.Prefix)
	if err != nil {
		return err
	}
	if r.Action != tollguard.RuleAllow && r.Action != tollguard.RuleDeny {
		return tollguard.Errorf(tollguard.EINVALID, "rule action %q: want allow or deny", r.Action)
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if r.Account != "" {
			if a, err := accountTx(ctx, tx, r.Account); err != nil {
				return err
			} else if a == nil {
				return accountNotFound(ctx, tx, r.Account)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO rules(account_id, prefix, action, note, created_at) VALUES (?, ?, ?, ?, ?)`,
			r.Account, prefix, string(r.Action), r.Note, s.now().Unix())
		if isConstraint(err) {
			return tollguard.Errorf(tollguard.ECONFLICT, "%s rule +%s already exists for %s", r.Action, prefix, scopeName(r.Account))
		}
		if err != nil {
			return err
		}
		r.ID, _ = res.LastInsertId()
		r.Prefix = "+" + prefix
		return bumpDestVersion(ctx, tx)
	})
}

func scopeName(account string) string {
	if account == "" {
		return "all accounts"
	}
	return "account " + account
}

// Rules lists rules; account "" lists all of them.
func (s *DB) Rules(ctx context.Context, account string) ([]*tollguard.Rule, error) {
	q := `SELECT id, account_id, prefix, action, note FROM rules`
	var args []any
	if account != "" {
		q += ` WHERE account_id IN ('', ?)`
		args = append(args, account)
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY account_id, prefix`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tollguard.Rule
	for rows.Next() {
		var r tollguard.Rule
		if err := rows.Scan(&r.ID, &r.Account, &r.Prefix, &r.Action, &r.Note); err != nil {
			return nil, err
		}
		r.Prefix = "+" + r.Prefix
		out = append(out, &r)
	}
	return out, rows.Err()
}

// RemoveRule deletes rule id.
func (s *DB) RemoveRule(ctx context.Context, id int64) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rules WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return tollguard.Errorf(tollguard.ENOTFOUND, "rule %d not found; list them with `tollguard rule list`", id)
		}
		return bumpDestVersion(ctx, tx)
	})
}
