package voicemail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	_ "github.com/mattn/go-sqlite3" // the realtime table's driver

	"github.com/tollguard/tollguard"
)

// Realtime is a realtime voicemail table (extconfig.conf's
// "voicemail => ..." mapping) as a tollguard.MailboxSource: an SQLite
// file, or any database behind an ODBC connection string when tollguard
// is built with the odbc tag (realtime_odbc.go). Without that tag an
// ODBC DSN is a configuration error that says how to rebuild.
type Realtime struct {
	// DSN is "sqlite3:///var/lib/asterisk/realtime.sqlite3", a file
	// path, or "odbc:" and an ODBC connection string
	// ("odbc:DSN=asterisk", "odbc:Driver=...;Database=...").
	DSN   string
	Table string // default "voicemail"
}

var _ tollguard.MailboxSource = (*Realtime)(nil)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// odbcDriver is the database/sql driver for "odbc:" DSNs; "" in a build
// without ODBC (realtime_odbc.go sets it).
var odbcDriver string

// ODBCSupported reports whether this build reads realtime tables
// through ODBC (built with the odbc tag).
func ODBCSupported() bool { return odbcDriver != "" }

// rebuildForODBC is what an ODBC DSN gets from a build without ODBC.
const rebuildForODBC = "this tollguard was built without ODBC: rebuild with `make build TAGS=odbc` (needs unixodbc-dev)"

// realtimeDSN is a parsed DSN.
type realtimeDSN struct {
	odbc   bool
	target string // the SQLite file, or the ODBC connection string
}

// ParseRealtimeDSN checks dsn and table and returns the SQLite file, or
// "" for a valid ODBC DSN. Its messages mask passwords.
func ParseRealtimeDSN(dsn, table string) (file string, err error) {
	d, err := parseRealtimeDSN(dsn, table)
	if err != nil || d.odbc {
		return "", err
	}
	return d.target, nil
}

func parseRealtimeDSN(dsn, table string) (realtimeDSN, error) {
	if table != "" && !identRE.MatchString(table) {
		return realtimeDSN{}, tollguard.Errorf(tollguard.EINVALID, "realtime voicemail table %q: use a plain table name", table)
	}
	low := strings.ToLower(dsn)
	var file string
	switch {
	case dsn == "":
		return realtimeDSN{}, tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN is empty")
	case strings.HasPrefix(low, "odbc:"):
		return parseODBCDSN(dsn)
	case strings.HasPrefix(low, "sqlite3://"):
		file = dsn[len("sqlite3://"):]
	case strings.HasPrefix(low, "sqlite://"):
		file = dsn[len("sqlite://"):]
	case strings.HasPrefix(low, "sqlite3:"):
		file = dsn[len("sqlite3:"):]
	case strings.Contains(dsn, "://"):
		return realtimeDSN{}, tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN %q: use sqlite3:///path/to/file, or odbc: and an ODBC connection string (odbc:DSN=asterisk)", MaskDSN(dsn))
	default:
		file = dsn
	}
	if file == "" {
		return realtimeDSN{}, tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN %q names no file", dsn)
	}
	return realtimeDSN{target: file}, nil
}

func parseODBCDSN(dsn string) (realtimeDSN, error) {
	bad := func(why string) (realtimeDSN, error) {
		return realtimeDSN{}, tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN %q: %s", MaskDSN(dsn), why)
	}
	if !ODBCSupported() {
		return bad(rebuildForODBC)
	}
	conn := strings.TrimSpace(dsn[len("odbc:"):])
	if strings.HasPrefix(conn, "//") {
		return bad("write odbc: and an ODBC connection string, not a URL: odbc:DSN=asterisk (a DSN from odbc.ini) or odbc:Driver=...;Database=...")
	}
	attrs, err := parseODBCConn(conn)
	if err != nil {
		return bad(err.Error())
	}
	named, afterSecret := false, false
	for _, a := range attrs {
		switch {
		case !a.hasValue && afterSecret: // do not quote what may be part of the password
			return bad("a part after the password is not key=value: put a password that holds ; or } in braces, PWD={...}")
		case !a.hasValue:
			return bad(fmt.Sprintf("%q is not key=value; write odbc:DSN=asterisk (a DSN from odbc.ini) or odbc:Driver=...;Database=...", a.key))
		}
		afterSecret = secretKey(a.key)
		switch strings.ToUpper(a.key) {
		case "DSN", "DRIVER", "FILEDSN":
			named = named || a.value != ""
		}
	}
	if !named {
		return bad("the connection string names no DSN= or Driver=: write odbc:DSN=asterisk (a DSN from odbc.ini) or odbc:Driver=...;Database=...")
	}
	return realtimeDSN{odbc: true, target: conn}, nil
}

