package notify_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

func burst(ext string) tollguard.Alert {
	return tollguard.Alert{Kind: tollguard.AlertBurst, Severity: tollguard.SeverityWarning, Subject: tollguard.ExtSubject(ext),
		Account: "acme", Extension: ext, Message: "30 calls in 60 s from extension " + ext, Evidence: `{"calls":30,"window_s":60}`}
}

func newDispatcher(t *testing.T, db *store.DB, opts notify.Options, ns ...tollguard.Notifier) *notify.Dispatcher {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d, err := notify.New(db, opts, ns...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func deliverDue(t *testing.T, d *notify.Dispatcher) notify.Pass {
	t.Helper()
	p, err := d.DeliverDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func outboxRows(t *testing.T, db *store.DB, notifier string) []store.Delivery {
	t.Helper()
	all, err := db.Deliveries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Delivery
	for _, d := range all {
		if d.Notifier == notifier {
			out = append(out, d)
		}
	}
	return out
}

func TestEmailDeliveredOnceAfterMailServerOutage(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	cert := newTestCert(t)
	srv := newSMTPServer(t, &cert, "tollguard", "s3cret pass")
	email, err := notify.NewEmail(emailConfig(srv, &cert))
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, "")
	m := newMetrics()
	logs := &testutil.Buffer{}
	d := newDispatcher(t, db, notify.Options{Now: clk.Now, Metrics: m, Logger: slog.New(slog.NewTextHandler(logs, nil))},
		&notify.Log{Logger: slog.New(slog.NewTextHandler(logs, nil))}, email)

	srv.Stop() // the mail server is down
	if err := d.Raise(ctx, compromised()); err != nil {
		t.Fatal(err)
	}
	if p := deliverDue(t, d); p.Sent != 1 || p.Retrying != 1 {
		t.Fatalf("first pass %+v, want the log sent and the email retrying", p)
	}
	rows := outboxRows(t, db, "email")
	if len(rows) != 1 || rows[0].Status != store.DeliveryPending || rows[0].Attempts != 1 || rows[0].LastError == "" {
		t.Fatalf("email row after the failure: %+v", rows)
	}
	if !rows[0].NextAt.After(clk.Now()) {
		t.Errorf("retry due %v, not after now %v", rows[0].NextAt, clk.Now())
	}
	if !strings.Contains(logs.String(), "alert delivery failed; will retry") {
		t.Errorf("log lacks the retry warning:\n%s", logs)
	}

	srv.Start() // back up, on the same address
	if p := deliverDue(t, d); p.Sent+p.Retrying != 0 {
		t.Fatalf("delivered before the backoff ran out: %+v", p)
	}
	srv.none(t)
	clk.Add(13 * time.Second) // 10 s backoff plus at most 20% jitter
	if p := deliverDue(t, d); p.Sent != 1 {
		t.Fatalf("after the outage: %+v", p)
	}
	msg := srv.next(t)
	if subject, _, _ := parseMail(t, msg.Data); !strings.Contains(subject, "credentials_compromised on ext:1001") {
		t.Errorf("subject %q", subject)
	}
	// Exactly once: nothing is left to send, however long we wait.
	clk.Add(24 * time.Hour)
	if p := deliverDue(t, d); p.Sent+p.Retrying+p.Failed != 0 {
		t.Fatalf("later pass %+v", p)
	}
	srv.none(t)
	rows = outboxRows(t, db, "email")
	if rows[0].Status != store.DeliverySent || rows[0].Attempts != 2 {
		t.Errorf("email row %+v", rows[0])
	}
	if m.get(m.failed, "email") != 1 || m.get(m.sent, "email") != 1 || m.get(m.raised, "credentials_compromised") != 1 {
		t.Errorf("metrics %+v", m)
	}
}

func TestNewWorkerDeliversWhatTheOldOneLeft(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollguard.db")
	clk := newClock()

	t.Run("AfterAFailedAttempt", func(t *testing.T) {
		rcv := newWebhookReceiver(t, clk.Now)
		var up atomic.Bool
		rcv.status = func() int {
			if up.Load() {
				return http.StatusOK
			}
			return http.StatusBadGateway
		}
		wh, _ := notify.NewWebhook(notify.WebhookConfig{URL: rcv.srv.URL, Secret: secret, Now: clk.Now})

		db1, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		d1 := newDispatcher(t, db1, notify.Options{Now: clk.Now}, wh)
		if err := d1.Raise(ctx, burst("1001")); err != nil {
			t.Fatal(err)
		}
		if p := deliverDue(t, d1); p.Retrying != 1 {
			t.Fatalf("first worker: %+v", p)
		}
		db1.Close() // tollguard stops

		up.Store(true)
		db2 := openDB(t, path)
		d2 := newDispatcher(t, db2, notify.Options{Now: clk.Now}, wh)
		clk.Add(time.Minute)
		if p := deliverDue(t, d2); p.Sent != 1 {
			t.Fatalf("second worker: %+v", p)
		}
		if r := rcv.next(t); r.Body.Alert.Kind != "burst" || r.Body.Alert.Extension != "1001" {
			t.Errorf("delivered %s", r.Raw)
		}
		clk.Add(time.Hour)
		deliverDue(t, d2)
		rcv.none(t)
	})

	t.Run("AfterACrashMidSend", func(t *testing.T) {
		cert := newTestCert(t)
		srv := newSMTPServer(t, &cert, "tollguard", "s3cret pass")
		email, _ := notify.NewEmail(emailConfig(srv, &cert))
		path := filepath.Join(t.TempDir(), "crash.db")

		db1, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		d1 := newDispatcher(t, db1, notify.Options{Now: clk.Now}, email)
		if err := d1.Raise(ctx, compromised()); err != nil {
			t.Fatal(err)
		}
		// The worker claims the row and dies before it can send.
		if ds, err := db1.ClaimDeliveries(ctx, "email", clk.Now(), 70*time.Second, 10); err != nil || len(ds) != 1 {
			t.Fatalf("claim: %v %v", ds, err)
		}
		db1.Close()

		db2 := openDB(t, path)
		d2 := newDispatcher(t, db2, notify.Options{Now: clk.Now}, email)
		if p := deliverDue(t, d2); p.Sent != 0 {
			t.Fatalf("took a claimed row before its claim lapsed: %+v", p)
		}
		clk.Add(71 * time.Second)
		if p := deliverDue(t, d2); p.Sent != 1 {
			t.Fatalf("after the claim lapsed: %+v", p)
		}
		srv.next(t)
		clk.Add(time.Hour)
		deliverDue(t, d2)
		srv.none(t)
	})
}

func TestMergeDigestEscalationEndToEnd(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	rcv := newWebhookReceiver(t, clk.Now)
	wh, _ := notify.NewWebhook(notify.WebhookConfig{URL: rcv.srv.URL, Secret: secret, Now: clk.Now})
	logs := &testutil.Buffer{}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Now: clk.Now, Policy: tollguard.AlertPolicy{CoolDown: 15 * time.Minute, DigestAt: []int{50}}},
		&notify.Log{Logger: slog.New(slog.NewTextHandler(logs, nil))}, wh)

	for i := 0; i < 4; i++ {
		if err := d.Raise(ctx, burst("1001")); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
	}
	if p := deliverDue(t, d); p.Sent != 2 {
		t.Fatalf("first pass %+v: want one notice each to the log and the webhook", p)
	}
	if r := rcv.next(t); r.Body.Event != tollguard.NoticeNew || r.Body.Alert.Count != 1 {
		t.Errorf("first notice %s", r.Raw)
	}
	rcv.none(t)
	if got := logs.String(); !strings.Contains(got, "kind=burst severity=warning subject=ext:1001 extension=1001 account=acme alert_id=1 event=new") {
		t.Errorf("log line lacks the stable keys:\n%s", got)
	}

	clk.Add(11 * time.Minute) // 15 min after the first notice
	p := deliverDue(t, d)
	if p.Digests != 1 || p.Sent != 2 {
		t.Fatalf("digest pass %+v", p)
	}
	r := rcv.next(t)
	if r.Body.Event != tollguard.NoticeDigest || r.Body.Repeats != 3 || r.Body.Alert.Count != 4 ||
		r.Body.Title != "[tollguard] burst on ext:1001: 3 more since the last notice" || r.Body.Since == nil || !r.Body.Since.Equal(t0) {
		t.Errorf("digest %s", r.Raw)
	}

	esc := burst("1001")
	esc.Severity = tollguard.SeverityCritical
	esc.Message = "80 calls in 60 s from extension 1001; extension blocked"
	if err := d.Raise(ctx, esc); err != nil {
		t.Fatal(err)
	}
	deliverDue(t, d)
	r = rcv.next(t)
	if r.Body.Event != tollguard.NoticeEscalation || r.Body.Alert.Severity != tollguard.SeverityCritical || r.Body.Alert.Message != esc.Message {
		t.Errorf("escalation %s", r.Raw)
	}
	if list, _ := db.Alerts(ctx, store.AlertFilter{}); len(list) != 1 || list[0].Count != 5 {
		t.Errorf("alerts %+v", list)
	}
}

