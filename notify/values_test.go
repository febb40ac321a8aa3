package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/notify"
)

// TestDigestNamesEachNewAgent: a burst of new user agents on one
// extension is one alert and one digest, which names each agent, escaped,
// in the webhook's text and values and in the log, not only the latest.
func TestDigestNamesEachNewAgent(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	rcv := newWebhookReceiver(t, clk.Now)
	wh, _ := notify.NewWebhook(notify.WebhookConfig{URL: rcv.srv.URL, Secret: secret, Now: clk.Now})
	logs := &testutil.Buffer{}
	d := newDispatcher(t, openDB(t, ""), notify.Options{Now: clk.Now}, &notify.Log{Logger: slog.New(slog.NewTextHandler(logs, nil))}, wh)

	hist := tollguard.ContactHistory{Registered: true, IPs: []string{"192.0.2.10"}, Agents: []string{"Yealink T46U"}}
	// A Cyrillic е, and a line break and ANSI escape that would forge a
	// line of the text or clear the admin's terminal.
	agents := []string{"Yealink T46U 66.86", "Y\u0435alink T46U", "x\n\x1b[2JAll is well", "Yealink T46U 66.86"}
	for _, ua := range agents {
		c := tollguard.Contact{ID: "1001;@x", AOR: "1001", Extension: "1001", URI: "sip:1001@192.0.2.10", IP: "192.0.2.10",
			AddrSource: tollguard.AddrRewritten, UserAgent: ua}
		fs := tollguard.JudgeContact(&tollguard.Extension{Name: "1001", Account: "acme"}, &tollguard.Account{ID: "acme"}, hist, c, clk.Now()).Findings
		if len(fs) != 1 || fs[0].Kind != tollguard.AlertNewUserAgent {
			t.Fatalf("%q: findings %+v", ua, fs)
		}
		if err := d.Raise(ctx, fs[0].Alert()); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
	}
	deliverDue(t, d)
	if r := rcv.next(t); r.Body.Event != tollguard.NoticeNew || len(r.Body.Values) != 0 {
		t.Errorf("first notice %s", r.Raw)
	}
	clk.Add(15 * time.Minute)
	if p := deliverDue(t, d); p.Digests != 1 {
		t.Fatalf("digest pass %+v", p)
	}
	r := rcv.next(t)
	want := []string{`"Yealink T46U 66.86"`, `"Y\u0435alink T46U"`, `"x\n\x1b[2JAll is well"`}
	if r.Body.Event != tollguard.NoticeDigest || !slices.Equal(r.Body.Values, want) || r.Body.MoreValues != 0 {
		t.Errorf("digest values %q, want %q: %s", r.Body.Values, want, r.Raw)
	}
	if line := "New user agents: " + strings.Join(want, ", ") + "\n"; !strings.Contains(r.Body.Text, line) {
		t.Errorf("digest text lacks %q:\n%s", line, r.Body.Text)
	}
	if strings.ContainsAny(r.Body.Text, "\x1b\u0435") || strings.Contains(r.Body.Text, "\nAll is well") {
		t.Errorf("digest text prints an agent raw:\n%s", r.Body.Text)
	}
	if got := logs.String(); !strings.Contains(got, `values="\"Yealink T46U 66.86\", \"Y\\u0435alink T46U\", \"x\\n\\x1b[2JAll is well\"" more_values=0`) {
		t.Errorf("log lacks the values:\n%s", got)
	}
}

// TestDigestNamesAddressesPastALongHistory: a softphone that roamed
// over 100 IPv6 networks has a known_ips list longer than an
// occurrence's evidence may be; cut to a string, the evidence no longer
// said which address registered, and the digest named none of a burst,
// the thief's between the phone's two new ones included.
func TestDigestNamesAddressesPastALongHistory(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	rcv := newWebhookReceiver(t, clk.Now)
	wh, _ := notify.NewWebhook(notify.WebhookConfig{URL: rcv.srv.URL, Secret: secret, Now: clk.Now})
	d := newDispatcher(t, openDB(t, ""), notify.Options{Now: clk.Now}, wh)

	hist := tollguard.ContactHistory{Registered: true, Agents: []string{"Zoiper rv2.10"}}
	for i := range 100 {
		hist.IPs = append(hist.IPs, fmt.Sprintf("2a02:c7c:5f21:%x:21c:59ff:fe12:%x", 0x1000+i, 0x3400+i))
	}
	addrs := []string{"2001:db8:9c1:1::10", "203.0.113.66", "2001:db8:9c1:2::10"}
	for _, ip := range addrs {
		uri := "sip:1001@" + ip + ":5060;transport=udp"
		c := tollguard.Contact{ID: tollguard.ContactID("1001", uri), AOR: "1001", Extension: "1001", URI: uri, IP: ip,
			AddrSource: tollguard.AddrRewritten, UserAgent: "Zoiper rv2.10"}
		fs := tollguard.JudgeContact(&tollguard.Extension{Name: "1001", Account: "acme"}, &tollguard.Account{ID: "acme"}, hist, c, clk.Now()).Findings
		if len(fs) != 1 || fs[0].Kind != tollguard.AlertNewIP {
			t.Fatalf("%s: findings %+v", ip, fs)
		}
		if err := d.Raise(ctx, fs[0].Alert()); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
	}
	deliverDue(t, d)
	rcv.next(t)
	clk.Add(15 * time.Minute)
	if p := deliverDue(t, d); p.Digests != 1 {
		t.Fatalf("digest pass %+v", p)
	}
	r := rcv.next(t)
	if !slices.Equal(r.Body.Values, addrs) {
		t.Errorf("digest values %q, want %q", r.Body.Values, addrs)
	}
	if line := "New addresses: " + strings.Join(addrs, ", ") + "\n"; !strings.Contains(r.Body.Text, line) {
		t.Errorf("digest text lacks %q:\n%s", line, r.Body.Text)
	}
}
