package proxy

import (
	"github.com/clusterrun/clusterrun/route"

	"net"
	"runtime"
	"testing"
	"time"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// With nothing forwarded to a backend, Quiesce is closed at once.
func TestQuiesceWithoutConnections(t *testing.T) {
	srv := startServer(t, "a", greetEcho)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{srv.backend(1)})
	waitClosed(t, p.Quiesce(1, time.Hour), "Quiesce of a backend without connections")
	waitClosed(t, p.Quiesce(99, time.Hour), "Quiesce of an unknown backend")
}

// A connection that has had no byte back keeps its backend busy whatever
// the idle time (it may wait in the instance's accept queue); once
// answered and idle, it no longer does, and it stays open.
func TestQuiesceWaitsForTheFirstAnswer(t *testing.T) {
	release := newGate()
	srv := startServer(t, "slow", func(s *server, c net.Conn) {
		<-release.wait()
		greetEcho(s, c)
	})
	t.Cleanup(release.open)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{srv.backend(7)})
	c := dial(t, p.addr)
	waitFor(t, func() bool { return waitingOn(p.Proxy, 7) == 1 }, "the connection to be forwarded")
	q := p.Quiesce(7, 0)
	other := p.Quiesce(8, 0)
	waitClosed(t, other, "Quiesce of another backend")
	if isClosed(q) {
		t.Fatal("Quiesce closed while a forwarded connection had no answer")
	}
	release.open()
	if got := greeting(t, c); got != "slow" {
		t.Fatalf("greeting %q", got)
	}
	waitClosed(t, q, "Quiesce after the only connection was answered, with idle 0")
	if err := roundTrip(c, "still open"); err != nil {
		t.Fatalf("the quiet connection: %v", err)
	}
}

// An answered connection that has carried a byte more recently than idle
// keeps its backend busy until it closes.
func TestQuiesceWaitsForClose(t *testing.T) {
	srv := startServer(t, "a", greetEcho)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{srv.backend(1)})
	c := dial(t, p.addr)
	greeting(t, c)
	q := p.Quiesce(1, time.Hour)
	if err := roundTrip(c, "x"); err != nil {
		t.Fatal(err)
	}
	if isClosed(q) {
		t.Fatal("Quiesce closed while a connection was busy within the idle time")
	}
	c.Close()
	waitClosed(t, q, "Quiesce after the connection closed")
}

// An answered connection idle for longer than idle leaves its backend quiet
// without being closed.
func TestQuiesceIdleConnection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle time is known on Linux only")
	}
	srv := startServer(t, "a", greetEcho)
	p := startProxy(t, Options{})
	p.SetBackends([]Backend{srv.backend(1)})
	c := dial(t, p.addr)
	greeting(t, c)
	waitClosed(t, p.Quiesce(1, 20*time.Millisecond), "Quiesce with an idle connection")
	if err := roundTrip(c, "still open"); err != nil {
		t.Fatalf("the idle connection: %v", err)
	}
}

// A dial in flight counts as a connection of its backend.
func TestQuiesceCountsDialsInFlight(t *testing.T) {
	srv := startServer(t, "a", greetEcho)
	p := startProxy(t, Options{})
	dialed := make(chan struct{})
	proceed := make(chan struct{})
	p.testHookDialed = func(*route.Target) {
		close(dialed)
		<-proceed
	}
	p.SetBackends([]Backend{srv.backend(1)})
	c := dial(t, p.addr)
	waitClosed(t, dialed, "the dial")
	q := p.Quiesce(1, 0)
	if isClosed(q) {
		t.Fatal("Quiesce closed while a dial was in flight")
	}
	close(proceed)
	greeting(t, c)
	waitClosed(t, q, "Quiesce once the dialed connection was answered")
}
