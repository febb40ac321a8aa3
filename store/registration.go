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

var _ tollguard.RegistrationStore = (*DB)(nil)

const contactCols = `contact_id, extension, aor, uri, ip, port, addr_source, user_agent, via_addr, call_id,
	status, expires, first_seen, last_seen, seen_count, live, removed_at`

func scanContact(row scanner) (*tollguard.Contact, error) {
	var c tollguard.Contact
	var expires, first, last, removed int64
	var live int
	if err := row.Scan(&c.ID, &c.Extension, &c.AOR, &c.URI, &c.IP, &c.Port, &c.AddrSource, &c.UserAgent, &c.ViaAddr,
		&c.CallID, &c.Status, &expires, &first, &last, &c.Count, &live, &removed); err != nil {
		return nil, err
	}
	c.Expires, c.FirstSeen, c.LastSeen, c.RemovedAt = fromUnix(expires), fromUnix(first), fromUnix(last), fromUnix(removed)
	c.Live = live != 0
	return &c, nil
}

// historyLimit bounds the addresses and user agents a history returns.
const historyLimit = 100

// historyCap bounds the addresses, and apart the user agents, an
// extension's history keeps: a thief registering with a new user agent
// and contact each time added a row each time, and each registration's
// write read them all. Past it, evictions chooses what goes.
const historyCap = 64

// establishedSpan is how long a value must have been in use (first to
// last seen) to be established: a flood cannot fake it, so it cannot
// push out a phone used over days but quiet now (a laptop softphone).
const establishedSpan = 24 * time.Hour

