package fail2ban

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
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
		if !st.Installed || st.Running || st.Detail == "" {
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