func TestSlowNotifierDoesNotDelayRaiseOrOthers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cert := newTestCert(t)
	srv := newSMTPServer(t, &cert, "tollguard", "s3cret pass")
	email, _ := notify.NewEmail(emailConfig(srv, &cert))

	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var hooks atomic.Int32
	// A real webhook receiver that hangs until released.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hang.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	hook, err := notify.NewWebhook(notify.WebhookConfig{URL: hang.URL, Secret: secret, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{PollInterval: time.Hour}, hook, email)
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer cancel()

	// raise fails the test unless Raise returns within a second.
	raise := func(a tollguard.Alert) {
		t.Helper()
		raised := make(chan struct{})
		go func() {
			defer close(raised)
			if err := d.Raise(ctx, a); err != nil {
				t.Error(err)
			}
		}()
		within(t, time.Second, "Raise to return", raised)
	}
	raise(burst("1001"))
	within(t, 10*time.Second, "the webhook to be called", entered)
	srv.next(t) // the e-mail went out while the webhook hangs

	// The webhook is stuck; Raise must still return at once.
	raise(burst("1002"))
	if m := srv.next(t); !strings.Contains(string(m.Data), "ext:1002") {
		t.Errorf("second mail is not about ext:1002")
	}
	if hooks.Load() != 0 {
		t.Fatal("the webhook finished before it was released")
	}
	close(release)
	within(t, 10*time.Second, "the second webhook call", entered)
	cancel()
	within(t, 10*time.Second, "Run to return", done)
	for _, r := range append(outboxRows(t, db, "email"), outboxRows(t, db, "webhook")...) {
		if r.Status != store.DeliverySent {
			t.Errorf("%s row for %s: %s", r.Notifier, r.Notice.Alert.Subject, r.Status)
		}
	}
	if hooks.Load() != 2 {
		t.Errorf("webhook delivered %d, want 2", hooks.Load())
	}
}

