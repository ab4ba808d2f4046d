package proxy

import (
	"time"
)

// Quiesce returns a channel that is closed once every connection forwarded
// to backend id (a dial in flight included) has closed or has been idle, no
// byte either way, for idle since its last byte. It is closed at once when
// there is none. The runner takes an instance out of the routable set, waits
// for this, and only then sends the stop signal: a response still streaming
// is not cut off by an app that exits mid-body on SIGTERM.
//
// A connection that has not had its first byte back from the backend counts
// as busy whatever idle says: the instance may not even have accepted it
// yet, and closing its listening socket would reset it. The caller bounds
// the whole wait (the runner by stop.timeout); a connection that never
// becomes quiet keeps the channel open until it closes.
//
// Safe from any goroutine. Where the kernel does not tell the proxy when a
// socket last carried data (outside Linux), an answered connection counts as
// busy until it closes.
func (p *Proxy) Quiesce(id uint64, idle time.Duration) <-chan struct{} {
	done := make(chan struct{})
	// Counted before the first look, so a connection that changes state
	// after that look announces it (see notifyQuiesce).
	p.quiescers.Add(1)
	go func() {
		defer p.quiescers.Add(-1)
		defer close(done)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			changed, wait, busy := p.busyOn(id, idle)
			if !busy {
				return
			}
			var tick <-chan time.Time
			if wait > 0 {
				timer.Reset(wait)
				tick = timer.C
			}
			select {
			case <-changed:
			case <-tick:
			}
			timer.Stop()
		}
	}()
	return done
}

// busyOn reports whether a connection to backend id keeps it from being
// quiet, and returns what to wait for before looking again: changed, closed
// at the next change of state of any connection, and wait, when the last
// of the connections that time alone can make quiet will have been idle
// long enough (0 if there is none).
func (p *Proxy) busyOn(id uint64, idle time.Duration) (changed <-chan struct{}, wait time.Duration, busy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var latest time.Duration
	for c := range p.conns {
		b := c.target.Load()
		if b == nil || b.id != id {
			continue
		}
		bc := c.bc.Load()
		if bc == nil || !c.answered.Load() {
			// Dialing, or forwarded with no answer yet: only a change of
			// state ends this.
			busy = true
			continue
		}
		since, ok := sinceLastData(bc)
		if !ok {
			busy = true
			continue
		}
		if since >= idle {
			continue
		}
		busy = true
		// The last of them to become quiet decides: looking again
		// before then finds one still busy.
		latest = max(latest, idle-since)
	}
	return p.changed, latest, busy
}

// notifyQuiesce wakes the Quiesce waiters, if any, after a connection
// changed state (forwarded, answered, dial abandoned, closed). It costs an
// atomic load when nobody waits.
func (p *Proxy) notifyQuiesce() {
	if p.quiescers.Load() == 0 {
		return
	}
	p.mu.Lock()
	p.notifyQuiesceLocked()
	p.mu.Unlock()
}

func (p *Proxy) notifyQuiesceLocked() {
	if p.quiescers.Load() == 0 {
		return
	}
	close(p.changed)
	p.changed = make(chan struct{})
}
