package tollguard

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// AlertPolicy holds the rules that keep an admin informed without
// flooding them (design.md §3). They are pure: the store applies them
// inside the transaction that records an occurrence.
//
//   - A new kind+subject, or one quiet for longer than CoolDown, or one
//     the admin acknowledged, is a new alert and is notified at once.
//   - A repeat within CoolDown of the last occurrence merges: the count
//     and last-seen time grow, evidence is appended (bounded), and no
//     notice goes out. A digest ("57 more since the last notice") is
//     due CoolDown after the last notice, so a continuing attack costs
//     the admin one message per cool-down.
//   - When the alert's count crosses a threshold (DigestAt: 10, 100,
//     1000, then every tenfold), the digest goes out at once.
//   - A repeat at a higher severity escalates: the alert takes the new
//     severity and message and is notified at once.
//   - An alert raised with Renotify (an audit finding) that repeats
//     unchanged is recorded without a notice, whether the latest alert
//     is open or acknowledged and however long ago it was seen, until
//     Renotify has passed since the last notice (open) or since the
//     acknowledgement (see Recurs and Recur).
type AlertPolicy struct {
	CoolDown    time.Duration // default 15 minutes
	DigestAt    []int         // ascending counts; beyond the last, every tenfold
	MaxEvidence int           // occurrences kept per alert: the first and the latest; default 20
}

// Defaults for AlertPolicy's zero fields.
const (
	DefaultAlertCoolDown    = 15 * time.Minute
	DefaultAlertMaxEvidence = 20
	// MaxEvidenceBytes bounds one occurrence's evidence; longer evidence is
	// kept as a truncated string.
	MaxEvidenceBytes = 4096
)

// DefaultDigestAt is the default DigestAt.
var DefaultDigestAt = []int{10, 100, 1000}

// WithDefaults returns p with zero fields set to the defaults.
func (p AlertPolicy) WithDefaults() AlertPolicy {
	if p.CoolDown <= 0 {
		p.CoolDown = DefaultAlertCoolDown
	}
	if len(p.DigestAt) == 0 {
		p.DigestAt = DefaultDigestAt
	}
	if p.MaxEvidence <= 0 {
		p.MaxEvidence = DefaultAlertMaxEvidence
	}
	return p
}

// Validate reports a policy an admin cannot have meant.
func (p AlertPolicy) Validate() error {
	if p.CoolDown < 0 {
		return Errorf(EINVALID, "alert cool-down %s: must not be negative", p.CoolDown)
	}
	for i, n := range p.DigestAt {
		if n < 2 || (i > 0 && n <= p.DigestAt[i-1]) {
			return Errorf(EINVALID, "alert digest thresholds %v: want ascending counts of at least 2", p.DigestAt)
		}
	}
	return nil
}

// AlertState is a stored alert with the bookkeeping merges need.
type AlertState struct {
	Alert
	NotifiedCount int       // Count when the last notice went out
	NotifiedAt    time.Time // when the last notice went out
	DigestDue     time.Time // when a digest of the repeats is due; zero if none
	Dropped       int       // occurrences whose evidence was dropped to keep the row bounded
}

// NoticeEvent says why a notice goes out.
type NoticeEvent string

const (
	NoticeNew        NoticeEvent = "new"        // first occurrence
	NoticeDigest     NoticeEvent = "digest"     // repeats since the last notice
	NoticeEscalation NoticeEvent = "escalation" // a repeat at a higher severity
	NoticeTest       NoticeEvent = "test"       // `tollguard alerts test`
)

// Notice is what a notifier delivers: a snapshot of the alert when the
// notice was made. It is stored in the outbox, so a retry hours later
// says what the admin would have read then.
type Notice struct {
	Event   NoticeEvent `json:"event"`
	Alert   Alert       `json:"alert"`
	Repeats int         `json:"repeats"` // occurrences since the previous notice
	Since   time.Time   `json:"since"`   // when the previous notice went out (digest, escalation)
	Latest  string      `json:"latest"`  // the latest occurrence's message, if it differs
	At      time.Time   `json:"at"`      // when the notice was made
}

