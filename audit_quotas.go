package tollguard

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// QuotasAudit compares Asterisk's endpoint list with the store: it
// flags endpoints created outside tollguard (unmanaged: the store has
// no record of them), accounts over their MaxExtensions or
// MaxCreatedPerDay, and more than CreationAlert extensions appearing in
// 24 h even within quota. Lines created by `ext add` and removed since
// still count against the day (ExtensionCreations): removing lines does
// not free the daily quota. With apply it blocks the newest extensions
// beyond each quota (recording unmanaged ones first, under the account
// their endpoint's accountcode names).
type QuotasAudit struct{}

func (QuotasAudit) Name() string { return "quotas" }

// quotaMember is one extension counted against an account.
type quotaMember struct {
	Name    string
	Created time.Time // zero: existed before tollguard first looked
	Blocked bool
	InStore bool
	Gone    bool // created for the account, since removed or moved away
}

func (QuotasAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "quotas", apply, p)
	s := env.Settings.WithDefaults()
	inv, err := r.inventory(ctx, "extensions created outside tollguard cannot be found and quotas are counted from the store alone")
	if err != nil {
		return r.result(err)
	}
	accts, err := env.Store.Accounts(ctx)
	if err != nil {
		return r.result(err)
	}
	known := map[string]*Account{}
	for _, a := range accts {
		known[a.ID] = a
	}
	members := map[string][]quotaMember{} // account → members; "" for unattributed
	for n, i := range inv {
		r.progress.report(n+1, len(inv), i.Name)
		if i.Store != nil {
			c := i.Store.CreatedAt
			switch {
			case i.Store.Managed:
			case i.Sighting.FirstSeen.IsZero():
				// Recorded (`ext add --no-asterisk`) for a line tollguard
				// never saw Asterisk list: no ARI, or not PJSIP. When it
				// was created is unknown, and `ext add` did not count it
				// as created either.
				c = time.Time{}
			case i.Sighting.Baseline:
				c = time.Time{}
			case i.Sighting.FirstSeen.Before(c):
				// Recorded after the fact: Asterisk may have had it first.
				// The earlier of the two, so a line back in Asterisk's
				// list after a while away is not new.
				c = i.Sighting.FirstSeen
			}
			members[i.Store.Account] = append(members[i.Store.Account], quotaMember{Name: i.Name, Created: c, Blocked: i.Store.Blocked, InStore: true})
			continue
		}
		// Only Asterisk has it: nobody recorded it in tollguard.
		acct := ""
		if ep, err := env.Asterisk.ConfigObject(ctx, "endpoint", i.Name); err == nil {
			acct = ep.Get("accountcode")
		}
		created := i.Sighting.FirstSeen
		if i.Sighting.Baseline {
			created = time.Time{}
		}
		msg := fmt.Sprintf("endpoint %s exists in Asterisk but not in tollguard: it was created outside `tollguard ext add`, so no quota, password rule or gate record covers it; if it is genuine, record it with `tollguard ext add %s --account ACCOUNT --no-asterisk`, else delete it", i.Name, i.Name)
		if known[acct] == nil {
			acct = ""
		} else {
			msg += fmt.Sprintf(" (its accountcode is %s)", acct)
		}
		r.find(AuditFinding{Check: AuditCheckUnmanaged, Severity: SeverityWarning, Subject: auditExtSubject(i.Name), Extension: i.Name, Account: acct,
			Message: msg, Evidence: map[string]any{"first_seen": auditTime(i.Sighting.FirstSeen), "baseline": i.Sighting.Baseline, "state": i.State}})
		members[acct] = append(members[acct], quotaMember{Name: i.Name, Created: created})
	}
	now := env.now()
	dayAgo := now.Add(-24 * time.Hour)
	creations, err := env.Store.ExtensionCreations(ctx, dayAgo)
	if err != nil {
		return r.result(err)
	}
	gone := map[string][]quotaMember{} // account → lines it created that it no longer has
	// A line left is one creation: re-created within the second it was
	// first added, its other record is a removed line.
	matched := map[[2]string]bool{} // account, line: matched to a creation
	for _, c := range creations {
		if known[c.Account] == nil {
			continue
		}
		key := [2]string{c.Account, c.Extension}
		if !matched[key] && slices.ContainsFunc(members[c.Account], func(m quotaMember) bool {
			return m.Name == c.Extension && m.Created.Equal(c.CreatedAt)
		}) {
			matched[key] = true
			continue
		}
		gone[c.Account] = append(gone[c.Account], quotaMember{Name: c.Extension, Created: c.CreatedAt, Gone: true})
	}
	// A creation time ahead of the clock means the clock went back (a
	// box without an RTC before its time sync): such lines are of no
	// known age, and counting them as new would block a year's lines
	// over the daily quota.
	future := now.Add(DefaultClockTolerance)
	var ahead []string
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	for id := range gone {
		if members[id] == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		ms := newestFirst(members[id])
		var recent []quotaMember
		all := newestFirst(append(slices.Clip(ms), gone[id]...))
		for _, m := range all {
			switch {
			case m.Created.After(future):
				ahead = append(ahead, m.Name)
			case m.Created.After(dayAgo):
				recent = append(recent, m)
			}
		}
		subj, label := "account:"+id, "account "+id
		if id == "" {
			subj, label = "asterisk", "endpoints with no tollguard account"
		}
		a := known[id]
		if a != nil && a.MaxExtensions > 0 && len(ms) > a.MaxExtensions {
			r.overQuota(ctx, AuditFinding{Check: AuditCheckOverQuota, Subject: subj, Account: id,
				Message:  fmt.Sprintf("%s has %d extensions, over its quota of %d", label, len(ms), a.MaxExtensions),
				Evidence: map[string]any{"count": len(ms), "max_extensions": a.MaxExtensions, "newest": memberNames(ms, len(ms)-a.MaxExtensions)}},
				ms[:len(ms)-a.MaxExtensions], id, "over the account's quota of extensions")
		}
		if a != nil && a.MaxCreatedPerDay > 0 && len(recent) > a.MaxCreatedPerDay {
			r.overQuota(ctx, AuditFinding{Check: AuditCheckOverDailyQuota, Subject: subj, Account: id,
				Message:  fmt.Sprintf("%s got %d new extensions in 24 h, over its quota of %d a day", label, len(recent), a.MaxCreatedPerDay),
				Evidence: map[string]any{"created_24h": len(recent), "max_created_per_day": a.MaxCreatedPerDay, "newest": memberNames(recent, len(recent)-a.MaxCreatedPerDay)}},
				recent[:len(recent)-a.MaxCreatedPerDay], id, "over the account's quota of extensions created per day")
		}
		if s.CreationAlert > 0 && len(recent) > s.CreationAlert {
			r.find(AuditFinding{Check: AuditCheckCreationBurst, Severity: SeverityWarning, Subject: subj, Account: id,
				Message: fmt.Sprintf("%d extensions appeared in the last 24 h for %s (alert threshold %d): check that someone meant to create them (%s)",
					len(recent), label, s.CreationAlert, strings.Join(memberNames(recent, len(recent)), ", ")),
				Evidence: map[string]any{"created_24h": len(recent), "threshold": s.CreationAlert, "extensions": memberNames(recent, len(recent))}})
		}
	}
	if len(ahead) > 0 {
		sort.Strings(ahead)
		r.find(AuditFinding{Check: AuditCheckClock, Severity: SeverityWarning, Subject: "clock",
			Message: fmt.Sprintf("%d extensions were created after the system clock's time (%s): the clock went back, so they are not counted against the daily quotas until it is right; check the clock (timedatectl)",
				len(ahead), now.UTC().Format(time.RFC3339)),
			Evidence: map[string]any{"now": now.UTC(), "extensions": ahead}})
	}
	return r.result(nil)
}

