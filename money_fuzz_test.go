package tollguard_test

import (
	"testing"

	"github.com/tollguard/tollguard"
)

// FuzzParseAmount: the money parser behind `credit add` and the
// account limits never panics, rejects with EINVALID (exit 2), and an
// accepted amount prints back as a string that parses to the same value.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.50", "-3", "0.5", "1.005", "1,000.00", "£5", "", ".", "-0.00", "1e3", " 1", "9223372036854775807", "92233720368547758.08", "+1.00", "00.10"} {
		for _, scale := range []int{0, 2, 3} {
			f.Add(s, scale)
		}
	}
	f.Fuzz(func(t *testing.T, s string, scale int) {
		scale = ((scale % 4) + 4) % 4 // the scales currencies have: 0 to 3
		a, err := tollguard.ParseAmount(s, scale)
		if err != nil {
			if tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Fatalf("%q: error code %s: %v", s, tollguard.ErrorCode(err), err)
			}
			return
		}
		out := tollguard.FormatAmount(a, scale)
		b, err := tollguard.ParseAmount(out, scale)
		if err != nil || b != a {
			t.Fatalf("%q (scale %d) → %d → %q → %d, %v", s, scale, a, out, b, err)
		}
	})
}

// FuzzParseRate: per-minute prices from the rate deck and the ceilings
// round-trip through Rate.String.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0.0123", "0.20", "6", "-1", "0.0000001", "1.", ".5", "none", "", "9223372036854.775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := tollguard.ParseRate(s)
		if err != nil {
			if tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Fatalf("%q: error code %s: %v", s, tollguard.ErrorCode(err), err)
			}
			return
		}
		if r < 0 {
			t.Fatalf("%q parsed to a negative rate %d", s, r)
		}
		out := r.String()
		r2, err := tollguard.ParseRate(out)
		if err != nil || r2 != r {
			t.Fatalf("%q → %d → %q → %d, %v", s, r, out, r2, err)
		}
	})
}
