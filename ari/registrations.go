package ari

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"

	"github.com/tollguard/tollguard"
)

// regLoop handles registration work in order, off the events' path:
// contact events need a REST read each, and a resynchronisation many.
func (l *Listener) regLoop(ctx context.Context) {
	rs := &regState{warned: make(map[string]bool), aclWarned: make(map[string]string)}
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-l.regQ:
			l.regJob(ctx, j, rs)
		}
	}
}

// regState is the registration goroutine's memory, kept across
// reconnects (not across a restart of tollguard).
type regState struct {
	// warned: extensions whose untrusted-address line was logged.
	warned map[string]bool
	// aclWarned: for each live contact whose access-list warning was
	// raised, that warning's text (it names the address and the allowed
	// networks). A contact judged again unchanged (a refresh event, a
	// resync after Asterisk restarted, the periodic pass) is warned again
	// only when the text differs: the list was changed since. Only
	// contacts outside their list are held, and only while live.
	aclWarned map[string]string
	// resyncFrom is the endpoint a resync cut short by its time bound
	// stopped at: the next pass starts there.
	resyncFrom string
}

// maxRegMemory bounds each of regState's maps; past it they start over
// (a warning may then repeat once).
const maxRegMemory = 10_000

// forget drops what is remembered of a contact that ended.
func (rs *regState) forget(id string) { delete(rs.aclWarned, id) }

func (l *Listener) regJob(ctx context.Context, j regJob, rs *regState) {
	defer l.survive("handling a registration")
	switch {
	case j.resync:
		l.resync(ctx, rs, j.connect, j.trigger)
	case j.reread != "":
		// Events folded from now on need another read: this one may be
		// past them.
		l.regMu.Lock()
		delete(l.regReread, j.reread)
		l.regMu.Unlock()
		j.reread, j.endpoint = "", j.reread
		defer l.dequeued(j)
		l.rereadEndpoint(ctx, j.endpoint, rs)
	default:
		defer l.dequeued(j)
		l.contactEvent(ctx, j.ev, j.at, rs)
	}
}

// rereadEndpoint reads endpoint ep's contacts in place of the events it
// sent past its share of the queue: each is judged as a resync judges
// it, and the live ones Asterisk no longer has end.
func (l *Listener) rereadEndpoint(ctx context.Context, ep string, rs *regState) {
	at := l.Now()
	found, err := l.endpointContacts(ctx, ep)
	if err != nil {
		l.log.Warn("reading an endpoint's contacts in place of its events failed; a resynchronisation reads them",
			tollguard.LogExtension, ep, tollguard.LogError, tollguard.ErrorMessage(err))
		l.needResync.Store(true)
		return
	}
	seen := make(map[string]bool, len(found))
	for _, f := range found {
		f.c.LastSeen = at
		l.observe(ctx, f.c, f.warn, at, rs, nil)
		seen[f.c.ID] = true
	}
	live, err := l.Store.LiveContacts(ctx)
	if err != nil {
		l.storeRetry()
		l.log.Error("listing live registrations failed; the next resync ends those gone. "+tollguard.CheckStore, tollguard.LogExtension, ep, tollguard.LogError, err)
		return
	}
	for _, c := range live {
		if c.Extension != ep || seen[c.ID] {
			continue
		}
		rs.forget(c.ID)
		if was, err := l.Store.ContactGone(ctx, c.ID, at); err != nil {
			l.storeRetry()
			l.log.Error("recording a removed contact failed; the next resync reads it again. "+tollguard.CheckStore, "contact", c.ID, tollguard.LogError, err)
		} else if was {
			l.log.Info("registration ended", tollguard.LogExtension, ep, "contact", c.URI)
		}
	}
}

