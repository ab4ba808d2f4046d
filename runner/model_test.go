package runner

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/sdnotify"
	"github.com/clusterrun/clusterrun/status"
)

var (
	modelSeeds  = flag.Int("model.seeds", 1500, "how many random event sequences TestModel runs")
	modelEvents = flag.Int("model.events", 60, "events per sequence")
	modelSeed   = flag.Int64("model.seed", -1, "run only this seed (a failing one), printing its events")
)

// floors is how many times each invariant must have been checked (its
// premise held, so the check could fail) across the default seeds and
// events: an invariant that is never reached proves nothing. They are
// about half of what the default run reaches, so that a change that
// starves one shows at once. They scale with -model.seeds. They hold only
// for the default -model.events: how often a sequence settles, or ends a
// rollout, does not grow with its length (longer sequences settle less
// often per event), so with other lengths each invariant need only be
// reached at all. A single seed is not held to them.
var floors = map[string]int{
	"placement":                                 850000,
	"machine and world agree":                   850000,
	"routable as published":                     580000,
	"probes only while wanted":                  47000,
	"timers belong to the living":               285000,
	"a stopped timer that fires is stale":       5000,
	"replaced only once its successor is ready": 1500,
	"stop signal after quiesce":                 900,
	"stop signal announced":                     9000,
	"stop timer after the stop signal":          8000,
	"ready once":                                5300,
	"health recovery is routable":               12,
	"count: three-way rule on reload":           2900,
	"count: desired as decided":                 250000,
	"restart: complete means new processes":     750,
	"answer: N of M with N <= M":                2000,
	"answer: completed means on its release":    750,
	"answer: aborted is not the newest":         60,
	"answer: a refusal is true":                 2800,
	"answer: rejected means broken":             160,
	"answer: undisturbed succeeds":              130,
	"quiet: count and release":                  5900,
	"quiet: failed only after a failure":        55,
	"drained: nothing left":                     1400,
}

// TestModel drives the real supervisor with fake processes, a fake clock
// and fake sockets through random sequences of events — crashes, hangs,
// STOPPING=1, READY=1, probes that pass or fail, watchdogs, ready timeouts,
// reloads of good, broken, crash-on-boot, slow-booting and re-counted
// releases, restarts, stop, start, scale, quiesce reports that come late or
// never, stopped timers that fire anyway, SIGTERM and a second SIGTERM —
// and checks its invariants after every step, once things have settled,
// and after the final drain. It counts how often each invariant was
// checked and fails when one falls under its floor (-v prints the counts).
// A failing seed prints the events that reproduce it:
// go test ./runner -run TestModel -model.seed=N -v
func TestModel(t *testing.T) {
	counts := map[string]int{}
	if *modelSeed >= 0 {
		runModel(t, uint64(*modelSeed), *modelEvents, true, counts)
		return
	}
	seeds := *modelSeeds
	if testing.Short() {
		seeds /= 10
	}
	for seed := 0; seed < seeds; seed++ {
		if !runModel(t, uint64(seed), *modelEvents, false, counts) {
			return
		}
	}
	t.Logf("%d seeds × %d events; checks per invariant (floor for these seeds):", seeds, *modelEvents)
	names := make([]string, 0, len(floors))
	for n := range floors {
		names = append(names, n)
	}
	sort.Strings(names)
	scale := float64(seeds) / 1500
	for _, n := range names {
		floor := int(float64(floors[n]) * scale)
		switch {
		case testing.Short():
			floor = 0 // a tenth of the seeds may miss the rarest ones
		case *modelEvents != 60:
			floor = 1
		}
		t.Logf("  %-45s %9d  (floor %d)", n, counts[n], floor)
		if counts[n] < floor {
			t.Errorf("invariant %q was checked %d times, under its floor of %d: the model no longer reaches it", n, counts[n], floor)
		}
	}
	for n := range counts {
		if _, ok := floors[n]; !ok {
			t.Errorf("invariant %q has no floor", n)
		}
	}
}

