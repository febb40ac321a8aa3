package tollguard_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestRemoveExtension: `tollguard ext rm` removes tollguard's record of
// a line Asterisk no longer has, and nothing else.
func TestRemoveExtension(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) *audHarness {
		h := newAudHarness(t)
		h.account("acme", nil)
		return h
	}
	inStore := func(h *audHarness, name string) bool {
		h.t.Helper()
		_, err := h.db.Extension(ctx, name)
		if err != nil && tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			h.t.Fatal(err)
		}
		return err == nil
	}
	t.Run("StoreOnlyWithARI", func(t *testing.T) {
		h := setup(t)
		h.extension("1005", "acme", audT0, nil)
		got, err := h.env.RemoveExtension(ctx, "1005", tollguard.RemoveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !got.AsteriskChecked || got.Extension.Account != "acme" {
			t.Errorf("removed %+v", got)
		}
		if inStore(h, "1005") {
			t.Error("still in the store")
		}
	})
	t.Run("ClosesItsPendingPurge", func(t *testing.T) {
		h := setup(t)
		h.extension("1005", "acme", audT0, nil)
		if _, err := h.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1005", SetBy: "audit:stale", Reason: "stale"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.db.AddPendingPurge(ctx, tollguard.PendingPurge{Extension: "1005", Job: "stale", Reason: "stale",
			ScheduledAt: audT0, DueAt: audT0.Add(7 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		got, err := h.env.RemoveExtension(ctx, "1005", tollguard.RemoveOptions{DryRun: true})
		if err != nil || !got.PurgeClosed || !inStore(h, "1005") {
			t.Fatalf("dry run: %+v, %v; in store %v", got, err, inStore(h, "1005"))
		}
		if ps, err := h.db.PendingPurges(ctx); err != nil || len(ps) != 1 {
			t.Errorf("after the dry run: pending purges %+v, %v", ps, err)
		}
		got, err = h.env.RemoveExtension(ctx, "1005", tollguard.RemoveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !got.PurgeClosed {
			t.Errorf("removed %+v; want its purge closed", got)
		}
		if ps, err := h.db.PendingPurges(ctx); err != nil || len(ps) != 0 {
			t.Errorf("pending purges %+v, %v", ps, err)
		}
	})
	t.Run("RefusedWhileAsteriskHasIt", func(t *testing.T) {
		h := setup(t)
		h.extension("1001", "acme", audT0, nil) // the fake has endpoint, auth and aor 1001
		_, err := h.env.RemoveExtension(ctx, "1001", tollguard.RemoveOptions{Force: true})
		if tollguard.ErrorCode(err) != tollguard.ECONFLICT || !strings.Contains(tollguard.ErrorMessage(err), "`tollguard ext purge 1001`") {
			t.Errorf("got %v; want a conflict naming ext purge", err)
		}
		if !inStore(h, "1001") {
			t.Error("removed")
		}
	})
	t.Run("RefusedWhileAsteriskHasItsAorOnly", func(t *testing.T) {
		h := setup(t)
		h.extension("1002", "acme", audT0, nil)
		h.fake.RemoveObject("endpoint", "1002")
		h.fake.RemoveObject("auth", "1002")
		_, err := h.env.RemoveExtension(ctx, "1002", tollguard.RemoveOptions{})
		if tollguard.ErrorCode(err) != tollguard.ECONFLICT || !strings.Contains(tollguard.ErrorMessage(err), "aor") {
			t.Errorf("got %v; want a conflict naming the aor", err)
		}
		if !inStore(h, "1002") {
			t.Error("removed")
		}
	})
	// An IAX2 line is no PJSIP object: its record and its block must
	// not go while Asterisk still has it.
	t.Run("RefusedWhileAsteriskHasAnIAX2Line", func(t *testing.T) {
		h := setup(t)
		h.extension("1005", "acme", audT0, nil)
		h.fake.SetEndpoint("IAX2", "1005", "offline")
		_, err := h.env.RemoveExtension(ctx, "1005", tollguard.RemoveOptions{})
		if tollguard.ErrorCode(err) != tollguard.ECONFLICT || !strings.Contains(tollguard.ErrorMessage(err), "endpoint IAX2/1005") {
			t.Errorf("got %v; want a conflict naming IAX2/1005", err)
		}
		if !inStore(h, "1005") {
			t.Error("removed")
		}
	})
	t.Run("RefusedWhenAsteriskCannotBeAsked", func(t *testing.T) {
		h := setup(t)
		h.extension("1005", "acme", audT0, nil)
		h.fake.Fault(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/", http.StatusInternalServerError, "Internal Server Error", 0)
		if _, err := h.env.RemoveExtension(ctx, "1005", tollguard.RemoveOptions{Force: true}); err == nil || tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
			t.Errorf("got %v; want a refusal", err)
		}
		if !inStore(h, "1005") {
			t.Error("removed on a guess")
		}
	})
	t.Run("WithoutARIBlockedNeedsForce", func(t *testing.T) {
		h := setup(t)
		h.env.Asterisk = nil
		h.extension("1001", "acme", audT0, func(e *tollguard.Extension) { e.Blocked = true })
		if _, err := h.db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "admin", Reason: "left"}); err != nil {
			t.Fatal(err)
		}
		_, err := h.env.RemoveExtension(ctx, "1001", tollguard.RemoveOptions{})
		if tollguard.ErrorCode(err) != tollguard.ECONFLICT || !strings.Contains(tollguard.ErrorMessage(err), "--force") ||
			!strings.Contains(tollguard.ErrorMessage(err), "allow_unknown") {
			t.Errorf("got %v; want a refusal naming --force", err)
		}
		if !inStore(h, "1001") {
			t.Fatal("removed without --force")
		}
		got, err := h.env.RemoveExtension(ctx, "1001", tollguard.RemoveOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if got.AsteriskChecked {
			t.Errorf("removed %+v; Asterisk cannot have been checked", got)
		}
		if inStore(h, "1001") {
			t.Error("still in the store")
		}
	})
	t.Run("WithoutARIUnblocked", func(t *testing.T) {
		h := setup(t)
		h.env.Asterisk = nil
		h.extension("1001", "acme", audT0, nil)
		if _, err := h.env.RemoveExtension(ctx, "1001", tollguard.RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
		if inStore(h, "1001") {
			t.Error("still in the store")
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		h := setup(t)
		_, err := h.env.RemoveExtension(ctx, "nosuch", tollguard.RemoveOptions{})
		if tollguard.ErrorCode(err) != tollguard.ENOTFOUND || !strings.Contains(tollguard.ErrorMessage(err), "`tollguard ext list`") {
			t.Errorf("got %v", err)
		}
	})
}

// TestPurgeOfStoreOnlyExtensionRefused: with ARI, an extension only in
// the store has nothing in Asterisk to purge. The purge blocked it and
// then failed (--now), or was scheduled to find nothing; it is refused
// before anything is blocked, naming ext rm.
func TestPurgeOfStoreOnlyExtensionRefused(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	h.extension("1005", "acme", audT0, nil)
	for name, try := range map[string]func() error{
		"SchedulePurge": func() error {
			_, _, err := h.env.SchedulePurge(ctx, "1005", "cli", "test")
			return err
		},
		"SchedulePurgeNow": func() error {
			_, _, err := h.env.SchedulePurgeNow(ctx, "1005", "cli", "test")
			return err
		},
		"CheckPurge": func() error {
			_, err := h.env.CheckPurge(ctx, "1005")
			return err
		},
	} {
		err := try()
		if tollguard.ErrorCode(err) != tollguard.ENOTFOUND || !strings.Contains(tollguard.ErrorMessage(err), "`tollguard ext rm 1005`") {
			t.Errorf("%s: %v; want ENOTFOUND naming ext rm", name, err)
		}
	}
	e, err := h.db.Extension(ctx, "1005")
	if err != nil {
		t.Fatal(err)
	}
	if e.Blocked {
		t.Error("a purge with nothing to purge blocked the extension")
	}
	if ps, err := h.db.PendingPurges(ctx); err != nil || len(ps) != 0 {
		t.Errorf("pending purges %+v, %v", ps, err)
	}

	// When Asterisk cannot be asked, or without ARI, tollguard cannot
	// tell: the purge blocks and is scheduled as before.
	h.fake.Fault(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/", http.StatusInternalServerError, "Internal Server Error", 0)
	if _, blocked, err := h.env.SchedulePurge(ctx, "1005", "cli", "test"); err != nil || !blocked {
		t.Errorf("Asterisk not answering: blocked %v, %v", blocked, err)
	}
	h.fake.ClearFaults()
	if err := h.env.FinishPurge(ctx, "1005", "cancelled", audT0); err != nil {
		t.Fatal(err)
	}
	h.env.Asterisk = nil
	if _, blocked, err := h.env.SchedulePurge(ctx, "1005", "cli", "test"); err != nil || !blocked {
		t.Errorf("without ARI: blocked %v, %v", blocked, err)
	}
}

// TestTestsAuditSparesStoreOnlyLines: a test-looking extension only in
// the store is reported with ext rm, not scheduled for a purge that now
// refuses.
func TestTestsAuditSparesStoreOnlyLines(t *testing.T) {
	h := newAudHarness(t)
	h.account("acme", nil)
	h.extension("demo9", "acme", audT0, nil)
	h.advance(30 * 24 * time.Hour)
	run := h.run(tollguard.TestsAudit{}, true)
	if got := audActions(run); len(got) != 0 {
		t.Errorf("actions %q", got)
	}
	f := audFinding(t, run, tollguard.AuditCheckTest, "ext:demo9")
	if !strings.Contains(f.Message, "`tollguard ext rm demo9`") {
		t.Errorf("finding %q", f.Message)
	}
}

// rivalRemoveAdd is ARI on which, once ext rm has listed the endpoints
// (its last check of Asterisk), another admin removes the extension and
// records it again (ext rm + ext add) before ext rm deletes it.
type rivalRemoveAdd struct {
	tollguard.Asterisk
	once  sync.Once
	rival func()
}

func (r *rivalRemoveAdd) Endpoints(ctx context.Context) ([]tollguard.EndpointState, error) {
	eps, err := r.Asterisk.Endpoints(ctx)
	r.once.Do(r.rival)
	return eps, err
}

// TestRemoveExtensionKeepsARowAddedMeanwhile: ext rm checked Asterisk for
// one row and deleted the name's row, which by then was another admin's
// new line. It deletes only the row it checked, and says so.
func TestRemoveExtensionKeepsARowAddedMeanwhile(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		managed bool
	}{
		{"ByExtAdd", true},
		// Unmanaged, in the same second, and in the deleted row's
		// rowid: nothing but the row's own id tells the two apart.
		{"RecordedAgainTheSameSecond", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newAudHarness(t)
			h.account("acme", nil)
			h.extension("1005", "acme", audT0, func(e *tollguard.Extension) { e.Managed = c.managed })
			env := *h.env
			env.Asterisk = &rivalRemoveAdd{Asterisk: h.env.Asterisk, rival: func() {
				if err := h.db.DeleteExtension(ctx, "1005"); err != nil {
					t.Error(err)
				}
				h.extension("1005", "acme", audT0, func(e *tollguard.Extension) { e.Managed, e.Description = c.managed, "rival" })
			}}
			_, err := env.RemoveExtension(ctx, "1005", tollguard.RemoveOptions{})
			if tollguard.ErrorCode(err) != tollguard.ECONFLICT || !strings.Contains(tollguard.ErrorMessage(err), "removed and recorded again") {
				t.Errorf("got %v; want a conflict saying the row changed meanwhile", err)
			}
			if e, err := h.db.Extension(ctx, "1005"); err != nil || e.Description != "rival" {
				t.Errorf("the rival's row: %+v, %v", e, err)
			}
		})
	}
}
