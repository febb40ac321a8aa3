package main

// Tests that contrib's Asterisk samples are safe as copied: admins
// install them unchanged.

import (
	"bufio"
	"regexp"
	"slices"
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

// TestSamplePJSIPIsNoWayOut: the endpoints pjsip.conf shows cannot place
// calls past the gate. Each trunk extensions.conf dials is an endpoint
// there, matched by address only (identify_by = ip and an identify
// section: by username, an endpoint without inbound auth is anyone who
// sends its name), refusing the far end's transfers and not following
// its redirects inside chan_pjsip, whose inbound calls run in a context
// with no way out: no gate, no trunk Dial, no include, no DISA. Phones
// are in a gated context and identified by their credentials; there is
// no anonymous endpoint.
func TestSamplePJSIPIsNoWayOut(t *testing.T) {
	gated := DefaultConfig().Audit.GatedContexts
	pjsip := astSections(readContrib(t, "asterisk/pjsip.conf"))
	ext := astSections(readContrib(t, "asterisk/extensions.conf"))

	contexts := map[string][]string{} // the dialplan lines of each context
	for _, s := range ext {
		for _, k := range []string{"exten", "same", "include"} {
			for _, v := range s.values[k] {
				contexts[s.name] = append(contexts[s.name], k+" => "+v)
			}
		}
	}
	trunkDial := regexp.MustCompile(`Dial\(PJSIP/[^,)]*@([A-Za-z0-9_.-]+)`)
	trunks := map[string]bool{}
	for _, lines := range contexts {
		for _, l := range lines {
			for _, m := range trunkDial.FindAllStringSubmatch(l, -1) {
				trunks[m[1]] = true
			}
		}
	}
	if len(trunks) == 0 {
		t.Fatal("extensions.conf dials no trunk")
	}

	endpoints := map[string]astSection{}
	identified := map[string]bool{}
	for _, s := range pjsip {
		if s.template {
			continue
		}
		switch s.get("type") {
		case "endpoint":
			endpoints[s.name] = s
		case "identify":
			if s.get("match") != "" {
				identified[s.get("endpoint")] = true
			}
		}
	}
	if _, ok := endpoints["anonymous"]; ok {
		t.Error("pjsip.conf defines an anonymous endpoint: anyone may call into its context without a password")
	}
	phones := 0
	for name, ep := range endpoints {
		if trunks[name] {
			continue
		}
		phones++
		if ep.get("auth") == "" {
			t.Errorf("endpoint %s: no auth, and it is no trunk extensions.conf dials", name)
		}
		if id := ep.get("identify_by"); id != "username" {
			t.Errorf("endpoint %s: identify_by %q, want username: a phone is known by its credentials, never by an address", name, id)
		}
		if c := ep.get("context"); !slices.Contains(gated, c) {
			t.Errorf("endpoint %s: context %q is not a gated context %v", name, c, gated)
		}
	}
	if phones == 0 {
		t.Error("pjsip.conf shows no phone")
	}
	for name := range trunks {
		ep, ok := endpoints[name]
		if !ok {
			t.Errorf("extensions.conf dials @%s, which pjsip.conf does not show: admins would write that trunk themselves", name)
			continue
		}
		if ep.get("auth") != "" {
			continue // a trunk that authenticates to us is a phone as far as identify goes
		}
		if id := ep.get("identify_by"); id != "ip" {
			t.Errorf("trunk %s: identify_by %q, want ip: with no inbound auth, identified by username it is anyone whose From user is %s", name, id, name)
		}
		if !identified[name] {
			t.Errorf("trunk %s: no identify section with a match names it", name)
		}
		if v := ep.get("allow_transfer"); v != "no" {
			t.Errorf("trunk %s: allow_transfer %q, want no: the far end's REFER sends your caller to any number its context reaches", name, v)
		}
		if v := ep.get("redirect_method"); v != "" && v != "user" {
			t.Errorf("trunk %s: redirect_method %q: only user hands a 302 to Dial, whose i option ignores it", name, v)
		}
		c := ep.get("context")
		if slices.Contains(gated, c) {
			t.Errorf("trunk %s: its inbound calls run in %s, a context with the outbound route: dial-through", name, c)
			continue
		}
		lines, ok := contexts[c]
		if !ok {
			t.Errorf("trunk %s: context %q is not in extensions.conf", name, c)
			continue
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "include") || strings.Contains(l, "tollguard-outbound") || trunkDial.MatchString(l) ||
				strings.Contains(l, "DISA(") || strings.Contains(l, "Goto(") {
				t.Errorf("trunk %s: its context %s has a way out for callers from outside: %s", name, c, l)
			}
		}
	}
}

// TestSamplePhonesHaveNoPassword: the phones' auths in pjsip.conf ship
// without a password. Asterisk refuses to load such an auth (res_pjsip
// config_auth.c auth_apply), so a copied phone cannot register or call
// until the admin gives it one; a placeholder would be one published
// password on every PBX that kept it, and long enough that the
// passwords audit passes it.
func TestSamplePhonesHaveNoPassword(t *testing.T) {
	secs := astSections(readContrib(t, "asterisk/pjsip.conf"))
	auths := map[string]astSection{}
	for _, s := range secs {
		if !s.template && s.get("type") == "auth" {
			auths[s.name] = s
		}
	}
	phones := 0
	for _, s := range secs {
		if s.template || s.get("type") != "endpoint" || s.get("auth") == "" {
			continue
		}
		phones++
		a, ok := auths[s.get("auth")]
		if !ok {
			t.Errorf("endpoint %s names auth %s, which pjsip.conf does not show", s.name, s.get("auth"))
			continue
		}
		if p := a.get("password"); p != "" {
			t.Errorf("auth %s ships the password %q: every PBX that kept the sample has it; leave it empty (Asterisk then refuses the auth)", a.name, p)
		}
	}
	if phones == 0 {
		t.Error("pjsip.conf shows no phone with an auth")
	}
}