// model is one random run: the world, the apps as the test means them, and
// what it expects of every reload it asked for.
type model struct {
	*world
	gen   int
	specs []appSpec
	// fileCount is each app's instances in the file as last written.
	fileCount map[string]int
	calls     []*rcall
	// epoch counts disturbances per app: crashes, STOPPING=1, hangs, user
	// commands. An answer is held to "succeeds" only while the epochs of
	// what it concerns have not moved.
	epoch map[string]int
	// failures: the app had a process crash, fail to start, miss its
	// ready timeout or announce STOPPING=1: reasons for a slot to give up.
	failures map[string]bool
	// crashRelease: a release that crashes on boot was loaded for the app.
	crashRelease map[string]bool
	// declared and want are the model's own three-way count rule: the
	// count the last accepted load declared, and the count the app should
	// want; relCount is the file's count in the app's newest release.
	declared, want, relCount map[string]int
	// everRoutable: instances that were routable once.
	everRoutable map[InstanceID]bool
	// calm: this run has no crash, hang, STOPPING=1, failing check or
	// failed start, so that its answers can be held to succeed.
	calm    bool
	drained bool
	counts  map[string]int
	failed  bool
}

// rcall is one reload or restart the test asked for and awaits.
type rcall struct {
	what   string // "reload good", "restart web.1", …
	app    string // the app it concerns ("" = all)
	inst   int    // the instance a restart names, -1 = all
	kind   string // release kind delivered: good, slow, crash, broken; "" for restarts
	gen    int
	epochs map[string]int
	reply  chan status.ReloadResult
	res    *status.ReloadResult
	step   int
	// since is the last instance id when a restart was asked: a restart
	// that completes leaves every slot running a process above it.
	since InstanceID
	// refuse is what a restart must be refused with at once ("" if not).
	refuse string
	// racing: asked while a reload was being read, which may supersede it.
	racing bool
}

// ok records one check of an invariant.
func (md *model) ok(name string, ok bool, format string, args ...any) bool {
	md.counts[name]++
	if !ok && !md.failed {
		md.failed = true
		md.t.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	return ok
}

func runModel(t *testing.T, seed uint64, events int, verbose bool, counts map[string]int) (ok bool) {
	w := newWorld(t, seed)
	md := &model{world: w, epoch: map[string]int{}, failures: map[string]bool{}, crashRelease: map[string]bool{},
		declared: map[string]int{}, want: map[string]int{}, relCount: map[string]int{}, fileCount: map[string]int{},
		everRoutable: map[InstanceID]bool{}, counts: counts}
	md.specs = []appSpec{
		{name: "db", kind: "good", instances: 1},
		{name: "web", kind: "good", instances: 3, parallel: 1 + w.rng.IntN(2), dependsOn: []string{"db"}},
		{name: "worker", kind: "good", instances: 2, delay: true, watchdog: true, stopFirst: w.rng.IntN(2) == 0},
		{name: "api", kind: "good", instances: 2, probed: true},
	}
	for _, s := range md.specs {
		md.fileCount[s.name] = s.instances
	}
	// up -m: none, a count for worker, or api left out (to be started by
	// a command).
	switch w.rng.IntN(4) {
	case 1:
		w.formation = map[string]int{"worker": 3}
	case 2:
		w.formation = map[string]int{"api": 0}
	}
	md.calm = w.rng.IntN(3) == 0
	w.lateTimers = true
	w.check = func(name string, ok bool, format string, args ...any) { md.ok(name, ok, format, args...) }
	w.beforeLoad = md.beforeLoad
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("seed %d: panic: %v", seed, r)
			ok = false
		}
		if md.failed || t.Failed() {
			ok = false
		}
		if !ok || verbose {
			t.Logf("seed %d, events:\n%s", seed, strings.Join(w.trace, "\n"))
			if !ok {
				t.Logf("reproduce with: go test ./runner -run TestModel -model.seed=%d -v", seed)
			}
		}
	}()
	cfg := testConfig(md.nextGen(), md.specs...)
	for _, a := range cfg.Apps {
		md.declared[a.Name] = md.declaredCount(a.Name)
		md.want[a.Name] = md.declared[a.Name]
		md.relCount[a.Name] = a.Instances
	}
	w.start(cfg)
	w.m.Subscribe(md.onLifecycle)
	for i := 0; i < events && !w.m.finished; i++ {
		md.step(i)
		if !md.check(fmt.Sprintf("after event %d", i)) {
			return false
		}
	}
	// Let everything settle, and check the steady state.
	if !w.m.finished && !md.drained {
		md.settle()
		if !md.check("at quiescence") || !md.checkQuiet() {
			return false
		}
	}
	// Then drain, and check nothing is left.
	if !w.m.finished {
		if !md.drained {
			md.drained = true
			md.disturb("")
			w.tracef("SIGTERM (final)")
			w.handle(DrainRequested{Signal: syscall.SIGTERM})
		}
		md.settle()
	}
	return md.check("after the drain") && md.checkDrained()
}

