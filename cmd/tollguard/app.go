package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// App is what every subcommand shares: the config, the database (opened
// on first use), the clock, and the output streams.
type App struct {
	In       io.Reader
	Out, Err io.Writer

	ConfigPath string
	DBPath     string
	Config     *Config
	Logger     *slog.Logger
	Now        func() time.Time

	db *store.DB
}

// NewApp returns an App writing to the given streams.
func NewApp(in io.Reader, out, errw io.Writer) *App {
	return &App{In: in, Out: out, Err: errw, Now: time.Now}
}

// Init loads the config: --config, else $TOLLGUARD_CONFIG, else the
// defaults. Environment overrides apply on top.
func (a *App) Init() error {
	if a.Config != nil {
		return nil
	}
	path := a.ConfigPath
	if path == "" {
		path = os.Getenv("TOLLGUARD_CONFIG")
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return err
	}
	cfg.ApplyEnv(os.Getenv)
	if a.DBPath != "" {
		cfg.DB = a.DBPath
	}
	a.Config = cfg
	a.Logger = cfg.Log.NewLogger(a.Err)
	return nil
}

// Store opens the database on first use.
func (a *App) Store(ctx context.Context) (*store.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	if err := a.Init(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(a.Config.DB) == "" {
		return nil, &usageError{fmt.Sprintf("the database path %q is blank: set TOLLGUARD_DB, --db or the config's db to the SQLite file's path", a.Config.DB)}
	}
	_, statErr := os.Stat(a.Config.DB)
	db, err := store.Open(ctx, a.Config.DB)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// Said, not logged: an admin who forgot TOLLGUARD_DB would
		// otherwise read "no accounts" from the wrong, new file.
		path := a.Config.DB
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		fmt.Fprintf(a.Err, "tollguard: no database at %s: created a new, empty one (TOLLGUARD_DB or --db names another)\n", path)
	}
	db.Now = a.Now
	if private, err := db.Private(); err == nil && !private {
		a.Logger.Warn("the database file is readable by other users and could not be made private; it holds SIP password snapshots: chmod 600 it, as the user tollguard runs as",
			"path", a.Config.DB)
	}
	a.db = db
	return db, nil
}

// checkAccountFilter fails when a list's --account names no account:
// that is a typo, not an empty list (nor, for rules, only the global ones).
func checkAccountFilter(ctx context.Context, db *store.DB, account string) error {
	if account == "" {
		return nil
	}
	_, err := db.Account(ctx, account)
	return err
}

// Close closes the database if it was opened.
func (a *App) Close() {
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
}

// Policy returns the call policy over the store, as the daemon runs it.
func (a *App) Policy(db *store.DB) *tollguard.Policy {
	p := &tollguard.Policy{Now: a.Now, Store: db, Logger: a.Logger}
	p.Configure(a.Config.Gate.PolicySettings())
	// The sweep leaves a gone call to the ARI listener for longer than
	// the listener waits for its hangup request.
	p.SweepGoneWait = max(tollguard.DefaultSweepGoneWait, 2*a.Config.ARI.SettleGrace.Duration)
	return p
}

