package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
	"github.com/tollguard/tollguard/store"
)

func init() { register(newAlertsCommand) }

func newAlertsCommand(app *App) *cobra.Command {
	var since string
	var unacked, asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Recent alerts and their delivery, newest first; ack one, or send a test alert",
		Long: `List alerts, newest first. Repeats of the same kind and subject within the
cool-down ([alerts] cool_down, default 15m) are one alert with a count; the
admin gets one notice, then digests of the repeats. DELIVERY shows each
notifier's latest notice: sent, pending (with attempts) or failed.`,
		Example: `  tollguard alerts --since 24h
  tollguard alerts --unacked --json
  tollguard alerts show 42
  tollguard alerts ack 42
  tollguard alerts test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseSince(since, app.Now())
			if err != nil {
				return err
			}
			if limit < 1 {
				return usagef("--limit %d: want at least 1", limit)
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			as, err := db.Alerts(cmd.Context(), store.AlertFilter{Since: t, Unacked: unacked, Limit: limit})
			if err != nil {
				return err
			}
			ids := make([]int64, len(as))
			for i, a := range as {
				ids[i] = a.ID
			}
			var ds []store.Delivery
			if len(ids) > 0 {
				if ds, err = db.Deliveries(cmd.Context(), ids...); err != nil {
					return err
				}
			}
			byAlert := map[int64][]store.Delivery{}
			for _, d := range ds {
				byAlert[d.AlertID] = append(byAlert[d.AlertID], d)
			}
			if asJSON {
				vs := make([]alertView, len(as))
				for i, a := range as {
					vs[i] = newAlertView(a, byAlert[a.ID])
				}
				return app.printJSON(vs)
			}
			if len(as) == 0 {
				fmt.Fprintln(app.Out, "no alerts")
				return nil
			}
			w := app.table("ID", "LAST SEEN", "SEVERITY", "KIND", "SUBJECT", "COUNT", "STATE", "DELIVERY", "MESSAGE")
			for _, a := range as {
				state := "open"
				if !a.AckedAt.IsZero() {
					state = "acked by " + a.AckedBy
				}
				msg := a.Message
				if latest := a.LatestMessage(); latest != "" {
					msg = "latest: " + latest
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.ID, fmtTime(a.LastSeen), a.Severity, a.Kind, orDash(a.Subject),
					a.Count, state, deliverySummary(byAlert[a.ID]), orDash(alertsEllipsis(msg, 70)))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only alerts seen since: 90m, 24h, 7d or a date")
	cmd.Flags().BoolVar(&unacked, "unacked", false, "only alerts not yet acknowledged")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	addJSON(cmd, &asJSON)
	cmd.AddCommand(newAlertsShowCommand(app), newAlertsAckCommand(app), newAlertsTestCommand(app))
	return cmd
}

func newAlertsShowCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "One alert in full: what to do, its evidence and each delivery",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := alertID(args[0])
			if err != nil {
				return err
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			a, err := db.Alert(cmd.Context(), id)
			if err != nil {
				return err
			}
			ds, err := db.Deliveries(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return app.printJSON(newAlertView(a, ds))
			}
			n := tollguard.Notice{Event: tollguard.NoticeNew, Alert: a.Alert, At: a.LastSeen}
			fmt.Fprint(app.Out, n.Text())
			if !a.AckedAt.IsZero() {
				fmt.Fprintf(app.Out, "\nAcknowledged by %s at %s.\n", a.AckedBy, fmtTime(a.AckedAt))
			}
			if occ := tollguard.Occurrences(a.Evidence); len(occ) > 1 || a.Dropped > 0 {
				fmt.Fprintf(app.Out, "\nOccurrences kept (%d of %d):\n", len(occ), a.Count)
				for _, o := range occ {
					fmt.Fprintf(app.Out, "  %s  %-8s %s %s\n", fmtTime(time.Unix(o.At, 0)), o.Severity, cellEscaper.Replace(o.Message), o.Evidence)
				}
			}
			fmt.Fprintln(app.Out, "\nDeliveries:")
			if len(ds) == 0 {
				fmt.Fprintln(app.Out, "  none")
			}
			w := app.table()
			for _, d := range ds {
				detail := ""
				switch d.Status {
				case store.DeliveryPending:
					detail = "next attempt " + fmtTime(d.NextAt)
				case store.DeliverySending:
					detail = "in progress"
				default:
					detail = fmtTime(d.DoneAt)
				}
				if d.LastError != "" {
					// A webhook's error quotes the receiver's answer: a
					// proxy's error page is lines of HTML.
					detail += ": " + cellEscaper.Replace(d.LastError)
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\t%d attempt%s\t%s\n", d.Notifier, d.Event, d.Status, d.Attempts, alertsPlural(d.Attempts), detail)
			}
			return w.Flush()
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}

func newAlertsAckCommand(app *App) *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "ack ID",
		Short: "Acknowledge an alert: it stops sending digests, and a new occurrence starts a new alert (an unchanged audit finding waits a week)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := alertID(args[0])
			if err != nil {
				return err
			}
			if by == "" {
				by = "admin:" + adminName()
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			a, changed, err := db.AckAlert(cmd.Context(), id, by, app.Now())
			if err != nil {
				return err
			}
			if !changed {
				fmt.Fprintf(app.Out, "alert %d was already acknowledged by %s at %s\n", id, a.AckedBy, fmtTime(a.AckedAt))
				return nil
			}
			fmt.Fprintf(app.Out, "alert %d acknowledged (%s on %s, %d occurrence%s)\n", id, a.Kind, a.Subject, a.Count, alertsPlural(a.Count))
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who acknowledges it (default admin:<your user name>)")
	textFlags(cmd, "by")
	return cmd
}

func newAlertsTestCommand(app *App) *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Send a test alert through every configured notifier now and report each result",
		Long: `Send a test alert through the log, and e-mail and the webhook when they are
enabled in [alerts], directly (not through the outbox), and wait for each.
Exit 0 when every notifier succeeded, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := &app.Config.Alerts
			ns, err := cfg.Notifiers(app.Logger)
			if err != nil {
				return err
			}
			if message == "" {
				message = "Test alert from tollguard, sent with `tollguard alerts test`."
			}
			res := notify.Test(cmd.Context(), message, cfg.SendTimeout.Duration, app.Now(), ns...)
			failed := 0
			w := app.table("NOTIFIER", "RESULT", "TOOK", "DETAIL")
			for i, r := range res {
				detail := ""
				if s, ok := ns[i].(fmt.Stringer); ok {
					detail = s.String()
				}
				result := "ok"
				if r.Err != nil {
					failed++
					result = "FAILED"
					detail = cellEscaper.Replace(r.Err.Error()) // may quote the receiver's answer
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Notifier, result, r.Took.Round(time.Millisecond), detail)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if len(ns) == 1 {
				fmt.Fprintln(app.Out, "only the log is configured: enable [alerts.email] or [alerts.webhook] to reach an admin")
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d notifiers failed", failed, len(res))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&message, "message", "", "the test alert's text")
	textFlags(cmd, "message")
	return cmd
}

func alertID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("alert id %q: want the number shown by `tollguard alerts`", s)
	}
	return id, nil
}

