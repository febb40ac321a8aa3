package tollguard_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

func TestContactID(t *testing.T) {
	// From ari-rest-config-contact-1001-encoded.json.
	got := tollguard.ContactID("1001", "sip:1001@127.0.0.1:5070;transport=udp")
	if want := "1001;@bd5f0da85355b09bd94b726d5867ad6b"; got != want {
		t.Fatalf("ContactID = %q, want %q", got, want)
	}
}

// TestContactPresent: Asterisk builds before the NonQualified label
// (2018's pjsip_options.c) report a new contact as "Created", which the
// listener ignored as "contact status not tracked": a registration on
// such an Asterisk went unjudged (no new_ip alert) until a resync.
func TestContactPresent(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{tollguard.ContactNonQualified, true},
		{tollguard.ContactCreated, true},
		{tollguard.ContactReachable, true},
		{tollguard.ContactUnreachable, false}, // a qualify result, still registered
		{tollguard.ContactUnknown, false},
		{tollguard.ContactRemoved, false},
		{"", false},
		{"created", false}, // Asterisk's labels are exact
	} {
		if got := tollguard.ContactPresent(tc.status); got != tc.want {
			t.Errorf("ContactPresent(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestParseContactURI(t *testing.T) {
	tests := []struct {
		uri        string
		host, orig string
		port       int
	}{
		{"sip:1001@127.0.0.1:5070;transport=udp", "127.0.0.1", "", 5070},
		{"sip:1001@203.0.113.9:5060;x-ast-orig-host=192.168.1.20:5060", "203.0.113.9", "192.168.1.20:5060", 5060},
		{"sips:1001@[2001:db8::1]:5061;transport=tls", "2001:db8::1", "", 5061},
		{"<sip:1001@198.51.100.7>", "198.51.100.7", "", 0},
		{"sip:h69l6fnp@50.48.58.53:57544;transport=ws;x-ast-orig-host=cl36esmuukr8.invalid:0", "50.48.58.53", "cl36esmuukr8.invalid:0", 57544},
		{"sip:abc@phone.invalid;transport=ws", "phone.invalid", "", 0},
		{"sip:1001@192.0.2.50:5060;X-AST-ORIG-HOST=10.0.0.5:5060", "192.0.2.50", "", 5060}, // the phone's, which Asterisk does not strip
		{"", "", "", 0},
		// ";" and "?" are legal in the user part: the host follows the "@".
		{"sip:1001;x=1@203.0.113.66:5060;x-ast-orig-host=10.9.9.9:5060", "203.0.113.66", "10.9.9.9:5060", 5060},
		{"sip:1001?a=b@203.0.113.66:5060", "203.0.113.66", "", 5060},
		// A parameter in the user part is the phone's, not Asterisk's.
		{"sip:1001;x-ast-orig-host=10.0.0.5:5060@203.0.113.66:5060", "203.0.113.66", "", 5060},
		{"sip:203.0.113.9:5060;transport=udp", "203.0.113.9", "", 5060},
		// pjproject prints a quoted parameter value as it came: its "@",
		// ";" and "?" are the value's, not the URI's.
		{`sip:1001@203.0.113.66:5060;x="@192.0.2.10;"`, "203.0.113.66", "", 5060},
		{`sip:1001@203.0.113.66:5060;x="@192.0.2.10;";x-ast-orig-host=192.0.2.10:5060`, "203.0.113.66", "192.0.2.10:5060", 5060},
		{`sip:203.0.113.66:5060;x="a@192.0.2.10"`, "203.0.113.66", "", 5060},
		{`sip:1001@192.0.2.10:5060;x=";x-ast-orig-host=10.0.0.5:5060"`, "192.0.2.10", "", 5060},
		{`sip:1001@192.0.2.10:5060;x="\";x-ast-orig-host=10.0.0.5:5060"`, "192.0.2.10", "", 5060},
	}
	for _, tt := range tests {
		host, port, orig := tollguard.ParseContactURI(tt.uri)
		if host != tt.host || port != tt.port || orig != tt.orig {
			t.Errorf("ParseContactURI(%q) = %q %d %q, want %q %d %q", tt.uri, host, port, orig, tt.host, tt.port, tt.orig)
		}
	}
}

func contactObject(uri, ua, via string) tollguard.ConfigObject {
	return tollguard.ConfigObject{
		{Attribute: "via_addr", Value: via}, {Attribute: "via_port", Value: "5070"},
		{Attribute: "endpoint", Value: "1001"}, {Attribute: "uri", Value: uri},
		{Attribute: "user_agent", Value: ua}, {Attribute: "expiration_time", Value: "1795395605"},
		{Attribute: "call_id", Value: "1-15064@127.0.0.1"},
	}
}

func TestContactFromObject(t *testing.T) {
	t.Run("Rewritten", func(t *testing.T) {
		c, warn := tollguard.ContactFromObject("1001", "", contactObject("sip:1001@203.0.113.9:40000;x-ast-orig-host=10.0.0.5:5060", "Yealink", "10.0.0.5"))
		if warn != "" || c.IP != "203.0.113.9" || c.Port != 40000 || c.AddrSource != tollguard.AddrRewritten || c.Extension != "1001" || c.UserAgent != "Yealink" {
			t.Fatalf("%+v warn %q", c, warn)
		}
		if c.ID != tollguard.ContactID("1001", c.URI) || c.Expires.Unix() != 1795395605 {
			t.Errorf("id %q expires %v", c.ID, c.Expires)
		}
	})
	t.Run("NotRewritten", func(t *testing.T) {
		c, warn := tollguard.ContactFromObject("1001", "", contactObject("sip:1001@127.0.0.1:5070;transport=udp", "SIPp", "127.0.0.1"))
		if c.IP != "127.0.0.1" || c.AddrSource != tollguard.AddrContact || !strings.Contains(warn, "rewrite_contact=yes") {
			t.Fatalf("%+v warn %q", c, warn)
		}
	})
	t.Run("ViaFallback", func(t *testing.T) {
		c, warn := tollguard.ContactFromObject("1001", "", contactObject("sip:abc@x.invalid;transport=ws", "JsSIP", "198.51.100.4"))
		if c.IP != "198.51.100.4" || c.Port != 5070 || c.AddrSource != tollguard.AddrVia || !strings.Contains(warn, "not trustworthy") {
			t.Fatalf("%+v warn %q", c, warn)
		}
		// rewrite_contact=yes vouches for an IP host in the URI, not for Via.
		if w := c.HostIsSource(warn); w != warn || c.AddrSource != tollguard.AddrVia {
			t.Errorf("HostIsSource on a Via address: %+v warn %q", c, w)
		}
	})
	t.Run("NoUserAgent", func(t *testing.T) {
		// The object was read: no User-Agent header is "(none)", a phone
		// like any other; a user part with ";" still finds the host.
		c, _ := tollguard.ContactFromObject("1001", "", contactObject("sip:1001;x=1@203.0.113.66:5060;x-ast-orig-host=10.9.9.9:5060", "", "192.0.2.10"))
		if c.UserAgent != tollguard.NoUserAgent || c.IP != "203.0.113.66" || c.AddrSource != tollguard.AddrRewritten {
			t.Fatalf("%+v", c)
		}
		// Known by its URI only: unknown, not none.
		if c, _ := tollguard.ContactFromURI("1001", "", "sip:1001@203.0.113.66:5060"); c.UserAgent != "" {
			t.Errorf("from the URI: user agent %q", c.UserAgent)
		}
	})
	t.Run("RewriteOnHostAlreadySource", func(t *testing.T) {
		// rewrite_contact=yes but the host was already the source: no
		// x-ast-orig-host, and the address is still the real one.
		c, warn := tollguard.ContactFromObject("1001", "", contactObject("sip:1001@10.2.0.9:5060", "Yealink", "10.2.0.9"))
		if warn = c.HostIsSource(warn); warn != "" || c.AddrSource != tollguard.AddrRewritten || c.IP != "10.2.0.9" {
			t.Fatalf("%+v warn %q", c, warn)
		}
	})
}

func regExt(cidrs ...string) *tollguard.Extension {
	e := &tollguard.Extension{Name: "1001", Account: "acme"}
	for _, c := range cidrs {
		e.CIDRs = append(e.CIDRs, netip.MustParsePrefix(c))
	}
	return e
}

func regContact(ip, src, ua string) tollguard.Contact {
	return tollguard.Contact{ID: "1001;@x", AOR: "1001", Extension: "1001", URI: "sip:1001@" + ip, IP: ip, AddrSource: src, UserAgent: ua}
}

func kinds(fs []tollguard.Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Kind+"/"+string(f.Severity))
	}
	return strings.Join(s, ",")
}