// printJSON writes v as indented JSON.
func (a *App) printJSON(v any) error {
	enc := json.NewEncoder(a.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a tab writer for aligned columns; call Flush.
func (a *App) table(header ...string) *tableWriter {
	w := &tableWriter{tabwriter.NewWriter(markStripper{a.Out}, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		fmt.Fprintln(w, strings.Join(header, "\t"))
	}
	return w
}

// tableWriter is a tabwriter.Writer that escapes its cells as termSafe
// does before it lays them out, not after: a byte that is not UTF-8 (a
// Latin-1 name), counted one column wide and printed as four (\xfc),
// pushed its row's columns out of line, and 0xff, the tab writer's
// escape character, joined the rest of the table into one cell.
//
// It also widens each cell by the terminal cells its text takes beyond
// its rune count, which is what the tab writer counts: a CJK name, two
// cells a character, pushed its row's columns out of line. The tab
// writer counts a cellMark added to the cell for each cell more, and
// markStripper drops them from what it prints. (A combining mark, no
// cell for a rune, still counts one.)
type tableWriter struct{ *tabwriter.Writer }

func (w *tableWriter) Write(p []byte) (int, error) {
	var b strings.Builder
	(&termSafe{w: &b}).Write(p)
	s := b.String()
	if isASCII(s) {
		_, err := io.WriteString(w.Writer, s)
		return len(p), err
	}
	// A mark in the text itself is shown, not dropped.
	s = strings.ReplaceAll(s, cellMark, `\ufdd0`)
	var out strings.Builder
	for {
		i := strings.IndexAny(s, "\t\n")
		cell := s
		if i >= 0 {
			cell = s[:i]
		}
		out.WriteString(cell)
		if more := cellWidth.StringWidth(cell) - utf8.RuneCountInString(cell); more > 0 {
			out.WriteString(strings.Repeat(cellMark, more))
		}
		if i < 0 {
			break
		}
		out.WriteByte(s[i])
		s = s[i+1:]
	}
	_, err := io.WriteString(w.Writer, out.String())
	return len(p), err
}

// cellMark is a Unicode noncharacter, one a program may use inside
// itself and never prints.
const cellMark = "\ufdd0"

// cellWidth counts terminal cells: East Asian wide characters two, those
// of ambiguous width one, as terminals do unless set otherwise.
var cellWidth = &runewidth.Condition{StrictEmojiNeutral: true}

// markStripper writes what the tab writer lays out, without its marks.
type markStripper struct{ w io.Writer }

func (m markStripper) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte(cellMark)) {
		return m.w.Write(p)
	}
	if _, err := m.w.Write(bytes.ReplaceAll(p, []byte(cellMark), nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// addJSON adds the --json flag every read command has.
func addJSON(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print JSON instead of a table")
}

// fmtTime prints a stored time in UTC, or "-" for never.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// jsonTime is a time for JSON output: RFC 3339, or null for never.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// parseSince parses "24h", "7d" or a date/time into an instant.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasSuffix(s, "d") {
		var n int
		if _, err := fmt.Sscanf(s, "%dd", &n); err == nil && n >= 0 && fmt.Sprintf("%dd", n) == s {
			switch {
			case n == 0:
				return time.Time{}, sinceZero(s)
			case n > maxDays:
				return time.Time{}, usagef("--since %q: at most %dd (a hundred years); leave --since out to list everything kept", s, maxDays)
			}
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("--since %q: give a positive duration", s)
		}
		if d == 0 {
			return time.Time{}, sinceZero(s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			ahead := time.Duration(0)
			if layout != time.RFC3339 {
				// Read as UTC, today's date (or time) where the clock is
				// ahead of UTC is up to 14 hours after now: a cron job's
				// --since $(date +%F) must not fail there.
				ahead = maxZoneAhead
			}
			if t.After(now.Add(ahead)) {
				// Nothing was recorded after now: an empty list would
				// read as "no such calls".
				return time.Time{}, usagef("--since %q: that is after now (%s, UTC), so nothing would be listed; give a past date or a duration such as 24h", s, now.UTC().Format("2006-01-02 15:04"))
			}
			return t, nil
		}
	}
	return time.Time{}, usagef("--since %q: give a duration (90m, 24h, 7d) or a date (2026-11-01, 2026-11-01T08:00)", s)
}

// maxZoneAhead is the most any time zone is ahead of UTC (UTC+14).
const maxZoneAhead = 14 * time.Hour

// sinceZero is the error for --since 0: since now lists nothing.
func sinceZero(s string) error {
	return usagef("--since %q: since now, nothing would be listed; give a duration such as 24h or 7d, or leave --since out for all", s)
}

// noLocalFlags reports whether none of cmd's own flags were given (the
// global --db and --config do not count as a change).
func noLocalFlags(cmd *cobra.Command) bool {
	n := 0
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if cmd.InheritedFlags().Lookup(f.Name) == nil {
			n++
		}
	})
	return n == 0
}
