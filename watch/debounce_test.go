package watch

import (
	"reflect"
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	const q = 100 * time.Millisecond
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	d := newDebouncer(q)
	if _, ok := d.next(); ok {
		t.Fatal("next on an empty debouncer")
	}

	// A burst: the deadline moves with each change, the first path is kept.
	d.add("a", "/a/1", at(0))
	d.add("a", "/a/2", at(50))
	d.add("a", "/a/1", at(90))
	if dl, _ := d.next(); !dl.Equal(at(190)) {
		t.Fatalf("deadline %v, want +190ms", dl.Sub(t0))
	}
	// Another app has its own deadline and does not move a's.
	d.add("b", "/b/1", at(120))
	if got := d.due(at(189)); got != nil {
		t.Fatalf("due early: %v", got)
	}
	if got, want := d.due(at(190)), []fired{{app: "a", path: "/a/1", others: 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("due %v, want %v", got, want)
	}
	if dl, _ := d.next(); !dl.Equal(at(220)) {
		t.Fatalf("b deadline %v, want +220ms", dl.Sub(t0))
	}
	// A new burst of a after its reload is a new reload.
	d.add("a", "/a/3", at(200))
	if got, want := d.due(at(300)), []fired{{app: "a", path: "/a/3"}, {app: "b", path: "/b/1"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("due %v, want %v", got, want)
	}
	if _, ok := d.next(); ok {
		t.Fatal("pending after all were due")
	}
}

func TestDebouncerMaxDelay(t *testing.T) {
	const q = 100 * time.Millisecond
	t0 := time.Unix(1000, 0)
	d := newDebouncer(q)
	// Changes every 50ms without pause: due at the latest 10 periods
	// after the first.
	var got []fired
	for ms := 0; got == nil; ms += 50 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		d.add("a", "/log", now)
		got = d.due(now)
		if ms > 2000 {
			t.Fatal("never due")
		}
		if got != nil && now.Sub(t0) != maxDelayFactor*q {
			t.Fatalf("due after %v, want %v", now.Sub(t0), maxDelayFactor*q)
		}
	}
}

func TestDebouncerCountsBounded(t *testing.T) {
	d := newDebouncer(time.Second)
	now := time.Unix(0, 0)
	for i := range 3 * maxCounted {
		d.add("a", string(rune('a'+i%26))+string(rune(i)), now)
	}
	if got := d.due(now.Add(time.Second)); len(got) != 1 || got[0].others != maxCounted-1 {
		t.Fatalf("due %v", got)
	}
}
