package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondServeStartsNothingBesideTheFirst: a second serve whose
// FastAGI address is taken (the first daemon holds it) started its ARI
// listener and scheduled its audits before the bind failed, so two
// daemons briefly ran them side by side. It now fails on the bind first.
func TestSecondServeStartsNothingBesideTheFirst(t *testing.T) {
	fake := newFakeARI(t)
	// The first daemon's FastAGI port.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	pw := filepath.Join(dir, "ari.secret")
	cfg := filepath.Join(dir, "tollguard.toml")
	os.WriteFile(pw, []byte(fake.Password+"\n"), 0o600)
	os.WriteFile(cfg, []byte(fmt.Sprintf(`db = %q
[agi]
listen = %q
[metrics]
enabled = false
[ari]
enabled = true
url = %q
user = %q
password_file = %q
[audit]
enabled = true
`, filepath.Join(dir, "tollguard.db"), taken.Addr().String(), fake.URL, fake.User, pw)), 0o600)
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_AGI_ADDR", "")
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "")

	code, out := serveUntilExit(t, cfg, "its FastAGI address taken")
	if code == 0 || !strings.Contains(out, "cannot listen on "+taken.Addr().String()+" for FastAGI") {
		t.Fatalf("serve with its FastAGI address taken: exit %d\n%s", code, out)
	}
	for _, started := range []string{"ARI listener starting", "audit scheduled", "alerts"} {
		if strings.Contains(out, "msg="+started) || strings.Contains(out, `msg="`+started) {
			t.Errorf("the second serve started %q before failing:\n%s", started, out)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("the second serve made %d ARI requests before failing", n)
	}
}

// TestServeWithBrokenAlertsTakesNoCalls: alerts that cannot start (an
// SMTP user whose password file is empty, a ca_file with no
// certificates: nothing the config check sees) failed serve only after
// the FastAGI listener was bound. Under systemd's restarts the gate then
// took calls for a moment each time, whose hangup requests found no
// daemon, so the sweep charged them their full reservations. serve now
// finds such an error before it opens anything.
func TestServeWithBrokenAlertsTakesNoCalls(t *testing.T) {
	for _, tc := range []struct{ name, email, want string }{
		{"EmptyPasswordFile", "username = \"alerts\"\npassword_file = %q\n", "has no password"},
		{"CAFileWithoutCertificates", "ca_file = %q\n", "no PEM certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// An empty file: no password, and no PEM block either.
			empty := filepath.Join(dir, "empty")
			if err := os.WriteFile(empty, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "tollguard.toml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`db = %q
[agi]
listen = "127.0.0.1:0"
[metrics]
enabled = false
[alerts.email]
enabled = true
host = "127.0.0.1"
from = "tollguard@example.com"
to = ["admin@example.com"]
`+tc.email, filepath.Join(dir, "tollguard.db"), empty)), 0o600)
			t.Setenv("TOLLGUARD_CONFIG", "")
			t.Setenv("TOLLGUARD_AGI_ADDR", "")
			t.Setenv("TOLLGUARD_SMTP_PASSWORD", "")

			code, out := serveUntilExit(t, cfg, "alerts that cannot start")
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("serve with alerts that cannot start: exit %d, want an error saying %q:\n%s", code, tc.want, out)
			}
			if strings.Contains(out, "FastAGI gate listening") {
				t.Errorf("serve listened for calls before it found its alerts cannot start:\n%s", out)
			}
		})
	}
}

// serveUntilExit runs serve on cfg, which must make it exit at start
// (what says why), and returns its exit code and log.
func serveUntilExit(t *testing.T, cfg, what string) (int, string) {
	t.Helper()
	var logs bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"--config", cfg, "serve"}, strings.NewReader(""), &bytes.Buffer{}, &logs)
	}()
	select {
	case code := <-done:
		return code, logs.String()
	case <-time.After(30 * time.Second):
		t.Fatalf("serve with %s did not exit", what)
		return 0, ""
	}
}
