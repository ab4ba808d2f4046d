package httpmode

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/rawsock"
	"github.com/clusterrun/clusterrun/route"
)

// clientConn is one client connection, served by one goroutine from accept
// to close: it reads a request, forwards it, writes the answer, and reads
// the next.
type clientConn struct {
	s *Server
	// c is the connection, or nil while it is the bare descriptor fd
	// (see accepted): conn makes it when the connection first has to
	// wait. fd is -1 when c owns the descriptor.
	c  net.Conn
	fd int
	// key is the client address's IPHash key (0 for a unix socket);
	// forFor its X-Forwarded-For form and forwardedFor its Forwarded
	// "for=" form; trusted: its forwarding fields are kept.
	key          uint64
	forFor       []byte
	forwardedFor []byte
	trusted      bool
	// rdl and wdl are the read and write deadlines last set on c (see
	// readBy and writeBy).
	rdl, wdl time.Time
	// raw is c's descriptor, for reads and writes that do not wait (see
	// tryRead); nil when c has none or is not made yet.
	raw               syscall.RawConn
	rawRead, rawWrite func(fd uintptr) bool
	rawBuf            []byte
	rawN              int
	rawErr            error

	// rb[r:w] is read from the client and not used yet.
	rb   []byte
	r, w int
	req  head
	// rq is the request under way (forward.go).
	rq request
	// out is where heads are written before they are sent.
	out []byte

	// logLine holds the method and target for the access log (the head's
	// bytes may be gone by the end of the request).
	logLine []byte

	// mu guards state, which Close reads to tell an idle connection from
	// a busy one, and the tunnel's other end, which kill closes.
	mu       sync.Mutex
	state    int
	closing  bool // Close began: the answer under way is the last one
	killed   bool
	tunnelTo *net.TCPConn
}

// Connection states, for Close.
const (
	stIdle   = iota // waiting for a request
	stActive        // a request under way
	stDone
)

// cliBufSize is a client connection's read buffer; a head that does not fit
// grows it up to MaxHeaderSize.
const cliBufSize = 2 << 10

// deadlineSlack: a deadline is set this much later than asked for, and set
// again only when the one in place is off by more than this, so a busy
// keep-alive connection does not change a runtime timer (a lock) at every
// request; a timeout fires at most this late, never early.
const deadlineSlack = 100 * time.Millisecond

// deadliner is the part of a connection that deadlines are set on.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// readBy makes c's reads fail from about want on (see deadlineSlack); *set
// holds the deadline in place.
func readBy(c deadliner, set *time.Time, want time.Time) {
	if !set.IsZero() && !set.Before(want) && set.Sub(want) <= deadlineSlack {
		return
	}
	*set = want.Add(deadlineSlack / 2)
	c.SetReadDeadline(*set)
}

// writeBy is readBy for writes.
func writeBy(c deadliner, set *time.Time, want time.Time) {
	if !set.IsZero() && !set.Before(want) && set.Sub(want) <= deadlineSlack {
		return
	}
	*set = want.Add(deadlineSlack / 2)
	c.SetWriteDeadline(*set)
}

// workerIdle: every this long, as many workers end as stayed idle the
// whole time. A burst's workers, their stacks grown and buffers allocated,
// serve the next burst too, and go once traffic falls.
const workerIdle = 10 * time.Second

// workers counts the goroutines that serve client connections (see
// dispatch), for the trimmer. A worker's wait for its next connection has
// no timer of its own: a timer reset at every connection took a runtime
// lock and a timer-channel select per new client.
type workers struct {
	handoff chan accepted
	// live workers, idle ones (waiting in next), and the fewest idle since
	// the last trim.
	live, idle, low atomic.Int32
	// started wakes the trimmer when a worker starts.
	started chan struct{}
	// every is workerIdle (shorter in tests).
	every time.Duration
}

// accepted is a client connection as the accept loop hands it to a
// worker: a net.Conn, or (raw) the bare descriptor of a TCP connection and
// its client's address. Most connections never wait (their head comes with
// them, TCP_DEFER_ACCEPT, and their answer fits in the socket), and a bare
// descriptor spares each of them what the net package does for a
// net.Conn: getsockname, setsockopt(TCP_NODELAY) (it inherits the
// listener's instead, see rawAccept), an epoll_ctl to add it and one to
// remove it, a finalizer and five allocations. The zero value is no
// connection: it ends a worker.
type accepted struct {
	c    net.Conn
	raw  bool
	fd   int
	peer netip.Addr
}

func (a accepted) none() bool { return a.c == nil && !a.raw }

