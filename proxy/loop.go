//go:build linux || darwin || freebsd

package proxy

import (
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/rawsock"
	"github.com/clusterrun/clusterrun/route"
)

// Readiness flags of a pollEvent, whatever the poller.
const (
	evIn uint32 = 1 << iota
	evOut
	evRdHup
	evHup
	evErr
)

type pollEvent struct {
	fd int32
	ev uint32
}

const (
	// maxEvents is how many readiness events one wait returns at most.
	maxEvents = 256
	// bufSize is the read buffer of a loop and the size of a direction's
	// pending buffer: what a direction holds when its destination is slow.
	// haproxy's default buffer is the same 16 KiB.
	bufSize = 16 << 10
	// acceptBatch bounds the accepts per readiness of the listener, so a
	// flood of new connections does not starve the open ones.
	acceptBatch = 16
	// freeBufs bounds the pending buffers a loop keeps for reuse.
	freeBufs = 64
	// freePipes bounds the empty splice pipes a loop keeps for reuse;
	// others are closed the moment their direction goes idle.
	freePipes = 16
	// retryPause is how long a loop that stopped accepting at a limit
	// waits before it looks again (sooner when one of its connections
	// ends).
	retryPause = 50 * time.Millisecond
)

// loop is one event loop: a goroutine locked to its thread that waits on
// a poller and moves every byte of the connections it accepted, through
// one read buffer, with read(2) and send(2). A connection never leaves the
// loop that accepted it, so its state needs no lock. Other goroutines talk
// to a loop only through post.
type loop struct {
	p    *Proxy
	idx  int
	poll *poller
	evs  []pollEvent
	// sides maps a descriptor to its end of a connection; it only holds
	// descriptors of this loop.
	sides []*side
	buf   []byte
	free  [][]byte
	pipes []*pipe // empty, for reuse
	now   int64
	dirty []*conn

	cmdMu  sync.Mutex
	cmds   []func()
	woken  bool
	exited bool // no more commands: the poller is closed

	conns int // open connections of this loop
	// listening: the listener is in this loop's poller; listenerGone: the
	// loop has let go of it for good (Close or a permanent error).
	listening, listenerGone bool
	closingDown             bool
	listenReady             bool
	// resumeAt is when to put the listener back after a pause (a limit or
	// an accept error); backoff is the current accept-error backoff.
	resumeAt int64
	backoff  time.Duration
	failed   int

	// waitingList holds the connections not yet forwarded, in accept order
	// (their WaitForBackend deadlines in order); dialingList those with a
	// dial in flight, in dial order (their ConnectTimeout deadlines).
	waitingList, dialingList connList
}

// side is one socket of a connection and what the poller said of it.
type side struct {
	c  *conn
	fd int
	// readable and writable are edge-triggered hints: set by an event,
	// cleared when a call finds the socket drained or full. rdhup: the
	// peer has shut down its write side (everything it sent is in the
	// receive queue). broken: an error or a hang-up is pending.
	readable, writable, rdhup, broken bool
	backend                           bool
}

// Connection states.
const (
	connWaiting   = iota // accepted, waiting for a backend (in the queue or between tries)
	connDialing          // a dial in flight
	connForwarded        // bytes flow
	connClosed
)

// conn is one client connection, from accept to close.
type conn struct {
	l     *loop
	cli   side
	be    side
	state int
	key   uint64 // IPHash key of the client's address
	// up is client to backend, down backend to client.
	up, down flow
	lease    route.Lease
	answered bool
	// tried are the backends that refused this connection (or failed it
	// otherwise), so it does not try them again; skipped those whose dial
	// timed out, not tried again until a lease ends somewhere (the queue
	// wakes it) or the routable set changes. skipped includes tried.
	tried, skipped []*route.Target
	triedBuf       [4]*route.Target
	skippedBuf     [4]*route.Target
	accepted       int64
	dialed         int64
	w              route.Waiter
	inDirty        bool
	// links of waitingList and dialingList.
	wPrev, wNext, dPrev, dNext *conn
}