func (md *model) nextGen() int {
	md.gen++
	return md.gen
}

func (md *model) disturb(app string) {
	if app == "" {
		for _, s := range md.specs {
			md.epoch[s.name]++
		}
		return
	}
	md.epoch[app]++
}

// declaredCount is what the model expects a load to declare for app: -m
// first, then the file.
func (md *model) declaredCount(app string) int {
	if n, ok := md.formation[app]; ok {
		return n
	}
	return md.fileCount[app]
}

// beforeLoad applies the model's three-way rule to the apps a load is for,
// when the machine will take it (it reads a batch, and the file is valid).
func (md *model) beforeLoad(seq int, cfg *hclconfig.Config) {
	m := md.m
	if m.loading == nil || seq != m.loadSeq {
		return
	}
	only := m.loading[0].app
	for _, r := range m.loading {
		if r.app == "" {
			only = ""
		}
	}
	for _, a := range cfg.Apps {
		if only != "" && a.Name != only {
			continue
		}
		n := md.declaredCount(a.Name)
		if n != md.declared[a.Name] {
			md.want[a.Name] = n
		}
		md.declared[a.Name] = n
		md.relCount[a.Name] = a.Instances
		if a.Command[0] == "crash" {
			md.crashRelease[a.Name] = true
		}
		md.counts["count: three-way rule on reload"]++
	}
}

// onLifecycle checks what the machine publishes as it publishes it.
func (md *model) onLifecycle(ev status.Lifecycle) {
	m := md.m
	switch ev.Kind {
	case status.Draining:
		// Capacity never drops for a replacement: a serving process that
		// was ready is stopped as replaced only once its successor serves.
		if ev.Reason != replaced.String() || !md.ready[ev.ID] {
			return
		}
		in := m.live[ev.ID]
		ok := in != nil && in.slot.cur != nil && in.slot.cur != in && in.slot.cur.state == stReady && md.routable[in.slot.cur.id]
		md.ok("replaced only once its successor is ready", ok, "instance %d (%s) is stopped as replaced, but its slot's serving instance is not ready and routable", ev.ID, ev.App)
	case status.Routable:
		if md.everRoutable[ev.ID] {
			in := m.live[ev.ID]
			md.ok("health recovery is routable", in != nil && in.healthFails == 0 && in.state == stReady && in.loc == locCur,
				"instance %d is routable again, but not as a recovered serving instance", ev.ID)
		}
		md.everRoutable[ev.ID] = true
	}
}

