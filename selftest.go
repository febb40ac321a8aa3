package tollguard

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SelftestAudit proves the gate's coverage for real: for each gated
// context it originates, through ARI, a Local channel to the reserved
// selftest number (Policy.SelftestNumber) and checks that the gate
// recorded the call and denied it with reason selftest, so nothing is
// dialled. A context whose call the gate never saw, or allowed, is a
// critical finding. `tollguard selftest` runs it; `audit all` does not,
// since it places calls.
type SelftestAudit struct{}

func (SelftestAudit) Name() string { return "selftest" }

// selftestPoll is how often the store is checked for the gate's record.
const selftestPoll = 100 * time.Millisecond

func (SelftestAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "selftest", apply, p)
	s := env.Settings.WithDefaults()
	if s.SelftestNumber == "" {
		return r.result(Errorf(EINVALID, "no selftest number: set [gate] selftest_number (the gate denies calls to it with reason selftest)"))
	}
	if !r.needAsterisk("the selftest cannot originate calls") {
		return r.result(nil)
	}
	// The include dials what TOLLGUARD_EMERGENCY matches without the
	// gate: the selftest call would go out to the trunk.
	pattern, err := env.Asterisk.GlobalVar(ctx, EmergencyVar)
	if err != nil {
		return r.result(err)
	}
	if EmergencyPatternMatches(pattern, s.SelftestNumber) {
		r.find(AuditFinding{Check: AuditCheckSelftest, Severity: SeverityCritical, Subject: "dialplan:" + EmergencyVar,
			Evidence: map[string]any{"value": pattern, "number": s.SelftestNumber},
			Message: fmt.Sprintf("%s=%s matches the selftest number %s (or tollguard cannot tell that it does not): the include dials every number it matches without the gate, so no selftest call was placed (it would have gone out to your trunk); "+
				"list plain emergency numbers there (`tollguard dialplan emergency`, `tollguard audit coverage`)", EmergencyVar, pattern, s.SelftestNumber)})
		return r.result(nil)
	}
	for n, c := range s.GatedContexts {
		r.progress.report(n+1, len(s.GatedContexts), c)
		if err := r.selftestContext(ctx, c, s); err != nil {
			return r.result(err)
		}
	}
	return r.result(nil)
}

func (r *auditRun) selftestContext(ctx context.Context, dialCtx string, s AuditSettings) error {
	env := r.env
	since := env.now().Truncate(time.Second) // the store keeps seconds
	subj := "context:" + dialCtx
	o := Originate{
		Endpoint: "Local/" + s.SelftestNumber + "@" + dialCtx, App: s.SelftestApp, AppArgs: "tollguard-selftest",
		CallerID: "tollguard selftest <0>", Timeout: int(s.SelftestWait / time.Second),
		Variables: map[string]string{"TOLLGUARD_SELFTEST": "1"},
	}
	id, err := env.Asterisk.Originate(ctx, o)
	if err != nil {
		r.find(AuditFinding{Check: AuditCheckSelftest, Severity: SeverityCritical, Subject: subj,
			Message: fmt.Sprintf("could not originate the selftest call into %s: %s", dialCtx, ErrorMessage(err))})
		return nil
	}
	defer func() {
		// The gate hangs the call up; make sure the other half goes too.
		if err := env.Asterisk.HangupChannel(context.WithoutCancel(ctx), id, "normal"); err != nil && ErrorCode(err) != ENOTFOUND {
			env.logger().Warn("could not hang up the selftest channel", "channel", id, LogError, err)
		}
	}()
	rec, err := r.awaitSelftestCall(ctx, dialCtx, since, s)
	if err != nil {
		return err
	}
	ev := map[string]any{"context": dialCtx, "number": s.SelftestNumber, "channel_id": id}
	switch {
	case rec == nil:
		r.find(AuditFinding{Check: AuditCheckSelftest, Severity: SeverityCritical, Subject: subj, Evidence: ev,
			Message: fmt.Sprintf("the gate never saw the selftest call into %s within %s: calls from that context bypass tollguard; add tollguard's include before Dial in %s (and check that serve is running)", dialCtx, s.SelftestWait, dialCtx)})
	case rec.Verdict != Deny || rec.Reason != ReasonSelftest:
		ev["call_id"], ev["verdict"], ev["reason"] = rec.ID, rec.Verdict, rec.Reason
		r.find(AuditFinding{Check: AuditCheckSelftest, Severity: SeverityCritical, Subject: subj, Evidence: ev,
			Message: fmt.Sprintf("the gate saw the selftest call into %s but answered %s/%s instead of deny/selftest: set the same [gate] selftest_number in the daemon's config", dialCtx, rec.Verdict, rec.Reason)})
	default:
		ev["call_id"] = rec.ID
		r.find(AuditFinding{Check: AuditCheckSelftest, Severity: SeverityInfo, Subject: subj, Evidence: ev,
			Message: fmt.Sprintf("gated: the selftest call into %s reached the gate and was denied (call %d)", dialCtx, rec.ID)})
	}
	return nil
}

// awaitSelftestCall polls the store for the gate's record of the
// selftest call into dialCtx, until SelftestWait passes.
func (r *auditRun) awaitSelftestCall(ctx context.Context, dialCtx string, since time.Time, s AuditSettings) (*CallRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, s.SelftestWait)
	defer cancel()
	want := selftestDigits(s.SelftestNumber)
	tick := time.NewTicker(selftestPoll)
	defer tick.Stop()
	for {
		calls, err := r.env.Store.CallsSince(context.WithoutCancel(ctx), since, "")
		if err != nil {
			return nil, fmt.Errorf("read the gate's calls: %w", err)
		}
		for _, c := range calls {
			// The Local channel's name carries the context:
			// Local/<number>@<context>-00000003;2.
			if selftestDigits(c.Dialled) == want && (c.Channel == "" || strings.Contains(c.Channel, "@"+dialCtx+"-")) {
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-tick.C:
		}
	}
}

func selftestDigits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}
