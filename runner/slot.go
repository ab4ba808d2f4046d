package runner

import (
	"fmt"
	"slices"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// This file is the level above one process: an instance number of an app
// (a slot), its serving process and its replacement, and what a process's
// exit means for it (gone).

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
	// lastExit is how the last process that served the slot ended (never
	// a replacement that did not take over: see replacementFailed).
	lastExit *status.Exit
}

func newSlot(a *app, index int) *slot {
	return &slot{app: a, index: index, rel: a.rel, state: slotStopped}
}

// setSlot moves a slot to another state, if states.go allows it.
func (m *Machine) setSlot(s *slot, to slotState) {
	if s.state == to {
		return
	}
	if !allowed(slotTransitions, int(s.state), to) {
		m.bug("%s: no slot transition from %s to %s", s.label(), s.state, to)
		return
	}
	s.state = to
}

// label is the instance's name in logs and commands: "web.2".
func (s *slot) label() string { return s.app.name + "." + itoa(s.index) }

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
		m.setSlot(s, slotUp)
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

// gone handles the end of a process: reaped, never started (spawnErr), or
// cancelled before it started (an intent, no pid). What follows is a
// function of where it was, the intent it was stopped with, and whether it
// had been ready:
//
//	location  intent                        what follows
//	draining  any                           nothing more: it was replaced or retired already
//	next      undecided, failedStart        its start failed: the rollout aborts, or the serving one keeps serving
//	next      any other                     nothing more
//	cur       any, a replacement is viable  the replacement takes over (a crash is recorded unless the exit was asked for or announced)
//	cur       restart, the slot may start   the intent's release starts in the slot
//	cur       replaced … forced             the slot is stopped
//	cur       undecided, announced,         the restart policy decides (crashed)
//	          failedStart, unhealthy
func (m *Machine) gone(in *instance, st proc.Status, spawnErr error) {
	wasReady := !in.readyAt.IsZero()
	wasKilled := in.state == stKilling // the stop timeout has said so already
	s, a := in.slot, in.slot.app
	successor := in.loc == locCur && s.next != nil && m.canTakeOver(s.next)
	m.setState(in, stExited)
	delete(m.live, in.id)
	if in.pid != 0 {
		// A slot's last exit is that of a process that served it: never a
		// replacement that failed before it was ready (the rollout's
		// outcome says that).
		if in.loc == locCur || wasReady {
			s.lastExit = &status.Exit{PID: in.pid, Code: st.Code, At: m.clock.Now()}
			if st.Signal != 0 {
				s.lastExit.Signal = signals.Name(st.Signal)
			}
		}
		if in.intent == undecided || in.intent == announced && in.loc == locCur && !successor {
			m.publish(in, status.Crashed, st.String())
		}
		m.publish(in, status.Gone, st.String())
	}
	if in.intent == shutdown && in.pid != 0 && !wasKilled && !cleanStop(st, in.rel.App.Stop.Signal) {
		// The app failed at its own stop (an exception in its SIGTERM
		// handler, say): the runner's exit status says so, as it does for
		// a process that had to be killed.
		m.unclean = true
		defer m.log.Printf("%s did not stop cleanly on %s (%s): clusterrun will exit with status 1",
			in.labelPID(), signals.Name(in.rel.App.Stop.Signal), st)
	}
	// Cancelled before it started: nothing to say about it.
	quiet := in.pid == 0 && in.intent != undecided
	logExit := func(tail string) {
		if !quiet {
			m.logExit(in, st, tail)
		}
	}
	switch in.loc {
	case locDraining:
		a.draining = slices.DeleteFunc(a.draining, func(x *instance) bool { return x == in })
		if in.intent == announced {
			logExit(" after announcing STOPPING=1")
		} else {
			logExit("")
		}
		m.releaseSlot(a, in)
	case locNext:
		s.next = nil
		if in.intent == undecided || in.intent == failedStart {
			m.replacementFailed(s, in, st, spawnErr)
			return
		}
		logExit("")
	case locCur:
		s.cur = nil
		if nx := s.next; nx != nil && !successor {
			m.dropReplacement(s, nx)
		}
		switch {
		case successor:
			logExit(fmt.Sprintf("; its replacement %s takes over", s.next.labelPID()))
			if !in.intent.normal() && in.intent != announced {
				m.recordCrash(s)
			}
			m.takeOver(s)
		case in.intent == restart && m.canStart(s):
			logExit("")
			m.spawn(s, in.then, locCur, whyRollout)
		case in.intent.normal():
			logExit("")
			if s.state == slotUp {
				m.setSlot(s, slotStopped)
			}
		default:
			m.crashed(s, in, st, spawnErr, wasReady)
		}
	}
}

