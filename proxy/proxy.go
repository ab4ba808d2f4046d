package proxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/route"
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
)

// Accept backoff, as net/http.Server.Serve does it.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Proxy accepts on one public listener and forwards each connection's bytes to
// one backend. Its methods are safe for concurrent use; Serve is called once.
type Proxy struct {
	connectTimeout int64 // ns
	waitFor        int64 // ns; < 0: no wait
	maxConns       int64 // 0: none
	nloops         int
	log            *route.Limiter
	lnString       string
	fds            *FDBudget

	// lfd is the listening socket, taken from the net.Listener New was
	// given; unixPath is set for a unix listener.
	lfd   int
	lnErr error // why lfd could not be taken, reported by Serve
	// acceptOff: StopAccepting was called (under mu).
	acceptOff bool
	hashKeys  bool // IPHash: the accept path reads the client's address

	// rt is the routable set, the leases on it, and the queue of
	// connections waiting for a backend (package route, which http mode
	// shares).
	rt *route.Table

	// open counts client connections from accept to close; waiting those
	// in the queue (for tests and status).
	open    atomic.Int64
	waiting atomic.Int64
	// Counters for status and tests.
	queueTimeouts atomic.Int64
	forced        atomic.Bool

	// mu guards the life-cycle fields below.
	mu        sync.Mutex
	closed    bool
	started   bool
	closing   chan struct{} // closed when Close starts
	loops     []*loop
	accepting int           // loops that still have the listener
	running   atomic.Int64  // loops that have not returned
	stopped   chan struct{} // closed once no loop accepts any more
	done      chan struct{} // closed once every loop has ended
	serveErr  error

	// watchEnded is closed once the hung watch (route.Table.Watch) ended.
	watchEnded chan struct{}

	// testHookDialed, when set, runs on the loop after every successful
	// dial, before the check that the backend is still routable.
	testHookDialed func(b *route.Target)
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
		connectTimeout: int64(opts.ConnectTimeout),
		waitFor:        int64(opts.WaitForBackend),
		maxConns:       int64(max(opts.MaxConnections, 0)),
		nloops:         max(opts.loops, 1),
		log:            route.NewLimiter(opts.Logf),
		lnString:       ln.Addr().String(),
		fds:            opts.FDs,
		closing:        make(chan struct{}),
		stopped:        make(chan struct{}),
		done:           make(chan struct{}),
		watchEnded:     make(chan struct{}),
	}
	p.hashKeys = opts.Balance == IPHash
	if p.waitFor == 0 {
		p.waitFor = int64(defaultWaitForBackend)
	}
	if p.connectTimeout <= 0 {
		p.connectTimeout = int64(defaultConnectTimeout)
	}
	if p.fds == nil {
		p.fds = NewFDBudget(DefaultReserve)
	}
	p.rt = route.New(route.Options{
		Balance: opts.Balance, MaxPerInstance: opts.MaxPerInstance, HungAfter: opts.HungAfter, Log: p.log,
		// Each backend's socket address, made once, for the dials.
		Attach: func(t *route.Target) { a := newDialAddr(t.AddrPort); t.Data = &a },
	})
	p.lfd, p.lnErr = takeListener(ln)
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
	go func() {
		defer close(p.watchEnded)
		p.rt.Watch(p.done)
	}()
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
// a port (logged). See route.Table.SetBackends.
func (p *Proxy) SetBackends(bs []Backend) { p.rt.SetBackends(bs) }

// Active returns, per backend ID, the number of open forwarded connections:
// every routable backend (0 included) and every removed backend that still
// has connections. Dials in flight and waiting connections are not counted.
func (p *Proxy) Active() map[uint64]int { return p.rt.Active() }

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
