package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

// Delivery statuses in the alert outbox.
const (
	DeliveryPending = "pending"
	DeliverySending = "sending" // claimed by a worker until next_at
	DeliverySent    = "sent"
	DeliveryFailed  = "failed" // gave up
)

// Delivery is one notice for one notifier in the outbox.
type Delivery struct {
	ID        int64
	AlertID   int64
	Notifier  string
	Event     tollguard.NoticeEvent
	Notice    tollguard.Notice
	Status    string
	Attempts  int // including the one in progress while sending
	NextAt    time.Time
	LastError string
	CreatedAt time.Time
	DoneAt    time.Time
}

// RaiseResult says what RaiseAlert did.
type RaiseResult struct {
	State    tollguard.AlertState
	Merged   bool              // folded into an open alert
	Notice   *tollguard.Notice // queued for every notifier; nil for a quiet merge
	Enqueued int               // outbox rows written
}

const alertCols = `id, kind, severity, subject, account_id, extension, message, evidence, evidence_dropped,
	first_seen, last_seen, count, notified_count, notified_at, digest_due, acked_at, acked_by`

func scanAlert(r scanner) (tollguard.AlertState, error) {
	var st tollguard.AlertState
	var sev string
	var first, last, notifiedAt, due, acked int64
	err := r.Scan(&st.ID, &st.Kind, &sev, &st.Subject, &st.Account, &st.Extension, &st.Message, &st.Evidence, &st.Dropped,
		&first, &last, &st.Count, &st.NotifiedCount, &notifiedAt, &due, &acked, &st.AckedBy)
	st.Severity = tollguard.Severity(sev)
	st.FirstSeen, st.LastSeen, st.NotifiedAt = fromUnix(first), fromUnix(last), fromUnix(notifiedAt)
	st.DigestDue, st.AckedAt = fromUnix(due), fromUnix(acked)
	return st, err
}

// RaiseAlert records one occurrence of a in one IMMEDIATE transaction:
// it merges into the open alert of the same kind and subject under p,
// or inserts a new one, and queues a delivery for each notifier when a
// notice is due at once. It never talks to a notifier.
func (s *DB) RaiseAlert(ctx context.Context, a tollguard.Alert, p tollguard.AlertPolicy, notifiers []string, now time.Time) (RaiseResult, error) {
	a, err := tollguard.NormalizeAlert(a)
	if err != nil {
		return RaiseResult{}, err
	}
	now = now.Truncate(time.Second)
	var res RaiseResult
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		res = RaiseResult{}
		if a.Renotify > 0 {
			// A standing condition raised again: an unchanged repeat of
			// the latest alert, even an acknowledged one, stays quiet.
			latest, err := scanAlert(tx.QueryRowContext(ctx, latestAlertQuery, a.Kind, a.Subject))
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("find latest alert %s %s: %w", a.Kind, a.Subject, err)
			}
			if err == nil && p.Recurs(latest, a, now) {
				res.Merged = true
				res.State, res.Notice = p.Recur(latest, a, now)
				if err := updateAlert(ctx, tx, res.State); err != nil {
					return err
				}
				return enqueueNotice(ctx, tx, &res, notifiers, now)
			}
		}
		open, err := scanAlert(tx.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts
			WHERE kind = ? AND subject = ? AND acked_at = 0 ORDER BY last_seen DESC, id DESC LIMIT 1`, a.Kind, a.Subject))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("find open alert %s %s: %w", a.Kind, a.Subject, err)
		}
		if err == nil && p.Mergeable(open, a.Kind, a.Subject, now) {
			res.Merged = true
			res.State, res.Notice = p.Merge(open, a, now)
			if err := updateAlert(ctx, tx, res.State); err != nil {
				return err
			}
		} else {
			st, n := p.NewAlertState(a, now)
			r, err := tx.ExecContext(ctx, `INSERT INTO alerts(kind, severity, subject, account_id, extension, message, evidence,
				evidence_dropped, first_seen, last_seen, count, notified_count, notified_at, digest_due)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				st.Kind, string(st.Severity), st.Subject, st.Account, st.Extension, st.Message, st.Evidence,
				st.Dropped, unix(st.FirstSeen), unix(st.LastSeen), st.Count, st.NotifiedCount, unix(st.NotifiedAt), unix(st.DigestDue))
			if err != nil {
				return fmt.Errorf("insert alert %s %s: %w", a.Kind, a.Subject, err)
			}
			st.ID, _ = r.LastInsertId()
			n.Alert.ID = st.ID
			res.State, res.Notice = st, &n
		}
		return enqueueNotice(ctx, tx, &res, notifiers, now)
	})
	return res, err
}

