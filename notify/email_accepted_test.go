package notify_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/notify"
)

// acceptThenStallSMTP is a bare SMTP server that queues each message
// (250 after the data) and then, per after, stalls on or drops the
// connection at the next command (go-mail's NOOP/RSET, then QUIT). It
// counts the messages it queued.
func acceptThenStallSMTP(t *testing.T, after string) (port int, queued *atomic.Int32) {
	t.Helper()
	queued = new(atomic.Int32)
	port = bareSMTP(t, func(at string, release <-chan struct{}) bool {
		switch {
		case at == "data":
			queued.Add(1)
		case at == "next" && after == "drop":
			return false
		case at == "next" && after == "stall":
			<-release
			return false
		}
		return true
	})
	return port, queued
}

// TestEmailAcceptedIsSent: once the server has queued the message (250
// after DATA), the notice is delivered, whatever happens on the way out
// (RSET, QUIT). Reporting a failure there made the dispatcher retry and
// mail the admin the same alert again, up to max_attempts times.
func TestEmailAcceptedIsSent(t *testing.T) {
	for _, after := range []string{"drop", "stall"} {
		t.Run(after, func(t *testing.T) {
			port, queued := acceptThenStallSMTP(t, after)
			e := bareEmail(t, port)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, n := tollguard.AlertPolicy{}.NewAlertState(compromised(), t0)
			if err := e.Notify(ctx, n); err != nil {
				t.Errorf("Notify = %v after the server queued the message: the dispatcher would send it again", err)
			}
			if got := queued.Load(); got != 1 {
				t.Errorf("server queued %d messages, want 1", got)
			}
		})
	}
}

// TestDispatcherMailsAnAcceptedNoticeOnce: end to end, a mail server
// that drops the connection after queuing gets the notice once.
func TestDispatcherMailsAnAcceptedNoticeOnce(t *testing.T) {
	port, queued := acceptThenStallSMTP(t, "drop")
	e := bareEmail(t, port)
	clk := newClock()
	d := newDispatcher(t, openDB(t, ""), notify.Options{Now: clk.Now}, e)
	if err := d.Raise(context.Background(), compromised()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		deliverDue(t, d)
		clk.Add(time.Hour)
	}
	if got := queued.Load(); got != 1 {
		t.Errorf("the admin got the same alert %d times, want once", got)
	}
}
