package testutil

import (
	"bytes"
	"runtime"
)

// Goroutines counts the running goroutines, leaving out idle HTTP
// keep-alive connections: net/http keeps up to MaxIdleConnsPerHost of
// them per host and picks how many from timing (three goroutines each,
// client and server side), so a leak test counting them fails on a
// busy machine without any leak. A connection serving a request (a
// websocket's handler, a hung REST call) still counts, and so does one
// held by a response body left open.
func Goroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if len(bytes.TrimSpace(g)) == 0 || idleHTTP(g) {
			continue
		}
		count++
	}
	return count
}

// idleHTTP: a client connection's write loop, its read loop while it
// waits for the server's next bytes, or a server connection waiting for
// its next request (no handler on its stack). A read loop parked on a
// response body nobody reads or closes (a leak) is not idle.
func idleHTTP(stack []byte) bool {
	if bytes.Contains(stack, []byte("net/http.(*persistConn).writeLoop")) {
		return true
	}
	if bytes.Contains(stack, []byte("net/http.(*persistConn).readLoop")) {
		return bytes.Contains(stack, []byte("bufio.(*Reader).Peek"))
	}
	return bytes.Contains(stack, []byte("net/http.(*conn).serve")) && !bytes.Contains(stack, []byte("ServeHTTP"))
}
