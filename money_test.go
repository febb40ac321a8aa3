package tollguard_test

import (
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

func TestCurrencyScale(t *testing.T) {
	for _, tc := range []struct {
		code  string
		scale int
		ok    bool
	}{
		{"GBP", 2, true}, {"usd", 2, true}, {"EUR", 2, true}, {"JPY", 0, true}, {"BHD", 3, true}, {"XCD", 2, true},
		{"POUNDS", 0, false}, {"", 0, false}, {"XXX", 0, false}, {"XAU", 0, false}, {"XTS", 0, false},
		// Current codes newer than x/text's CLDR tables: Mauritania,
		// Venezuela, Sierra Leone, Zimbabwe, Curaçao and Sint Maarten.
		{"MRU", 2, true}, {"VES", 2, true}, {"ved", 2, true}, {"SLE", 2, true}, {"ZWG", 2, true}, {"XCG", 2, true},
	} {
		got, err := tollguard.CurrencyScale(tc.code)
		if (err == nil) != tc.ok || (tc.ok && got != tc.scale) {
			t.Errorf("CurrencyScale(%q) = %d, %v; want %d ok=%v", tc.code, got, err, tc.scale, tc.ok)
		}
	}
}

func TestParseAndFormatAmount(t *testing.T) {
	for _, tc := range []struct {
		in    string
		scale int
		want  tollguard.Amount
		ok    bool
		print string
	}{
		{"12.50", 2, 1250, true, "12.50"}, {"12.5", 2, 1250, true, "12.50"}, {"0.01", 2, 1, true, "0.01"},
		{"-3", 2, -300, true, "-3.00"}, {"+7", 2, 700, true, "7.00"}, {"1.230", 2, 123, true, "1.23"},
		{".5", 2, 50, true, "0.50"}, {"100", 0, 100, true, "100"}, {"0.001", 3, 1, true, "0.001"},
		{"1.234", 2, 0, false, ""}, {"12,50", 2, 0, false, ""}, {"£5", 2, 0, false, ""}, {"", 2, 0, false, ""},
		{"1e3", 2, 0, false, ""}, {"1.2.3", 2, 0, false, ""}, {"-", 2, 0, false, ""}, {"99999999999999999999", 2, 0, false, ""},
		{"-0", 2, 0, false, ""}, {"+0", 2, 0, false, ""}, {"-0.00", 2, 0, false, ""}, {"0.00", 2, 0, true, "0.00"},
		{"9999999999999.99", 2, 999_999_999_999_999, true, "9999999999999.99"}, {"10000000000000", 2, 0, false, ""}, {"-10000000000000", 2, 0, false, ""},
	} {
		got, err := tollguard.ParseAmount(tc.in, tc.scale)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAmount(%q, %d) = %d, %v; want %d ok=%v", tc.in, tc.scale, got, err, tc.want, tc.ok)
			continue
		}
		if err != nil && tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("ParseAmount(%q): error code %q, want invalid", tc.in, tollguard.ErrorCode(err))
		}
		if tc.ok && tollguard.FormatAmount(got, tc.scale) != tc.print {
			t.Errorf("FormatAmount(%d, %d) = %q, want %q", got, tc.scale, tollguard.FormatAmount(got, tc.scale), tc.print)
		}
	}
	// A whole-unit currency says why a decimal is refused.
	if _, err := tollguard.ParseAmount("1.5", 0); err == nil || !strings.Contains(err.Error(), "the currency has no minor unit") {
		t.Errorf("1.5 in yen: %v", err)
	}
}

func TestRates(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  tollguard.Rate
		ok    bool
		print string
	}{
		{"0.0123", 12300, true, "0.0123"}, {"0.20", 200000, true, "0.20"}, {"1", 1000000, true, "1.00"},
		{"0.000001", 1, true, "0.000001"}, {"-0.01", 0, false, ""}, {"0.0000001", 0, false, ""},
		{"-0", 0, false, ""}, {"-0.000", 0, false, ""}, {"0", 0, true, "0.00"},
	} {
		got, err := tollguard.ParseRate(tc.in)
		if (err == nil) != tc.ok || got != tc.want || (tc.ok && got.String() != tc.print) {
			t.Errorf("ParseRate(%q) = %d (%s), %v; want %d %q ok=%v", tc.in, got, got, err, tc.want, tc.print, tc.ok)
		}
	}
}

// TestCostAndMaxSeconds: a call's cost rounds up to a minor unit, and
// MaxSeconds never allows a call that would cost more than what is
// available.
func TestCostAndMaxSeconds(t *testing.T) {
	for _, tc := range []struct {
		rate      string
		secs      int64
		scale     int
		wantMinor tollguard.Amount
	}{
		{"0.10", 60, 2, 10}, {"0.10", 61, 2, 11}, {"0.10", 1, 2, 1}, {"0.0123", 60, 2, 2},
		{"0.0123", 3600, 2, 74}, {"0", 3600, 2, 0}, {"0.10", 0, 2, 0}, {"6", 1, 0, 1}, {"6", 10, 0, 1}, {"0.006", 60, 3, 6},
	} {
		r, _ := tollguard.ParseRate(tc.rate)
		if got := tollguard.Cost(r, tollguard.Billing{}, tc.secs, tc.scale); got != tc.wantMinor {
			t.Errorf("Cost(%s/min, %ds, scale %d) = %d, want %d", tc.rate, tc.secs, tc.scale, got, tc.wantMinor)
		}
	}
	for _, rate := range []string{"0.0001", "0.0123", "0.10", "0.2", "1.50", "7"} {
		r, _ := tollguard.ParseRate(rate)
		for _, avail := range []tollguard.Amount{0, 1, 7, 99, 1000, 123457} {
			n := tollguard.MaxSeconds(avail, r, tollguard.Billing{}, 2)
			if c := tollguard.Cost(r, tollguard.Billing{}, n, 2); c > avail {
				t.Errorf("MaxSeconds(%d, %s) = %d costs %d, more than available", avail, rate, n, c)
			}
			// The exact bound: micro-units available × 60 / rate.
			exact := int64(avail) * 10000 * 60 / int64(r)
			if n != exact {
				t.Errorf("MaxSeconds(%d, %s) = %d, want %d", avail, rate, n, exact)
			}
		}
	}
	if tollguard.MaxSeconds(1000, 0, tollguard.Billing{}, 2) != -1 {
		t.Error("a free rate must mean no money limit")
	}
}

// TestTooLargeSaysTheMost: an amount or rate past what tollguard keeps
// names the most it takes, however many digits it has.
func TestTooLargeSaysTheMost(t *testing.T) {
	for _, s := range []string{"10000000000000", "12345678901234567", "99999999999999999999"} {
		_, err := tollguard.ParseAmount(s, 2)
		if err == nil || !strings.Contains(err.Error(), "at most 9999999999999.99") {
			t.Errorf("ParseAmount(%q, 2): %v; want it to name the most, 9999999999999.99", s, err)
		}
	}
	_, err := tollguard.ParseRate("12345678901234567890")
	if err == nil || strings.Contains(err.Error(), "amount") || !strings.Contains(err.Error(), "at most 999999999999.999999") {
		t.Errorf("ParseRate of 20 digits: %v; want a rate's error naming the most", err)
	}
}
