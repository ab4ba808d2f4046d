package httpserve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterrun/clusterrun/http1"
)

// Handler answers one request.
type Handler interface {
	ServeHTTP(w ResponseWriter, r *Request)
}

// HandlerFunc is a function as a Handler.
type HandlerFunc func(w ResponseWriter, r *Request)

func (f HandlerFunc) ServeHTTP(w ResponseWriter, r *Request) { f(w, r) }

// ErrServerClosed is what Serve returns after Close or Shutdown.
var ErrServerClosed = errors.New("httpserve: server closed")

// Server serves HTTP/1.x on the listeners given to Serve: one goroutine a
// connection, requests one after another on it (keep-alive), with
// Options' timeouts and bounds.
type Server struct {
	h Handler
	o Options

	// BaseContext is the context of every request (nil: Background). Set
	// it before Serve.
	BaseContext context.Context
	// ConnContext, when set, makes a connection's context from the base
	// one and the accepted connection: control puts the peer's
	// credentials there. Set it before Serve.
	ConnContext func(ctx context.Context, c net.Conn) context.Context

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	// conns holds every open connection, true when it waits for its next
	// request (Shutdown closes those at once).
	conns map[*serverConn]bool
	wg    sync.WaitGroup
}

// NewServer returns a server of h with o's bounds, whose own trouble (a
// handler's panic) is reported through o.Logf.
func NewServer(h Handler, o Options) *Server {
	o.fill()
	return &Server{h: h, o: o, listeners: map[net.Listener]struct{}{}, conns: map[*serverConn]bool{}}
}

// Serve accepts connections on ln until Close or Shutdown (ErrServerClosed)
// or an accept error: a Limited listener retries those itself.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	for {
		rwc, err := ln.Accept()
		s.mu.Lock()
		if s.closing {
			delete(s.listeners, ln)
			s.mu.Unlock()
			if rwc != nil {
				rwc.Close()
			}
			return ErrServerClosed
		}
		if err != nil {
			delete(s.listeners, ln)
			s.mu.Unlock()
			return err
		}
		c := &serverConn{s: s, rwc: rwc}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Close stops accepting and closes every connection, requests in progress
// included: their writes fail and their contexts end.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopAccepting()
	for c := range s.conns {
		c.abort()
	}
	return nil
}

