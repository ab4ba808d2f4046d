package httpmode

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterrun/clusterrun/route"
)

// Options tune a Server. The zero value is usable.
type Options struct {
	// Balance picks the instance of a request without a sticky target:
	// route.LeastLoad (fewest requests in flight), RoundRobin or IPHash.
	Balance route.Balance
	// StickyCookie, when set, names the cookie that keeps a client on the
	// instance that answered its first request.
	StickyCookie string
	// TrustedProxies are the client addresses whose X-Forwarded-* and
	// Forwarded fields are kept and appended to.
	TrustedProxies []netip.Prefix
	// MaxConnections bounds the client connections open at once (0: the
	// descriptor budget only); MaxPerInstance the requests in flight on one
	// instance (0: none); QueueTimeout how long a request may wait for an
	// instance that can take it (0: 10s).
	MaxConnections int
	MaxPerInstance int
	QueueTimeout   time.Duration
	// MaxHeaderSize bounds a request's head (0: 64 KiB); HeaderTimeout the
	// reading of a head from its first byte (0: 10s); IdleTimeout the wait
	// for a keep-alive client's next request (0: 60s); Timeout the wait for
	// an instance's answer to begin (0: 60s).
	MaxHeaderSize int
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	Timeout       time.Duration
	// MaxRetryBody is the largest request body kept for a retry (0: 64
	// KiB; negative: none is kept).
	MaxRetryBody int
	// ConnectTimeout bounds a connect to an instance (0: 1s).
	ConnectTimeout time.Duration
	// FDs is the descriptor budget shared with the other listeners; nil
	// means one of its own.
	FDs *route.FDBudget
	// AccessLog, when set, gets one line per request (see AccessLine), from
	// a goroutine of the server's.
	AccessLog AccessLine
	// Logf receives the server's own messages, rate-limited.
	Logf func(format string, args ...any)
}

// Defaults for zero Options.
const (
	defaultQueueTimeout   = 10 * time.Second
	defaultMaxHeaderSize  = 64 << 10
	defaultHeaderTimeout  = 10 * time.Second
	defaultIdleTimeout    = 60 * time.Second
	defaultTimeout        = 60 * time.Second
	defaultMaxRetryBody   = 64 << 10
	defaultConnectTimeout = time.Second
)

// Server is one http-mode listener: it accepts clients, reads their
// requests and forwards each to an instance of its routable set. Its
// methods are safe for concurrent use; Serve is called once.
type Server struct {
	o     Options
	ln    net.Listener
	lnStr string
	// raw accepts ln's connections as bare descriptors; nil where the net
	// package accepts them.
	raw    *rawAccept
	table  *route.Table
	log    *route.Limiter
	fds    *route.FDBudget
	reaper reaper
	// affinity keeps each client address on its instance (IPHash).
	affinity *affinity
	// access is the access log, nil when off.
	access *accessLog

	open    atomic.Int64
	waiting atomic.Int64
	// queueTimeouts counts requests answered 503 after QueueTimeout.
	queueTimeouts atomic.Int64

	mu sync.Mutex
	// conns are the open client connections, for Close.
	conns map[*clientConn]struct{}
	// draining holds the instances that left the routable set and are not
	// yet forgotten: a client stuck to one still reaches it.
	draining map[uint64]*backend
	// slots holds the per-slot figures that outlive the instances.
	slots   map[slotKey]*slotStats
	closed  bool
	stopped bool // StopAccepting
	closing chan struct{}
	wg      sync.WaitGroup
	w       workers
	// logDone ends the access log's goroutine, after the requests;
	// logEnded is closed once it has written its last lines.
	logDone, logEnded chan struct{}
}

type slotKey struct {
	app  string
	slot int
}

