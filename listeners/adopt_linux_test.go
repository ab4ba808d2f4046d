package listeners

import (
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"golang.org/x/sys/unix"
)

// passed makes a socket as a socket unit would, listening unless listen is
// false, and returns its descriptor, outside Go's poller.
func passed(t *testing.T, family, typ int, sa unix.Sockaddr, listen, nonblocking bool) int {
	t.Helper()
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if listen {
		if err := unix.Listen(fd, 16); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.SetNonblock(fd, nonblocking); err != nil {
		t.Fatal(err)
	}
	return fd
}

func loopback4() unix.Sockaddr { return &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}} }

func nonblock(t *testing.T, fd int) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.O_NONBLOCK != 0
}

func activationOf(fds map[string]int) *Activation {
	a := &Activation{}
	for name, fd := range fds {
		a.socks = append(a.socks, &inherited{fd: fd, name: name})
	}
	return a
}

// A shared listener named like a passed socket takes it: instances get
// that very socket, its O_NONBLOCK untouched either way, and no other
// socket is bound.
func TestAdoptSharedKeepsTheUnitsOptions(t *testing.T) {
	for _, nb := range []bool{false, true} {
		fd := passed(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), true, nb)
		s := NewSet()
		s.Adopt(activationOf(map[string]int{"http": fd}))
		d := tcp("http", "127.0.0.1:0", hclconfig.Shared)
		d.NonBlocking = nb
		warnings, err := s.Bind([]*hclconfig.Listener{d})
		if err != nil || len(warnings) != 0 {
			t.Fatalf("Bind: %v %q", err, warnings)
		}
		if w := s.DropUnclaimed(); len(w) != 0 {
			t.Errorf("DropUnclaimed after the socket was taken: %q", w)
		}
		g := grant(t, s, []*hclconfig.Listener{d}, 0, 0)
		if inode(t, g.Files[0]) != inode(t, uintptr(fd)) {
			t.Errorf("the instance got another socket than the one passed")
		}
		if nonblock(t, fd) != nb {
			t.Errorf("O_NONBLOCK of the passed socket changed to %v", !nb)
		}
		sa, _ := unix.Getsockname(fd)
		if got, want := s.Addr(d), "127.0.0.1:"+strconv.Itoa(sa.(*unix.SockaddrInet4).Port); got != want {
			t.Errorf("Addr = %q, want %q", got, want)
		}
		if !strings.Contains(strings.Join(g.Env, " "), "PORT="+strconv.Itoa(sa.(*unix.SockaddrInet4).Port)) {
			t.Errorf("Grant env %q lacks the socket's PORT", g.Env)
		}
		g.Close()
		s.Close()
	}
}

// "systemd:NAME" takes the socket of that name whatever the listener is
// called, a unix one included, and leaves its file to the unit.
func TestAdoptBySystemdNameUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.sock")
	fd := passed(t, unix.AF_UNIX, unix.SOCK_STREAM, &unix.SockaddrUnix{Name: path}, true, false)
	s := NewSet()
	s.Adopt(activationOf(map[string]int{"web.socket": fd}))
	d := &hclconfig.Listener{Name: "http", Network: hclconfig.NetworkSystemd, Address: "web.socket", Mode: hclconfig.Shared}
	bind(t, s, d)
	if got := s.Addr(d); got != "unix:"+path {
		t.Errorf("Addr = %q", got)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the adopted socket does not take connections: %v", err)
	}
	c.Close()
	s.Close()
	if _, err := unix.Getsockname(fd); err == nil {
		t.Errorf("Close left the adopted descriptor open")
	}
	if _, err := net.Dial("unix", path); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("after Close, dial: %v (the socket file is the unit's: it stays, refusing)", err)
	}
}

// A proxy listener accepts on the passed socket itself (non-blocking, as
// only the runner accepts on it), and Close ends a waiting Accept.
func TestAdoptProxyAccepts(t *testing.T) {
	fd := passed(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), true, false)
	s := NewSet()
	s.Adopt(activationOf(map[string]int{"web": fd}))
	d := tcp("web", "127.0.0.1:0", hclconfig.Proxy)
	bind(t, s, d)
	ln := s.Public(d)
	if ln == nil {
		t.Fatal("no public listener")
	}
	if !nonblock(t, fd) {
		t.Errorf("the proxy's passed socket is blocking")
	}
	go func() {
		c, err := net.Dial("tcp", s.Addr(d))
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("accepted a %T, want *net.TCPConn (the proxy splices)", c)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hi" {
		t.Errorf("read %q", b)
	}
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	time.Sleep(10 * time.Millisecond) // let Accept reach poll; it must end either way
	s.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Accept within 10s")
	}
}

