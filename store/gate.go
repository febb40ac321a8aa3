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
	att  *attemptCounter
	acct *tollguard.Account // read with the extension
	wall func() time.Time   // the store's clock (a decision's now may be past-dated)
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
	// loading is closed when the reload in progress ends (nil when
	// none); loadErr is its error. slow is set once the reload has run
	// reloadPatience and a decision gave up on it: the ones after do
	// not wait either. failures counts failed reloads (for the log).
	loading   chan struct{}
	loadStart time.Time
	loadErr   error
	slow      bool
	failures  uint64
	// Tests only: beforeLoad runs in the reload before it reads, and
	// waiting runs when a decision starts to wait for a reload.
	beforeLoad, waiting func()
}

// DestReloadFailures is how many reloads of the rates, high-risk list
// and rules failed since the database was opened, and the last error:
// decisions meanwhile use the data loaded before.
func (s *DB) DestReloadFailures() (uint64, error) {
	s.dest.mu.Lock()
	defer s.dest.mu.Unlock()
	return s.dest.failures, s.dest.loadErr
}

// bumpDestVersion marks rates, high-risk or rules as changed; call it
// inside the writing transaction.
func bumpDestVersion(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES ('dest_version', '1')
		ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)`)
	return err
}

// destLoadTimeout bounds one reload of the destination data.
const destLoadTimeout = 30 * time.Second

// A decision with a deadline holds the write lock while it waits for a
// reload, and every call queues behind it. So it waits at most
// reloadPatience (a small deck reloads in a few milliseconds), and not
// at all when the previous deck has bigDeck rates or more (such a deck
// takes hundreds of milliseconds to read); then it decides on the
// previous data. With no data loaded at all (before WarmGate) it waits
// until its deadline, then fails.
const (
	reloadPatience = 20 * time.Millisecond
	bigDeck        = 20000
)

// snapshot returns the destination data as of tx, reloading it when its
// version changed.
//
// The reload runs on a reader connection in a goroutine of its own,
// not in tx under the decision's deadline: a carrier deck of 100,000
// rates takes longer to read than a decision may take, and a reload
// cut short by each decision's deadline in turn would never finish,
// failing every call closed.
//
// Where the deck is small, a decision waits for the reload: it takes
// milliseconds, and a new rule applies to the very next call. Where the
// deck is big (bigDeck rates or more), or the reload outlasts
// reloadPatience (the first carrier deck imported into a small one), a
// decision with a deadline (a call) decides on the previous data, as do
// the ones after it until the reload lands, as if the change had been
// committed a moment later: the caller holds the write lock, and every
// other call would wait behind it and miss its deadline. Without a
// deadline (the CLI, tests) it waits.
func (s *DB) snapshot(ctx context.Context, tx *sql.Tx) (*destSnapshot, error) {
	var version string
	err := tx.StmtContext(ctx, s.gate.destVersion).QueryRowContext(ctx).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		version, err = "0", nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dest_version: %w", err)
	}
	// A decision with a deadline stops waiting for a reload at stop
	// (or, with no data loaded at all, at its deadline). stop is set at
	// the first wait: a current snapshot, every call's case, costs no
	// clock read.
	dl, hasDeadline := ctx.Deadline()
	var stop time.Time
	for attempt := 0; ; attempt++ {
		s.dest.mu.Lock()
		prev := s.dest.snap
		if prev != nil && prev.version == version {
			s.dest.mu.Unlock()
			return prev, nil
		}
		var failed error
		switch {
		case attempt > 0 && s.dest.loading == nil && s.dest.loadErr != nil:
			failed = fmt.Errorf("load rates, high-risk list and rules: %w", s.dest.loadErr)
		case attempt >= 3:
			failed = fmt.Errorf("destination data version %s did not load", version)
		}
		if failed != nil {
			s.dest.mu.Unlock()
			if hasDeadline && prev != nil {
				return prev, nil // the previous data, as while a reload runs; serve logs the failure
			}
			return nil, failed
		}
		done := s.dest.loading
		if done == nil {
			done = make(chan struct{})
			s.dest.loading, s.dest.loadStart, s.dest.slow = done, time.Now(), false
			go s.reloadDest(done, s.dest.beforeLoad)
		}
		slow, waiting := s.dest.slow, s.dest.waiting
		s.dest.mu.Unlock()
		if !hasDeadline {
			select {
			case <-done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		if prev != nil && (slow || len(prev.rates) >= bigDeck) {
			return prev, nil
		}
		if stop.IsZero() {
			stop = time.Now().Add(min(reloadPatience, time.Until(dl)/2))
		}
		until := stop
		if prev == nil {
			until = dl
		}
		if waiting != nil {
			waiting()
		}
		t := time.NewTimer(time.Until(until))
		select {
		case <-done:
			t.Stop()
			continue
		case <-t.C:
		}
		if prev == nil {
			return nil, fmt.Errorf("rates, high-risk list and rules still loading: %w", context.DeadlineExceeded)
		}
		s.dest.mu.Lock()
		if s.dest.loading == done && time.Since(s.dest.loadStart) >= reloadPatience {
			s.dest.slow = true
		}
		s.dest.mu.Unlock()
		return prev, nil
	}
}

// reloadDest loads the current destination data into the cache and
// closes done. beforeLoad, a test hook, runs first when set.
func (s *DB) reloadDest(done chan struct{}, beforeLoad func()) {
	ctx, cancel := context.WithTimeout(context.Background(), destLoadTimeout)
	defer cancel()
	if beforeLoad != nil {
		beforeLoad()
	}
	snap, err := loadDest(ctx, s.rdb)
	s.dest.mu.Lock()
	if err == nil {
		s.dest.snap = snap
	} else {
		s.dest.failures++
	}
	s.dest.loadErr = err
	s.dest.loading = nil
	s.dest.mu.Unlock()
	close(done)
}

// WarmGate loads the destination data decisions match against (rates,
// the high-risk list, rules) and the attempt counts, so that the first
// calls after a start do not wait for them: `tollguard serve` calls it
// before it listens.
func (s *DB) WarmGate(ctx context.Context) error {
	snap, err := loadDest(ctx, s.rdb)
	if err != nil {
		return fmt.Errorf("load rates, high-risk list and rules: %w", err)
	}
	s.dest.mu.Lock()
	s.dest.snap = snap
	s.dest.mu.Unlock()
	// And the attempt counts, which are built from the last day's calls.
	now := s.Now().Unix()
	err = s.batched(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		s.att.mu.Lock()
		defer s.att.mu.Unlock()
		return s.att.rebuild(ctx, tx, now, now)
	})
	if err != nil {
		return fmt.Errorf("count the last day's call attempts: %w", err)
	}
	return nil
}

// loadDest reads the destination data from q outside any transaction.
// The version is read first: data committed after it can only make the
// snapshot newer than its label, and a decision that sees the newer
// version then reloads; a snapshot older than its label cannot happen.
func loadDest(ctx context.Context, q querier) (*destSnapshot, error) {
	// go-sqlite3 steps each row of a cancellable query on a goroutine
	// of its own; for a 50,000-row deck that cost more than the reading.
	// Read uncancellable and check ctx every few thousand rows instead.
	check, ctx := ctx, context.WithoutCancel(ctx)
	n := 0
	tick := func() error {
		if n++; n%4096 == 0 {
			return check.Err()
		}
		return nil
	}
	var version string
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'dest_version'`).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		version, err = "0", nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dest_version: %w", err)
	}
	d := &destSnapshot{version: version, rates: map[string]tollguard.RateEntry{},
		highRisk: map[string]tollguard.HighRiskEntry{}, rules: map[string][]tollguard.Rule{}}
	// The currency in the same statement as the rates: an import going
	// live between two reads would pair its rates with the old deck's.
	rows, err := q.QueryContext(ctx, `SELECT `+rateCols+`, d.currency FROM rates JOIN rate_decks d ON d.id = rates.deck WHERE d.state = 'live'`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r tollguard.RateEntry
		if err := rows.Scan(append(rateDest(&r), &r.Currency)...); err != nil {
			rows.Close()
			return nil, err
		}
		d.rates[r.Prefix] = r
		if err := tick(); err != nil {
			rows.Close()
			return nil, err
		}
	}
	rows.Close()
	if rows, err = q.QueryContext(ctx, `SELECT prefix, description, source FROM high_risk`); err != nil {
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
	if rows, err = q.QueryContext(ctx, `SELECT id, account_id, prefix, action, note FROM rules`); err != nil {
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

// openCallsQuery counts an account's and an extension's calls in
// progress for the concurrency limit, emergency calls left out (they are
// never refused, and must not refuse the next call), and sums their
// reservations, from the covering calls_open index alone (migration
// 0013).
const openCallsQuery = `SELECT COALESCE(SUM(class <> '` + string(tollguard.ClassEmergency) + `'), 0),
	COALESCE(SUM(extension = ? AND class <> '` + string(tollguard.ClassEmergency) + `'), 0), COALESCE(SUM(reserve), 0)
	FROM calls WHERE account_id = ? AND verdict = 'allow' AND settled_at IS NULL`

// gateStmts are the decision's queries, prepared once: preparing them
// per call cost more than running them.
type gateStmts struct {
	extAccount, account, destVersion, maxCallID, open, insert *sql.Stmt
	settleGet, settleCall, charge                             *sql.Stmt
}

func prepareGate(ctx context.Context, db *sql.DB) (*gateStmts, error) {
	var st gateStmts
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.extAccount, `SELECT ` + prefixed("e.", extensionCols) + `, ` + prefixed("a.", accountCols) + `
			FROM extensions e JOIN accounts a ON a.id = e.account_id WHERE e.name = ?`},
		{&st.account, `SELECT ` + accountCols + ` FROM accounts WHERE id = ?`},
		{&st.destVersion, `SELECT value FROM settings WHERE key = 'dest_version'`},
		{&st.maxCallID, `SELECT COALESCE(MAX(id), 0) FROM calls`},
		{&st.open, openCallsQuery},
		{&st.insert, callInsert},
		{&st.settleGet, `SELECT id, created_at, extension, account_id, verdict, rate, bill_first, bill_step, connect_fee, reserve, maxsec, scale,
			COALESCE(settled_at, 0), settled_by, billsec, charge, dial_status, uniqueid FROM calls WHERE id = ?`},
		{&st.settleCall, `UPDATE calls SET settled_at = ?, settled_by = ?, billsec = ?, charge = ?, dial_status = ?
			WHERE id = ? AND settled_at IS NULL`},
		{&st.charge, `UPDATE accounts SET balance = balance - ? WHERE id = ?`},
	} {
		stmt, err := db.PrepareContext(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", q.sql, err)
		}
		*q.dst = stmt
	}
	return &st, nil
}

