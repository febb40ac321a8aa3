package main

import (
	"bytes"
	"os"
	"testing"
)

// TestCLIReferenceIsCurrent fails when a command changed and docs/cli.md
// was not regenerated with `make docs`.
func TestCLIReferenceIsCurrent(t *testing.T) {
	want := cliReference(newRootCommand(NewApp(nil, &bytes.Buffer{}, &bytes.Buffer{})))
	got, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatalf("docs/cli.md: %v (run `make docs`)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/cli.md is out of date: run `make docs` and commit it")
	}
}