func TestConcurrencyIsBoundedPerNotifier(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var delivered atomic.Int32
	slow := &funcNotifier{name: "slow", fn: func(ctx context.Context, n tollguard.Notice) error {
		entered <- struct{}{}
		<-release
		delivered.Add(1)
		return nil
	}}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Concurrency: 2, PollInterval: time.Hour}, slow)
	for _, ext := range []string{"1001", "1002", "1003", "1004", "1005"} {
		if err := d.Raise(ctx, burst(ext)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	within(t, 10*time.Second, "first delivery", entered)
	within(t, 10*time.Second, "second delivery", entered)
	// Both slots are taken: the worker must not have claimed more.
	counts := map[string]int{}
	for _, r := range outboxRows(t, db, "slow") {
		counts[r.Status]++
	}
	if counts[store.DeliverySending] != 2 || counts[store.DeliveryPending] != 3 {
		t.Fatalf("outbox %v, want 2 sending and 3 pending", counts)
	}
	close(release)
	for i := 0; i < 3; i++ {
		within(t, 10*time.Second, "the remaining deliveries", entered)
	}
	cancel()
	within(t, 10*time.Second, "Run to return", done)
	if delivered.Load() != 5 {
		t.Errorf("delivered %d, want 5", delivered.Load())
	}
}

func TestGivesUpAfterMaxAttemptsLoudly(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	logs := &testutil.Buffer{}
	m := newMetrics()
	var calls atomic.Int32
	down := &funcNotifier{name: "webhook", fn: func(context.Context, tollguard.Notice) error { calls.Add(1); return errDown }}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Now: clk.Now, Metrics: m, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Retry: notify.Retry{Initial: time.Second, Max: time.Minute, MaxAttempts: 3}}, down)
	if err := d.Raise(ctx, burst("1001")); err != nil {
		t.Fatal(err)
	}
	var passes []notify.Pass
	for i := 0; i < 5; i++ {
		passes = append(passes, deliverDue(t, d))
		clk.Add(time.Hour)
	}
	if passes[0].Retrying != 1 || passes[1].Retrying != 1 || passes[2].Failed != 1 || passes[3] != (notify.Pass{}) {
		t.Fatalf("passes %+v", passes)
	}
	if calls.Load() != 3 {
		t.Errorf("%d attempts, want 3", calls.Load())
	}
	rows := outboxRows(t, db, "webhook")
	if rows[0].Status != store.DeliveryFailed || rows[0].LastError != errDown.Error() {
		t.Errorf("row %+v", rows[0])
	}
	if m.get(m.failed, "webhook") != 3 || m.get(m.final, "webhook") != 1 {
		t.Errorf("failures %d (final %d), want 3 (1)", m.get(m.failed, "webhook"), m.get(m.final, "webhook"))
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"ALERT NOT DELIVERED") {
		t.Errorf("no loud log line:\n%s", logs)
	}
}

