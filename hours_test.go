package tollguard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// utc parses an RFC 3339 instant for the tables below.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHoursOpen(t *testing.T) {
	type check struct {
		at   string // RFC 3339
		open bool
	}
	tests := []struct {
		name     string
		zone     string
		spec     string
		holidays []string
		checks   []check
	}{
		{
			name: "weekdays in London, winter",
			zone: "Europe/London", spec: "mon-fri 09:00-17:00",
			checks: []check{
				{"2026-01-12T09:00:00Z", true},  // Mon 09:00 GMT
				{"2026-01-12T08:59:59Z", false}, // a second before opening
				{"2026-01-12T16:59:00Z", true},
				{"2026-01-12T17:00:00Z", false}, // the end is exclusive
				{"2026-01-10T12:00:00Z", false}, // Saturday
				{"2026-01-11T12:00:00Z", false}, // Sunday
			},
		},
		{
			name: "London spring forward (29 March 2026)",
			zone: "Europe/London", spec: "mon-fri 09:00-17:00; sun 00:30-02:30",
			checks: []check{
				{"2026-03-27T08:30:00Z", false}, // Fri 08:30 GMT
				{"2026-03-30T08:30:00Z", true},  // Mon 09:30 BST: same UTC time, now open
				{"2026-03-30T16:30:00Z", false}, // Mon 17:30 BST
				{"2026-03-29T00:45:00Z", true},  // Sun 00:45 GMT
				{"2026-03-29T00:59:00Z", true},  // Sun 00:59 GMT, the last minute before the jump
				{"2026-03-29T01:00:00Z", true},  // Sun 02:00 BST: 01:00-01:59 never happens
				{"2026-03-29T01:30:00Z", false}, // Sun 02:30 BST
			},
		},
		{
			name: "London fall back (25 October 2026)",
			zone: "Europe/London", spec: "mon-fri 09:00-17:00; sun 01:00-02:00",
			checks: []check{
				{"2026-10-23T08:30:00Z", true},  // Fri 09:30 BST
				{"2026-10-26T08:30:00Z", false}, // Mon 08:30 GMT
				{"2026-10-25T00:30:00Z", true},  // Sun 01:30 BST
				{"2026-10-25T01:30:00Z", true},  // Sun 01:30 GMT: the same wall time again
				{"2026-10-25T02:00:00Z", false}, // Sun 02:00 GMT
				{"2026-10-24T23:59:00Z", false}, // Sun 00:59 BST
			},
		},
		{
			name: "New York spring forward (8 March 2026)",
			zone: "America/New_York", spec: "daily 08:00-18:00; sun 01:00-02:30",
			checks: []check{
				{"2026-03-07T12:30:00Z", false}, // Sat 07:30 EST
				{"2026-03-08T12:30:00Z", true},  // Sun 08:30 EDT
				{"2026-03-08T06:59:00Z", true},  // Sun 01:59 EST
				{"2026-03-08T07:00:00Z", false}, // Sun 03:00 EDT: 02:00-02:59 never happens
				{"2026-03-08T21:59:00Z", true},  // Sun 17:59 EDT
				{"2026-03-08T22:00:00Z", false}, // Sun 18:00 EDT
			},
		},
		{
			name: "New York fall back (1 November 2026)",
			zone: "America/New_York", spec: "daily 08:00-18:00; sun 01:00-02:00",
			checks: []check{
				{"2026-10-31T12:30:00Z", true},  // Sat 08:30 EDT
				{"2026-11-01T12:30:00Z", false}, // Sun 07:30 EST
				{"2026-11-01T13:00:00Z", true},  // Sun 08:00 EST
				{"2026-11-01T05:30:00Z", true},  // Sun 01:30 EDT
				{"2026-11-01T06:30:00Z", true},  // Sun 01:30 EST, again
				{"2026-11-01T07:00:00Z", false}, // Sun 02:00 EST
			},
		},
		{
			name: "span across midnight",
			zone: "Europe/Berlin", spec: "fri 22:00-02:00",
			checks: []check{
				{"2026-01-16T20:59:00Z", false}, // Fri 21:59 CET
				{"2026-01-16T21:00:00Z", true},  // Fri 22:00
				{"2026-01-16T23:30:00Z", true},  // Sat 00:30
				{"2026-01-17T00:59:00Z", true},  // Sat 01:59
				{"2026-01-17T01:00:00Z", false}, // Sat 02:00
				{"2026-01-15T21:30:00Z", false}, // Thu 22:30
				{"2026-01-16T00:30:00Z", false}, // Fri 01:30: Thursday night is not open
			},
		},
		{
			name: "Sunday night into Monday wraps the week",
			zone: "UTC", spec: "sun 23:00-01:00",
			checks: []check{
				{"2026-01-11T23:30:00Z", true},  // Sun
				{"2026-01-12T00:30:00Z", true},  // Mon
				{"2026-01-12T01:00:00Z", false}, // Mon
				{"2026-01-10T23:30:00Z", false}, // Sat
			},
		},
		{
			name: "split day and 24:00",
			zone: "Europe/Paris", spec: "mon-fri 08:00-12:00, 14:00-18:00; sat 20:00-24:00",
			checks: []check{
				{"2026-01-12T10:00:00Z", true},  // Mon 11:00 CET
				{"2026-01-12T12:00:00Z", false}, // Mon 13:00, lunch
				{"2026-01-12T13:00:00Z", true},  // Mon 14:00
				{"2026-01-17T22:59:00Z", true},  // Sat 23:59
				{"2026-01-17T23:00:00Z", false}, // Sun 00:00
			},
		},
		{
			name: "Friday evening in New York is Saturday in Tokyo",
			zone: "America/New_York", spec: "mon-fri 00:00-24:00",
			checks: []check{
				{"2026-01-10T02:00:00Z", true}, // Fri 21:00 EST
			},
		},
		{
			name: "the same instant in Tokyo",
			zone: "Asia/Tokyo", spec: "mon-fri 00:00-24:00",
			checks: []check{
				{"2026-01-10T02:00:00Z", false}, // Sat 11:00 JST
			},
		},
		{
			name: "holidays, yearly and one-off",
			zone: "Europe/London", spec: "mon-fri 09:00-17:00", holidays: []string{"12-25", "2026-04-03", " 01-01 "},
			checks: []check{
				{"2026-12-25T12:00:00Z", false}, // Fri, Christmas
				{"2027-12-24T12:00:00Z", true},  // Fri before Christmas 2027
				{"2027-01-01T12:00:00Z", false}, // Fri, New Year, every year
				{"2026-04-03T11:00:00Z", false}, // Good Friday 2026
				{"2027-04-02T11:00:00Z", true},  // an ordinary Friday in 2027
				{"2026-04-02T11:00:00Z", true},  // the Thursday before
			},
		},
		{
			name: "holiday is a local date",
			zone: "America/New_York", spec: "daily 00:00-24:00", holidays: []string{"12-25"},
			checks: []check{
				{"2026-12-25T03:00:00Z", true},  // still 24 Dec, 22:00 EST
				{"2026-12-25T05:00:00Z", false}, // 25 Dec, 00:00 EST
				{"2026-12-26T04:59:00Z", false}, // 25 Dec, 23:59 EST
				{"2026-12-26T05:00:00Z", true},  // 26 Dec
			},
		},
		{
			name: "a span running into a holiday closes at midnight",
			zone: "UTC", spec: "thu 22:00-02:00; fri 22:00-02:00", holidays: []string{"2026-01-16"},
			checks: []check{
				{"2026-01-15T23:00:00Z", true},  // Thu
				{"2026-01-16T01:00:00Z", false}, // Fri (holiday) 01:00
				{"2026-01-17T01:00:00Z", true},  // Sat 01:00: the rest of the holiday's span
			},
		},
		{
			name: "empty spec is always open",
			zone: "Europe/London", spec: "",
			checks: []check{
				{"2026-01-10T03:00:00Z", true},
				{"2026-06-14T23:59:00Z", true},
			},
		},
		{
			name: "empty spec still closes on holidays",
			zone: "Europe/London", spec: " ; ", holidays: []string{"12-25"},
			checks: []check{
				{"2026-12-25T12:00:00Z", false},
				{"2026-12-24T12:00:00Z", true},
			},
		},
		{
			name: "day names, lists, wrapping range, case",
			zone: "", spec: "Sat,SUN 10:00-11:00; fri-mon 20:00-21:00; Wednesday 8:00-9:00",
			checks: []check{
				{"2026-01-10T10:30:00Z", true},  // Sat
				{"2026-01-11T10:30:00Z", true},  // Sun
				{"2026-01-12T10:30:00Z", false}, // Mon
				{"2026-01-12T20:30:00Z", true},  // Mon, fri-mon
				{"2026-01-13T20:30:00Z", false}, // Tue
				{"2026-01-14T08:30:00Z", true},  // Wed
			},
		},
		{
			name: "weekdays and weekend keywords, overlapping spans",
			zone: "UTC", spec: "weekdays 09:00-12:00, 11:00-13:00; weekend 10:00-10:30",
			checks: []check{
				{"2026-01-12T12:30:00Z", true},  // Mon, the second span
				{"2026-01-12T13:00:00Z", false}, // Mon
				{"2026-01-10T10:15:00Z", true},  // Sat
				{"2026-01-10T09:15:00Z", false}, // Sat
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := tollguard.ParseHours(tt.zone, tt.spec, tt.holidays)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.checks {
				at := utc(t, c.at)
				if got := h.Open(at); got != c.open {
					t.Errorf("Open(%s = %s local) = %v, want %v", c.at, at.In(h.Location()).Format("Mon 2006-01-02 15:04 MST"), got, c.open)
				}
				// The caller's location must not matter.
				if got := h.Open(at.In(time.FixedZone("X", 5*3600+1800))); got != c.open {
					t.Errorf("Open(%s in +05:30) = %v, want %v", c.at, got, c.open)
				}
			}
		})
	}
}

