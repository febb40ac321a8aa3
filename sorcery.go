package tollguard

import "strings"

// SorceryConf is what sorcery.conf needs so that ARI can create, change
// and delete PJSIP objects (contrib/sorcery.conf ships the same). With
// plain pjsip.conf (the default "config" wizard) every dynamic-config
// write answers 403; objects from pjsip.conf stay read-only even after
// this, so only extensions created through ARI can be rotated, purged
// and restored.
const SorceryConf = `[res_pjsip]
endpoint=config,pjsip.conf,criteria=type=endpoint
endpoint=astdb,ps_endpoint
auth=config,pjsip.conf,criteria=type=auth
auth=astdb,ps_auth
aor=config,pjsip.conf,criteria=type=aor
aor=astdb,ps_aor
`

// SorceryAdvice tells the admin how to make PJSIP objects writable
// through ARI, for messages about a 403.
func SorceryAdvice() string {
	return "Give sorcery a writable wizard: add to /etc/asterisk/sorcery.conf\n\n" + SorceryConf +
		"\n(see contrib/sorcery.conf) and restart Asterisk. Objects defined in pjsip.conf stay read-only;" +
		" only objects created through ARI (`tollguard ext add`) can be changed, purged and restored."
}

// refusal describes a 403 from Asterisk: its own message, plus the
// sorcery.conf advice unless the message already says what to change
// (sorcery.conf, or ari.conf for a read-only ARI user, whom res_ari
// refuses before sorcery is asked).
func refusal(err error) string {
	msg := ErrorMessage(err)
	if strings.Contains(msg, "sorcery.conf") || strings.Contains(msg, "ari.conf") {
		return msg
	}
	return msg + ". " + SorceryAdvice()
}
