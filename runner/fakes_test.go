package runner

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/sdnotify"
	"github.com/clusterrun/clusterrun/status"
)

// world is everything outside the machine, faked: processes, the clock,
// the loader and the sockets. Tests (the model test and the scripted ones)
// drive the machine by handing it the events this world produces.
type world struct {
	t   testing.TB
	m   *Machine
	rng *rand.Rand

	now    time.Time
	timers []*fakeTimer

	procs   map[InstanceID]*fproc
	byPID   map[int]*fproc
	nextPID int
	// spawns are start requests not answered yet, in order.
	spawns []InstanceID
	loads  []int
	// file is what a load reads: the config last written, or nil for an
	// invalid file. lastBroken says whether the last load read an invalid one.
	file       *hclconfig.Config
	lastBroken bool

	// probes are the checks running, by instance.
	probes map[InstanceID]string
	// routable is the set the lifecycle events describe; ready the
	// instances that were published Ready.
	routable map[InstanceID]bool
	ready    map[InstanceID]bool
	// quiesced are the instances whose Quiesced was delivered, and
	// quiesceTimedOut those whose quiesce timeout fired.
	quiesced, quiesceTimedOut map[InstanceID]bool
	// announced counts each instance's Signalled events and stops the stop
	// signals it was sent (the app's, or SIGKILL): every stop signal is
	// announced before it goes, so that an http listener stops forwarding
	// to the instance first.
	announced, stops map[InstanceID]int
	// formation is up's -m for the machine start makes.
	formation map[string]int
	// lateTimers: a stopped timer sometimes fires all the same, as a real
	// one may have posted its event already (the model test sets it).
	lateTimers bool
	// beforeLoad, when set, is called with each config a load delivers,
	// before the machine handles it.
	beforeLoad func(seq int, cfg *hclconfig.Config)
	// check, when set, counts how often each invariant was checked and
	// records its failures (the model test sets it).
	check  func(name string, ok bool, format string, args ...any)
	events []status.Lifecycle
	// quiescing are the instances the machine waits to be quiesced, in
	// the order it asked.
	quiescing []InstanceID
	logs      []string
	// trace is what happened, for a failing seed's report.
	trace []string
}

// fproc is a fake process. Its release's command says how it behaves:
// "good" becomes ready when told, "slow" only after 3s, "crash" exits at
// once.
type fproc struct {
	id        InstanceID
	req       StartRequest
	pid       int
	kind      string
	spawned   bool
	alive     bool
	started   time.Time
	hung      bool // ignores SIGTERM
	signalled syscall.Signal
	got       []syscall.Signal // every signal, in order
	cancelled bool
	sentReady bool
}

func (p *fproc) app() string { return p.req.Rel.App.Name }

type fakeTimer struct {
	w      *world
	at     time.Time
	ev     Event
	active bool
	// late: stopped, and yet it fires at its time: a real timer that had
	// already posted its event when it was stopped.
	late bool
}

func (t *fakeTimer) Stop() {
	if t.active && t.w.lateTimers && t.w.rng.IntN(4) == 0 {
		t.late = true
	}
	t.active = false
}

func newWorld(t testing.TB, seed uint64) *world {
	return &world{
		t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:   time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC),
		procs: map[InstanceID]*fproc{}, byPID: map[int]*fproc{}, nextPID: 1000,
		routable: map[InstanceID]bool{}, ready: map[InstanceID]bool{}, probes: map[InstanceID]string{},
		quiesced: map[InstanceID]bool{}, quiesceTimedOut: map[InstanceID]bool{},
		announced: map[InstanceID]int{}, stops: map[InstanceID]int{},
	}
}

func (w *world) start(cfg *hclconfig.Config, only ...string) {
	w.file = cfg
	m, err := NewMachine(cfg, Deps{Procs: w, Clock: w, Prober: w, Loader: w, Sockets: w, Log: w, Strict: true, Only: only,
		Formation: w.formation})
	if err != nil {
		w.t.Fatal(err)
	}
	w.m = m
	m.Subscribe(w.onLifecycle)
	m.Start()
}

func (w *world) tracef(format string, args ...any) {
	w.trace = append(w.trace, fmt.Sprintf("%8s  ", w.now.Sub(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)).Round(time.Millisecond))+fmt.Sprintf(format, args...))
}

