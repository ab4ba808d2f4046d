//go:build darwin || freebsd

package rawsock

import (
	"errors"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// The calls go through x/sys/unix (the system's libc on macOS). Accepted
// sockets get SO_NOSIGPIPE: a peer that reset is an EPIPE, not a signal.

// Errno is err's errno (EIO for another error).
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// Read reads into b what fd has.
func Read(fd int, b []byte) (int, syscall.Errno) {
	n, err := unix.Read(fd, b)
	if err != nil {
		return 0, Errno(err)
	}
	return n, 0
}

// Write sends what of b fd takes.
func Write(fd int, b []byte) (int, syscall.Errno) {
	n, err := unix.Write(fd, b)
	if err != nil {
		return 0, Errno(err)
	}
	return n, 0
}

// Prepare makes a new socket close-on-exec, non-blocking and free of
// SIGPIPE; the caller holds syscall.ForkLock.
func Prepare(fd int) {
	unix.CloseOnExec(fd)
	unix.SetNonblock(fd, true)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NOSIGPIPE, 1)
}

// Accept accepts one connection on listening socket lfd, non-blocking and
// close-on-exec, and returns the client's address (IPv4-mapped ones
// unmapped; the zero Addr for a unix socket's client).
func Accept(lfd int) (int, netip.Addr, syscall.Errno) {
	// No accept4 here: the flags are set after, with the runtime's fork
	// lock held so no child inherits the socket meanwhile.
	syscall.ForkLock.RLock()
	fd, sa, err := unix.Accept(lfd)
	if err == nil {
		Prepare(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, netip.Addr{}, Errno(err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return fd, netip.AddrFrom4(a.Addr), 0
	case *unix.SockaddrInet6:
		return fd, netip.AddrFrom16(a.Addr).Unmap(), 0
	}
	return fd, netip.Addr{}, 0
}
