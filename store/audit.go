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

// The audits' storage: runs, snapshots, pending purges, spend-alert
// state and endpoint sightings (migration 0004).

var _ tollguard.AuditStore = (*DB)(nil)

// CreateExtensionWithinQuota inserts e unless its account is at its
// MaxExtensions, or created MaxCreatedPerDay extensions in the 24 h
// before now (EQUOTA). Counting and inserting share one IMMEDIATE
// transaction, so parallel `ext add` runs cannot both pass.
//
// The daily count is of creations (extension_creations), so a line
// removed since still counts. Only managed rows (`ext add` created the
// line in Asterisk) count as created, as in the quotas audit: rows recording lines Asterisk
// already had (`ext add --no-asterisk`, adopted by an audit, put back
// by a restore) are new to the store, not new lines.
//
// It returns the id of e's creation record (0 for an unmanaged line,
// which has none), which UndoCreateExtension takes.
func (s *DB) CreateExtensionWithinQuota(ctx context.Context, e *tollguard.Extension, now time.Time) (creation int64, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		a, err := accountTx(ctx, tx, e.Account)
		if err != nil {
			return err
		}
		if a == nil {
			return accountNotFoundOr(ctx, tx, e.Account, "create it first with `tollguard account add`")
		}
		total, recent, err := countExtensionsTx(ctx, tx, a.ID, now)
		if err != nil {
			return err
		}
		if a.MaxExtensions > 0 && total >= a.MaxExtensions {
			return tollguard.Errorf(tollguard.EQUOTA, "account %s has %d extensions, its quota (max_extensions %d); nothing was created: remove unused extensions (`tollguard audit stale`) or raise the quota (`tollguard account set %s --max-extensions N`)",
				a.ID, total, a.MaxExtensions, a.ID)
		}
		if a.MaxCreatedPerDay > 0 && recent >= a.MaxCreatedPerDay {
			return tollguard.Errorf(tollguard.EQUOTA, "account %s created %d extensions in the last 24 h, its quota (max_created_per_day %d); nothing was created: try again tomorrow or raise the quota (`tollguard account set %s --max-created-per-day N`)",
				a.ID, recent, a.MaxCreatedPerDay, a.ID)
		}
		creation, err = s.createExtensionTx(ctx, tx, e)
		return err
	})
	return creation, err
}

// MonthCharge is an account's total charge in a UTC month (YYYY-MM),
// rolled-up months included.
func (s *DB) MonthCharge(ctx context.Context, account, month string) (tollguard.Amount, error) {
	t, err := s.Spend(ctx, account, month)
	return t.Charge, err
}

// LastCalls returns when each extension's newest call row was recorded.
func (s *DB) LastCalls(ctx context.Context) (map[string]time.Time, error) {
	return s.lastTimes(ctx, `SELECT extension, MAX(created_at) FROM calls GROUP BY extension`)
}

// LastRegistered returns when each PJSIP endpoint was last seen
// registered (its contacts' newest sighting, live or gone), the store's
// extensions or not.
func (s *DB) LastRegistered(ctx context.Context) (map[string]time.Time, error) {
	return s.lastTimes(ctx, `SELECT extension, MAX(last_seen) FROM registrations GROUP BY extension`)
}

// LastRestored returns when each extension's snapshot was last
// restored.
func (s *DB) LastRestored(ctx context.Context) (map[string]time.Time, error) {
	return s.lastTimes(ctx, `SELECT extension, MAX(restored_at) FROM extension_snapshots WHERE restored_at > 0 GROUP BY extension`)
}

// lastTimes reads a query's (name, unix time) rows into a map.
func (s *DB) lastTimes(ctx context.Context, query string) (map[string]time.Time, error) {
	rows, err := s.rdb.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var ext string
		var at int64
		if err := rows.Scan(&ext, &at); err != nil {
			return nil, err
		}
		out[ext] = fromUnix(at)
	}
	return out, rows.Err()
}

// CallsSince lists up to 1000 calls recorded at or after t with reason
// r ("" for any), newest first.
func (s *DB) CallsSince(ctx context.Context, t time.Time, r tollguard.Reason) ([]*tollguard.CallRecord, error) {
	return s.Calls(ctx, CallFilter{Since: t, Reason: r, Limit: 1000})
}

