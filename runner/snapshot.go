package runner

import (
	"maps"
	"os"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"

	"github.com/clusterrun/clusterrun/status"
)

// Snapshot describes every app and process, for status and metrics. The
// runner adds what only it knows (its own memory, proxy connections).
func (m *Machine) Snapshot() status.Runner {
	st := status.Runner{PID: os.Getpid(), Config: m.cfg.Path, Started: m.started, Phase: m.phase.String(),
		Listeners: []status.Listener{}, Apps: []status.App{}, Counters: m.copyCounters()}
	for _, l := range m.cfg.Listeners {
		sl := status.Listener{Name: l.Name, Address: m.socks.Addr(l), Mode: string(l.Mode)}
		if l.Mode.Proxied() {
			sl.Balance = string(l.Balance)
		}
		st.Listeners = append(st.Listeners, sl)
	}
	for _, a := range m.apps {
		as := status.App{Name: a.name, State: m.appStatus(a), Instances: a.want, InstancesFrom: a.wantFrom, Release: a.rel.Gen,
			Listeners: append([]string{}, a.rel.App.Listeners...), LastRollout: a.lastRollout,
			// One per slot and draining process: appending from empty
			// was four allocations of the list for 8 instances, on every
			// status call.
			Procs: make([]status.Instance, 0, len(a.slots)+len(a.draining))}
		if ro := a.rollout; ro != nil {
			replaced, total := ro.progress(a)
			as.Rollout = &status.Rollout{Kind: ro.kind.String(), Release: ro.target.Gen, Replaced: replaced, Total: total}
		}
		for _, s := range a.slots {
			if s.cur == nil {
				as.Procs = append(as.Procs, status.Instance{App: a.name, Instance: s.index, State: s.state.String(),
					Release: s.rel.Gen, Restarts: s.restarts, CrashLoop: s.consecutive > 0 && s.state == slotBackoff,
					CPUPercent: -1, PSSBytes: -1, USSBytes: -1, LastExit: s.lastExit})
			} else {
				as.Procs = append(as.Procs, m.instanceStatus(s.cur, "serving"))
			}
			if s.next != nil {
				as.Procs = append(as.Procs, m.instanceStatus(s.next, "replacement"))
			}
		}
		for _, in := range a.draining {
			as.Procs = append(as.Procs, m.instanceStatus(in, "draining"))
		}
		st.Apps = append(st.Apps, as)
	}
	return st
}

func (m *Machine) instanceStatus(in *instance, role string) status.Instance {
	s := in.slot
	is := status.Instance{App: s.app.name, Instance: s.index, PID: in.pid, State: in.state.String(), Role: role,
		Release: in.rel.Gen, Restarts: s.restarts, Started: in.started, Message: in.msg, CPUPercent: -1, PSSBytes: -1, USSBytes: -1,
		LastExit: s.lastExit}
	if in.loc == locCur {
		// A ready process of a slot that crashed recently is not trusted
		// yet: it shows as a crash loop until it stays up min_uptime.
		is.CrashLoop = s.consecutive > 0 && !m.stable(in)
	}
	if !in.readyAt.IsZero() {
		is.ReadyAfter = in.readyAt.Sub(in.started)
	}
	if !in.started.IsZero() {
		is.UptimeSeconds = m.clock.Now().Sub(in.started).Seconds()
	}
	for _, l := range in.rel.Listeners {
		if l.Mode.Proxied() && in.addrs[l.Name] != "" {
			is.Addr = in.addrs[l.Name]
			break
		}
	}
	// A periodic sample is used while fresh; otherwise the runner measures
	// on demand (see fillUsage).
	if in.sampled && m.clock.Now().Sub(in.sampledAt) < 5*time.Second {
		is.CPUPercent, is.PSSBytes, is.USSBytes = in.cpuPercent, in.mem.PSS, in.mem.USS
	}
	return is
}

// appStatus is an app's one-word state for status.
func (m *Machine) appStatus(a *app) string {
	switch {
	case a.state == appRemoved:
		return "removing"
	case a.state == appStopped && m.hasLive(a):
		return "stopping"
	case a.state == appStopped:
		return "stopped"
	case a.state == appWaiting:
		return "waiting"
	case a.rollout != nil && a.rollout.kind == kindRollback:
		return "rolling-back"
	case a.rollout != nil && a.rollout.kind == kindRestart:
		return "restarting"
	case a.rollout != nil:
		return "reloading"
	case m.done(a):
		return "done"
	case m.failed(a):
		return "failed"
	}
	for _, s := range a.slots {
		if s.consecutive > 0 && (s.cur == nil || !m.stable(s.cur)) {
			return "crashloop"
		}
	}
	if m.ready(a) {
		return "ready"
	}
	return "starting"
}

func (m *Machine) copyCounters() status.Counters {
	c := status.Counters{Restarts: map[string]map[string]int{}, Reloads: maps.Clone(m.counters.Reloads),
		Ready: m.counters.Ready, ReadySeconds: m.counters.ReadySeconds}
	for k, v := range m.counters.Restarts {
		c.Restarts[k] = maps.Clone(v)
	}
	return c
}

// Pids returns the pid of every live process, for the usage sampler.
func (m *Machine) Pids() []int {
	out := make([]int, 0, len(m.live))
	for _, in := range m.live {
		if in.pid != 0 {
			out = append(out, in.pid)
		}
	}
	return out
}

// listenersOf returns the listener blocks of the live instance id's
// release.
func (m *Machine) listenersOf(id InstanceID) []*hclconfig.Listener {
	if in := m.live[id]; in != nil {
		return in.rel.Listeners
	}
	return nil
}

// pidOf returns the pid of the live instance id, or 0.
func (m *Machine) pidOf(id InstanceID) int {
	if in := m.live[id]; in != nil {
		return in.pid
	}
	return 0
}

// NeedsSampling reports whether a live instance's app has a max_memory,
// which needs CPU and memory sampled every few seconds.
func (m *Machine) NeedsSampling() bool {
	for _, in := range m.live {
		if in.pid != 0 && in.rel.App.Restart.MaxMemory > 0 {
			return true
		}
	}
	return false
}
