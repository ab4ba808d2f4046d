package listeners

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// inode identifies the socket behind a descriptor.
func inode(t *testing.T, fd uintptr) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	return st.Ino
}

func bind(t *testing.T, s *Set, defs ...*hclconfig.Listener) {
	t.Helper()
	if _, err := s.Bind(defs); err != nil {
		t.Fatal(err)
	}
}

func grant(t *testing.T, s *Set, defs []*hclconfig.Listener, index, private int) *Grant {
	t.Helper()
	g, err := s.Grant("web", defs, index, private)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func TestSharedListener(t *testing.T) {
	s := NewSet()
	defer s.Close()
	http := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	admin := tcp("admin", "127.0.0.1:0", hclconfig.Shared)
	bind(t, s, http, admin)
	port := portOf(t, s, http)
	if port == 0 || !dialable(s.Addr(http)) {
		t.Fatalf("http listener %s does not accept connections", s.Addr(http))
	}
	both := []*hclconfig.Listener{http, admin}
	a, b := grant(t, s, both, 0, 0), grant(t, s, both, 7, 0)
	if len(a.Files) != 2 || inode(t, a.Files[0]) != inode(t, b.Files[0]) || inode(t, a.Files[1]) != inode(t, b.Files[1]) ||
		inode(t, a.Files[0]) == inode(t, a.Files[1]) {
		t.Fatalf("shared sockets for instances 0 and 7 differ, or both listeners got one socket")
	}
	if a.Files[0] == b.Files[0] {
		t.Error("two grants share a descriptor; each must have its own duplicate")
	}
	env := strings.Join(a.Env, " ")
	want := "LISTEN_FDS=2 LISTEN_FDNAMES=http:admin PORT=" + strconv.Itoa(port) +
		" CLUSTERRUN_LISTEN_PORTS=" + strconv.Itoa(port) + "=3," + strconv.Itoa(portOf(t, s, admin)) + "=4"
	if env != want {
		t.Errorf("Env = %q, want %q", env, want)
	}
	// The socket is handed over in blocking mode unless asked otherwise.
	if fl, _ := unix.FcntlInt(a.Files[0], unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
		t.Error("shared socket is non-blocking by default")
	}
	// A rebind of the same definitions keeps the same socket and port.
	bind(t, s, http, admin)
	if c := grant(t, s, []*hclconfig.Listener{http}, 0, 0); inode(t, c.Files[0]) != inode(t, a.Files[0]) || portOf(t, s, http) != port {
		t.Error("rebinding an unchanged listener opened a new socket")
	}
	fd0 := a.Files[0]
	a.Close()
	if _, err := unix.FcntlInt(fd0, unix.F_GETFD, 0); err == nil {
		t.Error("Grant.Close left its duplicate open")
	}
}

// TestReloadNeverTouchesHeldSocket: O_NONBLOCK belongs to the open file
// description every instance shares. An asyncio server sets it on its
// inherited socket; a reload that set it back to the file's value left the
// event loop blocked in accept(2).
func TestReloadNeverTouchesHeldSocket(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	bind(t, s, d)
	g := grant(t, s, []*hclconfig.Listener{d}, 0, 0)
	// What the instance does with its inherited copy.
	if err := unix.SetNonblock(int(g.Files[0]), true); err != nil {
		t.Fatal(err)
	}
	// A reload with the same file, then one that changes the options.
	bind(t, s, d)
	d2 := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	d2.Backlog = 7
	warn, err := s.Bind([]*hclconfig.Listener{d2})
	if err != nil || len(warn) != 1 || !strings.Contains(warn[0], "when the runner restarts") {
		t.Errorf("changed options: warnings %q, error %v; want one warning", warn, err)
	}
	if fl, _ := unix.FcntlInt(g.Files[0], unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("a reload cleared O_NONBLOCK on a socket an instance holds")
	}
}

func TestNonBlockingOption(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	d.NonBlocking = true
	bind(t, s, d)
	g := grant(t, s, []*hclconfig.Listener{d}, 0, 0)
	if fl, _ := unix.FcntlInt(g.Files[0], unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("nonblocking = true did not set O_NONBLOCK")
	}
	g = grant(t, s, []*hclconfig.Listener{d}, 1, 0)
	if fl, _ := unix.FcntlInt(g.Files[0], unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("a second grant flipped the socket back to blocking")
	}
}

// TestSharedSocketOutsidePoller: the runner must not be woken by
// connections meant for its instances, so no socket it shares may be
// registered with Go's epoll set (where os.NewFile would put it).
func TestSharedSocketOutsidePoller(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.Shared)
	r := tcp("rp", "127.0.0.1:0", hclconfig.ReusePort)
	bind(t, s, d, r)
	g := grant(t, s, []*hclconfig.Listener{d, r}, 0, 0)
	ours := map[uint64]bool{inode(t, g.Files[0]): true, inode(t, g.Files[1]): true}
	// Make sure the poller exists and holds something.
	c, err := net.Dial("tcp", s.Addr(d))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tfd := range epollTargets(t) {
		var st unix.Stat_t
		if unix.Fstat(tfd, &st) == nil && ours[st.Ino] {
			t.Errorf("fd %d, a socket shared with instances, is registered with the runner's epoll set", tfd)
		}
	}
}

