package tollguard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// CoverageAudit checks that the gate sees every outbound call: it flags
// an "anonymous" PJSIP endpoint (anyone may call without a password),
// endpoints whose context is not one of the gated contexts (calls from
// them bypass tollguard: dial-through), gated endpoints that accept SIP
// transfers (which take the caller's channel, and with it the call's
// settlement, out of the call), and a fail2ban that is missing,
// stopped or without an Asterisk jail (failed registrations reach only
// the security log, never ARI), a TOLLGUARD_EMERGENCY in the
// dialplan that lets other numbers past the gate or leaves an account's
// emergency numbers waiting for it, and voicemail dialout and callback
// contexts that are not gated (VoiceMailMain's callers dial out there). It has nothing to apply;
// `tollguard selftest` proves the gated contexts for real.
type CoverageAudit struct{}

func (CoverageAudit) Name() string { return "coverage" }

func (CoverageAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "coverage", apply, p)
	s := env.Settings.WithDefaults()
	gated := map[string]bool{}
	for _, c := range s.GatedContexts {
		gated[c] = true
	}
	if r.needAsterisk("endpoint contexts cannot be checked") {
		eps, err := pjsipEndpoints(ctx, env.Asterisk)
		if err != nil {
			return r.result(err)
		}
		sawAnon := false
		var lists coverLists
		for n, e := range eps {
			r.progress.report(n+1, len(eps), e.Resource)
			if e.Resource == "anonymous" {
				sawAnon = true
			}
			if err := r.coverEndpoint(ctx, e.Resource, gated, s, &lists); err != nil {
				return r.result(err)
			}
		}
		if !sawAnon {
			// The endpoint list may leave it out; ask for it by name.
			if err := r.coverEndpoint(ctx, "anonymous", gated, s, &lists); err != nil && ErrorCode(err) != ENOTFOUND {
				return r.result(err)
			}
		}
		r.checkTransfers(lists.transfers)
		r.checkRedirects(lists.redirects, lists.pjsipRedirects)
		if err := r.checkEmergencyPattern(ctx, s); err != nil {
			return r.result(err)
		}
	}
	// Read from the voicemail sources, not ARI: checked without it too.
	r.checkVoicemailOutbound(ctx, gated, s)
	r.checkFail2ban(ctx)
	return r.result(nil)
}

// coverLists are the endpoints reported together, one finding each list.
type coverLists struct {
	transfers      []string // gated, and accepting SIP transfers
	redirects      []string // handing a far end's redirect to Dial as a URI (uri_core)
	pjsipRedirects []string // following it inside chan_pjsip (uri_pjsip)
}

// coverEndpoint checks one endpoint's context, and adds it to lists.
func (r *auditRun) coverEndpoint(ctx context.Context, name string, gated map[string]bool, s AuditSettings, lists *coverLists) error {
	ep, err := r.env.Asterisk.ConfigObject(ctx, "endpoint", name)
	if err != nil {
		if name == "anonymous" && ErrorCode(err) == ENOTFOUND {
			return nil
		}
		return fmt.Errorf("read endpoint %s: %w", name, err)
	}
	ctxName := ep.Get("context")
	if name == "anonymous" {
		r.find(AuditFinding{Check: AuditCheckAnonymous, Severity: SeverityCritical, Subject: auditExtSubject(name), Extension: name,
			Message:  fmt.Sprintf("an anonymous PJSIP endpoint exists (context %s): anyone on the internet can send calls into that context without a password; remove it (and `endpoint_identifier_order` entries for anonymous) unless you need unauthenticated inbound calls, and then give it a context that can only reach your own numbers", ctxName),
			Evidence: map[string]any{"context": ctxName, "gated": gated[ctxName]}})
		return nil
	}
	// A trunk's, above all: its calls are not gated here, but the Dials
	// that use it are. uri_core makes Dial call the URI a far end's 302
	// names, past the gate, unless Dial has i; with uri_pjsip chan_pjsip
	// follows it within the same call, and Dial never hears of it. So
	// this is checked for ignored endpoints too: the sample trunk is one.
	switch strings.ToLower(ep.Get("redirect_method")) {
	case "uri_core":
		lists.redirects = append(lists.redirects, name)
	case "uri_pjsip":
		lists.pjsipRedirects = append(lists.pjsipRedirects, name)
	}
	if s.ignored(name) {
		return nil
	}
	if byNameWithoutPassword(ep) {
		r.findNoAuth(name, ctxName, gated[ctxName], strings.TrimSpace(ep.Get("acl")+" "+ep.Get("contact_acl")))
	}
	if gated[ctxName] {
		// ARI gives every attribute, defaults included; an object
		// without it (a fake, an old Asterisk) says nothing.
		if v := strings.ToLower(ep.Get("allow_transfer")); v == "true" || v == "yes" {
			lists.transfers = append(lists.transfers, name)
		}
		return nil
	}
	r.find(AuditFinding{Check: AuditCheckUngatedContext, Severity: SeverityWarning, Subject: auditExtSubject(name), Extension: name,
		Message: fmt.Sprintf("endpoint %s sends its calls to context %q, which is not a gated context (%s): its outbound calls may bypass tollguard; add tollguard's include to that context and list it in [audit] gated_contexts, or move the endpoint",
			name, ctxName, strings.Join(s.GatedContexts, ", ")),
		Evidence: map[string]any{"context": ctxName, "gated_contexts": s.GatedContexts}})
	return nil
}

