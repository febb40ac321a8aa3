package agi

import (
	"context"
	"slices"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/agi/agitest"
)

// TestHangupLeavesAnsweredChannelsToARI: after an answered Dial with the
// g option, a second Dial that is not answered clears ANSWEREDTIME and
// says NOANSWER, and no dialplan value holds the first call's time (a
// new CDR record starts after each Dial). With the ARI listener running,
// which sums the channel's answered bridges, the hangup request leaves
// such a call to it when the channel is up; a phone's call that never
// answered (Ring) is settled at 0 s at once, as before.
func TestHangupLeavesAnsweredChannelsToARI(t *testing.T) {
	for _, ari := range []bool{true, false} {
		settled := make(chan tollguard.Settlement, 4)
		h := startServer(t, func(s *Server) {
			s.LeaveUpToARI = ari
			s.Gate.(*agitest.Gate).SettleFunc = func(_ context.Context, st tollguard.Settlement) (bool, error) {
				settled <- st
				return true, nil
			}
		})
		hangupCall := func(id, answered, status, state string) *agitest.Result {
			ch := agitest.PJSIP("s")
			ch.Vars[tollguard.VarChannelState] = state
			ch.SetIncludeArgs(tollguard.ScriptHangup, id, answered, status, "")
			return h.run(ch)
		}
		res := hangupCall("7", "", "NOANSWER", "Up")
		readState := slices.Contains(res.Commands, "GET VARIABLE "+tollguard.VarChannelState)
		if ari {
			if !readState || len(settled) != 0 {
				t.Fatalf("with ARI, an unanswered Dial on an answered channel: commands %q, %d settlements; want it left to the listener", res.Commands, len(settled))
			}
		} else {
			if readState {
				t.Errorf("without ARI the state is not read: %q", res.Commands)
			}
			if st := recv(t, settled, "Settle"); st.Billsec != 0 || st.DialStatus != "NOANSWER" {
				t.Errorf("without ARI: %+v, want 0 s NOANSWER", st)
			}
		}
		// A phone's call that rang out: its channel never answered.
		hangupCall("8", "", "NOANSWER", "Ring")
		if st := recv(t, settled, "Settle"); st.CallID != 8 || st.Billsec != 0 {
			t.Errorf("ari %v: rang out: %+v", ari, st)
		}
		// An answered last Dial is settled from ANSWEREDTIME, state unread.
		res = hangupCall("9", "65", "ANSWER", "Up")
		if st := recv(t, settled, "Settle"); st.CallID != 9 || st.Billsec != 65 {
			t.Errorf("ari %v: answered: %+v", ari, st)
		}
		if slices.Contains(res.Commands, "GET VARIABLE "+tollguard.VarChannelState) {
			t.Errorf("ari %v: state read for an answered Dial: %q", ari, res.Commands)
		}
	}
}
