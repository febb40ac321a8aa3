package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// streamID is what systemd puts in JOURNAL_STREAM for f.
func streamID(t *testing.T, f *os.File) (dev, ino uint64) {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return uint64(st.Dev), st.Ino
}

// socketStream returns the writing end of a Unix stream socket, as
// journald hands a service, and a func that closes it and returns what
// was written.
func socketStream(t *testing.T) (*os.File, func() string) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, r := os.NewFile(uintptr(fds[0]), "journal"), os.NewFile(uintptr(fds[1]), "journald")
	t.Cleanup(func() { w.Close(); r.Close() })
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&got, r); close(done) }()
	return w, func() string { w.Close(); <-done; return got.String() }
}

// fileStream returns a file in t.TempDir() and a func that returns its
// content.
func fileStream(t *testing.T) (*os.File, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

var journalLevels = []struct {
	level  slog.Level
	prefix string
}{
	{slog.LevelDebug, "<7>"}, {slog.LevelInfo, "<6>"}, {slog.LevelWarn, "<4>"}, {slog.LevelError, "<3>"},
	{slog.LevelWarn + 2, "<4>"}, {slog.LevelError + 4, "<3>"}, {slog.LevelDebug - 4, "<7>"},
}

// logEachLevel writes one record at each level through l's handler, at
// a fixed time so that two loggers' lines compare, with attributes, a
// group and a multi-line value slog must escape.
func logEachLevel(t *testing.T, l *slog.Logger) {
	t.Helper()
	h := l.With("extension", "1001").WithGroup("call").Handler()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, lv := range journalLevels {
		r := slog.NewRecord(at, lv.level, "call denied", 0)
		r.AddAttrs(slog.String("dest", "00442079460000"), slog.String("reason", "line one\nline two"), slog.Duration("took", 1500*time.Microsecond))
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// pipeStream returns the writing end of a pipe, as a shell's `2>&1 |`
// gives, and a func that closes it and returns what was written.
func pipeStream(t *testing.T) (*os.File, func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); r.Close() })
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&got, r); close(done) }()
	return w, func() string { w.Close(); <-done; return got.String() }
}

// TestJournalPriorityPrefix: on the journal's stream (JOURNAL_STREAM
// names it), each record starts with its level's sd-daemon priority and
// is otherwise the line written elsewhere, so `journalctl -p warning`
// finds warnings and errors.
func TestJournalPriorityPrefix(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for name, open := range map[string]func(*testing.T) (*os.File, func() string){"socket": socketStream, "file": fileStream} {
			t.Run(format+"/"+name, func(t *testing.T) {
				cfg := LogConfig{Level: "debug", Format: format}
				var want strings.Builder
				logEachLevel(t, cfg.NewLogger(&want))

				f, read := open(t)
				dev, ino := streamID(t, f)
				t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", dev, ino))
				logEachLevel(t, cfg.NewLogger(f))

				got := strings.Split(strings.TrimSuffix(read(), "\n"), "\n")
				plain := strings.Split(strings.TrimSuffix(want.String(), "\n"), "\n")
				if len(got) != len(journalLevels) || len(plain) != len(journalLevels) {
					t.Fatalf("%d lines on the journal, %d elsewhere; want %d each:\n%s", len(got), len(plain), len(journalLevels), strings.Join(got, "\n"))
				}
				for i, lv := range journalLevels {
					if got[i] != lv.prefix+plain[i] {
						t.Errorf("level %v on the journal:\n got %q\nwant %q", lv.level, got[i], lv.prefix+plain[i])
					}
				}
			})
		}
	}
}