// epollTargets lists the descriptors registered with this process's epoll
// sets, from /proc/self/fdinfo.
func epollTargets(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		link, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if link != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && f[0] == "tfd:" {
				if n, err := strconv.Atoi(f[1]); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("found no epoll registrations at all; the check would prove nothing")
	}
	return out
}

func TestReusePortSlots(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.ReusePort)
	bind(t, s, d)
	port := portOf(t, s, d)
	f0 := grant(t, s, []*hclconfig.Listener{d}, 0, 0).Files[0]
	f1 := grant(t, s, []*hclconfig.Listener{d}, 1, 0).Files[0]
	if inode(t, f0) == inode(t, f1) {
		t.Fatal("two reuseport slots got the same socket")
	}
	for _, fd := range []uintptr{f0, f1} {
		sa, err := unix.Getsockname(int(fd))
		if err != nil || sa.(*unix.SockaddrInet4).Port != port {
			t.Errorf("slot socket fd %d bound to %v, want port %d", fd, sa, port)
		}
	}
	ino1 := inode(t, f1)
	s.ReleaseSlot("web", []*hclconfig.Listener{d}, 1)
	if inode(t, grant(t, s, []*hclconfig.Listener{d}, 1, 0).Files[0]) == ino1 {
		t.Error("a released slot's socket was handed out again")
	}
	// The last slot socket keeps the port.
	s.ReleaseSlot("web", []*hclconfig.Listener{d}, 0)
	s.ReleaseSlot("web", []*hclconfig.Listener{d}, 1)
	if !dialable(s.Addr(d)) {
		t.Error("releasing the last slot closed the port")
	}
}

// TestProxyPrivateSockets: in proxy mode the runner accepts on the public
// socket, and each instance gets a private loopback socket, bound but not
// listening, so that an app may either listen on fd 3 or bind PORT itself.
func TestProxyPrivateSockets(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.Proxy)
	bind(t, s, d)
	if s.Public(d) == nil || !dialable(s.Addr(d)) {
		t.Fatal("no public listener for a proxy listener")
	}
	defs := []*hclconfig.Listener{d}
	g0 := grant(t, s, defs, 0, 0)
	g0b := grant(t, s, defs, 0, 1)
	g1 := grant(t, s, defs, 1, 0)
	addr := g0.Addrs["http"]
	if addr == "" || addr == g0b.Addrs["http"] || addr == g1.Addrs["http"] {
		t.Fatalf("private addresses %q %q %q; want three different ones", addr, g0b.Addrs["http"], g1.Addrs["http"])
	}
	if again := grant(t, s, defs, 0, 0); again.Addrs["http"] != addr {
		t.Errorf("the same slot socket moved from %s to %s", addr, again.Addrs["http"])
	}
	if !strings.Contains(strings.Join(g0.Env, " "), "PORT="+strings.TrimPrefix(addr, "127.0.0.1:")) {
		t.Errorf("PORT is not the private port: %q", g0.Env)
	}
	// The Node preload maps listen(PORT) onto the private socket (fd 3),
	// which is on loopback only.
	if want := "CLUSTERRUN_LISTEN_PORTS=" + strings.TrimPrefix(addr, "127.0.0.1:") + "=3"; !slices.Contains(g0.Env, want) {
		t.Errorf("the Node preload does not map PORT onto fd 3: %q lacks %s", g0.Env, want)
	}
	if dialable(addr) {
		t.Fatal("a private socket accepts connections before any instance listens")
	}
	// An app that binds PORT itself (Go's net.Listen sets SO_REUSEADDR).
	own, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("an app cannot bind its own PORT next to the runner's private socket: %v", err)
	}
	if !dialable(addr) {
		t.Error("the app's own listener does not accept")
	}
	own.Close()
	// An app that listens on fd 3 instead, and exits: Unlisten frees the
	// port again for the next process of the slot.
	if err := unix.Listen(int(g0.Files[0]), 16); err != nil {
		t.Fatalf("listen on the private fd: %v", err)
	}
	if !dialable(addr) {
		t.Fatal("listening on fd 3 does not accept")
	}
	s.Unlisten("web", d, 0, 0)
	if dialable(addr) {
		t.Error("Unlisten left the private socket listening")
	}
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Errorf("after Unlisten the next process cannot bind PORT: %v", err)
	} else {
		l.Close()
	}
	// The next process of the slot listens on fd 3 again, on the same
	// port: the proxy dials the address it was given, not whatever port a
	// second listen(2) would pick.
	again := grant(t, s, defs, 0, 0)
	if err := unix.Listen(int(again.Files[0]), 16); err != nil {
		t.Fatalf("listen on the private fd after Unlisten: %v", err)
	}
	if sa, err := unix.Getsockname(int(again.Files[0])); err != nil {
		t.Fatal(err)
	} else if got := "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port); got != addr {
		t.Errorf("after Unlisten, listen(2) on fd 3 is on %s, not the slot's %s", got, addr)
	}
	if !dialable(addr) {
		t.Error("the slot's address does not accept after a second listen on fd 3")
	}
	s.Unlisten("web", d, 0, 0)
	ino := inode(t, g1.Files[0])
	s.ReleaseSlot("web", defs, 1)
	if inode(t, grant(t, s, defs, 1, 0).Files[0]) == ino {
		t.Error("ReleaseSlot kept the private socket")
	}
}

