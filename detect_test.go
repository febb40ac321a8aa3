package tollguard_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

var detT0 = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

func detNumber(t testing.TB, dialled string) tollguard.Number {
	t.Helper()
	plan, err := tollguard.PlanFor("GB")
	if err != nil {
		t.Fatal(err)
	}
	return tollguard.Classify(dialled, plan, tollguard.DefaultHighRiskList())
}

func detNew(t testing.TB, rules map[string]tollguard.DetectorRule) *tollguard.Detectors {
	t.Helper()
	d, err := tollguard.NewDetectors(tollguard.DetectorSettings{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func detAttempt(t testing.TB, call, ext, acct, dialled string, at time.Time) tollguard.CallAttempt {
	return tollguard.CallAttempt{Call: call, At: at, Extension: ext, Account: acct, Context: "from-internal", Number: detNumber(t, dialled)}
}

func detOnly(fs []tollguard.Finding, source string) []tollguard.Finding {
	var out []tollguard.Finding
	for _, f := range fs {
		if f.Source == source {
			out = append(out, f)
		}
	}
	return out
}

func TestDetectorBurst(t *testing.T) {
	d := detNew(t, map[string]tollguard.DetectorRule{
		tollguard.DetectBurstExt:  {Threshold: 5, Window: time.Minute, Action: tollguard.ActionAlert},
		tollguard.DetectBurstAcct: {Threshold: 8, Window: time.Minute, Action: tollguard.ActionIntlBlock},
	})
	t.Run("BelowThresholdIsQuiet", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			fs := d.Attempt(detAttempt(t, fmt.Sprint("q", i), "2001", "quiet", "02079460001", detT0.Add(time.Duration(i)*time.Second)))
			if fs = append(detOnly(fs, "detector:burst_ext"), detOnly(fs, "detector:burst_acct")...); len(fs) > 0 {
				t.Fatalf("attempt %d: %+v", i, fs)
			}
		}
	})
	t.Run("SpreadOverWindowsIsQuiet", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			// one every 20 s: never 5 in a minute
			fs := d.Attempt(detAttempt(t, fmt.Sprint("s", i), "2002", "slow", "02079460001", detT0.Add(time.Duration(i)*20*time.Second)))
			if got := detOnly(fs, "detector:burst_ext"); len(got) > 0 {
				t.Fatalf("attempt %d: %+v", i, got)
			}
		}
	})
	t.Run("FiresPerExtensionAtThreshold", func(t *testing.T) {
		var fired []tollguard.Finding
		for i := 0; i < 5; i++ {
			fired = append(fired, detOnly(d.Attempt(detAttempt(t, fmt.Sprint("b", i), "1001", "acme", "02079460001", detT0.Add(time.Duration(i)*time.Second))), "detector:burst_ext")...)
		}
		if len(fired) != 1 {
			t.Fatalf("findings: %+v", fired)
		}
		f := fired[0]
		if f.Kind != tollguard.AlertBurst || f.Subject != "ext:1001" || f.Action != tollguard.ActionAlert || f.Severity != tollguard.SeverityWarning {
			t.Errorf("finding: %+v", f)
		}
		if f.Evidence["attempts"] != 5 || !strings.Contains(f.Message, "extension 1001: 5 calls from phones (with a source address) in 4s (threshold 5 in 1m0s)") || strings.Contains(f.Message, "counted apart") || f.Evidence["forwarded"] != false {
			t.Errorf("message %q evidence %v", f.Message, f.Evidence)
		}
	})
	t.Run("FiresPerAccountAcrossExtensions", func(t *testing.T) {
		var fired []tollguard.Finding
		for i := 0; i < 8; i++ {
			ext := fmt.Sprint(3000 + i%4) // 2 each: no extension burst
			fired = append(fired, d.Attempt(detAttempt(t, fmt.Sprint("a", i), ext, "bigco", "02079460001", detT0.Add(time.Duration(i)*time.Second)))...)
		}
		if len(fired) != 1 || fired[0].Source != "detector:burst_acct" || fired[0].Subject != "account:bigco" {
			t.Fatalf("findings: %+v", fired)
		}
		if fired[0].Action != tollguard.ActionIntlBlock || fired[0].Severity != tollguard.SeverityCritical {
			t.Errorf("finding: %+v", fired[0])
		}
	})
	t.Run("AnAttemptFarAheadDoesNotStay", func(t *testing.T) {
		// One attempt dated decades ahead (a garbage frame) kept every
		// later one in the window: four calls an hour apart fired.
		d.Attempt(detAttempt(t, "f0", "5001", "future", "02079460001", detT0.Add(75*365*24*time.Hour)))
		for i := 1; i < 8; i++ {
			fs := d.Attempt(detAttempt(t, fmt.Sprint("f", i), "5001", "future", "02079460001", detT0.Add(time.Duration(i)*time.Hour)))
			if got := detOnly(fs, "detector:burst_ext"); len(got) > 0 {
				t.Fatalf("attempt %d, an hour after the last: %+v", i, got)
			}
		}
	})
	t.Run("OutOfOrderAttemptsCount", func(t *testing.T) {
		// Several channels' events reach the detectors a little out of
		// order, and Asterisk's clock can step back: five attempts in a
		// minute still fire, with the earliest as the first.
		var fired []tollguard.Finding
		for i, sec := range []int{10, 14, 3, 12, 5} {
			fired = append(fired, detOnly(d.Attempt(detAttempt(t, fmt.Sprint("o", i), "5002", "order", "02079460001", detT0.Add(time.Duration(sec)*time.Second))), "detector:burst_ext")...)
		}
		if len(fired) != 1 || !strings.Contains(fired[0].Message, "5 calls from phones (with a source address) in 11s") {
			t.Fatalf("findings: %+v", fired)
		}
	})
	t.Run("InternalAndEmergencyDoNotCount", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			for _, n := range []string{"1002", "999", "112"} {
				if fs := d.Attempt(detAttempt(t, fmt.Sprint("i", i, n), "4001", "int", n, detT0.Add(time.Duration(i)*time.Second))); len(fs) > 0 {
					t.Fatalf("%s: %+v", n, fs)
				}
			}
		}
	})
}

