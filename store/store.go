// Package store keeps tollguard's data in SQLite through
// github.com/mattn/go-sqlite3: accounts, extensions, rules, the rate
// deck, the high-risk list, and every call decision. It implements the
// root package's storage interfaces.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard"
)

//go:embed migration/*.sql
var migrations embed.FS

// DB is tollguard's SQLite database.
type DB struct {
	// db is the one writer connection: SQLite allows one writer at a
	// time, and queueing for a Go connection wakes a waiter at once,
	// where SQLite's own busy handler sleeps and polls (milliseconds per
	// decision under load). Every transaction goes through it.
	db *sql.DB
	// rdb is a pool of readers for queries outside transactions; WAL
	// lets them run while the writer writes.
	rdb  *sql.DB
	gate *gateStmts
	dest destCache
	w    *writer        // group commit for decisions and settlements
	att  attemptCounter // rate-limit counts (attempts.go)
	// The batch leader's own (batches run one at a time): the batch
	// number and the destination snapshot taken in it.
	batchSeq, snapSeq uint64
	batchSnap         *destSnapshot
	path              string
	// opened is the file Open opened, to tell when another (or none)
	// takes its path (FileReplaced).
	opened os.FileInfo
	// ckptFault, set by tests before RunCheckpointer starts, fails
	// checkpoints as a full or failing disk does.
	ckptFault func() error
	// Now is the clock for rows the store stamps itself (ledger, blocks).
	Now func() time.Time
	// PruneHeld, when set (serve: its ClockWatch), holds what writes
	// delete by wall-clock age on the side (old audit runs, forgotten
	// endpoint sightings) while it returns true: the clock stepped
	// ahead, and those deletions cannot be undone. Nil (the CLI's
	// commands): never held.
	PruneHeld func() bool
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// appID is tollguard's PRAGMA application_id ("TGDB"), set on every
// database it opens, so that it can tell its own from another program's.
const appID = 0x54474442

// ours reports whether the SQLite database at uri, which has no
// application id, is tollguard's: it has our migrations table, or no
// tables at all. It reads the main file only (immutable: no locks, no
// -wal or -shm created), so it changes nothing; a table still in a WAL
// is missed, which errs towards "no tables". A file it cannot read (a
// checkpoint writing it meanwhile) is not refused on that account.
func ours(ctx context.Context, uri string) bool {
	db, err := sql.Open("sqlite3", uri+"?mode=ro&immutable=1")
	if err != nil {
		return true
	}
	defer db.Close()
	var tables, migrations int
	err = db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE name = 'schema_migrations') FROM sqlite_master WHERE type = 'table'`).Scan(&tables, &migrations)
	return err != nil || tables == 0 || migrations == 1
}

// HasAccount reports whether the database at file holds account id. It
// opens the file read-only and neither creates nor migrates it, so that
// `tollguard config check`, which starts nothing, changes nothing. A
// missing file is an error that wraps fs.ErrNotExist.
func HasAccount(ctx context.Context, file, id string) (bool, error) {
	if fi, err := os.Stat(file); err != nil {
		return false, err
	} else if !fi.Mode().IsRegular() {
		return false, tollguard.Errorf(tollguard.EINVALID, "%s is not a regular file", file)
	}
	// Beside a -wal file (a daemon or command has it open, or one was
	// killed) an account just added may be only in the WAL: read through
	// it. Without one, read the file as immutable, since a read-only
	// connection would leave an empty -wal and -shm behind.
	params := "?mode=ro&immutable=1"
	if _, err := os.Stat(file + "-wal"); err == nil {
		params = "?mode=ro&_busy_timeout=5000"
	}
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: file}).EscapedPath()+params)
	if err != nil {
		return false, fmt.Errorf("open database %s: %w", file, err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE id = ?`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("read accounts in %s: %w", file, err)
	}
	return n > 0, nil
}