// A private socket's port is the slot's on every address: an app that
// binds PORT on all of them (python3 -m http.server binds ::) can, and
// nothing else on the machine can take the port on another address
// meanwhile (a client bound to 127.0.0.5, say), which would make every
// start of the slot fail with EADDRINUSE.
func TestPrivatePortHeldOnEveryAddress(t *testing.T) {
	s := NewSet()
	defer s.Close()
	d := tcp("http", "127.0.0.1:0", hclconfig.Proxy)
	bind(t, s, d)
	g := grant(t, s, []*hclconfig.Listener{d}, 0, 0)
	_, port, _ := net.SplitHostPort(g.Addrs["http"])
	// Another process's socket on another loopback address (no
	// SO_REUSEADDR, as a client's bind has none).
	other, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	n, _ := strconv.Atoi(port)
	if err := unix.Bind(other, &unix.SockaddrInet4{Port: n, Addr: [4]byte{127, 0, 0, 5}}); err == nil {
		t.Errorf("a socket took the slot's port %d on 127.0.0.5", n)
	}
	// The app itself binds every address (with SO_REUSEADDR, as servers do).
	for _, addr := range []string{"[::]:" + port, "0.0.0.0:" + port} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if strings.Contains(err.Error(), "address family not supported") {
				continue // no IPv6 here
			}
			t.Errorf("the app cannot listen on %s, its PORT on every address: %v", addr, err)
			continue
		}
		l.Close()
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
	_, err = s.Bind([]*hclconfig.Listener{ok, taken})
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
	bind(t, s, d)
	d2 := tcp("http", "127.0.0.1:0", hclconfig.ReusePort)
	if _, err := s.Bind([]*hclconfig.Listener{d2}); err == nil || !strings.Contains(err.Error(), "cannot change mode") {
		t.Fatalf("mode change: %v", err)
	}
}

func TestRetainClosesUnused(t *testing.T) {
	s := NewSet()
	defer s.Close()
	a, b := tcp("a", "127.0.0.1:0", hclconfig.Shared), tcp("b", "127.0.0.1:0", hclconfig.Shared)
	bind(t, s, a, b)
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
	if _, err := s.Bind([]*hclconfig.Listener{d}); err != nil {
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
	if _, err := s2.Bind([]*hclconfig.Listener{d}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("binding over a live socket: %v", err)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("Close left the socket file")
	}
	// A regular file is refused.
	os.WriteFile(path, []byte("x"), 0o644)
	if _, err := NewSet().Bind([]*hclconfig.Listener{d}); err == nil || !strings.Contains(err.Error(), "not a socket") {
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
