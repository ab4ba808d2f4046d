package runner

import (
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// release is one version of an app: its block from one loaded config with
// the listener blocks it names. Instances keep the release they were
// started with, so an aborted rollout leaves old instances on the old one.
type release struct {
	app       *hclconfig.App
	listeners []*hclconfig.Listener
	cred      *syscall.Credential
	// gen numbers the releases in load order, for status.
	gen int
}

// app is one app's supervision state.
type app struct {
	name  string
	rel   *release // what new instances of the app run
	slots []*slot
	// active: the app should be running (false when never selected on the
	// command line, stopped by a command, or during shutdown).
	active bool
	// userStopped: stopped by `clusterrun stop`, so the runner waits for a
	// `start` instead of exiting when nothing else runs.
	userStopped bool
	// started: its dependencies were met and its slots were started.
	started bool
	// removed: gone from the file after a reload; dropped once drained.
	removed bool
	rollout *rollout
	// startedAt and announced drive the one "all N instances ready" line.
	startedAt time.Time
	announced bool
}

type slotState int

const (
	slotIdle    slotState = iota // not started yet
	slotRunning                  // cur is starting or ready
	slotBackoff                  // waiting to restart after a crash
	slotDone                     // exited 0 and the policy does not restart it
	slotFailed                   // gave up, or exited non-zero under "never"
	slotStopped                  // stopped on purpose
)

func (s slotState) String() string {
	return [...]string{"idle", "running", "backoff", "done", "failed", "stopped"}[s]
}

// slot is one instance number of an app: CLUSTERRUN_INSTANCE. It has at most
// one serving process (cur) and, while that one is being replaced, one
// starting replacement (next). Older processes draining after a replacement
// are no longer the slot's concern.
type slot struct {
	app   *app
	index int
	rel   *release
	cur   *process
	next  *process
	state slotState
	// crashes are the times of recent crashes, within the restart window.
	crashes []time.Time
	// consecutive counts crashes since the last run that lasted min_uptime.
	consecutive int
	// restarts counts every restart after a crash, for status.
	restarts   int
	backoff    *time.Timer
	backoffSeq int
	// retired: scaled away or the app was removed; never restarted.
	retired bool
}

func (r *Runner) newApp(a *hclconfig.App, cfg *hclconfig.Config, cred *syscall.Credential) *app {
	return &app{name: a.Name, rel: r.newRelease(a, cfg, cred)}
}

func (r *Runner) newRelease(a *hclconfig.App, cfg *hclconfig.Config, cred *syscall.Credential) *release {
	r.releases++
	rel := &release{app: a, cred: cred, gen: r.releases}
	for _, n := range a.Listeners {
		rel.listeners = append(rel.listeners, cfg.Listener(n))
	}
	return rel
}

// label is the instance's name in logs and commands: "web.2".
func (s *slot) label() string { return s.app.name + "." + itoa(s.index) }

func (a *app) anyBackoff() bool {
	for _, s := range a.slots {
		if s.state == slotBackoff {
			return true
		}
	}
	return false
}

func (a *app) anyFailed() bool {
	for _, s := range a.slots {
		if s.state == slotFailed {
			return true
		}
	}
	return false
}

// ready: every instance is serving (or has finished successfully).
func (a *app) ready() bool {
	if !a.started {
		return false
	}
	for _, s := range a.slots {
		switch {
		case s.state == slotDone:
		case s.state == slotRunning && s.cur != nil && s.cur.state == procReady:
		default:
			return false
		}
	}
	return true
}

// done: every instance ran once and exited 0 (a build or migration step).
func (a *app) done() bool {
	if !a.started || len(a.slots) == 0 {
		return false
	}
	for _, s := range a.slots {
		if s.state != slotDone {
			return false
		}
	}
	return true
}

// failed: no instance runs or will run again, and at least one gave up.
func (a *app) failed() bool {
	if !a.started {
		return false
	}
	any := false
	for _, s := range a.slots {
		switch s.state {
		case slotFailed:
			any = true
		case slotDone:
		default:
			return false
		}
	}
	return any
}

// state is the app's one-word state for status.
func (a *app) state() string {
	switch {
	case a.removed:
		return "removing"
	case !a.active && a.liveProcs() > 0:
		return "stopping"
	case !a.active:
		return "stopped"
	case !a.started:
		return "waiting"
	case a.rollout != nil:
		return "reloading"
	case a.done():
		return "done"
	case a.failed():
		return "failed"
	case a.ready():
		return "ready"
	}
	return "starting"
}

func (a *app) liveProcs() int {
	n := 0
	for _, s := range a.slots {
		if s.cur != nil {
			n++
		}
		if s.next != nil {
			n++
		}
	}
	return n
}

// depsMet: every app a depends on is ready or done.
func (r *Runner) depsMet(a *app) bool {
	for _, d := range a.rel.app.DependsOn {
		da := r.app(d)
		if da == nil || !(da.ready() || da.done()) {
			return false
		}
	}
	return true
}

// depsCanStillBeMet is false once a dependency has failed for good.
func (r *Runner) depsCanStillBeMet(a *app) bool {
	for _, d := range a.rel.app.DependsOn {
		da := r.app(d)
		if da == nil || da.failed() || (!da.active && !da.userStopped) {
			return false
		}
	}
	return true
}

func (r *Runner) startWaitingApps() {
	for _, a := range r.apps {
		if !a.active || a.started || a.removed || !r.depsMet(a) {
			continue
		}
		r.startApp(a)
	}
}

// startApp starts every instance of an app whose dependencies are met.
func (r *Runner) startApp(a *app) {
	a.started = true
	a.startedAt = time.Now()
	a.announced = false
	// A restarted app keeps the count it was scaled to; a first start
	// takes the file's.
	n := a.rel.app.Instances
	if a.slots != nil {
		n = len(a.slots)
	}
	for _, old := range a.slots {
		old.retired = true // its draining processes, if any, are on their own
	}
	a.slots = nil
	for i := 0; i < n; i++ {
		a.slots = append(a.slots, &slot{app: a, index: i, rel: a.rel})
	}
	for _, s := range a.slots {
		r.startSlot(s)
	}
}

// announceReady logs once when every instance of an app is ready.
func (r *Runner) announceReady() {
	for _, a := range r.apps {
		if a.announced || !a.started || !a.active || a.rollout != nil {
			continue
		}
		switch {
		case a.done():
			a.announced = true
		case a.ready():
			a.announced = true
			r.log.Printf("%s: %d of %d instances ready after %s", a.name, len(a.slots), len(a.slots), human(time.Since(a.startedAt)))
		}
	}
}

// requiredFailure returns a required app that gave up, if any.
func (r *Runner) requiredFailure() *app {
	for _, a := range r.apps {
		if a.active && a.rel.app.Required && a.failed() {
			return a
		}
	}
	return nil
}

// stopApp stops every instance of a, and cancels pending restarts.
func (r *Runner) stopApp(a *app) {
	for _, s := range a.slots {
		r.stopSlot(s)
	}
	if a.rollout != nil {
		a.rollout = nil
	}
}

// stopSlot stops the slot's processes and keeps it from restarting.
func (r *Runner) stopSlot(s *slot) {
	r.cancelBackoff(s)
	for _, p := range []*process{s.cur, s.next} {
		if p != nil {
			r.stopProc(p, true)
		}
	}
	if s.state == slotBackoff || s.state == slotIdle || s.state == slotRunning {
		s.state = slotStopped
	}
}

func (r *Runner) cancelBackoff(s *slot) {
	if s.backoff != nil {
		s.backoff.Stop()
		s.backoff = nil
	}
	s.backoffSeq++
}

// forgetRemoved drops apps that a reload removed, once they have drained.
func (r *Runner) forgetRemoved() {
	kept := r.apps[:0]
	changed := false
	for _, a := range r.apps {
		if a.removed && a.liveProcs() == 0 && !r.hasDrainingProcs(a) {
			changed = true
			continue
		}
		kept = append(kept, a)
	}
	r.apps = kept
	if changed {
		r.retainListeners()
		r.declare()
	}
}

func (r *Runner) hasDrainingProcs(a *app) bool {
	for p := range r.live {
		if p.slot.app == a {
			return true
		}
	}
	return false
}

// retainListeners closes listener sockets that no release able to start a
// process refers to.
func (r *Runner) retainListeners() {
	var live []*hclconfig.Listener
	add := func(rel *release) {
		if rel != nil {
			live = append(live, rel.listeners...)
		}
	}
	for _, a := range r.apps {
		add(a.rel)
		if a.rollout != nil {
			add(a.rollout.target)
		}
		for _, s := range a.slots {
			add(s.rel)
		}
	}
	// Draining processes hold copies of their own; only a release that may
	// still start a process needs the runner's.
	r.lset.Retain(live)
}
