package proxy

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The per-connection system calls of the loop besides reads, sends and
// accepts (package rawsock). They are raw (no entersyscall/exitsyscall):
// every socket is non-blocking, so none of them waits, and the scheduler's
// bookkeeping around a call would cost as much as a short read. Only
// epoll_wait, which does wait, goes through the runtime's syscall path.

func sysShutdownWrite(fd int) syscall.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
	return e
}

func closeFD(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// dialAddr is a backend's address ready for connect(2).
type dialAddr struct {
	family int
	raw    [unix.SizeofSockaddrInet6]byte
	len    uint32
}

func newDialAddr(ap netip.AddrPort) dialAddr {
	var d dialAddr
	port := ap.Port()
	if ap.Addr().Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&d.raw[0]))
		sa.Family = unix.AF_INET
		sa.Addr = ap.Addr().As4()
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		d.family, d.len = unix.AF_INET, unix.SizeofSockaddrInet4
		return d
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&d.raw[0]))
	sa.Family = unix.AF_INET6
	sa.Addr = ap.Addr().As16()
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	d.family, d.len = unix.AF_INET6, unix.SizeofSockaddrInet6
	return d
}

// sysDial starts a non-blocking connect to a: it returns the socket and 0
// or EINPROGRESS, or an error with no socket left open. TCP_NODELAY is set,
// as it is on the accepted side (inherited from the listener): the proxy
// writes what it reads, and Nagle would hold a second small write (a
// request body after its headers) until the first is acknowledged.
func sysDial(a *dialAddr) (int, syscall.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(a.family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	fd := int(r)
	one := int32(1)
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
	_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&a.raw[0])), uintptr(a.len))
	if e != 0 && e != unix.EINPROGRESS {
		closeFD(fd)
		return -1, e
	}
	return fd, e
}

// sockError returns the error a failed non-blocking connect left on fd.
func sockError(fd int) syscall.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		if e, ok := err.(syscall.Errno); ok {
			return e
		}
		return unix.EIO
	}
	return syscall.Errno(v)
}

// setNoDelay sets TCP_NODELAY on a listening socket, which its accepted
// sockets inherit; on a unix socket it does nothing.
func setNoDelay(fd int) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// spliceWorks: bulk transfers go by splice(2).
const spliceWorks = true

// sysSplice moves up to n bytes from in to out, one of them a pipe,
// without blocking and without a copy through user space.
func sysSplice(in, out, n int) (int, syscall.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// newPipe makes a non-blocking, close-on-exec pipe of the kernel's default
// size (its capacity is read back: past fs.pipe-user-pages-soft it is one
// page).
func newPipe() (*pipe, bool) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, false
	}
	size, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETPIPE_SZ, 0)
	if err != nil || size <= 0 {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, false
	}
	return &pipe{r: fds[0], w: fds[1], size: size}, true
}
