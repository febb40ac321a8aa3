package ari

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/internal/testutil"
	"github.com/tollguard/tollguard/store"
)

const (
	uriSIPp   = "sip:1001@127.0.0.1:5070;transport=udp" // the recorded registration
	uaSIPp    = "TollgateFixture-SIPp/3.6.1 (pbx-test; not-a-real-phone)"
	uriOffice = "sip:1001@192.0.2.10:5060;transport=udp;x-ast-orig-host=10.1.1.20:5060"
	uriHome   = "sip:1001@198.51.100.7:40312;transport=udp;x-ast-orig-host=192.168.1.5:5060"
	uriThief  = "sip:1001@203.0.113.66:5060;transport=udp;x-ast-orig-host=203.0.113.66:5060"
)

func TestRegistration(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t).start()

	t.Run("FirstRegistrationFromRecording", func(t *testing.T) {
		// The contact object exists in Asterisk when the event arrives.
		id := h.fake.Register("1001", "1001", uriSIPp, map[string]string{"user_agent": uaSIPp, "via_addr": "127.0.0.1", "via_port": "5070"}, false)
		h.replay("ari-events-register.jsonl")
		testutil.Eventually(t, waitLimit, "contact recorded", func() bool { c, ok := h.contact(id); return ok && c.Live && c.UserAgent == uaSIPp })
		c, _ := h.contact(id)
		if c.IP != "127.0.0.1" || c.Port != 5070 || c.AddrSource != tollguard.AddrContact || c.Count != 1 || c.Extension != "1001" {
			t.Errorf("contact %+v", c)
		}
		if len(h.alerts.all()) != 0 {
			t.Errorf("first registration alerted: %+v", h.alerts.all())
		}
		// last_seen is written just after the contact: wait for it too.
		testutil.Eventually(t, waitLimit, "extension last_seen updated", func() bool {
			ext, err := h.db.Extension(ctx, "1001")
			return err == nil && !ext.LastSeen.IsZero()
		})
		if !strings.Contains(h.logs.String(), "rewrite_contact=yes") {
			t.Error("no warning about rewrite_contact=no")
		}
		if r := h.fake.RequestsMatching(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/contact/1001;@bd5f0da85355b09bd94b726d5867ad6b"); len(r) == 0 {
			t.Error("contact object not fetched by its id")
		}
	})

	t.Run("NewIP", func(t *testing.T) {
		h.fake.Register("1001", "1001", uriHome, map[string]string{"user_agent": uaSIPp}, true)
		testutil.Eventually(t, waitLimit, "new_ip alert", func() bool { return len(h.alerts.kind(tollguard.AlertNewIP)) == 1 })
		a := h.alerts.kind(tollguard.AlertNewIP)[0]
		if a.Subject != "ext:1001" || a.Account != "acme" || !strings.Contains(a.Message, "198.51.100.7") || !strings.Contains(a.Evidence, "127.0.0.1") {
			t.Errorf("alert %+v", a)
		}
		if n := len(h.alerts.kind(tollguard.AlertNewUserAgent)); n != 0 {
			t.Errorf("same phone raised %d new_user_agent alerts", n)
		}
	})

	t.Run("NewUserAgent", func(t *testing.T) {
		h.fake.Register("1001", "1001", "sip:1001@198.51.100.7:40999;transport=udp;x-ast-orig-host=192.168.1.6:5060", map[string]string{"user_agent": "Zoiper rv2.10"}, true)
		testutil.Eventually(t, waitLimit, "new_user_agent alert", func() bool { return len(h.alerts.kind(tollguard.AlertNewUserAgent)) == 1 })
		if n := len(h.alerts.kind(tollguard.AlertNewIP)); n != 1 {
			t.Errorf("a known address alerted again: %d new_ip", n)
		}
	})

	t.Run("Unregister", func(t *testing.T) {
		id := tollguard.ContactID("1001", uriSIPp)
		h.fake.Unregister("1001", "1001", uriSIPp, false)
		h.replay("ari-events-unregister.jsonl")
		testutil.Eventually(t, waitLimit, "contact gone", func() bool { c, _ := h.contact(id); return !c.Live && !c.RemovedAt.IsZero() })
	})

	t.Run("AlertModeNone", func(t *testing.T) {
		if _, err := h.db.UpdateAccount(ctx, "acme", func(a *tollguard.Account) error { a.AlertMode = tollguard.AlertModeNone; return nil }); err != nil {
			t.Fatal(err)
		}
		before := len(h.alerts.all())
		id := h.fake.Register("1001", "1001", "sip:1001@198.18.0.1:5060;x-ast-orig-host=10.0.0.1:5060", map[string]string{"user_agent": "Grandstream"}, true)
		testutil.Eventually(t, waitLimit, "contact recorded", func() bool { c, ok := h.contact(id); return ok && c.Live })
		if n := len(h.alerts.all()); n != before {
			t.Errorf("mode none alerted: %+v", h.alerts.all()[before:])
		}
	})

	// Asterisk before the NonQualified label says Created for a new
	// contact; it was ignored as "not tracked".
	t.Run("CreatedFromOlderAsterisk", func(t *testing.T) {
		uri := "sip:1001@198.51.100.9:5060;transport=udp;x-ast-orig-host=192.168.7.2:5060"
		id := h.fake.Register("1001", "1001", uri, map[string]string{"user_agent": "Yealink SIP-T46S"}, false)
		h.fake.PushJSON(aritestContactEvent("1001", "1001", uri, tollguard.ContactCreated))
		testutil.Eventually(t, waitLimit, "contact recorded", func() bool {
			c, ok := h.contact(id)
			return ok && c.Live && c.Status == tollguard.ContactCreated && c.UserAgent == "Yealink SIP-T46S"
		})
	})
}

