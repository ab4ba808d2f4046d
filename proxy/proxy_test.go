package proxy

import (
	"github.com/clusterrun/clusterrun/route"

	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// --- 1. balancing -----------------------------------------------------------

func TestLeastConnPicksFewestOpen(t *testing.T) {
	a := startServer(t, "a", greetEcho)
	b := startServer(t, "b", greetEcho)
	c := startServer(t, "c", greetEcho)
	p := startProxy(t, Options{})

	p.SetBackends([]Backend{a.backend(1)})
	for range 2 {
		if got := greeting(t, dial(t, p.addr)); got != "a" {
			t.Fatalf("with only a routable, a connection went to %q", got)
		}
	}
	p.SetBackends([]Backend{a.backend(1), b.backend(2)})
	if got := greeting(t, dial(t, p.addr)); got != "b" {
		t.Fatalf("a has 2 open connections and b none; the new one went to %q, want b", got)
	}
	p.SetBackends([]Backend{a.backend(1), b.backend(2), c.backend(3)})
	if got := greeting(t, dial(t, p.addr)); got != "c" {
		t.Fatalf("open connections a=2 b=1 c=0; the new one went to %q, want c", got)
	}
	// Now 2/1/1: the next two go to b and c (either order), then all are at 2.
	got := map[string]int{}
	for range 2 {
		got[greeting(t, dial(t, p.addr))]++
	}
	if got["b"] != 1 || got["c"] != 1 {
		t.Fatalf("open connections a=2 b=1 c=1; the next two went to %v, want one each to b and c", got)
	}
	want := map[uint64]int{1: 2, 2: 2, 3: 2}
	if act := p.Active(); !maps.Equal(act, want) {
		t.Fatalf("Active() = %v, want %v", act, want)
	}
}

// Equal backends share short-lived connections instead of the first one in
// the list taking them all.
func TestLeastConnTiesRotate(t *testing.T) {
	servers := []*server{startServer(t, "a", greetEcho), startServer(t, "b", greetEcho), startServer(t, "c", greetEcho)}
	p := startProxy(t, Options{})
	var bs []Backend
	for i, s := range servers {
		bs = append(bs, s.backend(uint64(i+1)))
	}
	p.SetBackends(bs)
	allIdle := func() bool {
		for _, n := range p.Active() {
			if n != 0 {
				return false
			}
		}
		return true
	}
	got := map[string]int{}
	const rounds = 30
	for range rounds {
		c := dial(t, p.addr)
		got[greeting(t, c)]++
		c.Close()
		// Every backend is back to 0 open, so the next pick is a tie.
		waitFor(t, allIdle, "the proxy to see the connection end")
	}
	for _, s := range servers {
		if got[s.name] != rounds/len(servers) {
			t.Fatalf("%d sequential connections to 3 idle backends went %v, want %d each", rounds, got, rounds/len(servers))
		}
	}
}

func TestRoundRobinIgnoresLoad(t *testing.T) {
	a := startServer(t, "a", greetEcho)
	b := startServer(t, "b", greetEcho)
	c := startServer(t, "c", greetEcho)
	p := startProxy(t, Options{Balance: RoundRobin})
	p.SetBackends([]Backend{a.backend(1), b.backend(2), c.backend(3)})
	// Connections stay open, so least-conn would spread them by load; round
	// robin must go strictly in turn.
	var order []string
	for range 9 {
		order = append(order, greeting(t, dial(t, p.addr)))
	}
	for i := 3; i < len(order); i++ {
		if order[i] != order[i-3] {
			t.Fatalf("round robin went %v, want a repeating cycle of the 3 backends", order)
		}
	}
	if order[0] == order[1] || order[1] == order[2] || order[0] == order[2] {
		t.Fatalf("round robin went %v, want each backend once per cycle", order)
	}
}

// --- 2. forwarding ----------------------------------------------------------

// The client sends, closes its write side, and still reads the whole answer,
// which the backend only sends after it saw EOF.
func TestHalfCloseFromClient(t *testing.T) {
	s := startServer(t, "sum", sumAfterEOF)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{s.backend(1)})
	for _, size := range []int{0, 1, 5 << 20} {
		payload := make([]byte, size)
		rand.Read(payload)
		c := dial(t, p.addr)
		sent := make(chan error, 1)
		go func() {
			_, err := c.Write(payload)
			if err == nil {
				err = c.(*net.TCPConn).CloseWrite()
			}
			sent <- err
		}()
		answer, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%d bytes: cannot read the answer after the half-close: %v", size, err)
		}
		if err := recvErr(t, sent, "the client's write"); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if want := sumLine(payload); string(answer) != want {
			t.Fatalf("%d bytes: answer %q, want %q", size, answer, want)
		}
	}
}

