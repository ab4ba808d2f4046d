package logmux

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// payload is line n of source id: it names its writer and sequence number and
// carries a filler long enough, now and then, to exceed the pipe's atomic
// write size (PIPE_BUF) so that the kernel delivers it in several reads.
func payload(id, n int) string {
	size := n % 97
	if n%50 == 0 {
		size = 6000
	}
	return fmt.Sprintf("id=%d seq=%d %s", id, n, strings.Repeat(string(rune('a'+id)), size))
}

func TestConcurrentPipesKeepLinesWholeAndOrdered(t *testing.T) {
	const lines = 400
	out := &lineBuffer{t: t}
	m := New(Options{Out: out})
	m.Declare([]App{{Name: "web", Instances: 2}, {Name: "api", Instances: 2}})

	var sources []Source
	for _, app := range []string{"web", "api"} {
		for inst := range 2 {
			for _, s := range []Stream{Stdout, Stderr} {
				sources = append(sources, Source{App: app, Instance: inst, PID: 100 + len(sources), Stream: s})
			}
		}
	}
	var dones []<-chan struct{}
	var writers sync.WaitGroup
	for id, src := range sources {
		r, w := pipe(t)
		dones = append(dones, m.Attach(r, src))
		writers.Go(func() {
			defer w.Close()
			// Random write sizes split lines across writes and put
			// several lines in one write.
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			var pending []byte
			for n := range lines {
				pending = append(pending, payload(id, n)+"\n"...)
				for len(pending) > 0 && (n == lines-1 || rng.IntN(3) == 0) {
					k := min(len(pending), 1+rng.IntN(8000))
					if _, err := w.Write(pending[:k]); err != nil {
						t.Errorf("source %d: cannot write: %v", id, err)
						return
					}
					pending = pending[k:]
				}
			}
		})
	}
	writers.Wait()
	for i, d := range dones {
		waitClosed(t, d, "source "+strconv.Itoa(i)+" to reach EOF")
	}

	next := make([]int, len(sources))
	for i, l := range out.Lines() {
		label, rest, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("line %d has no label: %.80q", i, l)
		}
		rest = strings.TrimLeft(rest, " ")
		var id, seq int
		if len(rest) < 2 {
			t.Fatalf("line %d has no separator: %.80q", i, l)
		}
		if _, err := fmt.Sscanf(rest[2:], "id=%d seq=%d ", &id, &seq); err != nil || id < 0 || id >= len(sources) {
			t.Fatalf("line %d is not one whole payload: %.80q", i, l)
		}
		src := sources[id]
		sep := "| "
		if src.Stream == Stderr {
			sep = "! "
		}
		if want := fmt.Sprintf("%s.%d", src.App, src.Instance); label != want || rest[:2] != sep {
			t.Fatalf("line %d: payload of %s %v under label %q sep %q", i, want, src.Stream, label, rest[:2])
		}
		if rest[2:] != payload(id, seq) {
			t.Fatalf("line %d: payload damaged or mixed with another: %.80q", i, l)
		}
		if seq != next[id] {
			t.Fatalf("line %d: source %d printed seq %d, want %d (order lost)", i, id, seq, next[id])
		}
		next[id]++
	}
	for id, n := range next {
		if n != lines {
			t.Errorf("source %d: got %d lines, want %d", id, n, lines)
		}
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.writes != len(sources)*lines {
		t.Errorf("got %d Write calls, want one per line (%d)", out.writes, len(sources)*lines)
	}
}

func TestSilentWriterDoesNotBlockOthers(t *testing.T) {
	out := &lineBuffer{t: t}
	m := New(Options{Out: out})
	quietR, quietW := pipe(t)
	busyR, busyW := pipe(t)
	quietDone := m.Attach(quietR, Source{App: "quiet"})
	busyDone := m.Attach(busyR, Source{App: "busy"})

	if _, err := io.WriteString(quietW, "half a li"); err != nil {
		t.Fatal(err)
	}
	for n := range 100 {
		fmt.Fprintf(busyW, "line %d\n", n)
	}
	busyW.Close()
	waitClosed(t, busyDone, "the busy source to finish while the quiet one is stuck mid-line")
	if got := len(out.Lines()); got != 100 {
		t.Fatalf("got %d lines while the quiet source is mid-line, want the busy source's 100", got)
	}
	if strings.Contains(out.String(), "half") {
		t.Fatalf("a partial line was emitted before its end or EOF:\n%s", out)
	}

	io.WriteString(quietW, "ne\n")
	quietW.Close()
	waitClosed(t, quietDone, "the quiet source to reach EOF")
	if lines := out.Lines(); lines[len(lines)-1] != "quiet.0    | half a line" {
		t.Errorf("last line = %q, want the quiet source's whole line", lines[len(lines)-1])
	}
}

