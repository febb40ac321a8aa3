package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestDeleteExtensionRowOnlyItsOwn: a line removed and recorded again in
// the same second, unmanaged (no creation id) and in the same rowid, is
// another row all the same: DeleteExtensionRow of the first keeps it.
func TestDeleteExtensionRowOnlyItsOwn(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	quotaAccount(t, db, "acme", 0)
	at := time.Unix(time.Now().Unix(), 0)
	record := func() int64 {
		t.Helper()
		if err := db.CreateExtension(ctx, &tollguard.Extension{Name: "1001", Account: "acme", CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		_, row, err := db.ExtensionRow(ctx, "1001")
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	first := record()
	if err := db.DeleteExtension(ctx, "1001"); err != nil {
		t.Fatal(err)
	}
	second := record()
	if second == first {
		t.Fatalf("the line recorded again has the first one's row id %d", first)
	}
	if err := db.DeleteExtensionRow(ctx, "1001", first); tollguard.ErrorCode(err) != tollguard.ECONFLICT {
		t.Errorf("delete the first row: %v, want ECONFLICT", err)
	}
	if _, err := db.Extension(ctx, "1001"); err != nil {
		t.Fatalf("the second row went: %v", err)
	}
	if err := db.DeleteExtensionRow(ctx, "1001", second); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteExtensionRow(ctx, "1001", second); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.Errorf("delete it again: %v, want ENOTFOUND", err)
	}
}

// TestExtensionRowIDsBackfilled: lines from before migration 0018 get
// distinct ids, and a line recorded after the upgrade one above them.
func TestExtensionRowIDsBackfilled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db := MustOpenPath(t, path)
	quotaAccount(t, db, "acme", 0)
	w := db.SQL()
	for _, q := range []string{`DROP TRIGGER extensions_row_id`, `DROP TABLE extension_row_ids`, `ALTER TABLE extensions DROP COLUMN row_id`,
		`DELETE FROM schema_migrations WHERE version >= 18`,
		`INSERT INTO extensions(name, account_id, created_at) VALUES ('1001', 'acme', 1), ('1002', 'acme', 1)`} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = MustOpenPath(t, path)
	rows := map[int64]string{}
	for _, name := range []string{"1001", "1002"} {
		_, row, err := db.ExtensionRow(ctx, name)
		if err != nil || row == 0 || rows[row] != "" {
			t.Fatalf("%s: row %d (%v), ids so far %v", name, row, err, rows)
		}
		rows[row] = name
	}
	if err := db.DeleteExtension(ctx, "1002"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateExtension(ctx, &tollguard.Extension{Name: "1003", Account: "acme", CreatedAt: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, row, err := db.ExtensionRow(ctx, "1003"); err != nil || rows[row] != "" || row == 0 {
		t.Errorf("1003: row %d (%v), old ids %v", row, err, rows)
	}
}
