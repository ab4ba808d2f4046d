//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The proxy process runs under strace while a client makes keep-alive
// exchanges through it: each exchange must cost the proxy one read and one
// send each way, and nothing more in the common case (no read that says
// EAGAIN, no epoll_ctl, no splice). The runtime's own futex and nanosleep
// calls follow the clock, not the exchanges: they are logged, not bounded.
// That is the design's whole cost: what haproxy pays per request, and half
// of what goroutines with splice pipes paid.
func TestSyscallsPerExchange(t *testing.T) {
	strace := straceOrSkip(t)
	trace := filepath.Join(t.TempDir(), "strace.out")
	s := startServer(t, "e", greetEcho)
	pp := startProxyProcess(t, []Backend{s.backend(1)}, strace, "-f", "--seccomp-bpf", "-o", trace,
		"-e", "trace=read,write,recvfrom,sendto,readv,writev,splice,epoll_ctl,futex,nanosleep,sched_yield")

	c := dial(t, pp.addr)
	greeting(t, c)
	const exchanges = 1000
	msg := strings.Repeat("x", 100)
	for i := range exchanges {
		if err := roundTrip(c, msg); err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
	}
	c.Close()
	pp.stop()

	all := countTrace(t, trace)
	// The loop's thread is the one that moved the bytes. The runtime's own
	// threads sleep and wake on their own clock (sysmon's nanosleep, GC
	// workers' futex): on a busy machine the exchanges take longer and
	// those calls grow with the time taken, not with the exchanges, so
	// they are not the loop's cost.
	loop, most := "", -1
	for tid, c := range all {
		if tid != "" && c["read"] > most {
			loop, most = tid, c["read"]
		}
	}
	calls := all[loop]
	t.Logf("%d exchanges of 100 bytes each way, on the loop's thread (%s): %v; every thread: %v", exchanges, loop, calls, all[""])
	// A few calls of the runtime and the helper's own stdin come on top:
	// a small allowance, nothing per exchange.
	const slack = 50
	for _, want := range []struct {
		call string
		max  int
	}{
		{"read", 2*exchanges + slack},
		{"sendto", 2*exchanges + slack},
		{"read EAGAIN", exchanges / 20},
		{"epoll_ctl", slack},
		{"splice", 0},
	} {
		if n := calls[want.call]; n > want.max {
			t.Errorf("%d calls to %s for %d exchanges, want at most %d", n, want.call, exchanges, want.max)
		}
	}
}

// straceOrSkip returns strace's path, or skips the test where it cannot
// trace.
func straceOrSkip(t *testing.T) string {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed: cannot watch the proxy's system calls (apt-get install strace)")
	}
	if out, err := exec.Command(strace, "-f", "-o", "/dev/null", "true").CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here (ptrace not permitted?): %v: %s", err, out)
	}
	return strace
}

var (
	straceCall    = regexp.MustCompile(`^(\d+)\s+(\w+)\(.*\)\s+=\s+(-?\d+)( E\w+)?`)
	straceResumed = regexp.MustCompile(`^(\d+)\s+<\.\.\. (\w+) resumed>.*\)\s+=\s+(-?\d+)( E\w+)?`)
)

