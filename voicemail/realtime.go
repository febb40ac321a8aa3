package voicemail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
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
	// Conf is the voicemail.conf (and users.conf) app_voicemail reads
	// too: its [general] searchcontexts says how a mailbox is looked up
	// in the table, and a mailbox it defines is never looked up there.
	// nil: not known, so only rows every lookup reads alone are
	// rewritten (see lookupModel).
	Conf *Source
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
	// SetPINs reads, then writes: begun deferred, its write could not wait
	// for one Asterisk holds open (SQLite answers "locked" at once rather
	// than deadlock), so its transaction takes the write lock first.
	q.Set("_txlock", "immediate")
	q.Set("mode", "rw") // never create an empty database by mistake
	db, err := sql.Open("sqlite3", "file:"+d.target+"?"+q.Encode())
	return db, d, err
}

// lookupModel is how app_voicemail finds a realtime mailbox, as far as
// tollguard knows it from Realtime.Conf. find_user looks in the
// mailboxes voicemail.conf and users.conf define first, and asks the
// table (find_user_realtime) only for one it has not: by mailbox and
// context ("default" when the dialplan names none), or, with [general]
// searchcontexts = yes and no context named, by mailbox alone. Either
// way the database compares, and the first row it returns is read.
type lookupModel struct {
	known   bool              // Conf is set, so search and defined are read
	search  bool              // [general] searchcontexts
	defined map[string]string // boxKey → where the files define the mailbox
}

// lookup reads the model from Conf.
func (r *Realtime) lookup() (lookupModel, error) {
	if r.Conf == nil {
		return lookupModel{}, nil
	}
	t, ut, err := r.Conf.load()
	if err != nil {
		return lookupModel{}, fmt.Errorf("%w (app_voicemail reads it before %s)", err, r.Name())
	}
	_, _, defined := r.Conf.locateDefined(t, ut)
	return lookupModel{known: true, search: t.SearchContexts, defined: defined}, nil
}

// hiddenBy is where voicemail.conf or users.conf defines m's mailbox,
// which find_user then returns without asking the table ("" if not).
func (lk lookupModel) hiddenBy(m tollguard.Mailbox) string {
	return lk.defined[boxKey(lk.search, m.Mailbox, m.Context)]
}

// readable reports whether some lookup can read m's row: one the files
// do not hide, with a context, or without one and searchcontexts on (a
// NULL or empty context never equals the one a lookup names). Not
// knowing the setting, a row without a context counts as unread.
func (lk lookupModel) readable(m tollguard.Mailbox) bool {
	return lk.hiddenBy(m) == "" && (m.Context != "" || lk.search)
}

// answers is the condition for the rows a lookup reading m's row may
// return instead: its mailbox and context, or with searchcontexts (or
// not knowing it) its mailbox in any context.
func (lk lookupModel) answers(m tollguard.Mailbox) (string, []any) {
	if lk.known && !lk.search {
		return `mailbox = ? AND context = ?`, []any{m.Mailbox, m.Context}
	}
	return `mailbox = ?`, []any{m.Mailbox}
}

// rowWhere is the condition that a row is m's: its mailbox and context,
// a NULL or empty one for a row read without a context.
func rowWhere(m tollguard.Mailbox) (string, []any) {
	if m.Context == "" {
		return `mailbox = ? AND (context IS NULL OR context = '')`, []any{m.Mailbox}
	}
	return `mailbox = ? AND context = ?`, []any{m.Mailbox, m.Context}
}

// rtRow is a row as Mailboxes read it.
type rtRow struct {
	tollguard.Mailbox
	id      int64 // SQLite's rowid
	null    bool  // the context is NULL (not empty)
	nullBox bool  // the mailbox is NULL
	// boxType and ctxType are SQLite's typeof() of mailbox and context
	// ("" through ODBC).
	boxType, ctxType string
	// boxMiss: the database does not take the mailbox as equal to its
	// text, which is what a lookup asks for (INTEGER 1001 in a column
	// without a type is not '1001'), so no lookup finds the row; ctxMiss:
	// the same of its context, for lookups that name it.
	boxMiss, ctxMiss bool
	// pinMiss: the database does not take the password columns as
	// equal to the values read (an ODBC driver converted them), so the
	// writers' guard (pinWhere) would never match.
	pinMiss bool
	// cols are the table's password columns (see pinColumns), pins
	// their values in the row as the database returns them; set is the
	// one whose value app_voicemail uses, -1 if none gives it one.
	cols []string
	pins []sql.NullString
	set  int
}

