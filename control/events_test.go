package control

import (
	"testing"

	"github.com/clusterrun/clusterrun/status"
)

// The hub never blocks its publisher: a stream that does not read loses
// events past its buffer and counts them; the others get every event, in
// order, numbered without gaps.
func TestHubDropsForSlowStreamsOnly(t *testing.T) {
	h := NewHub()
	slow, slowDropped, cancelSlow := h.Subscribe()
	fast, fastDropped, cancelFast := h.Subscribe()
	defer cancelSlow()
	got := make(chan []uint64)
	go func() {
		var seqs []uint64
		for ev := range fast {
			seqs = append(seqs, ev.Seq)
		}
		got <- seqs
	}()
	n := eventBuffer + 100
	for i := 0; i < n; i++ {
		h.Observe(status.Lifecycle{Kind: status.Crashed, App: "web", Instance: i, Reason: "exited with status 1"})
	}
	if d := slowDropped(); d != 100 {
		t.Errorf("the slow stream lost %d events, want 100", d)
	}
	first := <-slow
	if first.Seq != 1 || first.Kind != status.Crashed || first.Reason != "exited with status 1" || first.Time.IsZero() {
		t.Errorf("first event %+v", first)
	}
	h.Close()
	seqs := <-got
	if fastDropped() != 0 && len(seqs)+int(fastDropped()) != n {
		t.Errorf("the fast stream got %d and lost %d of %d", len(seqs), fastDropped(), n)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("events out of order: %d after %d", seqs[i], seqs[i-1])
		}
	}
	cancelFast() // after Close: no panic, no double close
	// A stream opened after Close ends at once.
	late, _, cancelLate := h.Subscribe()
	if _, ok := <-late; ok {
		t.Error("a stream opened after Close got an event")
	}
	cancelLate()
}