// odbcAttr is one key=value of an ODBC connection string.
type odbcAttr struct {
	key, value string
	raw        string // the value as written (braced or not)
	hasValue   bool   // there was an "="
}

// parseODBCConn splits an ODBC connection string into its attributes:
// "key=value" separated by ";", a value in braces may hold ";" ("}}"
// is a literal "}").
func parseODBCConn(s string) ([]odbcAttr, error) {
	var out []odbcAttr
	for i := 0; i < len(s); {
		if s[i] == ';' || s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		end := strings.IndexAny(s[i:], "=;")
		if end < 0 || s[i+end] == ';' {
			n := len(s) - i
			if end >= 0 {
				n = end
			}
			out = append(out, odbcAttr{key: strings.TrimSpace(s[i : i+n])})
			i += n
			continue
		}
		a := odbcAttr{key: strings.TrimSpace(s[i : i+end]), hasValue: true}
		i += end + 1
		start := i
		if i < len(s) && s[i] == '{' {
			var v strings.Builder
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '}' {
					if i+1 < len(s) && s[i+1] == '}' {
						v.WriteByte('}')
						i++
						continue
					}
					closed = true
					i++
					break
				}
				v.WriteByte(s[i])
			}
			a.value, a.raw = v.String(), s[start:i]
			out = append(out, a)
			if !closed {
				return out, fmt.Errorf("the value of %s has a { without its }", a.key)
			}
			continue
		}
		for i < len(s) && s[i] != ';' {
			i++
		}
		a.raw = s[start:i]
		a.value = strings.TrimSpace(a.raw)
		out = append(out, a)
	}
	return out, nil
}

// secretKey reports whether an ODBC attribute holds a secret (PWD=,
// Password=, and their vendor variants).
func secretKey(key string) bool {
	k := strings.ToUpper(key)
	return strings.Contains(k, "PWD") || strings.Contains(k, "PASSWORD")
}

// MaskDSN returns dsn fit to print: the values of an ODBC connection
// string's PWD= and Password= (and a URL's password) become "***".
func MaskDSN(dsn string) string {
	if strings.HasPrefix(strings.ToLower(dsn), "odbc:") {
		return dsn[:len("odbc:")] + maskODBCConn(dsn[len("odbc:"):])
	}
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			return u.Redacted()
		}
		if i := strings.LastIndexByte(dsn, '@'); i >= 0 {
			return "***" + dsn[i:]
		}
	}
	return dsn
}

// maskODBCConn masks the secrets of an ODBC connection string. A piece
// without "=" after a secret is masked too: it is most likely the rest
// of a password with a ";" that should have been in braces.
func maskODBCConn(s string) string {
	attrs, _ := parseODBCConn(s)
	var parts []string
	afterSecret := false
	for _, a := range attrs {
		switch {
		case !a.hasValue && afterSecret:
			parts = append(parts, "***")
		case !a.hasValue:
			parts = append(parts, a.key)
		case secretKey(a.key):
			parts, afterSecret = append(parts, a.key+"=***"), true
		default:
			parts, afterSecret = append(parts, a.key+"="+a.raw), false
		}
	}
	return strings.Join(parts, ";")
}

// odbcSecrets are the secret values of an ODBC connection string, to
// scrub from driver messages.
func odbcSecrets(conn string) []string {
	attrs, _ := parseODBCConn(conn)
	var out []string
	for _, a := range attrs {
		if a.hasValue && secretKey(a.key) && len(a.value) >= 3 {
			out = append(out, a.value)
		}
	}
	return out
}

// scrubbedError is an error whose text has the connection string's
// secrets replaced; errors.Is and As still see the original.
type scrubbedError struct {
	err  error
	text string
}

func (e *scrubbedError) Error() string { return e.text }
func (e *scrubbedError) Unwrap() error { return e.err }

func (r *Realtime) scrub(err error) error {
	if err == nil {
		return nil
	}
	d, perr := parseRealtimeDSN(r.DSN, r.Table)
	if perr != nil || !d.odbc {
		return err
	}
	text := err.Error()
	for _, s := range odbcSecrets(d.target) {
		text = strings.ReplaceAll(text, s, "***")
	}
	if text == err.Error() {
		return err
	}
	return &scrubbedError{err: err, text: text}
}

func (r *Realtime) table() string {
	if r.Table == "" {
		return "voicemail"
	}
	return r.Table
}

