package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
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
