package runner

import (
	"fmt"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// This file is the lowest level of the model: one process, from its start
// request to its exit. Its state (states.go) moves on process events,
// probes and timers; what its exit means is decided in slot.go, from its
// state, its location and the intent with which it was stopped.

// instance is one process of one slot, from its start request to its exit.
type instance struct {
	id    InstanceID
	slot  *slot
	rel   *Release
	state instState
	loc   location
	// why it was started, when it is a slot's replacement.
	why why
	// intent is what the runner decided its exit means, once it decided
	// that it stops (undecided until then); then is the release its slot
	// starts after its exit, with intent restart.
	intent intent
	then   *Release
	pid    int
	// pending holds the signals forwarded while it was spawning (no pid
	// yet): it gets them once it has one. Its output can reach the user
	// before the runner learns its pid, so a user who signals after
	// seeing it expects it to be signalled too.
	pending []syscall.Signal
	// private is which of the slot's private sockets it holds.
	private   int
	addrs     map[string]string
	probeAddr string
	started   time.Time
	readyAt   time.Time
	// msg is its last STATUS=; fatal says why restarting it cannot help
	// (CLUSTERRUN_FATAL=).
	msg, fatal string
	// healthFails counts its failed health checks (or missed watchdogs) in
	// a row; at health.failures it is unroutable and replaced, and one
	// check that passes makes it routable again (see healthy).
	healthFails int
	memOver     int
	// routable is what was last published about it; probing whether the
	// prober checks it.
	routable, probing bool
	timers            [tBackoff]armed
	// Usage from the last sample.
	cpuPercent float64
	mem        proc.Memory
	lastCPU    time.Duration
	sampled    bool
	sampledAt  time.Time
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
	if in.intent != undecided {
		// Started after it stopped being wanted (a drain, a scale down):
		// stop it straight away, where it is.
		m.stopNow(in)
		return
	}
	m.log.Printf("%s started (pid %d)%s", in.label(), in.pid, in.role())
	for _, sig := range in.pending {
		if err := m.procs.Signal(in.id, in.pid, sig); err != nil {
			m.log.Printf("%s: cannot forward %s, received while it started: %v", in.labelPID(), signals.Name(sig), err)
		}
	}
	in.pending = nil
	m.armReady(in)
}

func (m *Machine) onSpawnFailed(ev SpawnFailed) {
	in := m.live[ev.ID]
	if in == nil || in.state != stSpawning {
		m.bug("spawn failure of %d, which is not being spawned", ev.ID)
		return
	}
	if ev.Cancelled || in.intent != undecided {
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
		m.healthPass(in)
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
		m.healthPass(in)
	case ev.Health:
		m.healthMiss(in, ev.Detail)
	}
}

// instanceTimer handles a timer of in that is not stale.
func (m *Machine) instanceTimer(in *instance, k timerKind) {
	switch k {
	case tReadyDelay:
		// "Ready once it has stayed up this long": a process that exited
		// just before the delay passed is not, though its Exited event may
		// still be queued behind this timer (seen under load: a crash on
		// EADDRINUSE, then "ready", then "reload complete").
		if !m.procs.Alive(in.id, in.pid) {
			return
		}
		m.becameReady(in, "")
	case tReadyTimeout:
		if in.state != stStarting {
			m.bug("%s: ready timeout in state %s", in.label(), in.state)
			return
		}
		m.log.Printf("%s was not ready within %s (ready.check = %q); stopping it", in.labelPID(), human(in.rel.App.Ready.Timeout), in.rel.App.Ready.Check)
		m.stop(in, failedStart, nil)
	case tStable:
		if in.loc == locCur {
			in.slot.consecutive = 0
		}
	case tQuiesce:
		if in.state != stQuiescing {
			m.bug("%s: quiesce timeout in state %s", in.label(), in.state)
			return
		}
		m.log.Printf("%s: connections forwarded to it are still open after %s; sending %s anyway", in.labelPID(),
			human(in.rel.App.Stop.Timeout), signals.Name(in.rel.App.Stop.Signal))
		m.signalStop(in, " (connections still open)")
	case tStop:
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
		m.healthMiss(in, fmt.Sprintf("no WATCHDOG=1 within %s", human(in.rel.App.Health.Interval)))
		if in.state == stReady {
			// Still counting: a missed watchdog may yet be followed by a
			// WATCHDOG=1 (recovery), or by more misses.
			m.arm(&in.timers[tWatchdog], in.rel.App.Health.Interval, timerFired{kind: tWatchdog, in: in})
		}
	}
}

// --- Readiness and health ---

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
	if in.state != stStarting || in.intent != undecided {
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

// stable: it has been ready for min_uptime, so its slot's crash loop (if
// any) is over.
func (m *Machine) stable(in *instance) bool {
	return !in.readyAt.IsZero() && !m.clock.Now().Before(in.readyAt.Add(in.rel.App.Restart.MinUptime))
}

// healthy: it has not failed health.failures checks in a row. What makes
// it unhealthy may pass (a long pause, a dependency that came back): one
// check that passes makes it healthy and routable again. The replacement
// that its failures started goes on: an instance that failed its check
// that long is replaced once the new one is ready, and serves until then.
func (in *instance) healthy() bool {
	return in.healthFails == 0 || in.healthFails < in.rel.App.Health.Failures
}

// healthPass: a health check passed, or a WATCHDOG=1 came.
func (m *Machine) healthPass(in *instance) {
	if in.healthy() {
		in.healthFails = 0
		return
	}
	in.healthFails = 0
	m.log.Printf("%s passes its %s check again: routable until its replacement is ready", in.labelPID(), in.rel.App.Health.Check)
	m.touch(in)
}

// healthMiss counts one failed health check (or a missed watchdog).
func (m *Machine) healthMiss(in *instance, detail string) {
	if in.state != stReady || in.loc != locCur {
		return
	}
	h := in.rel.App.Health
	in.healthFails++
	if in.healthFails <= h.Failures {
		m.log.Printf("%s failed its %s check (%s): %d of %d", in.labelPID(), h.Check, detail, in.healthFails, h.Failures)
	}
	if in.healthy() {
		return
	}
	m.touch(in)
	if in.slot.next != nil {
		return // its replacement is under way
	}
	w, reason := whyHealth, status.RestartHealth
	if h.Check == hclconfig.HealthWatchdog {
		w, reason = whyWatchdog, status.RestartWatchdog
	}
	m.repair(in, w, reason, fmt.Sprintf("failed %d %s checks in a row", in.healthFails, h.Check))
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

// --- Stopping ---

// decide records why in stops; see intent for which later decisions
// replace an earlier one. It reports whether i is now the intent.
func (m *Machine) decide(in *instance, i intent, then *Release) bool {
	switch cur := in.intent; {
	case cur == undecided, i == forced,
		i.final() && cur.open(),
		i == abandoned && cur == failedStart,
		i == restart && (cur == restart || cur == announced):
	default:
		return cur == i
	}
	in.intent, in.then = i, then
	return true
}

// stop decides that in stops with intent i (then: the release its slot
// starts afterwards, for restart), and begins stopping it if it is not on
// its way out already.
func (m *Machine) stop(in *instance, i intent, then *Release) {
	if m.phase == forcing {
		i = forced
	}
	if !m.decide(in, i, then) || in.state.leaving() && in.intent != forced {
		return
	}
	m.stopNow(in)
}

// stopNow stops in with the intent already decided: at once (SIGKILL) if
// forced; otherwise it becomes unroutable, waits for the connections
// forwarded to it if it ever served through a proxy (quiescing), then gets
// its app's stop signal, and SIGKILL after stop.timeout.
func (m *Machine) stopNow(in *instance) {
	switch {
	case in.state == stSpawning:
		m.procs.Cancel(in.id) // SpawnFailed or Spawned follows
		return
	case in.intent == forced:
		m.kill(in)
		return
	}
	m.disarm(&in.timers[tReadyDelay])
	m.disarm(&in.timers[tReadyTimeout])
	m.disarm(&in.timers[tWatchdog])
	m.disarm(&in.timers[tStop]) // one that announced STOPPING=1 had one
	m.stopProbes(in)
	if !in.readyAt.IsZero() && proxied(in.rel) {
		m.setState(in, stQuiescing) // unroutable before anything else
		m.publish(in, status.Draining, in.intent.String())
		m.arm(&in.timers[tQuiesce], in.rel.App.Stop.Timeout, timerFired{kind: tQuiesce, in: in})
		m.socks.Quiesce(in.id, quiesceIdle(in.rel.App.Stop.Timeout))
		return
	}
	m.publish(in, status.Draining, in.intent.String())
	m.signalStop(in, "")
}

// proxied: rel's instances take connections through a proxy listener, so
// they may have connections under way when they are stopped.
func proxied(rel *Release) bool {
	for _, l := range rel.Listeners {
		if l.Mode.Proxied() {
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
	m.signalStop(in, "")
}

// signalStop sends in its stop signal and only then arms the SIGKILL that
// follows after stop.timeout: the whole timeout is the instance's.
func (m *Machine) signalStop(in *instance, note string) {
	m.setState(in, stStopping) // unroutable before it gets the signal
	st := in.rel.App.Stop
	// Published before the signal goes: an http listener answers the
	// clients stuck to this instance 503 from now on (Stopping), so no
	// request of theirs is forwarded after the signal, to an app that may
	// end their sessions the moment it gets it (socket.io's close).
	m.publish(in, status.Signalled, signals.Name(st.Signal)+note)
	if err := m.procs.Signal(in.id, in.pid, st.Signal); err != nil {
		m.log.Printf("cannot signal %s: %v", in.labelPID(), err)
	}
	m.arm(&in.timers[tStop], st.Timeout, timerFired{kind: tStop, in: in})
}

// kill sends SIGKILL to in's process group at once. Whether its exit
// counts as a failure was decided when it was told to stop.
func (m *Machine) kill(in *instance) {
	switch in.state {
	case stSpawning:
		m.procs.Cancel(in.id)
		return
	case stKilling, stExited:
		return
	}
	m.disarmAll(in)
	m.stopProbes(in)
	if !in.state.leaving() {
		m.publish(in, status.Draining, in.intent.String())
	}
	m.setState(in, stKilling)
	m.publish(in, status.Signalled, "SIGKILL") // before it goes, as in signalStop
	if err := m.procs.Signal(in.id, in.pid, syscall.SIGKILL); err != nil {
		m.log.Printf("cannot kill %s: %v", in.labelPID(), err)
	}
}

// --- State and routing ---

// setState moves an instance to another state, if states.go allows it,
// and publishes what changed for subscribers.
func (m *Machine) setState(in *instance, to instState) {
	if !allowed(transitions, int(in.state), to) {
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
// ready, serving, passing its health check, and not told to stop.
func (m *Machine) touch(in *instance) {
	r := in.state == stReady && in.loc == locCur && in.healthy() && in.intent == undecided
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

func (m *Machine) disarmAll(in *instance) {
	for i := range in.timers {
		m.disarm(&in.timers[i])
	}
}

// --- Words ---

func (m *Machine) describeFailure(in *instance, st proc.Status, spawnErr error) string {
	switch {
	case spawnErr != nil:
		return "could not be started: " + spawnErr.Error()
	case in.intent == failedStart:
		return fmt.Sprintf("was not ready within %s (ready.check = %q) and was stopped", human(in.rel.App.Ready.Timeout), in.rel.App.Ready.Check)
	case in.intent == unhealthy:
		return st.String() + " after it was stopped as unhealthy"
	case in.readyAt.IsZero() && !st.Success():
		return st.String() + " before it was ready"
	}
	return st.String()
}

func (m *Machine) logExit(in *instance, st proc.Status, tail string) {
	m.log.Printf("%s %s%s", in.labelPID(), st, tail)
}

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