// ObserveContact records that c is registered and returns what was
// known about its extension before, in one transaction. A contact seen
// again while live (a resync, a qualify event) keeps its count; one that
// registers again after it was removed counts once more. c.LastSeen is
// the time it was seen (the store's clock if zero).
func (s *DB) ObserveContact(ctx context.Context, c tollguard.Contact) (tollguard.ContactHistory, error) {
	var h tollguard.ContactHistory
	if c.ID == "" || c.Extension == "" {
		return h, tollguard.Errorf(tollguard.EINVALID, "contact without an id or extension (aor %q, uri %q)", c.AOR, c.URI)
	}
	at := c.LastSeen
	if at.IsZero() {
		at = s.now()
	}
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		prev, err := scanContact(tx.QueryRowContext(ctx, `SELECT `+contactCols+` FROM registrations WHERE contact_id = ?`, c.ID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read contact %s: %w", c.ID, err)
		default:
			h.Previous = prev
		}
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM registrations WHERE extension = ?1)
			OR EXISTS(SELECT 1 FROM registration_history WHERE extension = ?1)`, c.Extension).Scan(&h.Registered); err != nil {
			return err
		}
		if h.IPs, err = distinct(ctx, tx, "ip", "ip", c.Extension); err != nil {
			return err
		}
		if h.Agents, err = distinct(ctx, tx, "user_agent", "agent", c.Extension); err != nil {
			return err
		}
		for _, v := range []struct{ kind, value string }{{"ip", c.IP}, {"agent", c.UserAgent}} {
			if v.value == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO registration_history(extension, kind, value, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT(extension, kind, value) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)`,
				c.Extension, v.kind, v.value, at.Unix(), at.Unix()); err != nil {
				return fmt.Errorf("record the %s of contact %s: %w", v.kind, c.ID, err)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO registrations(`+contactCols+`) VALUES (`+placeholders(17)+`)
			ON CONFLICT(contact_id) DO UPDATE SET
				extension = excluded.extension, aor = excluded.aor, uri = excluded.uri,
				ip = CASE WHEN excluded.ip <> '' THEN excluded.ip ELSE ip END,
				port = CASE WHEN excluded.ip <> '' THEN excluded.port ELSE port END,
				addr_source = CASE WHEN excluded.ip <> '' THEN excluded.addr_source ELSE addr_source END,
				user_agent = CASE WHEN excluded.user_agent <> '' THEN excluded.user_agent ELSE user_agent END,
				via_addr = CASE WHEN excluded.via_addr <> '' THEN excluded.via_addr ELSE via_addr END,
				call_id = CASE WHEN excluded.call_id <> '' THEN excluded.call_id ELSE call_id END,
				status = CASE WHEN excluded.status <> '' THEN excluded.status ELSE status END,
				expires = CASE WHEN excluded.expires > 0 THEN excluded.expires ELSE expires END,
				last_seen = MAX(last_seen, excluded.last_seen),
				seen_count = seen_count + (1 - live),
				live = 1, removed_at = 0`,
			c.ID, c.Extension, c.AOR, c.URI, c.IP, c.Port, c.AddrSource, c.UserAgent, c.ViaAddr, c.CallID,
			c.Status, unix(c.Expires), at.Unix(), at.Unix(), 1, 1, 0)
		if err != nil {
			return fmt.Errorf("record contact %s: %w", c.ID, err)
		}
		return trimHistory(ctx, tx, c.Extension, "")
	})
	return h, err
}

// distinct returns an extension's distinct non-empty values of col (kind
// in the history), from its live contacts and its history, most
// recently seen first. A removed contact's values are in the history
// (ContactGone records them) unless evicted since: read from its row
// too, a flood's removed contacts, kept a day, were read on each write
// and kept what the history evicted known. A live one's may have been
// pruned from the history, but are in use.
func distinct(ctx context.Context, q querier, col, kind, ext string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT value FROM (
			SELECT `+col+` AS value, last_seen FROM registrations WHERE extension = ?1 AND live = 1 AND `+col+` <> ''
			UNION ALL SELECT value, last_seen FROM registration_history WHERE extension = ?1 AND kind = ?2)
		GROUP BY value ORDER BY MAX(last_seen) DESC LIMIT ?3`, ext, kind, historyLimit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// trimBatch bounds the values of each kind a registration's write
// evicts. An extension flooded before the cap holds one value per
// registration of the retention (86 000 a day at one a second):
// evicting them in a registration's transaction held the writer, which
// the call gate waits for, over a second. PruneContacts trims those, in
// transactions of a batch each.
var trimBatch = 1000

// trimHistory evicts ext's history values past historyCap, of each kind,
// keeping those its live contacts use and those of contact gone (being
// removed). It reads the rows only when there are too many: one count
// per kind on a write otherwise. More than trimBatch too many are left
// to PruneContacts.
func trimHistory(ctx context.Context, tx *sql.Tx, ext, gone string) error {
	for _, k := range historyKinds {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registration_history WHERE extension = ? AND kind = ?`, ext, k.kind).Scan(&n); err != nil {
			return fmt.Errorf("count the history of %s: %w", ext, err)
		}
		if n <= historyCap || n > historyCap+trimBatch {
			continue
		}
		es, err := historyEntries(ctx, tx, ext, k.kind, k.col, gone)
		if err != nil {
			return err
		}
		if err := evict(ctx, tx, ext, k.kind, evictions(es, historyCap, int64(establishedSpan/time.Second))); err != nil {
			return err
		}
	}
	return nil
}

// historyKinds are the history's kinds and the registrations column
// each comes from.
var historyKinds = []struct{ kind, col string }{{"ip", "ip"}, {"agent", "user_agent"}}

// historyColumn is the registrations column kind comes from (false for
// none: the table's CHECK allows only historyKinds).
func historyColumn(kind string) (string, bool) {
	for _, k := range historyKinds {
		if k.kind == kind {
			return k.col, true
		}
	}
	return "", false
}

// historyEntries reads ext's history of one kind for evictions.
func historyEntries(ctx context.Context, q querier, ext, kind, col, gone string) ([]histEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT h.value, h.first_seen, h.last_seen, h.value IN (
			SELECT `+col+` FROM registrations WHERE extension = ?1 AND live = 1
			UNION ALL SELECT `+col+` FROM registrations WHERE contact_id = ?3)
		FROM registration_history h WHERE h.extension = ?1 AND h.kind = ?2`, ext, kind, gone)
	if err != nil {
		return nil, fmt.Errorf("read the history of %s: %w", ext, err)
	}
	defer rows.Close()
	var es []histEntry
	for rows.Next() {
		var e histEntry
		if err := rows.Scan(&e.value, &e.first, &e.last, &e.inUse); err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	return es, rows.Err()
}

// evict deletes values from ext's history of one kind.
func evict(ctx context.Context, q querier, ext, kind string, values []string) error {
	out, err := json.Marshal(values)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM registration_history WHERE extension = ? AND kind = ?
		AND value IN (SELECT value FROM json_each(?))`, ext, kind, string(out)); err != nil {
		return fmt.Errorf("evict from the history of %s: %w", ext, err)
	}
	return nil
}

// afterFloodRead, in tests, runs between trimFlooded's read of a kind
// and its deletes.
var afterFloodRead func(kind string)

// trimFlooded trims the histories over historyCap by more than
// trimBatch, from a flood before the cap: read once on a reader,
// evicted a batch a transaction. A value seen again since the read
// (its last_seen moved) stays.
func (s *DB) trimFlooded(ctx context.Context) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT extension, kind FROM registration_history
		GROUP BY extension, kind HAVING COUNT(*) > ?`, historyCap+trimBatch)
	if err != nil {
		return fmt.Errorf("find the registration histories over %d values: %w", historyCap, err)
	}
	type histKey struct{ ext, kind string }
	var over []histKey
	for rows.Next() {
		var k histKey
		if err := rows.Scan(&k.ext, &k.kind); err != nil {
			rows.Close()
			return err
		}
		over = append(over, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, o := range over {
		col, ok := historyColumn(o.kind)
		if !ok {
			continue
		}
		es, err := historyEntries(ctx, s.rdb, o.ext, o.kind, col, "")
		if err != nil {
			return err
		}
		last := make(map[string]int64, len(es))
		for _, e := range es {
			last[e.value] = e.last
		}
		ev := evictions(es, historyCap, int64(establishedSpan/time.Second))
		if afterFloodRead != nil {
			afterFloodRead(o.kind)
		}
		for len(ev) > 0 {
			n := min(len(ev), trimBatch)
			pairs := make([][2]any, n)
			for i, v := range ev[:n] {
				pairs[i] = [2]any{v, last[v]}
			}
			ev = ev[n:]
			out, err := json.Marshal(pairs)
			if err != nil {
				return err
			}
			if _, err := s.exec(ctx, `DELETE FROM registration_history WHERE extension = ? AND kind = ?
				AND (value, last_seen) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))`, o.ext, o.kind, string(out)); err != nil {
				return fmt.Errorf("evict from the registration history of %s: %w", o.ext, err)
			}
		}
	}
	return nil
}

// histEntry is one history row as evictions sees it.
type histEntry struct {
	value       string
	first, last int64 // unix seconds
	inUse       bool  // by a live contact (or the one being removed)
}

// evictions returns the values of one extension's history of one kind
// to forget so that at most limit stay. Values in use never go. Fresh
// values (in use for less than span seconds) go first, least recently
// seen first, while they are more than half of limit: a flood of new
// ones churns through them. Fresh values in use count toward that half.
// Then the least recently seen of any go.
// Plain least-recently-seen would let limit new values push out a phone
// used for months but quiet for a week; here a flood cannot push out the
// limit/2 most recently seen established values, and a real new phone
// outlasts about limit/2 newer fresh ones, time enough to be seen again.
func evictions(es []histEntry, limit int, span int64) []string {
	need := len(es) - limit
	if need <= 0 {
		return []string{}
	}
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b histEntry) int {
		return cmp.Or(cmp.Compare(a.last, b.last), strings.Compare(a.value, b.value))
	})
	// Fresh values in use count toward the half though they stay: a
	// thief's live contacts (the new one and the one it replaces) would
	// otherwise each take an established value's slot.
	fresh := 0
	for _, e := range es {
		if e.last-e.first < span {
			fresh++
		}
	}
	out := []string{}
	gone := make([]bool, len(es))
	for i, e := range es {
		if need == 0 || fresh <= limit/2 {
			break
		}
		if !e.inUse && e.last-e.first < span {
			out, gone[i] = append(out, e.value), true
			need--
			fresh--
		}
	}
	for i, e := range es {
		if need == 0 {
			break
		}
		if !e.inUse && !gone[i] {
			out = append(out, e.value)
			need--
		}
	}
	return out
}

// ContactGone marks a contact as no longer registered and reports
// whether it was live.
func (s *DB) ContactGone(ctx context.Context, id string, at time.Time) (bool, error) {
	if at.IsZero() {
		at = s.now()
	}
	var n int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE registrations SET live = 0, removed_at = ?, status = ?, last_seen = MAX(last_seen, ?)
			WHERE contact_id = ? AND live = 1`, at.Unix(), tollguard.ContactRemoved, at.Unix(), id)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		// Its address and user agent were in use until now: the
		// history's retention counts from here. Recorded again, not just
		// updated: a contact live and quiet past the retention kept them
		// known while the history prune took their rows.
		_, err = tx.ExecContext(ctx, `INSERT INTO registration_history(extension, kind, value, first_seen, last_seen)
			SELECT extension, 'ip', ip, first_seen, ?1 FROM registrations WHERE contact_id = ?2 AND ip <> ''
			UNION ALL SELECT extension, 'agent', user_agent, first_seen, ?1 FROM registrations WHERE contact_id = ?2 AND user_agent <> ''
			ON CONFLICT(extension, kind, value) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)`, at.Unix(), id)
		if err != nil {
			return err
		}
		var ext string
		switch err := tx.QueryRowContext(ctx, `SELECT extension FROM registrations WHERE contact_id = ?`, id).Scan(&ext); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		return trimHistory(ctx, tx, ext, id)
	})
	if err != nil {
		return false, fmt.Errorf("remove contact %s: %w", id, err)
	}
	return n > 0, nil
}

// SetContactStatus records a qualify status (Reachable, Unreachable,
// Unknown) on a live contact.
func (s *DB) SetContactStatus(ctx context.Context, id, status string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	_, err := s.exec(ctx, `UPDATE registrations SET status = ?, last_seen = MAX(last_seen, ?) WHERE contact_id = ? AND live = 1`,
		status, at.Unix(), id)
	return err
}

// LiveContacts lists the contacts believed registered.
func (s *DB) LiveContacts(ctx context.Context) ([]tollguard.Contact, error) {
	return s.contacts(ctx, `SELECT `+contactCols+` FROM registrations WHERE live = 1 ORDER BY extension, contact_id`)
}

// ContactFilter selects registrations for `tollguard regs`.
type ContactFilter struct {
	Extension string // "" for all
	Live      bool   // only contacts registered now
	Limit     int    // default 1000
}

// Contacts lists registrations, live ones first, then newest.
func (s *DB) Contacts(ctx context.Context, f ContactFilter) ([]tollguard.Contact, error) {
	var where []string
	var args []any
	if f.Extension != "" {
		where = append(where, "extension = ?")
		args = append(args, f.Extension)
	}
	if f.Live {
		where = append(where, "live = 1")
	}
	q := `SELECT ` + contactCols + ` FROM registrations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	args = append(args, f.Limit)
	return s.contacts(ctx, q+` ORDER BY extension, live DESC, last_seen DESC LIMIT ?`, args...)
}

