package tollguard

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// SpendAudit warns when an account's spend this month (UTC) crosses its
// fixed SpendThreshold or k × last month's total (SpendFactorPermil,
// default 1200 = 1.2×, as AAISP does). Each crossing alerts once; the
// state resets with the month. A factor threshold needs a last month
// with spend. It has nothing to apply.
type SpendAudit struct{}

func (SpendAudit) Name() string { return "spend" }

func (SpendAudit) Run(ctx context.Context, env *AuditEnv, apply bool, p AuditProgress) ([]AuditFinding, []AuditAction, error) {
	r := newAuditRun(env, "spend", apply, p)
	accts, err := env.Store.Accounts(ctx)
	if err != nil {
		return r.result(err)
	}
	now := env.now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	// A call is charged to the month it began in, when it settles: for
	// the first two days of a month, last month is checked too, or a
	// burst in its last hour, settled after midnight, would never warn.
	months := []time.Time{first}
	if now.Sub(first) < lateSettleWindow {
		months = append(months, first.AddDate(0, -1, 0))
	}
	for n, a := range accts {
		r.progress.report(n+1, len(accts), a.ID)
		for i, m := range months {
			if err := r.spendMonth(ctx, a, m, i == 0); err != nil {
				return r.result(err)
			}
		}
	}
	return r.result(nil)
}

// lateSettleWindow is how long into a month last month's spend is still
// checked: its calls settle up to their MAXSEC (2 h by default), or the
// sweep's charge, after it ended.
const lateSettleWindow = 48 * time.Hour

// spendMonth checks account a's spend in the month beginning first
// against its thresholds. Last month's (current false) reports only new
// crossings.
func (r *auditRun) spendMonth(ctx context.Context, a *Account, first time.Time, current bool) error {
	env := r.env
	month, prev := auditMonth(first), auditMonth(first.AddDate(0, -1, 0))
	spend, err := env.Store.MonthCharge(ctx, a.ID, month)
	if err != nil {
		return fmt.Errorf("spend of %s in %s: %w", a.ID, month, err)
	}
	last, err := env.Store.MonthCharge(ctx, a.ID, prev)
	if err != nil {
		return fmt.Errorf("spend of %s in %s: %w", a.ID, prev, err)
	}
	permil := a.SpendFactorPermil
	if permil == 0 {
		permil = env.Settings.DefaultSpendFactorPermil
	}
	type threshold struct {
		kind  string
		value Amount
		what  string
	}
	var ths []threshold
	if a.SpendThreshold > 0 {
		ths = append(ths, threshold{"fixed", a.SpendThreshold, "its monthly threshold"})
	}
	if permil > 0 && last > 0 {
		factor := Amount(math.MaxInt64) // k × last past int64: never reached
		if int64(last) <= math.MaxInt64/int64(permil) {
			factor = Amount(int64(last) * int64(permil) / 1000)
		}
		ths = append(ths, threshold{"factor", factor,
			fmt.Sprintf("%s × last month's %s", formatPermil(permil), FormatAmount(last, a.Scale))})
	}
	for _, th := range ths {
		if spend <= th.value {
			continue
		}
		if err := r.spendCrossed(ctx, a, month, th.kind, th.value, th.what, spend, last, current); err != nil {
			return err
		}
	}
	return nil
}

func (r *auditRun) spendCrossed(ctx context.Context, a *Account, month, kind string, th Amount, what string, spend, last Amount, current bool) error {
	env := r.env
	st, err := env.Store.SpendAlertState(ctx, a.ID, month, kind)
	if err != nil {
		return err
	}
	ev := map[string]any{"month": month, "kind": kind, "threshold": FormatAmount(th, a.Scale), "spend": FormatAmount(spend, a.Scale),
		"last_month": FormatAmount(last, a.Scale), "currency": a.Currency}
	f := AuditFinding{Check: AuditCheckSpend, Subject: "account:" + a.ID, Account: a.ID, Evidence: ev}
	if st != nil && st.Threshold >= th {
		if !current {
			return nil // last month's, alerted in its time
		}
		// This crossing alerted already this month.
		f.Severity = SeverityInfo
		f.Message = fmt.Sprintf("spend in %s is %s %s, above %s (%s); alerted %s", month, FormatAmount(spend, a.Scale), a.Currency,
			what, FormatAmount(th, a.Scale), st.AlertedAt.UTC().Format("2006-01-02 15:04Z"))
		r.find(f)
		return nil
	}
	f.Severity = SeverityWarning
	f.Message = fmt.Sprintf("account %s has spent %s %s in %s, above %s (%s): check its calls (`tollguard calls --account %s`) and raise the threshold if this is expected",
		a.ID, FormatAmount(spend, a.Scale), a.Currency, month, what, FormatAmount(th, a.Scale), a.ID)
	r.find(f)
	return env.Store.SaveSpendAlert(ctx, SpendAlert{Account: a.ID, Month: month, Kind: kind, Threshold: th, Spend: spend, AlertedAt: env.now()})
}

func formatPermil(p int) string {
	s := formatDecimal(int64(p), 3)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
