package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Balance is how a new connection chooses among the routable backends.
type Balance int

const (
	// LeastConn picks the backend with the fewest open connections (dials in
	// flight included); ties rotate, so equal backends share the load.
	LeastConn Balance = iota
	// RoundRobin takes the backends in turn, whatever their load.
	RoundRobin
)

// String returns the name cluster.hcl uses for b.
func (b Balance) String() string {
	switch b {
	case LeastConn:
		return "least-conn"
	case RoundRobin:
		return "round-robin"
	}
	return fmt.Sprintf("Balance(%d)", int(b))
}

// Backend is one instance's private address.
type Backend struct {
	ID   uint64 // the instance's id, stable for its life
	Addr string // "127.0.0.1:41234"
}

// Options tune a Proxy. The zero value is usable.
type Options struct {
	// Balance picks the backend of each new connection; an unknown value
	// means LeastConn.
	Balance Balance
	// ConnectTimeout bounds each dial to a backend; 0 (or less) means 1s.
	ConnectTimeout time.Duration
	// WaitForBackend is how long a connection accepted while no backend is
	// routable waits for one (a lone instance restarting, a cold start)
	// before it is closed; 0 means 10s, a negative value means no wait.
	WaitForBackend time.Duration
	// Logf receives the proxy's own messages; nil means silent. Repeated
	// messages are rate-limited before they reach it, and it is never called
	// with a lock of the Proxy held.
	Logf func(format string, args ...any)
}

const (
	defaultConnectTimeout = time.Second
	defaultWaitForBackend = 10 * time.Second
)

// Accept backoff, as net/http.Server.Serve does it.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Proxy accepts on one public listener and forwards each connection's bytes to
// one backend. Its methods are safe for concurrent use; Serve is called once.
type Proxy struct {
	ln       net.Listener
	balance  Balance
	waitFor  time.Duration
	dialer   net.Dialer
	log      *limiter
	lnString string

	// snap is the routable set; SetBackends swaps it whole, so the
	// per-connection path reads it with one atomic load and never locks.
	snap atomic.Pointer[snapshot]
	// setMu serialises SetBackends calls with each other, nothing else.
	setMu sync.Mutex
	// rr rotates the starting point of every pick (see snapshot.pick).
	rr atomic.Uint64

	// dialCtx is cancelled when Close gives up waiting, so dials in flight
	// end at once instead of after ConnectTimeout.
	dialCtx    context.Context
	cancelDial context.CancelFunc
	forced     atomic.Bool
	// waiting counts connections waiting for a backend (for tests and
	// status; never read on the hot path).
	waiting atomic.Int64

	// mu guards the registry of open client connections: it is taken once
	// when a connection is accepted and once when it ends, and by Active and
	// Close.
	mu      sync.Mutex
	conns   map[*conn]struct{}
	closed  bool          // set when Close starts; register refuses from then on
	closing chan struct{} // closed once Close has closed the listener
	idle    chan struct{} // closed once closed is set and conns is empty
	idleSet bool
	// changed is closed and replaced when a connection changes state while
	// a Quiesce waits (quiescers > 0).
	changed   chan struct{}
	quiescers atomic.Int64

	// testHookDialed, when set, runs after every successful dial, before
	// the check that the backend is still routable.
	testHookDialed func(b *backend)
}

// New returns a Proxy that will accept on ln (TCP or unix) once Serve runs.
// It routes nowhere until SetBackends gives it backends. The Proxy owns ln
// from now on: Close closes it (a *net.UnixListener then removes its socket
// file unless SetUnlinkOnClose(false) was called).
func New(ln net.Listener, opts Options) *Proxy {
	p := &Proxy{
		ln:       ln,
		balance:  opts.Balance,
		waitFor:  opts.WaitForBackend,
		log:      newLimiter(opts.Logf),
		lnString: ln.Addr().String(),
		conns:    make(map[*conn]struct{}),
		closing:  make(chan struct{}),
		idle:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
	if p.balance != RoundRobin {
		p.balance = LeastConn
	}
	if p.waitFor == 0 {
		p.waitFor = defaultWaitForBackend
	}
	ct := opts.ConnectTimeout
	if ct <= 0 {
		ct = defaultConnectTimeout
	}
	// Backends are on loopback: TCP keep-alive probes there only cost
	// setsockopt calls per dial, so they are off.
	p.dialer = net.Dialer{Timeout: ct, KeepAlive: -1}
	p.dialCtx, p.cancelDial = context.WithCancel(context.Background())
	p.snap.Store(&snapshot{changed: make(chan struct{})})
	return p
}

// Serve accepts connections until Close and forwards each one in its own
// goroutines. A temporary accept error (EMFILE, ENFILE, ECONNABORTED, …) is
// logged once per burst and retried after a backoff of 5ms doubling up to
// 1s. Serve returns nil after Close, or the first permanent accept error (one
// wrapping net.ErrClosed if the listener was closed other than by Close).
func (p *Proxy) Serve() error {
	var backoff time.Duration
	var failed int
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				// Closed by its owner rather than by Close: not worth a
				// log line, but Serve's caller may want to know.
				return fmt.Errorf("cannot accept on %s: %w", p.lnString, err)
			}
			if !temporary(err) {
				p.log.printf("cannot accept on %s: %v; no longer accepting", p.lnString, err)
				return fmt.Errorf("cannot accept on %s: %w", p.lnString, err)
			}
			if backoff == 0 {
				backoff = acceptBackoffMin
				p.log.printf("cannot accept on %s: %v; retrying with a backoff of up to %v", p.lnString, err, acceptBackoffMax)
			} else {
				backoff = min(2*backoff, acceptBackoffMax)
			}
			failed++
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-p.closing:
				t.Stop()
				return nil
			}
			continue
		}
		if backoff != 0 {
			p.log.printf("accepting on %s again after %d failed accepts", p.lnString, failed)
			backoff, failed = 0, 0
		}
		pc := &conn{client: c}
		if !p.register(pc) {
			c.Close()
			return nil
		}
		go p.handle(pc)
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

