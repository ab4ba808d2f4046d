package listeners

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/hclconfig"
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
	shared *sockFile
	// slots are the per-instance sockets of a reuseport listener.
	slots map[int]*sockFile
}

// sockFile is an open socket and its descriptor, read once: os.File.Fd
// puts a descriptor the Go poller knows back into blocking mode on every
// call, and O_NONBLOCK belongs to the open file description that every
// instance shares, so calling it at each start would flip the socket under
// the feet of running instances.
type sockFile struct {
	f  *os.File
	fd uintptr
}

// Set is the runner's open listening sockets.
type Set struct {
	socks map[key]*socket
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{socks: make(map[key]*socket)}
}

// Bind opens every listener in defs that is not open yet and updates the
// options of those that are. It is all or nothing: on error the sockets this
// call opened are closed again and the error names the listener.
func (s *Set) Bind(defs []*hclconfig.Listener) error {
	var opened []key
	for _, d := range defs {
		k := keyOf(d)
		if sk, ok := s.socks[k]; ok {
			if err := sk.update(d); err != nil {
				s.closeKeys(opened)
				return fmt.Errorf("listener %q: %w", d.Name, err)
			}
			continue
		}
		sk := &socket{def: d}
		if d.Mode == hclconfig.ReusePort {
			// Bind slot 0 now so the address is proven (and ":0" resolved)
			// before anything starts.
			if _, err := s.slotFile(sk, 0); err != nil {
				s.closeKeys(opened)
				return fmt.Errorf("listener %q: %w", d.Name, err)
			}
		} else {
			f, port, err := s.bind(d, d.Address, false)
			if err != nil {
				s.closeKeys(opened)
				return fmt.Errorf("listener %q: %w", d.Name, err)
			}
			sk.shared, sk.port = f, port
		}
		s.socks[k] = sk
		opened = append(opened, k)
	}
	return nil
}

// update applies option changes to an open socket. The mode cannot change
// in place: a shared and a reuseport socket cannot both hold the address.
func (sk *socket) update(d *hclconfig.Listener) error {
	if d.Mode != sk.def.Mode {
		return fmt.Errorf("cannot change mode from %q to %q while %s is open; restart the runner to change it", sk.def.Mode, d.Mode, d.Address)
	}
	for _, f := range sk.files() {
		if err := setOptions(f, d); err != nil {
			return err
		}
	}
	sk.def = d
	return nil
}

func (sk *socket) files() []*sockFile {
	if sk.shared != nil {
		return []*sockFile{sk.shared}
	}
	fs := make([]*sockFile, 0, len(sk.slots))
	for _, f := range sk.slots {
		fs = append(fs, f)
	}
	return fs
}

// Fds returns the descriptors instance slot of an app gets as fds 3, 4, …,
// one per listener in defs (which must have been bound). Reuseport listeners
// get the slot's own socket, bound on first use.
func (s *Set) Fds(defs []*hclconfig.Listener, slot int) ([]uintptr, error) {
	fds := make([]uintptr, 0, len(defs))
	for _, d := range defs {
		sk, ok := s.socks[keyOf(d)]
		if !ok {
			return nil, fmt.Errorf("listener %q is not bound", d.Name)
		}
		f := sk.shared
		if f == nil {
			var err error
			if f, err = s.slotFile(sk, slot); err != nil {
				return nil, fmt.Errorf("listener %q, slot %d: %w", d.Name, slot, err)
			}
		}
		fds = append(fds, f.fd)
	}
	return fds, nil
}

func (s *Set) slotFile(sk *socket, slot int) (*sockFile, error) {
	if f, ok := sk.slots[slot]; ok {
		return f, nil
	}
	addr := sk.def.Address
	if sk.port != 0 {
		host, _, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(host, strconv.Itoa(sk.port))
	}
	f, port, err := s.bind(sk.def, addr, true)
	if err != nil {
		return nil, err
	}
	if sk.slots == nil {
		sk.slots = make(map[int]*sockFile)
	}
	sk.slots[slot] = f
	sk.port = port
	return f, nil
}

