package runner

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/status"
)

// rolloutKind says what a rollout is for.
type rolloutKind int

const (
	kindReload   rolloutKind = iota // a reload rolls out a new release
	kindRestart                     // clusterrun restart replaces instances with the same release
	kindRollback                    // an aborted reload puts the previous release back
)

var kindNames = [...]string{"reload", "restart", "rollback"}

func (k rolloutKind) String() string { return kindNames[k] }

// rollout replaces an app's instances one slot at a time (reload.parallel
// at a time): start the new process, wait until it is ready, stop the old
// one (or, for stop-first apps, stop the old one and start the new one once
// it has exited).
type rollout struct {
	kind   rolloutKind
	target *Release
	// queue holds the slots still to replace, in order; deferred those that
	// wait for a replacement of another kind to finish first.
	queue, deferred []step
	// inflight are the slots whose replacement is under way, each with the
	// last instance id before its step began: only a process started
	// after that (an id above it) completes the step, never the process
	// being replaced, though a restart's may run the very same release.
	inflight map[*slot]InstanceID
	// waiting: an app it depends on is still rolling out.
	waiting   bool
	stopFirst bool
	started   time.Time
	// done are the slots whose step completed.
	done map[*slot]bool
	// waiters are the reload and restart requests whose answer depends on
	// how this rollout ends.
	waiters []*request
}

// step is one slot to replace. A reload skips a slot that already runs its
// release (a scale up started it so); force, for a restart, replaces it
// anyway.
type step struct {
	index int
	force bool
}

// completes reports whether in (nil: anything) finishes slot s's step: s is
// in flight, and in is a process of the rollout's release started for it.
func (ro *rollout) completes(s *slot, in *instance) bool {
	if ro == nil {
		return false
	}
	since, ok := ro.inflight[s]
	return ok && (in == nil || in.id > since && in.rel == ro.target)
}

func (ro *rollout) covers(index int) bool {
	return ro.queued(index) || ro.inflightAt(index) != nil
}

// queued: a step for index waits in the queue (or deferred): it starts a
// process later.
func (ro *rollout) queued(index int) bool {
	has := func(st step) bool { return st.index == index }
	return slices.ContainsFunc(ro.queue, has) || slices.ContainsFunc(ro.deferred, has)
}

// inflightAt returns the slot numbered index if its step is under way.
func (ro *rollout) inflightAt(index int) *slot {
	for s := range ro.inflight {
		if s.index == index {
			return s
		}
	}
	return nil
}

// progress counts the slots of a that the rollout replaced, and the slots
// it covers (replaced, under way or queued): each slot once, however many
// steps it took, and only slots a still has.
func (ro *rollout) progress(a *app) (replaced, total int) {
	for _, s := range a.slots {
		switch {
		case ro.done[s]:
			replaced++
			total++
		case ro.covers(s.index):
			total++
		}
	}
	return replaced, total
}

// request is one reload or restart that someone waits for (Reply set), or
// a SIGHUP (Reply nil). Its answer is given once every app it touched has
// finished, aborted or given up its rollout.
type request struct {
	kind rolloutKind
	app  string // "" = every app
	// idx, for a restart, are the instance numbers it replaces (nil: all).
	idx     []int
	reply   chan<- status.ReloadResult
	pending map[*app]bool
	notes   []string
	apps    []status.AppResult
	failed  bool
	done    bool
}

func (m *Machine) onReloadRequested(ev ReloadRequested) {
	if m.phase != running {
		if ev.Reply == nil {
			m.log.Printf("received SIGHUP while stopping: ignored")
		} else {
			ev.Reply <- status.ReloadResult{Err: errStopped}
		}
		return
	}
	if ev.Reply == nil {
		m.log.Printf("received SIGHUP: reloading %s", m.cfg.Path)
	} else if ev.App != "" {
		m.log.Printf("reloading %s from %s (clusterrun reload)", ev.App, m.cfg.Path)
	} else {
		m.log.Printf("reloading %s (clusterrun reload)", m.cfg.Path)
	}
	m.queue = append(m.queue, &request{kind: kindReload, app: ev.App, reply: ev.Reply, pending: map[*app]bool{}})
	m.emit(status.Lifecycle{Kind: status.ReloadBegan, Time: m.clock.Now(), App: ev.App, Instance: -1})
	m.startLoad()
}

