package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/tollguard/tollguard/ari/aritest"
)

// FuzzEvent feeds arbitrary frames through decoding and dispatch: the
// call tracker, every detector, settlement and the registration queue.
// Nothing may panic, every frame counts once, and state stays bounded.
func FuzzEvent(f *testing.F) {
	for _, name := range []string{"ari-events-outbound-call-allowed.jsonl", "ari-events-outbound-call-denied.jsonl",
		"ari-events-ari-originate.jsonl", "ari-events-register.jsonl", "ari-events-application-replaced.jsonl",
		"ari-events-ari-hangup-active-call.jsonl"} {
		frames, err := aritest.FixtureEvents(name)
		if err != nil {
			f.Fatal(err)
		}
		for i, fr := range frames {
			if i%7 == 0 || len(frames) < 10 {
				f.Add(fr)
			}
		}
	}
	for _, s := range []string{
		`{"type":"ChannelTransfer"}`, `{"type":"Dial","caller":{"id":"a","name":"PJSIP/1-1"},"peer":{"id":"a","name":"Local/x@y-1;1"},"dialstatus":""}`,
		`{"type":"ChannelVarset","variable":"TOLLGUARD_CALLID","value":"-1","channel":{"id":"z","name":"PJSIP/2000-1"}}`,
		`{"type":"ChannelDestroyed","channel":{"id":"z","name":"Local/;2"}}`, `{"type":"ContactStatusChange","contact_info":{}}`,
		`{"type":"ChannelCreated","channel":{"id":"c","name":"PJSIP/2001-00000001","state":"Ring","dialplan":{"exten":"0088216123001"}}}`,
		``, `{`, `null`, `{"type":null}`, `{"type":"\u0000"}`,
		`{"type":"ChannelCreated","channel":{"id":"a","name":"PJSIP/2001-00000001","state":"Ring"}}` + "\n" +
			`{"type":"ChannelCreated","channel":{"id":"b","name":"Local/0088216123001@out-00000001;1","state":"Down"}}` + "\n" +
			`{"type":"Dial","caller":{"id":"a","name":"PJSIP/2001-00000001"},"peer":{"id":"b","name":"Local/0088216123001@out-00000001;1"},"dialstatus":""}`,
	} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, frame []byte) {
		// A fresh listener per input, so a failure reproduces from it.
		// Lines are frames in turn, so the fuzzer can build sequences
		// (a Dial between channels it created, a destroy out of order).
		l, _, _ := newBenchListener()
		frames := bytes.Split(frame, []byte("\n"))
		for _, fr := range frames {
			l.HandleFrame(ctx, fr)
			// A second copy exercises duplicates (Asterisk can repeat).
			l.HandleFrame(ctx, fr)
		}
		if got := l.State().Events; got != uint64(2*len(frames)) {
			t.Fatalf("events counted %d, want %d", got, 2*len(frames))
		}
		l.Tick(ctx)
		for len(l.regQ) > 0 {
			<-l.regQ // no registration goroutine here: drain
		}
		if n := len(l.tr.chans); n > maxChannels {
			t.Fatalf("%d channels tracked", n)
		}
		// Once Asterisk destroys every channel the frame created, nothing
		// is left tracked: no leak grows over a long-running listener.
		var ids []string
		for id := range l.tr.chans {
			ids = append(ids, id)
		}
		for _, id := range ids {
			b, _ := json.Marshal(map[string]any{"type": "ChannelDestroyed", "channel": map[string]any{"id": id, "name": l.tr.chans[id].name}})
			l.HandleFrame(ctx, b)
		}
		if len(l.tr.chans) != 0 || len(l.tr.locals) != 0 {
			t.Fatalf("after every channel was destroyed: %d channels, %d Local halves still tracked", len(l.tr.chans), len(l.tr.locals))
		}
	})
}
