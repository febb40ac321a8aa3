package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

var alertT0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func burst(ext string, sev tollguard.Severity) tollguard.Alert {
	return tollguard.Alert{Kind: tollguard.AlertBurst, Subject: tollguard.ExtSubject(ext), Extension: ext, Account: "acme",
		Severity: sev, Message: "burst on " + ext, Evidence: `{"calls":30}`}
}

func countOutbox(t *testing.T, db *store.DB, where string, args ...any) int {
	t.Helper()
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM alert_outbox WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRaiseAlert(t *testing.T) {
	ctx := context.Background()
	notifiers := []string{"log", "email", "webhook"}
	p := tollguard.AlertPolicy{CoolDown: 15 * time.Minute, DigestAt: []int{5}}

	t.Run("NewAlertQueuesOneDeliveryPerNotifier", func(t *testing.T) {
		db := MustOpenDB(t)
		res, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Merged || res.Notice == nil || res.Notice.Event != tollguard.NoticeNew || res.Enqueued != 3 {
			t.Fatalf("result %+v", res)
		}
		got, err := db.Alert(ctx, res.State.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != "burst" || got.Subject != "ext:1001" || got.Account != "acme" || got.Extension != "1001" || got.Count != 1 ||
			!got.FirstSeen.Equal(alertT0) || !got.LastSeen.Equal(alertT0) || got.Severity != tollguard.SeverityWarning {
			t.Errorf("stored %+v", got)
		}
		if occ := tollguard.Occurrences(got.Evidence); len(occ) != 1 || string(occ[0].Evidence) != `{"calls":30}` {
			t.Errorf("evidence %s", got.Evidence)
		}
		ds, err := db.Deliveries(ctx, res.State.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 3 {
			t.Fatalf("%d deliveries, want 3", len(ds))
		}
		for _, d := range ds {
			if d.Status != store.DeliveryPending || !d.NextAt.Equal(alertT0) || d.Event != tollguard.NoticeNew ||
				d.Notice.Alert.ID != res.State.ID || d.Notice.Alert.Message != "burst on 1001" {
				t.Errorf("delivery %+v", d)
			}
		}
	})

	t.Run("RepeatsMergeWithoutDeliveriesThenDigestFires", func(t *testing.T) {
		db := MustOpenDB(t)
		first, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			res, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0.Add(time.Duration(i)*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Merged || res.Notice != nil || res.State.ID != first.State.ID {
				t.Fatalf("repeat %d: %+v", i, res)
			}
		}
		if n := countOutbox(t, db, "1"); n != 3 {
			t.Fatalf("%d outbox rows after 3 repeats, want the first 3 only", n)
		}
		// A different subject is its own alert.
		other, err := db.RaiseAlert(ctx, burst("1002", tollguard.SeverityWarning), p, notifiers, alertT0.Add(time.Minute))
		if err != nil || other.Merged {
			t.Fatalf("other subject: %+v %v", other, err)
		}

		due, ok, err := db.NextDigestDue(ctx)
		if err != nil || !ok || !due.Equal(alertT0.Add(15*time.Minute)) {
			t.Fatalf("next digest %v %v %v", due, ok, err)
		}
		if n, err := db.FireDigests(ctx, p, notifiers, alertT0.Add(14*time.Minute), 0); err != nil || n != 0 {
			t.Fatalf("early fire: %d %v", n, err)
		}
		n, err := db.FireDigests(ctx, p, notifiers, alertT0.Add(15*time.Minute), 0)
		if err != nil || n != 1 {
			t.Fatalf("fire: %d %v", n, err)
		}
		if n, _ := db.FireDigests(ctx, p, notifiers, alertT0.Add(16*time.Minute), 0); n != 0 {
			t.Fatalf("fired again: %d", n)
		}
		ds, _ := db.Deliveries(ctx, first.State.ID)
		var digests []store.Delivery
		for _, d := range ds {
			if d.Event == tollguard.NoticeDigest {
				digests = append(digests, d)
			}
		}
		if len(digests) != 3 || digests[0].Notice.Repeats != 3 || digests[0].Notice.Alert.Count != 4 {
			t.Fatalf("digests %+v", digests)
		}
		st, _ := db.Alert(ctx, first.State.ID)
		if st.NotifiedCount != 4 || !st.DigestDue.IsZero() {
			t.Errorf("after digest: notified %d due %v", st.NotifiedCount, st.DigestDue)
		}
	})

	t.Run("ThresholdAndEscalationQueueAtOnce", func(t *testing.T) {
		db := MustOpenDB(t)
		var last store.RaiseResult
		for i := 0; i < 5; i++ {
			var err error
			last, err = db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
		}
		if last.Notice == nil || last.Notice.Event != tollguard.NoticeDigest || last.Notice.Repeats != 4 {
			t.Fatalf("5th occurrence (threshold): %+v", last.Notice)
		}
		res, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityCritical), p, notifiers, alertT0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if res.Notice == nil || res.Notice.Event != tollguard.NoticeEscalation || res.State.Severity != tollguard.SeverityCritical {
			t.Fatalf("escalation: %+v", res)
		}
		if n := countOutbox(t, db, "event = 'escalation' AND next_at = ?", alertT0.Add(time.Minute).Unix()); n != 3 {
			t.Errorf("%d escalation deliveries due now, want 3", n)
		}
	})

	t.Run("AckedAlertStartsAfresh", func(t *testing.T) {
		db := MustOpenDB(t)
		first, _ := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0)
		db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0.Add(time.Second))
		st, changed, err := db.AckAlert(ctx, first.State.ID, "alice", alertT0.Add(2*time.Second))
		if err != nil || !changed || st.AckedBy != "alice" || !st.AckedAt.Equal(alertT0.Add(2*time.Second)) || !st.DigestDue.IsZero() {
			t.Fatalf("ack: %+v %v %v", st, changed, err)
		}
		if _, changed, _ := db.AckAlert(ctx, first.State.ID, "bob", alertT0.Add(3*time.Second)); changed {
			t.Error("second ack changed something")
		}
		res, _ := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0.Add(3*time.Second))
		if res.Merged || res.State.ID == first.State.ID {
			t.Errorf("occurrence after ack merged into the acked alert")
		}
		_, _, err = db.AckAlert(ctx, 9999, "alice", alertT0)
		if tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			t.Errorf("ack unknown: %v", err)
		}
	})

	// A nightly audit finds the same weak PIN every night: it is not
	// mailed again while its alert is open or acknowledged, until it
	// changes or Renotify passes; a fraud alert a day later still is.
	t.Run("UnchangedStandingAlertStaysQuiet", func(t *testing.T) {
		db := MustOpenDB(t)
		const week = 7 * 24 * time.Hour
		day := func(n int) time.Time { return alertT0.Add(time.Duration(n) * 24 * time.Hour) }
		pin := func(msg string, sev tollguard.Severity) tollguard.Alert {
			return tollguard.Alert{Kind: "audit_weak_pin", Subject: "mailbox:default/2000", Severity: sev, Message: msg,
				Evidence: `{"job":"pins"}`, Renotify: week}
		}
		raise := func(a tollguard.Alert, at time.Time) store.RaiseResult {
			t.Helper()
			res, err := db.RaiseAlert(ctx, a, p, notifiers, at)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		first := raise(pin("weak", tollguard.SeverityWarning), day(0))
		if first.Notice == nil || first.Notice.Event != tollguard.NoticeNew {
			t.Fatalf("first night: %+v", first)
		}
		for n := 1; n <= 6; n++ { // open, unchanged, within the week
			if res := raise(pin("weak", tollguard.SeverityWarning), day(n)); !res.Merged || res.Notice != nil || res.State.ID != first.State.ID {
				t.Fatalf("night %d: %+v", n, res)
			}
		}
		// Open a week after the last notice: one reminder on the same alert.
		res := raise(pin("weak", tollguard.SeverityWarning), day(7))
		if res.State.ID != first.State.ID || res.Notice == nil || res.Notice.Event != tollguard.NoticeDigest || res.Notice.Repeats != 7 {
			t.Fatalf("a week later: %+v", res)
		}
		if st, _ := db.Alert(ctx, first.State.ID); st.Count != 8 || !st.LastSeen.Equal(day(7)) || !st.DigestDue.IsZero() {
			t.Errorf("stored after a week: count %d last seen %v digest due %v", st.Count, st.LastSeen, st.DigestDue)
		}
		// Acknowledged: quiet for a week after the ack, then a new alert.
		if res := raise(pin("weak", tollguard.SeverityWarning), day(8)); res.Notice != nil {
			t.Fatalf("night 8: %+v", res)
		}
		if _, _, err := db.AckAlert(ctx, first.State.ID, "alice", day(8)); err != nil {
			t.Fatal(err)
		}
		for n := 9; n <= 14; n++ {
			if res := raise(pin("weak", tollguard.SeverityWarning), day(n)); res.Notice != nil || res.State.ID != first.State.ID {
				t.Fatalf("night %d after the ack: %+v", n, res)
			}
		}
		if st, _ := db.Alert(ctx, first.State.ID); st.AckedAt.IsZero() || st.Count != 15 {
			t.Errorf("acked alert after quiet repeats: acked %v count %d", st.AckedAt, st.Count)
		}
		second := raise(pin("weak", tollguard.SeverityWarning), day(15))
		if second.Merged || second.State.ID == first.State.ID || second.Notice == nil || second.Notice.Event != tollguard.NoticeNew {
			t.Fatalf("a week after the ack: %+v", second)
		}
		// A changed finding is news at once, and so is a higher severity.
		changed := raise(pin("weak, and now the default", tollguard.SeverityWarning), day(16))
		if changed.State.ID == second.State.ID || changed.Notice == nil || changed.Notice.Event != tollguard.NoticeNew {
			t.Fatalf("changed message: %+v", changed)
		}
		worse := raise(pin("weak, and now the default", tollguard.SeverityCritical), day(17))
		if worse.Notice == nil || worse.Notice.Event != tollguard.NoticeNew || worse.State.Severity != tollguard.SeverityCritical {
			t.Fatalf("higher severity: %+v", worse)
		}
		// A detector's alert (no Renotify) a day later is a new notice, as before.
		fraud := raise(burst("1001", tollguard.SeverityWarning), day(0))
		again := raise(burst("1001", tollguard.SeverityWarning), day(1))
		if again.Merged || again.State.ID == fraud.State.ID || again.Notice == nil {
			t.Errorf("burst a day later: %+v", again)
		}
	})

	t.Run("InvalidAlertRejected", func(t *testing.T) {
		db := MustOpenDB(t)
		_, err := db.RaiseAlert(ctx, tollguard.Alert{Subject: "ext:1"}, p, notifiers, alertT0)
		if tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("err %v", err)
		}
	})

	t.Run("ConcurrentRaisesMergeIntoOne", func(t *testing.T) {
		db := MustOpenDB(t)
		const n = 24
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, notifiers, alertT0)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		all, err := db.Alerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].Count != n {
			t.Fatalf("%d alerts, first count %d; want 1 alert counting %d", len(all), all[0].Count, n)
		}
		// One "new" notice and one digest at the threshold (5), per notifier.
		if got := countOutbox(t, db, "1"); got != 6 {
			t.Errorf("%d outbox rows, want 6", got)
		}
	})
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	p := tollguard.AlertPolicy{}
	lease := time.Minute

	t.Run("ClaimLeaseRetryAndFinish", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, []string{"email", "webhook"}, alertT0); err != nil {
			t.Fatal(err)
		}
		ds, err := db.ClaimDeliveries(ctx, "email", alertT0, lease, 10)
		if err != nil || len(ds) != 1 || ds[0].Attempts != 1 || ds[0].Status != store.DeliverySending || ds[0].Notifier != "email" {
			t.Fatalf("claim: %+v %v", ds, err)
		}
		// Held by the claim: not claimable again until the lease lapses.
		if again, _ := db.ClaimDeliveries(ctx, "email", alertT0.Add(30*time.Second), lease, 10); len(again) != 0 {
			t.Fatalf("claimed a held delivery: %+v", again)
		}
		// The webhook's row is independent.
		if w, _ := db.ClaimDeliveries(ctx, "webhook", alertT0, lease, 10); len(w) != 1 {
			t.Fatalf("webhook claim: %+v", w)
		}
		if err := db.DeliveryRetry(ctx, ds[0], alertT0.Add(10*time.Second), "connection refused"); err != nil {
			t.Fatal(err)
		}
		next, ok, _ := db.NextDeliveryDue(ctx, "email")
		if !ok || !next.Equal(alertT0.Add(10*time.Second)) {
			t.Fatalf("next due %v %v", next, ok)
		}
		if early, _ := db.ClaimDeliveries(ctx, "email", alertT0.Add(9*time.Second), lease, 10); len(early) != 0 {
			t.Fatal("claimed before its retry time")
		}
		ds2, _ := db.ClaimDeliveries(ctx, "email", alertT0.Add(10*time.Second), lease, 10)
		if len(ds2) != 1 || ds2[0].Attempts != 2 || ds2[0].LastError != "connection refused" {
			t.Fatalf("second claim: %+v", ds2)
		}
		// A finish with the first claim's token is refused.
		if err := db.DeliverySent(ctx, ds[0], alertT0.Add(11*time.Second)); !errors.Is(err, store.ErrLostClaim) {
			t.Fatalf("stale finish: %v", err)
		}
		if err := db.DeliverySent(ctx, ds2[0], alertT0.Add(11*time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := db.NextDeliveryDue(ctx, "email"); ok {
			t.Error("sent delivery still due")
		}
		all, _ := db.Deliveries(ctx)
		if all[0].Status != store.DeliverySent || all[0].LastError != "" || !all[0].DoneAt.Equal(alertT0.Add(11*time.Second)) {
			t.Errorf("after sent: %+v", all[0])
		}
	})

	t.Run("LapsedClaimIsTakenAgain", func(t *testing.T) {
		db := MustOpenDB(t)
		db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, []string{"email"}, alertT0)
		first, _ := db.ClaimDeliveries(ctx, "email", alertT0, lease, 10)
		// The worker died; after the lease the row comes back.
		again, err := db.ClaimDeliveries(ctx, "email", alertT0.Add(lease), lease, 10)
		if err != nil || len(again) != 1 || again[0].ID != first[0].ID || again[0].Attempts != 2 {
			t.Fatalf("reclaim: %+v %v", again, err)
		}
		if err := db.DeliveryFailed(ctx, again[0], alertT0.Add(lease), "gave up"); err != nil {
			t.Fatal(err)
		}
		if n := countOutbox(t, db, "status = 'failed' AND last_error = 'gave up'"); n != 1 {
			t.Errorf("failed rows %d", n)
		}
	})

	t.Run("ReleaseDoesNotCountAnAttempt", func(t *testing.T) {
		db := MustOpenDB(t)
		db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, []string{"email"}, alertT0)
		ds, _ := db.ClaimDeliveries(ctx, "email", alertT0, lease, 10)
		if err := db.DeliveryRelease(ctx, ds[0], alertT0); err != nil {
			t.Fatal(err)
		}
		again, _ := db.ClaimDeliveries(ctx, "email", alertT0, lease, 10)
		if len(again) != 1 || again[0].Attempts != 1 {
			t.Fatalf("after release: %+v", again)
		}
	})

	t.Run("AbandonUnconfiguredNotifiers", func(t *testing.T) {
		db := MustOpenDB(t)
		db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, []string{"log", "email", "old-webhook"}, alertT0)
		got, err := db.AbandonDeliveries(ctx, []string{"log", "email"}, alertT0)
		if err != nil || len(got) != 1 || got["old-webhook"] != 1 {
			t.Fatalf("abandoned %v %v", got, err)
		}
		if n := countOutbox(t, db, "status = 'pending'"); n != 2 {
			t.Errorf("%d pending left, want 2", n)
		}
	})

	t.Run("PruneKeepsUndelivered", func(t *testing.T) {
		db := MustOpenDB(t)
		old, _ := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, []string{"email"}, alertT0)
		db.RaiseAlert(ctx, burst("1002", tollguard.SeverityWarning), p, nil, alertT0)
		n, err := db.PruneAlerts(ctx, alertT0.Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d %v, want only the delivered one", n, err)
		}
		ds, _ := db.ClaimDeliveries(ctx, "email", alertT0, lease, 10)
		db.DeliverySent(ctx, ds[0], alertT0)
		if n, _ := db.PruneAlerts(ctx, alertT0.Add(time.Hour)); n != 1 {
			t.Fatalf("pruned %d after delivery", n)
		}
		if _, err := db.Alert(ctx, old.State.ID); tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			t.Errorf("pruned alert still there: %v", err)
		}
		if c := countOutbox(t, db, "1"); c != 0 {
			t.Errorf("%d outbox rows left after prune", c)
		}
	})

	t.Run("PruneInBatches", func(t *testing.T) {
		db := MustOpenDB(t)
		for i := 0; i < 1100; i++ {
			a := burst("1001", tollguard.SeverityWarning)
			a.Subject = tollguard.ExtSubject(string(rune('a'+i%26)) + string(rune('a'+i/26)))
			if _, err := db.RaiseAlert(ctx, a, p, nil, alertT0); err != nil {
				t.Fatal(err)
			}
		}
		db.RaiseAlert(ctx, burst("recent", tollguard.SeverityWarning), p, nil, alertT0.Add(2*time.Hour))
		n, err := db.PruneAlerts(ctx, alertT0.Add(time.Hour))
		if err != nil || n != 1100 {
			t.Fatalf("pruned %d %v, want 1100", n, err)
		}
		if left, _ := db.Alerts(ctx, store.AlertFilter{}); len(left) != 1 || left[0].Extension != "recent" {
			t.Errorf("left %+v", left)
		}
	})

	t.Run("ListSinceAndUnacked", func(t *testing.T) {
		db := MustOpenDB(t)
		a, _ := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, nil, alertT0)
		db.RaiseAlert(ctx, burst("1002", tollguard.SeverityWarning), p, nil, alertT0.Add(time.Hour))
		db.AckAlert(ctx, a.State.ID, "alice", alertT0.Add(2*time.Hour))
		if got, _ := db.Alerts(ctx, store.AlertFilter{Since: alertT0.Add(time.Minute)}); len(got) != 1 || got[0].Extension != "1002" {
			t.Errorf("since: %+v", got)
		}
		if got, _ := db.Alerts(ctx, store.AlertFilter{Unacked: true}); len(got) != 1 || got[0].Extension != "1002" {
			t.Errorf("unacked: %+v", got)
		}
		if got, _ := db.Alerts(ctx, store.AlertFilter{}); len(got) != 2 || got[0].Extension != "1002" {
			t.Errorf("all, newest first: %+v", got)
		}
	})
}