// pinWhere is " AND" the condition that the row's password columns
// still hold what was read.
func (row rtRow) pinWhere(odbc bool) (string, []any) {
	var where string
	var args []any
	for i, c := range row.cols {
		if v := row.pins[i]; v.Valid {
			where += ` AND ` + pinValue(c, odbc) + ` = ?`
			args = append(args, v.String)
		} else {
			where += ` AND ` + c + ` IS NULL`
		}
	}
	return where, args
}

// target is the column a new PIN of the row goes to: the one
// app_voicemail takes its password from, or if none, password.
func (row rtRow) target() string {
	if row.set >= 0 {
		return row.cols[row.set]
	}
	for _, c := range row.cols {
		if strings.EqualFold(c, "password") {
			return c
		}
	}
	return row.cols[0]
}

// label names a row's mailbox: mailbox@context, or the mailbox and that
// it has no context.
func label(m tollguard.Mailbox) string {
	if m.Context == "" {
		return m.Mailbox + " with no context"
	}
	return m.Key()
}

// Mailboxes lists the table's mailboxes (columns context, mailbox,
// password, fullname, email, as Asterisk's realtime schema names them,
// and secret and vmsecret if the table has them: see inForce).
// A row without a context (NULL or empty) has an empty Context. An
// SQLite row is known by its rowid; through ODBC (MySQL, PostgreSQL,
// ...) there is no such thing, so a row is known by its context and
// mailbox. A row app_voicemail never reads, or one it may read in
// place of another (see lookupModel), is reported and left to the
// admin (ByHand): a new PIN there would not be the one asked for.
func (r *Realtime) Mailboxes(ctx context.Context) ([]tollguard.Mailbox, []string, error) {
	lk, err := r.lookup()
	if err != nil {
		return nil, nil, err
	}
	db, d, err := r.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	rows, problems, err := r.read(ctx, db, d.odbc, lk)
	if err != nil {
		return nil, nil, err
	}
	boxes := make([]tollguard.Mailbox, len(rows))
	for i, row := range rows {
		boxes[i] = row.Mailbox
	}
	return boxes, problems, nil
}