// handle gives the machine one event.
func (w *world) handle(ev Event) {
	w.m.Handle(ev)
}

// --- Procs ---

func (w *world) Start(req StartRequest) {
	p := &fproc{id: req.ID, req: req, kind: req.Rel.App.Command[0]}
	w.procs[req.ID] = p
	w.spawns = append(w.spawns, req.ID)
}

func (w *world) Cancel(id InstanceID) {
	if p := w.procs[id]; p != nil && !p.spawned {
		p.cancelled = true
	}
}

func (w *world) Signal(id InstanceID, pid int, sig syscall.Signal) error {
	p := w.procs[id]
	if p == nil || !p.spawned || p.pid != pid {
		w.t.Fatalf("signal %v to %d (pid %d), which was never started", sig, id, pid)
	}
	if !p.alive {
		return nil // reaped, its exit not yet handled
	}
	if w.routable[id] && (sig == syscall.SIGTERM || sig == syscall.SIGKILL) {
		w.t.Fatalf("%s (id %d) was sent %v while still routable: it must stop getting connections first", p.app(), id, sig)
	}
	if sig == p.req.Rel.App.Stop.Signal && w.ready[id] && proxied(p.req.Rel) {
		w.checkf("stop signal after quiesce", w.quiesced[id] || w.quiesceTimedOut[id],
			"%s (id %d) served through a proxy and was sent %v before it was quiesced or its quiesce timed out", p.app(), id, sig)
	}
	if sig == p.req.Rel.App.Stop.Signal || sig == syscall.SIGKILL {
		w.stops[id]++
		w.checkf("stop signal announced", w.stops[id] <= w.announced[id],
			"%s (id %d) was sent %v before its Signalled event", p.app(), id, sig)
	}
	p.got = append(p.got, sig)
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL {
		if p.signalled != syscall.SIGKILL {
			p.signalled = sig
		}
	}
	return nil
}

func (w *world) Alive(id InstanceID, pid int) bool {
	p := w.procs[id]
	return p != nil && p.spawned && p.pid == pid && p.alive
}

func (w *world) SetTag(InstanceID, string) {}

// spawn answers the oldest start request.
func (w *world) spawn(i int, fail bool) {
	id := w.spawns[i]
	w.spawns = slices.Delete(w.spawns, i, i+1)
	p := w.procs[id]
	switch {
	case p.cancelled && w.rng.IntN(2) == 0:
		w.tracef("spawn %d cancelled", id)
		delete(w.procs, id)
		w.handle(SpawnFailed{ID: id, Cancelled: true})
	case fail:
		w.tracef("spawn %d failed", id)
		delete(w.procs, id)
		w.handle(SpawnFailed{ID: id, Err: fmt.Errorf("no such program")})
	default:
		w.nextPID++
		p.pid, p.spawned, p.alive, p.started = w.nextPID, true, true, w.now
		w.byPID[p.pid] = p
		w.tracef("spawned %s.%d id %d pid %d (%s)", p.app(), p.req.Index, id, p.pid, p.kind)
		w.handle(Spawned{ID: id, PID: p.pid, Addrs: map[string]string{}, ProbeAddr: fmt.Sprintf("127.0.0.1:%d", 40000+int(id))})
	}
}

// exit ends a live process.
func (w *world) exit(p *fproc, st proc.Status) {
	p.alive = false
	w.tracef("exit %s.%d pid %d: %s", p.app(), p.req.Index, p.pid, st)
	delete(w.procs, p.id)
	w.handle(Exited{ID: p.id, Status: st})
}

func (w *world) notify(p *fproc, msg string) {
	w.tracef("%s.%d pid %d says %s", p.app(), p.req.Index, p.pid, msg)
	w.handle(Notified{ID: p.id, Msg: sdnotify.Parse([]byte(msg))})
}

// --- Clock ---

func (w *world) Now() time.Time { return w.now }

func (w *world) After(d time.Duration, ev Event) Timer {
	if tf := ev.(timerFired); tf.kind == tStop {
		p := w.procs[tf.in.id]
		w.checkf("stop timer after the stop signal", p != nil && (p.signalled != 0 || tf.in.intent == announced),
			"%s (id %d): its stop timer is armed before it was sent its stop signal", tf.in.label(), tf.in.id)
	}
	t := &fakeTimer{w: w, at: w.now.Add(d), ev: ev, active: true}
	w.timers = append(w.timers, t)
	return t
}

