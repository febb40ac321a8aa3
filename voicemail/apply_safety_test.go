package voicemail_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// applyPINs runs `audit pins --apply` and returns the new PIN of each
// mailbox it reports rewritten, and the actions that failed.
func applyPINs(t *testing.T, src *voicemail.Source) (map[string]string, []tollguard.AuditAction) {
	t.Helper()
	e, _, _ := env(t, src)
	run, err := tollguard.RunAudit(context.Background(), e, tollguard.PINsAudit{}, true, "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]string{}
	var failed []tollguard.AuditAction
	for _, a := range run.Actions {
		switch {
		case a.Err != "":
			failed = append(failed, a)
		case a.Kind == tollguard.AuditActRewritePIN:
			done[strings.TrimPrefix(a.Subject, "mailbox:")] = a.Secret
		}
	}
	return done, failed
}

// TestApplyGoesOnPastPINWithSemicolon: a PIN holding an escaped ";"
// is not rewritable (the rewrite would change more than the PIN), and
// that mailbox is left for the admin; it must not stop --apply from
// replacing every other weak PIN, as it did (SetPINs returned the
// error before writing anything).
func TestApplyGoesOnPastPINWithSemicolon(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	vm := "[default]\n1001 => 12\\;3,Odd\n1002 => 1234,Bob\n"
	writeConf(t, conf, vm)
	src := &voicemail.Source{Path: conf, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	done, failed := applyPINs(t, src)
	if len(failed) != 0 || len(done) != 1 || done["1002@default"] == "" {
		t.Fatalf("rewritten %v, failed %+v", done, failed)
	}
	b, _ := os.ReadFile(conf)
	if want := "[default]\n1001 => 12\\;3,Odd\n1002 => " + done["1002@default"] + ",Bob\n"; string(b) != want {
		t.Errorf("file after --apply:\n%q\nwant\n%q", b, want)
	}
}
