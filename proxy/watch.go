package proxy

import "time"

// watch marks backends hung and clears them (see Options.HungAfter). It
// looks every quarter of HungAfter while some lease waits for its first
// byte or some backend is hung, and sleeps otherwise until a lease starts.
func (p *Proxy) watch() {
	defer close(p.watchEnded)
	if p.hungAfter <= 0 {
		<-p.done
		return
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if !p.checkHung(nanotime()) {
			// Nothing to watch: sleep until a lease starts. watchIdle is
			// set before the last look, so a lease that starts after it
			// kicks.
			p.watchIdle.Store(true)
			if !p.checkHung(nanotime()) {
				select {
				case <-p.watchKick:
				case <-p.done:
					return
				}
			}
			p.watchIdle.Store(false)
			continue
		}
		timer.Reset(time.Duration(p.hungAfter / 4))
		select {
		case <-timer.C:
		case <-p.done:
			return
		}
	}
}

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
	now := nanotime()
	p.mu.Lock()
	bs := make([]*backend, 0, len(p.known))
	for b := range p.known {
		bs = append(bs, b)
	}
	p.mu.Unlock()
	out := make([]BackendState, 0, len(bs))
	for _, b := range bs {
		st := BackendState{ID: b.id, Addr: b.addr, Hung: b.hung.Load(), Removed: b.removed.Load()}
		b.mu.Lock()
		oldest := int64(-1)
		for l := b.leases; l != nil; l = l.next {
			s := l.state.Load()
			if s != leaseDialing {
				st.Conns++
			}
			if s != leaseAnswered {
				st.Waiting++
				if oldest < 0 || l.since < oldest {
					oldest = l.since
				}
			}
		}
		b.mu.Unlock()
		if oldest >= 0 {
			st.OldestWait = time.Duration(now - oldest)
		}
		if st.Removed && st.Conns == 0 && st.Waiting == 0 {
			continue
		}
		out = append(out, st)
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

// checkHung updates every known backend's hung mark at now and reports
// whether there is anything to watch: a lease waiting for its first byte,
// or a hung backend.
func (p *Proxy) checkHung(now int64) bool {
	p.mu.Lock()
	bs := make([]*backend, 0, len(p.known))
	for b := range p.known {
		bs = append(bs, b)
	}
	p.mu.Unlock()
	watching := false
	for _, b := range bs {
		if b.unanswered.Load() == 0 && !b.hung.Load() {
			continue
		}
		watching = true
		b.mu.Lock()
		oldest, waiting := int64(-1), 0
		lastDown := b.lastDownEnded
		for l := b.leases; l != nil; l = l.next {
			lastDown = max(lastDown, l.lastDown.Load())
			if l.state.Load() != leaseAnswered {
				waiting++
				if oldest < 0 || l.since < oldest {
					oldest = l.since
				}
			}
		}
		b.mu.Unlock()
		silent := now-lastDown >= p.hungAfter
		switch {
		case !b.hung.Load() && oldest >= 0 && now-oldest >= p.hungAfter && silent && !b.removed.Load():
			b.hung.Store(true)
			p.log.printf("backend %d at %s has answered nothing for %v while %d connections wait on it: no new connections go to it until it answers (one at a time tries)",
				b.id, b.addr, time.Duration(min(now-lastDown, now-oldest)).Round(time.Millisecond), waiting)
		case b.hung.Load() && !silent:
			if b.hung.CompareAndSwap(true, false) {
				p.log.printf("backend %d at %s answers again; routing to it", b.id, b.addr)
				p.queue.wakeAll()
			}
		}
	}
	return watching
}
