// Package testutil holds small helpers that tests in several packages
// share.
package testutil

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // HoldWriteLock
)

// Buffer is a bytes.Buffer safe for loggers writing from several
// goroutines while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// NotifySocket is a fake systemd notify socket (NOTIFY_SOCKET): a unix
// datagram socket that collects what a daemon sends.
type NotifySocket struct {
	Path string
	conn *net.UnixConn
}

// NewNotifySocket listens on a notify socket until the test ends.
func NewNotifySocket(t *testing.T) *NotifySocket {
	t.Helper()
	// Not t.TempDir(): unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "tgsd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &NotifySocket{Path: path, conn: conn}
}

// Next returns the next message, or "" if none came within d.
func (n *NotifySocket) Next(d time.Duration) string {
	n.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	k, err := n.conn.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:k])
}

// Eventually polls cond every few milliseconds until it holds, and
// fails the test if it still does not after timeout. Call it from the
// test's goroutine.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // a polling interval, not synchronisation
	}
}

// HoldWriteLock takes SQLite's write lock on the database at path from
// a connection of its own (BEGIN IMMEDIATE), as another process writing
// does; the func it returns rolls back and lets go (at the test's end
// too, once).
func HoldWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=100")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}