func TestDetectorSweep(t *testing.T) {
	rules := map[string]tollguard.DetectorRule{
		tollguard.DetectSweep:    {Threshold: 5, Window: 10 * time.Minute, Action: tollguard.ActionBlockExtension},
		tollguard.DetectBurstExt: {Threshold: 0},
	}
	tests := []struct {
		name    string
		numbers []string
		fire    bool
		seq     bool
		action  tollguard.Action
	}{
		{"Sequential", []string{"0033123456001", "0033123456002", "0033123456003", "0033123456004", "0033123456005"}, true, true, tollguard.ActionBlockExtension},
		{"DistinctUnderOnePrefix", []string{"0088216123401", "0088216123977", "0088216123555", "0088216123012", "0088216123800"}, true, false, tollguard.ActionBlockExtension},
		// Five direct lines at one firm: worth a look, not a block.
		{"NationalOutOfSequenceAlertsOnly", []string{"02079460123", "02079460456", "02079460789", "02079460311", "02079460555"}, true, false, tollguard.ActionAlert},
		{"NationalSequentialBlocks", []string{"02079460100", "02079460101", "02079460102", "02079460103", "02079460104"}, true, true, tollguard.ActionBlockExtension},
		// A sweep that skips a number is still a sweep.
		{"NationalSequentialWithAGapBlocks", []string{"02079460100", "02079460101", "02079460103", "02079460104", "02079460105"}, true, true, tollguard.ActionBlockExtension},
		// Sequences are judged on the numbers' values, not in blocks of
		// 1000 that a sweep can cross.
		{"SequentialAcrossABlock", []string{"0033123455998", "0033123455999", "0033123456000", "0033123456001", "0033123456002"}, true, true, tollguard.ActionBlockExtension},
		{"NationalSequentialAcrossABlock", []string{"02079469998", "02079469999", "02079470000", "02079470001", "02079470002"}, true, true, tollguard.ActionBlockExtension},
		{"StepsOf1000", []string{"0033123400000", "0033123401000", "0033123402000", "0033123403000", "0033123404000"}, true, false, tollguard.ActionBlockExtension},
		{"StepsOf10WithAGap", []string{"0033123456010", "0033123456020", "0033123456040", "0033123456050", "0033123456060"}, true, false, tollguard.ActionBlockExtension},
		// A firm's departments at …0100, …0200, …: worth a look, not a block.
		{"NationalStepsOf100AlertOnly", []string{"02079460100", "02079460200", "02079460300", "02079460400", "02079460500"}, true, false, tollguard.ActionAlert},
		{"NearButNotInSequence", []string{"0033123455990", "0033123455997", "0033123456004", "0033123456011", "0033123456018"}, false, false, ""},
		{"RedialIsNotASweep", []string{"0033123456001", "0033123456001", "0033123456001", "0033123456001", "0033123456001", "0033123456001"}, false, false, ""},
		{"DifferentPrefixes", []string{"0033123456001", "0049301234567", "02079460001", "0034911234567", "0039061234567"}, false, false, ""},
		{"FourIsBelowThreshold", []string{"0033123456001", "0033123456002", "0033123456003", "0033123456004"}, false, false, ""},
		{"ShortCodesIgnored", []string{"118118", "118500", "118811", "118212", "118707"}, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := detNew(t, rules)
			var fired []tollguard.Finding
			for i, n := range tt.numbers {
				fired = append(fired, detOnly(d.Attempt(detAttempt(t, fmt.Sprint(i), "1001", "acme", n, detT0.Add(time.Duration(i)*30*time.Second))), "detector:sweep")...)
			}
			if !tt.fire {
				if len(fired) > 0 {
					t.Fatalf("fired: %+v", fired)
				}
				return
			}
			if len(fired) != 1 {
				t.Fatalf("findings: %+v", fired)
			}
			f := fired[0]
			sev := tollguard.SeverityCritical
			if tt.action == tollguard.ActionAlert {
				sev = tollguard.SeverityWarning
			}
			if f.Kind != tollguard.AlertSweep || f.Action != tt.action || f.Extension != "1001" || f.Severity != sev {
				t.Errorf("finding: %+v", f)
			}
			if f.Evidence["sequential"] != tt.seq || len(f.Evidence["numbers"].([]string)) != 5 {
				t.Errorf("evidence: %v", f.Evidence)
			}
		})
	}
	t.Run("WideDigitsShortNumbers", func(t *testing.T) {
		// sweep_digits 8 and 7-digit numbers (+290, Saint Helena): no
		// prefix is left to share, which must not panic the listener.
		d, err := tollguard.NewDetectors(tollguard.DetectorSettings{Rules: rules, SweepDigits: 8})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			if fs := detOnly(d.Attempt(detAttempt(t, fmt.Sprint(i), "1001", "acme", fmt.Sprintf("0029022%03d", i), detT0.Add(time.Duration(i)*time.Second))), "detector:sweep"); len(fs) > 0 {
				t.Fatalf("attempt %d fired: %+v", i, fs)
			}
		}
	})
	t.Run("StepsOf1000FireOnce", func(t *testing.T) {
		// 20 numbers in steps of 1000, 20 s apart: one block at the fifth.
		d := detNew(t, rules)
		var fired []tollguard.Finding
		for i := range 20 {
			fired = append(fired, detOnly(d.Attempt(detAttempt(t, fmt.Sprint(i), "1001", "acme", fmt.Sprintf("00331234%02d000", i), detT0.Add(time.Duration(i)*20*time.Second))), "detector:sweep")...)
			if i == 4 && len(fired) != 1 {
				t.Fatalf("after 5 numbers: %+v", fired)
			}
		}
		if len(fired) == 0 || fired[0].Action != tollguard.ActionBlockExtension || fired[0].Evidence["stride"] != int64(1000) || !strings.Contains(fired[0].Message, "steps of 1000") {
			t.Fatalf("findings: %+v", fired)
		}
	})
	t.Run("SpreadNumbersAreQuiet", func(t *testing.T) {
		// Busy traffic to numbers all over one country (the ARI
		// benchmark's): no sweep, whatever the stride test finds.
		d := detNew(t, rules)
		for k := range 500 {
			n := fmt.Sprintf("0033%09d", (k*104729)%1_000_000_000)
			if fs := detOnly(d.Attempt(detAttempt(t, fmt.Sprint(k), "1001", "acme", n, detT0.Add(time.Duration(k)*time.Second))), "detector:sweep"); len(fs) > 0 {
				t.Fatalf("attempt %d (%s) fired: %+v", k, n, fs)
			}
		}
	})
	t.Run("AnAttemptFarAheadDoesNotCount", func(t *testing.T) {
		// One number dated decades ahead stayed in the window: with
		// four more under its prefix it made a sweep of five.
		d := detNew(t, rules)
		d.Attempt(detAttempt(t, "f", "1001", "acme", "0033123456009", detT0.Add(75*365*24*time.Hour)))
		for i := 0; i < 4; i++ {
			if fs := detOnly(d.Attempt(detAttempt(t, fmt.Sprint(i), "1001", "acme", fmt.Sprintf("0033123456%03d", i), detT0.Add(time.Duration(i)*30*time.Second))), "detector:sweep"); len(fs) > 0 {
				t.Fatalf("attempt %d fired: %+v", i, fs)
			}
		}
	})
	t.Run("WindowExpires", func(t *testing.T) {
		d := detNew(t, rules)
		for i := 0; i < 10; i++ {
			// one every 3 minutes: at most 4 within 10 minutes
			fs := detOnly(d.Attempt(detAttempt(t, fmt.Sprint(i), "1001", "acme", fmt.Sprintf("0033123456%03d", i), detT0.Add(time.Duration(i)*3*time.Minute))), "detector:sweep")
			if len(fs) > 0 {
				t.Fatalf("attempt %d fired: %+v", i, fs)
			}
		}
	})
}

