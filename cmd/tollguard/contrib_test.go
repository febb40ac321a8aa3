package main

// Tests of contrib/: what an admin installs beside the binary must agree
// with the binary (metric names, settings, defaults, the dialplan).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/dialplan"
	"github.com/tollguard/tollguard/store"
)

const contribDir = "../../contrib"

func readContrib(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contribDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricNames returns every metric family serve exports (NewMetrics's
// and WatchStore's), with a histogram's _bucket, _sum and _count series.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	m := NewMetrics()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m.WatchStore(db)
	m.WatchSettlements(&tollguard.Policy{})
	names := map[string]bool{}
	// Vectors with no series yet are missing from Gather: ask each
	// collector for its descriptions.
	descName := regexp.MustCompile(`fqName: "([^"]+)"`)
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Field(i).IsNil() {
			continue
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if mm := descName.FindStringSubmatch(d.String()); mm != nil {
				names[mm[1]] = true
			}
		}
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	for n := range names {
		if n == "tollguard_decision_seconds" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[n+s] = true
			}
		}
	}
	return names
}

// TestGrafanaDashboard: the dashboard is valid JSON, takes its
// Prometheus as the ${DS_PROMETHEUS} input, queries only metrics that
// tollguard exports, and shows every tollguard metric.
func TestGrafanaDashboard(t *testing.T) {
	var dash struct {
		Inputs []struct {
			Name, Type string
			PluginID   string `json:"pluginId"`
		} `json:"__inputs"`
		Title  string
		UID    string
		Panels []struct {
			ID         int
			Type       string
			Title      string
			GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
			Datasource *struct{ Type, UID string }
			Targets    []struct {
				Expr       string
				Datasource *struct{ Type, UID string }
			}
		}
		Templating struct {
			List []struct {
				Name       string
				Definition string
				Datasource *struct{ Type, UID string }
			}
		}
	}
	raw := readContrib(t, "grafana/tollguard-dashboard.json")
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("tollguard-dashboard.json: %v", err)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Name != "DS_PROMETHEUS" || dash.Inputs[0].Type != "datasource" || dash.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs: want one datasource input DS_PROMETHEUS, got %+v", dash.Inputs)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Error("the dashboard needs a title and a uid")
	}

	exported := metricNames(t)
	// A metric name in PromQL: an identifier followed by a selector, a
	// range or the end; functions are followed by "(".
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	used := map[string]bool{}
	checkExpr := func(where, expr string) {
		expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)                                                       // label values
		expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(expr, `{}`)                                                     // label matchers
		expr = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(expr, `[]`)                                                    // ranges
		expr = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(expr, ``) // label lists
		for _, loc := range ident.FindAllStringIndex(expr, -1) {
			name := expr[loc[0]:loc[1]]
			rest := strings.TrimLeft(expr[loc[1]:], " ")
			if strings.HasPrefix(rest, "(") || promqlWord[name] || (loc[0] > 0 && expr[loc[0]-1] == '$') {
				continue
			}
			if !exported[name] {
				t.Errorf("%s queries %q, which tollguard does not export", where, name)
			}
			used[name] = true
		}
	}
	ids := map[int]bool{}
	for i, p := range dash.Panels {
		// Grafana moves overlapping panels; the layout would not be the one meant.
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, g)
		}
		for _, q := range dash.Panels[:i] {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", q.Title, p.Title)
			}
		}
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource %+v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: a target's datasource is %+v", p.Title, tg.Datasource)
			}
			checkExpr(fmt.Sprintf("panel %q", p.Title), tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Datasource == nil || v.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("variable %s: datasource %+v", v.Name, v.Datasource)
		}
		def := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
		first, _, _ := strings.Cut(def, ",")
		checkExpr("variable "+v.Name, first)
	}
	for n := range exported {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !strings.HasPrefix(n, "tollguard_") || n != base && n != "tollguard_decision_seconds_bucket" {
			continue
		}
		if !used[n] && !(n == "tollguard_decision_seconds" && used["tollguard_decision_seconds_bucket"]) {
			t.Errorf("no panel shows %s", n)
		}
	}
}

