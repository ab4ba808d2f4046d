package route

import "time"

// Watch marks targets hung and clears them (see Options.HungAfter) until
// done is closed; the table's owner runs it on a goroutine of its own. It
// looks every quarter of HungAfter while some lease waits for its first
// byte or some target is hung, and sleeps otherwise until a lease starts.
func (t *Table) Watch(done <-chan struct{}) {
	if t.hungAfter <= 0 {
		<-done
		return
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if !t.checkHung(Now()) {
			// Nothing to watch: sleep until a lease starts. watchIdle is
			// set before the last look, so a lease that starts after it
			// kicks.
			t.watchIdle.Store(true)
			if !t.checkHung(Now()) {
				select {
				case <-t.watchKick:
				case <-done:
					return
				}
			}
			t.watchIdle.Store(false)
			continue
		}
		timer.Reset(time.Duration(t.hungAfter / 4))
		select {
		case <-timer.C:
		case <-done:
			return
		}
	}
}

// checkHung updates every known target's hung mark at now and reports
// whether there is anything to watch: a lease waiting for its first byte,
// or a hung target.
func (t *Table) checkHung(now int64) bool {
	watching := false
	for _, x := range t.knownTargets(nil) {
		if x.unanswered.Load() == 0 && !x.hung.Load() {
			continue
		}
		watching = true
		x.mu.Lock()
		oldest, waiting := int64(-1), 0
		lastDown := x.lastDownEnded
		for l := x.leases; l != nil; l = l.next {
			lastDown = max(lastDown, l.lastDown.Load())
			if s := l.state.Load(); s == leaseDialing || s == leaseForwarded {
				waiting++
				if oldest < 0 || l.since < oldest {
					oldest = l.since
				}
			}
		}
		x.mu.Unlock()
		silent := now-lastDown >= t.hungAfter
		switch {
		case !x.hung.Load() && oldest >= 0 && now-oldest >= t.hungAfter && silent && !x.removed.Load():
			x.hung.Store(true)
			t.log.Printf("backend %d at %s has answered nothing for %v while %d connections wait on it: no new connections go to it until it answers (one at a time tries)",
				x.ID, x.Addr, time.Duration(min(now-lastDown, now-oldest)).Round(time.Millisecond), waiting)
		case x.hung.Load() && !silent:
			t.unhang(x)
		}
	}
	return watching
}
