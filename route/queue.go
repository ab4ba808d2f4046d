package route

import (
	"sync"
	"sync/atomic"
)

// WaitQueue holds the connections or requests that wait for a target able
// to take them: none is routable, or every routable one is at its limit
// (see Target.Usable). It is first in, first out: a waiter that is woken
// and still finds no room goes back to the front. Its owner (the event loop
// of a connection, the goroutine of a request) is told through Wake, never
// with the queue's lock held.
type WaitQueue struct {
	mu         sync.Mutex
	head, tail *Waiter
	// n is the length, also read without mu: the common case, nobody
	// waiting, costs one atomic load per connection.
	n atomic.Int64
}

// Waiter is one entry; Wake runs on the goroutine that woke it and must
// only hand the news to the waiter's owner.
type Waiter struct {
	prev, next *Waiter
	in         bool
	Wake       func()
}

// Empty reports whether nobody waits; new connections that find someone
// waiting queue behind them instead of overtaking.
func (q *WaitQueue) Empty() bool { return q.n.Load() == 0 }

// PushBack puts w at the end, unless it is in.
func (q *WaitQueue) PushBack(w *Waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.in {
		return
	}
	w.in, w.prev, w.next = true, q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n.Add(1)
}

// PushFront puts w at the front, unless it is in.
func (q *WaitQueue) PushFront(w *Waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.in {
		return
	}
	w.in, w.prev, w.next = true, nil, q.head
	if q.head != nil {
		q.head.prev = w
	} else {
		q.tail = w
	}
	q.head = w
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

// WakeOne wakes the first waiter, if any: one lease ended, so one
// connection may now fit.
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

// WakeSecond wakes the waiter after the first: the first was woken for
// room it could not use, and went back to the front.
func (q *WaitQueue) WakeSecond() {
	q.mu.Lock()
	var w *Waiter
	if q.head != nil {
		w = q.head.next
	}
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

// Len is the number of waiters.
func (q *WaitQueue) Len() int { return int(q.n.Load()) }
