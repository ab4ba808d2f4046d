package runner

// shutdown begins a graceful drain that ends the runner with code.
func (r *Runner) shutdown(code int) {
	if r.phase != running {
		return
	}
	r.phase = draining
	r.exitCode = code
	for _, a := range r.apps {
		a.active = false
		if a.rollout != nil {
			r.abortRollout(a, "the runner is stopping")
		}
		// Pending restarts are cancelled now; only live processes need a
		// signal, and that waits for dependents (drainStep).
		for _, s := range a.slots {
			r.cancelBackoff(s)
			if s.state == slotBackoff {
				s.state = slotStopped
			}
		}
	}
	r.drainStep()
}

// drainStep stops every app none of whose dependents still runs: apps stop
// in parallel, dependents before what they depend on.
func (r *Runner) drainStep() {
	if r.phase == forcing {
		return
	}
	for _, a := range r.apps {
		if a.liveProcs() == 0 && !r.hasDrainingProcs(a) {
			continue
		}
		if r.dependentsRunning(a) {
			continue
		}
		r.stopApp(a)
		for p := range r.live {
			if p.slot.app == a {
				r.stopProc(p, true)
			}
		}
	}
}

// dependentsRunning: some app that depends on a still has live processes.
func (r *Runner) dependentsRunning(a *app) bool {
	for _, b := range r.apps {
		if b == a {
			continue
		}
		for _, d := range b.rel.app.DependsOn {
			if d == a.name && (b.liveProcs() > 0 || r.hasDrainingProcs(b)) {
				return true
			}
		}
	}
	return false
}

// force kills every process group at once (a second SIGTERM or SIGINT).
func (r *Runner) force() {
	if r.phase == running {
		r.shutdown(1)
	}
	r.phase = forcing
	r.exitCode = 1
	for p := range r.live {
		r.kill(p)
	}
}
