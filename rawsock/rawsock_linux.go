package rawsock

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The calls are raw (no entersyscall/exitsyscall): every socket is
// non-blocking, so none of them waits, and the scheduler's bookkeeping
// around a call would cost as much as a short read.

// Read reads into b what fd has.
func Read(fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// Write sends what of b fd takes, without SIGPIPE: a peer that reset is an
// EPIPE here, not a signal to the whole runner.
func Write(fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// Accept accepts one connection on listening socket lfd, non-blocking and
// close-on-exec, and returns the client's address (IPv4-mapped ones
// unmapped; the zero Addr for a unix socket's client).
func Accept(lfd int) (int, netip.Addr, syscall.Errno) {
	var sa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.Addr{}, e
	}
	switch sa.Addr.Family {
	case unix.AF_INET:
		return int(r), netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&sa)).Addr), 0
	case unix.AF_INET6:
		return int(r), netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(&sa)).Addr).Unmap(), 0
	}
	return int(r), netip.Addr{}, 0
}