// byNameWithoutPassword reports whether Asterisk takes a request for
// endpoint ep by its name alone: no inbound auth (res_pjsip then asks no
// password) and identified by username or auth_username (identify_by,
// "username,ip" by default), so a SIP From (or an Authorization header)
// of its name is enough. ARI gives identify_by
// for every endpoint; an object without it (a fake) says nothing.
func byNameWithoutPassword(ep ConfigObject) bool {
	if ep.Get("auth") != "" {
		return false
	}
	for _, by := range strings.Split(ep.Get("identify_by"), ",") {
		// res_pjsip_endpoint_identifier_user.c: "username" takes the
		// From user as the endpoint's name, "auth_username" the user of
		// an Authorization header, which nothing then checks.
		if by = strings.ToLower(strings.TrimSpace(by)); by == "username" || by == "auth_username" {
			return true
		}
	}
	return false
}

// findNoAuth reports an endpoint anyone can be by sending its name:
// critical in a gated context (its calls reach the trunks through the
// gate, as its extension), a warning in any other, or where the
// endpoint's acl limits who may send its requests.
func (r *auditRun) findNoAuth(name, ctxName string, gated bool, acl string) {
	sev, reach := SeverityWarning, "can send calls into its context "+ctxName+" without a password (a trunk's inbound routes, and any DISA, IVR or follow-me there, are theirs)"
	if gated {
		sev, reach = SeverityCritical, "can dial out from its context "+ctxName+" through the gate as this endpoint (only the extension's --cidr list, if it has one, stands in the way)"
	}
	if acl != "" {
		sev, reach = SeverityWarning, reach+"; its acl ("+acl+") limits that to the addresses it permits"
	}
	r.find(AuditFinding{Check: AuditCheckNoAuth, Severity: sev, Subject: auditExtSubject(name), Extension: name,
		Message: fmt.Sprintf("endpoint %s has no inbound auth and is identified by its name (identify_by username or auth_username): Asterisk asks it for no password, so anyone who sends a SIP From (or an Authorization header) of %s %s (unless [global] endpoint_identifier_order leaves those out); "+
			"give a phone auth = its auth section, and a trunk identify_by = ip with an identify section of the carrier's addresses", name, name, reach),
		Evidence: map[string]any{"context": ctxName, "gated": gated, "acl": acl}})
}

// maxListed is how many endpoints a finding names before "and N more".
const maxListed = 10

// checkTransfers reports gated endpoints that accept SIP transfers, in
// one finding: most PBXs have many, and some need them. The gate's
// limit and settlement sit on the caller's channel; an attended
// transfer that joins two of a phone's trunk calls takes that channel
// out, frees the calls' reservations and leaves the trunk legs talking.
func (r *auditRun) checkTransfers(eps []string) {
	if len(eps) == 0 {
		return
	}
	named := listUpTo(eps, maxListed)
	r.find(AuditFinding{Check: AuditCheckTransfers, Severity: SeverityInfo, Subject: "transfers",
		Message: fmt.Sprintf("%d endpoint(s) in gated contexts accept SIP transfers (allow_transfer = yes, the default): %s. "+
			"A hijacked phone can join two of its trunk calls with an attended transfer: tollguard then charges each call only up to the transfer "+
			"and frees its reservation while the trunk legs talk on. Set allow_transfer = no on endpoints that never transfer calls, "+
			"and give every trunk Dial the b(tollguard-callee^s^1(${TOLLGUARD_MAXSEC})) option so each trunk leg keeps its call's limit: "+
			"allow_transfer does not stop an INVITE with Replaces, with which a phone takes its own channel out of one call the same way",
			len(eps), named),
		Evidence: map[string]any{"endpoints": eps}})
}