// Shutdown stops accepting, closes the connections that wait for a
// request and lets the others finish the request they serve, until ctx
// ends (its error then; Close drops those left).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopAccepting()
	for c, idle := range s.conns {
		if idle {
			c.abort()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopAccepting closes the listeners; s.mu is held.
func (s *Server) stopAccepting() {
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
}

// isClosing reports whether Close or Shutdown has begun: an answer
// finished now says that the connection closes after it.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// setIdle records whether c waits for a request; false when the server
// is closing and c, idle, must go.
func (s *Server) setIdle(c *serverConn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idle && s.closing {
		return false
	}
	s.conns[c] = idle
	return true
}

// serverConn is one accepted connection.
type serverConn struct {
	s   *Server
	rwc net.Conn
	*buffers
	cancel context.CancelFunc
}

// buffers are what a connection reads and writes through: 4 KiB each
// way, and the body of an answer held back until its length is known.
// They go back to a pool when the connection ends: the runner's clients
// (the CLI, a monitor polling status, a metrics scraper) open a
// connection per request, and each would otherwise leave 8 KiB or more
// behind for the collector.
type buffers struct {
	rd   *http1.Reader
	bw   *bufio.Writer
	body []byte
}

var bufferPool sync.Pool

func getBuffers(c net.Conn) *buffers {
	if b, ok := bufferPool.Get().(*buffers); ok {
		b.reset(c)
		return b
	}
	return &buffers{rd: http1.NewReader(c), bw: bufio.NewWriterSize(c, 4<<10)}
}

// putBuffers keeps b for another connection; nothing may use it after.
// It lets go of the closed connection at once, so that the pool does not
// keep it reachable until the buffers' next use.
func putBuffers(b *buffers) {
	b.reset(nil)
	bufferPool.Put(b)
}

// reset points b at c with nothing of the previous connection left in
// it: bytes read ahead and not consumed, bytes written and not flushed.
func (b *buffers) reset(c net.Conn) {
	b.rd.Reset(c)
	b.bw.Reset(c)
	if cap(b.body) > bufferMax {
		b.body = nil
	}
	b.body = b.body[:0]
}

// abort closes the connection from another goroutine; s.mu is held.
func (c *serverConn) abort() {
	c.rwc.Close()
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *serverConn) serve() {
	s := c.s
	ctx := s.BaseContext
	if ctx == nil {
		ctx = context.Background()
	}
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, c.rwc)
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	c.cancel = cancel
	s.mu.Unlock()
	c.buffers = getBuffers(c.rwc)
	defer func() {
		cancel()
		c.rwc.Close()
		// Every reader of the buffers has returned: the handler, and the
		// watch of handle, which it waits for.
		putBuffers(c.buffers)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	for first := true; ; first = false {
		// A connection is idle (Shutdown closes it) until the first byte
		// of a request. The first request's head must come within
		// ReadHeaderTimeout; a later one may take IdleTimeout to begin,
		// then ReadHeaderTimeout for its head.
		if !s.setIdle(c, true) {
			return
		}
		head := time.Now().Add(s.o.ReadHeaderTimeout)
		if first {
			c.rwc.SetReadDeadline(head)
		} else {
			c.rwc.SetReadDeadline(time.Now().Add(s.o.IdleTimeout))
		}
		if _, err := c.rd.Buffer().Peek(1); err != nil {
			return
		}
		s.setIdle(c, false)
		if !first {
			head = time.Now().Add(s.o.ReadHeaderTimeout)
		}
		c.rwc.SetReadDeadline(head)
		// The answer's writes are bounded as they come (WriteTimeout):
		// the handler's own time before it answers does not count.
		c.rwc.SetWriteDeadline(time.Time{})
		r, err := readRequest(c.rd, &s.o)
		var re *requestError
		if errors.As(err, &re) {
			c.refuse(re.code, re.msg)
			return
		}
		if err != nil {
			return
		}
		if r.body.eof {
			// Nothing more to read for this request: the watch of
			// handle waits for the next one, unbounded.
			c.rwc.SetReadDeadline(time.Time{})
		} else {
			c.rwc.SetReadDeadline(time.Now().Add(s.o.ReadBodyTimeout))
		}
		if !c.handle(ctx, r) {
			return
		}
	}
}

// aLongTimeAgo is a deadline in the past: it stops a read in progress.
var aLongTimeAgo = time.Unix(1, 0)

// handle runs the handler for r and reports whether the connection can
// serve another request.
func (c *serverConn) handle(ctx context.Context, r *Request) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.ctx = ctx
	if c.rwc.RemoteAddr() != nil && c.rwc.RemoteAddr().Network() != "unix" {
		r.RemoteAddr = c.rwc.RemoteAddr().String()
	}
	w := newResponse(c, r)
	if r.expect && !r.body.eof {
		r.body.proceed = w.proceed
	}
	// A request without a body leaves the connection silent until the
	// next one: a read that ends meanwhile means the client went away,
	// and the request's context ends, so that a stream it followed stops
	// now, not at its next write. (Bytes read are the next request's and
	// stay in the buffer.)
	var watch chan struct{}
	var stopping atomic.Bool
	if r.body.eof {
		watch = make(chan struct{})
		go func() {
			defer close(watch)
			if _, err := c.rd.Buffer().Peek(1); err != nil && !stopping.Load() {
				cancel()
			}
		}()
	}
	ok := c.run(w, r)
	if watch != nil {
		stopping.Store(true)
		c.rwc.SetReadDeadline(aLongTimeAgo)
		<-watch
		c.rwc.SetReadDeadline(time.Time{})
	}
	if !ok {
		return false
	}
	if err := w.finish(); err != nil {
		return false
	}
	if !w.keep && !r.body.eof {
		// The client may still be sending the body: closing with unread
		// bytes would reset the connection, and the client could lose the
		// answer it has not read yet.
		c.closeWriteAndDrain()
	}
	// A client that went away or a server closing fails the next read.
	return w.keep
}

// run calls the handler; a panic is reported, not fatal.
func (c *serverConn) run(w *response, r *Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			stack := make([]byte, 16<<10)
			stack = stack[:runtime.Stack(stack, false)]
			c.s.o.Logf("%spanic serving %s %s: %v\n%s", c.s.o.prefix(), r.Method, r.Path, p, stack)
			ok = false
		}
	}()
	c.s.h.ServeHTTP(w, r)
	return true
}

// refuse answers a request no handler will see with a JSON error, then
// closes the connection: first its sending side, then, after reading
// what the client still sends for a moment, the rest, so that the client
// reads the answer instead of a reset.
func (c *serverConn) refuse(code int, msg string) {
	c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	writeRefusal(c.rwc, code, msg)
	c.closeWriteAndDrain()
}

// Bounds of closeWriteAndDrain: what a client still sends is read for a
// moment, not for as long as it likes.
const (
	drainTime  = 500 * time.Millisecond
	drainBytes = 256 << 10
)

// closeWriteAndDrain ends the sending side of a connection whose answer
// is written and flushed, then reads what the client still sends (a body
// no handler read) for a bounded time, so that the close that follows
// does not reset the connection under an answer the client has not read.
func (c *serverConn) closeWriteAndDrain() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else if u, ok := c.rwc.(interface{ Unwrap() net.Conn }); ok {
		if cw, ok := u.Unwrap().(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	c.rwc.SetReadDeadline(time.Now().Add(drainTime))
	io.CopyN(io.Discard, c.rwc, drainBytes)
}