// flow is one direction: bytes read from its source that its destination
// has not taken yet, and how far its end has gone. A direction that reads
// a full buffer is a bulk transfer: it goes on by splice(2), socket to pipe
// to socket, with no copy through user space, as long as its source has
// bytes ready; then the pipe goes back (see pipe), so an idle connection
// holds none. It stays bulk: when its source has bytes again it takes a
// pipe at once, rather than copy a buffer through user space first. On a
// busy machine a transfer drains its socket at every other wake-up, and
// each restart cost a buffer's copy.
type flow struct {
	buf      []byte
	off, end int
	pipe     *pipe
	inPipe   int  // bytes in pipe that dst has not taken
	eof      bool // the source ended (read 0, or its shutdown is known)
	shut     bool // the destination's write side is shut down
	bulk     bool // it read a full buffer once
}

func (f *flow) pending() bool { return f.off < f.end || f.inPipe > 0 }

// ended: the source ended and the destination has everything.
func (f *flow) ended() bool { return f.eof && !f.pending() }

func newLoop(p *Proxy, idx int) (*loop, error) {
	pl, err := newPoller()
	if err != nil {
		return nil, err
	}
	return &loop{p: p, idx: idx, poll: pl, evs: make([]pollEvent, maxEvents), buf: make([]byte, bufSize)}, nil
}

// post runs f on the loop's goroutine; safe from any goroutine.
func (l *loop) post(f func()) {
	l.cmdMu.Lock()
	if l.exited {
		l.cmdMu.Unlock()
		return
	}
	l.cmds = append(l.cmds, f)
	wake := !l.woken
	l.woken = true
	l.cmdMu.Unlock()
	if wake {
		l.poll.wake()
	}
}

func (l *loop) run() {
	// The loop waits in epoll_wait, a blocking system call: on its own
	// thread, it never holds up the goroutines of the rest of the runner.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() {
		l.cmdMu.Lock()
		l.exited = true
		l.cmdMu.Unlock()
		for _, pp := range l.pipes {
			l.closePipe(pp)
		}
		l.pipes = nil
		l.poll.close()
		l.p.loopEnded()
	}()
	l.now = route.Now()
	l.resume()
	for {
		if l.closingDown && l.conns == 0 && !l.listening {
			return
		}
		n, err := l.poll.wait(l.evs, l.timeout())
		l.now = route.Now()
		if err != nil {
			// Only a broken poller gets here (EBADF, EINVAL): nothing this
			// loop can do but give up its connections.
			l.p.log.Printf("cannot wait for events on %s: %v; closing its connections", l.p.lnString, err)
			l.letGoOfListener(nil)
			l.closingDown = true
			l.closeAll()
			continue
		}
		// Flags first, for every event, before anything closes or opens a
		// descriptor: a descriptor closed and reused while this batch is
		// handled must not get the old one's flags.
		woken := false
		for i := range n {
			e := l.evs[i]
			fd := int(e.fd)
			if l.poll.isWake(e.fd) {
				woken = true
				continue
			}
			if fd == l.p.lfd && l.listening {
				l.listenReady = true
				continue
			}
			if fd >= len(l.sides) || l.sides[fd] == nil {
				continue
			}
			s := l.sides[fd]
			if e.ev&(evIn|evRdHup|evHup|evErr) != 0 {
				s.readable = true
			}
			if e.ev&(evOut|evHup|evErr) != 0 {
				s.writable = true
			}
			if e.ev&(evRdHup|evHup) != 0 {
				s.rdhup = true
			}
			if e.ev&(evHup|evErr) != 0 {
				s.broken = true
			}
			if c := s.c; !c.inDirty {
				c.inDirty = true
				l.dirty = append(l.dirty, c)
			}
		}
		for i, c := range l.dirty {
			l.dirty[i] = nil
			c.inDirty = false
			l.service(c)
		}
		l.dirty = l.dirty[:0]
		if woken {
			l.poll.woken()
			l.runCommands()
		}
		l.expire()
		if l.listenReady {
			l.listenReady = false
			l.accept()
		}
	}
}

func (l *loop) runCommands() {
	l.cmdMu.Lock()
	cmds := l.cmds
	l.cmds = nil
	l.woken = false
	l.cmdMu.Unlock()
	for _, f := range cmds {
		f()
	}
}

