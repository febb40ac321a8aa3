package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// MustOpenDB opens a real SQLite file in t.TempDir().
func MustOpenDB(t testing.TB) *store.DB {
	t.Helper()
	return MustOpenPath(t, filepath.Join(t.TempDir(), "tollguard.db"))
}

// MustOpenPath opens the database at path (again, for a second handle
// on the same file: another process's view) and closes it at the end.
func MustOpenPath(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// migratedTo makes a database in t.TempDir() as a tollguard with
// migrations 1..upto made it, runs seed on it (data of that schema), and
// returns its path, for tests of the later migrations on real data.
func migratedTo(t *testing.T, upto int, seed string) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ms, _ := store.Migrations()
	var versions []string
	for _, m := range ms {
		if m.Version > upto {
			break
		}
		if _, err := raw.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		versions = append(versions, fmt.Sprintf("(%d,'',0)", m.Version))
	}
	if _, err := raw.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
		INSERT INTO schema_migrations(version, name, applied_at) VALUES `+strings.Join(versions, ",")+`;`+seed); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("PathsWithURICharacters", func(t *testing.T) {
		// ?, # and % mean something in the file: URI the driver opens.
		for _, name := range []string{"h#1.db", "p%41.db", "q?x=1.db", "with space.db"} {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			db, err := store.Open(ctx, path)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if _, err := db.HighRiskList(ctx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			db.Close()
			fi, err := os.Stat(path)
			if err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: the database is not the file asked for: %v %v", name, fi, err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), name) {
					t.Errorf("%s: stray file %s", name, e.Name())
				}
			}
		}
	})
	t.Run("ExistingFileMadePrivate", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tg.db")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, 0o644) // whatever the umask
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if private, err := db.Private(); !private || err != nil {
			t.Errorf("private %v %v", private, err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("OlderDatabaseWithoutApplicationID", func(t *testing.T) {
		// Made by a tollguard before the application id: its migrations
		// table says it is ours.
		path := filepath.Join(t.TempDir(), "tg.db")
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, `PRAGMA application_id = 0`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db, err = store.Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		var id int64
		db.SQL().QueryRowContext(ctx, `PRAGMA application_id`).Scan(&id)
		db.Close()
		if id != 0x54474442 {
			t.Errorf("application id %#x after reopening", id)
		}
	})
	t.Run("NotADatabaseUntouched", func(t *testing.T) {
		// --db /etc/asterisk/pjsip.conf by mistake: refused, and the
		// file keeps its mode and bytes.
		path := filepath.Join(t.TempDir(), "pjsip.conf")
		text := []byte("[1001]\ntype=endpoint\n")
		if err := os.WriteFile(path, text, 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, 0o640)
		_, err := store.Open(ctx, path)
		if tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), "is not a SQLite database") {
			t.Fatalf("open: %v", err)
		}
		fi, _ := os.Stat(path)
		got, _ := os.ReadFile(path)
		if fi.Mode().Perm() != 0o640 || string(got) != string(text) {
			t.Fatalf("mode %v, content %q after a refused open", fi.Mode().Perm(), got)
		}
		// Nor another program's SQLite database (Asterisk's astdb).
		astdb := filepath.Join(t.TempDir(), "astdb.sqlite3")
		other, err := sql.Open("sqlite3", astdb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(`CREATE TABLE astdb (key VARCHAR(256), value VARCHAR(256), PRIMARY KEY(key))`); err != nil {
			t.Fatal(err)
		}
		other.Close()
		os.Chmod(astdb, 0o640)
		before, _ := os.ReadFile(astdb)
		if _, err := store.Open(ctx, astdb); tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), "another program's SQLite database") {
			t.Errorf("open astdb: %v", err)
		}
		after, _ := os.ReadFile(astdb)
		if fi, _ := os.Stat(astdb); fi.Mode().Perm() != 0o640 || string(after) != string(before) {
			t.Errorf("astdb changed: mode %v, same bytes %v", fi.Mode().Perm(), string(after) == string(before))
		}
		if _, err := os.Stat(astdb + "-wal"); !os.IsNotExist(err) {
			t.Errorf("astdb got a WAL: %v", err)
		}
		// Nor a device (--db /dev/null as root).
		if _, err := store.Open(ctx, os.DevNull); tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("open %s: %v", os.DevNull, err)
		}
		if fi, _ := os.Stat(os.DevNull); fi.Mode().Perm() != 0o666 {
			t.Errorf("%s is now %v", os.DevNull, fi.Mode().Perm())
		}
	})
	t.Run("CreatesPrivateFileAndMigrates", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tg.db")
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("database mode %v, %v; want 0600", fi.Mode().Perm(), err)
		}
		ms, _ := store.Migrations()
		v, err := db.SchemaVersion(ctx)
		if err != nil || v != ms[len(ms)-1].Version {
			t.Fatalf("schema version %d (%v), want %d", v, err, ms[len(ms)-1].Version)
		}
		if err := db.IntegrityCheck(ctx); err != nil {
			t.Fatal(err)
		}
		var mode string
		db.SQL().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
		if mode != "wal" {
			t.Fatalf("journal mode %q, want wal", mode)
		}
		hr, _ := db.HighRiskList(ctx)
		if len(hr) == 0 {
			t.Fatal("a new database must carry the default high-risk list")
		}
		db.Close()
		// Reopening applies nothing twice and keeps an admin's list.
		db, err = store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.ReplaceHighRisk(ctx, nil); err != nil {
			t.Fatal(err)
		}
		db.Close()
		db2, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		if hr, _ := db2.HighRiskList(ctx); len(hr) != 0 {
			t.Fatal("reopening re-seeded a list the admin had emptied")
		}
	})
	t.Run("RefusesMemory", func(t *testing.T) {
		if _, err := store.Open(ctx, ":memory:"); tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("RefusesNewerSchema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tg.db")
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		db.SQL().ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (9999, 'future', 0)`)
		db.Close()
		_, err = store.Open(ctx, path)
		if tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Fatalf("opening a newer schema: %v", err)
		}
		// An admin who went back to an older binary on purpose (a
		// downgrade) needs the way back, not only "upgrade".
		if msg := tollguard.ErrorMessage(err); !strings.Contains(msg, "backup") {
			t.Errorf("the refusal does not say how to go back to this version: %s", msg)
		}
	})
}

