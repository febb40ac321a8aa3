package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// A removed extension's open block is closed in the history: a line
// added again under the name must not show it as never lifted.
func TestDeleteExtensionClosesItsBlock(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	seedAccount(t, db)
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "admin", Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteExtension(ctx, "1001"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateExtension(ctx, &tollguard.Extension{Name: "1001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	bs, err := db.Blocks(ctx, tollguard.BlockExtension, "1001", time.Time{})
	if err != nil || len(bs) != 1 || bs[0].ClearedAt.IsZero() || bs[0].ClearedBy != "removed" {
		t.Fatalf("block history %+v %v", bs, err)
	}
	if e, _ := db.Extension(ctx, "1001"); e == nil || e.Blocked {
		t.Fatalf("the new 1001 %+v", e)
	}
}
