package logmux

import (
	"bytes"
	"io"
	"sync"
	"unicode/utf8"
)

// Read buffer sizes. A source keeps a small buffer of its own for the reads
// of a quiet app, which is what most pipes are most of the time, and borrows
// a big one from a pool only while reads keep filling its buffer. A big read
// drains a full pipe of the kernel's default size (64 KiB on Linux) in one
// system call; the runner's grown pipes take a few.
const (
	smallRead = 4 << 10
	bigRead   = 64 << 10
)

// bigSize is the size of the borrowed buffers: bigRead, or more when MaxLine
// is so large that an incomplete line would leave little room to read.
func bigSize(maxLine int) int {
	return max(bigRead, 2*(maxLine+2))
}

// lineReader reads one source. After each read, buf[:end] holds the bytes
// not yet split into lines: the incomplete line carried over from the
// previous reads (never a newline in it, at most maxLine+1 bytes) and what
// the read brought.
type lineReader struct {
	r    io.Reader
	own  []byte     // kept for the source's life; small unless long lines were carried
	big  *[]byte    // borrowed from pool while data flows, else nil
	pool *sync.Pool // of *[]byte of one size, at least maxLine+2
	buf  []byte     // own or *big; buf[:end] is unprocessed
	end  int
	// clean is how many leading bytes of buf are known to hold no newline,
	// so that a long line read a byte at a time is not scanned again on
	// every read.
	clean int
	full  bool // the last read filled buf: the pipe may hold more
}

// newLineReader returns a reader of r with an own buffer of ownSize bytes
// (smallRead but in tests) borrowing from pool, whose buffers must hold at
// least maxLine+2 bytes: then a carried line (at most maxLine+1) always
// leaves room to read.
func newLineReader(r io.Reader, ownSize int, pool *sync.Pool) *lineReader {
	own := make([]byte, ownSize)
	return &lineReader{r: r, own: own, pool: pool, buf: own}
}

// run reads until the source ends. After each read it calls batch with the
// unprocessed bytes, of which data[:clean] hold no newline; batch returns
// how many it used, and must use all of them at eof.
func (lr *lineReader) run(batch func(data []byte, clean int, eof bool) (used int)) {
	defer lr.release()
	for {
		ended := lr.read()
		used := batch(lr.buf[:lr.end], lr.clean, ended)
		if ended {
			return
		}
		lr.keep(used)
	}
}

// read reads once and reports whether the source has ended (EOF or any read
// error: there is no one to report it to, and the child's exit is reported
// by the runner anyway).
func (lr *lineReader) read() (ended bool) {
	n, err := lr.r.Read(lr.buf[lr.end:])
	lr.full = n == len(lr.buf)-lr.end
	lr.end += n
	return err != nil
}

// keep carries buf[used:end], an incomplete line, over to the next read, and
// picks the buffer for it: a borrowed big one after a read that filled the
// buffer, the source's own as soon as a read has drained the pipe, so that
// an idle pipe never pins a big buffer while it blocks in read(2).
func (lr *lineReader) keep(used int) {
	carry := lr.buf[used:lr.end] // still valid: the big buffer goes back only below
	giveBack := false
	switch {
	case lr.full && lr.big == nil:
		lr.big = lr.pool.Get().(*[]byte)
		lr.buf = *lr.big
	case !lr.full && lr.big != nil:
		if len(carry) > len(lr.own)/2 {
			// A long line stopped midway: grow the own buffer (once, up
			// to MaxLine plus smallRead) rather than keep the big one.
			lr.own = make([]byte, len(carry)+smallRead)
		}
		lr.buf = lr.own
		giveBack = true
	}
	lr.end = copy(lr.buf, carry)
	lr.clean = lr.end
	if giveBack {
		lr.release()
	}
}

// release gives the borrowed buffer back, if any.
func (lr *lineReader) release() {
	if lr.big != nil {
		lr.pool.Put(lr.big)
		lr.big = nil
	}
}

// scanLines calls emit once per complete line of data, without its "\n" or
// "\r\n", and returns how many bytes of data it used; the rest is the start
// of a line whose end has not been read yet. data[:clean] is known to hold
// no newline.
//
// A line longer than maxLine is emitted in pieces of at most maxLine bytes,
// all but the last with cut set, so that an endless line never has to fit in
// memory and the child writing it never stalls: an incomplete line of
// maxLine+2 bytes or more can no longer end within maxLine bytes plus
// "\r\n", so its first piece goes out at once. At eof the incomplete line is
// emitted as it is. line aliases data and is only valid during the call.
//
// The pieces depend only on the bytes, not on how reads split them, which
// lets the Mux go over one read twice: once to format it outside the lock,
// once under the lock for the history and the subscribers.
func scanLines(data []byte, clean int, eof bool, maxLine int, emit func(line []byte, cut bool)) int {
	start, scan := 0, clean // data[start:scan] is known to hold no newline
	for {
		i := bytes.IndexByte(data[scan:], '\n')
		if i < 0 {
			break
		}
		nl := scan + i
		emitPieces(trimCR(data[start:nl]), maxLine, emit)
		start, scan = nl+1, nl+1
	}
	if eof {
		if start < len(data) {
			emitPieces(data[start:], maxLine, emit)
		}
		return len(data)
	}
	for len(data)-start >= maxLine+2 {
		k := cutPoint(data[start:], maxLine)
		emit(data[start:start+k], true)
		start += k
	}
	return start
}

// messageLines calls emit for each line of a runner message: split on "\n"
// only, each cut into pieces if it is longer than maxLine.
func messageLines(msg []byte, maxLine int, emit func(line []byte, cut bool)) {
	for {
		line, rest, more := bytes.Cut(msg, []byte{'\n'})
		emitPieces(line, maxLine, emit)
		if !more {
			return
		}
		msg = rest
	}
}

// emitPieces emits one complete line, cut into pieces if it is longer than
// maxLine.
func emitPieces(line []byte, maxLine int, emit func(line []byte, cut bool)) {
	for len(line) > maxLine {
		k := cutPoint(line, maxLine)
		emit(line[:k], true)
		line = line[k:]
	}
	emit(line, false)
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// cutPoint returns where to end a piece of b, which is longer than maxLine: at
// most maxLine, moved back to a rune boundary so that each piece stays valid
// UTF-8 on its own. Invalid input, or a maxLine smaller than the rune, is
// cut at maxLine.
func cutPoint(b []byte, maxLine int) int {
	for k := maxLine; k > 0 && k > maxLine-utf8.UTFMax; k-- {
		if utf8.RuneStart(b[k]) {
			return k
		}
	}
	return maxLine
}
