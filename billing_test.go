package tollguard_test

import (
	"math"
	"testing"

	"github.com/tollguard/tollguard"
)

func TestBillingBilled(t *testing.T) {
	for _, tc := range []struct {
		first, step, secs, want int64
	}{
		{60, 60, 0, 0}, {60, 60, 1, 60}, {60, 60, 60, 60}, {60, 60, 61, 120}, {60, 60, 120, 120},
		{30, 6, 1, 30}, {30, 6, 30, 30}, {30, 6, 31, 36}, {30, 6, 37, 42},
		{1, 1, 61, 61}, {0, 0, 61, 61}, // the zero value bills by the second
		{60, 1, 61, 61}, {60, 1, 59, 60},
		{60, 60, math.MaxInt64, math.MaxInt64}, // saturates, never wraps
		{1, 60, math.MaxInt64, math.MaxInt64}, {1, 60, math.MaxInt64 - 1, math.MaxInt64},
	} {
		b := tollguard.Billing{Initial: tc.first, Increment: tc.step}
		if got := b.Billed(tc.secs); got != tc.want {
			t.Errorf("%d/%d: Billed(%d) = %d, want %d", tc.first, tc.step, tc.secs, got, tc.want)
		}
	}
}

// TestCostWithBilling: a call is charged for the seconds the carrier
// bills, plus the connection fee once answered, rounded up once.
func TestCostWithBilling(t *testing.T) {
	for _, tc := range []struct {
		rate        string
		first, step int64
		fee         string
		secs        int64
		want        tollguard.Amount
	}{
		{"0.10", 60, 60, "0", 61, 20},         // two started minutes
		{"0.10", 60, 60, "0", 60, 10},         // one
		{"0.10", 1, 1, "0", 61, 11},           // per second: 10.17p, rounded up
		{"0.10", 30, 6, "0", 31, 6},           // 36 s: 6p
		{"0.10", 60, 60, "0.05", 1, 15},       // a minute and the fee
		{"0.10", 60, 60, "0.05", 0, 0},        // unanswered: no fee
		{"0", 60, 60, "0.05", 600, 5},         // only the fee
		{"0.0123", 60, 60, "0.001", 3600, 74}, // 0.738 + 0.001, rounded up once
	} {
		fee, err := tollguard.ParseFee(tc.fee)
		if err != nil {
			t.Fatal(err)
		}
		b := tollguard.Billing{Initial: tc.first, Increment: tc.step, Connect: fee}
		if got := tollguard.Cost(rate(t, tc.rate), b, tc.secs, 2); got != tc.want {
			t.Errorf("Cost(%s/min, %s, %ds) = %d, want %d", tc.rate, b, tc.secs, got, tc.want)
		}
	}
}

// TestMaxSecondsWithBilling: the longest call never costs more than what
// is available, and a second more would.
func TestMaxSecondsWithBilling(t *testing.T) {
	bills := []tollguard.Billing{
		{}, {Initial: 60, Increment: 60}, {Initial: 30, Increment: 6}, {Initial: 60, Increment: 1},
		{Initial: 1, Increment: 60}, {Initial: 60, Increment: 60, Connect: 50000}, {Initial: 1, Increment: 1, Connect: 1},
	}
	for _, b := range bills {
		for _, rs := range []string{"0.0001", "0.0123", "0.10", "1.50", "7"} {
			r := rate(t, rs)
			for _, avail := range []tollguard.Amount{0, 1, 5, 7, 10, 99, 1000, 123457} {
				n := tollguard.MaxSeconds(avail, r, b, 2)
				if c := tollguard.Cost(r, b, n, 2); c > avail {
					t.Fatalf("%s at %s, %d available: MaxSeconds %d costs %d", b, rs, avail, n, c)
				}
				if c := tollguard.Cost(r, b, n+1, 2); c <= avail {
					t.Errorf("%s at %s, %d available: MaxSeconds %d, but %d s still costs only %d", b, rs, avail, n, n+1, c)
				}
			}
		}
	}
	// 60/60 at 0.10 with 0.25: two minutes paid.
	if n := tollguard.MaxSeconds(25, rate(t, "0.10"), tollguard.Billing{Initial: 60, Increment: 60}, 2); n != 120 {
		t.Errorf("60/60 at 0.10 with 0.25: MaxSeconds %d, want 120", n)
	}
	// A fee larger than the money: no call.
	if n := tollguard.MaxSeconds(4, rate(t, "0.01"), tollguard.Billing{Connect: 50000}, 2); n != 0 {
		t.Errorf("fee 0.05 with 0.04: MaxSeconds %d, want 0", n)
	}
	// Only a fee, and it is paid: money sets no time limit.
	if n := tollguard.MaxSeconds(5, 0, tollguard.Billing{Connect: 50000}, 2); n != math.MaxInt64 {
		t.Errorf("fee 0.05 with 0.05, no rate: MaxSeconds %d, want no limit", n)
	}
}

