package cron

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	rcron "github.com/robfig/cron/v3"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec, err string
	}{
		{"30 2 * * *", ""},
		{"@daily", ""},
		{"@every 6h", ""},
		{"CRON_TZ=Europe/London 30 2 * * 1-5", ""},
		{"CRON_TZ=UTC", "a zone needs the schedule after it"}, // panics upstream (#554)
		{"TZ=UTC", "a zone needs the schedule after it"},
		{"CRON_TZ=Mars/Olympus 0 0 * * *", "bad location"},
		{"", "schedule is empty"},
		{"* * *", "expected exactly 5 fields"},
		{"61 * * * *", "above maximum"},
		{"@every 10s", "at most once a minute"},
		{"0 0 31 2 *", "never runs"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := Parse(tc.spec)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// TestParseRecoversLibraryPanics feeds the library's panicking input
// past the pre-check, to keep the recover honest.
func TestParseRecoversLibraryPanics(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic escaped: %v", r)
		}
	}()
	if _, err := Parse("CRON_TZ=UTC\u00a0"); err == nil { // a no-break space is not a field separator
		t.Error("no error")
	}
}

// TestNextPinnedClock computes runs from pinned instants in the
// configured zone, across the 2026 spring-forward in London.
func TestNextPinnedClock(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, spec string
		from, want time.Time
	}{
		{"DailyInZone", "30 2 * * *", time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC), time.Date(2026, 1, 11, 2, 30, 0, 0, time.UTC)},
		// 29 March 2026: 01:00 GMT becomes 02:00 BST, so 03:00 local is 02:00 UTC.
		{"AfterSpringForward", "0 3 * * *", time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 2, 0, 0, 0, time.UTC)},
		{"SpecZoneWins", "CRON_TZ=America/New_York 0 9 * * *", time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC), time.Date(2026, 1, 10, 14, 0, 0, 0, time.UTC)},
		{"Weekdays", "0 6 * * 1-5", time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC), time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC)}, // Sat → Mon
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Next(tc.spec, london, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("next %s, want %s", got.UTC(), tc.want)
			}
		})
	}
}

func TestPanickingJobDoesNotKillAndRunsAgain(t *testing.T) {
	var logs bytes.Buffer
	s := New(time.UTC, slog.New(slog.NewTextHandler(&logs, nil)))
	runs := 0
	if err := s.Add("boom", "@daily", func(ctx context.Context) {
		runs++
		panic("audit exploded")
	}); err != nil {
		t.Fatal(err)
	}
	// Through the chain, as the scheduler runs it: the panic is recovered…
	if err := s.Run("boom"); err != nil {
		t.Fatal(err)
	}
	// …and the job is not skipped forever afterwards.
	if err := s.Run("boom"); err != nil {
		t.Fatal(err)
	}
	if runs != 2 {
		t.Errorf("ran %d times, want 2", runs)
	}
	if !strings.Contains(logs.String(), "a scheduled audit crashed") || !strings.Contains(logs.String(), "audit exploded") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

// TestRecoverOutsideSkipLosesTheJob documents why New puts
// SkipIfStillRunning outside Recover: the other order loses the job's
// token on its first panic.
func TestRecoverOutsideSkipLosesTheJob(t *testing.T) {
	l := slogLogger{slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))}
	runs := 0
	j := rcron.NewChain(rcron.Recover(l), rcron.SkipIfStillRunning(l)).Then(rcron.FuncJob(func() { runs++; panic("x") }))
	j.Run()
	j.Run()
	if runs != 1 {
		t.Fatalf("upstream changed: ran %d times; revisit the chain order in New", runs)
	}
}

func TestSkipIfStillRunning(t *testing.T) {
	var logs bytes.Buffer
	s := New(time.UTC, slog.New(slog.NewTextHandler(&logs, nil)))
	started, release := make(chan struct{}), make(chan struct{})
	runs := 0
	if err := s.Add("slow", "@hourly", func(ctx context.Context) {
		runs++
		close(started)
		<-release
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.Run("slow") }()
	<-started
	_ = s.Run("slow") // overlaps the first: skipped at once
	close(release)
	wg.Wait()
	if runs != 1 {
		t.Errorf("ran %d times, want 1", runs)
	}
	if !strings.Contains(logs.String(), "was skipped") {
		t.Errorf("skip not logged: %s", logs.String())
	}
}

func TestSchedulerLifecycle(t *testing.T) {
	s := New(time.UTC, nil)
	if err := s.Add("a", "@daily", func(context.Context) {}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("a", "@hourly", func(context.Context) {}); err == nil {
		t.Error("a job name was scheduled twice")
	}
	if err := s.Add("b", "CRON_TZ=UTC", func(context.Context) {}); err == nil || !strings.Contains(err.Error(), "b: schedule") {
		t.Errorf("bad spec: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Start(ctx)
	es := s.Entries()
	if len(es) != 1 || es[0].Name != "a" || es[0].Next.IsZero() {
		t.Errorf("entries %+v", es)
	}
	<-s.Stop().Done()
	// A job whose daemon is gone does not run.
	ran := false
	if err := s.Add("c", "@daily", func(context.Context) { ran = true }); err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = s.Run("c")
	if ran {
		t.Error("a job ran after its context ended")
	}
	if err := s.Run("nope"); err == nil {
		t.Error("running an unknown job is not an error")
	}
}
