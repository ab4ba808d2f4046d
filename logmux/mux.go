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
	// Tag, when not nil, is shown right after the label ("web.0+") and
	// sent as the JSON "tag". The runner sets it while the process's slot
	// is being replaced: "+" for a replacement that is still starting, "-"
	// for a process draining after being replaced, "" for the serving one.
	// It is read once per batch of lines, not per line.
	Tag *Tag
}

// Tag is a mark that the runner can change on a running process, shown in
// the prefix of its lines. It is safe for concurrent use; the zero value is
// the empty tag. One Tag is usually shared by the stdout and stderr Sources
// of a process.
type Tag struct {
	// A new pointer on every Set, so that a reader tells a change by
	// comparing pointers with one atomic load and no lock.
	v atomic.Pointer[string]
}

// Set changes the tag; lines read from then on carry it.
func (t *Tag) Set(s string) { t.v.Store(&s) }

// String returns the current tag ("" for a nil Tag).
func (t *Tag) String() string {
	if p := t.load(); p != nil {
		return *p
	}
	return ""
}

func (t *Tag) load() *string {
	if t == nil {
		return nil
	}
	return t.v.Load()
}

// Record is one line, or one cut piece of an over-long line.
type Record struct {
	Time     time.Time // when the read that brought the line returned; one value for a whole batch
	App      string    // "clusterrun" for the runner's own lines
	Instance int       // -1 for the runner's own lines
	PID      int
	Stream   Stream
	Tag      string // the Source's Tag when the line was read; "" for none
	About    string // on a runner line: the app it is about, or "" for the runner as a whole
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

	// The history that Tail serves keeps the most recent lines (a cut
	// piece counts as one) within both bounds. 0 = DefaultHistoryLines and
	// DefaultHistoryBytes; a negative value in either turns the history
	// off. HistoryBytes is raised to MaxLine if it is smaller.
	HistoryLines int
	HistoryBytes int
}

// App declares one app and its instance count to the Mux.
type App struct {
	Name      string
	Instances int
}

// tagColumn is the room kept after every label for a one-character Tag, so
// that the columns do not move while a slot is replaced.
const tagColumn = 1

// Mux merges many line sources into one output stream. It is safe for
// concurrent use.
type Mux struct {
	out        io.Writer
	format     Format
	timestamps bool
	maxLine    int
	now        func() time.Time
	runner     *srcInfo // the runner's own lines

	// bigBufs holds the read buffers that sources borrow while data flows.
	bigBufs sync.Pool

	// mu makes each batch one Write and keeps the history and the
	// subscribers in the same order as the output. Everything under it is
	// non-blocking except out.Write.
	mu   sync.Mutex
	subs []*subscriber
	hist *history

	// styleMu guards the color assignment and prefix cache; sources copy
	// their prefix out and refresh it only when gen moves, so the hot path
	// never takes this lock.
	styleMu sync.Mutex
	style   *styler
	width   int
	gen     atomic.Uint64

	// apps holds every app name ever declared, for About.
	apps atomic.Pointer[map[string]bool]
	// aboutInfo holds the source of the runner's lines about each app, so
	// that a history entry keeps what it is about in its one pointer.
	aboutInfo sync.Map // app name -> *srcInfo
}

