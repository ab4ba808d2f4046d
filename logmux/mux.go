package logmux

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Stream says which pipe a line came from.
type Stream int

const (
	Stdout Stream = iota // a child's standard output
	Stderr               // a child's standard error, marked with "!" in text
	Runner               // the runner's own messages
)

func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Runner:
		return "runner"
	}
	return "Stream(" + strconv.Itoa(int(s)) + ")"
}

// Source identifies who wrote a pipe.
type Source struct {
	App      string
	Instance int
	PID      int
	Stream   Stream
}

// Record is one line, or one cut piece of an over-long line.
type Record struct {
	Time     time.Time
	App      string // "clusterrun" for the runner's own lines
	Instance int    // -1 for the runner's own lines
	PID      int
	Stream   Stream
	Line     []byte // without the trailing newline; owned by the receiver (a copy)
	Cut      bool   // true when the line went on past MaxLine and this piece is not its end
}

// DefaultMaxLine is the piece size used when Options.MaxLine is 0.
const DefaultMaxLine = 16 << 10

// Options configure a Mux. They are read once, by New.
type Options struct {
	Out        io.Writer // where the merged stream goes (the runner's stdout); nil discards it
	Format     Format
	Timestamps bool             // text format: prefix each line with a local time "15:04:05.000 "
	Color      bool             // decided once by main (--color, NO_COLOR, tty); color.NoColor is never read
	MaxLine    int              // bytes per emitted piece; 0 = DefaultMaxLine
	Now        func() time.Time // nil = time.Now; tests inject a clock
}

// App declares one app and its instance count to the Mux.
type App struct {
	Name      string
	Instances int
}

// Mux merges many line sources into one output stream. It is safe for
// concurrent use.
type Mux struct {
	out        io.Writer
	format     Format
	timestamps bool
	maxLine    int
	now        func() time.Time
	pid        int

	// mu makes each line one Write and keeps subscribers in the same order
	// as the output. Everything under it is non-blocking except out.Write.
	mu   sync.Mutex
	subs []*subscriber

	// styleMu guards the color assignment and prefix cache; sources copy
	// their prefix out and refresh it only when gen moves, so the hot path
	// never takes this lock.
	styleMu sync.Mutex
	style   *styler
	width   int
	gen     atomic.Uint64
}

// New returns a Mux writing to opts.Out.
func New(opts Options) *Mux {
	m := &Mux{
		out:        opts.Out,
		format:     opts.Format,
		timestamps: opts.Timestamps,
		maxLine:    opts.MaxLine,
		now:        opts.Now,
		pid:        os.Getpid(),
		style:      newStyler(opts.Color),
		width:      len(runnerName),
	}
	if m.out == nil {
		m.out = io.Discard
	}
	if m.maxLine <= 0 {
		m.maxLine = DefaultMaxLine
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Declare tells the mux the apps in config order and their instance counts,
// so that each app keeps a stable color (palette order is first declaration
// order; a re-declared app keeps its color) and labels are padded to the
// widest one. Call it again after a reload or scale; the width then follows
// the new declaration, and lines already being read pick it up.
func (m *Mux) Declare(apps []App) {
	w := len(runnerName)
	for _, a := range apps {
		label := utf8.RuneCountInString(a.Name) + 1 + len(strconv.Itoa(max(a.Instances-1, 0)))
		w = max(w, label)
	}
	m.styleMu.Lock()
	defer m.styleMu.Unlock()
	for _, a := range apps {
		m.style.slot(a.Name)
	}
	m.width = w
	// Prefixes of the old width would otherwise stay cached for ever across
	// reloads.
	clear(m.style.cache)
	m.gen.Add(1)
}

// prefixFor returns the current prefix of one source and the generation it
// belongs to.
func (m *Mux) prefixFor(app string, inst int, runner bool) (*prefix, uint64) {
	m.styleMu.Lock()
	defer m.styleMu.Unlock()
	return m.style.prefix(app, inst, runner, m.width), m.gen.Load()
}

// Attach reads r until EOF or error, emitting each line with src's prefix.
// It returns at once; the returned channel is closed after the last (possibly
// partial) line has been emitted. r is usually the read end of an os.Pipe;
// Attach does not close it.
//
// A read error other than EOF ends the source like EOF does: there is no one
// to report it to, and the child's exit is reported by the runner anyway.
func (m *Mux) Attach(r io.Reader, src Source) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.pump(r, src)
	}()
	return done
}

