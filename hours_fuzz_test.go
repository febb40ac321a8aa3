package tollguard_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// hoursZones are the zones FuzzHoursOpen picks from: DST in both
// hemispheres, a 30-minute DST (Lord_Howe), odd offsets, DST changes at
// midnight (Santiago, Sao_Paulo's past) and a skipped day (Apia lost
// 2011-12-30).
var hoursZones = []string{"", "UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe",
	"Pacific/Chatham", "America/Santiago", "America/Sao_Paulo", "Pacific/Apia", "Asia/Kolkata"}

var (
	shortDays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	longDays  = []string{"sunday", "monday", "tues", "wednesday", "thurs", "friday", "saturday"}
)

// fuzzDays turns d into a day list of the spec and the days it means,
// worked out here rather than by the parser.
func fuzzDays(d uint16) (string, [7]bool) {
	var set [7]bool
	a, b := int(d&7%7), int(d>>3&7%7)
	var s string
	switch d >> 6 & 7 % 7 {
	case 0:
		s, set[a] = shortDays[a], true
	case 1:
		s, set[a] = longDays[a], true
	case 2: // a range wraps the week: fri-mon is fri, sat, sun, mon
		s = shortDays[a] + "-" + longDays[b]
		for i := a; ; i = (i + 1) % 7 {
			set[i] = true
			if i == b {
				break
			}
		}
	case 3:
		s, set[a], set[b] = shortDays[a]+", "+shortDays[b], true, true
	case 4:
		s, set = "daily", [7]bool{true, true, true, true, true, true, true}
	case 5:
		s = "weekdays"
		for i := 1; i <= 5; i++ {
			set[i] = true
		}
	case 6:
		s, set[0], set[6] = "weekend", true, true
	}
	if d&(1<<9) != 0 { // day names are case-insensitive
		s = strings.ToUpper(s)
	}
	return s, set
}

type fuzzSpan struct {
	days     [7]bool
	from, to int // minutes; to may be 1440 (24:00)
}

// fuzzSpanText turns v into "HH:MM-HH:MM", with spaces or one-digit hours
// on some bits.
func fuzzSpanText(v uint32) (string, int, int) {
	from, to := int(v&0x7ff%1440), int(v>>11&0x7ff%1441)
	clock := func(m int) string {
		if v&(1<<29) != 0 && m < 600 {
			return fmt.Sprintf("%d:%02d", m/60, m%60)
		}
		return fmt.Sprintf("%02d:%02d", m/60, m%60)
	}
	sep := "-"
	if v&(1<<30) != 0 {
		sep = " - "
	}
	return clock(from) + sep + clock(to), from, to
}

// refOpen is the documented meaning of a spec at a wall clock: a span
// [from, to) on its days, and one that ends before it starts also
// covers [0, to) of the next day.
func refOpen(spans []fuzzSpan, weekday, minute int) bool {
	for _, s := range spans {
		if s.from < s.to {
			if s.days[weekday] && minute >= s.from && minute < s.to {
				return true
			}
			continue
		}
		if s.days[weekday] && minute >= s.from || s.days[(weekday+6)%7] && minute < s.to {
			return true
		}
	}
	return false
}