// countTrace counts the calls in an strace -f output by thread id and name,
// and those that failed with EAGAIN as "NAME EAGAIN"; thread "" is the sum
// over every thread.
func countTrace(t *testing.T, path string) map[string]map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls := map[string]map[string]int{"": {}}
	count := func(tid, call string) {
		for _, k := range []string{"", tid} {
			if calls[k] == nil {
				calls[k] = map[string]int{}
			}
			calls[k][call]++
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := straceCall.FindStringSubmatch(sc.Text())
		if m == nil {
			m = straceResumed.FindStringSubmatch(sc.Text())
		}
		if m == nil {
			continue
		}
		count(m[1], m[2])
		if strings.TrimSpace(m[4]) == "EAGAIN" {
			count(m[1], m[2]+" EAGAIN")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return calls
}

// hungBackend returns the address of a listener whose accept queue is full,
// so the kernel drops new SYNs and a connect to it times out. Linux lets
// listen(2) shrink the backlog of a listening socket; with a backlog of 0
// one connection fills the queue.
func hungBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil || lerr != nil {
		t.Fatalf("cannot shrink the backlog: %v %v", err, lerr)
	}
	addr := ln.Addr().String()
	for i := range 16 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			if i == 0 {
				t.Fatalf("the first connection to the shrunk listener failed: %v", err)
			}
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("16 connections to a listener with backlog 0 all went through; cannot make a hung backend")
	return ""
}

// A dial that times out is retried on another backend.
func TestConnectTimeoutIsRetried(t *testing.T) {
	hung := Backend{ID: 1, Addr: hungBackend(t)}
	live := startServer(t, "live", greetEcho)
	const timeout = 200 * time.Millisecond
	p := startProxy(t, Options{ConnectTimeout: timeout})
	p.SetBackends([]Backend{hung, live.backend(2)})
	start := time.Now()
	// The first connection stays open on whichever backend it got, so the
	// second one picks the hung backend first whatever the rotation: hung
	// is tried by at least one of them.
	for i := range 2 {
		if got := greeting(t, dial(t, p.addr)); got != "live" {
			t.Fatalf("connection %d went to %q", i, got)
		}
	}
	if el := time.Since(start); el < timeout {
		t.Fatalf("both connections served in %v: the hung backend was never tried", el)
	}
	if p.log.count("connecting to backend 1 at") < 1 || p.log.count("timed out") < 1 {
		t.Fatalf("log does not tell of the timed-out dial:\n%s", p.log)
	}
}

// The proxy's share of the runner's memory: a process that runs only a Proxy
// with 8 backends and 64 open connections, each with bytes flowing both ways
// once.
func TestMemoryWith64Connections(t *testing.T) {
	var bs []Backend
	for i := range 8 {
		s := startServer(t, "s"+strconv.Itoa(i), greetEcho)
		bs = append(bs, s.backend(uint64(i+1)))
	}
	pp := startProxyProcess(t, bs)
	before := pp.stats()
	const conns = 64
	var open []net.Conn
	for i := range conns {
		c := dial(t, pp.addr)
		open = append(open, c)
		greeting(t, c)
		if err := roundTrip(c, "payload "+strings.Repeat("x", 1000)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	after := pp.stats()
	t.Logf("proxy process, idle:           %v", before)
	t.Logf("proxy process, %d connections: %v", conns, after)
	if after["active"] != conns {
		t.Fatalf("the proxy has %d active connections, want %d", after["active"], conns)
	}
	// 2 sockets and 2 splice pipes (4 fds) per connection.
	if d := after["fds"] - before["fds"]; d > 6*conns {
		t.Fatalf("%d more fds for %d connections, want at most 6 each", d, conns)
	}
	// Two goroutines per connection, little heap: the Go-side cost.
	goCost := (after["heap_inuse"] + after["stack_inuse"] - before["heap_inuse"] - before["stack_inuse"]) / conns
	t.Logf("heap+stack per connection: %d bytes; RSS growth per connection: %d KiB", goCost, (after["rss_kb"]-before["rss_kb"])/conns)
	if goCost > 24<<10 {
		t.Fatalf("%d bytes of heap and stack per connection, want at most 24 KiB", goCost)
	}
	if !raceEnabled && after["rss_kb"] > 15<<10 {
		t.Fatalf("proxy process RSS %d KiB with %d connections, over the runner's whole 15 MiB budget", after["rss_kb"], conns)
	}
	for _, c := range open {
		c.Close()
	}
	pp.stop()
}

// listenBacklog returns a loopback listener whose backlog is n, its raw
// socket, which the test accepts from (or not) itself, and what closes it
// (once; also at cleanup).
func listenBacklog(t *testing.T, n int) (string, int, func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeIt := func() { once.Do(func() { syscall.Close(fd) }) }
	t.Cleanup(closeIt)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, n); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)), fd, closeIt
}

