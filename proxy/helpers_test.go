package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests; it is generous because -race on
// a shared 2-core machine is slow, and a hang must still end in a message.
const waitLimit = 20 * time.Second

// waitFor polls cond, for conditions no channel can signal (goroutine and fd
// counts, the proxy noticing a close).
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
	}
}

func recvErr(t testing.TB, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
	}
	panic("unreachable")
}

// logRecorder is an Options.Logf that keeps every line.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// count returns how many lines contain s.
func (l *logRecorder) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// testProxy is a Proxy serving on a loopback listener, closed at cleanup.
type testProxy struct {
	*Proxy
	addr   string
	served chan error // Serve's result
	log    *logRecorder
}

func startProxy(t testing.TB, opts Options) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return listenProxy(t, ln, opts)
}

// listenProxy serves a new Proxy on ln, its log kept unless opts has one.
func listenProxy(t testing.TB, ln net.Listener, opts Options) *testProxy {
	t.Helper()
	rec := &logRecorder{}
	if opts.Logf == nil {
		opts.Logf = rec.logf
	}
	return serveOn(t, New(ln, opts), rec)
}

// serveOn serves p, whose Logf is rec's (or nil), until cleanup.
func serveOn(t testing.TB, p *Proxy, rec *logRecorder) *testProxy {
	t.Helper()
	if rec == nil {
		rec = &logRecorder{}
	}
	tp := &testProxy{Proxy: p, addr: p.lnString, served: make(chan error, 1), log: rec}
	go func() { tp.served <- tp.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := tp.Close(ctx); err != nil {
			t.Errorf("Close at cleanup: %v", err)
		}
		if err := recvErr(t, tp.served, "Serve to return after Close"); err != nil {
			t.Errorf("Serve returned %v after Close, want nil", err)
		}
	})
	return tp
}

// dial connects a test client to addr ("tcp" unless it starts with "/")
// with a deadline of waitLimit on every read and write, so a test that
// waits for bytes that never come fails instead of hanging.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, waitLimit)
	if err != nil {
		t.Fatalf("cannot dial the proxy at %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(waitLimit))
	t.Cleanup(func() { c.Close() })
	return c
}

// server is a backend: a loopback listener with a handler per connection.
type server struct {
	name     string
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startServer(t testing.TB, name string, handle func(s *server, c net.Conn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				c.SetDeadline(time.Now().Add(waitLimit))
				handle(s, c)
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// close stops the server and ends its connections.
func (s *server) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *server) backend(id uint64) Backend {
	return Backend{ID: id, Addr: s.ln.Addr().String()}
}

// greetEcho writes the server's name and a newline, then echoes until EOF.
func greetEcho(s *server, c net.Conn) {
	if _, err := io.WriteString(c, s.name+"\n"); err != nil {
		return
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// sumAfterEOF reads until EOF, so it answers only once the client's
// half-close reached it, and then writes "<length> <sha256>\n".
func sumAfterEOF(s *server, c net.Conn) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return
	}
	fmt.Fprintf(c, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
}

func sumLine(b []byte) string {
	h := sha256.Sum256(b)
	return fmt.Sprintf("%d %s\n", len(b), hex.EncodeToString(h[:]))
}

// greeting reads the first line a greetEcho backend sends through c: the name
// of the backend that c was forwarded to.
func greeting(t testing.TB, c net.Conn) string {
	t.Helper()
	line, err := readLine(c)
	if err != nil {
		t.Fatalf("cannot read the backend's greeting: %v", err)
	}
	return line
}

// readLine reads up to a newline one byte at a time, so no bytes after it
// are taken from c.
func readLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

// roundTrip writes msg and reads back as many bytes: one exchange with a
// greetEcho backend.
func roundTrip(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("cannot write %q: %w", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("cannot read the echo of %q: %w", msg, err)
	}
	if string(got) != msg {
		return fmt.Errorf("echo of %q came back as %q", msg, got)
	}
	return nil
}

// expectClosed reads from c and wants EOF or a reset, not data.
func expectClosed(t testing.TB, c net.Conn, what string) {
	t.Helper()
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		t.Fatalf("%s: read %q, want the connection closed", what, buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: timed out after %v waiting for the connection to close", what, waitLimit)
	}
	if err == nil {
		t.Fatalf("%s: read returned no data and no error", what)
	}
}

// closedPort returns a loopback address nothing listens on: connecting to it
// is refused.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// countFDs returns the number of open fds of this process, or -1 where
// /proc/self/fd does not exist.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// countSockets returns the number of open socket fds of this process, or -1
// where /proc/self/fd does not exist.
func countSockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// registered returns the number of client connections the proxy tracks.
func (p *Proxy) registered() int { return int(p.open.Load()) }

// acceptFailures is how many accepts failed in the current burst, summed
// over the loops.
func (p *Proxy) acceptFailures() int {
	p.mu.Lock()
	loops := p.loops
	p.mu.Unlock()
	n := 0
	for _, l := range loops {
		done := make(chan int)
		l.post(func() { done <- l.failed })
		select {
		case f := <-done:
			n += f
		case <-p.done:
		}
	}
	return n
}

// totalActive is the sum of p.Active().
func totalActive(p *Proxy) int {
	n := 0
	for _, a := range p.Active() {
		n += a
	}
	return n
}

// waitingOn is how many connections to backend id wait for their first byte
// back (dials included).
func waitingOn(p *Proxy, id uint64) int {
	n := 0
	for _, b := range p.Backends() {
		if b.ID == id {
			n += b.Waiting
		}
	}
	return n
}

// gate is a channel a test opens once. A test whose server handlers wait on
// it registers open as a cleanup after starting the server, so that a
// failing test opens it before the server's cleanup waits for them.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open()                 { g.once.Do(func() { close(g.ch) }) }
func (g *gate) wait() <-chan struct{} { return g.ch }
