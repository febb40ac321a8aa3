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

const callCols = `id, created_at, extension, account_id, dialled, e164, class, region, remote, channel,
	uniqueid, linkedid, verdict, reason, cause, rate, bill_first, bill_step, connect_fee, reserve, maxsec, scale, steps,
	COALESCE(settled_at, 0), settled_by, billsec, charge, dial_status`

func scanCall(row scanner) (*tollguard.CallRecord, error) {
	var c tollguard.CallRecord
	var created, settled int64
	var class, verdict, reason, steps string
	err := row.Scan(&c.ID, &created, &c.Extension, &c.Account, &c.Dialled, &c.E164, &class, &c.Country,
		&c.Remote, &c.Channel, &c.UniqueID, &c.LinkedID, &verdict, &reason, &c.Cause, &c.Rate,
		&c.Billing.Initial, &c.Billing.Increment, &c.Billing.Connect, &c.Reserve, &c.MaxSec, &c.Scale, &steps, &settled, &c.SettledBy, &c.Billsec, &c.Charge, &c.DialStatus)
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.SettledAt = fromUnix(created), fromUnix(settled)
	c.Class, c.Verdict, c.Reason = tollguard.Class(class), tollguard.Verdict(verdict), tollguard.Reason(reason)
	if err := json.Unmarshal([]byte(steps), &c.Steps); err != nil {
		return nil, fmt.Errorf("call %d: stored steps: %w", c.ID, err)
	}
	return &c, nil
}

// maxBillsec bounds a settlement's seconds: a year, far past any call
// Asterisk carries (paid calls end within a day).
const maxBillsec = 365 * 24 * 3600

// SettleCall charges an open call for its billed seconds, capped at its
// reservation, and releases the rest. A settled or denied call is left
// alone (changed false); an unknown id is ENOTFOUND. The record returned
// carries the call's identity, money and settlement fields, not its
// steps (`tollguard calls show` has those).
func (s *DB) SettleCall(ctx context.Context, st tollguard.Settlement) (tollguard.CallRecord, bool, error) {
	var out tollguard.CallRecord
	changed := false
	// Settlements share the gate's group commit (batch.go).
	err := s.batched(ctx, false, func(ctx context.Context, tx *sql.Tx) error {
		var c tollguard.CallRecord
		var created, settled int64
		var verdict, uniqueID string
		out, changed = c, false
		err := tx.StmtContext(ctx, s.gate.settleGet).QueryRowContext(ctx, st.CallID).Scan(&c.ID, &created, &c.Extension,
			&c.Account, &verdict, &c.Rate, &c.Billing.Initial, &c.Billing.Increment, &c.Billing.Connect, &c.Reserve, &c.MaxSec, &c.Scale, &settled, &c.SettledBy, &c.Billsec, &c.Charge, &c.DialStatus, &uniqueID)
		if errors.Is(err, sql.ErrNoRows) {
			return tollguard.Errorf(tollguard.ENOTFOUND, "call %d not found", st.CallID)
		}
		if err != nil {
			return err
		}
		c.CreatedAt, c.SettledAt, c.Verdict = fromUnix(created), fromUnix(settled), tollguard.Verdict(verdict)
		if st.UniqueID != "" && uniqueID != "" && st.UniqueID != uniqueID {
			return tollguard.Errorf(tollguard.ECONFLICT, "call %d was decided for channel %s, not %s", st.CallID, uniqueID, st.UniqueID)
		}
		out = c
		if !c.Open() {
			return nil
		}
		// Bounded: the seconds come from the dialplan, and two of
		// 2^63-1 made every SUM(billsec) of the month fail with
		// "integer overflow" (the rollup and the spend audit with it).
		c.Billsec = min(max(st.Billsec, 0), maxBillsec)
		c.SettledAt, c.SettledBy, c.DialStatus = st.At, st.By, st.DialStatus
		// settled_at 0 reads back as "not settled" (COALESCE): a time at
		// or before the epoch (a bad event timestamp) is taken as now.
		if c.SettledAt.Unix() <= 0 {
			c.SettledAt = s.now()
		}
		// (Not when the clock stepped back past the decision: no bound
		// then, rather than 0 s.)
		if st.SinceDecision && !c.CreatedAt.IsZero() && (c.SettledAt.After(c.CreatedAt) || st.Elapsed > 0) {
			// The longer of the wall clock's and the monotonic clock's
			// time since the decision: a clock stepped back shortens only
			// the first.
			since := max(c.SettledAt.Sub(c.CreatedAt), st.Elapsed)
			c.Billsec = min(c.Billsec, tollguard.StartedSeconds(since))
		}
		c.Charge = min(tollguard.Cost(c.Rate, c.Billing, c.Billsec, c.Scale), c.Reserve)
		res, err := tx.StmtContext(ctx, s.gate.settleCall).ExecContext(ctx, c.SettledAt.Unix(), c.SettledBy, c.Billsec,
			c.Charge, c.DialStatus, c.ID)
		if err != nil {
			return fmt.Errorf("settle call %d: %w", c.ID, err)
		}
		// Charge only a call this settlement settled.
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		if c.Charge > 0 {
			if _, err := tx.StmtContext(ctx, s.gate.charge).ExecContext(ctx, c.Charge, c.Account); err != nil {
				return fmt.Errorf("charge account %s: %w", c.Account, err)
			}
		}
		out, changed = c, true
		return nil
	})
	return out, changed, err
}

