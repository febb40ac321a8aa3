package tollguard_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// step is one occurrence in a merge scenario, or (digestAt) a check of
// the digest at a time.
type step struct {
	at       time.Duration // after t0
	sev      tollguard.Severity
	digestAt bool

	wantNew     bool                  // a new alert (not merged)
	wantNotice  tollguard.NoticeEvent // "" for none
	wantRepeats int
	wantCount   int
	wantSev     tollguard.Severity
	wantDue     time.Duration // after t0; -1 for none
}

func TestAlertPolicyMerge(t *testing.T) {
	const cd = 15 * time.Minute
	min := time.Minute
	tests := []struct {
		name   string
		policy tollguard.AlertPolicy
		steps  []step
	}{
		{
			name:   "RepeatWithinCoolDownMergesQuietlyAndSchedulesDigest",
			policy: tollguard.AlertPolicy{CoolDown: cd},
			steps: []step{
				{at: 0, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantDue: -1},
				{at: 1 * min, wantCount: 2, wantDue: cd},
				{at: 2 * min, wantCount: 3, wantDue: cd},
				{at: 14 * min, digestAt: true, wantCount: 3, wantDue: cd}, // not yet due
				{at: 15 * min, digestAt: true, wantNotice: tollguard.NoticeDigest, wantRepeats: 2, wantCount: 3, wantDue: -1},
				// The next repeat's digest is due a cool-down after this one.
				{at: 16 * min, wantCount: 4, wantDue: 30 * min},
			},
		},
		{
			name:   "CoolDownSlidesWithLastSeen",
			policy: tollguard.AlertPolicy{CoolDown: cd},
			steps: []step{
				{at: 0, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantDue: -1},
				{at: 10 * min, wantCount: 2, wantDue: cd},
				{at: 20 * min, wantCount: 3, wantDue: cd}, // 10 min after the last: still merges
				{at: 36 * min, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantDue: -1},
			},
		},
		{
			name:   "QuietLongerThanCoolDownIsANewAlert",
			policy: tollguard.AlertPolicy{CoolDown: cd},
			steps: []step{
				{at: 0, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantDue: -1},
				{at: cd + time.Second, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantDue: -1},
			},
		},
		{
			name:   "ExactlyAtCoolDownStillMerges",
			policy: tollguard.AlertPolicy{CoolDown: cd},
			steps: []step{
				{at: 0, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantDue: -1},
				{at: cd, wantCount: 2, wantDue: cd},
			},
		},
		{
			name:   "HigherSeverityEscalatesAtOnce",
			policy: tollguard.AlertPolicy{CoolDown: cd},
			steps: []step{
				{at: 0, sev: tollguard.SeverityWarning, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantSev: tollguard.SeverityWarning, wantDue: -1},
				{at: min, sev: tollguard.SeverityWarning, wantCount: 2, wantSev: tollguard.SeverityWarning, wantDue: cd},
				{at: 2 * min, sev: tollguard.SeverityCritical, wantNotice: tollguard.NoticeEscalation, wantRepeats: 2, wantCount: 3, wantSev: tollguard.SeverityCritical, wantDue: -1},
				// Lower again: merges quietly, stays critical.
				{at: 3 * min, sev: tollguard.SeverityInfo, wantCount: 4, wantSev: tollguard.SeverityCritical, wantDue: 2*min + cd},
			},
		},
		{
			name:   "CountCrossingThresholdSendsDigestAtOnce",
			policy: tollguard.AlertPolicy{CoolDown: cd, DigestAt: []int{3, 5}},
			steps: []step{
				{at: 0, wantNew: true, wantNotice: tollguard.NoticeNew, wantCount: 1, wantDue: -1},
				{at: 1, wantCount: 2, wantDue: cd},
				{at: 2, wantNotice: tollguard.NoticeDigest, wantRepeats: 2, wantCount: 3, wantDue: -1},
				{at: 3, wantCount: 4, wantDue: 2 + cd},
				{at: 4, wantNotice: tollguard.NoticeDigest, wantRepeats: 2, wantCount: 5, wantDue: -1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			var st tollguard.AlertState
			nextID := int64(1)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				sev := s.sev
				if sev == "" {
					sev = tollguard.SeverityWarning
				}
				a := tollguard.Alert{Kind: tollguard.AlertBurst, Subject: "ext:1001", Extension: "1001", Severity: sev, Message: "burst"}
				var n *tollguard.Notice
				isNew := false
				switch {
				case s.digestAt:
					var dn tollguard.Notice
					var ok bool
					st, dn, ok = p.Digest(st, now)
					if ok {
						n = &dn
					}
				case p.Mergeable(st, a.Kind, a.Subject, now):
					st, n = p.Merge(st, a, now)
				default:
					isNew = true
					var nn tollguard.Notice
					st, nn = p.NewAlertState(a, now)
					st.ID = nextID
					nextID++
					n = &nn
				}
				if isNew != s.wantNew {
					t.Errorf("step %d: new alert = %v, want %v", i, isNew, s.wantNew)
				}
				got := tollguard.NoticeEvent("")
				if n != nil {
					got = n.Event
				}
				if got != s.wantNotice {
					t.Fatalf("step %d: notice %q, want %q", i, got, s.wantNotice)
				}
				if n != nil && n.Repeats != s.wantRepeats {
					t.Errorf("step %d: repeats %d, want %d", i, n.Repeats, s.wantRepeats)
				}
				if st.Count != s.wantCount {
					t.Errorf("step %d: count %d, want %d", i, st.Count, s.wantCount)
				}
				if s.wantSev != "" && st.Severity != s.wantSev {
					t.Errorf("step %d: severity %s, want %s", i, st.Severity, s.wantSev)
				}
				wantDue := time.Time{}
				if s.wantDue >= 0 {
					wantDue = t0.Add(s.wantDue)
				}
				if !st.DigestDue.Equal(wantDue) {
					t.Errorf("step %d: digest due %v, want %v", i, st.DigestDue, wantDue)
				}
			}
		})
	}
}

