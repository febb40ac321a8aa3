package tollguard

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// AuditJob is one audit (design.md §4). The scheduler and `tollguard
// audit` run the same value, so a scheduled run and a manual one find
// and fix exactly the same things.
type AuditJob interface {
	Name() string
	// Run inspects, and changes things only when apply is set. It
	// returns what it found and did so far even alongside an error.
	Run(ctx context.Context, env *AuditEnv, apply bool, progress AuditProgress) ([]AuditFinding, []AuditAction, error)
}

// AuditProgress reports how far a long audit has got (done of total items);
// the CLI prints it to stderr. A nil AuditProgress is fine.
type AuditProgress func(done, total int, item string)

func (p AuditProgress) report(done, total int, item string) {
	if p != nil {
		p(done, total, item)
	}
}

// AuditFinding is one thing an audit found. Findings of warning or
// above raise an alert.
type AuditFinding struct {
	Check     string         `json:"check"` // "stale", "weak_pin", "over_quota", ...
	Severity  Severity       `json:"severity"`
	Subject   string         `json:"subject"` // "ext:1001", "mailbox:default/1234", "account:acme"
	Account   string         `json:"account,omitempty"`
	Extension string         `json:"extension,omitempty"`
	Message   string         `json:"message"` // what is wrong and what to do
	Evidence  map[string]any `json:"evidence,omitempty"`
	// Fixable says the same run with apply would act on it (block,
	// schedule or finish a purge, rotate, rewrite), so that the CLI
	// suggests --apply only where it would do something.
	Fixable bool `json:"fixable,omitempty"`
}

// AuditAction is one change an audit made (only with apply), or tried
// to make.
type AuditAction struct {
	Kind    string `json:"kind"` // block, schedule_purge, purge, cancel_purge, rotate_password, rewrite_pin, reload_module, notify_owner
	Subject string `json:"subject"`
	Message string `json:"message"`
	Err     string `json:"error,omitempty"`
	// Secret is a new password for the admin running the CLI. It is
	// never stored: SaveAuditRun receives runs with it cleared.
	Secret string `json:"secret,omitempty"`
}

// Audit action kinds.
const (
	AuditActBlock          = "block"
	AuditActSchedulePurge  = "schedule_purge"
	AuditActPurge          = "purge"
	AuditActCancelPurge    = "cancel_purge"
	AuditActRotatePassword = "rotate_password"
	AuditActRewritePIN     = "rewrite_pin"
	AuditActReloadModule   = "reload_module"
	AuditActNotifyOwner    = "notify_owner"
	AuditActAdopt          = "adopt"
)

// AuditRun is the stored record of one audit run.
type AuditRun struct {
	ID        int64          `json:"id,omitempty"`
	Job       string         `json:"job"`
	Trigger   string         `json:"trigger"` // "cli" or "cron"
	Apply     bool           `json:"apply"`
	StartedAt time.Time      `json:"started_at"`
	EndedAt   time.Time      `json:"ended_at"`
	Findings  []AuditFinding `json:"findings"`
	Actions   []AuditAction  `json:"actions"`
	Error     string         `json:"error,omitempty"`
}

// Fixable reports whether apply would act on any of the run's findings.
func (r *AuditRun) Fixable() bool {
	return slices.ContainsFunc(r.Findings, func(f AuditFinding) bool { return f.Fixable })
}

// Worst returns the highest severity among the run's findings, "" if none.
func (r *AuditRun) Worst() Severity {
	var w Severity
	for _, f := range r.Findings {
		if f.Severity.Rank() > w.Rank() {
			w = f.Severity
		}
	}
	return w
}

// AuditEnv is everything the audits and the extension lifecycle use.
// Only Now, Store and Alerter are required; an audit that needs a
// missing part (Asterisk, mailbox sources, fail2ban) says so in a
// finding instead of failing.
type AuditEnv struct {
	Now       func() time.Time
	Store     AuditStore
	Asterisk  Asterisk // nil when ARI is not configured
	Alerter   Alerter
	Mailboxes []MailboxSource // voicemail.conf and realtime tables
	Mailer    Mailer          // nil: mailbox owners are not told
	Fail2ban  Fail2banChecker // nil: fail2ban is not checked
	Settings  AuditSettings
	Logger    *slog.Logger
	Rand      io.Reader // nil: crypto/rand; tests may pin it
	// Abandoned tracks runs abandoned at their deadline until their
	// late result is stored, so serve can wait for them before it
	// closes the database. nil: they are not tracked.
	Abandoned *AbandonedAudits
	// PruneHeld, when set (serve: its ClockWatch), holds what the
	// audits do by age on a wall clock that stepped ahead: purges whose
	// grace period is over, and blocking lines as stale or unused tests
	// (reported only). Nil (`tollguard audit` from the shell): never held.
	PruneHeld func() bool
}