// SaveAuditRun stores a run and sets its ID, and deletes the job's runs
// older than AuditRunRetention, but for its latest auditRunsKept (not
// while PruneHeld). Action secrets are dropped here too, whatever the
// caller did.
func (s *DB) SaveAuditRun(ctx context.Context, run *tollguard.AuditRun) error {
	actions := make([]tollguard.AuditAction, len(run.Actions))
	for i, a := range run.Actions {
		a.Secret = ""
		actions[i] = a
	}
	findings := run.Findings
	if findings == nil {
		findings = []tollguard.AuditFinding{}
	}
	fj, err := json.Marshal(findings)
	if err != nil {
		return fmt.Errorf("encode findings: %w", err)
	}
	aj, err := json.Marshal(actions)
	if err != nil {
		return fmt.Errorf("encode actions: %w", err)
	}
	// Asked outside the transaction: it takes the clock watch's lock.
	prune := !s.pruneHeld()
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_runs(job, triggered_by, apply, started_at, ended_at, n_findings, n_actions, worst, findings, actions, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			run.Job, run.Trigger, boolInt(run.Apply), unix(run.StartedAt), unix(run.EndedAt), len(run.Findings), len(actions),
			string(run.Worst()), string(fj), string(aj), run.Error)
		if err != nil {
			return fmt.Errorf("store audit run: %w", err)
		}
		run.ID, _ = res.LastInsertId()
		// The job's runs past the retention go, but for its latest few:
		// every run is kept (hourly ones too), and the table grew for as
		// long as tollguard ran. Not while the clock stepped ahead: the
		// run's start would make all but the latest few look old.
		if !prune {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_runs WHERE job = ?1 AND started_at < ?2
			AND id NOT IN (SELECT id FROM audit_runs WHERE job = ?1 ORDER BY started_at DESC, id DESC LIMIT ?3)`,
			run.Job, unix(run.StartedAt.Add(-AuditRunRetention)), auditRunsKept); err != nil {
			return fmt.Errorf("prune old audit runs: %w", err)
		}
		return nil
	})
}

// AuditRunRetention is how long audit runs are kept; a job's latest
// auditRunsKept runs are kept however old.
const AuditRunRetention = 180 * 24 * time.Hour

const auditRunsKept = 20

// AuditRuns lists stored runs, newest first, of one job ("" for all).
func (s *DB) AuditRuns(ctx context.Context, job string, limit int) ([]*tollguard.AuditRun, error) {
	if limit <= 0 {
		limit = 20
	}
	q := `SELECT id, job, triggered_by, apply, started_at, ended_at, findings, actions, error FROM audit_runs`
	args := []any{}
	if job != "" {
		q += ` WHERE job = ?`
		args = append(args, job)
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*tollguard.AuditRun
	for rows.Next() {
		var r tollguard.AuditRun
		var apply int
		var start, end int64
		var fj, aj string
		if err := rows.Scan(&r.ID, &r.Job, &r.Trigger, &apply, &start, &end, &fj, &aj, &r.Error); err != nil {
			return nil, err
		}
		r.Apply, r.StartedAt, r.EndedAt = apply != 0, fromUnix(start), fromUnix(end)
		if err := json.Unmarshal([]byte(fj), &r.Findings); err != nil {
			return nil, fmt.Errorf("audit run %d: stored findings: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(aj), &r.Actions); err != nil {
			return nil, fmt.Errorf("audit run %d: stored actions: %w", r.ID, err)
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// SaveSnapshot stores a snapshot and sets its ID.
func (s *DB) SaveSnapshot(ctx context.Context, snap *tollguard.ExtensionSnapshot) error {
	b, err := json.Marshal(snap.Objects)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO extension_snapshots(extension, account_id, taken_at, reason, objects) VALUES (?, ?, ?, ?, ?)`,
			snap.Extension, snap.Account, unix(snap.TakenAt), snap.Reason, string(b))
		if err != nil {
			return fmt.Errorf("store snapshot of %s: %w", snap.Extension, err)
		}
		snap.ID, _ = res.LastInsertId()
		return nil
	})
}

// DeleteSnapshot removes a snapshot that is not needed: one a purge
// took before Asterisk refused to delete anything. It holds the
// extension's password, and a refused purge is tried on every run.
func (s *DB) DeleteSnapshot(ctx context.Context, id int64) error {
	_, err := s.exec(ctx, `DELETE FROM extension_snapshots WHERE id = ?`, id)
	return err
}

const snapshotCols = `id, extension, account_id, taken_at, reason, objects, restored_at`

