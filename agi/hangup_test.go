package agi

import (
	"context"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

// TestHangupBillsStartedSeconds: ANSWEREDTIME is rounded down (3 for
// 3.509 s in the recordings); the include passes ANSWEREDTIME_MS too,
// and a started second is billed. Without it, ANSWEREDTIME is used.
func TestHangupBillsStartedSeconds(t *testing.T) {
	settled := make(chan tollguard.Settlement, 1)
	h := startServer(t, func(s *Server) {
		s.Gate.(*agitest.Gate).SettleFunc = func(_ context.Context, st tollguard.Settlement) (bool, error) {
			settled <- st
			return true, nil
		}
	})
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{[]string{"7", "3", "ANSWER", "3509"}, 4},
		{[]string{"7", "3", "ANSWER", "3000"}, 3},
		{[]string{"7", "0", "ANSWER", "1"}, 1},
		{[]string{"7", "", "NOANSWER", ""}, 0},
		{[]string{"7", "3", "ANSWER", ""}, 3},                                   // not answered through Dial's MS, or an old handler
		{[]string{"7", "3", "ANSWER", "junk"}, 3},                               // unreadable: the seconds
		{[]string{"7", "3", "ANSWER", "9223372036854775807"}, 9223372036854776}, // no overflow to a free call
		{[]string{"7", "3", "ANSWER"}, 3},                                       // no ANSWEREDTIME_MS
	} {
		ch := agitest.PJSIP("s")
		ch.Dead = true                                        // a hangup handler's request
		ch.SetIncludeArgs(tollguard.ScriptHangup, tc.args...) // with the random last argument, not read as one
		h.run(ch)
		if st := recv(t, settled, "Settle"); st.Billsec != tc.want {
			t.Errorf("args %q: billed %d s, want %d", tc.args, st.Billsec, tc.want)
		}
		// The include before this one: three arguments, no copies.
		ch = agitest.PJSIP("s")
		ch.Dead = true
		ch.SetScript(tollguard.ScriptHangup)
		ch.SetArgs(tc.args...)
		h.run(ch)
		if st := recv(t, settled, "Settle"); st.Billsec != tc.want {
			t.Errorf("args %q: billed %d s, want %d", tc.args, st.Billsec, tc.want)
		}
	}
}
