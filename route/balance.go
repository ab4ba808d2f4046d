package route

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Balance is how a new lease chooses among the routable targets.
type Balance int

const (
	// LeastLoad picks the target with the fewest leases (dials in flight
	// included); ties rotate, so equal targets share the load.
	LeastLoad Balance = iota
	// RoundRobin takes the targets in turn, whatever their load.
	RoundRobin
	// IPHash keeps each client address on one target: rendezvous hashing
	// of the client's address over the targets' addresses, with a bound on
	// load (see ipHashBound), so only the clients of a removed target
	// move, and no target holds more than 1.25 × the mean of the clients.
	IPHash
)

// String returns the name cluster.hcl uses for b in proxy mode.
func (b Balance) String() string {
	switch b {
	case LeastLoad:
		return "least-conn"
	case RoundRobin:
		return "round-robin"
	case IPHash:
		return "ip-hash"
	}
	return fmt.Sprintf("Balance(%d)", int(b))
}

// Backend is one instance's private address, as the runner gives it.
type Backend struct {
	ID   uint64 // the instance's id, stable for its life
	Addr string // an IP literal and a port: "127.0.0.1:41234", "[::1]:41234"
	// App and Slot name the instance (its app and instance number), for
	// what a data path says about it: a sticky cookie, per-request figures.
	App  string
	Slot int
}

// Target is one routable instance as the table tracks it. The same *Target
// is kept across SetBackends calls while its ID and Addr stay, so its load
// survives the swap; a target that leaves the set is marked removed and is
// never put back (a later set with the same ID makes a new one).
type Target struct {
	Backend
	// AddrPort is Addr parsed, IPv4-mapped addresses unmapped.
	AddrPort netip.AddrPort
	// Data is the data path's own state for the target (a dial address, a
	// connection pool), set by Options.Attach before the target is first
	// published, never changed after.
	Data any

	// hash is the rendezvous weight's key: the address, so a client keeps
	// its slot across a reload (the slot's private port does not change).
	hash uint64

	// load counts the leases that have not ended. unanswered counts those
	// that have had no byte back yet: the instance may not even have
	// accepted them. They are what its listen backlog holds, so backlog
	// bounds them (see full).
	load       atomic.Int64
	unanswered atomic.Int64
	// maxLoad is the per-instance limit (0: none); backlog is the
	// instance's accept queue capacity (0: unknown).
	maxLoad int64
	backlog atomic.Int64

	removed atomic.Bool
	hung    atomic.Bool

	// mu guards the lease list, which Quiesce, Active, Backends and the
	// hung watch scan. It is taken when a lease starts and ends, never per
	// byte.
	mu     sync.Mutex
	leases *Lease
	// lastDownEnded is the latest lastDown of the leases that ended.
	lastDownEnded int64
	// clients counts the leases per client key (IPHash only; under mu),
	// nclients the keys: IPHash bounds clients, not leases, so that all of
	// one client's leases go to one target.
	clients  map[uint64]int32
	nclients atomic.Int64
}

// Removed reports whether SetBackends took t out of the routable set.
func (t *Target) Removed() bool { return t.removed.Load() }

// Load is t's number of leases.
func (t *Target) Load() int64 { return t.load.Load() }

// Unanswered is how many of t's leases have had no byte back.
func (t *Target) Unanswered() int64 { return t.unanswered.Load() }

// Backlog is t's accept queue capacity as last learned (0: unknown).
func (t *Target) Backlog() int64 { return t.backlog.Load() }

// SetBacklog records t's accept queue capacity: a data path whose connect
// timed out learns that the queue is full at what waited on it.
func (t *Target) SetBacklog(n int64) { t.backlog.Store(n) }

// Hung reports whether the watch found t silent (see Options.HungAfter).
func (t *Target) Hung() bool { return t.hung.Load() }

// full reports whether t can take no new lease now: it is at its limit,
// or as many leases wait for an answer as its accept queue holds, so the
// kernel would drop the next SYN and the dial would wait for the SYN's
// retransmission (a second) or time out.
func (t *Target) full() bool {
	if t.maxLoad > 0 && t.load.Load() >= t.maxLoad {
		return true
	}
	q := t.backlog.Load()
	return q > 0 && t.unanswered.Load() >= q
}

// Usable reports whether a new lease may go to t. A hung target still takes
// one lease while none waits on it: that one is the probe whose answer
// clears hung.
func (t *Target) Usable() bool {
	if t.full() {
		return false
	}
	return !t.hung.Load() || t.unanswered.Load() == 0
}

// Lease states.
const (
	leaseDialing   int32 = iota // picked, not yet connected
	leaseForwarded              // sent, no byte back yet
	leaseAnswered               // has had bytes back
	leaseHeld                   // answered, and busy until it ends (an upgraded connection)
)

// Lease is one hold on a target, from the pick to the end. Its fields
// other than the list links are atomics, written by its owner and read by
// Quiesce, Backends and the watch. The zero value is ready for Acquire; a
// lease is reused after Release.
type Lease struct {
	t          *Target
	prev, next *Lease
	since      int64 // monotonic ns when it was picked
	key        uint64
	keyed      bool // counted in t.clients under key
	state      atomic.Int32
	// lastUp and lastDown are when the last byte went to and came from the
	// target (monotonic ns; 0 never).
	lastUp, lastDown atomic.Int64
}

// Target is the lease's target, nil when it is not held.
func (l *Lease) Target() *Target { return l.t }

// Sent records a byte sent to the target at now.
func (l *Lease) Sent(now int64) { l.lastUp.Store(now) }

// Received records a byte that came back after the first at now (the first
// goes through Table.Answered).
func (l *Lease) Received(now int64) { l.lastDown.Store(now) }

