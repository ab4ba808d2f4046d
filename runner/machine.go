package runner

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// Machine is the supervisor: the states of every app, slot, instance and
// rollout (states.go), and the one function through which every event
// changes them (Handle). It is not safe for concurrent use: one goroutine
// owns it and feeds it events; the world is reached only through the seams
// in seams.go, so tests drive it with fakes.
//
// Reading order: Handle, then settle, which runs after every event and
// moves forward whatever the event unblocked; then the levels of the model,
// one file each: instance.go (one process), slot.go (one instance number,
// and what an exit means), app.go, rollout.go (reloads and restarts) and
// shutdown.go.
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
	tok    uint64
	phase  phase
	// formation holds up's -m counts (foreman's formation), by app name
	// or "all".
	formation map[string]int
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
	// Formation is up's -m: instance counts by app name ("all" for every
	// app) that replace the file's, at start and at every reload. An app
	// given 0 is not started, as if left out of Only.
	Formation map[string]int
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
		strict: d.Strict, cfg: cfg, live: make(map[InstanceID]*instance), formation: d.Formation,
		counters: status.Counters{Restarts: map[string]map[string]int{}, Reloads: map[string]int{}},
	}
	for _, ca := range cfg.Apps {
		a := m.newApp(ca, cfg, d.Creds[ca.Name])
		if only != nil && !only[ca.Name] || a.want == 0 {
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

// Subscribe calls fn, on the machine's goroutine, with every lifecycle
// event from now on, in order. fn must not block or call into the machine.
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

// onTimer dispatches a timer to its level, unless it is stale.
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
	if ev.kind == tBackoff {
		m.backoffElapsed(ev.s)
		return
	}
	m.instanceTimer(ev.in, ev.kind)
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

// ErrStopped is what a request to a runner that is stopping returns.
var ErrStopped = errStopped

// bug reports a transition the machine does not allow: a defect in a
// handler, never the world's fault.
func (m *Machine) bug(format string, args ...any) {
	msg := "internal error: " + fmt.Sprintf(format, args...)
	if m.strict {
		panic(msg)
	}
	m.log.Printf("%s (ignored; please report it)", msg)
}

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

// --- Events for subscribers ---

// publish tells subscribers what happened to an instance.
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

// publishApp tells subscribers what happened to an app, or to instance
// number index of it (-1: the app).
func (m *Machine) publishApp(a *app, index int, ev status.Lifecycle) {
	if len(m.subs) == 0 {
		return
	}
	ev.Time, ev.App, ev.Instance = m.clock.Now(), a.name, index
	m.emit(ev)
}

// emit hands ev to every subscriber.
func (m *Machine) emit(ev status.Lifecycle) {
	for _, fn := range m.subs {
		fn(ev)
	}
}

// --- Timers ---

// armed is one timer of the machine's: the clock's handle and the token
// that its event carries.
type armed struct {
	t   Timer
	tok uint64
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

// jitter is deterministic under the fake clock's tests, random otherwise.
func (m *Machine) jitter() float64 {
	if j, ok := m.clock.(interface{ Jitter() float64 }); ok {
		return j.Jitter()
	}
	return jitter()
}

// --- Bookkeeping ---

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
				add(s.cur.then)
			}
		}
	}
	m.socks.Retain(keep)
}

// count adds one restart of a for reason to the counters, and tells
// subscribers.
func (m *Machine) count(a *app, index int, reason, detail string) {
	c := m.counters.Restarts[a.name]
	if c == nil {
		c = map[string]int{}
		m.counters.Restarts[a.name] = c
	}
	c[reason]++
	m.publishApp(a, index, status.Lifecycle{Kind: status.Restart, Reason: reason, Detail: detail})
}