// What is refused: not listening, not a stream, the wrong family, a
// systemd:NAME that was not passed; and a socket no
// listener takes is closed with a warning.
func TestAdoptRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		fd   func() int
		def  *hclconfig.Listener
		want string
	}{
		{"not listening", func() int { return passed(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), false, false) },
			tcp("http", "127.0.0.1:0", hclconfig.Shared), "not listening"},
		{"datagram", func() int { return passed(t, unix.AF_INET, unix.SOCK_DGRAM, loopback4(), false, false) },
			tcp("http", "127.0.0.1:0", hclconfig.Shared), "not a stream socket"},
		{"family", func() int {
			return passed(t, unix.AF_UNIX, unix.SOCK_STREAM, &unix.SockaddrUnix{Name: filepath.Join(t.TempDir(), "s")}, true, false)
		}, tcp("http", "127.0.0.1:0", hclconfig.Shared), "is a unix socket"},
		{"ipv4 for ipv6", func() int { return passed(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), true, false) },
			tcp("http", "[::1]:0", hclconfig.Shared), "is a tcp4 socket"},
	} {
		fd := tc.fd()
		s := NewSet()
		s.Adopt(activationOf(map[string]int{"http": fd}))
		_, err := s.Bind([]*hclconfig.Listener{tc.def})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Bind error %v, want %q", tc.name, err, tc.want)
		}
		if w := s.DropUnclaimed(); len(w) != 1 || !strings.Contains(w[0], `"http"`) {
			t.Errorf("%s: DropUnclaimed %q", tc.name, w)
		}
		if _, err := unix.Getsockname(fd); err == nil {
			t.Errorf("%s: the refused socket is still open after DropUnclaimed", tc.name)
		}
		s.Close()
	}
	s := NewSet()
	_, err := s.Bind([]*hclconfig.Listener{{Name: "http", Network: hclconfig.NetworkSystemd, Address: "web", Mode: hclconfig.Shared}})
	if err == nil || !strings.Contains(err.Error(), "not started with a socket of that name") {
		t.Errorf("systemd:web without activation: %v", err)
	}
}

// A passed socket on another port than the file says is used, with a
// warning; so is a blocking one for a nonblocking listener.
func TestAdoptWarnings(t *testing.T) {
	fd := passed(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), true, false)
	s := NewSet()
	defer s.Close()
	s.Adopt(activationOf(map[string]int{"http": fd}))
	d := tcp("http", "127.0.0.1:1", hclconfig.Shared)
	d.NonBlocking = true
	warnings, err := s.Bind([]*hclconfig.Listener{d})
	if err != nil || len(warnings) != 2 || !strings.Contains(warnings[0], "not on 127.0.0.1:1") || !strings.Contains(warnings[1], "NonBlocking=yes") {
		t.Errorf("Bind: %v %q", err, warnings)
	}
	if nonblock(t, fd) {
		t.Errorf("the passed socket was made non-blocking")
	}
}

func TestActivatedEnv(t *testing.T) {
	for _, tc := range []struct {
		vals map[string]string
		err  string
	}{
		{vals: map[string]string{}},
		{vals: map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "1"}},    // another process's
		{vals: map[string]string{"LISTEN_FDS": "2"}},                       // no LISTEN_PID: not ours
		{vals: map[string]string{"LISTEN_FDS": "0", "LISTEN_PID": "4242"}}, // nothing passed
		{vals: map[string]string{"LISTEN_FDS": "x", "LISTEN_PID": "4242"}, err: "not a number"},
		{vals: map[string]string{"LISTEN_FDS": "99999", "LISTEN_PID": "4242"}, err: "not a number"},
		{vals: map[string]string{"LISTEN_FDS": "2", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "a"}, err: "names 1 sockets"},
	} {
		a, err := activated(tc.vals, 4242)
		if a != nil || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: %v %v, want error %q", tc.vals, a, err, tc.err)
		}
	}
}

// A reuseport listener shares the one passed socket among its instances.
func TestAdoptReusePortShares(t *testing.T) {
	fd := passed(t, unix.AF_INET, unix.SOCK_STREAM, loopback4(), true, false)
	s := NewSet()
	defer s.Close()
	s.Adopt(activationOf(map[string]int{"http": fd}))
	d := tcp("http", "127.0.0.1:0", hclconfig.ReusePort)
	warnings, err := s.Bind([]*hclconfig.Listener{d})
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "every instance shares it") {
		t.Fatalf("Bind: %v %q", err, warnings)
	}
	for i := range 2 {
		g := grant(t, s, []*hclconfig.Listener{d}, i, 0)
		if inode(t, g.Files[0]) != inode(t, uintptr(fd)) {
			t.Errorf("instance %d got a socket of its own", i)
		}
		g.Close()
	}
}