// Name names the table, its DSN's passwords masked.
func (r *Realtime) Name() string { return "realtime " + r.table() + " (" + MaskDSN(r.DSN) + ")" }

// ReloadModule is none: app_voicemail reads realtime rows when it needs them.
func (r *Realtime) ReloadModule() string { return "" }

func (r *Realtime) open(ctx context.Context) (*sql.DB, realtimeDSN, error) {
	d, err := parseRealtimeDSN(r.DSN, r.Table)
	if err != nil {
		return nil, d, err
	}
	if d.odbc {
		db, err := sql.Open(odbcDriver, d.target)
		if err == nil {
			if err = db.PingContext(ctx); err != nil {
				db.Close()
			}
		}
		if err != nil {
			return nil, d, fmt.Errorf("connect to %s through ODBC: %w", r.Name(), r.scrub(err))
		}
		return db, d, nil
	}
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	q.Set("mode", "rw") // never create an empty database by mistake
	db, err := sql.Open("sqlite3", "file:"+d.target+"?"+q.Encode())
	return db, d, err
}

// Mailboxes lists the table's mailboxes (columns context, mailbox,
// password, fullname, email, as Asterisk's realtime schema names them).
// An SQLite row is known by its rowid; through ODBC (MySQL, PostgreSQL,
// ...) there is no such thing, so a row is known by its context and
// mailbox. A mailbox in more than one row is reported, and each of its
// rows is left to the admin (ByHand).
func (r *Realtime) Mailboxes(ctx context.Context) ([]tollguard.Mailbox, []string, error) {
	db, d, err := r.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	cols := `COALESCE(context, ''), COALESCE(mailbox, ''), COALESCE(password, ''), COALESCE(fullname, ''), COALESCE(email, '')`
	if !d.odbc {
		cols = "rowid, " + cols
	}
	rows, err := db.QueryContext(ctx, `SELECT `+cols+` FROM `+r.table())
	if err != nil {
		return nil, nil, fmt.Errorf("read realtime voicemail table %s: %w", r.table(), r.scrub(err))
	}
	defer rows.Close()
	var out []tollguard.Mailbox
	seen := map[string]int{}
	for rows.Next() {
		var id int64
		var m tollguard.Mailbox
		dest := []any{&m.Context, &m.Mailbox, &m.PIN, &m.FullName, &m.Email}
		if !d.odbc {
			dest = append([]any{&id}, dest...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, fmt.Errorf("read realtime voicemail table %s: %w", r.table(), r.scrub(err))
		}
		if m.Context == "" {
			m.Context = "default"
		}
		m.PIN = strings.TrimSpace(m.PIN)
		if strings.HasPrefix(m.PIN, "*") {
			// app_voicemail's realtime loader refuses a password starting
			// with "*" and leaves the mailbox with none: no PIN is asked.
			m.PIN = ""
		}
		if strings.HasPrefix(m.PIN, "-") {
			m.Locked, m.PIN = true, m.PIN[1:]
		}
		m.Source, m.Where = r.Name(), fmt.Sprintf("%s row %d", r.table(), id)
		if d.odbc {
			m.Where = fmt.Sprintf("%s row of %s", r.table(), m.Key())
		}
		seen[m.Key()]++
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read realtime voicemail table %s: %w", r.table(), r.scrub(err))
	}
	// app_voicemail reads one row of a mailbox (ast_load_realtime: the
	// first the database returns, in no set order), so which of several
	// rows' PINs is in force is unknown, and a new PIN in one of them
	// may never be asked for. Which rows are a mailbox's is the
	// database's comparison, as in app_voicemail's lookup (a
	// case-insensitive collation takes 'Sales' as 'sales'): count them
	// as the writers do, or they skip rows reported as fixable.
	byHand := map[string]string{}
	var problems []string
	for _, m := range out {
		key := m.Key()
		if _, done := byHand[key]; done {
			continue
		}
		n, ids, err := r.rowsOf(ctx, db, d, m)
		if err != nil {
			return nil, nil, err
		}
		byHand[key] = ""
		if n < 2 && seen[key] < 2 {
			continue
		}
		n = max(n, seen[key])
		rows := fmt.Sprintf("%d rows of %s", n, r.table())
		var notes []string
		if !d.odbc {
			notes = append(notes, "rowids "+strings.Join(ids, ", "))
		}
		if n > seen[key] {
			notes = append(notes, "the database takes differently written ones, such as in another letter case, as the same")
		}
		if len(notes) > 0 {
			rows += " (" + strings.Join(notes, "; ") + ")"
		}
		byHand[key] = fmt.Sprintf("mailbox %s is in %s, and app_voicemail reads only the first row the database returns: "+
			"keep one row for %s in %s, with a random PIN (digits), and delete the others", key, rows, key, r.table())
		problems = append(problems, fmt.Sprintf("mailbox %s is in %s: app_voicemail reads only the first row the database returns, so tollguard changes none of their PINs (--apply): keep one row per mailbox and context", key, rows))
	}
	for i := range out {
		out[i].ByHand = byHand[out[i].Key()]
	}
	return out, problems, nil
}

// rowsOf counts the rows the database takes as m's mailbox, with the
// condition the writers use, and lists their rowids (SQLite).
func (r *Realtime) rowsOf(ctx context.Context, db *sql.DB, d realtimeDSN, m tollguard.Mailbox) (int, []string, error) {
	where, args := keyWhere(m)
	fail := func(err error) (int, []string, error) {
		return 0, nil, fmt.Errorf("read realtime voicemail table %s: %w", r.table(), r.scrub(err))
	}
	if d.odbc {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+r.table()+` WHERE `+where, args...).Scan(&n); err != nil {
			return fail(err)
		}
		return n, nil, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT rowid FROM `+r.table()+` WHERE `+where+` ORDER BY rowid`, args...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fail(err)
		}
		ids = append(ids, fmt.Sprint(id))
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return len(ids), ids, nil
}

// SetPINs updates the rows in one transaction, each only if its
// password is still the one read.
func (r *Realtime) SetPINs(ctx context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	db, d, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, r.scrub(err)
	}
	defer tx.Rollback()
	var done []tollguard.PINChange
	for _, c := range changes {
		old, pin := c.Mailbox.PIN, c.NewPIN
		if c.Mailbox.Locked {
			old, pin = "-"+old, "-"+pin
		}
		ok, err := r.setPIN(ctx, tx, c.Mailbox, old, pin, d.odbc)
		if err != nil {
			return nil, err
		}
		if ok {
			done = append(done, c)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, r.scrub(err)
	}
	return done, nil
}

// keyWhere is the condition that a row is m's (context, mailbox), where
// an empty or NULL context is "default" as Mailboxes reads it.
func keyWhere(m tollguard.Mailbox) (string, []any) {
	if m.Context == "default" {
		return `mailbox = ? AND (context = ? OR context = '' OR context IS NULL)`, []any{m.Mailbox, m.Context}
	}
	return `mailbox = ? AND context = ?`, []any{m.Mailbox, m.Context}
}

// pinGuard is the condition that the row's password is still old, as
// Mailboxes read it: an empty PIN was read from "" or a "*" password.
func pinGuard(old string) (string, []any) {
	if old == "" {
		return `(TRIM(COALESCE(password, '')) = '' OR TRIM(password) LIKE '*%')`, nil
	}
	return `TRIM(COALESCE(password, '')) = ?`, []any{old}
}

// errManyRows aborts the transaction: an update matched more than one row.
var errManyRows = errors.New("matched more than one row")

// setPIN updates m's row if it is still the mailbox's one row (one
// added meanwhile leaves app_voicemail reading either: see Mailboxes)
// and its password is still old. An SQLite row is also held to the
// rowid Mailboxes read; through ODBC (MySQL, PostgreSQL, ...) there is
// no such thing, and an update that matched several rows aborts.
func (r *Realtime) setPIN(ctx context.Context, tx *sql.Tx, m tollguard.Mailbox, old, pin string, odbc bool) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("update realtime mailbox %s: %w", m.Key(), r.scrub(err))
	}
	var id int64
	if !odbc {
		if _, err := fmt.Sscanf(strings.TrimPrefix(m.Where, r.table()+" row "), "%d", &id); err != nil {
			return false, fmt.Errorf("realtime mailbox %s: bad row reference %q", m.Key(), m.Where)
		}
	}
	where, args := keyWhere(m)
	var rows int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+r.table()+` WHERE `+where, args...).Scan(&rows); err != nil {
		return fail(err)
	}
	if rows != 1 {
		return false, nil // gone, or in several rows since it was read
	}
	if !odbc {
		where, args = `rowid = ? AND `+where, append([]any{id}, args...)
	}
	guard, gargs := pinGuard(old)
	res, err := tx.ExecContext(ctx, `UPDATE `+r.table()+` SET password = ? WHERE `+where+` AND `+guard,
		append(append([]any{pin}, args...), gargs...)...)
	if err != nil {
		return fail(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(err)
	}
	if n > 1 {
		return false, fmt.Errorf("update realtime mailbox %s: %w (a row was added meanwhile); nothing was written", m.Key(), errManyRows)
	}
	return n == 1, nil
}
