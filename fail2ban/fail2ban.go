// Package fail2ban asks the host's fail2ban whether it runs and which
// jails it has, through `fail2ban-client status`, for the coverage
// audit: failed SIP registrations reach only Asterisk's security log,
// never ARI, so fail2ban is what bans password guessers.
package fail2ban

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
)

// Client runs fail2ban-client.
type Client struct {
	// Path is the fail2ban-client binary; "" looks it up in PATH.
	Path    string
	Timeout time.Duration // default 5s
}

var _ tollguard.Fail2banChecker = (*Client)(nil)

// Status reports whether fail2ban is installed and running, and its jails.
func (c *Client) Status(ctx context.Context) (tollguard.Fail2banStatus, error) {
	path := c.Path
	if path == "" {
		path = "fail2ban-client"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return tollguard.Fail2banStatus{Installed: false}, nil
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "status")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	st := tollguard.Fail2banStatus{Installed: true}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		st.Running, st.Jails = true, ParseJails(out.String())
	case errors.As(err, &exitErr):
		// fail2ban-client exits non-zero when the server is down:
		// "ERROR Failed to access socket path ... Is fail2ban running?"
		// and, as a user other than root (the tollguard daemon), when
		// the socket exists but is root's alone: "ERROR Permission
		// denied to socket: /var/run/fail2ban/fail2ban.sock, (you must
		// be root)". That says nothing of whether fail2ban runs.
		msg := errOut.String() + out.String()
		st.Detail = firstLine(msg)
		st.Denied = strings.Contains(msg, "Permission denied") || strings.Contains(msg, "you must be root")
	default:
		return st, err
	}
	return st, nil
}

// ParseJails reads the jail list from `fail2ban-client status`:
//
//	Status
//	|- Number of jail:	2
//	`- Jail list:	asterisk, sshd
func ParseJails(out string) []string {
	for _, l := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(l, "Jail list:")
		if !ok {
			continue
		}
		var jails []string
		for _, j := range strings.Split(rest, ",") {
			if j = strings.TrimSpace(j); j != "" {
				jails = append(jails, j)
			}
		}
		return jails
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
