package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigSyntaxErrorHidesValues: a TOML syntax error quoted the text
// it stopped at, so a secret written unquoted into the config (password =
// hunter2) was partly printed by `config check` and logged by a reload.
// The message now gives the line, the column and what was expected, and
// no text from the file's values.
func TestConfigSyntaxErrorHidesValues(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		secret     string // must not appear, nor any 3 characters of it
		want       string // the position and what to write
	}{
		{"Word", "[ari]\npassword = Zqhunt7\n", "Zqhunt7", "c.toml:2:12: expected a value"},
		{"DigitsThenLetters", "[alerts.webhook]\nsecret = 12Zqx34\n", "12Zqx34", "c.toml:2:"},
		{"DottedDigits", "[ari]\ntoken = 12.34.56\n", "12.34.56", "c.toml:2:"},
		{"HexLike", "api_key = 0xZZqv7\n", "0xZZqv7", "c.toml:1:"},
		{"BadExponent", "api_key = 9e+xq\n", "9e+xq", "c.toml:1:"},
		{"DateLike", "[alerts.email]\npassword = 2024-13-45\n", "2024-13-45", "c.toml:2:"},
		{"HugeNumber", "[ari]\npassword = 99999999999999999999\n", "99999999999999999999", "c.toml:2:"},
		{"BadEscape", "[ari]\npassword = \"se\\qZv\"\n", "\\qZv", "c.toml:2:"},
		{"TwoWords", "[ari]\npassword = \"open\" Zxqvk\n", "Zxqvk", "c.toml:2:"},
		{"UnterminatedArray", "[agi]\nallowed = [\"10.0.0.0/8\" Zqhunt7]\n", "Zqhunt7", "c.toml:2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := newCLI(t).run("config", "check", path)
			if code != exitUsage || !strings.Contains(errs, tc.want) {
				t.Fatalf("config check: exit %d, want %d and %q:\n%s%s", code, exitUsage, tc.want, out, errs)
			}
			// What the admin needs is the position, not the text.
			msg := strings.TrimPrefix(out+errs, "tollguard: config has errors:\n  "+path)
			for i := 0; i+3 <= len(tc.secret); i++ {
				if frag := tc.secret[i : i+3]; strings.Contains(msg, frag) {
					t.Fatalf("config check echoes %q of the value %q:\n%s", frag, tc.secret, msg)
				}
			}
		})
	}
}

// TestConfigSyntaxErrorPosition: an error at a line's end was reported
// on the next line (the TOML reader's own count), which may not exist.
func TestConfigSyntaxErrorPosition(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[gate]\ndefault_country = \"GB\"\n[log\n", "c.toml:3:5: expected '.' or ']'"},
		{"[log\nlevel = \"info\"\n", "c.toml:1:5: expected '.' or ']'"},
		{"[gate\n\n\n", "c.toml:1:6:"},
		{"[gate]\ndefault_country =\n", "c.toml:2:18: expected a value"},
		// Columns count characters, not bytes.
		{"[alerts.email]\nfrom = \"Zürich\" ?\n", "c.toml:2:16: expected the end of the line"},
		// The byte order mark the reader skips is no column.
		{"\ufeff[gate]\ndefault_country =\n", "c.toml:2:18: expected a value"},
		{"\ufeff[log\nlevel = \"info\"\n", "c.toml:1:5: expected '.' or ']'"},
		{"\ufeff[gate]\ndefault_country = \"GB\"\n[log\n", "c.toml:3:5: expected '.' or ']'"},
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := newCLI(t).run("config", "check", path)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("config check of %q: exit %d, want %d and %q:\n%s%s", tc.text, code, exitUsage, tc.want, out, errs)
		}
	}
}
