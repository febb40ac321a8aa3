package tollguard

import (
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // accounts' zones must load even where the host has no tzdata package
	"unicode"
)

// Hours is an account's business-hours schedule, compiled: weekly
// opening spans and holidays, in the account's time zone.
type Hours struct {
	loc  *time.Location
	week [7][]span // by time.Weekday; minutes since local midnight
	// Holidays are closed all day: dates holds one-off dates as
	// yyyymmdd, yearly the MM-DD ones. Integer keys keep Open free of
	// allocations.
	dates  map[int]bool
	yearly [13][32]bool
	always bool // no spans configured: open except on holidays
}

type span struct{ from, to int } // [from, to) in minutes since midnight

const minutesPerDay = 24 * 60

// ParseHours compiles a schedule. zone is an IANA zone ("Europe/London";
// "" means UTC). spec lists opening spans, ';'-separated entries of
// "<days> <HH:MM>-<HH:MM>[,<HH:MM>-<HH:MM>...]":
//
//	mon-fri 08:00-12:30,13:30-18:00; sat 09:00-13:00
//	daily 00:00-24:00
//	fri 22:00-02:00        (a span ending before it starts runs past midnight, into Saturday)
//
// Days are mon..sun (or full names), ranges ("mon-fri", "fri-mon"),
// lists ("sat,sun"), "daily", "weekdays" and "weekend". An empty spec
// means always open. Times are wall-clock times in zone, so a schedule
// keeps its local hours across daylight-saving changes.
//
// holidays are closed all day, midnight to midnight local time:
// "2026-12-25" for one date, "12-25" for every year. A span running past
// midnight into a holiday closes at midnight; one running out of a
// holiday into an ordinary day is open after midnight.
func ParseHours(zone, spec string, holidays []string) (*Hours, error) {
	loc, err := loadZone(zone)
	if err != nil {
		return nil, err
	}
	h := &Hours{loc: loc}
	if err := h.parseSpec(spec); err != nil {
		return nil, err
	}
	for _, hd := range holidays {
		if err := h.addHoliday(hd); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// HoursNameNoSpans reports whether spec is not empty yet names no
// opening span: only ";" and spaces (a CR left from a CRLF file).
// ParseHours reads it as "", always open. schedule set refuses it, but
// releases before it stored it, and the gate must not fail such an
// account's every call: it is shown and logged instead (NoSpansAdvice).
func HoursNameNoSpans(spec string) bool {
	return spec != "" && strings.TrimFunc(spec, func(r rune) bool { return r == ';' || unicode.IsSpace(r) }) == ""
}

// NoSpansAdvice says what an account's hours that name no span mean,
// and the command that sets them.
func NoSpansAdvice(account, spec string) string {
	return fmt.Sprintf("account %s's business hours %q name no opening times, so they are read as always open and its after-hours classes are allowed at night too; "+
		"set them with `tollguard schedule set %s --hours \"mon-fri 08:00-18:00\"`, or --hours \"\" if always open is meant", account, spec, account)
}

// Open reports whether the schedule is open at t, in the schedule's own
// zone whatever t's location. A nil *Hours is always open. Open is on
// the per-call path: it does not allocate.
func (h *Hours) Open(t time.Time) bool {
	if h == nil {
		return true
	}
	lt := t.In(h.loc)
	y, m, d := lt.Date()
	if h.holiday(y, m, d) {
		return false
	}
	if h.always {
		return true
	}
	hh, mm, _ := lt.Clock()
	now := hh*60 + mm
	for _, s := range h.week[lt.Weekday()] {
		if now >= s.from && now < s.to {
			return true
		}
	}
	return false
}

// Holiday reports whether t falls on one of the schedule's holidays,
// in its zone.
func (h *Hours) Holiday(t time.Time) bool {
	if h == nil {
		return false
	}
	y, m, d := t.In(h.loc).Date()
	return h.holiday(y, m, d)
}

func (h *Hours) holiday(y int, m time.Month, d int) bool {
	return h.yearly[m][d] || h.dates != nil && h.dates[y*10000+int(m)*100+d]
}

// Closes returns when a schedule open at t next closes for longer than
// bridge: a break of at most bridge (lunch, when bridge is a call's
// grace after the close) does not count as a close. Spans run on across
// midnight; a holiday closes at the midnight before it. ok is false
// when t is outside the schedule, or it stays open for over a week
// (always open, no holidays).
func (h *Hours) Closes(t time.Time, bridge time.Duration) (closes time.Time, ok bool) {
	if h == nil || !h.Open(t) {
		return time.Time{}, false
	}
	lt := t.In(h.loc)
	hh, mm, _ := lt.Clock()
	// Positions are minutes from the midnight starting t's day, in wall
	// time; a week and a day ahead at most.
	const horizon = 8 * minutesPerDay
	y, m, d := lt.Date()
	pos := hh*60 + mm
	for pos < horizon {
		end := h.spanEnd(y, m, d, pos)
		if end >= horizon {
			break
		}
		next := h.nextOpen(y, m, d, end, horizon)
		if next < 0 || time.Duration(next-end)*time.Minute > bridge {
			c := wallInstant(h.loc, y, m, d, end)
			if !c.After(t) {
				// t is in a repeated hour (clocks went back): the close's
				// wall time comes again after it (New York's second
				// 01:30 on its fall-back night).
				c = laterSameWall(h.loc, c, t)
			}
			// Apia lost 2011-12-30 whole: no close known, then.
			return c, c.After(t)
		}
		pos = next
	}
	return time.Time{}, false
}

// wallInstant is the first instant in loc at or after the wall time
// minutes past the midnight starting y-m-d (the first of two, in a
// repeated hour). time.Date may normalise a
// wall time a zone skipped to an hour before it (Santiago's midnight on
// its spring-forward day read as 23:00), which would close early.
func wallInstant(loc *time.Location, y int, m time.Month, d, minutes int) time.Time {
	want := time.Date(y, m, d, 0, minutes, 0, 0, time.UTC) // the civil wall time
	c := time.Date(want.Year(), want.Month(), want.Day(), want.Hour(), want.Minute(), 0, 0, loc)
	civil := func(t time.Time) time.Time {
		u := t.In(loc)
		return time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), 0, time.UTC)
	}
	for range 8 { // offsets change by at most a day's worth of half hours... in practice once
		at := civil(c)
		if at.Equal(want) {
			// A wall time the clocks went back over happens twice, and
			// time.Date picks the later east of UTC (London's 01:30 on
			// its fall-back night as 01:30 GMT): the first is wanted,
			// when Open already says closed. Closes moves on to the
			// second when the first is past.
			for _, d := range []time.Duration{2 * time.Hour, 90 * time.Minute, time.Hour, 30 * time.Minute} {
				if u := c.Add(-d); civil(u).Equal(want) {
					return u
				}
			}
			return c
		}
		if at.After(want) {
			// The wall time fell in a gap (London's 01:30 on its
			// spring-forward night is read as 02:30 BST): the first
			// instant at or after it is the change of offset, 02:00 BST.
			lo, hi := c.Add(-3*time.Hour).Unix(), c.Unix()
			if civil(time.Unix(lo, 0)).After(want) {
				return c
			}
			for hi-lo > 1 {
				mid := lo + (hi-lo)/2
				if civil(time.Unix(mid, 0)).Before(want) {
					lo = mid
				} else {
					hi = mid
				}
			}
			return time.Unix(hi, 0).In(c.Location())
		}
		c = c.Add(want.Sub(at))
	}
	return c
}

