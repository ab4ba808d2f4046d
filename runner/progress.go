package runner

import "github.com/clusterrun/clusterrun/status"

// Progress says how far the apps that must be up are from ready, for the
// service manager that runs clusterrun (sd_notify's READY=1 and STATUS=).
// It asks the same questions as the dependency order and the exit rule
// (ready, done, failed), so that "ready" means one thing everywhere.
func (m *Machine) Progress() status.Progress {
	p := status.Progress{Phase: m.phase.String()}
	for _, a := range m.apps {
		switch {
		case a.state == appStopped || a.state == appRemoved:
			continue // not wanted up
		case m.ready(a) || m.done(a):
			p.Ready++
		case m.failed(a), a.state == appWaiting && !m.depsCanStillBeMet(a):
			p.Failed = append(p.Failed, a.name)
		}
		p.Total++
	}
	return p
}