func TestDetectorHighRisk(t *testing.T) {
	rules := map[string]tollguard.DetectorRule{
		tollguard.DetectHighRisk: {Threshold: 3, Window: 10 * time.Minute, Action: tollguard.ActionIntlBlock},
	}
	t.Run("SingleMisdialNeverBlocks", func(t *testing.T) {
		d := detNew(t, rules)
		fs := d.Attempt(detAttempt(t, "c1", "1001", "acme", "00252612345678", detT0))
		fs = append(fs, d.Resolved("c1", tollguard.ReasonHighRisk, detT0.Add(time.Second))...)
		fs = append(fs, d.Ended("c1", detT0.Add(2*time.Second))...)
		if len(fs) > 0 {
			t.Fatalf("one attempt fired: %+v", fs)
		}
	})
	t.Run("RepeatedAttemptsBlockInternational", func(t *testing.T) {
		d := detNew(t, rules)
		var fired []tollguard.Finding
		for i, n := range []string{"00252612345678", "00252612345679", "0088216123456"} {
			call := fmt.Sprint("h", i)
			at := detT0.Add(time.Duration(i) * time.Minute)
			fired = append(fired, d.Attempt(detAttempt(t, call, "1001", "acme", n, at))...)
			fired = append(fired, d.Resolved(call, tollguard.ReasonHighRisk, at)...)
			// a second Resolved (or the end) does not count twice
			fired = append(fired, d.Resolved(call, tollguard.ReasonHighRisk, at)...)
			fired = append(fired, d.Ended(call, at.Add(time.Second))...)
		}
		if len(fired) != 1 {
			t.Fatalf("findings: %+v", fired)
		}
		f := fired[0]
		if f.Kind != tollguard.AlertHighRisk || f.Action != tollguard.ActionIntlBlock || f.Account != "acme" || f.Evidence["attempts"] != 3 {
			t.Errorf("finding: %+v", f)
		}
	})
	// Attempts the gate never resolved, whose ends were lost with the
	// events (found gone after a reconnect), still count.
	t.Run("ForgottenAttemptsCount", func(t *testing.T) {
		d := detNew(t, rules)
		var fired []tollguard.Finding
		for i, n := range []string{"00252612345678", "00252612345679", "0088216123456"} {
			call := fmt.Sprint("f", i)
			at := detT0.Add(time.Duration(i) * time.Minute)
			fired = append(fired, d.Attempt(detAttempt(t, call, "1001", "acme", n, at))...)
			fired = append(fired, d.Forget(call, at.Add(time.Second))...)
		}
		if len(fired) != 1 || fired[0].Kind != tollguard.AlertHighRisk || fired[0].Evidence["attempts"] != 3 {
			t.Fatalf("findings: %+v", fired)
		}
		if st := d.Stats(); st.Calls != 0 {
			t.Fatalf("forgotten calls still tracked: %+v", st)
		}
	})
	// try dials numbers from extension ext, one a step apart, each
	// resolved with reason.
	try := func(d *tollguard.Detectors, ext string, start time.Time, numbers []string, step time.Duration, reason tollguard.Reason) []tollguard.Finding {
		var fired []tollguard.Finding
		for i, n := range numbers {
			call := fmt.Sprint(ext, "-", start.Unix(), "-", i)
			at := start.Add(time.Duration(i) * step)
			fired = append(fired, d.Attempt(detAttempt(t, call, ext, "acme", n, at))...)
			fired = append(fired, d.Resolved(call, reason, at.Add(time.Second))...)
			fired = append(fired, d.Ended(call, at.Add(2*time.Second))...)
		}
		return detOnly(fired, "detector:high_risk")
	}
	t.Run("AnAttemptFarAheadDoesNotCount", func(t *testing.T) {
		// One attempt dated decades ahead stayed in the window: with two
		// more it made the three that block international calls.
		d := detNew(t, rules)
		fired := try(d, "1001", detT0.Add(75*365*24*time.Hour), []string{"00252612345670"}, time.Minute, tollguard.ReasonHighRisk)
		fired = append(fired, try(d, "1001", detT0, []string{"00252612345678", "0088216123456"}, time.Minute, tollguard.ReasonHighRisk)...)
		if len(fired) != 0 {
			t.Fatalf("findings: %+v", fired)
		}
	})
	t.Run("OutOfOrderAttemptsSpan", func(t *testing.T) {
		d := detNew(t, rules)
		var fired []tollguard.Finding
		for i, sec := range []int{20, 5, 10} {
			fired = append(fired, try(d, "1001", detT0.Add(time.Duration(sec)*time.Second), []string{fmt.Sprint("0025261234567", i)}, 0, tollguard.ReasonHighRisk)...)
		}
		if len(fired) != 1 || !strings.Contains(fired[0].Message, "tried 3 calls to high-risk or premium numbers in 15s") {
			t.Fatalf("findings: %+v", fired)
		}
	})
	t.Run("RedialIsOneNumber", func(t *testing.T) {
		// An honest user redials a denied number: one intention, however
		// many attempts (the gate denies each).
		for _, n := range []string{"09061234567", "00252612345678"} {
			d := detNew(t, rules)
			if fs := try(d, "1001", detT0, []string{n, n, n, n, n}, 20*time.Second, tollguard.ReasonHighRisk); len(fs) > 0 {
				t.Errorf("%s redialled fired: %+v", n, fs)
			}
		}
	})
	t.Run("CallsLetThroughToOneNumberEachCount", func(t *testing.T) {
		// Pumping one premium international number the gate allows is the
		// classic attack: each call costs money, so each counts.
		d := detNew(t, rules)
		n := "00252612345678"
		fs := try(d, "1001", detT0, []string{n, n, n}, 70*time.Second, tollguard.ReasonOK)
		if len(fs) != 1 || fs[0].Action != tollguard.ActionIntlBlock || fs[0].Evidence["attempts"] != 3 {
			t.Fatalf("three allowed calls to %s: %+v", n, fs)
		}
	})
	t.Run("TriesWithNoGateAnswerAreRedials", func(t *testing.T) {
		// Hung up before or during the gate, three times: one intention,
		// no block.
		d := detNew(t, rules)
		var fs []tollguard.Finding
		for i := range 3 {
			call, at := fmt.Sprint("u", i), detT0.Add(time.Duration(i)*time.Minute)
			fs = append(fs, d.Attempt(detAttempt(t, call, "1001", "acme", "00252612345678", at))...)
			fs = append(fs, d.Ended(call, at.Add(time.Second))...)
		}
		if fs = detOnly(fs, "detector:high_risk"); len(fs) != 0 {
			t.Fatalf("three tries with no gate answer: %+v", fs)
		}
	})
	t.Run("ADeniedRedialKeepsTheCallsLetThrough", func(t *testing.T) {
		// Calls let through count each; a denied redial between them
		// (a rate limit, the concurrency limit) must not wipe them.
		d := detNew(t, rules)
		n := "00252612345678"
		fs := try(d, "1001", detT0, []string{n, n}, 70*time.Second, tollguard.ReasonOK)
		fs = append(fs, try(d, "1001", detT0.Add(3*time.Minute), []string{n}, 0, tollguard.ReasonConcurrency)...)
		fs = append(fs, try(d, "1001", detT0.Add(4*time.Minute), []string{n}, 0, tollguard.ReasonOK)...)
		if len(fs) != 1 || fs[0].Action != tollguard.ActionIntlBlock {
			t.Fatalf("ok, ok, denied, ok to %s: %+v", n, fs)
		}
	})
	t.Run("ARedialKeepsNoCallsOutsideTheWindow", func(t *testing.T) {
		d := detNew(t, rules)
		n := "00252612345678"
		fs := try(d, "1001", detT0, []string{n, n}, time.Minute, tollguard.ReasonOK)
		fs = append(fs, try(d, "1001", detT0.Add(20*time.Minute), []string{n}, 0, tollguard.ReasonConcurrency)...)
		fs = append(fs, try(d, "1001", detT0.Add(21*time.Minute), []string{n}, 0, tollguard.ReasonOK)...)
		if len(fs) != 0 {
			t.Fatalf("calls 20 minutes apart in a 10-minute window: %+v", fs)
		}
	})
	t.Run("NationalPremiumOnlyAlerts", func(t *testing.T) {
		// An international block would not stop national premium-rate
		// calls; it would only cut the account's calls abroad.
		d := detNew(t, rules)
		fs := try(d, "1001", detT0, []string{"09061234567", "09061234568", "09061234569"}, 20*time.Second, tollguard.ReasonPremium)
		if len(fs) != 1 || fs[0].Action != tollguard.ActionAlert || fs[0].Severity != tollguard.SeverityWarning || fs[0].Evidence["attempts"] != 3 {
			t.Fatalf("findings: %+v", fs)
		}
	})
	t.Run("NationalPremiumDoesNotCountTowardABlock", func(t *testing.T) {
		d := detNew(t, rules)
		fs := try(d, "1001", detT0, []string{"00252612345678", "09061234567", "00252612345679"}, 20*time.Second, tollguard.ReasonHighRisk)
		if len(fs) != 1 || fs[0].Action != tollguard.ActionAlert {
			t.Fatalf("two international and one national: %+v", fs)
		}
		// The international attempts still count toward the block: a
		// third one blocks at once.
		fs = try(d, "1001", detT0.Add(time.Minute), []string{"0088216123456"}, 0, tollguard.ReasonHighRisk)
		if len(fs) != 1 || fs[0].Action != tollguard.ActionIntlBlock || fs[0].Evidence["attempts"] != 3 {
			t.Fatalf("third international: %+v", fs)
		}
	})
	t.Run("WhitelistedDoesNotCount", func(t *testing.T) {
		d := detNew(t, rules)
		for i := 0; i < 5; i++ {
			call := fmt.Sprint("w", i)
			at := detT0.Add(time.Duration(i) * time.Minute)
			fs := d.Attempt(detAttempt(t, call, "1001", "acme", "09061234567", at))
			fs = append(fs, d.Resolved(call, tollguard.ReasonWhitelist, at)...)
			fs = append(fs, d.Ended(call, at.Add(time.Minute))...)
			if len(fs) > 0 {
				t.Fatalf("whitelisted premium call %d fired: %+v", i, fs)
			}
		}
	})
	t.Run("UnresolvedCountsAtEnd", func(t *testing.T) {
		d := detNew(t, rules)
		var fired []tollguard.Finding
		for i := 0; i < 3; i++ {
			call := fmt.Sprint("u", i)
			at := detT0.Add(time.Duration(i) * time.Minute)
			fired = append(fired, d.Attempt(detAttempt(t, call, "1001", "acme", fmt.Sprint("0025261234567", i), at))...)
			fired = append(fired, d.Ended(call, at.Add(time.Second))...)
		}
		if len(fired) != 1 || fired[0].Source != "detector:high_risk" {
			t.Fatalf("findings: %+v", fired)
		}
	})
}

func TestDetectorConcurrent(t *testing.T) {
	d := detNew(t, map[string]tollguard.DetectorRule{
		tollguard.DetectConcurrentExt:  {Threshold: 3, Window: 10 * time.Minute, Action: tollguard.ActionAlert},
		tollguard.DetectConcurrentAcct: {Threshold: 0},
		tollguard.DetectBurstExt:       {Threshold: 0},
	})
	var fired []tollguard.Finding
	for i := 0; i < 2; i++ {
		fired = append(fired, d.Attempt(detAttempt(t, fmt.Sprint("c", i), "1001", "acme", "02079460001", detT0))...)
	}
	if len(fired) > 0 {
		t.Fatalf("two calls fired: %+v", fired)
	}
	// Calls that end do not pile up.
	fired = append(fired, d.Ended("c0", detT0.Add(time.Second))...)
	fired = append(fired, d.Attempt(detAttempt(t, "c2", "1001", "acme", "02079460001", detT0.Add(2*time.Second)))...)
	if len(fired) > 0 {
		t.Fatalf("two calls in progress fired: %+v", fired)
	}
	fired = append(fired, d.Attempt(detAttempt(t, "c3", "1001", "acme", "02079460001", detT0.Add(3*time.Second)))...)
	if len(fired) != 1 || fired[0].Kind != tollguard.AlertConcurrent || fired[0].Evidence["calls_in_progress"] != 3 {
		t.Fatalf("findings: %+v", fired)
	}
	// A fourth within the window stays quiet: one alert per window.
	if fs := d.Attempt(detAttempt(t, "c4", "1001", "acme", "02079460001", detT0.Add(4*time.Second))); len(fs) > 0 {
		t.Fatalf("repeat fired: %+v", fs)
	}
	if st := d.Stats(); st.Calls != 4 {
		t.Errorf("calls in progress %d, want 4", st.Calls)
	}
	// The same call reported twice (two events for one channel) counts once.
	d.Attempt(detAttempt(t, "c4", "1001", "acme", "02079460001", detT0.Add(5*time.Second)))
	if st := d.Stats(); st.Calls != 4 {
		t.Errorf("calls in progress %d after a duplicate, want 4", st.Calls)
	}
}