// Occurrence is one Raise of an alert, as kept in the evidence list.
type Occurrence struct {
	At       int64           `json:"at"` // Unix seconds
	Severity Severity        `json:"severity"`
	Message  string          `json:"message,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// NormalizeAlert checks a raised alert and fills what can be derived:
// the severity defaults to warning, the message to "kind on subject",
// and evidence that is not JSON is kept as a JSON string.
func NormalizeAlert(a Alert) (Alert, error) {
	a.Kind = strings.TrimSpace(a.Kind)
	a.Subject = strings.TrimSpace(a.Subject)
	if a.Kind == "" {
		return a, Errorf(EINVALID, "alert has no kind")
	}
	if a.Subject == "" {
		switch {
		case a.Extension != "":
			a.Subject = ExtSubject(a.Extension)
		case a.Account != "":
			a.Subject = AccountSubject(a.Account)
		default:
			return a, Errorf(EINVALID, "alert %s has no subject", a.Kind)
		}
	}
	if a.Severity == "" {
		a.Severity = SeverityWarning
	}
	if !a.Severity.Valid() {
		return a, Errorf(EINVALID, "alert %s: severity %q: want info, warning or critical", a.Kind, a.Severity)
	}
	if strings.TrimSpace(a.Message) == "" {
		a.Message = fmt.Sprintf("%s on %s", a.Kind, a.Subject)
	}
	a.Evidence = boundEvidence(a.Evidence)
	return a, nil
}

// boundEvidence returns ev as compact JSON of at most MaxEvidenceBytes.
// An object too long stays an object with its longest members cut, so
// that its short ones stay readable: a digest lists the address of each
// new_ip, whose known_ips may be 100 IPv6 addresses. Anything else too
// long, or not JSON, is kept as a string.
func boundEvidence(ev string) string {
	ev = strings.TrimSpace(ev)
	if ev == "" {
		return ""
	}
	valid := json.Valid([]byte(ev))
	if valid && len(ev) <= MaxEvidenceBytes {
		return ev
	}
	if valid && ev[0] == '{' {
		if b, ok := boundObject(ev); ok {
			return string(b)
		}
	}
	return string(cutString(ev, MaxEvidenceBytes))
}

// boundObject cuts the members of the JSON object ev, longest first,
// each to a string of what fits, until ev fits in MaxEvidenceBytes. It
// returns false if ev is not an object or its short members alone are
// too long.
func boundObject(ev string) ([]byte, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(ev), &m) != nil || m == nil {
		return nil, false
	}
	// Sizes as json.Marshal writes them (compact), summed without
	// marshalling the whole object again for each cut.
	enc := make(map[string]int, len(m))
	keys := make([]string, 0, len(m))
	total := 1 // "{" and "}", less the comma the first member lacks
	for k, v := range m {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, false
		}
		m[k], enc[k] = vb, len(vb)
		keys = append(keys, k)
		total += len(kb) + 1 + len(vb) + 1
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(enc[b]-enc[a], strings.Compare(a, b)) })
	for _, k := range keys {
		if total <= MaxEvidenceBytes {
			break
		}
		text := string(m[k])
		var str string
		if json.Unmarshal(m[k], &str) == nil {
			text = str // a string is cut as itself, not as its quoted form
		}
		cut := cutString(text, max(enc[k]-(total-MaxEvidenceBytes), 0))
		total += len(cut) - enc[k]
		m[k], enc[k] = cut, len(cut)
	}
	if total > MaxEvidenceBytes {
		return nil, false
	}
	b, err := json.Marshal(m)
	return b, err == nil && len(b) <= MaxEvidenceBytes
}

// cutString returns s as a JSON string of at most max bytes (but never
// less than the mark alone), cut on a rune boundary and marked when it
// is cut. Escaping can make the string longer than s.
func cutString(s string, max int) []byte {
	const mark = "…(truncated)"
	b, _ := json.Marshal(s)
	for n := len(s); len(b) > max && n > 0; {
		// Each byte of s takes at least one byte of b.
		n -= min(n, len(b)-max)
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		b, _ = json.Marshal(s[:n] + mark)
	}
	return b
}

// NewAlertState is the state of a first occurrence; the notice goes out now.
func (p AlertPolicy) NewAlertState(a Alert, now time.Time) (AlertState, Notice) {
	p = p.WithDefaults()
	a.FirstSeen, a.LastSeen, a.Count = now, now, 1
	a.AckedAt, a.AckedBy = time.Time{}, ""
	ev, _ := appendOccurrence("", occurrenceOf(a, now), p.MaxEvidence)
	st := AlertState{Alert: a, NotifiedCount: 1, NotifiedAt: now}
	st.Alert.Evidence = ev
	return st, Notice{Event: NoticeNew, Alert: st.Alert, Repeats: 0, At: now}
}

// Mergeable reports whether a new occurrence at now merges into st.
func (p AlertPolicy) Mergeable(st AlertState, kind, subject string, now time.Time) bool {
	p = p.WithDefaults()
	// A clock stepping back (now before LastSeen) still merges.
	return st.ID != 0 && st.Kind == kind && st.Subject == subject && st.AckedAt.IsZero() &&
		now.Sub(st.LastSeen) <= p.CoolDown
}

// Recurs reports whether occurrence a at now is an unchanged repeat of
// st, the latest alert of a's kind and subject, acknowledged or not: a
// has a Renotify interval and the same severity and message as st, and
// st is open or was acknowledged less than Renotify ago. Such a repeat
// is folded in by Recur instead of Merge; anything else (a change, or
// an acknowledged alert past the interval) is a new alert as usual.
func (p AlertPolicy) Recurs(st AlertState, a Alert, now time.Time) bool {
	if a.Renotify <= 0 || st.ID == 0 || st.Kind != a.Kind || st.Subject != a.Subject ||
		st.Severity != a.Severity || st.Message != a.Message {
		return false
	}
	// Only a condition that stood all along: one the previous run of its
	// audit did not find was fixed, and its return is news (an anonymous
	// endpoint removed, then back).
	if !a.PrevRun.IsZero() && st.LastSeen.Before(a.PrevRun) {
		return false
	}
	return st.AckedAt.IsZero() || now.Sub(st.AckedAt) < a.Renotify
}

// Recur folds the unchanged repeat a (see Recurs) into st without a
// notice, except when st is open and a.Renotify has passed since its
// last notice: then a reminder (a digest of the repeats) goes out.
func (p AlertPolicy) Recur(st AlertState, a Alert, now time.Time) (AlertState, *Notice) {
	p = p.WithDefaults()
	p.fold(&st, a, now)
	if st.AckedAt.IsZero() && now.Sub(st.NotifiedAt) >= a.Renotify {
		n := p.fire(&st, NoticeDigest, "", now)
		return st, &n
	}
	return st, nil
}

// fold counts occurrence a on st: its count, last seen and evidence.
func (p AlertPolicy) fold(st *AlertState, a Alert, now time.Time) {
	st.Count++
	if now.After(st.LastSeen) {
		st.LastSeen = now
	}
	var dropped int
	st.Alert.Evidence, dropped = appendOccurrence(st.Alert.Evidence, occurrenceOf(a, now), p.MaxEvidence)
	st.Dropped += dropped
}

// Merge folds occurrence a into the open alert st. It returns the new
// state and, when a notice must go out at once, that notice.
func (p AlertPolicy) Merge(st AlertState, a Alert, now time.Time) (AlertState, *Notice) {
	p = p.WithDefaults()
	prevCount := st.Count
	p.fold(&st, a, now)
	if st.Account == "" {
		st.Account = a.Account
	}
	if st.Extension == "" {
		st.Extension = a.Extension
	}
	latest := ""
	if a.Message != st.Message {
		latest = a.Message
	}
	switch {
	case a.Severity.Rank() > st.Severity.Rank():
		st.Severity, st.Message = a.Severity, a.Message
		n := p.fire(&st, NoticeEscalation, "", now)
		return st, &n
	case p.crossesThreshold(prevCount, st.Count):
		n := p.fire(&st, NoticeDigest, latest, now)
		return st, &n
	}
	if st.DigestDue.IsZero() {
		st.DigestDue = st.NotifiedAt.Add(p.CoolDown)
		if st.DigestDue.Before(now) {
			st.DigestDue = now
		}
	}
	return st, nil
}

// Digest is the digest notice of st's repeats when it is due at now.
// ok is false when nothing is due or nothing happened since the last
// notice (the due time is then cleared).
func (p AlertPolicy) Digest(st AlertState, now time.Time) (AlertState, Notice, bool) {
	p = p.WithDefaults()
	if st.DigestDue.IsZero() || st.DigestDue.After(now) {
		return st, Notice{}, false
	}
	if st.Count <= st.NotifiedCount {
		st.DigestDue = time.Time{}
		return st, Notice{}, false
	}
	n := p.fire(&st, NoticeDigest, latestMessage(st), now)
	return st, n, true
}

// fire makes a notice of the repeats since the last one and marks them
// notified.
func (p AlertPolicy) fire(st *AlertState, ev NoticeEvent, latest string, now time.Time) Notice {
	n := Notice{Event: ev, Alert: st.Alert, Repeats: st.Count - st.NotifiedCount, Since: st.NotifiedAt, Latest: latest, At: now}
	st.NotifiedCount, st.NotifiedAt, st.DigestDue = st.Count, now, time.Time{}
	return n
}

// crossesThreshold reports whether going from count a to b crosses one
// of DigestAt, or a tenfold of the last one.
func (p AlertPolicy) crossesThreshold(a, b int) bool {
	last := 0
	for _, t := range p.DigestAt {
		if a < t && b >= t {
			return true
		}
		last = t
	}
	for t := last * 10; last > 0 && t > last && t <= b; last, t = t, t*10 {
		if a < t {
			return true
		}
	}
	return false
}

func occurrenceOf(a Alert, now time.Time) Occurrence {
	o := Occurrence{At: now.Unix(), Severity: a.Severity, Message: a.Message}
	if a.Evidence != "" {
		o.Evidence = json.RawMessage(a.Evidence)
	}
	return o
}

// appendOccurrence appends o to list, the JSON array of occurrences,
// keeping the first occurrence and the latest max-1. It returns the new
// list and how many occurrences it dropped. It splits the array at its
// top-level commas rather than decoding it, because it runs inside the
// write transaction that the gate waits on.
func appendOccurrence(list string, o Occurrence, max int) (string, int) {
	b, err := json.Marshal(o) // compact: one element, no raw newlines
	if err != nil {           // evidence that slipped past NormalizeAlert
		o.Evidence = json.RawMessage(boundEvidence(string(o.Evidence)))
		b, _ = json.Marshal(o)
	}
	occ, ok := splitArray(list)
	if !ok && strings.TrimSpace(list) != "" {
		// Not a list we wrote: keep it as the first entry.
		occ = []string{boundEvidence(list)}
	}
	occ = append(occ, string(b))
	dropped := 0
	if max < 2 {
		max = 2
	}
	if len(occ) > max {
		dropped = len(occ) - max
		occ = append(occ[:1], occ[1+dropped:]...)
	}
	return "[" + strings.Join(occ, ",") + "]", dropped
}

// splitArray returns the top-level elements of the JSON array s, or
// false if s is not an array.
func splitArray(s string) ([]string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	var out []string
	depth, start, inStr, esc := 0, 1, false, false
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth < 0 {
				return nil, false
			}
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if inStr || depth != 0 {
		return nil, false
	}
	last := strings.TrimSpace(s[start : len(s)-1])
	switch {
	case last != "":
		out = append(out, last)
	case len(out) > 0:
		return nil, false // a trailing comma
	}
	return out, true
}

// Occurrences decodes a stored alert's evidence list.
func Occurrences(evidence string) []Occurrence {
	var occ []Occurrence
	if json.Unmarshal([]byte(evidence), &occ) != nil {
		return nil
	}
	return occ
}

func latestMessage(st AlertState) string {
	occ := Occurrences(st.Evidence)
	if len(occ) == 0 || occ[len(occ)-1].Message == st.Message {
		return ""
	}
	return occ[len(occ)-1].Message
}

// LatestMessage is the message of st's latest kept occurrence when it
// differs from the alert's own (a second new address for a phone), or
// "": a listing shows what happened last, not only what happened first.
func (st AlertState) LatestMessage() string { return latestMessage(st) }

// valueKinds names, for each alert kind whose occurrences each carry one
// value of their own, that value's evidence key, what a notice calls
// the values, and how it shows one on a line: a burst of them merges
// into one alert, whose message names only the first.
var valueKinds = map[string]struct {
	key, label string
	show       func(string) string
}{
	AlertNewIP:        {"ip", "New addresses", showAddr},
	AlertNewUserAgent: {"user_agent", "New user agents", showAgent}, // the phone's to write
}

// MaxNoticeValues bounds the values a notice names.
const MaxNoticeValues = 5

// showAddr shows an address as is when it is one without a zone,
// quoted with every non-ASCII character escaped when it is not: netip
// takes any bytes as a zone ("fe80::1%\n, 192.0.2.8").
func showAddr(s string) string {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return s
	}
	return strconv.QuoteToASCII(s)
}

// Values is what n's merged occurrences saw, for the kinds that carry a
// value (the addresses of new_ip, the user agents of new_user_agent):
// the distinct values of the kept occurrences, first seen first, each
// escaped to one line; at most MaxNoticeValues of them, with the number
// of the rest in more. It is empty unless there are two or more: the
// message names the first.
func (n Notice) Values() (label string, shown []string, more int) {
	label, shown, more, _ = n.values()
	return label, shown, more
}

// values is Values, and how many kept occurrences named a value: one
// whose evidence does not (cut to a string by an older release, or
// crafted) is not listed, and the text says so.
func (n Notice) values() (label string, shown []string, more, read int) {
	vk, ok := valueKinds[n.Alert.Kind]
	if !ok {
		return "", nil, 0, 0
	}
	seen := map[string]bool{}
	var all []string
	for _, o := range Occurrences(n.Alert.Evidence) {
		var ev map[string]any
		if json.Unmarshal(o.Evidence, &ev) != nil {
			continue
		}
		v, ok := ev[vk.key].(string)
		if !ok || v == "" {
			continue
		}
		read++
		if !seen[v] {
			seen[v] = true
			all = append(all, vk.show(v))
		}
	}
	if len(all) < 2 {
		return "", nil, 0, read
	}
	if len(all) > MaxNoticeValues {
		return vk.label, all[:MaxNoticeValues], len(all) - MaxNoticeValues, read
	}
	return vk.label, all, 0, read
}

// Key identifies a notice, the same for every notifier and every retry,
// so that a receiver can drop a duplicate ("42-58": alert 42 at count 58).
func (n Notice) Key() string {
	if n.Event == NoticeTest || n.Alert.ID == 0 {
		return fmt.Sprintf("test-%d", n.At.UnixNano())
	}
	return fmt.Sprintf("%d-%d", n.Alert.ID, n.Alert.Count)
}

// Title is a notice's one-line summary, for an e-mail subject.
func (n Notice) Title() string {
	a := n.oneLineNames()
	switch n.Event {
	case NoticeDigest:
		return fmt.Sprintf("[tollguard] %s on %s: %d more since the last notice", a.Kind, a.Subject, n.Repeats)
	case NoticeEscalation:
		return fmt.Sprintf("[tollguard] %s: %s on %s escalated", strings.ToUpper(string(a.Severity)), a.Kind, a.Subject)
	case NoticeTest:
		return "[tollguard] test alert"
	}
	return fmt.Sprintf("[tollguard] %s: %s on %s", strings.ToUpper(string(a.Severity)), a.Kind, a.Subject)
}

// Text is a notice as plain text for a person: what happened, the facts,
// and what to do.
func (n Notice) Text() string {
	a := n.oneLineNames()
	var b strings.Builder
	const layout = "2006-01-02 15:04:05 MST"
	ts := func(t time.Time) string { return t.UTC().Format(layout) }
	switch n.Event {
	case NoticeTest:
		fmt.Fprintf(&b, "This is a test alert from tollguard, sent at %s.\n\n%s\n\nIf you can read this, alerts reach you. Nothing else to do.\n", ts(n.At), a.Message)
		return b.String()
	case NoticeDigest:
		fmt.Fprintf(&b, "%s on %s happened %d more time%s since the last notice (%s).\n\n", a.Kind, a.Subject, n.Repeats, plural(n.Repeats), ts(n.Since))
	case NoticeEscalation:
		fmt.Fprintf(&b, "%s on %s is now %s.\n\n", a.Kind, a.Subject, strings.ToUpper(string(a.Severity)))
	}
	// The message is one line, and may quote what a caller or phone
	// wrote: a line break in it would print lines that look like ours.
	fmt.Fprintf(&b, "%s\n", lineEscaper.Replace(a.Message))
	if n.Latest != "" {
		fmt.Fprintf(&b, "Latest: %s\n", lineEscaper.Replace(n.Latest))
	}
	if label, vs, more, read := n.values(); len(vs) > 0 {
		list := strings.Join(vs, ", ")
		if more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		// Occurrences past the kept ones are counted, not kept, and a
		// kept one may name no value: say so.
		switch kept := len(Occurrences(a.Evidence)); {
		case read < kept:
			list += fmt.Sprintf(" (in the %d of %d occurrences kept and readable)", read, a.Count)
		case kept < a.Count:
			list += fmt.Sprintf(" (in the %d of %d occurrences kept)", kept, a.Count)
		}
		fmt.Fprintf(&b, "%s: %s\n", label, list)
	}
	b.WriteString("\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "  %-11s %s\n", k+":", v)
		}
	}
	if a.ID != 0 {
		row("Alert", fmt.Sprintf("#%d", a.ID))
	}
	row("Kind", a.Kind)
	row("Severity", string(a.Severity))
	row("Subject", a.Subject)
	row("Account", a.Account)
	row("Extension", a.Extension)
	if !a.FirstSeen.IsZero() {
		row("First seen", ts(a.FirstSeen))
		row("Last seen", ts(a.LastSeen))
	}
	row("Count", fmt.Sprint(a.Count))
	if advice := AlertAdvice(a); advice != "" {
		fmt.Fprintf(&b, "\nWhat to do:\n%s\n", indent(advice, "  "))
	}
	if occ := Occurrences(a.Evidence); len(occ) > 0 {
		last := occ[len(occ)-1]
		if len(last.Evidence) > 0 {
			fmt.Fprintf(&b, "\nEvidence (latest occurrence, %s):\n  %s\n", ts(time.Unix(last.At, 0)), last.Evidence)
		}
	} else if a.Evidence != "" {
		fmt.Fprintf(&b, "\nEvidence:\n  %s\n", a.Evidence)
	}
	if a.ID != 0 {
		fmt.Fprintf(&b, "\nWhen it is dealt with: tollguard alerts ack %d\nAll recent alerts:    tollguard alerts --since 24h\n", a.ID)
	}
	return b.String()
}

// oneLineNames is n's alert with its subject, account and extension
// escaped by lineEscaper: the gate records an extension by the name the
// dialplan passed, and Text prints these in its rows and its advice.
func (n Notice) oneLineNames() Alert {
	a := n.Alert
	a.Subject, a.Account, a.Extension = lineEscaper.Replace(a.Subject), lineEscaper.Replace(a.Account), lineEscaper.Replace(a.Extension)
	return a
}

// lineEscaper keeps a text on its line: tab, CR and LF are written as
// \t, \r and \n.
var lineEscaper = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`)

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// ungatedRedirects counts the kept occurrences of ungated_call alert a
// whose evidence names a redirect (a 302 that Dial followed past the
// gate), of kept: their advice is the i option, not the Gosub.
func ungatedRedirects(a Alert) (redirects, kept int) {
	occ := Occurrences(a.Evidence)
	for _, o := range occ {
		var ev struct {
			Redirect string `json:"redirect"`
		}
		if json.Unmarshal(o.Evidence, &ev) == nil && ev.Redirect != "" {
			redirects++
		}
	}
	return redirects, len(occ)
}

