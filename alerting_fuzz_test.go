package tollguard_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// FuzzAlertEvidence: whatever a detector or a crafted registration puts
// in an alert's evidence, NormalizeAlert keeps it as valid JSON within
// MaxEvidenceBytes (unchanged when it already was), and a new_ip or
// new_user_agent notice built from kept occurrences carrying it never
// panics and never writes a control character but its line breaks.
func FuzzAlertEvidence(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"ip":"192.0.2.1"}`, `{"user_agent":"Yеalink\u001b[2J"}`, `{"ip":"fe80::1%\n, 1.2.3.4"}`,
		`"a string"`, `[1,2]`, `{"ip":7}`, `{"ip":null}`, `not json`, `{"known_ips":"` + strings.Repeat("2001:db8::1,", 400) + `","ip":"2001:db8::2"}`,
		`{"a":"` + strings.Repeat(`\"`, 3000) + `"}`, strings.Repeat(`\u0001`, 2000)} {
		f.Add(s, s)
	}
	f.Add(`{"ip":"fe80::1%\n\u001b[2J, 1.2.3.4"}`, `{"ip":"192.0.2.1"}`)
	f.Add(`{"user_agent":"Yеalink\r\nX"}`, `{"user_agent":"Grandstream"}`)
	f.Fuzz(func(t *testing.T, ev, other string) {
		a, err := tollguard.NormalizeAlert(tollguard.Alert{Kind: tollguard.AlertNewIP, Subject: "ext:1001", Evidence: ev})
		if err != nil {
			t.Fatalf("NormalizeAlert: %v", err)
		}
		got := string(a.Evidence)
		trimmed := strings.TrimSpace(ev)
		switch {
		case trimmed == "":
			if got != "" {
				t.Fatalf("empty evidence became %q", got)
			}
			return
		case !json.Valid([]byte(got)):
			t.Fatalf("evidence %q kept as invalid JSON %q", ev, got)
		case len(got) > tollguard.MaxEvidenceBytes:
			t.Fatalf("evidence kept as %d bytes, over %d", len(got), tollguard.MaxEvidenceBytes)
		case json.Valid([]byte(trimmed)) && len(trimmed) <= tollguard.MaxEvidenceBytes && got != trimmed:
			t.Fatalf("valid short evidence %q changed to %q", trimmed, got)
		}
		b, _ := tollguard.NormalizeAlert(tollguard.Alert{Kind: tollguard.AlertNewIP, Subject: "ext:1001", Evidence: other})
		occ := []tollguard.Occurrence{{Message: "new address", Evidence: json.RawMessage(a.Evidence)}, {Message: "new address", Evidence: json.RawMessage(b.Evidence)}}
		kept, err := json.Marshal(occ)
		if err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{tollguard.AlertNewIP, tollguard.AlertNewUserAgent} {
			n := tollguard.Notice{Event: tollguard.NoticeDigest, Alert: tollguard.Alert{Kind: kind, Subject: "ext:1001", Message: "new", Evidence: string(kept)}}
			_, shown, _ := n.Values()
			for _, v := range shown {
				if strings.ContainsAny(v, "\n\r") || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
					t.Fatalf("%s value %q is not printable ASCII", kind, v)
				}
			}
			if strings.IndexFunc(n.Text(), func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f }) >= 0 {
				t.Fatalf("%s notice text has a control character: %q", kind, n.Text())
			}
		}
	})
}
