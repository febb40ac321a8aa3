package store

import (
	"slices"
	"testing"
)

func TestEvictions(t *testing.T) {
	const day = 86400
	fresh := func(v string, last int64) histEntry { return histEntry{value: v, first: last, last: last} }
	est := func(v string, last int64) histEntry { return histEntry{value: v, first: last - 30*day, last: last} }
	live := func(e histEntry) histEntry { e.inUse = true; return e }
	for _, tc := range []struct {
		name  string
		limit int
		es    []histEntry
		want  []string
	}{
		{name: "UnderTheCap", limit: 4, es: []histEntry{fresh("a", 1), fresh("b", 2)}, want: []string{}},
		{name: "AtTheCap", limit: 2, es: []histEntry{fresh("a", 1), fresh("b", 2)}, want: []string{}},
		{name: "LeastRecentlySeenFirst", limit: 2, es: []histEntry{fresh("b", 2), fresh("a", 1), fresh("c", 3)}, want: []string{"a"}},
		{name: "TiesByValue", limit: 1, es: []histEntry{fresh("b", 1), fresh("a", 1)}, want: []string{"a"}},
		// More than half are fresh: a fresh one goes, though an
		// established one was seen less recently.
		{name: "FreshGoFirstWhileMoreThanHalf", limit: 4,
			es:   []histEntry{est("desk", 1), fresh("x1", 10), fresh("x2", 11), fresh("x3", 12), fresh("x4", 13)},
			want: []string{"x1"}},
		// Half or fewer are fresh: the least recently seen of all goes.
		{name: "ThenLeastRecentlySeenOfAll", limit: 4,
			es:   []histEntry{est("old", 1), est("desk", 20), est("laptop", 5), fresh("new", 10), fresh("x", 12)},
			want: []string{"old"}},
		// Fresh ones go down to half, then the least recently seen.
		{name: "ManyAtOnce", limit: 4,
			es:   []histEntry{est("e1", 1), est("e2", 2), est("e3", 3), fresh("f1", 4), fresh("f2", 5), fresh("f3", 6), fresh("f4", 7)},
			want: []string{"f1", "f2", "e1"}},
		{name: "InUseStay", limit: 2,
			es:   []histEntry{live(fresh("a", 1)), live(est("b", 2)), fresh("c", 3), fresh("d", 4)},
			want: []string{"c", "d"}},
		// A thief's live contact is fresh too: it counts toward the
		// fresh half, else each live one took an established slot (31
		// of 64 kept against a flood with max_contacts=1, not 32).
		{name: "FreshInUseCountTowardsHalf", limit: 4,
			es:   []histEntry{est("e1", 1), est("e2", 2), fresh("f1", 10), fresh("f2", 11), live(fresh("t", 12))},
			want: []string{"f1"}},
		{name: "AllInUse", limit: 1, es: []histEntry{live(fresh("a", 1)), live(fresh("b", 2))}, want: []string{}},
		// Established means in use over a day (first to last seen).
		{name: "InUseForLessThanADayIsFresh", limit: 2,
			es:   []histEntry{est("desk", 1), {value: "x1", first: 0, last: day - 1}, fresh("x2", day)},
			want: []string{"x1"}},
		{name: "InUseForADayIsEstablished", limit: 2,
			es:   []histEntry{est("desk", 1), {value: "x1", first: 0, last: day}, fresh("x2", day)},
			want: []string{"desk"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := evictions(tc.es, tc.limit, day)
			if !slices.Equal(got, tc.want) {
				t.Errorf("evictions = %q, want %q", got, tc.want)
			}
		})
	}
}
