package logmux

import (
	"math/bits"
	"slices"
	"time"
)

// Default history bounds, used when Options.HistoryLines or HistoryBytes is 0.
//
// The history is live heap of the runner, and Go collects when the heap
// reaches twice what is live (4 MiB at least): 1 MiB of history keeps a
// runner whose apps log a lot within that minimum, where 4 MiB made it
// about 8 MiB (8 instances printing 400-byte lines: runner anonymous
// memory 7.9 MiB with 4 MiB, 3.8 to 4.7 MiB with 1 MiB). 1 MiB is the
// 10,000 lines of 100 bytes, or 2,600 of 400.
const (
	DefaultHistoryLines = 10_000
	DefaultHistoryBytes = 1 << 20
)

// srcInfo is what a Record says about its writer. It is immutable and shared
// by every history entry of one source until the source's tag changes, so
// that an entry costs one pointer for it.
type srcInfo struct {
	app      string
	instance int
	pid      int
	stream   Stream
	tag      string
	// about is the app a runner line is about (Record.About).
	about string
}

// histEntry is one line (or cut piece) in the history. Its bytes follow
// those of the entry before it in the byte window, so it needs no offset.
type histEntry struct {
	when int64 // UnixNano
	info *srcInfo
	n    int32
	cut  bool
}

// Chunk sizes of the history: small enough that memory follows what the
// history holds, large enough that a chunk is rarely allocated.
const (
	histByteShift  = 14 // 16 KiB
	histEntryShift = 8  // 256 entries, 6 KiB
)

// history keeps the most recent lines within a line and a byte bound, for
// `clusterrun logs -n`. Entries and bytes are two sliding windows over
// chunked storage: a runner whose apps print little does not pay for the
// bounds, and once the windows are full adding a line allocates nothing and
// leaves no garbage. It is not synchronized; the Mux guards it with Mux.mu,
// which also orders it with the output and the subscribers.
type history struct {
	maxLines int // 0: off
	maxBytes int

	ents       chunks[histEntry] // entries first..next-1, by sequence number
	first      uint64
	next       uint64
	buf        chunks[byte] // the entries' bytes, [start, end)
	start, end uint64
}

// newHistory returns a history for the given Options values: 0 means the
// default, a negative value turns it off. maxBytes is raised to maxLine so
// that every piece fits.
func newHistory(lines, bytes, maxLine int) *history {
	if lines < 0 || bytes < 0 {
		return &history{}
	}
	if lines == 0 {
		lines = DefaultHistoryLines
	}
	if bytes == 0 {
		bytes = DefaultHistoryBytes
	}
	bytes = max(bytes, maxLine)
	return &history{
		maxLines: lines,
		maxBytes: bytes,
		ents:     newChunks[histEntry](histEntryShift, lines),
		buf:      newChunks[byte](histByteShift, bytes),
	}
}

func (h *history) on() bool { return h.maxLines > 0 }

func (h *history) len() int { return int(h.next - h.first) }

// add appends one piece, evicting the oldest ones as the bounds require.
func (h *history) add(when int64, info *srcInfo, line []byte, cut bool) {
	for h.next > h.first && (h.len() == h.maxLines || int(h.end-h.start)+len(line) > h.maxBytes) {
		e := h.ents.at(h.first)
		e.info = nil // the source may be long gone
		h.start += uint64(e.n)
		h.buf.trim(h.start)
		h.first++
		h.ents.trim(h.first)
	}
	*h.ents.at(h.next) = histEntry{when: when, info: info, n: int32(len(line)), cut: cut}
	h.next++
	for b := line; len(b) > 0; {
		k := copy(h.buf.tail(h.end), b)
		b = b[k:]
		h.end += uint64(k)
	}
}

// last returns up to n of the most recent entries accepted by filter, oldest
// first, as Records that own their lines.
func (h *history) last(filter func(*Record) bool, n int) []Record {
	var out []Record
	off := h.end
	for i := h.next; i > h.first && len(out) < n; i-- {
		e := h.ents.at(i - 1)
		off -= uint64(e.n)
		line := make([]byte, 0, e.n)
		for off := off; len(line) < int(e.n); {
			t := h.buf.tail(off)
			t = t[:min(len(t), int(e.n)-len(line))]
			line = append(line, t...)
			off += uint64(len(t))
		}
		r := Record{
			Time:     time.Unix(0, e.when),
			App:      e.info.app,
			Instance: e.info.instance,
			PID:      e.info.pid,
			Stream:   e.info.stream,
			Tag:      e.info.tag,
			About:    e.info.about,
			Line:     line,
			Cut:      e.cut,
		}
		if filter == nil || filter(&r) {
			out = append(out, r)
		}
	}
	slices.Reverse(out)
	return out
}

// chunks stores a sliding window [lo, hi) of an endless sequence of T in
// chunks of 1<<shift elements: a chunk is allocated when the window first
// reaches it and reused once the window has left it, so that memory follows
// the window's size and nothing is ever copied to grow. The caller keeps lo
// and hi; the window must never hold more than the limit given to newChunks.
// Sizes are powers of two because this runs for every line.
type chunks[T any] struct {
	shift uint
	slots [][]T // chunk k (elements k<<shift ...) lives in slots[k&slotMask]
	mask  uint64
	free  [][]T
	lo    uint64 // chunks below lo>>shift have been released
}

func newChunks[T any](shift uint, limit int) chunks[T] {
	// A window of limit elements touches at most this many chunks, so the
	// live ones never share a slot.
	n := (limit+1<<shift-1)>>shift + 1
	n = 1 << bits.Len(uint(n-1)) // a power of two, for the mask
	return chunks[T]{shift: shift, slots: make([][]T, n), mask: uint64(n - 1)}
}

// tail returns the rest of the chunk holding element i, from i on.
func (c *chunks[T]) tail(i uint64) []T {
	slot := &c.slots[i>>c.shift&c.mask]
	if *slot == nil {
		if n := len(c.free); n > 0 {
			*slot, c.free = c.free[n-1], c.free[:n-1]
		} else {
			*slot = make([]T, 1<<c.shift)
		}
	}
	return (*slot)[i&(1<<c.shift-1):]
}

// at returns element i.
func (c *chunks[T]) at(i uint64) *T { return &c.tail(i)[0] }

// trim releases the chunks that lie wholly below lo, the new start of the
// window. Two are kept for reuse, which is all that a full window moving on
// needs; the others go to the garbage collector, so that a burst of long
// lines does not pin the byte bound for ever.
func (c *chunks[T]) trim(lo uint64) {
	for k := c.lo >> c.shift; k < lo>>c.shift; k++ {
		slot := &c.slots[k&c.mask]
		if *slot != nil && len(c.free) < 2 {
			c.free = append(c.free, *slot)
		}
		*slot = nil
	}
	c.lo = lo
}