// contactEvent handles a ContactStatusChange: fetch the contact object
// (user agent, address) for a registration, judge it, record it.
func (l *Listener) contactEvent(ctx context.Context, ev *ariv5.ContactStatusChange, at time.Time, rs *regState) {
	aor, uri, status, ep := ev.ContactInfo.Aor, ev.ContactInfo.Uri, ev.ContactInfo.ContactStatus, ev.Endpoint.Resource
	if aor == "" || uri == "" {
		l.log.Warn("ContactStatusChange without an AOR or URI; skipped", "aor", aor, "uri", uri, "status", status)
		return
	}
	if at.IsZero() {
		at = l.Now()
	}
	id := tollguard.ContactID(aor, uri)
	switch {
	case tollguard.ContactPresent(status):
		var c tollguard.Contact
		var warn string
		obj, err := l.Client.ConfigObject(ctx, "contact", id)
		switch tollguard.ErrorCode(err) {
		case "":
			c, warn = tollguard.ContactFromObject(aor, ep, obj)
		case tollguard.ENOTFOUND:
			// Either a permanent contact (an AOR's contact= in
			// pjsip.conf, id <aor>@@<md5>, not in sorcery: its qualify
			// results come as ContactStatusChange too), or a
			// registration gone again already. The AOR still lists a
			// permanent one.
			if a, aerr := l.Client.ConfigObject(ctx, "aor", aor); aerr == nil && contains(a.All("contact"), uri) {
				l.log.Debug("contact status of a permanent contact; not a registration", "aor", aor, "uri", uri, "status", status)
				return
			}
			c, warn = tollguard.ContactFromURI(aor, ep, uri)
		default:
			l.log.Warn("could not read the contact object; judging the registration from its URI alone (no user agent)",
				"contact", id, tollguard.LogExtension, ep, tollguard.LogError, tollguard.ErrorMessage(err))
			c, warn = tollguard.ContactFromURI(aor, ep, uri)
		}
		// Only a contact whose host is its own claim can change: read the
		// endpoint for it alone, not on every registration event.
		if c.AddrSource == tollguard.AddrContact && l.rewritesContact(ctx, c.Extension) {
			warn = c.HostIsSource(warn)
		}
		c.Status, c.LastSeen = status, at
		l.observe(ctx, c, warn, at, rs, nil)
	case status == tollguard.ContactRemoved:
		rs.forget(id)
		was, err := l.Store.ContactGone(ctx, id, at)
		if err != nil {
			l.storeRetry()
			l.log.Error("recording a removed contact failed; the next resync reads it again. "+tollguard.CheckStore, "contact", id, tollguard.LogError, err)
		} else if was {
			l.log.Info("registration ended", tollguard.LogExtension, orEndpoint(ep, aor), "contact", uri)
		}
	case status == tollguard.ContactUnreachable || status == tollguard.ContactUnknown:
		// A qualify result, or a REGISTER refreshing the contact: Asterisk
		// publishes the contact's current status again on every refresh
		// (pjsip_options.c sip_options_contact_update_task), and the
		// refresh may come from another phone with the same Contact. So a
		// registered contact is judged again; observe alerts only when its
		// address or user agent changed.
		obj, err := l.Client.ConfigObject(ctx, "contact", id)
		if err != nil {
			// A permanent contact (no sorcery object), one gone since, or
			// ARI failing: the status alone; a resync reads it later.
			if tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
				l.log.Debug("could not read the contact object; recording its status only",
					"contact", id, tollguard.LogExtension, ep, tollguard.LogError, tollguard.ErrorMessage(err))
			}
			if err := l.Store.SetContactStatus(ctx, id, status, at); err != nil {
				l.log.Error("recording a contact status failed. "+tollguard.CheckStore, "contact", id, tollguard.LogError, err)
			}
			return
		}
		c, warn := tollguard.ContactFromObject(aor, ep, obj)
		if c.AddrSource == tollguard.AddrContact && l.rewritesContact(ctx, c.Extension) {
			warn = c.HostIsSource(warn)
		}
		if c.ID == "" {
			c.ID, c.URI = id, uri
		}
		c.Status, c.LastSeen = status, at
		l.observe(ctx, c, warn, at, rs, nil)
	default:
		l.log.Debug("contact status not tracked", "contact", id, "status", status)
	}
}

// rewritesContact reports whether endpoint ep has rewrite_contact=yes,
// which makes its contacts' hosts the packets' sources. Unreadable, it
// is taken as no: the address is then trusted only when public.
func (l *Listener) rewritesContact(ctx context.Context, ep string) bool {
	if ep == "" {
		return false
	}
	obj, err := l.Client.ConfigObject(ctx, "endpoint", ep)
	if err != nil {
		l.log.Debug("could not read the endpoint's rewrite_contact; trusting the contact host only if public",
			tollguard.LogExtension, ep, tollguard.LogError, tollguard.ErrorMessage(err))
		return false
	}
	return obj.Bool("rewrite_contact")
}

