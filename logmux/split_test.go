package logmux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

type piece struct {
	line string
	cut  bool
}

func (p piece) String() string { return fmt.Sprintf("%q/%v", p.line, p.cut) }

// bufs is a lineReader configuration: its own buffer and the borrowed ones.
type bufs struct{ own, big int }

// bufConfigs are the production sizes and tiny ones that make every read
// switch buffers, fill the own buffer, or carry a line over.
func bufConfigs(maxLine int) map[string]bufs {
	return map[string]bufs{
		"default":       {smallRead, bigSize(maxLine)},
		"own 1":         {1, maxLine + 2},
		"own 3, big +1": {3, maxLine + 3},
		"own 5":         {5, 2*maxLine + 4},
	}
}

func newPool(size int, gets *int) *sync.Pool {
	return &sync.Pool{New: func() any {
		if gets != nil {
			*gets++
		}
		b := make([]byte, size)
		return &b
	}}
}

// splitAll runs the read loop of one source over r and returns its pieces.
func splitAll(r io.Reader, maxLine int, b bufs) []piece {
	var got []piece
	lr := newLineReader(r, b.own, newPool(b.big, nil))
	lr.run(func(data []byte, clean int, eof bool) int {
		return scanLines(data, clean, eof, maxLine, func(line []byte, cut bool) {
			got = append(got, piece{string(line), cut})
		})
	})
	return got
}

// reference splits in with no reads at all: what any read pattern must give.
func reference(in string, maxLine int) []piece {
	var got []piece
	lines := strings.Split(in, "\n")
	for i, l := range lines {
		if i == len(lines)-1 && l == "" {
			break
		}
		if i < len(lines)-1 {
			l = strings.TrimSuffix(l, "\r")
		}
		for len(l) > maxLine {
			k := cutPoint([]byte(l), maxLine)
			got = append(got, piece{l[:k], true})
			l = l[k:]
		}
		got = append(got, piece{l, false})
	}
	return got
}

func whole(lines ...string) []piece {
	var p []piece
	for _, l := range lines {
		p = append(p, piece{l, false})
	}
	return p
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []piece
	}{
		{"lines", "a\nbc\n", 8, whole("a", "bc")},
		{"crlf", "a\r\nbc\r\n", 8, whole("a", "bc")},
		{"lone cr is content", "a\rb\n", 8, whole("a\rb")},
		{"empty lines", "\n\r\n\n", 8, whole("", "", "")},
		{"trailing partial line", "a\nlast", 8, whole("a", "last")},
		// A trailing "\r" at EOF is not a CRLF: nothing says a "\n" was coming.
		{"trailing partial line keeps its cr", "a\nprogress 50%\r", 16, whole("a", "progress 50%\r")},
		{"nothing", "", 8, nil},
		{"exactly maxLine is not cut", "abcd\n", 4, whole("abcd")},
		{"exactly maxLine with crlf is not cut", "abcd\r\nx\n", 4, whole("abcd", "x")},
		{"exactly maxLine at eof", "abcd", 4, whole("abcd")},
		{"one over", "abcde\n", 4, []piece{{"abcd", true}, {"e", false}}},
		{"long", "abcdefghij\nk\n", 4, []piece{{"abcd", true}, {"efgh", true}, {"ij", false}, {"k", false}}},
		{"long with crlf", "abcdefghij\r\n", 4, []piece{{"abcd", true}, {"efgh", true}, {"ij", false}}},
		{"long without newline", "abcdefghij", 4, []piece{{"abcd", true}, {"efgh", true}, {"ij", false}}},
		{"cut on a rune boundary", "aé€x\n", 4, []piece{{"aé", true}, {"€x", false}}},
		{"cr before the cut is content", "abc\rdefgh\n", 4, []piece{{"abc\r", true}, {"defg", true}, {"h", false}}},
		// No boundary within reach: the cut falls at maxLine.
		{"rune wider than maxLine", "😀😀\n", 2, []piece{{"\xf0\x9f", true}, {"\x98\x80", true}, {"\xf0\x9f", true}, {"\x98\x80", false}}},
		{"invalid utf-8", "\x80\x80\x80\x80\x80\x80\n", 4, []piece{{"\x80\x80\x80\x80", true}, {"\x80\x80", false}}},
	}
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"data+EOF": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
		"one+EOF":  func(s string) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(strings.NewReader(s))) },
		"read fail": func(s string) io.Reader {
			return io.MultiReader(strings.NewReader(s), iotest.ErrReader(errors.New("EIO")))
		},
	}
	for _, tt := range tests {
		if ref := reference(tt.in, tt.maxLine); fmt.Sprint(ref) != fmt.Sprint(tt.want) {
			t.Errorf("%s: the reference splitter gives %v, want %v", tt.name, ref, tt.want)
		}
		for rname, mk := range readers {
			for bname, b := range bufConfigs(tt.maxLine) {
				t.Run(tt.name+"/"+rname+"/"+bname, func(t *testing.T) {
					got := splitAll(mk(tt.in), tt.maxLine, b)
					if fmt.Sprint(got) != fmt.Sprint(tt.want) {
						t.Errorf("split(%q, maxLine=%d)\n got %v\nwant %v", tt.in, tt.maxLine, got, tt.want)
					}
				})
			}
		}
	}
}

