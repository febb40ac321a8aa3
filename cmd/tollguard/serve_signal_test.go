package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// TestServeSurvivesEarlySIGHUP: a SIGHUP while serve waits for the
// database (another process holds its write lock) killed the daemon,
// Go's default for a signal not yet caught, and systemd took that for a
// clean exit. It is caught from the start and handled once serving. (If
// this regresses, the test binary itself dies of the signal.)
func TestServeSurvivesEarlySIGHUP(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tollguard.db")
	cfg := filepath.Join(dir, "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nenabled = false\n", db)), 0o600)
	t.Setenv("TOLLGUARD_CONFIG", "")
	if code := run(context.Background(), []string{"--config", cfg, "account", "add", "acme", "--country", "GB", "--currency", "GBP"},
		strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("account add: exit %d", code)
	}
	// Another process's write transaction: serve waits for it at start.
	other, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.SQL().Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`UPDATE accounts SET updated_at = updated_at`); err != nil {
		t.Fatal(err)
	}

	cancel, done, logs := startServe(t, cfg)
	// serve logs its first lines once its signal handling is in place.
	testutil.Eventually(t, 5*time.Second, "serve's first log line", func() bool { return logs.String() != "" })
	if strings.Contains(logs.String(), "tollguard serving") {
		t.Fatalf("serve did not wait for the lock:\n%s", logs.String())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "serve serving after an early SIGHUP", func() bool {
		return strings.Contains(logs.String(), "tollguard serving")
	})
	stopServe(t, cancel, done, logs, 15*time.Second)
}
