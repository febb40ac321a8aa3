package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// systemd integration for Type=notify units: READY=1 once the FastAGI
// listener is bound and the gate warm, STOPPING=1 at shutdown, and
// WATCHDOG=1 while the gate serves. Outside systemd (no NOTIFY_SOCKET)
// all of it is a no-op.
//
// The watchdog is there for the calls a frozen gate would hold. Once
// Asterisk has connected to the FastAGI port it waits for commands with
// no timeout, so a tollguard that is frozen (stopped, wedged, swapped
// out) while the kernel still accepts connections for it would hold
// every gated call in the AGI. (The emergency numbers on the include's
// list never wait for the gate; one that only the account's plan knows
// would.) With WatchdogSec in the unit, systemd kills such a process
// within seconds; the kernel then resets the held connections, and the
// include fails the calls closed, emergency numbers excepted, until
// tollguard is back.

// notifyWarned keeps a broken notify socket from logging at every
// watchdog ping: the first failure is logged, and the first success
// after failures.
var notifyWarned atomic.Bool

// notifySystemd sends one state to systemd's notify socket, if any.
func notifySystemd(log *slog.Logger, state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		if notifyWarned.CompareAndSwap(false, true) {
			log.Warn("could not notify systemd (logged once until it works again); "+
				"systemd will treat tollguard as not started or hung. Check NOTIFY_SOCKET and the unit's NotifyAccess",
				"state", state, "err", err)
		}
		return
	}
	if notifyWarned.CompareAndSwap(true, false) {
		log.Info("notifying systemd works again", "state", state)
	}
}

// startWatchdog feeds systemd's watchdog when the unit has one
// (WatchdogSec sets WATCHDOG_USEC).
func (d *daemon) startWatchdog(ctx context.Context) {
	timeout, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		d.log.Warn("systemd watchdog settings unreadable; not feeding the watchdog, so systemd will restart tollguard at its timeout. "+
			"Check WatchdogSec in the unit", "err", err)
		return
	}
	if timeout <= 0 {
		return
	}
	d.log.Info("feeding systemd's watchdog", "timeout", timeout)
	d.goFunc("watchdog", func() { d.watchdogLoop(ctx, timeout/3) })
}

// watchdogLoop pings every interval while the FastAGI server serves. A
// server that stopped (its listener failed) gets no pings: systemd then
// restarts tollguard, rather than leave every call failing closed.
func (d *daemon) watchdogLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	stalled := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d.app.Config.AGI.Enabled && !d.health.AGIServing() {
			if !stalled {
				d.log.Error("the FastAGI server is not serving; no longer feeding systemd's watchdog, so systemd restarts tollguard")
				stalled = true
			}
			continue
		}
		stalled = false
		notifySystemd(d.log, sd.SdNotifyWatchdog)
	}
}
