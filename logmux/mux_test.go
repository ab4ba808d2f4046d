package logmux

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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
	// A batch is the lines of one read of one pipe: one label and one
	// separator throughout.
	for i, w := range out.Writes() {
		var first string
		for l := range strings.Lines(w) {
			label := l[:strings.IndexAny(l, "|!")+1]
			if first == "" {
				first = label
			} else if label != first {
				t.Fatalf("Write %d mixes %q and %q:\n%.300s", i, first, label, w)
			}
		}
	}
}

// The lines that one read brings go out in one Write; a read that fills the
// small buffer is followed by a big one. A strings.Reader returns all it has
// up to the buffer's size, as a pipe does with what it holds.
func TestBatchPerRead(t *testing.T) {
	for _, tt := range []struct {
		lines, writes int
	}{
		{100, 1},  // 1.1 KB: one read into the source's own 4 KiB buffer
		{5000, 2}, // 55 KB: a full 4 KiB read, then the rest in one big read
	} {
		out := &lineBuffer{t: t}
		m := New(Options{Out: out})
		var in strings.Builder
		for n := range tt.lines {
			fmt.Fprintf(&in, "line %05d\n", n)
		}
		waitClosed(t, m.Attach(strings.NewReader(in.String()), Source{App: "web"}), "the source to reach EOF")
		if got := len(out.Lines()); got != tt.lines {
			t.Errorf("%d lines in: got %d out", tt.lines, got)
		}
		if got := len(out.Writes()); got != tt.writes {
			t.Errorf("%d lines in: got %d Writes, want %d", tt.lines, got, tt.writes)
		}
	}
}

// A quiet source's line goes out at once while another source floods: it
// has its own reader and nothing waits for a batch to fill.
func TestQuietLineNotHeldBackByFlood(t *testing.T) {
	out := &countingWriter{}
	m := New(Options{Out: out})
	recs, _, cancel := m.Subscribe(func(r *Record) bool { return r.App == "quiet" }, 1)
	defer cancel()
	floodR, floodW := pipe(t)
	quietR, quietW := pipe(t)
	floodDone := m.Attach(floodR, Source{App: "flood"})
	quietDone := m.Attach(quietR, Source{App: "quiet"})

	stop := make(chan struct{})
	var flooding sync.WaitGroup
	var floodOver atomic.Bool
	flooding.Go(func() {
		defer floodOver.Store(true)
		chunk := []byte(strings.Repeat("flood flood flood flood flood flood flood flood\n", 1000))
		deadline := time.Now().Add(waitLimit)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := floodW.Write(chunk); err != nil {
				return
			}
		}
	})
	waitFor(t, func() bool { return out.lines.Load() > 10_000 }, "the flood to be under way")
	start := time.Now()
	io.WriteString(quietW, "hello\n")
	r := recv(t, recs, "the quiet source's line")
	t.Logf("the quiet line took %v during the flood", time.Since(start))
	if floodOver.Load() {
		t.Error("the quiet line came out only after the flood")
	}
	if string(r.Line) != "hello" {
		t.Errorf("got %q, want the quiet source's line", r.Line)
	}
	close(stop)
	flooding.Wait()
	quietW.Close()
	floodW.Close()
	waitClosed(t, quietDone, "the quiet source to end")
	waitClosed(t, floodDone, "the flood to end")
}

// countingWriter counts the lines written to it, for tests that produce too
// many to keep.
type countingWriter struct{ lines atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
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
	if want := "web.0      | one\nweb.0           | two\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// A Tag changed while a process runs shows from the next batch on, in the
// text prefix and in the records.
func TestTagFollowsSet(t *testing.T) {
	out := &lineBuffer{t: t}
	m := New(Options{Out: out})
	recs, _, cancel := m.Subscribe(nil, 10)
	defer cancel()
	r, w := pipe(t)
	tag := &Tag{}
	if tag.String() != "" || (*Tag)(nil).String() != "" {
		t.Errorf("a new or nil Tag is %q / %q, want empty", tag.String(), (*Tag)(nil).String())
	}
	done := m.Attach(r, Source{App: "web", Tag: tag})
	var tags []string
	for _, s := range []string{"+", "", "-"} {
		if tag.Set(s); tag.String() != s {
			t.Errorf("after Set(%q) the tag is %q", s, tag.String())
		}
		io.WriteString(w, "line\n")
		tags = append(tags, recv(t, recs, "the line tagged "+s).Tag)
	}
	w.Close()
	waitClosed(t, done, "the source to reach EOF")
	if want := "web.0+     | line\nweb.0      | line\nweb.0-     | line\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	if strings.Join(tags, ",") != "+,,-" {
		t.Errorf("record tags %q, want +,,-", tags)
	}
}

// Set races with the reading of a busy source: every line carries one of the
// tags whole.
func TestTagSetWhileFlooding(t *testing.T) {
	out := &lineBuffer{t: t}
	m := New(Options{Out: out})
	r, w := pipe(t)
	tag := &Tag{}
	done := m.Attach(r, Source{App: "web", Tag: tag})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := range 2000 {
			tag.Set([]string{"+", "", "-"}[n%3])
		}
	})
	for range 2000 {
		io.WriteString(w, "x\n")
	}
	wg.Wait()
	w.Close()
	waitClosed(t, done, "the source to reach EOF")
	for _, l := range out.Lines() {
		if l != "web.0+     | x" && l != "web.0-     | x" && l != "web.0      | x" {
			t.Fatalf("line %q", l)
		}
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
	lines int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines += bytes.Count(p, []byte{'\n'})
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
	if fw.lines != 1000 {
		t.Errorf("got %d lines written, want 1000", fw.lines)
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