// enqueueNotice queues res's notice, if any, for every notifier.
func enqueueNotice(ctx context.Context, tx *sql.Tx, res *RaiseResult, notifiers []string, now time.Time) error {
	if res.Notice == nil {
		return nil
	}
	n, err := enqueue(ctx, tx, *res.Notice, notifiers, now)
	res.Enqueued = n
	return err
}

func updateAlert(ctx context.Context, tx *sql.Tx, st tollguard.AlertState) error {
	_, err := tx.ExecContext(ctx, `UPDATE alerts SET severity = ?, account_id = ?, extension = ?, message = ?, evidence = ?,
		evidence_dropped = ?, last_seen = ?, count = ?, notified_count = ?, notified_at = ?, digest_due = ? WHERE id = ?`,
		string(st.Severity), st.Account, st.Extension, st.Message, st.Evidence, st.Dropped, unix(st.LastSeen), st.Count,
		st.NotifiedCount, unix(st.NotifiedAt), unix(st.DigestDue), st.ID)
	if err != nil {
		return fmt.Errorf("update alert %d: %w", st.ID, err)
	}
	return nil
}

// enqueue writes one pending delivery of n per notifier, due now.
func enqueue(ctx context.Context, tx *sql.Tx, n tollguard.Notice, notifiers []string, now time.Time) (int, error) {
	if len(notifiers) == 0 {
		return 0, nil
	}
	body, err := json.Marshal(n)
	if err != nil {
		return 0, fmt.Errorf("encode notice: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO alert_outbox(alert_id, notifier, event, notice, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	for _, name := range notifiers {
		if _, err := stmt.ExecContext(ctx, n.Alert.ID, name, string(n.Event), string(body), now.Unix(), now.Unix()); err != nil {
			return 0, fmt.Errorf("queue %s notice of alert %d for %s: %w", n.Event, n.Alert.ID, name, err)
		}
	}
	return len(notifiers), nil
}

// FireDigests queues the digests that are due at now (at most limit
// alerts), one IMMEDIATE transaction for the batch. It returns how many
// alerts got a digest.
func (s *DB) FireDigests(ctx context.Context, p tollguard.AlertPolicy, notifiers []string, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	now = now.Truncate(time.Second)
	// A read first, so an idle poll never takes the write lock the gate needs.
	var due int
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM alerts WHERE digest_due > 0 AND digest_due <= ? LIMIT 1)`, now.Unix()).Scan(&due)
	if err != nil || due == 0 {
		return 0, err
	}
	fired := 0
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		fired = 0
		rows, err := tx.QueryContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE digest_due > 0 AND digest_due <= ?
			ORDER BY digest_due LIMIT ?`, now.Unix(), limit)
		if err != nil {
			return err
		}
		due, err := scanAll(rows, scanAlert)
		if err != nil {
			return err
		}
		for _, st := range due {
			st, n, ok := p.Digest(st, now)
			if err := updateAlert(ctx, tx, st); err != nil {
				return err
			}
			if !ok {
				continue
			}
			if _, err := enqueue(ctx, tx, n, notifiers, now); err != nil {
				return err
			}
			fired++
		}
		return nil
	})
	return fired, err
}

