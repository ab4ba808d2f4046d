package runner

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/sdnotify"
	"github.com/clusterrun/clusterrun/status"
)

var (
	modelSeeds  = flag.Int("model.seeds", 3000, "how many random event sequences TestModel runs")
	modelEvents = flag.Int("model.events", 50, "events per sequence")
	modelSeed   = flag.Int64("model.seed", -1, "run only this seed (a failing one), printing its events")
)

// TestModel drives the real supervisor with fake processes and a fake clock
// through random sequences of events — crashes, hangs, STOPPING=1, READY=1,
// ready timeouts, reloads of good, broken, crash-on-boot and slow-booting
// releases, restarts, stop, start, scale, SIGTERM and a second SIGTERM —
// and checks its invariants after every step, once things have settled,
// and after the final drain. A failing seed prints the events that
// reproduce it: go test ./runner -run TestModel -model.seed=N -v
func TestModel(t *testing.T) {
	if *modelSeed >= 0 {
		runModel(t, uint64(*modelSeed), *modelEvents, true)
		return
	}
	seeds := *modelSeeds
	if testing.Short() {
		seeds = 300
	}
	for seed := 0; seed < seeds; seed++ {
		if !runModel(t, uint64(seed), *modelEvents, false) {
			return
		}
	}
	t.Logf("%d seeds × %d events", seeds, *modelEvents)
}

// model is one random run: the world, the apps as the test means them, and
// what it expects of every reload it asked for.
type model struct {
	*world
	gen   int
	specs []appSpec
	calls []*rcall
	// epoch counts disturbances per app: crashes, STOPPING=1, hangs, user
	// commands. A rollout is held to "never fewer ready instances" only
	// while its app's epoch has not moved.
	epoch    map[string]int
	crashed  map[string]bool
	watching map[string]*watch
	drained  bool
}

// rcall is one reload or restart the test asked for and awaits.
type rcall struct {
	what   string // "reload good", "restart web.1", …
	app    string // the app it concerns ("" = all)
	kind   string // release kind delivered: good, slow, crash, broken; "" for restarts
	gen    int
	epochs map[string]int
	reply  chan status.ReloadResult
	res    *status.ReloadResult
	step   int
	// racing: asked while a reload was being read, which may supersede it.
	racing bool
}

// watch follows one rollout for the ready-count invariant.
type watch struct {
	ro    *rollout
	epoch int
	floor int
}

func runModel(t *testing.T, seed uint64, events int, verbose bool) (ok bool) {
	w := newWorld(t, seed)
	md := &model{world: w, epoch: map[string]int{}, crashed: map[string]bool{}, watching: map[string]*watch{}}
	md.specs = []appSpec{
		{name: "db", kind: "good", instances: 1},
		{name: "web", kind: "good", instances: 3, parallel: 1 + w.rng.IntN(2), dependsOn: []string{"db"}},
		{name: "worker", kind: "good", instances: 2, delay: true, watchdog: true, stopFirst: w.rng.IntN(2) == 0},
		{name: "api", kind: "good", instances: 2, probed: true},
	}
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("seed %d: panic: %v", seed, r)
			ok = false
		}
		if !ok || verbose {
			t.Logf("seed %d, events:\n%s", seed, strings.Join(w.trace, "\n"))
			if !ok {
				t.Logf("reproduce with: go test ./runner -run TestModel -model.seed=%d -v", seed)
			}
		}
	}()
	w.start(testConfig(md.nextGen(), md.specs...))
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