func TestRegistrationLockdown(t *testing.T) {
	ctx := context.Background()
	t.Run("ContactRemovedExtensionBlocked", func(t *testing.T) {
		h := newHarness(t)
		setCIDRs(t, h.db, "1001", "192.0.2.0/24")
		h.start()
		h.fake.Register("1001", "1001", uriOffice, map[string]string{"user_agent": "Yealink"}, true)
		testutil.Eventually(t, waitLimit, "office contact", func() bool { c, ok := h.contact(tollguard.ContactID("1001", uriOffice)); return ok && c.Live })

		thief := h.fake.Register("1001", "1001", uriThief, map[string]string{"user_agent": "friendly-scanner"}, true)
		testutil.Eventually(t, waitLimit, "credentials_compromised alert", func() bool { return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1 })
		a := h.alerts.kind(tollguard.AlertCredentialsCompromised)[0]
		if a.Severity != tollguard.SeverityCritical || !strings.Contains(a.Message, "203.0.113.66") || !strings.Contains(a.Message, "`tollguard unblock 1001`. tollguard removed the contact") {
			t.Errorf("alert %+v", a)
		}
		if _, still := h.fake.Object("contact", thief); still {
			t.Error("attacker's contact still in Asterisk")
		}
		if _, ok := h.fake.Object("contact", tollguard.ContactID("1001", uriOffice)); !ok {
			t.Error("the office phone's contact was removed too")
		}
		if r := h.fake.RequestsMatching(http.MethodDelete, "/asterisk/config/dynamic/res_pjsip/contact/"+thief); len(r) != 1 || r[0].Status != http.StatusNoContent {
			t.Errorf("DELETE requests: %+v", r)
		}
		ext, err := h.db.Extension(ctx, "1001")
		if err != nil || !ext.Blocked || ext.BlockedBy != tollguard.SourceRegistrationACL {
			t.Fatalf("extension %+v %v", ext, err)
		}
		blocks, err := h.db.Blocks(ctx, tollguard.BlockExtension, "1001", time.Time{})
		if err != nil || len(blocks) != 1 || !strings.Contains(blocks[0].Evidence, "203.0.113.66") || !strings.Contains(blocks[0].Reason, "outside its allowed networks") {
			t.Fatalf("blocks %+v %v", blocks, err)
		}
		if c, _ := h.contact(thief); c.Live {
			t.Error("removed contact still live in the store")
		}

		// The attacker registers again: removed again, alerted again, no
		// second block row.
		h.fake.Register("1001", "1001", uriThief, map[string]string{"user_agent": "friendly-scanner"}, true)
		testutil.Eventually(t, waitLimit, "second alert", func() bool { return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 2 })
		if blocks, _ := h.db.Blocks(ctx, tollguard.BlockExtension, "1001", time.Time{}); len(blocks) != 1 {
			t.Errorf("blocked again: %d rows", len(blocks))
		}
		testutil.Eventually(t, waitLimit, "contact removed again", func() bool { _, still := h.fake.Object("contact", thief); return !still })
	})

	t.Run("DeleteRefused", func(t *testing.T) {
		h := newHarness(t)
		setCIDRs(t, h.db, "1001", "192.0.2.0/24")
		h.start()
		// Asterisk refuses to delete contacts (no writable contact wizard).
		h.fake.Fault(http.MethodDelete, "/asterisk/config/dynamic/res_pjsip/contact/", http.StatusForbidden, "Could not delete object", 0)
		thief := h.fake.Register("1001", "1001", uriThief, map[string]string{"user_agent": "friendly-scanner"}, true)
		testutil.Eventually(t, waitLimit, "alert", func() bool { return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1 })
		a := h.alerts.kind(tollguard.AlertCredentialsCompromised)[0]
		if !strings.Contains(a.Message, "REFUSED") || !strings.Contains(a.Message, "contact=astdb,registrar") {
			t.Errorf("message does not say what to configure: %q", a.Message)
		}
		if !strings.Contains(a.Evidence, `"contact_removed":false`) {
			t.Errorf("evidence %s", a.Evidence)
		}
		if _, still := h.fake.Object("contact", thief); !still {
			t.Error("contact gone although the DELETE was refused")
		}
		ext, _ := h.db.Extension(ctx, "1001")
		if !ext.Blocked {
			t.Error("extension not blocked when the DELETE was refused")
		}
	})

	t.Run("PrivateAddressWithoutRewriteOnlyWarns", func(t *testing.T) {
		h := newHarness(t)
		setCIDRs(t, h.db, "1001", "192.0.2.0/24")
		h.start()
		h.fake.Register("1001", "1001", "sip:1001@192.168.1.20:5060", map[string]string{"user_agent": "Yealink"}, true)
		testutil.Eventually(t, waitLimit, "warning", func() bool { return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1 })
		if a := h.alerts.kind(tollguard.AlertCredentialsCompromised)[0]; a.Severity != tollguard.SeverityWarning || !strings.Contains(a.Message, "rewrite_contact=yes") {
			t.Errorf("alert %+v", a)
		}
		if ext, _ := h.db.Extension(ctx, "1001"); ext.Blocked {
			t.Error("blocked on an address tollguard cannot verify")
		}
		if r := h.fake.RequestsMatching(http.MethodDelete, ""); len(r) != 0 {
			t.Errorf("deleted something: %+v", r)
		}
	})
}

