package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

const accountCols = `id, name, country, national_prefix, intl_prefix, internal_max_len, zone, hours_spec,
	holidays, after_hours, currency, scale, balance, credit_limit, call_cap, max_call_secs,
	national_ceiling, intl_ceiling, whitelist, intl_block, intl_block_reason,
	ext_per_minute, ext_per_hour, ext_per_day, acct_per_minute, acct_per_hour, acct_per_day,
	ext_concurrent, acct_concurrent, alert_mode, max_extensions, max_created_per_day,
	spend_threshold, spend_factor_permil, created_at`

type scanner interface{ Scan(dest ...any) error }

// scanAll reads every row of a list query with scan and closes rows:
// the one loop each listing (calls, accounts, extensions, alerts, ...)
// would otherwise write out again.
func scanAll[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// accountRow is an account being scanned: dest lists where each of
// accountCols goes, account finishes the conversions.
type accountRow struct {
	a                    tollguard.Account
	holidays, afterHours string
	whitelist, intlBlock int
	created              int64
}

func (r *accountRow) dest() []any {
	a := &r.a
	return []any{&a.ID, &a.Name, &a.Plan.Country, &a.Plan.NationalPrefix, &a.Plan.IntlPrefix,
		&a.Plan.InternalMaxLen, &a.Zone, &a.HoursSpec, &r.holidays, &r.afterHours, &a.Currency, &a.Scale,
		&a.Balance, &a.CreditLimit, &a.CallCap, &a.MaxCallSecs, &a.NationalCeiling, &a.InternationalCeiling,
		&r.whitelist, &r.intlBlock, &a.IntlBlockReason,
		&a.Limits.ExtPerMinute, &a.Limits.ExtPerHour, &a.Limits.ExtPerDay,
		&a.Limits.AcctPerMinute, &a.Limits.AcctPerHour, &a.Limits.AcctPerDay,
		&a.Limits.ExtConcurrent, &a.Limits.AcctConcurrent, &a.AlertMode,
		&a.MaxExtensions, &a.MaxCreatedPerDay, &a.SpendThreshold, &a.SpendFactorPermil, &r.created}
}

func (r *accountRow) account() *tollguard.Account {
	a := r.a
	a.Holidays = splitList(r.holidays)
	for _, c := range splitList(r.afterHours) {
		a.AfterHours = append(a.AfterHours, tollguard.Class(c))
	}
	a.Whitelist, a.IntlBlock = r.whitelist != 0, r.intlBlock != 0
	a.CreatedAt = fromUnix(r.created)
	return &a
}

func scanAccount(row scanner) (*tollguard.Account, error) {
	var r accountRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.account(), nil
}

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

func accountArgs(a *tollguard.Account) []any {
	after := make([]string, len(a.AfterHours))
	for i, c := range a.AfterHours {
		after[i] = string(c)
	}
	return []any{a.ID, a.Name, a.Plan.Country, a.Plan.NationalPrefix, a.Plan.IntlPrefix,
		a.Plan.InternalMaxLen, a.Zone, a.HoursSpec, strings.Join(a.Holidays, ","), strings.Join(after, ","),
		a.Currency, a.Scale, a.Balance, a.CreditLimit, a.CallCap, a.MaxCallSecs,
		a.NationalCeiling, a.InternationalCeiling, boolInt(a.Whitelist), boolInt(a.IntlBlock), a.IntlBlockReason,
		a.Limits.ExtPerMinute, a.Limits.ExtPerHour, a.Limits.ExtPerDay,
		a.Limits.AcctPerMinute, a.Limits.AcctPerHour, a.Limits.AcctPerDay,
		a.Limits.ExtConcurrent, a.Limits.AcctConcurrent, a.AlertMode,
		a.MaxExtensions, a.MaxCreatedPerDay, a.SpendThreshold, a.SpendFactorPermil, unix(a.CreatedAt)}
}

// DefaultMaxCallSecs is a new account's longest call: two hours.
const DefaultMaxCallSecs = 7200

// NewAccount returns an account with tollguard's defaults for country
// and currency: AAISP's rate ceilings, international and premium calls
// barred after hours, new-registration alerts on IP or user agent.
func NewAccount(id, country, currency string) (*tollguard.Account, error) {
	scale, err := tollguard.CurrencyScale(currency)
	if err != nil {
		return nil, err
	}
	return &tollguard.Account{
		ID: id, Plan: tollguard.NumberPlan{Country: strings.ToUpper(country)},
		Zone: "UTC", Currency: strings.ToUpper(currency), Scale: scale,
		AfterHours:           []tollguard.Class{tollguard.ClassInternational, tollguard.ClassPremium},
		NationalCeiling:      tollguard.DefaultNationalCeiling,
		InternationalCeiling: tollguard.DefaultInternationalCeiling,
		AlertMode:            tollguard.AlertModeIPOrAgent,
		SpendFactorPermil:    1200,
		// Each call reserves what MAXSEC may cost; an uncapped call would
		// hold the whole balance and starve parallel calls.
		MaxCallSecs: DefaultMaxCallSecs,
	}, nil
}

// CreateAccount inserts a; an existing id is an ECONFLICT error.
func (s *DB) CreateAccount(ctx context.Context, a *tollguard.Account) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		// Ids are case-sensitive, as the accountcode Asterisk sends is:
		// ACME next to acme is an admin's typo, which would make a
		// second account with its own credit and limits, unnoticed.
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM accounts WHERE id = ? COLLATE NOCASE AND id <> ? LIMIT 1`, a.ID, a.ID).Scan(&other)
		if err == nil {
			return tollguard.Errorf(tollguard.ECONFLICT, "account %q differs only in case from account %q: ids are case-sensitive, so this would be a second account with its own credit; use %q, or an id that differs by more than case", a.ID, other, other)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look for account %q in another case: %w", a.ID, err)
		}
		args := append(accountArgs(a), unix(s.now()))
		_, err = tx.ExecContext(ctx, `INSERT INTO accounts(`+accountCols+`, updated_at) VALUES (`+placeholders(len(args))+`)`, args...)
		if isConstraint(err) {
			return tollguard.Errorf(tollguard.ECONFLICT, "account %q already exists", a.ID)
		}
		return err
	})
}

// UpdateAccount loads account id, lets fn change it, and writes it back
// in one transaction.
func (s *DB) UpdateAccount(ctx context.Context, id string, fn func(a *tollguard.Account) error) (*tollguard.Account, error) {
	var out *tollguard.Account
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		a, err := accountTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if a == nil {
			return accountNotFound(ctx, tx, id)
		}
		if err := fn(a); err != nil {
			return err
		}
		a.ID = id
		args := accountArgs(a)
		sets := strings.Split(accountCols, ",")
		var b strings.Builder
		for i, c := range sets[1:] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strings.TrimSpace(c) + " = ?")
		}
		args = append(args[1:], unix(s.now()), id)
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET `+b.String()+`, updated_at = ? WHERE id = ?`, args...); err != nil {
			return fmt.Errorf("update account %q: %w", id, err)
		}
		out = a
		return nil
	})
	return out, err
}