// Open opens (creating it 0600 if needed) and migrates the database at
// path. The DSN settings matter: WAL so readers never wait for the gate,
// IMMEDIATE transactions so read-then-write decisions serialise instead
// of failing with "database is locked", a busy timeout for the readers,
// and none for the writer, which waits for the lock in begin.
func Open(ctx context.Context, file string) (_ *DB, err error) {
	// Every step writes (the migrations, the seed, the WAL's first
	// pages): "create schema_migrations: disk I/O error: no space left
	// on device" named neither the file nor what to do.
	defer func() { err = noSpaceError(file, err) }()
	if file == "" {
		return nil, tollguard.Errorf(tollguard.EINVALID, "database path is empty; set TOLLGUARD_DB or --db")
	}
	if strings.HasPrefix(file, ":memory:") || strings.Contains(file, "mode=memory") {
		// Each pooled connection would get its own empty database.
		return nil, tollguard.Errorf(tollguard.EINVALID, "in-memory databases are not supported; use a file path")
	}
	// The path goes into a file: URI, where ?, # and % mean something:
	// "h#1.db" would open "h", and at the umask's mode.
	uri := "file:" + (&url.URL{Path: file}).EscapedPath()
	if err := orphanedWAL(file); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, openError(file, err)
	}
	// Only a SQLite file (or a new, empty one) is touched: --db
	// /etc/asterisk/pjsip.conf or /dev/null by mistake must not chmod
	// what is not ours.
	opened, err := f.Stat()
	if err != nil || !opened.Mode().IsRegular() {
		f.Close()
		return nil, tollguard.Errorf(tollguard.EINVALID, "%s is not a regular file; check TOLLGUARD_DB or --db (nothing was changed)", file)
	}
	var head [100]byte // the SQLite file header
	n, _ := io.ReadFull(f, head[:])
	if n > 0 && (n < len(head) || string(head[:16]) != sqliteHeader) {
		f.Close()
		return nil, tollguard.Errorf(tollguard.EINVALID, "%s is not a SQLite database; check TOLLGUARD_DB or --db (nothing was changed)", file)
	}
	// Nor another program's database (Asterisk's astdb.sqlite3): ours
	// carry our application id, or (made before it) our migrations table.
	if n > 0 && binary.BigEndian.Uint32(head[68:72]) != appID && !ours(ctx, uri) {
		f.Close()
		return nil, tollguard.Errorf(tollguard.EINVALID, "%s is another program's SQLite database, not tollguard's; check TOLLGUARD_DB or --db (nothing was changed)", file)
	}
	// An existing file others can read is made private: it holds SIP
	// password snapshots and the call history. (Private tells whether
	// that worked.)
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		_ = f.Chmod(0o600)
	}
	f.Close()
	q := url.Values{}
	// Never create the file (it exists by now): a connection opened
	// after the file was deleted under the daemon would make a new,
	// empty one there, sharing the -wal and -shm with the deleted one.
	q.Set("mode", "rw")
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	q.Set("_synchronous", "NORMAL")
	q.Set("_foreign_keys", "on")
	rdsn := uri + "?" + q.Encode()
	// The writer waits for the lock in begin, not in SQLite (see begin).
	q.Set("_busy_timeout", "0")
	s := &DB{path: file, opened: opened, Now: time.Now}
	db := sql.OpenDB(&guardedConnector{dsn: uri + "?" + q.Encode(), db: s})
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	rdb := sql.OpenDB(&guardedConnector{dsn: rdsn, db: s})
	rdb.SetMaxOpenConns(4)
	rdb.SetMaxIdleConns(4)
	s.db, s.rdb = db, rdb
	if err := s.migrate(ctx); err != nil {
		s.Close()
		var se sqlite3.Error
		if errors.As(err, &se) && (se.Code == sqlite3.ErrReadonly || se.Code == sqlite3.ErrCantOpen) {
			return nil, tollguard.Errorf(tollguard.EINVALID, "cannot write the database %s: the file or its directory %s is not writable by this user; "+
				"tollguard writes the database and its -wal and -shm files beside it, so run it as the user that owns both (the README's `sudo -u tollguard` alias) (%v)", file, filepath.Dir(file), err)
		}
		return nil, err
	}
	if err := s.seed(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Written once, through a transaction that waits for the lock like
	// any write: every CLI command opens the database.
	var id int64
	if err := db.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&id); err == nil && id != appID {
		if _, err := s.exec(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, appID)); err != nil {
			s.Close()
			return nil, fmt.Errorf("set application id: %w", err)
		}
	}
	// The writer reads what every decision needs (extensions,
	// accounts, the recent calls of each); a larger page cache keeps
	// those index pages in memory however long the history grows.
	if _, err := db.ExecContext(ctx, `PRAGMA cache_size = -32768`); err != nil {
		s.Close()
		return nil, fmt.Errorf("set cache size: %w", err)
	}
	// A checkpoint copies the WAL back but leaves the file its size: two
	// big deck imports left 74 MB beside a 26 MB database for good. The
	// writer, which restarts the WAL, trims it to this much.
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA journal_size_limit = %d`, walSizeLimit)); err != nil {
		s.Close()
		return nil, fmt.Errorf("set the WAL size limit: %w", err)
	}
	if s.gate, err = prepareGate(ctx, db); err != nil {
		s.Close()
		return nil, err
	}
	s.att.maxID = s.gate.maxCallID
	s.startWriter()
	// SQLite creates -wal and -shm with the process umask; keep them as
	// private as the database itself.
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Chmod(file+suffix, 0o600)
	}
	return s, nil
}

// Private reports whether the database file is readable by its owner
// alone; err says why it could not be checked.
func (s *DB) Private() (bool, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return false, err
	}
	return fi.Mode().Perm()&0o077 == 0, nil
}

// Close closes the database.
func (s *DB) Close() error {
	s.stopWriter()
	rerr := s.rdb.Close()
	if err := s.db.Close(); err != nil {
		return err
	}
	return rerr
}

// Path returns the database file's path.
func (s *DB) Path() string { return s.path }

// FileReplaced says, with an error naming the path, when the file at
// Path is no longer the one this DB opened: deleted, moved away or
// replaced. SQLite goes on using the open file, so nothing fails, but
// everything written from then on is lost when the DB closes, and a
// command that opens the path shares the -wal and -shm with another
// file. nil when it is still there or cannot be told.
func (s *DB) FileReplaced() error {
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the database file %s was deleted or moved away", s.path)
	case err != nil || s.opened == nil:
		return nil
	case !os.SameFile(fi, s.opened):
		return fmt.Errorf("the database file %s was replaced by another file", s.path)
	}
	return nil
}

// guardedConnector opens connections to the database only while the
// file at its path is the one Open opened. After `mv backup.db
// tollguard.db` under a running daemon, its -wal and -shm stay at the
// path: a connection the pool opened then read the restored file through
// the daemon's WAL, and a checkpoint on it wrote the daemon's pages into
// the backup.
type guardedConnector struct {
	dsn string
	db  *DB
}

