package runner

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// Machine is the supervisor: the states of every app, slot, instance and
// rollout (states.go), and the one function through which every event
// changes them (Handle). It is not safe for concurrent use: one goroutine
// owns it and feeds it events; the world is reached only through the seams
// in seams.go, so tests drive it with fakes.
//
// Reading order: Handle, then the handlers below it in the same order, then
// settle, which runs after every event and moves forward whatever the event
// unblocked. Rollouts and reloads are in rollout.go.
type Machine struct {
	procs  Procs
	clock  Clock
	prober Prober
	loader Loader
	socks  Sockets
	log    Log
	// strict turns a bug (a transition states.go does not allow) into a
	// panic, for tests; otherwise it is logged and the event ignored.
	strict bool

	cfg    *hclconfig.Config
	apps   []*app
	live   map[InstanceID]*instance
	nextID InstanceID
	gens   int
	tok    uint64
	phase  phase
	// exitCode is the runner's exit status once finished.
	exitCode int
	// unclean: some process had to be killed during the drain.
	unclean  bool
	finished bool
	started  time.Time

	// queue holds reload requests not yet loaded; loading is the batch the
	// loader reads the file for (nil when none), numbered loadSeq.
	queue   []*request
	loading []*request
	loadSeq int

	subs     []func(status.Lifecycle)
	counters status.Counters
}

// instance is one process of one slot, from its start request to its exit.
type instance struct {
	id    InstanceID
	slot  *slot
	rel   *Release
	state instState
	loc   location
	why   why
	pid   int
	// private is which of the slot's private sockets it holds.
	private   int
	addrs     map[string]string
	probeAddr string
	started   time.Time
	readyAt   time.Time
	// msg is its last STATUS=.
	msg string
	// expected: the runner asked it to stop, so its exit is no crash.
	expected bool
	// failedStart: it was stopped because it was not ready in time.
	failedStart bool
	// cancelled: its start is no longer wanted; it is stopped as soon as
	// it has a pid.
	cancelled bool
	// announced: it sent STOPPING=1.
	announced bool
	// fatal says why restarting it cannot help (CLUSTERRUN_FATAL=).
	fatal string
	// thenStart, set on a serving process stopped for a stop-first
	// replacement, is the release its slot starts once it has exited.
	thenStart *Release
	// stable: it has been ready for min_uptime, so its slot's crash loop
	// (if any) is over.
	stable      bool
	healthFails int
	// unhealthy: it failed its health check too often and is being
	// replaced; it is not routable.
	unhealthy bool
	memOver   int
	// routable is what was last published about it.
	routable bool
	probing  bool
	timers   [tBackoff]armed
	// Usage from the last sample.
	cpuPercent float64
	mem        proc.Memory
	lastCPU    time.Duration
	sampled    bool
	sampledAt  time.Time
}

// armed is one timer of the machine's: the clock's handle and the token
// that its event carries.
type armed struct {
	t   Timer
	tok uint64
}

// slot is one instance number of an app (CLUSTERRUN_INSTANCE): at most one
// serving process (cur) and, while that one is being replaced, one
// replacement (next). Processes detached from it drain in app.draining.
type slot struct {
	app   *app
	index int
	state slotState
	// rel is the release cur runs, or the next start of the slot runs.
	rel       *Release
	cur, next *instance
	// retired: scaled away, or its app was restarted or removed.
	retired bool
	// crashes are the times of recent crashes, within the restart window.
	crashes []time.Time
	// consecutive counts crashes since a process last stayed up
	// min_uptime after it became ready.
	consecutive int
	restarts    int
	backoff     armed
	lastExit    *status.Exit
}

// app is one app's supervision state.
type app struct {
	name  string
	state appState
	// userStopped: stopped by `clusterrun stop`; the runner waits for a
	// `start` rather than exiting when nothing else runs.
	userStopped bool
	// rel is the newest release the runner accepted: what new instances
	// run. prev is what it replaced, while a rollout may still roll back.
	rel, prev *Release
	// want is the desired number of instances.
	want     int
	slots    []*slot
	draining []*instance
	rollout  *rollout
	// announced and startedAt drive the one "all N ready" line.
	announced bool
	startedAt time.Time
	// mixed: a rollback failed, so instances may run different releases
	// until a rollout completes.
	mixed bool
}

// Deps are the machine's seams and options.
type Deps struct {
	Procs   Procs
	Clock   Clock
	Prober  Prober
	Loader  Loader
	Sockets Sockets
	Log     Log
	// Creds are the accounts of the apps that name a user or group.
	Creds map[string]*syscall.Credential
	// Only, when not empty, names the apps to start (with what they depend
	// on); the others stay stopped until started by a command.
	Only []string
	// Strict panics on a bug instead of logging it (tests).
	Strict bool
}

// NewMachine prepares the apps of cfg; nothing starts before Start. The
// listeners of cfg must already be bound.
func NewMachine(cfg *hclconfig.Config, d Deps) (*Machine, error) {
	only, err := closure(cfg, d.Only)
	if err != nil {
		return nil, err
	}
	m := &Machine{
		procs: d.Procs, clock: d.Clock, prober: d.Prober, loader: d.Loader, socks: d.Sockets, log: d.Log,
		strict: d.Strict, cfg: cfg, live: make(map[InstanceID]*instance),
		counters: status.Counters{Restarts: map[string]map[string]int{}, Reloads: map[string]int{}},
	}
	for _, ca := range cfg.Apps {
		a := &app{name: ca.Name, rel: m.newRelease(ca, cfg, d.Creds[ca.Name]), want: ca.Instances}
		if only != nil && !only[ca.Name] {
			a.state = appStopped
		}
		m.apps = append(m.apps, a)
	}
	return m, nil
}

