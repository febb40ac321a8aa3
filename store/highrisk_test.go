package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// highRiskList is list k of n prefixes, k's neighbours overlapping it by
// half with other descriptions.
func highRiskList(k, n int) []tollguard.HighRiskEntry {
	var out []tollguard.HighRiskEntry
	for i := range n {
		out = append(out, tollguard.HighRiskEntry{Prefix: fmt.Sprint(8800000 + k*n/2 + i), Description: fmt.Sprint("list ", k), Source: "test"})
	}
	return out
}

// sameHighRisk reports whether db's list is exactly want.
func sameHighRisk(t *testing.T, db *store.DB, want []tollguard.HighRiskEntry) bool {
	t.Helper()
	got, err := db.HighRiskList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		return false
	}
	for i := range got { // both in prefix order
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestHighRiskReplaceAllOrNothing: a replace that fails or is stopped
// before its swap commits leaves the previous list whole and the gate's
// data unchanged; a replace that works replaces exactly.
func TestHighRiskReplaceAllOrNothing(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	old := highRiskList(0, 5000)
	if err := db.ReplaceHighRisk(ctx, old); err != nil {
		t.Fatal(err)
	}
	version := func() (v string) {
		db.SQL().QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'dest_version'`).Scan(&v)
		return v
	}
	before := version()
	t.Run("BadEntry", func(t *testing.T) {
		bad := append(highRiskList(1, 5000), tollguard.HighRiskEntry{Prefix: "+44 20x"})
		if err := db.ReplaceHighRisk(ctx, bad); tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Fatalf("a list with a bad prefix: %v, want EINVALID", err)
		}
	})
	t.Run("CancelledAfterStaging", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		store.SetAfterHighRiskStage(t, func(*sql.Conn) { cancel() })
		if err := db.ReplaceHighRisk(cctx, highRiskList(1, 5000)); err == nil {
			t.Fatal("a replace cancelled before its swap succeeded")
		}
	})
	t.Run("SwapFails", func(t *testing.T) {
		// The swap's insert fails after its delete: both roll back.
		store.SetAfterHighRiskStage(t, func(c *sql.Conn) {
			if _, err := c.ExecContext(ctx, `DROP TABLE temp.high_risk_import`); err != nil {
				t.Error(err)
			}
		})
		if err := db.ReplaceHighRisk(ctx, highRiskList(1, 5000)); err == nil {
			t.Fatal("a replace whose swap failed succeeded")
		}
	})
	if !sameHighRisk(t, db, old) {
		t.Fatal("a failed replace changed the list")
	}
	if v := version(); v != before {
		t.Fatalf("a failed replace moved dest_version from %s to %s: the gate reloads for nothing", before, v)
	}
	// And the next replace, on the same connection, replaces exactly:
	// no rows left staged by the failed ones, a repeated prefix keeping
	// its last entry.
	next := highRiskList(1, 5000)
	next = append(next, tollguard.HighRiskEntry{Prefix: "+" + next[0].Prefix, Description: "last", Source: "test"})
	if err := db.ReplaceHighRisk(ctx, next); err != nil {
		t.Fatal(err)
	}
	want := highRiskList(1, 5000)
	want[0].Description = "last"
	if !sameHighRisk(t, db, want) {
		got, _ := db.HighRiskList(ctx)
		t.Fatalf("after the replace: %d prefixes, first %+v; want list 1's %d, first %+v", len(got), got[0], len(want), want[0])
	}
	if version() == before {
		t.Fatal("the replace did not bump dest_version: the gate would keep the old list")
	}
}

// TestHighRiskReplaceConcurrent: replaces racing from two processes (two
// handles) leave one whole list, never a mixture.
func TestHighRiskReplaceConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	dbs := [2]*store.DB{MustOpenPath(t, path), MustOpenPath(t, path)}
	const size = 5000
	errs := make(chan error, 2)
	for w := range 2 {
		go func() {
			for n := range 5 {
				if err := dbs[w].ReplaceHighRisk(ctx, highRiskList((w+n)%3, size)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var whole []int
	for k := range 3 {
		if sameHighRisk(t, dbs[0], highRiskList(k, size)) {
			whole = append(whole, k)
		}
	}
	if len(whole) != 1 {
		got, _ := dbs[0].HighRiskList(ctx)
		t.Fatalf("not one whole list: %d prefixes, whole lists %v", len(got), whole)
	}
}