// New returns a Server that will accept on ln (a *net.TCPListener or a
// *net.UnixListener) once Serve runs. It routes nowhere until SetBackends
// gives it instances. The Server owns ln: Close closes it.
func New(ln net.Listener, o Options) *Server {
	if o.QueueTimeout == 0 {
		o.QueueTimeout = defaultQueueTimeout
	}
	if o.MaxHeaderSize <= 0 {
		o.MaxHeaderSize = defaultMaxHeaderSize
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = defaultHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	switch {
	case o.MaxRetryBody == 0:
		o.MaxRetryBody = defaultMaxRetryBody
	case o.MaxRetryBody < 0:
		o.MaxRetryBody = 0
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.FDs == nil {
		o.FDs = route.NewFDBudget(route.DefaultReserve)
	}
	s := &Server{
		o: o, ln: ln, lnStr: ln.Addr().String(), log: route.NewLimiter(o.Logf), fds: o.FDs,
		conns: map[*clientConn]struct{}{}, draining: map[uint64]*backend{}, slots: map[slotKey]*slotStats{},
		closing: make(chan struct{}), w: workers{handoff: make(chan accepted), started: make(chan struct{}, 1), every: workerIdle},
	}
	s.reaper = reaper{s: s, wake: make(chan struct{}, 1)}
	s.raw = newRawAccept(ln)
	if o.Balance == route.IPHash {
		s.affinity = newAffinity()
	}
	if o.AccessLog != nil {
		s.access = newAccessLog(o.AccessLog)
		s.access.own = logBuf{slot: -1}
	}
	s.table = route.New(route.Options{
		Balance: o.Balance, MaxPerInstance: o.MaxPerInstance, Log: s.log,
		// A request that waits long for its answer is normal here (a long
		// poll): the timeout answers 504 instead.
		HungAfter: -1,
		Attach:    s.attach, Detach: s.detach,
	})
	return s
}

// attach makes the http state of a new instance.
func (s *Server) attach(t *route.Target) {
	b := &backend{t: t, s: s}
	if s.o.StickyCookie != "" {
		value := t.App + "." + strconv.Itoa(t.Slot) + "." + strconv.FormatUint(t.ID, 10)
		b.setCookie = []byte("Set-Cookie: " + s.o.StickyCookie + "=" + value + "; Path=/; HttpOnly; SameSite=Lax\r\n")
	}
	b.stats = s.statsFor(t)
	b.log = logBuf{app: t.App, slot: t.Slot, id: t.ID}
	t.Data = b
}

// detach: the instance left the routable set. A client stuck to it (its
// cookie, or its address under ip-hash) still reaches it until it is
// forgotten, since its session lives there: its pooled connections stay
// for those. Otherwise they are closed at once, so that an app that waits
// for its connections to close before it exits (Node's server.close) is
// not held up by the runner's.
func (s *Server) detach(t *route.Target) {
	b := t.Data.(*backend)
	s.mu.Lock()
	sticky := !s.closed && (s.o.StickyCookie != "" || s.affinity != nil)
	if sticky {
		s.draining[t.ID] = b
	}
	s.mu.Unlock()
	if !sticky {
		b.forget()
	}
}

// forget: nothing new goes to b; its idle connections close now, its busy
// ones when their request ends.
func (b *backend) forget() {
	b.gone.Store(true)
	b.closeIdle(true, 0)
}

// SetBackends replaces the routable set (see route.Table.SetBackends).
func (s *Server) SetBackends(bs []route.Backend) { s.table.SetBackends(bs) }

// Stopping says that instance id is getting its stop signal (the runner
// says so just before it sends it): its sessions are ending. A client
// stuck to it gets 503 (Retry-After: 1) rather than reaching another
// instance, which does not know its session (socket.io answers that with
// 400 "Session ID unknown"), until stuckGrace after it is gone; then its
// next request goes to a live instance and sticks there.
// Its cookie is kept meanwhile: a socket.io client ends its session with
// one more request, which must not reach another instance either.
func (s *Server) Stopping(id uint64) {
	s.mu.Lock()
	b := s.draining[id]
	s.mu.Unlock()
	if b != nil {
		b.stopping.Store(true)
	}
}

// stuckGrace is how long after an instance is gone its clients are still
// told it stopped (Stopping) before they are moved like new ones: a
// client's last request of a session cut short (its instance crashed, or
// exited the moment it was told to stop) comes just after.
const stuckGrace = time.Second

// Forget says that instance id is gone. After stuckGrace, a client stuck to
// it goes to another instance, and its cookie is rewritten.
func (s *Server) Forget(id uint64) {
	s.mu.Lock()
	b := s.draining[id]
	s.mu.Unlock()
	if b == nil {
		return
	}
	b.stopping.Store(true)
	b.forget()
	time.AfterFunc(stuckGrace, func() {
		s.mu.Lock()
		if s.draining[id] == b {
			delete(s.draining, id)
		}
		s.mu.Unlock()
	})
}

// Quiesce returns a channel closed once no request is outstanding on
// instance id and its upgraded connections have ended, or stayed idle for
// idle (route.Table.Quiesce).
func (s *Server) Quiesce(id uint64, idle time.Duration) <-chan struct{} {
	return s.table.Quiesce(id, idle)
}

// Serve accepts clients until Close. It returns nil after Close, or the
// error that stopped the accepting.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(4)
	s.mu.Unlock()
	if s.access != nil {
		s.logDone, s.logEnded = make(chan struct{}), make(chan struct{})
		go func() { defer close(s.logEnded); s.access.run(s.logDone) }()
	}
	go func() { defer s.wg.Done(); s.reaper.run(s.closing) }()
	go func() { defer s.wg.Done(); s.table.Watch(s.closing) }()
	go func() { defer s.wg.Done(); s.trim() }()
	defer s.wg.Done()
	accept := func() (accepted, error) {
		c, err := s.ln.Accept()
		return accepted{c: c}, err
	}
	if s.raw != nil {
		accept = s.raw.accept
	}
	backoff := time.Duration(0)
	for {
		if n := s.open.Add(1); (s.o.MaxConnections > 0 && n > int64(s.o.MaxConnections)) || !s.fds.Take(1, route.Now()) {
			s.open.Add(-1)
			if s.o.MaxConnections > 0 && n > int64(s.o.MaxConnections) {
				s.log.Printf("%s has %d connections open, its max_connections; new ones wait in the listen backlog", s.lnStr, s.o.MaxConnections)
			} else {
				s.log.Printf("the listeners hold %d descriptors, all the budget leaves them (soft RLIMIT_NOFILE less a reserve for instances and the control socket); new connections on %s wait in the listen backlog", s.fds.Used(), s.lnStr)
			}
			select {
			case <-time.After(50 * time.Millisecond):
				continue
			case <-s.closing:
				return nil
			}
		}
		c, err := accept()
		if err != nil {
			s.open.Add(-1)
			s.fds.Give(1)
			select {
			case <-s.closing:
				return nil
			default:
			}
			s.mu.Lock()
			stopped := s.stopped
			s.mu.Unlock()
			if stopped {
				return nil
			}
			if !route.Retryable(err) {
				s.log.Printf("cannot accept on %s: %v; no longer accepting", s.lnStr, err)
				return fmt.Errorf("cannot accept on %s: %w", s.lnStr, err)
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else {
				backoff = min(2*backoff, time.Second)
			}
			s.log.Printf("cannot accept on %s: %v; retrying with a backoff of up to 1s", s.lnStr, err)
			select {
			case <-time.After(backoff):
			case <-s.closing:
				return nil
			}
			continue
		}
		backoff = 0
		s.dispatch(c)
	}
}

// StopAccepting stops taking new clients: the listener is closed (a socket
// from socket activation stays open in the service manager, and what
// arrives waits there for the next runner). Clients already connected go
// on until Close.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	first := !s.stopped
	s.stopped = true
	s.mu.Unlock()
	if first {
		s.ln.Close()
		if s.raw != nil {
			s.raw.close()
		}
	}
}

// Close stops accepting, closes idle client connections at once and lets
// the others finish the request under way (a keep-alive client gets
// "Connection: close" with its answer) until ctx ends; then it closes them
// and returns once every goroutine has ended.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	conns := make([]*clientConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if first {
		close(s.closing)
		s.StopAccepting()
		for _, c := range conns {
			c.shutdown()
		}
	}
	wait := make(chan struct{})
	go func() { s.wg.Wait(); close(wait) }()
	var err error
	select {
	case <-wait:
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.kill()
		}
		s.mu.Unlock()
		<-wait
		if n > 0 {
			err = fmt.Errorf("cannot drain %d connections on %s: %w", n, s.lnStr, context.Cause(ctx))
		}
	}
	s.closeIdle(true)
	if s.logDone != nil && first {
		// Every request's line is in the log when Close returns.
		close(s.logDone)
		<-s.logEnded
	}
	return err
}

// closeIdle closes the pooled connections idle for poolIdle (all, if all),
// and reports whether some are left.
func (s *Server) closeIdle(all bool) bool {
	cutoff := route.Now() - int64(poolIdle)
	left := false
	for _, t := range s.table.Snapshot().Targets() {
		if t.Data.(*backend).closeIdle(all, cutoff) {
			left = true
		}
	}
	s.mu.Lock()
	ds := make([]*backend, 0, len(s.draining))
	for _, b := range s.draining {
		ds = append(ds, b)
	}
	s.mu.Unlock()
	for _, b := range ds {
		if b.closeIdle(all, cutoff) {
			left = true
		}
	}
	return left
}

// Stats is what status shows of an http listener.
type Stats struct {
	// Open client connections; Queued, requests waiting for an instance;
	// QueueTimeouts, those answered 503 after QueueTimeout since start.
	Open, Queued  int
	QueueTimeouts int64
}

// Stats returns the listener's figures.
func (s *Server) Stats() Stats {
	return Stats{Open: int(s.open.Load()), Queued: int(s.waiting.Load()), QueueTimeouts: s.queueTimeouts.Load()}
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }
