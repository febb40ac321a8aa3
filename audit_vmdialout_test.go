package tollguard_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// vmDialoutFindings are a run's voicemail_dialout and source findings.
func vmDialoutFindings(run *tollguard.AuditRun) []string {
	var out []string
	for _, f := range audFindings(run) {
		if strings.HasPrefix(f, tollguard.AuditCheckVoicemailDialout+" ") || strings.HasPrefix(f, tollguard.AuditCheckSource+" ") {
			out = append(out, f)
		}
	}
	return out
}

// TestCoverageVoicemailDialout: app_voicemail's dialout and callback
// options send a VoiceMailMain caller on, on their own channel, into a
// dialplan context with a number as the extension; one the gate does
// not see is a way past it for anyone with a mailbox's PIN. Coverage
// reports each such context once, critical, naming who sets it; a gated
// one is fine. It reads the files, not ARI.
func TestCoverageVoicemailDialout(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "voicemail.conf")
	if err := os.WriteFile(conf, []byte("[general]\ndialout = fromvm\n[default]\n"+
		"1001 => 482916,Ann\n"+
		"1002 => 593027,Bob,,,callback=fromvm|attach=yes\n"+
		"1003 => 604138,Cy,,,dialout=from-internal\n"+
		"1004 => 715249,Di,,,callback=vm-callback\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newAudHarness(t)
	h.env.Settings.GatedContexts = []string{"from-internal", "from-trunk"}

	// No voicemail source: nothing to check, nothing said (the pins
	// audit tells how to configure one).
	if got := vmDialoutFindings(h.run(tollguard.CoverageAudit{}, false)); len(got) != 0 {
		t.Fatalf("without a voicemail source: %q", got)
	}

	h.env.Mailboxes = []tollguard.MailboxSource{&voicemail.Source{Path: conf, UsersConf: filepath.Join(dir, "users.conf")}}
	run := h.run(tollguard.CoverageAudit{}, true)
	want := []string{"voicemail_dialout voicemail-context:fromvm critical", "voicemail_dialout voicemail-context:vm-callback critical"}
	if got := vmDialoutFindings(run); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
	if len(run.Actions) != 0 {
		t.Errorf("coverage acted: %q", audActions(run))
	}
	f := audFinding(t, run, tollguard.AuditCheckVoicemailDialout, "voicemail-context:fromvm")
	for _, s := range []string{
		`app_voicemail's options callback and dialout send callers to dialplan context "fromvm"`,
		"not a gated context (from-internal, from-trunk)",
		"set by [general], 1002@default ([general]'s is the default of every mailbox without its own)",
		conf + ":2", conf + ":5",
		"call any number they type", "call back the caller ID of a message",
		"list it in [audit] gated_contexts", "remove the option (a mailbox's own empty callback= or dialout= turns",
	} {
		if !strings.Contains(f.Message, s) {
			t.Errorf("message lacks %q:\n%s", s, f.Message)
		}
	}
	if f := audFinding(t, run, tollguard.AuditCheckVoicemailDialout, "voicemail-context:vm-callback"); !strings.Contains(f.Message, "option callback sends callers") || !strings.Contains(f.Message, "set by 1004@default at") ||
		strings.Contains(f.Message, "call any number") {
		t.Errorf("callback-only finding: %s", f.Message)
	}

	// Gated, the gate judges those calls: nothing to report. Checked
	// without ARI too.
	h.env.Settings.GatedContexts = []string{"from-internal", "fromvm", "vm-callback"}
	h.env.Asterisk = nil
	if got := vmDialoutFindings(h.run(tollguard.CoverageAudit{}, false)); len(got) != 0 {
		t.Errorf("with the contexts gated: %q", got)
	}

	// A source it cannot read is said, and the rest of the run goes on.
	h.env.Mailboxes = []tollguard.MailboxSource{&voicemail.Source{Path: filepath.Join(dir, "missing.conf")}}
	run = h.run(tollguard.CoverageAudit{}, false)
	if got := vmDialoutFindings(run); !reflect.DeepEqual(got, []string{"source voicemail:" + filepath.Join(dir, "missing.conf") + " warning"}) {
		t.Errorf("unreadable source: %q", got)
	}
}