// The backend half-closes first; the client sees EOF and can still send.
func TestHalfCloseFromBackend(t *testing.T) {
	got := make(chan []byte, 1)
	s := startServer(t, "b", func(s *server, c net.Conn) {
		io.WriteString(c, "bye\n")
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		got <- b
	})
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{s.backend(1)})
	c := dial(t, p.addr)
	first, err := io.ReadAll(c)
	if err != nil || string(first) != "bye\n" {
		t.Fatalf("read %q, %v; want \"bye\\n\" then EOF", first, err)
	}
	if _, err := io.WriteString(c, "after your EOF"); err != nil {
		t.Fatalf("cannot write after the backend's half-close: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	select {
	case b := <-got:
		if string(b) != "after your EOF" {
			t.Fatalf("backend read %q", b)
		}
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for the backend to read the client's bytes", waitLimit)
	}
}

// A reset on either side ends the connection on the other.
func TestResetClosesBothSides(t *testing.T) {
	t.Run("backend resets", func(t *testing.T) {
		s := startServer(t, "r", func(s *server, c net.Conn) {
			c.Read(make([]byte, 1))
			c.(*net.TCPConn).SetLinger(0)
		})
		p := startProxy(t, Options{})
		p.SetBackends([]Backend{s.backend(1)})
		c := dial(t, p.addr)
		io.WriteString(c, "x")
		expectClosed(t, c, "after the backend's reset")
		waitFor(t, func() bool { return p.Active()[1] == 0 }, "the proxy to drop the reset connection")
	})
	t.Run("client resets", func(t *testing.T) {
		ended := make(chan struct{})
		s := startServer(t, "r", func(s *server, c net.Conn) {
			io.WriteString(c, "r\n")
			io.Copy(io.Discard, c)
			close(ended)
		})
		p := startProxy(t, Options{})
		p.SetBackends([]Backend{s.backend(1)})
		c := dial(t, p.addr)
		greeting(t, c)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		waitClosed(t, ended, "the backend to see the client's reset")
		waitFor(t, func() bool { return p.Active()[1] == 0 }, "the proxy to drop the reset connection")
	})
}

// Both directions at once with more than a pipe's worth each way.
func TestFullDuplexBulk(t *testing.T) {
	s := startServer(t, "e", greetEcho)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{s.backend(1)})
	c := dial(t, p.addr)
	greeting(t, c)
	payload := make([]byte, 8<<20)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("cannot read the echo: %v", err)
	}
	if !bytes.Equal(back, payload) {
		t.Fatalf("echo of %d bytes came back as %d bytes, not equal", len(payload), len(back))
	}
}

// --- 3. retry -----------------------------------------------------------------

