package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestExtBlockHangsUpCallsInProgress: `ext block` ends the extension's
// calls in progress through ARI (not its emergency call); without ARI
// it says how many run on.
func TestExtBlockHangsUpCallsInProgress(t *testing.T) {
	fake := newFakeARI(t)
	c := newCLI(t)
	c.seed()
	decide := func(uid, dialled string) {
		t.Helper()
		fake.SetChannel(uid, "PJSIP/1001-"+uid)
		decideOn(t, c.db, tollguard.Call{Extension: "1001", Dialled: dialled, Remote: "192.0.2.10", UniqueID: uid})
	}
	decide("pbx-8.1", "02079460000")
	decide("pbx-8.2", "999")

	// Without ARI: nothing to hang up with, and the admin is told.
	out := c.ok("ext", "block", "1001", "--reason", "stolen phone")
	if !strings.Contains(out, "calls in progress that run on until their MAXSEC: 1") {
		t.Errorf("without ARI: %s", out)
	}
	c.ok("unblock", "1001")

	dir := t.TempDir()
	pw := filepath.Join(dir, "ari.secret")
	os.WriteFile(pw, []byte(fake.Password+"\n"), 0o600)
	cfg := filepath.Join(dir, "tollguard.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n[ari]\nenabled = true\nurl = %q\nuser = %q\npassword_file = %q\n",
		c.db, fake.URL, fake.User, pw)), 0o600)
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--config", cfg, "ext", "block", "1001", "--reason", "stolen phone"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("ext block with ARI: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "calls in progress hung up: 1") {
		t.Errorf("with ARI: %s", stdout.String())
	}
	if fake.HasChannel("pbx-8.1") || !fake.HasChannel("pbx-8.2") {
		t.Errorf("want the national call hung up and the emergency call left: national up %v, emergency up %v",
			fake.HasChannel("pbx-8.1"), fake.HasChannel("pbx-8.2"))
	}
	if r := fake.RequestsMatching(http.MethodDelete, "/channels/"); len(r) != 1 {
		t.Errorf("hangups sent: %+v", r)
	}
}