func (env *AuditEnv) pruneHeld() bool { return env.PruneHeld != nil && env.PruneHeld() }

func (env *AuditEnv) now() time.Time {
	if env.Now != nil {
		return env.Now()
	}
	return time.Now()
}

func (env *AuditEnv) logger() *slog.Logger {
	if env.Logger != nil {
		return env.Logger
	}
	return slog.Default()
}

func (env *AuditEnv) rand() io.Reader {
	if env.Rand != nil {
		return env.Rand
	}
	return rand.Reader
}

// AuditSettings are the audits' thresholds and lists. Zero values take
// the defaults (see DefaultAuditSettings) through WithDefaults.
type AuditSettings struct {
	StaleAfter time.Duration // no registration and no call for this long; default 60 days
	PurgeGrace time.Duration // blocked this long before the Asterisk objects are deleted; default 7 days
	// TestPatterns are case-insensitive regular expressions matched
	// against an extension's name, caller ID and description.
	TestPatterns []string
	// Ignore lists endpoint names the stale, tests, quotas and passwords
	// audits skip (trunks, for instance). "anonymous" is the coverage
	// audit's business and always skipped by the others.
	Ignore []string

	MinPINLength int // default 6
	PINLength    int // length of generated PINs; default max(MinPINLength, 6)
	// NotifyOwners mails a mailbox's owner (voicemail.conf's email
	// field) when --apply changed the PIN; MailPIN puts the new PIN in
	// that mail (off by default: mail is not a safe channel).
	NotifyOwners bool
	MailPIN      bool

	PasswordMinScore  int      // zxcvbn score 0-4 a password must reach; default 3
	PasswordMinLength int      // default 12
	PasswordDefaults  []string // weak on sight; the extension's own name is always added
	PasswordLength    int      // length of generated passwords; default 24

	// CreationAlert raises an alert when more than this many extensions
	// appear within 24 h, whatever the quotas say; 0 = default 5, -1 = off.
	CreationAlert int
	// DefaultSpendFactorPermil applies to accounts whose own factor is
	// 0 only when set here; default 0 (the account decides).
	DefaultSpendFactorPermil int

	GatedContexts  []string // contexts whose outbound calls pass the gate
	DefaultCountry string   // [gate] default_country: the emergency check counts it with the accounts' countries
	SelftestNumber string   // Policy.SelftestNumber
	SelftestApp    string   // the Stasis app the originated channel's other half enters
	SelftestWait   time.Duration

	Endpoint EndpointTemplate // what `ext add` creates

	// Timeout bounds one run of an audit: past it the run is cancelled
	// and stored as failed, so a hung ARI request or voicemail database
	// does not hold up the audits queued behind it. Default 10 minutes.
	Timeout time.Duration
}

// EndpointTemplate is the PJSIP objects `tollguard ext add` creates.
type EndpointTemplate struct {
	Context       string            // default "from-internal"
	Transport     string            // "" leaves Asterisk's default
	Codecs        string            // allow=, after disallow=all; default "ulaw,alaw"
	MaxContacts   int               // default 1
	EndpointExtra map[string]string // more endpoint fields, e.g. direct_media=no
	AORExtra      map[string]string
}

// DefaultTestPatterns are the tests audit's default patterns,
// case-insensitive. Words, not substrings: "latest", "contest" and
// "Contemporary" are ordinary, and 9999 inside a DID (02079469999) is
// no test line; only an extension named 9999 is.
// A word starts where no letter precedes it: "1001_test" and "sip-demo"
// are test lines, "latest" is not.
var DefaultTestPatterns = []string{`(^|[^a-z])test`, `(^|[^a-z])demo`, `(^|[^a-z])temp(orary)?([^a-z]|$)`, `^9999$`}

// DefaultPasswordDenylist are passwords weak on sight (besides the
// extension's own name).
var DefaultPasswordDenylist = []string{"password", "1234", "12345", "123456", "phone", "secret", "changeme", "asterisk", "sip", "voip", "admin"}

