package httpserve

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/http1"
)

// ResponseWriter is how a handler answers.
type ResponseWriter interface {
	// Header holds the fields to send; changes after WriteHeader (or the
	// first Write) are not sent.
	Header() http1.Header
	// WriteHeader sends the status (once; later calls are ignored).
	WriteHeader(code int)
	// Write sends body bytes, after a 200 status if none was set.
	Write(p []byte) (int, error)
	// Flush sends what was written so far: a stream's events.
	Flush() error
	// SetWriteDeadline bounds the writes from now on, SetReadDeadline
	// the reads of the request's body.
	SetWriteDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
}

// bufferMax is how much of a body is held before the head is sent: an
// answer that fits is sent with a Content-Length (and the connection
// stays open for the next request); a longer one, or one flushed before
// its end, goes chunked to an HTTP/1.1 client, and to an HTTP/1.0 one up
// to the connection's close.
const bufferMax = 32 << 10

// ErrBodyNotAllowed is a Write after a status that has no body (204, 304).
var ErrBodyNotAllowed = errors.New("httpserve: this status has no body")

// errTooLong is a Write past the Content-Length the handler set.
var errTooLong = errors.New("httpserve: wrote more than the Content-Length set")

type response struct {
	c      *serverConn
	r      *Request
	header http1.Header
	// head is the header as it was at WriteHeader.
	head   http1.Header
	status int
	// committed: the head is written (to the buffered writer).
	committed bool
	buf       []byte
	chunked   bool
	// length is the Content-Length the handler set, or -1.
	length  int64
	written int64
	keep    bool
	err     error
	// ownDeadline: the handler set the write deadline; the server no
	// longer sets it (Options.WriteTimeout) for this answer.
	ownDeadline bool
}

func newResponse(c *serverConn, r *Request) *response {
	return &response{c: c, r: r, header: http1.Header{}, buf: c.body[:0], length: -1, keep: http1.KeepAlive(r.minor, r.Header)}
}

func (w *response) Header() http1.Header { return w.header }

func (w *response) SetWriteDeadline(t time.Time) error {
	w.ownDeadline = true
	return w.c.rwc.SetWriteDeadline(t)
}

// arm bounds the writes about to be made by WriteTimeout, unless the
// handler bounds them itself.
func (w *response) arm() {
	if !w.ownDeadline {
		w.c.rwc.SetWriteDeadline(time.Now().Add(w.c.s.o.WriteTimeout))
	}
}

func (w *response) SetReadDeadline(t time.Time) error { return w.c.rwc.SetReadDeadline(t) }

func (w *response) WriteHeader(code int) {
	if w.status != 0 || code < 200 || code > 999 {
		return
	}
	w.status = code
	w.head = make(http1.Header, len(w.header)+3)
	for k, v := range w.header {
		w.head[k] = slices.Clone(v)
	}
	if v := w.head.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			w.head.Del("Content-Length")
		}
	}
}

func bodyAllowed(code int) bool { return code != 204 && code != 304 }

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http1.StatusOK)
	}
	switch {
	case w.err != nil:
		return 0, w.err
	case !bodyAllowed(w.status):
		return 0, ErrBodyNotAllowed
	case w.length >= 0 && w.written+int64(len(p)) > w.length:
		return 0, errTooLong
	}
	w.written += int64(len(p))
	if !w.committed {
		if len(w.buf)+len(p) <= bufferMax {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		if err := w.commit(false); err != nil {
			return 0, err
		}
	}
	return w.send(p)
}

// send writes body bytes after the head, in the framing chosen.
func (w *response) send(p []byte) (int, error) {
	if w.r.Method == "HEAD" {
		return len(p), nil
	}
	var n int
	var err error
	if w.chunked {
		n, err = http1.ChunkWriter{W: w.c.bw}.Write(p)
	} else {
		n, err = w.c.bw.Write(p)
	}
	if err != nil {
		w.err = err
	}
	return n, err
}

