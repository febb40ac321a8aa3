package tollguard_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
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

// TestFailedAddKeepsItsNameUntilUndone: the undo of a failed `ext add`
// removed its store row first, then its PJSIP objects by name. A second
// add of the name, which had checked Asterisk before the first wrote
// anything, recorded the line in between and wrote its objects, and the
// first add's undo then deleted the second's auth: the second add gave
// out a password for a line with no auth. The name stays taken until
// the failed add's objects are gone.
func TestFailedAddKeepsItsNameUntilUndone(t *testing.T) {
	ctx := context.Background()
	h := newAudHarness(t)
	h.account("acme", nil)
	spec := tollguard.ExtensionSpec{Name: "2001", Account: "acme"}
	var mu sync.Mutex
	seen := map[string]int{}
	checking, resume := make(chan struct{}), make(chan struct{})  // the second add's check of aor/2001
	deleting, release := make(chan struct{}), make(chan struct{}) // the first add's undo of auth/2001
	env := *h.env
	env.Asterisk = ariProxy(t, h, func(w http.ResponseWriter, r *http.Request, pass http.Handler) {
		key := r.Method + " " + r.URL.Path[strings.LastIndex(r.URL.Path, "/res_pjsip/")+len("/res_pjsip/"):]
		mu.Lock()
		seen[key]++
		n := seen[key]
		mu.Unlock()
		switch {
		case key == "GET aor/2001" && n == 1:
			close(checking)
			<-resume
		case key == "PUT aor/2001" && n == 1:
			http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
			return
		case key == "DELETE auth/2001" && n == 1:
			close(deleting)
			<-release
		}
		pass.ServeHTTP(w, r)
	})
	type result struct {
		ext *tollguard.NewExtension
		err error
	}
	add := func() chan result {
		done := make(chan result, 1)
		go func() {
			ext, err := env.AddExtension(ctx, spec)
			done <- result{ext, err}
		}()
		return done
	}
	second := add()
	<-checking
	first := add()
	<-deleting
	close(resume)
	r2 := <-second
	close(release)
	if r1 := <-first; r1.err == nil {
		t.Fatal("the add whose aor failed succeeded")
	}
	_, rowErr := h.db.Extension(ctx, "2001")
	if r2.err == nil {
		if rowErr != nil {
			t.Errorf("the second add succeeded, and its line is not in the store: %v", rowErr)
		}
		for _, typ := range []string{"auth", "aor", "endpoint"} {
			if _, ok := h.fake.Object(typ, "2001"); !ok {
				t.Errorf("the second add succeeded (password %q), and its %s is gone", r2.ext.Password, typ)
			}
		}
		return
	}
	if tollguard.ErrorCode(r2.err) != tollguard.ECONFLICT {
		t.Errorf("the second add: %v, want ECONFLICT (the name still taken)", r2.err)
	}
	if rowErr == nil {
		t.Error("both adds failed, and a line 2001 is in the store")
	}
	for _, typ := range []string{"auth", "aor", "endpoint"} {
		if _, ok := h.fake.Object(typ, "2001"); ok {
			t.Errorf("both adds failed, and Asterisk has %s/2001", typ)
		}
	}
}