func TestAlertPolicyAckedDoesNotMerge(t *testing.T) {
	p := tollguard.AlertPolicy{}
	st, _ := p.NewAlertState(tollguard.Alert{Kind: "burst", Subject: "ext:1", Severity: tollguard.SeverityWarning, Message: "m"}, t0)
	st.ID = 1
	if !p.Mergeable(st, "burst", "ext:1", t0.Add(time.Minute)) {
		t.Fatal("open alert should merge")
	}
	if p.Mergeable(st, "burst", "ext:2", t0.Add(time.Minute)) || p.Mergeable(st, "sweep", "ext:1", t0.Add(time.Minute)) {
		t.Error("different kind or subject merged")
	}
	st.AckedAt = t0.Add(30 * time.Second)
	if p.Mergeable(st, "burst", "ext:1", t0.Add(time.Minute)) {
		t.Error("acknowledged alert merged a new occurrence")
	}
}

func TestAlertPolicyTenfoldBeyondThresholds(t *testing.T) {
	p := tollguard.AlertPolicy{CoolDown: time.Hour, DigestAt: []int{2, 3}, MaxEvidence: 2}
	st, _ := p.NewAlertState(tollguard.Alert{Kind: "burst", Subject: "ext:1", Message: "m", Severity: tollguard.SeverityWarning}, t0)
	st.ID = 1
	var at []int
	for i := 2; i <= 4000; i++ {
		var n *tollguard.Notice
		st, n = p.Merge(st, tollguard.Alert{Kind: "burst", Subject: "ext:1", Message: "m", Severity: tollguard.SeverityWarning}, t0)
		if n != nil {
			at = append(at, st.Count)
		}
	}
	want := []int{2, 3, 30, 300, 3000}
	if len(at) != len(want) {
		t.Fatalf("digests at counts %v, want %v", at, want)
	}
	for i := range want {
		if at[i] != want[i] {
			t.Fatalf("digests at counts %v, want %v", at, want)
		}
	}
}

