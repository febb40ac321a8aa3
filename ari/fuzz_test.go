package ari

import (
	"context"
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
	} {
		f.Add([]byte(s))
	}
	l, store, _ := newBenchListener()
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, frame []byte) {
		before := l.State().Events
		l.HandleFrame(ctx, frame)
		// A second copy exercises duplicates (Asterisk can repeat).
		l.HandleFrame(ctx, frame)
		if got := l.State().Events; got != before+2 {
			t.Fatalf("events counted %d, want %d", got, before+2)
		}
		l.Tick(ctx)
		for len(l.regQ) > 0 {
			<-l.regQ // no registration goroutine here: drain
		}
		if n := len(l.tr.chans); n > maxChannels {
			t.Fatalf("%d channels tracked", n)
		}
		_ = store
	})
}