// startLoad reads the file for the next batch of queued requests: each of
// them asked for the file as it is after its request, so they share the
// next read. A full reload covers every app, so when one is queued the
// whole queue goes in one batch; otherwise the requests for the app at the
// head of the queue do.
func (m *Machine) startLoad() {
	if m.loading != nil || len(m.queue) == 0 {
		return
	}
	app := m.queue[0].app
	if slices.ContainsFunc(m.queue, func(r *request) bool { return r.app == "" }) {
		app = ""
	}
	var rest []*request
	for _, r := range m.queue {
		if app == "" || r.app == app {
			m.loading = append(m.loading, r)
		} else {
			rest = append(rest, r)
		}
	}
	m.queue = rest
	m.loadSeq++
	m.loader.Load(m.loadSeq)
}

// forApp returns the requests of batch that concern app.
func forApp(batch []*request, app string) []*request {
	var out []*request
	for _, r := range batch {
		if r.app == "" || r.app == app {
			out = append(out, r)
		}
	}
	return out
}

func (m *Machine) onLoaded(ev Loaded) {
	if ev.Seq != m.loadSeq || m.loading == nil {
		return // read for requests already answered (the runner began to drain)
	}
	batch := m.loading
	m.loading = nil
	defer m.startLoad()
	if ev.Err != nil {
		m.counters.Reloads[status.ReloadRejected]++
		m.emit(status.Lifecycle{Kind: status.Rejected, Time: m.clock.Now(), Instance: -1, Detail: ev.Err.Error()})
		m.log.Printf("reload rejected; everything keeps running as it was:")
		for _, line := range strings.Split(ev.Err.Error(), "\n") {
			m.log.Printf("  %s", line)
		}
		for _, r := range batch {
			m.answer(r, status.ReloadResult{Err: fmt.Errorf("reload rejected; everything keeps running as it was:\n%w", ev.Err)})
		}
		return
	}
	if err := m.apply(ev.Config, ev.Creds, batch); err != nil {
		m.counters.Reloads[status.ReloadRejected]++
		m.emit(status.Lifecycle{Kind: status.Rejected, Time: m.clock.Now(), Instance: -1, Detail: err.Error()})
		m.log.Printf("reload rejected; everything keeps running as it was: %v", err)
		for _, r := range batch {
			m.answer(r, status.ReloadResult{Err: err})
		}
		return
	}
	for _, r := range batch {
		m.answerIfDone(r)
	}
}

// apply rolls cfg out for batch (all for the same app, or all apps): new
// apps start, removed apps drain, every other app is replaced instance by
// instance. Nothing changes if an error is returned.
func (m *Machine) apply(cfg *hclconfig.Config, creds map[string]*syscall.Credential, batch []*request) error {
	only := batch[0].app
	for _, r := range batch {
		if r.app == "" {
			only = ""
		}
	}
	apps := cfg.Apps
	listeners := cfg.Listeners
	if only != "" {
		ca := cfg.App(only)
		switch {
		case ca == nil && m.app(only) == nil:
			return fmt.Errorf("no app %q in %s", only, cfg.Path)
		case ca == nil:
			return fmt.Errorf("app %q is no longer in %s; reload without an app name to remove it", only, cfg.Path)
		}
		apps = []*hclconfig.App{ca}
		listeners = nil
		for _, n := range ca.Listeners {
			listeners = append(listeners, cfg.Listener(n))
		}
	}
	warnings, err := m.socks.Bind(listeners)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		m.log.Printf("%s", w)
	}
	if only == "" {
		m.cfg = cfg
	}
	for _, ca := range apps {
		a := m.app(ca.Name)
		if a == nil {
			a = m.newApp(ca, cfg, creds[ca.Name])
			m.apps = append(m.apps, a)
			msg := fmt.Sprintf("%s: new app, starting %d instances of release %d", a.name, a.want, a.rel.Gen)
			if a.want == 0 {
				a.state = appStopped
				msg = fmt.Sprintf("%s: new app, not started (up -m gives it no instance)", a.name)
			}
			m.note(forApp(batch, a.name), nil, status.AppResult{App: a.name, Outcome: "started", Release: a.rel.Gen}, msg)
			m.log.Printf("%s: new app", a.name)
			continue
		}
		rel := m.newRelease(a, ca, cfg, creds[ca.Name])
		m.beginRollout(a, rel, kindReload, nil, forApp(batch, a.name))
	}
	if only == "" {
		for _, a := range m.apps {
			if a.state != appRemoved && cfg.App(a.name) == nil {
				m.removeApp(a, cfg.Path, forApp(batch, a.name))
			}
		}
	}
	m.declare()
	m.retainListeners()
	return nil
}