// NextDigestDue returns the earliest pending digest time, if any.
func (s *DB) NextDigestDue(ctx context.Context) (time.Time, bool, error) {
	var due sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT MIN(digest_due) FROM alerts WHERE digest_due > 0`).Scan(&due)
	if err != nil || !due.Valid {
		return time.Time{}, false, err
	}
	return fromUnix(due.Int64), true, nil
}

const deliveryCols = `id, alert_id, notifier, event, notice, status, attempts, next_at, last_error, created_at, done_at`

func scanDelivery(r scanner) (Delivery, error) {
	var d Delivery
	var ev, notice string
	var next, created, done int64
	if err := r.Scan(&d.ID, &d.AlertID, &d.Notifier, &ev, &notice, &d.Status, &d.Attempts, &next, &d.LastError, &created, &done); err != nil {
		return d, err
	}
	d.Event = tollguard.NoticeEvent(ev)
	d.NextAt, d.CreatedAt, d.DoneAt = fromUnix(next), fromUnix(created), fromUnix(done)
	if err := json.Unmarshal([]byte(notice), &d.Notice); err != nil {
		return d, fmt.Errorf("outbox row %d: notice is not JSON: %w", d.ID, err)
	}
	return d, nil
}

// ClaimDeliveries takes up to limit deliveries for notifier that are due
// at now: pending ones, and sending ones whose claim lapsed (a worker
// died mid-send). Each claim counts as an attempt and holds the row
// until now+lease, so another worker cannot take it meanwhile. Critical
// alerts go first, then the oldest: a backlog of warnings (the first
// audit of a large PBX, each send timing out against a hung webhook)
// must not hold a fraud alert back for an hour.
func (s *DB) ClaimDeliveries(ctx context.Context, notifier string, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var due int
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM alert_outbox
		WHERE notifier = ? AND status IN ('pending','sending') AND next_at <= ? LIMIT 1)`, notifier, now.Unix()).Scan(&due)
	if err != nil || due == 0 {
		return nil, err
	}
	var out []Delivery
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE alert_outbox SET status = 'sending', attempts = attempts + 1, next_at = ?
			WHERE id IN (SELECT o.id FROM alert_outbox o JOIN alerts a ON a.id = o.alert_id
				WHERE o.notifier = ? AND o.status IN ('pending','sending') AND o.next_at <= ?
				ORDER BY a.severity = 'critical' DESC, o.next_at, o.id LIMIT ?)
			RETURNING `+deliveryCols, now.Add(lease).Unix(), notifier, now.Unix(), limit)
		if err != nil {
			return fmt.Errorf("claim %s deliveries: %w", notifier, err)
		}
		out, err = scanAll(rows, scanDelivery)
		return err
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order. Deliver critical alerts first, as the
	// claim chose them, and each alert's notices in the order they were
	// made: a warning escalated to critical goes out before its escalation.
	critical := map[int64]bool{}
	for _, d := range out {
		critical[d.AlertID] = critical[d.AlertID] || d.Notice.Alert.Severity == tollguard.SeverityCritical
	}
	slices.SortFunc(out, func(a, b Delivery) int {
		if ca, cb := critical[a.AlertID], critical[b.AlertID]; ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ErrLostClaim means a delivery's claim lapsed and another worker took it.
var ErrLostClaim = errors.New("outbox claim lapsed")

// finishDelivery moves a claimed delivery on, only while the claim that
// took it (its attempt number) still holds.
func (s *DB) finishDelivery(ctx context.Context, d Delivery, status string, next, done time.Time, msg string) error {
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	var n int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET status = ?, next_at = ?, done_at = ?, last_error = ?
			WHERE id = ? AND status = 'sending' AND attempts = ?`, status, unix(next), unix(done), msg, d.ID, d.Attempts)
		if err != nil {
			return fmt.Errorf("outbox row %d: %w", d.ID, err)
		}
		n, _ = r.RowsAffected()
		return nil
	})
	if err == nil && n == 0 {
		return ErrLostClaim
	}
	return err
}

// DeliverySent marks a claimed delivery delivered.
func (s *DB) DeliverySent(ctx context.Context, d Delivery, now time.Time) error {
	return s.finishDelivery(ctx, d, DeliverySent, time.Time{}, now, "")
}