// laterSameWall is the instant after t with c's wall time in loc, when
// a change of offset repeats it within two hours; else c.
func laterSameWall(loc *time.Location, c, t time.Time) time.Time {
	wc := c.In(loc)
	for _, d := range []time.Duration{30 * time.Minute, time.Hour, 90 * time.Minute, 2 * time.Hour} {
		u := c.Add(d)
		wu := u.In(loc)
		if u.After(t) && wu.Hour() == wc.Hour() && wu.Minute() == wc.Minute() && wu.YearDay() == wc.YearDay() {
			return u
		}
	}
	return c
}

// spanEnd is where the open span holding position pos (minutes from the
// midnight starting y-m-d) ends, on that day.
func (h *Hours) spanEnd(y int, m time.Month, d, pos int) int {
	day, minute := pos/minutesPerDay, pos%minutesPerDay
	if h.always {
		return (day + 1) * minutesPerDay
	}
	date := time.Date(y, m, d+day, 12, 0, 0, 0, h.loc) // noon: every day has one
	for _, s := range h.week[date.Weekday()] {
		if s.from <= minute && minute < s.to {
			return day*minutesPerDay + s.to
		}
	}
	return pos
}

// nextOpen is the first position at or after pos where the schedule is
// open, or -1 if none before limit.
func (h *Hours) nextOpen(y int, m time.Month, d, pos, limit int) int {
	for day := pos / minutesPerDay; day*minutesPerDay < limit; day++ {
		date := time.Date(y, m, d+day, 12, 0, 0, 0, h.loc)
		dy, dm, dd := date.Date()
		if h.holiday(dy, dm, dd) {
			continue
		}
		from := 0
		if day == pos/minutesPerDay {
			from = pos % minutesPerDay
		}
		if h.always {
			return day*minutesPerDay + from
		}
		for _, s := range h.week[date.Weekday()] {
			if s.to > from {
				return day*minutesPerDay + max(s.from, from)
			}
		}
	}
	return -1
}

