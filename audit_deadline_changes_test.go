package tollguard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// deleteAtDeadline is an Asterisk whose delete of an auth object is
// carried out, but answered only as the run's deadline passes.
type deleteAtDeadline struct{ tollguard.Asterisk }

func (a deleteAtDeadline) DeleteConfigObject(ctx context.Context, typ, id string) error {
	err := a.Asterisk.DeleteConfigObject(context.WithoutCancel(ctx), typ, id)
	if typ == "auth" {
		<-ctx.Done()
	}
	return err
}

// blockAtDeadline is a store whose block commits just as the run's
// deadline passes.
type blockAtDeadline struct{ tollguard.AuditStore }

func (s blockAtDeadline) Block(ctx context.Context, b tollguard.Block) (tollguard.Block, error) {
	out, err := s.AuditStore.Block(ctx, b)
	<-ctx.Done()
	return out, err
}

// TestDeadlineKeepsChangesReported: a change made just before the run's
// deadline (a purge Asterisk carried out, a block committed) went
// unreported: the bookkeeping after it failed on the ended context and
// the run returned without the action, the purge left pending for a
// line already deleted, the line blocked with no purge scheduled.
func TestDeadlineKeepsChangesReported(t *testing.T) {
	ctx := context.Background()
	t.Run("Purge", func(t *testing.T) {
		h := duePurge(t, "2001")
		env := *h.env
		env.Asterisk = deleteAtDeadline{h.ast}
		env.Settings.Timeout = 500 * time.Millisecond
		run, _ := tollguard.RunAudit(ctx, &env, tollguard.StaleAudit{}, true, "cron", nil)
		if _, ok := h.fake.Object("endpoint", "2001"); ok {
			t.Fatal("the endpoint was not deleted: the test proves nothing")
		}
		if got := strings.Join(audActions(run), ","); got != "purge ext:2001" {
			t.Errorf("actions %q; want the purge Asterisk carried out", got)
		}
		if ps, err := h.db.PendingPurges(ctx); err != nil || len(ps) != 0 {
			t.Errorf("still pending after the purge: %+v, %v", ps, err)
		}
		if !strings.Contains(run.Error, "[audit] timeout") {
			t.Errorf("run error %q; want the deadline named", run.Error)
		}
	})
	t.Run("Block", func(t *testing.T) {
		h := newAudHarness(t)
		h.account("acme", nil)
		h.env.Settings.Ignore = []string{"1001", "1002", "1003"}
		if _, err := h.env.AddExtension(ctx, tollguard.ExtensionSpec{Name: "2001", Account: "acme"}); err != nil {
			t.Fatal(err)
		}
		h.advance(61 * 24 * time.Hour)
		env := *h.env
		env.Store = blockAtDeadline{h.db}
		env.Settings.Timeout = 500 * time.Millisecond
		run, _ := tollguard.RunAudit(ctx, &env, tollguard.StaleAudit{}, true, "cron", nil)
		ext, err := h.db.Extension(ctx, "2001")
		if err != nil || !ext.Blocked {
			t.Fatalf("2001 not blocked (%v): the test proves nothing", err)
		}
		ps, err := h.db.PendingPurges(ctx)
		if err != nil || len(ps) != 1 {
			t.Errorf("blocked for a purge, but pending purges %+v, %v", ps, err)
		}
		if got := strings.Join(audActions(run), ","); got != "schedule_purge ext:2001" {
			t.Errorf("actions %q; want the block and its schedule reported", got)
		}
	})
}