// chunkReader returns its input in reads of the given sizes, cycling, each
// capped by the caller's buffer: how a pipe delivers a writer's writes.
type chunkReader struct {
	in    []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.in[:min(len(r.in), r.sizes[r.i%len(r.sizes)])])
	r.i++
	r.in = r.in[n:]
	return n, nil
}

// checkSplit holds the read loop to the reference for one input, read
// pattern and buffer configuration: over-long lines cut the same wherever
// the reads and the buffer switches fall.
func checkSplit(t *testing.T, in []byte, maxLine int, sizes []int, b bufs) {
	t.Helper()
	got := splitAll(&chunkReader{in: in, sizes: sizes}, maxLine, b)
	if want := reference(string(in), maxLine); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("maxLine=%d reads %v buffers %+v, input %q\n got %v\nwant %v", maxLine, sizes, b, in, got, want)
	}
}

func TestSplitAnyReadPattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("ab\n\r\né€")
	for range 2000 {
		in := make([]byte, rng.IntN(200))
		for i := range in {
			in[i] = alphabet[rng.IntN(len(alphabet))]
		}
		maxLine := 1 + rng.IntN(12)
		sizes := make([]int, 1+rng.IntN(4))
		for i := range sizes {
			sizes[i] = 1 + rng.IntN(40)
		}
		own := 1 + rng.IntN(20)
		checkSplit(t, in, maxLine, sizes, bufs{own: own, big: maxLine + 2 + rng.IntN(30)})
	}
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte("a\r\nbcdefgh\n\xe2\x82\xacxyz"), uint8(4), uint8(3), uint8(2), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, maxLine, own, read1, read2 uint8) {
		ml := 1 + int(maxLine%32)
		checkSplit(t, in, ml, []int{1 + int(read1), 1 + int(read2)}, bufs{own: 1 + int(own%64), big: ml + 2 + int(own)})
	})
}

// TestReadBuffers follows the buffers through a flood and a pause: a read
// that fills the own buffer borrows a big one, a read that drains the pipe
// gives it back, and a long line stopped midway grows the own buffer instead
// of keeping the big one.
func TestReadBuffers(t *testing.T) {
	const maxLine = 16
	var gets int
	r := &scriptReader{chunks: []string{"12345678", "9\nabc", "defghijklm", "xy"}}
	lr := newLineReader(r, 8, newPool(64, &gets))
	type state struct {
		data string
		big  bool
	}
	var states []state
	var got []piece
	lr.run(func(data []byte, clean int, eof bool) int {
		states = append(states, state{string(data), lr.big != nil})
		return scanLines(data, clean, eof, maxLine, func(line []byte, cut bool) {
			got = append(got, piece{string(line), cut})
		})
	})
	want := []state{
		{"12345678", false},        // fills the own buffer...
		{"123456789\nabc", true},   // ...so the next read is big; it drains the pipe...
		{"abcdefgh", false},        // ...so the next is small again, and fills up
		{"abcdefghijklm", true},    // the line is carried over, longer than half the own buffer
		{"abcdefghijklmxy", false}, // into the grown own buffer
		{"abcdefghijklmxy", false}, // EOF
	}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("batches\n got %v\nwant %v", states, want)
	}
	if w := whole("123456789", "abcdefghijklmxy"); fmt.Sprint(got) != fmt.Sprint(w) {
		t.Errorf("got %v, want %v", got, w)
	}
	if len(lr.own) <= 8 || lr.big != nil {
		t.Errorf("own buffer %d bytes, big buffer held: %v; want a grown own buffer and none held", len(lr.own), lr.big != nil)
	}
	// Under the race detector sync.Pool drops some Puts on purpose.
	if gets != 1 && !raceEnabled {
		t.Errorf("the pool allocated %d buffers, want 1 (the first one reused)", gets)
	}
}

