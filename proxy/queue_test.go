package proxy

import (
	"net"
	"strings"
	"testing"
	"time"
)

// With one connection per instance at most, a second client waits in the
// proxy (not in a backlog, not refused) and is forwarded once the first
// connection ends.
func TestMaxPerInstanceQueues(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	p := startProxy(t, Options{MaxPerInstance: 1})
	p.SetBackends([]Backend{s.backend(1)})
	a := dial(t, p.addr)
	greeting(t, a)
	b := dial(t, p.addr)
	waitFor(t, func() bool { return p.Stats().Queued == 1 }, "the second client to wait in the queue")
	if n := s.accepted.Load(); n != 1 {
		t.Fatalf("the backend accepted %d connections while its limit is 1", n)
	}
	a.Close()
	if got := greeting(t, b); got != "s" {
		t.Fatalf("greeting %q", got)
	}
	if st := p.Stats(); st.Queued != 0 || st.QueueTimeouts != 0 {
		t.Fatalf("Stats() = %+v after the queue drained", st)
	}
}

// Past WaitForBackend in the queue, the client is closed, logged and
// counted.
func TestQueueTimeoutClosesAndCounts(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	p := startProxy(t, Options{MaxPerInstance: 1, WaitForBackend: 100 * time.Millisecond})
	p.SetBackends([]Backend{s.backend(1)})
	a := dial(t, p.addr)
	greeting(t, a)
	expectClosed(t, dial(t, p.addr), "a client past its time in the queue")
	if st := p.Stats(); st.QueueTimeouts != 1 || st.Queued != 0 {
		t.Fatalf("Stats() = %+v, want 1 queue timeout and nobody queued", st)
	}
	if p.log.count("could take a connection within") != 1 {
		t.Fatalf("log does not say why the client was closed:\n%s", p.log)
	}
	if err := roundTrip(a, "still"); err != nil {
		t.Fatalf("the forwarded connection: %v", err)
	}
}

// Clients come in first come, first served: the queue does not let a later
// client overtake.
func TestQueueIsFirstInFirstOut(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	p := startProxy(t, Options{MaxPerInstance: 1})
	p.SetBackends([]Backend{s.backend(1)})
	first := dial(t, p.addr)
	greeting(t, first)
	var queued []net.Conn
	for i := range 3 {
		c := dial(t, p.addr)
		queued = append(queued, c)
		waitFor(t, func() bool { return p.Stats().Queued == i+1 }, "the client to queue")
	}
	first.Close()
	for i, c := range queued {
		greeting(t, c)
		if err := roundTrip(c, "x"); err != nil {
			t.Fatalf("queued client %d: %v", i, err)
		}
		if i+1 < len(queued) {
			// The next one is still waiting: it was behind this one.
			if st := p.Stats(); st.Queued != len(queued)-i-1 {
				t.Fatalf("after client %d was served, Stats() = %+v", i, st)
			}
		}
		c.Close()
	}
}

// Past MaxConnections the proxy stops accepting: a new client waits in the
// listen backlog until a connection ends, and is then served.
func TestMaxConnectionsHoldsClientsInTheBacklog(t *testing.T) {
	s := startServer(t, "s", greetEcho)
	p := startProxy(t, Options{MaxConnections: 2})
	p.SetBackends([]Backend{s.backend(1)})
	a, b := dial(t, p.addr), dial(t, p.addr)
	greeting(t, a)
	greeting(t, b)
	c := dial(t, p.addr) // the kernel completes the handshake: it is in the backlog
	served := make(chan string, 1)
	go func() {
		line, _ := readLine(c)
		served <- line
	}()
	waitFor(t, func() bool { return p.log.count("its max_connections") == 1 }, "the proxy to stop accepting at its limit")
	if st := p.Stats(); st.Open != 2 || st.MaxConnections != 2 {
		t.Fatalf("Stats() = %+v, want 2 of 2 open", st)
	}
	select {
	case line := <-served:
		t.Fatalf("a third client got %q past max_connections 2", line)
	default:
	}
	a.Close()
	select {
	case line := <-served:
		if line != "s" {
			t.Fatalf("greeting %q", line)
		}
	case <-time.After(waitLimit):
		t.Fatalf("timed out after %v waiting for the client in the backlog to be served", waitLimit)
	}
	if !strings.Contains(p.log.String(), "wait in the listen backlog") {
		t.Fatalf("log:\n%s", p.log)
	}
}

// A backend that answers nothing while a connection waits on it gets no
// new connections, but is routable again once it answers.
func TestHungBackendIsSkippedUntilItAnswers(t *testing.T) {
	release := newGate()
	stuck := startServer(t, "stuck", func(s *server, c net.Conn) {
		<-release.wait()
		greetEcho(s, c)
	})
	t.Cleanup(release.open)
	ok := startServer(t, "ok", greetEcho)
	p := startProxy(t, Options{Balance: RoundRobin, HungAfter: 100 * time.Millisecond})
	p.SetBackends([]Backend{stuck.backend(1)})
	waiting := dial(t, p.addr)
	hung := func() bool {
		for _, b := range p.Backends() {
			if b.ID == 1 {
				return b.Hung
			}
		}
		return false
	}
	waitFor(t, func() bool { return hung() && p.log.count("has answered nothing") == 1 }, "the stuck backend to be marked hung, and the log to say so")
	p.SetBackends([]Backend{stuck.backend(1), ok.backend(2)})
	for i := range 6 {
		c := dial(t, p.addr)
		if got := greeting(t, c); got != "ok" {
			t.Fatalf("connection %d went to %q while stuck was hung", i, got)
		}
		c.Close()
	}
	release.open()
	if got := greeting(t, waiting); got != "stuck" {
		t.Fatalf("the waiting connection got %q", got)
	}
	waitFor(t, func() bool { return !hung() }, "the backend that answered to be routable again")
	got := map[string]int{}
	for range 4 {
		c := dial(t, p.addr)
		got[greeting(t, c)]++
		c.Close()
	}
	if got["stuck"] != 2 || got["ok"] != 2 {
		t.Fatalf("round robin after the recovery went %v, want 2 each", got)
	}
	waitFor(t, func() bool { return p.log.count("answers again") == 1 }, "the log to tell of the recovery")
}