// TestFirstResyncTwoPhones: on a first start, an extension with a desk
// phone and a softphone registered is not alerted for a "new" address
// or phone: both are its first registrations.
func TestFirstResyncTwoPhones(t *testing.T) {
	h := newHarness(t)
	h.fake.Register("1001", "1001", "sip:1001@127.0.0.1:5070;transport=udp", map[string]string{"user_agent": "Yealink T46U"}, false)
	h.fake.Register("1001", "1001", "sip:1001@127.0.0.1:5071;transport=udp", map[string]string{"user_agent": "Zoiper"}, false)
	h.start()
	testutil.Eventually(t, waitLimit, "both contacts", func() bool {
		cs, err := h.db.Contacts(context.Background(), store.ContactFilter{})
		return err == nil && len(cs) == 2
	})
	if f := h.hooks.snapshot().findings; len(f) != 0 {
		t.Errorf("findings on a first start: %+v", f)
	}
	// A third phone later is new.
	h.fake.Register("1001", "1001", "sip:1001@127.0.0.1:5072;transport=udp", map[string]string{"user_agent": "Grandstream"}, true)
	testutil.Eventually(t, waitLimit, "new phone alert", func() bool { return len(h.alerts.kind(tollguard.AlertNewUserAgent)) == 1 })
}