func TestRefusedConnectIsRetried(t *testing.T) {
	live := startServer(t, "live", greetEcho)
	dead := Backend{ID: 1, Addr: closedPort(t)}
	for _, mode := range []Balance{LeastConn, RoundRobin} {
		t.Run(mode.String(), func(t *testing.T) {
			p := startProxy(t, Options{Balance: mode})
			p.SetBackends([]Backend{dead, live.backend(2)})
			start := time.Now()
			for i := range 10 {
				c := dial(t, p.addr)
				if got := greeting(t, c); got != "live" {
					t.Fatalf("connection %d went to %q", i, got)
				}
				c.Close()
			}
			// At least one of them tried the dead backend first; the
			// limiter lets one line through per route.LogEvery.
			if n, most := p.log.count("cannot connect to backend 1"), 1+int(time.Since(start)/route.LogEvery); n < 1 || n > most {
				t.Fatalf("%d log lines about the refusing backend, want 1 to %d (rate-limited):\n%s", n, most, p.log)
			}
		})
	}
}

func TestAllBackendsFailingClosesClient(t *testing.T) {
	p := startProxy(t, Options{WaitForBackend: waitLimit * 2})
	p.SetBackends([]Backend{{ID: 1, Addr: closedPort(t)}, {ID: 2, Addr: closedPort(t)}})
	// The wait for a routable backend must not apply: there are backends,
	// they all failed.
	expectClosed(t, dial(t, p.addr), "every backend refused")
	if p.log.count("every backend") != 1 {
		t.Fatalf("log does not say every backend failed:\n%s", p.log)
	}
}

// --- 4. removal ---------------------------------------------------------------

// A dial that completes after SetBackends removed its backend is closed
// unused, and the connection goes to a backend still in the set.
func TestRemovedWhileDialing(t *testing.T) {
	aGot := make(chan string, 1)
	a := startServer(t, "a", func(s *server, c net.Conn) {
		b, err := io.ReadAll(c)
		if err != nil {
			aGot <- "error: " + err.Error()
			return
		}
		aGot <- string(b)
	})
	b := startServer(t, "b", greetEcho)
	p := startProxy(t, Options{})
	var once sync.Once
	p.testHookDialed = func(bk *route.Target) {
		if bk.ID == 1 {
			// The dial to a has completed; the runner now removes a
			// (its instance is about to get SIGTERM).
			once.Do(func() { p.SetBackends([]Backend{b.backend(2)}) })
		}
	}
	p.SetBackends([]Backend{a.backend(1)})
	c := dial(t, p.addr)
	if got := greeting(t, c); got != "b" {
		t.Fatalf("connection went to %q, want b: a was removed while the dial was in flight", got)
	}
	if err := roundTrip(c, "hello"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-aGot:
		if got != "" {
			t.Fatalf("removed backend a got %q, want a connection closed unused", got)
		}
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for a's unused connection to be closed", waitLimit)
	}
	if act := p.Active(); !maps.Equal(act, map[uint64]int{2: 1}) {
		t.Fatalf("Active() = %v, want only b with 1", act)
	}
}

// After SetBackends returns, new connections avoid the removed backend; the
// ones already forwarded to it go on.
func TestRemovedBackendKeepsItsConnections(t *testing.T) {
	a := startServer(t, "a", greetEcho)
	b := startServer(t, "b", greetEcho)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{a.backend(1)})
	old := dial(t, p.addr)
	if got := greeting(t, old); got != "a" {
		t.Fatalf("first connection went to %q", got)
	}
	p.SetBackends([]Backend{b.backend(2)})
	for i := range 5 {
		if got := greeting(t, dial(t, p.addr)); got != "b" {
			t.Fatalf("new connection %d went to %q after a was removed", i, got)
		}
	}
	if err := roundTrip(old, "still here"); err != nil {
		t.Fatalf("the connection forwarded to a before its removal: %v", err)
	}
	if act := p.Active(); !maps.Equal(act, map[uint64]int{1: 1, 2: 5}) {
		t.Fatalf("Active() = %v, want a (removed) 1 and b 5", act)
	}
	old.Close()
	waitFor(t, func() bool { _, ok := p.Active()[1]; return !ok }, "the removed backend to leave Active once its last connection ended")
	if a.accepted.Load() != 1 {
		t.Fatalf("removed backend a accepted %d connections, want 1", a.accepted.Load())
	}
}

