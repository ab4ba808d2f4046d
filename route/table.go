package route

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Table. The zero value is usable.
type Options struct {
	// Balance picks the target of each new lease.
	Balance Balance
	// MaxPerInstance bounds the leases of one target (0: none; where the
	// kernel tells, no target gets more unanswered leases than its accept
	// queue holds anyway).
	MaxPerInstance int
	// HungAfter: a target that has sent nothing for this long while a
	// lease has waited this long for its first byte gets no new leases (but
	// one probe at a time) until it answers. 0 means 2s; a negative value
	// turns this off.
	HungAfter time.Duration
	// Attach, when set, is called with each new target before it is first
	// published, to set its Data; Detach with each target that leaves the
	// set, after it is marked removed. Both run on SetBackends's goroutine.
	Attach, Detach func(*Target)
	// Log receives the table's own messages (a target hung, answering
	// again); nil means silent.
	Log *Limiter
}

const defaultHungAfter = 2 * time.Second

// Table is one listener's routable set, its leases and its wait queue. Its
// methods are safe for concurrent use.
type Table struct {
	balance   Balance
	maxPer    int64
	hungAfter int64 // ns; <= 0: never
	attach    func(*Target)
	detach    func(*Target)
	log       *Limiter

	// snap is the routable set; SetBackends swaps it whole, so a pick reads
	// it with one atomic load and never locks.
	snap atomic.Pointer[Snapshot]
	// setMu serialises SetBackends calls with each other, nothing else.
	setMu sync.Mutex
	// rr rotates the starting point of every pick (see Snapshot.pick).
	rr atomic.Uint64

	// Queue holds who waits for a target that can take them; Release and
	// SetBackends wake it.
	Queue WaitQueue

	// mu guards known and changed.
	mu sync.Mutex
	// known holds every target in the set and every removed one that still
	// has leases: what Active, Backends, Quiesce and the watch look at.
	known map[*Target]struct{}
	// changed is closed and replaced when a lease changes state while a
	// Quiesce waits (quiescers > 0).
	changed   chan struct{}
	quiescers atomic.Int64

	// watchKick wakes the hung watch when a lease starts while it sleeps.
	watchKick chan struct{}
	watchIdle atomic.Bool
}

// New returns an empty Table.
func New(o Options) *Table {
	t := &Table{
		balance: o.Balance, maxPer: int64(max(o.MaxPerInstance, 0)),
		hungAfter: int64(o.HungAfter), attach: o.Attach, detach: o.Detach, log: o.Log,
		known: make(map[*Target]struct{}), changed: make(chan struct{}), watchKick: make(chan struct{}, 1),
	}
	if t.balance != RoundRobin && t.balance != IPHash {
		t.balance = LeastLoad
	}
	if t.hungAfter == 0 {
		t.hungAfter = int64(defaultHungAfter)
	}
	if t.log == nil {
		t.log = NewLimiter(nil)
	}
	t.snap.Store(&Snapshot{})
	return t
}

// Balance is the table's policy.
func (t *Table) Balance() Balance { return t.balance }

// Snapshot is the routable set now.
func (t *Table) Snapshot() *Snapshot { return t.snap.Load() }

// Pick chooses a usable target of the set now for a client of key (IPHash),
// skipping those in tried, or returns nil when none is left.
func (t *Table) Pick(key uint64, tried []*Target) *Target {
	return t.snap.Load().pick(t.balance, t.rr.Add(1), key, tried)
}

// SetBackends replaces the routable set. It only swaps a snapshot: it never
// waits for traffic. When it returns, no lease newly goes to a target
// missing from bs (a data path checks Removed after a dial); leases already
// held go on untouched. Waiters are woken. A backend is identified by ID and
// Addr together; duplicates after the first are ignored, and so is one
// whose Addr is not an IP literal and a port (logged).
func (t *Table) SetBackends(bs []Backend) {
	t.setMu.Lock()
	defer t.setMu.Unlock()
	old := t.snap.Load()
	next := &Snapshot{list: make([]*Target, 0, len(bs))}
	kept := make(map[*Target]bool, len(old.list))
	var added []*Target
	for _, b := range bs {
		if next.find(b) != nil {
			continue
		}
		nt := old.find(b)
		if nt != nil {
			kept[nt] = true
		} else {
			ap, err := netip.ParseAddrPort(b.Addr)
			if err != nil {
				t.log.Printf("cannot route to backend %d: its address %q is not an IP address and a port", b.ID, b.Addr)
				continue
			}
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			nt = &Target{Backend: b, AddrPort: ap, hash: targetHash(b), maxLoad: t.maxPer}
			added = append(added, nt)
		}
		next.list = append(next.list, nt)
	}
	for _, nt := range added {
		// Learned once, as it becomes routable: the instance listens by
		// then. Unknown (0) where the kernel does not say.
		nt.backlog.Store(int64(acceptQueueCap(nt.AddrPort)))
		if t.attach != nil {
			t.attach(nt)
		}
	}
	t.mu.Lock()
	for _, nt := range added {
		t.known[nt] = struct{}{}
	}
	t.mu.Unlock()
	t.snap.Store(next)
	// After these stores, a data path whose dial to a removed target
	// completes sees removed (sequentially consistent atomics), so it does
	// not forward; one that checked before the store was forwarded before
	// SetBackends returned.
	for _, ot := range old.list {
		if !kept[ot] {
			ot.removed.Store(true)
			if t.detach != nil {
				t.detach(ot)
			}
			t.forgetIfIdle(ot)
		}
	}
	t.Queue.WakeAll()
}