// promqlWord are PromQL keywords that look like metric names.
var promqlWord = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "le": true,
}

// iniValues reads "key = value" settings (with indented continuation
// lines) from a fail2ban or systemd style file, values by key in order.
func iniValues(text string) map[string][]string {
	out := map[string][]string{}
	last := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' || trimmed[0] == '[' {
			last = ""
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			vs := out[last]
			vs[len(vs)-1] += "\n" + trimmed
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		last = strings.TrimSpace(k)
		out[last] = append(out[last], strings.TrimSpace(v))
	}
	return out
}

// f2bFilter is a fail2ban filter translated to Go regexps: fail2ban's
// <HOST> becomes a named group, <F-CONTENT> the content group, and each
// datepattern line's %%Y-style fields what fail2ban's strptime.py
// matches for them.
type f2bFilter struct {
	dates  []*regexp.Regexp
	pref   *regexp.Regexp
	fail   []*regexp.Regexp
	ignore []*regexp.Regexp
}

func loadF2bFilter(t *testing.T) *f2bFilter {
	t.Helper()
	vals := iniValues(readContrib(t, "fail2ban/filter.d/asterisk-tollguard.conf"))
	one := func(k string) string {
		if len(vals[k]) != 1 {
			t.Fatalf("filter: want one %s, got %q", k, vals[k])
		}
		return vals[k][0]
	}
	// The file is read with ConfigParser interpolation: %% is %.
	unpct := func(s string) string { return strings.ReplaceAll(s, "%%", "%") }
	// fail2ban 1.0's %d takes a day padded with a zero, a space or
	// nothing ("03", " 3", "3"), as Asterisk's default "%b %e %T" writes
	// it; %b is an English month abbreviation in any case.
	field := strings.NewReplacer("%Y", `\d{4}`, "%m", `(?:0?[1-9]|1[0-2])`, "%d", `(?:[12]\d|[0 ]?[1-9]|3[01])`,
		"%b", `(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)`,
		"%H", `(?:[01]?\d|2[0-3])`, "%M", `[0-5]?\d`, "%S", `(?:[0-5]?\d|6[01])`, "%f", `\d+`)
	f := &f2bFilter{
		pref: regexp.MustCompile(strings.NewReplacer("<F-CONTENT>", "(?P<content>", "</F-CONTENT>", ")").Replace(unpct(one("prefregex")))),
	}
	for _, d := range strings.Split(one("datepattern"), "\n") {
		if strings.Contains(field.Replace(unpct(d)), "%") {
			t.Fatalf("datepattern %q: a field the test does not translate", d)
		}
		f.dates = append(f.dates, regexp.MustCompile(field.Replace(unpct(d))))
	}
	// What fail2ban's <HOST> matches, near enough: an IPv4 or IPv6
	// address or a host name; the test then insists on an address.
	host := `(?P<host>[0-9A-Za-z.:\-]+)`
	for _, re := range strings.Split(one("failregex"), "\n") {
		f.fail = append(f.fail, regexp.MustCompile(strings.ReplaceAll(unpct(re), "<HOST>", host)))
	}
	for _, v := range vals["ignoreregex"] {
		for _, re := range strings.Split(v, "\n") {
			if re != "" {
				f.ignore = append(f.ignore, regexp.MustCompile(unpct(re)))
			}
		}
	}
	return f
}

// match applies the filter to one log line as fail2ban does: cut the
// date (the first datepattern line that finds one), take the prefregex's content, drop ignored lines, then the
// first failregex that matches gives the host. A line with no date is
// still matched: fail2ban 1.0 (filter.py, processLine) dates it with the
// last line's date or, in operation, the current time.
func (f *f2bFilter) match(line string) (host string, ok bool) {
	rest := line
	for _, d := range f.dates {
		if loc := d.FindStringIndex(line); loc != nil {
			rest = line[:loc[0]] + line[loc[1]:]
			break
		}
	}
	m := f.pref.FindStringSubmatch(rest)
	if m == nil {
		return "", false
	}
	content := m[f.pref.SubexpIndex("content")]
	for _, ig := range f.ignore {
		if ig.MatchString(content) {
			return "", false
		}
	}
	for _, re := range f.fail {
		if m := re.FindStringSubmatch(content); m != nil {
			return m[re.SubexpIndex("host")], true
		}
	}
	return "", false
}

