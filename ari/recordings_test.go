package ari

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

// recordingRow says what tollguard must conclude from one recorded
// Asterisk 22 event stream (aritest/testdata/ari-events-*.jsonl), replayed
// through the real listener over a real websocket.
type recordingRow struct {
	file string
	// alerts are the kinds of alert the stream must raise, in order;
	// none for most: normal traffic must stay quiet.
	alerts []string
	// reconnects is how many times the row makes the listener reconnect.
	reconnects int
	// run seeds the fake Asterisk and the store, replays the stream
	// (as Asterisk sent it, or in parts with Asterisk's state changing
	// between them) and asserts what the listener concluded.
	run func(t *testing.T, h *harness, frames [][]byte)
}

// The contact objects Asterisk held for the recorded registrations: SIPp
// from 127.0.0.1, its port being the contact's.
func sippContact(port string) map[string]string {
	return map[string]string{"user_agent": uaSIPp, "via_addr": "127.0.0.1", "via_port": port}
}

const (
	uriExpiry = "sip:1001@127.0.0.1:5071;transport=udp" // ari-events-expiry.jsonl
	uri1002a  = "sip:1002@127.0.0.1:5081;transport=udp" // ari-events-max-contacts.jsonl
	uri1002b  = "sip:1002@127.0.0.1:5082;transport=udp"
	uri1009   = "sip:1009@127.0.0.1:5077;transport=udp" // ari-events-dynamic-config-1009.jsonl
)

