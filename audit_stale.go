package tollguard

import (
	"context"
	"fmt"
	"time"
)

// StaleAudit finds extensions with no registration and no call for
// StaleAfter (default 60 days): a departed employee's phone, a test
// line nobody removed. With apply it blocks them and, after the grace
// period, deletes their PJSIP objects keeping a snapshot.
type StaleAudit struct{}

func (StaleAudit) Name() string { return "stale" }

func (StaleAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "stale", apply, p)
	s := env.Settings.WithDefaults()
	inv, uses, err := r.purgeSweep(ctx, "extensions only Asterisk knows are not audited and the store's cannot be checked against their live state")
	if err != nil {
		return r.result(err)
	}
	now := env.now()
	cutoff := now.Add(-s.StaleAfter)
	days := int(s.StaleAfter / (24 * time.Hour))
	for n, i := range inv {
		r.progress.report(n+1, len(inv), i.Name)
		seen, _ := lastUse(i, uses)
		if seen.After(cutoff) {
			continue
		}
		// Before calling it stale, ask Asterisk whether it is alive now:
		// the listener may have been down when it last registered, and
		// an extension tollguard has never seen has no history at all.
		alive, how, unsure := r.aliveNow(ctx, i)
		if alive {
			if i.Store != nil {
				if err := env.Store.TouchExtension(ctx, i.Name, now.Unix()); err != nil {
					return r.result(err)
				}
			}
			env.logger().Debug("extension looked stale but is alive in Asterisk", LogExtension, i.Name, "how", how)
			continue
		}
		known := i.knownSince()
		if seen.IsZero() && known.After(cutoff) {
			continue // too new to judge
		}
		msg := fmt.Sprintf("no registration and no call for %d days", days)
		if seen.IsZero() {
			msg = fmt.Sprintf("never seen registering or calling since tollguard first saw it (%s), over %d days", known.UTC().Format("2006-01-02"), days)
		} else {
			msg += fmt.Sprintf(" (last seen %s)", seen.UTC().Format("2006-01-02"))
		}
		msg += "; if nobody uses it, remove it" // purgeCandidate adds how, when --apply would
		f := AuditFinding{Check: AuditCheckStale, Severity: SeverityWarning, Subject: auditExtSubject(i.Name), Extension: i.Name, Account: i.account(),
			Message: msg, Evidence: map[string]any{"last_seen": auditTime(seen), "known_since": auditTime(known), "state": i.State,
				"in_asterisk": i.InAsterisk, "in_store": i.Store != nil, "stale_after_days": days}}
		if i.storeOnly(r.env) {
			f.Severity = SeverityInfo
			f.Message = fmt.Sprintf("in tollguard's store but not in Asterisk, and unused for %d days; %s", days, storeOnlyAdvice(i.Name))
			r.find(f)
			continue
		}
		why, err := r.trunkLike(ctx, i)
		if why != "" {
			f.Severity = SeverityInfo
			f.Message = fmt.Sprintf("endpoint %s looks like a trunk, not a phone: %s. Trunks never register here, so it is not treated as stale; add it to [audit] ignore to silence this", i.Name, why)
			r.find(f)
			continue
		}
		if unsure == nil {
			unsure = err
		}
		if unsure != nil {
			// A read that failed proves nothing unused: a registered
			// phone whose qualify fails reads offline, and only its aor
			// shows the registration.
			r.find(unsureFinding(f, unsure))
			continue
		}
		r.purgeCandidate(ctx, f, fmt.Sprintf("stale: no registration and no call for %d days", days),
			": run `tollguard audit stale --apply` to block it and purge it after the grace period")
	}
	return r.result(nil)
}

