package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// yieldingWriter lets other writers in between two of its Writes, as a
// busy socket can: a record written in two parts would interleave.
type yieldingWriter struct {
	mu  sync.Mutex
	out strings.Builder
}

func (w *yieldingWriter) Write(p []byte) (int, error) {
	time.Sleep(10 * time.Microsecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

// TestJournalHandlerConcurrent: records logged at once at every level
// each get their level's prefix, one a line, none interleaved.
func TestJournalHandlerConcurrent(t *testing.T) {
	var w yieldingWriter
	l := slog.New(newJournalHandler(&w, func(w io.Writer) slog.Handler {
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	}))
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			lg := l.With("worker", g)
			for i := range each {
				lg.Log(context.Background(), levels[(g+i)%4], "call denied", "extension", fmt.Sprint(1000+i))
			}
		})
	}
	wg.Wait()
	prefixOf := map[string]string{"DEBUG": "<7>", "INFO": "<6>", "WARN": "<4>", "ERROR": "<3>"}
	lines := strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n")
	for n, line := range lines {
		_, rest, _ := strings.Cut(line, " level=")
		level, _, _ := strings.Cut(rest, " ")
		want, ok := prefixOf[level]
		if !ok || !strings.HasPrefix(line, want+"time=") || strings.Count(line, "level=") != 1 {
			t.Fatalf("line %d: %q", n+1, line)
		}
	}
	if len(lines) != workers*each {
		t.Errorf("%d lines, want %d", len(lines), workers*each)
	}
}

// TestJournalWithCostsWhatItsHandlersDoes: a hangup request calls With
// twice; with a handler per priority each With built four, 32
// allocations more than the plain handler's. It must cost about the
// inner handler's (a journalHandler a With; -race adds one or two).
func TestJournalWithCostsWhatItsHandlersDoes(t *testing.T) {
	text := func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }
	plain := slog.New(text(io.Discard))
	journal := slog.New(newJournalHandler(io.Discard, text))
	with := func(l *slog.Logger) func() {
		return func() { _ = l.With("extension", "1001", "account", "acme").With("callid", "c1") }
	}
	p, j := testing.AllocsPerRun(100, with(plain)), testing.AllocsPerRun(100, with(journal))
	if j > p+4 {
		t.Fatalf("two Withs allocate %v times on the journal, %v plainly; want at most 4 more", j, p)
	}
}