// timeout is how long the next wait may last: until the first deadline.
func (l *loop) timeout() int {
	next := int64(-1)
	if c := l.dialingList.head; c != nil {
		next = c.dialed + l.p.connectTimeout
	}
	if c := l.waitingList.head; c != nil && l.p.waitFor >= 0 {
		if d := c.accepted + l.p.waitFor; next < 0 || d < next {
			next = d
		}
	}
	if l.resumeAt > 0 && (next < 0 || l.resumeAt < next) {
		next = l.resumeAt
	}
	if next < 0 {
		return -1
	}
	ms := (next - l.now + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return int(max(ms, 0))
}

// expire acts on the deadlines that have passed.
func (l *loop) expire() {
	for c := l.dialingList.head; c != nil && l.now-c.dialed >= l.p.connectTimeout; c = l.dialingList.head {
		l.dialFailed(c, syscall.ETIMEDOUT)
	}
	if l.p.waitFor >= 0 {
		for c := l.waitingList.head; c != nil && l.now-c.accepted >= l.p.waitFor; c = l.waitingList.head {
			l.p.queueTimeouts.Add(1)
			if len(l.p.rt.Snapshot().Targets()) == 0 {
				l.p.log.Printf("no backend became routable on %s within %v; closed a connection", l.p.lnString, time.Duration(l.p.waitFor))
			} else {
				l.p.log.Printf("no backend on %s could take a connection within %v (all busy, failing or at their limit); closed it", l.p.lnString, time.Duration(l.p.waitFor))
			}
			l.close(c)
		}
	}
	if l.resumeAt > 0 && l.now >= l.resumeAt {
		l.resumeAt = 0
		l.resume()
	}
}

// --- accepting ----------------------------------------------------------

// resume puts the listener (back) into this loop's poller.
func (l *loop) resume() {
	if l.listening || l.listenerGone || l.closingDown {
		return
	}
	if err := l.poll.addListener(l.p.lfd, l.p.nloops > 1); err != nil {
		l.p.log.Printf("cannot wait for connections on %s: %v; no longer accepting", l.p.lnString, err)
		l.letGoOfListener(err)
		return
	}
	l.listening = true
	// Level-triggered: a connection that came while paused is reported
	// by the next wait.
}

// pause takes the listener out of this loop's poller until resumeAt.
func (l *loop) pause(d time.Duration) {
	if l.listening {
		l.poll.delListener(l.p.lfd)
		l.listening = false
	}
	l.resumeAt = l.now + int64(d)
}

func (l *loop) letGoOfListener(err error) {
	if l.listenerGone {
		return
	}
	if l.listening {
		l.poll.delListener(l.p.lfd)
		l.listening = false
	}
	l.listenerGone = true
	l.resumeAt = 0
	l.p.stopAccepting(err)
}

// admit claims room for one more connection: under MaxConnections and the
// descriptor budget.
func (l *loop) admit() bool {
	p := l.p
	if n := p.open.Add(1); p.maxConns > 0 && n > p.maxConns {
		p.open.Add(-1)
		return false
	}
	if !p.fds.Take(fdsPerConn, l.now) {
		p.open.Add(-1)
		return false
	}
	return true
}

func (l *loop) unadmit() {
	l.p.open.Add(-1)
	l.p.fds.Give(fdsPerConn)
}

func (l *loop) accept() {
	p := l.p
	for range acceptBatch {
		if !l.listening {
			return
		}
		if !l.admit() {
			// Clients wait in the listen backlog meanwhile; the log says
			// so once per burst.
			if p.maxConns > 0 && p.open.Load() >= p.maxConns {
				p.log.Printf("%s has %d connections open, its max_connections; new ones wait in the listen backlog", p.lnString, p.maxConns)
			} else {
				p.log.Printf("the proxies hold %d descriptors, all the budget leaves them (soft RLIMIT_NOFILE less a reserve for instances and the control socket); new connections on %s wait in the listen backlog", p.fds.Used(), p.lnString)
			}
			l.pause(retryPause)
			return
		}
		fd, key, e := -1, uint64(0), syscall.Errno(0)
		if h := p.testHookAccept; h != nil {
			e = h()
		}
		if e == 0 {
			var peer netip.Addr
			fd, peer, e = rawsock.Accept(p.lfd)
			if e == 0 && p.hashKeys && peer.IsValid() {
				key = route.AddrKey(peer)
			}
		}
		if e != 0 {
			l.unadmit()
			switch {
			case e == syscall.EAGAIN:
			case e == syscall.EBADF || e == syscall.EINVAL || e == syscall.ENOTSOCK:
				err := &acceptError{addr: p.lnString, errno: e}
				p.log.Printf("%v; no longer accepting", err)
				l.letGoOfListener(err)
			case route.Retryable(e):
				if l.backoff == 0 {
					l.backoff = acceptBackoffMin
					p.log.Printf("cannot accept on %s: %v; retrying with a backoff of up to %v", p.lnString, e, acceptBackoffMax)
				} else {
					l.backoff = min(2*l.backoff, acceptBackoffMax)
				}
				l.failed++
				l.pause(l.backoff)
			default:
				err := &acceptError{addr: p.lnString, errno: e}
				p.log.Printf("%v; no longer accepting", err)
				l.letGoOfListener(err)
			}
			return
		}
		if l.backoff != 0 {
			p.log.Printf("accepting on %s again after %d failed accepts", p.lnString, l.failed)
			l.backoff, l.failed = 0, 0
		}
		l.opened(fd, key)
	}
}

type acceptError struct {
	addr  string
	errno syscall.Errno
}

func (e *acceptError) Error() string { return "cannot accept on " + e.addr + ": " + e.errno.Error() }
func (e *acceptError) Unwrap() error { return e.errno }

// opened takes a new client connection in and routes it.
func (l *loop) opened(fd int, key uint64) {
	c := &conn{l: l, key: key, accepted: l.now, state: connWaiting}
	c.cli = side{c: c, fd: fd, writable: true}
	c.be.c, c.be.backend, c.be.fd = c, true, -1
	c.tried, c.skipped = c.triedBuf[:0], c.skippedBuf[:0]
	if err := l.poll.addConn(fd); err != nil {
		l.p.log.Printf("cannot watch a connection on %s: %v; closed it", l.p.lnString, err)
		closeFD(fd)
		l.unadmit()
		return
	}
	l.setSide(&c.cli)
	l.conns++
	l.waitingList.pushBack(c, waitingLinks)
	if !l.p.rt.Queue.Empty() {
		// Others wait already: behind them, not before.
		l.enqueue(c)
		return
	}
	l.route(c)
}

func (l *loop) setSide(s *side) {
	for s.fd >= len(l.sides) {
		l.sides = append(l.sides, make([]*side, max(len(l.sides), 64))...)
	}
	l.sides[s.fd] = s
}

// --- routing --------------------------------------------------------------

// route picks a backend for c and dials it, or queues c when none can take
// it now.
func (l *loop) route(c *conn) {
	p := l.p
	for c.state == connWaiting {
		snap := p.rt.Snapshot()
		if len(snap.Targets()) == 0 && p.waitFor < 0 {
			p.log.Printf("no backend is routable on %s; closed a connection", p.lnString)
			l.close(c)
			return
		}
		b := p.rt.Pick(c.key, c.skipped)
		if b == nil && len(snap.Targets()) > 0 && snap.AllTried(c.tried) {
			// Every routable backend refused: they are down, not busy.
			p.log.Printf("every backend on %s failed to connect; closed a connection", p.lnString)
			l.close(c)
			return
		}
		if b == nil {
			if p.waitFor < 0 {
				p.log.Printf("no backend on %s could take a connection (all busy, failing or at their limit); closed it", p.lnString)
				l.close(c)
				return
			}
			l.enqueue(c)
			return
		}
		l.dial(c, b)
	}
}

// enqueue parks c until a lease ends or is answered, or the routable set
// changes.
func (l *loop) enqueue(c *conn) {
	if c.w.Wake == nil {
		c.w.Wake = func() { l.post(func() { l.woke(c) }) }
	}
	l.p.waiting.Add(1)
	l.p.rt.Queue.Push(&c.w)
}

// woke: c was taken off the queue; try again.
func (l *loop) woke(c *conn) {
	// Every enqueue ends in one of: this (after a wake took c off the
	// queue) or close taking it off. One put back in its place never
	// stopped waiting, so it stays counted throughout: Stats never shows
	// it gone for a moment.
	if c.state != connWaiting {
		l.p.waiting.Add(-1)
		return
	}
	// Room came up, or the set changed: a backend that timed out may take
	// it now.
	c.skipped = append(c.skipped[:0], c.tried...)
	b := l.p.rt.Pick(c.key, c.skipped)
	if snap := l.p.rt.Snapshot(); b == nil && len(snap.Targets()) > 0 && snap.AllTried(c.tried) {
		l.p.waiting.Add(-1)
		l.route(c) // says why and closes it
		return
	}
	if b == nil {
		// Still no room (someone else took it): back to its place.
		l.p.rt.Queue.Push(&c.w)
		return
	}
	l.p.waiting.Add(-1)
	l.dial(c, b)
	l.route(c)
}

func (l *loop) dial(c *conn, b *route.Target) {
	l.p.rt.Acquire(b, &c.lease, l.now, c.key)
	fd, e := sysDial(b.Data.(*dialAddr))
	if fd < 0 {
		l.p.rt.Release(&c.lease)
		l.dialError(c, b, e)
		return
	}
	if err := l.poll.addConn(fd); err != nil {
		closeFD(fd)
		l.p.rt.Release(&c.lease)
		l.dialError(c, b, syscall.Errno(0))
		return
	}
	c.be.fd = fd
	c.be.readable, c.be.writable, c.be.rdhup, c.be.broken = false, false, false, false
	l.setSide(&c.be)
	c.state = connDialing
	c.dialed = l.now
	l.dialingList.pushBack(c, dialingLinks)
}

// dialError records a failed dial of b: it is not tried again by c.
func (l *loop) dialError(c *conn, b *route.Target, e syscall.Errno) {
	if l.p.forced.Load() {
		l.close(c)
		return
	}
	c.tried = append(c.tried, b)
	c.skipped = append(c.skipped, b)
	if e == 0 {
		l.p.log.Printf("cannot connect to backend %d at %s; trying another", b.ID, b.Addr)
	} else {
		l.p.log.Printf("cannot connect to backend %d at %s: %v; trying another", b.ID, b.Addr, e)
	}
}

// dialFailed ends c's dial in flight with e.
func (l *loop) dialFailed(c *conn, e syscall.Errno) {
	b := c.lease.Target()
	l.dialingList.remove(c, dialingLinks)
	l.dropBackendSide(c)
	c.state = connWaiting
	if e == syscall.ETIMEDOUT {
		// Its accept queue is full (or it is stopped): not a failure of
		// the client's request while another backend or the queue can
		// take it. Where the kernel did not tell the queue's size, what
		// was waiting on it is the best guess.
		if b.Backlog() == 0 {
			b.SetBacklog(max(b.Unanswered()-1, 1))
		}
		l.p.rt.Release(&c.lease)
		c.skipped = append(c.skipped, b)
		l.p.log.Printf("connecting to backend %d at %s timed out after %v (its accept queue is full, or it is stopped); the connection waits for another", b.ID, b.Addr, time.Duration(l.p.connectTimeout))
		if l.p.forced.Load() {
			l.close(c)
			return
		}
		l.route(c)
		return
	}
	l.p.rt.Release(&c.lease)
	l.dialError(c, b, e)
	if c.state == connWaiting {
		l.route(c)
	}
}

func (l *loop) dropBackendSide(c *conn) {
	if c.be.fd >= 0 {
		l.sides[c.be.fd] = nil
		closeFD(c.be.fd)
		c.be.fd = -1
	}
}

// connected: c's dial completed.
func (l *loop) connected(c *conn) {
	b := c.lease.Target()
	if h := l.p.testHookDialed; h != nil {
		h(b)
	}
	if b.Removed() || l.p.forced.Load() {
		// SetBackends removed b while the dial was in flight: the instance
		// may be about to get its stop signal, so it gets no new
		// connection. The backend sees a connection closed unused.
		l.dialingList.remove(c, dialingLinks)
		l.dropBackendSide(c)
		c.state = connWaiting
		l.p.rt.Release(&c.lease)
		if l.p.forced.Load() {
			l.close(c)
			return
		}
		l.route(c)
		return
	}
	l.dialingList.remove(c, dialingLinks)
	l.waitingList.remove(c, waitingLinks)
	c.state = connForwarded
	l.p.rt.Forwarded(&c.lease)
	l.pump(c)
}

// --- moving bytes ---------------------------------------------------------

// service acts on what the poller said of c's sockets.
func (l *loop) service(c *conn) {
	switch c.state {
	case connDialing:
		if c.be.broken {
			l.dialFailed(c, sockError(c.be.fd))
			return
		}
		if c.be.writable {
			l.connected(c)
			return
		}
		if c.cli.broken {
			l.close(c)
		}
	case connWaiting:
		// Only a client that went away matters: what it sent waits in its
		// socket. A half-close (rdhup without an error) is kept for the
		// backend to see.
		if c.cli.broken {
			l.close(c)
		}
	case connForwarded:
		l.pump(c)
	}
}

// pump moves what can move both ways, passes ends on and closes c once
// both directions have ended.
func (l *loop) pump(c *conn) {
	if !l.move(c, &c.up, &c.cli, &c.be) || !l.move(c, &c.down, &c.be, &c.cli) {
		return
	}
	upEnded, downEnded := c.up.ended(), c.down.ended()
	if upEnded && downEnded {
		// Both ended: close at once, with no half-close in between.
		l.close(c)
		return
	}
	if upEnded && !c.up.shut {
		c.up.shut = true
		if e := sysShutdownWrite(c.be.fd); e != 0 && e != syscall.ENOTCONN {
			l.close(c)
			return
		}
	}
	if downEnded && !c.down.shut {
		c.down.shut = true
		if e := sysShutdownWrite(c.cli.fd); e != 0 && e != syscall.ENOTCONN {
			l.close(c)
		}
	}
}

// move copies src to dst through the loop's buffer until src is drained
// or dst is full; what dst did not take waits in f's own buffer, and src
// is not read again until dst has taken it. It reports false once c is
// closed (an error on either socket closes both).
func (l *loop) move(c *conn, f *flow, src, dst *side) bool {
	if f.off < f.end {
		if !dst.writable {
			return true
		}
		n, e := rawsock.Write(dst.fd, f.buf[f.off:f.end])
		switch {
		case e == syscall.EAGAIN:
			dst.writable = false
			return true
		case e != 0:
			l.close(c)
			return false
		}
		f.off += n
		if f.off < f.end {
			dst.writable = false
			return true
		}
		l.putBuf(f.buf)
		f.buf, f.off, f.end = nil, 0, 0
	}
	if f.inPipe > 0 {
		if !dst.writable || !l.drainPipe(c, f, dst) || f.inPipe > 0 {
			return c.state != connClosed
		}
	}
	for !f.eof && src.readable {
		if f.pipe == nil && f.bulk {
			f.pipe = l.getPipe() // nil: the budget says no; copy instead
		}
		if f.pipe != nil {
			// Bulk: the pipe is empty here.
			n, e := sysSplice(src.fd, f.pipe.w, f.pipe.size)
			switch {
			case e == syscall.EAGAIN:
				src.readable = false
				l.putPipe(f) // idle: no pipe held
				return true
			case e != 0:
				l.close(c)
				return false
			case n == 0:
				f.eof = true
				l.putPipe(f)
				return true
			}
			l.touch(c, src.backend)
			f.inPipe = n
			if !l.drainPipe(c, f, dst) || f.inPipe > 0 {
				return c.state != connClosed
			}
			continue
		}
		n, e := rawsock.Read(src.fd, l.buf)
		switch {
		case e == syscall.EAGAIN:
			src.readable = false
			return true
		case e != 0:
			l.close(c)
			return false
		case n == 0:
			f.eof = true
			return true
		}
		l.touch(c, src.backend)
		w, e := rawsock.Write(dst.fd, l.buf[:n])
		switch {
		case e == syscall.EAGAIN:
			w = 0
		case e != 0:
			l.close(c)
			return false
		}
		short := n < len(l.buf)
		if short {
			// A short read drained the socket: no need for the read that
			// would say EAGAIN (the next byte comes with a new event). If
			// the peer's shutdown was reported before this read, the
			// data before it is all in: that was the end.
			if src.rdhup {
				f.eof = true
			} else {
				src.readable = false
			}
		}
		if w < n {
			f.buf = l.getBuf()
			f.end = copy(f.buf, l.buf[w:n])
			dst.writable = false
			return true
		}
		if short {
			return true
		}
		// A full buffer: a bulk transfer. The rest goes by splice, if a
		// pipe can be had (not outside Linux, nor past the budget).
		f.bulk = true
		f.pipe = l.getPipe()
	}
	return true
}

// drainPipe splices what f's pipe holds to dst until it is empty or dst is
// full. It reports false once c is closed.
func (l *loop) drainPipe(c *conn, f *flow, dst *side) bool {
	for f.inPipe > 0 {
		n, e := sysSplice(f.pipe.r, dst.fd, f.inPipe)
		switch {
		case e == syscall.EAGAIN:
			dst.writable = false
			return true
		case e != 0:
			l.close(c)
			return false
		}
		f.inPipe -= n
	}
	return true
}

// pipe is a splice pipe: two descriptors, claimed from the budget.
type pipe struct {
	r, w, size int
}

// getPipe takes an empty pipe from the loop's free list, or makes one; nil
// when splice is not there or the descriptor budget says no.
func (l *loop) getPipe() *pipe {
	if n := len(l.pipes); n > 0 {
		pp := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return pp
	}
	if !spliceWorks || !l.p.fds.Take(2, l.now) {
		return nil
	}
	pp, ok := newPipe()
	if !ok {
		l.p.fds.Give(2)
		return nil
	}
	return pp
}

// putPipe takes f's pipe back: to the free list when it is empty and the
// list has room, else closed at once.
func (l *loop) putPipe(f *flow) {
	pp := f.pipe
	if pp == nil {
		return
	}
	f.pipe = nil
	if f.inPipe == 0 && len(l.pipes) < freePipes {
		l.pipes = append(l.pipes, pp)
		return
	}
	f.inPipe = 0
	l.closePipe(pp)
}

func (l *loop) closePipe(pp *pipe) {
	closeFD(pp.r)
	closeFD(pp.w)
	l.p.fds.Give(2)
}

// touch records a byte read from one side at the loop's now.
func (l *loop) touch(c *conn, fromBackend bool) {
	if !fromBackend {
		c.lease.Sent(l.now)
		return
	}
	if !c.answered {
		c.answered = true
		l.p.rt.Answered(&c.lease, l.now)
		return
	}
	c.lease.Received(l.now)
}

func (l *loop) getBuf() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b
	}
	return make([]byte, bufSize)
}

