package voicemail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
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

// FuzzLoad checks the loader on trees of three files (the input split
// at NUL bytes: voicemail.conf, a.conf, b.conf, which may include each
// other, themselves or globs, define templates and inherit), and a
// users.conf (a fourth part, which may include them too): it never
// panics, and after --apply gives every mailbox its own new PIN, a
// fresh load finds the same mailboxes, the rewritten ones with exactly
// their new PIN and every other with its old one, so no rewrite
// reached a template, an inherited or shared line, or another mailbox;
// and the PINs left alone are exactly those whose ByHand says why.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"[general]\n#include a.conf\n[default](tm)\n1001 => 1234\x00[tm](!)\n2002 => 1111\n\x00",
		"[a](!)\n1001 => 1111\n[a]\n1002 => 2222\n[a](+)\n1003 => 3333\n#include b.conf\x00\x00[b]\n1004 => 4444\n[c](a,b)\n",
		"[default]\n#include a.conf\n[other]\n#include a.conf\n#include *.conf\x001001 => 1111\n\x00#include b.conf\n",
		"[Default]\n1001 => 1111\n[default]\n1001 => 2222\n[DEFAULT](+)\n\\1003 => 3333\n1004 += 44\n1004 +=44\x00\x00",
		"[general]\nsearchcontexts=yes\npasswordlocation=spooldir\n[t](!,x)\n[x]\n1 => -1\r\n[y](t)\n1 = 2,A,B,C,passwordlocation=spooldir\x00[z]\n#tryinclude b.conf\x00;-- x\n--;2 => 3",
		"[general]\nuserscontext=u\n[u]\n1002 => 1111\x00\x00\x00[general]\nhasvoicemail=yes\n[t](!)\nvmsecret=2222\n[1001](t)\n[1002]\nsecret=abc\nvmsecret = 1 ,2\n[1003]\nhasvoicemail=no\n[1004]\nvmsecret=-3333\nvmsecret+=4\n[1005]\nvmsecret=5555\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parts := bytes.SplitN(data, []byte{0}, 4)
		dir := t.TempDir()
		names := []string{"voicemail.conf", "a.conf", "b.conf", "users.conf"}
		for i, p := range parts {
			if err := os.WriteFile(filepath.Join(dir, names[i]), p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		src := &Source{Path: filepath.Join(dir, "voicemail.conf"), SpoolDir: filepath.Join(dir, "spool")}
		ctx := context.Background()
		before, _, err := src.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t1, ut1, err := src.load()
		if err != nil {
			t.Fatal(err)
		}
		located, _ := src.locate(t1, ut1)
		var changes []tollguard.PINChange
		newPIN := map[string]string{}
		for i, b := range located {
			if b.entry < 0 || b.file.Entries[b.entry].pinSplit {
				continue // SetPINs refuses these, for the admin to edit
			}
			pin := fmt.Sprintf("9%06d", i)
			changes = append(changes, tollguard.PINChange{Mailbox: before[i], NewPIN: pin})
			newPIN[before[i].Where+"\x00"+before[i].Key()] = pin
		}
		done, err := src.SetPINs(ctx, changes)
		if err != nil {
			t.Fatal(err)
		}
		changed := map[string]bool{}
		for _, c := range done {
			changed[c.Mailbox.Where+"\x00"+c.Mailbox.Key()] = true
		}
		after, _, err := src.Mailboxes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("%d mailboxes before --apply, %d after", len(before), len(after))
		}
		for i, b := range before {
			a := after[i]
			k := b.Where + "\x00" + b.Key()
			if a.Key() != b.Key() || a.Where != b.Where || a.Locked != b.Locked {
				t.Fatalf("mailbox %d was %s at %s, is %s at %s", i, b.Key(), b.Where, a.Key(), a.Where)
			}
			// --apply rewrites exactly the PINs not left to the admin:
			// one offered and skipped reads as changed during the run.
			if changed[k] == (b.ByHand != "") {
				t.Fatalf("%s (%s): rewritten %v, by hand %q", b.Key(), b.Where, changed[k], b.ByHand)
			}
			want := b.PIN
			if changed[k] {
				want = newPIN[k]
			}
			if a.PIN != want {
				t.Fatalf("%s (%s): PIN %q after --apply, want %q (rewritten: %v)", b.Key(), b.Where, a.PIN, want, changed[k])
			}
		}
	})
}