// step takes one random event.
func (md *model) step(i int) {
	w := md.world
	r := w.rng.IntN(100)
	if md.calm && (r >= 30 && r < 42 || r >= 79 && r < 93 || r >= 63 && r < 79 && w.rng.IntN(2) > 0) {
		// Progress instead of a disturbance: a start, READY=1, or time.
		r = []int{r % 30, 53 + r%10}[r%2]
	}
	live := md.liveProcs()
	switch {
	case r < 17 && len(w.spawns) > 0:
		fail := !md.calm && w.rng.IntN(40) == 0
		idx := w.rng.IntN(len(w.spawns))
		if fail {
			app := w.procs[w.spawns[idx]].app()
			md.disturb(app)
			md.failures[app] = true
		}
		w.spawn(idx, fail)
	case r < 30 && len(live) > 0:
		// READY=1 from a process that may be ready.
		p := live[w.rng.IntN(len(live))]
		if p.req.Rel.App.Ready.Check == "notify" && w.canBeReady(p) && p.signalled == 0 {
			p.sentReady = true
			w.notify(p, "READY=1")
		}
	case r < 36 && len(live) > 0:
		// A crash; processes of a crash-on-boot release crash first.
		p := live[w.rng.IntN(len(live))]
		for _, q := range live {
			if q.kind == "crash" {
				p = q
				break
			}
		}
		md.disturb(p.app())
		md.failures[p.app()] = true
		w.exit(p, proc.Status{Code: 1 + w.rng.IntN(3)})
	case r < 39 && len(live) > 0:
		p := live[w.rng.IntN(len(live))]
		md.disturb(p.app())
		p.hung = true
		w.tracef("%s.%d pid %d hangs (ignores SIGTERM)", p.app(), p.req.Index, p.pid)
	case r < 42 && len(live) > 0:
		p := live[w.rng.IntN(len(live))]
		md.disturb(p.app())
		md.failures[p.app()] = true
		w.notify(p, "STOPPING=1")
	case r < 45 && len(live) > 0:
		// A process that was told to stop exits (a hung one only to SIGKILL).
		for _, p := range live {
			if p.signalled == syscall.SIGKILL || p.signalled == syscall.SIGTERM && !p.hung {
				st := proc.Status{}
				if p.signalled == syscall.SIGKILL {
					st = proc.Status{Code: 137, Signal: syscall.SIGKILL}
				}
				w.exit(p, st)
				break
			}
		}
	case r < 49 && len(live) > 0:
		// A probe answers: a ready probe passes, or a health check passes
		// or fails (and may recover).
		p := live[w.rng.IntN(len(live))]
		var checked []*fproc
		for _, q := range live {
			if strings.HasPrefix(w.probes[q.id], "health ") {
				checked = append(checked, q)
			}
		}
		if len(checked) > 0 && w.rng.IntN(2) == 0 {
			p = checked[w.rng.IntN(len(checked))]
		}
		switch probe := w.probes[p.id]; {
		case strings.HasPrefix(probe, "ready ") && w.canBeReady(p) && p.signalled == 0:
			p.sentReady = true
			w.tracef("%s.%d pid %d answers its ready probe", p.app(), p.req.Index, p.pid)
			w.handle(ProbeResult{ID: p.id, OK: true})
		case strings.HasPrefix(probe, "health "):
			ok := md.calm || w.rng.IntN(2) > 0
			if !ok {
				md.disturb(p.app())
			}
			w.tracef("%s.%d pid %d health check ok=%v", p.app(), p.req.Index, p.pid, ok)
			w.handle(ProbeResult{ID: p.id, Health: true, OK: ok, Detail: "status 503"})
		}
	case r < 51 && len(w.quiescing) > 0:
		// The proxy reports an instance quiesced, in any order; some
		// never are (a connection that stays busy), and the machine's
		// quiesce timeout must signal them anyway.
		if i := w.rng.IntN(len(w.quiescing)); w.rng.IntN(4) > 0 {
			w.quiesce(i)
		} else {
			w.tracef("quiesce of %d never comes", w.quiescing[i])
			w.quiescing = slices.Delete(w.quiescing, i, i+1)
		}
	case r < 53 && len(live) > 0:
		// Feed the watchdog of a worker, or let time pass without it.
		p := live[w.rng.IntN(len(live))]
		w.handle(Notified{ID: p.id, Msg: sdnotify.Message{Watchdog: true}})
	case r < 63:
		md.fireTimer()
	case r < 71:
		md.reload(i, w.rng.IntN(3) == 0)
	case r < 75 && len(w.loads) > 0:
		w.deliverLoad()
	case r < 79:
		app := []string{"web", "worker", "db", "api"}[w.rng.IntN(4)]
		inst := -1
		if w.rng.IntN(2) == 0 {
			inst = w.rng.IntN(3)
		}
		md.restart(i, app, inst)
	case r < 83:
		n := []string{"+1", "-1", "2", "4"}[w.rng.IntN(4)]
		md.disturb("web")
		reply := make(chan ScaleResult, 1)
		w.tracef("scale web %s", n)
		w.handle(ScaleRequested{App: "web", Spec: n, Reply: reply})
		res := <-reply
		w.tracef("  -> %d %v", res.N, res.Err)
		if res.Err == nil {
			md.want["web"] = res.N
		}
	case r < 86:
		app := []string{"web", "worker", "api"}[w.rng.IntN(3)]
		md.disturb(app)
		reply := make(chan error, 1)
		w.tracef("stop %s", app)
		w.handle(StopRequested{App: app, Reply: reply})
		w.tracef("  -> %v", <-reply)
	case r < 90:
		app := []string{"web", "worker", "api"}[w.rng.IntN(3)]
		md.disturb(app)
		reply := make(chan error, 1)
		w.tracef("start %s", app)
		w.handle(StartRequested{App: app, Reply: reply})
		err := <-reply
		w.tracef("  -> %v", err)
		if err == nil && md.want[app] == 0 {
			md.want[app] = md.relCount[app]
		}
	case r < 92:
		md.disturb("")
		md.drained = true
		w.tracef("SIGTERM")
		w.handle(DrainRequested{Signal: syscall.SIGTERM})
	case r < 93 && md.drained:
		w.tracef("second SIGTERM")
		w.handle(ForceRequested{Signal: syscall.SIGTERM})
	default:
		md.fireTimer()
	}
	md.collect(i)
}

