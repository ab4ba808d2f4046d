package listeners

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"golang.org/x/sys/unix"
)

// key identifies a socket by what was written in the file: a reload that
// keeps "127.0.0.1:8080" (or ":0") keeps the same socket and the same port.
// Each listener asking for a random port gets its own, so for port 0 the
// listener's name is part of the key.
type key struct{ network, address, name string }

func keyOf(l *hclconfig.Listener) key {
	if _, port, err := net.SplitHostPort(l.Address); err == nil && port == "0" && l.Network != "unix" {
		return key{l.Network, l.Address, l.Name}
	}
	return key{l.Network, l.Address, ""}
}

// socket is one listener's bound socket(s).
type socket struct {
	def *hclconfig.Listener
	// port is the bound TCP port, resolved once so that ":0" means the same
	// random port for every instance and every reuseport slot.
	port int
	// shared is the one socket of a shared listener.
	shared *rawSock
	// slots are the per-instance sockets of a reuseport listener.
	slots map[int]*rawSock
	// public is a proxy listener's socket, on which the runner accepts.
	public net.Listener
	// private are a proxy listener's per-slot private sockets, by app,
	// instance number and number within the slot.
	private map[privKey]*rawSock
	// adopted: the socket came from socket activation, and addr is where
	// it listens ("127.0.0.1:8080", "unix:/run/app.sock"). Its options
	// are the socket unit's, and its file belongs to the unit.
	adopted bool
	addr    string
}

type privKey struct {
	app          string
	index, which int
}

// rawSock is a socket the runner holds as a bare descriptor, outside Go's
// network poller: instances share it, and the runner must neither be woken
// by its traffic nor ever change its flags (O_NONBLOCK lives on the open
// file description every instance shares). Options are set once, at bind.
type rawSock struct {
	fd   int
	port int
	// guard, for a private socket, holds its port on every address (see
	// privateLocked); 0 for none.
	guard int
}

func (r *rawSock) close() {
	syscall.Close(r.fd)
	if r.guard > 0 {
		syscall.Close(r.guard)
	}
}

// Set is the runner's listening sockets. Its methods are safe for
// concurrent use: the supervisor binds and retains, while the process
// layer takes descriptors for the instances it starts.
type Set struct {
	mu    sync.Mutex
	socks map[key]*socket
	// activation holds the sockets clusterrun was started with (Adopt).
	activation *Activation
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{socks: make(map[key]*socket)}
}

// Bind opens every listener in defs that is not open yet. It is all or
// nothing: on error the sockets this call opened are closed again and the
// error names the listener. An open socket is never touched: when the
// options of an open listener changed, the change is returned as a warning
// and applies once the runner restarts.
func (s *Set) Bind(defs []*hclconfig.Listener) (warnings []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var opened []key
	fail := func(d *hclconfig.Listener, err error) ([]string, error) {
		s.closeKeysLocked(opened)
		return nil, fmt.Errorf("listener %q: %w", d.Name, err)
	}
	for _, d := range defs {
		k := keyOf(d)
		if sk, ok := s.socks[k]; ok {
			if d.Mode != sk.def.Mode {
				return fail(d, fmt.Errorf("cannot change mode from %q to %q while %s is open; restart the runner to change it", sk.def.Mode, d.Mode, d.Address))
			}
			if d.Backlog != sk.def.Backlog || d.NonBlocking != sk.def.NonBlocking {
				warnings = append(warnings, fmt.Sprintf("listener %q: backlog and nonblocking of a socket instances already hold cannot change; they apply when the runner restarts", d.Name))
			}
			continue
		}
		if in := s.activation.claim(d); in != nil {
			sk, warns, err := adopt(d, in)
			if err != nil {
				// Not adopted: the descriptor stays the Activation's, to
				// be closed as unclaimed.
				in.taken = false
				return fail(d, err)
			}
			warnings = append(warnings, warns...)
			s.socks[k] = sk
			opened = append(opened, k)
			continue
		}
		if d.Network == hclconfig.NetworkSystemd {
			passed := "none"
			if s.activation != nil {
				passed = strings.Join(s.activation.Names(), ", ")
			}
			return fail(d, fmt.Errorf("cannot take the socket %q from systemd: clusterrun was not started with a socket of that name (FileDescriptorName= in the .socket unit; passed: %s)", d.Address, passed))
		}
		sk := &socket{def: d}
		switch d.Mode {
		case hclconfig.ReusePort:
			// Bind slot 0 now so the address is proven (and ":0" resolved)
			// before anything starts.
			if _, err := s.slotLocked(sk, 0); err != nil {
				return fail(d, err)
			}
		case hclconfig.Proxy, hclconfig.HTTP:
			ln, port, err := listen(context.Background(), d, d.Address, false)
			if err != nil {
				return fail(d, err)
			}
			sk.public, sk.port = ln, port
		default:
			rs, err := bindRaw(d, d.Address, false)
			if err != nil {
				return fail(d, err)
			}
			sk.shared, sk.port = rs, rs.port
		}
		s.socks[k] = sk
		opened = append(opened, k)
	}
	return warnings, nil
}