// Account returns account id, or an ENOTFOUND error.
func (s *DB) Account(ctx context.Context, id string) (*tollguard.Account, error) {
	a, err := scanAccount(s.rdb.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, accountNotFound(ctx, s.rdb, id)
	}
	return a, err
}

// accountNotFound is the ENOTFOUND error for account id. Ids are
// case-sensitive (Asterisk's accountcode is): an id that differs only in
// case from one that exists (ACME for acme) is named.
func accountNotFound(ctx context.Context, q querier, id string) error {
	return accountNotFoundOr(ctx, q, id, "list them with `tollguard account list`")
}

// accountNotFoundOr is accountNotFound with what to do when no account
// is named like id.
func accountNotFoundOr(ctx context.Context, q querier, id, todo string) error {
	var other string
	if q.QueryRowContext(ctx, `SELECT id FROM accounts WHERE id = ? COLLATE NOCASE ORDER BY id LIMIT 1`, id).Scan(&other) == nil {
		return tollguard.Errorf(tollguard.ENOTFOUND, "account %q not found, but account %q is: ids are case-sensitive", id, other)
	}
	return tollguard.Errorf(tollguard.ENOTFOUND, "account %q not found; %s", id, todo)
}

func accountTx(ctx context.Context, q querier, id string) (*tollguard.Account, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return a, err
}

