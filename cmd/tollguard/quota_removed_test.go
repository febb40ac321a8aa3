package main

import (
	"strings"
	"testing"
)

// TestCLIDailyQuotaCountsRemovedLines: with max_created_per_day = 1,
// ext add, ext purge --now, ext rm, ext add, ext add all succeeded in
// one day and the quotas audit saw nothing: both counted only the
// lines left. Removing a line does not free the daily quota.
func TestCLIDailyQuotaCountsRemovedLines(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("account", "set", "acme", "--max-created-per-day", "1")
	c.ok("ext", "add", "3001", "--account", "acme")
	c.ok("ext", "purge", "3001", "--now")
	c.ok("ext", "rm", "3001")
	if _, errOut, code := c.run("ext", "list"); code != exitOK {
		t.Fatalf("list: %s", errOut)
	}
	_, errOut, code := c.run("ext", "add", "3002", "--account", "acme")
	if code == exitOK || !strings.Contains(errOut, "max_created_per_day 1") {
		t.Fatalf("second add in a day after removing the first: exit %d, %s", code, errOut)
	}
	// The audit counts it too: with the quota raised, three lines in a
	// day of which one is gone is still over a quota of 2.
	c.ok("account", "set", "acme", "--max-created-per-day", "3")
	c.ok("ext", "add", "3002", "--account", "acme")
	c.ok("ext", "add", "3003", "--account", "acme")
	c.ok("account", "set", "acme", "--max-created-per-day", "2")
	out, _, _ := c.run("audit", "quotas")
	if !strings.Contains(out, "got 3 new extensions in 24 h, over its quota of 2 a day") {
		t.Errorf("quotas audit:\n%s", out)
	}
}