// Public returns the socket the runner accepts on for a proxy listener.
func (s *Set) Public(def *hclconfig.Listener) net.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sk, ok := s.socks[keyOf(def)]; ok {
		return sk.public
	}
	return nil
}

func (s *Set) slotLocked(sk *socket, slot int) (*rawSock, error) {
	if rs, ok := sk.slots[slot]; ok {
		return rs, nil
	}
	addr := sk.def.Address
	if sk.port != 0 {
		host, _, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(host, strconv.Itoa(sk.port))
	}
	rs, err := bindRaw(sk.def, addr, true)
	if err != nil {
		return nil, err
	}
	if sk.slots == nil {
		sk.slots = make(map[int]*rawSock)
	}
	sk.slots[slot] = rs
	sk.port = rs.port
	return rs, nil
}

// privateLocked returns a proxy listener's private socket number which of
// an app's instance number index, binding it on first use: a loopback
// socket, bound but not listening, with SO_REUSEADDR. The instance either
// calls listen(2) on it (Node, asyncio, gunicorn and uvicorn do, given an
// fd) or binds PORT itself with SO_REUSEADDR, as nearly every server does:
// Linux allows that bind next to a socket that is not listening, and the
// port stays reserved for the slot while no process listens on it.
func (s *Set) privateLocked(sk *socket, app string, index, which int) (*rawSock, error) {
	k := privKey{app, index, which}
	if rs, ok := sk.private[k]; ok {
		return rs, nil
	}
	// The kernel lets go of a port it chose (bind to port 0) when the
	// socket leaves LISTEN, and Unlisten does exactly that: the next
	// listen(2) on fd 3 would then take a new ephemeral port that the
	// proxy does not know. A port named in bind(2) stays with the socket,
	// so pick one with a first socket and bind the kept one to it by
	// number; SO_REUSEADDR allows the two side by side since neither
	// listens, and the first holds the port until the second has it.
	//
	// The socket is on 127.0.0.1, but an app that binds PORT itself often
	// binds it on every address ("python3 -m http.server $PORT" binds ::),
	// where another process may hold the port on another address (a
	// client bound to 127.0.0.5:0, an IPv6-only socket): the app would fail
	// with EADDRINUSE, again at every restart. A guard socket, bound but
	// not listening on the wildcard with SO_REUSEADDR, keeps the port free
	// on every address for the slot's life; a port that is taken somewhere
	// is given up for another.
	var rs *rawSock
	for attempt := 1; rs == nil; attempt++ {
		pick, port, err := privateSocket(0)
		if err != nil {
			return nil, err
		}
		fd, _, err := privateSocket(port)
		syscall.Close(pick)
		if err != nil {
			return nil, err
		}
		guard, err := wildcardGuard(port)
		switch {
		case err == nil:
			rs = &rawSock{fd: fd, port: port, guard: guard}
		case errors.Is(err, syscall.EADDRINUSE) && attempt < 16:
			syscall.Close(fd) // held on another address: another port
		default:
			syscall.Close(fd)
			return nil, fmt.Errorf("cannot reserve port %d on every address for a private socket: %w", port, err)
		}
	}
	if sk.private == nil {
		sk.private = make(map[privKey]*rawSock)
	}
	sk.private[k] = rs
	return rs, nil
}