// deliverySummary is each notifier's latest delivery: "email:sent
// webhook:pending(3)".
func deliverySummary(ds []store.Delivery) string {
	latest := map[string]store.Delivery{}
	for _, d := range ds {
		if cur, ok := latest[d.Notifier]; !ok || d.ID > cur.ID {
			latest[d.Notifier] = d
		}
	}
	if len(latest) == 0 {
		return "-"
	}
	names := make([]string, 0, len(latest))
	for n := range latest {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		d := latest[n]
		s := n + ":" + d.Status
		if d.Status != store.DeliverySent && d.Attempts > 0 {
			s += fmt.Sprintf("(%d)", d.Attempts)
		}
		parts[i] = s
	}
	return strings.Join(parts, " ")
}

func alertsEllipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func alertsPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// alertView is an alert as `alerts --json` prints it.
type alertView struct {
	ID         int64              `json:"id"`
	Kind       string             `json:"kind"`
	Severity   tollguard.Severity `json:"severity"`
	Subject    string             `json:"subject"`
	Account    string             `json:"account,omitempty"`
	Extension  string             `json:"extension,omitempty"`
	Message    string             `json:"message"`
	Latest     string             `json:"latest_message,omitempty"` // the latest occurrence's, when it differs
	Values     []string           `json:"values,omitempty"`         // as a notice names them (Notice.Values)
	MoreValues int                `json:"more_values,omitempty"`
	FirstSeen  *string            `json:"first_seen"`
	LastSeen   *string            `json:"last_seen"`
	Count      int                `json:"count"`
	AckedAt    *string            `json:"acked_at"`
	AckedBy    string             `json:"acked_by,omitempty"`
	Evidence   json.RawMessage    `json:"evidence,omitempty"`
	Dropped    int                `json:"evidence_dropped,omitempty"`
	Deliveries []deliveryView     `json:"deliveries"`
}