// forgetIfIdle drops a removed target from known once it has no lease.
func (t *Table) forgetIfIdle(x *Target) {
	if !x.removed.Load() || x.load.Load() != 0 {
		return
	}
	t.mu.Lock()
	if x.load.Load() == 0 {
		delete(t.known, x)
	}
	t.mu.Unlock()
}

// knownTargets returns the known targets (with id, if id is not nil).
func (t *Table) knownTargets(id *uint64) []*Target {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := make([]*Target, 0, len(t.known))
	for x := range t.known {
		if id == nil || x.ID == *id {
			ts = append(ts, x)
		}
	}
	return ts
}

// Acquire starts l on x at now for a client of key.
func (t *Table) Acquire(x *Target, l *Lease, now int64, key uint64) {
	x.acquire(l, now, key, t.balance == IPHash)
	if t.watchIdle.Load() {
		select {
		case t.watchKick <- struct{}{}:
		default:
		}
	}
}

// Release ends l: its target has room for one more, so the first waiter
// may try again.
func (t *Table) Release(l *Lease) {
	x := l.t
	l.end()
	t.notifyQuiesce()
	t.forgetIfIdle(x)
	t.Queue.WakeOne()
}

// Answered records l's first byte back: its target's accept queue has room
// for one more, and a hung target is cleared by it.
func (t *Table) Answered(l *Lease, now int64) {
	l.answered(now)
	t.notifyQuiesce()
	t.Queue.WakeOne()
	if x := l.t; x.hung.Load() {
		t.unhang(x)
	}
}

// unhang clears x's hung mark, if no one else did, says so and wakes every
// waiter: x takes leases again.
func (t *Table) unhang(x *Target) {
	if x.hung.CompareAndSwap(true, false) {
		t.log.Printf("backend %d at %s answers again; routing to it", x.ID, x.Addr)
		t.Queue.WakeAll()
	}
}

// Hold marks an answered l busy until it ends, whatever its idleness: an
// upgraded connection (a WebSocket) whose instance must not be stopped
// under it while it lasts (Quiesce's caller bounds the wait).
func (t *Table) Hold(l *Lease) {
	l.state.Store(leaseHeld)
	t.notifyQuiesce()
}

// notifyQuiesce wakes the Quiesce waiters, if any, after a lease changed
// state. It costs an atomic load when nobody waits.
func (t *Table) notifyQuiesce() {
	if t.quiescers.Load() == 0 {
		return
	}
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// Forwarded records that l reached its target (the dial completed, the
// request was written) and wakes Quiesce waiters.
func (t *Table) Forwarded(l *Lease) {
	l.state.Store(leaseForwarded)
	t.notifyQuiesce()
}

// Active returns, per target ID, the number of leases past their dial:
// every routable target (0 included) and every removed target that still
// has some.
func (t *Table) Active() map[uint64]int {
	m := make(map[uint64]int)
	for _, x := range t.knownTargets(nil) {
		n := 0
		x.mu.Lock()
		for l := x.leases; l != nil; l = l.next {
			if l.state.Load() != leaseDialing {
				n++
			}
		}
		x.mu.Unlock()
		if n > 0 || !x.removed.Load() {
			m[x.ID] += n
		}
	}
	return m
}

// TargetState is what status shows of one target.
type TargetState struct {
	Backend
	// Leases are those past their dial; Waiting those (dials included)
	// that have had no byte back yet, the oldest for OldestWait.
	Leases, Waiting int
	OldestWait      time.Duration
	// Hung: it answered nothing for HungAfter while a lease waited on it,
	// and gets no new lease until it answers.
	Hung bool
	// Removed: no longer routable, still has leases.
	Removed bool
	// Data is the target's Data.
	Data any
}

// Targets returns the state of every routable target and of every removed
// one that still has leases.
func (t *Table) Targets() []TargetState {
	now := Now()
	ts := t.knownTargets(nil)
	out := make([]TargetState, 0, len(ts))
	for _, x := range ts {
		st := TargetState{Backend: x.Backend, Hung: x.hung.Load(), Removed: x.removed.Load(), Data: x.Data}
		x.mu.Lock()
		oldest := int64(-1)
		for l := x.leases; l != nil; l = l.next {
			s := l.state.Load()
			if s != leaseDialing {
				st.Leases++
			}
			if s == leaseDialing || s == leaseForwarded {
				st.Waiting++
				if oldest < 0 || l.since < oldest {
					oldest = l.since
				}
			}
		}
		x.mu.Unlock()
		if oldest >= 0 {
			st.OldestWait = time.Duration(now - oldest)
		}
		if st.Removed && st.Leases == 0 && st.Waiting == 0 {
			continue
		}
		out = append(out, st)
	}
	return out
}

// targetHash is a target's rendezvous key: its app and slot when the data
// path names them (http mode: a client keeps its slot across a reload,
// whose new process has another private port), else its address.
func targetHash(b Backend) uint64 {
	if b.App != "" {
		return hashBytes([]byte(b.App + "." + strconv.Itoa(b.Slot)))
	}
	return hashBytes([]byte(b.Addr))
}