func (w *response) Flush() error {
	if err := w.begin(false); err != nil {
		return err
	}
	w.arm()
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

// finish ends the response once the handler returned.
func (w *response) finish() error {
	if b := w.r.body; !b.eof && w.bodyArrived() {
		// What the handler left of a body that has arrived whole (a
		// decoder stops at the end of its value) is dropped, so that the
		// next request can be read. Only now: until the handler returns,
		// it may still read it.
		w.c.rd.Buffer().Discard(int(w.r.ContentLength - b.n))
		b.eof = true
	}
	if !w.r.body.eof {
		// A body still unread (or whose reading failed) is in the way of
		// the next request.
		w.keep = false
	}
	// The head written now has the body's length: it is not chunked.
	if err := w.begin(true); err != nil {
		return err
	}
	w.arm()
	if w.chunked {
		if err := (http1.ChunkWriter{W: w.c.bw}).Close(); err != nil {
			return err
		}
	}
	if w.length >= 0 && w.written < w.length && w.r.Method != "HEAD" && bodyAllowed(w.status) {
		// The client waits for bytes that will not come: only the
		// close tells it. (An answer to HEAD, a 204 or a 304 has no
		// body whatever its Content-Length.)
		w.keep = false
	}
	return w.c.bw.Flush()
}

// bodyArrived reports whether the rest of the request's body, read or not,
// is in the connection's buffer, so that finish can skip it.
func (w *response) bodyArrived() bool {
	b := w.r.body
	if b.eof {
		return true
	}
	return b.err == nil && w.r.ContentLength > 0 &&
		w.r.ContentLength-b.n <= int64(w.c.rd.Buffer().Buffered())
}

// begin writes the head unless it is written already, with a 200 status
// if the handler set none; final as for commit.
func (w *response) begin(final bool) error {
	if w.status == 0 {
		w.WriteHeader(http1.StatusOK)
	}
	if w.err == nil && !w.committed {
		return w.commit(final)
	}
	return w.err
}

// proceed sends 100 Continue to a client that waits for it before it
// sends the body, unless the answer has begun.
func (w *response) proceed() error {
	if w.committed {
		return nil
	}
	w.arm()
	w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	return w.c.bw.Flush()
}

// commit writes the head: status, the handler's fields and the framing.
// final says that the handler is done, so that what is held is the whole
// body and its length is known.
func (w *response) commit(final bool) error {
	w.committed = true
	w.arm()
	h := w.head
	if !w.bodyArrived() || http1.HasToken(h, "Connection", "close") || w.c.s.isClosing() {
		// The rest of the request's body has not arrived (reading it to
		// find the next request could take long), or the handler says
		// so, or the server is closing and will not read another
		// request. (A body that has arrived is skipped by finish.)
		w.keep = false
	}
	switch {
	case !bodyAllowed(w.status):
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
	case w.length >= 0:
	case final:
		if w.r.Method != "HEAD" || len(w.buf) > 0 {
			h.Set("Content-Length", strconv.Itoa(len(w.buf)))
		}
	case w.r.Method == "HEAD":
		// No body follows whatever its length.
	case w.r.minor >= 1:
		w.chunked = true
		h.Set("Transfer-Encoding", "chunked")
	default:
		w.keep = false
	}
	if h.Get("Content-Type") == "" && len(w.buf) > 0 {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"))
	}
	switch {
	case !w.keep:
		h.Set("Connection", "close")
	case w.r.minor == 0:
		h.Set("Connection", "keep-alive")
	}
	bw := w.c.bw
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", w.status, http1.StatusText(w.status))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !http1.ValidToken(k) {
			continue
		}
		for _, v := range h[k] {
			// A line break in a value would start a field of the
			// client's choosing.
			v = strings.Map(func(r rune) rune {
				if r == '\r' || r == '\n' {
					return ' '
				}
				return r
			}, v)
			fmt.Fprintf(bw, "%s: %s\r\n", k, v)
		}
	}
	bw.WriteString("\r\n")
	buf := w.buf
	w.buf = nil
	if len(buf) > 0 {
		if _, err := w.send(buf); err != nil {
			return err
		}
	}
	// The body is in the writer's buffer or sent: its buffer serves the
	// connection's next answer.
	w.c.body = buf[:0]
	return w.err
}

// writeRefusal writes a whole answer with a JSON error and Connection:
// close, for a connection that will not be served.
func writeRefusal(c net.Conn, code int, msg string) {
	body := ErrorBody(code, msg)
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http1.StatusText(code), len(body), body)
}

// WriteText answers code with msg as plain text, as net/http's Error does.
func WriteText(w ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}
