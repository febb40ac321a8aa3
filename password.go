package tollguard

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
)

// MinGeneratedPassword is the shortest password tollguard generates.
const MinGeneratedPassword = 20

// passwordAlphabet is SIP- and config-safe: letters and digits without
// the look-alikes (I, O, l, o, 0, 1), and "-_." only, so a password never
// needs quoting in pjsip.conf (";" starts a comment), in a provisioning
// XML file or in a phone's web form. 59 symbols: 24 of them give 141
// bits.
const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789-_."

// GeneratePassword returns n random characters from passwordAlphabet,
// read from r (crypto/rand in production) without modulo bias.
func GeneratePassword(r io.Reader, n int) (string, error) {
	if n < MinGeneratedPassword {
		n = MinGeneratedPassword
	}
	return randomFromAlphabet(r, passwordAlphabet, n)
}

// GeneratePIN returns n random digits.
func GeneratePIN(r io.Reader, n int) (string, error) {
	return randomFromAlphabet(r, "0123456789", n)
}

func randomFromAlphabet(r io.Reader, alphabet string, n int) (string, error) {
	limit := 256 - 256%len(alphabet) // bytes at or above limit would bias the result
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// PasswordWeakness returns why password is weak for the auth object of
// extension (username is the auth's username), or nil when it is not.
// The rules: empty, equal to the username or extension, on the default
// list, shorter than the minimum, a zxcvbn score under the threshold,
// or under it once the username, the extension and known (the line's
// account and names) are taken out: a scanner registering as 1001 knows
// 1001, and zxcvbn scores "1001pass1001" as three words, 10^8 guesses.
func PasswordWeakness(password, username, extension string, s AuditSettings, known ...string) []string {
	s = s.WithDefaults()
	if password == "" {
		return []string{"empty"}
	}
	var why []string
	lower := strings.ToLower(password)
	if username != "" && lower == strings.ToLower(username) {
		why = append(why, "equal to the username")
	}
	if extension != "" && extension != username && lower == strings.ToLower(extension) {
		why = append(why, "equal to the extension")
	}
	for _, d := range s.PasswordDefaults {
		if lower == strings.ToLower(d) {
			why = append(why, "a well-known default password")
			break
		}
	}
	if n := utf8.RuneCountInString(password); n < s.PasswordMinLength {
		why = append(why, fmt.Sprintf("shorter than %d characters (%d)", s.PasswordMinLength, n))
	}
	// The line's own: each word of a name ("Alice Smith <1001>", "Acme
	// Corp"), as a password spells it.
	var own []string
	for _, u := range []string{username, extension} {
		if u != "" {
			own = append(own, u)
		}
	}
	for _, k := range known {
		own = append(own, nameWords(k)...)
	}
	inputs := append([]string{"asterisk", "pjsip", "sip", "voip", "phone"}, own...)
	score := zxcvbn.PasswordStrength(password, inputs).Score
	if score < s.PasswordMinScore {
		why = append(why, fmt.Sprintf("guessable: zxcvbn score %d of 4, below %d", score, s.PasswordMinScore))
		return why
	}
	if rest, cut := withoutKnown(lower, own); cut {
		if rest == "" {
			why = append(why, "made only of the line's own names and numbers")
		} else if rs := zxcvbn.PasswordStrength(rest, inputs).Score; rs < s.PasswordMinScore {
			why = append(why, fmt.Sprintf("guessable once the line's own names and numbers are taken out: zxcvbn score %d of 4, below %d", rs, s.PasswordMinScore))
		}
	}
	return why
}

// withoutKnown removes every case-insensitive occurrence of the known
// strings of 3 characters or more (shorter ones would cut ordinary
// letters out) from lower, the lowercased password.
func withoutKnown(lower string, known []string) (string, bool) {
	rest := lower
	for _, k := range known {
		if k = strings.ToLower(strings.TrimSpace(k)); utf8.RuneCountInString(k) >= 3 {
			rest = strings.ReplaceAll(rest, k, "")
		}
	}
	return rest, rest != lower
}

// nameWords splits a name into its words of letters and digits.
func nameWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}
