package logmux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

func splitAll(r io.Reader, maxLine int) []piece {
	var got []piece
	split(r, make([]byte, maxLine+2), maxLine, func(line []byte, cut bool) {
		got = append(got, piece{string(line), cut})
	})
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
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got := splitAll(mk(tt.in), tt.maxLine)
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("split(%q, maxLine=%d)\n got %v\nwant %v", tt.in, tt.maxLine, got, tt.want)
				}
			})
		}
	}
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
	body, ok := bytes.CutPrefix(p, []byte(c.prefix))
	if !ok || !bytes.HasSuffix(body, []byte("\n")) {
		c.t.Errorf("piece %d: malformed output line %.60q", c.pieces, p)
		return len(p), nil
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
	return len(p), nil
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
			m := New(Options{Out: check, MaxLine: maxLine})
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
			// Holding the line whole would cost at least 1 MiB; the read
			// buffer is 4 KiB and pooled format buffers are a few KiB.
			limit := uint64(size / 16)
			if raceEnabled {
				limit = size
			}
			grew := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d bytes while streaming %d bytes", grew, size)
			if grew > limit {
				t.Errorf("allocated %d bytes while streaming a %d-byte line, want well under the line size", grew, size)
			}
		})
	}
}