func TestJudgeContact(t *testing.T) {
	acct := func(mode string) *tollguard.Account { return &tollguard.Account{ID: "acme", AlertMode: mode} }
	seen := tollguard.ContactHistory{Registered: true, IPs: []string{"192.0.2.10"}, Agents: []string{"Yealink T46U"}}
	tests := []struct {
		name     string
		ext      *tollguard.Extension
		acct     *tollguard.Account
		hist     tollguard.ContactHistory
		c        tollguard.Contact
		lockdown bool
		kinds    string
	}{
		{"FirstRegistrationIsNotNew", regExt(), acct(""), tollguard.ContactHistory{}, regContact("198.51.100.1", tollguard.AddrRewritten, "Yealink"), false, ""},
		{"KnownIPAndAgent", regExt(), acct(""), seen, regContact("192.0.2.10", tollguard.AddrRewritten, "Yealink T46U"), false, ""},
		{"NewIP", regExt(), acct(""), seen, regContact("198.51.100.1", tollguard.AddrRewritten, "Yealink T46U"), false, "new_ip/warning"},
		{"NewAgent", regExt(), acct(tollguard.AlertModeIPOrAgent), seen, regContact("192.0.2.10", tollguard.AddrRewritten, "Zoiper"), false, "new_user_agent/warning"},
		{"NewBoth", regExt(), nil, seen, regContact("198.51.100.1", tollguard.AddrRewritten, "Zoiper"), false, "new_ip/warning,new_user_agent/warning"},
		{"AgentModeIgnoresIP", regExt(), acct(tollguard.AlertModeAgent), seen, regContact("198.51.100.1", tollguard.AddrRewritten, "Yealink T46U"), false, ""},
		{"AgentModeNewAgent", regExt(), acct(tollguard.AlertModeAgent), seen, regContact("198.51.100.1", tollguard.AddrRewritten, "Zoiper"), false, "new_user_agent/warning"},
		{"NoneMode", regExt(), acct(tollguard.AlertModeNone), seen, regContact("198.51.100.1", tollguard.AddrRewritten, "Zoiper"), false, ""},
		// A REGISTER without a User-Agent header is a new phone too, once
		// the extension's phones are known to send one.
		{"NoUserAgentIsNew", regExt(), acct(tollguard.AlertModeAgent), seen, regContact("198.51.100.1", tollguard.AddrRewritten, tollguard.NoUserAgent), false, "new_user_agent/warning"},
		{"NoUserAgentNeverSent", regExt(), acct(tollguard.AlertModeAgent), tollguard.ContactHistory{Registered: true, IPs: []string{"192.0.2.10"}},
			regContact("192.0.2.10", tollguard.AddrRewritten, tollguard.NoUserAgent), false, ""},
		{"UserAgentUnknown", regExt(), acct(tollguard.AlertModeAgent), seen, regContact("192.0.2.10", tollguard.AddrRewritten, ""), false, ""},
		{"InsideACL", regExt("192.0.2.0/24"), acct(""), seen, regContact("192.0.2.10", tollguard.AddrRewritten, "Yealink T46U"), false, ""},
		{"OutsideACLLocksDown", regExt("192.0.2.0/24"), acct(""), seen, regContact("203.0.113.66", tollguard.AddrRewritten, "friendly-scanner"), true, "credentials_compromised/critical"},
		{"OutsideACLFirstRegistrationLocksDown", regExt("192.0.2.0/24"), acct(tollguard.AlertModeNone), tollguard.ContactHistory{}, regContact("203.0.113.66", tollguard.AddrRewritten, ""), true, "credentials_compromised/critical"},
		{"UntrustedPublicOutsideACLLocksDown", regExt("192.0.2.0/24"), acct(""), seen, regContact("203.0.113.66", tollguard.AddrContact, "Yealink T46U"), true, "credentials_compromised/critical"},
		{"UntrustedPrivateOnlyWarns", regExt("192.0.2.0/24"), acct(""), seen, regContact("192.168.1.20", tollguard.AddrContact, "Yealink T46U"), false, "credentials_compromised/warning,new_ip/warning"},
		{"NoAddressWarns", regExt("192.0.2.0/24"), acct(""), tollguard.ContactHistory{}, regContact("", "", "Yealink"), false, "credentials_compromised/warning"},
		{"UnmanagedEndpoint", nil, nil, seen, regContact("198.51.100.1", tollguard.AddrRewritten, "Yealink T46U"), false, "new_ip/warning"},
		// No news: a new address inside the extension's own networks
		// (DHCP), or an IPv6 privacy address in a known /64.
		{"NewIPInsideACL", regExt("192.0.2.0/24"), acct(""), seen, regContact("192.0.2.11", tollguard.AddrRewritten, "Yealink T46U"), false, ""},
		{"NewIPv6InKnown64", regExt(), acct(""), tollguard.ContactHistory{Registered: true, IPs: []string{"2001:db8:1:2::10"}, Agents: []string{"Yealink T46U"}},
			regContact("2001:db8:1:2:a1b2:c3d4:e5f6:1", tollguard.AddrRewritten, "Yealink T46U"), false, ""},
		{"NewIPv6OutsideKnown64", regExt(), acct(""), tollguard.ContactHistory{Registered: true, IPs: []string{"2001:db8:1:2::10"}, Agents: []string{"Yealink T46U"}},
			regContact("2001:db8:1:3::1", tollguard.AddrRewritten, "Yealink T46U"), false, "new_ip/warning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tollguard.JudgeContact(tt.ext, tt.acct, tt.hist, tt.c, detT0)
			if v.Lockdown != tt.lockdown || kinds(v.Findings) != tt.kinds {
				t.Fatalf("lockdown %v findings %q, want %v %q", v.Lockdown, kinds(v.Findings), tt.lockdown, tt.kinds)
			}
			for _, f := range v.Findings {
				if f.Subject != "ext:1001" || f.At != detT0 || f.Message == "" {
					t.Errorf("finding %+v", f)
				}
				if f.Kind == tollguard.AlertCredentialsCompromised && f.Severity == tollguard.SeverityCritical {
					if f.Action != tollguard.ActionBlockExtension || f.Source != tollguard.SourceRegistrationACL || !strings.Contains(f.Message, "unblock") {
						t.Errorf("lockdown finding %+v", f)
					}
				}
			}
		})
	}
}

