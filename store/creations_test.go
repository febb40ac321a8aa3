package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestDailyQuotaCountsRemovedLines: the daily quota counted the
// account's extension rows created in the last 24 h, so add, remove,
// add again created any number of lines a day under
// max_created_per_day = 1. Creations are kept apart from the lines.
func TestDailyQuotaCountsRemovedLines(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Now()
	oneADay(t, db)
	add := func(name string, at time.Time) error {
		_, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: name, Account: "acme", Managed: true, CreatedAt: at}, at)
		return err
	}
	if err := add("3001", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteExtension(ctx, "3001"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"3002", "3001"} {
		if err := add(name, now); tollguard.ErrorCode(err) != tollguard.EQUOTA {
			t.Errorf("add %s after removing 3001 the same day: %v, want EQUOTA", name, err)
		}
	}
	// A day after the creation the quota is free again.
	if err := add("3002", now.Add(23*time.Hour)); err != nil {
		t.Fatalf("a day later: %v", err)
	}
	cs, err := db.ExtensionCreations(ctx, now.Add(-2*time.Hour))
	if err != nil || len(cs) != 2 || cs[0].Extension != "3001" || cs[1].Extension != "3002" || cs[0].How != "add" {
		t.Fatalf("creations %+v, %v", cs, err)
	}
	// A line recorded, not created (--no-asterisk), is no creation.
	if _, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: "1001", Account: "acme", CreatedAt: now.Add(48 * time.Hour)}, now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneExtensionCreations(ctx, now); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if cs, _ := db.ExtensionCreations(ctx, time.Time{}); len(cs) != 1 || cs[0].Extension != "3002" {
		t.Fatalf("after prune %+v", cs)
	}
}

// TestCreationsBackfilled: a database from before migration 0014 has
// only its lines; their creations are backfilled, so today's count
// does not drop at the upgrade.
func TestCreationsBackfilled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db := MustOpenPath(t, path)
	now := time.Now()
	oneADay(t, db)
	// Back to the old schema, with a line created an hour ago and one
	// recorded with --no-asterisk.
	w := db.SQL()
	for _, q := range []string{`DROP TABLE extension_creations`, `ALTER TABLE extensions DROP COLUMN creation_id`,
		`DROP TRIGGER extensions_row_id`, `DROP TABLE extension_row_ids`, `ALTER TABLE extensions DROP COLUMN row_id`, `DELETE FROM schema_migrations WHERE version >= 14`} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct {
		name    string
		managed int
	}{{"3001", 1}, {"1001", 0}} {
		if _, err := w.ExecContext(ctx, `INSERT INTO extensions(name, account_id, managed, created_at) VALUES (?, 'acme', ?, ?)`, e.name, e.managed, now.Add(-time.Hour).Unix()); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = MustOpenPath(t, path)
	cs, err := db.ExtensionCreations(ctx, time.Time{})
	if err != nil || len(cs) != 1 || cs[0].Extension != "3001" || cs[0].How != "backfill" || !cs[0].CreatedAt.Equal(time.Unix(now.Add(-time.Hour).Unix(), 0)) {
		t.Fatalf("backfilled %+v, %v", cs, err)
	}
	if err := db.DeleteExtension(ctx, "3001"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: "3002", Account: "acme", Managed: true, CreatedAt: now}, now); tollguard.ErrorCode(err) != tollguard.EQUOTA {
		t.Fatalf("after the upgrade: %v, want EQUOTA", err)
	}
}

// TestDailyQuotaIgnoresCreationsAhead: lines added while the clock was
// ahead (a box without an RTC before its time sync) are of no known
// age, as the quotas audit counts them. ext add counted them as created
// within 24 h until the clock caught up; since a removed line's
// creation stays, removing them no longer helped: a year ahead, the
// account could add nothing for a year.
func TestDailyQuotaIgnoresCreationsAhead(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Now()
	oneADay(t, db)
	ahead := now.Add(365 * 24 * time.Hour)
	if _, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: "3001", Account: "acme", Managed: true, CreatedAt: ahead}, ahead); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteExtension(ctx, "3001"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: "3002", Account: "acme", Managed: true, CreatedAt: now}, now); err != nil {
		t.Fatalf("add once the clock is right: %v", err)
	}
	// Within the clock tolerance it is today's, as the audit counts it.
	if _, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: "3003", Account: "acme", Managed: true, CreatedAt: now}, now.Add(-time.Minute)); tollguard.ErrorCode(err) != tollguard.EQUOTA {
		t.Fatalf("second add within a minute: %v, want EQUOTA", err)
	}
}

