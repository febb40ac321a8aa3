package tollguard_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tollguard/tollguard"
)

func TestDefaultHighRisk(t *testing.T) {
	entries := tollguard.DefaultHighRisk()
	byPrefix := map[string]tollguard.HighRiskEntry{}
	for _, e := range entries {
		byPrefix[e.Prefix] = e
	}
	// The required destinations.
	for _, p := range []string{"252", "870", "881", "882", "883", "1876", "1809", "1829", "1849", "1268", "1284", "1473", "1649", "1664", "1767", "1242", "1246", "1264", "1345", "1721", "1868", "7840", "7940"} {
		if _, ok := byPrefix[p]; !ok {
			t.Errorf("default list lacks +%s", p)
		}
	}
	// Every row names a source that the header explains.
	header := string(tollguard.DefaultHighRiskCSV())
	for _, e := range entries {
		if e.Description == "" || e.Source == "" {
			t.Errorf("+%s: description %q, source %q: both are required in the shipped list", e.Prefix, e.Description, e.Source)
		}
		if !strings.Contains(header, "#   "+e.Source+" ") {
			t.Errorf("+%s: source %q is not explained in the header comment", e.Prefix, e.Source)
		}
	}
	// US domestic NANP codes must never be on the default list.
	for _, p := range []string{"1", "1212", "1900", "1909", "1340", "1787", "1671", "44"} {
		if _, ok := byPrefix[p]; ok {
			t.Errorf("default list has +%s, a domestic or ordinary destination", p)
		}
	}
	// Callers get their own copy.
	entries[0].Prefix = "changed"
	if tollguard.DefaultHighRisk()[0].Prefix == "changed" {
		t.Error("DefaultHighRisk returned shared storage")
	}
	if got, want := tollguard.DefaultHighRiskList().Len(), len(entries); got != want {
		t.Errorf("DefaultHighRiskList().Len() = %d, want %d", got, want)
	}
}

func TestPrefixList(t *testing.T) {
	l := tollguard.NewPrefixList([]tollguard.HighRiskEntry{
		{Prefix: "881", Description: "GMSS"},
		{Prefix: "8816", Description: "Iridium"},
		{Prefix: "+1876", Description: "Jamaica"},
		{Prefix: "44", Description: ""},
		{Prefix: "", Description: "ignored"},
	})
	tests := []struct {
		e164 string
		want string
		ok   bool
	}{
		{"+881612345678", "Iridium", true},
		{"881612345678", "Iridium", true},
		{"+881812345678", "GMSS", true},
		{"+18769251234", "Jamaica", true},
		{"+1876", "Jamaica", true},
		{"+187", "", false},
		{"+12125550100", "", false},
		{"+442079460000", "+44", true}, // no description: the prefix stands in
		{"", "", false},
		{"+", "", false},
	}
	for _, tt := range tests {
		got, ok := l.MatchHighRisk(tt.e164)
		if got != tt.want || ok != tt.ok {
			t.Errorf("MatchHighRisk(%q) = %q, %v; want %q, %v", tt.e164, got, ok, tt.want, tt.ok)
		}
	}
	if l.Len() != 4 {
		t.Errorf("Len() = %d, want 4", l.Len())
	}
	var nilList *tollguard.PrefixList
	if _, ok := nilList.MatchHighRisk("+881612345678"); ok || nilList.Len() != 0 {
		t.Error("a nil PrefixList matched")
	}
	if n := testing.AllocsPerRun(100, func() { l.MatchHighRisk("+881612345678") }); n != 0 {
		t.Errorf("MatchHighRisk allocates %.0f times per call", n)
	}
}

func TestParseHighRiskCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []tollguard.HighRiskEntry
		wantErr []string // substrings of the error; nil: no error
	}{
		{
			name: "header and comments",
			in:   "# list\nprefix,description,source\n881,GMSS,ITU\n\n+1 876,Jamaica,FTC\n",
			want: []tollguard.HighRiskEntry{{"881", "GMSS", "ITU"}, {"1876", "Jamaica", "FTC"}},
		},
		{
			name: "no header, positional",
			in:   "252,Somalia,CFCA\n",
			want: []tollguard.HighRiskEntry{{"252", "Somalia", "CFCA"}},
		},
		{
			name: "semicolons, another order, extra column",
			in:   "Source;Prefix;Note;Description\nITU;881;x;GMSS\n",
			want: []tollguard.HighRiskEntry{{"881", "GMSS", "ITU"}},
		},
		{
			name: "a first row described as \"prefix\" is data, not a header",
			in:   "79620,prefix,s\n252,Somalia,CFCA\n",
			want: []tollguard.HighRiskEntry{{"79620", "prefix", "s"}, {"252", "Somalia", "CFCA"}},
		},
		{
			name: "bare CR line endings",
			in:   "# list\rprefix,description,source\r881,GMSS,ITU\r252,Somalia,CFCA\r",
			want: []tollguard.HighRiskEntry{{"881", "GMSS", "ITU"}, {"252", "Somalia", "CFCA"}},
		},
		{
			name: "reordered columns",
			in:   "source,prefix,description\nITU,882,International Networks\n",
			want: []tollguard.HighRiskEntry{{"882", "International Networks", "ITU"}},
		},
		{
			name: "BOM and quotes",
			in:   "\ufeffprefix,description,source\n\"883\",\"International Networks, shared\",ITU\n",
			want: []tollguard.HighRiskEntry{{"883", "International Networks, shared", "ITU"}},
		},
		{
			name: "prefix only gets a description",
			in:   "979\n",
			want: []tollguard.HighRiskEntry{{"979", "+979", ""}},
		},
		{
			name: "empty file",
			in:   "",
			want: nil,
		},
		{
			name:    "bad rows are all reported with lines",
			in:      "prefix,description,source\n881,ok,x\n00252,Somalia,x\nabc,bad,x\n881,again,x\n,empty,x\n1234567890123456,long,x\n",
			wantErr: []string{"5 bad rows", "line 3: prefix \"00252\" starts with 0", "line 4: prefix \"abc\": digits only", "line 5: prefix 881 is already on line 2", "line 6: prefix is empty", "line 7: prefix \"1234567890123456\": longer"},
		},
		{
			name:    "a rate deck's header",
			in:      "prefix,destination,rate\n44,United Kingdom,0.0100\n",
			wantErr: []string{"line 1: the header names a \"rate\" column: this looks like a rate deck", "tollguard rates import"},
		},
		{
			name:    "a rate deck's header, carrier style",
			in:      "# export\nDial Code;Destination;Price Per Minute (GBP)\n44;United Kingdom;0,0100\n",
			wantErr: []string{"line 2: the header names a \"Price Per Minute (GBP)\" column"},
		},
		{
			name:    "a rate deck without a header",
			in:      "44,United Kingdom,0.0100\n33,France,0,0150\n",
			wantErr: []string{"line 1: source \"0.0100\" is a price: is this a rate deck?"},
		},
		{
			name: "a source that is a year is not a price",
			in:   "252,Somalia,2024\n",
			want: []tollguard.HighRiskEntry{{"252", "Somalia", "2024"}},
		},
		{
			name:    "broken quotes",
			in:      "prefix,description,source\n881,\"GMSS,ITU\n",
			wantErr: []string{"line 2:", "quote"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tollguard.ParseHighRiskCSV(strings.NewReader(tt.in))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; got %v", got)
				}
				if tollguard.ErrorCode(err) != tollguard.EINVALID {
					t.Errorf("error code %q, want EINVALID", tollguard.ErrorCode(err))
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if got != nil {
					t.Errorf("entries %v returned with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseHighRiskCSVCapsErrors(t *testing.T) {
	var b bytes.Buffer
	for i := range 120 {
		fmt.Fprintf(&b, "x%d,bad\n", i)
	}
	_, err := tollguard.ParseHighRiskCSV(&b)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n  line "); n != 50 {
		t.Errorf("error lists %d lines, want 50", n)
	}
	if !strings.Contains(msg, "120 bad rows") || !strings.Contains(msg, "and 70 more") {
		t.Errorf("error %q does not give the totals", msg)
	}
}

// FuzzParseHighRiskCSV: any input gives entries or an EINVALID error,
// never a panic, and entries are always clean E.164 prefixes.
func FuzzParseHighRiskCSV(f *testing.F) {
	f.Add(tollguard.DefaultHighRiskCSV())
	f.Add([]byte("prefix,description,source\n881,\"a,b\",c\n"))
	f.Add([]byte("\ufeff252;Somalia\n"))
	f.Add([]byte("\"unterminated\n881"))
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := tollguard.ParseHighRiskCSV(bytes.NewReader(in))
		if err != nil {
			if tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Fatalf("error %v has code %q, want EINVALID", err, tollguard.ErrorCode(err))
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.Prefix == "" || e.Prefix[0] == '0' || len(e.Prefix) > 15 || strings.Trim(e.Prefix, "0123456789") != "" {
				t.Fatalf("bad prefix %q accepted", e.Prefix)
			}
			if seen[e.Prefix] {
				t.Fatalf("duplicate prefix %q accepted", e.Prefix)
			}
			seen[e.Prefix] = true
			if e.Description == "" {
				t.Fatalf("entry %+v without a description", e)
			}
		}
	})
}

// FuzzHighRiskRoundTrip: rows written with encoding/csv, as a
// spreadsheet would, read back as the same entries in the same order.
// A row that says something (a description of printable text) is never
// dropped or merged into its neighbour.
func FuzzHighRiskRoundTrip(f *testing.F) {
	f.Add(uint64(881), "GMSS", "ITU", uint64(252), "Somalia", "CFCA")
	f.Add(uint64(79620), "prefix", "s", uint64(1876), "Jamaica, \"premium\"", "FTC")
	f.Add(uint64(44), "#not a comment", "x", uint64(33), "description", "source")
	f.Fuzz(func(t *testing.T, p1 uint64, d1, s1 string, p2 uint64, d2, s2 string) {
		ok := func(s string) bool {
			return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) && len(s) <= 200 && strings.TrimSpace(s) != ""
		}
		if !ok(d1) || !ok(d2) || !ok(s1) || !ok(s2) {
			return
		}
		// A source that is a number with a decimal point or comma is
		// refused by design: a rate deck's third column is its price.
		price := func(s string) bool {
			s = strings.TrimSpace(s)
			i := strings.IndexAny(s, ".,")
			return i >= 0 && i < len(s)-1 && strings.Trim(s[:i], "0123456789") == "" && strings.Trim(s[i+1:], "0123456789") == ""
		}
		if price(s1) || price(s2) {
			return
		}
		// Prefixes of 1 to 15 digits, not starting with 0, distinct.
		pre := func(p uint64) string { return strconv.FormatUint(p%999999999999999+1, 10) }
		a, b := pre(p1), pre(p2)
		if a == b {
			return
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.Write([]string{a, d1, s1})
		w.Write([]string{b, d2, s2})
		w.Flush()
		got, err := tollguard.ParseHighRiskCSV(&buf)
		if err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		want := []tollguard.HighRiskEntry{{Prefix: a, Description: strings.TrimSpace(d1), Source: strings.TrimSpace(s1)},
			{Prefix: b, Description: strings.TrimSpace(d2), Source: strings.TrimSpace(s2)}}
		if !slices.Equal(got, want) {
			t.Fatalf("%q read as %+v, want %+v", buf.String(), got, want)
		}
	})
}

// TestHighRiskSemicolonsInDescription: the separator was the one the
// first row had most of, so a description listing networks with ';'
// made a comma-separated list unreadable ("prefix \"881,Inmarsat\"").
func TestHighRiskSemicolonsInDescription(t *testing.T) {
	for _, in := range []string{
		"881,Inmarsat; Iridium; Thuraya; GMSS,ITU\n252,Somalia,CFCA\n",
		"# a comment\nprefix,description,source\n881,Inmarsat; Iridium; Thuraya; GMSS,ITU\n252,Somalia,CFCA\n",
		"881;Inmarsat, Iridium, Thuraya, GMSS;ITU\n252;Somalia;CFCA\n",
	} {
		got, err := tollguard.ParseHighRiskCSV(strings.NewReader(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if len(got) != 2 || !strings.HasPrefix(got[0].Description, "Inmarsat") || got[0].Source != "ITU" || got[1].Prefix != "252" {
			t.Fatalf("%q: %+v", in, got)
		}
	}
}
