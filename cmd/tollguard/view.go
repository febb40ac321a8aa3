package main

import (
	"strings"

	"github.com/tollguard/tollguard"
)

// Views are what --json prints: money as decimal strings in the
// account's currency, never floats; times as RFC 3339 or null.

type accountView struct {
	ID                   string     `json:"id"`
	Name                 string     `json:"name"`
	Country              string     `json:"country"`
	NationalPrefix       string     `json:"national_prefix"`
	IntlPrefix           string     `json:"intl_prefix"`
	InternalMaxLen       int        `json:"internal_max_len"`
	Zone                 string     `json:"zone"`
	Hours                string     `json:"hours"`
	Holidays             []string   `json:"holidays"`
	AfterHours           []string   `json:"after_hours_denied"`
	Currency             string     `json:"currency"`
	Balance              string     `json:"balance"`
	CreditLimit          string     `json:"credit_limit"`
	CallCap              string     `json:"call_cap"`
	MaxCallSecs          int64      `json:"max_call_secs"`
	NationalCeiling      string     `json:"national_ceiling_per_min"`
	InternationalCeiling string     `json:"international_ceiling_per_min"`
	Whitelist            bool       `json:"strict_whitelist"`
	IntlBlock            bool       `json:"intl_block"`
	IntlBlockReason      string     `json:"intl_block_reason,omitempty"`
	Limits               limitsView `json:"limits"`
	AlertMode            string     `json:"alert_mode"`
	MaxExtensions        int        `json:"max_extensions"`
	MaxCreatedPerDay     int        `json:"max_created_per_day"`
	SpendThreshold       string     `json:"spend_threshold"`
	SpendFactor          string     `json:"spend_factor"`
	CreatedAt            *string    `json:"created_at"`
}

type limitsView struct {
	ExtPerMinute   int `json:"ext_per_minute"`
	ExtPerHour     int `json:"ext_per_hour"`
	ExtPerDay      int `json:"ext_per_day"`
	AcctPerMinute  int `json:"account_per_minute"`
	AcctPerHour    int `json:"account_per_hour"`
	AcctPerDay     int `json:"account_per_day"`
	ExtConcurrent  int `json:"ext_concurrent"`
	AcctConcurrent int `json:"account_concurrent"`
}

func ceilingString(r tollguard.Rate) string {
	if r == tollguard.NoCeiling {
		return "none"
	}
	return r.String()
}

func permilString(p int) string { return tollguard.FormatAmount(tollguard.Amount(p), 3) }

func newAccountView(a *tollguard.Account) accountView {
	after := make([]string, len(a.AfterHours))
	for i, c := range a.AfterHours {
		after[i] = string(c)
	}
	l := a.Limits
	internal := a.Plan.InternalMaxLen // 0 is the default, shown as what it means
	if internal <= 0 {
		internal = tollguard.DefaultInternalMaxLen
	}
	return accountView{
		ID: a.ID, Name: a.Name, Country: a.Plan.Country, NationalPrefix: a.Plan.NationalPrefix, IntlPrefix: a.Plan.IntlPrefix,
		InternalMaxLen: internal,
		Zone:           a.Zone, Hours: a.HoursSpec, Holidays: nonNil(a.Holidays), AfterHours: after, Currency: a.Currency,
		Balance: tollguard.FormatAmount(a.Balance, a.Scale), CreditLimit: tollguard.FormatAmount(a.CreditLimit, a.Scale),
		CallCap: tollguard.FormatAmount(a.CallCap, a.Scale), MaxCallSecs: a.MaxCallSecs,
		NationalCeiling: ceilingString(a.NationalCeiling), InternationalCeiling: ceilingString(a.InternationalCeiling),
		Whitelist: a.Whitelist, IntlBlock: a.IntlBlock, IntlBlockReason: a.IntlBlockReason,
		Limits:    limitsView{l.ExtPerMinute, l.ExtPerHour, l.ExtPerDay, l.AcctPerMinute, l.AcctPerHour, l.AcctPerDay, l.ExtConcurrent, l.AcctConcurrent},
		AlertMode: a.AlertMode, MaxExtensions: a.MaxExtensions, MaxCreatedPerDay: a.MaxCreatedPerDay,
		SpendThreshold: tollguard.FormatAmount(a.SpendThreshold, a.Scale), SpendFactor: permilString(a.SpendFactorPermil),
		CreatedAt: jsonTime(a.CreatedAt),
	}
}

