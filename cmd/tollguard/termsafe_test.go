package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

func TestTermSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain\ttab\nline", "plain\ttab\nline"},
		{"\x1b[2Jcleared", `\x1b[2Jcleared`},
		{"title\x1b]0;pwned\x07", `title\x1b]0;pwned\x07`},
		{"c1 \u009b31m csi", `c1 \u009b31m csi`},
		{"crlf\r\n", "crlf\\x0d\n"},
		{"ünïcode €", "ünïcode €"},
		{"del\x7f", `del\u007f`},
		{"latin-1 \x9b2J and M\xfcller", `latin-1 \x9b2J and M\xfcller`},
		{"cut \xe2\x82", `cut \xe2\x82`},
	} {
		if got := safeText(tc.in); got != tc.want {
			t.Errorf("safeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// JSON stays JSON, and reads back the same string.
	ua := "Yealink\x7fX\u0085\x1b[2J"
	b, _ := json.Marshal(map[string]string{"user_agent": ua})
	var back map[string]string
	if err := json.Unmarshal([]byte(safeText(string(b))), &back); err != nil || back["user_agent"] != ua {
		t.Errorf("JSON through termSafe: %v, %q", err, back["user_agent"])
	}
}

// TestCLIEscapesWhatOutsidersWrite: a name the admin did not choose
// (here an account name stored before the CLI refused control
// characters, as any stored text is printed) reaches the terminal
// escaped, in tables and errors.
func TestCLIEscapesWhatOutsidersWrite(t *testing.T) {
	c := newCLI(t)
	c.seed()
	if _, err := openStore(t, c.db).UpdateAccount(context.Background(), "acme", func(a *tollguard.Account) error {
		a.Name = "Acme\x1b]0;pwned\x07 Ltd"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := c.ok("account", "list")
	if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `Acme\x1b]0;pwned\x07 Ltd`) {
		t.Errorf("account list printed raw control characters:\n%q", out)
	}
	_, _, errs := c.run("account", "show", "no\x1b[2Jsuch")
	if strings.ContainsRune(errs, 0x1b) {
		t.Errorf("error printed raw control characters: %q", errs)
	}
	// An error that carries the text raw (an os error naming a path),
	// not quoted by whoever built it.
	_, _, errs = c.run("rates", "import", filepath.Join(t.TempDir(), "no\x1b[2Jsuch.csv"))
	if strings.ContainsRune(errs, 0x1b) || !strings.Contains(errs, `no\x1b[2Jsuch.csv`) {
		t.Errorf("error printed raw control characters: %q", errs)
	}
}

// TestCLIKeepsOutsidersTextOnItsLine: a user agent or caller name that
// lands in an alert message or a block reason is printed with its tab
// and line break escaped, by every read command that shows it: raw, it
// printed a line of its own ("What to do: ack it") that the admin would
// take for tollguard's.
func TestCLIKeepsOutsidersTextOnItsLine(t *testing.T) {
	c := newCLI(t)
	c.seed()
	ctx := context.Background()
	db := openStore(t, c.db)
	const forged = "FORGED: nothing to do"
	evil := "Yealink\tT46\n" + forged
	now := time.Now()
	var id int64
	for i, msg := range []string{"known before: " + evil, "again: " + evil} {
		res, err := db.RaiseAlert(ctx, tollguard.Alert{Kind: tollguard.AlertNewUserAgent, Subject: "ext:1001", Extension: "1001", Account: "acme",
			Message: msg}, tollguard.AlertPolicy{}, nil, now.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		id = res.State.ID
	}
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockExtension, Subject: "1001", SetBy: "registration:acl", Reason: "agent " + evil}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Block(ctx, tollguard.Block{Kind: tollguard.BlockIntl, Subject: "acme", SetBy: "detector:burst", Reason: "agent " + evil}); err != nil {
		t.Fatal(err)
	}
	// An extension the gate does not know is recorded by the name the
	// dialplan gave it.
	app, st := openApp(t, c.db)
	dec, err := app.Policy(st).Decide(ctx, tollguard.Call{Extension: evil, Dialled: "0207946000", Remote: "192.0.2.7"})
	if err != nil || dec.CallID == 0 {
		t.Fatalf("decide: %+v %v", dec, err)
	}
	app.Close()
	for _, args := range [][]string{
		{"calls"},
		{"calls", "show", fmt.Sprint(dec.CallID)},
		{"alerts"},
		{"alerts", "show", fmt.Sprint(id)},
		{"ext", "show", "1001"},
		{"ext", "list"},
		{"account", "show", "acme"},
	} {
		out := c.ok(args...)
		if strings.Contains(out, "\n"+forged) || strings.Contains(out, "Yealink\tT46") {
			t.Errorf("tollguard %s printed the outsider's tab or line break:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, `Yealink\tT46\n`+forged) && !strings.Contains(out, `Yealink\tT46\nFORGED`) {
			t.Errorf("tollguard %s does not show the escaped text:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestAlertsShowKeepsDeliveryErrorOnItsLine: a webhook's failed delivery
// keeps the start of the receiver's answer, and a proxy's error page is
// many lines of HTML. `alerts show` printed it raw in its deliveries
// table: lines of the receiver's text (whatever it wrote) under
// tollguard's own, and a table broken up.
func TestAlertsShowKeepsDeliveryErrorOnItsLine(t *testing.T) {
	c := newCLI(t)
	c.seed()
	ctx := context.Background()
	const forged = "FORGED: delivered, nothing to do"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n"+forged+"\n</body>\n</html>\n")
	}))
	defer srv.Close()
	hook, err := notify.NewWebhook(notify.WebhookConfig{URL: srv.URL, Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	db := openStore(t, c.db)
	now := time.Now()
	res, err := db.RaiseAlert(ctx, tollguard.Alert{Kind: tollguard.AlertBurst, Subject: "ext:1001", Extension: "1001", Account: "acme",
		Message: "burst"}, tollguard.AlertPolicy{}, []string{hook.Name()}, now)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := db.ClaimDeliveries(ctx, hook.Name(), now, time.Minute, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("claim: %v %v", ds, err)
	}
	nerr := hook.Notify(ctx, tollguard.Notice{Event: tollguard.NoticeNew, Alert: tollguard.Alert{ID: res.State.ID, Kind: tollguard.AlertBurst, Subject: "ext:1001", Message: "burst"}, At: now})
	if nerr == nil || !strings.Contains(nerr.Error(), "\n"+forged) {
		t.Fatalf("webhook error %v: want the receiver's multi-line answer in it", nerr)
	}
	if err := db.DeliveryFailed(ctx, ds[0], now, nerr.Error()); err != nil {
		t.Fatal(err)
	}
	out := c.ok("alerts", "show", fmt.Sprint(res.State.ID))
	if strings.Contains(out, "\n"+forged) || strings.Contains(out, "\r") {
		t.Errorf("alerts show printed the receiver's line breaks:\n%s", out)
	}
	if !strings.Contains(out, `\n`+forged) {
		t.Errorf("alerts show does not show the escaped error:\n%s", out)
	}
}

// TestAlertsTestKeepsErrorOnItsLine: `alerts test` prints a failed
// webhook's error, which quotes the receiver's answer, in its table: a
// proxy's error page printed as lines of its own.
func TestAlertsTestKeepsErrorOnItsLine(t *testing.T) {
	const forged = "FORGED: all notifiers ok"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html>\r\n<body>\n"+forged+"\n</body>\n</html>\n")
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tollguard.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("db = %q\n\n[alerts.webhook]\nenabled = true\nurl = %q\n", filepath.Join(dir, "tollguard.db"), srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOLLGUARD_CONFIG", "")
	t.Setenv("TOLLGUARD_DB", "")
	t.Setenv("TOLLGUARD_WEBHOOK_SECRET", "s3cret")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--config", cfg, "alerts", "test"}, strings.NewReader(""), &out, &errb)
	if code == 0 || !strings.Contains(out.String(), "FAILED") {
		t.Fatalf("exit %d, want a failure reported:\n%s%s", code, out.String(), errb.String())
	}
	if strings.Contains(out.String(), "\n"+forged) || strings.Contains(out.String(), "\r") {
		t.Errorf("alerts test printed the receiver's line breaks:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `\n`+forged) {
		t.Errorf("alerts test does not show the escaped error:\n%s", out.String())
	}
}

// TestAuditRunOneLinePerItem: an audit run printed finding messages and
// action errors raw, and they carry text from outside (an endpoint's
// caller ID, fail2ban's output): a newline in one forged a line of the
// report. Tab, CR and LF are now escaped, one line per item.
func TestAuditRunOneLinePerItem(t *testing.T) {
	var b strings.Builder
	run := &tollguard.AuditRun{Job: "stale", Apply: true,
		Findings: []tollguard.AuditFinding{{Severity: tollguard.SeverityWarning, Check: "test_ext", Subject: "ext:10\t01",
			Message: "caller ID \"x\"\n  info     ok                   all fine\r"}},
		Actions: []tollguard.AuditAction{{Kind: "block", Subject: "ext:1001", Message: "blocked\nforged", Err: "fail2ban-client: ERROR\r\nline2"}},
		Error:   "partial\nrun"}
	printAuditRun(&b, run, true)
	out := b.String()
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("want 4 lines (header, finding, action, error), got %d:\n%s", n, out)
	}
	if strings.ContainsAny(out, "\t\r") {
		t.Errorf("raw tab or CR in %q", out)
	}
	for _, want := range []string{`ext:10\x0901`, `\x0a  info`, `ERROR\x0d\x0aline2`, `partial\x0arun`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestTableKeepsColumnsPast0xFF: text/tabwriter reads a 0xff byte as
// its escape character, so one in a cell (a Latin-1 name stored before)
// made the rest
// of the table one unaligned cell, every later row's tabs printed raw;
// and a byte that is not UTF-8 (\xfc) was laid out one column wide,
// then printed four.
func TestTableKeepsColumnsPast0xFF(t *testing.T) {
	c := newCLI(t)
	c.seed()
	// Stored before the CLI refused bytes that are not UTF-8.
	if _, err := openStore(t, c.db).UpdateAccount(context.Background(), "acme", func(a *tollguard.Account) error {
		a.Name = "M\xfcller \xff GmbH"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.ok("account", "add", "zeta", "--country", "GB", "--currency", "GBP", "--name", "Zeta")
	out := c.ok("account", "list")
	if strings.Contains(out, "\t") || !strings.Contains(out, `M\xfcller \xff GmbH`) {
		t.Fatalf("account list lost its columns after a 0xff byte:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	col := strings.Index(lines[0], "COUNTRY")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "GB ") {
			t.Errorf("row %q: COUNTRY is not at column %d:\n%s", l, col, out)
		}
	}
}

// TestTableAlignsWideNames: text/tabwriter counts runes, and a CJK
// character takes two terminal cells, so a Japanese account name pushed
// its row's later columns out of line. Each column now starts at the
// same terminal cell on every row; a noncharacter the table uses inside
// itself is shown escaped when a name holds it.
func TestTableAlignsWideNames(t *testing.T) {
	c := newCLI(t)
	c.seed()
	c.ok("account", "set", "acme", "--name", "株式会社アクメ")
	c.ok("account", "add", "zeta", "--country", "GB", "--currency", "GBP", "--name", "Zeta ＡＢ x")
	c.ok("account", "add", "mark", "--country", "GB", "--currency", "GBP", "--name", "M\ufdd0rk")
	// Cells up to a column: every rune here past U+1100 is wide.
	cells := func(s string) int {
		n := 0
		for _, r := range s {
			n++
			if r >= 0x1100 {
				n++
			}
		}
		return n
	}
	for _, args := range [][]string{{"account", "list"}, {"account", "show", "acme"}} {
		out := c.ok(args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := -1
		for _, l := range lines {
			// The column after the name: COUNTRY in the list, the value in show.
			i := strings.Index(l, "GB ")
			if args[1] == "show" {
				i = strings.Index(l, "  ") + 2
				for i < len(l) && l[i] == ' ' {
					i++
				}
			}
			if i < 0 || args[1] == "show" && i >= len(l) {
				continue
			}
			if want < 0 {
				want = cells(l[:i])
			}
			if got := cells(l[:i]); got != want {
				t.Errorf("tollguard %s: row %q: the column starts at cell %d, want %d:\n%s", strings.Join(args, " "), l, got, want, out)
			}
		}
		if strings.ContainsRune(out, '\ufdd0') {
			t.Errorf("tollguard %s printed the table's mark:\n%q", strings.Join(args, " "), out)
		}
		if args[1] == "list" && !strings.Contains(out, `M\ufdd0rk`) {
			t.Errorf("the name holding the mark is not shown escaped:\n%s", out)
		}
	}
}
