package notify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestEmailSendMail: the pins audit mails a mailbox's owner through the
// alert mail server, to that owner only.
func TestEmailSendMail(t *testing.T) {
	e, srv := newTestEmail(t)
	var m tollguard.Mailer = e
	if err := m.SendMail(context.Background(), "owner@example.com", "Your voicemail PIN was changed", "Mailbox 1001: your PIN was weak."); err != nil {
		t.Fatal(err)
	}
	got := srv.next(t)
	if !got.TLS || strings.Join(got.To, ",") != "owner@example.com" {
		t.Fatalf("sent to %v (tls %v), want only the owner over TLS", got.To, got.TLS)
	}
	subject, h, body := parseMail(t, got.Data)
	if subject != "Your voicemail PIN was changed" || !strings.Contains(body, "Mailbox 1001") || h.Get("Auto-Submitted") != "auto-generated" {
		t.Fatalf("mail %q %v %q", subject, h, body)
	}
	if err := m.SendMail(context.Background(), "not an address", "s", "b"); tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Fatalf("bad address: %v", err)
	}
}
