package faulttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestRestoreOlderBackup: an admin backs the database up as the docs
// say (sqlite3 .backup while serve runs), later restores that backup
// while a call decided after it is still up. The call ids after the
// restore start again from the backup's, so the hangup request of the
// call decided before the restore carries an id that now names another
// call, of another account: it must not settle that call.
func TestRestoreOlderBackup(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("no sqlite3 shell: this test takes a backup the way the README says (apt-get install sqlite3; .ci/run installs it)")
	}
	e := NewEnv(t, nil)
	e.Seed(testDeck,
		Account{ID: "acme", Credit: "100.00", Flags: []string{"--max-call-secs", "600"}, Extensions: []string{"2001"}},
		Account{ID: "other", Credit: "100.00", Flags: []string{"--max-call-secs", "600"}, Extensions: []string{"3001"}})
	d := e.Start()
	ctx := context.Background()
	res, err := gateChannel("2001", numLeeds, 1).Run(ctx, d.AGI)
	if err != nil || res.Verdict() != "allow" {
		t.Fatalf("first call: %v %v", err, resSet(res))
	}

	// The documented backup, while serve runs.
	backup := filepath.Join(t.TempDir(), "copy.db")
	if out, err := exec.Command("sqlite3", e.DB, ".backup "+backup).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3 .backup: %v %s", err, out)
	}

	// Call A, decided after the backup, still up.
	a, err := gateChannel("2001", numLeeds, 2).Run(ctx, d.AGI)
	if err != nil || a.Verdict() != "allow" {
		t.Fatalf("call A: %v %v", err, resSet(a))
	}
	d.Signal(syscall.SIGTERM)
	if code := d.Wait(30 * time.Second); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	// Restore: the daemon stopped, the backup copied over the database.
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(e.DB + s)
	}
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.DB, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d = e.Start()

	// Call B, another account's, decided after the restore.
	bres, err := gateChannel("3001", numLeeds, 3).Run(ctx, d.AGI)
	if err != nil || bres.Verdict() != "allow" {
		t.Fatalf("call B: %v %v", err, resSet(bres))
	}
	t.Logf("call A id %s (before the restore), call B id %s (after)", a.CallID(), bres.CallID())

	// Call A hangs up now, after 1 s: its hangup request carries A's id.
	time.Sleep(1100 * time.Millisecond)
	if _, err := settleChannel("2001", a.CallID(), 1, 2).Run(ctx, d.AGI); err != nil {
		t.Fatalf("call A's hangup: %v", err)
	}
	idB, _ := strconv.ParseInt(bres.CallID(), 10, 64)
	if c := e.Calls()[idB]; c.SettledAt.Valid {
		t.Errorf("call B (account %s, still up) was settled by call A's hangup request: %+v", c.Account, c)
	}
	e.CheckBooks("after the restore")
}