func TestDetectorUngated(t *testing.T) {
	d := detNew(t, nil)
	fs := d.Ungated(detAttempt(t, "pbx-1.0", "1001", "acme", "0044207946000", detT0), false)
	if len(fs) != 1 {
		t.Fatalf("findings: %+v", fs)
	}
	f := fs[0]
	if f.Kind != tollguard.AlertUngated || f.Subject != "ext:1001" || f.Action != tollguard.ActionAlert || !strings.Contains(f.Message, "tollguard-outbound") {
		t.Errorf("finding: %+v", f)
	}
	a := detAttempt(t, "pbx-1.13", "", "", "0044207946000", detT0)
	a.Context = "callbacks"
	fs = d.Ungated(a, true)
	if len(fs) != 1 || fs[0].Subject != "context:callbacks" || !strings.Contains(fs[0].Message, "ignores TOLLGUARD_VERDICT") {
		t.Fatalf("findings: %+v", fs)
	}
	if fs := d.Ungated(detAttempt(t, "pbx-1.1", "1001", "acme", "1002", detT0), false); len(fs) > 0 {
		t.Errorf("internal call fired: %+v", fs)
	}
	// A phone's 302 named a dial string: the finding says so, and the
	// phone's text is quoted and cut, never a line of its own.
	a = detAttempt(t, "pbx-1.14", "1002", "acme", "00252612345678", detT0)
	a.Redirect = "PJSIP/00252612345678@itsp\nFAKE: all clear" + strings.Repeat("x", 100)
	fs = d.Ungated(a, false)
	if len(fs) != 1 || strings.ContainsAny(fs[0].Message, "\n\r") || !strings.Contains(fs[0].Message, `"PJSIP/00252612345678@itsp\nFAKE: all clear`) ||
		strings.Contains(fs[0].Message, strings.Repeat("x", 80)) || !strings.Contains(fs[0].Message, "i option") || fs[0].Evidence["redirect"] != a.Redirect[:80] {
		t.Errorf("redirect finding: %+v", fs)
	}
	if _, ok := f.Evidence["redirect"]; ok {
		t.Errorf("a finding without a redirect has one in its evidence: %+v", f.Evidence)
	}
	// Cut on a rune boundary: the evidence stays valid UTF-8.
	a = detAttempt(t, "pbx-1.15", "1003", "acme", "00252612345678", detT0)
	a.Redirect = "PJSIP/" + strings.Repeat("x", 73) + "é" + "@itsp" // é spans bytes 79-80
	fs = d.Ungated(a, false)
	if len(fs) != 1 || fs[0].Evidence["redirect"] != "PJSIP/"+strings.Repeat("x", 73) {
		t.Errorf("redirect cut inside a rune: %+v", fs)
	}
}

func TestDetectorLongInternational(t *testing.T) {
	d := detNew(t, map[string]tollguard.DetectorRule{
		tollguard.DetectLongIntl: {Threshold: 1, Window: 24 * time.Hour, Action: tollguard.ActionAlert, Duration: time.Hour},
	})
	d.Attempt(detAttempt(t, "intl", "1001", "acme", "0033123456789", detT0))
	d.Attempt(detAttempt(t, "natl", "1001", "acme", "02079460001", detT0))
	d.Answered("intl", detT0.Add(10*time.Second))
	d.Answered("natl", detT0.Add(10*time.Second))
	if fs := d.Tick(detT0.Add(59 * time.Minute)); len(fs) > 0 {
		t.Fatalf("fired early: %+v", fs)
	}
	fs := d.Tick(detT0.Add(61 * time.Minute))
	if len(fs) != 1 || fs[0].Kind != tollguard.AlertLongCall || fs[0].Subject != "account:acme" {
		t.Fatalf("findings: %+v", fs)
	}
	if fs := d.Tick(detT0.Add(2 * time.Hour)); len(fs) > 0 {
		t.Fatalf("fired twice: %+v", fs)
	}
	if fs := d.Ended("intl", detT0.Add(3*time.Hour)); len(fs) > 0 {
		t.Fatalf("fired again at the end: %+v", fs)
	}
	// A call that ends past the limit between ticks is still caught.
	d2 := detNew(t, nil)
	d2.Attempt(detAttempt(t, "x", "1001", "acme", "0049301234567", detT0))
	d2.Answered("x", detT0)
	if fs := d2.Ended("x", detT0.Add(90*time.Minute)); len(fs) != 1 {
		t.Fatalf("findings at end: %+v", fs)
	}
	// A call whose end was missed (found gone after a reconnect) is
	// forgotten without a finding: how long it ran is unknown.
	d3 := detNew(t, nil)
	d3.Attempt(detAttempt(t, "y", "1001", "acme", "0049301234567", detT0))
	d3.Answered("y", detT0)
	if fs := d3.Forget("y", detT0.Add(90*time.Minute)); len(fs) > 0 {
		t.Fatalf("a forgotten call fired: %+v", fs)
	}
	if st := d3.Stats(); st.Calls != 0 {
		t.Fatalf("forgotten call still tracked: %+v", st)
	}
	if fs := d3.Tick(detT0.Add(90 * time.Minute)); len(fs) > 0 {
		t.Fatalf("a forgotten call fired: %+v", fs)
	}
}

func TestDetectorOverrides(t *testing.T) {
	d := detNew(t, nil)
	err := d.SetOverrides(map[string]map[string]tollguard.DetectorRule{
		"callcentre": {tollguard.DetectBurstExt: {Threshold: 100, Window: time.Minute, Action: tollguard.ActionAlert}},
		"bad":        {tollguard.DetectSweep: {Threshold: 1, Window: time.Minute, Action: tollguard.ActionBlockExtension}},
	})
	if err == nil || !strings.Contains(err.Error(), "misdial") {
		t.Errorf("invalid override accepted: %v", err)
	}
	if r := d.Rule("callcentre", tollguard.DetectBurstExt); r.Threshold != 100 {
		t.Errorf("override not applied: %+v", r)
	}
	if r := d.Rule("bad", tollguard.DetectSweep); r.Threshold != tollguard.DefaultDetectorRules()[tollguard.DetectSweep].Threshold {
		t.Errorf("invalid override applied: %+v", r)
	}
	var n int
	for i := 0; i < 50; i++ {
		n += len(detOnly(d.Attempt(detAttempt(t, fmt.Sprint(i), "1001", "callcentre", "02079460001", detT0.Add(time.Duration(i)*time.Second))), "detector:burst_ext"))
	}
	if n != 0 {
		t.Errorf("override ignored: %d findings", n)
	}
}

func TestValidateDetectorRule(t *testing.T) {
	tests := []struct {
		name string
		det  string
		rule tollguard.DetectorRule
		ok   bool
	}{
		{"Defaults", tollguard.DetectBurstExt, tollguard.DefaultDetectorRules()[tollguard.DetectBurstExt], true},
		{"Off", tollguard.DetectSweep, tollguard.DetectorRule{}, true},
		// A config file that says "off" its own way still loads.
		{"OffAnyAction", tollguard.DetectSweep, tollguard.DetectorRule{Action: "none", Window: 1500 * time.Millisecond}, true},
		{"BlockOnOneEvent", tollguard.DetectHighRisk, tollguard.DetectorRule{Threshold: 1, Window: time.Minute, Action: tollguard.ActionIntlBlock}, false},
		{"AlertOnOneEvent", tollguard.DetectHighRisk, tollguard.DetectorRule{Threshold: 1, Window: time.Minute, Action: tollguard.ActionAlert}, true},
		{"NoWindow", tollguard.DetectBurstExt, tollguard.DetectorRule{Threshold: 3, Action: tollguard.ActionAlert}, false},
		{"BadAction", tollguard.DetectBurstExt, tollguard.DetectorRule{Threshold: 3, Window: time.Minute, Action: "hangup"}, false},
		{"UnknownDetector", "nope", tollguard.DetectorRule{Threshold: 3, Window: time.Minute, Action: tollguard.ActionAlert}, false},
		{"LongCallNeedsDuration", tollguard.DetectLongIntl, tollguard.DetectorRule{Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert}, false},
		{"HugeThreshold", tollguard.DetectBurstExt, tollguard.DetectorRule{Threshold: 1e6, Window: time.Minute, Action: tollguard.ActionAlert}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tollguard.ValidateDetectorRule(tt.det, tt.rule)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && tollguard.ErrorCode(err) != tollguard.EINVALID {
				t.Errorf("code %q", tollguard.ErrorCode(err))
			}
		})
	}
	for name, r := range tollguard.DefaultDetectorRules() {
		if err := tollguard.ValidateDetectorRule(name, r); err != nil {
			t.Errorf("default %s invalid: %v", name, err)
		}
	}
}