func (c *guardedConnector) Connect(context.Context) (driver.Conn, error) {
	if err := c.db.FileReplaced(); err != nil {
		return nil, tollguard.Errorf(tollguard.EUNAVAILABLE, "%v while tollguard had it open; no new connection is opened to it. %s", err, replacedAdvice)
	}
	return c.Driver().Open(c.dsn)
}

func (c *guardedConnector) Driver() driver.Driver { return sqliteDriver }

// sqliteDriver is go-sqlite3's driver, as sql.Open("sqlite3") uses it.
var sqliteDriver = &sqlite3.SQLiteDriver{}

// replacedAdvice says what to do about a database file replaced under
// a running daemon.
const replacedAdvice = "Stop tollguard serve before restoring or moving its database; see docs/troubleshooting.md"

// SaveCopy writes a consistent copy of the database as this DB sees it
// to dst, a new file (VACUUM INTO), mode 0600 as the database: it holds
// balances and the purge snapshots' SIP passwords.
// A reader does it, so decisions go on; with the file gone no new
// reader can open, and the writer does it then.
func (s *DB) SaveCopy(ctx context.Context, dst string) error {
	// VACUUM INTO fills an empty file, and would create one by the
	// umask (0644 outside systemd).
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("save a copy of the database: %w", err)
	}
	f.Close()
	_, err = s.rdb.ExecContext(ctx, `VACUUM INTO ?`, dst)
	if err != nil {
		// Emptied, not removed: created again, it would take the umask.
		if err = os.Truncate(dst, 0); err == nil {
			_, err = s.db.ExecContext(ctx, `VACUUM INTO ?`, dst)
		}
	}
	if err != nil {
		os.Remove(dst) // empty or partial
		return fmt.Errorf("save a copy of the database to %s: %w", dst, err)
	}
	return nil
}

// SQL returns the writer handle, for tests and bulk loads.
func (s *DB) SQL() *sql.DB { return s.db }