// ReleaseSlot closes a reuseport listener's socket for slot. The kernel
// keeps routing connections to a reuseport socket nobody accepts on, so a
// slot that is gone (scaled down, failed) must give its socket back.
func (s *Set) ReleaseSlot(defs []*hclconfig.Listener, slot int) {
	for _, d := range defs {
		sk, ok := s.socks[keyOf(d)]
		if !ok || sk.slots == nil || len(sk.slots) == 1 {
			continue // the last slot socket keeps the port reserved
		}
		if f, ok := sk.slots[slot]; ok {
			f.f.Close()
			delete(sk.slots, slot)
		}
	}
}

// Env returns the socket-activation variables for an instance receiving
// defs, and PORT (the first TCP listener's port), if any.
func (s *Set) Env(defs []*hclconfig.Listener) []string {
	if len(defs) == 0 {
		return nil
	}
	names := make([]string, len(defs))
	port := 0
	for i, d := range defs {
		names[i] = d.Name
		if sk, ok := s.socks[keyOf(d)]; ok && port == 0 {
			port = sk.port
		}
	}
	env := []string{
		"LISTEN_FDS=" + strconv.Itoa(len(defs)),
		"LISTEN_FDNAMES=" + strings.Join(names, ":"),
	}
	if port != 0 {
		env = append(env, "PORT="+strconv.Itoa(port))
	}
	return env
}

// Addr returns where def is listening, with ":0" resolved ("127.0.0.1:43121",
// "unix:/run/app.sock"), or "" if it is not bound.
func (s *Set) Addr(def *hclconfig.Listener) string {
	sk, ok := s.socks[keyOf(def)]
	if !ok {
		return ""
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
	s.closeKeys(drop)
}

// Close closes every socket and removes unix socket files.
func (s *Set) Close() {
	keys := make([]key, 0, len(s.socks))
	for k := range s.socks {
		keys = append(keys, k)
	}
	s.closeKeys(keys)
}

func (s *Set) closeKeys(keys []key) {
	for _, k := range keys {
		sk, ok := s.socks[k]
		if !ok {
			continue
		}
		for _, f := range sk.files() {
			f.f.Close()
		}
		if k.network == "unix" {
			os.Remove(k.address)
		}
		delete(s.socks, k)
	}
}

// bind opens one listening socket and returns it as a blocking-by-default
// file the runner never accepts on.
func (s *Set) bind(d *hclconfig.Listener, address string, reuseport bool) (*sockFile, int, error) {
	network := d.Network
	if network == "unix" {
		if err := removeStale(address); err != nil {
			return nil, 0, err
		}
	} else {
		network = tcpNetwork(address)
	}
	lc := &net.ListenConfig{}
	if reuseport {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setReusePort(fd) }); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, 0, err
	}
	var f *os.File
	port := 0
	switch l := ln.(type) {
	case *net.TCPListener:
		port = l.Addr().(*net.TCPAddr).Port
		f, err = l.File()
	case *net.UnixListener:
		// Our copy of the socket is closed below; the path must stay.
		l.SetUnlinkOnClose(false)
		f, err = l.File()
	default:
		err = fmt.Errorf("unexpected listener type %T", ln)
	}
	ln.Close()
	if err != nil {
		return nil, 0, err
	}
	sf := &sockFile{f: f, fd: f.Fd()}
	if err := setOptions(sf, d); err != nil {
		f.Close()
		return nil, 0, err
	}
	return sf, port, nil
}

func setOptions(sf *sockFile, d *hclconfig.Listener) error {
	fd := int(sf.fd)
	if d.Backlog > 0 {
		// listen(2) on a listening socket updates its backlog in place.
		if err := syscall.Listen(fd, d.Backlog); err != nil {
			return fmt.Errorf("cannot set backlog %d: %w", d.Backlog, err)
		}
	}
	// O_NONBLOCK lives on the open file description, shared by every
	// instance holding the socket, so it is set once here.
	if err := syscall.SetNonblock(fd, d.NonBlocking); err != nil {
		return fmt.Errorf("cannot set nonblocking=%v: %w", d.NonBlocking, err)
	}
	return nil
}

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