func orEndpoint(ep, aor string) string {
	if ep != "" {
		return ep
	}
	return aor
}

// observe records a registered contact and acts on the judgement: new
// address or phone alerts, and for a contact from outside the access
// list, lockdown (remove the contact, block the extension, alert).
//
// first, when not nil, collects the extensions with no registration
// before this pass; their later contacts in the pass are judged as first
// registrations too. A contact already live here with the address and
// user agent it had (a refresh event, a resync) was judged when it
// registered: only a lockdown, or an access-list warning it was not
// given yet (rs.aclWarned), is acted on again. It reports whether c is
// a registration the store did not hold live, and whether it is one the
// store held with another address or user agent.
func (l *Listener) observe(ctx context.Context, c tollguard.Contact, warn string, at time.Time, rs *regState, first map[string]bool) (registered, changed bool) {
	if warn != "" && !rs.warned[c.Extension] {
		if len(rs.warned) > maxRegMemory {
			clear(rs.warned)
		}
		rs.warned[c.Extension] = true
		l.log.Warn(warn, tollguard.LogExtension, c.Extension)
	}
	ext, err := l.Store.Extension(ctx, c.Extension)
	if err != nil && tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		// No event repeats a registration: only reading the contacts
		// again judges it, so that an outside one is still locked down.
		l.storeRetry()
		l.log.Error("looking up a registering extension failed; the registration is judged at the next resynchronisation. "+tollguard.CheckStore, tollguard.LogExtension, c.Extension, tollguard.LogError, err)
		return false, false
	}
	var acct *tollguard.Account
	if ext != nil {
		if acct, err = l.Store.Account(ctx, ext.Account); err != nil && tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			l.log.Error("looking up an account failed; the registration is judged without the account's alert settings. "+tollguard.CheckStore, tollguard.LogAccount, ext.Account, tollguard.LogError, err)
		}
	}
	hist, err := l.Store.ObserveContact(ctx, c)
	if err != nil {
		l.storeRetry()
		l.log.Error("recording a registration failed; it is judged at the next resynchronisation. "+tollguard.CheckStore, tollguard.LogExtension, c.Extension, "contact", c.ID, tollguard.LogError, err)
		return false, false
	}
	// The store records again: a resync still due for what it missed
	// (a registration from outside the access list among them) runs at
	// the next tick, not when the backoff for a broken store runs out.
	// Not when the store is broken for some rows only: its other rows
	// were recorded in the resync that failed too.
	l.storeOKs++
	if !l.resyncPartial {
		l.resyncAfter.Store(0)
	}
	if first != nil {
		if !hist.Registered {
			first[c.Extension] = true
		} else if first[c.Extension] {
			hist.Registered = false
		}
	}
	if ext != nil {
		if err := l.Store.TouchExtension(ctx, ext.Name, at.Unix()); err != nil {
			l.log.Error("recording when an extension was last seen failed; the stale audit may take it for unused. "+tollguard.CheckStore, tollguard.LogExtension, ext.Name, tollguard.LogError, err)
		}
	}
	registered = hist.Previous == nil || !hist.Previous.Live
	if registered {
		l.log.Info("registration", tollguard.LogExtension, c.Extension, tollguard.LogRemote, c.IP, "port", c.Port,
			"user_agent", c.UserAgent, "address_from", c.AddrSource, "contact", c.URI)
	}
	// Asterisk refreshes a contact in place (same URI, same id) with the
	// new REGISTER's user agent; its event carries no user agent, and a
	// dropped one leaves it to a resync: another phone may be behind a
	// live contact.
	if !registered {
		p := hist.Previous
		changed = c.UserAgent != "" && c.UserAgent != p.UserAgent || c.IP != "" && c.IP != p.IP
	}
	v := tollguard.JudgeContact(ext, acct, hist, c, at)
	again := !registered && !changed
	acl := ""
	for _, f := range v.Findings {
		if accessListWarning(f) {
			acl = f.Message
		}
	}
	if acl == "" || v.Lockdown {
		delete(rs.aclWarned, c.ID)
	}
	findings := v.Findings[:0:0]
	for _, f := range v.Findings {
		switch {
		case !again || v.Lockdown:
		case accessListWarning(f) && rs.aclWarned[c.ID] != f.Message:
			// Not warned yet for this contact as it is now: the list was
			// tightened after it registered (or tollguard restarted).
		default:
			l.log.Debug("not alerting again for a contact already registered", tollguard.LogExtension, c.Extension, "contact", c.ID, tollguard.LogKind, f.Kind)
			continue
		}
		if accessListWarning(f) && !v.Lockdown {
			if len(rs.aclWarned) > maxRegMemory {
				clear(rs.aclWarned)
			}
			rs.aclWarned[c.ID] = f.Message
		}
		findings = append(findings, f)
	}
	v.Findings = findings
	for _, f := range v.Findings {
		if v.Lockdown && f.Action == tollguard.ActionBlockExtension {
			msg, removed := l.removeContact(ctx, c, at)
			f.Message = strings.TrimSuffix(f.Message, ".") + ". " + msg
			f.Evidence["contact_removed"] = removed
			if ext.Blocked {
				// Blocked already (the attacker keeps registering): one
				// block in the history is enough; the alert repeats.
				f.Action = tollguard.ActionAlert
				f.Message += fmt.Sprintf(" (the extension is blocked already, by %s: %s)", ext.BlockedBy, ext.BlockReason)
			}
		}
		l.act(ctx, f)
	}
	return registered, changed
}

