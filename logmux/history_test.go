package logmux

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines returns the Line of each record, with "/cut" after cut pieces.
func lines(recs []Record) string {
	var s []string
	for _, r := range recs {
		l := string(r.Line)
		if r.Cut {
			l += "/cut"
		}
		s = append(s, l)
	}
	return strings.Join(s, ",")
}

func TestHistoryBounds(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		input string
		n     int
		want  string
	}{
		{"line bound", Options{HistoryLines: 3}, "1\n2\n3\n4\n5\n", 10, "3,4,5"},
		{"fewer asked", Options{HistoryLines: 3}, "1\n2\n3\n4\n5\n", 2, "4,5"},
		{"byte bound", Options{MaxLine: 6, HistoryBytes: 6}, "ab\ncd\nef\ngh\n", 10, "cd,ef,gh"},
		{"byte bound drops as many as it takes", Options{MaxLine: 6, HistoryBytes: 6}, "a\nb\nc\nd\nefghi\n", 10, "d,efghi"},
		// 4+4+2+2 = 12 bytes: the first piece has to go.
		{"a cut piece counts as a line", Options{MaxLine: 4, HistoryBytes: 10}, "abcdefghij\nxy\n", 10, "efgh/cut,ij,xy"},
		{"cut pieces and the line bound", Options{MaxLine: 4, HistoryLines: 2}, "abcdefghij\n", 10, "efgh/cut,ij"},
		{"byte bound raised to MaxLine", Options{MaxLine: 4, HistoryBytes: 1}, "abcdefghij\n", 10, "ij"},
		{"empty lines count", Options{HistoryLines: 2}, "a\n\n\n", 10, ","},
		{"lines off", Options{HistoryLines: -1}, "a\nb\n", 10, ""},
		{"bytes off", Options{HistoryBytes: -1}, "a\nb\n", 10, ""},
		{"nothing asked", Options{}, "a\nb\n", 0, ""},
		{"defaults", Options{}, "a\nb\n", 10, "a,b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(tt.opts)
			waitClosed(t, m.Attach(strings.NewReader(tt.input), Source{App: "web"}), "the input to be read")
			hist, _, _, cancel := m.Tail(nil, tt.n, 0)
			cancel()
			if got := lines(hist); got != tt.want {
				t.Errorf("history %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHistoryDefaults(t *testing.T) {
	h := New(Options{}).hist
	if h.maxLines != DefaultHistoryLines || h.maxBytes != DefaultHistoryBytes {
		t.Errorf("bounds %d lines, %d bytes; want %d, %d", h.maxLines, h.maxBytes, DefaultHistoryLines, DefaultHistoryBytes)
	}
}

// TestHistoryMatchesModel drives the chunked windows through many wraps,
// with lines that straddle chunks, against a plain slice.
func TestHistoryMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, b := range []struct{ lines, bytes, maxLine int }{
		{300, 40 << 10, 2 << 10},     // both bounds bite
		{5000, 20 << 10, 100},        // the byte bound, with few chunks
		{700, 1 << 20, 16 << 10},     // the line bound
		{1, 16 << 10, 16 << 10},      // one line
		{10_000, 16 << 10, 16 << 10}, // one line of MaxLine fills it
	} {
		h := newHistory(b.lines, b.bytes, b.maxLine)
		info := &srcInfo{app: "web"}
		var model []Record
		modelBytes := 0
		for i := range 4000 {
			n := rng.IntN(b.maxLine + 1)
			if rng.IntN(10) == 0 {
				n = b.maxLine
			}
			line := []byte(strings.Repeat(string(rune('a'+i%26)), n))
			if n >= 8 {
				copy(line, fmt.Sprintf("%08d", i))
			}
			cut := rng.IntN(3) == 0
			h.add(int64(i), info, line, cut)
			model = append(model, Record{Line: line, Cut: cut})
			modelBytes += n
			for len(model) > b.lines || modelBytes > h.maxBytes {
				modelBytes -= len(model[0].Line)
				model = model[1:]
			}
			if i%97 != 0 && i != 3999 {
				continue
			}
			got := h.last(nil, len(model)+5)
			if len(got) != len(model) {
				t.Fatalf("%+v after %d lines: history holds %d, want %d", b, i+1, len(got), len(model))
			}
			for k := range got {
				if string(got[k].Line) != string(model[k].Line) || got[k].Cut != model[k].Cut {
					t.Fatalf("%+v after %d lines: entry %d is %.20q/%v, want %.20q/%v", b, i+1, k, got[k].Line, got[k].Cut, model[k].Line, model[k].Cut)
				}
			}
			if len(got) > 0 && got[len(got)-1].Time.UnixNano() != int64(i) {
				t.Fatalf("newest entry has time %v, want %d", got[len(got)-1].Time.UnixNano(), i)
			}
		}
		// Memory follows what is held: the live chunks and at most two
		// spares.
		held := 0
		for _, s := range h.buf.slots {
			if s != nil {
				held++
			}
		}
		live := 0
		if h.end > h.start {
			live = int((h.end-1)>>histByteShift - h.start>>histByteShift + 1)
		}
		if held != live || len(h.buf.free) > 2 {
			t.Errorf("%+v: %d byte chunks held and %d spare, want %d held and at most 2 spare", b, held, len(h.buf.free), live)
		}
	}
}

// A burst of long lines fills the byte bound; once short lines have pushed
// it out, the chunks it used are released but for two.
func TestHistoryReleasesChunks(t *testing.T) {
	h := newHistory(100, 1<<20, 16<<10)
	info := &srcInfo{app: "web"}
	long := make([]byte, 16<<10)
	for range 64 {
		h.add(0, info, long, false)
	}
	if got := len(h.last(nil, 1000)); got != 64 {
		t.Fatalf("holds %d long lines, want 64", got)
	}
	for range 100 {
		h.add(0, info, []byte("short"), false)
	}
	held := len(h.buf.free)
	for _, s := range h.buf.slots {
		if s != nil {
			held++
		}
	}
	if held > 3 {
		t.Errorf("%d byte chunks of 16 KiB held for 500 bytes of history, want at most 3", held)
	}
}

func TestTailFilterAndOwnership(t *testing.T) {
	m := New(Options{Now: fixedClock})
	tag := &Tag{}
	tag.Set("-")
	waitClosed(t, m.Attach(strings.NewReader("w1\nw2\n"), Source{App: "web", PID: 1, Tag: tag}), "web output")
	tag.Set("") // later lines only
	waitClosed(t, m.Attach(strings.NewReader("a1\na2\na3\n"), Source{App: "api", Instance: 1, PID: 2, Stream: Stderr}), "api output")
	m.Printf("r1")

	api := func(r *Record) bool { return r.App == "api" }
	hist, recs, _, cancel := m.Tail(api, 2, 10)
	if got := lines(hist); got != "a2,a3" {
		t.Errorf("filtered history %q, want a2,a3", got)
	}
	for _, r := range hist {
		if r.App != "api" || r.Instance != 1 || r.PID != 2 || r.Stream != Stderr || r.Tag != "" || !r.Time.Equal(t0) {
			t.Errorf("history record %+v", r)
		}
		r.Line[0] = 'X' // owned by the receiver
	}
	m.Printf("not api")
	waitClosed(t, m.Attach(strings.NewReader("a4\n"), Source{App: "api"}), "more api output")
	if r := recv(t, recs, "the live api line"); string(r.Line) != "a4" {
		t.Errorf("live record %q, want a4", r.Line)
	}
	cancel()

	all, _, _, cancel := m.Tail(nil, 100, 0)
	cancel()
	if got := lines(all); got != "w1,w2,a1,a2,a3,r1,not api,a4" {
		t.Errorf("history %q", got)
	}
	if all[0].Tag != "-" || all[0].PID != 1 || all[5].App != runnerName || all[5].Stream != Runner {
		t.Errorf("history lost a source's fields: %+v, %+v", all[0], all[5])
	}
}

// TestTailNoGap takes Tails while several sources flood: the history and the
// live records of each must join without a line lost or repeated.
func TestTailNoGap(t *testing.T) {
	const (
		sources = 3
		perSrc  = 3000
	)
	out := &countingWriter{}
	m := New(Options{Out: out, HistoryLines: 500})
	var dones []<-chan struct{}
	var writers []io.WriteCloser
	for i := range sources {
		r, w := pipe(t)
		dones = append(dones, m.Attach(r, Source{App: "app" + strconv.Itoa(i)}))
		writers = append(writers, w)
	}
	type tail struct {
		hist []Record
		recs <-chan Record
	}
	var tails []tail
	var cancels []func()
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			for n := range perSrc {
				fmt.Fprintf(w, "%d\n", n)
				if i == 0 && n%600 == 300 {
					// Tails taken from the writing goroutine land while
					// the others keep writing; the first waits for the
					// history to fill.
					for deadline := time.Now().Add(waitLimit); out.lines.Load() < 300 && time.Now().Before(deadline); {
						time.Sleep(time.Millisecond)
					}
					h, recs, _, cancel := m.Tail(nil, 200, sources*perSrc)
					tails = append(tails, tail{h, recs})
					cancels = append(cancels, cancel)
				}
			}
			w.Close()
		})
	}
	wg.Wait()
	for _, d := range dones {
		waitClosed(t, d, "a source to reach EOF")
	}
	for _, c := range cancels {
		c()
	}
	if len(tails) != 5 {
		t.Fatalf("took %d tails, want 5", len(tails))
	}
	for k, tl := range tails {
		next := map[string]int{}
		check := func(r Record, from string) {
			n, err := strconv.Atoi(string(r.Line))
			if err != nil {
				t.Fatalf("tail %d: bad line %q", k, r.Line)
			}
			if want, seen := next[r.App]; seen && n != want {
				t.Fatalf("tail %d: %s line %d from %s, want %d (lost or repeated)", k, r.App, n, from, want)
			}
			next[r.App] = n + 1
		}
		if len(tl.hist) != 200 {
			t.Errorf("tail %d: history of %d lines, want 200", k, len(tl.hist))
		}
		for _, r := range tl.hist {
			check(r, "the history")
		}
		for r := range tl.recs {
			check(r, "the channel")
		}
		for app, n := range next {
			if n != perSrc {
				t.Errorf("tail %d: %s ends at line %d, want %d", k, app, n, perSrc)
			}
		}
	}
}