// dispatch hands c to an idle worker, or starts one.
func (s *Server) dispatch(c accepted) {
	select {
	case s.w.handoff <- c:
		if n, low := s.w.idle.Load(), s.w.low.Load(); n < low {
			s.w.low.Store(n) // approximate: a race loses a trim, no more
		}
	default:
		s.w.live.Add(1)
		s.wg.Add(1)
		go s.worker(c)
		select {
		case s.w.started <- struct{}{}:
		default:
		}
	}
}

// worker serves one connection after another with the same clientConn:
// its buffers and its goroutine's grown stack are reused, so a new client
// connection costs no allocation of ours and no stack growth.
func (s *Server) worker(c accepted) {
	defer s.wg.Done()
	defer s.w.live.Add(-1)
	cc := &clientConn{s: s, rb: make([]byte, cliBufSize), fd: -1}
	cc.initRaw()
	for !c.none() {
		cc.serve(c)
		c = s.next()
	}
}

// next waits for a worker's next connection; none: the worker ends.
func (s *Server) next() accepted {
	s.w.idle.Add(1)
	defer s.w.idle.Add(-1)
	select {
	case c := <-s.w.handoff:
		return c
	case <-s.closing:
		return accepted{}
	}
}

// trim ends, every workerIdle, the workers that stayed idle all along (a
// nil handoff ends one). It sleeps while there is no worker.
func (s *Server) trim() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-s.w.started:
		case <-s.closing:
			return
		}
		for s.w.live.Load() > 0 {
			s.w.low.Store(s.w.idle.Load())
			t.Reset(s.w.every)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
				return
			}
		ending:
			for n := s.w.low.Load(); n > 0; n-- {
				select {
				case s.w.handoff <- accepted{}:
				default:
					break ending // none waits any more
				}
			}
		}
	}
}

// begin makes cc the state of a new connection a.
func (cc *clientConn) begin(a accepted) {
	s := cc.s
	cc.mu.Lock()
	cc.c, cc.fd, cc.state, cc.closing, cc.killed, cc.tunnelTo = a.c, -1, stIdle, false, false, nil
	if a.raw {
		cc.fd = a.fd
	}
	cc.mu.Unlock()
	cc.r, cc.w, cc.out = 0, 0, cc.out[:0]
	cc.rdl, cc.wdl = time.Time{}, time.Time{}
	cc.raw = nil
	if sc, ok := a.c.(syscall.Conn); ok {
		cc.raw, _ = sc.SyscallConn()
	}
	cc.key, cc.trusted = 0, false
	cc.forFor, cc.forwardedFor = cc.forFor[:0], cc.forwardedFor[:0]
	if len(cc.rb) > cliBufSize {
		cc.rb = make([]byte, cliBufSize) // a large head or body grew it
	}
	addr := a.peer
	if a.c != nil {
		if ta, ok := a.c.RemoteAddr().(*net.TCPAddr); ok {
			addr = ta.AddrPort().Addr().Unmap()
		}
	}
	if addr.IsValid() {
		cc.key = route.AddrKey(addr)
		cc.forFor = addr.AppendTo(cc.forFor)
		if addr.Is6() {
			cc.forwardedFor = append(append(append(cc.forwardedFor, `"[`...), cc.forFor...), `]"`...)
		} else {
			cc.forwardedFor = append(cc.forwardedFor, cc.forFor...)
		}
		for _, p := range s.o.TrustedProxies {
			if p.Contains(addr) {
				cc.trusted = true
				break
			}
		}
	}
}

// release gives back what the connection held.
func (cc *clientConn) release() {
	cc.mu.Lock()
	if cc.c != nil {
		cc.c.Close()
	}
	if cc.fd >= 0 {
		syscall.Close(cc.fd)
		cc.fd = -1
	}
	cc.mu.Unlock()
	cc.s.open.Add(-1)
	cc.s.fds.Give(1)
}

