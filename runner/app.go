package runner

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// This file is the level of an app: its slots, its count, its state, and
// the commands that act on it (scale, stop, start).

// app is one app's supervision state.
type app struct {
	name  string
	state appState
	// userStopped: stopped by `clusterrun stop`; the runner waits for a
	// `start` rather than exiting when nothing else runs.
	userStopped bool
	// rel is the newest release the runner accepted: what new instances
	// run. prev is what it replaced, while a rollout may still roll back.
	// gens numbers the app's releases.
	rel, prev *Release
	gens      int
	// want is the desired number of instances, and wantFrom where it came
	// from (status.CountFile, CountFormation or CountScale).
	want     int
	wantFrom string
	// declared is the count the last accepted load declared (the file's,
	// or -m's). A reload changes want only when the count it declares
	// differs from this, as kubectl apply does: a live scale survives a
	// reload that did not change the count.
	declared int
	slots    []*slot
	draining []*instance
	rollout  *rollout
	// announced and startedAt drive the one "all N ready" line.
	announced bool
	startedAt time.Time
	// mixed: a rollback failed, so instances may run different releases
	// until a rollout completes.
	mixed bool
	// lastRollout says how its last rollout ended, for status.
	lastRollout *status.LastRollout
}

// newApp prepares an app of the file, not started.
func (m *Machine) newApp(ca *hclconfig.App, cfg *hclconfig.Config, cred *syscall.Credential) *app {
	a := &app{name: ca.Name, state: appWaiting}
	a.rel = m.newRelease(a, ca, cfg, cred)
	a.declared, a.wantFrom = m.declaredCount(ca)
	a.want = a.declared
	return a
}

// newRelease numbers a new release of a.
func (m *Machine) newRelease(a *app, ca *hclconfig.App, cfg *hclconfig.Config, cred *syscall.Credential) *Release {
	a.gens++
	rel := &Release{Gen: a.gens, App: ca, Cred: cred}
	for _, n := range ca.Listeners {
		rel.Listeners = append(rel.Listeners, cfg.Listener(n))
	}
	return rel
}

// declaredCount is the instance count a load declares for an app: up's -m
// for it (or -m all=N), else the file's.
func (m *Machine) declaredCount(ca *hclconfig.App) (int, string) {
	if n, ok := m.formation[ca.Name]; ok {
		return n, status.CountFormation
	}
	if n, ok := m.formation["all"]; ok {
		return n, status.CountFormation
	}
	return ca.Instances, status.CountFile
}

// setApp moves an app to another state, if states.go allows it, and tells
// subscribers.
func (m *Machine) setApp(a *app, to appState) {
	if a.state == to {
		return
	}
	if !allowed(appTransitions, int(a.state), to) {
		m.bug("%s: no app transition from %s to %s", a.name, a.state, to)
		return
	}
	a.state = to
	m.publishApp(a, -1, status.Lifecycle{Kind: status.AppState, Detail: to.String()})
}

// app returns the app called name that is not being removed, or nil.
func (m *Machine) app(name string) *app {
	for _, a := range m.apps {
		if a.name == name && a.state != appRemoved {
			return a
		}
	}
	return nil
}

// startApp starts every instance of an app whose dependencies are met.
func (m *Machine) startApp(a *app) {
	m.setApp(a, appRunning)
	a.startedAt = m.clock.Now()
	a.announced = false
	for _, s := range a.slots {
		m.retireSlot(s)
	}
	a.slots = nil
	for i := 0; i < a.want; i++ {
		s := newSlot(a, i)
		a.slots = append(a.slots, s)
		m.spawn(s, a.rel, locCur, 0)
	}
}

// setWant records a new desired count and where it came from.
func (m *Machine) setWant(a *app, n int, from string) {
	if a.want == n && a.wantFrom == from {
		return
	}
	a.want, a.wantFrom = n, from
	m.publishApp(a, -1, status.Lifecycle{Kind: status.Scaled, Count: n, Reason: from})
}

// resize brings the number of a's slots to a.want: new slots start at once
// with the app's newest release, surplus slots (the highest numbers) drain.
func (m *Machine) resize(a *app, why string) {
	n, cur := a.want, len(a.slots)
	if a.state != appRunning || n == cur {
		return
	}
	m.log.Printf("%s: scaling from %d to %d instances (%s)", a.name, cur, n, why)
	for i := cur; i < n; i++ {
		s := newSlot(a, i)
		a.slots = append(a.slots, s)
		m.spawn(s, a.rel, locCur, 0)
	}
	for i := cur - 1; i >= n; i-- {
		m.retireSlot(a.slots[i])
	}
	if n < cur {
		a.slots = a.slots[:n]
	} else {
		a.announced = false
		a.startedAt = m.clock.Now()
	}
	m.declare()
}

