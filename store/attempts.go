package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"

	"github.com/tollguard/tollguard"
)

// Attempt counts for rate limits, kept in memory. Emergency calls are
// recorded but not counted: a call to 112 must not cost its caller the
// next ordinary call. Nor are calls refused because the caller was not
// the extension's user (outside its IP access list) or the extension is
// blocked: those callers get nothing through whatever the count, and
// counted, a stolen password used from anywhere would spend the
// extension's and its account's limits and lock the customer out.
//
// Each scope keeps two tallies (tollguard.Tally): calls with a source
// address and calls without one (forwarded legs, originates). A call is
// checked against and counted in its own, so calls forwarded out on a
// number anyone can ring do not lock the phone behind it out.
//
// Counting a scope's attempts in the calls index walks one index entry
// per call of the last day: an account with a high daily limit made
// every decision read its whole day (thousands of rows for a busy
// account, and more as the history grew). Instead the writer keeps,
// per extension and per account and tally, the seconds of the last day's
// attempts with running totals, so a window's count is two binary
// searches.
//
// The counts are built from the calls table inside the write
// transaction and then follow the gate's own inserts. Calls inserted by
// another connection (a newer MAX(id), checked once per batch) are read
// and added. Whatever else could change them makes the counter rebuild
// from the table: a batch that did not commit, rows gone from the top,
// a rollup reaching into the last day, or a clock that went back more
// than the tolerance.

// countsAttempt reports whether a recorded call counts as an attempt
// (see above); countedSQL is the same test on a calls row.
func countsAttempt(class tollguard.Class, reason tollguard.Reason) bool {
	return class != tollguard.ClassEmergency && reason != tollguard.ReasonIPNotAllowed && reason != tollguard.ReasonBlockedExtension
}

const countedSQL = `(class <> '` + string(tollguard.ClassEmergency) + `' AND reason NOT IN ('` +
	string(tollguard.ReasonIPNotAllowed) + `', '` + string(tollguard.ReasonBlockedExtension) + `'))`

// attemptDay is the longest window: a day, in seconds.
const attemptDay = 86400

// clockBackTolerance is how far now may go back before the counter
// rebuilds: windows are cut relative to the newest time it saw.
const clockBackTolerance = 60

// readAheadSpan is how far past the clock readAhead holds the attempts
// dated ahead of it: it reads under the write lock, every call waiting,
// so an hour's rows per hour of clock, not a day's at once.
const readAheadSpan = 3600

type attemptCounter struct {
	mu     sync.Mutex
	valid  bool
	lastID int64 // the newest call id the counts include
	newest int64 // the newest now (Unix seconds) seen
	series map[attemptKey]*attemptSeries
	// ahead are the attempts the last rebuild found dated ahead of the
	// clock, oldest date first, each counted early (at the clock of the
	// rebuild, see attemptSeries) until the clock reaches its date. It
	// holds those up to aheadTo, a day past that clock: a clock months
	// behind finds every call row kept ahead of it. If there were more
	// (aheadMore), they are read from the table (calls up to aheadID,
	// the newest at the rebuild) when the clock passes aheadTo, then an
	// hour's at a time (readAheadSpan).
	ahead            []aheadAttempt
	aheadTo, aheadID int64
	aheadMore        bool
	adds             int       // since the last eviction of idle series
	maxID            *sql.Stmt // SELECT COALESCE(MAX(id), 0) FROM calls, prepared on the writer
	// rebuilds and foreign count full rebuilds and catch-ups with
	// calls recorded elsewhere, for tests.
	rebuilds, foreign int
}

// aheadAttempt is an attempt dated at, counted early for now.
type aheadAttempt struct {
	ext, account string
	tally        tollguard.Tally
	at           int64
}

type attemptKey struct {
	scope byte // 'e' extension, 'a' account
	tally tollguard.Tally
	id    string
}

// attemptSeries is one scope's attempts: the distinct seconds, oldest
// first, with the running total of attempts up to and including each.
// base is the total trimmed off the front, so totals never go down.
// early attempts were dated ahead of the clock a rebuild ran at, and
// count at that second (earlyAt) until reached moves each to its date:
// apart from secs, so that a move costs no shift of the series.
type attemptSeries struct {
	secs           []int64
	cum            []int64
	base           int64
	early, earlyAt int64
}

