package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options tune a Proxy. The zero value is usable.
type Options struct {
	// Balance picks the backend of each new connection; an unknown value
	// means LeastConn.
	Balance Balance
	// ConnectTimeout bounds each dial to a backend; 0 (or less) means 1s.
	ConnectTimeout time.Duration
	// WaitForBackend is how long a connection may wait in the runner for a
	// backend that can take it — none is routable (a lone instance
	// restarting, a cold start), or every one is at its limit — before it is
	// closed and counted; 0 means 10s, a negative value means no wait.
	WaitForBackend time.Duration
	// MaxConnections bounds the client connections open at once; past it
	// the proxy stops accepting and new clients wait in the listen backlog.
	// 0 means no bound of its own: FDs still bounds it.
	MaxConnections int
	// MaxPerInstance bounds the connections forwarded to one backend at
	// once (haproxy's per-server maxconn); the others wait in the proxy's
	// queue. 0 means no fixed bound; where the kernel tells (Linux), no
	// backend is ever sent more unanswered connections than its accept
	// queue holds.
	MaxPerInstance int
	// HungAfter: a backend that has sent nothing for this long while a
	// connection forwarded to it has waited this long for its first byte
	// gets no new connections (but one probe at a time) until it answers;
	// the log says so. 0 means 2s; a negative value turns this off.
	HungAfter time.Duration
	// FDs is the descriptor budget this proxy shares with the other proxies
	// of the process; nil means one of its own with DefaultReserve.
	FDs *FDBudget
	// Logf receives the proxy's own messages; nil means silent. Repeated
	// messages are rate-limited before they reach it, and it is never called
	// with a lock of the Proxy held.
	Logf func(format string, args ...any)

	// loops is the number of event loops; 0 means 1. Unexported: it is a
	// tuning knob for measurements, not a user setting.
	loops int
}

const (
	defaultConnectTimeout = time.Second
	defaultWaitForBackend = 10 * time.Second
	defaultHungAfter      = 2 * time.Second
)

// Accept backoff, as net/http.Server.Serve does it.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Proxy accepts on one public listener and forwards each connection's bytes to
// one backend. Its methods are safe for concurrent use; Serve is called once.
type Proxy struct {
	balance        Balance
	connectTimeout int64 // ns
	waitFor        int64 // ns; < 0: no wait
	hungAfter      int64 // ns; <= 0: never
	maxConns       int64 // 0: none
	maxPerInstance int64
	nloops         int
	log            *limiter
	lnString       string
	fds            *FDBudget

	// lfd is the listening socket, taken from the net.Listener New was
	// given; unixPath is set for a unix listener.
	lfd   int
	lnErr error // why lfd could not be taken, reported by Serve
	// acceptOff: StopAccepting was called (under mu).
	acceptOff bool
	hashKeys  bool // IPHash: the accept path reads the client's address

	// snap is the routable set; SetBackends swaps it whole, so the
	// per-connection path reads it with one atomic load and never locks.
	snap atomic.Pointer[snapshot]
	// setMu serialises SetBackends calls with each other, nothing else.
	setMu sync.Mutex
	// rr rotates the starting point of every pick (see snapshot.pick).
	rr atomic.Uint64

	// open counts client connections from accept to close; waiting those
	// in the queue (for tests and status).
	open    atomic.Int64
	waiting atomic.Int64
	queue   waitQueue
	// Counters for status and tests.
	queueTimeouts atomic.Int64
	forced        atomic.Bool

	// mu guards known, changed and the life-cycle fields below.
	mu sync.Mutex
	// known holds every backend in the set and every removed one that
	// still has leases: what Active, Quiesce and the watch look at.
	known map[*backend]struct{}
	// changed is closed and replaced when a lease changes state while a
	// Quiesce waits (quiescers > 0).
	changed   chan struct{}
	quiescers atomic.Int64
	closed    bool
	started   bool
	closing   chan struct{} // closed when Close starts
	loops     []*loop
	accepting int           // loops that still have the listener
	running   atomic.Int64  // loops that have not returned
	stopped   chan struct{} // closed once no loop accepts any more
	done      chan struct{} // closed once every loop has ended
	serveErr  error

	// watchKick wakes the hung watch when a lease starts while it sleeps.
	watchKick  chan struct{}
	watchIdle  atomic.Bool
	watchEnded chan struct{}

	// testHookDialed, when set, runs on the loop after every successful
	// dial, before the check that the backend is still routable.
	testHookDialed func(b *backend)
	// testHookAccept, when set, runs before every accept; an error it
	// returns is taken as accept's.
	testHookAccept func() syscall.Errno
}

