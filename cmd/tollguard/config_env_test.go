package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorFromTheEnvironmentNamesIt: a bad TOLLGUARD_ARI_URL was
// reported at the config file's url line ("tollguard.toml:4: ari url
// ... has no path"), where the admin found a good URL: config check
// and serve (which refuses it since the unit runs no check) now name
// the variable the value came from.
func TestConfigErrorFromTheEnvironmentNamesIt(t *testing.T) {
	c := newCLI(t)
	path := filepath.Join(t.TempDir(), "tollguard.toml")
	os.WriteFile(path, []byte("[ari]\nenabled = true\nuser = \"tollguard\"\nurl = \"http://127.0.0.1:8088/ari\"\n"), 0o600)
	t.Setenv("TOLLGUARD_ARI_PASSWORD", "s3cret")
	t.Setenv("TOLLGUARD_ARI_URL", "http://127.0.0.1:8088")
	const want = `TOLLGUARD_ARI_URL (environment): ari url "http://127.0.0.1:8088" has no path`
	if code, _, errs := c.run("config", "check", path); code != exitUsage || !strings.Contains(errs, want) || strings.Contains(errs, "toml:4") {
		t.Errorf("config check: exit %d, %s; want it to name TOLLGUARD_ARI_URL, not the file's line", code, errs)
	}
	t.Setenv("TOLLGUARD_AGI_ADDR", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Bounded: a serve that starts would run until stopped.
	var errs bytes.Buffer
	code := run(ctx, []string{"--db", c.db, "--config", path, "serve"}, strings.NewReader(""), &bytes.Buffer{}, &errs)
	if code != exitUsage || !strings.Contains(errs.String(), want) || strings.Contains(errs.String(), "toml:4") {
		t.Errorf("serve: exit %d, %s; want it to name TOLLGUARD_ARI_URL, not the file's line", code, errs.String())
	}
}