// TestDetectorsSingleEventNeverBlocks: with the defaults, one attempt of
// any kind (and its end) never asks for a block.
func TestDetectorsSingleEventNeverBlocks(t *testing.T) {
	for _, n := range []string{"00252612345678", "09061234567", "0033123456789", "0088216123456", "02079460001"} {
		d := detNew(t, nil)
		a := detAttempt(t, "one", "1001", "acme", n, detT0)
		fs := d.Attempt(a)
		fs = append(fs, d.Resolved("one", tollguard.ReasonHighRisk, detT0)...)
		d.Answered("one", detT0)
		fs = append(fs, d.Tick(detT0.Add(5*time.Hour))...)
		fs = append(fs, d.Ended("one", detT0.Add(5*time.Hour))...)
		fs = append(fs, d.Ungated(a, false)...)
		for _, f := range fs {
			if f.Action.Blocks() {
				t.Errorf("%s: one call asked for a block: %+v", n, f)
			}
		}
	}
}

// TestDetectorBurstCountsForwardedLegsApart: forwarded or originated legs
// (no source address), which anyone who rings a forwarded number can
// make, have their own burst windows, as at the gate: ten of them raise
// the forwarded burst, not the phone's, and the phone's own ten raise
// its burst alone, each saying which calls it counted.
func TestDetectorBurstCountsForwardedLegsApart(t *testing.T) {
	for _, tc := range []struct {
		name         string
		burst, other tollguard.Tally // ten of burst, nine of other among them
	}{
		{"ForwardedLegs", tollguard.TallyNoSource, tollguard.TallySourced},
		{"PhonesOwnCalls", tollguard.TallySourced, tollguard.TallyNoSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := detNew(t, map[string]tollguard.DetectorRule{
				tollguard.DetectBurstExt:  {Threshold: 10, Window: time.Minute, Action: tollguard.ActionAlert},
				tollguard.DetectBurstAcct: {Threshold: 10, Window: time.Minute, Action: tollguard.ActionAlert},
				tollguard.DetectSweep:     {Threshold: 0},
			})
			attempt := func(call string, tally tollguard.Tally, i int) []tollguard.Finding {
				a := detAttempt(t, call, "1001", "acme", "02079460001", detT0.Add(time.Duration(i)*time.Second))
				a.Tally = tally
				fs := d.Attempt(a)
				d.Ended(call, a.At)
				return append(detOnly(fs, "detector:burst_ext"), detOnly(fs, "detector:burst_acct")...)
			}
			for i := range 10 {
				if i > 0 {
					if fs := attempt(fmt.Sprint("o", i), tc.other, 2*i-1); len(fs) > 0 {
						t.Fatalf("the other tally's call %d, after %d of %s: %+v", i, i, tc.burst, fs)
					}
				}
				fs := attempt(fmt.Sprint("b", i), tc.burst, 2*i)
				if i < 9 {
					if len(fs) > 0 {
						t.Fatalf("after %d of %s and %d of %s: %+v", i+1, tc.burst, i, tc.other, fs)
					}
					continue
				}
				if len(fs) != 2 {
					t.Fatalf("after ten of %s: findings %+v, want burst_ext and burst_acct", tc.burst, fs)
				}
				forwarded := tc.burst == tollguard.TallyNoSource
				for _, f := range fs {
					who := map[string]string{"detector:burst_ext": "extension 1001: ", "detector:burst_acct": "account acme: "}[f.Source]
					if want := who + "10 " + tc.burst.String() + " in 18s (threshold 10 in 1m0s)"; !strings.Contains(f.Message, want) {
						t.Errorf("%s: message %q, want %q", f.Source, f.Message, want)
					}
					if strings.Contains(f.Message, "calls from its phones are counted apart") != forwarded || f.Evidence["forwarded"] != forwarded || f.Evidence["attempts"] != 10 {
						t.Errorf("%s: message %q evidence %v", f.Source, f.Message, f.Evidence)
					}
				}
			}
		})
	}
}

// TestDetectorForwardedBurstOnlyAlerts: a burst of forwarded legs, which
// anyone who rings the number can make, never blocks the extension or
// the account's international calls: that would lock its phones out. A
// burst of the phone's own calls still takes the rule's action.
func TestDetectorForwardedBurstOnlyAlerts(t *testing.T) {
	d := detNew(t, map[string]tollguard.DetectorRule{
		tollguard.DetectBurstExt:  {Threshold: 3, Window: time.Minute, Action: tollguard.ActionBlockExtension},
		tollguard.DetectBurstAcct: {Threshold: 3, Window: time.Minute, Action: tollguard.ActionIntlBlock},
		tollguard.DetectSweep:     {Threshold: 0},
	})
	for _, tc := range []struct {
		tally             tollguard.Tally
		extAct, acctAct   tollguard.Action
		severity          tollguard.Severity
		alertedNotBlocked bool
	}{
		{tollguard.TallyNoSource, tollguard.ActionAlert, tollguard.ActionAlert, tollguard.SeverityWarning, true},
		{tollguard.TallySourced, tollguard.ActionBlockExtension, tollguard.ActionIntlBlock, tollguard.SeverityCritical, false},
	} {
		var fs []tollguard.Finding
		for i := range 3 {
			a := detAttempt(t, fmt.Sprint(tc.tally, i), "1001", "acme", "02079460001", detT0.Add(time.Duration(i)*time.Second))
			a.Tally = tc.tally
			fs = append(fs, d.Attempt(a)...)
		}
		ext, acct := detOnly(fs, "detector:burst_ext"), detOnly(fs, "detector:burst_acct")
		if len(ext) != 1 || len(acct) != 1 {
			t.Fatalf("%s: findings %+v, want one burst_ext and one burst_acct", tc.tally, fs)
		}
		for _, f := range []struct {
			f    tollguard.Finding
			want tollguard.Action
		}{{ext[0], tc.extAct}, {acct[0], tc.acctAct}} {
			if f.f.Action != f.want || f.f.Severity != tc.severity || strings.Contains(f.f.Message, "alerted, not blocked") != tc.alertedNotBlocked {
				t.Errorf("%s: %s finding %+v, want action %s", tc.tally, f.f.Source, f.f, f.want)
			}
		}
	}
}

// detCall starts call (extension 1001 of acme to an outside number) in
// tally at detT0 plus sec seconds, and returns the concurrency findings.
func detCall(t *testing.T, d *tollguard.Detectors, call string, tally tollguard.Tally, sec int) []tollguard.Finding {
	t.Helper()
	a := detAttempt(t, call, "1001", "acme", "02079460001", detT0.Add(time.Duration(sec)*time.Second))
	a.Tally = tally
	fs := d.Attempt(a)
	return append(detOnly(fs, "detector:concurrent_ext"), detOnly(fs, "detector:concurrent_acct")...)
}

// detConcurrentBlocks is a rule set where four calls at once block.
var detConcurrentBlocks = map[string]tollguard.DetectorRule{
	tollguard.DetectConcurrentExt:  {Threshold: 4, Window: 10 * time.Minute, Action: tollguard.ActionBlockExtension},
	tollguard.DetectConcurrentAcct: {Threshold: 4, Window: 10 * time.Minute, Action: tollguard.ActionIntlBlock},
	tollguard.DetectBurstExt:       {Threshold: 0},
	tollguard.DetectBurstAcct:      {Threshold: 0},
}