// Location returns the schedule's time zone.
func (h *Hours) Location() *time.Location {
	if h == nil {
		return time.UTC
	}
	return h.loc
}

func loadZone(zone string) (*time.Location, error) {
	zone = strings.TrimSpace(zone)
	if zone == "" || zone == "UTC" {
		return time.UTC, nil
	}
	if zone == "Local" {
		// The server's zone would make decisions depend on the host.
		return nil, Errorf(EINVALID, "time zone %q: name the account's zone instead, e.g. Europe/London or America/New_York", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, Errorf(EINVALID, "time zone %q: not an IANA time zone name; use one like Europe/London, America/New_York or UTC", zone)
	}
	return loc, nil
}

const hoursExample = `write "<days> HH:MM-HH:MM", e.g. "mon-fri 08:00-18:00; sat 09:00-13:00"`

func (h *Hours) parseSpec(spec string) error {
	found := false
	for entry := range strings.SplitSeq(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		found = true
		i := strings.IndexAny(entry, "0123456789")
		if i < 0 {
			return Errorf(EINVALID, "business hours %q: no opening times; %s", entry, hoursExample)
		}
		dayPart, timePart := strings.TrimSpace(entry[:i]), entry[i:]
		if dayPart == "" {
			return Errorf(EINVALID, "business hours %q: no days before the times; %s, or \"daily 09:00-17:00\"", entry, hoursExample)
		}
		days, err := parseDays(dayPart)
		if err != nil {
			return err
		}
		for sp := range strings.SplitSeq(timePart, ",") {
			if strings.IndexFunc(sp, unicode.IsLetter) >= 0 {
				// "mon-fri 08:00-18:00, sat 09:00-13:00": the comma
				// separates times of the same days.
				return Errorf(EINVALID, "business hours %q: days %q after a comma; separate groups of days with \";\", e.g. \"mon-fri 08:00-18:00; sat 09:00-13:00\" (a comma separates times of the same days: \"mon-fri 08:00-12:00, 13:00-17:00\")", clip(entry), clip(strings.TrimSpace(sp)))
			}
			from, to, err := parseSpan(sp)
			if err != nil {
				return err
			}
			for d := range 7 {
				if !days[d] {
					continue
				}
				if from < to {
					h.week[d] = append(h.week[d], span{from, to})
					continue
				}
				// Past midnight: the rest of this day and the start of the next.
				h.week[d] = append(h.week[d], span{from, minutesPerDay})
				if to > 0 {
					next := (d + 1) % 7
					h.week[next] = append(h.week[next], span{0, to})
				}
			}
		}
	}
	if !found {
		h.always = true
		return nil
	}
	for d := range h.week {
		h.week[d] = mergeSpans(h.week[d])
	}
	return nil
}

// mergeSpans sorts a day's spans and joins overlapping ones, so Open
// scans as few as possible.
func mergeSpans(ss []span) []span {
	if len(ss) < 2 {
		return ss
	}
	slices.SortFunc(ss, func(a, b span) int { return a.from - b.from })
	out := ss[:1]
	for _, s := range ss[1:] {
		last := &out[len(out)-1]
		if s.from <= last.to {
			last.to = max(last.to, s.to)
			continue
		}
		out = append(out, s)
	}
	return slices.Clip(out)
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"tues": time.Tuesday, "thur": time.Thursday, "thurs": time.Thursday,
}

// parseDays reads "mon-fri", "sat,sun", "fri-mon", "daily".
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	s = strings.ToLower(s)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		switch item {
		case "daily", "everyday", "all":
			days = [7]bool{true, true, true, true, true, true, true}
			continue
		case "weekdays":
			for d := time.Monday; d <= time.Friday; d++ {
				days[d] = true
			}
			continue
		case "weekend", "weekends":
			days[time.Saturday], days[time.Sunday] = true, true
			continue
		}
		a, b, isRange := strings.Cut(item, "-")
		from, ok1 := dayNames[strings.TrimSpace(a)]
		to, ok2 := from, true
		if isRange {
			to, ok2 = dayNames[strings.TrimSpace(b)]
		}
		if !ok1 || !ok2 {
			return days, Errorf(EINVALID, "business hours: days %q: use mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri, lists like sat,sun, or daily", clip(item))
		}
		// A range may wrap the week: fri-mon is fri, sat, sun, mon.
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return days, nil
}