// accessListWarning reports whether f is the warning (not the lockdown)
// of a contact outside its extension's allowed networks, or of one whose
// address cannot be checked against them.
func accessListWarning(f tollguard.Finding) bool {
	return f.Kind == tollguard.AlertCredentialsCompromised && f.Action != tollguard.ActionBlockExtension
}

// removeContact deletes a contact through ARI and says how it went.
func (l *Listener) removeContact(ctx context.Context, c tollguard.Contact, at time.Time) (string, bool) {
	err := l.Client.DeleteConfigObject(ctx, "contact", c.ID)
	switch tollguard.ErrorCode(err) {
	case "", tollguard.ENOTFOUND:
		if _, err := l.Store.ContactGone(ctx, c.ID, at); err != nil {
			l.storeRetry()
			l.log.Error("recording a removed contact failed; the next resync reads it again. "+tollguard.CheckStore, "contact", c.ID, tollguard.LogError, err)
		}
		l.log.Warn("removed a contact registered from outside the extension's access list", tollguard.LogExtension, c.Extension, tollguard.LogRemote, c.IP, "contact", c.ID)
		return "tollguard removed the contact from Asterisk.", true
	case tollguard.EFORBIDDEN:
		l.log.Error("Asterisk refused to remove an attacker's contact", tollguard.LogExtension, c.Extension, "contact", c.ID, tollguard.LogError, tollguard.ErrorMessage(err))
		return "Asterisk REFUSED to remove the contact: " + tollguard.ErrorMessage(err) +
			". Until it is removed (or the password changed) the attacker stays registered and receives this extension's calls; its outgoing calls are denied by the block.", false
	default:
		l.log.Error("could not remove an attacker's contact", tollguard.LogExtension, c.Extension, "contact", c.ID, tollguard.LogError, tollguard.ErrorMessage(err))
		return "tollguard could NOT remove the contact (" + tollguard.ErrorMessage(err) + "); change the password so it cannot register again.", false
	}
}

type foundContact struct {
	c    tollguard.Contact
	warn string
}

// storeRetry asks for a resync after a store failure.
func (l *Listener) storeRetry() {
	l.storeRetries.Add(1)
	l.needResync.Store(true)
}