// Gate runs fn in the group-committed write transaction (batch.go).
func (s *DB) Gate(ctx context.Context, dry bool, fn func(tx tollguard.GateTx) error) error {
	// A decision's only write is its call row, last.
	return s.batched(ctx, true, func(ctx context.Context, tx *sql.Tx) error {
		// One snapshot and one check of the attempt counts per batch:
		// only unbatched writes change them.
		if s.batchSnap == nil || s.snapSeq != s.batchSeq {
			snap, err := s.snapshot(ctx, tx)
			if err != nil {
				return err
			}
			if err := s.att.check(ctx, tx); err != nil {
				return err
			}
			s.batchSnap, s.snapSeq = snap, s.batchSeq
		}
		snap := s.batchSnap
		if err := fn(&gateTx{tx: tx, st: s.gate, dest: snap, att: &s.att, wall: s.now}); err != nil {
			return err
		}
		if dry {
			return errUndo
		}
		return nil
	})
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

// Extension reads the extension and its account in one query; the
// decision asks for that account next.
func (g *gateTx) Extension(ctx context.Context, name string) (*tollguard.Extension, error) {
	e, a, err := scanExtensionAccount(g.stmt(ctx, g.st.extAccount).QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	g.acct = a
	return e, nil
}

func (g *gateTx) Account(ctx context.Context, id string) (*tollguard.Account, error) {
	if g.acct != nil && g.acct.ID == id {
		return g.acct, nil
	}
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

func (g *gateTx) Attempts(ctx context.Context, scope, id string, t tollguard.Tally, now time.Time) (minute, hour, day int, err error) {
	switch scope {
	case "ext":
		return g.att.counts(ctx, g.tx, 'e', t, id, now.Unix(), g.wall().Unix())
	case "acct":
		return g.att.counts(ctx, g.tx, 'a', t, id, now.Unix(), g.wall().Unix())
	}
	return 0, 0, 0, fmt.Errorf("count attempts: unknown scope %q", scope)
}

func (g *gateTx) OpenCalls(ctx context.Context, account, extension string) (acct, ext int, reserved tollguard.Amount, err error) {
	err = g.stmt(ctx, g.st.open).QueryRowContext(ctx, extension, account).Scan(&acct, &ext, &reserved)
	return
}

const callInsert = `INSERT INTO calls(created_at, extension, account_id, dialled, e164, class, region, remote,
	channel, uniqueid, linkedid, verdict, reason, cause, rate, bill_first, bill_step, connect_fee, reserve, maxsec, scale, steps)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (g *gateTx) InsertCall(ctx context.Context, r *tollguard.CallRecord) (int64, error) {
	steps, err := json.Marshal(r.Steps)
	if err != nil {
		return 0, err
	}
	first, step := r.Billing.StepSeconds()
	res, err := g.stmt(ctx, g.st.insert).ExecContext(ctx, r.CreatedAt.Unix(), r.Extension, r.Account, r.Dialled,
		r.E164, string(r.Class), r.Country, r.Remote, r.Channel, r.UniqueID, r.LinkedID,
		string(r.Verdict), string(r.Reason), r.Cause, r.Rate, first, step, r.Billing.Connect,
		r.Reserve, r.MaxSec, r.Scale, string(steps))
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	g.att.recorded(id, r.Extension, r.Account, tollguard.TallyOf(r.Remote), r.CreatedAt.Unix(), countsAttempt(r.Class, r.Reason))
	return id, nil
}