// TestRegistrationRewriteContact: with rewrite_contact=yes, Asterisk
// adds x-ast-orig-host only when it changed the host, so a contact that
// already carried its source address has none. It is still the source:
// a private address outside the access list (another LAN, a VPN) locks
// down, as a public one does.
func TestRegistrationRewriteContact(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	setCIDRs(t, h.db, "1001", "10.1.0.0/24")
	setRewriteContact(t, h)
	h.start()
	h.fake.Register("1001", "1001", "sip:1001@10.1.0.7:5060", map[string]string{"user_agent": "Yealink"}, true)
	testutil.Eventually(t, waitLimit, "office contact", func() bool {
		c, ok := h.contact(tollguard.ContactID("1001", "sip:1001@10.1.0.7:5060"))
		return ok && c.Live && c.AddrSource == tollguard.AddrRewritten
	})
	h.fake.Register("1001", "1001", "sip:1001@10.2.0.9:5060", map[string]string{"user_agent": "Yealink"}, true)
	testutil.Eventually(t, waitLimit, "lockdown", func() bool { return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1 })
	if a := h.alerts.kind(tollguard.AlertCredentialsCompromised)[0]; a.Severity != tollguard.SeverityCritical || !strings.Contains(a.Message, "10.2.0.9") {
		t.Errorf("alert %+v", a)
	}
	if ext, _ := h.db.Extension(ctx, "1001"); !ext.Blocked {
		t.Error("extension not blocked")
	}
	if strings.Contains(h.logs.String(), "set rewrite_contact=yes") {
		t.Errorf("told to set what is set:\n%s", h.logs.String())
	}
}

// TestResyncAfterOutage: while the listener is away, an attacker
// registers from outside the access list, a known phone moves to a new
// address and another unregisters; the resync after reconnecting judges
// all of it as if seen live.
func TestResyncAfterOutage(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	setCIDRs(t, h.db, "1001", "192.0.2.0/24")
	h.start()
	h.fake.Register("1001", "1001", uriOffice, map[string]string{"user_agent": "Yealink"}, true)
	h.fake.Register("1002", "1002", "sip:1002@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062", map[string]string{"user_agent": "Snom"}, true)
	officeID := tollguard.ContactID("1001", uriOffice)
	testutil.Eventually(t, waitLimit, "both phones recorded", func() bool {
		live, _ := h.db.LiveContacts(ctx)
		return len(live) == 2
	})

	h.fake.Stop()
	testutil.Eventually(t, waitLimit, "listener notices", func() bool { return !h.l.State().Connected })
	// While away: no events reach anyone.
	thief := h.fake.Register("1001", "1001", uriThief, map[string]string{"user_agent": "friendly-scanner"}, false)
	h.fake.Unregister("1002", "1002", "sip:1002@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062", false)
	moved := h.fake.Register("1002", "1002", "sip:1002@198.51.100.99:5062;x-ast-orig-host=10.0.0.2:5062", map[string]string{"user_agent": "Snom"}, false)
	if err := h.fake.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitConnected(2)
	h.waitResyncs(2)

	testutil.Eventually(t, waitLimit, "lockdown from the resync", func() bool { return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1 })
	if _, still := h.fake.Object("contact", thief); still {
		t.Error("attacker's contact not removed after the resync")
	}
	if ext, _ := h.db.Extension(ctx, "1001"); !ext.Blocked {
		t.Error("extension 1001 not blocked after the resync")
	}
	if a := h.alerts.kind(tollguard.AlertNewIP); len(a) != 1 || a[0].Extension != "1002" || !strings.Contains(a[0].Message, "198.51.100.99") {
		t.Errorf("new_ip alerts: %+v", a)
	}
	old, _ := h.contact(tollguard.ContactID("1002", "sip:1002@198.51.100.20:5062;x-ast-orig-host=10.0.0.2:5062"))
	if old.Live {
		t.Error("contact that unregistered during the outage still live")
	}
	if c, _ := h.contact(moved); !c.Live {
		t.Error("contact registered during the outage not recorded")
	}
	if c, _ := h.contact(officeID); !c.Live || c.Count != 1 {
		t.Errorf("office contact after resync: %+v (count must not grow on a resync)", c)
	}
	st := h.l.State()
	if st.Reconnects < 1 || !st.Connected || st.LastError == "" || st.ResyncContacts != 3 {
		t.Errorf("state %+v", st)
	}
	// The resync listed endpoints and read each AOR's contacts.
	if r := h.fake.RequestsMatching(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/aor/1001"); len(r) < 2 {
		t.Errorf("AOR reads: %d", len(r))
	}
}