// TestBillingFit: a limit on a stepped deck ends 2 s (at most the step
// less a second) before the end of the step it falls in, so that the
// carrier's clock, a moment ahead, bills no step more than reserved;
// it is the longest such call, and per-second billing is left alone.
func TestBillingFit(t *testing.T) {
	for _, tc := range []struct {
		first, step, secs, want int64
	}{
		{60, 60, 7200, 7198}, {60, 60, 7199, 7198}, {60, 60, 7198, 7198}, {60, 60, 7141, 7141},
		{60, 60, 60, 58}, {60, 60, 59, 58}, {60, 60, 30, 30}, {60, 60, 61, 61},
		{30, 6, 36, 34}, {30, 6, 35, 34}, {30, 6, 33, 33}, {30, 6, 30, 28},
		{1, 1, 7200, 7200}, {0, 0, 60, 60}, {60, 1, 60, 60}, // by the second after the first step
		{60, 2, 62, 61}, // a margin of at most the step less a second
		{3, 60, 3, 1}, {2, 60, 2, 0}, {1, 60, 1, 0}, {60, 60, 0, 0}, {60, 60, -5, 0},
	} {
		b := tollguard.Billing{Initial: tc.first, Increment: tc.step}
		got := b.Fit(tc.secs)
		if got != tc.want {
			t.Errorf("%d/%d: Fit(%d) = %d, want %d", tc.first, tc.step, tc.secs, got, tc.want)
		}
	}
	// Exhaustively on small steps: within the limit, inside its step
	// with the margin, and the longest such.
	for _, b := range []tollguard.Billing{{Initial: 60, Increment: 60}, {Initial: 30, Increment: 6}, {Initial: 1, Increment: 6}, {Initial: 10, Increment: 3}} {
		m := min(int64(2), b.Increment-1)
		ok := func(s int64) bool { return s == 0 || b.Billed(s+m) == b.Billed(s) }
		for secs := int64(0); secs <= 400; secs++ {
			got := b.Fit(secs)
			if got > secs || !ok(got) {
				t.Fatalf("%s: Fit(%d) = %d, beyond the limit or its step", b, secs, got)
			}
			for s := got + 1; s <= secs; s++ {
				if ok(s) {
					t.Fatalf("%s: Fit(%d) = %d, but %d also fits", b, secs, got, s)
				}
			}
		}
	}
}