func TestRetryBackoff(t *testing.T) {
	r := notify.Retry{Initial: 10 * time.Second, Max: time.Hour, MaxAttempts: 20}
	for _, tt := range []struct {
		attempt int
		base    time.Duration
	}{{1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {9, 2560 * time.Second}, {10, time.Hour}, {50, time.Hour}} {
		for i := 0; i < 20; i++ {
			if got := r.Delay(tt.attempt); got < tt.base || got > tt.base+tt.base/5 {
				t.Fatalf("Delay(%d) = %s, want %s plus up to 20%%", tt.attempt, got, tt.base)
			}
		}
	}
}

func TestNotifierPanicIsAFailedAttempt(t *testing.T) {
	clk := newClock()
	bad := &funcNotifier{name: "bad", fn: func(context.Context, tollguard.Notice) error { panic("boom") }}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&testutil.Buffer{}, nil))}, bad)
	d.Raise(context.Background(), burst("1001"))
	if p := deliverDue(t, d); p.Retrying != 1 {
		t.Fatalf("pass %+v", p)
	}
	if rows := outboxRows(t, db, "bad"); !strings.Contains(rows[0].LastError, "panicked: boom") {
		t.Errorf("row %+v", rows[0])
	}
}

func TestShutdownReleasesDeliveriesInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	entered := make(chan struct{}, 1)
	hang := &funcNotifier{name: "hang", fn: func(ctx context.Context, n tollguard.Notice) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{ShutdownGrace: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&testutil.Buffer{}, nil))}, hang)
	d.Raise(ctx, burst("1001"))
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	within(t, 10*time.Second, "the delivery to start", entered)
	cancel()
	within(t, 10*time.Second, "Run to return after the grace", done)
	rows := outboxRows(t, db, "hang")
	if rows[0].Status != store.DeliveryPending || rows[0].Attempts != 0 {
		t.Errorf("row after shutdown %+v, want pending with the attempt not counted", rows[0])
	}
}