// DefaultAuditSettings returns the defaults from design.md §4 and the issue.
func DefaultAuditSettings() AuditSettings {
	return AuditSettings{
		StaleAfter:        60 * 24 * time.Hour,
		PurgeGrace:        7 * 24 * time.Hour,
		TestPatterns:      DefaultTestPatterns,
		MinPINLength:      6,
		PasswordMinScore:  3,
		PasswordMinLength: 12,
		PasswordDefaults:  DefaultPasswordDenylist,
		PasswordLength:    24,
		CreationAlert:     5,
		GatedContexts:     []string{"from-internal"},
		SelftestWait:      10 * time.Second,
		Timeout:           DefaultAuditTimeout,
		Endpoint:          EndpointTemplate{Context: "from-internal", Codecs: "ulaw,alaw", MaxContacts: 1},
	}
}

// WithDefaults fills zero settings with the defaults.
func (s AuditSettings) WithDefaults() AuditSettings {
	d := DefaultAuditSettings()
	if s.StaleAfter <= 0 {
		s.StaleAfter = d.StaleAfter
	}
	if s.PurgeGrace <= 0 {
		s.PurgeGrace = d.PurgeGrace
	}
	if s.TestPatterns == nil {
		s.TestPatterns = d.TestPatterns
	}
	if s.MinPINLength <= 0 {
		s.MinPINLength = d.MinPINLength
	}
	if s.PINLength <= 0 {
		s.PINLength = max(s.MinPINLength, 6)
	}
	if s.PasswordMinScore <= 0 {
		s.PasswordMinScore = d.PasswordMinScore
	}
	if s.PasswordMinLength <= 0 {
		s.PasswordMinLength = d.PasswordMinLength
	}
	if s.PasswordDefaults == nil {
		s.PasswordDefaults = d.PasswordDefaults
	}
	if s.PasswordLength < MinGeneratedPassword {
		s.PasswordLength = d.PasswordLength
	}
	if s.CreationAlert == 0 {
		s.CreationAlert = d.CreationAlert
	}
	if s.GatedContexts == nil {
		s.GatedContexts = d.GatedContexts
	}
	if s.SelftestWait <= 0 {
		s.SelftestWait = d.SelftestWait
	}
	if s.Timeout <= 0 {
		s.Timeout = d.Timeout
	}
	if s.Endpoint.Context == "" {
		s.Endpoint.Context = d.Endpoint.Context
	}
	if s.Endpoint.Codecs == "" {
		s.Endpoint.Codecs = d.Endpoint.Codecs
	}
	if s.Endpoint.MaxContacts <= 0 {
		s.Endpoint.MaxContacts = d.Endpoint.MaxContacts
	}
	return s
}