// conn returns the connection as a net.Conn, made from the bare descriptor
// the first time: the connection is about to wait, on the runtime's poller
// and under a deadline. (A client connection's descriptor is the runner's
// own, unlike a listening socket's, so going through an os.File changes
// nobody else's file description.) When that fails (no descriptor left for
// the dup), the connection is shut down and c fails every call.
func (cc *clientConn) conn() net.Conn {
	if cc.c != nil {
		return cc.c
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	f := os.NewFile(uintptr(cc.fd), "client")
	c, err := net.FileConn(f)
	if err != nil {
		syscall.Shutdown(cc.fd, syscall.SHUT_RDWR)
		f.Close()
		cc.fd = -1
		cc.c = failedConn{fmt.Errorf("cannot make a connection of its descriptor: %w", err)}
		return cc.c
	}
	f.Close()
	cc.fd = -1
	if cc.killed {
		c.SetDeadline(time.Unix(1, 0))
	}
	cc.c = c
	cc.raw, _ = c.(syscall.Conn).SyscallConn()
	return c
}

// serve serves connection a until it ends.
func (cc *clientConn) serve(a accepted) {
	s := cc.s
	cc.begin(a)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cc.release()
		return
	}
	s.conns[cc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		cc.state = stDone
		cc.mu.Unlock()
		cc.release()
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
	}()
	for {
		if !cc.readHead() {
			return
		}
		if !cc.mark(stActive) {
			return
		}
		keep := cc.handle()
		if !keep || !cc.mark(stIdle) {
			return
		}
	}
}

// mark moves the connection to state st; it reports false once Close has
// begun and the connection should end (after the answer under way).
func (cc *clientConn) mark(st int) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.state = st
	return !cc.closing || st == stActive
}

// shutdown: Close began. An idle connection ends now; a busy one after its
// answer, which says "Connection: close".
func (cc *clientConn) shutdown() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.closing = true
	if cc.state == stIdle && cc.c != nil {
		// Wakes the read in readHead, which then returns. (A bare
		// descriptor is never waited on: readHead sees closing when it
		// makes the connection to wait.)
		cc.c.SetReadDeadline(time.Unix(1, 0))
	}
}

// kill ends the connection whatever it is doing.
func (cc *clientConn) kill() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.killed = true
	if cc.c != nil {
		cc.c.SetDeadline(time.Unix(1, 0))
	} else if cc.fd >= 0 {
		// Its next read or write fails; conn makes a killed connection
		// with its deadline past.
		syscall.Shutdown(cc.fd, syscall.SHUT_RDWR)
	}
	if cc.tunnelTo != nil {
		cc.tunnelTo.SetDeadline(time.Unix(1, 0))
	}
}

// readHead reads until rb holds a whole request head, and parses it into
// cc.req. It answers a malformed or oversized head itself and reports false
// when the connection should end: the client closed, went idle past
// IdleTimeout, took HeaderTimeout over a head, or sent a bad one.
func (cc *clientConn) readHead() bool {
	s := cc.s
	// Bytes left from the previous request (pipelining) come first.
	if cc.r == cc.w {
		cc.r, cc.w = 0, 0
	} else if cc.r > 0 && cc.r > len(cc.rb)/2 {
		cc.w = copy(cc.rb, cc.rb[cc.r:cc.w])
		cc.r = 0
	}
	started := cc.w > cc.r
	// A connection with no read deadline yet (a new one) reads without
	// one while its bytes are there: they usually are (TCP_DEFER_ACCEPT),
	// and a deadline is a runtime timer set and removed per connection.
	lazy := cc.rdl.IsZero() && cc.canTry()
	if !lazy {
		cc.readDeadline(started)
	}
	for {
		if cc.w > cc.r {
			err := parseRequest(cc.rb[cc.r:cc.w], &cc.req)
			if err == nil && cc.req.size > s.o.MaxHeaderSize {
				err = errTooLarge
			}
			if err == nil {
				return true
			}
			if err != errIncomplete {
				cc.refuse(statusOf(err), err.Error())
				return false
			}
			if cc.w-cc.r >= s.o.MaxHeaderSize {
				cc.refuse(431, "the request line and headers are larger than max_header_size")
				return false
			}
			if !started {
				started = true
				if !lazy {
					cc.readDeadline(true)
				}
			}
		}
		if cc.w == len(cc.rb) {
			if cc.r > 0 {
				cc.w = copy(cc.rb, cc.rb[cc.r:cc.w])
				cc.r = 0
			} else {
				nb := make([]byte, min(2*len(cc.rb), s.o.MaxHeaderSize+1))
				copy(nb, cc.rb[:cc.w])
				cc.rb = nb
			}
		}
		if lazy {
			n, err := cc.tryRead(cc.rb[cc.w:])
			cc.w += n
			switch {
			case err == errWouldBlock:
				// Nothing more yet: from here on reads wait, with a
				// deadline. Close may have set one in the past just
				// before, which readDeadline replaced.
				lazy = false
				cc.readDeadline(started)
				if cc.isClosing() {
					return false
				}
			case err != nil:
				return false
			}
			continue
		}
		n, err := cc.conn().Read(cc.rb[cc.w:])
		cc.w += n
		if err != nil {
			if n > 0 {
				continue
			}
			if started && errors.Is(err, os.ErrDeadlineExceeded) && !cc.isClosing() {
				cc.refuse(408, "the request line and headers took longer than header_timeout")
			}
			return false
		}
	}
}