func (s *DB) contacts(ctx context.Context, q string, args ...any) ([]tollguard.Contact, error) {
	rows, err := s.rdb.QueryContext(ctx, q, args...) // a reader: never hold the gate's writer

	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tollguard.Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// PruneContacts deletes contacts removed before gone, and history (the
// addresses and user agents "new IP" and "new user agent" judge
// against) last seen before before. An extension's newest contact, and
// its newest addresses and user agents (those last seen in its newest
// second), stay: without any, its next
// registration would be taken for its first, which is never alerted,
// and an idle line is the one a stolen password registers.
//
// Contacts go in batches of at most pruneBatch, each its own
// transaction sized and paced by batchPacer: the
// first prune after migration 0012 finds every contact removed in the
// last 180 days due at once (thousands per NATed phone), and the gate's
// writes must not wait behind it. So do the values of a history flooded
// before its cap (trimFlooded).
func (s *DB) PruneContacts(ctx context.Context, gone, before time.Time) (int, error) {
	// Each extension's newest contact, found once with one sort on a
	// reader (a subquery per removed row cost that extension's whole
	// history for each row: minutes on the write lock for a big
	// database). Contacts added since are newer and live, so not pruned.
	var keep string
	if err := s.rdb.QueryRowContext(ctx, pruneKeepSQL).Scan(&keep); err != nil {
		return 0, fmt.Errorf("prune registrations: find each extension's newest contact: %w", err)
	}
	total, err := newBatchPacer(pruneBatch).run(ctx, s, func(size int, tx *sql.Tx) (int, error) {
		res, err := tx.ExecContext(ctx, pruneContactsSQL, gone.Unix(), keep, size)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		return int(n), nil
	})
	if err != nil {
		return total, fmt.Errorf("prune registrations: %w", err)
	}
	// Every value last seen in the newest second stays, not one: the
	// contact kept above may be any of those (phones marked gone
	// together by a resync), and registrations read only the history
	// for removed contacts. In batches too, walking the extensions in
	// key order: 10,000 extensions at the cap held the lock 2.1 s in one
	// statement. A batch stopped midway leaves values past their time,
	// deleted by the next prune.
	from := ""
	if _, err := newBatchPacer(pruneBatch).run(ctx, s, func(size int, tx *sql.Tx) (int, error) {
		rows, err := tx.QueryContext(ctx, pruneHistorySQL, before.Unix(), size, from)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var ext string
			if err := rows.Scan(&ext); err != nil {
				return n, err
			}
			n++
			from = max(from, ext)
		}
		return n, rows.Err()
	}); err != nil {
		return total, fmt.Errorf("prune registration history: %w", err)
	}
	if err := s.trimFlooded(ctx); err != nil {
		return total, fmt.Errorf("prune registration history: %w", err)
	}
	return total, nil
}

