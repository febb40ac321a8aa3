package tollguard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/ari"
	"github.com/tollguard/tollguard/store"
)

// TestAuditRunHasADeadline: an audit waiting on an Asterisk that never
// answers (and a REST timeout long enough not to help) ran for as long
// as Asterisk hung, and every audit after it waited. Now the run is
// cancelled at [audit] timeout, the cancellation reaches the request,
// and the run is stored as failed with the reason.
func TestAuditRunHasADeadline(t *testing.T) {
	ctx := context.Background()
	aborted := make(chan struct{}, 16)
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // Asterisk hung: no answer, ever
		aborted <- struct{}{}
	}))
	defer hung.Close()
	defer hung.CloseClientConnections() // first: Close waits for the handlers
	c, err := ari.NewClient(ari.Config{URL: hung.URL + "/ari", User: "u", Password: "p", RequestTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env := &tollguard.AuditEnv{Store: db, Asterisk: c, Settings: tollguard.DefaultAuditSettings(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	env.Settings.Timeout = 300 * time.Millisecond

	type result struct {
		run *tollguard.AuditRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := tollguard.RunAudit(ctx, env, tollguard.CoverageAudit{}, false, "cron", nil)
		done <- result{run, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second): // a hang, not a speed check
		t.Fatal("the audit still waits on the hung Asterisk 20 s later")
	}
	if res.err == nil || !strings.Contains(res.run.Error, "did not finish within 300ms ([audit] timeout) and was cancelled") {
		t.Fatalf("run error %q, err %v; want the deadline named", res.run.Error, res.err)
	}
	select {
	case <-aborted: // the server sees the client give up just after
	case <-time.After(10 * time.Second):
		t.Error("the request to Asterisk was not cancelled")
	}
	runs, err := db.AuditRuns(ctx, "coverage", 5)
	if err != nil || len(runs) != 1 || !strings.Contains(runs[0].Error, "[audit] timeout") {
		t.Fatalf("stored runs %+v, %v; want one failed run naming the timeout", runs, err)
	}
}