// trunkLike reports why Asterisk's endpoint i looks like a trunk, not a
// phone: no inbound auth (matched by IP through an identify) or an
// outbound_auth (it registers to a provider). A trunk never registers
// here nor passes the gate, so it looks stale and unused; deleting it
// would cut the PBX off. "" when it looks like a phone, or is gone; err
// when Asterisk could not be asked (then it may be a trunk).
func (r *auditRun) trunkLike(ctx context.Context, i *extInfo) (string, error) {
	if !i.InAsterisk || r.env.Asterisk == nil {
		return "", nil
	}
	ep, err := r.env.Asterisk.ConfigObject(ctx, "endpoint", i.Name)
	if ErrorCode(err) == ENOTFOUND {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return trunkReason(ep), nil
}

// unsureFinding is f, reported only: Asterisk could not be asked
// whether the extension is in use, or is a trunk, so nothing is done
// this run.
func unsureFinding(f AuditFinding, err error) AuditFinding {
	f.Message += "; but Asterisk could not be asked whether it is in use now, or is a trunk (" + ErrorMessage(err) + "), so tollguard only reports it this run"
	return f
}

// trunkReason is trunkLike for an endpoint object already read.
func trunkReason(ep ConfigObject) string {
	switch {
	case ep.Get("outbound_auth") != "":
		return "it has an outbound_auth (it registers to a provider)"
	case ep.Get("auth") == "":
		return "it has no inbound auth (matched by IP)"
	}
	return ""
}

// lastUse is when the extension was last seen registered or calling,
// whichever is later, and which it was.
func lastUse(i *extInfo, u lastUses) (at time.Time, how string) {
	if i.Store != nil {
		at, how = i.Store.LastSeen, "last seen"
	}
	if c := u.calls[i.Name]; c.After(at) {
		at, how = c, "last call"
	}
	// The listener records the registrations of every endpoint, and
	// touches last-seen only on the store's extensions: a line only
	// Asterisk knows shows its use here alone.
	if reg := u.registered[i.Name]; reg.After(at) {
		at, how = reg, "last registered"
	}
	// A restore is the admin saying the line is wanted: it gets a whole
	// stale period from then, or the next run would purge it again.
	if r := u.restored[i.Name]; r.After(at) {
		at, how = r, "restored"
	}
	return at, how
}

// knownSince is when tollguard first knew of extension i: created in
// the store or first seen in Asterisk, whichever is earlier.
func (i *extInfo) knownSince() time.Time {
	known := i.Sighting.FirstSeen
	if i.Store != nil && !i.Store.CreatedAt.IsZero() && (known.IsZero() || i.Store.CreatedAt.Before(known)) {
		known = i.Store.CreatedAt
	}
	return known
}

// lastUses is when each extension last called (through the gate) and
// last registered (seen by the ARI listener).
type lastUses struct{ calls, registered, restored map[string]time.Time }

// purgeSweep is how the stale and tests audits begin, as both block
// extensions and purge them after the grace period: finish the purges
// that are due, load those still pending, then list the extensions (why:
// what goes unchecked without Asterisk) and when each was last used.
func (r *auditRun) purgeSweep(ctx context.Context, why string) ([]*extInfo, lastUses, error) {
	if err := r.processDuePurges(ctx); err != nil {
		return nil, lastUses{}, err
	}
	if err := r.loadPending(ctx); err != nil { // what is still pending after that
		return nil, lastUses{}, err
	}
	inv, err := r.inventory(ctx, why)
	if err != nil {
		return nil, lastUses{}, err
	}
	uses, err := r.lastUses(ctx)
	if err != nil {
		return nil, lastUses{}, err
	}
	return inv, uses, nil
}

func (r *auditRun) lastUses(ctx context.Context) (lastUses, error) {
	var u lastUses
	var err error
	if u.calls, err = r.env.Store.LastCalls(ctx); err != nil {
		return u, fmt.Errorf("read last calls: %w", err)
	}
	if u.registered, err = r.env.Store.LastRegistered(ctx); err != nil {
		return u, fmt.Errorf("read last registrations: %w", err)
	}
	if u.restored, err = r.env.Store.LastRestored(ctx); err != nil {
		return u, fmt.Errorf("read last restores: %w", err)
	}
	return u, nil
}

// inUse says how extension i shows use: registered or called since
// since, or registered now. "" when it shows none; err when Asterisk
// could not be asked.
func (r *auditRun) inUse(ctx context.Context, i *extInfo, uses lastUses, since time.Time) (string, error) {
	if at, how := lastUse(i, uses); at.After(since) {
		return how + " " + at.UTC().Format("2006-01-02"), nil
	}
	alive, how, err := r.aliveNow(ctx, i)
	if alive {
		return how, nil
	}
	return "", err
}

// aliveNow asks Asterisk whether extension i is online or has a
// contact right now. err says Asterisk could not be asked (a read that
// failed other than "not found"): i may be alive.
func (r *auditRun) aliveNow(ctx context.Context, i *extInfo) (bool, string, error) {
	if !i.InAsterisk || r.env.Asterisk == nil {
		return false, "", nil
	}
	if i.State == "online" {
		return true, "endpoint online", nil
	}
	ep, err := r.env.Asterisk.ConfigObject(ctx, "endpoint", i.Name)
	if ErrorCode(err) == ENOTFOUND {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("read endpoint %s: %w", i.Name, err)
	}
	var unsure error
	for _, aor := range splitObjectIDs(ep.Get("aors")) {
		obj, err := r.env.Asterisk.ConfigObject(ctx, "aor", aor)
		if ErrorCode(err) == ENOTFOUND {
			continue
		}
		if err != nil {
			unsure = fmt.Errorf("read aor %s: %w", aor, err)
			continue
		}
		for _, c := range obj.All("contact") {
			if c != "" {
				return true, "contact " + c, nil
			}
		}
	}
	return false, "", unsure
}

func auditTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}