// fireTimer lets time pass to the next timer. A timeout that fires (a
// ready check, a stop, a watchdog) disturbs its app: the process it is
// about did not do what it should have in time.
func (md *model) fireTimer() {
	if md.calm {
		// Calm processes feed their watchdogs.
		for _, p := range md.liveProcs() {
			if p.signalled == 0 && p.req.Rel.App.Health.Check == hclconfig.HealthWatchdog {
				md.handle(Notified{ID: p.id, Msg: sdnotify.Message{Watchdog: true}})
			}
		}
	}
	md.activeTimers()
	ts := md.timers
	if len(ts) == 0 {
		return
	}
	next := ts[0]
	for _, t := range ts[1:] {
		if t.at.Before(next.at) {
			next = t
		}
	}
	if tf := next.ev.(timerFired); tf.in != nil && next.active {
		switch tf.kind {
		case tReadyTimeout, tStop, tWatchdog:
			md.disturb(tf.in.slot.app.name)
		}
		if tf.kind == tReadyTimeout {
			md.failures[tf.in.slot.app.name] = true
		}
	}
	md.fireNext()
}

func (md *model) liveProcs() []*fproc {
	var out []*fproc
	for _, p := range md.sortedProcs() {
		if p.alive {
			out = append(out, p)
		}
	}
	return out
}

// reload writes a config of a random kind, sometimes with a new count for
// web or worker, and asks for a reload, by SIGHUP or (withReply) as
// `clusterrun reload [web]`.
func (md *model) reload(i int, withReply bool) {
	w := md.world
	kind := []string{"good", "good", "slow", "crash", "broken"}[w.rng.IntN(5)]
	c := &rcall{kind: kind, inst: -1, epochs: map[string]int{}, step: i}
	if w.rng.IntN(3) == 0 {
		c.app = "web"
	}
	if kind == "broken" {
		w.file = nil
	} else {
		if w.rng.IntN(3) == 0 {
			app := []string{"web", "worker"}[w.rng.IntN(2)]
			md.fileCount[app] = 1 + w.rng.IntN(4)
		}
		specs := slices.Clone(md.specs)
		for j := range specs {
			specs[j].instances = md.fileCount[specs[j].name]
			if specs[j].name == "web" {
				specs[j].kind = kind
				specs[j].parallel = 1 + w.rng.IntN(2)
			}
		}
		c.gen = md.nextGen()
		w.file = testConfig(c.gen, specs...)
	}
	c.what = "reload " + kind
	if c.app != "" {
		c.what += " of web"
	}
	// Every reload supersedes or follows the ones before it; a full one
	// rolls out every app.
	md.disturb(c.app)
	for _, s := range md.specs {
		c.epochs[s.name] = md.epoch[s.name]
	}
	if !withReply {
		w.tracef("SIGHUP (%s)", kind)
		if c.app == "" {
			w.handle(ReloadRequested{})
			return
		}
	}
	c.reply = make(chan status.ReloadResult, 1)
	md.calls = append(md.calls, c)
	w.tracef("clusterrun %s", c.what)
	w.handle(ReloadRequested{App: c.app, Reply: c.reply})
}

func (md *model) restart(i int, app string, inst int) {
	w, m := md.world, md.m
	// A restart asked while a reload is read, or that joins a rollout
	// under way, shares what happens to that reload.
	a := m.app(app)
	c := &rcall{what: "restart " + app, app: app, inst: inst, epochs: map[string]int{}, reply: make(chan status.ReloadResult, 1), step: i,
		since: m.nextID, racing: len(w.loads) > 0 || m.loading != nil || len(m.queue) > 0 || a != nil && a.rollout != nil ||
			a != nil && a.rel.App.Command[0] == "crash"}
	switch {
	case m.phase != running:
		c.refuse = errStopped.Error()
	case a.state != appRunning:
		c.refuse = "is not running"
	case inst >= len(a.slots):
		c.refuse = fmt.Sprintf("has instances 0 to %d", len(a.slots)-1)
	}
	if inst >= 0 {
		c.what += fmt.Sprintf(".%d", inst)
	}
	md.disturb(app)
	for _, s := range md.specs {
		c.epochs[s.name] = md.epoch[s.name]
	}
	md.calls = append(md.calls, c)
	w.tracef("clusterrun %s", c.what)
	w.handle(RestartRequested{App: app, Instance: inst, Reply: c.reply})
}