// applyCount applies the three-way rule to a reload's release of a: the
// count changes only when the count the file (or -m) declares for it has
// changed since the last accepted load; otherwise a live scale stays.
func (m *Machine) applyCount(a *app, rel *Release) {
	n, from := m.declaredCount(rel.App)
	if n != a.declared {
		m.setWant(a, n, from)
	}
	a.declared = n
}

// countWhy says where a's count comes from, for the scaling line.
func countWhy(a *app) string {
	switch a.wantFrom {
	case status.CountFormation:
		return fmt.Sprintf("up -m %s=%d", a.name, a.want)
	case status.CountScale:
		return "clusterrun scale, kept: the file's count did not change"
	}
	return fmt.Sprintf("instances = %d in the file", a.want)
}

// removeApp drains an app a reload removed; it is forgotten once drained.
func (m *Machine) removeApp(a *app, path string, batch []*request) {
	why := fmt.Sprintf("%s was removed from %s", a.name, path)
	m.log.Printf("%s: removed from %s; stopping it", a.name, path)
	m.stopApp(a, retired, why)
	m.setApp(a, appRemoved)
	for _, s := range a.slots {
		m.retireSlot(s)
	}
	m.note(batch, nil, status.AppResult{App: a.name, Outcome: "removed"}, a.name+": removed from the file, stopping it")
}

