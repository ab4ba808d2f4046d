package runner

import (
	"slices"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/signals"
	"github.com/clusterrun/clusterrun/status"
)

// This file is the level of the whole runner: the graceful drain, the
// forced kill, and when the runner is finished.

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
			m.setApp(a, appStopped)
		}
		// Pending restarts are cancelled now; live processes are signalled
		// by drainStep once their dependents are gone.
		for _, s := range a.slots {
			m.disarm(&s.backoff)
			if s.state == slotBackoff {
				m.setSlot(s, slotStopped)
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
			m.stop(in, shutdown, nil)
		}
	}
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
		m.stop(in, forced, nil)
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

// cleanStop: st is how a process ends when it obeys its stop signal sig:
// exit status 0, killed by sig itself, or exit status 128+sig (how shells
// and the JVM report the same). Anything else is an app failing at its
// stop, and makes the runner's exit status 1.
func cleanStop(st proc.Status, sig syscall.Signal) bool {
	switch {
	case st.Signal != 0:
		return st.Signal == sig
	default:
		return st.Code == 0 || st.Code == 128+int(sig)
	}
}