// TestSameSecondRecreationCounts: creations were keyed by (account,
// second, extension), so a line added, removed and added again within
// one second was recorded once, and counted once against the quota.
func TestSameSecondRecreationCounts(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Unix(time.Now().Unix(), 0) // one frozen second
	nADay(t, db, 2)
	add := func(name string) error {
		_, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: name, Account: "acme", Managed: true, CreatedAt: now}, now)
		return err
	}
	if err := add("3001"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteExtension(ctx, "3001"); err != nil {
		t.Fatal(err)
	}
	if err := add("3001"); err != nil {
		t.Fatalf("add again: %v", err)
	}
	if cs, err := db.ExtensionCreations(ctx, now); err != nil || len(cs) != 2 {
		t.Fatalf("creations %+v, %v; want 2", cs, err)
	}
	if err := add("3002"); tollguard.ErrorCode(err) != tollguard.EQUOTA {
		t.Fatalf("third add in the second: %v, want EQUOTA", err)
	}
	if n, err := db.PruneExtensionCreations(ctx, now.Add(time.Second)); err != nil || n != 2 {
		t.Fatalf("prune: %d, %v; want 2", n, err)
	}
}

// TestUndoCreateRemovesItsOwnRecord: a failed re-add within the second
// of the first add deleted the record the two shared, so the first
// creation stopped counting. The undo removes only its own add's
// record, and none for a line that was recorded, not created.
func TestUndoCreateRemovesItsOwnRecord(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Unix(time.Now().Unix(), 0)
	nADay(t, db, 2)
	create := func(managed bool) int64 { t.Helper(); return create3001(t, db, managed, now) }
	create(true)
	if err := db.DeleteExtension(ctx, "3001"); err != nil {
		t.Fatal(err)
	}
	if err := db.UndoCreateExtension(ctx, "3001", create(true)); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.ExtensionCreations(ctx, now); err != nil || len(cs) != 1 || cs[0].How != "add" {
		t.Fatalf("after the undo: %+v, %v; want the first add's record", cs, err)
	}
	// --no-asterisk in the same second: no record, nothing to undo.
	if id := create(false); id != 0 {
		t.Fatalf("an unmanaged line has creation %d", id)
	}
	if err := db.UndoCreateExtension(ctx, "3001", 0); tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Fatalf("undo of an unmanaged line: %v, want EINVALID", err)
	}
	if _, err := db.Extension(ctx, "3001"); err != nil {
		t.Fatalf("the unmanaged line: %v", err)
	}
	if cs, err := db.ExtensionCreations(ctx, now); err != nil || len(cs) != 1 {
		t.Fatalf("after undoing an unmanaged line: %+v, %v; want 1", cs, err)
	}
}

// TestUndoCreateLeavesAnotherAddsLine: an `ext add` whose ARI writes
// failed undid its line by name, after an ext rm and a second add of
// the name had run meanwhile (in the same second, so neither the rowid,
// reused, nor created_at told them apart): the second add's line and
// its creation went. The undo removes its own row or nothing.
func TestUndoCreateLeavesAnotherAddsLine(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Unix(time.Now().Unix(), 0)
	nADay(t, db, 0)
	create := func(managed bool) int64 { t.Helper(); return create3001(t, db, managed, now) }
	first := create(true)
	if err := db.DeleteExtension(ctx, "3001"); err != nil {
		t.Fatal(err)
	}
	if err := db.UndoCreateExtension(ctx, "3001", first); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatalf("undo of a removed line: %v, want ENOTFOUND", err)
	}
	if err := db.CheckExtensionCreation(ctx, "3001", first); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Fatalf("check of a removed line: %v, want ENOTFOUND", err)
	}
	for _, managed := range []bool{true, false} { // added again, or recorded again
		second := create(managed)
		if err := db.UndoCreateExtension(ctx, "3001", first); tollguard.ErrorCode(err) != tollguard.ECONFLICT {
			t.Fatalf("undo of a line added again (managed %v): %v, want ECONFLICT", managed, err)
		}
		if err := db.CheckExtensionCreation(ctx, "3001", first); tollguard.ErrorCode(err) != tollguard.ECONFLICT {
			t.Fatalf("check of a line added again (managed %v): %v, want ECONFLICT", managed, err)
		}
		if e, err := db.Extension(ctx, "3001"); err != nil || e.Managed != managed {
			t.Fatalf("the line added again: %+v, %v", e, err)
		}
		// The first add's record stays: its line was removed, not undone.
		want := map[bool]int{true: 2, false: 1}[managed]
		if cs, err := db.ExtensionCreations(ctx, now); err != nil || len(cs) != want {
			t.Fatalf("creations %+v, %v; want %d", cs, err, want)
		}
		if !managed {
			break
		}
		if err := db.CheckExtensionCreation(ctx, "3001", second); err != nil {
			t.Fatalf("check of the second add's own line: %v", err)
		}
		if err := db.UndoCreateExtension(ctx, "3001", second); err != nil {
			t.Fatalf("the second add's own undo: %v", err)
		}
		if cs, err := db.ExtensionCreations(ctx, now); err != nil || len(cs) != 1 {
			t.Fatalf("creations after the second add's undo %+v, %v; want the first's", cs, err)
		}
	}
}

