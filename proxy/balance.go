package proxy

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Balance is how a new connection chooses among the routable backends.
type Balance int

const (
	// LeastConn picks the backend with the fewest open connections (dials in
	// flight included); ties rotate, so equal backends share the load.
	LeastConn Balance = iota
	// RoundRobin takes the backends in turn, whatever their load.
	RoundRobin
	// IPHash keeps each client address on one backend: rendezvous hashing
	// of the client's address over the backends' addresses, with a bound
	// on load (see ipHashBound), so only the clients of a removed backend
	// move, and no backend holds more than 1.25 × the mean.
	IPHash
)

// String returns the name cluster.hcl uses for b.
func (b Balance) String() string {
	switch b {
	case LeastConn:
		return "least-conn"
	case RoundRobin:
		return "round-robin"
	case IPHash:
		return "ip-hash"
	}
	return fmt.Sprintf("Balance(%d)", int(b))
}

// Backend is one instance's private address.
type Backend struct {
	ID   uint64 // the instance's id, stable for its life
	Addr string // an IP literal and a port: "127.0.0.1:41234", "[::1]:41234"
}

// backend is one routable instance as the proxy tracks it. The same *backend
// is kept across SetBackends calls while its ID and Addr stay, so its load
// survives the swap; a backend that leaves the set gets removed and is never
// put back (a later set with the same ID makes a new one).
//
// Nothing here knows how bytes move: a lease is one client's hold on the
// backend, whether that is a TCP connection spliced through (this package's
// loop) or, for an HTTP-aware mode, one request in flight.
type backend struct {
	id   uint64
	addr string
	ap   netip.AddrPort
	sa   dialAddr
	// hash is the rendezvous weight's key: the address, so a client keeps
	// its slot across a reload (the slot's private port does not change).
	hash uint64

	// load counts the leases that have not ended: dials in flight and
	// forwarded connections. Least-connections compares it; counting dials
	// keeps a burst of accepts from all picking the same idle backend
	// before any of their dials completes.
	load atomic.Int64
	// unanswered counts the leases that have had no byte back yet: the
	// instance may not even have accepted them. They are what its listen
	// backlog holds, so backlog bounds them (see full).
	unanswered atomic.Int64
	// maxLoad is the per-instance connection limit (0: none); backlog is
	// the instance's accept queue capacity as the kernel reports it (0:
	// unknown).
	maxLoad int64
	backlog atomic.Int64

	// removed is set by SetBackends, before it returns, when the backend
	// leaves the set; a dial that completes afterwards is not used.
	removed atomic.Bool
	// hung is set by the watch when the backend answered nothing for
	// HungAfter while a connection waited on it; see usable.
	hung atomic.Bool

	// mu guards the lease list, which Quiesce, Active, Backends and the
	// hung watch scan. It is taken when a lease starts and ends, never per
	// byte.
	mu     sync.Mutex
	leases *lease
	// lastDownEnded is the latest lastDown of the leases that ended.
	lastDownEnded int64
	// clients counts the leases per client key (IPHash only; under mu),
	// nclients the keys: IPHash bounds clients, not connections, so that
	// all of one client's connections go to one backend.
	clients  map[uint64]int32
	nclients atomic.Int64
}

// full reports whether b can take no new lease now: it is at its
// connection limit, or as many leases wait for an answer as its accept
// queue holds, so the kernel would drop the next SYN and the dial would
// wait for the SYN's retransmission (a second) or time out.
func (b *backend) full() bool {
	if b.maxLoad > 0 && b.load.Load() >= b.maxLoad {
		return true
	}
	q := b.backlog.Load()
	return q > 0 && b.unanswered.Load() >= q
}

// usable reports whether a new connection may go to b. A hung backend
// still takes one connection while none waits on it: that one is the probe
// whose answer clears hung.
func (b *backend) usable() bool {
	if b.full() {
		return false
	}
	return !b.hung.Load() || b.unanswered.Load() == 0
}

// Lease states.
const (
	leaseDialing   int32 = iota // picked, not yet connected
	leaseForwarded              // connected, no byte back yet
	leaseAnswered               // has had bytes back
)

// lease is one connection's hold on a backend, from the pick to the close.
// Its fields other than the list links are atomics, written by the
// connection's owner and read by Quiesce and the watch.
type lease struct {
	b          *backend
	prev, next *lease
	since      int64 // monotonic ns when it was picked
	key        uint64
	keyed      bool // counted in b.clients under key
	state      atomic.Int32
	// lastUp and lastDown are when the last byte went to and came from the
	// backend (monotonic ns; 0 never).
	lastUp, lastDown atomic.Int64
}