// DeliveryRetry puts a claimed delivery back, due at next.
func (s *DB) DeliveryRetry(ctx context.Context, d Delivery, next time.Time, errMsg string) error {
	return s.finishDelivery(ctx, d, DeliveryPending, next, time.Time{}, errMsg)
}

// DeliveryFailed gives up on a claimed delivery.
func (s *DB) DeliveryFailed(ctx context.Context, d Delivery, now time.Time, errMsg string) error {
	return s.finishDelivery(ctx, d, DeliveryFailed, time.Time{}, now, errMsg)
}

// DeliveryRelease puts a claimed delivery back unchanged, due now, and
// does not count the attempt (the worker was stopping).
func (s *DB) DeliveryRelease(ctx context.Context, d Delivery, now time.Time) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET status = 'pending', next_at = ?, attempts = attempts - 1
			WHERE id = ? AND status = 'sending' AND attempts = ?`, now.Unix(), d.ID, d.Attempts)
		return err
	})
}

// ExpediteDeliveries makes notifier's pending deliveries due at now:
// it delivers again, so the backlog of an outage need not wait out its
// backoff. It returns how many it brought forward.
func (s *DB) ExpediteDeliveries(ctx context.Context, notifier string, now time.Time) (int64, error) {
	var n int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET next_at = ?
			WHERE notifier = ? AND status = 'pending' AND next_at > ?`, now.Unix(), notifier, now.Unix())
		if err != nil {
			return fmt.Errorf("expedite %s deliveries: %w", notifier, err)
		}
		n, _ = r.RowsAffected()
		return nil
	})
	return n, err
}

// NextDeliveryDue returns when notifier's next pending or claimed
// delivery is due, if it has any.
func (s *DB) NextDeliveryDue(ctx context.Context, notifier string) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT MIN(next_at) FROM alert_outbox WHERE notifier = ? AND status IN ('pending','sending')`, notifier).Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, false, err
	}
	return fromUnix(next.Int64), true, nil
}

// AbandonDeliveries fails the undelivered rows of notifiers not in
// keep (an admin removed the notifier from the config), so they do not
// wait forever. It returns how many it failed, by notifier.
func (s *DB) AbandonDeliveries(ctx context.Context, keep []string, now time.Time) (map[string]int, error) {
	out := map[string]int{}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		q := `SELECT notifier, COUNT(*) FROM alert_outbox WHERE status IN ('pending','sending')`
		args := []any{}
		if len(keep) > 0 {
			q += ` AND notifier NOT IN (?` + strings.Repeat(",?", len(keep)-1) + `)`
			for _, k := range keep {
				args = append(args, k)
			}
		}
		rows, err := tx.QueryContext(ctx, q+` GROUP BY notifier`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			var n int
			if err := rows.Scan(&name, &n); err != nil {
				rows.Close()
				return err
			}
			out[name] = n
		}
		rows.Close()
		for name := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET status = 'failed', done_at = ?, last_error = ?
				WHERE notifier = ? AND status IN ('pending','sending')`, now.Unix(), "notifier "+name+" is no longer configured", name); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// AlertFilter selects alerts to list.
type AlertFilter struct {
	Since   time.Time // last seen at or after
	Unacked bool
	Limit   int // default 500
}

