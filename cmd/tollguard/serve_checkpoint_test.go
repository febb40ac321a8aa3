package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// checkpointerFunc is a WAL checkpointer whose run a test chooses.
type checkpointerFunc func(ctx context.Context, interval time.Duration, report func(error)) error

func (f checkpointerFunc) RunCheckpointer(ctx context.Context, interval time.Duration, report func(error)) error {
	return f(ctx, interval, report)
}

// TestCheckpointerLogs: when serve's final WAL checkpoint at shutdown
// failed, the log said SQLite "checkpoints inside commits again", which
// nothing does once the daemon stops. It now says what that failure
// means then: the WAL keeps the writes for the next open.
func TestCheckpointerLogs(t *testing.T) {
	diskErr := errors.New("disk I/O error")
	for _, tc := range []struct {
		name     string
		run      checkpointerFunc
		stop     bool // serve is shutting down
		want     []string
		dontWant string
	}{
		{"FinalCheckpointFails", func(ctx context.Context, _ time.Duration, _ func(error)) error {
			<-ctx.Done()
			return diskErr
		}, true, []string{"the final WAL checkpoint at shutdown failed", "SQLite moves them into the database when it is next opened", "disk I/O error"}, "inside commits"},
		{"CannotStart", func(ctx context.Context, _ time.Duration, _ func(error)) error {
			return diskErr
		}, false, []string{"WAL checkpointer did not start", "SQLite checkpoints inside commits", "disk I/O error"}, "again"},
		{"CheckpointFailsAndRecovers", func(ctx context.Context, _ time.Duration, report func(error)) error {
			report(diskErr)
			report(nil)
			<-ctx.Done()
			return nil
		}, true, []string{"WAL checkpoint failed; SQLite checkpoints inside commits until one succeeds again", "WAL checkpoints succeed again"}, "shutdown"},
		// Checkpoints a long reader blocks: the advice names readers,
		// not the disk, and nothing claims SQLite checkpoints instead.
		{"CheckpointsBlockedThenFinish", func(ctx context.Context, _ time.Duration, report func(error)) error {
			report(fmt.Errorf("checkpoint: %w", store.ErrCheckpointBlocked))
			report(nil)
			<-ctx.Done()
			return nil
		}, true, []string{"WAL checkpoints run but cannot finish", "tollguard calls", "WAL checkpoints finish again"}, "inside commits"},
		{"FinalCheckpointBlocked", func(ctx context.Context, _ time.Duration, _ func(error)) error {
			<-ctx.Done()
			return store.ErrCheckpointBlocked
		}, true, []string{"the final WAL checkpoint at shutdown could not finish", "sqlite3 .backup"}, "disk space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testutil.Buffer{}
			d := &daemon{log: slog.New(slog.NewTextHandler(logs, nil))}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.stop {
				cancel()
			}
			defer cancel()
			d.runCheckpointer(ctx, tc.run)
			out := logs.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("log lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, tc.dontWant) {
				t.Errorf("log says %q:\n%s", tc.dontWant, out)
			}
		})
	}
}
