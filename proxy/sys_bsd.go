//go:build darwin || freebsd

package proxy

import (
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/clusterrun/clusterrun/rawsock"
)

// The per-connection system calls of the loop besides reads, sends and
// accepts (package rawsock), through x/sys/unix (the system's libc on
// macOS). Sockets get SO_NOSIGPIPE: a peer that reset is an EPIPE, not a
// signal.

func sysShutdownWrite(fd int) syscall.Errno { return rawsock.Errno(unix.Shutdown(fd, unix.SHUT_WR)) }

func closeFD(fd int) { unix.Close(fd) }

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
		rawsock.Prepare(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, rawsock.Errno(err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	e := rawsock.Errno(unix.Connect(fd, a.sa))
	if e != 0 && e != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, e
	}
	return fd, e
}

func sockError(fd int) syscall.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return rawsock.Errno(err)
	}
	return syscall.Errno(v)
}

func setNoDelay(fd int) { unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) }

// spliceWorks: there is no splice(2) here; bulk transfers are copied.
const spliceWorks = false

func sysSplice(in, out, n int) (int, syscall.Errno) { return 0, syscall.ENOSYS }

func newPipe() (*pipe, bool) { return nil, false }