// closure returns the named apps and everything they depend on, or nil
// when names is empty (meaning all).
func closure(cfg *hclconfig.Config, names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	set := make(map[string]bool)
	var add func(string) error
	add = func(n string) error {
		if set[n] {
			return nil
		}
		a := cfg.App(n)
		if a == nil {
			return fmt.Errorf("no app %q in %s", n, cfg.Path)
		}
		set[n] = true
		for _, d := range a.DependsOn {
			if err := add(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func (m *Machine) newRelease(a *hclconfig.App, cfg *hclconfig.Config, cred *syscall.Credential) *Release {
	m.gens++
	rel := &Release{Gen: m.gens, App: a, Cred: cred}
	for _, n := range a.Listeners {
		rel.Listeners = append(rel.Listeners, cfg.Listener(n))
	}
	return rel
}

// Subscribe calls fn, on the machine's goroutine, with every lifecycle
// change from now on. fn must not block or call into the machine.
func (m *Machine) Subscribe(fn func(status.Lifecycle)) { m.subs = append(m.subs, fn) }

// Start starts every app whose dependencies are met.
func (m *Machine) Start() {
	m.started = m.clock.Now()
	m.declare()
	m.settle()
}

// Finished reports whether the runner is done, and its exit code.
func (m *Machine) Finished() (bool, int) { return m.finished, m.exitCode }

// Handle applies one event. It is the only way anything changes.
func (m *Machine) Handle(ev Event) {
	if m.finished {
		m.answerLate(ev)
		return
	}
	switch ev := ev.(type) {
	case Spawned:
		m.onSpawned(ev)
	case SpawnFailed:
		m.onSpawnFailed(ev)
	case Exited:
		m.onExited(ev)
	case Notified:
		m.onNotified(ev)
	case Quiesced:
		m.onQuiesced(ev)
	case ProbeResult:
		m.onProbe(ev)
	case timerFired:
		m.onTimer(ev)
	case UsageSampled:
		m.onUsage(ev)
	case ReloadRequested:
		m.onReloadRequested(ev)
	case Loaded:
		m.onLoaded(ev)
	case RestartRequested:
		m.onRestartRequested(ev)
	case ScaleRequested:
		n, err := m.scale(ev.App, ev.Spec)
		ev.Reply <- ScaleResult{N: n, Err: err}
	case ScaleAllRequested:
		m.scaleAll(ev.Up)
	case StopRequested:
		ev.Reply <- m.stopRequested(ev.App)
	case StartRequested:
		ev.Reply <- m.startRequested(ev.App)
	case DrainRequested:
		m.onDrain(ev)
	case ForceRequested:
		m.log.Printf("received %s again: killing every instance now", signals.Name(ev.Signal))
		m.force()
	case ForwardRequested:
		m.forward(ev.Signal)
	case SnapshotRequested:
		ev.Reply <- m.Snapshot()
	default:
		m.bug("unknown event %T", ev)
	}
	m.settle()
}

// answerLate answers requests that arrive after the runner finished.
func (m *Machine) answerLate(ev Event) {
	switch ev := ev.(type) {
	case ReloadRequested:
		if ev.Reply != nil {
			ev.Reply <- status.ReloadResult{Err: errStopped}
		}
	case RestartRequested:
		ev.Reply <- status.ReloadResult{Err: errStopped}
	case ScaleRequested:
		ev.Reply <- ScaleResult{Err: errStopped}
	case StopRequested:
		ev.Reply <- errStopped
	case StartRequested:
		ev.Reply <- errStopped
	case SnapshotRequested:
		ev.Reply <- m.Snapshot()
	}
}

var errStopped = errors.New("the runner is stopping")

// bug reports a transition the machine does not allow: a defect in a
// handler, never the world's fault.
func (m *Machine) bug(format string, args ...any) {
	msg := "internal error: " + fmt.Sprintf(format, args...)
	if m.strict {
		panic(msg)
	}
	m.log.Printf("%s (ignored; please report it)", msg)
}

// --- Process events ---

func (m *Machine) onSpawned(ev Spawned) {
	in := m.live[ev.ID]
	if in == nil || in.state != stSpawning {
		m.bug("spawned %d, which is not being spawned", ev.ID)
		return
	}
	in.pid, in.addrs, in.probeAddr = ev.PID, ev.Addrs, ev.ProbeAddr
	in.started = m.clock.Now()
	m.setState(in, stStarting)
	m.publish(in, status.Started, "")
	if in.cancelled {
		// Started after it stopped being wanted (a drain, a scale down):
		// stop it straight away, where it is.
		m.stop(in, in.expected)
		return
	}
	m.log.Printf("%s started (pid %d)%s", in.label(), in.pid, in.role())
	m.armReady(in)
}

func (m *Machine) onSpawnFailed(ev SpawnFailed) {
	in := m.live[ev.ID]
	if in == nil || in.state != stSpawning {
		m.bug("spawn failure of %d, which is not being spawned", ev.ID)
		return
	}
	if ev.Cancelled || in.cancelled {
		m.gone(in, proc.Status{}, nil)
		return
	}
	m.gone(in, proc.Status{Code: 127}, ev.Err)
}

func (m *Machine) onExited(ev Exited) {
	in := m.live[ev.ID]
	if in == nil || in.state == stSpawning {
		m.bug("exit of %d, which is not running", ev.ID)
		return
	}
	m.gone(in, ev.Status, nil)
}

// gone handles the end of a process: reaped (spawnErr nil) or never
// started. What follows depends on where it was: a drained process is just
// gone, a replacement that died before it was ready aborts what it was
// for, and a serving process that died is restarted under its policy.
func (m *Machine) gone(in *instance, st proc.Status, spawnErr error) {
	wasReady := !in.readyAt.IsZero()
	m.setState(in, stExited)
	delete(m.live, in.id)
	s, a := in.slot, in.slot.app
	if in.pid != 0 {
		s.lastExit = &status.Exit{PID: in.pid, Code: st.Code, At: m.clock.Now()}
		if st.Signal != 0 {
			s.lastExit.Signal = signals.Name(st.Signal)
		}
		if !in.expected {
			m.publish(in, status.Crashed, st.String())
		}
		m.publish(in, status.Gone, st.String())
	}
	if in.pid == 0 && in.cancelled {
		// Never started, and no longer wanted: nothing to report.
		switch in.loc {
		case locCur:
			s.cur = nil
			if nx := s.next; nx != nil && !m.canTakeOver(nx) {
				m.dropReplacement(s, nx)
			}
			switch {
			case s.next != nil:
				m.takeOver(s)
			case in.thenStart != nil && m.canStart(s):
				m.spawn(s, in.thenStart, locCur, whyRollout)
			case s.state == slotUp:
				s.state = slotStopped
			}
		case locNext:
			s.next = nil
		case locDraining:
			a.draining = slices.DeleteFunc(a.draining, func(x *instance) bool { return x == in })
			m.releaseSlot(a, in)
		}
		return
	}
	switch in.loc {
	case locDraining:
		a.draining = slices.DeleteFunc(a.draining, func(x *instance) bool { return x == in })
		tail := ""
		if in.announced {
			tail = " after announcing STOPPING=1"
		}
		m.logExit(in, st, tail)
		m.releaseSlot(a, in)
	case locNext:
		s.next = nil
		if in.expected {
			m.logExit(in, st, "")
			return
		}
		m.replacementFailed(s, in, st, spawnErr)
	case locCur:
		s.cur = nil
		if nx := s.next; nx != nil && !m.canTakeOver(nx) {
			m.dropReplacement(s, nx)
		}
		if nx := s.next; nx != nil {
			m.logExit(in, st, fmt.Sprintf("; its replacement %s takes over", nx.labelPID()))
			if !in.expected {
				m.recordCrash(s)
			}
			m.takeOver(s)
			return
		}
		if in.thenStart != nil && m.canStart(s) {
			m.logExit(in, st, "")
			m.spawn(s, in.thenStart, locCur, whyRollout)
			return
		}
		// One that announced STOPPING=1 and leaves nothing to take over is
		// restarted by its policy, whatever replacement it once had.
		if in.expected && !in.announced {
			m.logExit(in, st, "")
			if s.state == slotUp {
				s.state = slotStopped
			}
			return
		}
		m.crashed(s, in, st, spawnErr, wasReady)
	}
}

// canTakeOver: a replacement may serve its slot when the process it was to
// replace is gone; one already told to stop may not.
func (m *Machine) canTakeOver(nx *instance) bool {
	return !nx.cancelled && (nx.state == stSpawning || nx.state == stStarting)
}

// dropReplacement detaches a replacement that is on its way out when the
// process it was to replace is gone. One that failed its ready check for a
// rollout aborts the rollout now: its exit, in the draining list, will not.
func (m *Machine) dropReplacement(s *slot, nx *instance) {
	m.detach(nx)
	ro := s.app.rollout
	if nx.expected || nx.why != whyRollout || !ro.completes(s, nil) {
		return
	}
	nx.expected = true
	delete(ro.inflight, s)
	m.abortRollout(s.app, fmt.Sprintf("the new %s %s", nx.labelPID(), m.describeFailure(nx, proc.Status{}, nil)))
}

// takeOver makes a slot's replacement its serving process once the one it
// was to replace is gone; it becomes routable when ready.
func (m *Machine) takeOver(s *slot) {
	nx := s.next
	s.cur, s.next = nx, nil
	nx.loc = locCur
	s.rel = nx.rel
	m.procs.SetTag(nx.id, "")
	m.touch(nx)
}

// replacementFailed handles a replacement that exited (or could not start)
// before it was ready; the serving process, if any, keeps serving.
func (m *Machine) replacementFailed(s *slot, in *instance, st proc.Status, spawnErr error) {
	a := s.app
	what := m.describeFailure(in, st, spawnErr)
	if in.why == whyRollout {
		ro := a.rollout
		if !ro.completes(s, nil) {
			m.bug("%s: a rollout replacement outlived its rollout", in.label())
			return
		}
		m.log.Printf("%s %s", in.labelPID(), what)
		delete(ro.inflight, s)
		m.abortRollout(a, fmt.Sprintf("the new %s %s", in.labelPID(), what))
		return
	}
	m.recordCrash(s)
	m.log.Printf("%s %s; %s keeps serving", in.labelPID(), what, s.label())
}

// crashed applies the restart policy after a serving process ended when
// nobody asked it to (or could not be started).
func (m *Machine) crashed(s *slot, in *instance, st proc.Status, spawnErr error, wasReady bool) {
	a := s.app
	pol := in.rel.App.Restart
	what := m.describeFailure(in, st, spawnErr)
	failed := !st.Success() || in.failedStart || spawnErr != nil
	restart := restarts(pol.Policy, st) || (failed && pol.Policy != hclconfig.RestartNever)
	if in.rel.App.Ready.Check == hclconfig.ReadyExit && !failed {
		restart = false // a one-shot step that finished is done
	}

	if ro := a.rollout; ro.completes(s, in) {
		if !failed && !restart {
			// A run-once step of the new release (a build) finished.
			m.log.Printf("%s %s; done", in.labelPID(), what)
			s.state = slotDone
			m.stepDone(a, s)
			return
		}
		if !wasReady {
			// The new release failed where it was started directly: abort,
			// and start the previous release here at once, without holding
			// the new release's crash against the slot.
			m.log.Printf("%s %s", in.labelPID(), what)
			delete(ro.inflight, s)
			s.state = slotStopped
			m.abortRollout(a, fmt.Sprintf("the new %s %s", in.labelPID(), what))
			if nr := a.rollout; nr != nil && nr.kind == kindRollback && nr.covers(s.index) {
				return // the rollback starts it
			}
			s.rel = a.rel
			if m.canStart(s) {
				m.spawn(s, s.rel, locCur, 0)
			}
			return
		}
	}
	if !m.canStart(s) {
		m.log.Printf("%s %s", in.labelPID(), what)
		s.state = slotStopped
		return
	}
	if in.fatal != "" {
		s.state = slotFailed
		m.log.Printf("%s %s: %s; not restarting it", in.labelPID(), what, in.fatal)
		return
	}
	if !restart {
		if failed {
			s.state = slotFailed
			m.log.Printf("%s %s; restart policy %q: not restarting", in.labelPID(), what, pol.Policy)
		} else {
			s.state = slotDone
			m.log.Printf("%s %s; done", in.labelPID(), what)
		}
		return
	}
	if in.stable {
		s.consecutive = 0
	}
	n := m.recordCrash(s)
	s.consecutive++
	if n > pol.MaxRestarts {
		s.state = slotFailed
		m.log.Printf("%s %s: %d crashes in %s, more than max_restarts = %d; giving up (failed)", in.labelPID(), what, n, human(pol.Window), pol.MaxRestarts)
		return
	}
	d := backoffDelay(pol.Backoff, pol.MaxBackoff, s.consecutive, m.jitter())
	s.state = slotBackoff
	s.restarts++
	m.count(a, status.RestartCrash)
	m.arm(&s.backoff, d, timerFired{kind: tBackoff, s: s})
	m.log.Printf("%s %s, restarting in %s (crash %d of %d in %s)", in.labelPID(), what, human(d), n, pol.MaxRestarts, human(pol.Window))
}

// recordCrash notes a crash in the slot's restart window and returns how
// many crashes the window now holds.
func (m *Machine) recordCrash(s *slot) int {
	now := m.clock.Now()
	win := s.rel.App.Restart.Window
	s.crashes = append(pruneBefore(s.crashes, now.Add(-win)), now)
	return len(s.crashes)
}

// jitter is deterministic under the fake clock's tests, random otherwise.
func (m *Machine) jitter() float64 {
	if j, ok := m.clock.(interface{ Jitter() float64 }); ok {
		return j.Jitter()
	}
	return jitter()
}

func (m *Machine) describeFailure(in *instance, st proc.Status, spawnErr error) string {
	switch {
	case spawnErr != nil:
		return "could not be started: " + spawnErr.Error()
	case in.failedStart:
		return fmt.Sprintf("was not ready within %s (ready.check = %q) and was stopped", human(in.rel.App.Ready.Timeout), in.rel.App.Ready.Check)
	case in.readyAt.IsZero() && !st.Success():
		return st.String() + " before it was ready"
	}
	return st.String()
}

func (m *Machine) onNotified(ev Notified) {
	in := m.live[ev.ID]
	if in == nil {
		return // a datagram read just before its sender was reaped
	}
	if ev.Msg.HasStatus {
		in.msg = ev.Msg.Status
	}
	if ev.Msg.Ready && in.rel.App.Ready.Check == hclconfig.ReadyNotify {
		m.becameReady(in, " (READY=1)")
	}
	if ev.Msg.Watchdog && in.rel.App.Health.Check == hclconfig.HealthWatchdog && in.state == stReady {
		in.healthFails = 0
		m.arm(&in.timers[tWatchdog], in.rel.App.Health.Interval, timerFired{kind: tWatchdog, in: in})
	}
	if ev.Msg.Stopping {
		m.dying(in)
	}
	if f := ev.Msg.Other["CLUSTERRUN_FATAL"]; f != "" {
		// The instance found a mistake no restart can fix (a Node app
		// listening on a port none of its listeners has).
		in.fatal = f
	}
}

func (m *Machine) onProbe(ev ProbeResult) {
	in := m.live[ev.ID]
	if in == nil || !in.probing {
		return // stopped probes may race one last result in
	}
	switch {
	case !ev.Health && ev.OK:
		m.becameReady(in, " ("+string(in.rel.App.Ready.Check)+" check)")
	case ev.Health && ev.OK:
		in.healthFails = 0
	case ev.Health:
		m.healthMiss(in, ev.Detail)
	}
}

// armReady arms whatever tells that in is ready, and its timeout.
func (m *Machine) armReady(in *instance) {
	rd := in.rel.App.Ready
	m.arm(&in.timers[tReadyTimeout], rd.Timeout, timerFired{kind: tReadyTimeout, in: in})
	switch rd.Check {
	case hclconfig.ReadyDelay:
		m.arm(&in.timers[tReadyDelay], rd.Delay, timerFired{kind: tReadyDelay, in: in})
	case hclconfig.ReadyTCP, hclconfig.ReadyHTTP:
		if in.probeAddr == "" {
			m.log.Printf("%s has no address of its own to probe; it counts as ready once it has stayed up %s", in.label(), human(hclconfig.DefaultReadyDelay))
			m.arm(&in.timers[tReadyDelay], hclconfig.DefaultReadyDelay, timerFired{kind: tReadyDelay, in: in})
			return
		}
		in.probing = true
		m.prober.Ready(in.id, in.probeAddr, rd.Check, rd.Path)
	case hclconfig.ReadyNotify:
		// READY=1 arrives as a Notified event.
	case hclconfig.ReadyExit:
		// A one-shot step is done when it exits 0 (crashed), within the
		// ready timeout armed above.
	}
}

// becameReady: in passed its ready check.
func (m *Machine) becameReady(in *instance, how string) {
	if in.state != stStarting {
		return // ready twice, or after it was told to stop: nothing to do
	}
	m.disarm(&in.timers[tReadyDelay])
	m.disarm(&in.timers[tReadyTimeout])
	m.stopProbes(in)
	in.readyAt = m.clock.Now()
	after := in.readyAt.Sub(in.started)
	m.counters.Ready++
	m.counters.ReadySeconds += after.Seconds()
	m.publish(in, status.Ready, "")
	m.setState(in, stReady)
	m.arm(&in.timers[tStable], in.rel.App.Restart.MinUptime, timerFired{kind: tStable, in: in})
	m.armHealth(in)
	m.log.Printf("%s ready after %s%s%s", in.label(), human(after), how, in.role())
	s := in.slot
	switch in.loc {
	case locNext:
		m.promote(s)
	case locCur:
		if s.app.rollout.completes(s, in) {
			m.stepDone(s.app, s)
		}
	}
}

// promote makes a slot's ready replacement its serving process and stops
// the one it replaces: start new, wait ready, then stop old, so the slot's
// capacity never drops.
func (m *Machine) promote(s *slot) {
	old := s.cur
	m.takeOver(s)
	nw := s.cur
	if old != nil {
		// Relabelled before it hears of its stop, so that what it says
		// about it already reads as the draining process's.
		m.procs.SetTag(old.id, "-")
		if old.state == stDying {
			// It said it is on its way out, maybe finishing its requests:
			// no signal, but SIGKILL if it outlives stop.timeout.
			old.expected = true
			m.setState(old, stStopping)
			m.arm(&old.timers[tStop], old.rel.App.Stop.Timeout, timerFired{kind: tStop, in: old})
		} else {
			m.stop(old, true)
		}
		m.detach(old)
	}
	// Whatever replaced the slot (the rollout's process, or a repair of it
	// that runs the same release), the slot now serves the new release.
	if s.app.rollout.completes(s, nw) {
		m.stepDone(s.app, s)
	}
}

// dying handles STOPPING=1: a worker that caught a fatal error says it is
// about to exit. Its replacement starts now, so capacity never drops.
func (m *Machine) dying(in *instance) {
	if in.state != stStarting && in.state != stReady {
		return // already leaving: nothing to add
	}
	if in.loc != locCur {
		return // a replacement that gives up exits, and is judged then
	}
	s, a := in.slot, in.slot.app
	m.disarm(&in.timers[tReadyDelay])
	m.disarm(&in.timers[tReadyTimeout])
	m.stopProbes(in)
	m.setState(in, stDying)
	in.announced = true
	m.publish(in, status.Draining, "STOPPING=1")
	// It should exit by itself; if it lingers past the time its
	// replacement may take to become ready and then to stop, it is killed.
	m.arm(&in.timers[tStop], in.rel.App.Ready.Timeout+in.rel.App.Stop.Timeout, timerFired{kind: tStop, in: in})
	switch {
	case s.next != nil:
		m.log.Printf("%s announced STOPPING=1; its replacement %s is already starting", in.labelPID(), s.next.labelPID())
		in.expected = true
	case in.rel.App.Restart.Policy == hclconfig.RestartNever || !m.canStart(s):
		m.log.Printf("%s announced STOPPING=1", in.labelPID())
	default:
		in.expected = true
		s.restarts++
		m.count(a, status.RestartStopping)
		nx := m.spawn(s, s.rel, locNext, whyStopping)
		m.log.Printf("%s announced STOPPING=1; its replacement %s is starting", in.labelPID(), nx.label())
	}
}

// healthMiss counts one failed health check (or a missed watchdog).
func (m *Machine) healthMiss(in *instance, detail string) {
	if in.state != stReady || in.loc != locCur || in.unhealthy {
		return
	}
	h := in.rel.App.Health
	in.healthFails++
	m.log.Printf("%s failed its %s check (%s): %d of %d", in.labelPID(), h.Check, detail, in.healthFails, h.Failures)
	if in.healthFails < h.Failures {
		return
	}
	in.unhealthy = true
	m.touch(in)
	w, reason := whyHealth, status.RestartHealth
	if h.Check == hclconfig.HealthWatchdog {
		w, reason = whyWatchdog, status.RestartWatchdog
	}
	m.repair(in, w, reason, fmt.Sprintf("failed %d %s checks in a row", h.Failures, h.Check))
}

// repair replaces a serving process that is still running but must go
// (health, watchdog, memory): the new one first, then the old one.
func (m *Machine) repair(in *instance, w why, reason, what string) {
	s, a := in.slot, in.slot.app
	if in.loc != locCur || s.next != nil || !m.canStart(s) {
		return
	}
	if in.rel.App.Restart.Policy == hclconfig.RestartNever {
		m.log.Printf("%s %s; restart policy \"never\": stopping it", in.labelPID(), what)
		m.stop(in, false)
		return
	}
	s.restarts++
	m.count(a, reason)
	if sharedProbe(in.rel) {
		// Old and new would share the probed PORT: the old one goes first.
		m.log.Printf("%s %s; stopping it, then starting its replacement (its PORT cannot be shared)", in.labelPID(), what)
		in.thenStart = s.rel
		m.stop(in, true)
		return
	}
	nx := m.spawn(s, s.rel, locNext, w)
	m.log.Printf("%s %s; its replacement %s is starting (the old one stops once the new one is ready)", in.labelPID(), what, nx.label())
}

func (m *Machine) armHealth(in *instance) {
	h := in.rel.App.Health
	switch h.Check {
	case hclconfig.HealthTCP, hclconfig.HealthHTTP:
		if in.probeAddr != "" {
			in.probing = true
			m.prober.Health(in.id, in.probeAddr, h)
		}
	case hclconfig.HealthWatchdog:
		m.arm(&in.timers[tWatchdog], h.Interval, timerFired{kind: tWatchdog, in: in})
	}
}

func (m *Machine) stopProbes(in *instance) {
	if in.probing {
		in.probing = false
		m.prober.Stop(in.id)
	}
}

func (m *Machine) onTimer(ev timerFired) {
	var a *armed
	if ev.kind == tBackoff {
		a = &ev.s.backoff
	} else {
		a = &ev.in.timers[ev.kind]
	}
	if a.tok != ev.tok {
		return // stopped or re-armed after it fired: stale
	}
	*a = armed{}
	switch ev.kind {
	case tReadyDelay:
		m.becameReady(ev.in, "")
	case tReadyTimeout:
		in := ev.in
		if in.state != stStarting {
			m.bug("%s: ready timeout in state %s", in.label(), in.state)
			return
		}
		m.log.Printf("%s was not ready within %s (ready.check = %q); stopping it", in.labelPID(), human(in.rel.App.Ready.Timeout), in.rel.App.Ready.Check)
		in.failedStart = true
		m.stop(in, false)
	case tStable:
		ev.in.stable = true
		if ev.in.loc == locCur {
			ev.in.slot.consecutive = 0
		}
	case tQuiesce:
		in := ev.in
		if in.state != stQuiescing {
			m.bug("%s: quiesce timeout in state %s", in.label(), in.state)
			return
		}
		m.log.Printf("%s: connections forwarded to it are still open after %s; sending %s anyway", in.labelPID(),
			human(in.rel.App.Stop.Timeout), signals.Name(in.rel.App.Stop.Signal))
		m.setState(in, stStopping)
		m.signalStop(in, " (connections still open)")
	case tStop:
		in := ev.in
		if in.state != stStopping && in.state != stDying {
			m.bug("%s: stop timeout in state %s", in.label(), in.state)
			return
		}
		if m.phase != running {
			m.unclean = true
		}
		m.log.Printf("%s did not stop within %s; killing its process group", in.labelPID(), human(in.rel.App.Stop.Timeout))
		m.kill(in)
	case tWatchdog:
		in := ev.in
		m.healthMiss(in, fmt.Sprintf("no WATCHDOG=1 within %s", human(in.rel.App.Health.Interval)))
		if in.state == stReady && !in.unhealthy {
			m.arm(&in.timers[tWatchdog], in.rel.App.Health.Interval, timerFired{kind: tWatchdog, in: in})
		}
	case tBackoff:
		s := ev.s
		if s.state != slotBackoff {
			m.bug("%s: backoff elapsed in state %s", s.label(), s.state)
			return
		}
		if !m.canStart(s) {
			s.state = slotStopped
			return
		}
		m.spawn(s, s.rel, locCur, 0)
	}
}

// onUsage records CPU and memory, and replaces instances that stayed above
// max_memory for three samples in a row.
func (m *Machine) onUsage(ev UsageSampled) {
	const overLimit = 3
	for _, in := range m.live {
		if in.pid == 0 {
			continue
		}
		u, ok := ev.Usage[in.pid]
		if !ok {
			continue
		}
		if in.sampled && ev.Interval > 0 {
			in.cpuPercent = 100 * (u.CPU - in.lastCPU).Seconds() / ev.Interval.Seconds()
		}
		in.lastCPU, in.mem, in.sampled, in.sampledAt = u.CPU, u.Memory, true, m.clock.Now()
		limit := in.rel.App.Restart.MaxMemory
		if limit <= 0 || in.state != stReady || in.loc != locCur {
			continue
		}
		// PSS: the group's fair share of the pages it maps, so that code
		// shared with other processes is not counted once per process.
		if u.Memory.PSS <= limit {
			in.memOver = 0
			continue
		}
		in.memOver++
		if in.memOver == overLimit {
			m.repair(in, whyMemory, status.RestartMemory,
				fmt.Sprintf("used %s (PSS), above max_memory = %s, for %d samples in a row", bytesHuman(u.Memory.PSS), bytesHuman(limit), overLimit))
		}
	}
}

// --- Starting and stopping processes ---

// spawn asks for a new process for slot s in location loc.
func (m *Machine) spawn(s *slot, rel *Release, loc location, w why) *instance {
	m.nextID++
	in := &instance{id: m.nextID, slot: s, rel: rel, state: stSpawning, loc: loc, why: w, private: m.freePrivate(s)}
	m.live[in.id] = in
	tag := ""
	switch loc {
	case locCur:
		s.cur = in
		s.rel = rel
		s.state = slotUp
	case locNext:
		s.next = in
		tag = "+"
	default:
		m.bug("spawn into %s", loc)
	}
	m.procs.Start(StartRequest{ID: in.id, Rel: rel, Index: s.index, Private: in.private, Tag: tag})
	return in
}

// freePrivate returns the lowest private-socket number no live process of
// the slot's instance number holds. Old and new process of a slot overlap
// during a replacement, and an app that binds PORT itself needs a port
// nobody listens on.
func (m *Machine) freePrivate(s *slot) int {
	used := map[int]bool{}
	for _, in := range m.live {
		if in.slot.app == s.app && in.slot.index == s.index {
			used[in.private] = true
		}
	}
	n := 0
	for used[n] {
		n++
	}
	return n
}

// stop begins stopping in: it becomes unroutable at once, waits for the
// connections forwarded to it if it ever served through a proxy
// (quiescing), then gets its app's stop signal, and SIGKILL after
// stop.timeout. expected says whether its exit is normal.
func (m *Machine) stop(in *instance, expected bool) {
	if m.phase == forcing {
		in.expected = true
		m.kill(in)
		return
	}
	switch in.state {
	case stSpawning:
		in.cancelled = true
		in.expected = expected
		m.procs.Cancel(in.id)
		return
	case stQuiescing, stStopping, stKilling, stExited:
		return // already on its way out
	}
	in.expected = expected
	m.disarm(&in.timers[tReadyDelay])
	m.disarm(&in.timers[tReadyTimeout])
	m.stopProbes(in)
	if !in.readyAt.IsZero() && proxied(in.rel) {
		m.setState(in, stQuiescing) // unroutable before anything else
		m.publish(in, status.Draining, "")
		m.arm(&in.timers[tQuiesce], in.rel.App.Stop.Timeout, timerFired{kind: tQuiesce, in: in})
		m.socks.Quiesce(in.id, quiesceIdle(in.rel.App.Stop.Timeout))
		return
	}
	m.setState(in, stStopping) // unroutable before it gets the signal
	m.publish(in, status.Draining, "")
	m.signalStop(in, "")
}

// proxied: rel's instances take connections through a proxy listener, so
// they may have connections under way when they are stopped.
func proxied(rel *Release) bool {
	for _, l := range rel.Listeners {
		if l.Mode == hclconfig.Proxy {
			return true
		}
	}
	return false
}

// quiesceIdle is how long a connection to a stopping instance must have
// carried no byte to count as answered: long enough for a response that
// pauses between its headers and its body, short enough that an idle
// keep-alive client does not use up the stop timeout.
func quiesceIdle(stopTimeout time.Duration) time.Duration {
	return min(time.Second, stopTimeout/2)
}

// onQuiesced: the connections forwarded to a quiescing instance are over.
func (m *Machine) onQuiesced(ev Quiesced) {
	in := m.live[ev.ID]
	if in == nil || in.state != stQuiescing {
		return // it exited (or was killed) meanwhile
	}
	m.disarm(&in.timers[tQuiesce])
	m.setState(in, stStopping)
	m.signalStop(in, "")
}

// signalStop sends in its stop signal and only then arms the SIGKILL that
// follows after stop.timeout: the whole timeout is the instance's.
func (m *Machine) signalStop(in *instance, note string) {
	st := in.rel.App.Stop
	if err := m.procs.Signal(in.id, in.pid, st.Signal); err != nil {
		m.log.Printf("cannot signal %s: %v", in.labelPID(), err)
	}
	m.publish(in, status.Signalled, signals.Name(st.Signal)+note)
	m.arm(&in.timers[tStop], st.Timeout, timerFired{kind: tStop, in: in})
}

// kill sends SIGKILL to in's process group at once. Whether its exit
// counts as a failure was decided when it was told to stop.
func (m *Machine) kill(in *instance) {
	switch in.state {
	case stSpawning:
		in.cancelled = true
		m.procs.Cancel(in.id)
		return
	case stKilling, stExited:
		return
	}
	m.disarmAll(in)
	m.stopProbes(in)
	if !in.state.leaving() {
		m.publish(in, status.Draining, "")
	}
	m.setState(in, stKilling)
	if err := m.procs.Signal(in.id, in.pid, syscall.SIGKILL); err != nil {
		m.log.Printf("cannot kill %s: %v", in.labelPID(), err)
	}
}

// detach moves an instance out of its slot into its app's draining list.
// It must be on its way out already (or cancelled while spawning).
func (m *Machine) detach(in *instance) {
	s := in.slot
	if in.loc == locDraining {
		return
	}
	if s.cur == in {
		s.cur = nil
	}
	if s.next == in {
		s.next = nil
	}
	if !locDraining.fits(in.state) {
		m.bug("%s: detached in state %s", in.label(), in.state)
	}
	in.loc = locDraining
	in.thenStart = nil
	s.app.draining = append(s.app.draining, in)
	m.procs.SetTag(in.id, "-")
	m.touch(in)
}

// releaseSlot gives back the per-slot sockets of an instance number that no
// longer exists, once its last process is gone.
func (m *Machine) releaseSlot(a *app, in *instance) {
	s := in.slot
	if !s.retired {
		return
	}
	if a.state != appRemoved && s.index < len(a.slots) {
		return // the number is in use again
	}
	for _, x := range m.live {
		if x.slot.app == a && x.slot.index == s.index {
			return
		}
	}
	m.socks.ReleaseSlot(a.name, in.rel.Listeners, s.index)
}

// setState moves an instance to another state, if states.go allows it,
// and publishes what changed for subscribers.
func (m *Machine) setState(in *instance, to instState) {
	if !allowed(in.state, to) {
		m.bug("%s: no transition from %s to %s", in.label(), in.state, to)
		return
	}
	in.state = to
	if to == stExited {
		m.disarmAll(in)
		m.stopProbes(in)
	}
	m.touch(in)
}

// touch publishes Routable or Unroutable when that changed: routable means
// ready, serving, and not failing its health check.
func (m *Machine) touch(in *instance) {
	r := in.state == stReady && in.loc == locCur && !in.unhealthy
	if r == in.routable {
		return
	}
	in.routable = r
	if r {
		m.publish(in, status.Routable, "")
	} else {
		m.publish(in, status.Unroutable, "")
	}
}

func (m *Machine) publish(in *instance, k status.LifecycleKind, reason string) {
	if len(m.subs) == 0 {
		return
	}
	ev := status.Lifecycle{Kind: k, Time: m.clock.Now(), ID: in.id, App: in.slot.app.name, Instance: in.slot.index, PID: in.pid,
		Release: in.rel.Gen, Addrs: in.addrs, Reason: reason}
	if (k == status.Routable || k == status.Ready) && !in.readyAt.IsZero() {
		ev.ReadyAfter = in.readyAt.Sub(in.started)
	}
	m.emit(ev)
}

// emit hands ev to every subscriber.
func (m *Machine) emit(ev status.Lifecycle) {
	for _, fn := range m.subs {
		fn(ev)
	}
}

func (m *Machine) arm(a *armed, d time.Duration, ev timerFired) {
	m.disarm(a)
	m.tok++
	ev.tok = m.tok
	a.tok = m.tok
	a.t = m.clock.After(d, ev)
}

func (m *Machine) disarm(a *armed) {
	if a.t != nil {
		a.t.Stop()
	}
	*a = armed{}
}

func (m *Machine) disarmAll(in *instance) {
	for i := range in.timers {
		m.disarm(&in.timers[i])
	}
}

func (m *Machine) canStart(s *slot) bool {
	return !s.retired && s.app.state == appRunning && m.phase == running
}

// --- Apps ---

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
	a.state = appRunning
	a.startedAt = m.clock.Now()
	a.announced = false
	for _, s := range a.slots {
		m.retireSlot(s)
	}
	a.slots = nil
	for i := 0; i < a.want; i++ {
		s := &slot{app: a, index: i, rel: a.rel}
		a.slots = append(a.slots, s)
		m.spawn(s, a.rel, locCur, 0)
	}
}

// retireSlot takes a slot out of service: its processes are stopped and
// drain on their own, and it never restarts.
func (m *Machine) retireSlot(s *slot) {
	s.retired = true
	m.disarm(&s.backoff)
	if ro := s.app.rollout; ro != nil {
		delete(ro.inflight, s)
	}
	for _, in := range []*instance{s.next, s.cur} {
		if in != nil {
			m.procs.SetTag(in.id, "-")
			m.stop(in, true)
			m.detach(in)
		}
	}
	if s.state != slotDone && s.state != slotFailed {
		s.state = slotStopped
	}
}

// resize sets the number of a's instances: new slots start at once with
// the app's newest release, surplus slots (the highest numbers) drain.
func (m *Machine) resize(a *app, n int, why string) {
	a.want = n
	cur := len(a.slots)
	if a.state != appRunning || n == cur {
		return
	}
	m.log.Printf("%s: scaling from %d to %d instances (%s)", a.name, cur, n, why)
	for i := cur; i < n; i++ {
		s := &slot{app: a, index: i, rel: a.rel}
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

// stopApp stops every process of a and cancels its pending restarts.
func (m *Machine) stopApp(a *app, why string) {
	m.cancelRollout(a, status.ReloadCancelled, why)
	for _, s := range a.slots {
		m.disarm(&s.backoff)
		for _, in := range []*instance{s.next, s.cur} {
			if in != nil {
				in.thenStart = nil
				m.stop(in, true)
			}
		}
		if s.state == slotBackoff || (s.state == slotUp && s.cur == nil) {
			s.state = slotStopped
		}
	}
	for _, in := range a.draining {
		m.stop(in, true)
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
	a.state = appStopped
	a.userStopped = true
	m.stopApp(a, fmt.Sprintf("%s was stopped (clusterrun stop)", name))
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
	a.state = appWaiting
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
	m.resize(a, n, "clusterrun scale")
	return n, nil
}

// ParseScale reads "N", "+N" or "-N" relative to cur and checks that the
// result is within 1..4096.
func ParseScale(spec string, cur int) (int, error) {
	rel := strings.HasPrefix(spec, "+") || strings.HasPrefix(spec, "-")
	digits := strings.TrimLeft(spec, "+-")
	if digits == "" || len(digits) > 6 || strings.Trim(digits, "0123456789") != "" || len(spec)-len(digits) > 1 {
		return 0, fmt.Errorf("cannot scale to %q: want N, +N or -N with N a whole number", spec)
	}
	v := 0
	for _, c := range digits {
		v = v*10 + int(c-'0')
	}
	n := v
	if rel {
		if spec[0] == '-' {
			n = cur - v
		} else {
			n = cur + v
		}
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
		m.resize(a, n, sig)
	}
}

// forward passes a signal to every live instance's process group.
func (m *Machine) forward(sig syscall.Signal) {
	n := 0
	for _, in := range m.live {
		if in.pid != 0 && m.procs.Signal(in.id, in.pid, sig) == nil {
			n++
		}
	}
	m.log.Printf("received %s: forwarded to %d instances", signals.Name(sig), n)
}

// --- Shutdown ---

func (m *Machine) onDrain(ev DrainRequested) {
	if m.phase != running {
		return
	}
	switch {
	case ev.HungUp:
		m.log.Printf("received SIGHUP and the terminal has hung up: stopping every app (send SIGTERM to kill at once)")
	case ev.Signal != 0:
		m.log.Printf("received %s: stopping every app (send it again to kill at once)", signals.Name(ev.Signal))
	}
	m.drain(0)
}

// drain begins a graceful stop of everything that ends the runner with code.
func (m *Machine) drain(code int) {
	if m.phase != running {
		return
	}
	m.phase = draining
	m.exitCode = code
	for _, req := range append(m.queue, m.loading...) {
		m.answer(req, status.ReloadResult{Err: errStopped})
	}
	m.queue, m.loading = nil, nil
	for _, a := range m.apps {
		m.cancelRollout(a, status.ReloadCancelled, "the runner is stopping")
		if a.state == appRunning || a.state == appWaiting {
			a.state = appStopped
		}
		// Pending restarts are cancelled now; live processes are signalled
		// by drainStep once their dependents are gone.
		for _, s := range a.slots {
			m.disarm(&s.backoff)
			if s.state == slotBackoff {
				s.state = slotStopped
			}
		}
	}
	m.drainStep()
}

// drainStep stops every app none of whose dependents still runs: apps stop
// in parallel, dependents before what they depend on.
func (m *Machine) drainStep() {
	if m.phase != draining {
		return
	}
	for _, a := range m.apps {
		if !m.hasLive(a) || m.dependentsLive(a) {
			continue
		}
		for _, in := range m.liveOf(a) {
			in.thenStart = nil
			m.stop(in, true)
		}
	}
}

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

// dependentsLive: some app that depends on a still has live processes.
func (m *Machine) dependentsLive(a *app) bool {
	for _, b := range m.apps {
		if b != a && slices.Contains(b.rel.App.DependsOn, a.name) && m.hasLive(b) {
			return true
		}
	}
	return false
}

// force kills every process group at once (a second SIGTERM or SIGINT).
func (m *Machine) force() {
	if m.phase == running {
		m.drain(1)
	}
	m.phase = forcing
	m.exitCode = 1
	for _, in := range m.live {
		in.expected = true
		m.kill(in)
	}
}

// --- After every event ---

// settle runs after every event and moves forward whatever it unblocked:
// apps whose dependencies became ready start, rollouts take their next
// step, reload callers whose reload ended get their answer, and the runner
// finishes when nothing is left to do.
func (m *Machine) settle() {
	if m.phase == running {
		m.startWaitingApps()
		m.advanceRollouts()
		m.announceReady()
		if a := m.requiredFailure(); a != nil {
			m.log.Printf("%s is required and gave up: stopping every app", a.name)
			m.drain(1)
		}
	}
	m.drainStep()
	m.forgetRemoved()
	m.checkFinished()
}

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

func (m *Machine) checkFinished() {
	if m.finished || len(m.live) > 0 {
		return
	}
	if m.phase != running {
		if m.unclean && m.exitCode == 0 {
			m.exitCode = 1
		}
		m.finished = true // the runner says it, after its last checks
		return
	}
	if m.loading != nil || len(m.queue) > 0 {
		return
	}
	// Running with nothing alive: finished only if nothing can start again.
	var failed []string
	for _, a := range m.apps {
		if a.userStopped || a.rollout != nil {
			return
		}
		for _, s := range a.slots {
			if s.state == slotBackoff {
				return
			}
		}
		if a.state == appWaiting && m.depsCanStillBeMet(a) {
			return
		}
		if m.failed(a) {
			failed = append(failed, a.name)
		}
	}
	if len(failed) > 0 {
		m.exitCode = 1
		m.log.Printf("nothing left running (%s failed)", strings.Join(failed, ", "))
	} else {
		m.log.Printf("every app has finished")
	}
	m.finished = true
}

// declare tells the log which apps exist and how wide their labels are.
func (m *Machine) declare() {
	var ls []logmux.App
	for _, a := range m.apps {
		ls = append(ls, logmux.App{Name: a.name, Instances: max(len(a.slots), a.want)})
	}
	m.log.Declare(ls)
}

// retainListeners closes listener sockets that no release able to start a
// process refers to; draining processes hold copies of their own.
func (m *Machine) retainListeners() {
	var keep []*hclconfig.Listener
	add := func(rel *Release) {
		if rel != nil {
			keep = append(keep, rel.Listeners...)
		}
	}
	for _, a := range m.apps {
		if a.state == appRemoved {
			continue
		}
		add(a.rel)
		add(a.prev)
		if a.rollout != nil {
			add(a.rollout.target)
		}
		for _, s := range a.slots {
			add(s.rel)
			if s.cur != nil {
				add(s.cur.thenStart)
			}
		}
	}
	m.socks.Retain(keep)
}

func (m *Machine) count(a *app, reason string) {
	c := m.counters.Restarts[a.name]
	if c == nil {
		c = map[string]int{}
		m.counters.Restarts[a.name] = c
	}
	c[reason]++
}

func (m *Machine) logExit(in *instance, st proc.Status, tail string) {
	m.log.Printf("%s %s%s", in.labelPID(), st, tail)
}

// label is the instance's name in logs and commands: "web.2".
func (s *slot) label() string { return s.app.name + "." + itoa(s.index) }

func (in *instance) label() string { return in.slot.label() }

func (in *instance) labelPID() string {
	if in.pid == 0 {
		return in.label()
	}
	return fmt.Sprintf("%s (pid %d)", in.label(), in.pid)
}

// role says, in a log line, what a process that is not the plain serving
// one is for.
func (in *instance) role() string {
	if in.loc != locNext {
		return ""
	}
	switch in.why {
	case whyRollout:
		return fmt.Sprintf(", replacement running release %d", in.rel.Gen)
	case whyStopping:
		return ", replacement for one that announced STOPPING=1"
	case whyHealth, whyWatchdog:
		return ", replacement for one that failed its health check"
	case whyMemory:
		return ", replacement for one above max_memory"
	}
	return ""
}
