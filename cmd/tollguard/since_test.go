package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time // zero with bad: an error
		bad  bool
		msg  string // in the error, if given
	}{
		{in: "", want: time.Time{}},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "7d", want: now.AddDate(0, 0, -7)},
		{in: "36500d", want: now.Add(-36500 * 24 * time.Hour)},
		{in: "2026-11-01", want: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{in: "-5m", bad: true},
		{in: "0", bad: true},
		{in: "0s", bad: true},
		{in: "0d", bad: true},
		{in: "7 d", bad: true},
		{in: "yesterday", bad: true},
		// 213504 days overflow time.Duration and came out as 25 minutes.
		{in: "213504d", bad: true, msg: "at most 36500d"},
		{in: "99999d", bad: true, msg: "leave --since out"},
		// A date after now listed nothing, as if there were no calls.
		{in: "2030-01-01", bad: true, msg: `--since "2030-01-01": that is after now (2026-11-23 12:00, UTC)`},
		{in: "2026-11-23T12:30:00Z", bad: true, msg: "after now"},
		{in: "2026-11-24T02:30", bad: true, msg: "after now"},
		// Today east of UTC (now 12:00 UTC is 02:00 on the 24th at
		// UTC+14): read as UTC it is after now, and lists nothing yet,
		// but a cron job's --since $(date +%F) must not fail.
		{in: "2026-11-24", want: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{in: "2026-11-23T12:30", want: time.Date(2026, 11, 23, 12, 30, 0, 0, time.UTC)},
		{in: "2026-11-23T11:30", want: time.Date(2026, 11, 23, 11, 30, 0, 0, time.UTC)},
	} {
		got, err := parseSince(tc.in, now)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("parseSince(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.msg)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
