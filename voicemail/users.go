package voicemail

import (
	"strings"
)

// usersBox is a mailbox users.conf defines, as app_voicemail's
// actual_load_config reads it (still in Asterisk 22; deprecated since
// 21): every category but templates and [general] whose hasvoicemail is
// true, named after the category, in [general] userscontext of
// voicemail.conf. Its PIN is what apply_options_full leaves in
// password: the last vmsecret line, or else the first secret or
// password line (the SIP secret) not starting with '*', all of the
// value (no comma splits it), or "" if there is none.
type usersBox struct {
	cat    *category
	pin    string
	locked bool
	src    *Box // the line the PIN is from, nil if none
	// vmLines are the category's vmsecret lines, inherited ones too, in
	// the order apply_options_full reads them: the last is the PIN.
	vmLines []*Box
	// pwLoc is the category's own passwordlocation ("" = [general]'s).
	pwLoc           string
	fullName, email string
}

// fromVMSecret reports whether the PIN is on a vmsecret line.
func (u usersBox) fromVMSecret() bool {
	return u.src != nil && strings.EqualFold(u.src.File.Entries[u.src.Index].Mailbox, "vmsecret")
}

// usersBoxes lists users.conf's mailboxes in the order app_voicemail
// loads them (ast_category_browse: file order, templates skipped).
func (t *Tree) usersBoxes() []usersBox {
	var out []usersBox
	for _, c := range t.cats {
		if c.template || strings.EqualFold(c.name, "general") {
			continue
		}
		u := usersBox{cat: c}
		has, hasSet := "", false
		password := ""
		for _, i := range c.boxes {
			b := &t.boxes[i]
			name, v := b.File.Entries[b.Index].Mailbox, b.rawValue()
			switch {
			case strings.EqualFold(name, "hasvoicemail"):
				// ast_config_option: ast_variable_retrieve returns the
				// category's first line (an inherited one before its
				// own: a template's "no" beats the category's "yes").
				if !hasSet {
					has, hasSet = v, true
				}
			case strings.EqualFold(name, "vmsecret"):
				u.vmLines = append(u.vmLines, b)
				password, u.src = v, b
			case strings.EqualFold(name, "secret") || strings.EqualFold(name, "password"):
				// Only while no PIN is set, and never one starting with
				// '*' (apply_options_full warns and skips it).
				if password == "" && !strings.HasPrefix(v, "*") {
					password, u.src = v, b
				}
			case strings.EqualFold(name, "passwordlocation"):
				u.pwLoc = passwordLocation(v)
			case strings.EqualFold(name, "options"):
				// apply_options: "name=value" pairs split by '|'.
				for _, opt := range strings.Split(v, "|") {
					if k, ov, ok := strings.Cut(opt, "="); ok && strings.EqualFold(k, "passwordlocation") {
						u.pwLoc = passwordLocation(ov)
					}
				}
			case strings.EqualFold(name, "fullname"):
				u.fullName = v
			case strings.EqualFold(name, "email"):
				u.email = v
			}
		}
		if !hasSet {
			has, hasSet = t.hasVoicemail, t.hasVoicemailSet // [general]'s
		}
		if !hasSet || !astTrue(has) {
			continue
		}
		if password == "" && !u.fromVMSecret() {
			u.src = nil // an empty secret line holds no PIN to rewrite
		}
		u.locked = strings.HasPrefix(password, "-")
		u.pin = strings.TrimPrefix(password, "-")
		out = append(out, u)
	}
	return out
}

// rawValue is the line's whole value as Asterisk reads it, "+=" lines
// appended.
func (b Box) rawValue() string {
	if len(b.Appended) > 0 {
		return b.value
	}
	return b.File.Entries[b.Index].value
}