// checkf records one check of an invariant: through the model's counter
// when there is one, else as a test failure.
func (w *world) checkf(name string, ok bool, format string, args ...any) {
	if w.check != nil {
		w.check(name, ok, format, args...)
		return
	}
	if !ok {
		w.t.Errorf(format, args...)
	}
}

func (w *world) Jitter() float64 { return w.rng.Float64() }

// activeTimers drops spent timers and returns those still armed.
func (w *world) activeTimers() []*fakeTimer {
	w.timers = slices.DeleteFunc(w.timers, func(t *fakeTimer) bool { return !t.active && !t.late })
	return slices.DeleteFunc(slices.Clone(w.timers), func(t *fakeTimer) bool { return !t.active })
}

// fireNext advances the clock to the earliest timer due (armed, or
// stopped but late) and fires it.
func (w *world) fireNext() bool {
	w.activeTimers()
	ts := w.timers
	if len(ts) == 0 {
		return false
	}
	next := ts[0]
	for _, t := range ts[1:] {
		if t.at.Before(next.at) {
			next = t
		}
	}
	if next.at.After(w.now) {
		w.now = next.at
	}
	late := next.late
	next.active, next.late = false, false
	tf := next.ev.(timerFired)
	what := tf.kind.String()
	if tf.in != nil {
		what += " of " + tf.in.label()
	} else {
		what += " of " + tf.s.label()
	}
	if late {
		// Its token must be stale, or the machine would take it as the
		// timer it armed since.
		var cur uint64
		switch {
		case tf.s != nil:
			cur = tf.s.backoff.tok
		case w.m.live[tf.in.id] == tf.in:
			cur = tf.in.timers[tf.kind].tok
		}
		w.checkf("a stopped timer that fires is stale", cur != tf.tok, "a stopped %s timer carries the current token", what)
		what += " (stopped, fires late)"
	} else if tf.kind == tQuiesce {
		w.quiesceTimedOut[tf.in.id] = true
	}
	w.tracef("timer: %s", what)
	w.handle(next.ev)
	return true
}

// advance lets d pass, firing every timer due meanwhile, in order.
func (w *world) advance(d time.Duration) {
	end := w.now.Add(d)
	for {
		ts := w.activeTimers()
		if len(ts) == 0 || earliest(ts).After(end) {
			break
		}
		w.fireNext()
	}
	w.now = end
}

// --- Prober, Loader, Sockets, Log ---

func (w *world) Ready(id InstanceID, addr string, _ hclconfig.ReadyCheck, _ string) {
	w.probes[id] = "ready " + addr
}
func (w *world) Health(id InstanceID, addr string, _ hclconfig.Health) {
	w.probes[id] = "health " + addr
}
func (w *world) Stop(id InstanceID) { delete(w.probes, id) }

func (w *world) Load(seq int) { w.loads = append(w.loads, seq) }

// deliverLoad answers the oldest load with the next queued config.
func (w *world) deliverLoad() {
	seq := w.loads[0]
	w.loads = w.loads[1:]
	cfg := w.file
	w.lastBroken = cfg == nil
	if cfg == nil {
		w.tracef("load %d: invalid file", seq)
		w.handle(Loaded{Seq: seq, Err: fmt.Errorf("cluster.hcl:3,5: Unsupported argument")})
		return
	}
	w.tracef("load %d: %s", seq, describe(cfg))
	if w.beforeLoad != nil {
		w.beforeLoad(seq, cfg)
	}
	w.handle(Loaded{Seq: seq, Config: cfg})
}

func (w *world) Bind([]*hclconfig.Listener) ([]string, error)   { return nil, nil }
func (w *world) Retain([]*hclconfig.Listener)                   {}
func (w *world) ReleaseSlot(string, []*hclconfig.Listener, int) {}
func (w *world) Addr(*hclconfig.Listener) string                { return "" }
func (w *world) Printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	w.logs = append(w.logs, line)
	w.trace = append(w.trace, "            | "+line)
}
func (w *world) Declare([]logmux.App) {}
func (w *world) Quiesce(id InstanceID, _ time.Duration) {
	if w.routable[id] {
		w.t.Fatalf("instance %d is quiesced while still routable", id)
	}
	w.quiescing = append(w.quiescing, id)
}

