package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryNamedCommandExists: messages and documents tell the admin
// what to run next; a command that does not exist (`tollguard ext rm`,
// `tollguard ext rotate`) leaves them stuck at the worst moment. Every
// `tollguard WORD [WORD]` in the code and the docs must resolve to a
// command that runs (not a group waiting for a verb).
func TestEveryNamedCommandExists(t *testing.T) {
	root := newRootCommand(NewApp(strings.NewReader(""), io.Discard, io.Discard))
	root.InitDefaultCompletionCmd()
	// Prose that happens to follow a backtick: the root's long help, and
	// a log line quoted in troubleshooting.md.
	prose := map[string]bool{"decides every": true, "gave no": true}
	named := regexp.MustCompile("`(?:sudo )?(?:bin/)?tollguard ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
	var files []string
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "../.." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(path); (ext == ".go" && !strings.HasSuffix(path, "_test.go")) || ext == ".md" || ext == ".conf" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue // a comment may name a mistyped command on purpose
			}
			for _, m := range named.FindAllStringSubmatch(line, -1) {
				if prose[m[1]] {
					continue
				}
				checked++
				// A group alone names the group (`tollguard ext`); a
				// group then a word must be one of its verbs.
				cmd, rest, err := root.Find(strings.Fields(m[1]))
				if err != nil || cmd == root || isGroup(cmd) && len(rest) > 0 {
					t.Errorf("%s names `tollguard %s`, which is no command", f, m[1])
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("found only %d commands named in %d files: the scan is broken", checked, len(files))
	}
}