type extensionView struct {
	Name        string   `json:"name"`
	Account     string   `json:"account"`
	CIDRs       []string `json:"allowed_cidrs"`
	Blocked     bool     `json:"blocked"`
	BlockReason string   `json:"block_reason,omitempty"`
	BlockedBy   string   `json:"blocked_by,omitempty"`
	BlockedAt   *string  `json:"blocked_at"`
	CallerID    string   `json:"caller_id"`
	Description string   `json:"description"`
	Managed     bool     `json:"managed"`
	CreatedAt   *string  `json:"created_at"`
	LastSeen    *string  `json:"last_seen"`
}

func newExtensionView(e *tollguard.Extension) extensionView {
	cidrs := make([]string, len(e.CIDRs))
	for i, p := range e.CIDRs {
		cidrs[i] = p.String()
	}
	return extensionView{Name: e.Name, Account: e.Account, CIDRs: cidrs, Blocked: e.Blocked, BlockReason: e.BlockReason,
		BlockedBy: e.BlockedBy, BlockedAt: jsonTime(e.BlockedAt), CallerID: e.CallerID, Description: e.Description,
		Managed: e.Managed, CreatedAt: jsonTime(e.CreatedAt), LastSeen: jsonTime(e.LastSeen)}
}

type callView struct {
	ID         int64            `json:"id"`
	Time       *string          `json:"time"`
	Extension  string           `json:"extension"`
	Account    string           `json:"account"`
	Dialled    string           `json:"dialled"`
	E164       string           `json:"e164"`
	Class      string           `json:"class"`
	Region     string           `json:"region"`
	Remote     string           `json:"remote"`
	Channel    string           `json:"channel"`
	Verdict    string           `json:"verdict"`
	Reason     string           `json:"reason"`
	Cause      int              `json:"cause,omitempty"`
	Rate       string           `json:"rate_per_min"`
	Billing    string           `json:"billing"`        // steps, "60/60"
	Connect    string           `json:"connection_fee"` // charged once answered
	Reserve    string           `json:"reserved"`
	MaxSec     *int64           `json:"maxsec"`
	Open       bool             `json:"in_progress"`
	SettledAt  *string          `json:"settled_at"`
	SettledBy  string           `json:"settled_by,omitempty"`
	Billsec    int64            `json:"billsec"`        // answered seconds
	Billed     int64            `json:"billed_seconds"` // in the carrier's steps
	Charge     string           `json:"charge"`
	DialStatus string           `json:"dial_status,omitempty"`
	Steps      []tollguard.Step `json:"steps,omitempty"`
}

func newCallView(c *tollguard.CallRecord, steps bool) callView {
	v := callView{ID: c.ID, Time: jsonTime(c.CreatedAt), Extension: c.Extension, Account: c.Account, Dialled: c.Dialled,
		E164: c.E164, Class: string(c.Class), Region: c.Country, Remote: c.Remote, Channel: c.Channel,
		Verdict: string(c.Verdict), Reason: string(c.Reason), Cause: c.Cause, Rate: c.Rate.String(),
		Billing: c.Billing.Steps(), Connect: c.Billing.Connect.String(), Reserve: tollguard.FormatAmount(c.Reserve, c.Scale), Open: c.Open(), SettledAt: jsonTime(c.SettledAt),
		SettledBy: c.SettledBy, Billsec: c.Billsec, Billed: c.Billing.Billed(c.Billsec), Charge: tollguard.FormatAmount(c.Charge, c.Scale), DialStatus: c.DialStatus}
	if c.Verdict == tollguard.Allow && c.MaxSec >= 0 {
		m := c.MaxSec
		v.MaxSec = &m
	}
	if steps {
		v.Steps = c.Steps
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orDash is s as a table cell: "-" if empty, with its tabs and line
// breaks escaped. termSafe lets those through because they lay tables
// out, so a user agent holding "\n1002 ... allow" would print a row of
// its own.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return cellEscaper.Replace(s)
}

var cellEscaper = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`)