func TestNormalizePrefix(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"+44", "44", true}, {"44 20", "4420", true}, {"+1 (876)", "1876", true}, {"", "", false},
		{"+44a", "", false}, {"1234567890123456", "", false}, {"+", "", false},
	} {
		got, err := store.NormalizePrefix(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizePrefix(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func seedAccount(t *testing.T, db *store.DB) {
	t.Helper()
	a, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateExtension(context.Background(), &tollguard.Extension{Name: "1001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
}

func TestAccountsAndExtensions(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	seedAccount(t, db)
	a, _ := store.NewAccount("acme", "GB", "GBP")
	if err := db.CreateAccount(ctx, a); tollguard.ErrorCode(err) != tollguard.ECONFLICT {
		t.Fatalf("duplicate account: %v", err)
	}
	if err := db.CreateExtension(ctx, &tollguard.Extension{Name: "1002", Account: "nope"}); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatalf("extension on a missing account: %v", err)
	}
	got, err := db.UpdateAccount(ctx, "acme", func(a *tollguard.Account) error {
		a.Limits.ExtPerMinute, a.HoursSpec, a.Holidays = 5, "mon-fri 09:00-17:00", []string{"12-25", "2026-12-31"}
		return nil
	})
	if err != nil || got.Limits.ExtPerMinute != 5 {
		t.Fatal(got, err)
	}
	back, _ := db.Account(ctx, "acme")
	if back.Limits.ExtPerMinute != 5 || len(back.Holidays) != 2 || back.Scale != 2 || back.NationalCeiling != tollguard.DefaultNationalCeiling {
		t.Fatalf("round trip %+v", back)
	}
	// A failing change writes nothing.
	_, err = db.UpdateAccount(ctx, "acme", func(a *tollguard.Account) error {
		a.Limits.ExtPerMinute = 99
		return tollguard.Errorf(tollguard.EINVALID, "no")
	})
	if back, _ := db.Account(ctx, "acme"); err == nil || back.Limits.ExtPerMinute != 5 {
		t.Fatalf("a failed update changed the account: %v", err)
	}
}

func TestBlocksKeepHistory(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	seedAccount(t, db)
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "registration:acl", Reason: "contact from 203.0.113.9", Evidence: `{"ip":"203.0.113.9"}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "detector:burst", Reason: "burst"}); err != nil {
		t.Fatal(err)
	}
	e, _ := db.Extension(ctx, "1001")
	if !e.Blocked || e.BlockedBy != "registration:acl" {
		t.Fatalf("the first block's reason must stay visible: %+v", e)
	}
	was, err := db.Unblock(ctx, tollguard.BlockExtension, "1001", "admin:alice")
	if err != nil || !was {
		t.Fatal(was, err)
	}
	bs, _ := db.Blocks(ctx, tollguard.BlockExtension, "1001", time.Time{})
	if len(bs) != 2 || bs[0].ClearedBy != "admin:alice" || bs[1].Evidence == "" {
		t.Fatalf("history %+v", bs)
	}
	if was, _ := db.Unblock(ctx, tollguard.BlockExtension, "1001", "admin"); was {
		t.Fatal("unblocking twice reported a block")
	}
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockIntl, Subject: "nope", SetBy: "admin"}); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatalf("blocking a missing account: %v", err)
	}
}

func TestRateImportIsAllOrNothing(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	imp, _ := db.BeginRateImport(ctx)
	imp.Add(ctx, tollguard.RateEntry{Prefix: "44", Rate: 10000})
	imp.Add(ctx, tollguard.RateEntry{Prefix: "4420", Rate: 5000})
	if err := imp.Commit(); err != nil {
		t.Fatal(err)
	}
	imp, _ = db.BeginRateImport(ctx)
	imp.Add(ctx, tollguard.RateEntry{Prefix: "33", Rate: 1})
	if err := imp.Add(ctx, tollguard.RateEntry{Prefix: "x"}); err == nil {
		t.Fatal("bad prefix accepted")
	}
	imp.Rollback()
	if n, _ := db.RateCount(ctx); n != 2 {
		t.Fatalf("a failed import changed the deck: %d rates", n)
	}
	r, err := db.LookupRate(ctx, "+442079460000")
	if err != nil || r == nil || r.Prefix != "4420" || r.Rate != 5000 {
		t.Fatalf("longest prefix: %+v %v", r, err)
	}
	if r, _ := db.LookupRate(ctx, "+33123"); r != nil {
		t.Fatalf("rolled-back rate visible: %+v", r)
	}
}

func TestCreditLedger(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	seedAccount(t, db)
	if _, err := db.AddCredit(ctx, "acme", 2500, "invoice 1", "admin"); err != nil {
		t.Fatal(err)
	}
	e, err := db.AddCredit(ctx, "acme", -500, "refund", "admin")
	if err != nil || e.BalanceAfter != 2000 {
		t.Fatal(e, err)
	}
	l, _ := db.Ledger(ctx, "acme", 10)
	if len(l) != 2 || l[0].Amount != -500 {
		t.Fatalf("ledger %+v", l)
	}
	if _, err := db.AddCredit(ctx, "nope", 1, "", ""); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatal(err)
	}
}

// TestWriterGetsLockBetweenBackToBackTransactions: another process
// writing short transactions back to back (a rate import's chunks) must
// not starve a writer waiting for the lock. SQLite's own busy handler
// sleeps up to 100 ms between tries and kept missing the gaps; the
// store polls, and gets in at one of the first gaps.
func TestWriterGetsLockBetweenBackToBackTransactions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	holder, waiter := MustOpenPath(t, path), MustOpenPath(t, path)
	seedAccount(t, waiter)
	const rounds = 30
	var round atomic.Int32
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := range rounds {
			err := holder.Tx(ctx, func(tx *sql.Tx) error {
				round.Store(int32(i))
				if i == 0 {
					close(started)
				}
				time.Sleep(20 * time.Millisecond)
				_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO settings(key, value) VALUES ('holder', ?)`, i)
				return err
			})
			if err != nil {
				done <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		done <- nil
	}()
	<-started
	if _, err := waiter.AddCredit(ctx, "acme", 1, "waiting", "test"); err != nil {
		t.Fatal(err)
	}
	got := round.Load()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got > 3 {
		t.Fatalf("the waiting write got the lock only after %d of the other process's %d transactions", got, rounds)
	}
	t.Logf("the waiting write got the lock after %d of %d back-to-back transactions", got, rounds)
}

// TestOpenConcurrently: processes opening a new database at the same
// moment (the daemon starting as an admin runs the CLI) all open it, and
// each migration is applied once.
func TestOpenConcurrently(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := store.Open(ctx, path)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	db := MustOpenPath(t, path)
	var n, distinct int
	db.SQL().QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct)
	ms, _ := store.Migrations()
	if n != len(ms) || distinct != len(ms) {
		t.Fatalf("%d migration rows (%d versions), want each of %d once", n, distinct, len(ms))
	}
}

