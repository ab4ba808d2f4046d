package listeners

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/clusterrun/clusterrun/hclconfig"
	"golang.org/x/sys/unix"
)

// adopt makes the socket of listener d out of in, a socket clusterrun was
// started with. It must be a listening stream socket of d's family.
//
// The socket is used as the socket unit made it: its backlog and its
// O_NONBLOCK are the unit's Backlog= and NonBlocking=, because the open
// file description is shared with systemd, which hands the same socket to
// the next clusterrun, and with every instance. Only a proxy listener's
// socket, on which clusterrun alone accepts, is made non-blocking. It is
// never wrapped in an os.File: the runner accepts on it with accept4 and
// poll (fdListener).
func adopt(d *hclconfig.Listener, in *inherited) (sk *socket, warnings []string, err error) {
	fd := in.fd
	what := fmt.Sprintf("the socket %q (fd %d) from socket activation", in.name, fd)
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot use %s: %w", what, err)
	}
	if typ != unix.SOCK_STREAM {
		return nil, nil, fmt.Errorf("cannot use %s: not a stream socket (ListenStream= in the socket unit)", what)
	}
	if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
		return nil, nil, fmt.Errorf("cannot use %s: it is not listening (Accept=no in the socket unit)", what)
	}
	family, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot use %s: %w", what, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot use %s: %w", what, err)
	}
	sk = &socket{def: d, adopted: true}
	var network string
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		network, sk.port = "tcp4", a.Port
		sk.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		network, sk.port = "tcp6", a.Port
		sk.addr = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrUnix:
		network, sk.addr = "unix", "unix:"+a.Name
	default:
		return nil, nil, fmt.Errorf("cannot use %s: address family %d is not tcp or unix", what, family)
	}
	if want := wantNetwork(d); want != "" && want != network && !(want == "tcp" && network != "unix") {
		return nil, nil, fmt.Errorf("cannot use %s for address %s: it is a %s socket on %s", what, d.Written(), network, sk.addr)
	}
	if d.Network != hclconfig.NetworkSystemd && !sameAddress(d, sk) {
		warnings = append(warnings, fmt.Sprintf("listener %q: %s listens on %s, not on %s as the file says; it is used as it is", d.Name, what, sk.addr, d.Written()))
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot use %s: %w", what, err)
	}
	nonblocking := flags&unix.O_NONBLOCK != 0
	switch d.Mode {
	case hclconfig.ReusePort:
		// One socket cannot be one per instance: they share it, which
		// keeps what a restart is for, the port held across it.
		warnings = append(warnings, fmt.Sprintf("listener %q is in reuseport mode, but %s is one socket: every instance shares it, as in shared mode", d.Name, what))
		fallthrough
	default:
		if d.NonBlocking != nonblocking && d.Network != hclconfig.NetworkSystemd {
			warnings = append(warnings, fmt.Sprintf("listener %q: nonblocking = %v, but %s is %s, as its unit's NonBlocking= says, and instances get it so; set NonBlocking=%s in the socket unit",
				d.Name, d.NonBlocking, what, map[bool]string{true: "non-blocking", false: "blocking"}[nonblocking], map[bool]string{true: "yes", false: "no"}[d.NonBlocking]))
		}
		sk.shared = &rawSock{fd: fd, port: sk.port}
	case hclconfig.Proxy, hclconfig.HTTP:
		// Only the runner accepts on it (instances have private sockets).
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, nil, fmt.Errorf("cannot use %s: %w", what, err)
		}
		ln, err := newFDListener(fd, network, sk.addr)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot use %s: %w", what, err)
		}
		sk.public = ln
	}
	return sk, warnings, nil
}

// wantNetwork is the family d's address asks for: "unix", "tcp4" or
// "tcp6" for an IP literal, "tcp" for a host name or none, "" for
// systemd:NAME (any).
func wantNetwork(d *hclconfig.Listener) string {
	switch d.Network {
	case "unix":
		return "unix"
	case hclconfig.NetworkSystemd:
		return ""
	}
	return tcpNetwork(d.Address)
}

