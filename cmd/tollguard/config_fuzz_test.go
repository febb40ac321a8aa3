package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/tollguard/tollguard"
)

// printConfig renders c as `tollguard config print` does (unmasked).
func printConfig(t *testing.T, c *Config) string {
	t.Helper()
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(*c); err != nil {
		t.Fatalf("print config: %v", err)
	}
	return b.String()
}

var errLine = regexp.MustCompile(`(?m)^  fuzz\.toml:(\d+):(?:\d+:)? `)

// FuzzConfig feeds arbitrary text to the config parser. It must never
// panic; a rejected file gets EINVALID (exit 2) with every line number
// inside the file; an accepted one prints (`config print`) as a file
// that parses again to the same config.
func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile("../../contrib/tollguard.toml"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"",
		"[agi]\nlisten = \"127.0.0.1:4573\"\nallowed = [\"10.0.0.0/8\", \"::1\"]\nmax_sessions = 64\n",
		"[gate]\nsweep_interval = \"30s\"\nsweep_grace = \"0s\"\ndefault_country = \"US\"\n",
		"[log]\nlevel = \"debug\"\nformat = \"json\"\n[metrics]\nenabled = false\n",
		"[agi\nlisten = \"x\"\n",
		"[agi]\nlisen = 1\n",
		"[agi]\nallowed = [\"10.0.0.0/33\"]\n",
		"[agi]\ndecision_timeout = \"5 seconds\"\n",
		"[agi]\nmax_sessions = \"many\"\n",
		"db = \"/var/lib/tollguard/tollguard.db\"\n[ari]\nenabled = true\nurl = \"http://127.0.0.1:8088/ari\"\nuser = \"tollguard\"\npassword_file = \"/etc/tollguard/ari.pw\"\n",
		"[alerts.webhook]\nenabled = true\nurl = \"https://example.net/hook\"\n",
		"[audit]\nenabled = true\n[audit.schedules]\npins = \"CRON_TZ=UTC\"\n",
		"[detectors]\n",
		"a.b.c = 1\n[[agi]]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := parseConfig("fuzz.toml", text, DefaultConfig())
		if err != nil {
			if code := tollguard.ErrorCode(err); code != tollguard.EINVALID {
				t.Fatalf("error code %s, want EINVALID (exit 2): %v", code, err)
			}
			lines := strings.Count(text, "\n") + 1
			for _, m := range errLine.FindAllStringSubmatch(tollguard.ErrorMessage(err), -1) {
				if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
					t.Fatalf("error on line %d of a %d-line file: %v", n, lines, err)
				}
			}
			return
		}
		printed := printConfig(t, c)
		c2, err := parseConfig("printed.toml", printed, DefaultConfig())
		if err != nil {
			t.Fatalf("config print gives a file that does not parse: %v\n%s", err, printed)
		}
		if again := printConfig(t, c2); again != printed {
			t.Fatalf("config changed through print and parse:\n%s\n----\n%s", printed, again)
		}
	})
}