// resync reads every PJSIP endpoint's live contacts through ARI and
// judges them as if their registrations were seen live; contacts the
// store thinks live but Asterisk no longer has are marked gone. One
// after a connect logs its summary at INFO; another only when it found,
// changed or ended a registration, DEBUG otherwise: a periodic line
// saying nothing changed is noise.
func (l *Listener) resync(ctx context.Context, rs *regState, connect bool, trigger string) {
	start := l.Now()
	failures, oks := l.storeRetries.Load(), l.storeOKs
	defer func() {
		// A store still failing through a whole resync is broken, not
		// busy: the next try waits, longer each time.
		l.resyncPartial = l.storeRetries.Load() != failures && l.storeOKs != oks
		if l.storeRetries.Load() == failures {
			l.resyncBackoff = 0
			l.resyncAfter.Store(0)
			return
		}
		l.resyncBackoff = min(max(2*l.resyncBackoff, storeRetryMin), storeRetryMax)
		l.resyncAfter.Store(l.Now().Add(l.resyncBackoff).UnixNano())
	}()
	if connect {
		// A new cycle: after a reconnect every endpoint is read again.
		rs.resyncFrom = ""
	}
	found, left, before, err := l.readContacts(ctx, rs.resyncFrom)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		l.log.Error("resynchronising registrations failed; retrying while connected", tollguard.LogError, tollguard.ErrorMessage(err))
		l.needResync.Store(true)
		l.setState(func(s *State) { s.LastResync, s.LastResyncErr = start, tollguard.ErrorMessage(err) })
		l.hooks.Resynced(ResyncReport{Trigger: trigger, Result: ResyncError, Err: err})
		return
	}
	seen := make(map[string]bool, len(found))
	// Extensions this resync finds for the first time (a first start, a
	// new extension registered while tollguard was away): all their
	// contacts are their first registration, not a desk phone followed
	// by a "new" softphone.
	first := make(map[string]bool)
	added, changed := 0, 0
	for _, f := range found {
		f.c.LastSeen = start
		switch reg, ch := l.observe(ctx, f.c, f.warn, start, rs, first); {
		case reg:
			added++
		case ch:
			changed++
		}
		seen[f.c.ID] = true
	}
	// Endpoints this pass did not read: those it left, and those a pass
	// continuing its cycle starts after (read earlier in the cycle).
	unchecked := make(map[string]bool, len(left)+len(before))
	for _, ep := range left {
		unchecked[ep] = true
	}
	for _, ep := range before {
		unchecked[ep] = true
	}
	live, err := l.Store.LiveContacts(ctx)
	if err != nil {
		l.log.Error("listing live registrations failed", tollguard.LogError, err)
	}
	gone := 0
	var ended []string // extensions, for the summary of a quiet resync
	for _, c := range live {
		if seen[c.ID] || unchecked[c.Extension] {
			continue
		}
		rs.forget(c.ID)
		if was, err := l.Store.ContactGone(ctx, c.ID, start); err != nil {
			l.log.Error("recording a removed contact failed; the next resync reads it again. "+tollguard.CheckStore, "contact", c.ID, tollguard.LogError, err)
		} else if was {
			gone++
			if connect {
				l.log.Info("registration ended while tollguard was not listening", tollguard.LogExtension, c.Extension, "contact", c.URI)
				continue
			}
			l.log.Debug("registration ended without a removal event", tollguard.LogExtension, c.Extension, "contact", c.URI)
			if len(ended) < 20 && !contains(ended, c.Extension) {
				ended = append(ended, c.Extension)
			}
		}
	}
	l.setState(func(s *State) { s.LastResync, s.LastResyncErr, s.ResyncContacts = start, "", len(found) })
	took := l.Now().Sub(start).Round(time.Millisecond)
	rs.resyncFrom = ""
	if len(left) > 0 {
		// The rest waits for the queued events, not for the next hour.
		rs.resyncFrom = left[0]
		l.needResync.Store(true)
		l.log.Warn("registration resync reached its time bound (Asterisk answering slowly?): the endpoints left were not checked; the next pass continues with them once the queued registration events are handled",
			"bound", l.Client.Config().ResyncBudget.String(), "left", len(left), "left_endpoints", joinUpTo(left, 20), "contacts", len(found), "took", took)
	}
	switch {
	case connect:
		l.log.Info("registrations resynchronised", "contacts", len(found), "new", added, "gone", gone, "took", took)
	case added > 0 || gone > 0 || changed > 0:
		// No event came for these: a registration missed, contacts
		// Asterisk dropped with their AOR (deleted, or reconfigured), or
		// refreshed from another phone.
		l.log.Info("registrations resynchronised: Asterisk's contacts differed from what its events said",
			"contacts", len(found), "new", added, "gone", gone, "ended_extensions", strings.Join(ended, ","), "changed", changed, "took", took)
	default:
		l.log.Debug("registrations resynchronised; nothing changed", "contacts", len(found), "took", took)
	}
	r := ResyncReport{Trigger: trigger, Result: ResyncOK, Contacts: len(found), New: added, Changed: changed, Ended: gone}
	if len(left) > 0 {
		r.Result = ResyncPartial
	}
	l.hooks.Resynced(r)
}