// pruneBatch is the most contacts or history values one transaction of
// PruneContacts deletes (batchPacer sizes them below it).
var pruneBatch = 5000

// pruneHistorySQL deletes a batch (?2) of history values last seen
// before ?1 and before their extension's newest, of extensions from ?3
// on in key order, and returns their extensions.
const pruneHistorySQL = `DELETE FROM registration_history WHERE (extension, kind, value) IN (
	SELECT r.extension, r.kind, r.value FROM registration_history r WHERE r.extension >= ?3 AND r.last_seen < ?1
		AND r.last_seen < (SELECT MAX(h.last_seen) FROM registration_history h WHERE h.extension = r.extension AND h.kind = r.kind)
	ORDER BY r.extension LIMIT ?2) RETURNING extension`

// pruneKeepSQL gives the contact ids PruneContacts keeps, as a JSON
// array: each extension's live one, else its last seen.
const pruneKeepSQL = `SELECT COALESCE(json_group_array(contact_id), '[]') FROM (
	SELECT contact_id, ROW_NUMBER() OVER (PARTITION BY extension
		ORDER BY live DESC, last_seen DESC, removed_at DESC, contact_id) AS rn FROM registrations) WHERE rn = 1`

// pruneContactsSQL deletes a batch (?3) of contacts removed before ?1,
// but those in the JSON array ?2.
const pruneContactsSQL = `DELETE FROM registrations WHERE rowid IN (
	SELECT rowid FROM registrations WHERE live = 0 AND removed_at < ?1
		AND contact_id NOT IN (SELECT value FROM json_each(?2)) LIMIT ?3)`