// TestFail2banFilter applies the shipped filter to Asterisk 22's real
// security-log lines (recorded: a wrong password, an unknown user, a
// contact over max_contacts), to the same lines in Asterisk's default
// date format, and to made-up ones (IPv6, TLS, quotes and forged
// fields in what the caller chooses), and checks which lines match and
// the address each bans.
func TestFail2banFilter(t *testing.T) {
	f := loadF2bFilter(t)
	type want struct {
		line int // 1-based
		host string
	}
	for file, wants := range map[string][]want{
		// ChallengeResponseFailed (1001), InvalidAccountID (1009) twice,
		// ChallengeResponseFailed (<unknown>); ChallengeSent, NOTICE lines no.
		"asterisk-log-wrong-password.txt": {{3, "127.0.0.1"}, {5, "127.0.0.1"}, {8, "127.0.0.1"}, {10, "127.0.0.1"}},
		// FailedACL (registrar_attempt_exceeds_maximum_configured_contacts);
		// ChallengeSent, SuccessfulAuth and the WARNING line no.
		"asterisk-log-over-max-contacts.txt": {{4, "127.0.0.1"}},
		// The same lines (not recorded: the fixtures were recorded with
		// dateformat=%F %T.%3q) dated as Asterisk does with dateformat
		// unset, "%b %e %T": "[Nov  3 00:59:10]", then "[Nov 23 01:02:50]".
		"asterisk-log-default-dateformat.txt": {{3, "127.0.0.1"}, {5, "127.0.0.1"}, {8, "127.0.0.1"}, {10, "127.0.0.1"}, {14, "127.0.0.1"}},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "fail2ban", file))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		var got []want
		for i, l := range lines {
			if h, ok := f.match(l); ok {
				got = append(got, want{i + 1, h})
			}
		}
		if !slices.Equal(got, wants) {
			t.Errorf("%s: matched %v, want %v", file, got, wants)
		}
	}

	const pre = `[2026-11-23 01:10:00.001] SECURITY[13979] res_security_log.c: SecurityEvent=`
	const mid = `,EventTV="2026-11-23T01:10:00.001+0000",Severity="Error",Service="PJSIP",EventVersion="1",AccountID="1001",SessionID="s1",`
	for _, c := range []struct {
		name, line, host string
	}{
		{"IPv6", pre + `"ChallengeResponseFailed"` + mid + `LocalAddress="IPV6/UDP/2001:db8::1/5060",RemoteAddress="IPV6/UDP/2001:db8::5/5062",Challenge="1/2",Response="3",ExpectedResponse=""`, "2001:db8::5"},
		{"TLS", pre + `"FailedACL"` + mid + `LocalAddress="IPV4/TLS/192.0.2.1/5061",RemoteAddress="IPV4/TLS/203.0.113.8/40001",ACLName="office"`, "203.0.113.8"},
		{"TCPInvalidAccount", pre + `"InvalidAccountID"` + mid + `LocalAddress="IPV4/TCP/192.0.2.1/5060",RemoteAddress="IPV4/TCP/198.51.100.7/5060"`, "198.51.100.7"},
		// ast_json_ipaddr leaves out a transport it has no name for.
		{"NoTransport", pre + `"InvalidAccountID"` + mid + `LocalAddress="IPV4/192.0.2.1/5060",RemoteAddress="IPV4/198.51.100.7/5060"`, "198.51.100.7"},
		{"SuccessfulAuth", pre + `"SuccessfulAuth"` + mid + `LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/198.51.100.7/5060",UsingPassword="1"`, ""},
		{"ChallengeSent", pre + `"ChallengeSent"` + mid + `LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/198.51.100.7/5060",Challenge=""`, ""},
		// A user name crafted to carry a RemoteAddress of its choosing:
		// the sender is banned, never the forged address.
		{"ForgedRemoteAddress", pre + `"InvalidAccountID",EventTV="2026-11-23T01:10:00.002+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="x",SessionID="a",LocalAddress="IPV4/UDP/1.1.1.1/1",RemoteAddress="IPV4/UDP/192.0.2.99/1",Z="",` +
			`SessionID="real",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.7/5060"`, "203.0.113.7"},
		// res_security_log writes values unescaped, and the caller
		// chooses the user name (InvalidAccountID), the Call-ID
		// (SessionID) and, for ChallengeResponseFailed, the nonce and
		// response it sent back (Challenge, Response). None of them may
		// dodge the ban or get another address banned.
		{"QuoteInSessionID", pre + `"ChallengeResponseFailed",EventTV="2026-11-23T01:10:00.003+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="1001",SessionID="a"b@x",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060",` +
			`Challenge="1795395550/b39aa541930cfd34510b178f31d1a97e",Response="3e1359b87ff82510425ae2a907753344",ExpectedResponse=""`, "203.0.113.9"},
		{"QuoteInAccountID", pre + `"InvalidAccountID",EventTV="2026-11-23T01:10:00.004+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="ad"min",SessionID="s"",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060"`, "203.0.113.9"},
		{"RemoteAddressInSessionID", pre + `"ChallengeResponseFailed",EventTV="2026-11-23T01:10:00.005+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="1001",SessionID="RemoteAddress="IPV4/UDP/1.2.3.4/5060"",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060",` +
			`Challenge="1795395550/b39aa541930cfd34510b178f31d1a97e",Response="3e1359b87ff82510425ae2a907753344",ExpectedResponse=""`, "203.0.113.9"},
		{"FieldsInSessionID", pre + `"ChallengeResponseFailed",EventTV="2026-11-23T01:10:00.006+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="1001",SessionID="x",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/1.2.3.4/5060",Challenge="1/2",Response="3",ExpectedResponse="",` +
			`LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060",Challenge="1/2",Response="3e1359b87ff82510425ae2a907753344",ExpectedResponse=""`, "203.0.113.9"},
		{"RemoteAddressInAccountID", pre + `"InvalidAccountID",EventTV="2026-11-23T01:10:00.007+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="RemoteAddress="IPV4/UDP/1.2.3.4/5060"",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060"`, "203.0.113.9"},
		{"FieldsInAccountID", pre + `"InvalidAccountID",EventTV="2026-11-23T01:10:00.008+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="x",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/1.2.3.4/5060"",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060"`, "203.0.113.9"},
		{"FieldsInSessionIDFailedACL", pre + `"FailedACL",EventTV="2026-11-23T01:10:00.009+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="1002",SessionID="x",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/1.2.3.4/5060",ACLName="a",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060",ACLName="registrar_attempt_exceeds_maximum_configured_contacts"`, "203.0.113.9"},
		// The nonce and response come from the caller's Authorization
		// header, quoted strings in which a quote is escaped (\"); the
		// nonce is cut at 63 characters, which may leave a lone
		// backslash at its end.
		{"FieldsInChallenge", pre + `"ChallengeResponseFailed",EventTV="2026-11-23T01:10:00.010+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="1001",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060",` +
			`Challenge="\",RemoteAddress=\"IPV4/UDP/1.2.3.4/5060\",Challenge=\"",Response="3e1359b87ff82510425ae2a907753344",ExpectedResponse=""`, "203.0.113.9"},
		{"BackslashEndsChallenge", pre + `"ChallengeResponseFailed",EventTV="2026-11-23T01:10:00.011+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="1001",SessionID="s\",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060",` +
			`Challenge="1795395550/b39aa541930cfd34\",Response="3e1359b87ff82510425ae2a907753344",ExpectedResponse=""`, "203.0.113.9"},
		{"FieldsInResponse", pre + `"ChallengeResponseFailed",EventTV="2026-11-23T01:10:00.012+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="1001",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060",` +
			`Challenge="1/2",Response="\",RemoteAddress=\"IPV4/UDP/1.2.3.4/5060\",Challenge=\"1/2\",Response=\"3",ExpectedResponse=""`, "203.0.113.9"},
		// AMI writes the Key it was sent as Response, raw: a
		// ChallengeResponseFailed from AMI cannot be read safely and is
		// not matched.
		{"AMIChallengeResponseFailed", pre + `"ChallengeResponseFailed",EventTV="2026-11-23T01:10:00.013+0000",Severity="Error",Service="AMI",EventVersion="1",` +
			`AccountID="admin",SessionID="0x7f3a5c001234",LocalAddress="IPV4/TCP/192.0.2.1/5038",RemoteAddress="IPV4/TCP/203.0.113.9/40000",` +
			`Challenge="123456789",Response="",RemoteAddress="IPV4/TCP/1.2.3.4/5038",Challenge="1",Response="abc",ExpectedResponse="0123456789abcdef0123456789abcdef",SessionTV="2026-11-23T01:09:59.000+0000"`, ""},
		// fail2ban-regex bans here too: a line without a date is taken
		// as happening now, so a forged line needs no date (see
		// TestFail2banLineBreak).
		{"NoDate", `SECURITY[13979] res_security_log.c: SecurityEvent="FailedACL"` + mid + `LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.8/5060"`, "203.0.113.8"},
		{"OtherModule", `[2026-11-23 01:10:00.001] NOTICE[13960] res_pjsip/pjsip_distributor.c: Request 'REGISTER' from '<sip:1009@127.0.0.1>' failed for '127.0.0.1:5074' - No matching endpoint found`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, ok := f.match(c.line)
			if c.host == "" {
				if ok {
					t.Errorf("matched, banning %s; want no match", h)
				}
				return
			}
			if !ok || h != c.host {
				t.Errorf("got %q (matched %v), want %s", h, ok, c.host)
			}
			if _, err := netip.ParseAddr(h); err != nil {
				t.Errorf("the banned host %q is not an address", h)
			}
		})
	}
}

