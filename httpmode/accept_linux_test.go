package httpmode

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/route"
)

// A raw accept gives the client's address and a descriptor that has the
// listener's TCP_NODELAY, on IPv4 and IPv6; closing it wakes an accept that
// waits, which then says the listener is closed.
func TestRawAccept(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", network)
		if err != nil {
			t.Logf("%s: %v (skipped)", network, err)
			continue
		}
		ra := newRawAccept(ln)
		if ra == nil {
			t.Fatalf("%s: no raw accept for a TCP listener", network)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a, err := ra.accept()
		if err != nil || !a.raw {
			t.Fatalf("%s: accept: %+v, %v", network, a, err)
		}
		if want := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); a.peer != want {
			t.Errorf("%s: peer %v, want %v", network, a.peer, want)
		}
		if v, err := syscall.GetsockoptInt(a.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY); err != nil || v == 0 {
			t.Errorf("%s: TCP_NODELAY on the accepted descriptor: %d, %v", network, v, err)
		}
		syscall.Close(a.fd)
		c.Close()

		done := make(chan error, 1)
		go func() { _, err := ra.accept(); done <- err }()
		ln.Close()
		ra.close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s: accept after close: %v, want net.ErrClosed", network, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: an accept waiting when the listener closed did not return", network)
		}
	}
}

// Behind an IPv6 listener, the instance sees the client's IPv6 address in
// X-Forwarded-For and Forwarded, taken from the raw accept.
func TestForwardingHeadersIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	got := make(chan http.Header, 1)
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		io.WriteString(w, "ok")
	})
	s := New(ln, Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::1/128")}})
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
		<-served
	}()
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	rc := dialRaw(t, ln.Addr().String())
	rc.send(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n")
	if _, body := rc.read(t, "GET"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	h := <-got
	if v := h.Get("X-Forwarded-For"); v != "10.1.1.1, ::1" {
		t.Errorf("X-Forwarded-For %q: the client is trusted as ::1", v)
	}
	if v := h.Get("Forwarded"); !strings.HasPrefix(v, `for="[::1]"`) {
		t.Errorf("Forwarded %q", v)
	}
}

// A client that sends its head in pieces, waits between requests and
// reads its answer slowly is served on a connection made from its raw
// descriptor when it first has to wait; Close then ends it, and nothing
// is left open.
func TestRawConnectionThatWaits(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 4<<20))
	})
	goroutines, fds := runtime.NumGoroutine(), openNetFDs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, Options{})
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	rc := dialRaw(t, ln.Addr().String())
	// The worker finds nothing to read (the test listener has no
	// TCP_DEFER_ACCEPT) and waits for the head, which comes in pieces.
	for _, piece := range []string{"GET /a HT", "TP/1.1\r\nHo", "st: h\r\n", "\r\n"} {
		rc.send(t, piece)
	}
	// 4 MiB does not fit in the socket: the answer waits for the client.
	if _, body := rc.read(t, "GET"); len(body) != 4<<20 {
		t.Fatalf("got %d bytes, want %d", len(body), 4<<20)
	}
	rc.send(t, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := rc.read(t, "GET"); len(body) != 4<<20 {
		t.Fatalf("second answer: %d bytes", len(body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	<-served
	if n, err := rc.c.Read(make([]byte, 1)); err == nil {
		t.Errorf("the idle connection is still open after Close (read %d bytes)", n)
	}
	rc.c.Close()
	be.srv.Close()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines }, "goroutines back to their count before the test")
	waitFor(t, func() bool { return openNetFDs(t) <= fds }, "sockets and epoll instances back to their count before the test")
}