// collect picks up answers, and checks each the moment it arrives.
func (md *model) collect(i int) {
	for _, c := range md.calls {
		if c.res != nil {
			continue
		}
		select {
		case res := <-c.reply:
			c.res = &res
			md.tracef("  answer to %s: %q, err %v", c.what, res.Summary, res.Err)
			md.checkAnswer(c)
		default:
		}
	}
}

// check verifies the invariants that hold after every event.
func (md *model) check(when string) bool {
	w, m := md.world, md.m
	// Every live instance is in exactly one place, in a state that fits it.
	seen := map[InstanceID]string{}
	place := func(in *instance, where string, loc location) bool {
		if in == nil {
			return true
		}
		if prev, dup := seen[in.id]; dup {
			return md.ok("placement", false, "%s: instance %d is both %s and %s", when, in.id, prev, where)
		}
		seen[in.id] = where
		return md.ok("placement", in.loc == loc && loc.fits(in.state) && m.live[in.id] == in && (loc != locDraining || in.intent != undecided),
			"%s: %s (id %d) is %s with intent %s in place %s (loc %s, live %v)", when, in.label(), in.id, in.state, in.intent, where, in.loc, m.live[in.id] == in)
	}
	for _, a := range m.apps {
		for _, s := range a.slots {
			ok := !s.retired && (s.state == slotUp) == (s.cur != nil) && (s.next == nil || s.cur != nil) &&
				(s.state == slotBackoff) == (s.backoff.t != nil)
			if !md.ok("placement", ok, "%s: slot %s is %s (retired %v) with cur %v, next %v, backoff armed %v", when, s.label(), s.state,
				s.retired, s.cur != nil, s.next != nil, s.backoff.t != nil) {
				return false
			}
			if !place(s.cur, s.label()+" cur", locCur) || !place(s.next, s.label()+" next", locNext) {
				return false
			}
		}
		for _, in := range a.draining {
			if !place(in, a.name+" draining", locDraining) {
				return false
			}
		}
	}
	if len(seen) != len(m.live) {
		var lost []string
		for id, in := range m.live {
			if _, ok := seen[id]; !ok {
				lost = append(lost, fmt.Sprintf("%s id %d %s loc %s retired %v", in.label(), id, in.state, in.loc, in.slot.retired))
			}
		}
		return md.ok("placement", false, "%s: %d live instances, %d placed; not placed: %s", when, len(m.live), len(seen), strings.Join(lost, ", "))
	}
	// The machine and the world agree on which processes exist.
	for id, in := range m.live {
		p := w.procs[id]
		if !md.ok("machine and world agree", p != nil && ((in.state == stSpawning) != p.spawned || p.spawned && !p.alive),
			"%s: machine has %s (id %d) %s, the world's process: %+v", when, in.label(), id, in.state, p) {
			return false
		}
	}
	for id, p := range w.procs {
		if !md.ok("machine and world agree", m.live[id] != nil, "%s: process id %d (%s) is unknown to the machine", when, id, p.app()) {
			return false
		}
	}
	// What subscribers were told is what is routable.
	for id, in := range m.live {
		want := in.state == stReady && in.loc == locCur && in.healthy() && in.intent == undecided
		if !md.ok("routable as published", w.routable[id] == want, "%s: %s (id %d) routable per events %v, per state %v", when, in.label(), id, w.routable[id], want) {
			return false
		}
	}
	for id := range w.routable {
		if !md.ok("routable as published", m.live[id] != nil, "%s: id %d still routable after it was gone", when, id) {
			return false
		}
	}
	// A probe runs only for a live process, and only while it is wanted.
	for id, probe := range w.probes {
		in := m.live[id]
		ok := in != nil && (strings.HasPrefix(probe, "ready ") && in.state == stStarting || strings.HasPrefix(probe, "health ") && in.state == stReady)
		if !md.ok("probes only while wanted", ok, "%s: a probe (%s) of %d runs, which is %v", when, probe, id, in) {
			return false
		}
	}
	// Every armed timer belongs to something alive.
	for _, t := range w.activeTimers() {
		tf := t.ev.(timerFired)
		ok := tf.in != nil && m.live[tf.in.id] == tf.in || tf.s != nil && tf.s.state == slotBackoff && !tf.s.retired
		if !md.ok("timers belong to the living", ok, "%s: a %s timer of something gone is armed", when, tf.kind) {
			return false
		}
	}
	// Every app wants the count the three-way rule gives it.
	for _, a := range m.apps {
		if !md.ok("count: desired as decided", a.want == md.want[a.name], "%s: %s wants %d instances (from %s), the model expects %d",
			when, a.name, a.want, a.wantFrom, md.want[a.name]) {
			return false
		}
	}
	return !md.failed
}

