package tollguard_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// killedAfterWrite is a voicemail.conf whose SetPINs writes the new
// PINs and then stops the run (a panic), as a kill between the write
// and the reload would.
type killedAfterWrite struct{ *voicemail.Source }

type killed struct{}

func (k killedAfterWrite) SetPINs(ctx context.Context, changes []tollguard.PINChange) ([]tollguard.PINChange, error) {
	if _, err := k.Source.SetPINs(ctx, changes); err != nil {
		return nil, err
	}
	panic(killed{})
}

// TestPINsReloadPending: PINs written by a run that did not reload
// app_voicemail (killed after the write, or its reload failed) are put
// in force by the next pins run, report-only too, which says whose new
// PINs nobody was shown; before, the rerun found nothing weak and never
// reloaded, so Asterisk kept accepting 1234.
func TestPINsReloadPending(t *testing.T) {
	reloads := func(h *audHarness) int {
		return len(h.fake.RequestsMatching("PUT", "/asterisk/modules/app_voicemail.so"))
	}
	setup := func(t *testing.T) (*audHarness, *voicemail.Source) {
		h := newAudHarness(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "voicemail.conf")
		if err := os.WriteFile(conf, []byte("[general]\n[default]\n1001 => 1234,Ann,ann@example.com\n1002 => 739184,Bob\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		src := &voicemail.Source{Path: conf, SpoolDir: filepath.Join(dir, "spool")}
		h.env.Mailboxes = []tollguard.MailboxSource{src}
		return h, src
	}
	pinOf := func(t *testing.T, src *voicemail.Source, key string) string {
		boxes, _, err := src.Mailboxes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range boxes {
			if b.Key() == key {
				return b.PIN
			}
		}
		t.Fatalf("no mailbox %s", key)
		return ""
	}

	t.Run("KilledAfterWrite", func(t *testing.T) {
		h, src := setup(t)
		h.env.Mailboxes = []tollguard.MailboxSource{killedAfterWrite{src}}
		// RunAudit recovers the panic (a crashed audit leaves the
		// daemon running), which is as far as the run gets.
		if _, err := tollguard.RunAudit(context.Background(), h.env, tollguard.PINsAudit{}, true, "cli", nil); err == nil || !strings.Contains(err.Error(), "crashed") {
			t.Fatalf("the run was not stopped at the write: %v", err)
		}
		if pin := pinOf(t, src, "1001@default"); pin == "1234" || reloads(h) != 0 {
			t.Fatalf("after the killed run: PIN %s, %d reloads; want a new PIN and no reload", pin, reloads(h))
		}

		h.env.Mailboxes = []tollguard.MailboxSource{src}
		run := h.run(tollguard.PINsAudit{}, false) // the scheduled, report-only run
		if reloads(h) != 1 {
			t.Errorf("%d reloads on the next run, want 1", reloads(h))
		}
		want := []string{"pin_reload_pending app_voicemail.so warning", "pin_reload_pending mailbox:1001@default warning"}
		if got := audFindings(run); !reflect.DeepEqual(got, want) {
			t.Errorf("findings %q, want %q", got, want)
		}
		for _, f := range run.Findings {
			if f.Subject == "mailbox:1001@default" && !(strings.Contains(f.Message, "ann@example.com") && strings.Contains(f.Message, src.Path+":3")) {
				t.Errorf("message does not name the owner and where to read the PIN: %s", f.Message)
			}
		}
		if got := audActions(run); !reflect.DeepEqual(got, []string{"reload_module app_voicemail.so"}) {
			t.Errorf("actions %q", got)
		}

		run = h.run(tollguard.PINsAudit{}, false)
		if reloads(h) != 1 || len(run.Findings) != 0 {
			t.Errorf("the run after: %d reloads in all, findings %q; want the marker gone", reloads(h), audFindings(run))
		}
	})

	t.Run("ReloadFailed", func(t *testing.T) {
		h, src := setup(t)
		h.fake.Fault("PUT", "/asterisk/modules/", http.StatusInternalServerError, "boom", 2)
		run := h.run(tollguard.PINsAudit{}, true)
		if got := audActions(run); !reflect.DeepEqual(got, []string{"reload_module app_voicemail.so FAILED", "rewrite_pin mailbox:1001@default"}) {
			t.Errorf("actions %q", got)
		}
		newPIN := pinOf(t, src, "1001@default")

		// The retry fails too: still owed; nothing is weak, so nothing
		// new is written, and the marker stays.
		run = h.run(tollguard.PINsAudit{}, true)
		if got := audActions(run); !reflect.DeepEqual(got, []string{"reload_module app_voicemail.so FAILED"}) {
			t.Errorf("second run: actions %q", got)
		}
		if got := audFindings(run); !reflect.DeepEqual(got, []string{"pin_reload_pending app_voicemail.so warning"}) {
			t.Errorf("second run: findings %q (the PIN was reported by the first run)", got)
		}

		run = h.run(tollguard.PINsAudit{}, false)
		if got := audActions(run); !reflect.DeepEqual(got, []string{"reload_module app_voicemail.so"}) {
			t.Errorf("third run: actions %q", got)
		}
		run = h.run(tollguard.PINsAudit{}, false)
		if len(run.Actions) != 0 || len(run.Findings) != 0 || reloads(h) != 3 {
			t.Errorf("fourth run: %q %q, %d reloads; want nothing left", audActions(run), audFindings(run), reloads(h))
		}
		if pinOf(t, src, "1001@default") != newPIN {
			t.Error("the PIN changed again")
		}
	})

	t.Run("NothingOwed", func(t *testing.T) {
		h, _ := setup(t)
		h.run(tollguard.PINsAudit{}, true)
		h.fake.ResetRequests()
		run := h.run(tollguard.PINsAudit{}, false)
		if reloads(h) != 0 || len(run.Findings) != 0 {
			t.Errorf("after a run that reloaded: %d reloads, findings %q", reloads(h), audFindings(run))
		}
	})
}