// AuditStore is what the audits and the extension lifecycle need from
// storage; the SQLite store implements it.
type AuditStore interface {
	Accounts(ctx context.Context) ([]*Account, error)
	Account(ctx context.Context, id string) (*Account, error) // ENOTFOUND
	Extensions(ctx context.Context, account string) ([]*Extension, error)
	Extension(ctx context.Context, name string) (*Extension, error) // ENOTFOUND
	CreateExtension(ctx context.Context, e *Extension) error
	// CreateExtensionWithinQuota inserts e unless its account already
	// has MaxExtensions extensions or created MaxCreatedPerDay in the 24 h
	// before now (EQUOTA), in one transaction, so that two parallel
	// `ext add` cannot both slip under the quota. It returns the id of
	// e's creation record, 0 for an unmanaged line.
	CreateExtensionWithinQuota(ctx context.Context, e *Extension, now time.Time) (creation int64, err error)
	UpdateExtension(ctx context.Context, name string, fn func(e *Extension) error) (*Extension, error)
	DeleteExtension(ctx context.Context, name string) error
	// ExtensionRow is Extension with the id of its row, which no later
	// row reuses.
	ExtensionRow(ctx context.Context, name string) (*Extension, int64, error) // ENOTFOUND
	// DeleteExtensionRow is DeleteExtension of that row alone: ENOTFOUND
	// when name has no row, ECONFLICT when its row is another one.
	DeleteExtensionRow(ctx context.Context, name string, row int64) error
	// UndoCreateExtension is DeleteExtension for a line whose creation
	// failed: its creation record goes too, as nothing was created. It
	// removes only the row of that creation: ENOTFOUND when the name has
	// no row any more, ECONFLICT when its row is another one.
	UndoCreateExtension(ctx context.Context, name string, creation int64) error
	// ForgetExtensionCreation is UndoCreateExtension that keeps the row:
	// for a failed line whose PJSIP objects could not all be deleted,
	// which ext purge and ext rm then remove. Its record goes, so the
	// daily quota counts the line while its row is left, not after.
	ForgetExtensionCreation(ctx context.Context, name string, creation int64) error
	// CheckExtensionCreation is UndoCreateExtension's check alone: nil
	// when name's row is that creation's, else ENOTFOUND or ECONFLICT.
	CheckExtensionCreation(ctx context.Context, name string, creation int64) error
	TouchExtension(ctx context.Context, name string, t int64) error
	Block(ctx context.Context, b Block) (Block, error)
	// Blocks lists a subject's block history since a time.
	Blocks(ctx context.Context, kind, subject string, since time.Time) ([]Block, error)
	Unblock(ctx context.Context, kind, subject, by string) (bool, error)

	// MonthCharge is an account's total charge in a UTC month (YYYY-MM).
	MonthCharge(ctx context.Context, account, month string) (Amount, error)
	// LastCalls returns, per extension, when its newest call row was
	// recorded (rolled-up calls are gone from it).
	LastCalls(ctx context.Context) (map[string]time.Time, error)
	// LastRegistered returns, per PJSIP endpoint, when it was last seen
	// registered, whether or not the store has it as an extension.
	LastRegistered(ctx context.Context) (map[string]time.Time, error)
	// LastRestored returns, per extension, when `tollguard ext restore`
	// last brought its PJSIP objects back.
	LastRestored(ctx context.Context) (map[string]time.Time, error)
	// The pins audit's pending-reload markers.
	VoicemailReloadStore
	// CallsSince lists calls recorded at or after t with reason r
	// ("" for any), newest first.
	CallsSince(ctx context.Context, t time.Time, r Reason) ([]*CallRecord, error)

	SaveAuditRun(ctx context.Context, run *AuditRun) error
	// AuditRuns lists a job's stored runs, newest first.
	AuditRuns(ctx context.Context, job string, limit int) ([]*AuditRun, error)
	SaveSnapshot(ctx context.Context, s *ExtensionSnapshot) error
	// LatestSnapshot is the newest snapshot of ext not yet restored (ENOTFOUND).
	LatestSnapshot(ctx context.Context, ext string) (*ExtensionSnapshot, error)
	// Snapshots lists ext's snapshots, newest first, restored ones included.
	Snapshots(ctx context.Context, ext string) ([]*ExtensionSnapshot, error)
	MarkSnapshotRestored(ctx context.Context, id int64, at time.Time) error
	// DeleteSnapshot removes a snapshot nothing was deleted after.
	DeleteSnapshot(ctx context.Context, id int64) error
	// AddPendingPurge schedules a purge; one pending purge per extension
	// (a second one keeps the first's due time).
	AddPendingPurge(ctx context.Context, p PendingPurge) (PendingPurge, error)
	PendingPurges(ctx context.Context) ([]PendingPurge, error)
	FinishPurge(ctx context.Context, ext, outcome string, at time.Time) error
	SpendAlertState(ctx context.Context, account, month, kind string) (*SpendAlert, error) // nil when none
	SaveSpendAlert(ctx context.Context, a SpendAlert) error
	// SightEndpoints records that Asterisk listed these endpoints at now
	// and returns when each was first listed. The first call ever marks
	// every endpoint as baseline: they existed before tollguard looked.
	SightEndpoints(ctx context.Context, names []string, now time.Time) (map[string]EndpointSighting, error)
	// ExtensionCreations lists the lines `ext add` created at or after
	// since, removed ones included, oldest first.
	ExtensionCreations(ctx context.Context, since time.Time) ([]ExtensionCreation, error)
}

// ExtensionCreation records that `ext add` created a line for an
// account; it outlives the line, so that removing lines does not free
// the daily quota.
type ExtensionCreation struct {
	Account   string
	Extension string
	CreatedAt time.Time
	How       string // add; backfill: from the lines there were at the upgrade
}

// ExtensionSnapshot is the full JSON of an extension's Asterisk
// objects, taken before they are deleted, so `ext restore` can put
// them back.
type ExtensionSnapshot struct {
	ID         int64            `json:"id,omitempty"`
	Extension  string           `json:"extension"`
	Account    string           `json:"account,omitempty"`
	TakenAt    time.Time        `json:"taken_at"`
	Reason     string           `json:"reason"`
	Objects    []SnapshotObject `json:"objects"` // in creation order: auths, aors, endpoint
	RestoredAt time.Time        `json:"restored_at,omitzero"`
}

// SnapshotObject is one PJSIP object as ARI returned it.
type SnapshotObject struct {
	Type   string       `json:"type"` // auth, aor, endpoint
	ID     string       `json:"id"`
	Fields ConfigObject `json:"fields"`
}

// PendingPurge is an extension blocked for its grace period, waiting
// to have its Asterisk objects deleted.
type PendingPurge struct {
	Extension   string
	Job         string // the audit or "cli"
	Reason      string
	ScheduledAt time.Time
	DueAt       time.Time
	DoneAt      time.Time
	Outcome     string // purged, cancelled, gone
}

