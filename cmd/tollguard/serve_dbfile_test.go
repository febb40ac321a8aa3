package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/store"
)

// TestServeSavesItsDatabaseDeletedUnderIt: the database file deleted
// while serve runs left the daemon deciding on the deleted file, ready,
// with nothing in its log, and everything it held (balances, calls,
// extensions) was gone once it stopped. The sweep now notices, says so,
// turns /readyz not ready and saves a copy, and serve saves a last one
// as it stops, which holds what was written after the deletion.
func TestServeSavesItsDatabaseDeletedUnderIt(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tollguard.db")
	app, db := openApp(t, dbPath)
	a, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	app.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = %q\n[gate]\nsweep_interval = \"100ms\"\n",
		dbPath, metricsAddr)), 0o600)
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_AGI_ADDR", "")

	cancel, done, logs := startServe(t, cfg)
	waitLog := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("log never said %q:\n%s", want, logs.String())
			}
		}
	}
	waitLog("tollguard serving")
	if err := os.Remove(dbPath); err != nil {
		t.Fatal(err)
	}
	waitLog("was deleted or moved away while tollguard had it open: calls are still decided")
	resp, err := http.Get("http://" + metricsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var rep healthReport
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || rep.Ready || rep.Store {
		t.Errorf("/readyz with the database file deleted: %d %+v, want 503, not ready", resp.StatusCode, rep)
	}

	// A call decided after the first copy: only the last one holds it.
	agiAddr := regexp.MustCompile(`FastAGI gate listening" addr=(\S+)`).FindStringSubmatch(logs.String())
	if agiAddr == nil {
		t.Fatalf("no FastAGI address in the log:\n%s", logs.String())
	}
	res, err := agitest.Gated("02079460000").Run(context.Background(), agiAddr[1])
	if err != nil || res.CallID() == "" {
		t.Fatalf("gate session after the deletion: %v %+v", err, res)
	}
	stopServe(t, cancel, done, logs, 30*time.Second)
	m := regexp.MustCompile(`saved=(\S+-at-stop)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("serve saved no last copy as it stopped:\n%s", logs.String())
	}
	for _, f := range []string{dbPath + "-wal", dbPath + "-shm"} {
		os.Remove(f)
	}
	if err := os.Rename(m[1], dbPath); err != nil {
		t.Fatal(err)
	}
	back, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := back.Account(context.Background(), "acme"); err != nil {
		t.Errorf("the saved copy lacks the account: %v", err)
	}
	var n int
	if err := back.SQL().QueryRow(`SELECT count(*) FROM calls WHERE id = ?`, res.CallID()).Scan(&n); err != nil || n != 1 {
		t.Errorf("the last copy lacks call %s, decided after the deletion: %d %v", res.CallID(), n, err)
	}
}