func TestAlertEvidenceBounded(t *testing.T) {
	p := tollguard.AlertPolicy{MaxEvidence: 3, CoolDown: time.Hour}
	mk := func(i int) tollguard.Alert {
		ev, _ := json.Marshal(map[string]int{"n": i})
		return tollguard.Alert{Kind: "burst", Subject: "ext:1", Severity: tollguard.SeverityWarning, Message: "m", Evidence: string(ev)}
	}
	st, _ := p.NewAlertState(mk(0), t0)
	st.ID = 1
	for i := 1; i < 10; i++ {
		st, _ = p.Merge(st, mk(i), t0.Add(time.Duration(i)*time.Second))
	}
	occ := tollguard.Occurrences(st.Evidence)
	if len(occ) != 3 {
		t.Fatalf("kept %d occurrences, want 3: %s", len(occ), st.Evidence)
	}
	var got []string
	for _, o := range occ {
		got = append(got, string(o.Evidence))
	}
	if want := []string{`{"n":0}`, `{"n":8}`, `{"n":9}`}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("evidence %v, want first and latest %v", got, want)
	}
	if st.Dropped != 7 {
		t.Errorf("dropped %d, want 7", st.Dropped)
	}
	if !json.Valid([]byte(st.Evidence)) {
		t.Errorf("evidence list is not JSON: %s", st.Evidence)
	}
}

func TestAlertEvidenceWithTrickyJSON(t *testing.T) {
	p := tollguard.AlertPolicy{MaxEvidence: 3, CoolDown: time.Hour}
	tricky := []string{
		`{"ua":"x,]\"[y","nums":[1,[2,3]],"m":{"k":"}"}}`,
		`"a string, with [brackets] and \\"`,
		"{\n  \"pretty\": [1,\n 2]\n}",
		`[]`,
		`{}`,
	}
	mk := func(ev string) tollguard.Alert {
		return tollguard.Alert{Kind: "burst", Subject: "ext:1", Severity: tollguard.SeverityWarning, Message: "m", Evidence: ev}
	}
	st, _ := p.NewAlertState(mk(tricky[0]), t0)
	st.ID = 1
	for i, ev := range tricky[1:] {
		st, _ = p.Merge(st, mk(ev), t0.Add(time.Duration(i+1)*time.Second))
		if !json.Valid([]byte(st.Evidence)) {
			t.Fatalf("after %q the list is not JSON: %s", ev, st.Evidence)
		}
	}
	occ := tollguard.Occurrences(st.Evidence)
	if len(occ) != 3 || st.Dropped != 2 {
		t.Fatalf("kept %d (dropped %d): %s", len(occ), st.Dropped, st.Evidence)
	}
	var first map[string]any
	if err := json.Unmarshal(occ[0].Evidence, &first); err != nil || first["ua"] != `x,]"[y` {
		t.Errorf("first occurrence %s (%v)", occ[0].Evidence, err)
	}
	if string(occ[1].Evidence) != `[]` || string(occ[2].Evidence) != `{}` {
		t.Errorf("latest %s %s", occ[1].Evidence, occ[2].Evidence)
	}
}

