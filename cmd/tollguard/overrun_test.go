package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
)

// TestSweepHangsUpOverrunningCalls: a call Asterisk still carries past
// its MAXSEC + grace (TIMEOUT(absolute) did not end it) is hung up
// through ARI by the daemon's sweep, with a warning that says what to
// check and a metric; a call within its limit is left alone.
func TestSweepHangsUpOverrunningCalls(t *testing.T) {
	ctx := context.Background()
	fake := newFakeARI(t)
	c := newCLI(t)
	c.seed()
	c.ok("account", "set", "acme", "--max-call-secs", "60")

	app, db := openApp(t, c.db)
	now := time.Now()
	app.Now = func() time.Time { return now }
	db.Now = app.Now
	client, err := ari.NewClient(ari.Config{URL: fake.URL, User: fake.User, Password: fake.Password,
		RequestTimeout: 2 * time.Second, DialTimeout: time.Second, ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond, PingInterval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var logs bytes.Buffer
	d := &daemon{app: app, db: db, policy: app.Policy(db), log: slog.New(slog.NewTextHandler(&logs, nil)), metrics: NewMetrics(),
		channelAlive: client.ChannelChecker(), channelHangup: client.ChannelHanger()}
	gate := app.Config.Gate
	d.gate.Store(&gate)

	call := func(id string) tollguard.Decision {
		t.Helper()
		fake.SetChannel(id, "PJSIP/1001-"+id)
		dec, err := d.policy.Decide(ctx, tollguard.Call{Extension: "1001", Dialled: "02079460000", Remote: "192.0.2.10", UniqueID: id})
		if err != nil || !dec.Allowed() || dec.MaxSec != 60 {
			t.Fatalf("decision %+v %v; want allowed for 60 s", dec, err)
		}
		fake.SetChannelVar(id, tollguard.VarCallID, strconv.FormatInt(dec.CallID, 10)) // as the gate's reply does
		return dec
	}
	call("pbx-1.1")
	// pbx-1.3's channel went on to another call (the include cleared
	// TOLLGUARD_CALLID: a DISA caller now on 112, whose hangup handler
	// settles this one): its channel must not be hung up, and the call
	// is charged its whole reservation only once past MAXSEC + grace.
	moved := call("pbx-1.3")
	fake.SetChannelVar("pbx-1.3", tollguard.VarCallID, "")
	now = now.Add(time.Minute)
	// pbx-1.4 is decided but its channel has not heard the answer yet.
	young := call("pbx-1.4")
	fake.SetChannelVar("pbx-1.4", tollguard.VarCallID, "")
	d.reconcile(ctx)
	for _, id := range []int64{moved.CallID, young.CallID} {
		if rec, err := db.Call(ctx, id); err != nil || !rec.Open() {
			t.Errorf("call %d on a channel up without its id, within MAXSEC + grace: %+v %v; want it left open", id, rec, err)
		}
	}
	call("pbx-1.2")
	// pbx-1.1 is a minute past its 60 s; pbx-1.2 has just started.
	now = now.Add(gate.SweepGrace.Duration + time.Second)
	d.reconcile(ctx)
	if !fake.HasChannel("pbx-1.3") {
		t.Error("the sweep hung up a channel that had gone on to another call")
	}
	if rec, err := db.Call(ctx, moved.CallID); err != nil || rec.Open() || rec.SettledBy != "sweep:maxsec" || rec.Charge != moved.Reserve {
		t.Errorf("the moved-on call: %+v %v; want it charged its reservation past MAXSEC + grace", rec, err)
	}

	dels := fake.RequestsMatching(http.MethodDelete, "/channels/")
	if len(dels) != 1 || !strings.HasSuffix(dels[0].Path, "/channels/pbx-1.1") || dels[0].Query.Get("reason") != "normal" {
		t.Fatalf("hangups sent: %+v; want pbx-1.1's alone, reason normal", dels)
	}
	if fake.HasChannel("pbx-1.1") || !fake.HasChannel("pbx-1.2") {
		t.Fatal("the wrong channel went")
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "hung up a call still up past its MAXSEC", "extension=1001", "account=acme", "dest=02079460000", "uniqueid=pbx-1.1", "clears or changes TIMEOUT(absolute)"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if got := counterValue(t, d.metrics, "tollguard_calls_overran_total", "hung_up"); got != 1 {
		t.Errorf("tollguard_calls_overran_total{action=hung_up} = %v, want 1", got)
	}
}

// counterValue reads a labelled counter from m (see the sum below).
func counterValue(t *testing.T, m *Metrics, name, label string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// The sum of the series with label among their values (every
	// series exists at 0 from the start: audits by severity too).
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, c := range mf.GetMetric() {
			for _, l := range c.GetLabel() {
				if l.GetValue() == label {
					sum, found = sum+c.GetCounter().GetValue(), true
				}
			}
		}
	}
	if !found {
		return -1
	}
	return sum
}
