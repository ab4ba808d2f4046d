package httpmode

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/route"
)

// backend is what the http data path keeps per instance (route.Target's
// Data): its pool of keep-alive connections, its figures, and what a
// sticky client needs.
type backend struct {
	t *route.Target
	s *Server

	mu   sync.Mutex
	idle []*beConn // most recently used last
	// gone: removed from the set, and forgotten if clients were stuck to
	// it; idle connections are closed at once, busy ones when their
	// request ends.
	gone atomic.Bool
	// stopping: it got its stop signal or is gone (see Server.Stopping).
	stopping atomic.Bool

	// setCookie is the whole Set-Cookie field that sticks a client to this
	// instance (its value "APP.SLOT.ID", see parseSticky).
	setCookie []byte

	stats *instanceStats
	log   logBuf
}

// beConn is one connection to an instance and its read buffer.
type beConn struct {
	c  *net.TCPConn
	b  *backend
	rb []byte
	r  int // rb[r:w] is read and not used yet
	w  int
	// reused: it served a request before, so a failure before any byte
	// of an answer may be the instance closing an idle connection.
	reused    bool
	idleSince int64
	// rdl and wdl are the deadlines in place (see readBy).
	rdl, wdl time.Time
}

// beBufSize is a backend connection's read buffer: a response head must
// fit in maxResponseHead, which it grows to when needed.
const (
	beBufSize       = 4 << 10
	maxResponseHead = 64 << 10
)

// poolIdle is how long an idle connection to an instance is kept. Short:
// apps close idle keep-alive connections themselves (gunicorn after 2s,
// Node after 5s), and a request written to one the app is closing at that
// moment is lost; under load connections are reused far sooner than this.
const poolIdle = time.Second

// maxIdlePerBackend bounds the idle connections kept per instance.
const maxIdlePerBackend = 128

// peekAfter: a pooled connection idle for less than this is taken without
// asking the kernel whether the instance closed it, for a request that can
// be sent again (see get).
const peekAfter = int64(100 * time.Millisecond)

// get returns an idle connection that the instance has not closed, or nil.
// Whether it closed one is one recv(2) (see alive), paid for every request
// that could not be sent again after a failure; one that can (retry: an
// idempotent request whose body is held) skips it on a connection idle
// for less than peekAfter: apps close idle connections after seconds, not
// milliseconds, and a request that meets one closed all the same fails
// before any answer and goes to another instance.
func (b *backend) get(retry bool, now int64) *beConn {
	for {
		b.mu.Lock()
		n := len(b.idle)
		if n == 0 {
			b.mu.Unlock()
			return nil
		}
		bc := b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		if (retry && now-bc.idleSince < peekAfter) || bc.alive() {
			return bc
		}
		bc.close()
	}
}

// put keeps bc for the next request, or closes it if the instance left.
func (b *backend) put(bc *beConn, now int64) {
	bc.reused = true
	bc.idleSince = now
	bc.r, bc.w = 0, 0
	if len(bc.rb) > beBufSize {
		bc.rb = make([]byte, beBufSize) // a big head grew it once
	}
	b.mu.Lock()
	if b.gone.Load() || len(b.idle) >= maxIdlePerBackend {
		b.mu.Unlock()
		bc.close()
		return
	}
	b.idle = append(b.idle, bc)
	b.mu.Unlock()
	b.s.reaper.kick()
}

// closeIdle closes the idle connections (all of them, or those idle since
// before cutoff) and reports whether some are left.
func (b *backend) closeIdle(all bool, cutoff int64) bool {
	b.mu.Lock()
	var old []*beConn
	keep := b.idle[:0]
	for _, bc := range b.idle {
		if all || b.gone.Load() || bc.idleSince < cutoff {
			old = append(old, bc)
		} else {
			keep = append(keep, bc)
		}
	}
	clear(b.idle[len(keep):])
	b.idle = keep
	left := len(keep) > 0
	b.mu.Unlock()
	for _, bc := range old {
		bc.close()
	}
	return left
}

// dial opens a new connection to the instance.
func (b *backend) dial(ctx context.Context, timeout time.Duration) (*beConn, error) {
	if !b.s.fds.Take(1, route.Now()) {
		return nil, errNoFDs
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", b.t.Addr)
	if err != nil {
		b.s.fds.Give(1)
		return nil, err
	}
	return &beConn{c: c.(*net.TCPConn), b: b, rb: make([]byte, beBufSize)}, nil
}

var errNoFDs = errors.New("no file descriptor left in the runner's budget")

func (bc *beConn) close() {
	if bc.c != nil {
		bc.c.Close()
		bc.c = nil
		bc.b.s.fds.Give(1)
	}
}

// alive reports whether an idle connection can carry a request: the
// instance has not closed it (nothing to read: no EOF, no stray bytes).
// One non-blocking peek: a request written to a connection the instance has
// already closed would be lost without the instance ever seeing it, which
// is fine to retry, but telling that apart from a crash costs a failed
// request of a method that must not be sent twice.
func (bc *beConn) alive() bool {
	rc, err := bc.c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	// Control, not Read: no poller, and a deadline that passed while the
	// connection was idle does not count.
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
	})
	return ok
}

// reaper closes idle connections past poolIdle. It sleeps while there is
// none.
type reaper struct {
	s    *Server
	wake chan struct{}
}

func (r *reaper) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reaper) run(done <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-r.wake:
		case <-done:
			return
		}
		for {
			t.Reset(poolIdle / 2)
			select {
			case <-t.C:
			case <-done:
				t.Stop()
				return
			}
			if !r.s.closeIdle(false) {
				break
			}
		}
	}
}
