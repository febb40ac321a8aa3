package dialplan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecommendedLocalDialsFilterTheNumber: the Local channel the docs and
// the include tell admins to dial is named from the dialled number. Taken
// raw, a number holding "@" and "/" names another context: Asterisk reads
// a Local channel's options from its first "/" and its context from the
// first "@" before it (core_local.c local_alloc), so a phone dialling
// 0044207946000@xfer-1001/ makes Local/0044207946000@xfer-1001/@outbound/n,
// which runs 0044207946000 in xfer-1001 and dials out as the extension
// that context's route names. A "," or "&" adds Dial options or devices.
func TestRecommendedLocalDialsFilterTheNumber(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{"tollguard.conf", "../README.md", "../contrib/asterisk/extensions.conf"}, docs...)
	const raw, filtered = "Local/${EXTEN}", "Local/${FILTER(0-9*#+,${EXTEN})}"
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, raw) {
				t.Errorf("%s:%d builds a Local channel from the raw number, a caller can name another context with it: %s", f, i+1, strings.TrimSpace(line))
			}
			seen += strings.Count(line, filtered)
		}
	}
	if seen == 0 {
		t.Errorf("no file shows %s: the docs no longer say how to dial a Local channel", filtered)
	}
}