// TestJournalPriorityOnlyOnItsStream: JOURNAL_STREAM absent, malformed,
// or naming another file (a child that inherited it with its stderr
// redirected to a pipe or a file) leaves the lines as they are: a
// "<4>" in a file or on a terminal is noise.
func TestJournalPriorityOnlyOnItsStream(t *testing.T) {
	other, _ := fileStream(t)
	otherDev, otherIno := streamID(t, other)
	sock, _ := socketStream(t)
	sockDev, sockIno := streamID(t, sock)

	for name, tc := range map[string]struct {
		open func(*testing.T) (*os.File, func() string)
		env  func(dev, ino uint64) string
	}{
		"absent":              {fileStream, func(uint64, uint64) string { return "" }},
		"another file":        {fileStream, func(uint64, uint64) string { return fmt.Sprintf("%d:%d", otherDev, otherIno) }},
		"same inode, new dev": {fileStream, func(dev, ino uint64) string { return fmt.Sprintf("%d:%d", dev+1, ino) }},
		"malformed":           {fileStream, func(dev, ino uint64) string { return fmt.Sprintf("%d-%d", dev, ino) }},
		"no inode":            {fileStream, func(dev, _ uint64) string { return fmt.Sprintf("%d:", dev) }},
		"trailing junk":       {fileStream, func(dev, ino uint64) string { return fmt.Sprintf("%d:%d:0", dev, ino) }},
		"pipe, socket's name": {pipeStream, func(uint64, uint64) string { return fmt.Sprintf("%d:%d", sockDev, sockIno) }},
	} {
		t.Run(name, func(t *testing.T) {
			f, read := tc.open(t)
			dev, ino := streamID(t, f)
			t.Setenv("JOURNAL_STREAM", tc.env(dev, ino))
			cfg := LogConfig{Level: "debug"}
			logEachLevel(t, cfg.NewLogger(f))
			var want strings.Builder
			logEachLevel(t, cfg.NewLogger(&want))
			if got := read(); got != want.String() {
				t.Errorf("JOURNAL_STREAM=%q:\n got %q\nwant %q", os.Getenv("JOURNAL_STREAM"), got, want.String())
			}
		})
	}
}

// TestJournalPriorityConcurrent: records logged at once from many
// goroutines each keep their own prefix, one a line, none interleaved.
func TestJournalPriorityConcurrent(t *testing.T) {
	f, read := socketStream(t)
	dev, ino := streamID(t, f)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", dev, ino))
	l := LogConfig{Level: "debug"}.NewLogger(f)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			lw := l.With("worker", w)
			for i := range each {
				lv := journalLevels[(w+i)%4]
				lw.Log(context.Background(), lv.level, "call denied", "extension", fmt.Sprint(1000+i), "reason", strings.Repeat("x", 64*i))
			}
		})
	}
	wg.Wait()
	prefixOf := map[string]string{"DEBUG": "<7>", "INFO": "<6>", "WARN": "<4>", "ERROR": "<3>"}
	sc := bufio.NewScanner(strings.NewReader(read()))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		n++
		_, rest, _ := strings.Cut(line, " level=")
		level, _, _ := strings.Cut(rest, " ")
		want, ok := prefixOf[level]
		if !ok || !strings.HasPrefix(line, want+"time=") || strings.Count(line, "level=") != 1 {
			t.Fatalf("line %d: %.200q", n, line)
		}
	}
	if n != workers*each {
		t.Errorf("%d lines, want %d", n, workers*each)
	}
}

// TestJournalPriorityFromApp: the CLI and serve log to the stderr they
// were started with, so the file itself reaches the check.
func TestJournalPriorityFromApp(t *testing.T) {
	f, read := socketStream(t)
	dev, ino := streamID(t, f)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", dev, ino))
	t.Setenv("TOLLGUARD_CONFIG", "")
	a := NewApp(strings.NewReader(""), io.Discard, f)
	a.DBPath = filepath.Join(t.TempDir(), "tollguard.db")
	if err := a.Init(); err != nil {
		t.Fatal(err)
	}
	a.Logger.Warn("clock stepped", "reason", "test")
	if got := read(); !strings.HasPrefix(got, "<4>time=") || !strings.Contains(got, ` level=WARN msg="clock stepped" reason=test`) {
		t.Errorf("got %q", got)
	}
}

// TestJournalPriorityOfExitError: the message a command exits with
// (serve's config error) is filed as an error on the journal, and is
// plain elsewhere.
func TestJournalPriorityOfExitError(t *testing.T) {
	for _, onJournal := range []bool{true, false} {
		f, read := socketStream(t)
		dev, ino := streamID(t, f)
		env := ""
		if onJournal {
			env = fmt.Sprintf("%d:%d", dev, ino)
		}
		t.Setenv("JOURNAL_STREAM", env)
		t.Setenv("TOLLGUARD_CONFIG", filepath.Join(t.TempDir(), "missing.toml"))
		code := runApp(context.Background(), NewApp(strings.NewReader(""), io.Discard, f), []string{"serve"})
		got := read()
		want := "tollguard: "
		if onJournal {
			want = "<3>tollguard: "
		}
		if code == exitOK || !strings.HasPrefix(got, want) || strings.Count(got, "\n") != 1 {
			t.Errorf("JOURNAL_STREAM=%q: exit %d, stderr %q; want one line starting %q", env, code, got, want)
		}
	}
}