// SpendAlert remembers that an account crossed a spend threshold in a
// month, so each crossing alerts once.
type SpendAlert struct {
	Account   string
	Month     string // YYYY-MM (UTC)
	Kind      string // "fixed" or "factor"
	Threshold Amount
	Spend     Amount
	AlertedAt time.Time
}

// EndpointSighting is when tollguard first saw Asterisk list an endpoint.
type EndpointSighting struct {
	FirstSeen time.Time
	Baseline  bool // already there on the first look: its creation time is unknown
}

// Mailer sends one plain-text mail; the alert subsystem's SMTP client
// can satisfy it.
type Mailer interface {
	SendMail(ctx context.Context, to, subject, body string) error
}

// Fail2banChecker asks the host's fail2ban about itself.
type Fail2banChecker interface {
	Status(ctx context.Context) (Fail2banStatus, error)
}

// Fail2banStatus is what `fail2ban-client status` says.
type Fail2banStatus struct {
	Installed bool
	Running   bool
	Jails     []string
	Detail    string // the client's error output when it is not running
	// Denied: fail2ban's socket exists but this user may not use it
	// (fail2ban-client: "Permission denied to socket ... (you must be
	// root)"), so whether fail2ban runs and which jails it has is
	// unknown. Running is false.
	Denied bool
}

// DefaultAuditTimeout is one audit run's deadline unless [audit]
// timeout says otherwise: the nightly audits of a few thousand lines
// take seconds to a minute.
const DefaultAuditTimeout = 10 * time.Minute

// errAuditDeadline is the cause of a run's context ending at its
// Timeout (not at shutdown).
var errAuditDeadline = errors.New("audit deadline")

// RunAudit runs job, stores the run and raises an alert for every
// finding of warning or above. A panicking job is recorded as a failed
// run. trigger is "cli" or "cron".
//
// The run is cancelled at env.Settings.Timeout and stored as failed,
// with what it found and did until then. A job still running a while
// after (a call that ignores cancellation: a hung file system) is left
// to finish on its own: this run is stored as failed at once, so the
// audits after it run, and what the job found and did is stored as a
// second run when it returns, so no change it made goes unreported.
func RunAudit(ctx context.Context, env *AuditEnv, job AuditJob, apply bool, trigger string, progress AuditProgress) (*AuditRun, error) {
	timeout := env.Settings.Timeout
	if timeout <= 0 {
		timeout = DefaultAuditTimeout
	}
	run := &AuditRun{Job: job.Name(), Trigger: trigger, Apply: apply, StartedAt: env.now()}
	// A run abandoned at its deadline may still be going: one beside it
	// would change the same things (voicemail.conf, the pending purges).
	release, busy := claimAudit(env.Store, run.Job, run.StartedAt)
	if busy != nil {
		which := "its run"
		if busy.job != run.Job {
			which = "the run of " + busy.job + " (it carries out the same pending purges)"
		}
		return env.recordAudit(ctx, run, nil, nil, Errorf(EUNAVAILABLE, "audit %s not run: %s started %s is still running, abandoned at its deadline, and two at once would change the same things. It runs at its next time once that one returns; find what hangs (the log lines about that run)",
			run.Job, which, busy.started.UTC().Format(time.RFC3339)))
	}
	jctx, cancel := context.WithTimeoutCause(ctx, timeout, errAuditDeadline)
	type result struct {
		findings []AuditFinding
		actions  []AuditAction
		err      error
	}
	done := make(chan result, 1)
	go func() {
		f, a, err := runAuditJob(jctx, env, job, apply, progress)
		cancel()
		release() // before the result: the next run may start on it
		done <- result{f, a, err}
	}()
	var res result
	abandoned := false
	select {
	case res = <-done:
	case <-jctx.Done():
		grace := min(timeout, 30*time.Second)
		stop := time.NewTimer(grace)
		defer stop.Stop()
		select {
		case res = <-done:
		case <-stop.C:
			if context.Cause(jctx) != errAuditDeadline {
				res = <-done // shutdown: serve waits for the run, as before
				break
			}
			abandoned = true
			res.err = Errorf(EUNAVAILABLE, "audit %s did not finish within %s ([audit] timeout), nor stop within %s of being cancelled: something it waits on ignores cancellation (a hung file system or database driver). It is left to finish; what it finds and changes from now on is stored as a separate run of %s if it returns while tollguard runs. Find what hangs (the log lines before this one), then run it again with `tollguard audit %s`",
				run.Job, timeout, grace, run.Job, run.Job)
			tracked := env.Abandoned.add(run.Job, run.StartedAt)
			go func() {
				defer tracked()
				late := <-done
				lrun := &AuditRun{Job: run.Job, Trigger: trigger, Apply: apply, StartedAt: run.StartedAt}
				err := late.err
				if err == nil {
					err = errors.New("finished without error")
				}
				env.recordAudit(ctx, lrun, late.findings, late.actions,
					Errorf(EUNAVAILABLE, "audit %s returned after tollguard stopped waiting for it (its run before this one is the failed one): %s", run.Job, ErrorMessage(err)))
			}()
		}
	}
	if !abandoned && context.Cause(jctx) == errAuditDeadline {
		// Cut short even where the job carried on past failed items.
		why := "cancelled"
		if res.err != nil {
			why = ErrorMessage(res.err)
		}
		res.err = Errorf(EUNAVAILABLE, "audit %s did not finish within %s ([audit] timeout) and was cancelled; what it found and did until then is in this run, and it runs again at its next time. Something it waited on hung (an ARI request to Asterisk, the realtime voicemail database): %s",
			run.Job, timeout, why)
	}
	return env.recordAudit(ctx, run, res.findings, res.actions, res.err)
}