// register adds c to the registry unless Close has started. It runs on the
// accept goroutine, before the connection's own goroutine exists, so Close
// never misses a connection that Serve accepted.
func (p *Proxy) register(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) unregister(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	p.signalIdleLocked()
	p.notifyQuiesceLocked()
}

func (p *Proxy) signalIdleLocked() {
	if p.closed && len(p.conns) == 0 && !p.idleSet {
		p.idleSet = true
		close(p.idle)
	}
}

// SetBackends replaces the routable set. It only swaps a snapshot: it never
// waits for traffic. When it returns, no connection is newly forwarded to a
// backend missing from bs (a dial to it that completes later is closed
// unused and the connection tries another backend); connections already
// forwarded to it continue untouched. Connections waiting for a backend are
// woken. A backend is identified by ID and Addr together; duplicates after
// the first are ignored.
func (p *Proxy) SetBackends(bs []Backend) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	old := p.snap.Load()
	next := &snapshot{changed: make(chan struct{}), list: make([]*backend, 0, len(bs))}
	kept := make(map[*backend]bool, len(old.list))
	for _, b := range bs {
		if next.find(b) != nil {
			continue
		}
		nb := old.find(b)
		if nb != nil {
			kept[nb] = true
		} else {
			nb = &backend{id: b.ID, addr: b.Addr}
		}
		next.list = append(next.list, nb)
	}
	p.snap.Store(next)
	// After these stores, a connection whose dial to a removed backend
	// completes sees removed (sequentially consistent atomics), so it does
	// not forward; one that checked before the store was forwarded before
	// SetBackends returned.
	for _, b := range old.list {
		if !kept[b] {
			b.removed.Store(true)
		}
	}
	close(old.changed)
}

// Active returns, per backend ID, the number of open forwarded connections:
// every routable backend (0 included) and every removed backend that still
// has connections. Dials in flight and waiting connections are not counted.
func (p *Proxy) Active() map[uint64]int {
	snap := p.snap.Load()
	m := make(map[uint64]int, len(snap.list))
	for _, b := range snap.list {
		m[b.id] += 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if b := c.be.Load(); b != nil {
			m[b.id]++
		}
	}
	return m
}

// Unanswered returns how many connections forwarded to backend id (or being
// dialed to it) have not had a byte back from it yet. The runner, having
// taken an instance out of the routable set, waits for this to reach 0
// before it sends the stop signal: until then a connection may still wait
// in the instance's own accept queue, which an app closing its listening
// socket would reset.
func (p *Proxy) Unanswered(id uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		// target, not be: it is also set while the dial is in flight.
		if b := c.target.Load(); b != nil && b.id == id && !c.answered.Load() {
			n++
		}
	}
	return n
}

// Close stops accepting at once (it closes the listener), closes connections
// that wait for a backend, and waits for open connections to end by
// themselves, keep-alive ones included, until ctx ends; then it closes them,
// waits for their goroutines to return and reports ctx's error. It is
// idempotent: a later call waits in the same way.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	first := !p.closed
	if first {
		p.closed = true
		p.signalIdleLocked()
	}
	p.mu.Unlock()
	var err error
	if first {
		// The listener first, so the kernel refuses new connections from
		// now on, then the connections that wait for a backend (and
		// Serve's backoff, if it is in one).
		if cerr := p.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("cannot close listener %s: %w", p.lnString, cerr)
		}
		close(p.closing)
	}
	select {
	case <-p.idle:
		p.cancelDial() // nothing dials any more; releases the context
		return err
	case <-ctx.Done():
	}
	// forced is set before the registry is walked: a connection that stores
	// its backend socket after the walk sees forced and closes it itself.
	p.forced.Store(true)
	p.cancelDial()
	p.mu.Lock()
	n := len(p.conns)
	for c := range p.conns {
		c.closeBoth()
	}
	p.mu.Unlock()
	// Every goroutine of a connection now returns promptly: its sockets are
	// closed, its dial is cancelled, its wait for a backend has ended.
	<-p.idle
	if n == 0 {
		return err
	}
	return errors.Join(err, fmt.Errorf("cannot drain %d connections on %s: %w", n, p.lnString, context.Cause(ctx)))
}