// TestFail2banLineBreak: pjsip decodes %0A in the From user part, and
// res_security_log writes AccountID raw, so a caller can break a
// security-log line. It cannot forge one: Asterisk copies at most 36
// characters of the user name into AccountID (pjsip_distributor.c,
// AST_UUID_STR_LEN), and the shortest line the filter matches is far
// longer. The Call-ID, nonce and response cannot hold a line break
// (pjsip's parser ends a header, and a quoted string, at one).
func TestFail2banLineBreak(t *testing.T) {
	f := loadF2bFilter(t)
	const userMax = 36 // AST_UUID_STR_LEN - 1
	// No date: fail2ban matches a line without one.
	shortest := `SECURITY[1] res_security_log.c: SecurityEvent="FailedACL",EventTV="",Severity="",Service="",EventVersion="1",AccountID=,LocalAddress="",RemoteAddress="IPV4/1.2.3.4/1"`
	if h, ok := f.match(shortest); !ok || h != "1.2.3.4" {
		t.Fatalf("the shortest forged line got %q (matched %v): the filter changed, find its shortest line again", h, ok)
	}
	if len("\n"+shortest) <= userMax {
		t.Fatalf("a forged line fits in the %d characters of a user name", userMax)
	}
	// The most a caller gets: a user name of 36 characters that breaks
	// the line and starts a new one, with a date or without.
	for _, user := range []string{"\n[Nov 24 01:00:00] SECURITY[1] res_s", "\nSECURITY[1] res_security_log.c: Sec"} {
		if len(user) != userMax {
			t.Fatalf("user %q is %d characters", user, len(user))
		}
		line := `[2026-11-24 01:00:00.001] SECURITY[13979] res_security_log.c: SecurityEvent="InvalidAccountID",EventTV="2026-11-24T01:00:00.001+0000",Severity="Error",Service="PJSIP",EventVersion="1",` +
			`AccountID="` + user + `",SessionID="s",LocalAddress="IPV4/UDP/192.0.2.1/5060",RemoteAddress="IPV4/UDP/203.0.113.9/5060"`
		// The event itself is lost (such a name is no endpoint's: the
		// caller learns nothing from it), and no address is banned.
		for i, l := range strings.Split(line, "\n") {
			if h, ok := f.match(l); ok {
				t.Errorf("user %q: part %d of the broken line bans %s", user, i+1, h)
			}
		}
	}
}