func (s *attemptSeries) total() int64 {
	if len(s.cum) == 0 {
		return s.base
	}
	return s.cum[len(s.cum)-1]
}

// since counts the attempts at or after second t.
func (s *attemptSeries) since(t int64) int64 {
	j := sort.Search(len(s.secs), func(i int) bool { return s.secs[i] >= t })
	before := s.base
	if j > 0 {
		before = s.cum[j-1]
	}
	n := s.total() - before
	if s.earlyAt >= t {
		n += s.early
	}
	return n
}

// add records one attempt at second t. Attempts arrive in time order
// but for clock jitter between sessions, so the search starts from
// the end.
func (s *attemptSeries) add(t int64) {
	n := len(s.secs)
	if n == 0 || t > s.secs[n-1] {
		s.secs = append(s.secs, t)
		s.cum = append(s.cum, s.total()+1)
		return
	}
	j := n
	for j > 0 && s.secs[j-1] >= t {
		j--
	}
	if s.secs[j] != t {
		prev := s.base
		if j > 0 {
			prev = s.cum[j-1]
		}
		s.secs = append(s.secs, 0)
		s.cum = append(s.cum, 0)
		copy(s.secs[j+1:], s.secs[j:])
		copy(s.cum[j+1:], s.cum[j:])
		s.secs[j], s.cum[j] = t, prev
	}
	for i := j; i < len(s.cum); i++ {
		s.cum[i]++
	}
}

// trim drops the seconds before cut, compacting once most of the
// backing array is dropped.
func (s *attemptSeries) trim(cut int64) {
	if s.earlyAt < cut {
		s.early = 0
	}
	k := sort.Search(len(s.secs), func(i int) bool { return s.secs[i] >= cut })
	if k == 0 {
		return
	}
	s.base = s.cum[k-1]
	s.secs, s.cum = s.secs[k:], s.cum[k:]
	if cap(s.secs) > 2*len(s.secs)+64 {
		s.secs = append([]int64(nil), s.secs...)
		s.cum = append([]int64(nil), s.cum...)
	}
}

// invalidate makes the next count rebuild from the calls table.
func (c *attemptCounter) invalidate() {
	c.mu.Lock()
	c.drop()
	c.mu.Unlock()
}

// drop forgets the counts, so the next count rebuilds. The caller holds
// c.mu.
func (c *attemptCounter) drop() { c.valid, c.series, c.ahead, c.aheadMore = false, nil, nil, false }

// check catches up with calls inserted outside the gate since the
// counts were built (another connection or process: a second daemon on
// the same database), reading only the new rows; if rows went missing
// instead (deleted from the top), the counts are rebuilt. Run once per
// batch, in its transaction, before the batch inserts anything: the
// batch holds the write lock, so nothing else inserts until it ends.
func (c *attemptCounter) check(ctx context.Context, tx *sql.Tx) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid {
		return nil
	}
	id, err := c.newestID(ctx, tx)
	if err != nil {
		return fmt.Errorf("read the newest call id: %w", err)
	}
	switch {
	case id == c.lastID:
		return nil
	case id < c.lastID:
		c.drop()
		return nil
	}
	rows, err := tx.QueryContext(context.WithoutCancel(ctx), `SELECT id, extension, account_id, remote, created_at, `+countedSQL+`
		FROM calls WHERE id > ? ORDER BY id`, c.lastID)
	if err != nil {
		return fmt.Errorf("count attempts: read calls recorded elsewhere: %w", err)
	}
	defer rows.Close()
	c.foreign++
	for rows.Next() {
		var rid, at int64
		var ext, account, remote string
		var counted bool
		if err := rows.Scan(&rid, &ext, &account, &remote, &at, &counted); err != nil {
			c.drop()
			return fmt.Errorf("count attempts: read calls recorded elsewhere: %w", err)
		}
		if counted {
			c.add(ext, account, tollguard.TallyOf(remote), at)
		}
		c.lastID = max(c.lastID, rid)
	}
	if err := rows.Err(); err != nil {
		c.drop()
		return fmt.Errorf("count attempts: read calls recorded elsewhere: %w", err)
	}
	return nil
}

