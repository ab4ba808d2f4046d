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
	"syscall"
	"testing"
	"time"
)

// The proxy process runs under strace, which records every syscall that
// moves bytes. All the bytes of a bulk transfer each way must go through
// splice(2) (twice: socket to pipe, pipe to socket), and almost none through
// read/write and their kin: that is the proof that the copy is zero-copy and
// that nothing wraps the connections.
func TestSpliceCarriesTheBytes(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed: cannot check that the proxy splices (apt-get install strace)")
	}
	if out, err := exec.Command(strace, "-f", "-o", "/dev/null", "true").CombinedOutput(); err != nil {
		t.Skipf("strace cannot trace here (ptrace not permitted?): %v: %s", err, out)
	}
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

	spliced, copied, calls := sumTrace(t, trace)
	t.Logf("through the proxy process: %d bytes by splice in %d calls, %d bytes by read/write and kin", spliced, calls, copied)
	// greetEcho's greeting is the only payload outside the bulk.
	if want := int64(2 * 2 * size); spliced < want {
		t.Fatalf("splice moved %d bytes, want at least %d (16 MiB each way, twice each)", spliced, want)
	}
	if copied > 1<<20 {
		t.Fatalf("%d bytes went through read/write-like calls; the bulk must go through splice only", copied)
	}
}

var (
	straceCall    = regexp.MustCompile(`^\d+\s+(\w+)\(.*\)\s+=\s+(-?\d+)`)
	straceResumed = regexp.MustCompile(`^\d+\s+<\.\.\. (\w+) resumed>.*\)\s+=\s+(-?\d+)`)
)

// sumTrace adds up the results of the byte-moving calls in an strace -f
// output: those of splice, and those of everything else.
func sumTrace(t *testing.T, path string) (spliced, copied int64, spliceCalls int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
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
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if n <= 0 {
			continue
		}
		if m[1] == "splice" {
			spliced += n
			spliceCalls++
		} else {
			copied += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return spliced, copied, spliceCalls
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
	if p.log.count("cannot connect to backend 1") < 1 || p.log.count("i/o timeout") < 1 {
		t.Fatalf("log does not tell of the timed-out dial:\n%s", p.log)
	}
}

// The proxy's share of the runner's memory: a process that runs only a Proxy
// with 8 backends and 64 open connections, each with bytes flowing both ways
// once (so both directions hold their splice pipes).
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
