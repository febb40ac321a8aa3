package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/store"
)

// TestCLIUnblockAfterPurgeWhoseDeleteGot504: a proxy answered the
// purge's endpoint delete with 504 and Asterisk deleted nothing; the
// snapshot is kept. Unblock then said a run "had begun deleting its
// PJSIP objects", while Asterisk still had them all.
func TestCLIUnblockAfterPurgeWhoseDeleteGot504(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("ext", "add", "2001", "--account", "acme")
	c.ok("ext", "purge", "2001")
	db, err := store.Open(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ari.NewClient(ari.Config{URL: c.fake.URL, User: c.fake.User, Password: c.fake.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c.fake.Fault(http.MethodDelete, "/asterisk/config/dynamic/res_pjsip/endpoint/2001", http.StatusGatewayTimeout, "Gateway Timeout", 1)
	env := &tollguard.AuditEnv{Store: db, Asterisk: cl}
	if _, err := env.PurgeExtension(context.Background(), "2001", "purged by an admin"); err == nil {
		t.Fatal("the purge did not fail")
	}
	db.Close()
	if _, ok := c.fake.Object("endpoint", "2001"); !ok {
		t.Fatal("endpoint gone: not a purge that deleted nothing")
	}
	out := c.ok("unblock", "2001")
	if !strings.Contains(out, "pending purge of 2001 cancelled") || strings.Contains(out, "begun deleting") || strings.Contains(out, "had deleted") {
		t.Errorf("unblock after a purge that deleted nothing:\n%s", out)
	}
}
