package tollguard

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Contact statuses as ARI's ContactStatusChange reports them. NonQualified
// and Reachable mean the contact is registered; Removed means it is gone
// (unregistered or expired: the two look the same); Unreachable and
// Unknown are qualify results on a contact that is still registered.
// Every REGISTER refreshing a contact sends its current status again
// (pjsip_options.c sip_options_contact_update_task), any of these but
// Removed, with no user agent: read the contact object for that.
// Created is NonQualified's label in Asterisk builds before it was
// renamed (the 2018 pjsip_options.c): a new contact, so registered too.
const (
	ContactNonQualified = "NonQualified"
	ContactCreated      = "Created"
	ContactReachable    = "Reachable"
	ContactUnreachable  = "Unreachable"
	ContactUnknown      = "Unknown"
	ContactRemoved      = "Removed"
)

// Where a contact's address came from, most trustworthy first.
const (
	// AddrRewritten: the contact URI's host is the packet's source.
	// With rewrite_contact=yes Asterisk rewrites a host that differs
	// and keeps the phone's own in x-ast-orig-host; a host that already
	// was the source is left as it is, without the parameter
	// (Contact.HostIsSource). This is the real source address.
	AddrRewritten = "rewritten"
	// AddrContact: the host the phone wrote in its Contact header
	// (rewrite_contact=no). Behind NAT it is a private address; a liar
	// can write anything.
	AddrContact = "contact"
	// AddrVia: the host in the Via header, also written by the phone.
	AddrVia = "via"
)

// Contact is one registration of an extension, as tollguard tracks it.
type Contact struct {
	ID         string // "<aor>;@<md5 hex of uri>", Asterisk's contact id
	AOR        string
	Extension  string // the PJSIP endpoint that registered it
	URI        string
	IP         string // the source address, "" if unknown
	Port       int
	AddrSource string // AddrRewritten, AddrContact or AddrVia
	UserAgent  string
	Status     string // the last ContactStatus seen
	ViaAddr    string
	CallID     string
	Expires    time.Time // Asterisk's expiration_time
	FirstSeen  time.Time
	LastSeen   time.Time
	Count      int // times tollguard saw it register (events and resyncs)
	Live       bool
	RemovedAt  time.Time
}

// NoUserAgent is the user agent of a contact whose REGISTER had no
// User-Agent header, as read from its contact object: an attacker who
// leaves it out is a new phone too. (A contact known only by its URI has
// an empty UserAgent: unknown, not none.)
const NoUserAgent = "(none)"

// MaxUserAgent bounds a stored user agent. Asterisk's registrar copies
// the whole User-Agent header (up to a 64 kB packet); kept whole, each
// re-registration with another one added that much to the database and
// to its alert.
const MaxUserAgent = 256

// boundAgent cuts ua to MaxUserAgent bytes on a rune boundary, marked.
func boundAgent(ua string) string {
	if len(ua) <= MaxUserAgent {
		return ua
	}
	ua = ua[:MaxUserAgent]
	for !utf8.ValidString(ua) {
		ua = ua[:len(ua)-1]
	}
	return ua + "…"
}

// showAgent quotes a user agent for an alert with every non-ASCII rune
// escaped: a thief's "Yеalink" with a Cyrillic е must not read as the
// known "Yealink".
func showAgent(ua string) string { return strconv.QuoteToASCII(ua) }

func showAgents(list []string) []string {
	out := make([]string, len(list))
	for i, ua := range list {
		out[i] = showAgent(ua)
	}
	return out
}

// ContactID returns Asterisk's sorcery id for a contact: the AOR, ";@",
// and the lower-case hex MD5 of the contact URI as stored.
func ContactID(aor, uri string) string {
	sum := md5.Sum([]byte(uri))
	return aor + ";@" + hex.EncodeToString(sum[:])
}

// ContactPresent reports whether a ContactStatusChange status means the
// contact is registered (NonQualified or its older label Created,
// Reachable), as opposed to gone (Removed) or a qualify result on a
// registered contact.
func ContactPresent(status string) bool {
	return status == ContactNonQualified || status == ContactCreated || status == ContactReachable
}

