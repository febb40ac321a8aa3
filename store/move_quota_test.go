package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// TestMoveKeepsToDailyQuota: `ext set --account` counts a move as
// `ext add` counts, and ext add refuses a line created today beyond the
// account's max_created_per_day. A line created today in another
// account and moved in went through: the quotas audit then found the
// account over its daily quota and, with --apply, blocked its newest
// line (and an account could take any number of new lines a day this
// way, one account's quota at a time).
func TestMoveKeepsToDailyQuota(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"big", "small"} {
		a, err := store.NewAccount(id, "GB", "GBP")
		if err != nil {
			t.Fatal(err)
		}
		if id == "small" {
			a.MaxCreatedPerDay = 1
		}
		if err := db.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for name, acct := range map[string]string{"2001": "small", "1001": "big"} {
		e := &tollguard.Extension{Name: name, Account: acct, Managed: true, CreatedAt: now.Add(-time.Hour)}
		if _, err := db.CreateExtensionWithinQuota(ctx, e, now); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.UpdateExtension(ctx, "1001", func(e *tollguard.Extension) error { e.Account = "small"; return nil })
	if tollguard.ErrorCode(err) != tollguard.EQUOTA {
		t.Errorf("moved a line created today into an account at its daily quota: err %v, want EQUOTA", err)
	}
	// A line created before the last 24 h is no new line.
	old := &tollguard.Extension{Name: "1002", Account: "big", Managed: true, CreatedAt: now.Add(-48 * time.Hour)}
	if _, err := db.CreateExtensionWithinQuota(ctx, old, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateExtension(ctx, "1002", func(e *tollguard.Extension) error { e.Account = "small"; return nil }); err != nil {
		t.Errorf("moving an old line: %v", err)
	}
}

// TestMoveBackIsNoNewLine: a line moved back to the account that
// created it today is counted there already, by its creation record;
// the move's quota check counted it a second time, so an account at
// max_created_per_day could not have its own line back.
func TestMoveBackIsNoNewLine(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	now := time.Now()
	oneADay(t, db)
	quotaAccount(t, db, "other", 0)
	e := &tollguard.Extension{Name: "3001", Account: "acme", Managed: true, CreatedAt: now.Add(-time.Hour)}
	if _, err := db.CreateExtensionWithinQuota(ctx, e, now); err != nil {
		t.Fatal(err)
	}
	move := func(to string) error {
		_, err := db.UpdateExtension(ctx, "3001", func(e *tollguard.Extension) error { e.Account = to; return nil })
		return err
	}
	if err := move("other"); err != nil {
		t.Fatal(err)
	}
	if err := move("acme"); err != nil {
		t.Errorf("moving 3001 back to acme, which created it: %v", err)
	}
	// Back home it is still acme's one creation of the day.
	late := &tollguard.Extension{Name: "3002", Account: "acme", Managed: true, CreatedAt: now}
	if _, err := db.CreateExtensionWithinQuota(ctx, late, now); tollguard.ErrorCode(err) != tollguard.EQUOTA {
		t.Errorf("a second add the same day: %v, want EQUOTA", err)
	}
}