// AlertAdvice tells the admin what to do about an alert.
func AlertAdvice(a Alert) string {
	ext := a.Extension
	if ext == "" {
		ext = "EXT"
	}
	acct := a.Account
	if acct == "" {
		acct = "ACCOUNT"
	}
	switch a.Kind {
	case AlertCredentialsCompromised:
		return fmt.Sprintf(`Someone else knows extension %[1]s's SIP password: it registered from outside
its IP access list. Tollguard removed that registration and blocked the extension.
1. Change the extension's SIP password on the PBX and on its phones.
2. Check where it registers from: tollguard regs %[1]s
3. Then lift the block: tollguard unblock %[1]s`, ext)
	case AlertNewIP, AlertNewUserAgent:
		return fmt.Sprintf(`If you expected this (a new phone, a move, a home worker), nothing to do.
If not, treat the SIP password as stolen: change it, check tollguard regs %[1]s,
and set an IP access list on the extension.`, ext)
	case AlertBurst, AlertConcurrent, AlertSweep, AlertHighRisk:
		return fmt.Sprintf(`This pattern is typical of toll fraud through a hijacked extension or account.
Check the calls: tollguard calls --ext %[1]s --since 1h
If they are not genuine, change the SIP password of the extension. If tollguard
blocked it, lift the block after checking: tollguard unblock %[1]s`, ext)
	case AlertUngated:
		gosub := `A channel dialled out without passing the tollguard gate: some dialplan path
lacks the include. Find the context that placed it (see the evidence) and add
  same => n,Gosub(tollguard-outbound,s,1(${EXTEN}))
before its Dial.`
		redirect := `An endpoint a Dial rang answered with a SIP 302 naming a dial string (the
evidence's redirect), and Dial called it itself: no dialplan ran, so no gate.
Give every Dial and Queue that rings an endpoint the i option, for example
  Dial(PJSIP/${EXTEN},30,i)
and treat the SIP password of the extension that answered so as stolen.`
		switch r, kept := ungatedRedirects(a); {
		case r == 0:
			return gosub
		case r < kept:
			return redirect + "\n\nFor the occurrences without a redirect: " + gosub
		}
		return redirect
	case AlertLongCall:
		return fmt.Sprintf(`Check whether the call is genuine: tollguard calls --ext %s --since 24h
Hang it up on the PBX if it is not.`, ext)
	case AlertSpend:
		return fmt.Sprintf(`Check account %s's calls for this month and raise its threshold if the spend is expected.`, acct)
	case AlertBlocked:
		return fmt.Sprintf(`Tollguard set a block on its own (see the evidence for why). After checking,
lift it: tollguard unblock %s`, ext)
	}
	return ""
}

// AlertMetrics counts what the alert subsystem does. The daemon wires it
// to Prometheus; nil-safe callers use NopAlertMetrics.
type AlertMetrics interface {
	// AlertRaised counts every occurrence raised, merged or not.
	AlertRaised(kind string, sev Severity)
	// NotifierFailed counts a failed delivery attempt; final is true when
	// the notifier gave up on it.
	NotifierFailed(notifier string, final bool)
	// NotificationSent counts a delivered notice.
	NotificationSent(notifier string)
	// NoticesAbandoned counts n notices given up on untried because
	// their notifier was removed from the config: undelivered, like
	// those given up on after their retries.
	NoticesAbandoned(notifier string, n int)
}

// NopAlertMetrics counts nothing.
type NopAlertMetrics struct{}

func (NopAlertMetrics) AlertRaised(string, Severity) {}
func (NopAlertMetrics) NotifierFailed(string, bool)  {}
func (NopAlertMetrics) NoticesAbandoned(string, int) {}
func (NopAlertMetrics) NotificationSent(string)      {}

// Notifier delivers notices: the log, e-mail, a webhook. Notify must
// honour ctx's deadline; an error means "try again later".
type Notifier interface {
	Name() string
	Notify(ctx context.Context, n Notice) error
}