// New returns a Proxy that will accept on ln (a *net.TCPListener or a
// *net.UnixListener) once Serve runs. It routes nowhere until SetBackends
// gives it backends. The Proxy owns ln from now on: it takes the socket out
// of the Go runtime's poller (ln is closed, the socket stays open in the
// Proxy) and Close closes it. A unix socket's file is left in place: its
// creator removes it.
func New(ln net.Listener, opts Options) *Proxy {
	p := &Proxy{
		balance:        opts.Balance,
		connectTimeout: int64(opts.ConnectTimeout),
		waitFor:        int64(opts.WaitForBackend),
		hungAfter:      int64(opts.HungAfter),
		maxConns:       int64(max(opts.MaxConnections, 0)),
		maxPerInstance: int64(max(opts.MaxPerInstance, 0)),
		nloops:         max(opts.loops, 1),
		log:            newLimiter(opts.Logf),
		lnString:       ln.Addr().String(),
		fds:            opts.FDs,
		known:          make(map[*backend]struct{}),
		changed:        make(chan struct{}),
		closing:        make(chan struct{}),
		stopped:        make(chan struct{}),
		done:           make(chan struct{}),
		watchKick:      make(chan struct{}, 1),
		watchEnded:     make(chan struct{}),
	}
	if p.balance != RoundRobin && p.balance != IPHash {
		p.balance = LeastConn
	}
	p.hashKeys = p.balance == IPHash
	if p.waitFor == 0 {
		p.waitFor = int64(defaultWaitForBackend)
	}
	if p.connectTimeout <= 0 {
		p.connectTimeout = int64(defaultConnectTimeout)
	}
	if p.hungAfter == 0 {
		p.hungAfter = int64(defaultHungAfter)
	}
	if p.fds == nil {
		p.fds = NewFDBudget(DefaultReserve)
	}
	p.lfd, p.lnErr = takeListener(ln)
	p.snap.Store(&snapshot{changed: make(chan struct{})})
	return p
}

// Serve accepts connections until Close and forwards them on the proxy's
// event loops. A temporary accept error (EMFILE, ENFILE, ECONNABORTED, …) is
// logged once per burst and retried after a backoff of 5ms doubling up to
// 1s. Serve returns nil once Close has stopped the accepting (connections
// under way go on until Close ends them), or the first permanent accept
// error.
func (p *Proxy) Serve() error {
	p.mu.Lock()
	if p.closed || p.started {
		p.mu.Unlock()
		return nil
	}
	p.started = true
	if p.lnErr != nil {
		p.closed = true
		close(p.closing)
		close(p.stopped)
		close(p.done)
		close(p.watchEnded)
		p.mu.Unlock()
		return p.lnErr
	}
	for i := range p.nloops {
		l, err := newLoop(p, i)
		if err != nil {
			for _, l := range p.loops {
				l.poll.close()
			}
			p.loops = nil
			p.closed = true
			closeFD(p.lfd)
			close(p.closing)
			close(p.stopped)
			close(p.done)
			close(p.watchEnded)
			p.mu.Unlock()
			return fmt.Errorf("cannot serve %s: %w", p.lnString, err)
		}
		p.loops = append(p.loops, l)
	}
	p.accepting = len(p.loops)
	loops := p.loops
	if p.acceptOff {
		// StopAccepting came first: each loop lets go before it accepts.
		for _, l := range loops {
			l.post(func() { l.letGoOfListener(nil) })
		}
	}
	p.mu.Unlock()

	p.running.Store(int64(len(loops)))
	for _, l := range loops {
		go l.run()
	}
	go p.watch()
	<-p.stopped
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serveErr
}