// parseSpan reads "08:00-18:00" (spaces allowed); 24:00 only as an end.
func parseSpan(s string) (from, to int, err error) {
	s = strings.Join(strings.Fields(s), "")
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, Errorf(EINVALID, "business hours: times %q: write a span as HH:MM-HH:MM, e.g. 08:00-18:00", clip(s))
	}
	if from, ok = parseClock(a, false); !ok {
		return 0, 0, Errorf(EINVALID, "business hours: start %q in %q: write HH:MM from 00:00 to 23:59", clip(a), clip(s))
	}
	if to, ok = parseClock(b, true); !ok {
		return 0, 0, Errorf(EINVALID, "business hours: end %q in %q: write HH:MM from 00:00 to 24:00", clip(b), clip(s))
	}
	if from == to {
		return 0, 0, Errorf(EINVALID, "business hours: span %q starts and ends at the same time; write 00:00-24:00 for all day", clip(s))
	}
	return from, to, nil
}

// parseClock reads "8:00" or "08:00" as minutes since midnight.
func parseClock(s string, allow24 bool) (int, bool) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 || !allDigits(hs) || !allDigits(ms) {
		return 0, false
	}
	h := int(hs[0] - '0')
	if len(hs) == 2 {
		h = h*10 + int(hs[1]-'0')
	}
	m := int(ms[0]-'0')*10 + int(ms[1]-'0')
	switch {
	case m > 59:
		return 0, false
	case h == 24 && m == 0 && allow24:
		return minutesPerDay, true
	case h > 23:
		return 0, false
	}
	return h*60 + m, true
}

func (h *Hours) addHoliday(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if len(s) == len("2006-01-02") {
		t, err := time.Parse("2006-01-02", s)
		if err == nil && (t.Year() < 2000 || t.Year() > 2200) {
			return Errorf(EINVALID, "holiday %q: the year %d is surely a typo; write MM-DD for every year (12-25)", s, t.Year())
		}
		if err == nil {
			if h.dates == nil {
				h.dates = make(map[int]bool)
			}
			h.dates[t.Year()*10000+int(t.Month())*100+t.Day()] = true
			return nil
		}
	}
	if len(s) == len("01-02") {
		// 2000 is a leap year, so 02-29 is a valid yearly holiday.
		t, err := time.Parse("2006-01-02", "2000-"+s)
		if err == nil {
			h.yearly[t.Month()][t.Day()] = true
			return nil
		}
	}
	return Errorf(EINVALID, "holiday %q: write YYYY-MM-DD for one date (2026-12-24) or MM-DD for every year (12-25)", clip(s))
}
