package main

import (
	"context"
	"sort"
	"sync"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/cron"
)

// startCron schedules the audits when [audit] is enabled: each runs the
// same code as `tollguard audit NAME`, with --apply only when [audit]
// apply lists it. Audits run one at a time (they share the pending
// purges), each within [audit] timeout (RunAudit cancels it there, so a
// hung one does not hold up the rest), a crashed one is logged and runs
// again at its next time, and serve waits for a running audit, and for
// the late result of one abandoned at its deadline, before it closes the
// database.
func startCron(ctx context.Context, d *daemon) error {
	cfg := &d.app.Config.Audit
	// Registered first: turning [audit] on by SIGHUP waits for a restart
	// too, and must not pass silently as reloaded.
	running := *cfg
	d.reloaders = append(d.reloaders, func(c *Config) {
		d.warnRestart("audit", running, c.Audit)
	})
	if !cfg.Enabled {
		return nil
	}
	s, err := newAuditScheduler(d)
	if err != nil {
		return err
	}
	s.Start(ctx)
	d.goFunc("audits", func() {
		<-ctx.Done()
		<-s.Stop().Done() // a running audit finishes before the database closes
	})
	for _, e := range s.Entries() {
		d.log.Info("audit scheduled", "job", e.Name, "spec", e.Spec, "next", e.Next, "apply", cfg.applies(e.Name), "zone", s.Location().String())
	}
	return nil
}

// newAuditScheduler schedules every audit [audit] schedules names.
func newAuditScheduler(d *daemon) (*cron.Scheduler, error) {
	cfg := &d.app.Config.Audit
	loc, err := cfg.Location()
	if err != nil {
		return nil, err
	}
	ns, err := d.app.Config.Alerts.Notifiers(d.log)
	if err != nil {
		return nil, err
	}
	mailer := ownerMailer(ns)
	s := cron.New(loc, d.log)
	var one sync.Mutex // audits run one at a time
	names := make([]string, 0, len(cfg.Schedules))
	for n := range cfg.Schedules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		spec := cfg.Schedules[name]
		if scheduleOff(spec) {
			continue
		}
		job, err := auditJob(name)
		if err != nil {
			return nil, err
		}
		apply := cfg.applies(name)
		if err := s.Add(name, spec, func(ctx context.Context) {
			one.Lock()
			defer one.Unlock()
			// It may have waited its turn past the start of shutdown: a
			// run now would only be cut short and stored as failed.
			if ctx.Err() != nil {
				d.log.Info("scheduled audit not run: tollguard is stopping", "job", name)
				return
			}
			env := newAuditEnv(d.auditConfig(), d.db, d.asterisk, d.alerter, mailer, d.log, d.app.Now)
			env.Abandoned = &d.abandoned // shutdown waits for their late runs
			// A purge due only by a clock that stepped ahead waits.
			env.PruneHeld = d.clock.PruneHeld
			// RunAudit logs the outcome and stores the run; a failure is
			// in both.
			run, _ := tollguard.RunAudit(ctx, env, job, apply, "cron", nil)
			if run != nil && d.metrics != nil {
				for _, f := range run.Findings {
					d.metrics.AuditFindings.WithLabelValues(run.Job, string(f.Severity)).Inc()
				}
			}
		}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// auditConfig is the config a scheduled audit runs with: the start-up
// one, with the [gate] in force (a reload changes selftest_number).
func (d *daemon) auditConfig() *Config {
	c := *d.app.Config
	if g := d.gate.Load(); g != nil {
		c.Gate = *g
	}
	return &c
}
