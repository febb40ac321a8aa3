package tollguard

import "time"

// Hours is an account's business-hours schedule, compiled: weekly
// opening spans and holidays, in the account's time zone.
type Hours struct {
	loc  *time.Location
	week [7][]span // by time.Weekday; minutes since local midnight
	// holidays are closed all day: "2026-12-25" for one date, "12-25" for every year.
	dates  map[string]bool
	yearly map[string]bool
	always bool // no spans configured: always open
}

type span struct{ from, to int } // [from, to) in minutes since midnight

// ParseHours compiles a schedule. zone is an IANA zone ("Europe/London");
// spec lists opening spans ("mon-fri 08:00-18:00; sat 09:00-13:00"), and
// an empty spec means always open; holidays are closed all day.
func ParseHours(zone, spec string, holidays []string) (*Hours, error) {
	panic("not implemented")
}

// Open reports whether the schedule is open at t.
func (h *Hours) Open(t time.Time) bool {
	panic("not implemented")
}