// TestWALShrinksAfterABigWrite: a checkpoint leaves the WAL file its
// size; after two big deck imports it stayed 74 MB for good. The writer
// trims it when it restarts the WAL.
func TestWALShrinksAfterABigWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w := db.SQL()
	if _, err := w.Exec(`CREATE TABLE big(b BLOB)`); err != nil {
		t.Fatal(err)
	}
	tx, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 24; i++ {
		if _, err := tx.Exec(`INSERT INTO big(b) VALUES (randomblob(1 << 20))`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil || fi.Size() < 24<<20 {
		t.Fatalf("WAL after a 24 MB write: %v, %v (the test proves nothing)", fi.Size(), err)
	}
	if _, err := w.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`DELETE FROM big`); err != nil { // restarts the WAL
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() > 16<<20 {
		t.Errorf("WAL after a checkpoint and the next write: %d bytes, %v; want at most 16 MiB", fi.Size(), err)
	}
}

// TestAccountNotFoundNamesTheCase: ids are case-sensitive, and "account
// \"ACME\" not found" beside an account acme read as a missing account.
func TestAccountNotFoundNamesTheCase(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	seedAccount(t, db) // acme
	for name, err := range map[string]error{
		"Account": func() error { _, err := db.Account(ctx, "ACME"); return err }(),
		"UpdateAccount": func() error {
			_, err := db.UpdateAccount(ctx, "Acme", func(*tollguard.Account) error { return nil })
			return err
		}(),
		"AddCredit": func() error { _, err := db.AddCredit(ctx, "ACME", 1, "", "test"); return err }(),
		"CreditOf":  func() error { _, err := db.CreditOf(ctx, "ACME"); return err }(),
		"AddRule":   db.AddRule(ctx, &tollguard.Rule{Account: "ACME", Prefix: "+44", Action: tollguard.RuleDeny}),
	} {
		if tollguard.ErrorCode(err) != tollguard.ENOTFOUND || !strings.Contains(tollguard.ErrorMessage(err), `but account "acme" is: ids are case-sensitive`) {
			t.Errorf("%s of ACME: %v", name, err)
		}
	}
	if _, err := db.Account(ctx, "nosuch"); !strings.Contains(tollguard.ErrorMessage(err), "list them with `tollguard account list`") {
		t.Errorf("an account named like none: %v", err)
	}
}
