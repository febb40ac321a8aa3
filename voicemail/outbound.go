package voicemail

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/tollguard/tollguard"
)

// outboundOpts are the dialout and callback contexts a mailbox's own
// options set, as app_voicemail's apply_option reads them: names
// compared case-insensitively but whole, values as written, the last
// one read winning (an empty one turns [general]'s off).
type outboundOpts struct {
	dialout, callback     *string
	dialoutAt, callbackAt string
}

// set applies one option name=value read at at; "options" holds more,
// split by '|' (apply_option hands it to apply_options).
func (o *outboundOpts) set(name, value, at string) {
	switch strings.ToLower(name) {
	case tollguard.VoicemailDialout:
		o.dialout, o.dialoutAt = &value, at
	case tollguard.VoicemailCallback:
		o.callback, o.callbackAt = &value, at
	case "options":
		o.options(value, at)
	}
}

// options applies a '|'-separated list of name=value pairs
// (apply_options: a pair without '=' is skipped).
func (o *outboundOpts) options(s, at string) {
	for _, opt := range strings.Split(s, "|") {
		if k, v, ok := strings.Cut(opt, "="); ok {
			o.set(k, v, at)
		}
	}
}

// mailboxOptions applies the options of a voicemail.conf mailbox line's
// value: everything after its fourth comma (append_mailbox).
func (o *outboundOpts) mailboxOptions(value, at string) {
	if fields := strings.SplitN(value, ",", 5); len(fields) == 5 {
		o.options(fields[4], at)
	}
}

// add appends to out the mailbox's own non-empty contexts.
func (o *outboundOpts) add(out []tollguard.VoicemailOutbound, key string) []tollguard.VoicemailOutbound {
	if o.dialout != nil && *o.dialout != "" {
		out = append(out, tollguard.VoicemailOutbound{Option: tollguard.VoicemailDialout, Context: *o.dialout, Mailbox: key, Where: o.dialoutAt})
	}
	if o.callback != nil && *o.callback != "" {
		out = append(out, tollguard.VoicemailOutbound{Option: tollguard.VoicemailCallback, Context: *o.callback, Mailbox: key, Where: o.callbackAt})
	}
	return out
}

var _ tollguard.VoicemailOutboundSource = (*Source)(nil)

// VoicemailOutbound lists voicemail.conf's [general] dialout and
// callback, and those of each mailbox app_voicemail loads from it and
// from users.conf (whose categories' lines apply_options_full reads as
// options) that sets its own.
func (s *Source) VoicemailOutbound(ctx context.Context) ([]tollguard.VoicemailOutbound, error) {
	t, ut, err := s.load()
	if err != nil {
		return nil, err
	}
	return outbound(t, ut), nil
}

// outbound is VoicemailOutbound for the trees; it loads mailboxes as
// locateDefined does: users.conf's first, the first definition of each.
func outbound(t, ut *Tree) []tollguard.VoicemailOutbound {
	var out []tollguard.VoicemailOutbound
	if t.Dialout != "" {
		out = append(out, tollguard.VoicemailOutbound{Option: tollguard.VoicemailDialout, Context: t.Dialout, Where: t.DialoutAt})
	}
	if t.Callback != "" {
		out = append(out, tollguard.VoicemailOutbound{Option: tollguard.VoicemailCallback, Context: t.Callback, Where: t.CallbackAt})
	}
	first := map[string]bool{}
	if ut != nil {
		for _, u := range ut.usersBoxes() {
			name, ctx := u.cat.name, t.UsersContext
			key := boxKey(t.SearchContexts, name, ctx)
			if strings.HasPrefix(name, "*") || first[key] {
				continue
			}
			first[key] = true
			var o outboundOpts
			for _, i := range u.cat.boxes {
				b := ut.boxes[i]
				e := b.File.Entries[b.Index]
				o.set(e.Mailbox, b.rawValue(), fmt.Sprintf("%s:%d", b.File.Path, e.Line))
			}
			out = o.add(out, name+"@"+ctx)
		}
	}
	for _, box := range t.Boxes() {
		e := box.File.Entries[box.Index]
		if box.Template || !MailboxContext(box.Context) || (t.AliasesContext != "" && strings.EqualFold(box.Context, t.AliasesContext)) {
			continue
		}
		key := boxKey(t.SearchContexts, e.Mailbox, box.Context)
		if strings.HasPrefix(e.Mailbox, "*") || first[key] {
			continue
		}
		first[key] = true
		var o outboundOpts
		o.mailboxOptions(box.rawValue(), fmt.Sprintf("%s:%d", box.File.Path, e.Line))
		out = o.add(out, e.Mailbox+"@"+box.Context)
	}
	return out
}

var _ tollguard.VoicemailOutboundSource = (*Realtime)(nil)

// VoicemailOutbound lists the rows' own dialout and callback contexts:
// find_user_realtime hands every column of a row to apply_options_full,
// so columns named dialout, callback and options set them, in the
// table's column order. [general]'s, the default of every row, is
// voicemail.conf's (Source.VoicemailOutbound). A row no lookup reads
// (lookupModel: its mailbox defined in the files, or no context without
// searchcontexts) is left out, as the PIN audit leaves its PIN.
func (r *Realtime) VoicemailOutbound(ctx context.Context) ([]tollguard.VoicemailOutbound, error) {
	lk, err := r.lookup()
	if err != nil {
		return nil, err
	}
	db, d, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	fail := func(err error) ([]tollguard.VoicemailOutbound, error) {
		return nil, fmt.Errorf("read realtime voicemail table %s: %w", r.table(), r.scrub(err))
	}
	rows, err := db.QueryContext(ctx, `SELECT * FROM `+r.table()+` WHERE 1 = 0`)
	if err != nil {
		return fail(err)
	}
	all, err := rows.Columns()
	rows.Close()
	if err != nil {
		return fail(err)
	}
	var cols []string
	for _, c := range all {
		switch strings.ToLower(c) {
		case tollguard.VoicemailDialout, tollguard.VoicemailCallback, "options": // only these names: safe to put in SQL
			cols = append(cols, c)
		}
	}
	if len(cols) == 0 {
		return nil, nil
	}
	sel := `0, COALESCE(context, ''), COALESCE(mailbox, '')`
	if !d.odbc {
		sel = `rowid, COALESCE(CAST(context AS TEXT), ''), COALESCE(CAST(mailbox AS TEXT), '')`
	}
	for _, c := range cols {
		sel += ", " + pinValue(c, d.odbc)
	}
	rows, err = db.QueryContext(ctx, `SELECT `+sel+` FROM `+r.table())
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []tollguard.VoicemailOutbound
	for rows.Next() {
		var id int64
		var ctxt, box sql.NullString // an ODBC driver may give NULL for COALESCE(x, '')
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(sql.NullString)
		}
		if err := rows.Scan(append([]any{&id, &ctxt, &box}, vals...)...); err != nil {
			return fail(err)
		}
		m := tollguard.Mailbox{Context: ctxt.String, Mailbox: box.String}
		if lk.known && !lk.readable(m) {
			continue
		}
		where := fmt.Sprintf("%s row %d", r.table(), id)
		if d.odbc {
			where = fmt.Sprintf("%s row of %s", r.table(), label(m))
		}
		var o outboundOpts
		for i, c := range cols {
			for _, v := range driverValues(d.odbc, *vals[i].(*sql.NullString)) {
				o.set(c, v, where+", column "+c)
			}
		}
		out = o.add(out, m.Key())
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}