// Accounts lists every account by id.
func (s *DB) Accounts(ctx context.Context) ([]*tollguard.Account, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scanAccount)
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// Extensions.

const extensionCols = `name, account_id, cidrs, blocked, block_reason, blocked_by, blocked_at,
	caller_id, description, managed, created_at, last_seen`

// extensionRow is an extension being scanned, as accountRow.
type extensionRow struct {
	e                        tollguard.Extension
	cidrs                    string
	blocked, managed         int
	blockedAt, created, seen int64
}

func (r *extensionRow) dest() []any {
	e := &r.e
	return []any{&e.Name, &e.Account, &r.cidrs, &r.blocked, &e.BlockReason, &e.BlockedBy, &r.blockedAt,
		&e.CallerID, &e.Description, &r.managed, &r.created, &r.seen}
}

func (r *extensionRow) extension() (*tollguard.Extension, error) {
	e := r.e
	for _, c := range splitList(r.cidrs) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("extension %s: stored CIDR %q: %w", e.Name, c, err)
		}
		e.CIDRs = append(e.CIDRs, p)
	}
	e.Blocked, e.Managed = r.blocked != 0, r.managed != 0
	e.BlockedAt, e.CreatedAt, e.LastSeen = fromUnix(r.blockedAt), fromUnix(r.created), fromUnix(r.seen)
	return &e, nil
}

func scanExtension(row scanner) (*tollguard.Extension, error) {
	var r extensionRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.extension()
}

// scanExtensionAccount scans an extension joined with its account (the
// foreign key guarantees there is one).
func scanExtensionAccount(row scanner) (*tollguard.Extension, *tollguard.Account, error) {
	var er extensionRow
	var ar accountRow
	if err := row.Scan(append(er.dest(), ar.dest()...)...); err != nil {
		return nil, nil, err
	}
	e, err := er.extension()
	if err != nil {
		return nil, nil, err
	}
	return e, ar.account(), nil
}

func extensionArgs(e *tollguard.Extension) []any {
	cidrs := make([]string, len(e.CIDRs))
	for i, p := range e.CIDRs {
		cidrs[i] = p.Masked().String()
	}
	return []any{e.Name, e.Account, strings.Join(cidrs, ","), boolInt(e.Blocked), e.BlockReason, e.BlockedBy,
		unix(e.BlockedAt), e.CallerID, e.Description, boolInt(e.Managed), unix(e.CreatedAt), unix(e.LastSeen)}
}

// CreateExtension inserts e. Its account must exist.
func (s *DB) CreateExtension(ctx context.Context, e *tollguard.Extension) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := s.createExtensionTx(ctx, tx, e)
		return err
	})
}