// TestFail2banJail: the jail uses the filter, reads the security log,
// never bans the PBX's loopback, and bans sanely.
func TestFail2banJail(t *testing.T) {
	vals := iniValues(readContrib(t, "fail2ban/jail.d/asterisk-tollguard.conf"))
	get := func(k string) string {
		if len(vals[k]) == 0 {
			t.Fatalf("jail: no %s", k)
		}
		return vals[k][0]
	}
	if !strings.Contains(readContrib(t, "fail2ban/jail.d/asterisk-tollguard.conf"), "[asterisk-tollguard]") {
		t.Error("jail section is not [asterisk-tollguard] (the coverage audit looks for a jail named asterisk*)")
	}
	if get("filter") != "asterisk-tollguard" || get("enabled") != "true" || get("logpath") != "/var/log/asterisk/security" {
		t.Errorf("filter %q enabled %q logpath %q", get("filter"), get("enabled"), get("logpath"))
	}
	ignore := strings.Fields(get("ignoreip"))
	if !slices.Contains(ignore, "127.0.0.0/8") || !slices.Contains(ignore, "::1") {
		t.Errorf("ignoreip %v must hold the loopback ranges", ignore)
	}
	// fail2ban 1.0.2 (Debian 12) bans with iptables by default, which
	// Debian 12 does not install: every ban would fail, unseen in
	// fail2ban-client status. nftables-allports takes protocols as an
	// nft set: "all" makes every ban a syntax error.
	if get("banaction") != "nftables-allports" {
		t.Errorf("banaction %q: want nftables-allports", get("banaction"))
	}
	for _, p := range strings.Split(get("protocol"), ",") {
		if !slices.Contains([]string{"tcp", "udp", "sctp", "dccp", "udplite"}, strings.TrimSpace(p)) {
			t.Errorf("protocol %q: nft's meta l4proto takes no %q", get("protocol"), p)
		}
	}
	maxretry, err := strconv.Atoi(get("maxretry"))
	if err != nil || maxretry < 3 || maxretry > 10 {
		t.Errorf("maxretry %q: want 3 to 10", get("maxretry"))
	}
	for _, k := range []string{"findtime", "bantime"} {
		d, err := time.ParseDuration(strings.Replace(get(k), "d", "h", 1))
		if err != nil || d <= 0 {
			t.Errorf("%s %q", k, get(k))
		}
	}
}