var summaryCount = regexp.MustCompile(`(\d+) of (\d+) instances`)

// checkAnswer: the answer to a reload or restart says what happened to it,
// and an undisturbed one succeeds.
func (md *model) checkAnswer(c *rcall) bool {
	res := c.res
	undisturbed := !c.racing
	for app, e := range c.epochs {
		if md.epoch[app] != e && (c.app == "" || c.app == app || app == "db") {
			undisturbed = false
		}
	}
	for _, sm := range summaryCount.FindAllStringSubmatch(res.Summary, -1) {
		n, _ := strconv.Atoi(sm[1])
		of, _ := strconv.Atoi(sm[2])
		md.ok("answer: N of M with N <= M", n <= of, "%s: answered %q", c.what, res.Summary)
	}
	if errors.Is(res.Err, errStopped) {
		return md.ok("answer: a refusal is true", md.drained, "%s: answered %v, but the runner is not stopping", c.what, res.Err)
	}
	if c.kind == "" {
		refused := res.Err != nil && len(res.Apps) == 0
		md.ok("answer: a refusal is true", refused == (c.refuse != "") && (!refused || strings.Contains(res.Err.Error(), c.refuse)),
			"%s: answered %q, %v; want it refused with %q", c.what, res.Summary, res.Err, c.refuse)
		if refused {
			return true
		}
	}
	if res.Err != nil && len(res.Apps) == 0 {
		md.ok("answer: rejected means broken", strings.Contains(res.Err.Error(), "rejected") && md.lastBroken,
			"%s: failed without a word about any app, and the file it read was valid: %v", c.what, res.Err)
		return true
	}
	if c.kind == "broken" && undisturbed {
		return md.ok("answer: rejected means broken", false, "%s: answered %q, %v; want a rejection", c.what, res.Summary, res.Err)
	}
	for _, ar := range res.Apps {
		a := md.m.app(ar.App)
		if a == nil || a.state != appRunning {
			continue
		}
		appUndisturbed := c.epochs[ar.App] == md.epoch[ar.App]
		switch ar.Outcome {
		case status.ReloadCompleted:
			if c.kind == "" {
				// A restart's "complete": every slot it names runs a process
				// started after it was asked.
				for _, s := range a.slots {
					if s.cur != nil && (c.inst < 0 || s.index == c.inst) {
						md.ok("restart: complete means new processes", s.cur.id > c.since,
							"%s: says complete, but %s runs id %d, started before the restart (last id then %d)", c.what, s.label(), s.cur.id, c.since)
					}
				}
			}
			if appUndisturbed {
				// It may have changed since it completed.
				for _, s := range a.slots {
					md.ok("answer: completed means on its release", s.rel.Gen == ar.Release,
						"%s: says %s completed release %d, but %s has release %d", c.what, ar.App, ar.Release, s.label(), s.rel.Gen)
				}
			}
			if c.kind == "crash" && ar.App == "web" && undisturbed {
				md.ok("answer: undisturbed succeeds", false, "%s: a crash-on-boot release completed", c.what)
			}
		case status.ReloadAborted:
			if c.kind != "" {
				md.ok("answer: aborted is not the newest", a.rel.Gen != ar.Release, "%s: says %s aborted release %d, which is still its newest", c.what, ar.App, ar.Release)
			}
		}
	}
	if undisturbed && (c.kind == "good" || c.kind == "slow" || c.kind == "") {
		md.ok("answer: undisturbed succeeds", res.Err == nil, "%s: nothing disturbed it, yet it answered %q, %v", c.what, res.Summary, res.Err)
	}
	return !md.failed
}

