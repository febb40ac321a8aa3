package tollguard_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestCancelAfterPurgeThatDeletedNothing: the purge's first delete (the
// endpoint) failed, so nothing was deleted; the admin unblocked. The
// cancel said an earlier run "had deleted some of its PJSIP objects
// already", pointed at ext restore and failed the run (exit 1), while
// every object was still in Asterisk. `tollguard unblock` said the same.
func TestCancelAfterPurgeThatDeletedNothing(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	h.env.Settings.Ignore = []string{"1001", "1002", "1003"}
	if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2001", Account: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.advance(61 * 24 * time.Hour)
	h.run(tollguard.StaleAudit{}, true)
	h.advance(8 * 24 * time.Hour)
	h.fake.Fault("DELETE", "/asterisk/config/dynamic/res_pjsip/endpoint/2001", http.StatusInternalServerError, "boom", 1)
	run := h.run(tollguard.StaleAudit{}, true)
	if got := audActions(run); !reflect.DeepEqual(got, []string{"purge ext:2001 FAILED"}) {
		t.Fatalf("actions %q", got)
	}
	for _, typ := range []string{"endpoint", "aor", "auth"} {
		if _, ok := h.fake.Object(typ, "2001"); !ok {
			t.Fatalf("%s 2001 gone: not a purge that deleted nothing", typ)
		}
	}
	pending, err := h.db.PendingPurges(ctx)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %v, %v", pending, err)
	}
	if snap, err := tollguard.PurgeStarted(ctx, h.db, pending[0]); err != nil || snap != nil {
		t.Errorf("PurgeStarted = %v, %v for a purge that deleted nothing: unblock says it had begun deleting", snap, err)
	}
	if _, err := h.db.Unblock(ctx, tollguard.BlockExtension, "2001", "admin"); err != nil {
		t.Fatal(err)
	}
	run = h.run(tollguard.StaleAudit{}, true)
	for _, a := range run.Actions {
		if a.Kind == tollguard.AuditActCancelPurge && a.Err != "" {
			t.Errorf("cancel of a purge that deleted nothing: %+v", a)
		}
	}
}