// quiesce answers the i-th pending Quiesce.
func (w *world) quiesce(i int) {
	id := w.quiescing[i]
	w.quiescing = slices.Delete(w.quiescing, i, i+1)
	w.quiesced[id] = true
	w.tracef("quiesced %d", id)
	w.handle(Quiesced{ID: id})
}

func (w *world) onLifecycle(ev status.Lifecycle) {
	w.events = append(w.events, ev)
	switch ev.Kind {
	case status.Signalled:
		w.announced[ev.ID]++
	case status.Ready:
		w.checkf("ready once", !w.ready[ev.ID], "instance %d was published Ready twice", ev.ID)
		w.ready[ev.ID] = true
	case status.Routable:
		w.routable[ev.ID] = true
	case status.Unroutable, status.Gone:
		delete(w.routable, ev.ID)
	}
}

// --- Configs ---

// appSpec describes one app of a test config.
type appSpec struct {
	name, kind string
	instances  int
	parallel   int
	dependsOn  []string
	delay      bool // ready by delay instead of READY=1
	probed     bool // ready by a tcp probe, health by http probes (a proxied app)
	watchdog   bool
	stopFirst  bool
}

func testApp(s appSpec, gen int) *hclconfig.App {
	a := &hclconfig.App{
		Name: s.name, Command: []string{s.kind, strconv.Itoa(gen)}, Dir: "/", Instances: s.instances,
		DependsOn: s.dependsOn, Env: map[string]string{},
		Ready: hclconfig.Ready{Check: hclconfig.ReadyNotify, Timeout: 10 * time.Second},
		Restart: hclconfig.Restart{Policy: hclconfig.RestartOnFailure, Backoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second,
			MinUptime: time.Second, MaxRestarts: 5, Window: 30 * time.Second},
		Stop:   hclconfig.Stop{Signal: syscall.SIGTERM, Timeout: 3 * time.Second},
		Reload: hclconfig.Reload{Parallel: max(1, s.parallel), Order: hclconfig.OrderStartFirst},
	}
	if s.delay {
		a.Ready = hclconfig.Ready{Check: hclconfig.ReadyDelay, Delay: time.Second, Timeout: 10 * time.Second}
	}
	if s.probed {
		a.Ready = hclconfig.Ready{Check: hclconfig.ReadyTCP, Timeout: 10 * time.Second}
		a.Health = hclconfig.Health{Check: hclconfig.HealthHTTP, Path: "/healthz", Interval: time.Second, Timeout: 500 * time.Millisecond, Failures: 2}
	}
	if s.watchdog {
		a.Health = hclconfig.Health{Check: hclconfig.HealthWatchdog, Interval: 2 * time.Second, Timeout: time.Second, Failures: 2}
	}
	if s.stopFirst {
		a.Reload.Order = hclconfig.OrderStopFirst
	}
	return a
}

func testConfig(gen int, specs ...appSpec) *hclconfig.Config {
	cfg := &hclconfig.Config{Path: "/test/cluster.hcl", Dir: "/test", Env: map[string]string{}}
	for _, s := range specs {
		a := testApp(s, gen)
		if s.probed {
			// Behind a proxy listener of its own: stopping it waits for
			// Quiesced.
			cfg.Listeners = append(cfg.Listeners, &hclconfig.Listener{Name: s.name, Network: "tcp", Address: "127.0.0.1:0",
				Mode: hclconfig.Proxy, Balance: hclconfig.BalanceLeastConn})
			a.Listeners = []string{s.name}
		}
		cfg.Apps = append(cfg.Apps, a)
	}
	return cfg
}

func describe(cfg *hclconfig.Config) string {
	var parts []string
	for _, a := range cfg.Apps {
		parts = append(parts, fmt.Sprintf("%s=%s×%d", a.Name, a.Command[0], a.Instances))
	}
	return strings.Join(parts, " ")
}

// --- Helpers for scripted tests ---

// live returns the live fake processes of app, in start order.
func (w *world) live(app string) []*fproc {
	var out []*fproc
	for _, p := range w.procs {
		if p.alive && p.app() == app {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *fproc) int { return int(a.id) - int(b.id) })
	return out
}