var recordingRows = []recordingRow{
	{file: "ari-events-register.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		id := h.fake.Register("1001", "1001", uriSIPp, sippContact("5070"), false)
		h.push(frames...)
		h.drainRegistrations()
		c := h.mustContact(id)
		wantContact(t, c, tollguard.Contact{Extension: "1001", IP: "127.0.0.1", Port: 5070, UserAgent: uaSIPp, Live: true,
			Status: tollguard.ContactNonQualified, LastSeen: eventTime("2026-11-23T00:58:05Z"), Count: 1})
	}},
	{file: "ari-events-unregister.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		id := h.fake.Register("1001", "1001", uriSIPp, sippContact("5070"), false)
		h.replay("ari-events-register.jsonl")
		h.fake.Unregister("1001", "1001", uriSIPp, false)
		h.push(frames...)
		h.drainRegistrations()
		wantContact(t, h.mustContact(id), tollguard.Contact{Extension: "1001", IP: "127.0.0.1", Port: 5070, UserAgent: uaSIPp,
			Status: tollguard.ContactRemoved, LastSeen: eventTime("2026-11-23T00:58:25Z"), RemovedAt: eventTime("2026-11-23T00:58:25Z"), Count: 1})
		if n := strings.Count(h.logs.String(), `msg="registration ended"`); n != 1 {
			t.Errorf(`"registration ended" logged %d times, want 1`, n)
		}
	}},
	// Expires 12 and no refresh: Asterisk removes the contact ~14 s
	// later with a Removed identical to an unregister's, and the removal's
	// three events come out of timestamp order (DeviceStateChanged .372
	// before PeerStatusChange .371). tollguard must end with the contact
	// removed at the expiry and no more than an unregister gives.
	{file: "ari-events-expiry.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		fields := sippContact("5071")
		fields["expiration_time"] = fmt.Sprint(eventTime("2026-11-23T00:58:47Z").Unix())
		id := h.fake.Register("1001", "1001", uriExpiry, fields, false)
		h.push(frames[:3]...)
		h.drainRegistrations()
		wantContact(t, h.mustContact(id), tollguard.Contact{Extension: "1001", IP: "127.0.0.1", Port: 5071, UserAgent: uaSIPp, Live: true,
			Status: tollguard.ContactNonQualified, LastSeen: eventTime("2026-11-23T00:58:35Z"), Expires: eventTime("2026-11-23T00:58:47Z"), Count: 1})
		h.fake.Unregister("1001", "1001", uriExpiry, false) // the expiry check
		h.push(frames[3:]...)
		h.drainRegistrations()
		wantContact(t, h.mustContact(id), tollguard.Contact{Extension: "1001", IP: "127.0.0.1", Port: 5071, UserAgent: uaSIPp,
			Status: tollguard.ContactRemoved, LastSeen: eventTime("2026-11-23T00:58:49Z"), RemovedAt: eventTime("2026-11-23T00:58:49Z"),
			Expires: eventTime("2026-11-23T00:58:47Z"), Count: 1})
		if n := strings.Count(h.logs.String(), `msg="registration ended"`); n != 1 {
			t.Errorf(`"registration ended" logged %d times, want 1`, n)
		}
		if live, _ := h.db.LiveContacts(context.Background()); len(live) != 0 {
			t.Errorf("live contacts after the expiry: %+v", live)
		}
	}},
	// Wrong passwords and unknown users reach the security log, never
	// ARI: nothing to conclude, and the listener stays healthy.
	{file: "ari-events-wrong-password.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		wantSilent(t, h, frames)
	}},
	// Without subscribeAll Asterisk sent nothing (TestEventsNeedSubscribeAll
	// checks the listener asks for it).
	{file: "ari-events-no-subscribeAll.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		wantSilent(t, h, frames)
	}},
	// Two phones on 1002 from one address, one user agent: two first
	// registrations, no "new" alert; the third, refused with 403, made
	// no event. Then both unregister.
	{file: "ari-events-max-contacts.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		a := h.fake.Register("1002", "1002", uri1002a, sippContact("5081"), false)
		b := h.fake.Register("1002", "1002", uri1002b, sippContact("5082"), false)
		h.push(frames[:4]...)
		h.drainRegistrations()
		for _, id := range []string{a, b} {
			if c := h.mustContact(id); !c.Live || c.UserAgent != uaSIPp || c.IP != "127.0.0.1" {
				t.Errorf("contact %s %+v", id, c)
			}
		}
		h.fake.Unregister("1002", "1002", uri1002a, false)
		h.fake.Unregister("1002", "1002", uri1002b, false)
		h.push(frames[4:]...)
		h.drainRegistrations()
		wantContact(t, h.mustContact(a), tollguard.Contact{Extension: "1002", IP: "127.0.0.1", Port: 5081, UserAgent: uaSIPp,
			Status: tollguard.ContactRemoved, LastSeen: eventTime("2026-11-23T01:02:51Z"), RemovedAt: eventTime("2026-11-23T01:02:51Z"), Count: 1})
		wantContact(t, h.mustContact(b), tollguard.Contact{Extension: "1002", IP: "127.0.0.1", Port: 5082, UserAgent: uaSIPp,
			Status: tollguard.ContactRemoved, LastSeen: eventTime("2026-11-23T01:02:52Z"), RemovedAt: eventTime("2026-11-23T01:02:52Z"), Count: 1})
	}},
	// 1009 was created through ARI (tollguard does not know it), registered,
	// then deleted: only the registration made events, and no Removed
	// came for the contact Asterisk dropped with its AOR. tollguard's own
	// purge marks it gone (TestPurgeEndsRegistrations); after a delete by
	// other means the hourly resynchronisation does, without a reconnect.
	{file: "ari-events-dynamic-config-1009.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		h.fake.SetObject("endpoint", "1009", []tollguard.ConfigField{{Attribute: "aors", Value: "1009"}}, true)
		id := h.fake.Register("1009", "1009", uri1009, sippContact("5077"), false)
		h.push(frames...)
		h.drainRegistrations()
		wantContact(t, h.mustContact(id), tollguard.Contact{Extension: "1009", IP: "127.0.0.1", Port: 5077, UserAgent: uaSIPp, Live: true,
			Status: tollguard.ContactNonQualified, LastSeen: eventTime("2026-11-23T01:02:34Z"), Count: 1})
		for _, typ := range []string{"auth", "aor", "endpoint"} {
			h.fake.RemoveObject(typ, "1009") // the recorded DELETEs: no event
		}
		h.advance(resyncEvery)
		h.waitResyncs(2)
		if c := h.mustContact(id); c.Live || c.RemovedAt.IsZero() {
			t.Errorf("the deleted AOR's contact still live after the hourly resynchronisation: %+v", c)
		}
		if !strings.Contains(h.logs.String(), `level=INFO msg="registrations resynchronised: Asterisk's contacts differed from what its events said" contacts=0 new=0 gone=1 ended_extensions=1009`) {
			t.Error("the hourly resync that ended 1009's registration logged no INFO summary naming it")
		}
	}},
	{file: "ari-events-application-replaced.jsonl", reconnects: 1, run: func(t *testing.T, h *harness, frames [][]byte) {
		h.push(frames...)
		testutil.Eventually(t, waitLimit, "the listener hears it was replaced", func() bool {
			return strings.Contains(h.l.State().LastError, "took over")
		})
		h.waitConnected(2) // and takes its application back
		h.waitResyncs(2)
	}},
	{file: "ari-events-outbound-call-allowed.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		id := h.gateCall(allowedID, "1001", "0044207946000", tollguard.Allow)
		h.push(frames...)
		// Answered 00:59:24.132, hung up 00:59:27.644: a started second is billed.
		wantSettled(t, h, id, 4, "ANSWER")
	}},
	{file: "ari-events-outbound-call-denied.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		id := h.gateCall(deniedID, "1001", "00252612345678", tollguard.Deny)
		h.push(frames...)
		if rec, err := h.db.Call(context.Background(), id); err != nil || !rec.SettledAt.IsZero() || rec.Charge != 0 {
			t.Errorf("denied call %+v %v: want unsettled, uncharged", rec, err)
		}
	}},
	{file: "ari-events-caller-hangup-mid-agi.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		id := h.gateCall("pbx-test-1795395604.4", "1001", "0033123456789", tollguard.Allow)
		h.push(frames...)
		wantSettled(t, h, id, 0, "")
	}},
	// The AGI server was down and the recorded dialplan failed open: an
	// outbound call with no gate record.
	{file: "ari-events-agi-server-down.jsonl", alerts: []string{tollguard.AlertUngated}, run: func(t *testing.T, h *harness, frames [][]byte) {
		h.push(frames...)
		if a := h.alerts.all(); len(a) == 1 && a[0].Subject != "ext:1001" {
			t.Errorf("ungated alert for %s, want ext:1001", a[0].Subject)
		}
	}},
	{file: "ari-events-ari-originate.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		id := h.gateCall(originatedID, "Local", "0044207946000", tollguard.Allow)
		h.push(frames...)
		wantSettled(t, h, id, 4, "ANSWER")
	}},
	// Killed through ARI (cause 21) after 01:03:59.839 to 01:04:04.233.
	{file: "ari-events-ari-hangup-active-call.jsonl", run: func(t *testing.T, h *harness, frames [][]byte) {
		id := h.gateCall("pbx-test-1795395839.3", "1001", "00991234567", tollguard.Allow)
		h.push(frames...)
		wantSettled(t, h, id, 5, "ANSWER")
	}},
}