func (l *loop) putBuf(b []byte) {
	if len(l.free) < freeBufs {
		l.free = append(l.free, b)
	}
}

// close ends c: both sockets are closed, its lease and its queue place
// given back.
func (l *loop) close(c *conn) {
	if c.state == connClosed {
		return
	}
	p := l.p
	switch c.state {
	case connWaiting:
		if p.rt.Queue.Remove(&c.w) {
			p.waiting.Add(-1)
		}
		l.waitingList.remove(c, waitingLinks)
	case connDialing:
		l.dialingList.remove(c, dialingLinks)
		l.waitingList.remove(c, waitingLinks)
		l.dropBackendSide(c)
		p.rt.Release(&c.lease)
	case connForwarded:
		l.dropBackendSide(c)
		p.rt.Release(&c.lease)
	}
	c.state = connClosed
	l.sides[c.cli.fd] = nil
	closeFD(c.cli.fd)
	for _, f := range []*flow{&c.up, &c.down} {
		if f.buf != nil {
			l.putBuf(f.buf)
			f.buf = nil
		}
		l.putPipe(f)
	}
	l.conns--
	l.unadmit()
	if !l.listening && l.resumeAt > 0 && l.backoff == 0 {
		// Paused at a limit: there may be room now.
		l.resumeAt = 0
		l.resume()
	}
}

