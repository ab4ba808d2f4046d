//go:build linux || darwin || freebsd

package proxy

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeListener takes ln's socket out of the Go runtime: it keeps a
// duplicate of the descriptor (the same open file description, still
// non-blocking) and closes ln, which takes the socket out of the runtime's
// poller. Left there, every new connection would also wake the runtime's
// own epoll waiter for nothing. A unix socket's file stays in place.
func takeListener(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("cannot serve %s: a %T is not a socket listener", ln.Addr(), ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("cannot serve %s: %w", ln.Addr(), err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("cannot serve %s: %w", ln.Addr(), err)
	}
	if derr != nil {
		return -1, fmt.Errorf("cannot serve %s: cannot duplicate the listening socket: %w", ln.Addr(), derr)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	} else {
		setNoDelay(fd)
	}
	ln.Close()
	return fd, nil
}
