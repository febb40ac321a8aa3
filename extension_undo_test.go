package tollguard_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
)

// TestFailedAddUndoesOnlyItsOwnLine: an `ext add` stalled in an ARI
// write; meanwhile the admin removed the line (purging what it had in
// Asterisk first) and added it again. When the stalled write failed,
// the first add's undo deleted by name: the second add's store row and
// creation record, and the PJSIP objects the first add had made before
// the stall, which were now the second add's.
func TestFailedAddUndoesOnlyItsOwnLine(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		stall string // the PUT that stalls, then fails
	}{
		{"StalledOnItsFirstObject", "auth"},
		{"StalledOnItsEndpoint", "endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newAudHarness(t)
			h.account("acme", nil)
			spec := tollguard.ExtensionSpec{Name: "2001", Account: "acme"}
			stalled, release := make(chan struct{}), make(chan struct{})
			first := true
			env := *h.env
			env.Asterisk = ariProxy(t, h, func(w http.ResponseWriter, r *http.Request, pass http.Handler) {
				if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/res_pjsip/"+tc.stall+"/2001") && first {
					first = false
					close(stalled)
					<-release
					http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
					return
				}
				pass.ServeHTTP(w, r)
			})
			done := make(chan error, 1)
			go func() {
				_, err := env.AddExtension(ctx, spec)
				done <- err
			}()
			<-stalled
			if tc.stall != "auth" {
				// ext rm is refused while Asterisk has any of its objects.
				if _, _, err := h.env.SchedulePurgeNow(ctx, "2001", "cli", "test"); err != nil {
					t.Fatal(err)
				}
				if _, err := h.env.PurgeExtension(ctx, "2001", "test"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := h.env.RemoveExtension(ctx, "2001", tollguard.RemoveOptions{}); err != nil {
				t.Fatal(err)
			}
			second, err := h.env.AddExtension(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			before := len(h.fake.Requests())
			close(release)
			err = <-done
			if err == nil {
				t.Fatal("the stalled add succeeded")
			}
			if msg := err.Error(); !strings.Contains(msg, "left alone") {
				t.Errorf("the failed add does not say it left the line alone: %s", msg)
			}
			if e, err := h.db.Extension(ctx, "2001"); err != nil || !e.Managed {
				t.Errorf("the second add's line: %+v, %v", e, err)
			}
			// Both adds' creations stay: the first's line was recorded,
			// and removed by the admin, not rolled back.
			if cs, err := h.db.ExtensionCreations(ctx, audT0); err != nil || len(cs) != 2 {
				t.Errorf("creations %+v, %v; want both adds'", cs, err)
			}
			for _, typ := range []string{"auth", "aor", "endpoint"} {
				if _, ok := h.fake.Object(typ, "2001"); !ok {
					t.Errorf("the second add's %s is gone", typ)
				}
			}
			if pw := h.object("auth", "2001").Get("password"); pw != second.Password {
				t.Errorf("auth password %q, want the second add's", pw)
			}
			for _, r := range h.fake.Requests()[before:] {
				if r.Method != http.MethodGet {
					t.Errorf("the failed add's undo wrote to Asterisk: %s %s", r.Method, r.Path)
				}
			}
		})
	}
}