// A source attached before a Declare picks up the new padding on its next line.
func TestDeclareAppliesToAttachedSources(t *testing.T) {
	out := &lineBuffer{t: t}
	m := New(Options{Out: out})
	recs, _, cancel := m.Subscribe(nil, 10)
	defer cancel()
	r, w := pipe(t)
	done := m.Attach(r, Source{App: "web"})
	io.WriteString(w, "one\n")
	recv(t, recs, "the first line")
	m.Declare([]App{{Name: "web", Instances: 1}, {Name: "api-gateway", Instances: 100}})
	io.WriteString(w, "two\n")
	w.Close()
	waitClosed(t, done, "the source to reach EOF")
	if want := "web.0      | one\nweb.0          | two\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	out := &lineBuffer{t: t}
	m := New(Options{Out: out})
	recs, dropped, cancel := m.Subscribe(nil, 1)
	for n := range 100 {
		m.Printf("message %d", n) // would hang here if the subscriber could block the mux
	}
	if got := len(out.Lines()); got != 100 {
		t.Errorf("output has %d lines, want 100", got)
	}
	if got := dropped(); got != 99 {
		t.Errorf("dropped() = %d, want 99 (channel of 1, never read)", got)
	}
	if r := recv(t, recs, "the one buffered record"); string(r.Line) != "message 0" || r.App != runnerName || r.Instance != -1 || r.Stream != Runner || r.PID != os.Getpid() {
		t.Errorf("got record %+v, want the first runner message", r)
	}
	cancel()
	cancel() // must be safe
	if _, ok := <-recs; ok {
		t.Error("channel still open after cancel")
	}
	m.Printf("after cancel")
	if got := dropped(); got != 99 {
		t.Errorf("dropped() = %d after cancel, want it to stay 99", got)
	}
}

func TestUnbufferedSubscriberDrops(t *testing.T) {
	m := New(Options{})
	_, dropped, cancel := m.Subscribe(nil, 0)
	defer cancel()
	m.Printf("nobody is receiving")
	if got := dropped(); got != 1 {
		t.Errorf("dropped() = %d, want 1", got)
	}
}

func TestSubscriberFilterAndCopies(t *testing.T) {
	m := New(Options{Now: fixedClock})
	apiOnly, _, cancelAPI := m.Subscribe(func(r *Record) bool { return r.App == "api" }, 100)
	all, _, cancelAll := m.Subscribe(nil, 100)
	waitClosed(t, m.Attach(strings.NewReader("w1\nw2\n"), Source{App: "web", PID: 1}), "web output")
	waitClosed(t, m.Attach(strings.NewReader("a1\na2\n"), Source{App: "api", Instance: 1, PID: 2, Stream: Stderr}), "api output")
	cancelAPI()
	cancelAll()

	var got []string
	for r := range apiOnly {
		if r.App != "api" || r.Instance != 1 || r.PID != 2 || r.Stream != Stderr || !r.Time.Equal(t0) {
			t.Errorf("filtered subscriber got %+v", r)
		}
		got = append(got, string(r.Line))
		r.Line[0] = 'X' // owned by the receiver: must not show up elsewhere
	}
	if strings.Join(got, ",") != "a1,a2" {
		t.Errorf("filtered subscriber got %q, want a1,a2", got)
	}
	got = nil
	for r := range all {
		got = append(got, string(r.Line))
	}
	// The read buffer was reused for later lines, so aliasing would show here.
	if strings.Join(got, ",") != "w1,w2,a1,a2" {
		t.Errorf("subscriber got %q, want w1,w2,a1,a2", got)
	}
}

func TestCancelWhileEmitting(t *testing.T) {
	m := New(Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				m.Printf("tick")
			}
		}
	})
	for range 50 {
		recs, _, cancel := m.Subscribe(nil, 4)
		<-recs
		cancel()
		for range recs {
		}
	}
	close(stop)
	wg.Wait()
}

type failingWriter struct {
	mu    sync.Mutex
	calls int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	return 0, syscall.EPIPE
}

// When our own stdout is closed, the pipes must keep draining so that
// children do not block.
func TestWriteErrorsKeepDraining(t *testing.T) {
	fw := &failingWriter{}
	m := New(Options{Out: fw})
	r, w := pipe(t)
	done := m.Attach(r, Source{App: "web"})
	for n := range 1000 {
		if _, err := fmt.Fprintf(w, "line %d\n", n); err != nil {
			t.Fatalf("child's write failed: %v", err)
		}
	}
	w.Close()
	waitClosed(t, done, "the source to drain despite write errors")
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.calls != 1000 {
		t.Errorf("got %d Write calls, want 1000", fw.calls)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	m := New(Options{Out: io.Discard})
	var dones []<-chan struct{}
	var ws []*os.File
	for i := range 20 {
		r, w := pipe(t)
		dones = append(dones, m.Attach(r, Source{App: "web", Instance: i}))
		ws = append(ws, w)
	}
	for _, w := range ws {
		io.WriteString(w, "bye\nand a partial")
		w.Close()
	}
	for _, d := range dones {
		waitClosed(t, d, "a source to reach EOF")
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= base }, "Attach goroutines to exit (baseline "+strconv.Itoa(base)+")")
}