// TestJudgeContactQuotesTheAgent: the user agent is the phone's to
// write; the new_ip message quotes it, as new_user_agent does, so one
// with a ")" or a line break cannot pass for tollguard's own words.
func TestJudgeContactQuotesTheAgent(t *testing.T) {
	seen := tollguard.ContactHistory{Registered: true, IPs: []string{"192.0.2.10"}, Agents: []string{"x"}}
	v := tollguard.JudgeContact(regExt(), &tollguard.Account{ID: "acme"}, seen, regContact("198.51.100.1", tollguard.AddrRewritten, "x); all is well\nok"), detT0)
	for _, f := range v.Findings {
		if f.Kind == tollguard.AlertNewIP && strings.Contains(f.Message, `("x); all is well\nok")`) {
			return
		}
	}
	t.Errorf("no new_ip finding quoting the agent: %+v", v.Findings)
}

type recAlerter struct{ alerts []tollguard.Alert }

func (r *recAlerter) Raise(ctx context.Context, a tollguard.Alert) error {
	r.alerts = append(r.alerts, a)
	return nil
}

type recBlocker struct {
	blocks []tollguard.Block
	err    error
}

func (r *recBlocker) Block(ctx context.Context, b tollguard.Block) (tollguard.Block, error) {
	if r.err != nil {
		return b, r.err
	}
	r.blocks = append(r.blocks, b)
	return b, nil
}

