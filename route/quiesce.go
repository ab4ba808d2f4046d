package route

import "time"

// Quiesce returns a channel that is closed once every lease of target id (a
// dial in flight included) has ended or has been idle, no byte either way,
// for idle since its last byte. It is closed at once when there is none.
// The runner takes an instance out of the routable set, waits for this, and
// only then sends the stop signal: a response still streaming is not cut off
// by an app that exits mid-body on SIGTERM.
//
// A lease that has not had its first byte back counts as busy whatever idle
// says: the instance may not even have accepted it yet, and closing its
// listening socket would reset it. So does a held lease (Hold). The caller
// bounds the whole wait (the runner by stop.timeout); a lease that never
// becomes quiet keeps the channel open until it ends.
//
// Safe from any goroutine; the wait runs on a goroutine of its own.
func (t *Table) Quiesce(id uint64, idle time.Duration) <-chan struct{} {
	done := make(chan struct{})
	// Counted before the first look, so a lease that changes state after
	// that look announces it (see notifyQuiesce).
	t.quiescers.Add(1)
	go func() {
		defer t.quiescers.Add(-1)
		defer close(done)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			changed, wait, busy := t.busyOn(id, int64(idle))
			if !busy {
				return
			}
			var tick <-chan time.Time
			if wait > 0 {
				timer.Reset(time.Duration(wait))
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

// busyOn reports whether a lease of target id keeps it from being quiet,
// and returns what to wait for before looking again: changed, closed at the
// next change of state of any lease, and wait, when the last of the leases
// that time alone can make quiet will have been idle long enough (0 if
// there is none).
func (t *Table) busyOn(id uint64, idle int64) (changed <-chan struct{}, wait int64, busy bool) {
	// changed is read before the scan: a change after it closes it.
	t.mu.Lock()
	changed = t.changed
	t.mu.Unlock()
	now := Now()
	for _, x := range t.knownTargets(&id) {
		x.mu.Lock()
		for l := x.leases; l != nil; l = l.next {
			if l.state.Load() != leaseAnswered {
				// Dialing, forwarded with no answer yet, or held: only a
				// change of state ends this.
				busy = true
				continue
			}
			since := now - max(l.lastUp.Load(), l.lastDown.Load())
			if since >= idle {
				continue
			}
			busy = true
			// The last of them to become quiet decides: looking again
			// before then finds one still busy.
			wait = max(wait, idle-since)
		}
		x.mu.Unlock()
	}
	return changed, wait, busy
}
