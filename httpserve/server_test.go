package httpserve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/http1"
)

// FuzzReadRequest: a request the server accepts is one net/http's server
// reads the same: method, path, query, fields and body. The server may
// refuse more (a request without Host, Transfer-Encoding and
// Content-Length together), never less.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/apps/web%2Fx?follow=true&n=5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n",
		"POST /v1/apps/web/scale HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"instances\":2}",
		"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"GET http://h:1/p?q HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
		"GET / HTTP/1.1\r\nHost: x\r\n Folded: y\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add([]byte(s))
	}
	o := Options{}
	o.fill()
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := readRequest(http1.NewReader(bytes.NewReader(in)), &o)
		if err != nil {
			return
		}
		ours, oerr := io.ReadAll(r.Body)
		nr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			t.Fatalf("%q: accepted, but net/http refuses it: %v", in, err)
		}
		theirs, terr := io.ReadAll(nr.Body)
		if nr.Method != r.Method || nr.URL.Path != r.Path || nr.URL.EscapedPath() != r.RawPath || nr.URL.RawQuery != r.RawQuery ||
			nr.Host != r.Host || nr.ContentLength != r.ContentLength || nr.Proto != r.Proto {
			t.Fatalf("%q:\nours     %s %q %q %q host %q length %d %s\nnet/http %s %q %q %q host %q length %d %s", in,
				r.Method, r.Path, r.RawPath, r.RawQuery, r.Host, r.ContentLength, r.Proto,
				nr.Method, nr.URL.Path, nr.URL.EscapedPath(), nr.URL.RawQuery, nr.Host, nr.ContentLength, nr.Proto)
		}
		for k, v := range r.Header {
			switch k {
			case "Content-Length", "Transfer-Encoding", "Cache-Control":
				continue // net/http rewrites them
			}
			if fmt.Sprint(nr.Header[k]) != fmt.Sprint(v) {
				t.Fatalf("%q: field %s: ours %q, net/http's %q", in, k, v, nr.Header[k])
			}
		}
		if (oerr == nil) != (terr == nil) && oerr == nil || oerr == nil && !bytes.Equal(ours, theirs) {
			t.Fatalf("%q: body: ours %q (%v), net/http's %q (%v)", in, ours, oerr, theirs, terr)
		}
	})
}

// testServer serves h on 127.0.0.1 until the test ends.
func testServer(t *testing.T, h Handler, o Options) (addr string, l *Limited, srv *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = Listener(ln, o)
	srv = NewServer(h, o)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), l, srv
}

// testMux is the routes the round trips go through.
func testMux() *Mux {
	m := &Mux{}
	m.HandleFunc("GET /{$}", func(w ResponseWriter, r *Request) { io.WriteString(w, "root\n") })
	m.HandleFunc("GET /v1/apps/{app}", func(w ResponseWriter, r *Request) {
		WriteJSON(w, http1.StatusOK, map[string]string{"app": r.PathValue("app"), "n": r.Query().Get("n"), "host": r.Host})
	})
	m.HandleFunc("POST /echo", func(w ResponseWriter, r *Request) {
		b, err := io.ReadAll(r.Body)
		if errors.Is(err, ErrBodyTooLarge) {
			WriteError(w, http1.StatusRequestEntityTooLarge, err.Error())
			return
		}
		w.Header().Set("X-Length", fmt.Sprint(r.ContentLength))
		w.Write(b)
	})
	m.HandleFunc("GET /big", func(w ResponseWriter, r *Request) {
		for i := range 10_000 {
			fmt.Fprintf(w, "line %d\n", i)
		}
	})
	m.HandleFunc("GET /stream", func(w ResponseWriter, r *Request) {
		for i := range 3 {
			fmt.Fprintf(w, "event %d\n", i)
			if err := w.Flush(); err != nil {
				return
			}
		}
	})
	m.HandleFunc("GET /empty", func(w ResponseWriter, r *Request) { w.WriteHeader(204) })
	// Answers with a Content-Length and no body: HEAD's, 204's.
	m.HandleFunc("GET /length", func(w ResponseWriter, r *Request) {
		w.Header().Set("Content-Length", "5")
		if r.Method != "HEAD" {
			io.WriteString(w, "hello")
		}
	})
	m.HandleFunc("GET /empty-length", func(w ResponseWriter, r *Request) {
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(204)
	})
	// The head sent before the body is read.
	m.HandleFunc("POST /flush-then-read", func(w ResponseWriter, r *Request) {
		w.WriteHeader(200)
		w.Flush()
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "read %q %v\n", b, err)
	})
	m.HandleFunc("POST /flush", func(w ResponseWriter, r *Request) {
		w.WriteHeader(200)
		w.Flush()
		io.WriteString(w, "flushed\n")
	})
	m.HandleFunc("GET /panic", func(w ResponseWriter, r *Request) { panic("on purpose") })
	return m
}

