package tollguard_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// stuckJob is an audit stuck in a call that ignores cancellation (a
// read on a hung file system) until release is closed.
type stuckJob struct {
	name    string
	release chan struct{}
	inside  *atomic.Int32 // runs of it (or of a job sharing its state) inside Run now
	most    *atomic.Int32 // the most that were ever inside at once
}

func (j stuckJob) Name() string { return j.name }

func (j stuckJob) Run(ctx context.Context, env *tollguard.AuditEnv, apply bool, _ tollguard.AuditProgress) ([]tollguard.AuditFinding, []tollguard.AuditAction, error) {
	n := j.inside.Add(1)
	defer j.inside.Add(-1)
	for {
		m := j.most.Load()
		if n <= m || j.most.CompareAndSwap(m, n) {
			break
		}
	}
	<-j.release
	return nil, []tollguard.AuditAction{{Kind: "rewrite_pin", Subject: "mailbox:1001", Message: "rewrote its PIN"}}, nil
}

// TestAbandonedAuditNotRunTwiceAtOnce: a run abandoned at its deadline
// (stuck in a call that ignores cancellation) was left running, and the
// next run of the same audit, or of one sharing its state (stale and
// tests both carry out the pending purges), started beside it. On a
// hung file system every night's pins run piled up so; when it answered
// they all rewrote voicemail.conf at once, each mailing owners PINs the
// others' writes replaced. Now a run whose earlier run is still going is
// stored as failed and changes nothing; once that one returns, the
// audit runs again.
func TestAbandonedAuditNotRunTwiceAtOnce(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := &tollguard.AuditEnv{Store: db, Settings: tollguard.DefaultAuditSettings(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	env.Settings.Timeout = 100 * time.Millisecond

	for _, pair := range [][2]string{{"pins", "pins"}, {"stale", "tests"}} {
		t.Run(pair[0]+"Then"+pair[1], func(t *testing.T) {
			var inside, most atomic.Int32
			release := make(chan struct{})
			released := false
			defer func() {
				if !released {
					close(release)
				}
			}()
			first := stuckJob{name: pair[0], release: release, inside: &inside, most: &most}
			if _, err := tollguard.RunAudit(ctx, env, first, true, "cron", nil); err == nil ||
				!strings.Contains(err.Error(), "nor stop within") {
				t.Fatalf("first run: %v; want it abandoned at its deadline", err)
			}
			open := make(chan struct{})
			close(open)
			second := stuckJob{name: pair[1], release: open, inside: &inside, most: &most}
			run, err := tollguard.RunAudit(ctx, env, second, true, "cron", nil)
			if err == nil || !strings.Contains(run.Error, "still running") || len(run.Actions) != 0 {
				t.Errorf("second run beside the abandoned one: %+v, %v; want it stored as failed, still running named, nothing done", run, err)
			}
			if m := most.Load(); m > 1 {
				t.Errorf("%d runs were inside the audit at once", m)
			}
			close(release)
			released = true
			// The abandoned run returns and is stored; then the audit runs again.
			deadline := time.Now().Add(20 * time.Second) // a hang, not a speed check
			for {
				run, err = tollguard.RunAudit(ctx, env, second, true, "cron", nil)
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil || len(run.Actions) != 1 {
				t.Fatalf("run after the abandoned one returned: %+v, %v; want it to run", run, err)
			}
		})
	}
}
