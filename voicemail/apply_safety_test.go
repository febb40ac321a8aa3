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
	"golang.org/x/sys/unix"
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

// TestSecretConfReadAsAppVoicemailDoes: app_voicemail reads a
// secret.conf's password with ast_variable_retrieve: the first
// password line of the first [general] (a second is another category
// it never reads), with "password += text" appended. tollguard took the last password line
// of any [general] and ignored "+=", so --apply rewrote a line Asterisk
// does not read, or half a PIN, and reported the mailbox fixed.
func TestSecretConfReadAsAppVoicemailDoes(t *testing.T) {
	for _, tc := range []struct {
		name, secret string
		pin          string // the PIN audited
		rewritten    bool   // --apply may rewrite it
		unread       bool   // not audited at all (a problem says why)
	}{
		{name: "second general", secret: "[general]\npassword=1111\n[general]\npassword=482916\n", pin: "1111", rewritten: true},
		{name: "appended", secret: "[general]\npassword=12\npassword +=34\n", pin: "1234"},
		{name: "append alone sets", secret: "[general]\npassword += 1234\n", pin: "1234", rewritten: true},
		// ast_variable_retrieve returns the first password, not the last.
		{name: "first of two", secret: "[general]\npassword=1111\npassword=482916\n", pin: "1111", rewritten: true},
		{name: "other name case is no append", secret: "[general]\npassword=2580\nPassword += 482916\n", pin: "2580", rewritten: true},
		// "+=" appends to the last line of exactly its name.
		{name: "appended to the first", secret: "[general]\npassword=12\nPassword=482916\npassword +=34\n", pin: "1234"},
		{name: "added to", secret: "[general]\npassword=482916\n[general](+)\npassword=1234\n", unread: true},
		{name: "include", secret: "[general]\n#include other.conf\npassword=1234\n", unread: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, spool := t.TempDir(), t.TempDir()
			conf := filepath.Join(dir, "voicemail.conf")
			vm := "[general]\npasswordlocation = spooldir\n[default]\n1001 => 4444,Alice\n"
			writeConf(t, conf, vm)
			secret := filepath.Join(spool, "default", "1001", "secret.conf")
			writeConf(t, secret, tc.secret)
			src := &voicemail.Source{Path: conf, SpoolDir: spool, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
			boxes, problems, err := src.Mailboxes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.unread {
				if len(boxes) != 0 || len(problems) != 1 || !strings.Contains(problems[0], "does not read") {
					t.Fatalf("boxes %+v problems %v", boxes, problems)
				}
			} else if len(boxes) != 1 || boxes[0].PIN != tc.pin || !strings.HasSuffix(strings.SplitN(boxes[0].Where, ":", 2)[0], "secret.conf") {
				t.Fatalf("boxes %+v, want PIN %s from secret.conf", boxes, tc.pin)
			}
			done, failed := applyPINs(t, src)
			if len(failed) != 0 {
				t.Fatalf("failed %+v", failed)
			}
			b, _ := os.ReadFile(conf)
			if string(b) != vm {
				t.Errorf("voicemail.conf rewritten, its PIN is not in force:\n%s", b)
			}
			s, _ := os.ReadFile(secret)
			if !tc.rewritten {
				if len(done) != 0 || string(s) != tc.secret {
					t.Errorf("rewritten %v; secret.conf now %q", done, s)
				}
				return
			}
			pin := done["1001@default"]
			if pin == "" || strings.Replace(tc.secret, tc.pin, pin, 1) != string(s) {
				t.Fatalf("rewritten %v; secret.conf now %q", done, s)
			}
			// What is on disk is what was reported.
			boxes, _, _ = src.Mailboxes(context.Background())
			if len(boxes) != 1 || boxes[0].PIN != pin {
				t.Errorf("after --apply %+v, reported %s", boxes, pin)
			}
		})
	}
}