// newestFirst sorts ms newest first, in place; unknown creation times
// count as oldest.
func newestFirst(ms []quotaMember) []quotaMember {
	sort.SliceStable(ms, func(a, b int) bool {
		if !ms[a].Created.Equal(ms[b].Created) {
			return ms[a].Created.After(ms[b].Created)
		}
		return ms[a].Name > ms[b].Name
	})
	return ms
}

func memberNames(ms []quotaMember, n int) []string {
	out := make([]string, 0, n)
	for _, m := range ms[:n] {
		if m.Gone {
			out = append(out, m.Name+" (removed)")
			continue
		}
		out = append(out, m.Name)
	}
	return out
}

// overQuota reports an account over a quota and, with apply, blocks
// the excess (the newest). When every excess extension is blocked
// already, the finding is info: it was acted on.
func (r *auditRun) overQuota(ctx context.Context, f AuditFinding, excess []quotaMember, account, why string) {
	open, gone := 0, 0
	for _, m := range excess {
		switch {
		case m.Gone:
			gone++
		case !m.Blocked:
			open++
		}
	}
	f.Severity = SeverityWarning
	if open == 0 && gone > 0 {
		was, rest := "were", ", the rest are blocked"
		if gone == 1 {
			was = "was"
		}
		if gone == len(excess) {
			rest = ""
		}
		f.Message += fmt.Sprintf("; %d of the newest beyond the quota %s removed since (removing a line does not free the daily quota)%s: check who created them", gone, was, rest)
	} else if open == 0 {
		f.Severity = SeverityInfo
		f.Message += "; the newest beyond the quota are blocked already: delete the ones nobody needs"
	} else {
		f.Message += "; run `tollguard audit quotas --apply` to block the newest beyond the quota, or raise the quota"
		f.Fixable = true
	}
	r.find(f)
	if !r.apply || account == "" {
		return
	}
	if r.blocked == nil {
		r.blocked = map[string]bool{}
	}
	for _, m := range excess {
		if m.Gone || m.Blocked || r.blocked[m.Name] {
			continue // removed: nothing to block; over both quotas: blocked once
		}
		subj := auditExtSubject(m.Name)
		if !m.InStore {
			ext, err := r.env.adopt(ctx, m.Name)
			if err != nil || ext == nil {
				r.act(AuditAction{Kind: AuditActBlock, Subject: subj, Message: "could not record the unmanaged extension in tollguard to block it", Err: errText(err, "its accountcode names no account")})
				continue
			}
			r.act(AuditAction{Kind: AuditActAdopt, Subject: subj, Message: "recorded the unmanaged extension in tollguard under account " + account})
		}
		_, err := r.env.Store.Block(ctx, Block{Kind: BlockExtension, Subject: m.Name, SetBy: "audit:quotas", Reason: why + "; lift with `tollguard unblock " + m.Name + "` once the account is within quota", SetAt: r.env.now()})
		if err != nil {
			r.act(AuditAction{Kind: AuditActBlock, Subject: subj, Message: "could not block", Err: ErrorMessage(err)})
			continue
		}
		r.blocked[m.Name] = true
		r.act(AuditAction{Kind: AuditActBlock, Subject: subj, Message: "blocked: " + why})
	}
}

func errText(err error, otherwise string) string {
	if err != nil {
		return ErrorMessage(err)
	}
	return otherwise
}