// TestCreationsKeptByMigration15: the creations of a database at
// schema 14 survive the change of key, count as before, and are pruned.
func TestCreationsKeptByMigration15(t *testing.T) {
	ctx := context.Background()
	at := time.Now().Unix()
	path := migratedTo(t, 14, fmt.Sprintf(`
		INSERT INTO extension_creations(account_id, extension, created_at, how) VALUES
			('acme', '3001', %[1]d, 'backfill'), ('acme', '2001', %[1]d - 60, 'add'), ('acme', '1001', %[1]d - 30*86400, 'add');`, at))
	db := MustOpenPath(t, path)
	nADay(t, db, 2)
	cs, err := db.ExtensionCreations(ctx, time.Time{})
	if err != nil || len(cs) != 3 || cs[0].Extension != "1001" || cs[1].Extension != "2001" || cs[2].Extension != "3001" || cs[2].How != "backfill" {
		t.Fatalf("kept %+v, %v", cs, err)
	}
	now := time.Unix(at, 0)
	if _, err := db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: "3002", Account: "acme", Managed: true, CreatedAt: now}, now); tollguard.ErrorCode(err) != tollguard.EQUOTA {
		t.Fatalf("add after the upgrade: %v, want EQUOTA (2 created today)", err)
	}
	if n, err := db.PruneExtensionCreations(ctx, now.Add(-store.ExtensionCreationRetention)); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
}

// TestMigration15FailureKeepsCreations: 0015 drops the old table
// before it renames the new one; a failure after the drop must leave
// the database at schema 14 with every creation. A view on the old
// table makes the rename fail there.
func TestMigration15FailureKeepsCreations(t *testing.T) {
	ctx := context.Background()
	path := migratedTo(t, 14, `
		INSERT INTO extension_creations(account_id, extension, created_at, how) VALUES
			('acme', '3001', 1000, 'backfill'), ('acme', '2001', 2000, 'add');
		CREATE VIEW recent_creations AS SELECT * FROM extension_creations;`)
	if db, err := store.Open(ctx, path); err == nil {
		db.Close()
		t.Fatal("opened: want migration 0015 to fail")
	} else if !strings.Contains(err.Error(), "migration 0015") {
		t.Fatalf("open: %v", err)
	}
	raw, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var version, rows int
	var def string
	if err := raw.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != 14 {
		t.Errorf("schema %d, %v; want 14", version, err)
	}
	if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM extension_creations WHERE how IN ('add', 'backfill')`).Scan(&rows); err != nil || rows != 2 {
		t.Errorf("creations left: %d, %v; want 2", rows, err)
	}
	if err := raw.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'extension_creations'`).Scan(&def); err != nil || !strings.Contains(def, "WITHOUT ROWID") {
		t.Errorf("table after the failure: %q, %v; want 0014's", def, err)
	}
	if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'extension_creations_new'`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("0015's new table left behind: %d, %v", rows, err)
	}
}

// oneADay creates account acme with a quota of one new line a day.
func oneADay(t *testing.T, db *store.DB) {
	t.Helper()
	nADay(t, db, 1)
}

// nADay creates account acme with a quota of n new lines a day.
func nADay(t *testing.T, db *store.DB, n int) {
	t.Helper()
	quotaAccount(t, db, "acme", n)
}

// quotaAccount creates account id with a quota of n new lines a day (0:
// none).
func quotaAccount(t *testing.T, db *store.DB, id string, n int) {
	t.Helper()
	a, err := store.NewAccount(id, "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	a.MaxCreatedPerDay = n
	if err := db.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

// TestUndoCreateAfterMove: a line moved to another account (`ext set
// --account`) while its `ext add` was still creating the PJSIP objects
// kept the creation record of the account it was added to when that
// add failed: the undo matched records by the line's new account, so
// that account's daily quota stayed used by a line never created.
func TestUndoCreateAfterMove(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Unix(time.Now().Unix(), 0)
	oneADay(t, db)
	quotaAccount(t, db, "other", 0)
	add := func(name string) (int64, error) {
		return db.CreateExtensionWithinQuota(ctx, &tollguard.Extension{Name: name, Account: "acme", Managed: true, CreatedAt: now}, now)
	}
	creation, err := add("3001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateExtension(ctx, "3001", func(e *tollguard.Extension) error { e.Account = "other"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.UndoCreateExtension(ctx, "3001", creation); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.ExtensionCreations(ctx, now); err != nil || len(cs) != 0 {
		t.Fatalf("after the undo: %+v, %v; want no creation", cs, err)
	}
	if _, err := add("3002"); err != nil {
		t.Errorf("acme's next add after its failed one: %v", err)
	}
}

// create3001 records line 3001 in acme at now, created by tollguard
// (managed) or not, and returns its creation's id.
func create3001(t *testing.T, db *store.DB, managed bool, now time.Time) int64 {
	t.Helper()
	id, err := db.CreateExtensionWithinQuota(context.Background(), &tollguard.Extension{Name: "3001", Account: "acme", Managed: managed, CreatedAt: now}, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