// TestDetectorConcurrentCountsForwardedLegsApart: forwarded or
// originated legs in progress (a follow-me ringing four outside numbers
// at once) are counted apart from the phone's own calls, against the
// same threshold, and reaching it only alerts, whatever the rule says:
// anyone who rings the number makes them. The phone's own calls still
// take the rule's action, and neither tally's calls push the other's
// over the threshold.
func TestDetectorConcurrentCountsForwardedLegsApart(t *testing.T) {
	for _, tc := range []struct {
		name            string
		up, other       tollguard.Tally // four of up, three of other before them
		extAct, acctAct tollguard.Action
		severity        tollguard.Severity
	}{
		{"ForwardedLegsAlert", tollguard.TallyNoSource, tollguard.TallySourced, tollguard.ActionAlert, tollguard.ActionAlert, tollguard.SeverityWarning},
		{"PhonesOwnCallsBlock", tollguard.TallySourced, tollguard.TallyNoSource, tollguard.ActionBlockExtension, tollguard.ActionIntlBlock, tollguard.SeverityCritical},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := detNew(t, detConcurrentBlocks)
			for i := range 3 {
				if fs := detCall(t, d, fmt.Sprint("o", i), tc.other, i); len(fs) > 0 {
					t.Fatalf("%d of %s fired: %+v", i+1, tc.other, fs)
				}
			}
			for i := range 3 {
				if fs := detCall(t, d, fmt.Sprint("u", i), tc.up, 10+i); len(fs) > 0 {
					t.Fatalf("%d of %s with 3 of %s in progress fired: %+v", i+1, tc.up, tc.other, fs)
				}
			}
			fs := detCall(t, d, "u3", tc.up, 13)
			if len(fs) != 2 {
				t.Fatalf("four of %s in progress: findings %+v, want concurrent_ext and concurrent_acct", tc.up, fs)
			}
			forwarded := tc.up == tollguard.TallyNoSource
			for i, want := range []tollguard.Action{tc.extAct, tc.acctAct} {
				f := fs[i]
				who := []string{"extension 1001", "account acme"}[i]
				if f.Action != want || f.Severity != tc.severity || f.Evidence["calls_in_progress"] != 4 || f.Evidence["forwarded"] != forwarded {
					t.Errorf("%s: %+v, want action %s", f.Source, f, want)
				}
				if msg := who + " has 4 " + tc.up.String() + " in progress at once (threshold 4)"; !strings.Contains(f.Message, msg) {
					t.Errorf("%s: message %q, want %q", f.Source, f.Message, msg)
				}
				if held := "so alerted, not blocked: anyone who rings a forwarded number can make these"; strings.Contains(f.Message, held) != forwarded ||
					strings.Contains(f.Message, "calls from its phones are counted apart") != forwarded {
					t.Errorf("%s: message %q", f.Source, f.Message)
				}
			}
		})
	}
	t.Run("EachTallyQuietApart", func(t *testing.T) {
		// A forwarded alert's quiet time does not hush the phone's own
		// calls reaching the threshold.
		d := detNew(t, detConcurrentBlocks)
		var fwd, own []tollguard.Finding
		for i := range 4 {
			fwd = append(fwd, detCall(t, d, fmt.Sprint("f", i), tollguard.TallyNoSource, i)...)
		}
		for i := range 4 {
			own = append(own, detCall(t, d, fmt.Sprint("p", i), tollguard.TallySourced, 10+i)...)
		}
		if len(fwd) != 2 || len(own) != 2 || own[0].Action != tollguard.ActionBlockExtension || fwd[0].Action != tollguard.ActionAlert {
			t.Fatalf("forwarded %+v, own %+v", fwd, own)
		}
	})
}

// TestDetectorConcurrentEndsInItsTally: a call that ends, or is
// forgotten past the call TTL, leaves the count of the tally it was
// counted in when it started, whatever the gate said of it since.
func TestDetectorConcurrentEndsInItsTally(t *testing.T) {
	t.Run("Ended", func(t *testing.T) {
		d := detNew(t, detConcurrentBlocks)
		var fs []tollguard.Finding
		for i := range 3 {
			fs = append(fs, detCall(t, d, fmt.Sprint("f", i), tollguard.TallyNoSource, i)...)
			fs = append(fs, detCall(t, d, fmt.Sprint("p", i), tollguard.TallySourced, i)...)
		}
		// The gate's number for a forwarded leg: it stays forwarded.
		fs = append(fs, d.Renumber("f0", detNumber(t, "0033123456789"), tollguard.ReasonOK, detT0.Add(5*time.Second))...)
		fs = append(fs, d.Ended("f0", detT0.Add(6*time.Second))...)
		fs = append(fs, d.Ended("f1", detT0.Add(6*time.Second))...)
		if fs = detOnly(fs, "detector:concurrent_ext"); len(fs) > 0 {
			t.Fatalf("three of each tally fired: %+v", fs)
		}
		// Two forwarded legs ended: the phone's fourth call makes four of
		// its own, and two more forwarded legs make three.
		if fs := detCall(t, d, "p3", tollguard.TallySourced, 7); len(fs) != 2 || fs[0].Action != tollguard.ActionBlockExtension {
			t.Fatalf("the phone's fourth call: %+v, want its block", fs)
		}
		for i := 3; i < 5; i++ {
			if fs := detCall(t, d, fmt.Sprint("f", i), tollguard.TallyNoSource, 8); len(fs) > 0 {
				t.Fatalf("forwarded leg %d with two ended: %+v", i+1, fs)
			}
		}
		if fs := detCall(t, d, "f5", tollguard.TallyNoSource, 9); len(fs) != 2 || fs[0].Action != tollguard.ActionAlert {
			t.Fatalf("four forwarded legs in progress: %+v, want the alert", fs)
		}
	})
	t.Run("CallTTL", func(t *testing.T) {
		d, err := tollguard.NewDetectors(tollguard.DetectorSettings{Rules: detConcurrentBlocks, CallTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			detCall(t, d, fmt.Sprint("f", i), tollguard.TallyNoSource, i)
		}
		// Their ends were never seen: the TTL forgets them, from their
		// own tally's count.
		d.Tick(detT0.Add(2 * time.Hour))
		if st := d.Stats(); st.Calls != 0 || st.Keys != 0 {
			t.Fatalf("after the TTL: %+v, want nothing held", st)
		}
		at := int((2*time.Hour + time.Minute) / time.Second)
		for i := range 3 {
			if fs := detCall(t, d, fmt.Sprint("g", i), tollguard.TallyNoSource, at+i); len(fs) > 0 {
				t.Fatalf("forwarded leg %d after the TTL forgot three: %+v", i+1, fs)
			}
		}
	})
}

// detDial has extension ext of acme dial numbers in tally from start, a
// second apart, each resolved with reason and ended; it returns the
// sweep and high_risk findings.
func detDial(t *testing.T, d *tollguard.Detectors, ext string, tally tollguard.Tally, start time.Time, numbers []string, reason tollguard.Reason) []tollguard.Finding {
	t.Helper()
	var fired []tollguard.Finding
	for i, n := range numbers {
		call := fmt.Sprint(ext, "-", tally, "-", start.UnixNano(), "-", i)
		at := start.Add(time.Duration(i) * time.Second)
		a := detAttempt(t, call, ext, "acme", n, at)
		a.Tally = tally
		fired = append(fired, d.Attempt(a)...)
		fired = append(fired, d.Resolved(call, reason, at)...)
		fired = append(fired, d.Ended(call, at.Add(time.Second))...)
	}
	return append(detOnly(fired, "detector:sweep"), detOnly(fired, "detector:high_risk")...)
}

// TestDetectorForwardedSweepAndHighRiskOnlyAlert: a follow-me or
// forwarding dials the numbers its owner set on every ring, and anyone
// can ring it: five numbers under one prefix make a sweep, three
// high-risk ones repeated high-risk attempts, each ring. On forwarded
// legs those only alert, saying why and to check the forwarding (an
// attacker who changed it is met by the gate's rules); the same numbers
// from the phone still block.
func TestDetectorForwardedSweepAndHighRiskOnlyAlert(t *testing.T) {
	sweep := []string{"0033123456001", "0033123456002", "0033123456003", "0033123456004", "0033123456005"}
	risky := []string{"00252612345678", "00252612345679", "0088216123456"}
	for _, tc := range []struct {
		name    string
		tally   tollguard.Tally
		numbers []string
		reason  tollguard.Reason
		source  string
		action  tollguard.Action
	}{
		{"FollowMeSweepAlerts", tollguard.TallyNoSource, sweep, tollguard.ReasonOK, "detector:sweep", tollguard.ActionAlert},
		{"PhonesSweepBlocks", tollguard.TallySourced, sweep, tollguard.ReasonOK, "detector:sweep", tollguard.ActionBlockExtension},
		{"FollowMeHighRiskAlerts", tollguard.TallyNoSource, risky, tollguard.ReasonHighRisk, "detector:high_risk", tollguard.ActionAlert},
		{"PhonesHighRiskBlocks", tollguard.TallySourced, risky, tollguard.ReasonHighRisk, "detector:high_risk", tollguard.ActionIntlBlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := detNew(t, nil) // the defaults: sweep blocks the extension, high_risk international calls
			forwarded := tc.tally == tollguard.TallyNoSource
			for ring := range 3 {
				fs := detDial(t, d, "1001", tc.tally, detT0.Add(time.Duration(ring)*time.Minute), tc.numbers, tc.reason)
				if len(fs) != 1 || fs[0].Source != tc.source || fs[0].Subject != "ext:1001" {
					t.Fatalf("ring %d: findings %+v, want one %s", ring+1, fs, tc.source)
				}
				f := fs[0]
				if f.Action != tc.action || f.Action.Blocks() == forwarded || f.Evidence["forwarded"] != forwarded {
					t.Errorf("ring %d: %+v, want action %s", ring+1, f, tc.action)
				}
				held := "so alerted, not blocked: a forwarding or follow-me dials these whenever anyone rings its number"
				if strings.Contains(f.Message, held) != forwarded || strings.Contains(f.Message, "check it") != forwarded ||
					strings.Contains(f.Message, tollguard.TallyNoSource.String()) != forwarded {
					t.Errorf("ring %d: message %q", ring+1, f.Message)
				}
			}
		})
	}
}

