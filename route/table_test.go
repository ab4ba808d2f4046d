package route

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPick(t *testing.T) {
	mk := func(loads ...int64) []*Target {
		var bs []*Target
		for i, l := range loads {
			b := &Target{Backend: Backend{ID: uint64(i)}}
			b.load.Store(l)
			bs = append(bs, b)
		}
		return bs
	}
	for _, tc := range []struct {
		name  string
		mode  Balance
		loads []int64
		rot   uint64
		tried []int
		want  int // index, -1 for none
	}{
		{"least: fewest wins", LeastLoad, []int64{3, 1, 2}, 0, nil, 1},
		{"least: fewest wins from any start", LeastLoad, []int64{3, 1, 2}, 2, nil, 1},
		{"least: tie goes to the rotation's start", LeastLoad, []int64{0, 0, 0}, 0, nil, 0},
		{"least: tie rotates", LeastLoad, []int64{0, 0, 0}, 1, nil, 1},
		{"least: tie rotates and wraps", LeastLoad, []int64{0, 0, 0}, 5, nil, 2},
		{"least: tie among the fewest only", LeastLoad, []int64{1, 0, 1, 0}, 2, nil, 3},
		{"least: tried is skipped", LeastLoad, []int64{5, 0, 1}, 0, []int{1}, 2},
		{"least: all tried", LeastLoad, []int64{0, 0}, 0, []int{0, 1}, -1},
		{"rr: in turn", RoundRobin, []int64{0, 9, 0}, 1, nil, 1},
		{"rr: wraps", RoundRobin, []int64{0, 0, 0}, 4, nil, 1},
		{"rr: tried is skipped", RoundRobin, []int64{0, 0, 0}, 1, []int{1}, 2},
		{"rr: all tried", RoundRobin, []int64{0}, 0, []int{0}, -1},
		{"empty", LeastLoad, nil, 0, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Snapshot{list: mk(tc.loads...)}
			var tried []*Target
			for _, i := range tc.tried {
				tried = append(tried, s.list[i])
			}
			got := s.pick(tc.mode, tc.rot, 0, tried)
			switch {
			case tc.want < 0 && got != nil:
				t.Fatalf("pick = backend %d, want none", got.ID)
			case tc.want >= 0 && got != s.list[tc.want]:
				t.Fatalf("pick = %v, want backend %d", got, tc.want)
			}
		})
	}
}

// A backend that stays in the set keeps its load across SetBackends calls;
// duplicates count once; a backend that comes back after a removal is new.
func TestSetBackendsKeepsState(t *testing.T) {
	p := New(Options{})
	a, b := Backend{ID: 1, Addr: "127.0.0.1:1001"}, Backend{ID: 2, Addr: "127.0.0.1:1002"}
	p.SetBackends([]Backend{a, a, b})
	first := p.snap.Load().list
	if len(first) != 2 {
		t.Fatalf("set of a, a, b holds %d backends, want 2", len(first))
	}
	first[0].load.Store(3)
	p.SetBackends([]Backend{b, a})
	if got := p.snap.Load().find(a); got != first[0] || got.load.Load() != 3 || got.removed.Load() {
		t.Fatalf("a lost its state across SetBackends: %+v", got)
	}
	p.SetBackends([]Backend{b, {ID: 1, Addr: "127.0.0.1:2001"}}) // same ID, new address
	if !first[0].removed.Load() {
		t.Fatal("a backend whose address changed was not marked removed")
	}
	p.SetBackends([]Backend{a, b})
	if got := p.snap.Load().find(a); got == first[0] || got.load.Load() != 0 {
		t.Fatal("a backend back after a removal reused the removed one's state")
	}
}

func TestLimiter(t *testing.T) {
	var got []string
	l := NewLimiter(func(f string, args ...any) { got = append(got, fmt.Sprintf(f, args...)) })
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	l.Printf("backend %d failed", 1)
	l.Printf("backend %d failed", 2) // held back
	l.Printf("other %s", "kind")     // another format: passes
	now = now.Add(LogEvery - time.Millisecond)
	l.Printf("backend %d failed", 3) // still held back
	now = now.Add(time.Millisecond)
	l.Printf("backend %d failed", 4) // passes, with the count
	want := []string{
		"backend 1 failed",
		"other kind",
		"backend 4 failed (2 similar messages suppressed in the last 5s)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	NewLimiter(nil).Printf("silent %d", 1) // nil Logf: no panic
}

// A hung backend with nobody waiting on it takes one connection: the probe
// that finds out whether it answers again. It must never be shut out for
// good, or an instance that was merely slow would never get traffic again.
func TestHungBackendTakesOneProbe(t *testing.T) {
	b := &Target{Backend: Backend{ID: 1}}
	b.hung.Store(true)
	if !b.Usable() {
		t.Fatal("a hung backend with no connection waiting is not usable: nothing would ever clear it")
	}
	b.unanswered.Store(1)
	if b.Usable() {
		t.Fatal("a hung backend with a connection waiting on it is still usable")
	}
}
