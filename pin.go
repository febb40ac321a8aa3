package tollguard

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

//go:embed pins_common.txt
var commonPINsText string

var commonPINs = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonPINsText, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[l] = true
		}
	}
	return m
})

// IsCommonPIN reports whether pin is on the shipped common-PIN list
// (pins_common.txt, with its sources).
func IsCommonPIN(pin string) bool { return commonPINs()[pin] }

// PINWeakness returns why a voicemail PIN is weak for mailbox, or nil.
// pin is without the leading "-" that stops users changing it. The
// rules (design.md §4): on the common-PIN list, equal to the mailbox
// or its reverse, one repeated digit, an ascending or descending run,
// shorter than minLen. A PIN starting with "*" is not weak: no caller
// can type it (see PINUnusable).
func PINWeakness(pin, mailbox string, minLen int) []string {
	if pin == "" {
		return []string{"empty: anyone can open the mailbox"}
	}
	if PINUnusable(pin) {
		return nil
	}
	var why []string
	if IsCommonPIN(pin) {
		why = append(why, "on the common-PIN list")
	}
	if pin == mailbox {
		why = append(why, "equal to the mailbox number")
	} else if len(pin) > 1 && pin == reverseDigits(mailbox) {
		why = append(why, "the mailbox number reversed")
	}
	if len(pin) > 1 && strings.Count(pin, pin[:1]) == len(pin) {
		why = append(why, "one repeated digit")
	}
	if dir := digitRun(pin); dir != "" {
		why = append(why, "an "+dir+" run of digits")
	}
	if len(pin) < minLen {
		why = append(why, fmt.Sprintf("shorter than %d digits (%d)", minLen, len(pin)))
	}
	return why
}

func reverseDigits(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// digitRun returns "ascending" or "descending" when every digit of s
// follows the previous one by +1 or -1 (wrapping 9→0 and 0→9, as in
// 67890), "" otherwise. Three digits make a run.
func digitRun(s string) string {
	if len(s) < 3 {
		return ""
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return ""
		}
	}
	up, down := true, true
	for i := 1; i < len(s); i++ {
		d := (int(s[i]) - int(s[i-1]) + 10) % 10
		up = up && d == 1
		down = down && d == 9
	}
	switch {
	case up:
		return "ascending"
	case down:
		return "descending"
	}
	return ""
}

// PINUnusable reports whether no caller can ever enter pin: app_voicemail
// takes a "*" typed first as a jump to extension a, and warns at load
// that such a password "must be reset in voicemail.conf"; and a blank
// (append_mailbox keeps the ones before the comma: "2222 ,Bob";
// res_config_sqlite3 keeps all, res_config_odbc leading ones) or
// control character is no key of a keypad, and vm_authenticate
// compares the whole string.
func PINUnusable(pin string) bool { return PINUnusableReason(pin) != "" }

// blank is a blank or control character: no key of a keypad.
func blank(r rune) bool { return r < 33 }

// PINUnusableReason says why no caller can enter pin, and what to do,
// or "".
func PINUnusableReason(pin string) string {
	switch {
	case strings.HasPrefix(pin, "*"):
		return "begins with '*', which no caller can type (a '*' jumps to extension a): nobody can open this mailbox; set a PIN of digits"
	case strings.IndexFunc(pin, blank) >= 0:
		return fmt.Sprintf("is %q with its blanks: app_voicemail keeps them (a blank before a voicemail.conf line's comma, any in a value res_config_sqlite3 reads, a leading one res_config_odbc keeps), and no keypad can type one, so nobody can open this mailbox; remove them (the PIN is then %q, which the next run judges)", pin, strings.Join(strings.FieldsFunc(pin, blank), ""))
	}
	return ""
}