// AbandonedAudits tracks audit runs abandoned at their deadline whose
// job has not returned yet, so that whoever owns the database (serve)
// can wait for their late results to be stored before closing it. The
// zero value is ready; a nil one tracks nothing.
type AbandonedAudits struct {
	mu   sync.Mutex
	runs map[*AbandonedAudit]struct{}
	idle chan struct{} // closed when the last run is stored; nil unless Wait waits
}

// AbandonedAudit is one abandoned run still going.
type AbandonedAudit struct {
	Job     string
	Started time.Time
}

func (a *AbandonedAudits) add(job string, started time.Time) (stored func()) {
	if a == nil {
		return func() {}
	}
	r := &AbandonedAudit{Job: job, Started: started}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runs == nil {
		a.runs = map[*AbandonedAudit]struct{}{}
	}
	a.runs[r] = struct{}{}
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.runs, r)
		if len(a.runs) == 0 && a.idle != nil {
			close(a.idle)
			a.idle = nil
		}
	}
}

// Wait returns once every abandoned run's late result is stored (or
// failed to be: recordAudit logs that), or when ctx ends. It returns
// the runs still going then, oldest first; nil when none.
func (a *AbandonedAudits) Wait(ctx context.Context) []AbandonedAudit {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	if len(a.runs) == 0 {
		a.mu.Unlock()
		return nil
	}
	if a.idle == nil {
		a.idle = make(chan struct{})
	}
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	return a.Running()
}