func (m *Mux) pump(r io.Reader, src Source) {
	// One Record per source, reused for every line: handing a stack Record
	// to subscriber filters would make it escape, costing an allocation per
	// line even with no subscriber.
	rec := &Record{App: src.App, Instance: src.Instance, PID: src.PID, Stream: src.Stream}
	var (
		p   *prefix
		gen uint64
	)
	buf := make([]byte, m.maxLine+2)
	split(r, buf, m.maxLine, func(line []byte, cut bool) {
		if m.format == Text && (p == nil || gen != m.gen.Load()) {
			p, gen = m.prefixFor(src.App, src.Instance, src.Stream == Runner)
		}
		rec.Time = m.now()
		rec.Line = line
		rec.Cut = cut
		m.emit(rec, p)
	})
}

// Printf emits one runner line ("clusterrun | ..."). A trailing newline is
// dropped; a message with embedded newlines becomes several runner lines, so
// that no output line ever lacks a prefix.
func (m *Mux) Printf(format string, args ...any) {
	bp := bufPool.Get().(*[]byte)
	full := fmt.Appendf((*bp)[:0], format, args...)
	msg := bytes.TrimSuffix(full, []byte{'\n'})
	var p *prefix
	if m.format == Text {
		p, _ = m.prefixFor(runnerName, -1, true)
	}
	rec := &Record{Time: m.now(), App: runnerName, Instance: -1, PID: m.pid, Stream: Runner}
	emit := func(line []byte, cut bool) {
		rec.Line, rec.Cut = line, cut
		m.emit(rec, p)
	}
	for {
		line, rest, more := bytes.Cut(msg, []byte{'\n'})
		emitPieces(line, m.maxLine, emit)
		if !more {
			break
		}
		msg = rest
	}
	*bp = full[:0]
	bufPool.Put(bp)
}

// bufPool holds formatting buffers. Shared rather than one per source because
// a JSON line of control bytes can be six times MaxLine, and hundreds of idle
// sources should not each pin one.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// emit formats rec and writes it with one Write. rec.Line may alias a read
// buffer; subscribers get their own copy.
func (m *Mux) emit(rec *Record, p *prefix) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	// One allocation instead of a chain of appends growing a fresh buffer;
	// JSON escapes may still grow it.
	if need := len(rec.Line) + 256; cap(b) < need {
		b = make([]byte, 0, need)
	}
	if m.format == JSON {
		b = appendJSON(b, rec)
	} else {
		b = appendText(b, rec, p, m.timestamps)
	}
	m.mu.Lock()
	// The error is dropped on purpose: when our stdout is gone (EPIPE) the
	// pipes must keep draining, or the children block in write(2).
	_, _ = m.out.Write(b)
	for _, s := range m.subs {
		s.offer(rec)
	}
	m.mu.Unlock()
	*bp = b
	bufPool.Put(bp)
}

type subscriber struct {
	filter  func(*Record) bool
	ch      chan Record
	dropped atomic.Uint64
	closed  bool // guarded by Mux.mu, like every send on ch
}

// offer is called with Mux.mu held, which makes it the only sender on ch and
// excludes a concurrent close.
func (s *subscriber) offer(rec *Record) {
	if s.filter != nil && !s.filter(rec) {
		return
	}
	// Skip the copy when it would only be dropped. Receivers only ever
	// shrink len(ch), so a free slot seen here is still free at the send.
	if cap(s.ch) > 0 && len(s.ch) == cap(s.ch) {
		s.dropped.Add(1)
		return
	}
	c := *rec
	c.Line = bytes.Clone(rec.Line)
	select {
	case s.ch <- c:
	default:
		s.dropped.Add(1)
	}
}

// Subscribe returns records (copies) accepted by filter (nil = all) through a
// channel of capacity buf. A subscriber that does not keep up loses records
// instead of blocking the mux; dropped reports how many were lost so far.
// cancel stops the subscription and closes the channel; it is safe to call
// more than once.
//
// filter runs on the hot path with the output lock held: it must be quick,
// must not call into the Mux, and must not keep the *Record, which is reused.
// Records arrive in the same order as in the output.
func (m *Mux) Subscribe(filter func(*Record) bool, buf int) (records <-chan Record, dropped func() uint64, cancel func()) {
	s := &subscriber{filter: filter, ch: make(chan Record, max(buf, 0))}
	m.mu.Lock()
	m.subs = append(m.subs, s)
	m.mu.Unlock()
	cancel = func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if s.closed {
			return
		}
		s.closed = true
		m.subs = slices.DeleteFunc(m.subs, func(x *subscriber) bool { return x == s })
		close(s.ch)
	}
	return s.ch, s.dropped.Load, cancel
}