// TestSystemdUnit: the unit is hardened as documented, and agrees with
// the daemon's defaults.
func TestSystemdUnit(t *testing.T) {
	vals := iniValues(readContrib(t, "tollguard.service"))
	has := func(k, v string) {
		t.Helper()
		if !slices.Contains(vals[k], v) {
			t.Errorf("%s=%s missing (have %q)", k, v, vals[k])
		}
	}
	has("User", "tollguard")
	has("DynamicUser", "no")
	has("ProtectSystem", "strict")
	has("ReadWritePaths", "/var/lib/tollguard")
	has("StateDirectory", "tollguard")
	has("EnvironmentFile", "-/etc/tollguard/tollguard.env")
	has("Environment", "TOLLGUARD_DB=/var/lib/tollguard/tollguard.db TOLLGUARD_CONFIG=/etc/tollguard/tollguard.toml")
	has("ExecStart", "/usr/local/bin/tollguard serve")
	has("ExecReload", "/bin/kill -HUP $MAINPID")
	has("Restart", "on-failure")
	// serve speaks sd_notify (READY=1, WATCHDOG=1): systemd_test.go.
	has("Type", "notify")
	if wd, err := unitSeconds(vals["WatchdogSec"]); err != nil || wd < 3*time.Second || wd > 30*time.Second {
		t.Errorf("WatchdogSec %q: want a few seconds, so a frozen gate is replaced quickly but a busy one is not", vals["WatchdogSec"])
	}
	// The Go runtime exits 2 on a panic or a watchdog's SIGABRT; 2 is
	// also the status restarts are prevented for (a config error).
	// GOTRACEBACK=crash turns those exits into death by signal, which
	// Restart= restarts (TestAbortDiesBySignal).
	if slices.Contains(vals["RestartPreventExitStatus"], "2") {
		has("Environment", "GOTRACEBACK=crash")
		has("LimitCORE", "0")
	}
	has("RestartPreventExitStatus", strconv.Itoa(exitUsage))
	// systemd tests RestartPreventExitStatus against the main process
	// alone (service.c, service_shall_restart: main_exec_status): a
	// control command exiting 2 (ExecStartPre=tollguard config check) is
	// restarted until the start limit. serve refuses a bad config itself.
	for _, k := range []string{"ExecStartPre", "ExecStartPost", "ExecCondition"} {
		if len(vals[k]) > 0 {
			t.Errorf("%s=%q: its exit 2 on a config error would be restarted; serve exits 2 on its own", k, vals[k])
		}
	}
	has("UMask", "0077")
	has("NoNewPrivileges", "yes")
	has("PrivateTmp", "yes")
	has("ProtectHome", "yes")
	has("CapabilityBoundingSet", "")
	has("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX AF_NETLINK")
	has("SystemCallFilter", "@system-service")
	has("ReadOnlyPaths", "-/etc/asterisk/voicemail.conf")

	def := DefaultConfig()
	// SIGTERM waits for sessions, then serve gives its tasks 5 s more.
	stop, err := time.ParseDuration(vals["TimeoutStopSec"][0])
	if err != nil || stop < def.AGI.ShutdownWait()+5*time.Second {
		t.Errorf("TimeoutStopSec %q is shorter than serve's shutdown (%v + 5s)", vals["TimeoutStopSec"], def.AGI.ShutdownWait())
	}
	nofile, err := strconv.Atoi(vals["LimitNOFILE"][0])
	if err != nil || nofile < 4*def.AGI.MaxSessions {
		t.Errorf("LimitNOFILE %q: want room for max_sessions (%d) and a flood beyond it", vals["LimitNOFILE"], def.AGI.MaxSessions)
	}
}