// SetBackends from many goroutines while clients connect: no connection is
// lost while some backend is routable, and the race detector watches.
func TestSetBackendsUnderLoad(t *testing.T) {
	servers := []*server{startServer(t, "a", greetEcho), startServer(t, "b", greetEcho), startServer(t, "c", greetEcho)}
	p := startProxy(t, Options{})
	sets := [][]Backend{
		{servers[0].backend(1)},
		{servers[0].backend(1), servers[1].backend(2)},
		{servers[1].backend(2), servers[2].backend(3)},
		{servers[2].backend(3)},
	}
	p.SetBackends(sets[0])
	stop := make(chan struct{})
	flipped := make(chan int)
	go func() {
		n := 0
		defer func() { flipped <- n }()
		for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline); n++ {
			select {
			case <-stop:
				return
			default:
			}
			p.SetBackends(sets[n%len(sets)])
			time.Sleep(100 * time.Microsecond) // pacing, not synchronisation: lets the clients run
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				c, err := net.DialTimeout("tcp", p.addr, waitLimit)
				if err != nil {
					errs <- err
					return
				}
				c.SetDeadline(time.Now().Add(waitLimit))
				_, err = readLine(c)
				if err == nil {
					err = roundTrip(c, "ping")
				}
				c.Close()
				if err != nil {
					errs <- fmt.Errorf("client %d, connection %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	var n int
	select {
	case n = <-flipped:
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for the SetBackends loop to stop", waitLimit)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d SetBackends calls during 100 connections", n)
}

// --- 5. waiting for a backend -------------------------------------------------

func TestWaitsForFirstBackend(t *testing.T) {
	s := startServer(t, "late", greetEcho)
	p := startProxy(t, Options{})
	c := dial(t, p.addr)
	io.WriteString(c, "early") // sent before any backend exists
	waitFor(t, func() bool { return p.waiting.Load() == 1 }, "the connection to wait for a backend")
	p.SetBackends([]Backend{s.backend(1)})
	if got := greeting(t, c); got != "late" {
		t.Fatalf("got greeting %q", got)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "early" {
		t.Fatalf("echo of the bytes sent while waiting: %q, %v", buf, err)
	}
}

// An empty set while the lone instance restarts: the wait goes on across a
// second empty set until a backend appears.
func TestWaitSurvivesEmptyUpdates(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	p := startProxy(t, Options{})
	c := dial(t, p.addr)
	waitFor(t, func() bool { return p.waiting.Load() == 1 }, "the connection to wait")
	p.SetBackends(nil)
	waitFor(t, func() bool { return p.waiting.Load() == 1 }, "the connection to wait again after an empty update")
	p.SetBackends([]Backend{s.backend(7)})
	if got := greeting(t, c); got != "s" {
		t.Fatalf("got greeting %q", got)
	}
}

func TestWaitForBackendTimesOut(t *testing.T) {
	const wait = 150 * time.Millisecond
	p := startProxy(t, Options{WaitForBackend: wait})
	start := time.Now()
	expectClosed(t, dial(t, p.addr), "no backend ever became routable")
	if el := time.Since(start); el < wait {
		t.Fatalf("closed after %v, before WaitForBackend (%v)", el, wait)
	}
	if p.log.count("no backend became routable") != 1 {
		t.Fatalf("log does not say why:\n%s", p.log)
	}
}

func TestNegativeWaitClosesAtOnce(t *testing.T) {
	p := startProxy(t, Options{WaitForBackend: -1})
	expectClosed(t, dial(t, p.addr), "no backend routable and no wait")
}

func TestCloseEndsWait(t *testing.T) {
	p := startProxy(t, Options{})
	c := dial(t, p.addr)
	waitFor(t, func() bool { return p.waiting.Load() == 1 }, "the connection to wait for a backend")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectClosed(t, c, "Close during the wait")
}

// --- 6. Close, leaks ----------------------------------------------------------

// Close stops accepting at once and lets an open keep-alive connection carry
// on until its client is done.
func TestCloseDrainsOpenConnections(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{s.backend(1)})
	c := dial(t, p.addr)
	greeting(t, c)
	if err := roundTrip(c, "one"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	if err := recvErr(t, p.served, "Serve to return once Close closed the listener"); err != nil {
		t.Fatalf("Serve returned %v after Close, want nil", err)
	}
	p.served <- nil // for the cleanup
	if nc, err := net.DialTimeout("tcp", p.addr, waitLimit); err == nil {
		nc.Close()
		t.Fatal("a new connection was accepted after Close started")
	}
	if err := roundTrip(c, "two"); err != nil {
		t.Fatalf("the open connection during Close: %v", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a connection was still open", err)
	default:
	}
	c.Close()
	if err := recvErr(t, closed, "Close to return after the last connection ended"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestCloseForcesAfterContext(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{s.backend(1)})
	c := dial(t, p.addr)
	greeting(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want an error wrapping DeadlineExceeded", err)
	}
	expectClosed(t, c, "Close forced the open connection")
	if act := p.Active(); len(act) != 1 || act[1] != 0 {
		t.Fatalf("Active() after a forced Close = %v, want backend 1 with 0", act)
	}
	// Idempotent: a second Close has nothing left to wait for.
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseBeforeServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := New(ln, Options{})
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Serve(); err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
}

// Many connections of every kind, then back to the starting goroutine and fd
// counts.
func TestNoGoroutineOrFDLeaks(t *testing.T) {
	if countFDs() < 0 {
		t.Skip("needs /proc/self/fd")
	}
	echo := startServer(t, "e", greetEcho)
	sum := startServer(t, "s", sumAfterEOF)
	reset := startServer(t, "r", func(s *server, c net.Conn) {
		io.WriteString(c, "r\n")
		c.(*net.TCPConn).SetLinger(0)
	})
	dead := Backend{ID: 9, Addr: closedPort(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := New(ln, Options{Logf: func(string, ...any) {}})
	addr := ln.Addr().String()
	served := make(chan error, 1)

	// No garbage collection until the sockets are counted: a socket the
	// proxy forgot to close would otherwise be closed by its finalizer and
	// the leak would go unseen.
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	goroutines, fds, sockets := runtime.NumGoroutine(), countFDs(), countSockets()
	go func() { served <- p.Serve() }()

	const rounds = 50
	for i := range rounds {
		// An echo exchange, closed by the client.
		p.SetBackends([]Backend{dead, echo.backend(1)})
		c := dial(t, addr)
		greeting(t, c)
		if err := roundTrip(c, "x"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		c.Close()
		// A half-close.
		p.SetBackends([]Backend{sum.backend(2)})
		c = dial(t, addr)
		io.WriteString(c, "abc")
		c.(*net.TCPConn).CloseWrite()
		if b, err := io.ReadAll(c); err != nil || string(b) != sumLine([]byte("abc")) {
			t.Fatalf("round %d: half-close answer %q, %v", i, b, err)
		}
		c.Close()
		// A backend reset.
		p.SetBackends([]Backend{reset.backend(3)})
		c = dial(t, addr)
		io.ReadAll(c)
		c.Close()
		// Every backend refusing.
		p.SetBackends([]Backend{dead})
		c = dial(t, addr)
		io.ReadAll(c)
		c.Close()
	}
	waitFor(t, func() bool { return p.registered() == 0 }, "every proxied connection to end")
	waitFor(t, func() bool {
		ok := runtime.NumGoroutine() <= goroutines+3 && countSockets() <= sockets
		if !ok {
			t.Logf("goroutines %d (start %d), sockets %d (start %d)", runtime.NumGoroutine(), goroutines, countSockets(), sockets)
		}
		return ok
	},
		"goroutines (Serve's, its event loop's and the hung watch's aside) and sockets back to their starting counts without a garbage collection")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := recvErr(t, served, "Serve to return"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The listener is closed now, so one fd fewer than at the start.
	waitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines && countFDs() <= fds-1 }, "goroutines and fds back to their starting counts")
}

// --- 7. unix public listener ------------------------------------------------

func TestUnixPublicListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pub.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	sum := startServer(t, "s", sumAfterEOF)
	echo := startServer(t, "e", greetEcho)
	p := listenProxy(t, ln, Options{})

	p.SetBackends([]Backend{sum.backend(1)})
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	c := dial(t, path)
	go func() {
		c.Write(payload)
		c.(*net.UnixConn).CloseWrite()
	}()
	answer, err := io.ReadAll(c)
	if err != nil || string(answer) != sumLine(payload) {
		t.Fatalf("half-close over a unix client: %q, %v", answer, err)
	}

	p.SetBackends([]Backend{echo.backend(2)})
	c = dial(t, path)
	greeting(t, c)
	if err := roundTrip(c, "over unix"); err != nil {
		t.Fatal(err)
	}
}

// --- Serve's accept loop ------------------------------------------------------

// scriptAccept makes the proxy's next accepts fail with errs, in order,
// before it accepts for real.
func scriptAccept(p *Proxy, errs ...syscall.Errno) {
	var mu sync.Mutex
	p.testHookAccept = func() syscall.Errno {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) == 0 {
			return 0
		}
		e := errs[0]
		errs = errs[1:]
		return e
	}
}

func TestAcceptBacksOffOnTemporaryErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "s", greetEcho)
	rec := &logRecorder{}
	px := New(ln, Options{Logf: rec.logf})
	scriptAccept(px, syscall.EMFILE, syscall.EMFILE, syscall.EMFILE, syscall.EMFILE)
	start := time.Now()
	p := serveOn(t, px, rec)
	p.SetBackends([]Backend{s.backend(1)})
	c := dial(t, p.addr)
	if got := greeting(t, c); got != "s" {
		t.Fatalf("greeting %q", got)
	}
	// 5 + 10 + 20 + 40 ms of backoff before the first accept.
	if el := time.Since(start); el < 75*time.Millisecond {
		t.Fatalf("4 EMFILEs cost only %v; want a backoff of at least 75ms", el)
	}
	if n := p.log.count("too many open files"); n != 1 {
		t.Fatalf("%d log lines for one burst of EMFILE, want 1:\n%s", n, p.log)
	}
	if p.log.count("again after 4 failed accepts") != 1 {
		t.Fatalf("log does not tell the recovery:\n%s", p.log)
	}
}

func TestCloseInterruptsAcceptBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := New(ln, Options{})
	errs := make([]syscall.Errno, 100) // 100 bursts of up to 1s: far beyond waitLimit
	for i := range errs {
		errs[i] = syscall.ENFILE
	}
	scriptAccept(p, errs...)
	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	// A connection waiting in the backlog keeps the accepts failing.
	c := dial(t, ln.Addr().String())
	waitFor(t, func() bool { return p.acceptFailures() > 1 }, "the proxy to fail an accept")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(t, served, "Serve to return from its backoff after Close"); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	expectClosed(t, c, "the connection left in the closed listener's backlog")
}

func TestServeReturnsPermanentError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := New(ln, Options{})
	defer p.Close(context.Background())
	scriptAccept(p, syscall.EINVAL)
	dial(t, ln.Addr().String())
	if err := p.Serve(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Serve = %v, want it to wrap EINVAL", err)
	}
}

// New takes the socket out of the Go listener (which it closes) and serves
// it on its own.
func TestNewTakesTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "s", greetEcho)
	p := serveOn(t, New(ln, Options{}), nil)
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on the listener given to New = %v, want net.ErrClosed", err)
	}
	p.SetBackends([]Backend{s.backend(1)})
	if got := greeting(t, dial(t, p.addr)); got != "s" {
		t.Fatalf("greeting %q", got)
	}
}