// createExtensionTx inserts e and, for a managed line, the record of its
// creation, whose id it returns (0 for an unmanaged line).
func (s *DB) createExtensionTx(ctx context.Context, tx *sql.Tx, e *tollguard.Extension) (int64, error) {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	a, err := accountTx(ctx, tx, e.Account)
	if err != nil {
		return 0, err
	}
	if a == nil {
		return 0, accountNotFoundOr(ctx, tx, e.Account, "create it first with `tollguard account add`")
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO extensions(`+extensionCols+`) VALUES (`+placeholders(12)+`)`, extensionArgs(e)...)
	if isConstraint(err) {
		return 0, tollguard.Errorf(tollguard.ECONFLICT, "extension %q already exists", e.Name)
	}
	if err != nil || !e.Managed {
		return 0, err
	}
	// Kept when the line is removed: the daily quota counts creations,
	// not the lines left. One row each, even two in one second.
	res, err := tx.ExecContext(ctx, `INSERT INTO extension_creations(account_id, extension, created_at, how) VALUES (?, ?, ?, 'add')`,
		e.Account, e.Name, unix(e.CreatedAt))
	if err != nil {
		return 0, fmt.Errorf("record the creation of %s: %w", e.Name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("record the creation of %s: %w", e.Name, err)
	}
	// The row names its creation: UndoCreateExtension removes this row
	// only, not one added under the name after this one is removed.
	if _, err := tx.ExecContext(ctx, `UPDATE extensions SET creation_id = ? WHERE name = ?`, id, e.Name); err != nil {
		return 0, fmt.Errorf("record the creation of %s: %w", e.Name, err)
	}
	return id, nil
}

// countExtensionsTx counts account's extensions, and the lines created
// for it in the 24 h before now: its recorded creations (removed lines
// included, each re-creation apart) and its managed lines created then
// with no record of their own (moved in from another account). One dated beyond the
// clock tolerance is of no known age (the clock went back), as in the
// quotas audit: its removal no longer frees the quota, so counting it
// would refuse every add until the clock caught up.
func countExtensionsTx(ctx context.Context, tx *sql.Tx, account string, now time.Time) (total, recent int, err error) {
	err = tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM extensions WHERE account_id = ?1),
		(SELECT COUNT(*) FROM extension_creations WHERE account_id = ?1 AND created_at > ?2 AND created_at <= ?3) +
		(SELECT COUNT(*) FROM extensions e WHERE account_id = ?1 AND managed <> 0 AND created_at > ?2 AND created_at <= ?3
			AND NOT EXISTS (SELECT 1 FROM extension_creations c WHERE c.account_id = ?1 AND c.extension = e.name AND c.created_at = e.created_at))`,
		account, now.Add(-24*time.Hour).Unix(), now.Add(tollguard.DefaultClockTolerance).Unix()).Scan(&total, &recent)
	if err != nil {
		return 0, 0, fmt.Errorf("count extensions of %s: %w", account, err)
	}
	return total, recent, nil
}

// ExtensionCreations lists the lines created at or after since, removed
// ones included, oldest first.
func (s *DB) ExtensionCreations(ctx context.Context, since time.Time) ([]tollguard.ExtensionCreation, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT account_id, extension, created_at, how FROM extension_creations WHERE created_at >= ? ORDER BY created_at, extension, id`, since.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tollguard.ExtensionCreation
	for rows.Next() {
		var c tollguard.ExtensionCreation
		var at int64
		if err := rows.Scan(&c.Account, &c.Extension, &at, &c.How); err != nil {
			return nil, err
		}
		c.CreatedAt = fromUnix(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ExtensionCreationRetention is how long creations are kept: the quota
// and the audit look back 24 h; the rest is for whoever investigates a
// burst.
const ExtensionCreationRetention = 7 * 24 * time.Hour

// PruneExtensionCreations deletes the creations recorded before t.
func (s *DB) PruneExtensionCreations(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM extension_creations WHERE created_at < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("prune extension creations: %w", err)
	}
	return res.RowsAffected()
}

// Extension returns extension name, or an ENOTFOUND error.
func (s *DB) Extension(ctx context.Context, name string) (*tollguard.Extension, error) {
	e, err := scanExtension(s.rdb.QueryRowContext(ctx, `SELECT `+extensionCols+` FROM extensions WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found; list them with `tollguard ext list`", name)
	}
	return e, err
}

// Extensions lists extensions, of one account when account is not "".
func (s *DB) Extensions(ctx context.Context, account string) ([]*tollguard.Extension, error) {
	q := `SELECT ` + extensionCols + ` FROM extensions`
	var args []any
	if account != "" {
		q += ` WHERE account_id = ?`
		args = append(args, account)
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scanExtension)
}