// wildcardGuard binds a socket with SO_REUSEADDR, not listening, to port
// on every address: [::] taking IPv4 too, or 0.0.0.0 without IPv6.
func wildcardGuard(port int) (int, error) {
	fd, err := wildcardSocket(syscall.AF_INET6)
	if err == nil {
		// Dual stack: the guard holds the port for IPv4 as well.
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
			syscall.Close(fd)
			return -1, err
		}
		if err := bindReusable(fd, &syscall.SockaddrInet6{Port: port}); err != nil {
			syscall.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	if fd, err = wildcardSocket(syscall.AF_INET); err != nil {
		return -1, err
	}
	if err := bindReusable(fd, &syscall.SockaddrInet4{Port: port}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

func bindReusable(fd int, sa syscall.Sockaddr) error {
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return err
	}
	return syscall.Bind(fd, sa)
}

// privateSocket binds a loopback TCP socket with SO_REUSEADDR, not
// listening, to port (0: one the kernel picks), and returns it and its port.
func privateSocket(port int) (int, int, error) {
	fd, err := loopbackSocket()
	if err != nil {
		return -1, 0, fmt.Errorf("cannot create a private socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("cannot set SO_REUSEADDR on a private socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("cannot bind a private socket on 127.0.0.1:%d: %w", port, err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("private socket: %w", err)
	}
	return fd, sa.(*syscall.SockaddrInet4).Port, nil
}

// Grant is what one instance receives: descriptors to pass as fds 3, 4, …
// and the environment that describes them. The descriptors are the Grant's
// own duplicates, so a listener closed meanwhile by a reload cannot hand
// its number to another file before the fork; Close them after it.
type Grant struct {
	Files []uintptr
	// Env holds LISTEN_FDS, LISTEN_FDNAMES, PORT and, for the Node preload,
	// CLUSTERRUN_LISTEN_PORTS.
	Env []string
	// Addrs are the instance's private addresses by proxy listener name.
	Addrs map[string]string
}

// Close closes the Grant's duplicates.
func (g *Grant) Close() {
	for _, fd := range g.Files {
		syscall.Close(int(fd))
	}
	g.Files = nil
}

// Grant returns what instance index of app gets for its listeners defs
// (which must be bound), with private socket number private for proxy
// listeners.
func (s *Set) Grant(app string, defs []*hclconfig.Listener, index, private int) (*Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &Grant{Addrs: map[string]string{}}
	if len(defs) == 0 {
		return g, nil
	}
	names := make([]string, len(defs))
	var ports []string
	firstPort := 0 // the PORT the instance gets (0 if none)
	for i, d := range defs {
		names[i] = d.Name
		sk, ok := s.socks[keyOf(d)]
		if !ok {
			g.Close()
			return nil, fmt.Errorf("listener %q is not bound", d.Name)
		}
		var rs *rawSock
		var err error
		port := sk.port
		switch d.Mode {
		case hclconfig.ReusePort:
			if rs = sk.shared; rs == nil { // else adopted: one socket for all
				rs, err = s.slotLocked(sk, index)
			}
		case hclconfig.Proxy, hclconfig.HTTP:
			rs, err = s.privateLocked(sk, app, index, private)
			if err == nil {
				port = rs.port
				g.Addrs[d.Name] = "127.0.0.1:" + strconv.Itoa(rs.port)
			}
		default:
			rs = sk.shared
		}
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("listener %q, instance %d: %w", d.Name, index, err)
		}
		dup, err := unix.FcntlInt(uintptr(rs.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("listener %q: cannot duplicate its socket: %w", d.Name, err)
		}
		g.Files = append(g.Files, uintptr(dup))
		if firstPort == 0 && port != 0 {
			firstPort = port
		}
		// The Node preload maps listen(PORT) onto the inherited socket, a
		// proxy instance's private one included: bound by the runner, it
		// is on loopback only, where a Node app's own listen(PORT) would
		// take every interface, and the preload can report READY.
		if port != 0 {
			ports = append(ports, strconv.Itoa(port)+"="+strconv.Itoa(3+i))
		}
	}
	g.Env = []string{"LISTEN_FDS=" + strconv.Itoa(len(defs)), "LISTEN_FDNAMES=" + strings.Join(names, ":")}
	if firstPort != 0 {
		g.Env = append(g.Env, "PORT="+strconv.Itoa(firstPort))
	}
	if len(ports) > 0 {
		g.Env = append(g.Env, "CLUSTERRUN_LISTEN_PORTS="+strings.Join(ports, ","))
	}
	return g, nil
}

// Unlisten turns a private socket back into a bound, non-listening one
// after the process that listened on it is gone (shutdown(2) on a
// listening socket resets what waits in its queue and stops listening).
// Without it, the runner's copy would keep accepting connections into a
// queue nobody reads.
func (s *Set) Unlisten(app string, def *hclconfig.Listener, index, which int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sk, ok := s.socks[keyOf(def)]; ok {
		if rs, ok := sk.private[privKey{app, index, which}]; ok {
			_ = syscall.Shutdown(rs.fd, syscall.SHUT_RD)
		}
	}
}

// ReleaseSlot closes the per-slot sockets of an app's instance number that
// is gone (scaled down, removed). The kernel keeps routing connections to a
// reuseport socket nobody accepts on, so such a socket must be given back;
// the last one stays, to keep the port reserved.
func (s *Set) ReleaseSlot(app string, defs []*hclconfig.Listener, index int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range defs {
		sk, ok := s.socks[keyOf(d)]
		if !ok {
			continue
		}
		if rs, ok := sk.slots[index]; ok && len(sk.slots) > 1 {
			rs.close()
			delete(sk.slots, index)
		}
		for k, rs := range sk.private {
			if k.app == app && k.index == index {
				rs.close()
				delete(sk.private, k)
			}
		}
	}
}

// Addr returns where def is listening, with ":0" resolved ("127.0.0.1:43121",
// "unix:/run/app.sock"), or "" if it is not bound.
func (s *Set) Addr(def *hclconfig.Listener) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sk, ok := s.socks[keyOf(def)]
	if !ok {
		return ""
	}
	if sk.addr != "" {
		return sk.addr
	}
	if def.Network == "unix" {
		return "unix:" + def.Address
	}
	host, _, _ := net.SplitHostPort(def.Address)
	return net.JoinHostPort(host, strconv.Itoa(sk.port))
}

// Retain closes every socket that none of live refers to. Instances keep
// their own inherited copies, so closing ours only stops new instances from
// getting it.
func (s *Set) Retain(live []*hclconfig.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := make(map[key]bool, len(live))
	for _, d := range live {
		keep[keyOf(d)] = true
	}
	var drop []key
	for k := range s.socks {
		if !keep[k] {
			drop = append(drop, k)
		}
	}
	s.closeKeysLocked(drop)
}

// Close closes every socket and removes unix socket files.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]key, 0, len(s.socks))
	for k := range s.socks {
		keys = append(keys, k)
	}
	s.closeKeysLocked(keys)
}

func (s *Set) closeKeysLocked(keys []key) {
	for _, k := range keys {
		sk, ok := s.socks[k]
		if !ok {
			continue
		}
		if sk.shared != nil {
			sk.shared.close()
		}
		for _, rs := range sk.slots {
			rs.close()
		}
		for _, rs := range sk.private {
			rs.close()
		}
		if sk.public != nil {
			sk.public.Close()
		}
		if k.network == "unix" && !sk.adopted {
			os.Remove(k.address)
		}
		delete(s.socks, k)
	}
}

// bindRaw opens one listening socket for instances and returns it as a
// bare descriptor. Go's listener does the resolving and binding, then the
// descriptor is duplicated through SyscallConn (not File, which registers
// the copy with the poller) and Go's own is closed, which takes it out of
// the poller: the runner is never woken by connections meant for
// instances. Backlog and O_NONBLOCK are set here, once, before any
// instance holds the socket.
func bindRaw(d *hclconfig.Listener, address string, reuseport bool) (*rawSock, error) {
	ln, port, err := listen(context.Background(), d, address, reuseport)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("cannot duplicate the socket: %w", derr)
	}
	rs := &rawSock{fd: fd, port: port}
	if d.Backlog > 0 {
		// listen(2) on a listening socket updates its backlog in place.
		if err := syscall.Listen(fd, d.Backlog); err != nil {
			rs.close()
			return nil, fmt.Errorf("cannot set backlog %d: %w", d.Backlog, err)
		}
	}
	// Go made the socket non-blocking; instances get it blocking unless the
	// file asks otherwise (systemd's NonBlocking=).
	if err := syscall.SetNonblock(fd, d.NonBlocking); err != nil {
		rs.close()
		return nil, fmt.Errorf("cannot set nonblocking=%v: %w", d.NonBlocking, err)
	}
	return rs, nil
}

// listen binds one socket with Go's listener.
func listen(ctx context.Context, d *hclconfig.Listener, address string, reuseport bool) (net.Listener, int, error) {
	network := d.Network
	if network == "unix" {
		if err := removeStale(address); err != nil {
			return nil, 0, err
		}
	} else {
		network = tcpNetwork(address)
	}
	// Only the runner accepts on a listener made here (proxy and http
	// modes): no TCP keep-alive probes on what it accepts, which saves
	// four setsockopt(2) per connection; http mode closes idle clients
	// itself (idle_timeout), and the proxy takes the socket out of Go's
	// hands anyway.
	lc := &net.ListenConfig{KeepAlive: -1}
	if reuseport {
		lc.Control = beforeBind(setReusePort)
	} else if d.Mode == hclconfig.HTTP && network != "unix" {
		// The runner reads the request of every connection it accepts.
		lc.Control = beforeBind(func(fd uintptr) error { return deferAccept(fd, deferAcceptSecs) })
	}
	ln, err := lc.Listen(ctx, network, address)
	if err != nil {
		if _, p, serr := net.SplitHostPort(address); serr == nil && errors.Is(err, syscall.EADDRINUSE) {
			if n, _ := strconv.Atoi(p); n > 0 {
				err = fmt.Errorf("%w%s", err, proc.InUseBy(n))
			}
		}
		return nil, 0, err
	}
	port := 0
	switch l := ln.(type) {
	case *net.TCPListener:
		port = l.Addr().(*net.TCPAddr).Port
	case *net.UnixListener:
		// Closing Go's copy must leave the path in place.
		l.SetUnlinkOnClose(false)
	}
	return ln, port, nil
}

// beforeBind is a net.ListenConfig.Control that sets an option with set on
// the socket before it is bound.
func beforeBind(set func(fd uintptr) error) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = set(fd) }); err != nil {
			return err
		}
		return serr
	}
}

// deferAcceptSecs is how long the kernel holds a new connection of an http
// listener that has sent nothing (TCP_DEFER_ACCEPT): past it, the
// connection is handed over all the same, and the listener's
// header_timeout applies.
const deferAcceptSecs = 5

// tcpNetwork pins an IP literal to its family: Go would bind "0.0.0.0" as a
// dual-stack IPv6 socket, which is not what a user writing 0.0.0.0 means.
func tcpNetwork(address string) string {
	host, _, err := net.SplitHostPort(address)
	if err != nil || host == "" {
		return "tcp"
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return "tcp"
	case ip.To4() != nil:
		return "tcp4"
	default:
		return "tcp6"
	}
}

// removeStale deletes a unix socket file left by a runner that died, and
// refuses to touch one that something still listens on or that is not a
// socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot tell whether %s is stale: %w", path, err)
	}
	return os.Remove(path)
}
