// Package sdstate tells the service manager that runs clusterrun (systemd,
// with Type=notify or Type=notify-reload) what state clusterrun is in, with
// the sd_notify protocol of package sdnotify:
//
//   - starting: STATUS=N of M apps ready, and EXTEND_TIMEOUT_USEC= each
//     time an instance starts whose ready check may outlast the manager's
//     start timeout; READY=1 once every app that must be up is ready, done
//     or has given up;
//   - reloading: RELOADING=1 with MONOTONIC_USEC= as each reload begins
//     (SIGHUP, clusterrun reload, a watch block), READY=1 with the outcome
//     in STATUS= once no reload is pending;
//   - stopping: STOPPING=1 when the runner drains;
//   - alive: WATCHDOG=1 at every tick of the runner's loop, half the
//     manager's WATCHDOG_USEC.
//
// A Reporter lives on the runner's goroutine (runner.Supervisor plus a
// lifecycle subscriber): it sends only from there, so a stuck loop sends
// nothing, which is what the manager's watchdog is for.
package sdstate

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/sdnotify"
	"github.com/clusterrun/clusterrun/status"
)

// Sender is where messages go: an *sdnotify.Manager.
type Sender interface {
	Send(kv ...string) error
}

// Reporter turns the runner's progress and lifecycle events into sd_notify
// messages. It is not safe for concurrent use: the runner's goroutine
// drives it.
type Reporter struct {
	send     Sender
	logf     func(string, ...any)
	watchdog time.Duration
	// mainPID is sent with the first message when not 0 (see New).
	mainPID int
	// startFor is, per app, how long an instance may take to start:
	// its ready timeout plus its longest restart backoff.
	startFor map[string]time.Duration

	// started: READY=1 for the start was sent.
	started bool
	// stopping: STOPPING=1 was sent; nothing follows it but WATCHDOG=1.
	stopping bool
	// progress is the last progress text sent in STATUS=.
	progress string
	// extendedUntil is when the last EXTEND_TIMEOUT_USEC= runs out, and
	// extend the later end a started instance asks for, not yet sent.
	extendedUntil, extend time.Time
	// reloads counts the reloads that began and have not ended; began
	// counts those whose RELOADING=1 is still to send; reloading says
	// RELOADING=1 was sent and READY=1 not yet; outcome is the last
	// ended reload.
	reloads, began int
	reloading      bool
	outcome        status.Lifecycle
	// failing: the last send failed (said once, until one succeeds).
	failing bool
}

// New returns a Reporter for mgr, for the apps of cfg (the file at start).
// logf reports send failures once.
//
// MAINPID= is sent when the manager started another process than this one
// (SYSTEMD_EXEC_PID differs from our pid): clusterrun runs under a wrapper
// that did not exec it, so the manager would otherwise take the wrapper for
// the service, and watch and signal it rather than clusterrun. (It takes
// MAINPID= from a process that is not the main one only with
// NotifyAccess=all.) Started directly, as the export writes the unit, or
// through a wrapper that execs it, clusterrun is the main process already
// and MAINPID= says nothing new.
func New(mgr *sdnotify.Manager, cfg *hclconfig.Config, logf func(string, ...any)) *Reporter {
	r := newReporter(mgr, mgr.Watchdog, cfg, logf)
	if pid := os.Getpid(); mgr.ExecPID != 0 && mgr.ExecPID != pid {
		r.mainPID = pid
	}
	return r
}

func newReporter(send Sender, watchdog time.Duration, cfg *hclconfig.Config, logf func(string, ...any)) *Reporter {
	r := &Reporter{send: send, logf: logf, watchdog: watchdog, startFor: map[string]time.Duration{}}
	for _, a := range cfg.Apps {
		r.startFor[a.Name] = a.Ready.Timeout + a.Restart.MaxBackoff
	}
	return r
}

// extendSlack is added to each extension of the start timeout, so that the
// instances started together (or soon after one another, each app once
// those it depends on are ready) share one EXTEND_TIMEOUT_USEC=.
const extendSlack = 5 * time.Second

// Every is the watchdog tick: half of WATCHDOG_USEC, as sd_watchdog_enabled
// advises, so that one late tick does not miss the deadline.
func (r *Reporter) Every() time.Duration { return r.watchdog / 2 }

// Tick is called by the runner's loop every Every: the loop is alive.
func (r *Reporter) Tick() { r.emit("WATCHDOG", "1") }