// sameAddress: the adopted socket is where d's address says.
func sameAddress(d *hclconfig.Listener, sk *socket) bool {
	if d.Network == "unix" {
		return sk.addr == "unix:"+d.Address
	}
	host, port, err := net.SplitHostPort(d.Address)
	if err != nil {
		return false
	}
	if port != "0" && port != strconv.Itoa(sk.port) {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return true // a name, or every interface: any address will do
	}
	ahost, _, _ := net.SplitHostPort(sk.addr)
	return ip.Equal(net.ParseIP(ahost))
}

// fdListener accepts on a socket held as a bare descriptor (one from
// socket activation), for the proxy, without an os.File: accept4, and
// poll(2) on the socket and a wake-up pipe while nothing waits. Accepted
// connections are the runner's alone, and go to Go's poller.
type fdListener struct {
	fd   int
	addr net.Addr
	// wake is a pipe whose read end poll watches: Close writes to it.
	wake [2]int

	mu                sync.Mutex
	closed, accepting bool
}

func newFDListener(fd int, network, addr string) (*fdListener, error) {
	l := &fdListener{fd: fd}
	if err := unix.Pipe2(l.wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	if network == "unix" {
		l.addr = &net.UnixAddr{Name: addr[len("unix:"):], Net: "unix"}
	} else if a, err := net.ResolveTCPAddr(network, addr); err == nil {
		l.addr = a
	}
	return l, nil
}

// Accept waits for a connection. One goroutine calls it at a time.
func (l *fdListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, l.opError(net.ErrClosed)
	}
	l.accepting = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.accepting = false
		if l.closed {
			l.release()
		}
		l.mu.Unlock()
	}()
	for {
		nfd, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		switch {
		case err == nil:
			f := os.NewFile(uintptr(nfd), "")
			c, err := net.FileConn(f) // a copy, in Go's poller
			f.Close()
			if err != nil {
				return nil, l.opError(err)
			}
			return c, nil
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err != unix.EAGAIN:
			return nil, l.opError(os.NewSyscallError("accept4", err))
		}
		fds := []unix.PollFd{{Fd: int32(l.fd), Events: unix.POLLIN}, {Fd: int32(l.wake[0]), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return nil, l.opError(os.NewSyscallError("poll", err))
		}
		if fds[1].Revents != 0 {
			return nil, l.opError(net.ErrClosed)
		}
	}
}

// SyscallConn gives the socket's descriptor to Control, as a net.Listener
// of Go's does: the proxy takes its own duplicate of it and closes this
// listener. Read and Write are not for a listening socket.
func (l *fdListener) SyscallConn() (syscall.RawConn, error) { return fdRawConn{l}, nil }

type fdRawConn struct{ l *fdListener }

func (c fdRawConn) Control(f func(fd uintptr)) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.l.closed {
		return c.l.opError(net.ErrClosed)
	}
	f(uintptr(c.l.fd))
	return nil
}

func (c fdRawConn) Read(func(fd uintptr) bool) error  { return syscall.EINVAL }
func (c fdRawConn) Write(func(fd uintptr) bool) error { return syscall.EINVAL }

func (l *fdListener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
}

// Close stops Accept and closes the runner's descriptor of the socket (the
// manager that passed it keeps its own).
func (l *fdListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.opError(net.ErrClosed)
	}
	l.closed = true
	if l.accepting {
		unix.Write(l.wake[1], []byte{0}) // Accept releases on its way out
	} else {
		l.release()
	}
	return nil
}

func (l *fdListener) release() {
	syscall.Close(l.fd)
	syscall.Close(l.wake[0])
	syscall.Close(l.wake[1])
}

func (l *fdListener) Addr() net.Addr { return l.addr }
