package listeners

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
	"golang.org/x/sys/unix"
)

func tcp(name, addr string, mode hclconfig.Mode) *hclconfig.Listener {
	return &hclconfig.Listener{Name: name, Network: "tcp", Address: addr, Mode: mode}
}

func portOf(t *testing.T, s *Set, d *hclconfig.Listener) int {
	t.Helper()
	_, p, err := net.SplitHostPort(s.Addr(d))
	if err != nil {
		t.Fatalf("Addr(%s) = %q: %v", d.Name, s.Addr(d), err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// dialable reports whether a connection to the listener's address is
// accepted by the kernel (queued on the socket).
func dialable(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestSharedListener(t *testing.T) {
	s := NewSet()
	defer s.Close()
	http := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	admin := tcp("admin", "127.0.0.1:0", hclconfig.Shared)
	if err := s.Bind([]*hclconfig.Listener{http, admin}); err != nil {
		t.Fatal(err)
	}
	port := portOf(t, s, http)
	if port == 0 || !dialable(s.Addr(http)) {
		t.Fatalf("http listener %s does not accept connections", s.Addr(http))
	}
	a, err := s.Fds([]*hclconfig.Listener{http, admin}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Fds([]*hclconfig.Listener{http, admin}, 7)
	if len(a) != 2 || a[0] != b[0] || a[1] != b[1] || a[0] == a[1] {
		t.Fatalf("shared fds for slots 0 and 7: %v %v; want the same two", a, b)
	}
	env := strings.Join(s.Env([]*hclconfig.Listener{http, admin}), " ")
	want := "LISTEN_FDS=2 LISTEN_FDNAMES=http:admin PORT=" + strconv.Itoa(port)
	if env != want {
		t.Errorf("Env = %q, want %q", env, want)
	}
	if pm := s.PortMap([]*hclconfig.Listener{http, admin}); pm != strconv.Itoa(port)+"=3,"+strconv.Itoa(portOf(t, s, admin))+"=4" {
		t.Errorf("PortMap = %q", pm)
	}
	// The socket is handed over in blocking mode unless asked otherwise.
	if fl, _ := unix.FcntlInt(a[0], unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
		t.Error("shared socket is non-blocking by default")
	}
	// A rebind of the same definitions keeps the same socket and port.
	if err := s.Bind([]*hclconfig.Listener{http, admin}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Fds([]*hclconfig.Listener{http}, 0); c[0] != a[0] || portOf(t, s, http) != port {
		t.Error("rebinding an unchanged listener opened a new socket")
	}
}

func TestNonBlockingOption(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	d.NonBlocking = true
	if err := s.Bind([]*hclconfig.Listener{d}); err != nil {
		t.Fatal(err)
	}
	fds, _ := s.Fds([]*hclconfig.Listener{d}, 0)
	if fl, _ := unix.FcntlInt(fds[0], unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("nonblocking = true did not set O_NONBLOCK")
	}
	// Handing it out again must not flip it back (os.File.Fd would).
	fds, _ = s.Fds([]*hclconfig.Listener{d}, 1)
	if fl, _ := unix.FcntlInt(fds[0], unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("Fds flipped the socket back to blocking")
	}
}

func TestReusePortSlots(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.ReusePort)
	if err := s.Bind([]*hclconfig.Listener{d}); err != nil {
		t.Fatal(err)
	}
	port := portOf(t, s, d)
	f0, err := s.Fds([]*hclconfig.Listener{d}, 0)
	if err != nil {
		t.Fatal(err)
	}
	f1, err := s.Fds([]*hclconfig.Listener{d}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f0[0] == f1[0] {
		t.Fatal("two reuseport slots got the same socket")
	}
	for _, fd := range []uintptr{f0[0], f1[0]} {
		sa, err := unix.Getsockname(int(fd))
		if err != nil || sa.(*unix.SockaddrInet4).Port != port {
			t.Errorf("slot socket fd %d bound to %v, want port %d", fd, sa, port)
		}
	}
	s.ReleaseSlot([]*hclconfig.Listener{d}, 1)
	if _, err := unix.Getsockname(int(f1[0])); err == nil {
		t.Error("released slot socket is still open")
	}
	// The last slot socket keeps the port.
	s.ReleaseSlot([]*hclconfig.Listener{d}, 0)
	if !dialable(s.Addr(d)) {
		t.Error("releasing the last slot closed the port")
	}
}

func TestBindIsAllOrNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s := NewSet()
	defer s.Close()
	ok := tcp("ok", "127.0.0.1:0", hclconfig.Shared)
	taken := tcp("taken", busy.Addr().String(), hclconfig.Shared)
	err = s.Bind([]*hclconfig.Listener{ok, taken})
	if err == nil || !strings.Contains(err.Error(), `listener "taken"`) {
		t.Fatalf("Bind with a taken address: %v", err)
	}
	if s.Addr(ok) != "" {
		t.Error("a failed Bind left the other listener open")
	}
}

func TestModeCannotChangeInPlace(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	if err := s.Bind([]*hclconfig.Listener{d}); err != nil {
		t.Fatal(err)
	}
	d2 := tcp("http", "127.0.0.1:0", hclconfig.ReusePort)
	if err := s.Bind([]*hclconfig.Listener{d2}); err == nil || !strings.Contains(err.Error(), "cannot change mode") {
		t.Fatalf("mode change: %v", err)
	}
}

func TestRetainClosesUnused(t *testing.T) {
	s := NewSet()
	defer s.Close()
	a, b := tcp("a", "127.0.0.1:0", hclconfig.Shared), tcp("b", "127.0.0.1:0", hclconfig.Shared)
	if err := s.Bind([]*hclconfig.Listener{a, b}); err != nil {
		t.Fatal(err)
	}
	addrB := s.Addr(b)
	s.Retain([]*hclconfig.Listener{a})
	if s.Addr(b) != "" || dialable(addrB) {
		t.Error("Retain left an unused listener open")
	}
	if !dialable(s.Addr(a)) {
		t.Error("Retain closed a listener still in use")
	}
}

func TestUnixStaleSocketIsReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.sock")
	// A socket file left behind by a dead process: bound, then closed
	// without unlinking.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	s := NewSet()
	d := &hclconfig.Listener{Name: "u", Network: "unix", Address: path, Mode: hclconfig.Shared}
	if err := s.Bind([]*hclconfig.Listener{d}); err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("new unix listener does not accept: %v", err)
	} else {
		c.Close()
	}
	if s.Addr(d) != "unix:"+path {
		t.Errorf("Addr = %q", s.Addr(d))
	}
	// A live one is not touched.
	s2 := NewSet()
	if err := s2.Bind([]*hclconfig.Listener{d}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("binding over a live socket: %v", err)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("Close left the socket file")
	}
	// A regular file is refused.
	os.WriteFile(path, []byte("x"), 0o644)
	if err := NewSet().Bind([]*hclconfig.Listener{d}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("binding over a regular file: %v", err)
	}
}

func TestTCPNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:80": "tcp4", "127.0.0.1:0": "tcp4", "[::1]:80": "tcp6", "[::]:80": "tcp6", ":80": "tcp", "localhost:80": "tcp",
	} {
		if got := tcpNetwork(in); got != want {
			t.Errorf("tcpNetwork(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShimArgs(t *testing.T) {
	got := ShimArgs("/bin/clusterrun", "/usr/bin/node", []string{"node", "server.js"})
	want := []string{"/bin/clusterrun", ShimArg, "/usr/bin/node", "node", "server.js"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ShimArgs = %q", got)
	}
}