// Observe takes the runner's lifecycle events (subscribe it).
func (r *Reporter) Observe(ev status.Lifecycle) {
	switch ev.Kind {
	case status.Started:
		// While the start is under way, the manager's start timeout
		// (TimeoutStartSec=, 90s by default) runs; an instance that may take
		// longer to be ready, and restart after a failed try, extends it.
		if !r.started {
			if end := ev.Time.Add(r.startFor[ev.App]); end.After(r.extendedUntil) && end.After(r.extend) {
				r.extend = end.Add(extendSlack)
			}
		}
	case status.ReloadBegan:
		r.reloads++
		r.began++
	case status.ReloadEnded:
		r.reloads = max(r.reloads-1, 0)
		r.outcome = ev
	}
}

// Progress is called after every event of the runner; it sends what
// changed. Messages are only sent from here and from Tick, after the
// runner has handled an event, so they describe a state the runner is in.
func (r *Reporter) Progress(p status.Progress) {
	if r.stopping {
		return
	}
	if p.Phase != "running" {
		r.stopping = true
		r.emit("STOPPING", "1", "STATUS", "stopping: draining every app")
		return
	}
	if !r.started {
		if !r.extend.IsZero() {
			now := time.Now()
			if d := r.extend.Sub(now); d > 0 {
				r.emit("EXTEND_TIMEOUT_USEC", sdnotify.Usec(d))
				r.extendedUntil = r.extend
			}
			r.extend = time.Time{}
		}
		if !p.Settled() {
			r.setProgress(p)
			return
		}
		// Reloads asked for during the start are part of it: the files
		// they read are what READY=1 reports.
		r.started, r.began, r.reloads = true, 0, 0
		r.progress = progressText(p)
		r.emit("READY", "1", "STATUS", r.progress)
		return
	}
	for ; r.began > 0; r.began-- {
		// One RELOADING=1 for every reload: systemd waits, after each
		// reload signal it sends, for one made after it.
		r.reloading = true
		r.emit("RELOADING", "1", "MONOTONIC_USEC", sdnotify.Monotonic(), "STATUS", "reloading")
	}
	if r.reloading && r.reloads == 0 {
		r.reloading = false
		r.progress = progressText(p)
		r.emit("READY", "1", "STATUS", reloadText(r.outcome)+"; "+r.progress)
		return
	}
	if !r.reloading {
		r.setProgress(p)
	}
}

// setProgress sends STATUS= with the apps' progress if it changed. (The
// status of a reload's outcome stays until then.)
func (r *Reporter) setProgress(p status.Progress) {
	if s := progressText(p); s != r.progress {
		r.progress = s
		r.emit("STATUS", s)
	}
}

// emit sends one message, MAINPID= first in the very first one.
func (r *Reporter) emit(kv ...string) {
	if r.mainPID != 0 {
		kv = append([]string{"MAINPID", strconv.Itoa(r.mainPID)}, kv...)
	}
	for i := 1; i < len(kv); i += 2 {
		kv[i] = sdnotify.Line(kv[i])
	}
	if err := r.send.Send(kv...); err != nil {
		if !r.failing {
			r.failing = true
			r.logf("%v", err)
		}
		return
	}
	r.mainPID = 0
	r.failing = false
}

// progressText is the STATUS= line of the apps' progress: "3 of 4 apps
// ready", with those that gave up named.
func progressText(p status.Progress) string {
	s := fmt.Sprintf("%d of %d apps ready", p.Ready, p.Total)
	if p.Total == 1 {
		s = fmt.Sprintf("%d of 1 app ready", p.Ready)
	}
	if len(p.Failed) > 0 {
		s += "; failed: " + strings.Join(p.Failed, ", ")
	}
	return s
}

// reloadText says how the last reload ended.
func reloadText(ev status.Lifecycle) string {
	what := "reload"
	if ev.App != "" {
		what = "reload of " + ev.App
	}
	var s string
	switch ev.Outcome {
	case status.ReloadCompleted:
		s = what + " completed"
	case status.ReloadRejected:
		s = what + " rejected, everything keeps running as it was"
		if why := rejection(ev.Detail); why != "" {
			s += ": " + why
		}
	case status.ReloadAborted:
		s = what + " aborted, the old instances keep serving"
	default:
		s = what + " " + ev.Outcome
	}
	return s
}

// rejection is the first line of a rejected reload's answer that says why.
func rejection(detail string) string {
	for _, l := range strings.Split(detail, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "reload rejected") {
			return l
		}
	}
	return ""
}