type deliveryView struct {
	Notifier  string  `json:"notifier"`
	Event     string  `json:"event"`
	Status    string  `json:"status"`
	Attempts  int     `json:"attempts"`
	NextAt    *string `json:"next_attempt,omitempty"`
	DoneAt    *string `json:"done_at,omitempty"`
	LastError string  `json:"last_error,omitempty"`
}

// occurrenceView is one kept occurrence in `alerts --json` evidence.
type occurrenceView struct {
	At       *string            `json:"at"`
	Severity tollguard.Severity `json:"severity"`
	Message  string             `json:"message,omitempty"`
	Evidence json.RawMessage    `json:"evidence,omitempty"`
}

func newAlertView(a tollguard.AlertState, ds []store.Delivery) alertView {
	v := alertView{ID: a.ID, Kind: a.Kind, Severity: a.Severity, Subject: a.Subject, Account: a.Account, Extension: a.Extension,
		Message: a.Message, Latest: a.LatestMessage(), FirstSeen: jsonTime(a.FirstSeen), LastSeen: jsonTime(a.LastSeen), Count: a.Count,
		AckedAt: jsonTime(a.AckedAt), AckedBy: a.AckedBy, Dropped: a.Dropped, Deliveries: []deliveryView{}}
	_, v.Values, v.MoreValues = tollguard.Notice{Alert: a.Alert}.Values()
	if json.Valid([]byte(a.Evidence)) {
		v.Evidence = json.RawMessage(a.Evidence)
	}
	// The store keeps each occurrence's time in Unix seconds (and the
	// webhook's version 1 body sends it so); here it is RFC 3339 like
	// every other time the CLI prints as JSON.
	if occ := tollguard.Occurrences(a.Evidence); len(occ) > 0 {
		ov := make([]occurrenceView, len(occ))
		for i, o := range occ {
			ov[i] = occurrenceView{At: jsonTime(time.Unix(o.At, 0)), Severity: o.Severity, Message: o.Message, Evidence: o.Evidence}
		}
		if b, err := json.Marshal(ov); err == nil {
			v.Evidence = b
		}
	}
	for _, d := range ds {
		dv := deliveryView{Notifier: d.Notifier, Event: string(d.Event), Status: d.Status, Attempts: d.Attempts,
			DoneAt: jsonTime(d.DoneAt), LastError: d.LastError}
		if d.Status == store.DeliveryPending {
			dv.NextAt = jsonTime(d.NextAt)
		}
		v.Deliveries = append(v.Deliveries, dv)
	}
	return v
}