// TestSpoolDirMissing: with passwordlocation = spooldir and a spool
// directory that does not exist (spool_dir unset, Asterisk's spool
// elsewhere), tollguard found no secret.conf and rewrote the
// voicemail.conf PIN, reported fixed, while Asterisk may use another:
// now that is said once, and --apply leaves those PINs alone.
func TestSpoolDirMissing(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	vm := "[general]\npasswordlocation = spooldir\n[default]\n1001 => 1234,A\n1002 => 1111,B,,,passwordlocation=voicemailconf\n"
	writeConf(t, conf, vm)
	src := &voicemail.Source{Path: conf, SpoolDir: filepath.Join(dir, "no-spool"), BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	boxes, problems, err := src.Mailboxes(context.Background())
	if err != nil || len(boxes) != 2 || len(problems) != 1 || !strings.Contains(problems[0], "no-spool does not exist") {
		t.Fatalf("boxes %+v problems %v err %v", boxes, problems, err)
	}
	done, failed := applyPINs(t, src)
	if len(failed) != 0 || len(done) != 1 || done["1002@default"] == "" {
		t.Fatalf("rewritten %v failed %+v", done, failed)
	}
	b, _ := os.ReadFile(conf)
	if want := strings.Replace(vm, "1111", done["1002@default"], 1); string(b) != want {
		t.Errorf("file %q, want %q", b, want)
	}
}

// TestSecretConfSymlinkRefused: a secret.conf in the spool (Asterisk's
// user's to change) that is a symlink is reported and not audited, so
// --apply never writes through it to the file it names.
func TestSecretConfSymlinkRefused(t *testing.T) {
	dir, spool, other := t.TempDir(), t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[general]\npasswordlocation = spooldir\n[default]\n1001 => 482916,A\n")
	target := filepath.Join(other, "root-owned.conf")
	writeConf(t, target, "[general]\npassword=1234\n")
	if err := os.MkdirAll(filepath.Join(spool, "default", "1001"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(spool, "default", "1001", "secret.conf")); err != nil {
		t.Fatal(err)
	}
	refusesSymlink(t, conf, spool, target)
}

// TestSecretConfDirSymlinkRefused: a mailbox's spool directory that is
// a symlink (Asterisk's user can swap it at any time) is not read
// through, and --apply writes nothing into the directory it names, even
// when that holds a secret.conf with the bytes read.
func TestSecretConfDirSymlinkRefused(t *testing.T) {
	dir, spool, other := t.TempDir(), t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[general]\npasswordlocation = spooldir\n[default]\n1001 => 482916,A\n")
	target := filepath.Join(other, "secret.conf")
	writeConf(t, target, "[general]\npassword=1234\n")
	if err := os.MkdirAll(filepath.Join(spool, "default"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(spool, "default", "1001")); err != nil {
		t.Fatal(err)
	}
	refusesSymlink(t, conf, spool, target)
	if ents, _ := os.ReadDir(other); len(ents) != 1 {
		t.Errorf("files written into the symlink's target: %v", ents)
	}
}

// TestSecretConfFIFODoesNotHang: a FIFO named secret.conf (the spool's
// owner can make one) is reported, not opened for a read that never
// returns.
func TestSecretConfFIFODoesNotHang(t *testing.T) {
	dir, spool := t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	writeConf(t, conf, "[general]\npasswordlocation = spooldir\n[default]\n1001 => 482916,A\n")
	box := filepath.Join(spool, "default", "1001")
	if err := os.MkdirAll(box, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(box, "secret.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := &voicemail.Source{Path: conf, SpoolDir: spool}
	res := make(chan []string, 1)
	go func() {
		_, problems, _ := src.Mailboxes(context.Background())
		res <- problems
	}()
	select {
	case problems := <-res:
		if len(problems) != 1 || !strings.Contains(problems[0], "not a plain file") {
			t.Fatalf("problems %v", problems)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO secret.conf hung")
	}
}

// refusesSymlink checks that a symlink in the spool on the way to
// target (a secret.conf holding password=1234) is reported, and that
// --apply leaves target as it was.
func refusesSymlink(t *testing.T, conf, spool, target string) {
	t.Helper()
	src := &voicemail.Source{Path: conf, SpoolDir: spool, BackupDir: t.TempDir(), Now: func() time.Time { return t0 }}
	boxes, problems, err := src.Mailboxes(context.Background())
	if err != nil || len(boxes) != 0 || len(problems) != 1 || !strings.Contains(problems[0], "is a symlink") {
		t.Fatalf("boxes %+v problems %v err %v", boxes, problems, err)
	}
	if done, failed := applyPINs(t, src); len(done) != 0 || len(failed) != 0 {
		t.Fatalf("rewritten %v failed %+v", done, failed)
	}
	if b, _ := os.ReadFile(target); string(b) != "[general]\npassword=1234\n" {
		t.Errorf("the symlink's target was rewritten: %q", b)
	}
}