// stopAccepting is called by each loop once it has let go of the
// listener; the last one closes it. err, if not nil, is a permanent accept
// error for Serve to return.
func (p *Proxy) stopAccepting(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.serveErr == nil {
		p.serveErr = err
	}
	p.accepting--
	if p.accepting == 0 {
		closeFD(p.lfd)
		close(p.stopped)
	}
}

// loopEnded is called by each loop as it returns; the last closes done.
func (p *Proxy) loopEnded() {
	if p.running.Add(-1) == 0 {
		close(p.done)
	}
}

// temporary reports whether an accept error is worth retrying: the process
// or the system ran out of something, or one connection died in the queue.
func temporary(err error) bool {
	for _, e := range [...]syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM,
		syscall.ETIMEDOUT, syscall.EINTR, syscall.EAGAIN,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// SetBackends replaces the routable set. It only swaps a snapshot: it never
// waits for traffic. When it returns, no connection is newly forwarded to a
// backend missing from bs (a dial to it that completes later is closed
// unused and the connection tries another backend); connections already
// forwarded to it continue untouched. Connections waiting for a backend are
// woken. A backend is identified by ID and Addr together; duplicates after
// the first are ignored, and so is one whose Addr is not an IP literal and
// a port (logged).
func (p *Proxy) SetBackends(bs []Backend) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	old := p.snap.Load()
	next := &snapshot{changed: make(chan struct{}), list: make([]*backend, 0, len(bs))}
	kept := make(map[*backend]bool, len(old.list))
	var added []*backend
	for _, b := range bs {
		if next.find(b) != nil {
			continue
		}
		nb := old.find(b)
		if nb != nil {
			kept[nb] = true
		} else {
			ap, err := netip.ParseAddrPort(b.Addr)
			if err != nil {
				p.log.printf("cannot route to backend %d: its address %q is not an IP address and a port", b.ID, b.Addr)
				continue
			}
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			nb = &backend{id: b.ID, addr: b.Addr, ap: ap, sa: newDialAddr(ap), hash: hashBytes([]byte(b.Addr)), maxLoad: p.maxPerInstance}
			added = append(added, nb)
		}
		next.list = append(next.list, nb)
	}
	for _, b := range added {
		// Learned once, as it becomes routable: the instance listens by
		// then. Unknown (0) where the kernel does not say.
		b.backlog.Store(int64(acceptQueueCap(b.ap)))
	}
	p.mu.Lock()
	for _, b := range added {
		p.known[b] = struct{}{}
	}
	p.mu.Unlock()
	p.snap.Store(next)
	// After these stores, a connection whose dial to a removed backend
	// completes sees removed (sequentially consistent atomics), so it does
	// not forward; one that checked before the store was forwarded before
	// SetBackends returned.
	for _, b := range old.list {
		if !kept[b] {
			b.removed.Store(true)
			p.forgetIfIdle(b)
		}
	}
	close(old.changed)
	p.queue.wakeAll()
}

// forgetIfIdle drops a removed backend from known once it has no lease.
func (p *Proxy) forgetIfIdle(b *backend) {
	if !b.removed.Load() || b.load.Load() != 0 {
		return
	}
	p.mu.Lock()
	if b.load.Load() == 0 {
		delete(p.known, b)
	}
	p.mu.Unlock()
}

// knownWith returns the known backends with id.
func (p *Proxy) knownWith(id uint64) []*backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	var bs []*backend
	for b := range p.known {
		if b.id == id {
			bs = append(bs, b)
		}
	}
	return bs
}

