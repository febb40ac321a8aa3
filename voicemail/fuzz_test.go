package voicemail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks, for any input, that parsing never panics, that an
// unchanged file comes back byte for byte, and that after every
// rewritable PIN is replaced, a fresh parse finds the same mailboxes in
// the same contexts and on the same lines with exactly the new PINs,
// and the bytes outside the PINs are the input's.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/etc/voicemail.conf", "testdata/etc/voicemail.d/sales.conf", "testdata/etc/voicemail.d/no-context.conf", "testdata/broken.conf"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("; app_voicemail\n[general]\npassword = 1234\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// voicemail.conf, and the same bytes as a mailbox's secret.conf.
		fuzzRewrite(t, data, func(b []byte) *File { return Parse("f.conf", b, "") })
		fuzzRewrite(t, data, func(b []byte) *File { return ParseSecret("secret.conf", b) })
	})
}

// fuzzRewrite checks that an untouched parse round-trips, and that
// setting every PIN changes those bytes and no others.
func fuzzRewrite(t *testing.T, data []byte, parse func([]byte) *File) {
	t.Helper()
	pf := parse(data)
	if got := pf.Bytes(); string(got) != string(data) {
		t.Fatalf("unchanged parse does not round-trip")
	}
	pins := map[int]string{}
	for i, e := range pf.Entries {
		if e.pinStart < 0 || e.pinEnd < e.pinStart || e.pinEnd > len(data) {
			t.Fatalf("entry %d: PIN span [%d,%d) outside the file", i, e.pinStart, e.pinEnd)
		}
		pin := strings.Repeat(string(rune('0'+i%10)), 6+i%3)
		if err := pf.SetPIN(i, pin); err != nil {
			if e.pinSplit {
				continue
			}
			t.Fatalf("entry %d: %v", i, err)
		}
		pins[i] = pin
	}
	out := pf.Bytes()
	again := parse(out)
	if len(again.Entries) != len(pf.Entries) {
		t.Fatalf("rewrite changed the number of mailboxes: %d → %d\nbefore %q\nafter  %q", len(pf.Entries), len(again.Entries), data, out)
	}
	// Stitch the input back together around the PIN spans: it must
	// be exactly the output.
	var want []byte
	at := 0
	for i, e := range pf.Entries {
		a := again.Entries[i]
		if a.Context != e.Context || a.Mailbox != e.Mailbox || a.Line != e.Line || a.Locked != e.Locked {
			t.Fatalf("entry %d changed: %+v → %+v", i, e, a)
		}
		pin, ok := pins[i]
		if !ok {
			if a.PIN != e.PIN {
				t.Fatalf("entry %d: untouched PIN changed %q → %q", i, e.PIN, a.PIN)
			}
			continue
		}
		if a.PIN != pin {
			t.Fatalf("entry %d: PIN %q after rewrite, want %q", i, a.PIN, pin)
		}
		want = append(want, data[at:e.pinStart]...)
		want = append(want, pin...)
		at = e.pinEnd
	}
	want = append(want, data[at:]...)
	if string(want) != string(out) {
		t.Fatalf("bytes outside the PINs changed")
	}
}

// TestFuzzCorpusCommitted keeps the checked-in corpus from going missing.
func TestFuzzCorpusCommitted(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParse"))
	if err != nil || len(ents) < 5 {
		t.Fatalf("want the FuzzParse corpus in testdata/fuzz/FuzzParse (got %d files, %v)", len(ents), err)
	}
}
