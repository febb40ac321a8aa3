package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
	"github.com/tollguard/tollguard/internal/testutil"
)

// TestServeFlushesSettlementsOnAFailedStart: a start step after the
// FastAGI server (the alerts, ARI, the audits) that failed stopped serve
// without the flush shutdown does: a hangup the store failed meanwhile,
// kept in memory, was dropped, with no line saying so. Here the audits'
// scheduler fails (the e-mail CA file, read again, holds no
// certificate): a FIFO as the CA file holds serve there until the call
// and its hangup are in. The kept settlement is then stored once the
// store takes it, or logged lost.
func TestServeFlushesSettlementsOnAFailedStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recovered bool // the store takes settlements again before the start fails
	}{{"StoreRecovered", true}, {"StoreStillFails", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newLocalGBCLI(t)

			dir := t.TempDir()
			ca := filepath.Join(dir, "ca.pem")
			if err := syscall.Mkfifo(ca, 0o600); err != nil {
				t.Fatal(err)
			}
			// feed writes b to the FIFO for serve's next read of it.
			feed := func(b []byte) <-chan error {
				done := make(chan error, 1)
				go func() {
					f, err := os.OpenFile(ca, os.O_WRONLY, 0)
					if err == nil {
						_, err = f.Write(b)
						f.Close()
					}
					done <- err
				}()
				return done
			}
			// A writer still waiting when the test ends is let go.
			t.Cleanup(func() {
				if f, err := os.OpenFile(ca, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
					time.Sleep(10 * time.Millisecond)
					f.Close()
				}
			})
			first := feed(testCAPEM(t))

			cfg := filepath.Join(dir, "tollguard.toml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`db = %q
[agi]
listen = "127.0.0.1:0"
[metrics]
enabled = false
[gate]
sweep_interval = "1h"
[alerts.email]
enabled = true
host = "127.0.0.1"
tls = "none"
from = "tollguard@example.com"
to = ["admin@example.com"]
ca_file = %q
[audit]
enabled = true
`, c.db, ca)), 0o600)
			t.Setenv("TOLLGUARD_AGI_ADDR", "")
			_, done, logs := startServe(t, cfg)
			testutil.Eventually(t, 10*time.Second, "the FastAGI server listening", func() bool {
				return strings.Contains(logs.String(), "FastAGI gate listening")
			})
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			agiAddr := regexp.MustCompile(`FastAGI gate listening" addr=(\S+)`).FindStringSubmatch(logs.String())
			if agiAddr == nil {
				t.Fatalf("no FastAGI address in the log:\n%s", logs.String())
			}
			ch := agitest.Gated("02079460000")
			res, err := ch.Run(ctx, agiAddr[1])
			if err != nil || res.Verdict() != "allow" || res.CallID() == "" {
				t.Fatalf("gate session: %v %+v; want an allowed call\n%s", err, res, logs.String())
			}
			db, err := sql.Open("sqlite3", "file:"+c.db+"?_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `CREATE TRIGGER test_settle_fails BEFORE UPDATE OF settled_by ON calls
				BEGIN SELECT RAISE(ABORT, 'disk I/O error (a test trigger)'); END`); err != nil {
				t.Fatal(err)
			}
			ch.SetIncludeArgs(tollguard.ScriptHangup, res.CallID(), "1", "ANSWER", "1000")
			if _, err := ch.Run(ctx, agiAddr[1]); err != nil {
				t.Fatalf("hangup session: %v", err)
			}
			testutil.Eventually(t, 10*time.Second, "the failed settlement kept", func() bool {
				return strings.Contains(logs.String(), "kept in memory and retried")
			})
			if tc.recovered {
				if _, err := db.ExecContext(ctx, `DROP TRIGGER test_settle_fails`); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-feed([]byte("not a certificate\n")); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code == 0 {
					t.Fatalf("serve exited 0 on a failed start:\n%s", logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("serve did not stop:\n%s", logs.String())
			}
			out := logs.String()
			if !strings.Contains(out, "no PEM certificates") {
				t.Errorf("serve did not fail on the CA file:\n%s", out)
			}
			var by string
			var billsec int64
			if err := db.QueryRow(`SELECT COALESCE(settled_by, ''), billsec FROM calls WHERE id = ?`, res.CallID()).Scan(&by, &billsec); err != nil {
				t.Fatal(err)
			}
			lost := regexp.MustCompile(`"settlement lost at shutdown" call_id=` + res.CallID() + ` billsec=1 `).MatchString(out)
			if tc.recovered && (by != "agi" || billsec != 1 || lost) {
				t.Errorf("call %s settled by %q, %d s (logged lost: %v); want agi, 1 s:\n%s", res.CallID(), by, billsec, lost, out)
			}
			if !tc.recovered && (by != "" || !lost) {
				t.Errorf("call %s settled by %q; want it open, its settlement logged lost:\n%s", res.CallID(), by, out)
			}
		})
	}
}

// testCAPEM is a self-signed CA certificate, PEM-encoded.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tollguard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