// runUntilQuiet delivers spawns, READY=1 of good processes, exits of
// signalled ones and loads, and fires timers, until nothing of that is
// left or limit steps were taken. It never crashes anything.
func (w *world) runUntilQuiet(limit int) {
	for i := 0; i < limit; i++ {
		if !w.benignStep() {
			return
		}
	}
	w.t.Fatalf("not quiet after %d steps", limit)
}

// benignStep takes one step that breaks nothing, and reports whether there
// was one to take. Timers fire only when nothing else is pending, and
// watchdog pings keep healthy processes healthy.
func (w *world) benignStep() bool {
	if len(w.spawns) > 0 {
		w.spawn(0, false)
		return true
	}
	if len(w.loads) > 0 {
		w.deliverLoad()
		return true
	}
	if len(w.quiescing) > 0 {
		w.quiesce(0)
		return true
	}
	for _, p := range w.sortedProcs() {
		switch {
		case !p.alive:
		case p.kind == "crash":
			w.exit(p, proc.Status{Code: 1})
			return true
		case p.signalled == syscall.SIGKILL || (p.signalled == syscall.SIGTERM && !p.hung):
			st := proc.Status{Code: 0}
			if p.signalled == syscall.SIGKILL {
				st = proc.Status{Code: 137, Signal: syscall.SIGKILL}
			}
			w.exit(p, st)
			return true
		case p.signalled == 0 && !p.sentReady && p.req.Rel.App.Ready.Check == hclconfig.ReadyNotify && w.canBeReady(p):
			p.sentReady = true
			w.notify(p, "READY=1")
			return true
		case p.signalled == 0 && !p.sentReady && strings.HasPrefix(w.probes[p.id], "ready ") && w.canBeReady(p):
			p.sentReady = true
			w.tracef("%s.%d pid %d answers its ready probe", p.app(), p.req.Index, p.pid)
			w.handle(ProbeResult{ID: p.id, OK: true})
			return true
		}
	}
	if !w.pending() {
		return false
	}
	// Time must pass: keep watchdogs fed, let slow processes become ready,
	// then fire the next timer.
	for _, p := range w.sortedProcs() {
		if p.alive && p.signalled == 0 && p.req.Rel.App.Health.Check == hclconfig.HealthWatchdog {
			w.handle(Notified{ID: p.id, Msg: sdnotify.Message{Watchdog: true}})
		}
	}
	if next := w.nextSlowReady(); !next.IsZero() {
		if w.activeTimers(); len(w.timers) == 0 || !earliest(w.timers).After(next) {
			return w.fireNext()
		}
		w.now = next
		return true
	}
	return w.fireNext()
}

func earliest(ts []*fakeTimer) time.Time {
	e := ts[0].at
	for _, t := range ts {
		if t.at.Before(e) {
			e = t.at
		}
	}
	return e
}

// pending: something is still under way (a start, a stop, a rollout, a
// restart backoff, a reload being read).
func (w *world) pending() bool {
	if len(w.spawns) > 0 || len(w.loads) > 0 || w.m.loading != nil || len(w.m.queue) > 0 {
		return true
	}
	for _, in := range w.m.live {
		if in.state != stReady {
			return true
		}
	}
	for _, a := range w.m.apps {
		if a.rollout != nil || a.state == appWaiting && w.m.depsCanStillBeMet(a) {
			return true
		}
		for _, s := range a.slots {
			if s.state == slotBackoff {
				return true
			}
		}
	}
	return false
}

const slowBoot = 3 * time.Second

func (w *world) canBeReady(p *fproc) bool {
	return p.spawned && (p.kind == "good" || p.kind == "slow" && !w.now.Before(p.started.Add(slowBoot)))
}

func (w *world) nextSlowReady() time.Time {
	var next time.Time
	for _, p := range w.procs {
		if p.alive && p.kind == "slow" && !p.sentReady && p.signalled == 0 && p.req.Rel.App.Ready.Check != hclconfig.ReadyDelay {
			at := p.started.Add(slowBoot)
			if at.After(w.now) && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	return next
}

func (w *world) sortedProcs() []*fproc {
	out := make([]*fproc, 0, len(w.procs))
	for _, p := range w.procs {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *fproc) int { return int(a.id) - int(b.id) })
	return out
}