func TestResyncFailsSafe(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t).start()
	h.fake.Register("1001", "1001", uriOffice, map[string]string{"user_agent": "Yealink"}, true)
	id := tollguard.ContactID("1001", uriOffice)
	testutil.Eventually(t, waitLimit, "contact", func() bool { c, _ := h.contact(id); return c.Live })
	// AOR reads fail during the next resync: nothing may be marked gone
	// on a partial view.
	h.fake.Fault(http.MethodGet, "/asterisk/config/dynamic/res_pjsip/aor/", http.StatusInternalServerError, "boom", 1)
	h.fake.Drop()
	h.waitConnected(2)
	testutil.Eventually(t, waitLimit, "failed resync", func() bool { return h.l.State().LastResyncErr != "" || h.hooks.snapshot().resyncs >= 3 })
	if c, _ := h.contact(id); !c.Live {
		t.Error("a failed resync marked a live contact gone")
	}
	// It retries while connected, and then succeeds.
	testutil.Eventually(t, waitLimit, "resync retried", func() bool { s := h.l.State(); return s.LastResyncErr == "" && h.hooks.snapshot().resyncs >= 3 })
	live, _ := h.db.LiveContacts(ctx)
	if len(live) != 1 {
		t.Errorf("live contacts %d", len(live))
	}
	_ = store.ContactFilter{}
}

func TestPermanentContactIsNotARegistration(t *testing.T) {
	h := newHarness(t).start()
	// A trunk's AOR with contact=sip:trunk.example.net in pjsip.conf,
	// qualified: Asterisk reports its status, but there is no contact
	// object to read.
	uri := "sip:trunk.example.net:5060"
	h.fake.SetObject("aor", "trunk", []tollguard.ConfigField{{Attribute: "contact", Value: uri}, {Attribute: "max_contacts", Value: "0"}}, false)
	h.push(mustJSON(t, aritestContactEvent("trunk", "trunk", uri, tollguard.ContactReachable)))
	// And a registration that vanished before it could be read is still
	// judged from its URI.
	gone := "sip:1002@198.51.100.9:5060;x-ast-orig-host=10.0.0.9:5060"
	h.push(mustJSON(t, aritestContactEvent("1002", "1002", gone, tollguard.ContactNonQualified)))
	testutil.Eventually(t, waitLimit, "the vanished registration", func() bool {
		c, ok := h.contact(tollguard.ContactID("1002", gone))
		return ok && c.IP == "198.51.100.9"
	})
	if _, ok := h.contact(tollguard.ContactID("trunk", uri)); ok {
		t.Error("a permanent contact was recorded as a registration")
	}
}

// setRewriteContact gives the recorded endpoint 1001 rewrite_contact=yes.
func setRewriteContact(t *testing.T, h *harness) {
	t.Helper()
	ep, ok := h.fake.Object("endpoint", "1001")
	if !ok {
		t.Fatal("no recorded endpoint 1001")
	}
	fields := slices.Clone(ep)
	for i := range fields {
		if fields[i].Attribute == "rewrite_contact" {
			fields[i].Value = "true"
		}
	}
	h.fake.SetObject("endpoint", "1001", fields, false)
}