// net/http's client against the server: what it reads is what the
// handlers wrote, with keep-alive on answers of a known length.
func TestNetHTTPClientRoundTrips(t *testing.T) {
	addr, _, _ := testServer(t, testMux(), Options{Name: "test"})
	base := "http://" + addr
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var reused []bool
	do := func(method, path string, body io.Reader) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading the body: %v", method, path, err)
		}
		return resp, string(b)
	}
	if resp, b := do("GET", "/", nil); resp.StatusCode != 200 || b != "root\n" || resp.ContentLength != 5 {
		t.Errorf("GET /: %s %q length %d", resp.Status, b, resp.ContentLength)
	}
	var got map[string]string
	if resp, b := do("GET", "/v1/apps/web%2Fone?n=5", nil); resp.StatusCode != 200 || json.Unmarshal([]byte(b), &got) != nil ||
		got["app"] != "web/one" || got["n"] != "5" || got["host"] != addr || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /v1/apps/web%%2Fone: %s %q %v", resp.Status, b, resp.Header)
	}
	if resp, b := do("HEAD", "/v1/apps/web", nil); resp.StatusCode != 200 || b != "" || resp.ContentLength <= 0 {
		t.Errorf("HEAD: %s %q length %d", resp.Status, b, resp.ContentLength)
	}
	if resp, b := do("POST", "/echo", strings.NewReader(`{"instances":3}`)); b != `{"instances":3}` || resp.Header.Get("X-Length") != "15" {
		t.Errorf("POST with a Content-Length: %s %q %v", resp.Status, b, resp.Header)
	}
	// A reader of unknown length goes chunked.
	if resp, b := do("POST", "/echo", io.MultiReader(strings.NewReader("chunked "), strings.NewReader("body"))); b != "chunked body" || resp.Header.Get("X-Length") != "-1" {
		t.Errorf("POST chunked: %s %q %v", resp.Status, b, resp.Header)
	}
	if resp, b := do("GET", "/big", nil); resp.StatusCode != 200 || !strings.HasSuffix(b, "line 9999\n") || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("GET /big: %s %d bytes %v", resp.Status, len(b), resp.TransferEncoding)
	}
	if resp, b := do("GET", "/stream", nil); b != "event 0\nevent 1\nevent 2\n" {
		t.Errorf("GET /stream: %s %q", resp.Status, b)
	}
	if resp, b := do("GET", "/empty", nil); resp.StatusCode != 204 || b != "" {
		t.Errorf("GET /empty: %s %q", resp.Status, b)
	}
	if resp, b := do("GET", "/nowhere", nil); resp.StatusCode != 404 || b != "404 page not found\n" {
		t.Errorf("GET /nowhere: %s %q", resp.Status, b)
	}
	if resp, b := do("DELETE", "/v1/apps/web", nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || b != "Method Not Allowed\n" {
		t.Errorf("DELETE: %s %q %v", resp.Status, b, resp.Header)
	}
	if resp, _ := do("GET", "/v1//apps/../apps/web?n=1", nil); resp.Request.URL.Path != "/v1/apps/web" || resp.Request.URL.RawQuery != "n=1" {
		t.Errorf("an unclean path was not redirected to its clean form: ended at %s", resp.Request.URL)
	}
	// Every request after the first went on the same connection.
	for i, r := range reused[1:] {
		if !r {
			t.Errorf("request %d came on a new connection: keep-alive broke (%v)", i+2, reused)
			break
		}
	}
}

// rawExchange writes req on a new connection and reads until the server
// closes it.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, req)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%.200q: %v (read %q)", req, err, b)
	}
	return string(b)
}

