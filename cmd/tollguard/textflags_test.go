package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCLITextFlagsRefuseControls: every command that stores a name,
// note or reason refuses a control character or a byte that is not
// UTF-8 with exit 2, naming the flag and the byte, and stores nothing;
// names in any script pass.
func TestCLITextFlagsRefuseControls(t *testing.T) {
	c := newCLI(t)
	c.seed()
	before := c.ok("account", "show", "acme", "--json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"account", "add", "beta", "--country", "GB", "--currency", "GBP", "--name", "Beta\x1b[31m"}, "--name \"Beta\\x1b[31m\": byte 5 is a control character (ESC)"},
		{[]string{"account", "set", "acme", "--name", "Acme\nLtd"}, "--name \"Acme\\nLtd\": byte 5 is a control character (a line break)"},
		{[]string{"account", "set", "acme", "--name", "Caf\xe9"}, "--name \"Caf\\xe9\": byte 4 (0xe9) is not UTF-8"},
		{[]string{"ext", "add", "1002", "--account", "acme", "--no-asterisk", "--description", "desk\x00"}, "--description \"desk\\x00\": byte 5"},
		{[]string{"ext", "add", "1003", "--account", "acme", "--no-asterisk", "--caller-id", "\"Bob\" <1003>\u0085"}, "--caller-id"},
		{[]string{"ext", "set", "1001", "--description", "\xff"}, "--description \"\\xff\": byte 1 (0xff) is not UTF-8"},
		{[]string{"ext", "set", "1001", "--caller-id", "A\u009b"}, "--caller-id \"A\\u009b\": byte 2 is a control character (U+009B)"},
		{[]string{"ext", "block", "1001", "--reason", "left\r"}, "--reason \"left\\r\": byte 5 is a control character (a carriage return)"},
		{[]string{"ext", "purge", "1001", "--reason", "x\x1b"}, "--reason"},
		{[]string{"account", "intl-block", "acme", "--reason", "IRSF\x07"}, "--reason \"IRSF\\a\": byte 5 is a control character (U+0007)"},
		{[]string{"rule", "add", "deny", "+881", "--note", "sat\tIRSF"}, "--note \"sat\\tIRSF\": byte 4 is a control character (a tab)"},
		{[]string{"credit", "add", "acme", "1.00", "--note", "inv\x7f"}, "--note \"inv\\x7f\": byte 4 is a control character (U+007F)"},
		{[]string{"alerts", "ack", "1", "--by", "me\n"}, "--by"},
		{[]string{"alerts", "test", "--message", "hi\x1b"}, "--message"},
	} {
		code, out, errs := c.run(tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 saying %q", tc.args, code, out, errs, tc.want)
		}
	}
	if after := c.ok("account", "show", "acme", "--json"); after != before {
		t.Errorf("acme changed:\nbefore %s\nafter  %s", before, after)
	}
	var accts, exts, rules []map[string]any
	json.Unmarshal([]byte(c.ok("account", "list", "--json")), &accts)
	json.Unmarshal([]byte(c.ok("ext", "list", "--json")), &exts)
	json.Unmarshal([]byte(c.ok("rule", "list", "--json")), &rules)
	if len(accts) != 1 || len(exts) != 1 || exts[0]["description"] != "" || exts[0]["blocked"] == true || len(rules) != 0 {
		t.Errorf("something was stored:\naccounts %v\nextensions %v\nrules %v", accts, exts, rules)
	}

	// Names in other scripts, and marks that are no control, pass.
	c.ok("account", "set", "acme", "--name", "株式会社アクメ")
	c.ok("ext", "set", "1001", "--description", "Zoë's desk ☎", "--caller-id", "\"Zoë\" <1001>")
	c.ok("rule", "add", "deny", "+225", "--note", "Côte d'Ivoire — IRSF")
	c.ok("credit", "add", "acme", "1.00", "--note", "facture n° 42")
	var a map[string]any
	json.Unmarshal([]byte(c.ok("account", "show", "acme", "--json")), &a)
	if a["name"] != "株式会社アクメ" {
		t.Errorf("name %q", a["name"])
	}
}