// acquire starts l on b at now; keyed, it counts l under the client key.
func (b *backend) acquire(l *lease, now int64, key uint64, keyed bool) {
	l.b, l.since, l.key, l.keyed = b, now, key, keyed
	l.state.Store(leaseDialing)
	l.lastUp.Store(0)
	l.lastDown.Store(0)
	b.load.Add(1)
	b.unanswered.Add(1)
	b.mu.Lock()
	l.prev, l.next = nil, b.leases
	if b.leases != nil {
		b.leases.prev = l
	}
	b.leases = l
	if keyed {
		if b.clients == nil {
			b.clients = make(map[uint64]int32)
		}
		if b.clients[key]++; b.clients[key] == 1 {
			b.nclients.Add(1)
		}
	}
	b.mu.Unlock()
}

// holds reports whether b has a lease of client key.
func (b *backend) holds(key uint64) bool {
	if b.nclients.Load() == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clients[key] > 0
}

// answered records the first byte back on l. Its owner calls it once.
func (l *lease) answered(now int64) {
	l.lastDown.Store(now)
	l.state.Store(leaseAnswered)
	l.b.unanswered.Add(-1)
}

// end takes l off its backend.
func (l *lease) end() {
	b := l.b
	b.mu.Lock()
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		b.leases = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	}
	l.prev, l.next = nil, nil
	b.lastDownEnded = max(b.lastDownEnded, l.lastDown.Load())
	if l.keyed {
		if b.clients[l.key]--; b.clients[l.key] == 0 {
			delete(b.clients, l.key)
			b.nclients.Add(-1)
		}
		l.keyed = false
	}
	b.mu.Unlock()
	if l.state.Load() != leaseAnswered {
		b.unanswered.Add(-1)
	}
	b.load.Add(-1)
	l.b = nil
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

// ipHashBound is the most clients a backend may hold under IPHash, as a
// multiple of the mean (consistent hashing with bounded loads, Mirrokni,
// Thorup and Zadimoghaddam 2017): a new client whose backend is at the
// bound goes to its next choice. With a handful of clients the bound would
// be 1 or 2, and a client making one request after another would move
// whenever another client's connection happened to be open on its backend
// (or not yet seen closed): below ipHashFloor clients a backend is never
// over the bound.
const (
	ipHashBound = 1.25
	ipHashFloor = 8
)

// pick chooses a usable backend of s, skipping those in tried, or returns
// nil when none is left. rot is a counter every pick advances: it is where
// the scan starts, so round-robin takes the backends in turn and
// least-connections breaks ties between equally loaded backends in rotation
// instead of always favouring the first. key is the client's address hash
// (IPHash only). The caller acquires a lease on the winner.
func (s *snapshot) pick(mode Balance, rot, key uint64, tried []*backend) *backend {
	n := uint64(len(s.list))
	if n == 0 {
		return nil
	}
	if mode == IPHash {
		return s.pickHash(key, tried)
	}
	var best *backend
	var bestLoad int64
	for i := range n {
		b := s.list[(rot+i)%n]
		if contains(tried, b) || !b.usable() {
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

// pickHash: a client with a connection open on a usable backend goes there
// again; a new client goes to the usable backend with the highest
// rendezvous weight for key that holds fewer clients than the bound,
// ceil(1.25 × (clients + 1) / backends), the new client counted, and at
// least ipHashFloor.
func (s *snapshot) pickHash(key uint64, tried []*backend) *backend {
	var total int64
	for _, b := range s.list {
		total += b.nclients.Load()
	}
	bound := max(int64(math.Ceil(ipHashBound*float64(total+1)/float64(len(s.list)))), ipHashFloor)
	var best, fallback *backend
	var bestW, fallbackW uint64
	for _, b := range s.list {
		if contains(tried, b) || !b.usable() {
			continue
		}
		if b.holds(key) {
			return b
		}
		w := mix(key ^ b.hash)
		if b.nclients.Load() < bound {
			if best == nil || w > bestW {
				best, bestW = b, w
			}
		} else if fallback == nil || w > fallbackW {
			fallback, fallbackW = b, w
		}
	}
	if best != nil {
		return best
	}
	// Every usable backend is at the bound (counts change while we look):
	// the heaviest weight still wins, so the choice stays stable.
	return fallback
}

func contains(bs []*backend, b *backend) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// hashBytes is FNV-1a over b, finished by mix: a fixed function, so a
// client keeps its backend across restarts of the runner too.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix(h)
}

// mix is splitmix64's finaliser: every input bit moves every output bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// addrKey is the IPHash key of a client address; an IPv4-mapped IPv6
// address hashes as the IPv4 address, so a dual-stack listener sends a
// client to the same backend either way.
func addrKey(a netip.Addr) uint64 {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return hashBytes(b[:])
	}
	b := a.As16()
	return hashBytes(b[:])
}