// What the server says to requests it will not serve, and to HTTP/1.0
// and pipelining clients.
func TestRawRequests(t *testing.T) {
	addr, _, _ := testServer(t, testMux(), Options{Name: "test"})
	for _, tc := range []struct{ req, want string }{
		{"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n"},
		{"GET /stream HTTP/1.0\r\n\r\n", "event 0\nevent 1\nevent 2\n"},
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "Connection: close\r\n"},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/apps/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", `{"app":"a","host":"x","n":""}`},
		// A body the handler did not read is skipped, and the connection
		// serves the next request.
		{"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "root\n"},
		{"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
		{"GET /x HTTP/1.1 extra\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
		{"GET / HTTP/3.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
		{"GET / HTTP/1.1\r\nHost: x\r\nBad Field: y\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 Not Implemented\r\n"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 400 Bad Request\r\n"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", "HTTP/1.1 417 Expectation Failed\r\n"},
		// A body is there to read after the head went out (a Flush).
		{"POST /flush-then-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", `read "hello" <nil>`},
		// ... and a body left unread then is skipped once the handler
		// returns: the connection serves the next request.
		{"POST /flush HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "flushed\n\r\n0\r\n\r\nHTTP/1.1 200 OK"},
		// An answer that has no body keeps the connection, whatever its
		// Content-Length says.
		{"HEAD /length HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "root\n"},
		{"GET /empty-length HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "root\n"},
		// A body no handler reads, too long to skip: the answer comes
		// whole, then the end of the connection, not a reset.
		{"POST /v1/apps/web HTTP/1.1\r\nHost: x\r\nContent-Length: 20480\r\n\r\n" + strings.Repeat("b", 20480), "Method Not Allowed\n"},
	} {
		got := rawExchange(t, addr, tc.req)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q:\n%s\nwant it to contain %q", tc.req, got, tc.want)
		}
		// The server's own refusals are JSON, as the API's errors are.
		if code := got[9:12]; strings.Contains("400 413 417 431 501 505", code) && !strings.Contains(got, `"status":`+code) {
			t.Errorf("%q: a refusal without a JSON error: %q", tc.req, got)
		}
	}
}

// openSockets counts this process's sockets, -1 without /proc/self/fd.
func openSockets() int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range es {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// until polls cond, bounded, and fails the test saying what it waited for.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
	}
}

// Requests past the bounds are refused as before: a body over the cap
// 413, headers over 64 KiB 431, a client that never finishes its headers
// is closed after the header timeout, and one past the connection cap
// gets 503; a panicking handler closes only its connection. Nothing is
// left behind: goroutines and sockets come back to what they were.
func TestLimitsLeakNothing(t *testing.T) {
	goroutines, sockets := runtime.NumGoroutine(), openSockets()
	var mu sync.Mutex
	var logged []string
	o := Options{Name: "test", MaxConns: 3, ReadHeaderTimeout: 300 * time.Millisecond, MaxBodyBytes: 1 << 10,
		Logf: func(f string, a ...any) {
			mu.Lock()
			logged = append(logged, fmt.Sprintf(f, a...))
			mu.Unlock()
		}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	l := Listener(ln, o)
	srv := NewServer(testMux(), o)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	big := strings.Repeat("a", 2<<10)
	if got := rawExchange(t, addr, fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(big), big)); !strings.HasPrefix(got, "HTTP/1.1 413 ") ||
		!strings.Contains(got, "request body too large: more than 1024 bytes") {
		t.Errorf("a body over the cap: %q", got)
	}
	if got := rawExchange(t, addr, fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big)); !strings.HasPrefix(got, "HTTP/1.1 413 ") {
		t.Errorf("a chunked body over the cap: %q", got)
	}
	if got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", 200<<10)+"\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431 ") {
		t.Errorf("headers over 64 KiB: %.100q", got)
	}
	if got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "); got != "" {
		t.Errorf("a client that never finishes its headers was answered %q, want the connection closed", got)
	}
	if got := rawExchange(t, addr, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n"); got != "" {
		t.Errorf("a panicking handler answered %q, want the connection closed", got)
	}
	if got := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Errorf("after a handler's panic the server answers %q", got)
	}
	mu.Lock()
	if len(logged) != 1 || !strings.Contains(logged[0], "test: panic serving GET /panic: on purpose") {
		t.Errorf("logged %q, want the panic", logged)
	}
	mu.Unlock()

	// A flood: the cap's worth of idle connections held, then more.
	var held []net.Conn
	for range o.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		// One request each, so that the server has surely counted it.
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Refused without reading a request (as a cap means), so a client
	// that sent one could see a reset: these send nothing.
	for range 20 {
		if got := rawExchange(t, addr, ""); !strings.HasPrefix(got, "HTTP/1.1 503 ") || !strings.Contains(got, "busy: 3 connections") {
			t.Fatalf("past the cap: %q", got)
		}
	}
	for _, c := range held {
		c.Close()
	}
	until(t, "the held connections to be given back", func() bool { return l.Open() == 0 })
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	l.refusals.Stop()
	until(t, fmt.Sprintf("goroutines back to %d (now %d) and sockets to %d (now %d)", goroutines, runtime.NumGoroutine(), sockets, openSockets()),
		func() bool { return runtime.NumGoroutine() <= goroutines && openSockets() <= sockets })
}

