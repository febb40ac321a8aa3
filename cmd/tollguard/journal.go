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
// that `journalctl -p warning` finds tollguard's warnings. One inner
// handler writes every record; Handle sets the record's priority on the
// writer under its lock, and the standard handlers write a record
// inside Handle, in one Write. One handler a priority made each With
// (two a hangup request) build four.
type journalHandler struct {
	inner slog.Handler
	out   *lockedWriter
}

// newJournalHandler builds the inner handler with newHandler, writing
// to w.
func newJournalHandler(w io.Writer, newHandler func(io.Writer) slog.Handler) slog.Handler {
	out := &lockedWriter{w: w}
	return &journalHandler{inner: newHandler(recordWriter{out}), out: out}
}

func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return sdErr
	case l >= slog.LevelWarn:
		return sdWarning
	case l >= slog.LevelInfo:
		return sdInfo
	}
	return sdDebug
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.prefix = priority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{h.inner.WithAttrs(as), h.out}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{h.inner.WithGroup(name), h.out}
}

// lockedWriter writes each prefixed record in one Write, one at a time.
type lockedWriter struct {
	mu     sync.Mutex
	prefix string // the record's priority, set by journalHandler.Handle
	buf    []byte
	w      io.Writer
}

// writeLocked puts prefix before each line of b: slog writes a record
// as one line (it escapes newlines in values), so one prefix a record;
// a line break written anyway gets its own. o.mu is held.
func (o *lockedWriter) writeLocked(prefix string, b []byte) (int, error) {
	o.buf = o.buf[:0]
	start := true
	for _, c := range b {
		if start {
			o.buf = append(o.buf, prefix...)
		}
		o.buf = append(o.buf, c)
		start = c == '\n'
	}
	if _, err := o.w.Write(o.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// recordWriter is the inner handler's writer: it is called inside
// journalHandler.Handle, which holds the lock and set the priority.
type recordWriter struct{ out *lockedWriter }

func (r recordWriter) Write(b []byte) (int, error) { return r.out.writeLocked(r.out.prefix, b) }

// prefixWriter writes with a fixed priority (the message a command
// exits with), taking the lock itself.
type prefixWriter struct {
	out    *lockedWriter
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.writeLocked(p.prefix, b)
}