// TestDetectorForwardedNumbersCountApart: forwarded legs have sweep and
// high-risk windows of their own, per extension and per account: they
// never push the phone's own calls over the threshold into a block, and
// the phone's calls never turn a forwarding's findings into one.
func TestDetectorForwardedNumbersCountApart(t *testing.T) {
	fwd, own := tollguard.TallyNoSource, tollguard.TallySourced
	t.Run("Sweep", func(t *testing.T) {
		d := detNew(t, nil)
		fs := detDial(t, d, "1001", fwd, detT0, []string{"0033123456001", "0033123456002", "0033123456003", "0033123456004"}, tollguard.ReasonOK)
		fs = append(fs, detDial(t, d, "1001", own, detT0.Add(time.Minute), []string{"0033123456005", "0033123456006", "0033123456007", "0033123456008"}, tollguard.ReasonOK)...)
		if len(fs) > 0 {
			t.Fatalf("four forwarded and four own numbers of a sequence: %+v", fs)
		}
		fs = detDial(t, d, "1001", own, detT0.Add(2*time.Minute), []string{"0033123456009"}, tollguard.ReasonOK)
		if len(fs) != 1 || fs[0].Action != tollguard.ActionBlockExtension || fs[0].Evidence["forwarded"] != false || len(fs[0].Evidence["numbers"].([]string)) != 5 {
			t.Fatalf("the phone's fifth: %+v, want its block on its own five", fs)
		}
	})
	t.Run("HighRisk", func(t *testing.T) {
		d := detNew(t, nil)
		fs := detDial(t, d, "1001", fwd, detT0, []string{"00252612345678", "00252612345679"}, tollguard.ReasonHighRisk)
		fs = append(fs, detDial(t, d, "1001", own, detT0.Add(time.Minute), []string{"0088216123456", "0088216123457"}, tollguard.ReasonHighRisk)...)
		if len(fs) > 0 {
			t.Fatalf("two forwarded and two own high-risk numbers: %+v", fs)
		}
		fs = detDial(t, d, "1001", fwd, detT0.Add(2*time.Minute), []string{"00252612345670"}, tollguard.ReasonHighRisk)
		if len(fs) != 1 || fs[0].Action != tollguard.ActionAlert || fs[0].Evidence["forwarded"] != true || fs[0].Evidence["attempts"] != 3 {
			t.Fatalf("the third forwarded: %+v, want an alert on the forwarded three", fs)
		}
	})
	t.Run("AccountSpread", func(t *testing.T) {
		// Two extensions' follow-mes each below the threshold: the
		// account's forwarded sweep, international, alerts where the
		// phones' would block international calls.
		for _, tally := range []tollguard.Tally{fwd, own} {
			d := detNew(t, nil)
			fs := detDial(t, d, "2000", tally, detT0, []string{"0033123456001", "0033123456002", "0033123456003"}, tollguard.ReasonOK)
			fs = append(fs, detDial(t, d, "2001", tally, detT0.Add(time.Minute), []string{"0033123456004", "0033123456005"}, tollguard.ReasonOK)...)
			want := map[tollguard.Tally]tollguard.Action{fwd: tollguard.ActionAlert, own: tollguard.ActionIntlBlock}[tally]
			if len(fs) != 1 || fs[0].Subject != "account:acme" || fs[0].Action != want || fs[0].Evidence["forwarded"] != (tally == fwd) {
				t.Fatalf("%s: findings %+v, want the account's %s", tally, fs, want)
			}
			if tally == fwd && !strings.Contains(fs[0].Message, "had "+fwd.String()+" to 5 sequential numbers") {
				t.Errorf("message %q", fs[0].Message)
			}
		}
	})
}

// TestDetectorsBounded: a flood of distinct extensions and calls that
// never end leaves the state capped.
func TestDetectorsBounded(t *testing.T) {
	d, err := tollguard.NewDetectors(tollguard.DetectorSettings{MaxKeys: 1000, MaxCalls: 500})
	if err != nil {
		t.Fatal(err)
	}
	num := detNumber(t, "0033123456789")
	for i := 0; i < 20_000; i++ {
		at := detT0.Add(time.Duration(i) * time.Millisecond)
		d.Attempt(tollguard.CallAttempt{Call: fmt.Sprint("call", i), At: at, Extension: fmt.Sprint("e", i), Account: fmt.Sprint("a", i), Number: num})
	}
	st := d.Stats()
	if st.Calls > 500 {
		t.Errorf("calls tracked %d > 500", st.Calls)
	}
	// burst_ext, burst_acct, sweep: 1000 each at most; concurrency: 2 per call
	if st.Keys > 3*1000+2*500 {
		t.Errorf("keys %d, want ≤ %d", st.Keys, 3*1000+2*500)
	}
	// Everything expires once quiet.
	d.Tick(detT0.Add(48 * time.Hour))
	if st := d.Stats(); st.Calls != 0 || st.Keys != 0 {
		t.Errorf("after expiry: %+v", st)
	}
}

