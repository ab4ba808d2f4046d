package route

import (
	"sync"
	"sync/atomic"
)

// WaitQueue holds the connections or requests that wait for a target able
// to take them: none is routable, or every routable one is at its limit
// (see Target.Usable). It is first in, first out: each waiter has a ticket
// from its first Push, and one that is woken and still finds no room
// (another took it first) goes back to its place by that ticket. Its owner
// (the event loop of a connection, the goroutine of a request) is told
// through Wake, never with the queue's lock held.
type WaitQueue struct {
	mu         sync.Mutex
	head, tail *Waiter
	tickets    uint64
	// n is the length, also read without mu: the common case, nobody
	// waiting, costs one atomic load per connection.
	n atomic.Int64
}

// Waiter is one entry; Wake runs on the goroutine that woke it and must
// only hand the news to the waiter's owner. A Waiter is reused for the
// same wait: its ticket keeps its place.
type Waiter struct {
	prev, next *Waiter
	in         bool
	ticket     uint64 // 0 until first queued
	Wake       func()
}

// Empty reports whether nobody waits; newcomers that find someone waiting
// queue behind them instead of overtaking.
func (q *WaitQueue) Empty() bool { return q.n.Load() == 0 }

// Len is the number of waiters.
func (q *WaitQueue) Len() int { return int(q.n.Load()) }

// Push puts w in its place: at the back the first time, by its ticket
// after a wake-up that found no room.
func (q *WaitQueue) Push(w *Waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.in {
		return
	}
	if w.ticket == 0 {
		q.tickets++
		w.ticket = q.tickets
	}
	// Walk back from the tail to the last waiter with a lower ticket: a
	// new waiter stops at once, one put back stops near the front.
	after := q.tail
	for after != nil && after.ticket > w.ticket {
		after = after.prev
	}
	w.in, w.prev = true, after
	if after == nil {
		w.next, q.head = q.head, w
	} else {
		w.next, after.next = after.next, w
	}
	if w.next != nil {
		w.next.prev = w
	} else {
		q.tail = w
	}
	q.n.Add(1)
}

// Remove takes w out if it is in; it reports whether it was.
func (q *WaitQueue) Remove(w *Waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unlinkLocked(w)
}

func (q *WaitQueue) unlinkLocked(w *Waiter) bool {
	if !w.in {
		return false
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.in, w.prev, w.next = false, nil, nil
	q.n.Add(-1)
	return true
}

// WakeOne wakes the first waiter, if any: one lease ended, so one waiter
// may now fit.
func (q *WaitQueue) WakeOne() {
	if q.Empty() {
		return
	}
	q.mu.Lock()
	w := q.head
	if w != nil {
		q.unlinkLocked(w)
	}
	q.mu.Unlock()
	if w != nil {
		w.Wake()
	}
}

// WakeAll wakes every waiter, in order: the routable set changed.
func (q *WaitQueue) WakeAll() {
	if q.Empty() {
		return
	}
	q.mu.Lock()
	var ws []*Waiter
	for w := q.head; w != nil; w = w.next {
		ws = append(ws, w)
	}
	for _, w := range ws {
		q.unlinkLocked(w)
	}
	q.mu.Unlock()
	for _, w := range ws {
		w.Wake()
	}
}