// IntegrityCheck runs PRAGMA integrity_check and returns its verdict.
func (s *DB) IntegrityCheck(ctx context.Context) error {
	var res string
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	return nil
}

// Tx runs fn in one IMMEDIATE transaction: commit on nil, rollback on
// an error or panic. Every write in the store takes this shape.
func (s *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return runTx(ctx, s.db, fn)
}

// exec runs one write statement in a transaction of its own, so that
// it waits for the write lock as every write does (see begin).
func (s *DB) exec(ctx context.Context, q string, args ...any) (res sql.Result, err error) {
	err = s.Tx(ctx, func(tx *sql.Tx) error {
		res, err = tx.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

// beginner is the writer pool or one connection pinned from it.
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// runTx is Tx on b.
func runTx(ctx context.Context, b beginner, fn func(tx *sql.Tx) error) error {
	tx, err := begin(ctx, b, adminPoll)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Waiting for the write lock.
//
// SQLite's own busy handler sleeps longer and longer between tries (up
// to 100 ms each): a process writing short transactions back to back,
// as a rate import's chunks do, can hold the lock at every try, and a
// decision that waits there misses its deadline. So the writer
// connection has no busy handler: begin tries BEGIN IMMEDIATE again
// every poll until busyTimeout. Calls poll more often than admin
// writes, so they get the lock first when both wait.
const (
	busyTimeout = 5 * time.Second
	gatePoll    = 250 * time.Microsecond
	adminPoll   = time.Millisecond
)

// begin starts an IMMEDIATE transaction on b, waiting for the write
// lock as above.
func begin(ctx context.Context, b beginner, poll time.Duration) (*sql.Tx, error) {
	var stop time.Time
	var t *time.Timer
	for {
		tx, err := b.BeginTx(ctx, nil) // DSN has _txlock=immediate
		if err == nil || !isBusy(err) {
			return tx, err
		}
		now := time.Now()
		if stop.IsZero() {
			stop = now.Add(busyTimeout)
		} else if now.After(stop) {
			return nil, tollguard.Errorf(tollguard.EUNAVAILABLE, "waited %v for the database's write lock (%v): another tollguard command or a long import holds it; try again in a moment", busyTimeout, err)
		}
		if t == nil {
			t = time.NewTimer(poll)
			defer t.Stop()
		} else {
			t.Reset(poll)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrBusy
}

func (s *DB) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *DB) pruneHeld() bool { return s.PruneHeld != nil && s.PruneHeld() }

// Migration is one embedded schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LatestSchema is the schema version this tollguard migrates to (0 if
// its embedded migrations cannot be read, which a test rules out).
func LatestSchema() int {
	ms, err := Migrations()
	if err != nil {
		return 0
	}
	return latestVersion(ms)
}

// latestVersion is the last of ms's versions (0 for none).
func latestVersion(ms []Migration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Migrations lists the embedded migrations in order. Files are named
// NNNN_name.sql; the number is the version.
func Migrations() ([]Migration, error) {
	ents, err := fs.ReadDir(migrations, "migration")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range ents {
		num, name, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrations.ReadFile(path.Join("migration", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// migrate applies each pending migration in its own transaction, so a
// failed one leaves the database at the previous version.
func (s *DB) migrate(ctx context.Context) error {
	// On an existing table this takes no lock (every CLI command opens
	// the database); only a new database's first open writes, and waits
	// for the lock as any write does.
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`
	_, err := s.db.ExecContext(ctx, create)
	if isBusy(err) {
		_, err = s.exec(ctx, create)
	}
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	ms, err := Migrations()
	if err != nil {
		return err
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if latest := latestVersion(ms); current > latest {
		return tollguard.Errorf(tollguard.EINVALID, "database %s is at schema version %d, newer than this tollguard (%d): a newer tollguard migrated it, and this one cannot use it (nothing was changed). Run the newer tollguard; to go back to this version, restore the backup taken before the upgrade (docs/troubleshooting.md)", s.path, current, latest)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		err := s.Tx(ctx, func(tx *sql.Tx) error {
			// Another process opening the database at the same moment
			// may have applied it while this one waited for the lock.
			var now int
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&now); err != nil || now >= m.Version {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, s.now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// seed loads the shipped defaults into a new database once: the
// high-risk destination list. An admin's replacement (or an emptied
// list) is never overwritten.
func (s *DB) seed(ctx context.Context) error {
	// Read first: every CLI command opens the database, and a write
	// transaction here would queue each one for the gate's write lock
	// (and the gate behind it) just to find the list seeded long ago.
	if seeded, err := s.highRiskSeeded(ctx, s.rdb); err != nil || seeded {
		return err
	}
	return s.Tx(ctx, func(tx *sql.Tx) error {
		if seeded, err := s.highRiskSeeded(ctx, tx); err != nil || seeded {
			return err // seeded meanwhile by another process
		}
		if err := replaceHighRiskTx(ctx, tx, tollguard.DefaultHighRisk()); err != nil {
			return fmt.Errorf("seed the default high-risk list: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO settings(key, value) VALUES ('high_risk_seeded', ?)`, strconv.FormatInt(s.now().Unix(), 10))
		return err
	})
}

// highRiskSeeded reports whether the default high-risk list was loaded
// once already.
func (s *DB) highRiskSeeded(ctx context.Context, q querier) (bool, error) {
	var done int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings WHERE key = 'high_risk_seeded'`).Scan(&done); err != nil {
		return false, fmt.Errorf("read settings: %w", err)
	}
	return done > 0, nil
}

// SchemaVersion returns the applied schema version.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// isConstraint reports whether err is a SQLite constraint violation.
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// CheckpointInterval is how often `tollguard serve` checkpoints the WAL
// (RunCheckpointer); the benchmark uses it too. 100 ms measured no
// different at 300 calls a second.
const CheckpointInterval = time.Second

// ErrCheckpointBlocked is reported by RunCheckpointer, and returned for
// the final checkpoint, when checkpoints run but cannot finish: SQLite
// reports that as a result row, not as an error. The usual cause is a
// long read (a big `tollguard calls` export, an sqlite3 .backup, another
// program holding the database open in a transaction); until it ends
// the WAL cannot be reset and grows by every write.
var ErrCheckpointBlocked = errors.New("WAL checkpoints cannot finish: a long-running reader or another checkpointer holds the WAL, so the -wal file grows until it lets go; " +
	"look for a long `tollguard calls` export, an sqlite3 .backup, or another program with the database open (fuser or lsof on the database file)")

// blockedTicks is how many checkpoint intervals in a row must leave the
// WAL unfinished before that is reported: one unfinished checkpoint is
// normal (a read that started before the last commit).
const blockedTicks = 60

// checkpoint runs PRAGMA wal_checkpoint(mode) on a reader and says
// whether it finished: SQLite returns a lock conflict (busy) or frames
// it could not copy (a reader still needs them) as a row, not an error.
func (s *DB) checkpoint(ctx context.Context, mode string) (done bool, err error) {
	var busy, log, ckpt int
	if err := s.rdb.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &ckpt); err != nil {
		return false, err
	}
	return busy == 0 && ckpt >= log, nil
}

// RunCheckpointer moves WAL checkpoints off the decision path until ctx
// ends. SQLite's automatic checkpoint runs inside whichever commit
// crosses 1000 pages, and fsyncs there: a call decision would pay
// milliseconds for it now and then. Instead the writer never
// checkpoints, and this loop checkpoints passively (readers and the
// writer carry on) every interval from a reader connection. It returns
// after a final checkpoint when ctx ends; one that cannot finish
// returns ErrCheckpointBlocked.
//
// A failed checkpoint (a disk full for a moment) turns the writer's
// automatic checkpoints back on until one succeeds again: off, nothing
// would checkpoint, and the WAL would grow by every write. Checkpoints
// that run but do not finish for blockedTicks intervals are reported
// with ErrCheckpointBlocked; they leave automatic checkpoints off, which
// are passive too and would be blocked the same way. report, if not
// nil, hears of each change: the error of a failing or blocked state,
// then nil when checkpoints finish again.
func (s *DB) RunCheckpointer(ctx context.Context, interval time.Duration, report func(error)) error {
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		return fmt.Errorf("disable automatic checkpoints: %w", err)
	}
	const (
		ok = iota
		failing
		blocked
	)
	auto := false // SQLite checkpoints inside commits
	state := ok   // as last reported
	unfinished := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			done, err := s.checkpoint(context.Background(), "TRUNCATE")
			if err == nil && !done {
				err = ErrCheckpointBlocked
			}
			return err
		case <-t.C:
			var err error
			if s.ckptFault != nil {
				err = s.ckptFault()
			}
			done := false
			if err == nil {
				done, err = s.checkpoint(ctx, "PASSIVE")
			}
			if done {
				unfinished = 0
			} else if err == nil {
				unfinished++
			}
			switch {
			case ctx.Err() != nil:
			case err != nil:
				var aerr error
				if !auto {
					if _, aerr = s.db.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 1000`); aerr == nil {
						auto = true
					}
				}
				if state != failing {
					state = failing
					if aerr != nil {
						err = fmt.Errorf("%w; and turning automatic checkpoints back on failed (retried each interval): %v", err, aerr)
					}
					if report != nil {
						report(fmt.Errorf("checkpoint: %w", err))
					}
				}
			default:
				// The loop's checkpoints run again: it takes over from
				// SQLite's, finished or not.
				if auto {
					if _, aerr := s.db.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); aerr != nil {
						continue // the loop is not on its own yet: next interval
					}
					auto = false
				}
				next := state
				switch {
				case done:
					next = ok
				case unfinished >= blockedTicks:
					next = blocked
				case state == failing:
					next = ok // running again; blocked only once it lasts
				}
				if next != state {
					state = next
					if report != nil {
						if state == blocked {
							report(fmt.Errorf("checkpoint: %w (%d checkpoints in a row, %s apart)", ErrCheckpointBlocked, unfinished, interval))
						} else {
							report(nil)
						}
					}
				}
			}
		}
	}
}

// walSizeLimit is the size the WAL is trimmed to when it restarts.
const walSizeLimit = 16 << 20

// openError says what to do about a database file that cannot be
// opened: the usual causes are a wrong path and the wrong user.
func openError(file string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return tollguard.Errorf(tollguard.EINVALID, "cannot create the database %s: the directory %s does not exist; create it, or fix TOLLGUARD_DB or --db", file, filepath.Dir(file))
	case errors.Is(err, fs.ErrPermission):
		return tollguard.Errorf(tollguard.EINVALID, "cannot open the database %s: permission denied; run tollguard as the user that owns it (the README's `sudo -u tollguard` alias), make sure that user can read and write it (chmod 600), or fix TOLLGUARD_DB or --db", file)
	case errors.Is(err, syscall.EISDIR):
		return tollguard.Errorf(tollguard.EINVALID, "%s is a directory; give the database file in it (TOLLGUARD_DB or --db), such as %s", file, filepath.Join(file, "tollguard.db"))
	}
	return fmt.Errorf("open database file %s: %w", file, err)
}