// TestEveryEventRecording replays each recorded event stream through the
// listener and checks what tollguard concludes from it.
func TestEveryEventRecording(t *testing.T) {
	for _, row := range recordingRows {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(row.file, "ari-events-"), ".jsonl"), func(t *testing.T) {
			frames := fixture(t, row.file)
			// The listener's clock runs from the recording's time, as it
			// did live: a removal two days old is pruned at once.
			at := time.Now()
			if len(frames) > 0 {
				var ev struct{ Timestamp string }
				if err := json.Unmarshal(frames[0], &ev); err != nil {
					t.Fatal(err)
				}
				at = eventTime(ev.Timestamp)
			}
			h := newHarness(t, withWallClock(at)).start()
			row.run(t, h, frames)
			h.drainRegistrations()

			var kinds []string
			for _, a := range h.alerts.all() {
				kinds = append(kinds, a.Kind)
			}
			if !slices.Equal(kinds, row.alerts) {
				t.Errorf("alerts %q, want %q: %+v", kinds, row.alerts, h.alerts.all())
			}
			st := h.l.State()
			if !st.Connected || st.Undecodable != 0 {
				t.Errorf("listener state %+v", st)
			}
			if st.Reconnects != row.reconnects || (row.reconnects == 0 && st.LastError != "") {
				t.Errorf("%d reconnects, want %d: %+v", st.Reconnects, row.reconnects, st)
			}
			if n := len(h.l.tr.chans); n != 0 {
				t.Errorf("%d channels still tracked after the stream", n)
			}
			if calls := h.l.Detectors.Stats().Calls; calls != 0 {
				t.Errorf("%d calls still in progress after the stream", calls)
			}
			if strings.Contains(h.logs.String(), "panic") {
				t.Errorf("the listener panicked:\n%s", h.logs.String())
			}
		})
	}
}