// FuzzHoursOpen: a spec built from fuzzed days and spans (one entry
// with one or two spans, maybe a second entry) and maybe a holiday near
// a fuzzed local wall-clock instant is open there exactly when a
// reference written from ParseHours' documentation says so. The instant
// is made with time.Date from wall-clock fields and the reference works
// from those fields alone, so zone conversion, DST and the weekday are
// not shared with the code under test. Wall times in a DST gap are
// skipped; in a DST overlap both instants must agree. A span of zero
// length, a dated holiday outside 2000-2200 and an impossible date must
// be rejected.
func FuzzHoursOpen(f *testing.F) {
	days := func(kind, a, b int) uint16 { return uint16(kind<<6 | b<<3 | a) }
	span := func(from, to int) uint32 { return uint32(to<<11|from) | 1<<31 }
	clock := func(hh, mm int) uint32 { return uint32(hh + 24*mm) }
	// hol: kind | (offset+1)<<2, kind 1 dated, 2 yearly, 3 yearly with day (hol>>4)%31+1
	f.Add(uint8(2), days(2, 1, 5), uint16(0), span(480, 1080), uint32(0), uint32(0), int32(20458), clock(9, 30), uint16(0))                 // London mon-fri 08:00-18:00, a Monday
	f.Add(uint8(3), days(0, 5, 0), days(0, 6, 0), span(1320, 120), uint32(0), span(540, 780), int32(20463), clock(1, 15), uint16(1|2<<2))   // New York fri 22:00-02:00; sat 09:00-13:00, Saturday 01:15, Sunday a holiday
	f.Add(uint8(3), days(0, 5, 0), days(0, 6, 0), span(1320, 120), uint32(0), span(540, 780), int32(20463), clock(1, 15), uint16(1|1<<2))   // the same, Saturday a holiday: closes at midnight
	f.Add(uint8(2), days(4, 0, 0), uint16(0), span(540, 720), span(30, 180), uint32(0), int32(20541), clock(1, 30), uint16(0))              // London daily 09:00-12:00,00:30-03:00, 01:30 in the spring gap
	f.Add(uint8(2), days(4, 0, 0), uint16(0), span(540, 720), span(30, 180), uint32(0), int32(20541), clock(2, 30), uint16(0))              // and just after it
	f.Add(uint8(3), days(0, 0, 0), uint16(0), span(60, 105), uint32(0), uint32(0), int32(20394), clock(1, 30), uint16(0))                   // New York sun 01:00-01:45, 01:30 happens twice
	f.Add(uint8(3), days(4, 0, 0), uint16(0), span(0, 90), uint32(0), uint32(0), int32(20758), clock(1, 15), uint16(0))                     // New York daily 00:00-01:30, 01:15 twice on 2026-11-01: the second closes at the second 01:30
	f.Add(uint8(2), days(4, 0, 0), uint16(0), span(1080, 90), uint32(0), uint32(0), int32(20751), clock(0, 15), uint16(0))                  // London daily 18:00-01:30 on 2026-10-24/25: closes at the first 01:30 (BST)
	f.Add(uint8(4), days(1, 1, 0), uint16(0), span(1, 1440), uint32(0), uint32(0), int32(20366), clock(2, 45), uint16(2|1<<2))              // Lord_Howe, 24:00, yearly holiday on its DST day
	f.Add(uint8(8), days(4, 0, 0), uint16(0), span(0, 1440), uint32(0), uint32(0), int32(15338), clock(12, 0), uint16(1|1<<2))              // Apia: 2011-12-30 never happened
	f.Add(uint8(8), days(4, 0, 0), uint16(0), span(0, 1440), uint32(0), uint32(0), int32(15339), clock(0, 0), uint16(1|1<<2))               // and the day after
	f.Add(uint8(6), days(4, 0, 0), uint16(0), span(1380, 60), uint32(0), uint32(0), int32(19603), clock(0, 30), uint16(0))                  // Santiago: midnight is skipped
	f.Add(uint8(6), days(4, 0, 0), uint16(0), span(1380, 60), uint32(0), uint32(0), int32(19603), clock(1, 0), uint16(0))                   // and 01:00, its first minute
	f.Add(uint8(1), days(2, 5, 1), days(3, 6, 0), span(600, 600), uint32(0), span(1380, 0), int32(0), clock(0, 0), uint16(0))               // a zero-length span
	f.Add(uint8(0), days(3, 6, 0), uint16(0), span(60, 540)|1<<30|1<<29, uint32(0), uint32(0), int32(99999), clock(0, 0), uint16(1|1<<2))   // a dated holiday in 2243
	f.Add(uint8(9), days(5, 0, 0), days(6, 0, 0), span(0, 1440), uint32(0), span(0, 1440), int32(20490), clock(8, 0), uint16(3|1<<2|29<<4)) // 02-30 as a yearly holiday
	f.Fuzz(func(t *testing.T, zi uint8, days1, days2 uint16, s1, s2, s3 uint32, day int32, clock uint32, hol uint16) {
		zone := hoursZones[int(zi)%len(hoursZones)]
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		var spans []fuzzSpan
		zero := false
		entry := func(days uint16, vs ...uint32) string {
			text, set := fuzzDays(days)
			for i, v := range vs {
				st, from, to := fuzzSpanText(v)
				if i == 0 {
					text += " " + st
				} else {
					text += "," + st
				}
				zero = zero || from == to
				spans = append(spans, fuzzSpan{set, from, to})
			}
			return text
		}
		vs := []uint32{s1}
		if s2&(1<<31) != 0 {
			vs = append(vs, s2)
		}
		spec := entry(days1, vs...)
		if s3&(1<<31) != 0 {
			spec += "; " + entry(days2, s3)
		}

		// The wall clock: a date from 1970 to 2243, days since the
		// epoch giving the weekday (1970-01-01 was a Thursday).
		day = int32(uint32(day) % 100000)
		y, m, d := time.Unix(int64(day)*86400, 0).UTC().Date()
		weekday := int(day+4) % 7
		hh, mm, ss := int(clock%24), int(clock/24%60), int(clock/1440%60)

		// A holiday on, before or after that date, dated or yearly.
		var holidays []string
		badHoliday := false
		offset := int(hol/4%3) - 1
		hy, hm, hd := time.Unix(int64(int(day)+offset)*86400, 0).UTC().Date()
		switch hol % 4 {
		case 1:
			holidays = []string{fmt.Sprintf("%04d-%02d-%02d", hy, hm, hd)}
			badHoliday = hy < 2000 || hy > 2200
		case 2:
			holidays = []string{fmt.Sprintf("%02d-%02d", hm, hd)}
		case 3: // maybe impossible: 02-30, 04-31
			hd = int(hol/16%31) + 1
			holidays = []string{fmt.Sprintf("%02d-%02d", hm, hd)}
			badHoliday = time.Date(2000, hm, hd, 0, 0, 0, 0, time.UTC).Day() != hd
		}
		holiday := hol%4 != 0 && !badHoliday && hm == m && hd == d && (hol%4 != 1 || hy == y)

		h, err := tollguard.ParseHours(zone, spec, holidays)
		if zero || badHoliday {
			if err == nil || tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Fatalf("ParseHours(%q, %q, %q) = %v, want EINVALID", zone, spec, holidays, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseHours(%q, %q, %q): %v", zone, spec, holidays, err)
		}

		want := !holiday && refOpen(spans, weekday, hh*60+mm)
		at := time.Date(y, m, d, hh, mm, ss, 0, loc)
		sameWall := func(u time.Time) bool {
			u = u.In(loc)
			uy, um, ud := u.Date()
			uh, umin, us := u.Clock()
			return uy == y && um == m && ud == d && uh == hh && umin == mm && us == ss
		}
		if !sameWall(at) {
			return // in a DST gap (or Apia's lost day): that wall time never happens
		}
		// Open goes by the schedule's zone whatever the instant's.
		if got := h.Open(at.In(time.FixedZone("X", -11*3600))); got != want {
			t.Fatalf("%q in %q, holidays %q: Open(%v) = %v, want %v", spec, zone, holidays, at, got, want)
		}
		// The other instant with the same wall clock, in a DST overlap:
		// spans are wall-clock, so "sun 01:00-01:45" on New York's
		// fall-back night is open twice (1h45 of real time), and a span
		// inside a spring gap never opens that day.
		for _, shift := range []time.Duration{-time.Hour, time.Hour, -30 * time.Minute, 30 * time.Minute} {
			if other := at.Add(shift); sameWall(other) && h.Open(other) != want {
				t.Fatalf("%q in %q: Open(%v) = %v but Open(%v) = %v, same wall clock", spec, zone, at, want, other, !want)
			}
		}
		// A holiday is closed from its first instant to its last.
		if holiday {
			first := time.Date(y, m, d, 0, 0, 0, 0, loc)
			last := time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
			for _, u := range []time.Time{first, last} {
				if uy, um, ud := u.In(loc).Date(); uy == y && um == m && ud == d && h.Open(u) {
					t.Fatalf("%q in %q: holiday %q open at %v", spec, zone, holidays, u)
				}
			}
		}
		// Closes: only from an open instant, after it, and closed there
		// (unbridged); bridging never closes earlier. From the wall
		// clock's other instant in a repeated hour too.
		ats := []time.Time{at}
		for _, shift := range []time.Duration{30 * time.Minute, time.Hour} {
			if other := at.Add(shift); sameWall(other) {
				ats = append(ats, other)
			}
		}
		for _, at := range ats {
			checkCloses(t, h, at, spec, zone, loc)
		}
	})
}

// checkCloses checks Closes from the instant at (see FuzzHoursOpen).
func checkCloses(t *testing.T, h *tollguard.Hours, at time.Time, spec, zone string, loc *time.Location) {
	t.Helper()
	for _, bridge := range []time.Duration{0, 2 * time.Hour} {
		c, ok := h.Closes(at, bridge)
		if !h.Open(at) {
			if ok {
				t.Fatalf("%q in %q: Closes(%v) = %v from a closed instant", spec, zone, at, c)
			}
			continue
		}
		if !ok {
			// Open for over a week, then: every quarter hour of it.
			// (A close it missed let a call run for hours past it:
			// New York's repeated hour.)
			for i := 1; bridge == 0 && i <= 7*24*4; i++ {
				if u := at.Add(time.Duration(i) * 15 * time.Minute); !h.Open(u) {
					t.Fatalf("%q in %q: Closes(%v) found no close, but closed at %v", spec, zone, at, u)
				}
			}
			continue
		}
		if !c.After(at) {
			t.Fatalf("%q in %q: Closes(%v, %v) = %v, not after it", spec, zone, at, bridge, c)
		}
		if bridge == 0 && h.Open(c) && sameWallOK(c, loc) {
			t.Fatalf("%q in %q: Closes(%v) = %v, open then", spec, zone, at, c)
		}
		// Nor late: open all the way to it (London's 01:30 on its
		// fall-back night was read as the second, an hour late).
		for u := at.Add(15 * time.Minute); bridge == 0 && u.Before(c); u = u.Add(15 * time.Minute) {
			if !h.Open(u) {
				t.Fatalf("%q in %q: Closes(%v) = %v, but closed already at %v", spec, zone, at, c, u)
			}
		}
		if c0, ok0 := h.Closes(at, 0); bridge > 0 && ok0 && c.Before(c0) {
			t.Fatalf("%q in %q: bridged close %v before the span's %v", spec, zone, c, c0)
		}
	}
}

// sameWallOK reports whether t is away from a change of loc's offset:
// near one (a skipped midnight), Closes may close an hour early, which
// only cuts a call sooner.
func sameWallOK(t time.Time, loc *time.Location) bool {
	_, off := t.In(loc).Zone()
	for _, d := range []time.Duration{-3 * time.Hour, 3 * time.Hour} {
		if _, o := t.Add(d).In(loc).Zone(); o != off {
			return false
		}
	}
	return true
}
