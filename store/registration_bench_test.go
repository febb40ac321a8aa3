package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkObserveContactFlood measures the store's writes for one
// registration on an extension a thief has flooded with flood earlier
// ones, each from a new contact with a new user agent and each replacing
// the last (max_contacts=1, remove_existing=yes), all within the day
// removed contacts are kept. One op is the next registration: the new
// contact's ObserveContact and the replaced one's ContactGone.
func BenchmarkObserveContactFlood(b *testing.B) {
	for _, flood := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("flood=%d", flood), func(b *testing.B) {
			ctx := context.Background()
			db := MustOpenDB(b)
			t0 := regT0
			real := regContact("1001", "sip:1001@192.0.2.10:5060", "192.0.2.10", "Yealink SIP-T46S", t0)
			if _, err := db.ObserveContact(ctx, real); err != nil {
				b.Fatal(err)
			}
			var prev string
			thief := func(i int) {
				at := t0.Add(time.Duration(i) * time.Second)
				c := regContact("1001", fmt.Sprintf("sip:1001@203.0.113.%d:%d", i%250, 10000+i), fmt.Sprintf("203.0.113.%d", i%250),
					fmt.Sprintf("friendly-scanner/%d", i), at)
				if _, err := db.ObserveContact(ctx, c); err != nil {
					b.Fatal(err)
				}
				if prev != "" {
					if _, err := db.ContactGone(ctx, prev, at); err != nil {
						b.Fatal(err)
					}
				}
				prev = c.ID
			}
			for i := range flood {
				thief(i)
			}
			b.ResetTimer()
			for i := range b.N {
				thief(flood + i)
			}
		})
	}
}
