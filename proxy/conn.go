package proxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one accepted client connection, from accept to close.
type conn struct {
	client net.Conn
	// be and bc are set once the connection is forwarded. They are atomic
	// because Active and Close read them from other goroutines.
	be atomic.Pointer[backend]
	bc atomic.Pointer[net.TCPConn]
	// left counts the copy directions still running; the one that brings it
	// to zero finishes the connection.
	left atomic.Int32
	// target is the backend being dialed, and stays set (equal to be) once
	// the connection is forwarded: only a failed or abandoned dial clears
	// it. answered is set once the first read from the backend returns
	// (its first bytes, or its end). Until then the backend may
	// not even have accepted the connection (it waits in its accept queue),
	// and an instance that closed its socket now would reset it.
	target   atomic.Pointer[backend]
	answered atomic.Bool
}

func (c *conn) closeBoth() {
	c.client.Close()
	if bc := c.bc.Load(); bc != nil {
		bc.Close()
	}
}

// handle runs on the connection's own goroutine: it finds a backend and then
// becomes the client-to-backend copier.
func (p *Proxy) handle(c *conn) {
	b, bc := p.connect(c)
	if bc == nil {
		c.client.Close()
		p.unregister(c)
		return
	}
	c.bc.Store(bc)
	c.be.Store(b)
	p.notifyQuiesce()
	if p.forced.Load() {
		// Close walked the registry before bc was stored (see Close).
		p.finish(c, b, bc)
		return
	}
	c.left.Store(2)
	go p.answer(c, b, bc)
	p.pipe(c, b, bc, c.client)
}

// firstBytes holds a backend's first answer on each connection.
var firstBytes = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// answer copies the backend's side to the client. It reads the first
// chunk itself, so that the connection is known to be answered (see
// Unanswered), then splices the rest. For a small HTTP answer that first
// read is the whole of it, one read and one write instead of a pipe.
func (p *Proxy) answer(c *conn, b *backend, bc *net.TCPConn) {
	bp := firstBytes.Get().(*[]byte)
	n, err := bc.Read(*bp)
	c.answered.Store(true)
	p.notifyQuiesce()
	if n > 0 {
		_, werr := c.client.Write((*bp)[:n])
		if err == nil {
			err = werr
		}
	}
	firstBytes.Put(bp)
	switch {
	case err == io.EOF:
		if cw, ok := c.client.(closeWriter); ok && cw.CloseWrite() != nil {
			c.closeBoth()
		}
	case err != nil:
		c.closeBoth()
	default:
		p.pipe(c, b, c.client, bc)
		return
	}
	if c.left.Add(-1) == 0 {
		p.finish(c, b, c.bc.Load())
	}
}

// connect dials a backend for c, trying each routable backend at most once,
// and waits (up to WaitForBackend) while none is routable. It returns a nil
// conn when the client must be closed: every backend failed, the wait ran
// out, or Close started.
func (p *Proxy) connect(c *conn) (*backend, *net.TCPConn) {
	// Almost every connection tries one backend; four fit without a heap
	// allocation.
	var triedBuf [4]*backend
	tried := triedBuf[:0]
	var timer *time.Timer // the WaitForBackend bound, made on the first wait only
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if p.forced.Load() {
			return nil, nil
		}
		snap := p.snap.Load()
		if len(snap.list) == 0 {
			if p.waitFor < 0 {
				p.log.printf("no backend is routable on %s; closed a connection from %s", p.lnString, c.client.RemoteAddr())
				return nil, nil
			}
			if timer == nil {
				timer = time.NewTimer(p.waitFor)
			}
			if !p.wait(snap, timer, c) {
				return nil, nil
			}
			continue
		}
		b := snap.pick(p.balance, p.rr.Add(1), tried)
		if b == nil {
			p.log.printf("every backend on %s failed to connect; closed a connection from %s", p.lnString, c.client.RemoteAddr())
			return nil, nil
		}
		tried = append(tried, b)
		b.load.Add(1)
		c.target.Store(b)
		bc, err := p.dial(b)
		if err != nil {
			c.target.Store(nil)
			b.load.Add(-1)
			p.notifyQuiesce()
			if !p.forced.Load() {
				p.log.printf("cannot connect to backend %d at %s: %v; trying another", b.id, b.addr, err)
			}
			continue
		}
		if h := p.testHookDialed; h != nil {
			h(b)
		}
		if b.removed.Load() {
			// SetBackends removed b while the dial was in flight: the
			// instance may be about to get its stop signal, so it gets no
			// new connection. The backend sees a connection closed unused.
			bc.Close()
			c.target.Store(nil)
			b.load.Add(-1)
			p.notifyQuiesce()
			continue
		}
		return b, bc
	}
}

func (p *Proxy) dial(b *backend) (*net.TCPConn, error) {
	// Dialer.DialTCP would skip parsing the address, but with no local
	// address it binds to :0 before connecting, and bind-time port
	// allocation runs out of ports under connection churn far sooner than
	// connect's.
	nc, err := p.dialer.DialContext(p.dialCtx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	// "tcp" always yields a *net.TCPConn; the bare type is what lets io.Copy
	// splice.
	return nc.(*net.TCPConn), nil
}

// wait blocks until the routable set changes, the WaitForBackend timer
// fires or Close starts, and reports whether to look again.
func (p *Proxy) wait(snap *snapshot, timer *time.Timer, c *conn) bool {
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	select {
	case <-snap.changed:
		return true
	case <-timer.C:
		p.log.printf("no backend became routable on %s within %v; closed a connection from %s", p.lnString, p.waitFor, c.client.RemoteAddr())
		return false
	case <-p.closing:
		return false
	}
}

type closeWriter interface {
	CloseWrite() error
}

// pipe copies src to dst until src ends. dst and src are the bare
// *net.TCPConn or *net.UnixConn: io.Copy then reaches TCPConn.ReadFrom or
// TCPConn.WriteTo, which splice(2) on Linux through a pooled pipe, so the
// bytes never enter user space and the pipe (at most 1 MiB) bounds what is
// in flight; any wrapper type would silently fall back to a 32 KiB user
// buffer per direction. EOF is passed on as a half-close; an error closes
// both sockets, which also ends the other direction.
func (p *Proxy) pipe(c *conn, b *backend, dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(closeWriter); ok {
			err = cw.CloseWrite()
		}
	}
	if err != nil {
		c.closeBoth()
	}
	if c.left.Add(-1) == 0 {
		p.finish(c, b, c.bc.Load())
	}
}

func (p *Proxy) finish(c *conn, b *backend, bc *net.TCPConn) {
	c.client.Close()
	bc.Close()
	b.load.Add(-1)
	p.unregister(c)
}