// noSpaceError says which disk is full and what to do when err is
// SQLITE_FULL or ENOSPC (SQLite reports the latter as an I/O error with
// the system errno); other errors are returned as they are.
func noSpaceError(file string, err error) error {
	if err == nil {
		return nil
	}
	var se sqlite3.Error
	full := errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.As(err, &se) && (se.Code == sqlite3.ErrFull || se.SystemErrno == syscall.ENOSPC || se.SystemErrno == syscall.EDQUOT)
	if !full {
		return err
	}
	dir := filepath.Dir(file)
	return tollguard.Errorf(tollguard.EUNAVAILABLE, "cannot write the database %s: the disk (or the user's quota) holding %s is full; "+
		"free space there (df -h %s), then try again (%v)", file, dir, dir, err)
}

// orphanedWAL refuses to create a database where file is missing but
// its -wal or -shm is there: the file was deleted or moved while a
// daemon had it open (it goes on using the deleted file), or one was
// killed after that. SQLite would take that WAL for the new file's and
// reset it under the daemon, which then reads the new file's pages as
// its own and can decide no call.
func orphanedWAL(file string) error {
	if _, err := os.Lstat(file); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Lstat(file + suffix); err == nil {
			return tollguard.Errorf(tollguard.EINVALID, "no database at %s, but its %s file is there: the database was deleted or moved while tollguard had it open "+
				"(a running `tollguard serve` goes on using the deleted file until it stops). Nothing was created. Put the database back (or restore a backup: docs/troubleshooting.md), "+
				"then restart tollguard serve; to start with an empty database instead, stop tollguard serve and remove %s-wal and %s-shm",
				file, suffix, file, file)
		}
	}
	return nil
}
