package proxy

import "time"

// Quiesce returns a channel that is closed once every connection forwarded
// to backend id (a dial in flight included) has closed or has been idle, no
// byte either way, for idle since its last byte; at once when there is
// none. The runner takes an instance out of the routable set, waits for
// this, and only then sends the stop signal: a response still streaming is
// not cut off by an app that exits mid-body on SIGTERM. A connection that
// has not had its first byte back counts as busy whatever idle says: the
// instance may not even have accepted it yet. See route.Table.Quiesce.
func (p *Proxy) Quiesce(id uint64, idle time.Duration) <-chan struct{} {
	return p.rt.Quiesce(id, idle)
}
