package fail2ban

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeClient writes a shell script standing in for fail2ban-client.
func fakeClient(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fail2ban-client")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	t.Run("RunningWithJails", func(t *testing.T) {
		c := &Client{Path: fakeClient(t, "printf 'Status\\n|- Number of jail:\\t2\\n`- Jail list:\\tasterisk, sshd\\n'\n")}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Installed || !st.Running || !reflect.DeepEqual(st.Jails, []string{"asterisk", "sshd"}) {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("NotRunning", func(t *testing.T) {
		c := &Client{Path: fakeClient(t, "echo 'ERROR   Failed to access socket path: /var/run/fail2ban/fail2ban.sock. Is fail2ban running?' >&2\nexit 255\n")}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Installed || st.Running || st.Detail == "" || st.Denied {
			t.Errorf("status %+v", st)
		}
	})
	// fail2ban 1.0.2's fail2ban-client run by a user other than root
	// while fail2ban runs (its socket is root's, mode 0700).
	t.Run("PermissionDenied", func(t *testing.T) {
		c := &Client{Path: fakeClient(t, "echo '2026-11-23 23:47:19,082 fail2ban                [3104]: ERROR   Permission denied to socket: /var/run/fail2ban/fail2ban.sock, (you must be root)' >&2\nexit 255\n")}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Installed || st.Running || !st.Denied || !strings.Contains(st.Detail, "Permission denied") {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("NotInstalled", func(t *testing.T) {
		c := &Client{Path: filepath.Join(t.TempDir(), "fail2ban-client")}
		st, err := c.Status(ctx)
		if err != nil || st.Installed {
			t.Errorf("status %+v, %v", st, err)
		}
	})
	t.Run("NoJails", func(t *testing.T) {
		if j := ParseJails("Status\n|- Number of jail:\t0\n`- Jail list:\t\n"); len(j) != 0 {
			t.Errorf("jails %q", j)
		}
	})
}