// acquire starts l on t at now; keyed, it counts l under the client key.
func (t *Target) acquire(l *Lease, now int64, key uint64, keyed bool) {
	l.t, l.since, l.key, l.keyed = t, now, key, keyed
	l.state.Store(leaseDialing)
	l.lastUp.Store(0)
	l.lastDown.Store(0)
	t.load.Add(1)
	t.unanswered.Add(1)
	t.mu.Lock()
	l.prev, l.next = nil, t.leases
	if t.leases != nil {
		t.leases.prev = l
	}
	t.leases = l
	if keyed {
		if t.clients == nil {
			t.clients = make(map[uint64]int32)
		}
		if t.clients[key]++; t.clients[key] == 1 {
			t.nclients.Add(1)
		}
	}
	t.mu.Unlock()
}

// holds reports whether t has a lease of client key.
func (t *Target) holds(key uint64) bool {
	if t.nclients.Load() == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clients[key] > 0
}

// answered records the first byte back on l. Its owner calls it once.
func (l *Lease) answered(now int64) {
	l.lastDown.Store(now)
	l.state.Store(leaseAnswered)
	l.t.unanswered.Add(-1)
}

// end takes l off its target.
func (l *Lease) end() {
	t := l.t
	t.mu.Lock()
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		t.leases = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	}
	l.prev, l.next = nil, nil
	t.lastDownEnded = max(t.lastDownEnded, l.lastDown.Load())
	if l.keyed {
		if t.clients[l.key]--; t.clients[l.key] == 0 {
			delete(t.clients, l.key)
			t.nclients.Add(-1)
		}
		l.keyed = false
	}
	t.mu.Unlock()
	if s := l.state.Load(); s == leaseDialing || s == leaseForwarded {
		t.unanswered.Add(-1)
	}
	t.load.Add(-1)
	l.t = nil
}

// Snapshot is an immutable routable set; SetBackends publishes a new one.
// Who waits for a change waits in the table's Queue, which SetBackends
// wakes.
type Snapshot struct {
	list []*Target
}

// Targets are the routable targets, in the order SetBackends gave them.
// The slice must not be changed.
func (s *Snapshot) Targets() []*Target { return s.list }

func (s *Snapshot) find(b Backend) *Target {
	for _, x := range s.list {
		if x.ID == b.ID && x.Addr == b.Addr {
			return x
		}
	}
	return nil
}

// AllTried reports whether every target of s is in tried.
func (s *Snapshot) AllTried(tried []*Target) bool {
	for _, t := range s.list {
		if !contains(tried, t) {
			return false
		}
	}
	return true
}

// ipHashBound is the most clients a target may hold under IPHash, as a
// multiple of the mean (consistent hashing with bounded loads, Mirrokni,
// Thorup and Zadimoghaddam 2017): a new client whose target is at the
// bound goes to its next choice. With a handful of clients the bound would
// be 1 or 2, and a client making one request after another would move
// whenever another client's lease happened to be open on its target (or
// not yet seen closed): below ipHashFloor clients a target is never over
// the bound.
const (
	ipHashBound = 1.25
	ipHashFloor = 8
)

// pick chooses a usable target of s, skipping those in tried, or returns
// nil when none is left. rot is a counter every pick advances: it is where
// the scan starts, so round-robin takes the targets in turn and least-load
// breaks ties between equally loaded targets in rotation instead of always
// favouring the first. key is the client's address hash (IPHash only).
// The caller acquires a lease on the winner.
func (s *Snapshot) pick(mode Balance, rot, key uint64, tried []*Target) *Target {
	n := uint64(len(s.list))
	if n == 0 {
		return nil
	}
	if mode == IPHash {
		return s.pickHash(key, tried)
	}
	var best *Target
	var bestLoad int64
	for i := range n {
		t := s.list[(rot+i)%n]
		if contains(tried, t) || !t.Usable() {
			continue
		}
		if mode == RoundRobin {
			return t
		}
		if l := t.load.Load(); best == nil || l < bestLoad {
			best, bestLoad = t, l
		}
	}
	return best
}

// pickHash: a client with a lease on a usable target goes there again; a
// new client goes to the usable target with the highest rendezvous weight
// for key that holds fewer clients than the bound, ceil(1.25 × (clients +
// 1) / targets), the new client counted, and at least ipHashFloor.
func (s *Snapshot) pickHash(key uint64, tried []*Target) *Target {
	var total int64
	for _, t := range s.list {
		total += t.nclients.Load()
	}
	bound := max(int64(math.Ceil(ipHashBound*float64(total+1)/float64(len(s.list)))), ipHashFloor)
	var best, fallback *Target
	var bestW, fallbackW uint64
	for _, t := range s.list {
		if contains(tried, t) || !t.Usable() {
			continue
		}
		if t.holds(key) {
			return t
		}
		w := mix(key ^ t.hash)
		if t.nclients.Load() < bound {
			if best == nil || w > bestW {
				best, bestW = t, w
			}
		} else if fallback == nil || w > fallbackW {
			fallback, fallbackW = t, w
		}
	}
	if best != nil {
		return best
	}
	// Every usable target is at the bound (counts change while we look):
	// the heaviest weight still wins, so the choice stays stable.
	return fallback
}

func contains(ts []*Target, t *Target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// hashBytes is FNV-1a over b, finished by mix: a fixed function, so a
// client keeps its target across restarts of the runner too.
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

// AddrKey is the IPHash key of a client address; an IPv4-mapped IPv6
// address hashes as the IPv4 address, so a dual-stack listener sends a
// client to the same target either way.
func AddrKey(a netip.Addr) uint64 {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return hashBytes(b[:])
	}
	b := a.As16()
	return hashBytes(b[:])
}
