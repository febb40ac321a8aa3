package voicemail

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxIncludeDepth bounds #include nesting, as Asterisk does.
const maxIncludeDepth = 10

// Tree is voicemail.conf and every file it includes, in the order
// Asterisk reads them.
type Tree struct {
	Files []*File
	// Problems are what Asterisk would warn about or refuse: a missing
	// #include (Asterisk then refuses the whole file), an #exec that
	// tollguard does not run, a file included twice.
	Problems []string
	// PasswordLocation is [general] passwordlocation, the last one in
	// reading order (an #include's lines come where the #include is):
	// "spooldir", "voicemailconf", or "" if none is set.
	PasswordLocation string
}

// Load reads the config file at path and follows its includes.
// Relative include paths are resolved against configDir ("" means the
// directory of path), as Asterisk resolves them against its config
// directory. Only a missing or unreadable top file is an error.
func Load(path, configDir string) (*Tree, error) {
	if configDir == "" {
		configDir = filepath.Dir(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	t := &Tree{}
	seen := map[string]bool{}
	t.add(path, data, "", configDir, 0, seen)
	return t, nil
}

func (t *Tree) add(path string, data []byte, ctx, configDir string, depth int, seen map[string]bool) {
	key, err := filepath.Abs(path)
	if err != nil {
		key = path
	}
	if real, err := filepath.EvalSymlinks(key); err == nil {
		key = real
	}
	if seen[key] {
		t.Problems = append(t.Problems, fmt.Sprintf("%s is included more than once (or in a loop); its mailboxes are audited once", path))
		return
	}
	seen[key] = true
	f := Parse(path, data, ctx)
	t.Files = append(t.Files, f)
	t.Problems = append(t.Problems, f.Problems...)
	locs := f.locations
	for _, inc := range f.Includes {
		// Settings above the #include are read before the included file.
		for len(locs) > 0 && locs[0].line < inc.Line {
			t.PasswordLocation, locs = locs[0].value, locs[1:]
		}
		where := fmt.Sprintf("%s:%d", path, inc.Line)
		if inc.Directive == "exec" {
			t.Problems = append(t.Problems, fmt.Sprintf("%s: #exec %s is not run by tollguard, so mailboxes it generates are not audited", where, inc.Target))
			continue
		}
		if depth+1 >= maxIncludeDepth {
			t.Problems = append(t.Problems, fmt.Sprintf("%s: #%s %s nests deeper than %d files; not followed", where, inc.Directive, inc.Target, maxIncludeDepth))
			continue
		}
		target := inc.Target
		if !filepath.IsAbs(target) {
			target = filepath.Join(configDir, target)
		}
		matches, err := filepath.Glob(target)
		if err != nil {
			matches = nil
		}
		sort.Strings(matches)
		var files []string
		for _, m := range matches {
			// glob(3), which Asterisk uses, skips dot-files unless the
			// pattern names them; Go's Glob does not. tollguard's own
			// PIN-rewrite backups are dot-files beside the file.
			if strings.HasPrefix(filepath.Base(m), ".") && !strings.HasPrefix(filepath.Base(target), ".") {
				continue
			}
			if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
				files = append(files, m)
			}
		}
		if len(files) == 0 {
			if inc.Directive == "include" {
				t.Problems = append(t.Problems, fmt.Sprintf("%s: #include %s: no such file; Asterisk refuses to load voicemail.conf with a missing #include (use #tryinclude for optional files)", where, inc.Target))
			}
			continue
		}
		for _, m := range files {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Problems = append(t.Problems, fmt.Sprintf("%s: #%s %s: %v", where, inc.Directive, m, err))
				continue
			}
			t.add(m, b, inc.Context, configDir, depth+1, seen)
		}
	}
	for _, l := range locs {
		t.PasswordLocation = l.value
	}
}
