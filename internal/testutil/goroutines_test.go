package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestGoroutinesIgnoresIdleKeepAlive: an idle keep-alive connection is
// not counted; a request in its handler, and any other goroutine, are.
func TestGoroutinesIgnoresIdleKeepAlive(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-release
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	defer close(release)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	base := Goroutines()
	resp, err := client.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	Eventually(t, 5*time.Second, "the idle connection left out", func() bool { return Goroutines() == base })

	go func() {
		if resp, err := client.Get(srv.URL + "/hang"); err == nil {
			resp.Body.Close()
		}
	}()
	// The caller's goroutine and the handler's connection count.
	Eventually(t, 5*time.Second, "a request in its handler counted", func() bool { return Goroutines() >= base+2 })

	stop := make(chan struct{})
	go func() { <-stop }()
	defer close(stop)
	if g := Goroutines(); g < base+3 {
		t.Errorf("a plain goroutine not counted: %d, want at least %d", g, base+3)
	}
}

// TestGoroutinesCountsUnclosedResponseBodies: a response body never
// closed holds its connection (and a file descriptor) for good; its read
// loop waits on the body, and the count must show it.
func TestGoroutinesCountsUnclosedResponseBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	// Earlier tests' connections and goroutines end on their own after
	// them: wait, or their end would hide what this adds.
	Eventually(t, 5*time.Second, "earlier tests' goroutines gone", func() bool {
		buf := make([]byte, 1<<20)
		s := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(s, "net/http.(*persistConn)") && !strings.Contains(s, "testutil.TestGoroutinesIgnoresIdleKeepAlive")
	})
	base := Goroutines()
	var bodies []io.Closer
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	for range 3 {
		resp, err := client.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body) // leaked until the test ends
	}
	Eventually(t, 5*time.Second, "three leaked response bodies counted", func() bool { return Goroutines() >= base+3 })
}