// unitSeconds reads a systemd time span: a bare number is seconds.
func unitSeconds(v []string) (time.Duration, error) {
	if len(v) != 1 {
		return 0, fmt.Errorf("want one value, have %q", v)
	}
	if _, err := strconv.Atoi(v[0]); err == nil {
		return time.ParseDuration(v[0] + "s")
	}
	return time.ParseDuration(v[0])
}

// TestEnvFile: every variable the sample env file names is one tollguard
// reads.
func TestEnvFile(t *testing.T) {
	read := map[string]bool{"TOLLGUARD_CONFIG": true}
	DefaultConfig().ApplyEnv(func(k string) string { read[k] = true; return "" })
	env := readContrib(t, "tollguard.env")
	re := regexp.MustCompile(`(?m)^#?(TOLLGUARD_[A-Z_]+)=`)
	names := re.FindAllStringSubmatch(env, -1)
	if len(names) == 0 {
		t.Fatal("no TOLLGUARD_ variables in tollguard.env")
	}
	for _, m := range names {
		if !read[m[1]] {
			t.Errorf("tollguard.env names %s, which tollguard does not read", m[1])
		}
	}
	for _, secret := range []string{"TOLLGUARD_ARI_PASSWORD", "TOLLGUARD_SMTP_PASSWORD", "TOLLGUARD_WEBHOOK_SECRET"} {
		if !strings.Contains(env, secret+"=") {
			t.Errorf("tollguard.env does not show %s", secret)
		}
	}
}