// TestAlertIDsNotReused: once the retention prune has deleted every
// alert, the next one still gets a new id, so its notice key (which
// receivers drop duplicates on) is not that of an alert sent before.
func TestAlertIDsNotReused(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	p := tollguard.AlertPolicy{CoolDown: 15 * time.Minute}
	first, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, []string{"webhook"}, alertT0)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := db.ClaimDeliveries(ctx, "webhook", alertT0, time.Minute, 10)
	if err != nil || len(cl) != 1 {
		t.Fatalf("claimed %d, %v", len(cl), err)
	}
	if err := db.DeliverySent(ctx, cl[0], alertT0); err != nil {
		t.Fatal(err)
	}
	later := alertT0.Add(100 * 24 * time.Hour)
	if n, err := db.PruneAlerts(ctx, later.Add(-90*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	next, err := db.RaiseAlert(ctx, burst("2002", tollguard.SeverityCritical), p, []string{"webhook"}, later)
	if err != nil {
		t.Fatal(err)
	}
	if next.State.ID <= first.State.ID || next.Notice.Key() == first.Notice.Key() {
		t.Errorf("alert id %d (key %s) after pruning alert %d (key %s)", next.State.ID, next.Notice.Key(), first.State.ID, first.Notice.Key())
	}
}

// TestAlertIDMigration: migration 0007 rebuilds alerts and the outbox
// keeping every row, and the outbox still follows its alert on delete.
func TestAlertIDMigration(t *testing.T) {
	ctx := context.Background()
	path := migratedTo(t, 6, `
		INSERT INTO alerts(id, kind, severity, subject, message, first_seen, last_seen) VALUES
			(7, 'burst', 'warning', 'ext:1001', 'old', 1, 1), (9, 'burst', 'critical', 'ext:1002', 'newer', 2, 2);
		INSERT INTO alert_outbox(alert_id, notifier, event, notice, next_at, created_at) VALUES
			(7, 'webhook', 'new', '{}', 1, 1), (9, 'webhook', 'new', '{}', 2, 2), (9, 'email', 'new', '{}', 2, 2);`)

	db := MustOpenPath(t, path)
	var alerts, outbox int
	if err := db.SQL().QueryRow(`SELECT (SELECT COUNT(*) FROM alerts), (SELECT COUNT(*) FROM alert_outbox)`).Scan(&alerts, &outbox); err != nil || alerts != 2 || outbox != 3 {
		t.Fatalf("after migration: %d alerts, %d outbox rows (%v); want 2 and 3", alerts, outbox, err)
	}
	if _, err := db.SQL().Exec(`DELETE FROM alerts WHERE id = 9`); err != nil {
		t.Fatal(err)
	}
	if n := countOutbox(t, db, "alert_id = 9"); n != 0 {
		t.Errorf("%d outbox rows outlived their alert", n)
	}
	res, err := db.RaiseAlert(ctx, burst("1003", tollguard.SeverityWarning), tollguard.AlertPolicy{CoolDown: time.Minute}, []string{"log"}, alertT0)
	if err != nil || res.State.ID != 10 {
		t.Errorf("new alert id %d (%v), want 10: after the highest id ever, not after the highest left", res.State.ID, err)
	}
}

// TestClaimDeliveriesCriticalFirst: a critical alert raised behind a
// backlog of warnings is the next one claimed.
func TestClaimDeliveriesCriticalFirst(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	p := tollguard.AlertPolicy{CoolDown: 15 * time.Minute}
	for i := range 5 {
		if _, err := db.RaiseAlert(ctx, burst(fmt.Sprint(1001+i), tollguard.SeverityWarning), p, []string{"webhook"}, alertT0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	crit, err := db.RaiseAlert(ctx, burst("2001", tollguard.SeverityCritical), p, []string{"webhook"}, alertT0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	now := alertT0.Add(2 * time.Minute)
	cl, err := db.ClaimDeliveries(ctx, "webhook", now, time.Minute, 1)
	if err != nil || len(cl) != 1 || cl[0].AlertID != crit.State.ID {
		t.Fatalf("claimed %+v (%v), want the critical alert %d first", cl, err, crit.State.ID)
	}
	cl, err = db.ClaimDeliveries(ctx, "webhook", now, time.Minute, 2)
	if err != nil || len(cl) != 2 || cl[0].Notice.Alert.Extension != "1001" || cl[1].Notice.Alert.Extension != "1002" {
		t.Fatalf("then %+v (%v), want the two oldest warnings in order", cl, err)
	}
}

// TestClaimDeliveriesEscalationInOrder: a warning escalated to critical
// goes out before its escalation, both ahead of other warnings.
func TestClaimDeliveriesEscalationInOrder(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	p := tollguard.AlertPolicy{CoolDown: 15 * time.Minute}
	if _, err := db.RaiseAlert(ctx, burst("1002", tollguard.SeverityWarning), p, []string{"webhook"}, alertT0); err != nil {
		t.Fatal(err)
	}
	first, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityWarning), p, []string{"webhook"}, alertT0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.RaiseAlert(ctx, burst("1001", tollguard.SeverityCritical), p, []string{"webhook"}, alertT0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	cl, err := db.ClaimDeliveries(ctx, "webhook", alertT0.Add(time.Minute), time.Minute, 10)
	if err != nil || len(cl) != 3 {
		t.Fatalf("claimed %d (%v), want 3", len(cl), err)
	}
	var got []string
	for _, d := range cl {
		got = append(got, fmt.Sprintf("%s/%s", d.Notice.Alert.Extension, d.Notice.Event))
	}
	if cl[0].AlertID != first.State.ID || cl[1].AlertID != first.State.ID || cl[0].ID > cl[1].ID || cl[2].Notice.Alert.Extension != "1002" {
		t.Errorf("order %v: want 1001's notices in the order made, then 1002's warning", got)
	}
}
