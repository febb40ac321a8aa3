package main

// Tests that contrib's Asterisk samples are safe as copied: admins
// install them unchanged.

import (
	"bufio"
	"regexp"
	"strings"
	"testing"
)

// astSection is one [name](templates) section of an Asterisk config file,
// its templates' settings first.
type astSection struct {
	name     string
	template bool // (!): a template, not an object
	values   map[string][]string
}

func (s astSection) get(k string) string {
	if v := s.values[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// astSections reads an Asterisk config file as main/config.c does for
// these samples: ";" starts a comment, "[name](!)" is a template and
// "[name](a,b)" inherits a's and b's settings.
func astSections(text string) []astSection {
	var out []astSection
	byName := map[string]astSection{}
	head := regexp.MustCompile(`^\[([^\]]+)\](?:\(([^)]*)\))?$`)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), ";")
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := head.FindStringSubmatch(line); m != nil {
			s := astSection{name: m[1], values: map[string][]string{}}
			for _, t := range strings.Split(m[2], ",") {
				switch t = strings.TrimSpace(t); t {
				case "":
				case "!":
					s.template = true
				default:
					for k, v := range byName[t].values {
						s.values[k] = append([]string(nil), v...)
					}
				}
			}
			out = append(out, s)
			if s.template {
				byName[s.name] = s
			}
			continue
		}
		if len(out) == 0 {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(strings.TrimPrefix(v, ">"))
		cur := out[len(out)-1]
		cur.values[k] = append(cur.values[k], v)
	}
	return out
}

// TestARISampleHasNoPassword: ari.conf ships its user without a password.
// Asterisk refuses such a user (res/ari/config.c,
// ast_ari_config_validate_user), so a copy left unchanged opens ARI to
// nobody; a placeholder would open it to whoever read the sample, and an
// ARI user can originate a call straight to the trunk.
func TestARISampleHasNoPassword(t *testing.T) {
	user := DefaultConfig().ARI.User
	found := false
	for _, s := range astSections(readContrib(t, "asterisk/ari.conf")) {
		if s.name != user {
			continue
		}
		found = true
		if s.get("type") != "user" {
			t.Errorf("ari.conf [%s] is no type = user", user)
		}
		if p := s.get("password"); p != "" {
			t.Errorf("ari.conf [%s] ships the password %q: anyone who read the sample can log in to ARI where it is left unchanged; leave it empty", user, p)
		}
	}
	if !found {
		t.Errorf("ari.conf has no [%s] user", user)
	}
}