// Running lists the abandoned runs still going, oldest first.
func (a *AbandonedAudits) Running() []AbandonedAudit {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []AbandonedAudit
	for r := range a.runs {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// runningAudits are the audits running now, by store and audit group,
// abandoned ones included until their job returns.
var runningAudits = struct {
	sync.Mutex
	m map[runningKey]runningAudit
}{m: map[runningKey]runningAudit{}}

type runningKey struct {
	store AuditStore
	group string
}

type runningAudit struct {
	job     string
	started time.Time
}

// claimAudit marks job as running against st; busy is the run already
// going (nil when none), and release ends the claim.
func claimAudit(st AuditStore, job string, started time.Time) (release func(), busy *runningAudit) {
	group := job
	if job == "stale" || job == "tests" { // both carry out the pending purges
		group = "purges"
	}
	if st != nil && !reflect.TypeOf(st).Comparable() {
		st = nil // a fake that cannot be a map key: one claim per process
	}
	k := runningKey{st, group}
	runningAudits.Lock()
	defer runningAudits.Unlock()
	if r, ok := runningAudits.m[k]; ok {
		return nil, &r
	}
	runningAudits.m[k] = runningAudit{job: job, started: started}
	return func() {
		runningAudits.Lock()
		delete(runningAudits.m, k)
		runningAudits.Unlock()
	}, nil
}

// recordAudit finishes run with a job's results: stores it, raises its
// alerts and logs it.
func (env *AuditEnv) recordAudit(ctx context.Context, run *AuditRun, findings []AuditFinding, actions []AuditAction, err error) (*AuditRun, error) {
	trigger, apply := run.Trigger, run.Apply
	run.EndedAt = env.now()
	run.Findings, run.Actions = findings, actions
	if run.Findings == nil {
		run.Findings = []AuditFinding{}
	}
	if run.Actions == nil {
		run.Actions = []AuditAction{}
	}
	if err != nil {
		run.Error = ErrorMessage(err)
	}
	log := env.logger()
	stored := *run
	stored.Actions = make([]AuditAction, len(run.Actions))
	for i, a := range run.Actions {
		a.Secret = ""
		stored.Actions[i] = a
	}
	// Store and alert even when ctx ended: the run happened.
	saveCtx := context.WithoutCancel(ctx)
	// Read before this run is stored, and only when a finding alerts.
	var prevRun time.Time
	if env.Alerter != nil && slices.ContainsFunc(run.Findings, func(f AuditFinding) bool {
		return f.Severity.Rank() >= SeverityWarning.Rank()
	}) {
		prevRun = env.previousRun(saveCtx, run.Job)
	}
	if serr := env.Store.SaveAuditRun(saveCtx, &stored); serr != nil {
		log.Error("could not store the audit run; its findings are only in this log", "job", run.Job, LogError, serr)
	}
	run.ID = stored.ID
	for _, f := range run.Findings {
		if f.Severity.Rank() < SeverityWarning.Rank() || env.Alerter == nil {
			continue
		}
		if aerr := env.Alerter.Raise(saveCtx, f.alert(run, prevRun)); aerr != nil {
			log.Error("could not raise an alert for an audit finding", "job", run.Job, "subject", f.Subject, LogError, aerr)
		}
	}
	log.Info("audit finished", "job", run.Job, "trigger", trigger, "apply", apply,
		"findings", len(run.Findings), "actions", len(run.Actions), "worst", run.Worst(),
		"took", run.EndedAt.Sub(run.StartedAt).Round(time.Millisecond).String(), LogError, run.Error)
	return run, err
}

// previousRun is when the last run of job that finished without an
// error started, or zero: a run that failed proves nothing fixed.
func (env *AuditEnv) previousRun(ctx context.Context, job string) time.Time {
	runs, err := env.Store.AuditRuns(ctx, job, 10)
	if err != nil {
		return time.Time{}
	}
	for _, r := range runs {
		if r.Error == "" {
			return r.StartedAt
		}
	}
	return time.Time{}
}

func runAuditJob(ctx context.Context, env *AuditEnv, job AuditJob, apply bool, progress AuditProgress) (fs []AuditFinding, as []AuditAction, err error) {
	defer func() {
		if r := recover(); r != nil {
			env.logger().Error("audit crashed; tollguard keeps running", "job", job.Name(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = Errorf(EINTERNAL, "audit %s crashed: %v", job.Name(), r)
		}
	}()
	return job.Run(ctx, env, apply, progress)
}

// AuditRenotify is how long an unchanged audit finding (same check,
// subject, severity and message) stays quiet: the nightly audits find
// the same weak PIN every night, and the admin hears about it again
// only a week after the last notice, or after acknowledging it, unless
// it changes first.
const AuditRenotify = 7 * 24 * time.Hour

// alert turns a finding into the alert it raises. Audit alerts are kind
// audit_<check> (spend findings are AlertSpend-like "spend"), so the
// same check on the same subject merges within the cool-down, and an
// unchanged finding does not notify again for AuditRenotify.
func (f AuditFinding) alert(run *AuditRun, prevRun time.Time) Alert {
	kind := "audit_" + f.Check
	if f.Check == AuditCheckSpend {
		kind = "spend"
	}
	ev := map[string]any{"job": run.Job, "check": f.Check}
	for k, v := range f.Evidence {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	return Alert{
		Kind: kind, Severity: f.Severity, Subject: f.Subject, Account: f.Account, Extension: f.Extension,
		Message: f.Message, Evidence: string(b), FirstSeen: run.EndedAt, LastSeen: run.EndedAt, Count: 1,
		Renotify: AuditRenotify, PrevRun: prevRun,
	}
}

// Finding checks.
const (
	AuditCheckStale            = "stale"
	AuditCheckTest             = "test_extension"
	AuditCheckWeakPIN          = "weak_pin"
	AuditCheckWeakPassword     = "weak_password"
	AuditCheckUnmanaged        = "unmanaged"
	AuditCheckOverQuota        = "over_quota"
	AuditCheckOverDailyQuota   = "over_daily_quota"
	AuditCheckCreationBurst    = "creation_burst"
	AuditCheckSpend            = "spend"
	AuditCheckAnonymous        = "anonymous_endpoint"
	AuditCheckUngatedContext   = "ungated_context"
	AuditCheckNoAuth           = "no_inbound_auth"
	AuditCheckFail2ban         = "fail2ban"
	AuditCheckTransfers        = "transfers_allowed"
	AuditCheckRedirects        = "redirects_followed"
	AuditCheckReadOnlyAsterisk = "asterisk_read_only"
	AuditCheckNoAsterisk       = "asterisk_unavailable"
	AuditCheckPurge            = "purge"
	AuditCheckSource           = "source"
	AuditCheckSelftest         = "selftest"
	AuditCheckEmergencyPattern = "emergency_pattern"
	AuditCheckClock            = "clock"
)

// auditRun carries one run's findings, actions and switches.
type auditRun struct {
	env      *AuditEnv
	job      string
	apply    bool
	progress AuditProgress
	findings []AuditFinding
	actions  []AuditAction
	// refusedOnce is set when Asterisk first refused a dynamic-config
	// write in this run (its finding says what to do, once).
	refusedOnce bool
	pending     map[string]PendingPurge // by extension, from loadPending
	blocked     map[string]bool         // extensions this run blocked
}

func newAuditRun(env *AuditEnv, job string, apply bool, p AuditProgress) *auditRun {
	return &auditRun{env: env, job: job, apply: apply, progress: p}
}

func (r *auditRun) find(f AuditFinding) { r.findings = append(r.findings, f) }

func (r *auditRun) act(a AuditAction) {
	r.actions = append(r.actions, a)
	log := r.env.logger()
	if a.Err != "" {
		log.Error("audit action failed", "job", r.job, "action", a.Kind, "subject", a.Subject, "message", a.Message, LogError, a.Err)
	} else {
		log.Info("audit action", "job", r.job, "action", a.Kind, "subject", a.Subject, "message", a.Message)
	}
}

func (r *auditRun) result(err error) ([]AuditFinding, []AuditAction, error) {
	return r.findings, r.actions, err
}

// refused handles an Asterisk write error: a 403 adds one finding per
// run saying what to do, and the caller reports the object and goes on
// with the others. A 403 is per object: with the sorcery.conf tollguard
// recommends, objects defined in pjsip.conf still refuse (and one of
// them used to stop every other purge or rotation, run after run). It
// reports whether err was such a refusal.
func (r *auditRun) refused(err error, typ string) bool {
	if ErrorCode(err) != EFORBIDDEN {
		return false
	}
	if !r.refusedOnce {
		r.refusedOnce = true
		r.find(AuditFinding{
			Check: AuditCheckReadOnlyAsterisk, Severity: SeverityWarning, Subject: "asterisk",
			Message:  "Asterisk refused to change a PJSIP " + typ + " object (403); the others are still tried. " + refusal(err),
			Evidence: map[string]any{"asterisk_error": ErrorMessage(err), "sorcery_conf": SorceryConf},
		})
	}
	return true
}

// needAsterisk adds a finding and returns false when ARI is not configured.
func (r *auditRun) needAsterisk(what string) bool {
	if r.env.Asterisk != nil {
		return true
	}
	r.find(AuditFinding{Check: AuditCheckNoAsterisk, Severity: SeverityWarning, Subject: "asterisk",
		Message: "ARI is not configured, so " + what + "; set [ari] in the config so tollguard can read Asterisk's PJSIP objects"})
	return false
}

// pjsipEndpoints lists the PJSIP endpoints Asterisk has, by name.
func pjsipEndpoints(ctx context.Context, a Asterisk) ([]EndpointState, error) {
	eps, err := a.Endpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("list endpoints through ARI: %w", err)
	}
	out := eps[:0:0]
	for _, e := range eps {
		if strings.EqualFold(e.Technology, "PJSIP") {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out, nil
}

// ignored reports whether the audits skip name (coverage still checks
// its redirect_method: an ignored trunk's is the one that matters).
func (s AuditSettings) ignored(name string) bool {
	if name == "anonymous" {
		return true
	}
	for _, n := range s.Ignore {
		if n == name {
			return true
		}
	}
	return false
}

// AuditJobs returns every audit, in the order `audit all` runs them.
func AuditJobs() []AuditJob {
	return []AuditJob{StaleAudit{}, TestsAudit{}, PINsAudit{}, PasswordsAudit{}, QuotasAudit{}, SpendAudit{}, CoverageAudit{}}
}

// AuditJobNamed returns the audit called name.
func AuditJobNamed(name string) (AuditJob, error) {
	var names []string
	for _, j := range AuditJobs() {
		if j.Name() == name {
			return j, nil
		}
		names = append(names, j.Name())
	}
	return nil, Errorf(EINVALID, "unknown audit %q; the audits are %s", name, strings.Join(names, ", "))
}

func auditMonth(t time.Time) string { return t.UTC().Format("2006-01") }

func auditExtSubject(name string) string { return "ext:" + name }
