package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestCLIExtRm: `tollguard ext rm` removes the record of a line
// Asterisk no longer has, and refuses one it still has.
func TestCLIExtRm(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("ext", "add", "1005", "--account", "acme", "--no-asterisk")
	c.ok("ext", "add", "1006", "--account", "acme", "--no-asterisk")
	c.ok("ext", "add", "1001", "--account", "acme", "--no-asterisk") // in the fake's pjsip.conf

	if out := c.ok("ext", "rm", "1005", "--dry-run"); !strings.Contains(out, "would remove extension 1005") {
		t.Errorf("rm --dry-run: %s", out)
	}
	c.ok("ext", "show", "1005")
	if out := c.ok("ext", "rm", "1005"); !strings.Contains(out, "extension 1005 removed from tollguard's store") {
		t.Errorf("rm: %s", out)
	}
	if _, errOut, code := c.run("ext", "show", "1005"); code != exitUsage {
		t.Errorf("show after rm: exit %d, %s", code, errOut)
	}
	var got struct {
		Name    string `json:"name"`
		Account string `json:"account"`
		Checked bool   `json:"asterisk_checked"`
	}
	if err := json.Unmarshal([]byte(c.ok("ext", "rm", "1006", "--json")), &got); err != nil || got.Name != "1006" || got.Account != "acme" || !got.Checked {
		t.Errorf("rm --json: %+v, %v", got, err)
	}

	_, errOut, code := c.run("ext", "rm", "1001")
	if code != exitUsage || !strings.Contains(errOut, "`tollguard ext purge 1001`") {
		t.Errorf("rm of a line Asterisk has: exit %d, %s", code, errOut)
	}
	if out := c.ok("ext", "list"); !strings.Contains(out, "1001") {
		t.Errorf("the refused rm removed it:\n%s", out)
	}

	_, errOut, code = c.run("ext", "rm", "nosuch")
	if code != exitUsage || !strings.Contains(errOut, "`tollguard ext list`") {
		t.Errorf("rm of nothing: exit %d, %s", code, errOut)
	}
}

// TestCLIPurgeStoreOnly: with ARI, purging an extension that is only in
// the store blocked it and then failed, advising a purge that fails the
// same way. It is refused before anything is blocked, naming ext rm.
func TestCLIPurgeStoreOnly(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP")
	c.ok("ext", "add", "1005", "--account", "acme", "--no-asterisk")
	for _, args := range [][]string{
		{"ext", "purge", "1005", "--now"},
		{"ext", "purge", "1005"},
		{"ext", "purge", "1005", "--dry-run"},
	} {
		out, errOut, code := c.run(args...)
		if code != exitUsage || !strings.Contains(errOut, "nothing to purge") || !strings.Contains(errOut, "`tollguard ext rm 1005`") {
			t.Errorf("tollguard %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
		}
	}
	if out := c.ok("ext", "show", "1005"); !strings.Contains(out, "blocked           no") {
		t.Errorf("the refused purge blocked it:\n%s", out)
	}
	if ps := pendingPurges(t, c.db); len(ps) != 0 {
		t.Errorf("pending %+v", ps)
	}
	c.ok("ext", "rm", "1005")
}

// TestCLIExtRmWithoutARI: tollguard cannot check Asterisk, so a blocked
// extension, whose block goes with its record, needs --force.
func TestCLIExtRmWithoutARI(t *testing.T) {
	c := newCLI(t)
	c.seed() // 1001 on acme; no [ari]
	// A call in progress when the record goes.
	open := decideOn(t, c.db, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.7"})
	c.ok("ext", "block", "1001", "--reason", "left")
	code, out, errs := c.run("ext", "rm", "1001")
	if code != exitUsage || !strings.Contains(errs, "--force") {
		t.Errorf("rm of a blocked extension without ARI: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if out := c.ok("ext", "show", "1001"); !strings.Contains(out, "left") {
		t.Errorf("the refused rm changed it:\n%s", out)
	}
	code, out, errs = c.run("ext", "rm", "1001", "--force")
	if code != exitOK || !strings.Contains(out, "extension 1001 removed") || !strings.Contains(errs, "Asterisk was not checked") {
		t.Errorf("rm --force: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if code, _, _ := c.run("ext", "show", "1001"); code != exitUsage {
		t.Errorf("show after rm: exit %d", code)
	}
	// Its calls stay, and the open one still settles by its call id:
	// settlement reads the call's row, not the extension's.
	app, db := openApp(t, c.db)
	changed, err := app.Policy(db).Settle(context.Background(), tollguard.Settlement{CallID: open.CallID, Billsec: 60, By: "test"})
	if err != nil || !changed {
		t.Errorf("settling the open call after rm: changed %v, %v", changed, err)
	}
	app.Close()
	if out := c.ok("calls", "--ext", "1001"); !strings.Contains(out, "02079460000") {
		t.Errorf("calls after rm:\n%s", out)
	}
}

// TestCLIExtAddUndoLeftovers: when a failed `ext add` could not delete a
// PJSIP object it had created, it removed the line's store row all the
// same, and `ext purge` will not take a lone auth of a name with no row
// and no endpoint: the cleanup it advised failed. The row stays, so the
// commands the error names remove the leftovers; and the failed add does
// not use up the daily quota once they are gone.
func TestCLIExtAddUndoLeftovers(t *testing.T) {
	c := newAuditCLI(t, "")
	c.ok("account", "add", "acme", "--country", "GB", "--currency", "GBP", "--max-created-per-day", "1")
	// sorcery.conf maps auth and aor to astdb, not endpoint; and astdb
	// fails the undo's delete of the auth.
	c.fake.SetWritable("endpoint", false)
	c.fake.Fault(http.MethodDelete, "/asterisk/config/dynamic/res_pjsip/auth/1009", http.StatusInternalServerError, "Internal Server Error", 1)
	_, errOut, code := c.run("ext", "add", "1009", "--account", "acme")
	if code == 0 || !strings.Contains(errOut, "could not delete auth/1009") {
		t.Fatalf("ext add: exit %d, %s", code, errOut)
	}
	if _, ok := c.fake.Object("auth", "1009"); !ok {
		t.Fatal("the fault did not keep auth/1009")
	}
	for _, cmd := range []string{"`tollguard ext purge 1009 --now`", "`tollguard ext rm 1009`"} {
		if !strings.Contains(errOut, cmd) {
			t.Errorf("ext add's error does not name %s: %s", cmd, errOut)
		}
	}
	// While its row is left, the line counts against the quota.
	c.fake.SetWritable("endpoint", true)
	if _, errOut, code := c.run("ext", "add", "1010", "--account", "acme"); code == 0 || !strings.Contains(errOut, "max_created_per_day 1") {
		t.Errorf("ext add 1010 beside the leftovers: exit %d, %s", code, errOut)
	}
	c.ok("ext", "purge", "1009", "--now")
	c.ok("ext", "rm", "1009")
	for _, typ := range []string{"auth", "aor", "endpoint"} {
		if _, ok := c.fake.Object(typ, "1009"); ok {
			t.Errorf("%s/1009 left in Asterisk", typ)
		}
	}
	if _, errOut, code := c.run("ext", "show", "1009"); code != exitUsage {
		t.Errorf("ext show after the cleanup: exit %d, %s", code, errOut)
	}
	c.ok("ext", "add", "1009", "--account", "acme")
}