// TestRunAbandonsRemovedNotifiers: at start, the notices left for a
// notifier the config no longer has are failed, logged and counted as
// undelivered; the notifiers still configured deliver their own copies.
func TestRunAbandonsRemovedNotifiers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	db := openDB(t, "")
	noop := func(name string) *funcNotifier {
		return &funcNotifier{name: name, fn: func(context.Context, tollguard.Notice) error { return nil }}
	}
	old := newDispatcher(t, db, notify.Options{}, noop("log"), noop("old-webhook"))
	old.Raise(ctx, burst("1001"))

	sent := make(chan struct{}, 1)
	logs := &testutil.Buffer{}
	m := newMetrics()
	d := newDispatcher(t, db, notify.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Metrics: m},
		&funcNotifier{name: "log", fn: func(context.Context, tollguard.Notice) error { sent <- struct{}{}; return nil }})
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	within(t, 10*time.Second, "the log delivery", sent)
	cancel()
	within(t, 10*time.Second, "Run to return", done)
	rows := outboxRows(t, db, "old-webhook")
	if rows[0].Status != store.DeliveryFailed || !strings.Contains(rows[0].LastError, "no longer configured") {
		t.Errorf("row %+v", rows[0])
	}
	if !strings.Contains(logs.String(), "notifier=old-webhook") {
		t.Errorf("abandonment not logged:\n%s", logs)
	}
	// Counted as undelivered (the admin's alert rule watches that), not
	// as a failed attempt: none was made.
	if got, failed := m.get(m.final, "old-webhook"), m.get(m.failed, "old-webhook"); got != 1 || failed != 0 {
		t.Errorf("old-webhook counted %d undelivered, %d failed attempts; want 1 and 0", got, failed)
	}
}

func TestTestReportsEveryNotifier(t *testing.T) {
	clk := newClock()
	cert := newTestCert(t)
	srv := newSMTPServer(t, &cert, "tollguard", "s3cret pass")
	email, _ := notify.NewEmail(emailConfig(srv, &cert))
	rcv := newWebhookReceiver(t, clk.Now)
	rcv.status = func() int { return http.StatusInternalServerError }
	wh, _ := notify.NewWebhook(notify.WebhookConfig{URL: rcv.srv.URL, Secret: secret, Now: clk.Now})
	logs := &testutil.Buffer{}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Now: clk.Now}, &notify.Log{Logger: slog.New(slog.NewTextHandler(logs, nil))}, email, wh)

	res := d.Test(context.Background(), "")
	if len(res) != 3 || res[0].Notifier != "log" || res[1].Notifier != "email" || res[2].Notifier != "webhook" {
		t.Fatalf("results %+v", res)
	}
	if res[0].Err != nil || res[1].Err != nil || res[2].Err == nil || !strings.Contains(res[2].Err.Error(), "500") {
		t.Errorf("errors: log %v, email %v, webhook %v", res[0].Err, res[1].Err, res[2].Err)
	}
	if subject, _, body := parseMail(t, srv.next(t).Data); subject != "[tollguard] test alert" || !strings.Contains(body, "alerts reach you") {
		t.Errorf("test mail %q:\n%s", subject, body)
	}
	if !strings.Contains(logs.String(), "kind=test") {
		t.Errorf("log %s", logs)
	}
	if rows, _ := db.Deliveries(context.Background()); len(rows) != 0 {
		t.Errorf("test wrote %d outbox rows", len(rows))
	}
}

func TestRaiseLogsWhenTheStoreFails(t *testing.T) {
	logs := &testutil.Buffer{}
	db := openDB(t, "")
	d := newDispatcher(t, db, notify.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))}, &notify.Log{})
	db.Close()
	if err := d.Raise(context.Background(), compromised()); err == nil {
		t.Fatal("Raise on a closed store succeeded")
	}
	if got := logs.String(); !strings.Contains(got, "only record") || !strings.Contains(got, "kind=credentials_compromised") {
		t.Errorf("log:\n%s", got)
	}
}
