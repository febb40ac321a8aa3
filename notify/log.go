package notify

import (
	"context"
	"log/slog"
	"strings"

	"github.com/tollguard/tollguard"
)

// Log writes notices to a slog logger with stable keys (kind, severity,
// subject, extension, account, alert_id, event, count, repeats, and
// values and more_values for a merged new_ip or new_user_agent), at
// Error for critical alerts, Warn for warnings and Info otherwise.
type Log struct {
	Logger *slog.Logger
}

// Name is "log".
func (l *Log) Name() string { return "log" }

// Notify logs n. It fails only if ctx has ended.
func (l *Log) Notify(ctx context.Context, n tollguard.Notice) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a := n.Alert
	level := slog.LevelInfo
	switch a.Severity {
	case tollguard.SeverityCritical:
		level = slog.LevelError
	case tollguard.SeverityWarning:
		level = slog.LevelWarn
	}
	lg := l.Logger
	if lg == nil {
		lg = slog.Default()
	}
	args := []any{
		tollguard.LogKind, a.Kind, tollguard.LogSeverity, string(a.Severity), tollguard.LogSubject, a.Subject,
		tollguard.LogExtension, a.Extension, tollguard.LogAccount, a.Account, tollguard.LogAlertID, a.ID,
		"event", string(n.Event), "count", a.Count, "repeats", n.Repeats, "message", a.Message,
	}
	if _, vs, more := n.Values(); len(vs) > 0 {
		args = append(args, "values", strings.Join(vs, ", "), "more_values", more)
	}
	lg.Log(ctx, level, "alert", args...)
	return nil
}
