//go:build !odbc

package voicemail_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// TestRealtimeODBCNotBuilt: without the odbc tag an ODBC DSN is a
// configuration error that says how to rebuild, and never shows the
// password.
func TestRealtimeODBCNotBuilt(t *testing.T) {
	if voicemail.ODBCSupported() {
		t.Fatal("ODBCSupported in a build without the odbc tag")
	}
	const dsn = "odbc:DSN=asterisk;UID=ast;PWD=s3cretpw"
	const want = "this tollguard was built without ODBC: rebuild with `make build TAGS=odbc` (needs unixodbc-dev)"
	for _, d := range []string{dsn, "odbc:asterisk", "ODBC:Driver=SQLite3;Database=/x.db"} {
		_, err := voicemail.ParseRealtimeDSN(d, "")
		if tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(tollguard.ErrorMessage(err), want) {
			t.Errorf("%q: %v", d, err)
		}
	}
	src := &voicemail.Realtime{DSN: dsn}
	_, _, err := src.Mailboxes(context.Background())
	if tollguard.ErrorCode(err) != tollguard.EINVALID || !strings.Contains(err.Error(), want) {
		t.Errorf("Mailboxes: %v", err)
	}
	if _, err := src.SetPINs(context.Background(), []tollguard.PINChange{{Mailbox: tollguard.Mailbox{Mailbox: "1001", Context: "default"}, NewPIN: "839217"}}); tollguard.ErrorCode(err) != tollguard.EINVALID {
		t.Errorf("SetPINs: %v", err)
	}
	for _, s := range []string{err.Error(), src.Name()} {
		if strings.Contains(s, "s3cretpw") || !strings.Contains(s, "PWD=***") {
			t.Errorf("password not masked: %s", s)
		}
	}
}