// checkRedirects reports endpoints that follow a redirect to any URI:
// one finding for those Dial's i option stops (uri_core), one for those
// it cannot (uri_pjsip).
func (r *auditRun) checkRedirects(core, pjsip []string) {
	if len(core) > 0 {
		r.find(AuditFinding{Check: AuditCheckRedirects, Severity: SeverityWarning, Subject: "redirects",
			Message: fmt.Sprintf("%d endpoint(s) hand a far end's redirect (SIP 302) to Dial as the URI it names (redirect_method = uri_core): %s. "+
				"A Dial to them without the i option calls whatever target the far end sends, past tollguard's gate. "+
				"Give every Dial to them the i option (Dial(PJSIP/${EXTEN}@trunk,,ib(...)), as the include's header shows). "+
				"redirect_method = user needs it as much: Dial calls a Contact user holding a \"/\" (PJSIP/NUMBER%%40trunk) as a dial string",
				len(core), listUpTo(core, maxListed)),
			Evidence: map[string]any{"endpoints": core}})
	}
	if len(pjsip) > 0 {
		r.find(AuditFinding{Check: AuditCheckRedirects, Severity: SeverityCritical, Subject: "redirects_pjsip",
			Message: fmt.Sprintf("%d endpoint(s) follow a far end's redirect (SIP 302) inside chan_pjsip (redirect_method = uri_pjsip): %s. "+
				"The call goes on to whatever target the far end sends, past tollguard's gate, and Dial's i option cannot stop it: "+
				"Dial never sees the redirect. Set redirect_method = user (or uri_core), and give every Dial to them the i option: "+
				"with either, Dial follows a 302 unless told not to, and calls a Contact user holding a \"/\" (PJSIP/NUMBER%%40trunk) as a dial string",
				len(pjsip), listUpTo(pjsip, maxListed)),
			Evidence: map[string]any{"endpoints": pjsip}})
	}
}

func (r *auditRun) checkFail2ban(ctx context.Context) {
	if r.env.Fail2ban == nil {
		return
	}
	st, err := r.env.Fail2ban.Status(ctx)
	f := AuditFinding{Check: AuditCheckFail2ban, Severity: SeverityWarning, Subject: "fail2ban"}
	switch {
	case err != nil:
		f.Message = "could not ask fail2ban for its status: " + ErrorMessage(err)
	case !st.Installed:
		f.Message = "fail2ban is not installed: failed SIP registrations (password guessing) reach only Asterisk's security log, never ARI, so nothing bans the guessers; install fail2ban and enable an asterisk jail (see contrib/)"
	case st.Denied:
		// As the unprivileged tollguard user (the daemon's cron audits)
		// fail2ban-client may not use fail2ban's root-only socket. The
		// socket exists, so fail2ban most likely runs; a warning here
		// would be a false alarm on every audit.
		f.Severity = SeverityInfo
		f.Message = "cannot check fail2ban as this user (" + strings.TrimSpace(st.Detail) + "): fail2ban-client needs root to use fail2ban's socket. " +
			"The socket exists, so fail2ban is probably running; run `tollguard audit coverage` as root, or `fail2ban-client status` yourself, to check that it has an asterisk jail"
	case !st.Running:
		f.Message = "fail2ban is installed but not running (" + strings.TrimSpace(st.Detail) + "): start it (systemctl enable --now fail2ban) so password guessers get banned"
	default:
		for _, j := range st.Jails {
			if strings.Contains(strings.ToLower(j), "asterisk") {
				return
			}
		}
		f.Message = fmt.Sprintf("fail2ban runs but has no asterisk jail (jails: %s): failed SIP registrations are not banned; enable the asterisk jail (see contrib/)", strings.Join(st.Jails, ", "))
		f.Evidence = map[string]any{"jails": st.Jails}
	}
	r.find(f)
}

