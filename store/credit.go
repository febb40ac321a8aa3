package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tollguard/tollguard"
)

// LedgerEntry is one credit change.
type LedgerEntry struct {
	ID           int64
	Account      string
	At           time.Time
	Amount       tollguard.Amount
	BalanceAfter tollguard.Amount
	Note         string
	By           string
	// CallsAfter is what calls were charged between this entry and the
	// next one (or now, for the newest): the ledger holds payments only,
	// and without it its "balance after" jumps from one entry to the next.
	CallsAfter tollguard.Amount
}

// AddCredit adds amount (negative to debit) to account's balance and
// records it in the ledger, in one transaction.
func (s *DB) AddCredit(ctx context.Context, account string, amount tollguard.Amount, note, by string) (LedgerEntry, error) {
	e := LedgerEntry{Account: account, At: s.now(), Amount: amount, Note: note, By: by}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var balance tollguard.Amount
		var scale int
		switch err := tx.QueryRowContext(ctx, `SELECT balance, scale FROM accounts WHERE id = ?`, account).Scan(&balance, &scale); {
		case errors.Is(err, sql.ErrNoRows):
			return accountNotFound(ctx, tx, account)
		case err != nil:
			return err
		}
		// Checked here: SQLite turns an integer overflow into a float.
		e.BalanceAfter = balance + amount
		if amount > tollguard.MaxAmount || amount < -tollguard.MaxAmount ||
			e.BalanceAfter > tollguard.MaxAmount || e.BalanceAfter < -tollguard.MaxAmount {
			sign := "+"
			if amount < 0 {
				sign = ""
			}
			return tollguard.Errorf(tollguard.EINVALID, "account %s: a balance of %s %s%s is beyond what tollguard keeps (%s either way); nothing was changed",
				account, tollguard.FormatAmount(balance, scale), sign, tollguard.FormatAmount(amount, scale), tollguard.FormatAmount(tollguard.MaxAmount, scale))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = ?, updated_at = ? WHERE id = ?`, e.BalanceAfter, e.At.Unix(), account); err != nil {
			return fmt.Errorf("add credit to %s: %w", account, err)
		}
		r, err := tx.ExecContext(ctx, `INSERT INTO credit_ledger(account_id, at, amount, balance_after, note, by) VALUES (?, ?, ?, ?, ?, ?)`,
			account, e.At.Unix(), amount, e.BalanceAfter, note, by)
		if err != nil {
			return err
		}
		e.ID, _ = r.LastInsertId()
		return nil
	})
	return e, err
}

// Ledger lists account's credit changes, newest first, each with what
// calls were charged after it.
func (s *DB) Ledger(ctx context.Context, account string, limit int) ([]LedgerEntry, error) {
	if limit <= 0 {
		limit = 20
	}
	// The balance is read in the same statement, so from the same
	// snapshot as the entries: a call settled in between would count
	// twice or not at all. Only credit changes and call charges move a
	// balance, so the differences are exactly the charges.
	rows, err := s.rdb.QueryContext(ctx, `SELECT l.id, l.account_id, l.at, l.amount, l.balance_after, l.note, l.by,
		(SELECT balance FROM accounts WHERE id = l.account_id)
		FROM credit_ledger l WHERE l.account_id = ? ORDER BY l.id DESC LIMIT ?`, account, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LedgerEntry
	var after tollguard.Amount // the balance just before the newer entry
	for rows.Next() {
		var e LedgerEntry
		var at int64
		var balance tollguard.Amount
		if err := rows.Scan(&e.ID, &e.Account, &at, &e.Amount, &e.BalanceAfter, &e.Note, &e.By, &balance); err != nil {
			return nil, err
		}
		if out == nil {
			after = balance
		}
		e.At = fromUnix(at)
		e.CallsAfter = e.BalanceAfter - after
		after = e.BalanceAfter - e.Amount
		out = append(out, e)
	}
	return out, rows.Err()
}

// Credit is an account's money position.
type Credit struct {
	Balance     tollguard.Amount
	CreditLimit tollguard.Amount
	Reserved    tollguard.Amount // held by calls in progress
	OpenCalls   int
	Available   tollguard.Amount // balance + credit limit - reserved
	Scale       int
	Currency    string
}

// CreditOf reports account's balance, reservations and availability.
func (s *DB) CreditOf(ctx context.Context, account string) (Credit, error) {
	var c Credit
	err := s.rdb.QueryRowContext(ctx, `SELECT a.balance, a.credit_limit, a.scale, a.currency,
		COALESCE((SELECT SUM(reserve) FROM calls WHERE account_id = a.id AND verdict = 'allow' AND settled_at IS NULL), 0),
		(SELECT COUNT(*) FROM calls WHERE account_id = a.id AND verdict = 'allow' AND settled_at IS NULL)
		FROM accounts a WHERE a.id = ?`, account).Scan(&c.Balance, &c.CreditLimit, &c.Scale, &c.Currency, &c.Reserved, &c.OpenCalls)
	if err == sql.ErrNoRows {
		return c, accountNotFound(ctx, s.rdb, account)
	}
	c.Available = c.Balance + c.CreditLimit - c.Reserved
	return c, err
}
