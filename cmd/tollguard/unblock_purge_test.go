package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestCLIUnblockAfterPurgeWhoseDeleteGot504: a proxy answered the
// purge's endpoint delete with 504 and Asterisk deleted nothing; the
// snapshot is kept. Unblock then said a run "had begun deleting its
// PJSIP objects", while Asterisk still had them all.
func TestCLIUnblockAfterPurgeWhoseDeleteGot504(t *testing.T) {
	c := newAuditCLI(t, "")
	failedPurge(t, c, "endpoint", http.StatusGatewayTimeout, "Gateway Timeout")
	if _, ok := c.fake.Object("endpoint", "2001"); !ok {
		t.Fatal("endpoint gone: not a purge that deleted nothing")
	}
	out := c.ok("unblock", "2001")
	if !strings.Contains(out, "pending purge of 2001 cancelled") || strings.Contains(out, "begun deleting") || strings.Contains(out, "had deleted") {
		t.Errorf("unblock after a purge that deleted nothing:\n%s", out)
	}
}
