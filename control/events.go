package control

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterrun/clusterrun/status"
)

// Event is one item of /v1/events: one of the runner's lifecycle events
// (status.Lifecycle: an instance started, became ready, crashed, was
// restarted and why; a rollout began or ended and how; a reload was
// rejected; a count changed), numbered.
type Event struct {
	// Seq numbers the runner's events from 1, without gaps: a client that
	// sees a gap lost events (and is also sent a "dropped" event).
	Seq uint64 `json:"seq"`
	status.Lifecycle
}

// eventBuffer is how far a stream may fall behind before it loses events;
// the runner never waits for a client.
const eventBuffer = 256

// Hub fans events out to the open streams. Publish never blocks.
type Hub struct {
	seq    atomic.Uint64
	mu     sync.Mutex
	subs   map[*eventSub]struct{}
	closed bool
}

// A stream's buffer holds pointers: one event is shared by every stream,
// and an idle stream's buffer costs 2 KiB, not the size of 256 events.
type eventSub struct {
	ch      chan *Event
	dropped atomic.Uint64
}

// NewHub returns a hub with no stream.
func NewHub() *Hub { return &Hub{subs: map[*eventSub]struct{}{}} }

// Observe publishes a lifecycle event; the runner calls it on its own
// goroutine. The addresses map is copied: the stream encodes the event
// later, on another goroutine.
func (h *Hub) Observe(ev status.Lifecycle) {
	ev.Addrs = maps.Clone(ev.Addrs)
	h.Publish(Event{Lifecycle: ev})
}

// Publish numbers ev, stamps it if it has no time, and offers it to every
// stream; a stream whose buffer is full loses it (and counts the loss).
func (h *Hub) Publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ev.Seq = h.seq.Add(1)
	p := &ev
	for s := range h.subs {
		select {
		case s.ch <- p:
		default:
			s.dropped.Add(1)
		}
	}
}

// Subscribe opens a stream: events through ch, dropped counting the ones
// lost. cancel closes ch; it is safe to call more than once.
// The events are shared: a receiver must not change them.
func (h *Hub) Subscribe() (ch <-chan *Event, dropped func() uint64, cancel func()) {
	s := &eventSub{ch: make(chan *Event, eventBuffer)}
	h.mu.Lock()
	if h.closed {
		close(s.ch)
	} else {
		h.subs[s] = struct{}{}
	}
	h.mu.Unlock()
	var once sync.Once
	return s.ch, s.dropped.Load, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
	}
}

// Close ends every stream.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
}