// beginRollout starts replacing a's instances with rel for the waiters in
// reqs; idx, for a restart, limits it to these instance numbers.
func (m *Machine) beginRollout(a *app, rel *Release, kind rolloutKind, idx []int, reqs []*request) {
	if kind == kindReload {
		m.applyCount(a, rel)
	}
	if kind == kindReload && a.state != appRunning {
		// Not running: it takes rel, and its count, when it starts.
		a.rel = rel
		m.note(reqs, nil, status.AppResult{App: a.name, Outcome: "deferred", Release: rel.Gen},
			fmt.Sprintf("%s: %s; it will start with release %d", a.name, m.appStatus(a), rel.Gen))
		return
	}
	var carried []*request
	if old := a.rollout; old != nil {
		if kind == kindRestart {
			// Join the rollout under way: it replaces instances with the
			// app's current release (a reload's new one, a rollback's old
			// one), which is what a restart starts too.
			m.joinRollout(a, idx, reqs)
			return
		}
		// A restart that waits on the rollout a newer reload supersedes
		// goes on with the new one, which starts new processes too.
		old.waiters = slices.DeleteFunc(old.waiters, func(r *request) bool {
			if r.kind == kindRestart && !r.done {
				carried = append(carried, r)
				return true
			}
			return false
		})
		m.endRollout(a, status.ReloadSuperseded, "a newer reload replaces it", nil)
	}
	if kind == kindReload {
		if a.prev == nil {
			a.prev = a.rel
		}
		a.rel = rel
		m.resize(a, countWhy(a))
	}
	ro := &rollout{kind: kind, target: rel, inflight: map[*slot]InstanceID{}, done: map[*slot]bool{}, waiting: kind == kindReload,
		started: m.clock.Now(), stopFirst: stopFirst(rel)}
	if idx == nil {
		for i := range a.slots {
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		ro.queue = append(ro.queue, step{index: i, force: kind == kindRestart})
	}
	m.rolloutBegan(a, ro)
	m.wait(a, reqs)
	for _, r := range carried {
		m.joinRollout(a, r.idx, []*request{r})
	}
}

// joinRollout adds a restart's instances to the rollout under way. A
// restart asks for processes started after it was asked: a slot whose step
// is still queued gets one (forced, so that the rollout does not skip a
// slot that already runs its release), and so does a slot whose new process
// was started before the restart (its step is taken again once done). A
// slot that waits for its old process to exit before it starts the new one
// (stop-first) needs nothing more.
func (m *Machine) joinRollout(a *app, idx []int, reqs []*request) {
	ro := a.rollout
	if idx == nil {
		for i := range a.slots {
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		switch s := ro.inflightAt(i); {
		case ro.queued(i):
			for j := range ro.queue {
				if ro.queue[j].index == i {
					ro.queue[j].force = true
				}
			}
			for j := range ro.deferred {
				if ro.deferred[j].index == i {
					ro.deferred[j].force = true
				}
			}
		case s != nil && !ro.startedFor(s):
		default:
			ro.queue = append(ro.queue, step{index: i, force: true})
		}
	}
	m.wait(a, reqs)
}

// startedFor: slot s's step under way has started its new process.
func (ro *rollout) startedFor(s *slot) bool {
	since := ro.inflight[s]
	return s.next != nil && s.next.id > since || s.cur != nil && s.cur.id > since
}

func (m *Machine) wait(a *app, reqs []*request) {
	for _, r := range reqs {
		r.pending[a] = true
		a.rollout.waiters = append(a.rollout.waiters, r)
	}
}

func (m *Machine) onRestartRequested(ev RestartRequested) {
	a, err := m.lookup(ev.App)
	if err != nil {
		ev.Reply <- status.ReloadResult{Err: err}
		return
	}
	switch {
	case a.state != appRunning:
		ev.Reply <- status.ReloadResult{Err: fmt.Errorf("%s is not running (state %s); use start", ev.App, m.appStatus(a))}
		return
	case ev.Instance >= len(a.slots):
		ev.Reply <- status.ReloadResult{Err: fmt.Errorf("%s has instances 0 to %d", ev.App, len(a.slots)-1)}
		return
	}
	var idx []int
	what := "every instance"
	if ev.Instance >= 0 {
		idx = []int{ev.Instance}
		what = "instance " + itoa(ev.Instance)
	}
	m.log.Printf("%s: replacing %s (clusterrun restart; new ones ready first)", a.name, what)
	if ev.Instance >= 0 {
		m.count(a, ev.Instance, status.RestartManual, "clusterrun restart")
	} else {
		for _, s := range a.slots {
			m.count(a, s.index, status.RestartManual, "clusterrun restart")
		}
	}
	req := &request{kind: kindRestart, app: a.name, reply: ev.Reply, pending: map[*app]bool{}, idx: idx}
	m.beginRollout(a, a.rel, kindRestart, idx, []*request{req})
}

// advanceRollouts starts as many replacements as each app's
// reload.parallel allows, once the apps it depends on have rolled out.
func (m *Machine) advanceRollouts() {
	for _, a := range m.apps {
		ro := a.rollout
		if ro == nil {
			continue
		}
		if ro.waiting {
			if !m.depsRolledOut(a) {
				continue
			}
			ro.waiting = false
			m.log.Printf("%s: reloading %d instances to release %d, %d at a time%s", a.name, len(ro.queue), ro.target.Gen, max(1, ro.target.App.Reload.Parallel), orderNote(ro))
		}
		ro.queue = append(ro.queue, ro.deferred...)
		ro.deferred = nil
		for len(ro.inflight) < max(1, ro.target.App.Reload.Parallel) && len(ro.queue) > 0 && a.rollout == ro {
			st := ro.queue[0]
			ro.queue = ro.queue[1:]
			if st.index >= len(a.slots) {
				continue // scaled away
			}
			s := a.slots[st.index]
			if !st.force && s.next == nil && s.cur != nil && s.cur.rel == ro.target && !s.cur.state.leaving() {
				continue // started with the new release already (a scale up)
			}
			m.replaceSlot(a, s, st)
		}
		if a.rollout == ro && len(ro.queue) == 0 && len(ro.inflight) == 0 && len(ro.deferred) == 0 {
			m.finishRollout(a)
		}
	}
}

func orderNote(ro *rollout) string {
	switch {
	case ro.stopFirst && ro.target.App.Reload.Order != hclconfig.OrderStopFirst:
		return fmt.Sprintf(" (stop-first: its %s check probes PORT %d, which old and new would share)", probedCheck(ro.target.App), ro.target.App.InstancePort(0))
	case ro.stopFirst:
		return " (stop-first: the old instance stops before the new one starts)"
	}
	return ""
}

// stopFirst reports whether rel's instances are replaced stop-first: when
// the file says so, or when its tcp or http check probes a PORT of its own
// that old and new would share (no listener gives each a private one). A
// start-first replacement's probe would then reach the old instance and
// call the new one ready before it even listens.
func stopFirst(rel *Release) bool {
	return rel.App.Reload.Order == hclconfig.OrderStopFirst || sharedProbe(rel)
}

func sharedProbe(rel *Release) bool {
	return len(rel.Listeners) == 0 && rel.App.InstancePort(0) != 0 && probedCheck(rel.App) != ""
}

// probedCheck names the tcp or http check of an app, or "".
func probedCheck(a *hclconfig.App) string {
	switch {
	case a.Ready.Check == hclconfig.ReadyTCP || a.Ready.Check == hclconfig.ReadyHTTP:
		return "ready " + string(a.Ready.Check)
	case a.Health.Check == hclconfig.HealthTCP || a.Health.Check == hclconfig.HealthHTTP:
		return "health " + string(a.Health.Check)
	}
	return ""
}

// depsRolledOut: none of the apps a depends on is still rolling out or
// restarting. A dependency that gave up, or is not running, aborts a's
// rollout.
func (m *Machine) depsRolledOut(a *app) bool {
	for _, d := range a.rollout.target.App.DependsOn {
		da := m.app(d)
		switch {
		case da == nil:
			continue
		case da.rollout != nil:
			return false
		case m.failed(da) || da.state != appRunning:
			m.abortRollout(a, fmt.Sprintf("it depends on %s, which is %s", d, m.appStatus(da)))
			return false
		case !m.ready(da) && !m.done(da):
			return false // it is restarting: wait
		}
	}
	return true
}

// replaceSlot starts the replacement of one slot by the rollout's release.
func (m *Machine) replaceSlot(a *app, s *slot, st step) {
	ro := a.rollout
	_, busy := ro.inflight[s]
	switch {
	case busy || s.next != nil || (s.cur != nil && s.cur.state.leaving()):
		// A step of this rollout or a replacement of another kind is under
		// way, or the serving process is on its way out: replace the slot
		// once that is over.
		ro.deferred = append(ro.deferred, st)
	case s.cur == nil:
		// Nothing serves here (backoff, failed, done, stopped): start the
		// new release directly, with a fresh restart budget.
		m.disarm(&s.backoff)
		s.crashes, s.consecutive = nil, 0
		ro.inflight[s] = m.nextID
		m.spawn(s, ro.target, locCur, whyRollout)
	case ro.stopFirst:
		ro.inflight[s] = m.nextID
		m.stop(s.cur, restart, ro.target)
	default:
		ro.inflight[s] = m.nextID
		m.spawn(s, ro.target, locNext, whyRollout)
	}
}

// stepDone: a slot's replacement is ready (or, for a run-once app, done).
func (m *Machine) stepDone(a *app, s *slot) {
	ro := a.rollout
	if !ro.completes(s, nil) {
		return
	}
	delete(ro.inflight, s)
	ro.done[s] = true
}

func (m *Machine) finishRollout(a *app) {
	ro := a.rollout
	a.rollout = nil
	a.prev = nil
	a.mixed = false
	replaced, _ := ro.progress(a)
	msg := fmt.Sprintf("%s: %s complete: %d of %d instances replaced in %s (release %d)",
		a.name, ro.kind, replaced, len(a.slots), human(m.clock.Now().Sub(ro.started)), ro.target.Gen)
	m.log.Printf("%s", msg)
	if ro.kind == kindReload {
		m.counters.Reloads[status.ReloadCompleted]++
	}
	m.rolloutEnded(a, ro, status.ReloadCompleted, "", msg)
	m.note(ro.waiters, a, status.AppResult{App: a.name, Outcome: status.ReloadCompleted, Release: ro.target.Gen}, msg)
	m.retainListeners()
}

// abortRollout stops the replacements still under way and puts the
// previous release back where the new one already serves: the instances
// that served before keep serving.
func (m *Machine) abortRollout(a *app, why string) {
	ro := a.rollout
	if ro == nil {
		return
	}
	prev := a.prev
	if ro.kind == kindRollback || ro.kind == kindRestart {
		prev = nil
	}
	m.endRollout(a, status.ReloadAborted, why, prev)
	if ro.kind == kindRollback {
		a.mixed = true
		m.log.Printf("%s: the previous release does not start either; instances run different releases until the next reload", a.name)
	}
	if prev == nil {
		a.prev = nil
		return
	}
	// Back to the last release that completed: the aborted one and any a
	// superseded reload left behind.
	a.rel, a.prev = prev, nil
	var back []step
	for _, s := range a.slots {
		// A slot restarts (after a crash, a failed ready check) with prev;
		// one that serves another release is replaced.
		s.rel = prev
		if s.cur != nil && s.cur.intent == restart {
			m.decide(s.cur, restart, prev) // a stop-first step of this or a superseded rollout
		}
		if s.cur != nil && s.cur.rel != prev {
			back = append(back, step{index: s.index})
		}
	}
	if len(back) == 0 {
		return
	}
	m.log.Printf("%s: rolling %d instances back to release %d", a.name, len(back), prev.Gen)
	m.rolloutBegan(a, &rollout{kind: kindRollback, target: prev, queue: back, inflight: map[*slot]InstanceID{}, done: map[*slot]bool{},
		started: m.clock.Now(), stopFirst: stopFirst(prev)})
}

// cancelRollout ends a's rollout because the app is stopping, removed, or
// the runner drains; nothing is rolled back.
func (m *Machine) cancelRollout(a *app, outcome, why string) {
	if a.rollout != nil {
		m.endRollout(a, outcome, why, nil)
	}
	a.prev = nil
}

// endRollout ends a's rollout with outcome: replacements under way are
// stopped, and a serving process stopped for a stop-first replacement
// starts revert (or nothing) after its exit instead of the new release.
func (m *Machine) endRollout(a *app, outcome, why string, revert *Release) {
	ro := a.rollout
	a.rollout = nil
	for s := range ro.inflight {
		switch {
		case s.next != nil && s.next.why == whyRollout:
			// Disowned: however it ends now, nobody waits for it (it may
			// already be stopping after a failed ready check).
			m.stop(s.next, abandoned, nil)
		case revert == nil:
			// Superseded, cancelled, or aborted with nothing to go back to:
			// a process started in place, or one stopping for a stop-first
			// replacement, goes on as it was. A newer rollout replaces what
			// the slot then runs; a cancel stops it with its app.
		case s.cur != nil && s.cur.intent == restart:
			m.decide(s.cur, restart, revert)
		case s.cur != nil && s.cur.rel == ro.target && (s.cur.state == stSpawning || s.cur.state == stStarting):
			m.stop(s.cur, restart, revert)
		}
	}
	if ro.kind == kindReload {
		m.counters.Reloads[outcome]++
	}
	replaced, _ := ro.progress(a)
	msg := fmt.Sprintf("%s: %s %s: %s; %d of %d instances were replaced", a.name, ro.kind, outcome, why, replaced, len(a.slots))
	if outcome == status.ReloadAborted {
		msg += ", the others keep serving"
	}
	m.log.Printf("%s", msg)
	m.rolloutEnded(a, ro, outcome, why, msg)
	m.note(ro.waiters, a, status.AppResult{App: a.name, Outcome: outcome, Release: ro.target.Gen}, msg)
}

// rolloutBegan makes ro a's rollout and tells subscribers.
func (m *Machine) rolloutBegan(a *app, ro *rollout) {
	a.rollout = ro
	m.publishApp(a, -1, status.Lifecycle{Kind: status.RolloutBegan, Outcome: ro.kind.String(), Release: ro.target.Gen})
}

// rolloutEnded records how ro ended, for status, and tells subscribers.
func (m *Machine) rolloutEnded(a *app, ro *rollout, outcome, why, msg string) {
	replaced, total := ro.progress(a)
	a.lastRollout = &status.LastRollout{Kind: ro.kind.String(), Outcome: outcome, Release: ro.target.Gen, Why: why,
		Replaced: replaced, Total: total, At: m.clock.Now()}
	m.publishApp(a, -1, status.Lifecycle{Kind: status.RolloutEnded, Outcome: outcome, Release: ro.target.Gen, Reason: ro.kind.String(), Detail: msg})
}

// note records one app's outcome in every request of reqs, and answers a
// request once no app of it is pending (a is nil for notes that settle
// nothing).
func (m *Machine) note(reqs []*request, a *app, res status.AppResult, msg string) {
	ok := res.Outcome != status.ReloadAborted && res.Outcome != status.ReloadSuperseded && res.Outcome != status.ReloadCancelled
	for _, r := range reqs {
		if r.done {
			continue
		}
		r.notes = append(r.notes, msg)
		r.apps = append(r.apps, res)
		if !ok {
			r.failed = true
		}
		if a != nil {
			delete(r.pending, a)
			m.answerIfDone(r)
		}
	}
}

// answerIfDone answers a request applied to the apps once none is pending.
func (m *Machine) answerIfDone(r *request) {
	if r.done || len(r.pending) > 0 {
		return
	}
	res := status.ReloadResult{Summary: strings.Join(r.notes, "\n"), Apps: r.apps}
	if res.Summary == "" {
		res.Summary = "nothing to replace"
	}
	if r.failed {
		res.Err = errors.New(r.kind.String() + " did not complete")
	}
	m.answer(r, res)
}

func (m *Machine) answer(r *request, res status.ReloadResult) {
	if r.done {
		return
	}
	r.done = true
	if r.kind == kindReload {
		m.emit(status.Lifecycle{Kind: status.ReloadEnded, Time: m.clock.Now(), App: r.app, Instance: -1,
			Outcome: reloadOutcome(r, res), Detail: answerText(res)})
	}
	if r.reply != nil {
		r.reply <- res
	}
}

// reloadOutcome sums up how a reload request ended, for ReloadEnded: the
// outcome of the first app that did not complete, rejected when no app was
// touched because the file (or the request) was refused, cancelled when
// the runner stopped first.
func reloadOutcome(r *request, res status.ReloadResult) string {
	switch {
	case res.Err == errStopped:
		return status.ReloadCancelled
	case res.Err == nil:
		return status.ReloadCompleted
	}
	for _, a := range r.apps {
		switch a.Outcome {
		case status.ReloadAborted, status.ReloadSuperseded, status.ReloadCancelled:
			return a.Outcome
		}
	}
	return status.ReloadRejected
}

// answerText is the answer to a request as one text: its summary, or its
// error.
func answerText(res status.ReloadResult) string {
	if res.Err != nil && res.Summary == "" {
		return res.Err.Error()
	}
	return res.Summary
}
