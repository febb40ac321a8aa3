package tollguard_test

import (
	"testing"

	"github.com/tollguard/tollguard"
)

// tollguard reads a bool field in either spelling: Asterisk's read-back
// ("true") and what an admin or an older Asterisk gives ("yes").
func TestConfigObjectBoolReadsBothSpellings(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "yes": true, "1": true, "on": true, "false": false, "no": false, "0": false, "": false} {
		if got := (tollguard.ConfigObject{{Attribute: "rewrite_contact", Value: v}}).Bool("rewrite_contact"); got != want {
			t.Errorf("rewrite_contact %q read as %v, want %v", v, got, want)
		}
	}
}