// newestID is the highest call id in tx.
func (c *attemptCounter) newestID(ctx context.Context, tx *sql.Tx) (id int64, err error) {
	err = tx.StmtContext(ctx, c.maxID).QueryRowContext(ctx).Scan(&id)
	return id, err
}

// counts returns the scope's attempts in tally t in the minute, hour
// and day before now, rebuilding from tx first if needed. wall is the
// store's clock: now is past-dated for a call recorded after it ended.
func (c *attemptCounter) counts(ctx context.Context, tx *sql.Tx, scope byte, t tollguard.Tally, id string, now, wall int64) (minute, hour, day int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && now < c.newest-clockBackTolerance {
		c.drop()
	}
	if !c.valid {
		if err := c.rebuild(ctx, tx, now, wall); err != nil {
			return 0, 0, 0, err
		}
	}
	c.newest = max(c.newest, now)
	if err := c.reached(ctx, tx, max(now, wall)); err != nil {
		return 0, 0, 0, err
	}
	s := c.series[attemptKey{scope, t, id}]
	if s == nil {
		return 0, 0, 0, nil
	}
	s.trim(c.keepFrom())
	return int(s.since(now - 60)), int(s.since(now - 3600)), int(s.since(now - attemptDay)), nil
}

// reached moves the attempts dated ahead of the clock at the rebuild
// whose dates the clock has reached to those dates. The caller holds
// c.mu.
func (c *attemptCounter) reached(ctx context.Context, tx *sql.Tx, now int64) error {
	n := 0
	for _, a := range c.ahead {
		if a.at > now {
			break
		}
		for _, k := range [...]attemptKey{{'e', a.tally, a.ext}, {'a', a.tally, a.account}} {
			if s := c.series[k]; s != nil && s.early > 0 { // 0: aged out, trimmed
				s.early--
			}
		}
		if a.at >= c.keepFrom() { // else out of every window already
			c.add(a.ext, a.account, a.tally, a.at)
		}
		n++
	}
	if n > 0 {
		clear(c.ahead[:n]) // let the strings go
		if c.ahead = c.ahead[n:]; len(c.ahead) == 0 {
			c.ahead = nil
		}
	}
	if !c.aheadMore || now <= c.aheadTo {
		return nil
	}
	if err := c.readAhead(ctx, tx, now); err != nil {
		c.drop()
		return fmt.Errorf("count attempts: read the calls dated ahead of the clock: %w", err)
	}
	return nil
}

// readAhead reads the attempts the last rebuild found dated after
// aheadTo, which the clock (now) has passed: those it reached count
// from their dates (their early counts are out of every window by now),
// and the next hour's are held. The caller holds c.mu.
func (c *attemptCounter) readAhead(ctx context.Context, tx *sql.Tx, now int64) error {
	from := max(c.aheadTo, c.keepFrom()-1) // older: out of every window
	c.aheadTo, c.aheadMore = now+readAheadSpan, false
	rows, err := tx.QueryContext(context.WithoutCancel(ctx), `SELECT extension, account_id, remote, created_at FROM calls INDEXED BY calls_time
		WHERE created_at > ? AND id <= ? AND `+countedSQL+` ORDER BY created_at`, from, c.aheadID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ext, account, remote string
		var at int64
		if err := rows.Scan(&ext, &account, &remote, &at); err != nil {
			return err
		}
		switch t := tollguard.TallyOf(remote); {
		case at <= now:
			c.add(ext, account, t, at)
		case at <= c.aheadTo:
			c.ahead = append(c.ahead, aheadAttempt{ext: ext, account: account, tally: t, at: at})
		default:
			c.aheadMore = true
			return nil
		}
	}
	return rows.Err()
}

// recorded notes call id the gate inserted, and counts it as an
// attempt in tally t if countsAttempt says so.
func (c *attemptCounter) recorded(id int64, ext, account string, t tollguard.Tally, at int64, countsAttempt bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid {
		return // the rebuild will read it
	}
	c.lastID = max(c.lastID, id)
	if countsAttempt {
		c.add(ext, account, t, at)
	}
}

