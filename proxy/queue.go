package proxy

import (
	"sync"
	"sync/atomic"
)

// waitQueue holds the connections that wait for a backend able to take
// them: none is routable, or every routable one is at its limit (see
// backend.full). It is first in, first out: each waiter has a ticket from
// its first enqueue, and one that is woken and still finds no room (another
// took it first) goes back to its place by that ticket. Its owner (the
// event loop of the connection, or whatever an HTTP-aware mode parks a
// request on) is told through wake, never with the queue's lock held.
type waitQueue struct {
	mu         sync.Mutex
	head, tail *waiter
	tickets    uint64
	// n is the length, also read without mu: the common case, nobody
	// waiting, costs one atomic load per connection.
	n atomic.Int64
}

// waiter is one entry; wake runs on the goroutine that woke it and must
// only hand the news to the waiter's owner.
type waiter struct {
	prev, next *waiter
	in         bool
	ticket     uint64 // 0 until first queued
	wake       func()
}

// empty reports whether nobody waits; new connections that find someone
// waiting queue behind them instead of overtaking.
func (q *waitQueue) empty() bool { return q.n.Load() == 0 }

// push puts w in its place: at the back the first time, by its ticket
// after a wake-up that found no room.
func (q *waitQueue) push(w *waiter) {
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

// remove takes w out if it is in; it reports whether it was.
func (q *waitQueue) remove(w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unlinkLocked(w)
}

func (q *waitQueue) unlinkLocked(w *waiter) bool {
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

// wakeOne wakes the first waiter, if any: one lease ended, so one
// connection may now fit.
func (q *waitQueue) wakeOne() {
	if q.empty() {
		return
	}
	q.mu.Lock()
	w := q.head
	if w != nil {
		q.unlinkLocked(w)
	}
	q.mu.Unlock()
	if w != nil {
		w.wake()
	}
}

// wakeAll wakes every waiter, in order: the routable set changed.
func (q *waitQueue) wakeAll() {
	if q.empty() {
		return
	}
	q.mu.Lock()
	var ws []*waiter
	for w := q.head; w != nil; w = w.next {
		ws = append(ws, w)
	}
	for _, w := range ws {
		q.unlinkLocked(w)
	}
	q.mu.Unlock()
	for _, w := range ws {
		w.wake()
	}
}