// closeDown is Close's first step on this loop: no more accepting, and the
// connections that wait for a backend are closed.
func (l *loop) closeDown() {
	l.closingDown = true
	l.letGoOfListener(nil)
	for c := l.waitingList.head; c != nil; {
		next := c.wNext
		if c.state == connWaiting {
			l.close(c)
		}
		c = next
	}
}

// closeAll closes every connection of this loop (Close's deadline).
func (l *loop) closeAll() {
	l.closeDown()
	for _, s := range l.sides {
		if s != nil && !s.backend {
			l.close(s.c)
		}
	}
}

// --- lists ----------------------------------------------------------------

type linkSet int

const (
	waitingLinks linkSet = iota
	dialingLinks
)

// connList is an intrusive list of conns through one of their link pairs.
type connList struct {
	head, tail *conn
}

func links(c *conn, s linkSet) (prev, next **conn) {
	if s == waitingLinks {
		return &c.wPrev, &c.wNext
	}
	return &c.dPrev, &c.dNext
}

func (q *connList) pushBack(c *conn, s linkSet) {
	prev, next := links(c, s)
	*prev, *next = q.tail, nil
	if q.tail != nil {
		_, tn := links(q.tail, s)
		*tn = c
	} else {
		q.head = c
	}
	q.tail = c
}

// remove unlinks c if it is in q.
func (q *connList) remove(c *conn, s linkSet) {
	prev, next := links(c, s)
	if *prev == nil && q.head != c {
		return // not in the list
	}
	if *prev != nil {
		_, pn := links(*prev, s)
		*pn = *next
	} else {
		q.head = *next
	}
	if *next != nil {
		np, _ := links(*next, s)
		*np = *prev
	} else {
		q.tail = *prev
	}
	*prev, *next = nil, nil
}
