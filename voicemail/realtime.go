package voicemail

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	_ "github.com/mattn/go-sqlite3" // the realtime table's driver

	"github.com/tollguard/tollguard"
)

// Realtime is a realtime voicemail table (extconfig.conf's
// "voicemail => ..." mapping) as a tollguard.MailboxSource. Only SQLite
// is supported: tollguard is built without an ODBC driver, so an ODBC
// DSN is a configuration error that says so.
type Realtime struct {
	DSN   string // "sqlite3:///var/lib/asterisk/realtime.sqlite3" or a file path
	Table string // default "voicemail"
}

var _ tollguard.MailboxSource = (*Realtime)(nil)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseRealtimeDSN checks dsn and table and returns the SQLite file.
func ParseRealtimeDSN(dsn, table string) (file string, err error) {
	if table != "" && !identRE.MatchString(table) {
		return "", tollguard.Errorf(tollguard.EINVALID, "realtime voicemail table %q: use a plain table name", table)
	}
	low := strings.ToLower(dsn)
	switch {
	case dsn == "":
		return "", tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN is empty")
	case strings.HasPrefix(low, "odbc:") || strings.HasPrefix(low, "odbc://"):
		return "", tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN %q: ODBC is not supported (tollguard has no ODBC driver); point realtime_dsn at the SQLite file res_config_sqlite3 uses, or audit that table with your database's tools", dsn)
	case strings.HasPrefix(low, "sqlite3://"):
		file = dsn[len("sqlite3://"):]
	case strings.HasPrefix(low, "sqlite://"):
		file = dsn[len("sqlite://"):]
	case strings.HasPrefix(low, "sqlite3:"):
		file = dsn[len("sqlite3:"):]
	case strings.Contains(dsn, "://"):
		return "", tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN %q: only SQLite (sqlite3:///path/to/file) is supported", dsn)
	default:
		file = dsn
	}
	if file == "" {
		return "", tollguard.Errorf(tollguard.EINVALID, "realtime voicemail DSN %q names no file", dsn)
	}
	return file, nil
}

func (r *Realtime) table() string {
	if r.Table == "" {
		return "voicemail"
	}
	return r.Table
}

// Name names the table.
func (r *Realtime) Name() string { return "realtime " + r.table() + " (" + r.DSN + ")" }

// ReloadModule is none: app_voicemail reads realtime rows when it needs them.
func (r *Realtime) ReloadModule() string { return "" }

func (r *Realtime) open() (*sql.DB, error) {
	file, err := ParseRealtimeDSN(r.DSN, r.Table)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	q.Set("mode", "rw") // never create an empty database by mistake
	return sql.Open("sqlite3", "file:"+file+"?"+q.Encode())
}

// Mailboxes lists the table's mailboxes (columns context, mailbox,
// password, fullname, email, as Asterisk's realtime schema names them).
func (r *Realtime) Mailboxes(ctx context.Context) ([]tollguard.Mailbox, []string, error) {
	db, err := r.open()
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT rowid, COALESCE(context, ''), COALESCE(mailbox, ''), COALESCE(password, ''),
		COALESCE(fullname, ''), COALESCE(email, '') FROM `+r.table())
	if err != nil {
		return nil, nil, fmt.Errorf("read realtime voicemail table %s: %w", r.table(), err)
	}
	defer rows.Close()
	var out []tollguard.Mailbox
	for rows.Next() {
		var id int64
		var m tollguard.Mailbox
		if err := rows.Scan(&id, &m.Context, &m.Mailbox, &m.PIN, &m.FullName, &m.Email); err != nil {
			return nil, nil, err
		}
		if m.Context == "" {
			m.Context = "default"
		}
		m.PIN = strings.TrimSpace(m.PIN)
		if strings.HasPrefix(m.PIN, "-") {
			m.Locked, m.PIN = true, m.PIN[1:]
		}
		m.Source, m.Where = r.Name(), fmt.Sprintf("%s row %d", r.table(), id)
		out = append(out, m)
	}
	return out, nil, rows.Err()
}

// SetPINs updates the rows in one transaction, each only if its
// password is still the one read.
func (r *Realtime) SetPINs(ctx context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	db, err := r.open()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var done []tollguard.PINChange
	for _, c := range changes {
		var id int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(c.Mailbox.Where, r.table()+" row "), "%d", &id); err != nil {
			return nil, fmt.Errorf("realtime mailbox %s: bad row reference %q", c.Mailbox.Key(), c.Mailbox.Where)
		}
		old, pin := c.Mailbox.PIN, c.NewPIN
		if c.Mailbox.Locked {
			old, pin = "-"+old, "-"+pin
		}
		res, err := tx.ExecContext(ctx, `UPDATE `+r.table()+` SET password = ? WHERE rowid = ? AND TRIM(COALESCE(password, '')) = ?`, pin, id, old)
		if err != nil {
			return nil, fmt.Errorf("update realtime mailbox %s: %w", c.Mailbox.Key(), err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			done = append(done, c)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return done, nil
}