func TestParseHoursErrors(t *testing.T) {
	tests := []struct {
		name     string
		zone     string
		spec     string
		holidays []string
		want     string // in the message
	}{
		{"unknown zone", "Europe/Londres", "", nil, "not an IANA time zone"},
		{"Local zone", "Local", "", nil, "name the account's zone"},
		{"no days", "UTC", "08:00-18:00", nil, "no days"},
		{"no times", "UTC", "mon-fri", nil, "no opening times"},
		{"bad day", "UTC", "mun-fri 08:00-18:00", nil, `days "mun-fri"`},
		{"bad day in list", "UTC", "sat,sonday 08:00-18:00", nil, `days "sonday"`},
		{"no dash", "UTC", "mon 08:00", nil, "HH:MM-HH:MM"},
		{"hour 25", "UTC", "mon 08:00-25:00", nil, "end"},
		{"minute 60", "UTC", "mon 08:60-09:00", nil, "start"},
		{"24:00 start", "UTC", "mon 24:00-02:00", nil, "start"},
		{"24:30 end", "UTC", "mon 08:00-24:30", nil, "end"},
		{"no minutes", "UTC", "mon 8-17", nil, "start"},
		{"three-digit hour", "UTC", "mon 008:00-17:00", nil, "start"},
		{"same start and end", "UTC", "mon 08:00-08:00", nil, "00:00-24:00"},
		{"trailing comma", "UTC", "mon 08:00-09:00,", nil, "HH:MM-HH:MM"},
		{"second entry bad", "UTC", "mon 08:00-09:00; tue 09:00", nil, "HH:MM-HH:MM"},
		{"days after a comma", "UTC", "mon-fri 08:00-18:00, sat 09:00-13:00", nil, `days "sat 09:00-13:00" after a comma; separate groups of days with ";"`},
		{"holiday bad date", "UTC", "", []string{"2026-02-30"}, "YYYY-MM-DD"},
		{"holiday bad month", "UTC", "", []string{"13-01"}, "MM-DD"},
		{"holiday words", "UTC", "", []string{"christmas"}, `holiday "christmas"`},
		{"holiday slashes", "UTC", "", []string{"25/12"}, "MM-DD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := tollguard.ParseHours(tt.zone, tt.spec, tt.holidays)
			if err == nil {
				t.Fatalf("no error; got %+v", h)
			}
			if tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Errorf("code %q, want EINVALID", tollguard.ErrorCode(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestHoursCloses(t *testing.T) {
	tests := []struct {
		name, zone, spec string
		holidays         []string
		at, want         string // want "" for no close within a week
		bridge           time.Duration
	}{
		{"end of the day's span", "Europe/London", "mon-fri 09:00-17:30", nil, "2026-01-16T17:29:00Z", "2026-01-16T17:30:00Z", 0},
		{"end of the morning span", "UTC", "mon-fri 08:00-12:00,13:00-18:00", nil, "2026-01-12T11:00:00Z", "2026-01-12T12:00:00Z", 0},
		{"past midnight", "UTC", "fri 22:00-02:00", nil, "2026-01-16T23:00:00Z", "2026-01-17T02:00:00Z", 0},
		{"midnight, when the next day opens later", "UTC", "daily 09:00-24:00", nil, "2026-01-16T23:00:00Z", "2026-01-17T00:00:00Z", 0},
		{"midnight before a holiday", "UTC", "daily 00:00-24:00", []string{"12-25"}, "2026-12-23T10:00:00Z", "2026-12-25T00:00:00Z", 0},
		{"always open, a holiday ahead", "America/New_York", "", []string{"2026-07-04"}, "2026-07-03T12:00:00Z", "2026-07-04T04:00:00Z", 0},
		{"across the autumn change", "Europe/London", "sat 20:00-24:00; sun 00:00-03:00", nil, "2026-10-24T22:00:00Z", "2026-10-25T03:00:00Z", 0},
		{"in summer time", "Europe/London", "mon-fri 09:00-17:30", nil, "2026-07-10T16:00:00Z", "2026-07-10T16:30:00Z", 0},
		{"never closes", "UTC", "daily 00:00-24:00", nil, "2026-01-16T23:00:00Z", "", 0},
		{"closed now", "UTC", "mon-fri 09:00-17:00", nil, "2026-01-17T12:00:00Z", "", 0},
		// A break no longer than the bridge (a call's grace) is no close.
		{"a lunch break within the bridge", "UTC", "mon-fri 08:00-12:00,12:05-18:00", nil, "2026-01-16T11:55:00Z", "2026-01-16T18:00:00Z", 15 * time.Minute},
		{"a lunch break longer than the bridge", "UTC", "mon-fri 08:00-12:00,13:00-18:00", nil, "2026-01-16T11:55:00Z", "2026-01-16T12:00:00Z", 15 * time.Minute},
		{"a night longer than the bridge", "UTC", "daily 08:00-23:50", nil, "2026-01-16T23:00:00Z", "2026-01-16T23:50:00Z", 15 * time.Minute},
		{"a short night within the bridge", "UTC", "mon-fri 00:05-23:55", nil, "2026-01-15T23:00:00Z", "2026-01-16T23:55:00Z", 15 * time.Minute},
		{"a holiday is never bridged", "UTC", "daily 00:00-24:00", []string{"12-25"}, "2026-12-24T10:00:00Z", "2026-12-25T00:00:00Z", 12 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := tollguard.ParseHours(tt.zone, tt.spec, tt.holidays)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := h.Closes(utc(t, tt.at), tt.bridge)
			switch {
			case tt.want == "" && ok:
				t.Errorf("closes at %v, want no close", got.UTC())
			case tt.want != "" && (!ok || !got.Equal(utc(t, tt.want))):
				t.Errorf("closes at %v (%v), want %s", got.UTC(), ok, tt.want)
			}
		})
	}
}

func TestHoursLeapDayAndNil(t *testing.T) {
	h, err := tollguard.ParseHours("UTC", "", []string{"02-29"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Open(utc(t, "2028-02-29T12:00:00Z")) {
		t.Error("open on a 02-29 holiday")
	}
	if !h.Open(utc(t, "2027-03-01T12:00:00Z")) {
		t.Error("closed on 1 March of a non-leap year")
	}
	var none *tollguard.Hours
	if !none.Open(time.Now()) {
		t.Error("a nil schedule is closed")
	}
}

func TestHoursOpenDoesNotAllocate(t *testing.T) {
	h, err := tollguard.ParseHours("America/New_York", "mon-fri 08:00-12:00,13:00-18:00; sat 22:00-02:00", []string{"12-25", "2026-07-03"})
	if err != nil {
		t.Fatal(err)
	}
	at := utc(t, "2026-01-12T15:00:00Z")
	if n := testing.AllocsPerRun(1000, func() { h.Open(at) }); n != 0 {
		t.Errorf("Open allocates %.0f times per call", n)
	}
}

func BenchmarkHoursOpen(b *testing.B) {
	h, err := tollguard.ParseHours("Europe/London", "mon-fri 08:00-12:00,13:00-18:00; sat 09:00-13:00", []string{"12-25", "2026-04-03"})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 12, 15, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		h.Open(at)
	}
}

// FuzzParseHours: any spec and holiday either compiles or gives an
// EINVALID error with a message, never a panic; a compiled schedule
// answers Open at any instant, and a spec open "daily 00:00-24:00"
// plus anything is open at every instant outside holidays.
func FuzzParseHours(f *testing.F) {
	for _, s := range []string{"", "mon-fri 08:00-18:00", "sat,sun 10:00-14:00; fri 22:00-02:00", "daily 00:00-24:00",
		"weekdays 9:00-12:00, 13:00-17:30", "fri-mon 23:59-00:01", "mon 24:00-01:00", "tue 08:00-08:00", ";;", "mon-", "-fri 1:00-2:00", "ｍon 08:00-09:00"} {
		f.Add(s, "12-25", int64(1767225600))
	}
	f.Add("mon 08:00-09:00", "2026-02-29", int64(-1))
	f.Fuzz(func(t *testing.T, spec, holiday string, unix int64) {
		h, err := tollguard.ParseHours("Europe/London", spec, []string{holiday})
		if err != nil {
			if tollguard.ErrorCode(err) != tollguard.EINVALID || err.Error() == "" {
				t.Fatalf("ParseHours(%q, %q): error %v with code %q", spec, holiday, err, tollguard.ErrorCode(err))
			}
			return
		}
		at := time.Unix(unix%(1<<40), 0)
		h.Open(at)
		all, err := tollguard.ParseHours("Europe/London", "daily 00:00-24:00; "+spec, nil)
		if err != nil {
			t.Fatalf("%q parses alone but not after another entry: %v", spec, err)
		}
		if !all.Open(at) {
			t.Fatalf("daily 00:00-24:00; %q is closed at %v", spec, at)
		}
	})
}

// TestHoursClosesInRepeatedHour: in New York's second 01:15 on its
// fall-back night, the 01:30 close was read as the first 01:30, before
// the call: no close at all, and an after-hours class allowed for two
// hours instead of the grace.
func TestHoursClosesInRepeatedHour(t *testing.T) {
	h, err := tollguard.ParseHours("America/New_York", "daily 00:00-01:30", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ at, want time.Time }{
		{time.Date(2026, 11, 1, 5, 15, 0, 0, time.UTC), time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC)}, // the first 01:15, EDT
		{time.Date(2026, 11, 1, 6, 15, 0, 0, time.UTC), time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC)}, // the second, EST
	} {
		if !h.Open(tc.at) {
			t.Fatalf("closed at %v", tc.at)
		}
		if c, ok := h.Closes(tc.at, 0); !ok || !c.Equal(tc.want) {
			t.Errorf("Closes(%v) = %v, %v; want %v", tc.at, c.UTC(), ok, tc.want)
		}
	}
}

// TestHoursClosesInSkippedHour: a close at 01:30 on London's
// spring-forward night (01:30 never happens) was read as 02:30 BST, half
// an hour after Open already said closed; the close is 02:00 BST.
func TestHoursClosesInSkippedHour(t *testing.T) {
	h, err := tollguard.ParseHours("Europe/London", "sat 22:00-01:30", nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 29, 0, 50, 0, 0, time.UTC)
	if !h.Open(at) || h.Open(time.Date(2026, 3, 29, 1, 5, 0, 0, time.UTC)) {
		t.Fatal("Open")
	}
	if c, ok := h.Closes(at, 0); !ok || !c.Equal(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("Closes = %v, %v; want 01:00 UTC (02:00 BST)", c.UTC(), ok)
	}
}

// TestHoursClosesInRepeatedHourEastOfUTC: on London's fall-back night a
// 01:30 close was read as 01:30 GMT (time.Date takes the later instant
// east of UTC), an hour after Open said closed: an international call
// at 00:15 BST ran to 01:30 GMT plus the grace.
func TestHoursClosesInRepeatedHourEastOfUTC(t *testing.T) {
	for _, tc := range []struct {
		zone, spec string
		at, want   time.Time
	}{
		{"Europe/London", "daily 18:00-01:30", time.Date(2026, 10, 24, 23, 15, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
		{"Europe/London", "daily 18:00-01:30", time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)}, // the second 01:15
		{"Africa/Cairo", "daily 18:00-23:30", time.Date(2026, 10, 29, 19, 0, 0, 0, time.UTC), time.Date(2026, 10, 29, 20, 30, 0, 0, time.UTC)},
	} {
		h, err := tollguard.ParseHours(tc.zone, tc.spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Open(tc.at) || h.Open(tc.want) {
			t.Fatalf("%s: Open(%v) = %v, Open(%v) = %v", tc.zone, tc.at, h.Open(tc.at), tc.want, h.Open(tc.want))
		}
		if c, ok := h.Closes(tc.at, 0); !ok || !c.Equal(tc.want) {
			t.Errorf("%s %s: Closes(%v) = %v, %v; want %v", tc.zone, tc.spec, tc.at.UTC(), c.UTC(), ok, tc.want)
		}
	}
}

// TestHoursNameNoSpans: the specs it names are those not empty that
// ParseHours reads as always open: schedule set refuses them, older
// releases stored them.
func TestHoursNameNoSpans(t *testing.T) {
	sun3am := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		spec string
		want bool
	}{
		{"", false}, {";", true}, {" ; ", true}, {";;", true}, {" ", true}, {"\t", true}, {"\r", true}, {"\r\n", true},
		{"; \u00a0", true}, {"\u3000", true}, {"\u2028;", true},
		{"mon-fri 09:00-17:00", false}, {"mon-fri 09:00-17:00;", false}, {"; daily 00:00-24:00", false},
		{"\x00", false}, {"\xff", false}, {"\u200b", false}, // not spaces: ParseHours refuses them
	} {
		if got := tollguard.HoursNameNoSpans(tc.spec); got != tc.want {
			t.Errorf("HoursNameNoSpans(%q) = %v, want %v", tc.spec, got, tc.want)
		}
		h, err := tollguard.ParseHours("UTC", tc.spec, nil)
		if tc.want && (err != nil || !h.Open(sun3am)) {
			t.Errorf("%q: ParseHours no longer reads it as always open (err %v): the warnings must follow", tc.spec, err)
		}
	}
}