// New returns a Mux writing to opts.Out.
func New(opts Options) *Mux {
	m := &Mux{
		out:        opts.Out,
		format:     opts.Format,
		timestamps: opts.Timestamps,
		maxLine:    opts.MaxLine,
		now:        opts.Now,
		runner:     &srcInfo{app: runnerName, instance: -1, pid: os.Getpid(), stream: Runner},
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
	size := bigSize(m.maxLine)
	m.bigBufs.New = func() any {
		b := make([]byte, size)
		return &b
	}
	m.hist = newHistory(opts.HistoryLines, opts.HistoryBytes, m.maxLine)
	return m
}

// Declare tells the mux the apps in config order and their instance counts,
// so that each app keeps a stable color (palette order is first declaration
// order; a re-declared app keeps its color) and labels are padded to the
// widest one plus a column for a Tag. Call it again after a reload or scale;
// the width then follows the new declaration, and lines already being read
// pick it up.
func (m *Mux) Declare(apps []App) {
	w := len(runnerName)
	for _, a := range apps {
		label := utf8.RuneCountInString(a.Name) + 1 + len(strconv.Itoa(max(a.Instances-1, 0))) + tagColumn
		w = max(w, label)
	}
	m.styleMu.Lock()
	defer m.styleMu.Unlock()
	// Names are only added: lines about an app removed by a reload come
	// after the declaration without it.
	known := map[string]bool{}
	if p := m.apps.Load(); p != nil {
		for n := range *p {
			known[n] = true
		}
	}
	for _, a := range apps {
		m.style.slot(a.Name)
		known[a.Name] = true
	}
	m.apps.Store(&known)
	m.width = w
	// Prefixes of the old width would otherwise stay cached for ever across
	// reloads.
	clear(m.style.cache)
	m.gen.Add(1)
}

// prefixFor returns the current prefix of one source and the generation it
// belongs to.
func (m *Mux) prefixFor(info *srcInfo) (*prefix, uint64) {
	m.styleMu.Lock()
	defer m.styleMu.Unlock()
	return m.style.prefix(info.app, info.instance, info.tag, info.stream == Runner, m.width), m.gen.Load()
}

// Attach reads r until EOF or error, emitting each line with src's prefix.
// It returns at once; the returned channel is closed after the last (possibly
// partial) line has been emitted. r is usually the read end of an os.Pipe;
// Attach does not close it.
//
// All the complete lines that one read brings are written together, with one
// Write, before the next read: a busy pipe costs one write(2) per read rather
// than per line, and a quiet one's line goes out as soon as it is read.
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

// Lines emits data, whole lines each ended by a newline (a last one without
// is emitted as it is), as lines of src with one Write, as if src's pipe had
// brought them in one read. The runner writes the access log of an http
// listener into the app's stream so.
func (m *Mux) Lines(src Source, data []byte) {
	if len(data) == 0 {
		return
	}
	m.batch(&source{src: src}, data, 0, true)
}

func (m *Mux) pump(r io.Reader, src Source) {
	s := &source{src: src}
	newLineReader(r, smallRead, &m.bigBufs).run(func(data []byte, clean int, eof bool) int {
		return m.batch(s, data, clean, eof)
	})
}

// source is one Attach's state on the hot path.
type source struct {
	src  Source
	tag  *string  // the Tag value that info and p were built for
	info *srcInfo // shared with the history entries of this source
	p    *prefix
	gen  uint64
	// rec is reused for every batch: handing a stack Record to subscriber
	// filters would make it escape, costing an allocation per batch even
	// with no subscriber.
	rec  Record
	head []byte // what every line of the current batch starts with
}

// refresh picks up a new Tag or Declare, with one atomic load each and no
// lock unless one of them changed.
func (s *source) refresh(m *Mux) {
	if tp := s.src.Tag.load(); s.info == nil || tp != s.tag {
		s.tag = tp
		tag := ""
		if tp != nil {
			tag = *tp
		}
		s.info = &srcInfo{app: s.src.App, instance: s.src.Instance, pid: s.src.PID, stream: s.src.Stream, tag: tag}
		s.rec = Record{App: s.info.app, Instance: s.info.instance, PID: s.info.pid, Stream: s.info.stream, Tag: s.info.tag}
		s.p = nil
	}
	if m.format == Text && (s.p == nil || s.gen != m.gen.Load()) {
		s.p, s.gen = m.prefixFor(s.info)
	}
}

// batch formats the complete lines in data (what one read brought, after
// the line carried over from before) and writes them with one Write. It
// returns how many bytes of data it used; at eof that is all of them.
func (m *Mux) batch(s *source, data []byte, clean int, eof bool) int {
	s.refresh(m)
	s.rec.Time = m.now()
	json := m.format == JSON
	if json {
		s.head = appendJSONHead(s.head[:0], &s.rec)
	} else {
		s.head = appendTextHead(s.head[:0], &s.rec, s.p, m.timestamps)
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	// One allocation instead of a chain of appends growing a fresh buffer:
	// text lines of 50 bytes grow by a third with their prefix; JSON may
	// still grow it. Two sizes, for small and for big reads, so that the
	// pool does not fill up with every size in between.
	if need := len(data) + len(data)/2 + len(s.head) + 64; cap(b) < need {
		size := 2 * smallRead
		if need > size {
			size = max(need, 2*bigRead)
		}
		b = make([]byte, 0, size)
	}
	used := scanLines(data, clean, eof, m.maxLine, func(line []byte, cut bool) {
		b = append(b, s.head...)
		if json {
			b = appendJSONPiece(b, line, cut)
		} else {
			b = appendTextPiece(b, line, cut)
		}
	})
	if len(b) > 0 {
		m.publish(b, &s.rec, s.info, &pieces{data: data, clean: clean, eof: eof})
	}
	*bp = b
	bufPool.Put(bp)
	return used
}

// pieces describes the lines of one batch, so that publish can go over them
// again, under the lock, without a per-line index having to be kept.
type pieces struct {
	data    []byte
	clean   int
	eof     bool
	message bool // a runner message (messageLines), not pipe bytes (scanLines)
}

func (ps *pieces) each(maxLine int, emit func(line []byte, cut bool)) {
	if ps.message {
		messageLines(ps.data, maxLine, emit)
		return
	}
	scanLines(ps.data, ps.clean, ps.eof, maxLine, emit)
}

// publish writes out, the formatted lines of ps, with one Write, then hands
// each line to the history and the subscribers, all under mu so that they
// see the same order as the output. rec carries the batch's time and
// source; its Line and Cut are set per line, aliasing ps.
func (m *Mux) publish(out []byte, rec *Record, info *srcInfo, ps *pieces) {
	m.mu.Lock()
	// The error is dropped on purpose: when our stdout is gone (EPIPE) the
	// pipes must keep draining, or the children block in write(2).
	_, _ = m.out.Write(out)
	if m.hist.on() || len(m.subs) > 0 {
		when := rec.Time.UnixNano()
		ps.each(m.maxLine, func(line []byte, cut bool) {
			if m.hist.on() {
				m.hist.add(when, info, line, cut)
			}
			rec.Line, rec.Cut = line, cut
			for _, s := range m.subs {
				s.offer(rec)
			}
		})
	}
	m.mu.Unlock()
}

// Printf emits one runner line ("clusterrun | ..."). A trailing newline is
// dropped; a message with embedded newlines becomes several runner lines, so
// that no output line ever lacks a prefix. They are written with one Write.
func (m *Mux) Printf(format string, args ...any) {
	mp := bufPool.Get().(*[]byte)
	full := fmt.Appendf((*mp)[:0], format, args...)
	msg := bytes.TrimSuffix(full, []byte{'\n'})
	rec := &Record{Time: m.now(), App: runnerName, Instance: -1, PID: m.runner.pid, Stream: Runner, About: m.about(msg)}
	var p *prefix
	if m.format == Text {
		p, _ = m.prefixFor(m.runner)
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	messageLines(msg, m.maxLine, func(line []byte, cut bool) {
		rec.Line, rec.Cut = line, cut
		if m.format == JSON {
			b = appendJSON(b, rec)
		} else {
			b = appendText(b, rec, p, m.timestamps)
		}
	})
	info := m.runner
	if rec.About != "" {
		info = m.runnerAbout(rec.About)
	}
	m.publish(b, rec, info, &pieces{data: msg, message: true})
	*bp = b[:0]
	bufPool.Put(bp)
	*mp = full[:0]
	bufPool.Put(mp)
}

// about returns the app a runner message is about: the runner starts
// every line about an app with its label, "web.0 started" or "web: reload
// complete", so a message whose first word is a declared app name followed
// by ".N", ":" or a space is about that app. App names cannot hold those
// characters (hclconfig.ValidName), so the word ends where the name does.
func (m *Mux) about(msg []byte) string {
	p := m.apps.Load()
	if p == nil {
		return ""
	}
	i := 0
	for i < len(msg) && (msg[i] == '-' || msg[i] == '_' || msg[i] >= '0' && msg[i] <= '9' || msg[i]|0x20 >= 'a' && msg[i]|0x20 <= 'z') {
		i++
	}
	if i == 0 || i == len(msg) {
		return ""
	}
	switch c := msg[i]; {
	case c == ':' || c == ' ':
	case c == '.' && i+1 < len(msg) && msg[i+1] >= '0' && msg[i+1] <= '9':
	default:
		return ""
	}
	if (*p)[string(msg[:i])] {
		return string(msg[:i])
	}
	return ""
}

// runnerAbout returns the source of the runner's lines about app.
func (m *Mux) runnerAbout(app string) *srcInfo {
	if v, ok := m.aboutInfo.Load(app); ok {
		return v.(*srcInfo)
	}
	info := *m.runner
	info.about = app
	v, _ := m.aboutInfo.LoadOrStore(app, &info)
	return v.(*srcInfo)
}

// bufPool holds message and formatting buffers. Shared rather than one per
// source because a batch can be several times the 64 KiB it was read from
// (six times, for JSON of control bytes), and hundreds of idle sources
// should not each pin one.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

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
	_, records, dropped, cancel = m.Tail(filter, 0, buf)
	return records, dropped, cancel
}

// Tail returns up to n of the most recent records accepted by filter (oldest
// first) from the history, then live records through a channel of capacity
// buf, with nothing lost or repeated between the two: both are taken under
// the lock that orders the output. dropped, cancel and the rules for filter
// are as in Subscribe; filter also runs over the history, in Tail.
func (m *Mux) Tail(filter func(*Record) bool, n, buf int) (history []Record, records <-chan Record, dropped func() uint64, cancel func()) {
	s := &subscriber{filter: filter, ch: make(chan Record, max(buf, 0))}
	m.mu.Lock()
	if n > 0 {
		history = m.hist.last(filter, n)
	}
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
	return history, s.ch, s.dropped.Load, cancel
}
