package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

func init() { register(newServeCommand) }

func newServeCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: the FastAGI call gate, the ARI listener and the scheduled audits",
		Long: `Run the tollguard daemon.

It answers the dialplan's FastAGI requests on [agi] listen (or
TOLLGUARD_AGI_ADDR; default 127.0.0.1:4573), watches Asterisk over ARI
when [ari] is enabled, runs the audits on their schedules when [audit] is
enabled, and serves Prometheus metrics and health checks on [metrics]
listen (default 127.0.0.1:9464).

SIGTERM stops accepting calls, lets sessions in flight finish, and closes
the database. SIGHUP re-reads the config file: [gate] applies at once
(but sweep_interval), the other sections after a restart (the log names
them); an empty or broken file is refused and the running config kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), app)
		},
	}
}

// daemon is what the parts of `serve` share. Each part's start function
// lives in its own file (serve_*.go), adds its goroutines to wg and
// stops them when ctx ends.
type daemon struct {
	app     *App
	db      *store.DB
	policy  *tollguard.Policy
	log     *slog.Logger
	metrics *Metrics
	health  *Health
	// clock holds pruning by wall-clock age after the clock steps ahead.
	clock *tollguard.ClockWatch

	// alerter raises alerts; the log until the alert subsystem starts.
	alerter tollguard.Alerter
	// asterisk is ARI REST, nil when [ari] is off.
	asterisk tollguard.Asterisk
	// channelAlive lets the sweep ask Asterisk about a call's channel,
	// and channelHangup end one that overran its MAXSEC.
	channelAlive  tollguard.ChannelChecker
	channelHangup tollguard.ChannelHanger

	wg sync.WaitGroup
	// abandoned are the scheduled audit runs abandoned at their
	// deadline whose late result is not stored yet.
	abandoned tollguard.AbandonedAudits
	// reloaders run on SIGHUP with the new config.
	reloaders []func(*Config)
	// gate is the [gate] section in force; SIGHUP swaps it while the
	// sweep reads it.
	gate atomic.Pointer[GateConfig]
	// secrets are the digests of the secrets read at start
	// (secretDigests): their files are read once, so a reload must say
	// that a rotated one waits for a restart.
	secrets map[string]string
	// fatal ends serve with an error: a part without which tollguard
	// must not go on (the FastAGI server) stopped. The supervisor
	// restarts it.
	fatal chan error
}

func (d *daemon) goFunc(name string, f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				d.log.Error("background task crashed; tollguard keeps serving calls", "task", name, "panic", fmt.Sprint(r))
			}
		}()
		f()
	}()
}

func serve(ctx context.Context, app *App) error {
	// Caught from the start: a SIGHUP while the database opens or the
	// deck loads would otherwise kill the daemon (Go's default), which
	// systemd takes for a clean exit and does not restart. One that
	// comes early is handled once serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// The database, its WAL and anything else we create are private.
	syscall.Umask(0o077)
	cfg := app.Config
	log := app.Logger
	// Settings only known once the environment is read (the ARI
	// password, TOLLGUARD_AGI_ADDR) are checked before anything is opened.
	if msg := listenProblem(cfg.AGI.Listen, "127.0.0.1:4573"); msg != "" {
		return tollguard.Errorf(tollguard.EINVALID, "FastAGI address %q (TOLLGUARD_AGI_ADDR or [agi] listen): %s", cfg.AGI.Listen, msg)
	}
	// The file was checked as it loaded, the environment (TOLLGUARD_ARI_URL)
	// not: refused here as config check refuses it, with exit 2, which
	// the unit does not restart.
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.ARI.Enabled {
		if _, err := cfg.ARI.ClientConfig(); err != nil {
			return err
		}
	}
	// Started, not refused (that would fail every toll call closed), but
	// said: a reload of the same file is refused, and with no ARI, audits
	// or limits of its own the daemon guards far less than meant.
	if cfg.blank() {
		log.Warn("the config file is empty: running on the defaults (no ARI listener, no audits, no alert notifiers). "+
			"If it was emptied (a full disk, an editor that stopped mid-save), write it again and restart; to run on the defaults on purpose, put a comment in it", "path", cfg.path)
	}
	// The notifiers read their secret files and CA file: built before
	// the FastAGI bind, though the alerts start after it, since a serve
	// failing there (restarted by systemd) took calls whose hangups found
	// no daemon.
	notifiers, err := cfg.Alerts.Notifiers(log)
	if err != nil {
		return err
	}
	db, err := app.Store(ctx)
	if err != nil {
		return err
	}
	d := &daemon{app: app, db: db, policy: app.Policy(db), log: log, health: NewHealth(), alerter: logAlerter{log}, fatal: make(chan error, 1),
		secrets: cfg.secretDigests()}
	// Times since this process's decisions on the monotonic clock: an
	// NTP step must neither cut a bill nor end calls within their MAXSEC.
	d.policy.Mono = tollguard.MonotonicClock
	d.clock = &tollguard.ClockWatch{Now: app.Now, Mono: sinceBootClock(), Logger: log}
	d.clock.Start()
	// Calls decided before this start are timed on the wall clock, less
	// how far the watch finds it ahead: a `date -s` must not cut them.
	d.policy.WallAhead = d.clock.Ahead
	// What the store deletes by age as it writes (old audit runs,
	// forgotten endpoint sightings) waits for the clock too.
	db.PruneHeld = d.clock.PruneHeld
	gate := cfg.Gate
	d.gate.Store(&gate)
	d.metrics = NewMetrics()
	d.metrics.WatchStore(db)
	d.metrics.WatchSettlements(d.policy)
	d.health.SetStore(true)
	if cfg.ARI.Enabled {
		ariStarting(d)
	}

	ctx, cancel := context.WithCancel(ctx)
	// On a start-up error too, what already runs stops before the
	// database closes (an alert dispatcher logged "database is closed"),
	// and the settlements the store failed since the FastAGI server
	// started are tried once more, or logged lost.
	stopped := false // stop waited already
	defer func() {
		cancel()
		if !stopped {
			waitTimeout(&d.wg, cfg.AGI.ShutdownWait()+5*time.Second, log)
			d.flushSettlements()
		}
	}()

	if cfg.Metrics.Enabled {
		if err := d.startMetrics(ctx); err != nil {
			return err
		}
	}
	// A SIGTERM while the gate warms up (or waits for the database's
	// write lock) is a stop, not a failed start: systemd would mark the
	// unit failed, and the error would name the lock or the bind.
	stoppedEarly := func() bool {
		if ctx.Err() == nil {
			return false
		}
		log.Info("tollguard stopped before it served")
		return true
	}
	if cfg.AGI.Enabled {
		// A carrier-sized rate deck takes a while to read: before the
		// first call, not during it (it would miss its deadline).
		log.Info("loading the rates, high-risk list, rules and the last day's call attempts before listening for calls", "db", cfg.DB)
		if err := db.WarmGate(ctx); err != nil {
			if stoppedEarly() {
				return nil
			}
			return err
		}
		if stoppedEarly() {
			return nil
		}
		d.learnCountries(ctx)
		// Bound before the alerts, ARI and the audits start: a second
		// serve whose address the first daemon holds exits here, and
		// never runs them beside the first one's.
		if err := startAGI(ctx, d); err != nil {
			if stoppedEarly() {
				return nil
			}
			return fmt.Errorf("agi: %w", err)
		}
	}
	d.checkDefaultAccount(ctx, &gate)
	d.warnHoursNoSpans(ctx)
	if err := startAlerts(ctx, d, notifiers); err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	if err := startARI(ctx, d); err != nil {
		return fmt.Errorf("ari: %w", err)
	}
	if err := startCron(ctx, d); err != nil {
		return fmt.Errorf("audits: %w", err)
	}
	// Calls a crash left open are settled once the gate serves, not
	// before: asking ARI about each can take seconds when Asterisk is
	// away, and meanwhile their reservations only hold credit back.
	d.goFunc("sweep", func() {
		d.reconcile(ctx)
		d.sweepLoop(ctx)
	})
	// Settlements the store failed (a full disk), retried until it
	// takes them; the sweep leaves their calls alone meanwhile.
	d.goFunc("settle-retry", func() { d.policy.RunSettlementRetry(ctx, tollguard.SettleRetryInterval) })
	// WAL checkpoints in the background, not inside whichever decision's
	// commit crosses SQLite's automatic threshold (a big rates import
	// leaves thousands of pages for it).
	d.goFunc("checkpoint", func() { d.runCheckpointer(ctx, db) })

	log.Info("tollguard serving", "version", version, "db", cfg.DB, "agi", cfg.AGI.Listen, "ari", cfg.ARI.Enabled, "audits", cfg.Audit.Enabled)
	notifySystemd(log, sd.SdNotifyReady)
	d.startWatchdog(ctx)
	// stop lets sessions in flight get their answers and closes up.
	stop := func() {
		notifySystemd(log, sd.SdNotifyStopping)
		cancel()
		d.shutdown(cfg.AGI.ShutdownWait() + 5*time.Second)
		stopped = true
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down: no new calls; waiting for sessions in flight", "timeout", cfg.AGI.ShutdownWait())
			stop()
			log.Info("tollguard stopped")
			return nil
		case <-hup:
			d.reload()
		case err := <-d.fatal:
			log.Error("stopping: tollguard cannot go on; its supervisor should restart it", "err", err)
			stop()
			return err
		}
	}
}

// walCheckpointer is the store's WAL checkpoint loop (store.DB).
type walCheckpointer interface {
	RunCheckpointer(ctx context.Context, interval time.Duration, report func(error)) error
}

// runCheckpointer runs db's checkpoint loop until ctx ends and logs its
// failures.
func (d *daemon) runCheckpointer(ctx context.Context, db walCheckpointer) {
	log := d.log
	var last error // the state last reported
	report := func(err error) {
		defer func() { last = err }()
		switch {
		case errors.Is(err, store.ErrCheckpointBlocked):
			// The error says what holds the WAL; the disk is fine.
			log.Warn("WAL checkpoints run but cannot finish; the -wal file grows until the reader ends", tollguard.LogError, err)
		case err != nil:
			log.Error("WAL checkpoint failed; SQLite checkpoints inside commits until one succeeds again. "+tollguard.CheckStore, tollguard.LogError, err)
		case errors.Is(last, store.ErrCheckpointBlocked):
			log.Info("WAL checkpoints finish again; the -wal file is reset and trimmed")
		default:
			log.Info("WAL checkpoints succeed again; they are off the decision path again")
		}
	}
	err := db.RunCheckpointer(ctx, store.CheckpointInterval, report)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		// The loop returns when serve stops, after a last checkpoint: no
		// commit follows in this daemon, so SQLite's own checkpoints do
		// not matter any more; the WAL holds the writes meanwhile.
		if errors.Is(err, store.ErrCheckpointBlocked) {
			log.Warn("the final WAL checkpoint at shutdown could not finish; nothing is lost: the -wal file keeps the latest writes, and SQLite moves them into the database when it is next opened", tollguard.LogError, err)
		} else if !errors.Is(err, context.Canceled) { // stopped before it began
			log.Warn("the final WAL checkpoint at shutdown failed; nothing is lost: the -wal file keeps the latest writes, and SQLite moves them into the database when it is next opened. "+tollguard.CheckStore, tollguard.LogError, err)
		}
	default:
		log.Error("WAL checkpointer did not start; SQLite checkpoints inside commits, as by default, so a decision now and then waits for one. "+tollguard.CheckStore, tollguard.LogError, err)
	}
}

// shutdown waits up to wait in all for the background tasks, then for
// the late results of audits abandoned at their deadline (what such a
// job changed, purges or blocks, is only on record once its run is
// stored), and closes the database.
func (d *daemon) shutdown(wait time.Duration) {
	deadline := time.Now().Add(wait)
	waitTimeout(&d.wg, wait, d.log)
	if running := d.abandoned.Running(); len(running) > 0 {
		for _, r := range running {
			d.log.Info("shutting down: waiting for an audit abandoned at its deadline to return, so that what it found and changed is stored",
				"job", r.Job, "started", r.Started, "timeout", time.Until(deadline).Round(time.Millisecond).String())
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		for _, r := range d.abandoned.Wait(ctx) {
			d.log.Error("stopped waiting for audit "+r.Job+" (abandoned at its deadline, still running): the database closes now, so its late run, with what it found and changed since, will not be stored. Its changes are in this log as \"audit action\" lines with this job; check them, find what hangs (a hung file system or database driver), then run `tollguard audit "+r.Job+"` again",
				"job", r.Job, tollguard.LogReason, "shutdown_wait_elapsed", "started", r.Started)
		}
		cancel()
	}
	d.flushSettlements()
	// Nothing writes any more: the copy has the last call.
	if err := d.db.FileReplaced(); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		d.saveDBCopy(ctx, err, true)
		cancel()
	}
	d.app.Close()
}

// flushSettlements tries the settlements the store failed once more,
// once the FastAGI sessions and the ARI listener have stopped (no
// settlement comes any more). What the store still refuses is logged,
// call by call, for refunds by hand.
func (d *daemon) flushSettlements() {
	if d.policy == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.policy.FlushSettlements(ctx)
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		log.Warn("some background tasks did not stop in time; closing anyway", "waited", d)
	}
}

// reload re-reads the config on SIGHUP. Rules and limits live in the
// store and never need a reload; listener addresses need a restart.
func (d *daemon) reload() {
	app := d.app
	path := app.ConfigPath
	if path == "" {
		path = os.Getenv("TOLLGUARD_CONFIG")
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		d.log.Error("config reload failed; keeping the running config", "err", tollguard.ErrorMessage(err))
		return
	}
	// An emptied file reads as every default, and [gate] would fall
	// back to them at once.
	if cfg.blank() {
		d.log.Error("config reload refused; keeping the running config: the file is empty (a full disk or an editor that stopped mid-save can leave it so). "+
			"Write the config again and reload; to run on the defaults, put a comment in it", "path", path)
		return
	}
	cfg.ApplyEnv(os.Getenv)
	if app.DBPath != "" {
		cfg.DB = app.DBPath
	}
	old := app.Config
	for _, c := range []struct{ name, was, now string }{
		{"db", old.DB, cfg.DB}, {"agi.listen", old.AGI.Listen, cfg.AGI.Listen}, {"metrics.listen", old.Metrics.Listen, cfg.Metrics.Listen},
		{"ari.enabled", fmt.Sprint(old.ARI.Enabled), fmt.Sprint(cfg.ARI.Enabled)},
		{"gate.sweep_interval", old.Gate.SweepInterval.String(), cfg.Gate.SweepInterval.String()},
	} {
		if c.was != c.now {
			d.log.Warn("setting changed; it takes effect after a restart", "setting", c.name, "running", c.was, "configured", c.now)
		}
	}
	// The FastAGI server, logging and metrics are set up once: a change
	// there (the allowed clients above all) needs a restart, and must not
	// pass silently as reloaded.
	// listen is said above, with both values.
	d.warnRestart("agi", old.AGI, cfg.AGI, "listen")
	d.warnRestart("log", old.Log, cfg.Log)
	d.warnRestart("metrics", old.Metrics, cfg.Metrics, "listen")
	// A secret file's content is read at start only (an admin rotating
	// the webhook secret or the ARI password reloads and expects it in
	// force): say so, as for the settings above.
	now := cfg.secretDigests()
	for _, key := range slices.Sorted(maps.Keys(now)) {
		if was, ok := d.secrets[key]; ok && was != now[key] {
			d.log.Warn("setting changed; it takes effect after a restart", "setting", key)
		}
	}
	g := cfg.Gate
	if was := d.gate.Load(); was != nil {
		// sweep_interval sets the sweep's ticker once: said above as
		// waiting for a restart.
		for _, c := range changedSettings(*was, g, "sweep_interval") {
			d.log.Info("setting changed; applied now", "setting", "gate."+c.key, "running", c.was, "configured", c.now)
		}
	}
	// Every [gate] setting the policy has, from the one function the
	// start uses: a reload once dropped free_short_codes.
	d.policy.Configure(g.PolicySettings())
	was := d.gate.Swap(&g)
	if was == nil || was.AllowUnknown != g.AllowUnknown || was.DefaultAccount != g.DefaultAccount {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.checkDefaultAccount(ctx, &g)
		cancel()
	}
	for _, f := range d.reloaders {
		f(cfg)
	}
	d.log.Info("config reloaded", "path", path, "applied", "[gate] now; other changes are logged above as needing a restart")
}

// checkDefaultAccount logs an error when allow_unknown is on and
// default_account names no account in the store: the gate then denies
// every call from an extension it does not know whose accountcode names
// no account either. serve goes on, at start and on a reload alike: it
// still gates the extensions it knows, and adding the account mends it
// without a restart.
func (d *daemon) checkDefaultAccount(ctx context.Context, g *GateConfig) {
	if !g.AllowUnknown || g.DefaultAccount == "" {
		return
	}
	_, err := d.db.Account(ctx, g.DefaultAccount)
	switch {
	case err == nil, ctx.Err() != nil: // found, or stopping
	case tollguard.ErrorCode(err) == tollguard.ENOTFOUND:
		d.log.Error("[gate] allow_unknown is on, but default_account names no account in the store: every call from an extension tollguard does not know (and whose accountcode names no account) is denied as unknown_extension. "+
			"Add it with `tollguard account add ID --country CC --currency CUR` (ID as in account=), or set default_account to one that `tollguard account list` shows (ids are case-sensitive) and reload",
			tollguard.LogAccount, g.DefaultAccount, tollguard.LogReason, "default_account_not_found", "setting", "gate.default_account")
	default:
		d.log.Warn("could not check that [gate] default_account is an account in the store. "+tollguard.CheckStore,
			tollguard.LogAccount, g.DefaultAccount, tollguard.LogError, err)
	}
}

// warnHoursNoSpans logs, once at start, each account whose stored hours
// name no span (";", written by a release before schedule set refused
// it): the gate reads them as always open, as it did, rather than fail
// the account's every call, so the admin must hear of it here. Hours
// live in the store, not the config: a reload does not repeat this, and
// a schedule set needs no reload.
func (d *daemon) warnHoursNoSpans(ctx context.Context) {
	accts, err := d.db.Accounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("could not read the accounts to check their business hours. "+tollguard.CheckStore, tollguard.LogError, err)
		}
		return
	}
	for _, a := range accts {
		if tollguard.HoursNameNoSpans(a.HoursSpec) {
			d.log.Warn(tollguard.NoSpansAdvice(a.ID, a.HoursSpec), tollguard.LogAccount, a.ID, "hours", a.HoursSpec, tollguard.LogReason, "hours_no_spans")
		}
	}
}

// secretDigests are the SHA-256 digests of the secrets in force, by
// setting, for the sections that use them: what the environment gives,
// else the file's content (unreadable counts as its own value).
func (c *Config) secretDigests() map[string]string {
	out := map[string]string{}
	add := func(key, env, file string) {
		v := "env:" + env
		if env == "" {
			s, err := readSecretFile(file)
			if err != nil {
				s = "error:" + err.Error()
			}
			v = "file:" + s
		}
		sum := sha256.Sum256([]byte(v))
		out[key] = hex.EncodeToString(sum[:])
	}
	if c.ARI.Enabled {
		add("ari.password_file", c.ARI.password, c.ARI.PasswordFile)
	}
	if c.Alerts.Email.Enabled {
		add("alerts.email.password_file", c.Alerts.Email.password, c.Alerts.Email.PasswordFile)
	}
	if c.Alerts.Webhook.Enabled {
		add("alerts.webhook.secret_file", c.Alerts.Webhook.secret, c.Alerts.Webhook.SecretFile)
	}
	return out
}

// warnRestart logs each setting of section (a config struct, was and
// now of one type) that a reload changed as waiting for a restart: the
// README promises the admin the setting's name, not only its section.
func (d *daemon) warnRestart(section string, was, now any, skip ...string) {
	for _, c := range changedSettings(was, now, skip...) {
		d.log.Warn("setting changed; it takes effect after a restart", "setting", section+"."+c.key)
	}
}

// settingChange is one setting a reload changed, with both values.
type settingChange struct{ key, was, now string }

// changedSettings lists the settings (toml keys) whose values differ
// between two structs of the same config section, less the keys in skip.
func changedSettings(was, now any, skip ...string) []settingChange {
	a, b := reflect.ValueOf(was), reflect.ValueOf(now)
	var out []settingChange
	for i := range a.NumField() {
		// Unexported fields are no settings (the ARI password read from
		// the environment; secret files are compared on their own).
		if !a.Type().Field(i).IsExported() || reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			continue
		}
		key, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("toml"), ",")
		if !slices.Contains(skip, key) {
			out = append(out, settingChange{key, fmt.Sprint(a.Field(i).Interface()), fmt.Sprint(b.Field(i).Interface())})
		}
	}
	return out
}

// learnCountries tells the policy every account's country and each
// extension's: when the store fails or is too slow, the gate still lets
// the emergency numbers of an account's country through, whether or
// not the account has placed a call since the start.
func (d *daemon) learnCountries(ctx context.Context) {
	accts, err := d.db.Accounts(ctx)
	if err == nil {
		var exts []*tollguard.Extension
		if exts, err = d.db.Extensions(ctx, ""); err == nil {
			d.policy.LearnCountries(accts, exts)
			return
		}
	}
	// What was learned before stays.
	d.log.Warn("could not read the accounts' and extensions' countries; when the store fails, the gate lets through the emergency numbers of the default country and of the countries it learned before. "+tollguard.CheckStore, tollguard.LogError, err)
}

// reconcile settles calls a crash left open, at startup.
func (d *daemon) reconcile(ctx context.Context) {
	r, err := d.policy.Sweep(ctx, d.db, d.channelAlive, d.channelHangup, d.gate.Load().SweepGrace.Duration)
	if err != nil {
		d.log.Error("startup reconciliation failed; the sweep will retry. "+tollguard.CheckStore, "err", err)
		return
	}
	d.log.Info("startup reconciliation", "open_calls", r.Checked, "settled_at_full_reservation", r.SettledFull,
		"settled_channel_gone", r.SettledGone, "channel_gone_settled_next_sweep", r.GoneWaiting, "still_running", r.StillRunning,
		"settlement_pending", r.Pending)
	d.sweepDone(r)
}

// sweepDone counts what a sweep did and logs the calls that overran
// their MAXSEC.
func (d *daemon) sweepDone(r tollguard.SweepResult) {
	m := d.metrics.SweepSettled
	m.WithLabelValues("full_reservation").Add(float64(r.SettledFull))
	m.WithLabelValues("channel_gone").Add(float64(r.SettledGone))
	for _, o := range r.Overran {
		c := o.Call
		args := []any{tollguard.LogExtension, c.Extension, tollguard.LogAccount, c.Account, tollguard.LogDest, c.Dialled, tollguard.LogCallID, c.ID,
			"channel", c.Channel, "uniqueid", c.UniqueID, "maxsec", c.MaxSec, "up_for", o.Elapsed.Round(time.Second)}
		if o.HungUp {
			d.metrics.Overran.WithLabelValues("hung_up").Inc()
			d.log.Warn("hung up a call still up past its MAXSEC: TIMEOUT(absolute) did not end it. Check that nothing in its route after the tollguard Gosub clears or changes TIMEOUT(absolute)", args...)
			continue
		}
		d.metrics.Overran.WithLabelValues("still_up").Inc()
		d.log.Error("a call is still up past its MAXSEC, and hanging it up through ARI failed; the next sweep tries again. Hang it up in Asterisk (channel request hangup <channel>), and check that nothing in its route after the tollguard Gosub clears or changes TIMEOUT(absolute)",
			append(args, tollguard.LogError, o.Err)...)
	}
}

// sweepLoop settles lost calls and rolls up old ones, periodically.
func (d *daemon) sweepLoop(ctx context.Context) {
	t := time.NewTicker(d.gate.Load().SweepInterval.Duration)
	defer t.Stop()
	lastRollup := time.Time{}
	var elsewhere, reloadFailures uint64
	known := store.LatestSchema()
	var file dbFileState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.checkDBFile(ctx, &file)
		d.warnCallsRecordedElsewhere(&elsewhere)
		d.warnDestReloadFailures(&reloadFailures)
		d.checkSchema(ctx, known)
		d.learnCountries(ctx)
		cfg := d.gate.Load()
		r, err := d.policy.Sweep(ctx, d.db, d.channelAlive, d.channelHangup, cfg.SweepGrace.Duration)
		if err != nil {
			d.log.Error("sweep failed; it runs again next interval, and open calls keep their reservations until it settles them. "+tollguard.CheckStore, "err", err)
		} else if r.SettledFull+r.SettledGone > 0 {
			d.log.Warn("settled calls whose hangup never reached tollguard; check the dialplan's hangup handler",
				"settled_at_full_reservation", r.SettledFull, "settled_channel_gone", r.SettledGone)
		}
		d.sweepDone(r)
		// Looked at every sweep, so that a clock step is warned about at once.
		d.clock.PruneHeld()
		if now := d.app.Now(); now.Sub(lastRollup) > time.Hour {
			lastRollup = now
			d.housekeep(ctx, now, cfg.RetentionDays)
		}
	}
}

// housekeep rolls old calls up and prunes what is kept only for a
// while; the sweep runs it hourly. Both go by the wall clock's age and
// cannot be undone: held while the clock has stepped ahead (ClockWatch).
func (d *daemon) housekeep(ctx context.Context, now time.Time, retentionDays int) {
	if d.clock.PruneHeld() {
		return
	}
	n, err := d.db.Rollup(ctx, store.RollupBefore(now, retentionDays), 5000)
	if err != nil {
		d.log.Error("rolling up old calls failed; the calls table grows until it succeeds. "+tollguard.CheckStore, "err", err)
	} else if n > 0 {
		d.log.Info("rolled up old calls into monthly totals", "calls", n, "retention_days", retentionDays)
	}
	// Snapshots hold SIP passwords: kept for the restore window only,
	// and at least stale_days, so a restore still counts as a use.
	keep := max(store.SnapshotRetention, time.Duration(d.app.Config.Audit.StaleDays)*24*time.Hour)
	snaps, purges, err := d.db.PruneSnapshots(ctx, now.Add(-keep))
	if err != nil {
		d.log.Error("pruning old purge snapshots failed; they (and the SIP passwords in them) are kept until it succeeds. "+tollguard.CheckStore, "err", err)
	} else if snaps+purges > 0 {
		d.log.Info("pruned old purge snapshots and finished purges", "snapshots", snaps, "purges", purges, "retention", keep.String())
	}
	// Creations count for a day (the daily quota); a week is kept to
	// look into a burst.
	if n, err := d.db.PruneExtensionCreations(ctx, now.Add(-store.ExtensionCreationRetention)); err != nil {
		d.log.Error("pruning old extension creations failed; they are kept until it succeeds. "+tollguard.CheckStore, "err", err)
	} else if n > 0 {
		d.log.Info("pruned old extension creations", "creations", n, "retention", store.ExtensionCreationRetention.String())
	}
}

// dbFileState is what checkDBFile last found.
type dbFileState struct{ gone, saved bool }

// checkDBFile reports a database file deleted, moved or replaced under
// the daemon, and saves a copy of what the daemon holds beside it: the
// file it has open is then the only copy of the balances and calls,
// and is gone when it stops. Calls are still decided on it, so serve
// goes on, not ready.
func (d *daemon) checkDBFile(ctx context.Context, st *dbFileState) {
	err := d.db.FileReplaced()
	if err == nil {
		if st.gone {
			d.health.SetStore(true)
			d.log.Info("the database file is back at its path", "db", d.db.Path())
		}
		*st = dbFileState{}
		return
	}
	if !st.gone {
		st.gone = true
		d.health.SetStore(false)
	}
	if !st.saved {
		st.saved = d.saveDBCopy(ctx, err, false)
	}
}

// saveDBCopy saves the database the daemon has open beside its path,
// after cause (FileReplaced) took the path from it, and logs what to do;
// atStop is serve's last copy, as it stops.
func (d *daemon) saveDBCopy(ctx context.Context, cause error, atStop bool) bool {
	path := d.db.Path()
	saved := path + ".saved-" + d.app.Now().UTC().Format("20060102T150405Z")
	if atStop {
		saved += "-at-stop"
	}
	if err := d.db.SaveCopy(ctx, saved); err != nil {
		d.log.Error(cause.Error()+" while tollguard had it open, and saving a copy of what it holds (balances, calls, extensions) failed: "+
			"it is lost once tollguard stops. Free space in the directory, or let the user tollguard runs as write there; a running tollguard tries again at each sweep",
			"db", path, tollguard.LogError, err)
		return false
	}
	// The daemon's -wal and -shm go either way: started beside them, the
	// file at the path would take in the daemon's last changes.
	leftovers := "remove " + path + "-wal and " + path + "-shm if they are left"
	restore := leftovers + ", move " + saved + " to " + path + " as the user tollguard runs as, and start tollguard serve"
	onPurpose := ". If the file was replaced on purpose (a restored backup), " + leftovers + " and start tollguard serve on it, and delete the copies"
	if atStop {
		d.log.Error(cause.Error()+" while tollguard had it open; what it held when it stopped is saved. To go on with it: "+restore+
			onPurpose, "db", path, "saved", saved)
		return true
	}
	d.log.Error(cause.Error()+" while tollguard had it open: calls are still decided on the open file, but what it holds (balances, calls, extensions) is lost when tollguard stops, so a copy is saved. "+
		"To keep it: stop tollguard serve, which saves a last copy as it stops, then use that one: "+restore+
		onPurpose+" (stop tollguard serve first, and run no other tollguard command until then)", "db", path, "saved", saved)
	return true
}

// warnDestReloadFailures logs when reloading the rates, high-risk list
// and rules failed since the last look (*seen is the count then): calls
// go on being decided on the data loaded before, so a change an admin
// made does not apply.
func (d *daemon) warnDestReloadFailures(seen *uint64) {
	n, last := d.db.DestReloadFailures()
	if n == *seen {
		return
	}
	d.log.Error("reloading the rate deck, high-risk list and rules failed; calls are decided on the data loaded before, so recent changes to them do not apply yet. Check the database (tollguard's log, PRAGMA integrity_check)",
		"failures", n-*seen, tollguard.LogError, last)
	*seen = n
}

// checkSchema reports a database that a newer tollguard (the CLI after
// an upgrade, before this daemon was restarted) migrated under this
// daemon: its queries may no longer match the tables. /readyz turns not
// ready, so monitoring sees it.
func (d *daemon) checkSchema(ctx context.Context, known int) {
	v, err := d.db.SchemaVersion(ctx)
	if err != nil {
		return
	}
	if v > known {
		d.health.SetSchemaOK(false)
		d.log.Error("a newer tollguard migrated the database under this daemon; restart it so that the new binary serves (systemctl restart tollguard)",
			"schema", v, "this_binary_knows", known)
	}
}

// warnCallsRecordedElsewhere logs when call rows appeared that this
// daemon's gate did not write since the last look (*seen is the count
// then). Decisions stay correct (the gate reads them into its rate-limit
// tally), but two daemons on one database is rarely meant.
func (d *daemon) warnCallsRecordedElsewhere(seen *uint64) {
	n := d.db.CallsRecordedElsewhere()
	if n > *seen {
		d.log.Warn("another process is recording calls into this database; is a second tollguard serve running on it? "+
			"Each daemon's rate limits count both, but stop the one you did not mean to run",
			"db", d.db.Path(), "times", n-*seen)
	}
	*seen = n
}

// logAlerter writes alerts to the log; the alert subsystem replaces it.
type logAlerter struct{ log *slog.Logger }

func (l logAlerter) Raise(ctx context.Context, a tollguard.Alert) error {
	l.log.Warn("alert", "kind", a.Kind, "severity", a.Severity, "subject", a.Subject,
		tollguard.LogExtension, a.Extension, tollguard.LogAccount, a.Account, "message", a.Message)
	return nil
}
