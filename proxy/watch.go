package proxy

import "time"

// BackendState is what status shows of one backend.
type BackendState struct {
	ID   uint64
	Addr string
	// Conns are the forwarded connections open to it; Waiting those of
	// them (and dials) that have had no byte back yet, the oldest for
	// OldestWait.
	Conns, Waiting int
	OldestWait     time.Duration
	// Hung: it answered nothing for HungAfter while a connection waited on
	// it, and gets no new connections until it answers.
	Hung bool
	// Removed: no longer routable, still has connections.
	Removed bool
}

// Backends returns the state of every routable backend and of every removed
// one that still has connections.
func (p *Proxy) Backends() []BackendState {
	ts := p.rt.Targets()
	out := make([]BackendState, 0, len(ts))
	for _, t := range ts {
		out = append(out, BackendState{ID: t.ID, Addr: t.Addr, Conns: t.Leases, Waiting: t.Waiting, OldestWait: t.OldestWait, Hung: t.Hung, Removed: t.Removed})
	}
	return out
}

// Stats is what status shows of a proxy listener.
type Stats struct {
	// Open client connections; MaxConnections, the most it may hold now
	// (its own bound, or what the descriptor budget leaves it, whichever
	// is lower); Queued, those waiting for a backend that can take them;
	// QueueTimeouts, those closed after WaitForBackend since start.
	Open, MaxConnections, Queued int
	QueueTimeouts                int64
}

// Stats returns the listener's figures.
func (p *Proxy) Stats() Stats {
	most := p.fds.Max() / fdsPerConn
	if p.maxConns > 0 {
		most = min(most, int(p.maxConns))
	}
	return Stats{Open: int(p.open.Load()), MaxConnections: most, Queued: int(p.waiting.Load()), QueueTimeouts: p.queueTimeouts.Load()}
}