func TestResponder(t *testing.T) {
	ctx := context.Background()
	f := tollguard.Finding{Source: "detector:sweep", Kind: tollguard.AlertSweep, Severity: tollguard.SeverityCritical,
		Action: tollguard.ActionBlockExtension, At: detT0, Account: "acme", Extension: "1001", Subject: "ext:1001",
		Message: "sweep", Evidence: map[string]any{"numbers": []string{"1", "2"}}}
	t.Run("BlocksThenAlerts", func(t *testing.T) {
		al, bl := &recAlerter{}, &recBlocker{}
		r := &tollguard.Responder{Alerter: al, Blocker: bl}
		if err := r.Act(ctx, f); err != nil {
			t.Fatal(err)
		}
		if len(bl.blocks) != 1 || len(al.alerts) != 1 {
			t.Fatalf("blocks %v alerts %v", bl.blocks, al.alerts)
		}
		b := bl.blocks[0]
		if b.Kind != tollguard.BlockExtension || b.Subject != "1001" || b.SetBy != "detector:sweep" || b.Reason != "sweep" || !strings.Contains(b.Evidence, `"numbers":["1","2"]`) || !b.SetAt.Equal(detT0) {
			t.Errorf("block %+v", b)
		}
		a := al.alerts[0]
		if a.Kind != tollguard.AlertSweep || a.Subject != "ext:1001" || a.Count != 1 || !strings.Contains(a.Evidence, `"source":"detector:sweep"`) {
			t.Errorf("alert %+v", a)
		}
	})
	t.Run("IntlBlockOnAccount", func(t *testing.T) {
		al, bl := &recAlerter{}, &recBlocker{}
		g := f
		g.Action = tollguard.ActionIntlBlock
		if err := (&tollguard.Responder{Alerter: al, Blocker: bl}).Act(ctx, g); err != nil {
			t.Fatal(err)
		}
		if len(bl.blocks) != 1 || bl.blocks[0].Kind != tollguard.BlockIntl || bl.blocks[0].Subject != "acme" {
			t.Fatalf("blocks %+v", bl.blocks)
		}
	})
	t.Run("FailedBlockStillAlerts", func(t *testing.T) {
		al, bl := &recAlerter{}, &recBlocker{err: errors.New("disk full")}
		if err := (&tollguard.Responder{Alerter: al, Blocker: bl}).Act(ctx, f); err != nil {
			t.Fatal(err)
		}
		if len(al.alerts) != 1 || !strings.Contains(al.alerts[0].Message, "could NOT be set: disk full") {
			t.Fatalf("alerts %+v", al.alerts)
		}
	})
	t.Run("AlertOnlyNeverBlocks", func(t *testing.T) {
		al, bl := &recAlerter{}, &recBlocker{}
		g := f
		g.Action = tollguard.ActionAlert
		if err := (&tollguard.Responder{Alerter: al, Blocker: bl}).Act(ctx, g); err != nil {
			t.Fatal(err)
		}
		if len(bl.blocks) != 0 || len(al.alerts) != 1 {
			t.Fatalf("blocks %v alerts %v", bl.blocks, al.alerts)
		}
	})
}