// Alerts lists alerts, most recent first.
func (s *DB) Alerts(ctx context.Context, f AlertFilter) ([]tollguard.AlertState, error) {
	if f.Limit <= 0 {
		f.Limit = 500
	}
	q := `SELECT ` + alertCols + ` FROM alerts WHERE last_seen >= ?`
	if f.Unacked {
		q += ` AND acked_at = 0`
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY last_seen DESC, id DESC LIMIT ?`, unix(f.Since), f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return scanAll(rows, scanAlert)
}

// Alert returns one alert.
func (s *DB) Alert(ctx context.Context, id int64) (tollguard.AlertState, error) {
	st, err := scanAlert(s.rdb.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return st, tollguard.Errorf(tollguard.ENOTFOUND, "alert %d not found (see tollguard alerts)", id)
	}
	return st, err
}

// Deliveries lists the outbox rows of the given alerts (all, with none
// given), oldest first.
func (s *DB) Deliveries(ctx context.Context, alertIDs ...int64) ([]Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM alert_outbox`
	var args []any
	if len(alertIDs) > 0 {
		q += ` WHERE alert_id IN (?` + strings.Repeat(",?", len(alertIDs)-1) + `)`
		for _, id := range alertIDs {
			args = append(args, id)
		}
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return scanAll(rows, scanDelivery)
}

// AckAlert acknowledges an alert: later occurrences start a new alert,
// and the pending digest of this one is dropped. It reports whether the
// alert was unacknowledged.
func (s *DB) AckAlert(ctx context.Context, id int64, by string, now time.Time) (tollguard.AlertState, bool, error) {
	var st tollguard.AlertState
	changed := false
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE alerts SET acked_at = ?, acked_by = ?, digest_due = 0 WHERE id = ? AND acked_at = 0`,
			now.Unix(), by, id)
		if err != nil {
			return fmt.Errorf("ack alert %d: %w", id, err)
		}
		n, _ := r.RowsAffected()
		changed = n > 0
		st, err = scanAlert(tx.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return tollguard.Errorf(tollguard.ENOTFOUND, "alert %d not found (see tollguard alerts)", id)
		}
		return err
	})
	return st, changed, err
}

// AckAlertsFor acknowledges every open detector alert about subject
// ("ext:1001", "account:acme"), as an admin who dealt with it: the next
// occurrence starts a new alert, notified at once. Audit findings
// (audit_*, and the spend audit's "spend") stay open: unblocking fixes
// no weak password and no overspend, and an acknowledged finding would
// stay quiet for days. It returns how many it acked.
func (s *DB) AckAlertsFor(ctx context.Context, subject, by string, now time.Time) (int64, error) {
	r, err := s.exec(ctx, `UPDATE alerts SET acked_at = ?, acked_by = ?, digest_due = 0
		WHERE subject = ? AND acked_at = 0 AND kind NOT LIKE 'audit\_%' ESCAPE '\' AND kind <> ?`,
		now.Unix(), by, subject, tollguard.AlertSpend)
	if err != nil {
		return 0, fmt.Errorf("acknowledge alerts about %s: %w", subject, err)
	}
	n, _ := r.RowsAffected()
	return n, nil
}

// PruneAlerts deletes alerts last seen before t that have nothing left
// to deliver, with their outbox rows, in batches so that no transaction
// holds the writer for long. It returns how many it deleted. Delivered
// and failed notices done before t go too, whatever became of their
// alert: one that recurs within its cool-down is merged for ever, never
// old enough to prune, and queued a digest per cool-down.
func (s *DB) PruneAlerts(ctx context.Context, before time.Time) (int64, error) {
	const batch = 500
	for {
		var n int64
		err := s.Tx(ctx, func(tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, `DELETE FROM alert_outbox WHERE id IN (SELECT id FROM alert_outbox
				WHERE status IN ('sent','failed') AND done_at < ? ORDER BY id LIMIT ?)`, before.Unix(), batch)
			if err != nil {
				return fmt.Errorf("prune delivered notices: %w", err)
			}
			n, _ = r.RowsAffected()
			return nil
		})
		if err != nil {
			return 0, err
		}
		if n < batch {
			break
		}
	}
	var total int64
	for {
		var n int64
		err := s.Tx(ctx, func(tx *sql.Tx) error {
			r, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE last_seen < ? AND digest_due = 0
				AND NOT EXISTS (SELECT 1 FROM alert_outbox o WHERE o.alert_id = alerts.id AND o.status IN ('pending','sending'))
				LIMIT ?)`, before.Unix(), batch)
			if err != nil {
				return fmt.Errorf("prune alerts: %w", err)
			}
			n, _ = r.RowsAffected()
			return nil
		})
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// latestAlertQuery finds an alert's latest occurrence, acknowledged or
// not, through the alerts_kind_subject index (0009).
const latestAlertQuery = `SELECT ` + alertCols + ` FROM alerts
	WHERE kind = ? AND subject = ? ORDER BY last_seen DESC, id DESC LIMIT 1`