// settle runs benign steps until nothing is pending.
func (md *model) settle() {
	for i := 0; i < 20000; i++ {
		if !md.benignStep() {
			return
		}
		md.collect(-1)
		if !md.check("while settling") {
			md.t.FailNow()
		}
	}
	var why []string
	for _, in := range md.m.live {
		if in.state != stReady {
			why = append(why, fmt.Sprintf("%s id %d %s loc %s", in.label(), in.id, in.state, in.loc))
		}
	}
	for _, a := range md.m.apps {
		why = append(why, fmt.Sprintf("app %s %s rollout %v", a.name, a.state, a.rollout != nil))
		if ro := a.rollout; ro != nil {
			why = append(why, fmt.Sprintf("rollout %s waiting %v queue %v deferred %v inflight %d stopFirst %v", ro.kind, ro.waiting, ro.queue, ro.deferred, len(ro.inflight), ro.stopFirst))
		}
		for _, s := range a.slots {
			why = append(why, fmt.Sprintf("  %s %s", s.label(), s.state))
		}
	}
	md.t.Fatalf("did not settle in 20000 steps: loads %d loading %v queue %d spawns %d; %s", len(md.loads), md.m.loading != nil, len(md.m.queue), len(md.spawns), strings.Join(why, "; "))
}

// checkQuiet: with nothing pending, every app has its desired number of
// instances, all ready and on the app's newest accepted release; a slot
// gives up only after its app had failures.
func (md *model) checkQuiet() bool {
	m := md.m
	for _, a := range m.apps {
		if a.state != appRunning {
			continue
		}
		md.ok("quiet: count and release", len(a.slots) == a.want, "at quiescence: %s has %d slots, wants %d", a.name, len(a.slots), a.want)
		for _, s := range a.slots {
			switch s.state {
			case slotUp:
				md.ok("quiet: count and release", s.cur.state == stReady && s.next == nil && (s.cur.rel == a.rel || a.mixed),
					"at quiescence: %s is %s with a replacement %v, release %d of %d", s.label(), s.cur.state, s.next != nil, s.cur.rel.Gen, a.rel.Gen)
			case slotFailed:
				md.ok("quiet: failed only after a failure", md.failures[a.name] || md.crashRelease[a.name],
					"at quiescence: %s failed though nothing of %s crashed or failed", s.label(), a.name)
			default:
				md.ok("quiet: count and release", false, "at quiescence: %s is %s", s.label(), s.state)
			}
		}
	}
	for _, c := range md.calls {
		md.ok("quiet: count and release", c.res != nil, "at quiescence: %s was never answered", c.what)
	}
	return !md.failed
}

// checkDrained: after the drain, no process, no timer, no pending start,
// and every caller answered.
func (md *model) checkDrained() bool {
	w, m := md.world, md.m
	md.collect(-1)
	unanswered := 0
	for _, c := range md.calls {
		if c.res == nil {
			unanswered++
		}
	}
	left := 0
	for _, p := range w.procs {
		if p.alive || !p.spawned {
			left++
		}
	}
	return md.ok("drained: nothing left", m.finished && left == 0 && len(w.activeTimers()) == 0 && len(w.spawns) == 0 && len(w.routable) == 0 && unanswered == 0,
		"after the drain: finished %v (phase %s), %d processes, %d timers, %d starts, %d routable, %d unanswered", m.finished, m.phase,
		left, len(w.activeTimers()), len(w.spawns), len(w.routable), unanswered)
}

func TestModelTraceIsReadable(t *testing.T) {
	// A sanity check of the harness itself: a plain start and drain.
	w := newWorld(t, 1)
	w.start(testConfig(1, appSpec{name: "web", kind: "good", instances: 2}))
	w.runUntilQuiet(100)
	if n := len(w.live("web")); n != 2 {
		t.Fatalf("%d web processes, want 2", n)
	}
	w.handle(DrainRequested{Signal: syscall.SIGTERM})
	w.runUntilQuiet(100)
	if done, code := w.m.Finished(); !done || code != 0 {
		t.Fatalf("finished %v code %d; log:\n%s", done, code, strings.Join(w.logs, "\n"))
	}
}
