package proxy

import "sync/atomic"

// backend is one routable instance as the proxy tracks it. The same *backend
// is kept across SetBackends calls while its ID and Addr stay, so its load
// survives the swap; a backend that leaves the set gets removed and is never
// put back (a later set with the same ID makes a new one).
type backend struct {
	id   uint64
	addr string
	// load counts the connections that picked this backend and have not
	// ended: dials in flight and forwarded connections. Least-connections
	// compares it; counting dials keeps a burst of accepts from all picking
	// the same idle backend before any of their dials completes.
	load atomic.Int64
	// removed is set by SetBackends, before it returns, when the backend
	// leaves the set; a dial that completes afterwards is not used.
	removed atomic.Bool
}

// snapshot is an immutable routable set. SetBackends publishes a new one and
// then closes the old one's changed, which wakes connections waiting for a
// backend.
type snapshot struct {
	list    []*backend
	changed chan struct{}
}

func (s *snapshot) find(b Backend) *backend {
	for _, x := range s.list {
		if x.id == b.ID && x.addr == b.Addr {
			return x
		}
	}
	return nil
}

// pick chooses a backend of s, skipping those in tried, or returns nil when
// none is left. rot is a counter every pick advances: it is where the scan
// starts, so round-robin takes the backends in turn and least-connections
// breaks ties between equally loaded backends in rotation instead of always
// favouring the first. The caller adds to the winner's load.
func (s *snapshot) pick(mode Balance, rot uint64, tried []*backend) *backend {
	n := uint64(len(s.list))
	if n == 0 {
		return nil
	}
	var best *backend
	var bestLoad int64
	for i := range n {
		b := s.list[(rot+i)%n]
		if contains(tried, b) {
			continue
		}
		if mode == RoundRobin {
			return b
		}
		if l := b.load.Load(); best == nil || l < bestLoad {
			best, bestLoad = b, l
		}
	}
	return best
}

func contains(bs []*backend, b *backend) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}