// canTakeOver: a replacement may serve its slot when the process it was to
// replace is gone; one already told to stop may not.
func (m *Machine) canTakeOver(nx *instance) bool {
	return nx.intent == undecided && (nx.state == stSpawning || nx.state == stStarting)
}

// dropReplacement detaches a replacement that is on its way out when the
// process it was to replace is gone. One that failed its ready check for a
// rollout aborts the rollout now: its exit, in the draining list, will not.
func (m *Machine) dropReplacement(s *slot, nx *instance) {
	m.detach(nx)
	ro := s.app.rollout
	if nx.intent != failedStart || nx.why != whyRollout || !ro.completes(s, nil) {
		return
	}
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
			m.setState(old, stStopping)
			m.arm(&old.timers[tStop], old.rel.App.Stop.Timeout, timerFired{kind: tStop, in: old})
		} else {
			m.stop(old, replaced, nil)
		}
		m.detach(old)
	}
	// Whatever replaced the slot (the rollout's process, or a repair of it
	// that runs the same release), the slot now serves the new release.
	if s.app.rollout.completes(s, nw) {
		m.stepDone(s.app, s)
	}
}

// replacementFailed handles a replacement that exited (or could not start)
// before it was ready; the serving process, if any, keeps serving, and its
// last exit stays what it was.
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
// nobody asked it to, or could not be started, or was stopped as a failure
// (not ready in time, unhealthy under policy "never").
func (m *Machine) crashed(s *slot, in *instance, st proc.Status, spawnErr error, wasReady bool) {
	a := s.app
	pol := in.rel.App.Restart
	what := m.describeFailure(in, st, spawnErr)
	failed := !st.Success() || in.intent == failedStart || in.intent == unhealthy || spawnErr != nil
	restartIt := restarts(pol.Policy, st) || (failed && pol.Policy != hclconfig.RestartNever)
	if in.rel.App.Ready.Check == hclconfig.ReadyExit && !failed {
		restartIt = false // a one-shot step that finished is done
	}

	if ro := a.rollout; ro.completes(s, in) {
		if !failed && !restartIt {
			// A run-once step of the new release (a build) finished.
			m.log.Printf("%s %s; done", in.labelPID(), what)
			m.setSlot(s, slotDone)
			m.stepDone(a, s)
			return
		}
		if !wasReady {
			// The new release failed where it was started directly: abort,
			// and start the previous release here at once, without holding
			// the new release's crash against the slot.
			m.log.Printf("%s %s", in.labelPID(), what)
			delete(ro.inflight, s)
			m.setSlot(s, slotStopped)
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
		m.setSlot(s, slotStopped)
		return
	}
	if in.fatal != "" {
		m.giveUp(s, fmt.Sprintf("%s %s: %s; not restarting it", in.labelPID(), what, in.fatal))
		return
	}
	if !restartIt {
		if failed {
			m.giveUp(s, fmt.Sprintf("%s %s; restart policy %q: not restarting", in.labelPID(), what, pol.Policy))
		} else {
			m.setSlot(s, slotDone)
			m.log.Printf("%s %s; done", in.labelPID(), what)
		}
		return
	}
	if m.stable(in) {
		s.consecutive = 0
	}
	n := m.recordCrash(s)
	s.consecutive++
	if n > pol.MaxRestarts {
		m.giveUp(s, fmt.Sprintf("%s %s: %d crashes in %s, more than max_restarts = %d; giving up (failed)", in.labelPID(), what, n, human(pol.Window), pol.MaxRestarts))
		return
	}
	d := backoffDelay(pol.Backoff, pol.MaxBackoff, s.consecutive, m.jitter())
	m.setSlot(s, slotBackoff)
	s.restarts++
	msg := fmt.Sprintf("%s %s, restarting in %s (crash %d of %d in %s)", in.labelPID(), what, human(d), n, pol.MaxRestarts, human(pol.Window))
	m.count(a, s.index, status.RestartCrash, msg)
	m.arm(&s.backoff, d, timerFired{kind: tBackoff, s: s})
	m.log.Printf("%s", msg)
}

// giveUp marks a slot failed and says why.
func (m *Machine) giveUp(s *slot, msg string) {
	m.setSlot(s, slotFailed)
	m.log.Printf("%s", msg)
	m.publishApp(s.app, s.index, status.Lifecycle{Kind: status.GaveUp, Detail: msg})
}

// backoffElapsed restarts a slot after its crash backoff.
func (m *Machine) backoffElapsed(s *slot) {
	if s.state != slotBackoff {
		m.bug("%s: backoff elapsed in state %s", s.label(), s.state)
		return
	}
	if !m.canStart(s) {
		m.setSlot(s, slotStopped)
		return
	}
	m.spawn(s, s.rel, locCur, 0)
}

// recordCrash notes a crash in the slot's restart window and returns how
// many crashes the window now holds.
func (m *Machine) recordCrash(s *slot) int {
	now := m.clock.Now()
	win := s.rel.App.Restart.Window
	s.crashes = append(pruneBefore(s.crashes, now.Add(-win)), now)
	return len(s.crashes)
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
	m.decide(in, announced, nil)
	m.setState(in, stDying)
	m.publish(in, status.Draining, "STOPPING=1")
	// It should exit by itself; if it lingers past the time its
	// replacement may take to become ready and then to stop, it is killed.
	m.arm(&in.timers[tStop], in.rel.App.Ready.Timeout+in.rel.App.Stop.Timeout, timerFired{kind: tStop, in: in})
	switch {
	case s.next != nil:
		m.log.Printf("%s announced STOPPING=1; its replacement %s is already starting", in.labelPID(), s.next.labelPID())
	case in.rel.App.Restart.Policy == hclconfig.RestartNever || !m.canStart(s):
		m.log.Printf("%s announced STOPPING=1", in.labelPID())
	default:
		s.restarts++
		nx := m.spawn(s, s.rel, locNext, whyStopping)
		msg := fmt.Sprintf("%s announced STOPPING=1; its replacement %s is starting", in.labelPID(), nx.label())
		m.count(a, s.index, status.RestartStopping, msg)
		m.log.Printf("%s", msg)
	}
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
		m.stop(in, unhealthy, nil)
		return
	}
	s.restarts++
	if sharedProbe(in.rel) {
		// Old and new would share the probed PORT: the old one goes first.
		msg := fmt.Sprintf("%s %s; stopping it, then starting its replacement (its PORT cannot be shared)", in.labelPID(), what)
		m.count(a, s.index, reason, msg)
		m.log.Printf("%s", msg)
		m.stop(in, restart, s.rel)
		return
	}
	nx := m.spawn(s, s.rel, locNext, w)
	msg := fmt.Sprintf("%s %s; its replacement %s is starting (the old one stops once the new one is ready)", in.labelPID(), what, nx.label())
	m.count(a, s.index, reason, msg)
	m.log.Printf("%s", msg)
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
			m.stop(in, retired, nil)
			m.detach(in)
		}
	}
	if s.state == slotUp || s.state == slotBackoff {
		m.setSlot(s, slotStopped)
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
	if !locDraining.fits(in.state) || in.intent == undecided {
		m.bug("%s: detached in state %s with intent %s", in.label(), in.state, in.intent)
	}
	in.loc = locDraining
	in.then = nil // nothing starts after it where it drains
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

func (m *Machine) canStart(s *slot) bool {
	return !s.retired && s.app.state == appRunning && m.phase == running
}