// Call returns call id.
func (s *DB) Call(ctx context.Context, id int64) (*tollguard.CallRecord, error) {
	c, err := scanCall(s.rdb.QueryRowContext(ctx, `SELECT `+callCols+` FROM calls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tollguard.Errorf(tollguard.ENOTFOUND, "call %d not found (it may have been rolled up after the retention period)", id)
	}
	return c, err
}

// CallByChannel returns the newest call the gate recorded for a channel
// uniqueid or linkedid, or nil.
func (s *DB) CallByChannel(ctx context.Context, uniqueID, linkedID string) (*tollguard.CallRecord, error) {
	c, err := scanCall(s.rdb.QueryRowContext(ctx, `SELECT `+callCols+` FROM calls
		WHERE (uniqueid <> '' AND uniqueid = ?) OR (linkedid <> '' AND linkedid = ?) OR (uniqueid <> '' AND uniqueid = ?)
		ORDER BY id DESC LIMIT 1`, uniqueID, linkedID, linkedID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return c, err
}

// CallFilter selects calls for `tollguard calls`.
type CallFilter struct {
	Extension string
	Account   string
	Verdict   tollguard.Verdict
	Reason    tollguard.Reason
	Since     time.Time
	Open      bool // only calls in progress
	Limit     int
}

// Calls lists recorded decisions, newest first.
func (s *DB) Calls(ctx context.Context, f CallFilter) ([]*tollguard.CallRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Extension != "" {
		add("extension = ?", f.Extension)
	}
	if f.Account != "" {
		add("account_id = ?", f.Account)
	}
	if f.Verdict != "" {
		add("verdict = ?", string(f.Verdict))
	}
	if f.Reason != "" {
		add("reason = ?", string(f.Reason))
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", f.Since.Unix())
	}
	if f.Open {
		where = append(where, "verdict = 'allow' AND settled_at IS NULL")
	}
	q := `SELECT ` + callCols + ` FROM calls`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scanCall)
}

// CallsInProgress lists the allowed, unsettled calls of extension, or
// of account when extension is "" (the calls a new block cuts).
func (s *DB) CallsInProgress(ctx context.Context, extension, account string) ([]*tollguard.CallRecord, error) {
	// More than any account's concurrent-call limit allows.
	return s.Calls(ctx, CallFilter{Extension: extension, Account: account, Open: true, Limit: 100_000})
}

// OpenCallsBefore lists allowed, unsettled calls created before t.
func (s *DB) OpenCallsBefore(ctx context.Context, t time.Time) ([]*tollguard.CallRecord, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+callCols+` FROM calls
		WHERE verdict = 'allow' AND settled_at IS NULL AND created_at < ? ORDER BY id`, t.Unix())
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scanCall)
}

// Rollup folds settled and denied calls created before t into monthly
// totals and deletes them, at most batch rows per transaction, so that
// the calls table (and the cost of a decision) stays flat however long
// tollguard runs. Each transaction folds and deletes the same rows, so
// one interrupted (an error, a stop, a crash) leaves the totals and the
// calls agreeing, and the next run carries on from there. Open calls are never rolled up, nor the newest call:
// SQLite numbers a new row after the largest id left, so an emptied
// table would hand out call ids again, and a late or retried hangup
// request holding an old id would settle a new call. Nor the last
// day's calls, whatever before says: the rate limits count them. It
// returns the number of calls folded.
func (s *DB) Rollup(ctx context.Context, before time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 5000
	}
	// The attempt counts are rebuilt from the calls table (a restart, a
	// failed commit): a call rolled up inside their day no longer counts,
	// and lifts a daily limit. retention_days = 1 on a 23-hour day (a DST
	// change in the daemon's zone) put the cutoff there.
	if keep := rollupKeep(s.now()); before.After(keep) {
		before = keep
	}
	total := 0
	// Until this runs, the attempt counts may still include deleted
	// rows: stricter, never looser.
	defer func() {
		if total > 0 {
			s.att.rolledUp(before.Unix())
		}
	}()
	var err error
	total, err = newBatchPacer(batch).run(ctx, s, func(size int, tx *sql.Tx) (int, error) {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS rollup_ids(id INTEGER PRIMARY KEY)`); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM rollup_ids`); err != nil {
			return 0, err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO rollup_ids(id) SELECT id FROM calls
			WHERE created_at < ? AND NOT (verdict = 'allow' AND settled_at IS NULL)
				AND id < (SELECT MAX(id) FROM calls) ORDER BY created_at LIMIT ?`, before.Unix(), size)
		if err != nil {
			return 0, err
		}
		c, _ := res.RowsAffected()
		n := int(c)
		if n == 0 {
			return 0, nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO monthly_totals(account_id, month, calls, allowed, denied, billsec, charge)
			SELECT account_id, strftime('%Y-%m', created_at, 'unixepoch'), COUNT(*),
				SUM(verdict = 'allow'), SUM(verdict = 'deny'), SUM(billsec), SUM(charge)
			FROM calls WHERE id IN (SELECT id FROM rollup_ids)
			GROUP BY 1, 2
			ON CONFLICT(account_id, month) DO UPDATE SET
				calls = calls + excluded.calls, allowed = allowed + excluded.allowed,
				denied = denied + excluded.denied, billsec = billsec + excluded.billsec,
				charge = charge + excluded.charge`); err != nil {
			return 0, fmt.Errorf("roll up: %w", err)
		}
		// The stale audit reads an extension's last call from the
		// calls: one rolled up is kept as its last-seen time, or a
		// retention shorter than stale_days would make a line that
		// only calls look unused.
		if _, err := tx.ExecContext(ctx, `UPDATE extensions SET last_seen = r.at
			FROM (SELECT extension, MAX(created_at) AS at FROM calls WHERE id IN (SELECT id FROM rollup_ids) GROUP BY extension) AS r
			WHERE extensions.name = r.extension AND extensions.last_seen < r.at`); err != nil {
			return 0, fmt.Errorf("roll up: keep the extensions' last calls: %w", err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM calls WHERE id IN (SELECT id FROM rollup_ids)`)
		return n, err
	})
	return total, err
}

