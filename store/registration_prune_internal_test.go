package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestPruneContactsPlanNoPerRowSubquery: the prune looked up each
// removed contact's extension's newest contact with a subquery run per
// row, which costs that extension's whole history each time. The first
// prune after migration 0012 finds every contact removed in the last 180
// days due at once: 200 000 rows took 2m18s on the write lock, and the
// gate's writes fail after the 5 s busy timeout. Neither statement may
// hold a correlated subquery.
func TestPruneContactsPlanNoPerRowSubquery(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, q := range map[string]string{"keep": pruneKeepSQL, "delete": pruneContactsSQL} {
		rows, err := db.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, 0, "[]", 10)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); strings.Contains(p, "CORRELATED") {
			t.Errorf("%s statement runs a subquery per row:\n%s", name, p)
		}
	}
}
