//go:build darwin || freebsd

package proxy

import (
	"errors"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/clusterrun/clusterrun/route"
)

// The per-connection system calls of the loop, through x/sys/unix (the
// system's libc on macOS). Sockets get SO_NOSIGPIPE: a peer that reset is
// an EPIPE, not a signal.

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

func sysRead(fd int, b []byte) (int, syscall.Errno) {
	n, err := unix.Read(fd, b)
	if err != nil {
		return 0, errnoOf(err)
	}
	return n, 0
}

func sysWrite(fd int, b []byte) (int, syscall.Errno) {
	n, err := unix.Write(fd, b)
	if err != nil {
		return 0, errnoOf(err)
	}
	return n, 0
}

func sysShutdownWrite(fd int) syscall.Errno { return errnoOf(unix.Shutdown(fd, unix.SHUT_WR)) }

func closeFD(fd int) { unix.Close(fd) }

func prepare(fd int) {
	unix.CloseOnExec(fd)
	unix.SetNonblock(fd, true)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NOSIGPIPE, 1)
}

func sysAccept(lfd int, key bool) (int, uint64, syscall.Errno) {
	// No accept4 here: the flags are set after, with the runtime's fork
	// lock held so no child inherits the socket meanwhile.
	syscall.ForkLock.RLock()
	fd, sa, err := unix.Accept(lfd)
	if err == nil {
		prepare(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, 0, errnoOf(err)
	}
	if !key {
		return fd, 0, 0
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return fd, route.AddrKey(netip.AddrFrom4(a.Addr)), 0
	case *unix.SockaddrInet6:
		return fd, route.AddrKey(netip.AddrFrom16(a.Addr)), 0
	}
	return fd, 0, 0
}

type dialAddr struct {
	family int
	sa     unix.Sockaddr
}

func newDialAddr(ap netip.AddrPort) dialAddr {
	if ap.Addr().Is4() {
		return dialAddr{unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}}
	}
	return dialAddr{unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}}
}

func sysDial(a *dialAddr) (int, syscall.Errno) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(a.family, unix.SOCK_STREAM, 0)
	if err == nil {
		prepare(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, errnoOf(err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	e := errnoOf(unix.Connect(fd, a.sa))
	if e != 0 && e != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, e
	}
	return fd, e
}

func sockError(fd int) syscall.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return errnoOf(err)
	}
	return syscall.Errno(v)
}

func setNoDelay(fd int) { unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) }

// spliceWorks: there is no splice(2) here; bulk transfers are copied.
const spliceWorks = false

func sysSplice(in, out, n int) (int, syscall.Errno) { return 0, syscall.ENOSYS }

func newPipe() (*pipe, bool) { return nil, false }