// Active returns, per backend ID, the number of open forwarded connections:
// every routable backend (0 included) and every removed backend that still
// has connections. Dials in flight and waiting connections are not counted.
func (p *Proxy) Active() map[uint64]int {
	m := make(map[uint64]int)
	p.mu.Lock()
	bs := make([]*backend, 0, len(p.known))
	for b := range p.known {
		bs = append(bs, b)
	}
	p.mu.Unlock()
	for _, b := range bs {
		n := 0
		b.mu.Lock()
		for l := b.leases; l != nil; l = l.next {
			if l.state.Load() != leaseDialing {
				n++
			}
		}
		b.mu.Unlock()
		if n > 0 || !b.removed.Load() {
			m[b.id] += n
		}
	}
	return m
}

// StopAccepting stops accepting for good and leaves every connection to go
// on (Close still ends them): connections not yet accepted stay in the
// socket's queue, for another holder of the socket (the next runner, when
// systemd passed it). Serve returns once the listener is let go.
func (p *Proxy) StopAccepting() {
	p.mu.Lock()
	p.acceptOff = true
	loops := p.loops
	p.mu.Unlock()
	for _, l := range loops {
		l.post(func() { l.letGoOfListener(nil) })
	}
}

// Close stops accepting at once (it closes the listener), closes connections
// that wait for a backend, and waits for open connections to end by
// themselves, keep-alive ones included, until ctx ends; then it closes them,
// waits for the event loops to return and reports ctx's error. It is
// idempotent: a later call waits in the same way.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	first := !p.closed
	p.closed = true
	loops := p.loops
	if first {
		close(p.closing)
		if !p.started {
			// Serve never ran (or will return at once): nothing but the
			// listener to close.
			p.started = true
			if p.lnErr == nil {
				closeFD(p.lfd)
			}
			close(p.stopped)
			close(p.done)
			close(p.watchEnded)
		}
	}
	p.mu.Unlock()
	if first {
		for _, l := range loops {
			l.post(l.closeDown)
		}
	}
	select {
	case <-p.done:
		<-p.watchEnded
		return nil
	case <-ctx.Done():
	}
	p.forced.Store(true)
	n := p.open.Load()
	for _, l := range loops {
		l.post(l.closeAll)
	}
	<-p.done
	<-p.watchEnded
	if n == 0 {
		return nil
	}
	return fmt.Errorf("cannot drain %d connections on %s: %w", n, p.lnString, context.Cause(ctx))
}

// notifyQuiesce wakes the Quiesce waiters, if any, after a lease changed
// state (forwarded, answered, ended). It costs an atomic load when nobody
// waits.
func (p *Proxy) notifyQuiesce() {
	if p.quiescers.Load() == 0 {
		return
	}
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// acquire starts a lease of b for a new connection.
func (p *Proxy) acquire(b *backend, l *lease, now int64, key uint64) {
	b.acquire(l, now, key, p.hashKeys)
	if p.watchIdle.Load() {
		select {
		case p.watchKick <- struct{}{}:
		default:
		}
	}
}

// release ends l: its backend has room for one more, so the first
// connection in the queue may try again.
func (p *Proxy) release(l *lease) {
	b := l.b
	l.end()
	p.notifyQuiesce()
	p.forgetIfIdle(b)
	p.queue.wakeOne()
}

// answered records l's first byte back: its backend's accept queue has
// room for one more, and a hung backend is cleared by it.
func (p *Proxy) answered(l *lease, now int64) {
	l.answered(now)
	p.notifyQuiesce()
	p.queue.wakeOne()
	if b := l.b; b.hung.Load() && b.hung.CompareAndSwap(true, false) {
		p.log.printf("backend %d at %s answers again; routing to it", b.id, b.addr)
		p.queue.wakeAll()
	}
}

// nanotime is the proxy's clock: monotonic nanoseconds since start.
func nanotime() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()