// querier is the database, or SetPINs' transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// read reads every row of the table through q and judges it: its
// ByHand is set where a new PIN would not be the one app_voicemail asks
// for. Mailboxes and SetPINs (in its transaction) both read so, so a
// row is written exactly when it has no ByHand.
func (r *Realtime) read(ctx context.Context, q querier, odbc bool, lk lookupModel) ([]rtRow, []string, error) {
	fail := func(err error) ([]rtRow, []string, error) {
		return nil, nil, fmt.Errorf("read realtime voicemail table %s: %w", r.table(), r.scrub(err))
	}
	pcols, err := r.pinColumns(ctx, q)
	if err != nil {
		return fail(err)
	}
	cols := `COALESCE(context, ''), CASE WHEN context IS NULL THEN 1 ELSE 0 END, COALESCE(mailbox, ''), CASE WHEN mailbox IS NULL THEN 1 ELSE 0 END, COALESCE(fullname, ''), COALESCE(email, '')`
	if !odbc {
		// As res_config_sqlite3 reads them: the text of a number.
		cols = `rowid, COALESCE(CAST(context AS TEXT), ''), context IS NULL, COALESCE(CAST(mailbox AS TEXT), ''), mailbox IS NULL, COALESCE(fullname, ''), COALESCE(email, ''), typeof(mailbox), typeof(context)`
	}
	for _, c := range pcols {
		cols += ", " + pinValue(c, odbc)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+cols+` FROM `+r.table())
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []rtRow
	for rows.Next() {
		row := rtRow{cols: pcols, pins: make([]sql.NullString, len(pcols))}
		var null, nullBox int
		m := &row.Mailbox
		// An ODBC driver may return NULL for COALESCE(x, ''): SQLite's
		// converts '' to the type of a column's first value.
		var ctxt, box, name, email sql.NullString
		dest := []any{&ctxt, &null, &box, &nullBox, &name, &email}
		if !odbc {
			dest = append(append([]any{&row.id}, dest...), &row.boxType, &row.ctxType)
		}
		for i := range row.pins {
			dest = append(dest, &row.pins[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return fail(err)
		}
		row.null, row.nullBox = null == 1, nullBox == 1
		m.Context, m.Mailbox, m.FullName, m.Email = ctxt.String, box.String, name.String, email.String
		var pw string
		pw, row.set = inForce(odbc, pcols, row.pins)
		if strings.HasPrefix(pw, "-") {
			m.Locked, pw = true, pw[1:]
		}
		m.PIN = pw
		m.Source, m.Where = r.Name(), fmt.Sprintf("%s row %d", r.table(), row.id)
		if odbc {
			m.Where = fmt.Sprintf("%s row of %s", r.table(), label(*m))
		}
		if c := row.target(); !strings.EqualFold(c, "password") {
			m.Where += ", column " + c // the PIN is not where it usually is
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	rows.Close()
	j := &judge{r: r, q: q, odbc: odbc, lk: lk, rows: out, sets: map[string]rowSet{}}
	for i := range out {
		if err := j.self(ctx, i); err != nil {
			return nil, nil, err
		}
	}
	j.group()
	var problems []string
	reported := map[string]bool{}
	if !lk.known {
		// Whatever the rows: voicemail.conf's mailboxes may hide any of
		// them, and searchcontexts decides which are read.
		problems, reported[unknownProblem] = append(problems, unknownProblem), true
	}
	for i := range out {
		hand, problem, err := j.row(ctx, i)
		if err != nil {
			return nil, nil, err
		}
		out[i].ByHand = hand
		if problem != "" && !reported[problem] {
			reported[problem] = true
			problems = append(problems, problem)
		}
	}
	return out, problems, nil
}

// pinColumns are the columns of the table, in its order, that
// apply_options_full takes a mailbox's password from.
func (r *Realtime) pinColumns(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT * FROM `+r.table()+` WHERE 1 = 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	all, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range all {
		switch strings.ToLower(c) {
		case "password", "secret", "vmsecret": // only these names: safe to put in SQL
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("it has no password column, nor secret or vmsecret (its columns: %s); is it app_voicemail's table?", strings.Join(all, ", "))
	}
	return out, rows.Err()
}

// pinValue selects a password column as the driver hands it over:
// res_config_sqlite3 takes the text of any value, as CAST does.
func pinValue(col string, odbc bool) string {
	if odbc {
		return col
	}
	return "CAST(" + col + " AS TEXT)"
}

// isBlank is a byte ast_strip removes: any below 33.
func isBlank(r rune) bool { return r < 33 }

// driverValues is what ast_load_realtime hands app_voicemail for a
// column holding v. res_config_sqlite3 gives the value as stored (NULL
// as ""); res_config_odbc skips NULL and splits the text at ";" into
// pieces, drops those of only blanks and control characters, cuts them
// off the end of the others but keeps leading ones (it tests
// ast_strip's result, yet hands over the piece ast_strip trimmed in
// place), and decodes ^XX in each. ast_load_realtime then drops empty
// values and makes a lone blank empty. A value ends at a NUL, as a C
// string does.
func driverValues(odbc bool, v sql.NullString) []string {
	if !v.Valid {
		return nil
	}
	vals := []string{v.String}
	if odbc {
		vals = nil
		for _, piece := range strings.Split(v.String, ";") {
			if strings.TrimFunc(piece, isBlank) != "" {
				vals = append(vals, decodeChunk(strings.TrimRightFunc(piece, isBlank)))
			}
		}
	}
	var out []string
	for _, s := range vals {
		s, _, _ = strings.Cut(s, "\x00")
		switch s {
		case "":
			continue
		case " ":
			s = ""
		}
		out = append(out, s)
	}
	return out
}

// decodeChunk decodes res_config_odbc's ^XX (upper-case hex) escapes.
func decodeChunk(s string) string {
	hex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '^' && i+2 < len(s) {
			hi, ok1 := hex(s[i+1])
			lo, ok2 := hex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// inForce is the password app_voicemail takes from a row whose password
// columns cols hold vals (apply_options_full, over the values in the
// table's column order): vmsecret always, secret or password only
// while there is none yet, and not one starting with "*", which it
// refuses. It also returns the column that set it, -1 if none did.
func inForce(odbc bool, cols []string, vals []sql.NullString) (string, int) {
	pw, set := "", -1
	for i, c := range cols {
		for _, v := range driverValues(odbc, vals[i]) {
			if strings.EqualFold(c, "vmsecret") || (pw == "" && !strings.HasPrefix(v, "*")) {
				pw, set = v, i
			}
		}
	}
	return pw, set
}

// rowSet is the rows the database matches to a condition: how many,
// and their rowids (SQLite).
type rowSet struct {
	n      int
	ids    []string
	rowids []int64 // ids as numbers, sorted in Go, to search
}

// judge decides, row by row, whether a new PIN would be the one
// app_voicemail asks for, and if not what the admin changes instead.
type judge struct {
	r    *Realtime
	q    querier
	odbc bool
	lk   lookupModel
	rows []rtRow
	sets map[string]rowSet // by condition and arguments
	// boxes groups the rows some lookup finds by their mailbox (as Go
	// compares: the database's count is match's), built once after self
	// so that row does not go over every row for each.
	boxes map[string]*boxRows
}

// boxRows is the rows some lookup finds of one mailbox as read: how
// many, their labels (each once, in table order), and how many of each
// context.
type boxRows struct {
	n      int
	labels []string
	seen   map[string]bool // labels
	ctx    map[string]int
}

// group fills j.boxes from j.rows, after self has judged every row.
func (j *judge) group() {
	j.boxes = map[string]*boxRows{}
	for _, o := range j.rows {
		if o.nullBox || o.boxMiss { // rows no lookup finds answer none
			continue
		}
		g := j.boxes[o.Mailbox.Mailbox]
		if g == nil {
			g = &boxRows{seen: map[string]bool{}, ctx: map[string]int{}}
			j.boxes[o.Mailbox.Mailbox] = g
		}
		g.n++
		if l := label(o.Mailbox); !g.seen[l] {
			g.seen[l] = true
			g.labels = append(g.labels, l)
		}
		g.ctx[o.Context]++
	}
}

// match counts the rows the database takes as matching where: its own
// comparison, as in app_voicemail's lookup (a case-insensitive
// collation takes 'Sales' as 'sales'), and the writers'.
func (j *judge) match(ctx context.Context, where string, args ...any) (rowSet, error) {
	key := fmt.Sprintf("%s\x00%q", where, args)
	if s, ok := j.sets[key]; ok {
		return s, nil
	}
	fail := func(err error) (rowSet, error) {
		return rowSet{}, fmt.Errorf("read realtime voicemail table %s: %w", j.r.table(), j.r.scrub(err))
	}
	var s rowSet
	if j.odbc {
		if err := j.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+j.r.table()+` WHERE `+where, args...).Scan(&s.n); err != nil {
			return fail(err)
		}
	} else {
		rows, err := j.q.QueryContext(ctx, `SELECT rowid FROM `+j.r.table()+` WHERE `+where+` ORDER BY rowid`, args...)
		if err != nil {
			return fail(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return fail(err)
			}
			s.ids, s.rowids = append(s.ids, fmt.Sprint(id)), append(s.rowids, id)
		}
		if err := rows.Err(); err != nil {
			return fail(err)
		}
		// A table's own column named rowid hides SQLite's, and one of a
		// text type orders '10' before '9'.
		slices.Sort(s.rowids)
		s.n = len(s.ids)
	}
	j.sets[key] = s
	return s, nil
}

// describe is "N rows of TABLE (rowids ...; ...)" for the rows of s,
// seen of which were read as the same (exactly equal) ones; with also
// listing the mailboxes they hold.
func (j *judge) describe(s rowSet, seen int, also []string) string {
	n := max(s.n, seen)
	var notes []string
	if len(s.ids) > 0 {
		notes = append(notes, "rowids "+strings.Join(s.ids, ", "))
	}
	if len(also) > 0 {
		notes = append(notes, strings.Join(also, ", "))
	}
	if n > seen {
		notes = append(notes, "the database takes differently written ones, such as in another letter case, as the same")
	}
	out := fmt.Sprintf("%d rows of %s", n, j.r.table())
	if len(notes) > 0 {
		out += " (" + strings.Join(notes, "; ") + ")"
	}
	return out
}

// self finds whether the database takes row i's mailbox, and its
// context, as equal to their text, as a lookup and the writers ask for
// them.
func (j *judge) self(ctx context.Context, i int) error {
	row := &j.rows[i]
	if row.nullBox {
		return nil
	}
	// Through ODBC a row is not told from others of its mailbox: it is
	// found if any is.
	found := func(where string, args ...any) (bool, error) {
		s, err := j.match(ctx, where, args...)
		if j.odbc {
			return s.n > 0, err
		}
		_, in := slices.BinarySearch(s.rowids, row.id)
		return in, err
	}
	ok, err := found(`mailbox = ?`, row.Mailbox.Mailbox)
	if err != nil || !ok {
		row.boxMiss = !ok
		return err
	}
	where, args := rowWhere(row.Mailbox)
	if ok, err = found(where, args...); err != nil || !ok {
		row.ctxMiss = !ok
		return err
	}
	pw, pargs := row.pinWhere(j.odbc)
	ok, err = found(where+pw, append(args, pargs...)...)
	row.pinMiss = !ok
	return err
}

// notText is the by-hand advice and the problem for row i, whose
// column col ("mailbox" or "context") the database does not take as
// equal to its text.
func (j *judge) notText(i int, col string) (hand, problem string) {
	row, tbl := j.rows[i], j.r.table()
	m := row.Mailbox
	val, typ := m.Mailbox, row.boxType
	asker, never, whom := "app_voicemail's lookup", ", so app_voicemail never reads this row", fmt.Sprintf("app_voicemail's lookup (mailbox = '%s')", val)
	if col == "context" {
		// searchcontexts = yes may still find it by its number alone.
		val, typ = m.Context, row.ctxType
		asker, never, whom = "app_voicemail's lookup of "+m.Key(), "", "a lookup of "+m.Key()
	}
	if j.odbc {
		hand = fmt.Sprintf("%s holds its %s %s in a form the database does not take as equal to the text '%s' %s asks for (a number in a column without a text type?)%s: "+
			"store the %s as text (a VARCHAR column, as Asterisk's schema has) and give the row a random PIN (digits), or delete the row", m.Where, col, val, val, asker, never, col)
		return hand, fmt.Sprintf("%s (mailbox %s) holds its %s in a form the database does not take as equal to the text '%s', so %s never finds it; tollguard leaves its PIN alone (--apply): store the %s as text",
			m.Where, label(m), col, val, whom, col)
	}
	kind := "a " + typ
	if strings.IndexAny(typ, "aeiou") == 0 {
		kind = "an " + typ
	}
	hand = fmt.Sprintf("%s holds its %s %s as %s, not text, and %s asks for the text '%s', which the database does not take as equal%s: "+
		"store the %s as text (UPDATE %s SET %s = CAST(%s AS TEXT) WHERE rowid = %d) and give the row a random PIN (digits), or delete the row",
		m.Where, col, val, kind, asker, val, never, col, tbl, col, col, row.id)
	return hand, fmt.Sprintf("%s (mailbox %s) holds its %s as %s, not text, so %s never finds it; tollguard leaves its PIN alone (--apply): store the %s as text", m.Where, label(m), col, kind, whom, col)
}

// unknownProblem is reported once by every audit of a table without
// voicemail.conf.
const unknownProblem = "[audit.pins] voicemail_conf is not set, so tollguard does not know how app_voicemail looks realtime mailboxes up " +
	"(voicemail.conf's [general] searchcontexts) nor which mailboxes voicemail.conf and users.conf define ahead of the table: " +
	"--apply rewrites only rows with a context whose mailbox number is in no other row; set voicemail_conf"

// row judges row i: "" for a row whose new PIN is the one asked for,
// else what the admin changes (ByHand) and a problem to report.
func (j *judge) row(ctx context.Context, i int) (hand, problem string, err error) {
	m, lk, tbl := j.rows[i].Mailbox, j.lk, j.r.table()
	if j.rows[i].nullBox {
		// No lookup names a NULL mailbox, and setPIN's condition would
		// match no row: offered, it would be skipped run after run.
		hand = fmt.Sprintf("%s has no mailbox (NULL), which no lookup names, so app_voicemail never reads it: set its mailbox to the mailbox number and its password to a random PIN (digits), or delete the row", m.Where)
		return hand, fmt.Sprintf("%s has no mailbox (NULL), so app_voicemail never reads it; tollguard leaves its PIN alone (--apply): set its mailbox, or delete the row", m.Where), nil
	}
	if j.rows[i].boxMiss {
		hand, problem = j.notText(i, "mailbox")
		return hand, problem, nil
	}
	if def := lk.hiddenBy(m); def != "" {
		box, how := m.Key(), " (its context in any letter case)"
		if lk.search {
			box, how = m.Mailbox, fmt.Sprintf(" (with searchcontexts = yes a mailbox %s in any context there hides every row of that number)", m.Mailbox)
		}
		hand = fmt.Sprintf("mailbox %s is also defined at %s%s, and app_voicemail looks there before %s, so it never reads this row: its PIN is not in force; "+
			"delete the row, or delete that definition and give the row a random PIN (digits)", box, def, how, tbl)
		return hand, fmt.Sprintf("%s (mailbox %s) is never read: app_voicemail finds the mailbox at %s first%s, so tollguard leaves its PIN alone (--apply): delete the row or that definition", m.Where, label(m), def, how), nil
	}
	if !lk.readable(m) {
		// A lookup names a context ("default" if the dialplan names
		// none) unless searchcontexts is on and the dialplan names none.
		what, reads := "an empty context", fmt.Sprintf("reads it only for a mailbox named with an empty context (%s@, as VoiceMail(%s@${CTX}) gives with CTX unset)", m.Mailbox, m.Mailbox)
		if j.rows[i].null {
			what, reads = "no context (NULL)", "never reads it (NULL equals no context a lookup names)"
		}
		fix := "set its context to the mailbox's voicemail context (default, if the dialplan names none) and its password to a random PIN (digits), or delete the row"
		if !lk.known {
			hand = fmt.Sprintf("%s has %s, and app_voicemail reads such a row only with searchcontexts = yes in voicemail.conf's [general] (a mailbox named without a context is then looked up by its number alone); "+
				"tollguard does not know that setting, as [audit.pins] voicemail_conf is not set: set voicemail_conf and run the audit again, or %s", m.Where, what, fix)
			return hand, unknownProblem, nil
		}
		hand = fmt.Sprintf("%s has %s, and with searchcontexts off app_voicemail looks a mailbox up by its number and context (default, if the dialplan names none), so it %s: %s", m.Where, what, reads, fix)
		return hand, fmt.Sprintf("%s (mailbox %s) has %s, so app_voicemail %s; tollguard leaves its PIN alone (--apply): give the row its context, or delete it", m.Where, m.Mailbox, what, reads), nil
	}
	if j.rows[i].ctxMiss {
		hand, problem = j.notText(i, "context")
		return hand, problem, nil
	}
	if j.rows[i].pinMiss {
		cols, driver := "password column", "driver"
		if len(j.rows[i].cols) > 1 {
			cols = "password columns (" + strings.Join(j.rows[i].cols, ", ") + ")"
		}
		if j.odbc {
			driver = "ODBC driver"
		}
		hand = fmt.Sprintf("%s: the database does not take its %s as equal to the value the %s returned for it (a number in a column without a text type?), so tollguard cannot tell that it is unchanged when it writes: "+
			"store the %s as text (a VARCHAR column, as Asterisk's schema has) and give the row a random PIN (digits)", m.Where, cols, driver, cols)
		return hand, fmt.Sprintf("%s (mailbox %s): the database does not take its %s as equal to the value read; tollguard leaves its PIN alone (--apply): store it as text", m.Where, label(m), cols), nil
	}
	// Rows a lookup reading this one may return in its place (as the
	// database counts them): then which PIN is asked is unknown.
	seenKey, seenBox := 0, 0
	var boxes []string
	if g := j.boxes[m.Mailbox]; g != nil {
		seenBox, seenKey, boxes = g.n, g.ctx[m.Context], g.labels
	}
	where, args := lk.answers(m)
	s, err := j.match(ctx, where, args...)
	if err != nil {
		return "", "", err
	}
	seen := seenBox
	if lk.known && !lk.search {
		seen = seenKey
	}
	if max(s.n, seen) < 2 {
		return "", "", nil
	}
	if !lk.search {
		// Rows of its own context, whatever the setting.
		k, err := j.match(ctx, `mailbox = ? AND context = ?`, m.Mailbox, m.Context)
		if err != nil {
			return "", "", err
		}
		if max(k.n, seenKey) > 1 {
			rows := j.describe(k, seenKey, nil)
			hand = fmt.Sprintf("mailbox %s is in %s, and app_voicemail reads only the first row the database returns: "+
				"keep one row for %s in %s, with a random PIN (digits), and delete the others", m.Key(), rows, m.Key(), tbl)
			return hand, fmt.Sprintf("mailbox %s is in %s: app_voicemail reads only the first row the database returns, so tollguard changes none of their PINs (--apply): keep one row per mailbox and context", m.Key(), rows), nil
		}
	}
	rows := j.describe(s, seenBox, boxes)
	if !lk.known {
		hand = fmt.Sprintf("mailbox %s is in %s, and with searchcontexts = yes in voicemail.conf's [general] app_voicemail looks a mailbox named without a context up by its number alone and reads only the first row the database returns; "+
			"tollguard does not know that setting, as [audit.pins] voicemail_conf is not set: set voicemail_conf and run the audit again, or give each of these rows a random PIN (digits)", m.Mailbox, rows)
		return hand, unknownProblem, nil
	}
	hand = fmt.Sprintf("mailbox %s is in %s, and with searchcontexts = yes app_voicemail looks a mailbox named without a context up by its number alone and reads only the first row the database returns: "+
		"keep one row for mailbox %s in %s, with a random PIN (digits), and delete the others or give them numbers of their own", m.Mailbox, rows, m.Mailbox, tbl)
	return hand, fmt.Sprintf("mailbox %s is in %s: with searchcontexts = yes app_voicemail reads only the first row the database returns for it, so tollguard changes none of their PINs (--apply): keep one row per mailbox number", m.Mailbox, rows), nil
}

// SetPINs updates the rows in one transaction. In it, it reads and
// judges the table again (voicemail.conf too), and writes a row only if
// it still has no ByHand and its PIN is still the one read.
func (r *Realtime) SetPINs(ctx context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	lk, err := r.lookup()
	if err != nil {
		return nil, err
	}
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
	rows, _, err := r.read(ctx, tx, d.odbc, lk)
	if err != nil {
		return nil, err
	}
	idx := indexRows(rows, d.odbc)
	var done []tollguard.PINChange
	for _, c := range changes {
		row, err := r.fresh(idx, c.Mailbox)
		if err != nil {
			return nil, err
		}
		if row == nil {
			continue
		}
		ok, err := r.setPIN(ctx, tx, *row, c.NewPIN, d.odbc)
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

// rowIndex is the rows SetPINs read again, by SQLite rowid, or through
// ODBC by mailbox and context (as Go compares them), so that fresh
// does not go over every row for each change.
type rowIndex struct {
	odbc  bool
	rows  []rtRow
	byID  map[int64]int
	byKey map[[2]string][]int
}

func indexRows(rows []rtRow, odbc bool) rowIndex {
	idx := rowIndex{odbc: odbc, rows: rows, byID: map[int64]int{}, byKey: map[[2]string][]int{}}
	for i, o := range rows {
		if o.nullBox {
			continue
		}
		if odbc {
			k := [2]string{o.Mailbox.Mailbox, o.Context}
			idx.byKey[k] = append(idx.byKey[k], i)
		} else {
			idx.byID[o.id] = i
		}
	}
	return idx
}

// fresh is m's row as SetPINs read it again, if it may be written: still
// m's mailbox, the only row of it (through ODBC, where rows are known
// by mailbox and context), without ByHand, and with the PIN read.
func (r *Realtime) fresh(idx rowIndex, m tollguard.Mailbox) (*rtRow, error) {
	var found *rtRow
	if idx.odbc {
		switch is := idx.byKey[[2]string{m.Mailbox, m.Context}]; len(is) {
		case 0:
		case 1:
			found = &idx.rows[is[0]]
		default:
			return nil, nil // two rows that cannot be told apart
		}
	} else {
		var id int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(m.Where, r.table()+" row "), "%d", &id); err != nil {
			return nil, fmt.Errorf("realtime mailbox %s: bad row reference %q", m.Key(), m.Where)
		}
		if i, ok := idx.byID[id]; ok {
			if o := &idx.rows[i]; o.Mailbox.Mailbox == m.Mailbox && o.Context == m.Context {
				found = o
			}
		}
	}
	if found == nil || found.ByHand != "" || found.PIN != m.PIN || found.Locked != m.Locked {
		return nil, nil // gone, renamed, no longer alone, or changed
	}
	return found, nil
}

// errManyRows aborts the transaction: an update matched more than one row.
var errManyRows = errors.New("matched more than one row")

// setPIN writes pin to row, read again in tx, if its password columns
// still hold what was read: to the column whose value app_voicemail
// uses, or if none, to password. An SQLite row is held to its rowid;
// through ODBC (MySQL, PostgreSQL, ...) there is no such thing, and an
// update that matched several rows aborts.
func (r *Realtime) setPIN(ctx context.Context, tx *sql.Tx, row rtRow, pin string, odbc bool) (bool, error) {
	m := row.Mailbox
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("update realtime mailbox %s: %w", m.Key(), r.scrub(err))
	}
	if m.Locked {
		pin = "-" + pin
	}
	where, args := rowWhere(m)
	if !odbc {
		where, args = `rowid = ? AND `+where, append([]any{row.id}, args...)
	}
	// Every password column still as read: the value written is the one
	// app_voicemail then takes.
	pw, pargs := row.pinWhere(odbc)
	res, err := tx.ExecContext(ctx, `UPDATE `+r.table()+` SET `+row.target()+` = ? WHERE `+where+pw,
		append(append([]any{pin}, args...), pargs...)...)
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
	if n == 1 {
		// The column may not keep what was written: one of a numeric type
		// stores 038412 as 38412, and the owner would be mailed a PIN
		// app_voicemail does not ask for.
		if err := r.readBack(ctx, tx, row, where, args, pin, odbc); err != nil {
			return false, err
		}
	}
	return n == 1, nil
}

// readBack checks that the row setPIN updated (where, args: the row,
// without the guard on its old values) now gives app_voicemail pin.
func (r *Realtime) readBack(ctx context.Context, tx *sql.Tx, row rtRow, where string, args []any, pin string, odbc bool) error {
	m := row.Mailbox
	cols := make([]string, len(row.cols))
	for i, c := range row.cols {
		cols[i] = pinValue(c, odbc)
	}
	vals := make([]sql.NullString, len(cols))
	dest := make([]any, len(vals))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := tx.QueryRowContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+r.table()+` WHERE `+where, args...).Scan(dest...); err != nil {
		return fmt.Errorf("update realtime mailbox %s: read the new PIN back: %w; nothing was written", m.Key(), r.scrub(err))
	}
	if got, _ := inForce(odbc, row.cols, vals); got != pin {
		return fmt.Errorf("update realtime mailbox %s: column %s of %s does not keep the new PIN as written (a column of a numeric type drops a leading 0); nothing was written: store PINs as text (a VARCHAR column, as Asterisk's schema has), then run the audit again",
			m.Key(), row.target(), r.table())
	}
	return nil
}