// stopApp stops every process of a with intent i and cancels its pending
// restarts.
func (m *Machine) stopApp(a *app, i intent, why string) {
	m.cancelRollout(a, status.ReloadCancelled, why)
	for _, s := range a.slots {
		m.disarm(&s.backoff)
		for _, in := range []*instance{s.next, s.cur} {
			if in != nil {
				m.stop(in, i, nil)
			}
		}
		if s.state == slotBackoff {
			m.setSlot(s, slotStopped)
		}
	}
	for _, in := range a.draining {
		m.stop(in, i, nil)
	}
}

func (m *Machine) stopRequested(name string) error {
	a, err := m.lookup(name)
	if err != nil {
		return err
	}
	if a.state == appStopped {
		return fmt.Errorf("%s is not running", name)
	}
	m.log.Printf("%s: stopping (clusterrun stop)", name)
	m.setApp(a, appStopped)
	a.userStopped = true
	m.stopApp(a, userStop, fmt.Sprintf("%s was stopped (clusterrun stop)", name))
	return nil
}

func (m *Machine) startRequested(name string) error {
	a, err := m.lookup(name)
	if err != nil {
		return err
	}
	if a.state != appStopped {
		return fmt.Errorf("%s is already running", name)
	}
	if a.want == 0 {
		// Left out by up -m APP=0: started, it runs the file's count.
		m.setWant(a, a.rel.App.Instances, status.CountFile)
	}
	m.setApp(a, appWaiting)
	a.userStopped = false
	m.log.Printf("%s: starting (clusterrun start)", name)
	return nil
}

// lookup returns the app a command names, or the error to answer it with.
func (m *Machine) lookup(name string) (*app, error) {
	a := m.app(name)
	switch {
	case a == nil:
		return nil, m.noApp(name)
	case m.phase != running:
		return nil, errStopped
	}
	return a, nil
}

func (m *Machine) noApp(name string) error {
	return fmt.Errorf("no app %q in %s", name, m.cfg.Path)
}

func (m *Machine) scale(name, spec string) (int, error) {
	a, err := m.lookup(name)
	if err != nil {
		return 0, err
	}
	if a.state != appRunning {
		return 0, fmt.Errorf("%s is not running (state %s)", name, m.appStatus(a))
	}
	n, err := ParseScale(spec, len(a.slots))
	if err != nil {
		return 0, err
	}
	m.setWant(a, n, status.CountScale)
	m.resize(a, "clusterrun scale")
	return n, nil
}

// scaleSpec reads "N", "+N" or "-N": the count, and whether it is relative
// (delta is then +N or -N).
func scaleSpec(spec string) (n int, relative bool, err error) {
	relative = strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "-")
	digits := strings.TrimLeft(spec, "+-")
	if digits == "" || len(digits) > 6 || strings.Trim(digits, "0123456789") != "" || len(spec)-len(digits) > 1 {
		return 0, false, fmt.Errorf("cannot scale to %q: want N, +N or -N with N a whole number", spec)
	}
	for _, c := range digits {
		n = n*10 + int(c-'0')
	}
	if spec[0] == '-' {
		n = -n
	}
	return n, relative, nil
}

// ParseScale reads "N", "+N" or "-N" relative to cur and checks that the
// result is within 1..4096.
func ParseScale(spec string, cur int) (int, error) {
	n, rel, err := scaleSpec(spec)
	if err != nil {
		return 0, err
	}
	if rel {
		n += cur
	}
	if n < 1 || n > hclconfig.MaxInstances {
		return 0, fmt.Errorf("cannot scale to %d instances: the count must stay within 1..%d (now %d)", n, hclconfig.MaxInstances, cur)
	}
	return n, nil
}