// ContactFromObject builds a Contact from the contact object that ARI's
// dynamic configuration returns (GET .../res_pjsip/contact/<id>). The
// address comes from the URI: when it carries x-ast-orig-host, Asterisk
// rewrote the host to the packet's source (rewrite_contact=yes), which
// is trustworthy; otherwise the host is what the phone wrote. A URI host
// that is not an IP address (a .invalid name from a WebRTC client)
// falls back to via_addr. warn says why the address cannot be trusted,
// for the log; it is "" for a rewritten URI.
func ContactFromObject(aor, endpoint string, obj ConfigObject) (c Contact, warn string) {
	c = Contact{
		AOR:       aor,
		Extension: endpoint,
		URI:       obj.Get("uri"),
		UserAgent: cmp.Or(boundAgent(obj.Get("user_agent")), NoUserAgent),
		ViaAddr:   obj.Get("via_addr"),
		CallID:    obj.Get("call_id"),
	}
	if ep := obj.Get("endpoint"); ep != "" {
		c.Extension = ep
	}
	if c.Extension == "" {
		c.Extension = aor
	}
	if n, err := strconv.ParseInt(obj.Get("expiration_time"), 10, 64); err == nil && n > 0 {
		c.Expires = time.Unix(n, 0).UTC()
	}
	if c.AOR != "" && c.URI != "" {
		c.ID = ContactID(c.AOR, c.URI)
	}
	viaPort, _ := strconv.Atoi(obj.Get("via_port"))
	warn = c.setAddress(c.ViaAddr, viaPort)
	return c, warn
}

// HostIsSource records that the endpoint has rewrite_contact=yes, so the
// contact URI's IP host is the packet's source even without the
// x-ast-orig-host parameter: Asterisk adds that only when it had to
// change the host (res_pjsip_nat). A phone, or an attacker, that writes
// its real address is then judged by it, private or not. It returns the
// address warning that still applies, "" when the address is trusted.
func (c *Contact) HostIsSource(warn string) string {
	if c.AddrSource == AddrContact {
		c.AddrSource = AddrRewritten
		return ""
	}
	return warn
}

// ContactFromURI builds a Contact from a ContactStatusChange alone, for
// when the contact object is already gone: no user agent, and no Via
// to fall back on.
func ContactFromURI(aor, endpoint, uri string) (c Contact, warn string) {
	c = Contact{AOR: aor, Extension: endpoint, URI: uri}
	if c.Extension == "" {
		c.Extension = aor
	}
	if aor != "" && uri != "" {
		c.ID = ContactID(aor, uri)
	}
	return c, c.setAddress("", 0)
}

func (c *Contact) setAddress(via string, viaPort int) string {
	host, port, orig := ParseContactURI(c.URI)
	if a, err := netip.ParseAddr(host); err == nil {
		c.IP, c.Port = a.Unmap().String(), port
		if orig != "" {
			c.AddrSource = AddrRewritten
			return ""
		}
		c.AddrSource = AddrContact
		return fmt.Sprintf("contact %s: the address %s is what the phone wrote in its Contact header, not the packet's source; set rewrite_contact=yes on the endpoint so Asterisk records the real source", c.ID, c.IP)
	}
	if a, err := netip.ParseAddr(via); err == nil {
		c.IP, c.Port, c.AddrSource = a.Unmap().String(), viaPort, AddrVia
		return fmt.Sprintf("contact %s: the contact URI host %q is not an IP address, so the address %s comes from the Via header, which the phone writes itself and is not trustworthy; set rewrite_contact=yes on the endpoint", c.ID, host, c.IP)
	}
	return fmt.Sprintf("contact %s: no IP address in the contact URI %q nor in Via; set rewrite_contact=yes on the endpoint", c.ID, c.URI)
}