// A client that goes away ends its request's context at once, so that a
// stream it followed stops; Close ends the streams of the clients still
// there; Shutdown lets a request in progress finish.
func TestContextEnds(t *testing.T) {
	started := make(chan struct{}, 2)
	ended := make(chan struct{}, 2)
	release := make(chan struct{})
	m := &Mux{}
	m.HandleFunc("GET /follow", func(w ResponseWriter, r *Request) {
		w.WriteHeader(200)
		w.Flush()
		started <- struct{}{}
		<-r.Context().Done()
		ended <- struct{}{}
	})
	m.HandleFunc("GET /slow", func(w ResponseWriter, r *Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "done\n")
	})
	addr, _, srv := testServer(t, m, Options{Name: "test"})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /follow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30s for the handler of a client that went away to see its context end")
	}

	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	until(t, "Shutdown to begin", srv.isClosing)
	close(release)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a request in progress at Shutdown got no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	// The answer says that the connection ends after it: a keep-alive
	// client is not left to find out by its next request.
	if string(b) != "done\n" || !resp.Close {
		t.Errorf("the request in progress at Shutdown: %s %q, Connection %q", resp.Status, b, resp.Header.Get("Connection"))
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A client that pipelines requests and never reads the answers is dropped
// once its answers fill the connection and WriteTimeout passes: it holds
// neither a goroutine nor a connection slot for long.
func TestWriteTimeoutDropsClientsThatDoNotRead(t *testing.T) {
	addr, l, _ := testServer(t, testMux(), Options{Name: "test", WriteTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One answer read: the server holds the connection.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wrote := make(chan error, 1)
	go func() {
		for {
			if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				wrote <- err
				return
			}
		}
	}()
	until(t, "the server to drop a connection that reads no answer", func() bool { return l.Open() == 0 })
	c.Close()
	select {
	case <-wrote:
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30s for the client's writes to fail once its connection was closed")
	}
}

// WriteTimeout bounds the writing of an answer, not the handler's time
// before it, and a handler that sets its own write deadlines (a stream)
// writes for longer.
func TestWriteTimeoutSparesSlowHandlersAndStreams(t *testing.T) {
	const timeout = 100 * time.Millisecond
	m := &Mux{}
	m.HandleFunc("GET /slow", func(w ResponseWriter, r *Request) {
		<-time.After(3 * timeout) // longer than WriteTimeout, on purpose
		io.WriteString(w, "slow\n")
	})
	m.HandleFunc("GET /stream", func(w ResponseWriter, r *Request) {
		tick := time.NewTicker(timeout / 4)
		defer tick.Stop()
		for i := range 12 { // three times WriteTimeout
			<-tick.C
			w.SetWriteDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(w, "event %d\n", i)
			if w.Flush() != nil {
				return
			}
		}
	})
	addr, _, _ := testServer(t, m, Options{Name: "test", WriteTimeout: timeout})
	if got := rawExchange(t, addr, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasSuffix(got, "\r\n\r\nslow\n") {
		t.Errorf("a handler slower than WriteTimeout: %q", got)
	}
	if got := rawExchange(t, addr, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.Contains(got, "event 11\n") {
		t.Errorf("a stream that sets its write deadlines, longer than WriteTimeout: %q", got)
	}
}

// A body that does not come fails the handler's read after
// ReadBodyTimeout, unless the handler waits longer (SetReadDeadline).
func TestReadBodyTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	read := make(chan error, 1)
	m := &Mux{}
	m.HandleFunc("POST /read", func(w ResponseWriter, r *Request) {
		if r.Query().Get("wait") != "" {
			w.SetReadDeadline(time.Now().Add(60 * time.Second))
		}
		b, err := io.ReadAll(r.Body)
		read <- err
		fmt.Fprintf(w, "read %q\n", b)
	})
	addr, _, _ := testServer(t, m, Options{Name: "test", ReadBodyTimeout: timeout})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the read of a body that does not come: %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30s for the read of a body that does not come to fail")
	}

	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "POST /read?wait=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc")
	<-time.After(3 * timeout) // past ReadBodyTimeout, on purpose
	io.WriteString(c2, "defghij")
	select {
	case err := <-read:
		if err != nil {
			t.Errorf("the read of a body the handler waits longer for: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30s for the handler to read a body it waits longer for")
	}
	c2.SetReadDeadline(time.Now().Add(30 * time.Second))
	if b, err := io.ReadAll(c2); err != nil || !strings.Contains(string(b), `read "abcdefghij"`) {
		t.Errorf("the answer after a body the handler waited for: %q %v", b, err)
	}
}

// MaxBodyBytes may be as large as an int64 goes.
func TestMaxBodyBytesUnbounded(t *testing.T) {
	o := Options{MaxBodyBytes: math.MaxInt64}
	o.fill()
	for _, in := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		r, err := readRequest(http1.NewReader(strings.NewReader(in)), &o)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if b, err := io.ReadAll(r.Body); err != nil || string(b) != "hello" {
			t.Errorf("%q: read %q, %v", in, b, err)
		}
	}
}