// scaleAll is SIGTTIN/SIGTTOU: one instance more or fewer of every app
// that has listeners (unicorn's convention), within 1..4096.
func (m *Machine) scaleAll(up bool) {
	if m.phase != running {
		return
	}
	sig := "SIGTTIN"
	if !up {
		sig = "SIGTTOU"
	}
	for _, a := range m.apps {
		if len(a.rel.Listeners) == 0 || a.state != appRunning {
			continue
		}
		n := len(a.slots) + 1
		if !up {
			n = len(a.slots) - 1
		}
		if n < 1 || n > hclconfig.MaxInstances {
			m.log.Printf("%s: %s ignored: the count must stay within 1..%d", a.name, sig, hclconfig.MaxInstances)
			continue
		}
		m.setWant(a, n, status.CountScale)
		m.resize(a, sig)
	}
}

// forward passes a signal to every live instance's process group; one
// still spawning gets it when it has started (see onSpawned).
func (m *Machine) forward(sig syscall.Signal) {
	n, later := 0, 0
	for _, in := range m.live {
		switch {
		case in.state == stSpawning:
			if in.intent == undecided && len(in.pending) < maxPendingSignals {
				in.pending = append(in.pending, sig)
				later++
			}
		case in.pid != 0 && m.procs.Signal(in.id, in.pid, sig) == nil:
			n++
		}
	}
	more := ""
	if later > 0 {
		more = fmt.Sprintf(", and to %d more once they have started", later)
	}
	m.log.Printf("received %s: forwarded to %d instances%s", signals.Name(sig), n, more)
}

// maxPendingSignals bounds the signals kept for an instance that has not
// started yet: a burst of them must not grow the runner.
const maxPendingSignals = 8

func (m *Machine) startWaitingApps() {
	for _, a := range m.apps {
		if a.state == appWaiting && m.depsMet(a) {
			m.startApp(a)
		}
	}
}

// depsMet: every app a depends on is ready or done.
func (m *Machine) depsMet(a *app) bool {
	for _, d := range a.rel.App.DependsOn {
		da := m.app(d)
		if da == nil || !(m.ready(da) || m.done(da)) {
			return false
		}
	}
	return true
}

// depsCanStillBeMet is false once a dependency has failed for good.
func (m *Machine) depsCanStillBeMet(a *app) bool {
	for _, d := range a.rel.App.DependsOn {
		da := m.app(d)
		if da == nil || m.failed(da) || (da.state == appStopped && !da.userStopped) {
			return false
		}
	}
	return true
}

// ready: every instance serves (or has finished successfully).
func (m *Machine) ready(a *app) bool {
	if a.state != appRunning {
		return false
	}
	for _, s := range a.slots {
		switch {
		case s.state == slotDone:
		case s.state == slotUp && s.cur != nil && s.cur.state == stReady:
		default:
			return false
		}
	}
	return true
}

// done: every instance ran once and exited 0 (a build or migration step).
func (m *Machine) done(a *app) bool {
	if a.state != appRunning || len(a.slots) == 0 {
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
func (m *Machine) failed(a *app) bool {
	if a.state != appRunning || a.rollout != nil {
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

func (m *Machine) requiredFailure() *app {
	for _, a := range m.apps {
		if a.rel.App.Required && m.failed(a) {
			return a
		}
	}
	return nil
}

// announceReady logs once when every instance of an app is ready.
func (m *Machine) announceReady() {
	for _, a := range m.apps {
		if a.announced || a.state != appRunning || a.rollout != nil {
			continue
		}
		switch {
		case m.done(a):
			a.announced = true
		case m.ready(a):
			a.announced = true
			m.log.Printf("%s: %d of %d instances ready after %s", a.name, len(a.slots), len(a.slots), human(m.clock.Now().Sub(a.startedAt)))
		}
	}
}

// forgetRemoved drops apps that a reload removed, once they have drained.
func (m *Machine) forgetRemoved() {
	n := len(m.apps)
	m.apps = slices.DeleteFunc(m.apps, func(a *app) bool { return a.state == appRemoved && !m.hasLive(a) })
	if len(m.apps) != n {
		m.retainListeners()
		m.declare()
	}
}

// liveOf returns every live process of a.
func (m *Machine) liveOf(a *app) []*instance {
	var out []*instance
	for _, s := range a.slots {
		for _, in := range []*instance{s.next, s.cur} {
			if in != nil {
				out = append(out, in)
			}
		}
	}
	return append(out, a.draining...)
}

// hasLive is len(liveOf(a)) > 0 without the slice: the drain asks it for
// every app after every event.
func (m *Machine) hasLive(a *app) bool {
	if len(a.draining) > 0 {
		return true
	}
	for _, s := range a.slots {
		if s.cur != nil || s.next != nil {
			return true
		}
	}
	return false
}