// TestAsteriskSnippets: the sample Asterisk config agrees with tollguard's
// defaults and its dialplan include.
func TestAsteriskSnippets(t *testing.T) {
	def := DefaultConfig()
	u, err := url.Parse(def.ARI.URL)
	if err != nil {
		t.Fatal(err)
	}
	http := iniValues(readContrib(t, "asterisk/http.conf"))
	if got := http["bindaddr"][0] + ":" + http["bindport"][0]; got != u.Host {
		t.Errorf("http.conf binds %s; tollguard's default ARI URL is %s", got, def.ARI.URL)
	}
	ari := readContrib(t, "asterisk/ari.conf")
	if !strings.Contains(ari, "["+def.ARI.User+"]") || !strings.Contains(ari, "password_format = plain") {
		t.Errorf("ari.conf has no [%s] user with password_format = plain", def.ARI.User)
	}
	pjsip := iniValues(readContrib(t, "asterisk/pjsip.conf"))
	if !slices.Contains(pjsip["rewrite_contact"], "yes") {
		t.Error("pjsip.conf does not set rewrite_contact = yes")
	}
	ext := readContrib(t, "asterisk/extensions.conf")
	for _, w := range []string{"#include tollguard.conf", "Gosub(" + dialplan.ContextOutbound + ",s,1(${EXTEN}))",
		"b(" + dialplan.ContextCallee + "^s^1(${" + tollguard.VarMaxSec + "}))"} {
		if !strings.Contains(ext, w) {
			t.Errorf("extensions.conf lacks %s", w)
		}
	}
	for _, c := range []string{dialplan.ContextOutbound, dialplan.ContextHangup, dialplan.ContextEmergency, dialplan.ContextCallee} {
		if !strings.Contains(dialplan.Include, "["+c+"]") {
			t.Errorf("the include has no [%s] context", c)
		}
	}
	if agi := regexp.MustCompile(`(?m)^TOLLGUARD_AGI=agi://(\S+)$`).FindStringSubmatch(ext); agi == nil || agi[1] != def.AGI.Listen {
		t.Errorf("extensions.conf's TOLLGUARD_AGI %v; tollguard listens on %s", agi, def.AGI.Listen)
	}
	if !regexp.MustCompile(`(?m)^security\s*=>\s*security\s*$`).MatchString(readContrib(t, "asterisk/logger.conf")) {
		t.Error("logger.conf does not enable the security log the fail2ban jail reads")
	}
	// TestFail2banFilter reads both "%F %T.%3q" and the default "%b %e %T".
	if df := iniValues(readContrib(t, "asterisk/logger.conf"))["dateformat"]; len(df) > 1 || len(df) == 1 && df[0] != "%F %T.%3q" {
		t.Errorf("logger.conf's dateformat %q: the fail2ban filter reads only %%F %%T.%%3q or the default", df)
	}
}

// TestExampleDeck: the README's step 3 imports the shipped example deck,
// billing terms and connection fees included.
func TestExampleDeck(t *testing.T) {
	c := newCLI(t)
	c.ok("rates", "import", filepath.Join(contribDir, "example-deck.csv"), "--currency", "GBP")
	for num, want := range map[string]string{
		"00447700900123": "rate 0.08/min billed 60/60, 0.02 connection fee (prefix +447, United Kingdom mobile; deck in GBP)",
		"0033612345678":  "rate 0.09/min billed 30/6 (prefix +336, France mobile; deck in GBP)",
	} {
		if out := c.ok("rates", "lookup", num); !strings.Contains(out, want) {
			t.Errorf("rates lookup %s:\n%s\nwant %q", num, out, want)
		}
	}
}