// add counts one attempt in tally t at second at for an extension and
// its account. The caller holds c.mu.
func (c *attemptCounter) add(ext, account string, t tollguard.Tally, at int64) {
	for _, k := range []attemptKey{{'e', t, ext}, {'a', t, account}} {
		s := c.series[k]
		if s == nil {
			s = &attemptSeries{}
			c.series[k] = s
		}
		s.add(at)
	}
	if c.adds++; c.adds >= 4*len(c.series)+1024 {
		c.evict()
	}
}

// evict drops the series with nothing in the last day.
func (c *attemptCounter) evict() {
	c.adds = 0
	cut := c.keepFrom()
	for k, s := range c.series {
		if s.trim(cut); len(s.secs) == 0 && s.early == 0 {
			delete(c.series, k)
		}
	}
}

// keepFrom is the oldest second a count can still need: a day before
// the newest time seen, less the tolerance for a clock that steps back.
func (c *attemptCounter) keepFrom() int64 { return c.newest - attemptDay - clockBackTolerance }

// rolledUp tells the counter that calls created before cut were
// deleted; it rebuilds if that reaches into its day.
func (c *attemptCounter) rolledUp(cut int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && cut > c.keepFrom() {
		c.drop()
	}
}

// rebuild reads the last day's attempts from the calls table as of now;
// wall is the store's clock. The caller holds c.mu.
func (c *attemptCounter) rebuild(ctx context.Context, tx *sql.Tx, now, wall int64) (err error) {
	c.valid, c.series, c.ahead, c.aheadMore, c.newest, c.adds = false, map[attemptKey]*attemptSeries{}, nil, false, now, 0
	defer func() {
		if err != nil {
			c.series, c.ahead, c.aheadMore = nil, nil, false
			err = fmt.Errorf("count attempts: %w", err)
			return
		}
		c.valid = true
		c.rebuilds++
	}()
	if c.lastID, err = c.newestID(ctx, tx); err != nil {
		return err
	}
	// Uncancellable, as in loadDest: go-sqlite3 steps each row of a
	// cancellable query on a goroutine of its own.
	rows, err := tx.QueryContext(context.WithoutCancel(ctx), `SELECT extension, account_id, remote, created_at FROM calls INDEXED BY calls_time
		WHERE created_at >= ? AND `+countedSQL+` ORDER BY created_at`, c.keepFrom())
	if err != nil {
		return err
	}
	defer rows.Close()
	// Rows dated ahead of the clock were written while it ran fast, just
	// before it was set back: they happened now, and must age out of the
	// windows as time moves on, not count until the clock reaches their
	// dates (an hour's rate_limit). Ahead of the clock, not of now: a
	// call recorded after it ended is decided as of when it was placed,
	// and every attempt since is real. Or the clock was right, and has
	// been set back by mistake (a box booted with its clock behind): once
	// it is right again, they count from their dates (reached), or the
	// sync would free every limit they used.
	clock := max(now, wall)
	c.aheadTo, c.aheadID = clock+attemptDay+clockBackTolerance, c.lastID
	for rows.Next() {
		var ext, account, remote string
		var at int64
		if err := rows.Scan(&ext, &account, &remote, &at); err != nil {
			return err
		}
		tally := tollguard.TallyOf(remote)
		if at > clock {
			c.addEarly(ext, account, tally, at, clock)
			continue
		}
		c.add(ext, account, tally, at)
	}
	return rows.Err()
}

// addEarly counts an attempt dated at, ahead of clock, at clock for now,
// and remembers it for reached if it is due within aheadTo. The caller
// holds c.mu.
func (c *attemptCounter) addEarly(ext, account string, t tollguard.Tally, at, clock int64) {
	for _, k := range [...]attemptKey{{'e', t, ext}, {'a', t, account}} {
		s := c.series[k]
		if s == nil {
			s = &attemptSeries{}
			c.series[k] = s
		}
		s.early, s.earlyAt = s.early+1, clock
	}
	if at <= c.aheadTo {
		c.ahead = append(c.ahead, aheadAttempt{ext: ext, account: account, tally: t, at: at})
	} else {
		c.aheadMore = true
	}
}

// CallsRecordedElsewhere counts the batches that found call rows the
// gate of this process did not write: another process recording calls
// into the same database, most likely a second `tollguard serve`.
func (s *DB) CallsRecordedElsewhere() uint64 {
	s.att.mu.Lock()
	defer s.att.mu.Unlock()
	return uint64(s.att.foreign)
}