func scanSnapshot(row scanner) (*tollguard.ExtensionSnapshot, error) {
	var snap tollguard.ExtensionSnapshot
	var taken, restored int64
	var objs string
	if err := row.Scan(&snap.ID, &snap.Extension, &snap.Account, &taken, &snap.Reason, &objs, &restored); err != nil {
		return nil, err
	}
	snap.TakenAt, snap.RestoredAt = fromUnix(taken), fromUnix(restored)
	if err := json.Unmarshal([]byte(objs), &snap.Objects); err != nil {
		return nil, fmt.Errorf("snapshot %d: stored objects: %w", snap.ID, err)
	}
	return &snap, nil
}

// LatestSnapshot returns ext's newest snapshot not yet restored.
func (s *DB) LatestSnapshot(ctx context.Context, ext string) (*tollguard.ExtensionSnapshot, error) {
	snap, err := scanSnapshot(s.rdb.QueryRowContext(ctx, `SELECT `+snapshotCols+` FROM extension_snapshots
		WHERE extension = ? AND restored_at = 0 ORDER BY id DESC LIMIT 1`, ext))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tollguard.Errorf(tollguard.ENOTFOUND, "no snapshot of extension %q waits to be restored (tollguard takes one when a purge deletes its PJSIP objects, and deletes it 180 days after the purge; see `tollguard ext snapshots %s`)", ext, ext)
	}
	return snap, err
}

// Snapshots lists ext's snapshots, newest first, restored ones included.
func (s *DB) Snapshots(ctx context.Context, ext string) ([]*tollguard.ExtensionSnapshot, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+snapshotCols+` FROM extension_snapshots WHERE extension = ? ORDER BY id DESC`, ext)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scanSnapshot)
}

// MarkSnapshotRestored stamps a snapshot as used.
func (s *DB) MarkSnapshotRestored(ctx context.Context, id int64, at time.Time) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE extension_snapshots SET restored_at = ? WHERE id = ?`, at.Unix(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return tollguard.Errorf(tollguard.ENOTFOUND, "snapshot %d not found", id)
		}
		return nil
	})
}

// SnapshotRetention is how long an extension's purge snapshots (its
// SIP password among them) are kept after its last purge or restore:
// the window in which `tollguard ext restore` can bring it back. A
// restored snapshot dates the restore the stale audit counts as a use,
// so serve keeps them at least stale_days.
const SnapshotRetention = 180 * 24 * time.Hour

// PruneSnapshots deletes the snapshots of every extension whose newest
// purge or restore is before t, and the finished pending purges closed
// before t. An extension's snapshots go together (a restore after a
// purge retried partway needs the older one with the endpoint), and
// none go while a purge of it is open (a retry resumes from them).
func (s *DB) PruneSnapshots(ctx context.Context, before time.Time) (snapshots, purges int64, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM extension_snapshots WHERE extension IN (
				SELECT extension FROM extension_snapshots GROUP BY extension HAVING MAX(MAX(taken_at, restored_at)) < ?1)
			AND extension NOT IN (SELECT extension FROM pending_purges WHERE done_at = 0)`, before.Unix())
		if err != nil {
			return fmt.Errorf("prune extension snapshots: %w", err)
		}
		snapshots, _ = res.RowsAffected()
		if res, err = tx.ExecContext(ctx, `DELETE FROM pending_purges WHERE done_at > 0 AND done_at < ?`, before.Unix()); err != nil {
			return fmt.Errorf("prune finished purges: %w", err)
		}
		purges, _ = res.RowsAffected()
		return nil
	})
	return snapshots, purges, err
}

// AddPendingPurge schedules p; when ext already has one pending, that
// one is kept (its grace period does not restart) and returned.
func (s *DB) AddPendingPurge(ctx context.Context, p tollguard.PendingPurge) (tollguard.PendingPurge, error) {
	var out tollguard.PendingPurge
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pending_purges(extension, job, reason, scheduled_at, due_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(extension) WHERE done_at = 0 DO NOTHING`,
			p.Extension, p.Job, p.Reason, unix(p.ScheduledAt), unix(p.DueAt)); err != nil {
			return fmt.Errorf("schedule purge of %s: %w", p.Extension, err)
		}
		got, err := scanPurge(tx.QueryRowContext(ctx, `SELECT `+purgeCols+` FROM pending_purges WHERE extension = ? AND done_at = 0`, p.Extension))
		if err != nil {
			return err
		}
		out = *got
		return nil
	})
	return out, err
}

const purgeCols = `extension, job, reason, scheduled_at, due_at, done_at, outcome`

func scanPurge(row scanner) (*tollguard.PendingPurge, error) {
	var p tollguard.PendingPurge
	var sched, due, done int64
	if err := row.Scan(&p.Extension, &p.Job, &p.Reason, &sched, &due, &done, &p.Outcome); err != nil {
		return nil, err
	}
	p.ScheduledAt, p.DueAt, p.DoneAt = fromUnix(sched), fromUnix(due), fromUnix(done)
	return &p, nil
}

// PendingPurges lists the purges not yet done, soonest due first.
func (s *DB) PendingPurges(ctx context.Context) ([]tollguard.PendingPurge, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+purgeCols+` FROM pending_purges WHERE done_at = 0 ORDER BY due_at, extension`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tollguard.PendingPurge
	for rows.Next() {
		p, err := scanPurge(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// FinishPurge closes ext's pending purge with an outcome (purged,
// cancelled, gone); ENOTFOUND when none is pending.
func (s *DB) FinishPurge(ctx context.Context, ext, outcome string, at time.Time) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE pending_purges SET done_at = ?, outcome = ? WHERE extension = ? AND done_at = 0`, at.Unix(), outcome, ext)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return tollguard.Errorf(tollguard.ENOTFOUND, "no purge of extension %q is pending", ext)
		}
		return nil
	})
}