// readDeadline sets the read deadline a head waits under: HeaderTimeout
// once it has started, IdleTimeout before.
func (cc *clientConn) readDeadline(started bool) {
	if started {
		readBy(cc.conn(), &cc.rdl, time.Now().Add(cc.s.o.HeaderTimeout))
	} else {
		readBy(cc.conn(), &cc.rdl, time.Now().Add(cc.s.o.IdleTimeout))
	}
}

// errWouldBlock: a read or write without waiting found nothing to do.
var errWouldBlock = errors.New("would block")

// canTry: tryRead and tryWrite work on this connection.
func (cc *clientConn) canTry() bool { return cc.c == nil || cc.raw != nil }

// tryRead reads into p what is there, without waiting: errWouldBlock when
// nothing is, io.EOF when the client closed.
func (cc *clientConn) tryRead(p []byte) (int, error) {
	if cc.c == nil {
		return readNow(cc.fd, p)
	}
	cc.rawBuf, cc.rawN, cc.rawErr = p, 0, nil
	if err := cc.raw.Read(cc.rawRead); err != nil {
		return 0, err
	}
	cc.rawBuf = nil
	return cc.rawN, cc.rawErr
}

// tryWrite writes what of p the socket takes, without waiting.
func (cc *clientConn) tryWrite(p []byte) (int, error) {
	if cc.c == nil {
		return writeNow(cc.fd, p)
	}
	cc.rawBuf, cc.rawN, cc.rawErr = p, 0, nil
	if err := cc.raw.Write(cc.rawWrite); err != nil {
		return 0, err
	}
	cc.rawBuf = nil
	return cc.rawN, cc.rawErr
}

// rawRead and rawWrite are the calls tryRead and tryWrite make on the
// descriptor, made once per worker so that a call allocates nothing; they
// never ask the poller to wait (they return true).
func (cc *clientConn) initRaw() {
	cc.rawRead = func(fd uintptr) bool {
		cc.rawN, cc.rawErr = readNow(int(fd), cc.rawBuf)
		return true
	}
	cc.rawWrite = func(fd uintptr) bool {
		cc.rawN, cc.rawErr = writeNow(int(fd), cc.rawBuf)
		return true
	}
}

// readNow reads into p from non-blocking descriptor fd what is there:
// errWouldBlock when nothing is, io.EOF when the client closed.
func readNow(fd int, p []byte) (int, error) {
	n, e := rawsock.Read(fd, p)
	switch {
	case e == syscall.EAGAIN:
		return 0, errWouldBlock
	case e != 0:
		return 0, e
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// writeNow writes what of p non-blocking descriptor fd takes.
func writeNow(fd int, p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, e := rawsock.Write(fd, p[done:])
		switch {
		case e == syscall.EAGAIN:
			return done, nil
		case e != 0:
			return done, e
		}
		done += n
	}
	return done, nil
}

func (cc *clientConn) isClosing() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.closing
}

// refuse answers a request the runner does not forward and will not read
// past: the connection closes after it.
func (cc *clientConn) refuse(status int, why string) {
	cc.s.log.Printf("refused a request on %s with %d: %s", cc.s.lnStr, status, why)
	cc.writeError(status, true, nil)
}

// writeError writes a short plain-text answer of the runner's own, with
// the header fields in extra (each ended by CRLF).
func (cc *clientConn) writeError(status int, close bool, extra []byte) {
	text := statusText(status)
	body := strconv.Itoa(status) + " " + text + "\n"
	b := cc.out[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if close {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, extra...)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	cc.out = b
	writeBy(cc.conn(), &cc.wdl, time.Now().Add(cc.s.o.IdleTimeout))
	cc.c.Write(b)
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

// failedConn is a connection that could not be made of its descriptor: it
// fails every read and write with why, so its worker ends it as it ends any
// broken connection.
type failedConn struct{ why error }

func (f failedConn) Read([]byte) (int, error)         { return 0, f.why }
func (f failedConn) Write([]byte) (int, error)        { return 0, f.why }
func (f failedConn) Close() error                     { return nil }
func (f failedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f failedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f failedConn) SetDeadline(time.Time) error      { return nil }
func (f failedConn) SetReadDeadline(time.Time) error  { return nil }
func (f failedConn) SetWriteDeadline(time.Time) error { return nil }
