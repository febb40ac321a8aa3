package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReadyzDuringWarmUpSaysARIIsOn: since the FastAGI bind (and the
// gate's warm-up before it) moved ahead of the ARI listener's start,
// /readyz said "ari": "disabled" and tollguard_ari_enabled was 0 for an
// [ari]-enabled daemon while it warmed up (long for a carrier-sized deck,
// or while another process holds the database's write lock). It says
// "connecting" from the start.
func TestReadyzDuringWarmUpSaysARIIsOn(t *testing.T) {
	fake := newFakeARI(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tollguard.db")
	app, _ := openApp(t, dbPath) // creates the database
	app.Close()
	// Another process's write transaction holds the warm-up back.
	unlock := holdWriteLock(t, dbPath)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	pw := filepath.Join(dir, "ari.secret")
	cfg := filepath.Join(dir, "tollguard.toml")
	os.WriteFile(pw, []byte(fake.Password+"\n"), 0o600)
	os.WriteFile(cfg, []byte(fmt.Sprintf(`db = %q
[agi]
listen = "127.0.0.1:0"
[metrics]
listen = %q
[ari]
enabled = true
url = %q
user = %q
password_file = %q
`, dbPath, metricsAddr, fake.URL, fake.User, pw)), 0o600)
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "")

	cancel, done, logs := startServe(t, cfg)
	var rep healthReport
	var metrics string
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 4*time.Second { // the store's busy timeout is 5s
			t.Fatal("/readyz never answered during the warm-up")
		}
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
			b.ReadFrom(resp.Body)
			resp.Body.Close()
		}
		metrics = b.String()
		break
	}
	if rep.AGIBound {
		t.Fatalf("/readyz answered after the warm-up (%+v): the test did not hold it back", rep)
	}
	if rep.Ready || rep.ARI != "connecting" {
		t.Errorf("/readyz during the warm-up of an [ari]-enabled daemon: %+v, want not ready and ari \"connecting\"", rep)
	}
	if !strings.Contains(metrics, "\ntollguard_ari_enabled 1\n") {
		i := strings.Index(metrics, "\ntollguard_ari_enabled ")
		t.Errorf("during the warm-up, /metrics does not say ARI is enabled: %q", metrics[i+1:i+1+min(len("tollguard_ari_enabled 1"), len(metrics)-i-1)])
	}
	unlock()
	// Stopped once serving: a stop during the warm-up is another matter.
	for !strings.Contains(logs.String(), "tollguard serving") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopServe(t, cancel, done, logs, 30*time.Second)
}

// holdWriteLock holds dbPath's write lock from another connection, as
// another process would, until unlock (or the test's end).
func holdWriteLock(t *testing.T, dbPath string) (unlock func()) {
	t.Helper()
	other, err := sql.Open("sqlite3", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(context.Background())
	if err != nil {
		other.Close()
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		other.Close()
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// TestStopDuringWarmUpIsClean: a SIGTERM while the gate warmed up (a
// carrier-sized deck, the database's write lock held elsewhere) made
// serve fail with "count the last day's call attempts: context
// canceled" and exit non-zero, so `systemctl stop` or a restart during
// the start left the unit failed. It is a clean stop now.
func TestStopDuringWarmUpIsClean(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tollguard.db")
	app, _ := openApp(t, dbPath) // creates the database
	app.Close()
	holdWriteLock(t, dbPath)
	cfg := filepath.Join(dir, "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[agi]\nlisten = \"127.0.0.1:0\"\n[metrics]\nenabled = false\n", dbPath)), 0o600)
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_AGI_ADDR", "")

	cancel, done, logs := startServe(t, cfg)
	for !strings.Contains(logs.String(), "before listening for calls") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d before its warm-up:\n%s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel() // what SIGTERM does
	select {
	case code := <-done:
		out := logs.String()
		if code != 0 || strings.Contains(out, "context canceled") || strings.Contains(out, "FastAGI gate listening") {
			t.Fatalf("serve stopped during its warm-up: exit %d, want 0, no error and no listening:\n%s", code, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