// UpdateExtension loads extension name, lets fn change it, and writes it
// back in one transaction. Blocking goes through Block/Unblock instead,
// so that every block has its history row.
func (s *DB) UpdateExtension(ctx context.Context, name string, fn func(e *tollguard.Extension) error) (*tollguard.Extension, error) {
	var out *tollguard.Extension
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		e, err := scanExtension(tx.QueryRowContext(ctx, `SELECT `+extensionCols+` FROM extensions WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found; list them with `tollguard ext list`", name)
		}
		if err != nil {
			return err
		}
		from := e.Account
		if err := fn(e); err != nil {
			return err
		}
		e.Name = name
		a, err := accountTx(ctx, tx, e.Account)
		if err != nil {
			return err
		} else if a == nil {
			return accountNotFound(ctx, tx, e.Account)
		}
		now := s.now()
		newLine := e.Managed && e.CreatedAt.After(now.Add(-24*time.Hour)) // counted as created today, as ext add counts it
		if newLine && e.Account != from && a.MaxCreatedPerDay > 0 {
			// Moved back to the account that created it: its creation
			// record counts it there already (countExtensionsTx).
			var home int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM extension_creations WHERE account_id = ? AND created_at = ? AND extension = ?`,
				a.ID, unix(e.CreatedAt), name).Scan(&home); err != nil {
				return fmt.Errorf("read the creation of %s: %w", name, err)
			}
			newLine = home == 0
		}
		if e.Account != from && (a.MaxExtensions > 0 || a.MaxCreatedPerDay > 0 && newLine) {
			// A move is counted as ext add counts: the quotas audit
			// would otherwise block the account's newest extension.
			total, recent, err := countExtensionsTx(ctx, tx, a.ID, now)
			if err != nil {
				return err
			}
			if a.MaxExtensions > 0 && total >= a.MaxExtensions {
				return tollguard.Errorf(tollguard.EQUOTA, "account %s has %d extensions, its quota (max_extensions %d); %s was not moved: raise the quota (`tollguard account set %s --max-extensions N`) or remove unused extensions first",
					a.ID, total, a.MaxExtensions, name, a.ID)
			}
			if a.MaxCreatedPerDay > 0 && newLine && recent >= a.MaxCreatedPerDay {
				return tollguard.Errorf(tollguard.EQUOTA, "account %s created %d extensions in the last 24 h, its quota (max_created_per_day %d), and %s was created in that time too; it was not moved: try again tomorrow or raise the quota (`tollguard account set %s --max-created-per-day N`)",
					a.ID, recent, a.MaxCreatedPerDay, name, a.ID)
			}
		}
		args := extensionArgs(e)
		_, err = tx.ExecContext(ctx, `UPDATE extensions SET account_id=?, cidrs=?, blocked=?, block_reason=?, blocked_by=?, blocked_at=?,
			caller_id=?, description=?, managed=?, created_at=?, last_seen=? WHERE name = ?`, append(args[1:], name)...)
		out = e
		return err
	})
	return out, err
}

// DeleteExtension removes extension name from the store (its calls stay).
// Its creation stays recorded: the daily quota counts it.
func (s *DB) DeleteExtension(ctx context.Context, name string) error {
	return s.Tx(ctx, func(tx *sql.Tx) error { return s.deleteExtensionTx(ctx, tx, name) })
}

// ExtensionRow is Extension with the id of its row, which no later row
// of any name reuses (migration 0018), for DeleteExtensionRow.
func (s *DB) ExtensionRow(ctx context.Context, name string) (*tollguard.Extension, int64, error) {
	var r extensionRow
	var row int64
	err := s.rdb.QueryRowContext(ctx, `SELECT `+extensionCols+`, row_id FROM extensions WHERE name = ?`, name).Scan(append(r.dest(), &row)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found; list them with `tollguard ext list`", name)
	}
	if err != nil {
		return nil, 0, err
	}
	e, err := r.extension()
	return e, row, err
}

// DeleteExtensionRow is DeleteExtension of the row ExtensionRow gave
// alone: ENOTFOUND when name has no row, ECONFLICT when its row is
// another one (removed and recorded again since it was read).
func (s *DB) DeleteExtensionRow(ctx context.Context, name string, row int64) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		var have int64
		err := tx.QueryRowContext(ctx, `SELECT row_id FROM extensions WHERE name = ?`, name).Scan(&have)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found", name)
		case err != nil:
			return fmt.Errorf("read extension %q: %w", name, err)
		case have != row:
			return tollguard.Errorf(tollguard.ECONFLICT, "extension %q was removed and recorded again since it was read: its row is another line's now", name)
		}
		return s.deleteExtensionTx(ctx, tx, name)
	})
}