// TestEveryEventRecordingHasARow: a new recording must say, in a row
// above, what tollguard concludes from it.
func TestEveryEventRecordingHasARow(t *testing.T) {
	entries, err := os.ReadDir("aritest/testdata")
	if err != nil {
		t.Fatal(err)
	}
	rows := make(map[string]bool)
	for _, r := range recordingRows {
		if rows[r.file] {
			t.Errorf("%s has two rows", r.file)
		}
		rows[r.file] = true
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "ari-events-") || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		n++
		if !rows[name] {
			t.Errorf("%s has no row in recordingRows: say what tollguard must conclude from it", name)
		}
		delete(rows, name)
	}
	for name := range rows {
		t.Errorf("row %s names no recording in aritest/testdata", name)
	}
	if n == 0 {
		t.Error("no ari-events-*.jsonl recording found")
	}
}

// drainRegistrations waits until the registration goroutine has handled
// every contact event pushed so far: it handles them in order, and logs
// a contact event without an AOR when it reaches it.
func (h *harness) drainRegistrations() {
	h.t.Helper()
	mark := fmt.Sprintf("sip:drain-%d@invalid", drainSeq.Add(1))
	h.push(mustJSON(h.t, map[string]any{"type": "ContactStatusChange", "timestamp": "2026-11-23T00:00:00.000+0000",
		"endpoint":     map[string]any{"technology": "PJSIP", "resource": "", "state": "online", "channel_ids": []string{}},
		"contact_info": map[string]any{"uri": mark, "contact_status": "NonQualified", "aor": "", "roundtrip_usec": "0"}}))
	testutil.Eventually(h.t, waitLimit, "registration events handled", func() bool { return strings.Contains(h.logs.String(), "uri="+mark) })
}

var drainSeq atomic.Int64

func (h *harness) mustContact(id string) tollguard.Contact {
	h.t.Helper()
	c, ok := h.contact(id)
	if !ok {
		cs, _ := h.db.Contacts(context.Background(), store.ContactFilter{})
		h.t.Fatalf("contact %s not recorded; the store has %+v", id, cs)
	}
	return c
}

// wantContact compares what tollguard recorded of a registration.
func wantContact(t *testing.T, got, want tollguard.Contact) {
	t.Helper()
	if got.Extension != want.Extension || got.IP != want.IP || got.Port != want.Port || got.UserAgent != want.UserAgent ||
		got.Live != want.Live || got.Status != want.Status || !got.LastSeen.Equal(want.LastSeen) ||
		!got.RemovedAt.Equal(want.RemovedAt) || got.Count != want.Count || (!want.Expires.IsZero() && !got.Expires.Equal(want.Expires)) {
		t.Errorf("contact %s:\n got %+v\nwant %+v", got.ID, got, want)
	}
}

func wantSilent(t *testing.T, h *harness, frames [][]byte) {
	t.Helper()
	if len(frames) != 0 {
		t.Fatalf("the recording has %d events, want none", len(frames))
	}
	if err := h.fake.ReplayFrames(frames); err != nil {
		t.Fatal(err)
	}
	if cs, _ := h.db.Contacts(context.Background(), store.ContactFilter{}); len(cs) != 0 {
		t.Errorf("contacts %+v", cs)
	}
	if f := h.hooks.snapshot().findings; len(f) != 0 {
		t.Errorf("findings %+v", f)
	}
	// Still listening: a registration after it is recorded.
	id := h.fake.Register("1001", "1001", uriSIPp, sippContact("5070"), true)
	testutil.Eventually(t, waitLimit, "a later registration recorded", func() bool { c, ok := h.contact(id); return ok && c.Live })
}

func wantSettled(t *testing.T, h *harness, id, billsec int64, dialStatus string) {
	t.Helper()
	rec, err := h.db.Call(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.SettledAt.IsZero() || rec.SettledBy != "ari" || rec.Billsec != billsec || rec.DialStatus != dialStatus ||
		rec.Charge != tollguard.Cost(rec.Rate, rec.Billing, billsec, rec.Scale) {
		t.Errorf("call %d settled %+v, want by ari, %d s, %q", id, rec, billsec, dialStatus)
	}
}

func eventTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05.000-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	panic("bad timestamp " + s)
}
