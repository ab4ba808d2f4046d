package httpmode

import "sync"

// affinity remembers which instance each client address was last sent to
// (IPHash), so that a client stays with the process that holds its session
// while that process drains after a reload, and only moves once it is
// forgotten; rendezvous hashing then sends it to the same slot's new
// process. It holds at most maxAffinity addresses; the least recently seen
// go first.
type affinity struct {
	mu sync.Mutex
	m  map[uint64]*affEntry
	// a doubly linked list, most recently used at head.
	head, tail *affEntry
}

type affEntry struct {
	key        uint64
	id         uint64
	prev, next *affEntry
}

const maxAffinity = 1 << 16

func newAffinity() *affinity { return &affinity{m: make(map[uint64]*affEntry)} }

// get returns the instance key was last sent to, or 0.
func (a *affinity) get(key uint64) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.m[key]
	if e == nil {
		return 0
	}
	a.moveFront(e)
	return e.id
}

// set records that key was sent to id.
func (a *affinity) set(key, id uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.m[key]
	if e == nil {
		if len(a.m) >= maxAffinity {
			old := a.tail
			a.unlink(old)
			delete(a.m, old.key)
			e = old // reused
		} else {
			e = &affEntry{}
		}
		e.key = key
		a.m[key] = e
		a.pushFront(e)
	} else {
		a.moveFront(e)
	}
	e.id = id
}

func (a *affinity) moveFront(e *affEntry) {
	if a.head == e {
		return
	}
	a.unlink(e)
	a.pushFront(e)
}

func (a *affinity) pushFront(e *affEntry) {
	e.prev, e.next = nil, a.head
	if a.head != nil {
		a.head.prev = e
	}
	a.head = e
	if a.tail == nil {
		a.tail = e
	}
}

func (a *affinity) unlink(e *affEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		a.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		a.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// stuckTarget finds where a client stuck to instance id goes: the instance
// itself while it is routable, or while it drains (it still holds the
// client's session), even when it is stopping (the caller checks); nil
// when it is neither.
func (s *Server) stuckTarget(id uint64) *backend {
	for _, t := range s.table.Snapshot().Targets() {
		if t.ID == id {
			return t.Data.(*backend)
		}
	}
	s.mu.Lock()
	b := s.draining[id]
	s.mu.Unlock()
	return b
}