// A backend that accepts nothing is never sent more connections than its
// accept queue holds: the next one waits in the proxy, not on a dropped
// SYN, and goes as soon as the backend answers one.
func TestBacklogBoundsWaitingConnections(t *testing.T) {
	addr, lfd, closeListener := listenBacklog(t, 1) // holds 2
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{{ID: 1, Addr: addr}})
	var clients []net.Conn
	for range 3 {
		clients = append(clients, dial(t, p.addr))
	}
	waitFor(t, func() bool { return waitingOn(p.Proxy, 1) == 2 && p.Stats().Queued == 1 },
		"2 connections to wait on the backend and the third in the proxy's queue")
	// The backend takes one and answers it.
	nfd, _, err := syscall.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(nfd)
	if _, err := syscall.Write(nfd, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Stats().Queued == 0 && waitingOn(p.Proxy, 1) == 2 },
		"the queued connection to be forwarded once one was answered")
	got := 0
	for _, c := range clients {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if line, err := readLine(c); err == nil && line == "hello" {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("%d clients got the backend's answer, want 1", got)
	}
	// The backend goes away: what waited in its queue is reset, and the
	// proxy closes those clients.
	closeListener()
	waitFor(t, func() bool { return p.registered() == 1 }, "the connections reset by the backend to end")
}

// A bulk transfer goes by splice (socket to pipe to socket, no copy through
// user space) once a direction has read a full buffer: of 16 MiB each way,
// almost nothing is read into the proxy. The proxy process runs under
// strace, which records every call that moves bytes.
func TestBulkGoesBySplice(t *testing.T) {
	strace := straceOrSkip(t)
	trace := filepath.Join(t.TempDir(), "strace.out")
	s := startServer(t, "e", greetEcho)
	pp := startProxyProcess(t, []Backend{s.backend(1)}, strace, "-f", "--seccomp-bpf", "-o", trace,
		"-e", "trace=splice,read,write,readv,writev,recvfrom,sendto,recvmsg,sendmsg,sendfile,copy_file_range")
	const size = 16 << 20
	payload := make([]byte, size)
	rand.Read(payload)
	c := dial(t, pp.addr)
	greeting(t, c)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("cannot read the echo: %v", err)
	}
	if err := recvErr(t, wrote, "the client's write"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, payload) {
		t.Fatalf("echo differs from what was sent (%d bytes back of %d)", len(back), size)
	}
	pp.stop()
	spliced, copied := sumTrace(t, trace)
	t.Logf("through the proxy process: %d bytes by splice, %d bytes read or written", spliced, copied)
	// Each spliced byte is counted twice (into the pipe, out of it), each
	// copied one twice too (read, send).
	if spliced < 2*2*size*9/10 {
		t.Fatalf("splice moved %d bytes of 2 x 16 MiB (each counted in and out), want at least 90%%", spliced)
	}
}

// Pipes are held only while a direction has bytes ready: after bulk
// transfers, idle connections hold their two sockets and nothing else,
// and the pipes are back in a small pool or closed.
func TestIdleConnectionsHoldNoPipes(t *testing.T) {
	s := startServer(t, "e", greetEcho)
	pp := startProxyProcess(t, []Backend{s.backend(1)})
	before := pp.stats()["fds"]
	const conns = 40
	payload := make([]byte, 1<<20)
	for range conns {
		c := dial(t, pp.addr)
		greeting(t, c)
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, len(payload))); err != nil {
			t.Fatal(err)
		}
	}
	// Every connection is open and idle now.
	after := pp.stats()["fds"]
	t.Logf("proxy process descriptors: %d before, %d with %d idle connections after 1 MiB each way", before, after, conns)
	if after > before+2*conns+2*freePipes {
		t.Fatalf("%d descriptors for %d idle connections (%d before): pipes are held past their bulk transfer", after, conns, before)
	}
}

var (
	spliceCall = regexp.MustCompile(`^\d+\s+(\w+)\(.*\)\s+=\s+(-?\d+)`)
	spliceRes  = regexp.MustCompile(`^\d+\s+<\.\.\. (\w+) resumed>.*\)\s+=\s+(-?\d+)`)
)

// sumTrace adds up the results of the byte-moving calls in an strace -f
// output: those of splice, and those of everything else.
func sumTrace(t *testing.T, path string) (spliced, copied int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := spliceCall.FindStringSubmatch(sc.Text())
		if m == nil {
			m = spliceRes.FindStringSubmatch(sc.Text())
		}
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if n <= 0 {
			continue
		}
		if m[1] == "splice" {
			spliced += n
		} else {
			copied += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return spliced, copied
}