// TestDetectorsQuietBounded: a flood of distinct extensions and
// accounts, each reaching the concurrency threshold once and hanging up,
// leaves the quiet times capped by MaxKeys like the other keys, within
// one quiet window; the newest key stays quiet.
func TestDetectorsQuietBounded(t *testing.T) {
	const maxKeys = 100
	concurrent := tollguard.DetectorRule{Threshold: 1, Window: time.Hour, Action: tollguard.ActionAlert}
	d, err := tollguard.NewDetectors(tollguard.DetectorSettings{MaxKeys: maxKeys, Rules: map[string]tollguard.DetectorRule{
		tollguard.DetectConcurrentExt: concurrent, tollguard.DetectConcurrentAcct: concurrent,
		tollguard.DetectBurstExt: {Threshold: 0}, tollguard.DetectBurstAcct: {Threshold: 0},
		tollguard.DetectSweep: {Threshold: 0}, tollguard.DetectHighRisk: {Threshold: 0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := range n {
		at := detT0.Add(time.Duration(i) * time.Millisecond)
		call := fmt.Sprint("call", i)
		fs := d.Attempt(detAttempt(t, call, fmt.Sprint("e", i), fmt.Sprint("a", i), "02079460001", at))
		if fs = append(detOnly(fs, "detector:concurrent_ext"), detOnly(fs, "detector:concurrent_acct")...); len(fs) != 2 {
			t.Fatalf("call %d: findings %+v, want one per new extension and account", i, fs)
		}
		d.Ended(call, at)
	}
	// Only quiet times are left, the extensions' and the accounts' in
	// one map capped at maxKeys (without the cap: 10,000).
	if st := d.Stats(); st.Calls != 0 || st.Keys == 0 || st.Keys > maxKeys {
		t.Errorf("after %d keys alerted in one window: %+v, want 1..%d quiet times", 2*n, st, maxKeys)
	}
	last := n - 1
	fs := d.Attempt(detAttempt(t, "again", fmt.Sprint("e", last), fmt.Sprint("a", last), "02079460001", detT0.Add(n*time.Millisecond)))
	if fs = append(detOnly(fs, "detector:concurrent_ext"), detOnly(fs, "detector:concurrent_acct")...); len(fs) > 0 {
		t.Errorf("the newest key alerted again within its quiet time: %+v", fs)
	}
	d.Ended("again", detT0.Add(n*time.Millisecond))
	d.Tick(detT0.Add(2 * time.Hour))
	if st := d.Stats(); st.Keys != 0 {
		t.Errorf("after the window: %+v", st)
	}
}

// TestValidateStoredDetectorRule: an account's override is stored in
// whole seconds, and only long_intl has a duration.
func TestValidateStoredDetectorRule(t *testing.T) {
	for _, tc := range []struct {
		name, detector string
		rule           tollguard.DetectorRule
		want           string // "" for valid
	}{
		{"LongIntlDuration", tollguard.DetectLongIntl, tollguard.DetectorRule{Threshold: 1, Action: tollguard.ActionAlert, Window: time.Hour, Duration: time.Hour}, ""},
		{"BurstWithoutDuration", tollguard.DetectBurstExt, tollguard.DetectorRule{Threshold: 5, Action: tollguard.ActionAlert, Window: time.Minute}, ""},
		{"BurstDuration", tollguard.DetectBurstExt, tollguard.DetectorRule{Threshold: 5, Action: tollguard.ActionAlert, Window: time.Minute, Duration: time.Hour}, "applies to long_intl only"},
		{"HalfSecondWindow", tollguard.DetectBurstExt, tollguard.DetectorRule{Threshold: 5, Action: tollguard.ActionAlert, Window: 1500 * time.Millisecond}, "whole seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tollguard.ValidateStoredDetectorRule(tc.detector, tc.rule)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestDetectorsPerAccount: sweeps and high-risk attempts spread over an
// account's extensions, each below the threshold, are seen at account
// level.
func TestDetectorsPerAccount(t *testing.T) {
	// dial has extension ext of acct dial numbers from start, step apart,
	// each resolved with reason; it returns the sweep and high_risk
	// findings.
	dial := func(d *tollguard.Detectors, ext, acct string, start time.Time, numbers []string, step time.Duration, reason tollguard.Reason) []tollguard.Finding {
		var fired []tollguard.Finding
		for i, n := range numbers {
			call := fmt.Sprint(ext, "-", start.Unix(), "-", i)
			at := start.Add(time.Duration(i) * step)
			fired = append(fired, d.Attempt(detAttempt(t, call, ext, acct, n, at))...)
			fired = append(fired, d.Resolved(call, reason, at.Add(time.Second))...)
			fired = append(fired, d.Ended(call, at.Add(2*time.Second))...)
		}
		return append(detOnly(fired, "detector:sweep"), detOnly(fired, "detector:high_risk")...)
	}
	t.Run("RotatingExtensionsBlockInternational", func(t *testing.T) {
		// Five extensions, each 4 numbers of one sweep and the same 2
		// high-risk numbers: no extension reaches a threshold.
		d := detNew(t, nil)
		var fired []tollguard.Finding
		for e := range 5 {
			ext, start := fmt.Sprint(2000+e), detT0.Add(time.Duration(e)*90*time.Second)
			var nums []string
			for i := range 4 {
				nums = append(nums, fmt.Sprintf("0033123456%03d", e*4+i))
			}
			fired = append(fired, dial(d, ext, "acme", start, nums, 10*time.Second, tollguard.ReasonOK)...)
			fired = append(fired, dial(d, ext, "acme", start.Add(time.Minute), []string{"00252612345678", "00252612345679"}, 10*time.Second, tollguard.ReasonHighRisk)...)
		}
		sweeps, risks := detOnly(fired, "detector:sweep"), detOnly(fired, "detector:high_risk")
		if len(sweeps) == 0 || len(risks) == 0 {
			t.Fatalf("sweeps %+v, high risk %+v", sweeps, risks)
		}
		for _, f := range fired {
			if f.Subject != "account:acme" || f.Action != tollguard.ActionIntlBlock || f.Severity != tollguard.SeverityCritical || len(f.Evidence["extensions"].([]string)) < 2 {
				t.Errorf("finding: %+v", f)
			}
		}
		if f := sweeps[0]; f.Evidence["sequential"] != true || !strings.Contains(f.Message, "extensions 2000, 2001") {
			t.Errorf("first sweep: %+v", f)
		}
	})
	t.Run("NationalSweepOverExtensionsAlerts", func(t *testing.T) {
		// An international block would not stop it, and no one extension
		// is to blame.
		d := detNew(t, nil)
		fired := dial(d, "2000", "acme", detT0, []string{"02079460100", "02079460101", "02079460102"}, 10*time.Second, tollguard.ReasonOK)
		fired = append(fired, dial(d, "2001", "acme", detT0.Add(time.Minute), []string{"02079460103", "02079460104"}, 10*time.Second, tollguard.ReasonOK)...)
		if len(fired) != 1 || fired[0].Subject != "account:acme" || fired[0].Action != tollguard.ActionAlert {
			t.Fatalf("findings: %+v", fired)
		}
	})
	t.Run("ColleaguesTryingOneNumberAlert", func(t *testing.T) {
		// Three people trying a client's (denied) number: not a block.
		d := detNew(t, nil)
		var fired []tollguard.Finding
		for e := range 3 {
			fired = append(fired, dial(d, fmt.Sprint(2000+e), "acme", detT0.Add(time.Duration(e)*time.Minute), []string{"00252612345678"}, 0, tollguard.ReasonHighRisk)...)
		}
		if len(fired) != 1 || fired[0].Subject != "account:acme" || fired[0].Action != tollguard.ActionAlert {
			t.Fatalf("findings: %+v", fired)
		}
	})
	t.Run("OneExtensionFindsOnce", func(t *testing.T) {
		// An extension's own sweep is its finding, not the account's too.
		d := detNew(t, nil)
		fired := dial(d, "2000", "acme", detT0, []string{"0033123456001", "0033123456002", "0033123456003", "0033123456004", "0033123456005"}, 10*time.Second, tollguard.ReasonOK)
		fired = append(fired, dial(d, "2000", "acme", detT0.Add(time.Minute), []string{"00252612345678", "00252612345679", "0088216123456"}, 10*time.Second, tollguard.ReasonHighRisk)...)
		// Another extension's number next to the sweep is not one more.
		fired = append(fired, dial(d, "2001", "acme", detT0.Add(2*time.Minute), []string{"0033123456006", "00252612345670"}, 10*time.Second, tollguard.ReasonHighRisk)...)
		if len(fired) != 2 || fired[0].Subject != "ext:2000" || fired[1].Subject != "ext:2000" {
			t.Fatalf("findings: %+v", fired)
		}
	})
	t.Run("AccountsDoNotMix", func(t *testing.T) {
		d := detNew(t, nil)
		var fired []tollguard.Finding
		for e := range 5 {
			acct := fmt.Sprint("acct", e)
			fired = append(fired, dial(d, fmt.Sprint(2000+e), acct, detT0.Add(time.Duration(e)*time.Minute), []string{fmt.Sprintf("0033123456%03d", e), "00252612345678"}, 10*time.Second, tollguard.ReasonHighRisk)...)
		}
		if len(fired) > 0 {
			t.Fatalf("findings: %+v", fired)
		}
	})
}

// TestRenumberCountsTheGatesNumber: a call counted under the number it
// started on ("9" for an outside line) takes the gate's number. Resolved
// already (the gate's reason comes first), it is resolved again when its
// first number did not count: a high-risk number now does.
func TestRenumberCountsTheGatesNumber(t *testing.T) {
	d := detNew(t, map[string]tollguard.DetectorRule{
		tollguard.DetectHighRisk: {Threshold: 1, Window: 10 * time.Minute, Action: tollguard.ActionAlert},
	})
	a := detAttempt(t, "c1", "1001", "acme", "900252612345678", detT0)
	if a.Number.HighRisk != "" {
		t.Fatal("9 + a Somali number classed high-risk: the case below proves nothing")
	}
	d.Attempt(a)
	if f := d.Resolved("c1", tollguard.ReasonHighRisk, detT0); len(f) != 0 {
		t.Fatalf("resolved under the prefixed number: %+v", f)
	}
	f := d.Renumber("c1", detNumber(t, "00252612345678"), tollguard.ReasonHighRisk, detT0.Add(time.Second))
	if len(f) != 1 || f[0].Kind != tollguard.AlertHighRisk {
		t.Fatalf("renumbered to a high-risk number: %+v", f)
	}
	// Renumbering again counts nothing twice.
	if f := d.Renumber("c1", detNumber(t, "00252612345679"), tollguard.ReasonHighRisk, detT0.Add(2*time.Second)); len(f) != 0 {
		t.Errorf("second renumber: %+v", f)
	}
	if f := d.Renumber("no-such-call", detNumber(t, "00252612345678"), tollguard.ReasonHighRisk, detT0); f != nil {
		t.Errorf("untracked call: %+v", f)
	}
}

// TestDetectorBlockNamesTheUnblockCommand: a blocking finding's message
// is the block's reason in `ext show` and `account show`; it names the
// command that lifts that block. A bare `tollguard unblock` is refused
// (it needs EXT), and an international block needs --intl ACCOUNT.
func TestDetectorBlockNamesTheUnblockCommand(t *testing.T) {
	d := detNew(t, map[string]tollguard.DetectorRule{
		tollguard.DetectHighRisk: {Threshold: 3, Window: 10 * time.Minute, Action: tollguard.ActionIntlBlock},
		tollguard.DetectSweep:    {Threshold: 5, Window: 10 * time.Minute, Action: tollguard.ActionBlockExtension},
		tollguard.DetectBurstExt: {Threshold: 0},
	})
	var fired []tollguard.Finding
	for i, n := range []string{"00252612345678", "00252612345679", "0088216123456"} {
		call, at := fmt.Sprint("h", i), detT0.Add(time.Duration(i)*time.Minute)
		fired = append(fired, d.Attempt(detAttempt(t, call, "1001", "acme", n, at))...)
		fired = append(fired, d.Resolved(call, tollguard.ReasonHighRisk, at)...)
	}
	for i := range 5 {
		at := detT0.Add(time.Duration(i) * time.Second)
		fired = append(fired, d.Attempt(detAttempt(t, fmt.Sprint("s", i), "1002", "acme", fmt.Sprintf("003312345600%d", i+1), at))...)
	}
	want := map[tollguard.Action]string{
		tollguard.ActionIntlBlock:      "`tollguard unblock --intl acme`",
		tollguard.ActionBlockExtension: "`tollguard unblock 1002`",
	}
	for action, cmd := range want {
		found := false
		for _, f := range fired {
			if f.Action == action {
				found = true
				if !strings.Contains(f.Message, cmd) {
					t.Errorf("%s finding does not name %s: %s", action, cmd, f.Message)
				}
			}
		}
		if !found {
			t.Errorf("no %s finding in %+v", action, fired)
		}
	}
}