// ParseContactURI returns the host and port of a SIP contact URI
// ("sip:1001@203.0.113.9:5060;transport=udp;x-ast-orig-host=10.0.0.5:5060")
// and the value of its x-ast-orig-host parameter, which Asterisk adds
// when rewrite_contact=yes rewrote the host. Asterisk strips x-ast-*
// parameters from incoming requests, so a phone cannot forge it.
func ParseContactURI(uri string) (host string, port int, origHost string) {
	s := strings.TrimSpace(uri)
	s = strings.TrimPrefix(strings.TrimSuffix(s, ">"), "<")
	if i := strings.IndexByte(s, ':'); i >= 0 {
		switch strings.ToLower(s[:i]) {
		case "sip", "sips":
			s = s[i+1:]
		}
	}
	// The user part may hold ";" and "?" (RFC 3261's user-unreserved):
	// "sip:1001;x=1@203.0.113.66" was read as host "1001", and the
	// address then came from the Via the phone writes. Asterisk prints
	// the URI with pjproject, which escapes "@" in the user part, and in
	// parameters and headers, so the first "@" ends it. Not the last: a
	// quoted parameter value is printed as the phone sent it, and
	// `sip:1001@203.0.113.66;x="@192.0.2.10;"` came from 203.0.113.66. An
	// "@" after a quote is the parameter's (and a URI without a user part
	// has none before it).
	if i := strings.IndexAny(s, "@\""); i >= 0 && s[i] == '@' {
		s = s[i+1:]
	}
	var params string
	if i := strings.IndexAny(s, ";?"); i >= 0 {
		s, params = s[:i], s[i:]
	}
	host = s
	if strings.HasPrefix(s, "[") {
		if j := strings.IndexByte(s, ']'); j > 0 {
			host = s[1:j]
			if rest := s[j+1:]; strings.HasPrefix(rest, ":") {
				port, _ = strconv.Atoi(rest[1:])
			}
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		host = s[:i]
		port, _ = strconv.Atoi(s[i+1:])
	}
	for _, p := range splitURIParams(params) {
		k, v, _ := strings.Cut(p, "=")
		// Exactly as Asterisk writes it: res_pjsip strips a phone's own
		// "x-ast-" parameters case-sensitively (remove_x_ast_params), so
		// an "X-AST-ORIG-HOST" is the phone's, not Asterisk's.
		if k == "x-ast-orig-host" {
			origHost = v
		}
	}
	return host, port, origHost
}

// splitURIParams splits a URI's ";" parameters and "?"/"&" headers.
// A separator inside a quoted value is part of the value: with
// `;x=";x-ast-orig-host=10.0.0.5"` the phone would otherwise forge the
// parameter Asterisk strips from what it sends.
func splitURIParams(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++ // a quoted-pair
		case !quoted && (c == ';' || c == '?' || c == '&'):
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// ContactHistory is what tollguard knew about an extension's
// registrations before a contact was observed.
type ContactHistory struct {
	// Registered reports whether the extension had registered before.
	Registered bool
	// Previous is the stored row of the same contact id, if any.
	Previous *Contact
	// IPs and Agents are the distinct addresses and user agents the
	// extension registered from before (bounded, newest first).
	IPs    []string
	Agents []string
}

func (h ContactHistory) knowsIP(ip string) bool { return contains(h.IPs, ip) }

// familiarIP reports whether a registration from ip is no news: an
// address registered from before, one inside the extension's own
// allowed networks (DHCP in the office), or an IPv6 address in the /64
// of a known one (privacy addresses rotate within the prefix).
func familiarIP(ext *Extension, h ContactHistory, ip string) bool {
	if h.knowsIP(ip) {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	if ext != nil && len(ext.CIDRs) > 0 && ext.AllowsFrom(addr) {
		return true
	}
	if addr.Is6() {
		p := netip.PrefixFrom(addr, 64).Masked()
		for _, k := range h.IPs {
			if ka, err := netip.ParseAddr(k); err == nil && p.Contains(ka.Unmap()) {
				return true
			}
		}
	}
	return false
}

func (h ContactHistory) knowsAgent(ua string) bool { return contains(h.Agents, ua) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// RegistrationStore keeps the registrations tollguard has seen. The
// SQLite store implements it.
type RegistrationStore interface {
	// ObserveContact records that c is registered (inserting it, or
	// updating its address, user agent, status and last-seen time and
	// counting it) and returns what was known before, in one
	// transaction.
	ObserveContact(ctx context.Context, c Contact) (ContactHistory, error)
	// ContactGone marks a contact as no longer registered; it reports
	// whether it was live.
	ContactGone(ctx context.Context, id string, at time.Time) (bool, error)
	// SetContactStatus records a qualify status on a live contact.
	SetContactStatus(ctx context.Context, id, status string, at time.Time) error
	// LiveContacts lists the contacts tollguard believes registered.
	LiveContacts(ctx context.Context) ([]Contact, error)
}

// Registration finding sources: what Block.SetBy says.
const (
	SourceRegistrationACL = "registration:acl"
	SourceRegistration    = "registration"
)

// RegistrationVerdict is what JudgeContact found about one contact.
type RegistrationVerdict struct {
	// Lockdown means the contact came from outside the extension's IP
	// access list: remove the contact and block the extension.
	Lockdown bool
	Findings []Finding
}

// JudgeContact judges a registered contact against the extension's IP
// access list and its registration history (design.md §2). ext and acct
// may be nil (an endpoint tollguard does not manage: no access list,
// alert mode ip_or_agent). at is the event's time.
//
//   - A contact from outside the access list means someone else knows the
//     password: credentials_compromised, critical, lockdown. An address
//     tollguard cannot trust (rewrite_contact=no) locks down only when it
//     is a public address; a private one outside the list may be the
//     phone's own LAN address behind NAT, so it only warns.
//   - The first registration of an extension is not new.
//   - Otherwise a new IP (alert mode ip_or_agent) or a new user agent
//     (ip_or_agent, agent) raises a warning; mode none raises neither.
func JudgeContact(ext *Extension, acct *Account, hist ContactHistory, c Contact, at time.Time) RegistrationVerdict {
	var v RegistrationVerdict
	name := c.Extension
	account := ""
	if ext != nil {
		name, account = ext.Name, ext.Account
	}
	evidence := map[string]any{
		"contact_id": c.ID, "uri": c.URI, "ip": c.IP, "port": c.Port, "address_source": c.AddrSource,
		"user_agent": c.UserAgent, "aor": c.AOR,
	}
	base := Finding{Source: SourceRegistration, At: at, Account: account, Extension: name, Subject: ExtSubject(name), Action: ActionAlert}

	if ext != nil && len(ext.CIDRs) > 0 {
		addr, err := netip.ParseAddr(c.IP)
		switch {
		case err != nil:
			f := base
			f.Kind, f.Severity = AlertCredentialsCompromised, SeverityWarning
			f.Message = fmt.Sprintf("extension %s registered (contact %s) but tollguard cannot tell from where, so its IP access list %s is not checked; set rewrite_contact=yes on the endpoint",
				name, c.URI, prefixesString(ext.CIDRs))
			f.Evidence = evidence
			v.Findings = append(v.Findings, f)
		case !ext.AllowsFrom(addr):
			evidence["allowed"] = prefixStrings(ext.CIDRs)
			if c.AddrSource == AddrRewritten || isPublic(addr) {
				f := base
				f.Source, f.Kind, f.Severity, f.Action = SourceRegistrationACL, AlertCredentialsCompromised, SeverityCritical, ActionBlockExtension
				f.Message = fmt.Sprintf("extension %s registered from %s, outside its allowed networks %s: someone else knows its SIP password. tollguard removes the contact and blocks the extension; change the password (`tollguard ext rotate-password %s`), check the phone, then `tollguard unblock %s`",
					name, addr, prefixesString(ext.CIDRs), name, name)
				f.Evidence = evidence
				v.Lockdown = true
				v.Findings = append(v.Findings, f)
				return v
			}
			f := base
			f.Kind, f.Severity = AlertCredentialsCompromised, SeverityWarning
			f.Message = fmt.Sprintf("extension %s registered with the private address %s in its Contact, outside its allowed networks %s; tollguard cannot see the real source because rewrite_contact=no. Set rewrite_contact=yes on the endpoint so the access list can be enforced",
				name, addr, prefixesString(ext.CIDRs))
			f.Evidence = evidence
			v.Findings = append(v.Findings, f)
		}
	}

	if !hist.Registered {
		return v // the first registration of an extension is not new
	}
	mode := AlertModeIPOrAgent
	if acct != nil && acct.AlertMode != "" {
		mode = acct.AlertMode
	}
	if mode == AlertModeNone {
		return v
	}
	if mode == AlertModeIPOrAgent && c.IP != "" && !familiarIP(ext, hist, c.IP) {
		f := base
		f.Kind, f.Severity = AlertNewIP, SeverityWarning
		f.Subject = ExtSubject(name)
		// The user agent is the phone's to write: quoted, as in new_user_agent.
		agent := "unknown user agent"
		if c.UserAgent != "" {
			agent = showAgent(c.UserAgent)
		}
		f.Message = fmt.Sprintf("extension %s registered from a new address %s (%s); known before: %s. If this was not the user, change the password (`tollguard ext rotate-password %s`) and block the extension",
			name, c.IP, agent, listOrNone(hist.IPs), name)
		f.Evidence = withKnown(evidence, "known_ips", hist.IPs)
		v.Findings = append(v.Findings, f)
	}
	// No User-Agent is judged like any other, once the extension's
	// phones are known to send one.
	if c.UserAgent != "" && !hist.knowsAgent(c.UserAgent) && !(c.UserAgent == NoUserAgent && len(hist.Agents) == 0) {
		f := base
		f.Kind, f.Severity = AlertNewUserAgent, SeverityWarning
		f.Message = fmt.Sprintf("extension %s registered with a new phone or softphone %s from %s; known before: %s. If the user did not change phones, change the password (`tollguard ext rotate-password %s`)",
			name, showAgent(c.UserAgent), orUnknown(c.IP), listOrNone(showAgents(hist.Agents)), name)
		f.Evidence = withKnown(evidence, "known_user_agents", hist.Agents)
		v.Findings = append(v.Findings, f)
	}
	return v
}

func withKnown(ev map[string]any, key string, list []string) map[string]any {
	out := make(map[string]any, len(ev)+1)
	for k, v := range ev {
		out[k] = v
	}
	out[key] = list
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func listOrNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return listUpTo(list, 5)
}

// listUpTo joins list with commas, naming at most max items and then
// "and N more".
func listUpTo(list []string, max int) string {
	if len(list) > max {
		return strings.Join(list[:max], ", ") + fmt.Sprintf(" and %d more", len(list)-max)
	}
	return strings.Join(list, ", ")
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// isPublic reports whether addr is a globally routable unicast address:
// not private (RFC 1918, ULA), loopback, link-local, CGNAT or
// unspecified.
func isPublic(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		return false
	}
	return !cgnat.Contains(addr)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")
