package dialplan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dialHasOption reports whether Dial options opts hold the letter o, as
// main/app.c:parse_options reads them: a letter's "(...)" argument is
// skipped, so the i inside b(tollguard-callee^s^1(...)) is no i option.
func dialHasOption(opts string, o byte) bool {
	for i := 0; i < len(opts); i++ {
		if opts[i] == '(' {
			depth := 1
			for i++; i < len(opts) && depth > 0; i++ {
				switch opts[i] {
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			i--
			continue
		}
		if opts[i] == o {
			return true
		}
	}
	return false
}

// TestDocumentedDialsIgnoreRedirects: every Dial to a PJSIP endpoint the
// docs, the include and contrib's extensions.conf show has the i option,
// the Dials that ring phones too, not only the trunk's. A phone (or any
// endpoint with the default redirect_method = user) that answers Dial's
// INVITE with a 302 hands Dial the user part of its Contact URI
// (res_pjsip_session.c session_inv_on_redirected, unescaped by pjsip), and
// app_dial.c do_forward takes a forward holding "/" as a dial string of
// its own: Contact <sip:PJSIP/00252612345678%40trunk@198.51.100.9> makes
// Dial call PJSIP/00252612345678@trunk itself, with no dialplan, so no
// gate, no limit and no record. A thief with one phone's password calls
// its own extension and answers so.
func TestDocumentedDialsIgnoreRedirects(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{"tollguard.conf", "../README.md", "../contrib/asterisk/extensions.conf"}, docs...)
	phones, trunks := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for rest := line; ; {
				j := strings.Index(rest, "Dial(PJSIP/")
				if j < 0 {
					break
				}
				rest = rest[j+len("Dial("):]
				// The application's data: to the ")" that closes Dial(.
				depth, end := 1, 0
				for ; end < len(rest) && depth > 0; end++ {
					switch rest[end] {
					case '(':
						depth++
					case ')':
						depth--
					}
				}
				if depth != 0 {
					t.Errorf("%s:%d: unbalanced Dial(: %s", f, i+1, strings.TrimSpace(line))
					break
				}
				args := separateArgs(rest[:end-1], ',', true, 4) // peers, timeout, options, URL
				opts := ""
				if len(args) > 2 {
					opts = args[2]
				}
				if strings.Contains(args[0], "@") {
					trunks++
				} else {
					phones++
				}
				if !dialHasOption(opts, 'i') {
					t.Errorf("%s:%d: Dial(%s) has no i option: the endpoint it rings can answer with a 302 whose Contact user is a dial string (PJSIP/NUMBER%%40trunk), and Dial calls it past the gate: %s",
						f, i+1, args[0], strings.TrimSpace(line))
				}
			}
		}
	}
	if phones == 0 || trunks == 0 {
		t.Errorf("found %d Dials to phones and %d to trunks: the docs no longer show both", phones, trunks)
	}
}

func TestDialHasOption(t *testing.T) {
	for opts, want := range map[string]bool{
		"i": true, "ib(x^s^1(1))": true, "b(tollguard-callee^s^1(${TOLLGUARD_MAXSEC}))i": true,
		"": false, "b(tollguard-callee^s^1(${TOLLGUARD_MAXSEC}))": false, "tT": false, "U(ivr)": false,
	} {
		if got := dialHasOption(opts, 'i'); got != want {
			t.Errorf("dialHasOption(%q, 'i') = %v, want %v", opts, got, want)
		}
	}
}
