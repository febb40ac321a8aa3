// Package faulttest is tollguard's fault suite: it builds the real
// binary, runs `tollguard serve` as a child process on a real SQLite
// file seeded through the CLI, drives the FastAGI gate with the fake
// Asterisk of agi/agitest, and then breaks things: kill -9 under load,
// floods of idle and slow connections, CLI writers contending for the
// database, SIGTERM with sessions in flight, and bad command lines and
// config files.
//
// It is a package of its own, and not a test file of cmd/tollguard,
// because it tests the daemon only from outside, the way an admin and
// Asterisk see it: through processes, signals, sockets, exit codes,
// logs and the database file. Nothing here may reach into the daemon's
// internals, which a black-box package enforces. It also keeps the
// binary's build and the suite's minute of wall time out of the CLI
// package's own tests.
//
// Every test has a short form, run by `make test`, and a long form, run
// by `make soak` (TOLLGUARD_SOAK=1, tests whose names contain "Soak").
// Both forms assert the same things; the long one runs longer and more
// times. When the tests run under the race detector, the daemon is
// built with it too, and a race report in its output fails the test.
//
// There is no non-test code: this file only documents the package.
package faulttest