// SpendAlertState returns the spend alert raised for account, month
// and kind, or nil.
func (s *DB) SpendAlertState(ctx context.Context, account, month, kind string) (*tollguard.SpendAlert, error) {
	a := tollguard.SpendAlert{Account: account, Month: month, Kind: kind}
	var at int64
	err := s.rdb.QueryRowContext(ctx, `SELECT threshold, spend, alerted_at FROM spend_alerts WHERE account_id = ? AND month = ? AND kind = ?`,
		account, month, kind).Scan(&a.Threshold, &a.Spend, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.AlertedAt = fromUnix(at)
	return &a, nil
}

// SaveSpendAlert records (or raises) the threshold an account crossed.
func (s *DB) SaveSpendAlert(ctx context.Context, a tollguard.SpendAlert) error {
	return s.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO spend_alerts(account_id, month, kind, threshold, spend, alerted_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(account_id, month, kind) DO UPDATE SET threshold = excluded.threshold, spend = excluded.spend, alerted_at = excluded.alerted_at`,
			a.Account, a.Month, a.Kind, int64(a.Threshold), int64(a.Spend), unix(a.AlertedAt))
		return err
	})
}

// sightingMemory is how long an endpoint missing from Asterisk's list
// keeps its first sighting. A line missing for one audit (a pjsip reload
// that failed, realtime listing only what it has loaded) is not new when
// it comes back; one deleted and created again after this long is.
const sightingMemory = 7 * 24 * time.Hour

// SightEndpoints records that Asterisk listed names at now and returns
// when each was first listed. Endpoints not listed for sightingMemory
// are forgotten, so one deleted and created again then is first listed
// anew (the quotas audit still dates one the store records by the
// earlier of its record and its sighting); not while PruneHeld.
// On the very first call every endpoint is baseline.
func (s *DB) SightEndpoints(ctx context.Context, names []string, now time.Time) (map[string]tollguard.EndpointSighting, error) {
	out := make(map[string]tollguard.EndpointSighting, len(names))
	forget := !s.pruneHeld()
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var looked int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM endpoint_sightings WHERE name = ''`).Scan(&looked); err != nil {
			return err
		}
		baseline := boolInt(looked == 0)
		t := now.Unix()
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO endpoint_sightings(name, first_seen, last_listed, baseline) VALUES ('', ?, ?, 1)`, t, t); err != nil {
			return err
		}
		for _, n := range names {
			if n == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO endpoint_sightings(name, first_seen, last_listed, baseline) VALUES (?, ?, ?, ?)
				ON CONFLICT(name) DO UPDATE SET last_listed = excluded.last_listed`, n, t, t, baseline); err != nil {
				return fmt.Errorf("record endpoint %s: %w", n, err)
			}
		}
		if len(names) > 0 && forget {
			// An empty list is more likely a glitch than a PBX with no
			// endpoints: keep the history then. A clock stepped ahead
			// would forget every endpoint missing from this list, and
			// each would be new when it came back: kept then too.
			if _, err := tx.ExecContext(ctx, `DELETE FROM endpoint_sightings WHERE name <> '' AND last_listed < ?`, now.Add(-sightingMemory).Unix()); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT name, first_seen, baseline FROM endpoint_sightings WHERE name <> '' AND last_listed = ?`, t)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			var first int64
			var b int
			if err := rows.Scan(&n, &first, &b); err != nil {
				return err
			}
			out[n] = tollguard.EndpointSighting{FirstSeen: fromUnix(first), Baseline: b != 0}
		}
		return rows.Err()
	})
	return out, err
}