// checkEmergencyPattern judges the include's TOLLGUARD_EMERGENCY for the
// accounts' countries (CheckEmergencyPattern). The include dials what it
// matches without asking the gate, and hangs up an emergency number it
// does not match when tollguard cannot answer.
func (r *auditRun) checkEmergencyPattern(ctx context.Context, s AuditSettings) error {
	pattern, err := r.env.Asterisk.GlobalVar(ctx, EmergencyVar)
	if err != nil {
		return err // the client's error names the global
	}
	accounts, err := r.env.Store.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}
	countries := []string{s.DefaultCountry}
	for _, a := range accounts {
		countries = append(countries, a.Plan.Country)
	}
	rep := CheckEmergencyPattern(pattern, countries)
	cs := rep.Countries
	fix := fmt.Sprintf("run `tollguard dialplan emergency %s` and put the line it prints in [globals] in extensions.conf, then `dialplan reload`", strings.Join(cs, " "))
	// One subject per kind of problem: findings of one check on one
	// subject merge into one alert.
	subj := "dialplan:" + EmergencyVar
	ev := map[string]any{"value": pattern, "countries": cs}
	if rep.Pattern != pattern {
		ev["as_read"] = rep.Pattern
	}
	finding := func(sev Severity, subject, msg string) {
		r.find(AuditFinding{Check: AuditCheckEmergencyPattern, Severity: sev, Subject: subject, Message: msg, Evidence: maps.Clone(ev)})
	}
	switch {
	case rep.Invalid != "":
		finding(SeverityWarning, subj, fmt.Sprintf("%s=%s is not a valid regular expression (%s): Asterisk's REGEX then matches nothing, so no emergency number but 112, 911 and 999 is dialled while tollguard is down; %s", EmergencyVar, pattern, rep.Invalid, fix))
	case rep.Unjudged != "":
		finding(SeverityCritical, subj, fmt.Sprintf("%s=%s holds %s, which Asterisk's REGEX (glibc's regcomp) reads differently from this check, so it cannot tell which numbers the include dials at once, without the gate: it may be every number. Write plain digits, | and [0-9] classes: %s", EmergencyVar, pattern, rep.Unjudged, fix))
	case rep.Unbounded:
		finding(SeverityCritical, subj, fmt.Sprintf("%s=%s matches numbers of any length (or too many to list): the include dials every number it matches at once, without the gate: no credit, hours, destination or rate check. List plain numbers instead: %s", EmergencyVar, pattern, fix))
	case len(rep.NotEmergency) > 0:
		sev := SeverityWarning
		if rep.Toll {
			sev = SeverityCritical
		}
		ev["not_emergency"] = rep.NotEmergency
		finding(sev, subj, fmt.Sprintf("%s=%s lets %d number(s) past the gate that are not emergency numbers in %s: %s. The include dials them without asking tollguard (no credit, hours, destination or rate check); %s", EmergencyVar, pattern, len(rep.NotEmergency), strings.Join(cs, ", "), listUpTo(rep.NotEmergency, maxListed), fix))
	}
	if len(rep.PaidElsewhere) > 0 {
		ev["paid_elsewhere"] = rep.PaidElsewhere
		finding(SeverityWarning, subj+"/paid_elsewhere", fmt.Sprintf("%s lets emergency numbers past the gate that cost money in another of your accounts' countries: %s. Accounts of that country dial them without the gate; the list is one for the whole PBX, so leave them off (the gate still allows them where they are emergency numbers); %s", EmergencyVar, strings.Join(rep.PaidElsewhere, ", "), fix))
	}
	if len(rep.Missing) > 0 {
		var missing []string
		for _, c := range slices.Sorted(maps.Keys(rep.Missing)) {
			missing = append(missing, c+" "+strings.Join(rep.Missing[c], ", "))
		}
		ev["missing"] = rep.Missing
		finding(SeverityWarning, subj+"/missing", fmt.Sprintf("emergency numbers of your accounts' countries are not in %s: %s. The gate allows them, but they wait for it: while tollguard is down, stopped or too slow, the include hangs them up; %s", EmergencyVar, strings.Join(missing, "; "), fix))
	}
	return nil
}
