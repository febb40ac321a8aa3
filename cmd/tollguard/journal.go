package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// Priorities of sd-daemon(3): a line written to the journal's stream
// that starts with one is filed at it (systemd.exec SyslogLevelPrefix=,
// on by default); a line without one is filed as info.
const (
	sdErr     = "<3>"
	sdWarning = "<4>"
	sdInfo    = "<6>"
	sdDebug   = "<7>"
)

// journalHandler prefixes each record with its level's priority, so
// that `journalctl -p warning` finds tollguard's warnings. It holds one
// handler per priority, each writing through its own prefix.
type journalHandler struct {
	err, warn, info, debug slog.Handler
}

// newJournalHandler builds the handlers with newHandler, each writing
// to w through one lock: four handlers mean four slog locks, and their
// records must not interleave on w.
func newJournalHandler(w io.Writer, newHandler func(io.Writer) slog.Handler) slog.Handler {
	out := &lockedWriter{w: w}
	return &journalHandler{
		err:   newHandler(&prefixWriter{out: out, prefix: sdErr}),
		warn:  newHandler(&prefixWriter{out: out, prefix: sdWarning}),
		info:  newHandler(&prefixWriter{out: out, prefix: sdInfo}),
		debug: newHandler(&prefixWriter{out: out, prefix: sdDebug}),
	}
}

func (h *journalHandler) pick(l slog.Level) slog.Handler {
	switch {
	case l >= slog.LevelError:
		return h.err
	case l >= slog.LevelWarn:
		return h.warn
	case l >= slog.LevelInfo:
		return h.info
	}
	return h.debug
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.pick(l).Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick(r.Level).Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{h.err.WithAttrs(as), h.warn.WithAttrs(as), h.info.WithAttrs(as), h.debug.WithAttrs(as)}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{h.err.WithGroup(name), h.warn.WithGroup(name), h.info.WithGroup(name), h.debug.WithGroup(name)}
}

// lockedWriter writes each prefixed record in one Write, one at a time.
type lockedWriter struct {
	mu  sync.Mutex
	buf []byte
	w   io.Writer
}

// prefixWriter puts its prefix before each line written: slog writes a
// record as one line (it escapes newlines in values), so one prefix a
// record; a line break written anyway gets its own.
type prefixWriter struct {
	out    *lockedWriter
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	o := p.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = o.buf[:0]
	start := true
	for _, c := range b {
		if start {
			o.buf = append(o.buf, p.prefix...)
		}
		o.buf = append(o.buf, c)
		start = c == '\n'
	}
	if _, err := o.w.Write(o.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}