// DetectorOverrides returns every per-account detector rule:
// account → detector → rule.
func (s *DB) DetectorOverrides(ctx context.Context) (map[string]map[string]tollguard.DetectorRule, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT account_id, detector, threshold, window_secs, action, duration_secs FROM detector_overrides`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]map[string]tollguard.DetectorRule)
	for rows.Next() {
		var acct, det, action string
		var thr int
		var win, dur int64
		if err := rows.Scan(&acct, &det, &thr, &win, &action, &dur); err != nil {
			return nil, err
		}
		if out[acct] == nil {
			out[acct] = make(map[string]tollguard.DetectorRule)
		}
		out[acct][det] = tollguard.DetectorRule{Threshold: thr, Window: time.Duration(win) * time.Second,
			Action: tollguard.Action(action), Duration: time.Duration(dur) * time.Second}
	}
	return out, rows.Err()
}

// SetDetectorOverride sets account's rule for a detector, replacing any
// earlier one. The rule must be valid (tollguard.ValidateDetectorRule).
func (s *DB) SetDetectorOverride(ctx context.Context, account, detector string, r tollguard.DetectorRule) error {
	if err := tollguard.ValidateStoredDetectorRule(detector, r); err != nil {
		return err
	}
	if r.Action == "" {
		r.Action = tollguard.ActionAlert
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		a, err := accountTx(ctx, tx, account)
		if err != nil {
			return err
		}
		if a == nil {
			return accountNotFound(ctx, tx, account)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO detector_overrides(account_id, detector, threshold, window_secs, action, duration_secs, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(account_id, detector) DO UPDATE SET threshold = excluded.threshold, window_secs = excluded.window_secs,
				action = excluded.action, duration_secs = excluded.duration_secs, updated_at = excluded.updated_at`,
			account, detector, r.Threshold, int64(r.Window/time.Second), string(r.Action), int64(r.Duration/time.Second), s.now().Unix())
		return err
	})
}

// ClearDetectorOverride removes account's rule for a detector, so the
// default applies again; it reports whether there was one.
func (s *DB) ClearDetectorOverride(ctx context.Context, account, detector string) (bool, error) {
	res, err := s.exec(ctx, `DELETE FROM detector_overrides WHERE account_id = ? AND detector = ?`, account, detector)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
