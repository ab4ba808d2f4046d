package httpmode

import (
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/clusterrun/clusterrun/rawsock"
)

// rawAccept takes a TCP listener's connections as bare descriptors (see
// accepted). accept4 runs inside the listener's RawConn.Control, which
// holds the descriptor open for the call, so a Close meanwhile cannot hand
// its number to another file. The wait for the next connection is on an
// epoll instance of ours that holds the listener: the runtime's poller
// waits on that one (a listener's RawConn cannot wait), and close wakes
// it. The listening socket itself is never duplicated, wrapped in an
// os.File or changed, save TCP_NODELAY, which its connections inherit.
type rawAccept struct {
	lc  syscall.RawConn
	ep  *os.File
	epc syscall.RawConn
	// take and try are made once: an accept allocates nothing.
	take func(fd uintptr)
	try  func(uintptr) bool
	got  accepted
	errn syscall.Errno
	lerr error
	// closed: close was called (the wait's error says only "use of
	// closed file").
	closed atomic.Bool
}

// newRawAccept returns the raw accept of ln, or nil when ln is not a TCP
// listener or the epoll instance cannot be had (the net package's accept
// serves then).
func newRawAccept(ln net.Listener) *rawAccept {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	lc, err := tl.SyscallConn()
	if err != nil {
		return nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	// Non-blocking, so that os.NewFile puts it on the runtime's poller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil
	}
	var cerr error
	err = lc.Control(func(fd uintptr) {
		cerr = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{Events: unix.EPOLLIN})
		if cerr == nil {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		}
	})
	if err != nil || cerr != nil {
		unix.Close(epfd)
		return nil
	}
	a := &rawAccept{lc: lc, ep: os.NewFile(uintptr(epfd), "accept epoll")}
	if a.epc, err = a.ep.SyscallConn(); err != nil {
		a.ep.Close()
		return nil
	}
	a.take = func(fd uintptr) {
		for {
			nfd, peer, e := rawsock.Accept(int(fd))
			switch e {
			case unix.EINTR, unix.ECONNABORTED:
				// As the net package's accept: a client that left before
				// it was taken is not an error of the listener.
				continue
			case 0:
				a.got = accepted{raw: true, fd: nfd, peer: peer}
			}
			a.errn = e
			return
		}
	}
	a.try = func(uintptr) bool {
		if a.lerr = a.lc.Control(a.take); a.lerr != nil {
			return true
		}
		return a.errn != unix.EAGAIN
	}
	return a
}

// accept returns the next connection; it waits for one.
func (a *rawAccept) accept() (accepted, error) {
	a.got, a.errn, a.lerr = accepted{}, 0, nil
	err := a.epc.Read(a.try)
	switch {
	case a.lerr != nil:
		return accepted{}, a.lerr
	case err != nil:
		if a.closed.Load() {
			return accepted{}, net.ErrClosed
		}
		return accepted{}, fmt.Errorf("cannot wait for a connection: %w", err)
	case a.errn != 0:
		return accepted{}, os.NewSyscallError("accept4", a.errn)
	}
	return a.got, nil
}

// close wakes a waiting accept, which then fails with net.ErrClosed.
func (a *rawAccept) close() {
	a.closed.Store(true)
	a.ep.Close()
}
