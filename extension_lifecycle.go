package tollguard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ARI puts object ids into the URL unescaped, and Asterisk splits
// lists of them on commas, so extension names stay plain.
var extensionNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$`)

// ValidExtensionName returns an EINVALID error unless name is usable
// as a PJSIP object id.
func ValidExtensionName(name string) error {
	if !extensionNameRE.MatchString(name) || name == "anonymous" {
		return Errorf(EINVALID, "extension name %q: use 1-63 letters, digits and _.+- (starting with a letter or digit), not \"anonymous\"", name)
	}
	return nil
}

// ValidCallerID returns an EINVALID error for a caller ID with a
// control character: sent to Asterisk as the endpoint's callerid, a line
// break would end up in every FastAGI request of its calls.
func ValidCallerID(s string) error {
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return Errorf(EINVALID, "caller ID %q: no line breaks, tabs or other control characters; write it as \"Name\" <1001>", s)
	}
	return nil
}

// ValidContext returns an EINVALID error unless name can be a dialplan
// context: no blank, control character or dialplan punctuation, which
// Asterisk would read as a context of another name (or none).
func ValidContext(name string) error {
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r <= 0x20 || r == 0x7f || strings.ContainsRune("[](),;|\"'", r)
	}); i >= 0 {
		return Errorf(EINVALID, "context %q: a dialplan context name has no spaces, control characters or [](),;|\"' (e.g. from-internal)", name)
	}
	return nil
}

// ExtensionSpec is what `tollguard ext add` asks for.
type ExtensionSpec struct {
	Name        string
	Account     string
	CallerID    string // "Alice <1001>"
	Description string
	Context     string // "" = the template's
	CIDRs       []netip.Prefix
	NoAsterisk  bool // record in the store only
}

// NewExtension is what AddExtension created.
type NewExtension struct {
	Extension *Extension
	Password  string   // the SIP password; "" with NoAsterisk
	Objects   []string // "auth/1009", "aor/1009", "endpoint/1009"
}

// AddExtension creates an extension: the account's quota is checked
// and the extension recorded in the store in one transaction before
// anything is written to Asterisk; then the PJSIP auth, aor and
// endpoint are created in that order, with a generated password. If a
// step fails, what was created is deleted again, store row included.
func (env *AuditEnv) AddExtension(ctx context.Context, spec ExtensionSpec) (*NewExtension, error) {
	s := env.Settings.WithDefaults()
	if err := ValidExtensionName(spec.Name); err != nil {
		return nil, err
	}
	if spec.Account == "" {
		return nil, Errorf(EINVALID, "extension %s: give its account (--account)", spec.Name)
	}
	if err := ValidCallerID(spec.CallerID); err != nil {
		return nil, err
	}
	if err := ValidContext(spec.Context); err != nil {
		return nil, err
	}
	acct, err := env.Store.Account(ctx, spec.Account)
	if err != nil {
		return nil, err
	}
	if !spec.NoAsterisk {
		if env.Asterisk == nil {
			return nil, Errorf(EUNAVAILABLE, "ARI is not configured, so tollguard cannot create the PJSIP objects; configure [ari], or pass --no-asterisk to record the extension in tollguard only")
		}
		// Refuse to take over objects that already exist: their
		// password is not ours to know.
		for _, typ := range []string{"endpoint", "auth", "aor"} {
			_, err := env.Asterisk.ConfigObject(ctx, typ, spec.Name)
			if err == nil {
				return nil, Errorf(ECONFLICT, "Asterisk already has a PJSIP %s named %s; nothing was created (to manage an existing extension, record it with --no-asterisk)", typ, spec.Name)
			}
			if ErrorCode(err) != ENOTFOUND {
				return nil, Errorf(ErrorCode(err), "check Asterisk for %s %s (nothing was created): %s; "+
					"once ARI answers, try again, or pass --no-asterisk to record an extension that lives in pjsip.conf", typ, spec.Name, ErrorMessage(err))
			}
		}
	}
	ext := &Extension{Name: spec.Name, Account: acct.ID, CIDRs: spec.CIDRs, CallerID: spec.CallerID,
		Description: spec.Description, Managed: !spec.NoAsterisk, CreatedAt: env.now()}
	creation, err := env.Store.CreateExtensionWithinQuota(ctx, ext, env.now())
	if err != nil {
		return nil, err
	}
	out := &NewExtension{Extension: ext}
	if spec.NoAsterisk {
		return out, nil
	}
	pw, err := env.newPassword(spec.Name, s)
	if err != nil {
		env.undoAdd(ctx, spec.Name, creation, nil)
		return nil, err
	}
	context := spec.Context
	if context == "" {
		context = s.Endpoint.Context
	}
	steps := []struct {
		typ    string
		fields []ConfigField
	}{
		{"auth", []ConfigField{{"auth_type", "userpass"}, {"username", spec.Name}, {"password", pw}}},
		// As contrib/asterisk/pjsip.conf: a second registration with the
		// same password is refused (FailedACL, which fail2ban counts)
		// rather than displacing the phone, unless qualify found the
		// registered contact gone (a phone rebooted, a NAT binding moved).
		{"aor", withExtraFields([]ConfigField{{"max_contacts", strconv.Itoa(s.Endpoint.MaxContacts)}, {"remove_existing", "no"},
			{"remove_unavailable", "yes"}, {"qualify_frequency", "60"}}, s.Endpoint.AORExtra)},
		{"endpoint", withExtraFields(endpointFields(spec, acct.ID, context, s.Endpoint), s.Endpoint.EndpointExtra)},
	}
	var created []string
	for _, st := range steps {
		if _, err := env.Asterisk.PutConfigObject(ctx, st.typ, spec.Name, st.fields); err != nil {
			undone, clean := env.undoAdd(ctx, spec.Name, creation, created)
			if ErrorCode(err) == EFORBIDDEN {
				kept := ", so nothing was kept"
				if !clean {
					kept = " (" + undone + ")"
				}
				return nil, Errorf(EFORBIDDEN, "Asterisk refused to create the PJSIP %s %s%s: %s. Or pass --no-asterisk to record the extension in tollguard only.",
					st.typ, spec.Name, kept, refusal(err))
			}
			return nil, fmt.Errorf("create PJSIP %s %s (%s): %w", st.typ, spec.Name, undone, err)
		}
		created = append(created, st.typ)
	}
	for _, c := range created {
		out.Objects = append(out.Objects, c+"/"+spec.Name)
	}
	out.Password = pw
	env.logger().Info("extension created", LogExtension, spec.Name, LogAccount, acct.ID, "context", context)
	return out, nil
}

func listOrNothing(created []string) string {
	if len(created) == 0 {
		return "nothing"
	}
	return strings.Join(created, ", ")
}

// undoAdd deletes what a failed AddExtension created: its PJSIP
// objects, newest first, then its store row and creation record. Only
// while the row is still the add's own (by creation, not by name): one
// removed while the add ran (ext rm, after ext purge) may be another
// add's line by now, and so may the PJSIP objects of its name, so then
// nothing is deleted. The row goes last: while it holds the name, no
// other add can record the line and write objects this undo would then
// delete. If a PJSIP object could not be deleted, the row stays (its
// creation record goes): `ext purge` will not take a lone auth or aor of
// a name with no row and no endpoint, and with the row `ext purge --now`
// then `ext rm` remove the leftovers. undone says what was rolled back,
// for the error; clean is true when everything was.
func (env *AuditEnv) undoAdd(ctx context.Context, name string, creation int64, created []string) (undone string, clean bool) {
	ctx = context.WithoutCancel(ctx)
	objects := make([]string, len(created))
	for i, c := range created {
		objects[i] = c + "/" + name
	}
	check := fmt.Sprintf("check with `tollguard ext show %s` and `asterisk -rx 'pjsip show endpoint %s'`", name, name)
	switch err := env.Store.CheckExtensionCreation(ctx, name, creation); {
	case ErrorCode(err) == ENOTFOUND || ErrorCode(err) == ECONFLICT:
		env.logger().Warn("failed extension add not rolled back: its line was removed while it ran; the line of that name and its PJSIP objects were left alone",
			LogExtension, name, "created", strings.Join(objects, " "), LogError, err)
		undone = fmt.Sprintf("not rolled back: %s; the line %s and the PJSIP objects named %s were left alone", ErrorMessage(err), name, name)
		if len(objects) > 0 {
			undone += fmt.Sprintf(", though this add had created %s: %s", strings.Join(objects, ", "), check)
		}
		return undone, false
	case err != nil:
		// Whose row it is is unknown: its objects stay with it.
		todo := fmt.Sprintf("`tollguard ext rm %s`", name)
		if len(objects) > 0 {
			todo = fmt.Sprintf("`tollguard ext purge %s --now`, then %s", name, todo)
		}
		env.logger().Error("could not roll back the store row of a failed extension add; remove the line with "+todo,
			LogExtension, name, "created", strings.Join(objects, " "), LogError, err)
		return fmt.Sprintf("not rolled back: the store could not be read (%s); remove the line with %s", ErrorMessage(err), todo), false
	}
	cleanup := fmt.Sprintf("`tollguard ext purge %s --now`, then `tollguard ext rm %s`", name, name)
	var deleted, failed []string
	for i := len(created) - 1; i >= 0; i-- {
		if err := env.Asterisk.DeleteConfigObject(ctx, created[i], name); err != nil && ErrorCode(err) != ENOTFOUND {
			env.logger().Error("could not roll back a PJSIP object; the line stays recorded: remove it with "+cleanup, LogExtension, name, "type", created[i], LogError, err)
			failed = append(failed, objects[i])
			continue
		}
		deleted = append([]string{created[i]}, deleted...)
	}
	undone = "rolled back " + listOrNothing(deleted)
	clean = len(failed) == 0
	undo := env.Store.UndoCreateExtension
	if !clean {
		undone += "; could not delete " + strings.Join(failed, ", ")
		undo = env.Store.ForgetExtensionCreation
	}
	switch err := undo(ctx, name, creation); {
	case ErrorCode(err) == ENOTFOUND || ErrorCode(err) == ECONFLICT:
		// Removed (ext purge, ext rm) while its objects were being
		// deleted: what was deleted may have been written again since.
		env.logger().Warn("failed extension add: its line was removed while it was rolled back", LogExtension, name, LogError, err)
		return undone + fmt.Sprintf("; then %s: %s", ErrorMessage(err), check), false
	case err != nil && clean:
		env.logger().Error("could not roll back the store row; remove it with `tollguard ext rm EXT` (the extension field names it)", LogExtension, name, LogError, err)
		return undone + fmt.Sprintf(", not the store row (%s): remove it with `tollguard ext rm %s`", ErrorMessage(err), name), false
	case err != nil:
		// The row stays all the same, and so does its creation record.
		env.logger().Error("could not forget the creation of a failed extension add", LogExtension, name, LogError, err)
	}
	if !clean {
		return undone + ", so the line stays recorded: remove it with " + cleanup, false
	}
	return undone, true
}

func endpointFields(spec ExtensionSpec, account, context string, t EndpointTemplate) []ConfigField {
	// A new object has no codecs yet, so allow= alone sets them (no
	// disallow=all needed).
	// rewrite_contact: the contact holds the address the REGISTER came
	// from, which the "registered from outside its networks" check
	// reads (README, Asterisk setup); the rest make NAT work with it.
	f := []ConfigField{{"context", context}, {"allow", t.Codecs},
		{"auth", spec.Name}, {"aors", spec.Name}, {"accountcode", account},
		{"rewrite_contact", "yes"}, {"rtp_symmetric", "yes"}, {"force_rport", "yes"}}
	if t.Transport != "" {
		f = append(f, ConfigField{"transport", t.Transport})
	}
	if spec.CallerID != "" {
		f = append(f, ConfigField{"callerid", spec.CallerID})
	}
	return f
}

// withExtraFields adds the admin's fields to f; one that f already has
// takes the admin's value (sent once: a field twice is ambiguous).
// Asterisk applies them in order, so a disallow goes before the allow,
// as in pjsip.conf: after it, disallow = "all" would leave the endpoint
// no codec, and every call would fail (488).
func withExtraFields(f []ConfigField, extra map[string]string) []ConfigField {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
next:
	for _, k := range keys {
		for i := range f {
			if f[i].Attribute == k {
				f[i].Value = extra[k]
				continue next
			}
		}
		if i := slices.IndexFunc(f, func(c ConfigField) bool { return c.Attribute == "allow" }); k == "disallow" && i >= 0 {
			f = slices.Insert(f, i, ConfigField{k, extra[k]})
			continue
		}
		f = append(f, ConfigField{k, extra[k]})
	}
	return f
}

// newPassword generates a password that passes tollguard's own rules.
func (env *AuditEnv) newPassword(name string, s AuditSettings) (string, error) {
	for range 8 {
		pw, err := GeneratePassword(env.rand(), s.PasswordLength)
		if err != nil {
			return "", err
		}
		if len(PasswordWeakness(pw, name, name, s)) == 0 {
			return pw, nil
		}
	}
	return "", Errorf(EINTERNAL, "could not generate a strong password; is the random source broken?")
}

// RotatePassword replaces the password of extension name's auth object
// (the endpoint's first auth, else the auth of the same name) with a
// generated one and returns it. An error marked ErrUnconfirmed comes
// with the password, which may be in force: the caller shows both.
func (env *AuditEnv) RotatePassword(ctx context.Context, name string) (password, authID string, err error) {
	if env.Asterisk == nil {
		return "", "", Errorf(EUNAVAILABLE, "ARI is not configured, so tollguard cannot change passwords; configure [ari]")
	}
	authID = name
	ep, err := env.Asterisk.ConfigObject(ctx, "endpoint", name)
	switch {
	case err == nil:
		if ids := splitObjectIDs(ep.Get("auth")); len(ids) > 0 {
			authID = ids[0]
		}
	case ErrorCode(err) != ENOTFOUND:
		return "", "", fmt.Errorf("read endpoint %s: %w", name, err)
	}
	auth, err := env.Asterisk.ConfigObject(ctx, "auth", authID)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return "", "", Errorf(ENOTFOUND, "Asterisk has no PJSIP auth %s for extension %s", authID, name)
		}
		return "", "", fmt.Errorf("read auth %s: %w", authID, err)
	}
	if digest := storedDigest(auth); digest != "" {
		return "", authID, Errorf(ECONFLICT, "auth %s holds a stored %s: %s; ARI cannot clear a digest: remove %s from that auth (pjsip.conf or astdb, then reload res_pjsip) and rotate again; nothing was changed",
			authID, digest, digestRefusal(auth), digest)
	}
	pw, err := env.newPassword(name, env.Settings.WithDefaults())
	if err != nil {
		return "", "", err
	}
	fields := []ConfigField{{"password", pw}}
	if t := auth.Get("auth_type"); t != "" && t != "userpass" {
		// md5 (or other) credentials: switch to a plain password.
		fields = append([]ConfigField{{"auth_type", "userpass"}}, fields...)
	}
	if err := env.putPassword(ctx, authID, fields, auth.Get("password"), pw); err != nil {
		if errors.Is(err, ErrUnconfirmed) {
			env.logger().Warn("SIP password change unconfirmed; the new password may be in force", LogExtension, name, "auth", authID, LogError, err)
			return pw, authID, err
		}
		if ErrorCode(err) == EFORBIDDEN {
			return "", authID, Errorf(EFORBIDDEN, "Asterisk refused to change the PJSIP auth %s, so the password is unchanged: %s",
				authID, refusal(err))
		}
		return "", authID, fmt.Errorf("change password of auth %s: %w", authID, err)
	}
	env.logger().Info("SIP password rotated; the phone must be given the new one", LogExtension, name, "auth", authID)
	return pw, authID, nil
}

// digestRefusal says why a new password alone is no rotation of auth,
// which holds a stored digest: what Asterisk checks for each algorithm
// it challenges with (a caller answers whichever it likes), and what a
// new password would leave in force.
func digestRefusal(auth ConfigObject) string {
	c := authCredentials(auth)
	msg := c.inForce(auth.Get("password") != "")
	switch {
	case len(c.pwAlgs) == 0:
		return msg + "; a new password would change nothing Asterisk checks"
	case len(c.digAlgs) > 0:
		var labels []string
		for _, a := range c.digAlgs {
			labels = append(labels, c.checks[a])
		}
		return msg + fmt.Sprintf("; a new password would replace the credential for %s only, and %s would keep letting in, for %s, whoever knows the password it was made from",
			strings.Join(c.pwAlgs, ", "), joinAnd(labels), strings.Join(c.digAlgs, ", "))
	}
	// No digest is checked now, but each is once its algorithm is.
	for _, a := range sortedAlgorithms(c.digests) {
		when := a + " is offered (supported_algorithms_uas)"
		if c.legacy && a == "MD5" {
			when = "auth_type is md5, or Asterisk is upgraded (20.12, 21.7, 22.2 and later check a stored digest before the password)"
		}
		msg += fmt.Sprintf("; %s is not checked now, but will be once %s, and a new password would not change it", digestLabel(auth, a), when)
	}
	return msg
}

// ErrUnconfirmed marks a password change whose outcome is unknown: the
// new password may be in force, now or when a write still on its way
// lands, so it is given out with the error, not thrown away.
var ErrUnconfirmed = errors.New("the change may be in force")

// unconfirmedError is a domain error marked ErrUnconfirmed.
type unconfirmedError struct{ err *Error }

func (u unconfirmedError) Error() string   { return u.err.Error() }
func (u unconfirmedError) Unwrap() []error { return []error{u.err, ErrUnconfirmed} }

// refusedWrite reports whether err is Asterisk's refusal of a write,
// which changed nothing; any other failure (a timeout, a dropped
// connection, a proxy's 502-504, a 500) may have been carried out.
func refusedWrite(err error) bool {
	switch ErrorCode(err) {
	case EFORBIDDEN, EINVALID, ENOTFOUND, ECONFLICT:
		return true
	}
	return false
}

// putPassword writes fields, which set password pw, to auth id. When
// Asterisk's answer is lost (not a refusal) Asterisk may have made the
// change all the same, or may make it later, when a write still on its
// way lands after any read-back; the phone then needs pw. So the auth is
// read back, and a write found in force is a success; one not found is
// sent again (the same fields: a late first write sets the same value)
// and read back again, but only while the read-back shows old, the
// password before the change: another one is someone else's change,
// which a resend would overwrite. Only Asterisk's refusal, which changed
// nothing, is a plain error; an outcome still unknown is an error marked
// ErrUnconfirmed, and pw must still be given out.
func (env *AuditEnv) putPassword(ctx context.Context, id string, fields []ConfigField, old, pw string) error {
	_, err := env.Asterisk.PutConfigObject(ctx, "auth", id, fields)
	if err == nil || refusedWrite(err) {
		return err
	}
	// The outcome matters more than the caller's deadline now.
	ctx = context.WithoutCancel(ctx)
	for resent := false; ; resent = true {
		obj, rerr := env.Asterisk.ConfigObject(ctx, "auth", id)
		if rerr == nil && obj.Get("password") == pw {
			env.logger().Warn("Asterisk's answer to a password change was lost, but the new password is in force", "auth", id, LogError, err)
			return nil
		}
		if resent || rerr != nil {
			break
		}
		if other := obj.Get("password"); other != old {
			// Not ours, not the old one: another admin's rotation, or
			// the passwords audit's, that has been handed out.
			env.logger().Warn("Asterisk's answer to a password change was lost and the auth now has a password set by another change; not sending it again", "auth", id, LogError, err)
			break
		}
		env.logger().Warn("Asterisk's answer to a password change was lost and the old password still reads back; sending the change again", "auth", id, LogError, err)
		_, err = env.Asterisk.PutConfigObject(ctx, "auth", id, fields)
		if err == nil || refusedWrite(err) {
			// A refusal of the same fields is the answer the first
			// write got or gets: nothing changed.
			return err
		}
	}
	// A domain error, so that ErrorMessage (what the CLI and the audit
	// print) keeps the advice.
	return unconfirmedError{&Error{Code: ErrorCode(err), Message: fmt.Sprintf("%s; Asterisk's answer was lost, so the new password is unconfirmed, "+
		"but it may be in force, now or when a write still on its way lands: `asterisk -rx 'pjsip show auth %s'` shows the password in force; give the phone the new password if it shows it, and rotate again if it shows the old one (another password is a change made meanwhile by someone else)",
		ErrorMessage(err), id)}}
}

// storedDigest names the attributes in which auth keeps a stored digest
// ("md5_cred", "password_digest", "md5_cred and password_digest"), ""
// if none. Asterisk 22 shows an MD5 digest in both, whichever of them
// pjsip.conf used, so both are named. Asterisk checks such a digest
// instead of the password for its algorithm, so a new password alone
// would change nothing there and the old credential keep working.
// Whether an empty value in an ARI PUT clears the digest depends on the
// field's handler, which the recordings do not show, so tollguard does
// not try: it refuses.
func storedDigest(auth ConfigObject) string {
	var attrs []string
	for _, digest := range []string{"md5_cred", "password_digest"} {
		if auth.Get(digest) != "" {
			attrs = append(attrs, digest)
		}
	}
	return strings.Join(attrs, " and ")
}

func splitObjectIDs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SchedulePurge blocks extension name now and schedules its Asterisk
// objects for deletion after the grace period; unblocking it during the
// grace period cancels the purge. An extension only Asterisk knows is
// first recorded in the store (unmanaged) when its endpoint's
// accountcode names an account, so that it can be blocked; otherwise
// blocked is false (the gate denies extensions it does not know, unless
// allow_unknown is set).
func (env *AuditEnv) SchedulePurge(ctx context.Context, name, job, reason string) (p PendingPurge, blocked bool, err error) {
	return env.schedulePurge(ctx, name, job, reason, false)
}

// SchedulePurgeNow is SchedulePurge for a purge its caller carries out
// at once (`ext purge --now`): due now, and the block says so.
func (env *AuditEnv) SchedulePurgeNow(ctx context.Context, name, job, reason string) (p PendingPurge, blocked bool, err error) {
	return env.schedulePurge(ctx, name, job, reason, true)
}

func (env *AuditEnv) schedulePurge(ctx context.Context, name, job, reason string, atOnce bool) (p PendingPurge, blocked bool, err error) {
	s := env.Settings.WithDefaults()
	now := env.now()
	due := now.Add(s.PurgeGrace)
	why := fmt.Sprintf("%s; its PJSIP objects will be deleted after %s (a snapshot is kept for `tollguard ext restore`); unblock it to cancel", reason, due.UTC().Format("2006-01-02 15:04Z"))
	if atOnce {
		due = now
		why = fmt.Sprintf("%s; its PJSIP objects are deleted at once (a snapshot is kept for `tollguard ext restore`)", reason)
	}
	ext, err := env.Store.Extension(ctx, name)
	if ErrorCode(err) == ENOTFOUND {
		ext, err = env.adopt(ctx, name)
	} else if err == nil {
		// Checked before the block: a purge of nothing could only fail.
		err = env.somethingToPurge(ctx, name)
	}
	if err != nil {
		return PendingPurge{}, false, err
	}
	if ext == nil {
		// Not tollguard's: there must be an endpoint to purge, or the
		// purge could neither run nor be cancelled.
		if _, err := env.unmanagedEndpoint(ctx, name); err != nil {
			return PendingPurge{}, false, err
		}
	}
	if ext != nil {
		_, err := env.Store.Block(ctx, Block{Kind: BlockExtension, Subject: name, SetBy: "audit:" + job, Reason: why, SetAt: now})
		if err != nil {
			return PendingPurge{}, false, fmt.Errorf("block %s before purging: %w", name, err)
		}
	}
	// The block says a purge is scheduled: schedule it even when the
	// run's deadline passed in between.
	p, err = env.Store.AddPendingPurge(context.WithoutCancel(ctx), PendingPurge{Extension: name, Job: job, Reason: reason, ScheduledAt: now, DueAt: due})
	if err != nil && ext != nil {
		return p, true, fmt.Errorf("%s is blocked, but its purge could not be scheduled (unblock it, or run the audit again): %w", name, err)
	}
	return p, ext != nil, err
}

// unmanagedEndpoint returns the PJSIP endpoint of name, an extension
// not in the store, or the error that says there is nothing to purge.
func (env *AuditEnv) unmanagedEndpoint(ctx context.Context, name string) (ConfigObject, error) {
	if env.Asterisk == nil {
		return nil, Errorf(ENOTFOUND, "extension %q is not in tollguard's store, and without ARI tollguard cannot see or delete Asterisk's endpoints; nothing was scheduled", name)
	}
	ep, err := env.Asterisk.ConfigObject(ctx, "endpoint", name)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "extension %q is neither in tollguard's store nor a PJSIP endpoint in Asterisk; nothing was scheduled", name)
	} else if err != nil {
		return nil, fmt.Errorf("read endpoint %s: %w", name, err)
	}
	return ep, nil
}

// CheckPurge says, changing nothing, whether SchedulePurge of name
// would block it (it is in the store, or its endpoint's accountcode
// names an account), or fails as SchedulePurge would when there is
// nothing to purge: for a dry run.
func (env *AuditEnv) CheckPurge(ctx context.Context, name string) (blocked bool, err error) {
	_, err = env.Store.Extension(ctx, name)
	if err == nil {
		if err := env.somethingToPurge(ctx, name); err != nil {
			return false, err
		}
		return true, nil
	}
	if ErrorCode(err) != ENOTFOUND {
		return false, err
	}
	ep, err := env.unmanagedEndpoint(ctx, name)
	if err != nil {
		return false, err
	}
	acct := ep.Get("accountcode")
	if acct == "" {
		return false, nil
	}
	if _, err := env.Store.Account(ctx, acct); err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// somethingToPurge returns the ENOTFOUND error that says there is
// nothing to purge when Asterisk has no PJSIP endpoint, auth or aor
// named name, an extension in the store. When it cannot tell (no ARI,
// or a read failed) it returns nil: the purge blocks the line as
// before, which is the safe side.
func (env *AuditEnv) somethingToPurge(ctx context.Context, name string) error {
	if env.Asterisk == nil {
		return nil
	}
	if has, err := env.pjsipObjectsNamed(ctx, name); len(has) > 0 || err != nil {
		return nil
	}
	return Errorf(ENOTFOUND, "Asterisk has no PJSIP endpoint, auth or aor named %s, so there is nothing to purge; nothing was blocked or scheduled. "+
		"`tollguard ext rm %s` removes tollguard's record of it", name, name)
}

// pjsipObjectsNamed lists the PJSIP endpoint, auth and aor named name
// that Asterisk has ("endpoint/1001"), and the first error of a read
// that failed (an object it did not read may exist).
func (env *AuditEnv) pjsipObjectsNamed(ctx context.Context, name string) (has []string, err error) {
	for _, typ := range []string{"endpoint", "auth", "aor"} {
		_, rerr := env.Asterisk.ConfigObject(ctx, typ, name)
		switch {
		case rerr == nil:
			has = append(has, typ+"/"+name)
		case ErrorCode(rerr) != ENOTFOUND && err == nil:
			err = fmt.Errorf("read %s %s: %w", typ, name, rerr)
		}
	}
	return has, err
}

// otherEndpointsNamed lists the endpoints of other technologies than
// PJSIP that Asterisk has under name ("IAX2/1005").
func (env *AuditEnv) otherEndpointsNamed(ctx context.Context, name string) ([]string, error) {
	eps, err := env.Asterisk.Endpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	var out []string
	for _, ep := range eps {
		if ep.Resource == name && !strings.EqualFold(ep.Technology, "PJSIP") {
			out = append(out, ep.Technology+"/"+ep.Resource)
		}
	}
	return out, nil
}

// RemoveOptions are `tollguard ext rm`'s flags.
type RemoveOptions struct {
	Force  bool // without ARI, remove a blocked extension too
	DryRun bool // check, and change nothing
}

// RemovedExtension is what RemoveExtension did, or in a dry run would do.
type RemovedExtension struct {
	Extension       *Extension // the record, as it was
	AsteriskChecked bool       // ARI said Asterisk has none of its PJSIP objects
	PurgeClosed     bool       // its pending purge was closed
}

// RemoveExtension deletes tollguard's record of extension name, a line
// Asterisk no longer has: `tollguard ext purge` is what removes one from
// Asterisk. With ARI it is refused while Asterisk has a PJSIP endpoint,
// auth or aor of that name, or cannot be asked. Without ARI nothing can
// be checked, and a blocked extension needs force: its block goes with
// the record. A pending purge of it is closed; its calls stay (they
// settle by call id, and are history).
func (env *AuditEnv) RemoveExtension(ctx context.Context, name string, opt RemoveOptions) (*RemovedExtension, error) {
	notFound := func() error {
		return Errorf(ENOTFOUND, "extension %q is not in tollguard's store; list them with `tollguard ext list`", name)
	}
	// The row checked is the row deleted: by name, ext rm deleted a line
	// removed and added again meanwhile (another admin's ext rm + ext add).
	ext, row, err := env.Store.ExtensionRow(ctx, name)
	if ErrorCode(err) == ENOTFOUND {
		return nil, notFound()
	} else if err != nil {
		return nil, err
	}
	out := &RemovedExtension{Extension: ext}
	switch {
	case env.Asterisk != nil:
		has, err := env.pjsipObjectsNamed(ctx, name)
		// A line of another technology (IAX2) is no PJSIP object, and
		// ext purge cannot remove it: it must leave its own config file
		// first, or its record and its block would go while it can call.
		other, oerr := env.otherEndpointsNamed(ctx, name)
		if err == nil {
			err = oerr
		}
		if len(other) > 0 {
			return nil, Errorf(ECONFLICT, "Asterisk still has endpoint %s, so nothing was removed: remove the line from its own configuration (iax.conf) and reload it first; "+
				"ext rm only removes tollguard's record of a line Asterisk no longer has", strings.Join(other, ", "))
		}
		if len(has) > 0 {
			return nil, Errorf(ECONFLICT, "Asterisk still has PJSIP %s, so nothing was removed: `tollguard ext purge %s` removes it from Asterisk (keeping a snapshot); "+
				"ext rm only removes tollguard's record of a line Asterisk no longer has", strings.Join(has, ", "), name)
		}
		if err != nil {
			// Removed on a guess, a line still in Asterisk would lose
			// its account, and its block.
			return nil, Errorf(ErrorCode(err), "check Asterisk for extension %s (nothing was removed): %s; try again once ARI answers", name, ErrorMessage(err))
		}
		out.AsteriskChecked = true
	case ext.Blocked && !opt.Force:
		return nil, Errorf(ECONFLICT, "extension %s is blocked, and without ARI tollguard cannot check whether Asterisk still has it. Its block (and any pending purge) goes with its record: "+
			"if Asterisk still has the line and [gate] allow_unknown is on, it could call again, on the default account. Nothing was removed; "+
			"once the line is gone from Asterisk, run `tollguard ext rm %s --force` (or configure [ari], and tollguard checks)", name, name)
	}
	if opt.DryRun {
		ps, err := env.Store.PendingPurges(ctx)
		if err != nil {
			return nil, fmt.Errorf("list pending purges: %w", err)
		}
		out.PurgeClosed = slices.ContainsFunc(ps, func(p PendingPurge) bool { return p.Extension == name })
		return out, nil
	}
	if err := env.Store.DeleteExtensionRow(ctx, name, row); err != nil {
		switch ErrorCode(err) {
		case ENOTFOUND: // removed meanwhile
			return nil, notFound()
		case ECONFLICT:
			return nil, Errorf(ECONFLICT, "extension %s was removed and recorded again (another `tollguard ext rm` and `tollguard ext add`?) while it was being checked, so nothing was removed: "+
				"the new line is not the one checked; see it with `tollguard ext show %s`, and run ext rm again if it is to go", name, name)
		}
		return nil, fmt.Errorf("remove extension %s: %w", name, err)
	}
	outcome := "cancelled"
	if out.AsteriskChecked {
		// As a due purge that finds nothing left to delete.
		outcome = "gone"
	}
	// The record is gone: close its purge even if the caller gave up.
	switch err := env.Store.FinishPurge(context.WithoutCancel(ctx), name, outcome, env.now()); {
	case err == nil:
		out.PurgeClosed = true
	case ErrorCode(err) != ENOTFOUND:
		return out, fmt.Errorf("extension %s was removed, but its pending purge could not be closed (`tollguard unblock %s` cancels it): %w", name, name, err)
	}
	env.logger().Info("extension record removed", LogExtension, name, LogAccount, ext.Account,
		"asterisk_checked", out.AsteriskChecked, "purge_closed", out.PurgeClosed)
	return out, nil
}

// adopt records an extension only Asterisk knows in the store, as
// unmanaged, under the account its endpoint's accountcode names. It
// returns nil (no error) when no such account exists.
func (env *AuditEnv) adopt(ctx context.Context, name string) (*Extension, error) {
	if env.Asterisk == nil {
		return nil, nil
	}
	ep, err := env.Asterisk.ConfigObject(ctx, "endpoint", name)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, nil
		}
		return nil, fmt.Errorf("read endpoint %s: %w", name, err)
	}
	acct := ep.Get("accountcode")
	if acct == "" {
		return nil, nil
	}
	if _, err := env.Store.Account(ctx, acct); err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, nil
		}
		return nil, err
	}
	ext := &Extension{Name: name, Account: acct, CallerID: cleanCallerID(ep.Get("callerid")), CreatedAt: env.now()}
	if err := env.Store.CreateExtension(ctx, ext); err != nil {
		return nil, fmt.Errorf("record unmanaged extension %s: %w", name, err)
	}
	return ext, nil
}

func cleanCallerID(s string) string {
	if s == "<unknown>" {
		return ""
	}
	return s
}

// PurgeExtension deletes extension name's PJSIP endpoint, and the auth
// and aor objects named like it, after storing a full JSON snapshot of
// all of them. Objects with other names that the endpoint references
// are kept (other endpoints may share them) and named in the snapshot's
// reason. A 403 is an EFORBIDDEN error and deletes nothing.
func (env *AuditEnv) PurgeExtension(ctx context.Context, name, reason string) (*ExtensionSnapshot, error) {
	if env.Asterisk == nil {
		return nil, Errorf(EUNAVAILABLE, "ARI is not configured, so tollguard cannot delete PJSIP objects; configure [ari]")
	}
	snap := &ExtensionSnapshot{Extension: name, TakenAt: env.now(), Reason: reason}
	if ext, err := env.Store.Extension(ctx, name); err == nil {
		snap.Account = ext.Account
	}
	auths, aors := []string{name}, []string{name}
	ep, err := env.Asterisk.ConfigObject(ctx, "endpoint", name)
	switch {
	case err == nil:
		var kept []string
		auths, aors = nil, nil
		for _, id := range splitObjectIDs(ep.Get("auth")) {
			if id == name {
				auths = append(auths, id)
			} else {
				kept = append(kept, "auth/"+id)
			}
		}
		for _, id := range splitObjectIDs(ep.Get("aors")) {
			if id == name {
				aors = append(aors, id)
			} else {
				kept = append(kept, "aor/"+id)
			}
		}
		if len(kept) > 0 {
			snap.Reason += "; kept shared objects " + strings.Join(kept, ", ")
		}
	case ErrorCode(err) != ENOTFOUND:
		return nil, fmt.Errorf("read endpoint %s: %w", name, err)
	}
	for _, o := range []struct {
		typ string
		ids []string
	}{{"auth", auths}, {"aor", aors}} {
		for _, id := range o.ids {
			obj, err := env.Asterisk.ConfigObject(ctx, o.typ, id)
			if ErrorCode(err) == ENOTFOUND {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read %s %s: %w", o.typ, id, err)
			}
			if o.typ == "aor" {
				obj = env.permanentContactsOnly(ctx, id, obj)
			}
			snap.Objects = append(snap.Objects, SnapshotObject{Type: o.typ, ID: id, Fields: obj})
		}
	}
	if ep != nil {
		snap.Objects = append(snap.Objects, SnapshotObject{Type: "endpoint", ID: name, Fields: ep})
	}
	if len(snap.Objects) == 0 {
		return nil, Errorf(ENOTFOUND, "Asterisk has no PJSIP endpoint, auth or aor named %s", name)
	}
	// The snapshot is stored before anything is deleted.
	if err := env.Store.SaveSnapshot(ctx, snap); err != nil {
		return nil, fmt.Errorf("store snapshot of %s (nothing deleted): %w", name, err)
	}
	var deleted []string
	for i := len(snap.Objects) - 1; i >= 0; i-- { // endpoint first: it references the others
		o := snap.Objects[i]
		err := env.Asterisk.DeleteConfigObject(ctx, o.Type, o.ID)
		if err == nil || ErrorCode(err) == ENOTFOUND {
			deleted = append(deleted, o.Type+"/"+o.ID)
			continue
		}
		if len(deleted) == 0 && (ErrorCode(err) == EFORBIDDEN || errors.Is(err, ErrAnswered) && env.stillThere(ctx, o)) {
			// Refused, or answered with an error and the object still
			// there: nothing changed, the snapshot (and the password in
			// it) is not needed (PurgeStarted would take it for a partial
			// purge), and the purge is tried on every run. After a
			// timeout or a lost connection Asterisk may still be doing
			// the delete, after any read-back: the snapshot stays.
			_ = env.Store.DeleteSnapshot(context.WithoutCancel(ctx), snap.ID)
			if ErrorCode(err) != EFORBIDDEN {
				return nil, fmt.Errorf("delete PJSIP %s %s (nothing deleted): %w", o.Type, o.ID, err)
			}
		}
		if ErrorCode(err) == EFORBIDDEN {
			return nil, Errorf(EFORBIDDEN, "Asterisk refused to delete PJSIP %s %s (deleted so far: %s): %s",
				o.Type, o.ID, listOrNothing(deleted), refusal(err))
		}
		return nil, fmt.Errorf("delete PJSIP %s %s (deleted so far: %s; snapshot %d kept): %w", o.Type, o.ID, listOrNothing(deleted), snap.ID, err)
	}
	env.contactsGone(ctx, deleted)
	env.logger().Warn("extension purged from Asterisk; restore it with `tollguard ext restore`", LogExtension, name, "snapshot", snap.ID, "objects", strings.Join(deleted, " "))
	return snap, nil
}

// contactsGone marks the registrations of the deleted aors ("aor/1009")
// gone in the store. Asterisk drops an aor's contacts with it and sends
// no ContactStatusChange (recorded: the endpoint deleted first leaves no
// one to send it to), so the listener would keep them registered until
// its next resynchronisation.
func (env *AuditEnv) contactsGone(ctx context.Context, deleted []string) {
	rs, ok := env.Store.(RegistrationStore)
	if !ok {
		return
	}
	aors := map[string]bool{}
	for _, d := range deleted {
		if id, ok := strings.CutPrefix(d, "aor/"); ok {
			aors[id] = true
		}
	}
	if len(aors) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx) // the objects are deleted already
	live, err := rs.LiveContacts(ctx)
	if err != nil {
		env.logger().Warn("could not mark the purged extension's registrations gone; the listener's next resynchronisation does", LogError, err)
		return
	}
	for _, c := range live {
		if !aors[c.AOR] {
			continue
		}
		if _, err := rs.ContactGone(ctx, c.ID, env.now()); err != nil {
			env.logger().Warn("could not mark a purged extension's registration gone; the listener's next resynchronisation does", LogExtension, c.Extension, "contact", c.ID, LogError, err)
		}
	}
}

// stillThere reports whether Asterisk answers that o exists (false when
// it cannot be asked).
func (env *AuditEnv) stillThere(ctx context.Context, o SnapshotObject) bool {
	_, err := env.Asterisk.ConfigObject(context.WithoutCancel(ctx), o.Type, o.ID)
	return err == nil
}

// RestoreReport says what RestoreExtension did.
type RestoreReport struct {
	Snapshot  *ExtensionSnapshot  `json:"snapshot"`
	Restored  []string            `json:"restored"`           // "auth/1009", ...
	Existing  []string            `json:"existing,omitempty"` // already there, left alone
	Rejected  map[string][]string `json:"rejected,omitempty"` // object → fields Asterisk refused
	Unblocked bool                `json:"unblocked"`
	// KeptBlock is a block the restore left in place: not the purge's
	// own (a compromise, a detector), with who set it and why.
	KeptBlock string `json:"kept_block,omitempty"`
	// SnapshotIDs are the snapshots restored from: Snapshot's, and older
	// ones of the same purge, retried after it failed partway.
	SnapshotIDs []int64 `json:"snapshot_ids"`
}

// purgeBlockers set the blocks that a purge's schedule sets, and a
// restore lifts (SchedulePurge's "audit:"+job).
var purgeBlockers = map[string]bool{"audit:stale": true, "audit:tests": true, "audit:cli": true}

// RestoreExtension puts extension name's PJSIP objects back from its
// newest snapshot, cancels a pending purge and lifts the block. Each
// object is created with its essential fields, then the snapshot's
// other fields are merged in; fields Asterisk rejects are listed, not
// fatal, and stay in the stored snapshot.
func (env *AuditEnv) RestoreExtension(ctx context.Context, name, by string) (*RestoreReport, error) {
	if env.Asterisk == nil {
		return nil, Errorf(EUNAVAILABLE, "ARI is not configured, so tollguard cannot restore PJSIP objects; configure [ari]")
	}
	snap, err := env.Store.LatestSnapshot(ctx, name)
	if err != nil {
		return nil, err
	}
	objects, ids, err := env.unrestoredObjects(ctx, snap)
	if err != nil {
		return nil, err
	}
	rep := &RestoreReport{Snapshot: snap, Rejected: map[string][]string{}, SnapshotIDs: ids}
	for _, o := range objects {
		key := o.Type + "/" + o.ID
		if _, err := env.Asterisk.ConfigObject(ctx, o.Type, o.ID); err == nil {
			rep.Existing = append(rep.Existing, key)
			continue
		} else if ErrorCode(err) != ENOTFOUND {
			return rep, fmt.Errorf("check %s: %w", key, err)
		}
		essential, rest := restoreFields(o.Type, o.Fields)
		_, err := env.Asterisk.PutConfigObject(ctx, o.Type, o.ID, essential)
		if newer, older := splitNewer(essential); ErrorCode(err) == EINVALID && len(newer) > 0 {
			// An Asterisk older than the snapshot's (a downgrade, another
			// PBX) refuses the whole create for a field it lacks: create
			// without those, and let the merge list them as rejected.
			created, retryErr := env.Asterisk.PutConfigObject(ctx, o.Type, o.ID, older)
			if retryErr == nil && hasNewer(created) {
				// This Asterisk has the lists, so the 400 was for a
				// value of theirs: the auth now offers the default, to
				// which a merge would append. Keep the first refusal.
				if delErr := env.Asterisk.DeleteConfigObject(ctx, o.Type, o.ID); delErr != nil && ErrorCode(delErr) != ENOTFOUND {
					return rep, fmt.Errorf("restore %s (restored so far: %s; snapshot %d kept): %w; and %s, created without its algorithm lists, could not be deleted: %v; delete it from Asterisk (ARI DELETE /ari/asterisk/config/dynamic/res_pjsip/%s) before restoring again, as a restore leaves an existing object alone",
						key, listOrNothing(rep.Restored), snap.ID, err, key, delErr, key)
				}
			} else {
				essential, rest, err = older, append(newer, rest...), retryErr
			}
		}
		if err != nil {
			if ErrorCode(err) == EFORBIDDEN {
				return rep, Errorf(EFORBIDDEN, "Asterisk refused to create PJSIP %s (restored so far: %s): %s",
					key, listOrNothing(rep.Restored), refusal(err))
			}
			return rep, fmt.Errorf("restore %s (restored so far: %s; snapshot %d kept): %w", key, listOrNothing(rep.Restored), snap.ID, err)
		}
		rep.Restored = append(rep.Restored, key)
		if len(rest) == 0 {
			continue
		}
		if _, err := env.Asterisk.PutConfigObject(ctx, o.Type, o.ID, rest); err == nil {
			continue
		}
		// One field Asterisk does not take back fails the whole merge:
		// find which, one at a time.
		for _, f := range rest {
			if _, err := env.Asterisk.PutConfigObject(ctx, o.Type, o.ID, []ConfigField{f}); err != nil {
				rep.Rejected[key] = append(rep.Rejected[key], f.Attribute+"="+f.Value)
			}
		}
	}
	for _, id := range ids {
		if err := env.Store.MarkSnapshotRestored(ctx, id, env.now()); err != nil {
			return rep, err
		}
	}
	if err := env.FinishPurge(ctx, name, "cancelled", env.now()); err != nil {
		return rep, err
	}
	switch _, err := env.Store.Extension(ctx, name); {
	case err == nil:
		// A block for another reason (stolen credentials, a detector),
		// set before the purge's or after it, is not the restore's to
		// lift.
		if rep.Unblocked, rep.KeptBlock, err = env.liftPurgeBlock(ctx, name, by); err != nil {
			return rep, err
		}
	case ErrorCode(err) == ENOTFOUND && snap.Account != "":
		if err := env.Store.CreateExtension(ctx, &Extension{Name: name, Account: snap.Account, CreatedAt: env.now()}); err != nil {
			return rep, err
		}
	}
	env.logger().Info("extension restored from snapshot", LogExtension, name, "snapshot", snap.ID, "restored", strings.Join(rep.Restored, " "))
	return rep, nil
}

// liftPurgeBlock lifts the block a purge set on name (restored, or
// spared when due), unless a block for another reason is open too:
// kept describes those. The extension row keeps only the first block's
// setter; a compromise block set during the grace is in the history.
// An extension not blocked or not in the store is left alone.
func (env *AuditEnv) liftPurgeBlock(ctx context.Context, name, by string) (lifted bool, kept string, err error) {
	ext, err := env.Store.Extension(ctx, name)
	if ErrorCode(err) == ENOTFOUND || err == nil && !ext.Blocked {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	hist, err := env.Store.Blocks(ctx, BlockExtension, name, time.Time{})
	if err != nil {
		return false, "", fmt.Errorf("read the block history of %s: %w", name, err)
	}
	var others []string
	for _, b := range hist {
		if b.ClearedAt.IsZero() && !purgeBlockers[b.SetBy] {
			others = append(others, fmt.Sprintf("%s (by %s)", b.Reason, b.SetBy))
		}
	}
	if len(others) > 0 {
		return false, strings.Join(others, "; "), nil
	}
	lifted, err = env.Store.Unblock(ctx, BlockExtension, name, by)
	return lifted, "", err
}

// unrestoredObjects returns what a restore puts back: newest's objects,
// and those of older snapshots not yet restored that newest lacks, back
// to the one that holds the endpoint. A purge deletes the endpoint
// first, so a purge retried after one that failed partway snapshots only
// what was left, and the newest alone would restore an extension
// without its endpoint; snapshots before the one with the endpoint
// belong to an earlier purge. Auths and aors come before endpoints,
// which reference them. ids are the snapshots used.
func (env *AuditEnv) unrestoredObjects(ctx context.Context, newest *ExtensionSnapshot) (objects []SnapshotObject, ids []int64, err error) {
	all, err := env.Store.Snapshots(ctx, newest.Extension)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	add := func(s *ExtensionSnapshot) {
		for _, o := range s.Objects {
			if key := o.Type + "/" + o.ID; !seen[key] {
				seen[key] = true
				objects = append(objects, o)
			}
		}
		ids = append(ids, s.ID)
	}
	hasEndpoint := func(s *ExtensionSnapshot) bool {
		return slices.ContainsFunc(s.Objects, func(o SnapshotObject) bool { return o.Type == "endpoint" })
	}
	add(newest)
	found := hasEndpoint(newest)
	for _, s := range all { // newest first
		if found {
			break
		}
		if s.ID < newest.ID && s.RestoredAt.IsZero() {
			add(s)
			found = hasEndpoint(s)
		}
	}
	rank := map[string]int{"auth": 0, "aor": 1, "endpoint": 2}
	slices.SortStableFunc(objects, func(a, b SnapshotObject) int { return rank[a.Type] - rank[b.Type] })
	return objects, ids, nil
}

// essentialFields are created first on restore: what makes the object
// work. The rest is merged in afterwards. An auth's credentials all go in
// its create: Asterisk 22's auth_apply (res_pjsip/config_auth.c) refuses
// an auth without a password or stored digest for each algorithm it
// offers (400), and the algorithm lists too, since a write adds to the
// list an auth has (MD5 by default) rather than replacing it.
var essentialFields = map[string][]string{
	"auth": {"auth_type", "username", "password", "md5_cred", "password_digest", "realm",
		"supported_algorithms_uas", "supported_algorithms_uac", "refresh_token", "oauth_clientid", "oauth_secret"},
	"aor":      {"max_contacts", "remove_existing", "minimum_expiration", "default_expiration", "maximum_expiration", "qualify_frequency", "mailboxes"},
	"endpoint": {"context", "auth", "aors", "outbound_auth", "transport", "allow", "callerid", "accountcode", "mailboxes", "identify_by", "direct_media"},
}

// permanentContactsAttr marks an aor snapshot whose contacts were sorted
// (permanentContactsOnly): the ones it keeps are put back on restore.
// An older snapshot's contacts, registered ones among them, are not.
const permanentContactsAttr = "tollguard:permanent_contacts"

// permanentContactsOnly keeps, of aor's "contact" fields, the permanent
// ones (configured, with no registration behind them): ARI lists both
// in the one attribute, and a registered contact has a contact object of
// its own. A registration comes back by itself, and one restored as
// permanent would outlive it (or its attacker). A contact whose lookup
// fails is dropped too.
func (env *AuditEnv) permanentContactsOnly(ctx context.Context, aor string, obj ConfigObject) ConfigObject {
	permanent := map[string]bool{} // no contact object of its own
	for _, uri := range contactURIs(obj) {
		if _, err := env.Asterisk.ConfigObject(ctx, "contact", ContactID(aor, uri)); ErrorCode(err) == ENOTFOUND {
			permanent[uri] = true
		}
	}
	// A registration that ended between the two reads looks permanent:
	// keep only what the aor still lists after the checks.
	still := map[string]bool{}
	if len(permanent) > 0 {
		if again, err := env.Asterisk.ConfigObject(ctx, "aor", aor); err == nil {
			for _, uri := range contactURIs(again) {
				still[uri] = permanent[uri]
			}
		}
	}
	out := make(ConfigObject, 0, len(obj)+1)
	for _, f := range obj {
		if f.Attribute == "contact" && f.Value != "" {
			keep := slices.DeleteFunc(contactURIs(ConfigObject{f}), func(uri string) bool { return !still[uri] })
			if len(keep) == 0 {
				continue
			}
			f.Value = strings.Join(keep, ",")
		}
		out = append(out, f)
	}
	return append(out, ConfigField{Attribute: permanentContactsAttr, Value: "checked"})
}

// contactURIs lists an aor's contact URIs: one per "contact" field, or
// several in one, comma-separated.
func contactURIs(obj ConfigObject) []string {
	var out []string
	for _, v := range obj.All("contact") {
		for _, uri := range strings.Split(v, ",") {
			if uri = strings.TrimSpace(uri); uri != "" {
				out = append(out, uri)
			}
		}
	}
	return out
}

// newerEssentials are essential fields an older Asterisk lacks: every
// 22.2+ auth shows its algorithm lists (the global default filled in).
var newerEssentials = map[string]bool{"supported_algorithms_uas": true, "supported_algorithms_uac": true}

// splitNewer splits fields into those an older Asterisk lacks and the rest.
func splitNewer(fields []ConfigField) (newer, older []ConfigField) {
	for _, f := range fields {
		if newerEssentials[f.Attribute] {
			newer = append(newer, f)
		} else {
			older = append(older, f)
		}
	}
	return newer, older
}

// hasNewer reports whether obj, as Asterisk stored it, shows a field an
// older Asterisk lacks.
func hasNewer(obj ConfigObject) bool {
	return slices.ContainsFunc(obj, func(f ConfigField) bool { return newerEssentials[f.Attribute] })
}

// restoreFields turns a snapshot (ARI's read form) back into fields ARI
// accepts: empty values are left to their defaults, an aor's registered
// contacts are dropped (registrations come back on their own; only a
// snapshot that sorted them keeps its permanent ones), the
// codec list "(ulaw|alaw)" becomes allow=ulaw,alaw (the new object has
// no codecs to disallow; "(nothing)" none), and
// the "<unknown>" caller ID (unset) is dropped.
func restoreFields(typ string, obj ConfigObject) (essential, rest []ConfigField) {
	ess := map[string]bool{}
	for _, a := range essentialFields[typ] {
		ess[a] = true
	}
	add := func(f ConfigField) {
		if ess[f.Attribute] {
			essential = append(essential, f)
		} else {
			rest = append(rest, f)
		}
	}
	sorted := obj.Get(permanentContactsAttr) != ""
	for _, f := range obj {
		switch {
		case f.Value == "", f.Attribute == permanentContactsAttr:
			continue
		case typ == "aor" && f.Attribute == "contact" && !sorted:
			continue
		case typ == "endpoint" && f.Attribute == "callerid" && f.Value == "<unknown>":
			continue
		case typ == "endpoint" && f.Attribute == "allow":
			codecs := strings.NewReplacer("(", "", ")", "", "|", ",").Replace(f.Value)
			// "(nothing)": no codecs, and no codec name to send back.
			if codecs != "" && codecs != "nothing" {
				add(ConfigField{"allow", codecs})
			}
			continue
		}
		add(f)
	}
	return essential, rest
}

// processDuePurges deletes the Asterisk objects of extensions whose
// grace period is over, unless an admin unblocked them meanwhile (or
// recorded, unblocked, one that was not in the store).
func (r *auditRun) processDuePurges(ctx context.Context) error {
	env := r.env
	pending, err := env.Store.PendingPurges(ctx)
	if err != nil {
		return fmt.Errorf("list pending purges: %w", err)
	}
	now := env.now()
	for _, p := range pending {
		if p.DueAt.After(now) {
			continue
		}
		subj := auditExtSubject(p.Extension)
		ext, err := env.Store.Extension(ctx, p.Extension)
		if err != nil && ErrorCode(err) != ENOTFOUND {
			// Whether the admin unblocked it (cancelling the purge) is
			// unknown: nothing is deleted on a guess.
			r.act(AuditAction{Kind: AuditActPurge, Subject: subj, Message: "not purged this run: its extension could not be read; will retry on the next run", Err: ErrorMessage(err)})
			continue
		}
		if err == nil && !ext.Blocked {
			if err := env.FinishPurge(ctx, p.Extension, "cancelled", now); err != nil {
				return err
			}
			a := AuditAction{Kind: AuditActCancelPurge, Subject: subj, Message: "purge cancelled: the extension was unblocked during its grace period"}
			if snap, err := PurgeStarted(ctx, env.Store, p); err != nil {
				return err
			} else if snap != nil {
				if note, partly, sure := PartialPurgeNote(ctx, env.Asterisk, snap); partly {
					a.Message += "; but " + note
					a.Err = "partly purged (snapshot " + fmt.Sprint(snap.ID) + ")"
					if !sure {
						a.Err = "perhaps " + a.Err
					}
				}
			}
			r.act(a)
			continue
		}
		if p.Job != "cli" {
			// Checked again when due: the admin may have listed it in
			// [audit] ignore during the grace, and a line the schedule
			// could not block (only Asterisk knows it) kept working, so
			// its user had no reason to ask for an unblock.
			why := ""
			if env.Settings.ignored(p.Extension) {
				why = "it is in [audit] ignore now"
			} else if ErrorCode(err) == ENOTFOUND && r.apply {
				alive, how, aerr := r.aliveNow(ctx, &extInfo{Name: p.Extension, InAsterisk: true})
				if aerr != nil {
					r.act(AuditAction{Kind: AuditActPurge, Subject: subj, Message: "not purged this run: Asterisk could not be asked whether it is in use again; will retry on the next run", Err: ErrorMessage(aerr)})
					continue
				}
				if alive {
					why = "it was never blocked, and it is in use again (" + how + ")"
				}
			}
			if why != "" {
				if err := env.FinishPurge(ctx, p.Extension, "cancelled", now); err != nil {
					return err
				}
				lifted, kept, err := env.liftPurgeBlock(ctx, p.Extension, "audit:"+p.Job)
				if err != nil {
					return err
				}
				switch {
				case kept != "":
					why += "; it stays blocked: " + kept + " (`tollguard unblock " + p.Extension + "` once that is dealt with)"
				case lifted:
					why += "; its block is lifted"
				}
				r.act(AuditAction{Kind: AuditActCancelPurge, Subject: subj, Message: "purge cancelled: " + why})
				continue
			}
		}
		// An audit's purge of a trunk, scheduled before the audits knew
		// trunks (by an older tollguard), is spared when it falls due. A
		// registration during the grace does not spare a line: on a
		// blocked stale line it may be the attacker; its user asks for an
		// unblock, which cancels. An admin's own purge is not checked.
		if p.Job != "cli" && r.apply {
			why, terr := r.trunkLike(ctx, &extInfo{Name: p.Extension, InAsterisk: true})
			if terr != nil {
				r.act(AuditAction{Kind: AuditActPurge, Subject: subj, Message: "not purged this run: Asterisk could not be asked whether it is a trunk; will retry on the next run", Err: ErrorMessage(terr)})
				continue
			}
			if why != "" {
				if err := env.FinishPurge(ctx, p.Extension, "cancelled", now); err != nil {
					return err
				}
				r.act(AuditAction{Kind: AuditActCancelPurge, Subject: subj, Message: "purge cancelled: it looks like a trunk (" + why +
					"); if tollguard blocked it, `tollguard unblock " + p.Extension + "`; if it should go, `tollguard ext purge` it"})
				continue
			}
		}
		// The grace period is the admin's time to unblock a line in use:
		// a clock stepped ahead would end every one at once.
		if env.pruneHeld() {
			r.find(AuditFinding{Check: AuditCheckPurge, Severity: SeverityInfo, Subject: subj, Extension: p.Extension,
				Message: fmt.Sprintf("grace period over (due %s) by a system clock that stepped ahead of the time elapsed: not purged until the clock is corrected, or for a day if it stays (see the clock warning in the log)", p.DueAt.UTC().Format("2006-01-02 15:04Z"))})
			continue
		}
		if !r.apply {
			r.find(AuditFinding{Check: AuditCheckPurge, Severity: SeverityInfo, Subject: subj, Extension: p.Extension, Fixable: true,
				Message: fmt.Sprintf("grace period over since %s: run with --apply to delete its PJSIP objects (a snapshot is kept)", p.DueAt.UTC().Format("2006-01-02"))})
			continue
		}
		snap, err := env.PurgeExtension(ctx, p.Extension, p.Reason)
		// Once Asterisk has deleted them, the purge is done: it is closed
		// and reported even when the run's deadline has just passed.
		done := context.WithoutCancel(ctx)
		switch {
		case err == nil:
			r.act(AuditAction{Kind: AuditActPurge, Subject: subj,
				Message: fmt.Sprintf("deleted its PJSIP objects (%d) after the grace period; snapshot %d; bring them back with `tollguard ext restore %s`", len(snap.Objects), snap.ID, p.Extension)})
			if err := env.FinishPurge(done, p.Extension, "purged", now); err != nil {
				return err
			}
		case ErrorCode(err) == ENOTFOUND:
			if err := env.FinishPurge(done, p.Extension, "gone", now); err != nil {
				return err
			}
			r.act(AuditAction{Kind: AuditActPurge, Subject: subj, Message: "nothing left to delete: Asterisk no longer has its PJSIP objects"})
		case r.refused(err, "endpoint"):
			// Left pending (tried again next run); the other purges go on.
			r.act(AuditAction{Kind: AuditActPurge, Subject: subj, Message: "Asterisk refused to delete its PJSIP objects (403): an object defined in pjsip.conf can only be removed there; unblock it to cancel the purge", Err: ErrorMessage(err)})
		default:
			r.act(AuditAction{Kind: AuditActPurge, Subject: subj, Message: "could not delete its PJSIP objects; will retry on the next run", Err: ErrorMessage(err)})
		}
	}
	return nil
}

// PurgeStarted returns the newest snapshot, not yet restored, that a run
// of purge p took, or nil: a purge that failed partway (the endpoint
// deleted, the aor not) is still pending with it, and cancelling the
// purge brings nothing back.
func PurgeStarted(ctx context.Context, st AuditStore, p PendingPurge) (*ExtensionSnapshot, error) {
	snaps, err := st.Snapshots(ctx, p.Extension)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps { // newest first
		if s.RestoredAt.IsZero() && !s.TakenAt.Before(p.ScheduledAt) {
			return s, nil
		}
	}
	return nil, nil
}

// PartialPurgeNote says what a run of a cancelled purge left deleted,
// given snap, the snapshot it took (PurgeStarted), for a message that
// starts "but ". A run whose first delete got no answer (a timeout, a
// proxy's 504) keeps its snapshot though Asterisk may have deleted
// nothing, so the snapshot alone does not say what is gone: Asterisk is
// asked (ast nil: it cannot be). partly is false, and note "", when it
// still has every object; sure is false when it could not be asked.
func PartialPurgeNote(ctx context.Context, ast Asterisk, snap *ExtensionSnapshot) (note string, partly, sure bool) {
	var gone []string
	checked := ast != nil
	for i := len(snap.Objects) - 1; checked && i >= 0; i-- { // as deleted: endpoint first
		o := snap.Objects[i]
		_, err := ast.ConfigObject(ctx, o.Type, o.ID)
		switch {
		case ErrorCode(err) == ENOTFOUND:
			gone = append(gone, o.Type+"/"+o.ID)
		case err != nil:
			checked = false
		}
	}
	ext := snap.Extension
	switch {
	case len(gone) > 0:
		return fmt.Sprintf("a run of that purge had deleted some of its PJSIP objects already (%s; snapshot %d): bring them back with `tollguard ext restore %s`",
			strings.Join(gone, ", "), snap.ID, ext), true, true
	case checked:
		return "", false, true
	}
	return fmt.Sprintf("a run of that purge got no answer to a delete, so Asterisk may have deleted some of its PJSIP objects, or none (snapshot %d holds %s): "+
		"check with `asterisk -rx 'pjsip show endpoint %s'`; `tollguard ext restore %s` puts back whatever is missing and leaves what is still there alone",
		snap.ID, snapshotObjectList(snap), ext, ext), true, false
}

// snapshotObjectList lists a snapshot's objects as deleted, endpoint
// first: "endpoint/1001, aor/1001".
func snapshotObjectList(s *ExtensionSnapshot) string {
	var out []string
	for i := len(s.Objects) - 1; i >= 0; i-- {
		out = append(out, s.Objects[i].Type+"/"+s.Objects[i].ID)
	}
	return strings.Join(out, ", ")
}

// loadPending reads the pending purges once per run.
func (r *auditRun) loadPending(ctx context.Context) error {
	ps, err := r.env.Store.PendingPurges(ctx)
	if err != nil {
		return fmt.Errorf("list pending purges: %w", err)
	}
	r.pending = map[string]PendingPurge{}
	for _, p := range ps {
		r.pending[p.Extension] = p
	}
	return nil
}

// FinishPurge closes a pending purge; one another run (the CLI while
// serve runs) closed meanwhile is fine.
func (env *AuditEnv) FinishPurge(ctx context.Context, ext, outcome string, at time.Time) error {
	if err := env.Store.FinishPurge(ctx, ext, outcome, at); err != nil && ErrorCode(err) != ENOTFOUND {
		return err
	}
	return nil
}

// purgeCandidate reports a stale or test extension, and with apply
// blocks it and schedules its purge. An extension already waiting for
// its purge is reported at info level: it was acted on already. hint,
// added to the message only when apply would act, says how to.
func (r *auditRun) purgeCandidate(ctx context.Context, f AuditFinding, reason, hint string) {
	name := f.Extension
	if p, ok := r.pending[name]; ok {
		f.Severity = SeverityInfo
		f.Message += fmt.Sprintf("; already blocked, purge due %s", p.DueAt.UTC().Format("2006-01-02 15:04Z"))
		r.find(f)
		return
	}
	if r.env.Asterisk == nil {
		// Without ARI no registration is seen, so a phone that only
		// receives calls looks unused, and its line could never be
		// deleted: blocking it would only cut its outgoing calls.
		f.Message += "; ARI is not configured, so tollguard cannot see its registrations or delete it, and only reports it: configure [ari], or remove it by hand"
		r.find(f)
		return
	}
	if r.env.pruneHeld() {
		// Its age is measured on a clock that stepped ahead: every line
		// offline now would look unused, and a block stops its calls.
		f.Severity = SeverityInfo
		f.Message += "; but the system clock stepped ahead of the time elapsed (see the clock warning in the log), so its age may be the clock's: only reported until the clock is corrected, or for a day if it stays"
		r.find(f)
		return
	}
	f.Fixable = true
	f.Message += hint
	r.find(f)
	if !r.apply {
		return
	}
	p, blocked, err := r.env.SchedulePurge(ctx, name, r.job, reason)
	if err != nil {
		r.act(AuditAction{Kind: AuditActSchedulePurge, Subject: auditExtSubject(name), Message: "could not block and schedule the purge", Err: ErrorMessage(err)})
		return
	}
	r.pending[name] = p
	due := p.DueAt.UTC().Format("2006-01-02 15:04Z")
	msg := fmt.Sprintf("blocked; its PJSIP objects will be deleted after %s unless it is unblocked", due)
	if !blocked {
		msg = fmt.Sprintf("not in tollguard's store and no account to record it under, so not blocked (the gate denies unknown extensions unless allow_unknown is set); its PJSIP objects will be deleted after %s; to keep it, record it before then: tollguard ext add %s --account ACCOUNT --no-asterisk", due, name)
	}
	r.act(AuditAction{Kind: AuditActSchedulePurge, Subject: auditExtSubject(name), Message: msg})
}