// Only socket listeners can be served.
func TestServeRefusesOtherListeners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := New(struct{ net.Listener }{ln}, Options{})
	if err := p.Serve(); err == nil || !strings.Contains(err.Error(), "not a socket listener") {
		t.Fatalf("Serve = %v, want it to refuse a listener that is not a socket", err)
	}
}

// Backends tells, per backend, the connections open and those that have had
// no byte back yet (the instance may not even have accepted them), and for
// how long the oldest has waited.
func TestBackendsCountsWaiting(t *testing.T) {
	release := newGate()
	srv := startServer(t, "slow", func(s *server, c net.Conn) {
		<-release.wait() // accept, but say nothing yet
		greetEcho(s, c)
	})
	t.Cleanup(release.open)
	tp := startProxy(t, Options{})
	tp.SetBackends([]Backend{srv.backend(7)})
	c := dial(t, tp.addr)
	waitFor(t, func() bool { st := tp.Backends(); return len(st) == 1 && st[0].Conns == 1 && st[0].Waiting == 1 },
		"the connection to be forwarded and count as waiting")
	st := tp.Backends()
	if len(st) != 1 || st[0].ID != 7 || st[0].Conns != 1 || st[0].OldestWait <= 0 || st[0].Hung || st[0].Removed {
		t.Fatalf("Backends() = %+v, want backend 7 with 1 connection waiting", st)
	}
	release.open()
	if got := greeting(t, c); got != "slow" {
		t.Fatalf("greeting %q", got)
	}
	waitFor(t, func() bool { return waitingOn(tp.Proxy, 7) == 0 }, "the answered connection to stop counting")
	if st := tp.Backends(); len(st) != 1 || st[0].Conns != 1 || st[0].OldestWait != 0 {
		t.Fatalf("Backends() = %+v, want backend 7 with 1 connection, none waiting", st)
	}
}