// rollupKeep is the oldest time whose calls Rollup keeps at now: the
// rate limits count the last day's.
func rollupKeep(now time.Time) time.Time {
	return now.Add(-(attemptDay + clockBackTolerance) * time.Second)
}

// RollupBefore is the time before which calls are rolled up at now with
// retentionDays: that many calendar days back in now's zone, never
// within the last day.
func RollupBefore(now time.Time, retentionDays int) time.Time {
	before := now.AddDate(0, 0, -retentionDays)
	if keep := rollupKeep(now); before.After(keep) {
		return keep
	}
	return before
}

// RolledUpSince reports whether the monthly totals hold calls of
// account ("" for any) with verdict v ("" for any) from since's UTC
// month on (any month for a zero since): calls the calls table no
// longer lists. The totals keep neither extension nor reason, and a
// month is their grain, so calls earlier in since's month count too.
func (s *DB) RolledUpSince(ctx context.Context, since time.Time, account string, v tollguard.Verdict) (bool, error) {
	q := `SELECT EXISTS (SELECT 1 FROM monthly_totals WHERE month >= ?`
	month := ""
	if !since.IsZero() {
		month = since.UTC().Format("2006-01")
	}
	args := []any{month}
	if account != "" {
		q += ` AND account_id = ?`
		args = append(args, account)
	}
	switch v {
	case tollguard.Allow:
		q += ` AND allowed > 0`
	case tollguard.Deny:
		q += ` AND denied > 0`
	}
	var ok bool
	err := s.rdb.QueryRowContext(ctx, q+`)`, args...).Scan(&ok)
	return ok, err
}

// MonthTotal is an account's calls and spend in one month.
type MonthTotal struct {
	Account string
	Month   string // YYYY-MM
	Calls   int64
	Allowed int64
	Denied  int64
	Billsec int64
	Charge  tollguard.Amount
}

// Spend returns account's spend in month (YYYY-MM, UTC): rolled-up
// totals plus the calls still in the calls table.
func (s *DB) Spend(ctx context.Context, account, month string) (MonthTotal, error) {
	t := MonthTotal{Account: account, Month: month}
	start, err := time.Parse("2006-01", month)
	if err != nil {
		return t, tollguard.Errorf(tollguard.EINVALID, "month %q: want YYYY-MM", month)
	}
	end := start.AddDate(0, 1, 0)
	err = s.rdb.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT calls FROM monthly_totals WHERE account_id = ?1 AND month = ?2), 0) + COUNT(c.id),
		COALESCE((SELECT allowed FROM monthly_totals WHERE account_id = ?1 AND month = ?2), 0) + COALESCE(SUM(c.verdict = 'allow'), 0),
		COALESCE((SELECT denied FROM monthly_totals WHERE account_id = ?1 AND month = ?2), 0) + COALESCE(SUM(c.verdict = 'deny'), 0),
		COALESCE((SELECT billsec FROM monthly_totals WHERE account_id = ?1 AND month = ?2), 0) + COALESCE(SUM(c.billsec), 0),
		COALESCE((SELECT charge FROM monthly_totals WHERE account_id = ?1 AND month = ?2), 0) + COALESCE(SUM(c.charge), 0)
		FROM calls c WHERE c.account_id = ?1 AND c.created_at >= ?3 AND c.created_at < ?4`,
		account, month, start.Unix(), end.Unix()).Scan(&t.Calls, &t.Allowed, &t.Denied, &t.Billsec, &t.Charge)
	return t, err
}