// step takes one random event.
func (md *model) step(i int) {
	w := md.world
	r := w.rng.IntN(100)
	live := md.liveProcs()
	switch {
	case r < 18 && len(w.spawns) > 0:
		fail := w.rng.IntN(40) == 0
		idx := w.rng.IntN(len(w.spawns))
		if fail {
			md.disturb(w.procs[w.spawns[idx]].app())
		}
		w.spawn(idx, fail)
	case r < 32 && len(live) > 0:
		// READY=1 from a process that may be ready.
		p := live[w.rng.IntN(len(live))]
		if p.req.Rel.App.Ready.Check == "notify" && w.canBeReady(p) && p.signalled == 0 {
			p.sentReady = true
			w.notify(p, "READY=1")
		}
	case r < 38 && len(live) > 0:
		// A crash; processes of a crash-on-boot release crash first.
		p := live[w.rng.IntN(len(live))]
		for _, q := range live {
			if q.kind == "crash" {
				p = q
				break
			}
		}
		md.disturb(p.app())
		md.crashed[p.app()] = true
		w.exit(p, proc.Status{Code: 1 + w.rng.IntN(3)})
	case r < 41 && len(live) > 0:
		p := live[w.rng.IntN(len(live))]
		md.disturb(p.app())
		p.hung = true
		w.tracef("%s.%d pid %d hangs (ignores SIGTERM)", p.app(), p.req.Index, p.pid)
	case r < 44 && len(live) > 0:
		p := live[w.rng.IntN(len(live))]
		md.disturb(p.app())
		w.notify(p, "STOPPING=1")
	case r < 46 && len(live) > 0:
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
	case r < 48 && len(live) > 0:
		// A probe answers: a ready probe passes, or a health check passes
		// or fails.
		p := live[w.rng.IntN(len(live))]
		switch probe := w.probes[p.id]; {
		case strings.HasPrefix(probe, "ready ") && w.canBeReady(p) && p.signalled == 0:
			p.sentReady = true
			w.tracef("%s.%d pid %d answers its ready probe", p.app(), p.req.Index, p.pid)
			w.handle(ProbeResult{ID: p.id, OK: true})
		case strings.HasPrefix(probe, "health "):
			ok := w.rng.IntN(3) > 0
			if !ok {
				md.disturb(p.app())
			}
			w.tracef("%s.%d pid %d health check ok=%v", p.app(), p.req.Index, p.pid, ok)
			w.handle(ProbeResult{ID: p.id, Health: true, OK: ok, Detail: "status 503"})
		}
	case r < 49 && len(w.quiescing) > 0:
		// The proxy reports an instance quiesced, in any order; some
		// never are (a connection that stays busy), and the machine's
		// quiesce timeout must signal them anyway.
		if i := w.rng.IntN(len(w.quiescing)); w.rng.IntN(4) > 0 {
			w.quiesce(i)
		} else {
			w.tracef("quiesce of %d never comes", w.quiescing[i])
			w.quiescing = slices.Delete(w.quiescing, i, i+1)
		}
	case r < 50 && len(live) > 0:
		// Feed the watchdog of a worker, or let time pass without it.
		p := live[w.rng.IntN(len(live))]
		w.handle(Notified{ID: p.id, Msg: sdnotify.Message{Watchdog: true}})
	case r < 62:
		md.fireTimer()
	case r < 70:
		md.reload(i, w.rng.IntN(3) == 0)
	case r < 74 && len(w.loads) > 0:
		w.deliverLoad()
	case r < 78:
		app := []string{"web", "worker", "db", "api"}[w.rng.IntN(4)]
		inst := -1
		if w.rng.IntN(2) == 0 {
			inst = w.rng.IntN(3)
		}
		md.restart(i, app, inst)
	case r < 82:
		n := []string{"+1", "-1", "2", "4"}[w.rng.IntN(4)]
		md.disturb("web")
		reply := make(chan ScaleResult, 1)
		w.tracef("scale web %s", n)
		w.handle(ScaleRequested{App: "web", Spec: n, Reply: reply})
		res := <-reply
		w.tracef("  -> %d %v", res.N, res.Err)
	case r < 85:
		app := []string{"web", "worker", "api"}[w.rng.IntN(3)]
		md.disturb(app)
		reply := make(chan error, 1)
		w.tracef("stop %s", app)
		w.handle(StopRequested{App: app, Reply: reply})
		w.tracef("  -> %v", <-reply)
	case r < 89:
		app := []string{"web", "worker", "api"}[w.rng.IntN(3)]
		md.disturb(app)
		reply := make(chan error, 1)
		w.tracef("start %s", app)
		w.handle(StartRequested{App: app, Reply: reply})
		w.tracef("  -> %v", <-reply)
	case r < 91:
		md.disturb("")
		md.drained = true
		w.tracef("SIGTERM")
		w.handle(DrainRequested{Signal: syscall.SIGTERM})
	case r < 92 && md.drained:
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
	ts := md.activeTimers()
	if len(ts) == 0 {
		return
	}
	next := ts[0]
	for _, t := range ts[1:] {
		if t.at.Before(next.at) {
			next = t
		}
	}
	if tf := next.ev.(timerFired); tf.in != nil {
		switch tf.kind {
		case tReadyTimeout, tStop, tWatchdog:
			md.disturb(tf.in.slot.app.name)
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

// reload queues a config of a random kind and asks for a reload, by
// SIGHUP or (withReply) as `clusterrun reload [web]`.
func (md *model) reload(i int, withReply bool) {
	w := md.world
	kind := []string{"good", "good", "slow", "crash", "broken"}[w.rng.IntN(5)]
	c := &rcall{kind: kind, epochs: map[string]int{}, step: i}
	if w.rng.IntN(3) == 0 {
		c.app = "web"
	}
	if kind == "broken" {
		w.file = nil
	} else {
		specs := slices.Clone(md.specs)
		for j := range specs {
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
	w := md.world
	// A restart asked while a reload is read, or that joins a rollout
	// under way, shares what happens to that reload.
	a := md.m.app(app)
	c := &rcall{what: "restart " + app, app: app, epochs: map[string]int{}, reply: make(chan status.ReloadResult, 1), step: i,
		racing: len(w.loads) > 0 || md.m.loading != nil || len(md.m.queue) > 0 || a != nil && a.rollout != nil ||
			a != nil && a.rel.App.Command[0] == "crash"}
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

// fail records a broken invariant.
func (md *model) fail(format string, args ...any) bool {
	md.t.Errorf(format, args...)
	return false
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
			return md.fail("%s: instance %d is both %s and %s", when, in.id, prev, where)
		}
		seen[in.id] = where
		if in.loc != loc || !loc.fits(in.state) {
			return md.fail("%s: %s (id %d) is %s in place %s (loc %s)", when, in.label(), in.id, in.state, where, in.loc)
		}
		if m.live[in.id] != in {
			return md.fail("%s: %s (id %d) is %s but not live", when, in.label(), in.id, where)
		}
		return true
	}
	for _, a := range m.apps {
		for _, s := range a.slots {
			if s.retired {
				return md.fail("%s: retired slot %s still in its app", when, s.label())
			}
			if (s.state == slotUp) != (s.cur != nil) {
				return md.fail("%s: slot %s is %s with cur %v", when, s.label(), s.state, s.cur != nil)
			}
			if s.next != nil && s.cur == nil {
				return md.fail("%s: slot %s has a replacement but nothing to replace", when, s.label())
			}
			if (s.state == slotBackoff) != (s.backoff.t != nil) {
				return md.fail("%s: slot %s is %s, backoff armed %v", when, s.label(), s.state, s.backoff.t != nil)
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
		return md.fail("%s: %d live instances, %d placed; not placed: %s", when, len(m.live), len(seen), strings.Join(lost, ", "))
	}
	// The machine and the world agree on which processes exist.
	for id, in := range m.live {
		p := w.procs[id]
		if p == nil {
			return md.fail("%s: machine has %s (id %d), the world has no such process", when, in.label(), id)
		}
		if (in.state == stSpawning) == p.spawned && !(p.spawned && !p.alive) {
			return md.fail("%s: %s (id %d) is %s but the process spawned=%v", when, in.label(), id, in.state, p.spawned)
		}
	}
	for id, p := range w.procs {
		if m.live[id] == nil {
			return md.fail("%s: process id %d (%s) is unknown to the machine", when, id, p.app())
		}
	}
	// What subscribers were told is what is routable.
	for id, in := range m.live {
		want := in.state == stReady && in.loc == locCur && in.healthy() && in.intent == undecided
		if w.routable[id] != want {
			return md.fail("%s: %s (id %d) routable per events %v, per state %v", when, in.label(), id, w.routable[id], want)
		}
	}
	for id := range w.routable {
		if m.live[id] == nil {
			return md.fail("%s: id %d still routable after it was gone", when, id)
		}
	}
	// A probe runs only for a live process, and only while it is wanted.
	for id, probe := range w.probes {
		in := m.live[id]
		if in == nil {
			return md.fail("%s: a probe (%s) of a gone process %d is still running", when, probe, id)
		}
		if strings.HasPrefix(probe, "ready ") && in.state != stStarting || strings.HasPrefix(probe, "health ") && in.state != stReady {
			return md.fail("%s: %s is %s with a %s probe running", when, in.label(), in.state, probe)
		}
	}
	// Every armed timer belongs to something alive.
	for _, t := range w.activeTimers() {
		tf := t.ev.(timerFired)
		if tf.in != nil && m.live[tf.in.id] != tf.in {
			return md.fail("%s: a %s timer of a gone instance %s is armed", when, tf.kind, tf.in.label())
		}
		if tf.s != nil && (tf.s.state != slotBackoff || tf.s.retired) {
			return md.fail("%s: a backoff timer of %s (%s) is armed", when, tf.s.label(), tf.s.state)
		}
	}
	// A rollout never lowers the ready count below what it was, unless
	// something disturbed the app.
	for _, a := range m.apps {
		ro := a.rollout
		wt := md.watching[a.name]
		if ro == nil || ro.stopFirst {
			delete(md.watching, a.name)
			continue
		}
		if wt == nil || wt.ro != ro {
			md.watching[a.name] = &watch{ro: ro, epoch: md.epoch[a.name], floor: min(md.routableOf(a), a.want)}
			continue
		}
		if wt.epoch == md.epoch[a.name] && md.routableOf(a) < wt.floor {
			return md.fail("%s: %s's rollout lowered its ready instances from %d to %d", when, a.name, wt.floor, md.routableOf(a))
		}
	}
	return true
}

func (md *model) routableOf(a *app) int {
	n := 0
	for id, in := range md.m.live {
		if in.slot.app == a && md.routable[id] {
			n++
		}
	}
	return n
}

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
	if errors.Is(res.Err, errStopped) {
		if !md.drained {
			return md.fail("%s: answered %v, but the runner is not stopping", c.what, res.Err)
		}
		return true
	}
	if res.Err != nil && len(res.Apps) == 0 {
		switch {
		case strings.Contains(res.Err.Error(), "rejected"):
			if !md.lastBroken {
				return md.fail("%s: rejected, but the file it read was valid", c.what)
			}
		case c.kind == "":
			// A restart refused at once (no such instance, not running).
		default:
			return md.fail("%s: failed without a word about any app: %v", c.what, res.Err)
		}
		return true
	}
	if c.kind == "broken" && undisturbed {
		return md.fail("%s: answered %q, %v; want a rejection", c.what, res.Summary, res.Err)
	}
	for _, ar := range res.Apps {
		a := md.m.app(ar.App)
		if a == nil || a.state != appRunning {
			continue
		}
		appUndisturbed := c.epochs[ar.App] == md.epoch[ar.App]
		switch ar.Outcome {
		case status.ReloadCompleted:
			for _, s := range a.slots {
				if !appUndisturbed {
					break // it may have changed since it completed
				}
				if s.rel.Gen != ar.Release {
					return md.fail("%s: says %s completed release %d, but %s has release %d", c.what, ar.App, ar.Release, s.label(), s.rel.Gen)
				}
			}
			if c.kind == "crash" && ar.App == "web" && undisturbed {
				return md.fail("%s: a crash-on-boot release completed", c.what)
			}
		case status.ReloadAborted:
			if c.kind != "" && a.rel.Gen == ar.Release {
				return md.fail("%s: says %s aborted release %d, which is still its newest", c.what, ar.App, ar.Release)
			}
		}
	}
	if res.Err != nil && undisturbed && (c.kind == "good" || c.kind == "slow" || c.kind == "") {
		return md.fail("%s: nothing disturbed it, yet it answered %q, %v", c.what, res.Summary, res.Err)
	}
	return true
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
// instances, all ready and on the app's newest accepted release.
func (md *model) checkQuiet() bool {
	m := md.m
	for _, a := range m.apps {
		if a.state != appRunning {
			continue
		}
		if len(a.slots) != a.want {
			return md.fail("at quiescence: %s has %d slots, wants %d", a.name, len(a.slots), a.want)
		}
		for _, s := range a.slots {
			switch s.state {
			case slotUp:
				if s.cur.state != stReady || s.next != nil {
					return md.fail("at quiescence: %s is %s with a replacement %v", s.label(), s.cur.state, s.next != nil)
				}
				if s.cur.rel != a.rel && !a.mixed {
					return md.fail("at quiescence: %s runs release %d, the app's newest is %d", s.label(), s.cur.rel.Gen, a.rel.Gen)
				}
			case slotFailed:
				if !md.crashed[a.name] && !strings.HasPrefix(a.rel.App.Command[0], "crash") && !md.anyCrashRelease(a.name) {
					return md.fail("at quiescence: %s failed though nothing crashed", s.label())
				}
			default:
				return md.fail("at quiescence: %s is %s", s.label(), s.state)
			}
		}
	}
	for _, c := range md.calls {
		if c.res == nil {
			return md.fail("at quiescence: %s was never answered", c.what)
		}
	}
	return true
}

func (md *model) anyCrashRelease(app string) bool {
	for _, c := range md.calls {
		if c.kind == "crash" {
			return true
		}
	}
	return strings.Contains(strings.Join(md.trace, "\n"), "SIGHUP (crash)")
}

// checkDrained: after the drain, no process, no timer, no pending start,
// and every caller answered.
func (md *model) checkDrained() bool {
	w, m := md.world, md.m
	if !m.finished {
		return md.fail("after the drain: the runner has not finished (phase %s, %d live)", m.phase, len(m.live))
	}
	for _, p := range w.procs {
		if p.alive || !p.spawned {
			return md.fail("after the drain: process %s id %d is left (alive %v)", p.app(), p.id, p.alive)
		}
	}
	if n := len(w.activeTimers()); n > 0 {
		return md.fail("after the drain: %d timers are still armed", n)
	}
	if len(w.spawns) > 0 {
		return md.fail("after the drain: %d starts still pending", len(w.spawns))
	}
	if len(w.routable) > 0 {
		return md.fail("after the drain: %d instances still routable", len(w.routable))
	}
	md.collect(-1)
	for _, c := range md.calls {
		if c.res == nil {
			return md.fail("after the drain: %s was never answered", c.what)
		}
	}
	return true
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
	_ = time.Second
}