// StopAccepting (a runner draining on a socket systemd passed it) stops
// accepting at once and leaves the open connections to go on; a new
// connection waits in the socket's queue for another holder of the socket
// (here the test's own copy, as systemd keeps one), and Serve returns.
func TestStopAcceptingLeavesConnectionsAndQueue(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The other holder: a listener on a duplicate of the socket, made
	// without (*TCPListener).File, which may make the shared socket
	// blocking.
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	dup := -1
	if err := rc.Control(func(fd uintptr) { dup, err = syscall.Dup(int(fd)) }); err != nil || dup < 0 {
		t.Fatalf("cannot duplicate the socket: %v", err)
	}
	f := os.NewFile(uintptr(dup), "listener")
	other, err := net.FileListener(f) // sets O_NONBLOCK, as the proxy wants it
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p := listenProxy(t, ln, Options{})
	p.SetBackends([]Backend{s.backend(1)})
	c := dial(t, p.addr)
	greeting(t, c)

	p.StopAccepting()
	if err := recvErr(t, p.served, "Serve to return after StopAccepting"); err != nil {
		t.Fatalf("Serve returned %v after StopAccepting, want nil", err)
	}
	p.served <- nil // for the cleanup
	if err := roundTrip(c, "still"); err != nil {
		t.Fatalf("the open connection after StopAccepting: %v", err)
	}
	late := dial(t, p.addr)
	other.(*net.TCPListener).SetDeadline(time.Now().Add(waitLimit))
	taken, err := other.Accept()
	if err != nil {
		t.Fatalf("the connection made after StopAccepting did not wait in the queue for the other holder: %v", err)
	}
	taken.Close()
	late.Close()
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("the backend got %d connections, want the 1 made before StopAccepting", n)
	}
}