func TestBillingDearestMinute(t *testing.T) {
	for _, tc := range []struct {
		rate        string
		first, step int64
		fee         tollguard.Fee
		want        string
		minutes     int64
	}{
		{"0.10", 1, 1, 0, "0.10", 1},
		{"0.10", 60, 60, 0, "0.10", 1},
		{"0.10", 30, 6, 0, "0.10", 1},
		{"0.10", 120, 60, 0, "0.20", 1},                      // a two-minute minimum
		{"0.10", 60, 60, 250000, "0.35", 1},                  // a 0.25 fee on top
		{"0.10", 45, 45, 0, "0.15", 1},                       // 90 s billed for a minute
		{"0.000001", 30, 7, 0, "0.000002", 1},                // rounded up, never down
		{"0.10", 60, 3600, 0, "3.05", 2},                     // a two-minute call is billed 61
		{"0.10", 300, 300, 0, "0.50", 1},                     // five minutes for one
		{"0.10", 30, 90, 0, "0.20", 1},                       // 120 s for one minute
		{"1000000000", 60, 60, 0, "9223372036854.775807", 1}, // past any ceiling, no overflow
	} {
		b := tollguard.Billing{Initial: tc.first, Increment: tc.step, Connect: tc.fee}
		got, minutes := b.DearestMinute(rate(t, tc.rate))
		if got.String() != tc.want || minutes != tc.minutes {
			t.Errorf("%s at %s: DearestMinute %s over %d min, want %s over %d", b, tc.rate, got, minutes, tc.want, tc.minutes)
		}
	}
	// Against the definition: no call of whole minutes up to three hours
	// costs more a minute.
	for _, b := range []tollguard.Billing{{Initial: 60, Increment: 3600}, {Initial: 30, Increment: 90}, {Initial: 1, Increment: 3600},
		{Initial: 3600, Increment: 3600, Connect: 1000}, {Initial: 7, Increment: 61}, {Initial: 59, Increment: 61}} {
		r := rate(t, "0.0123")
		got, _ := b.DearestMinute(r)
		for k := int64(1); k <= 180; k++ {
			c := (int64(r)*b.Billed(60*k)+59)/60 + int64(b.Connect)
			if v := tollguard.Rate((c + k - 1) / k); v > got {
				t.Errorf("%s: a %d-minute call costs %s a minute, more than DearestMinute %s", b, k, v, got)
			}
		}
	}
}

func TestParseBillingSteps(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, step int64
		ok          bool
	}{
		{"60/60", 60, 60, true}, {"30/6", 30, 6, true}, {" 1 / 1 ", 1, 1, true}, {"60", 60, 60, true},
		{"60+60", 60, 60, true}, {"60-6", 60, 6, true}, {"60s/60s", 60, 60, true}, {"60 sec / 6 sec", 60, 6, true},
		{"3600/3600", 3600, 3600, true},
		{"", 0, 0, false}, {"0/60", 0, 0, false}, {"60/0", 0, 0, false}, {"3601/1", 0, 0, false},
		{"-60", 0, 0, false}, {"+60", 0, 0, false}, {"1.5/1", 0, 0, false}, {"60/60/60", 0, 0, false},
		{"x", 0, 0, false}, {"s", 0, 0, false}, {"99999999999999999999/1", 0, 0, false},
	} {
		first, step, err := tollguard.ParseBillingSteps(tc.in)
		if (err == nil) != tc.ok || first != tc.first || step != tc.step {
			t.Errorf("ParseBillingSteps(%q) = %d, %d, %v; want %d, %d ok=%v", tc.in, first, step, err, tc.first, tc.step, tc.ok)
		}
		if err != nil && tollguard.ErrorCode(err) != tollguard.EINVALID {
			t.Errorf("ParseBillingSteps(%q): code %q, want EINVALID", tc.in, tollguard.ErrorCode(err))
		}
	}
}

func FuzzParseBillingSteps(f *testing.F) {
	for _, s := range []string{"60/60", "30/6", "1", "60s/60s", "0/0", "-1", "1/-1", "3600+3600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, step, err := tollguard.ParseBillingSteps(s)
		if err != nil {
			return
		}
		if first < 1 || first > tollguard.MaxBillingStep || step < 1 || step > tollguard.MaxBillingStep {
			t.Fatalf("%q parsed to %d/%d, out of range", s, first, step)
		}
		b := tollguard.Billing{Initial: first, Increment: step}
		if b.Billed(1) != first || b.Billed(first+1) != first+step {
			t.Fatalf("%q: %d/%d bills %d and %d", s, first, step, b.Billed(1), b.Billed(first+1))
		}
	})
}
