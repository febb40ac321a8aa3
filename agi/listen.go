package agi

import (
	"context"
	"net"
)

// NewListener binds the FastAGI listener on addr. (Not the agi
// library's Listen, which serves with no deadlines: pitfalls.md.)
//
// Its connections have TCP keep-alive off. A FastAGI session lasts
// milliseconds and every read and write on it runs under a deadline,
// which finds a dead Asterisk long before a keep-alive probe would; and
// turning keep-alive on costs four setsockopt calls on every accepted
// call: 3% of all CPU in a profile of the gate under load.
func NewListener(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(ctx, "tcp", addr)
}