func TestNormalizeAlert(t *testing.T) {
	tests := []struct {
		name    string
		in      tollguard.Alert
		wantErr bool
		check   func(t *testing.T, a tollguard.Alert)
	}{
		{name: "NoKind", in: tollguard.Alert{Subject: "ext:1"}, wantErr: true},
		{name: "NoSubjectNoExtension", in: tollguard.Alert{Kind: "burst"}, wantErr: true},
		{name: "BadSeverity", in: tollguard.Alert{Kind: "burst", Subject: "ext:1", Severity: "urgent"}, wantErr: true},
		{name: "SubjectFromExtension", in: tollguard.Alert{Kind: "burst", Extension: "1001"}, check: func(t *testing.T, a tollguard.Alert) {
			if a.Subject != "ext:1001" || a.Severity != tollguard.SeverityWarning || a.Message == "" {
				t.Errorf("got subject %q severity %q message %q", a.Subject, a.Severity, a.Message)
			}
		}},
		{name: "EvidenceNotJSONKeptAsString", in: tollguard.Alert{Kind: "burst", Subject: "ext:1", Evidence: "ip 1.2.3.4"}, check: func(t *testing.T, a tollguard.Alert) {
			if a.Evidence != `"ip 1.2.3.4"` {
				t.Errorf("evidence %s", a.Evidence)
			}
		}},
		{name: "HugeEvidenceTruncated", in: tollguard.Alert{Kind: "burst", Subject: "ext:1", Evidence: `"` + strings.Repeat("é", 5000) + `"`}, check: func(t *testing.T, a tollguard.Alert) {
			if len(a.Evidence) > tollguard.MaxEvidenceBytes || !json.Valid([]byte(a.Evidence)) {
				t.Errorf("evidence %d bytes, valid JSON %v", len(a.Evidence), json.Valid([]byte(a.Evidence)))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tollguard.NormalizeAlert(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Errorf("code %q, want invalid", tollguard.ErrorCode(err))
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}
}

func TestNoticeText(t *testing.T) {
	p := tollguard.AlertPolicy{CoolDown: 15 * time.Minute, DigestAt: []int{1000}}
	a := tollguard.Alert{Kind: tollguard.AlertCredentialsCompromised, Severity: tollguard.SeverityCritical, Subject: "ext:1001",
		Account: "acme", Extension: "1001", Message: "Extension 1001 registered from 198.51.100.7, outside its IP access list.",
		Evidence: `{"ip":"198.51.100.7"}`}
	st, n := p.NewAlertState(a, t0)
	n.Alert.ID = 42
	text := n.Text()
	for _, want := range []string{"198.51.100.7", "tollguard unblock 1001", "tollguard alerts ack 42", "acme", "Count:", `{"ip":"198.51.100.7"}`} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if got := n.Title(); got != "[tollguard] CRITICAL: credentials_compromised on ext:1001" {
		t.Errorf("title %q", got)
	}
	st.ID = 42
	for i := 0; i < 57; i++ {
		st, _ = p.Merge(st, a, t0.Add(time.Minute))
	}
	st, d, ok := p.Digest(st, t0.Add(15*time.Minute))
	if !ok {
		t.Fatal("no digest")
	}
	if got := d.Title(); !strings.Contains(got, "57 more since the last notice") {
		t.Errorf("digest title %q", got)
	}
	if !strings.Contains(d.Text(), "57 more times since the last notice") {
		t.Errorf("digest text:\n%s", d.Text())
	}
}

// TestUngatedNoticeAdvice: an ungated_call made by a phone's 302 that
// Dial followed is fixed with Dial's i option, not by adding the Gosub
// to a context that has it; an alert that merged both kinds says both.
func TestUngatedNoticeAdvice(t *testing.T) {
	p := tollguard.AlertPolicy{CoolDown: 15 * time.Minute, DigestAt: []int{1000}}
	plain := tollguard.Alert{Kind: tollguard.AlertUngated, Severity: tollguard.SeverityWarning, Subject: "ext:1001", Extension: "1001",
		Message: "extension 1001 dialled 00252612345678 out with no tollguard gate record", Evidence: `{"dialled":"00252612345678"}`}
	redirect := plain
	redirect.Evidence = `{"dialled":"00252612345678","redirect":"PJSIP/00252612345678@itsp"}`
	const gosub, iopt = "Gosub(tollguard-outbound", "Dial(PJSIP/${EXTEN},30,i)"
	_, n := p.NewAlertState(plain, t0)
	if text := n.Text(); !strings.Contains(text, gosub) || strings.Contains(text, iopt) {
		t.Errorf("plain ungated_call advice:\n%s", text)
	}
	st, n := p.NewAlertState(redirect, t0)
	if text := n.Text(); strings.Contains(text, gosub) || !strings.Contains(text, iopt) {
		t.Errorf("redirect ungated_call advice:\n%s", text)
	}
	st.ID = 7
	st, _ = p.Merge(st, plain, t0.Add(time.Minute))
	st, d, ok := p.Digest(st, t0.Add(15*time.Minute))
	if !ok {
		t.Fatal("no digest")
	}
	if text := d.Text(); !strings.Contains(text, gosub) || !strings.Contains(text, iopt) {
		t.Errorf("merged ungated_call advice:\n%s", text)
	}
}

// TestAuditFindingRecurs: an unchanged audit finding repeats its alert
// quietly only while it stood all along: one the previous run of its
// audit did not find is back, which is news; so is a changed one.
func TestAuditFindingRecurs(t *testing.T) {
	var p tollguard.AlertPolicy
	a := tollguard.Alert{Kind: "audit_anonymous_endpoint", Subject: "endpoint:anonymous", Severity: tollguard.SeverityCritical,
		Message: "anonymous endpoint", Renotify: tollguard.AuditRenotify}
	st := tollguard.AlertState{Alert: a, NotifiedAt: t0}
	st.ID, st.LastSeen = 1, t0 // the previous run, which started a minute before, found it
	acked := func(s tollguard.AlertState) tollguard.AlertState { s.AckedAt = t0.Add(time.Hour); return s }
	for _, tt := range []struct {
		name    string
		st      tollguard.AlertState
		prevRun time.Time
		at      time.Time
		recur   bool
	}{
		{"next run, open", st, t0.Add(-time.Minute), t0.Add(24 * time.Hour), true},
		{"next run, acknowledged", acked(st), t0.Add(-time.Minute), t0.Add(24 * time.Hour), true},
		{"next run 25 h later (autumn clock change)", acked(st), t0.Add(-time.Minute), t0.Add(25*time.Hour + time.Second), true},
		{"previous run unknown", acked(st), time.Time{}, t0.Add(72 * time.Hour), true},
		{"back after a run without it", acked(st), t0.Add(24 * time.Hour), t0.Add(48 * time.Hour), false},
		{"a week after the ack", acked(st), t0.Add(-time.Minute), t0.Add(8 * 24 * time.Hour), false},
	} {
		a := a
		a.PrevRun = tt.prevRun
		if got := p.Recurs(tt.st, a, tt.at); got != tt.recur {
			t.Errorf("%s: recurs %v, want %v", tt.name, got, tt.recur)
		}
	}
	changed := a
	changed.Message = "other"
	if p.Recurs(st, changed, t0.Add(24*time.Hour)) {
		t.Error("a changed finding recurs quietly")
	}
}

// TestNoticeTextKeepsNamesOnTheirLines: the gate records an extension
// by the name the dialplan passed, and a detector's alert about it
// carries that name in its subject, its extension and its advice. The
// message was escaped, but the rest printed a line break in the name
// raw, in the e-mail and webhook text, its subject line and `alerts
// show`: lines that read as tollguard's own.
func TestNoticeTextKeepsNamesOnTheirLines(t *testing.T) {
	const forged = "FORGED: nothing to do"
	ext := "1001\n" + forged
	a := tollguard.Alert{ID: 7, Kind: tollguard.AlertHighRisk, Severity: tollguard.SeverityWarning, Subject: tollguard.ExtSubject(ext),
		Account: "acme\r\n" + forged, Extension: ext, Message: "extension " + ext + " tried 5 calls", Count: 1,
		FirstSeen: t0, LastSeen: t0}
	for _, ev := range []tollguard.NoticeEvent{tollguard.NoticeNew, tollguard.NoticeDigest, tollguard.NoticeEscalation} {
		n := tollguard.Notice{Event: ev, Alert: a, At: t0, Since: t0, Repeats: 2}
		if text := n.Text(); strings.Contains(text, "\n"+forged) || strings.Contains(text, "\r") {
			t.Errorf("%s: text prints the name's line break:\n%s", ev, text)
		} else if !strings.Contains(text, `1001\nFORGED`) {
			t.Errorf("%s: text lacks the escaped name:\n%s", ev, text)
		}
		if title := n.Title(); strings.ContainsAny(title, "\r\n") {
			t.Errorf("%s: title %q has a line break", ev, title)
		}
	}
}

// burst raises the kind's finding of each registration of extension
// 1001, a second apart from t0, against a history that knows one
// address and one phone, and returns every notice: a burst merges into
// one alert, and its digest is made a cool-down later.
func burst(t *testing.T, kind string, regs ...tollguard.Contact) []tollguard.Notice {
	t.Helper()
	var p tollguard.AlertPolicy
	hist := tollguard.ContactHistory{Registered: true, IPs: []string{"192.0.2.10"}, Agents: []string{"Yealink T46U"}}
	var st tollguard.AlertState
	var out []tollguard.Notice
	for i, c := range regs {
		at := t0.Add(time.Duration(i) * time.Second)
		var a *tollguard.Alert
		for _, f := range tollguard.JudgeContact(regExt(), &tollguard.Account{ID: "acme"}, hist, c, at).Findings {
			if f.Kind == kind {
				fa := f.Alert()
				a = &fa
			}
		}
		if a == nil {
			t.Fatalf("registration %d (%s, %q) raised no %s", i, c.IP, c.UserAgent, kind)
		}
		if i == 0 {
			var n tollguard.Notice
			st, n = p.NewAlertState(*a, at)
			st.ID = 42
			out = append(out, n)
			continue
		}
		if !p.Mergeable(st, a.Kind, a.Subject, at) {
			t.Fatalf("registration %d does not merge", i)
		}
		var n *tollguard.Notice
		if st, n = p.Merge(st, *a, at); n != nil {
			out = append(out, *n)
		}
	}
	st, n, ok := p.Digest(st, t0.Add(time.Hour))
	if ok {
		out = append(out, n)
	}
	return out
}

// valuesLine is the text's line that starts with label.
func valuesLine(text, label string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, label+": ") {
			return l
		}
	}
	return ""
}

// TestDigestNamesEachNewValue: new addresses merge into one new_ip alert
// for 15 minutes, whose message names the first; a thief's address
// between a phone's two DHCP leases showed only in `tollguard alerts
// show`, as the digest named the latest message alone.
func TestDigestNamesEachNewValue(t *testing.T) {
	const phone = "Yealink T46U"
	t.Run("ThreeAddresses", func(t *testing.T) {
		ns := burst(t, tollguard.AlertNewIP, regContact("10.1.0.5", tollguard.AddrRewritten, phone),
			regContact("203.0.113.66", tollguard.AddrRewritten, phone), regContact("10.1.0.5", tollguard.AddrRewritten, phone),
			regContact("10.1.0.9", tollguard.AddrRewritten, phone))
		if len(ns) != 2 || ns[1].Event != tollguard.NoticeDigest {
			t.Fatalf("notices %+v, want the new alert's and one digest", ns)
		}
		if line := valuesLine(ns[0].Text(), "New addresses"); line != "" {
			t.Errorf("the first notice, of one address, lists it again: %q", line)
		}
		d := ns[1]
		if got, want := valuesLine(d.Text(), "New addresses"), "New addresses: 10.1.0.5, 203.0.113.66, 10.1.0.9"; got != want {
			t.Errorf("digest names %q, want %q:\n%s", got, want, d.Text())
		}
		if label, vs, more := d.Values(); label != "New addresses" || len(vs) != 3 || more != 0 {
			t.Errorf("Values() = %q %q %d", label, vs, more)
		}
	})
	t.Run("FiftyAddressesBounded", func(t *testing.T) {
		var regs []tollguard.Contact
		for i := range 50 {
			regs = append(regs, regContact(fmt.Sprintf("198.51.100.%d", i+1), tollguard.AddrRewritten, phone))
		}
		ns := burst(t, tollguard.AlertNewIP, regs...)
		d := ns[len(ns)-1]
		// The first and the latest 19 of the 50 are kept (MaxEvidence).
		want := "New addresses: 198.51.100.1, 198.51.100.32, 198.51.100.33, 198.51.100.34, 198.51.100.35 and 15 more (in the 20 of 50 occurrences kept)"
		if got := valuesLine(d.Text(), "New addresses"); got != want {
			t.Errorf("digest names\n%q, want\n%q", got, want)
		}
		if _, vs, more := d.Values(); len(vs) != tollguard.MaxNoticeValues || more != 15 {
			t.Errorf("Values() = %q and %d more", vs, more)
		}
	})
	t.Run("UserAgentsEscaped", func(t *testing.T) {
		// Cyrillic е, and a line break and ANSI escape that would forge a
		// line of the e-mail or clear the admin's terminal.
		lookalike, forged := "Y\u0435alink T46U", "x\n\x1b[2JAll is well"
		ns := burst(t, tollguard.AlertNewUserAgent, regContact("192.0.2.10", tollguard.AddrRewritten, lookalike),
			regContact("192.0.2.10", tollguard.AddrRewritten, forged))
		d := ns[len(ns)-1]
		want := `New user agents: "Y\u0435alink T46U", "x\n\x1b[2JAll is well"`
		if got := valuesLine(d.Text(), "New user agents"); got != want {
			t.Errorf("digest names\n%s, want\n%s", got, want)
		}
		if text := d.Text(); strings.ContainsAny(text, "\x1b\u0435") || strings.Contains(text, "\nAll is well") {
			t.Errorf("text prints a value raw:\n%s", text)
		}
	})
	t.Run("AddressThatIsNotOneEscaped", func(t *testing.T) {
		a := tollguard.Alert{ID: 1, Kind: tollguard.AlertNewIP, Subject: "ext:1001", Severity: tollguard.SeverityWarning,
			Message: "new address", Count: 2, FirstSeen: t0, LastSeen: t0,
			Evidence: `[{"at":1,"severity":"warning","evidence":{"ip":"192.0.2.7"}},{"at":2,"severity":"warning","evidence":{"ip":"192.0.2.8\n\u001b[2J\u0414"}}]`}
		n := tollguard.Notice{Event: tollguard.NoticeDigest, Alert: a, Repeats: 1, At: t0}
		if got, want := valuesLine(n.Text(), "New addresses"), `New addresses: 192.0.2.7, "192.0.2.8\n\x1b[2J\u0414"`; got != want {
			t.Errorf("digest names\n%s, want\n%s", got, want)
		}
	})
}

// TestDigestQuotesAnAddressWithAZone: netip parses an IPv6 zone of any
// bytes, so "fe80::1%<anything>" passed as an address and was printed
// raw: a line break, an ANSI escape, or ", " and a fake second address.
func TestDigestQuotesAnAddressWithAZone(t *testing.T) {
	a := tollguard.Alert{ID: 1, Kind: tollguard.AlertNewIP, Subject: "ext:1001", Severity: tollguard.SeverityWarning,
		Message: "new address", Count: 2, FirstSeen: t0, LastSeen: t0,
		Evidence: `[{"at":1,"severity":"warning","evidence":{"ip":"192.0.2.7"}},{"at":2,"severity":"warning","evidence":{"ip":"fe80::1%x\n\u001b[2J, 192.0.2.8"}}]`}
	n := tollguard.Notice{Event: tollguard.NoticeDigest, Alert: a, Repeats: 1, At: t0}
	text := n.Text()
	if got, want := valuesLine(text, "New addresses"), `New addresses: 192.0.2.7, "fe80::1%x\n\x1b[2J, 192.0.2.8"`; got != want {
		t.Errorf("digest names\n%s, want\n%s", got, want)
	}
	if strings.Contains(text, "\x1b") {
		t.Errorf("text prints the zone raw:\n%s", text)
	}
}

// TestNormalizeAlertKeepsALongObjectAnObject: evidence over
// MaxEvidenceBytes was cut to one string, and its short members (the
// address a digest lists) were no longer readable; the long members are
// cut instead.
func TestNormalizeAlertKeepsALongObjectAnObject(t *testing.T) {
	long := make([]string, 200)
	for i := range long {
		long[i] = fmt.Sprintf("2a02:c7c:5f21:%x:21c:59ff:fe12:%x", 0x1000+i, 0x3400+i)
	}
	ev, _ := json.Marshal(map[string]any{"ip": "203.0.113.66", "known_ips": long, "uri": strings.Repeat("é<", 3000), "port": 5060})
	a, err := tollguard.NormalizeAlert(tollguard.Alert{Kind: tollguard.AlertNewIP, Subject: "ext:1001", Evidence: string(ev)})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if len(a.Evidence) > tollguard.MaxEvidenceBytes || json.Unmarshal([]byte(a.Evidence), &got) != nil {
		t.Fatalf("evidence of %d bytes is not a JSON object within %d: %.200s", len(a.Evidence), tollguard.MaxEvidenceBytes, a.Evidence)
	}
	if got["ip"] != "203.0.113.66" || got["port"] != 5060.0 {
		t.Errorf("short members lost: %.300s", a.Evidence)
	}
	for _, k := range []string{"known_ips", "uri"} {
		if s, _ := got[k].(string); !strings.HasSuffix(s, "…(truncated)") {
			t.Errorf("%s not marked cut: %.100v", k, got[k])
		}
	}
	if s, _ := got["known_ips"].(string); !strings.HasPrefix(s, `["2a02:c7c:5f21:1000:`) {
		t.Errorf("known_ips kept nothing: %.100q", s)
	}
}

// TestNormalizeAlertBoundsEvidenceThatEscapesLong: evidence kept as a
// string was cut to MaxEvidenceBytes-64 bytes before it was quoted, and
// quoting a '"' or a control byte makes it longer: 4000 quotes came out
// as 8000 bytes.
func TestNormalizeAlertBoundsEvidenceThatEscapesLong(t *testing.T) {
	for name, ev := range map[string]string{
		"NotJSON":  strings.Repeat(`"`, 4000),
		"Controls": strings.Repeat("\x01", 5000),
		"Array":    `[` + strings.Repeat(`"\"<é",`, 2000) + `1]`,
	} {
		a, err := tollguard.NormalizeAlert(tollguard.Alert{Kind: "burst", Subject: "ext:1", Evidence: ev})
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if len(a.Evidence) > tollguard.MaxEvidenceBytes || json.Unmarshal([]byte(a.Evidence), &s) != nil || !strings.HasSuffix(s, "…(truncated)") {
			t.Errorf("%s: evidence of %d bytes, want a cut string within %d: %.80s", name, len(a.Evidence), tollguard.MaxEvidenceBytes, a.Evidence)
		}
	}
}

// TestDigestSaysWhenAnOccurrenceNamesNoValue: an occurrence whose
// evidence does not name its address (cut to a string by a release
// before objects were kept objects, or not a string) is not listed; the
// line must not read as if it listed every occurrence.
func TestDigestSaysWhenAnOccurrenceNamesNoValue(t *testing.T) {
	for name, ev := range map[string]string{
		"CutToAString": `"{\"address_source\":\"rewritten\",\"ip\":\"203.0.113.66\",\"known_ips\":[…(truncated)"`,
		"Number":       `{"ip":203}`,
		"Null":         `{"ip":null}`,
		"Object":       `{"ip":{"v":"203.0.113.66"}}`,
		"Missing":      `{"uri":"sip:1001@203.0.113.66"}`,
	} {
		t.Run(name, func(t *testing.T) {
			a := tollguard.Alert{ID: 1, Kind: tollguard.AlertNewIP, Subject: "ext:1001", Severity: tollguard.SeverityWarning,
				Message: "new address", Count: 3, FirstSeen: t0, LastSeen: t0,
				Evidence: `[{"at":1,"severity":"warning","evidence":{"ip":"192.0.2.7"}},{"at":2,"severity":"warning","evidence":` + ev +
					`},{"at":3,"severity":"warning","evidence":{"ip":"192.0.2.8"}}]`}
			n := tollguard.Notice{Event: tollguard.NoticeDigest, Alert: a, Repeats: 2, At: t0}
			want := "New addresses: 192.0.2.7, 192.0.2.8 (in the 2 of 3 occurrences kept and readable)"
			if got := valuesLine(n.Text(), "New addresses"); got != want {
				t.Errorf("digest names\n%s, want\n%s", got, want)
			}
		})
	}
}