// scriptReader returns one chunk per Read, or as much of it as fits.
type scriptReader struct{ chunks []string }

func (r *scriptReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// pieceChecker is the mux output for the long-line tests. It checks each
// written line as it arrives instead of keeping it, so that the memory
// measurement sees only what the mux itself holds.
type pieceChecker struct {
	t       *testing.T
	maxLine int
	prefix  string

	mu       sync.Mutex
	pieces   int
	cuts     int
	total    int
	pos      int // position in the expected byte pattern
	lastCut  bool
	finished bool
}

func (c *pieceChecker) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !bytes.HasSuffix(p, []byte("\n")) {
		c.t.Errorf("piece %d: a Write that does not end a line: %.60q", c.pieces, p)
	}
	for l := range bytes.Lines(p) {
		c.piece(l)
	}
	return len(p), nil
}

func (c *pieceChecker) piece(l []byte) {
	body, ok := bytes.CutPrefix(l, []byte(c.prefix))
	if !ok || !bytes.HasSuffix(body, []byte("\n")) {
		c.t.Errorf("piece %d: malformed output line %.60q", c.pieces, l)
		return
	}
	body = body[:len(body)-1]
	body, cut := bytes.CutSuffix(body, []byte(cutMarker))
	if len(body) > c.maxLine {
		c.t.Errorf("piece %d: %d bytes, want at most MaxLine=%d", c.pieces, len(body), c.maxLine)
	}
	for _, b := range body {
		if b != pattern(c.pos) {
			c.t.Errorf("piece %d: byte %d is %q, want %q", c.pieces, c.pos, b, pattern(c.pos))
			break
		}
		c.pos++
	}
	if c.finished {
		c.t.Errorf("piece %d arrived after the uncut last piece", c.pieces)
	}
	c.pieces++
	c.total += len(body)
	if cut {
		c.cuts++
	} else {
		c.finished = true
	}
}

func pattern(i int) byte { return 'a' + byte(i%16) }

func TestLongLines(t *testing.T) {
	const (
		size    = 1 << 20
		maxLine = 4 << 10
	)
	for _, tt := range []struct {
		name string
		end  string
	}{
		{"1 MiB line", "\n"},
		{"1 MiB stream without newline", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			check := &pieceChecker{t: t, maxLine: maxLine, prefix: "web.0      | "}
			// The history would keep up to 1 MiB of recent pieces on
			// purpose; this measures the read path.
			m := New(Options{Out: check, MaxLine: maxLine, HistoryLines: -1})
			r, w := pipe(t)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)

			done := m.Attach(r, Source{App: "web"})
			chunk := make([]byte, 16<<10) // 16 divides it, so the pattern repeats per chunk
			for i := range chunk {
				chunk[i] = pattern(i)
			}
			for range size / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					t.Fatalf("cannot write to pipe: %v", err)
				}
			}
			if _, err := io.WriteString(w, tt.end); err != nil {
				t.Fatalf("cannot write to pipe: %v", err)
			}
			w.Close()
			waitClosed(t, done, "the long line to be emitted")
			runtime.ReadMemStats(&after)

			check.mu.Lock()
			defer check.mu.Unlock()
			if check.total != size {
				t.Errorf("emitted %d bytes, want %d", check.total, size)
			}
			if want := size / maxLine; check.pieces != want || check.cuts != want-1 || !check.finished {
				t.Errorf("got %d pieces (%d cut, last uncut: %v), want %d pieces, %d cut, last uncut", check.pieces, check.cuts, check.finished, want, want-1)
			}
			// Holding the line whole would cost at least 1 MiB; what the
			// mux allocates does not grow with it: read buffers of 4 KiB
			// (own) and 64 KiB (borrowed), a batch buffer of 128 KiB, and
			// again if a GC empties the pools meanwhile.
			limit := uint64(size / 2)
			grew := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d bytes while streaming %d bytes", grew, size)
			// Under the race detector sync.Pool drops a share of the
			// buffers put back on purpose, so the 64 and 128 KiB
			// buffers are allocated again and again.
			if grew > limit && !raceEnabled {
				t.Errorf("allocated %d bytes while streaming a %d-byte line, want well under the line size", grew, size)
			}
		})
	}
}