// UndoCreateExtension removes extension name and the record of its
// creation, given that record's id (CreateExtensionWithinQuota's): a
// failed `ext add` (Asterisk refused the line) created nothing, and must
// not use up the daily quota for its retry. Only the row that add made
// goes: if it was removed while the add ran (ext rm), and perhaps the
// name recorded again, nothing is deleted and the error is ENOTFOUND,
// or ECONFLICT for the other row. The record goes by id, so a move
// during the add (the record stays under the account the line was added
// to) changes nothing.
func (s *DB) UndoCreateExtension(ctx context.Context, name string, creation int64) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if err := forgetCreationTx(ctx, tx, name, creation); err != nil {
			return err
		}
		return s.deleteExtensionTx(ctx, tx, name)
	})
}

// ForgetExtensionCreation removes the record of extension name's
// creation but keeps its row: a failed `ext add` that could not delete
// all its PJSIP objects leaves the row for `ext purge` and `ext rm` to
// remove them by. While the row is there it counts against the daily
// quota (a managed line with no record of its own); once removed, the
// failed add has not used the quota up, as an undone one has not. The
// errors are UndoCreateExtension's.
func (s *DB) ForgetExtensionCreation(ctx context.Context, name string, creation int64) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if err := forgetCreationTx(ctx, tx, name, creation); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE extensions SET creation_id = 0 WHERE name = ?`, name)
		return err
	})
}

// forgetCreationTx deletes creation's record once name's row is the
// one it made (checkCreation).
func forgetCreationTx(ctx context.Context, tx *sql.Tx, name string, creation int64) error {
	if err := checkCreation(ctx, tx, name, creation); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM extension_creations WHERE id = ?`, creation); err != nil {
		return fmt.Errorf("delete the creation of %s: %w", name, err)
	}
	return nil
}

// CheckExtensionCreation returns nil when extension name's row is the
// one creation made, ENOTFOUND when the name has no row, ECONFLICT when
// its row is another one: a failed `ext add` checks before it deletes
// PJSIP objects of the name, which may be another add's.
func (s *DB) CheckExtensionCreation(ctx context.Context, name string, creation int64) error {
	return checkCreation(ctx, s.rdb, name, creation)
}

func checkCreation(ctx context.Context, q querier, name string, creation int64) error {
	if creation <= 0 {
		return tollguard.Errorf(tollguard.EINVALID, "extension %q: no creation to undo (a line recorded with --no-asterisk has none); remove it with `tollguard ext rm`", name)
	}
	var have int64
	err := q.QueryRowContext(ctx, `SELECT creation_id FROM extensions WHERE name = ?`, name).Scan(&have)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q was removed while it was being added", name)
	case err != nil:
		return fmt.Errorf("read extension %q: %w", name, err)
	case have != creation:
		return tollguard.Errorf(tollguard.ECONFLICT, "extension %q was removed while it was being added, and the name recorded again since: its row is another line's now", name)
	}
	return nil
}

func (s *DB) deleteExtensionTx(ctx context.Context, tx *sql.Tx, name string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM extensions WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found", name)
	}
	// Its block went with the row: closed in the history too, or a
	// line added again under the name would show it as never lifted.
	_, err = tx.ExecContext(ctx, `UPDATE blocks SET cleared_by = 'removed', cleared_at = ? WHERE kind = ? AND subject = ? AND cleared_at = 0`,
		unix(s.now()), tollguard.BlockExtension, name)
	return err
}

// TouchExtension records that name was seen (registered or called) at t.
func (s *DB) TouchExtension(ctx context.Context, name string, t int64) error {
	_, err := s.exec(ctx, `UPDATE extensions SET last_seen = ? WHERE name = ? AND last_seen < ?`, t, name, t)
	return err
}