// readContacts lists the PJSIP endpoints' live contacts: each
// endpoint's AORs, each AOR's contact URIs, each contact object. It
// starts at endpoint from (where a pass cut short stopped; "" for the
// first of a cycle) and ends at the last endpoint, not wrapping around:
// a cycle too long for one pass then still ends, rather than passes
// running back to back while Asterisk is slow. The endpoints before
// from are returned in before. It feeds endpoints to its readers for
// ResyncBudget at most; the reads under way then get one RequestTimeout
// more. The endpoints it did not read are returned in left, the next
// pass's start first. Any error but a missing object or that bound fails
// the whole read: a partial view must never mark registered contacts as
// gone (resync leaves those of the endpoints left and before alone).
func (l *Listener) readContacts(ctx context.Context, from string) (found []foundContact, left, before []string, err error) {
	eps, err := l.Client.Endpoints(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	var names []string
	for _, e := range eps {
		if e.Technology == "PJSIP" {
			names = append(names, e.Resource)
		}
	}
	sort.Strings(names)
	i := sort.SearchStrings(names, from)
	names, before = names[i:], names[:i]

	cfg := l.Client.Config()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	var (
		mu       sync.Mutex
		out      []foundContact
		firstErr error
		unread   = make(map[string]bool) // cut off while being read
		cut      bool                    // under mu
		wg       sync.WaitGroup
	)
	fail := func(ep string, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cut:
			unread[ep] = true
		case firstErr == nil:
			firstErr = err
			cancel()
		}
	}
	for i := 0; i < cfg.ResyncWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ep := range jobs {
				fs, err := l.endpointContacts(ctx, ep)
				if err != nil {
					fail(ep, err)
					continue
				}
				mu.Lock()
				out = append(out, fs...)
				mu.Unlock()
			}
		}()
	}
	budget := time.NewTimer(cfg.ResyncBudget)
	defer budget.Stop()
	var hard *time.Timer
	fed := 0
feed:
	for _, ep := range names {
		select {
		case jobs <- ep:
			fed++
		case <-ctx.Done():
			break feed
		case <-budget.C:
			hard = time.AfterFunc(cfg.RequestTimeout, func() {
				mu.Lock()
				cut = true
				mu.Unlock()
				cancel()
			})
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if hard != nil {
		hard.Stop()
	}
	if firstErr != nil {
		return nil, nil, nil, firstErr
	}
	if err := parent.Err(); err != nil {
		return nil, nil, nil, err
	}
	if hard == nil {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
	}
	for _, ep := range names[:fed] {
		if unread[ep] {
			left = append(left, ep)
		}
	}
	left = append(left, names[fed:]...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].c.Extension != out[j].c.Extension {
			return out[i].c.Extension < out[j].c.Extension
		}
		return out[i].c.ID < out[j].c.ID
	})
	// An AOR shared by two endpoints lists its contacts twice.
	dedup := out[:0]
	for i, f := range out {
		if i == 0 || f.c.ID != out[i-1].c.ID {
			dedup = append(dedup, f)
		}
	}
	return dedup, left, before, nil
}

func (l *Listener) endpointContacts(ctx context.Context, ep string) ([]foundContact, error) {
	obj, err := l.Client.ConfigObject(ctx, "endpoint", ep)
	if tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	var out []foundContact
	for _, aor := range splitList(obj.Get("aors")) {
		aobj, err := l.Client.ConfigObject(ctx, "aor", aor)
		if tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, uri := range aobj.All("contact") {
			if uri == "" {
				continue // an AOR without contacts lists one empty contact
			}
			id := tollguard.ContactID(aor, uri)
			cobj, err := l.Client.ConfigObject(ctx, "contact", id)
			if tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
				continue // expired between the two reads
			}
			if err != nil {
				return nil, err
			}
			c, warn := tollguard.ContactFromObject(aor, ep, cobj)
			if obj.Bool("rewrite_contact") {
				warn = c.HostIsSource(warn)
			}
			if c.ID == "" {
				c.ID, c.URI = id, uri
			}
			out = append(out, foundContact{c: c, warn: warn})
		}
	}
	return out, nil
}

// joinUpTo joins the first max items of list with commas, and says how
// many more there were.
func joinUpTo(list []string, max int) string {
	if len(list) > max {
		return strings.Join(list[:max], ",") + fmt.Sprintf(",... (%d more)", len(list)-max)
	}
	return strings.Join(list, ",")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