// TestRegistrationQuotedParamCannotHideSource: pjproject keeps a quoted
// URI parameter value as it came (pjsip_param_print_on copies a value
// starting with '"' unescaped), so a phone can put "@" and ";" in its
// Contact after the host Asterisk rewrote to the packet's source. The
// source is still the host after the user part's "@", not whatever
// follows an "@" inside the quotes.
func TestRegistrationQuotedParamCannotHideSource(t *testing.T) {
	for _, uri := range []string{
		// The attacker wrote its own address: Asterisk leaves the host, adds no x-ast-orig-host.
		`sip:1001@203.0.113.66:5060;x="@192.0.2.10;"`,
		// It wrote another: Asterisk rewrites the host and appends x-ast-orig-host.
		`sip:1001@203.0.113.66:5060;x="@192.0.2.10;";x-ast-orig-host=192.0.2.10:5060`,
	} {
		t.Run("", func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t)
			setCIDRs(t, h.db, "1001", "192.0.2.0/24")
			setRewriteContact(t, h)
			h.start()
			thief := h.fake.Register("1001", "1001", uri, map[string]string{"user_agent": "Yealink SIP-T46U 108.86.0.45"}, true)
			testutil.Eventually(t, waitLimit, "contact recorded", func() bool { c, ok := h.contact(thief); return ok && c.IP != "" })
			if c, _ := h.contact(thief); c.IP != "203.0.113.66" {
				t.Errorf("contact %s judged from %s (%s), want the packet's source 203.0.113.66", uri, c.IP, c.AddrSource)
			}
			testutil.Eventually(t, waitLimit, "lockdown", func() bool { return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1 })
			if ext, _ := h.db.Extension(ctx, "1001"); !ext.Blocked {
				t.Error("extension not blocked")
			}
			if _, still := h.fake.Object("contact", thief); still {
				t.Error("attacker's contact still in Asterisk")
			}
		})
	}
}

// flakyStore fails the next ObserveContact calls, as a busy or full
// database would.
type flakyStore struct {
	Store
	fail atomic.Int32
}

func (s *flakyStore) ObserveContact(ctx context.Context, c tollguard.Contact) (tollguard.ContactHistory, error) {
	if s.fail.Add(-1) >= 0 {
		return tollguard.ContactHistory{}, errors.New("database is locked")
	}
	return s.Store.ObserveContact(ctx, c)
}

// TestRegistrationStoreErrorIsRetried: a registration from outside the
// access list that could not be recorded is not forgotten: the listener
// reads the contacts again (a resynchronisation) and locks it down then,
// instead of leaving the attacker registered until the next reconnect.
func TestRegistrationStoreErrorIsRetried(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	setCIDRs(t, h.db, "1001", "192.0.2.0/24")
	fs := &flakyStore{Store: h.db}
	h.l.Store = fs
	h.start()
	fs.fail.Store(1)
	thief := h.fake.Register("1001", "1001", uriThief, map[string]string{"user_agent": "friendly-scanner"}, true)
	testutil.Eventually(t, waitLimit, "lockdown after the store recovered", func() bool {
		return len(h.alerts.kind(tollguard.AlertCredentialsCompromised)) == 1
	})
	if ext, _ := h.db.Extension(ctx, "1001"); !ext.Blocked {
		t.Error("extension not blocked")
	}
	if _, still := h.fake.Object("contact", thief); still {
		t.Error("attacker's contact still in Asterisk")
	}
}

// TestResyncSkipsTheEmptyContact: Asterisk lists an AOR without
// registrations with one empty contact attribute (the recorded create of
// aor 1009). That is no contact: the resync must not look one up by the
// id of an empty URI for every unregistered AOR, each time it runs.
func TestResyncSkipsTheEmptyContact(t *testing.T) {
	h := newHarness(t)
	id := h.fake.Register("1001", "1001", uriSIPp, map[string]string{"user_agent": uaSIPp}, false)
	h.start()
	testutil.Eventually(t, waitLimit, "the registered contact", func() bool { _, ok := h.contact(id); return ok })
	const prefix = "/asterisk/config/dynamic/res_pjsip/contact/"
	var asked []string
	for _, r := range h.fake.RequestsMatching(http.MethodGet, prefix) {
		asked = append(asked, strings.TrimPrefix(r.Path, prefix))
	}
	if !slices.Equal(asked, []string{id}) {
		t.Errorf("contact objects asked for %q, want only %q (1002 and 1003 have none)", asked, id)
	}
}
