// Package httpserve serves HTTP the way every server of the runner must:
// the control API, the metrics and the health endpoints. It is a small
// HTTP/1.x server of its own (message framing in package http1), not
// net/http's, which would bring TLS, HTTP/2 and about 5 MB of executable
// into every runner.
//
// A client cannot exhaust the runner: connections are capped (past the cap
// one is answered 503 at once and closed, never left waiting in the
// backlog), headers must arrive within a bound and within 64 KiB, bodies
// are bounded, idle keep-alive connections are closed, a handler's panic
// closes its connection and is logged, and an accept error (EMFILE in a
// flood) backs off and is reported once per burst through the runner's
// logger. A request's body must arrive within a bound, and a client must
// take each part of its answer within one, so that one that stops reading
// (pipelining requests it never reads the answers of, say) is dropped.
package httpserve

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterrun/clusterrun/http1"
)

// Options bound one server.
type Options struct {
	// Name says which server a log line is about: "control socket",
	// "metrics".
	Name string
	// MaxConns caps the connections open at once (0 = DefaultMaxConns).
	MaxConns int
	// ReadHeaderTimeout bounds the wait for a request's headers, and
	// IdleTimeout a keep-alive connection's wait for its next request
	// (0 = the defaults below).
	ReadHeaderTimeout, IdleTimeout time.Duration
	// ReadBodyTimeout bounds the reading of a request's body, from the end
	// of its head: a read after it fails with a timeout. A handler that
	// waits longer for a body moves the bound with SetReadDeadline.
	ReadBodyTimeout time.Duration
	// WriteTimeout bounds the writing of an answer: each time the server
	// sends part of it (100 Continue, the head, a Flush, the end), the
	// client must take it within WriteTimeout, or the write fails and the
	// connection is closed, so that a client that stops reading holds
	// nothing. The handler's own time before it answers does not count.
	// A handler that calls SetWriteDeadline takes the bound over for the
	// rest of its answer: a stream pushes it forward at each write.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and header fields (past it:
	// 431), MaxBodyBytes its body (past it: 413); 0 = the defaults.
	MaxHeaderBytes, MaxBodyBytes int64
	// Logf reports trouble; nil is silent.
	Logf func(format string, args ...any)
}

// Defaults: generous for people and scrapers, short for a client that
// opens connections and sends nothing.
const (
	DefaultMaxConns          = 256
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultReadBodyTimeout   = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBodyBytes      = 64 << 10
)

func (o *Options) fill() {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ReadBodyTimeout <= 0 {
		o.ReadBodyTimeout = DefaultReadBodyTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// prefix starts a log line about this server.
func (o *Options) prefix() string {
	if o.Name == "" {
		return ""
	}
	return o.Name + ": "
}

// Listener wraps ln so that at most o.MaxConns connections are open at
// once and accept errors never reach Server.Serve (which would end on
// them).
func Listener(ln net.Listener, o Options) *Limited {
	o.fill()
	l := &Limited{Listener: ln, o: o, done: make(chan struct{})}
	l.refusals = NewBurst(o.Logf, 10*time.Second)
	return l
}

// Limited is a listener with a connection cap.
type Limited struct {
	net.Listener
	o        Options
	open     atomic.Int64
	done     chan struct{}
	once     sync.Once
	refusals *Burst
}

// Open returns the number of connections open now.
func (l *Limited) Open() int { return int(l.open.Load()) }

// Accept returns the next connection under the cap. A connection past the
// cap is answered 503 with a JSON reason and closed. An accept error other
// than the close backs off, 5ms doubling to 1s, reported once per burst:
// a server that stopped accepting would leave every client hanging.
func (l *Limited) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			if delay == 0 {
				delay = 5 * time.Millisecond
				l.o.Logf("%s: cannot accept (%v); retrying", l.o.Name, err)
			} else {
				delay = min(2*delay, time.Second)
			}
			select {
			case <-time.After(delay):
			case <-l.done:
				return nil, net.ErrClosed
			}
			continue
		}
		if n := l.open.Add(1); n > int64(l.o.MaxConns) {
			l.open.Add(-1)
			l.refusals.Note("%s: refused a connection: %d are open, the most it serves at once", l.o.Name, l.o.MaxConns)
			Refuse(c, http1.StatusServiceUnavailable, fmt.Sprintf("busy: %d connections are open; try again", l.o.MaxConns))
			continue
		}
		return &conn{Conn: c, l: l}, nil
	}
}

// Close stops accepting.
func (l *Limited) Close() error {
	l.once.Do(func() { close(l.done) })
	l.refusals.Stop()
	return l.Listener.Close()
}

// conn gives its slot back once, whoever closes it.
type conn struct {
	net.Conn
	l    *Limited
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// Unwrap returns the accepted connection, for peer credentials.
func (c *conn) Unwrap() net.Conn { return c.Conn }

// Refuse writes a complete HTTP response with a JSON error to a connection
// that will not be served, and closes it. It does not read the request: a
// client still sending may see a reset instead of the answer, which is
// what a cap means.
func Refuse(c net.Conn, code int, msg string) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	writeRefusal(c, code, msg)
	c.Close()
}
