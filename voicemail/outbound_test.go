package voicemail_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// outboundOf lists src's dialout and callback contexts as
// "option context mailbox file:line" ("[general]" for the default).
func outboundOf(t *testing.T, src tollguard.VoicemailOutboundSource) []string {
	t.Helper()
	outs, err := src.VoicemailOutbound(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outs {
		who := o.Mailbox
		if who == "" {
			who = "[general]"
		}
		got = append(got, fmt.Sprintf("%s %s %s %s", o.Option, o.Context, who, filepath.Base(o.Where)))
	}
	return got
}

// TestVoicemailOutbound: the dialout and callback contexts read as
// app_voicemail reads them (populate_defaults, then apply_options on a
// mailbox line's options, or apply_options_full on a users.conf
// category's lines).
func TestVoicemailOutbound(t *testing.T) {
	dir := filepath.Join("testdata", "dialout")
	none := filepath.Join(t.TempDir(), "users.conf") // no users.conf
	for _, tc := range []struct {
		name, conf, users string
		want              []string
	}{
		// [general] callback is empty: no callback. 1002's own empty
		// dialout turns [general]'s off; nothing names that.
		{"general", "general.conf", none, []string{"dialout fromvm [general] general.conf:3"}},
		{"mailbox", "mailbox.conf", none, []string{
			"dialout fromvm 4069@default mailbox.conf:4", "callback fromvm 4069@default mailbox.conf:4",
			"callback outbound 4070@default mailbox.conf:6",
			"dialout outbound 4071@default mailbox.conf:8",
			"dialout second 4072@default mailbox.conf:10",
		}},
		// The template's line is 5001@office's (inherited), and the
		// included line is in [office] too.
		{"template", "template.conf", none, []string{
			"dialout outbound [general] template.conf:3",
			"callback outbound 5001@office template.conf:5",
			"dialout fromvm 5002@office template-boxes.conf:1",
		}},
		// users.conf's mailboxes, in [general] userscontext; 6003 has
		// no voicemail.
		{"users", filepath.Join("users", "voicemail.conf"), "", []string{
			"dialout outbound 6001@office users.conf:6",
			"callback fromvm 6002@office users.conf:9",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &voicemail.Source{Path: filepath.Join(dir, tc.conf), UsersConf: tc.users}
			if got := outboundOf(t, src); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestVoicemailOutboundRealtime: find_user_realtime hands every column
// of a row to apply_options_full, so dialout, callback and options
// columns set a realtime mailbox's contexts; NULL and empty values set
// none.
func TestVoicemailOutboundRealtime(t *testing.T) {
	file, _ := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, callback TEXT, dialout TEXT, options TEXT);
INSERT INTO voicemail VALUES (1, 'default', '1001', '482916', NULL, 'outbound', NULL);
INSERT INTO voicemail VALUES (2, 'default', '1002', '593027', 'fromvm', '', 'dialout=viaoptions');
INSERT INTO voicemail VALUES (3, 'default', '1003', '604138', NULL, NULL, NULL);`)
	got := outboundOf(t, &voicemail.Realtime{DSN: file})
	want := []string{
		"dialout outbound 1001@default voicemail row 1, column dialout",
		"dialout viaoptions 1002@default voicemail row 2, column options", "callback fromvm 1002@default voicemail row 2, column callback",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// A table without the columns (Asterisk's ast-db-manage schema has
	// callback and dialout; older hand-made ones may not): none.
	plain, _ := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT);
INSERT INTO voicemail VALUES (1, 'default', '1001', '482916');`)
	if got := outboundOf(t, &voicemail.Realtime{DSN: plain}); len(got) != 0 {
		t.Errorf("table without the columns: %q", got)
	}
}

// TestVoicemailOutboundRealtimeHidden: find_user returns a mailbox
// voicemail.conf defines without asking the table, and no lookup reads
// a row without a context unless searchcontexts is on, so such a row's
// dialout is not in force and not reported (the PIN audit reads the
// same rows so). Without voicemail.conf, every row counts.
func TestVoicemailOutboundRealtimeHidden(t *testing.T) {
	file, _ := realtimeDB(t, `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, dialout TEXT);
INSERT INTO voicemail VALUES (1, 'default', '1001', '482916', 'hidden');
INSERT INTO voicemail VALUES (2, 'default', '1002', '593027', 'outbound');
INSERT INTO voicemail VALUES (3, NULL, '1003', '604138', 'nocontext');`)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"defined in voicemail.conf", "[general]\n[Default]\n1001 => 111999,Ann\n", []string{
			"dialout outbound 1002@default voicemail row 2, column dialout",
		}},
		{"searchcontexts", "[general]\nsearchcontexts = yes\n[office]\n1001 => 111999,Ann\n", []string{
			"dialout outbound 1002@default voicemail row 2, column dialout",
			"dialout nocontext 1003@ voicemail row 3, column dialout",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, "voicemail.conf")
			if err := os.WriteFile(conf, []byte(tc.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			src := &voicemail.Realtime{DSN: file, Conf: &voicemail.Source{Path: conf, UsersConf: filepath.Join(dir, "users.conf")}}
			if got := outboundOf(t, src); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	if got := outboundOf(t, &voicemail.Realtime{DSN: file}); len(got) != 3 {
		t.Errorf("without voicemail.conf: %q, want all three rows", got)
	}
}
