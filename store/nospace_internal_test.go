package store

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/mattn/go-sqlite3"

	"github.com/tollguard/tollguard"
)

// TestNoSpaceError: serve and every command started on a full disk
// failed with "create schema_migrations: disk I/O error: no space left
// on device", naming neither the database nor what to do. A full disk
// (ENOSPC through SQLite, SQLITE_FULL, or the file's own creation) now
// names the database and its directory; other errors are left as they
// are.
func TestNoSpaceError(t *testing.T) {
	const file = "/var/lib/tollguard/tollguard.db"
	for name, err := range map[string]error{
		"ENOSPC through SQLite": fmt.Errorf("create schema_migrations: %w",
			sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite, SystemErrno: syscall.ENOSPC}),
		"SQLITE_FULL": fmt.Errorf("seed: %w", sqlite3.Error{Code: sqlite3.ErrFull}),
		"create file": &fs.PathError{Op: "open", Path: file, Err: syscall.ENOSPC},
		"quota":       sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.EDQUOT},
	} {
		got := noSpaceError(file, err)
		msg := tollguard.ErrorMessage(got)
		if tollguard.ErrorCode(got) != tollguard.EUNAVAILABLE || !strings.Contains(msg, "cannot write the database "+file) ||
			!strings.Contains(msg, "free space there (df -h /var/lib/tollguard)") || !strings.Contains(msg, err.Error()) {
			t.Errorf("%s: %q (code %s); want the database, its directory, what to do and the cause", name, msg, tollguard.ErrorCode(got))
		}
	}
	for _, err := range []error{nil, errors.New("disk I/O error"), sqlite3.Error{Code: sqlite3.ErrIoErr, SystemErrno: syscall.EIO}} {
		if got := noSpaceError(file, err); got != err {
			t.Errorf("%v became %v", err, got)
		}
	}
}
