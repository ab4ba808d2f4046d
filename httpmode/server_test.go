package httpmode

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/route"
)

func TestForwardsGET(t *testing.T) {
	be := startBackend(t, hello("a"))
	s := startServer(t, Options{})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	c := client(t)
	for i := 0; i < 3; i++ {
		resp, body := mustGet(t, c, s.url+"/x?y=1")
		if resp.StatusCode != 200 || body != "a GET /x?y=1" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
}

// Workers that stayed idle through a trim period end; the one serving a
// kept-alive client stays, and the client's next request is served.
func TestIdleWorkersEnd(t *testing.T) {
	be := startBackend(t, hello("a"))
	s := startServer(t, Options{}, func(s *Server) { s.w.every = 20 * time.Millisecond })
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	kept := client(t)
	mustGet(t, kept, s.url+"/kept")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				c, err := net.Dial("tcp", s.addr)
				if err != nil {
					t.Error(err)
					return
				}
				c.SetDeadline(time.Now().Add(20 * time.Second))
				io.WriteString(c, "GET /burst HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
				if b, err := io.ReadAll(c); err != nil || !bytes.Contains(b, []byte("a GET /burst")) {
					t.Errorf("burst request: %q %v", b, err)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { return s.w.live.Load() == 1 }, "every worker but the kept-alive client's to end")
	if resp, body := mustGet(t, kept, s.url+"/kept"); resp.StatusCode != 200 || body != "a GET /kept" {
		t.Fatalf("the kept-alive client after the trim: %d %q", resp.StatusCode, body)
	}
}

// The instance sees the client's request with the forwarding fields the
// runner adds, the hop-by-hop ones gone and Host kept; the client's own
// forwarding fields are replaced unless it is a trusted proxy.
func TestForwardingHeaders(t *testing.T) {
	got := make(chan http.Header, 4)
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		got <- h
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		io.WriteString(w, "ok")
	})
	for _, trusted := range []bool{false, true} {
		o := Options{}
		if trusted {
			o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}
		s := startServer(t, o)
		s.SetBackends([]route.Backend{be.backend(1, 0)})
		rc := dialRaw(t, s.addr)
		rc.send(t, "GET /h HTTP/1.1\r\nHost: example.com:8080\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Proto: https\r\n"+
			"Forwarded: for=10.9.9.9;proto=https\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n")
		resp, body := rc.read(t, "GET")
		if body != "ok" || resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Connection") != "" {
			t.Errorf("trusted %v: answer %v %q: hop-by-hop fields of the instance must not reach the client", trusted, resp.Header, body)
		}
		h := <-got
		wantXFF, wantProto, wantFwd := "127.0.0.1", "http", `for=127.0.0.1;host="example.com:8080";proto=http`
		if trusted {
			wantXFF, wantProto, wantFwd = "10.9.9.9, 127.0.0.1", "https", `for=10.9.9.9;proto=https, for=127.0.0.1;host="example.com:8080";proto=http`
		}
		for k, want := range map[string]string{"Host": "example.com:8080", "X-Forwarded-For": wantXFF, "X-Forwarded-Proto": wantProto,
			"X-Forwarded-Host": "example.com:8080", "Forwarded": wantFwd, "X-Kept": "yes", "X-Hop": "", "Proxy-Connection": "", "Te": "", "Connection": ""} {
			if v := strings.Join(h.Values(k), "|"); v != want {
				t.Errorf("trusted %v: the instance saw %s: %q, want %q", trusted, k, v, want)
			}
		}
	}
}

// Bodies go through whole, with a length or chunked, both ways, and a
// keep-alive connection carries one request after another.
func TestBodies(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no length: chunked
		}
		fmt.Fprintf(w, "%d:%x", len(b), sha256.Sum256(b))
	})
	s := startServer(t, Options{MaxRetryBody: 1000})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	c := client(t)
	for _, n := range []int{0, 10, 999, 1000, 1001, 70000, 3 << 20} {
		body := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		want := fmt.Sprintf("%d:%x", n, sha256.Sum256(body))
		for _, path := range []string{"/length", "/chunked"} {
			for _, chunkedReq := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(body)
				if chunkedReq {
					r = io.MultiReader(r) // no length known: chunked
				}
				req, _ := http.NewRequest("POST", s.url+path, r)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(got) != want {
					t.Errorf("%d bytes to %s (chunked %v): got %q, want %q", n, path, chunkedReq, got, want)
				}
			}
		}
	}
	// A big answer, with a length and without.
	big := bytes.Repeat([]byte("x"), 5<<20)
	be2 := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/len" {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		}
		w.Write(big)
	})
	s.SetBackends([]route.Backend{be2.backend(2, 0)})
	for _, p := range []string{"/len", "/chunked"} {
		resp, got := mustGet(t, c, s.url+p)
		if len(got) != len(big) || resp.StatusCode != 200 {
			t.Errorf("%s: %d bytes, status %d", p, len(got), resp.StatusCode)
		}
	}
}

// A malformed request gets a 400 and never reaches an instance; one whose
// head is too large gets 431.
func TestMalformedIsRefused(t *testing.T) {
	be := startBackend(t, hello("a"))
	s := startServer(t, Options{MaxHeaderSize: 2048})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	for _, tc := range []struct{ req, want string }{
		{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", "400"},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
		{"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
		{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
		{"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "400"},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 3000) + "\r\n\r\n", "431"},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"},
		// Trailer lines that are no header field: no colon, no name, a
		// fold, a blank before the colon.
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n0\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n: v\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: v\r\n w\r\n\r\n", "400"},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX : v\r\n\r\n", "400"},
		{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "501"},
		// A path's %-escapes must be whole, after a '#' too: a request
		// target has no fragment (RFC 9112 3.2), and net/http reads the
		// '#' as part of the path and refuses the escape.
		{"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
		{"GET /#%0 HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
		{"GET http://a/b#%g0 HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
	} {
		got := raw(t, s.addr, tc.req)
		if !strings.HasPrefix(got, "HTTP/1.1 "+tc.want+" ") || !strings.Contains(got, "Connection: close") {
			t.Errorf("%.80q: got %.200q, want %s and a close", tc.req, got, tc.want)
		}
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("the instance got %d requests; a malformed one must never be forwarded", n)
	}
}

// Well-formed trailer fields end a chunked body and are dropped: the
// instance gets the data.
func TestTrailersAreDropped(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %q, trailer %q", b, r.Trailer.Get("X-T"))
	})
	s := startServer(t, Options{})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	got := raw(t, s.addr, "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\nhello\r\n0\r\nX-T: v\tw\r\nX-U:\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, `got "hello", trailer ""`) {
		t.Fatalf("got %.300q, want 200 with the body and no trailer", got)
	}
}

// A client that sends its head slowly is answered 408 after
// header_timeout; an idle keep-alive connection is closed after
// idle_timeout; an instance that does not answer in time makes a 504.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	// Timeout also bounds the answer to the request after the 504, which a
	// busy machine may take a while to give: it is the longest of the three.
	s := startServer(t, Options{HeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, Timeout: 2 * time.Second})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	if got := raw(t, s.addr, "GET / HTTP/1.1\r\nHost: a\r\n"); !strings.HasPrefix(got, "HTTP/1.1 408 ") {
		t.Errorf("slow head: got %q, want 408", got)
	}
	rc := dialRaw(t, s.addr)
	rc.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := rc.read(t, "GET"); resp.StatusCode != 504 {
		t.Errorf("no answer: got %d, want 504", resp.StatusCode)
	}
	// The connection goes on after a 504, then closes when idle.
	rc.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := rc.read(t, "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("after 504: got %d %q", resp.StatusCode, body)
	}
	if n, err := rc.r.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read %v %v, want EOF", n, err)
	}
}

// A keep-alive client's connection outlives its instance: its next request
// goes to the instance that replaced it.
func TestKeepAliveOutlivesInstances(t *testing.T) {
	a := startBackend(t, hello("a"))
	b := startBackend(t, hello("b"))
	s := startServer(t, Options{})
	s.SetBackends([]route.Backend{a.backend(1, 0)})
	rc := dialRaw(t, s.addr)
	rc.send(t, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := rc.read(t, "GET"); body != "a GET /1" {
		t.Fatalf("got %q", body)
	}
	s.SetBackends([]route.Backend{b.backend(2, 0)})
	a.srv.Close()
	rc.send(t, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := rc.read(t, "GET"); body != "b GET /2" {
		t.Fatalf("got %q", body)
	}
}

// A GET that an instance fails before answering (it crashed) is sent to
// another; a POST is not, unless the instance never got it.
func TestRetries(t *testing.T) {
	dying := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close() // as a kill -9 would
	})
	good := startBackend(t, hello("good"))
	s := startServer(t, Options{Balance: route.RoundRobin, Logf: t.Logf})
	s.SetBackends([]route.Backend{dying.backend(1, 0), good.backend(2, 1)})
	c := client(t)
	for i := 0; i < 6; i++ {
		resp, body := mustGet(t, c, s.url+"/")
		if resp.StatusCode != 200 || body != "good GET /" {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
		}
		req, _ := http.NewRequest("PUT", s.url+"/p", strings.NewReader("body"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "good PUT /p" {
			t.Fatalf("PUT %d: %d %q", i, resp.StatusCode, got)
		}
	}
	posts502 := 0
	for i := 0; i < 6; i++ {
		resp, err := c.Post(s.url+"/p", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 502 {
			posts502++
		}
	}
	if posts502 == 0 {
		t.Errorf("every POST succeeded: one that reached the dying instance must not be sent twice")
	}
	// Connection refused: never delivered, so even a POST goes elsewhere.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()
	s.SetBackends([]route.Backend{{ID: 3, Addr: refused, App: "web", Slot: 0}, good.backend(2, 1)})
	for i := 0; i < 4; i++ {
		resp, err := c.Post(s.url+"/p", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != "good POST /p" {
			t.Fatalf("POST to a refusing instance %d: %d %q", i, resp.StatusCode, got)
		}
	}
}

// Quiesce answers once no request is outstanding on the instance: a
// request in flight keeps it busy until its answer ends, and an upgraded
// connection until it closes.
func TestQuiesce(t *testing.T) {
	release := make(chan struct{})
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, rw, _ := w.(http.Hijacker).Hijack()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			rw.Flush()
			io.Copy(c, rw) // echo until the client closes
			c.Close()
			return
		}
		<-release
		io.WriteString(w, "done")
	})
	s := startServer(t, Options{})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	q0 := s.Quiesce(1, time.Hour)
	waitFor(t, func() bool { return isClosed(q0) }, "an instance with nothing under way to be quiet")
	rc := dialRaw(t, s.addr)
	rc.send(t, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, func() bool { return be.hits.Load() == 1 }, "the request to reach the instance")
	s.SetBackends(nil)
	q := s.Quiesce(1, time.Hour)
	if isClosed(q) {
		t.Fatal("quiet with a request in flight")
	}
	close(release)
	if _, body := rc.read(t, "GET"); body != "done" {
		t.Fatalf("got %q", body)
	}
	waitFor(t, func() bool { return isClosed(q) }, "quiet once the answer ended")

	// An upgraded connection: busy whatever its idleness, until it ends.
	s.SetBackends([]route.Backend{be.backend(2, 0)})
	up := dialRaw(t, s.addr)
	up.send(t, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if resp, _ := up.read(t, "GET"); resp.StatusCode != 101 {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	up.send(t, "ping\n")
	if line, err := up.r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	s.SetBackends(nil)
	q = s.Quiesce(2, time.Millisecond)
	// Twenty times idle: an idle-based rule would have let it go.
	time.Sleep(20 * time.Millisecond)
	if isClosed(q) {
		t.Fatal("quiet with an upgraded connection open")
	}
	up.c.Close()
	waitFor(t, func() bool { return isClosed(q) }, "quiet once the upgraded connection ended")
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A sticky cookie keeps a client on the instance that answered it first;
// a client whose instance left the set stays with it while it drains,
// gets 503 while it stops, and is moved (its cookie rewritten) once it is
// gone.
func TestStickyCookie(t *testing.T) {
	a := startBackend(t, hello("a"))
	b := startBackend(t, hello("b"))
	s := startServer(t, Options{StickyCookie: "srv"})
	s.SetBackends([]route.Backend{a.backend(1, 0), b.backend(2, 1)})
	cookies := map[string]string{}
	for i := 0; i < 4; i++ {
		resp, body := mustGet(t, http.DefaultClient, s.url+"/")
		c := resp.Header.Get("Set-Cookie")
		if !strings.HasPrefix(c, "srv=web.") || !strings.Contains(c, "; Path=/; HttpOnly; SameSite=Lax") {
			t.Fatalf("Set-Cookie %q", c)
		}
		cookies[body[:1]] = strings.TrimPrefix(strings.Split(c, ";")[0], "srv=")
	}
	if cookies["a"] != "web.0.1" || cookies["b"] != "web.1.2" {
		t.Fatalf("cookies %v, want a: web.0.1 and b: web.1.2 (both instances picked)", cookies)
	}
	get := func(cookie string) (int, string, string) {
		req, _ := http.NewRequest("GET", s.url+"/", nil)
		req.Header.Set("Cookie", "x=1; srv="+cookie+"; y=2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body), resp.Header.Get("Set-Cookie")
	}
	for i := 0; i < 5; i++ {
		if code, body, set := get("web.1.2"); code != 200 || body != "b GET /" || set != "" {
			t.Fatalf("stuck to b: %d %q, Set-Cookie %q", code, body, set)
		}
	}
	// b leaves the set (a reload): its clients still reach it.
	s.SetBackends([]route.Backend{a.backend(1, 0)})
	if _, body, _ := get("web.1.2"); body != "b GET /" {
		t.Fatalf("draining: %q, want b", body)
	}
	s.Stopping(2)
	if code, _, set := get("web.1.2"); code != 503 || set != "" {
		t.Fatalf("stopping: %d, Set-Cookie %q; want 503 and the cookie kept", code, set)
	}
	s.Forget(2)
	waitFor(t, func() bool { code, _, _ := get("web.1.2"); return code == 200 }, "the client to be moved after the grace")
	if code, body, set := get("web.1.2"); code != 200 || body != "a GET /" || !strings.HasPrefix(set, "srv=web.0.1;") {
		t.Fatalf("moved: %d %q, Set-Cookie %q", code, body, set)
	}
	// A cookie that names nothing known is rewritten.
	if code, body, set := get("garbage"); code != 200 || body != "a GET /" || !strings.HasPrefix(set, "srv=web.0.1;") {
		t.Fatalf("garbage cookie: %d %q %q", code, body, set)
	}
}

// A request that finds no routable instance waits for one, up to
// QueueTimeout; past it, 503.
func TestQueue(t *testing.T) {
	be := startBackend(t, hello("a"))
	s := startServer(t, Options{QueueTimeout: 30 * time.Second})
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.url + "/q")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	waitFor(t, func() bool { return s.Stats().Queued == 1 }, "the request to wait")
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	if body := <-got; body != "a GET /q" {
		t.Fatalf("got %q", body)
	}
	s2 := startServer(t, Options{QueueTimeout: 50 * time.Millisecond})
	resp, body := mustGet(t, http.DefaultClient, s2.url+"/")
	if resp.StatusCode != 503 || s2.Stats().QueueTimeouts != 1 {
		t.Fatalf("no instance: %d %q, %d timeouts", resp.StatusCode, body, s2.Stats().QueueTimeouts)
	}
}

// Clients of HTTP/1.0, pipelined requests, HEAD, 204, interim answers
// (Expect: 100-continue) and answers that end with the instance's close
// all come through whole, each request answered in order.
func TestProtocolCorners(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/head":
			w.Header().Set("Content-Length", "5")
		case "/upload":
			b, _ := io.ReadAll(r.Body) // reading sends the 100 Continue
			fmt.Fprintf(w, "got %d", len(b))
		default:
			hello("a")(w, r)
		}
	})
	// An instance that frames its answer by closing the connection.
	closer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	go func() {
		for {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				http.ReadRequest(bufio.NewReader(c))
				io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
			}()
		}
	}()
	s := startServer(t, Options{})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	rc := dialRaw(t, s.addr)
	rc.send(t, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /head HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []struct{ method, body string }{{"GET", "a GET /1"}, {"HEAD", ""}, {"GET", ""}, {"GET", "a GET /2"}} {
		if _, body := rc.read(t, want.method); body != want.body {
			t.Fatalf("pipelined %s: %q, want %q", want.method, body, want.body)
		}
	}
	rc.send(t, "POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := rc.r.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("100-continue: %q %v", line, err)
	}
	rc.r.ReadString('\n')
	rc.send(t, "hello")
	if _, body := rc.read(t, "POST"); body != "got 5" {
		t.Fatalf("upload: %q", body)
	}
	got := raw(t, s.addr, "GET /old HTTP/1.0\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "a GET /old") || !strings.Contains(got, "Connection: close") {
		t.Fatalf("HTTP/1.0: %q", got)
	}
	s.SetBackends([]route.Backend{{ID: 9, Addr: closer.Addr().String(), App: "web"}})
	rc.send(t, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := rc.read(t, "GET")
	if body != "until close" || resp.TransferEncoding == nil || resp.Close {
		t.Fatalf("an answer ended by the instance's close: %q %v close %v: want it chunked on a kept connection", body, resp.TransferEncoding, resp.Close)
	}
	rc.send(t, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body := rc.read(t, "GET"); body != "until close" {
		t.Fatalf("again: %q", body)
	}
}

// An interim answer other than 100 Continue (103 Early Hints) reaches a 1.1
// client once, before the final answer, which follows it alone.
func TestEarlyHintsPassedOnOnce(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		hello("a")(w, r)
	})
	s := startServer(t, Options{})
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	got := raw(t, s.addr, "GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if n := strings.Count(got, "HTTP/1.1 103 "); n != 1 || strings.Count(got, "HTTP/1.1 200 ") != 1 ||
		!strings.HasPrefix(got, "HTTP/1.1 103 ") || !strings.HasSuffix(got, "a GET /early") {
		t.Fatalf("an answer with 103 Early Hints before it: %q, want one 103 head, then one 200", got)
	}
}

// The access log gets one line per request, of the instance that answered
// it; the figures count it by status class and slot.
func TestAccessLogAndFigures(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "hello")
	})
	var mu sync.Mutex
	var lines []string
	s := startServer(t, Options{AccessLog: func(app string, slot int, id uint64, b []byte) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			lines = append(lines, fmt.Sprintf("%s.%d(%d) %s", app, slot, id, l))
		}
	}})
	s.SetBackends([]route.Backend{be.backend(7, 3)})
	c := client(t)
	mustGet(t, c, s.url+"/a?b=\"c\"")
	mustGet(t, c, s.url+"/missing")
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(lines) == 2 }, "two access log lines")
	re := regexp.MustCompile(`^web\.3\(7\) 127\.0\.0\.1 "GET /a\?b=\\"c\\"" 200 5B \d+\.\d{3}ms$`)
	if !re.MatchString(lines[0]) || !strings.Contains(lines[1], `"GET /missing" 404 19B`) {
		t.Errorf("access log:\n%s", strings.Join(lines, "\n"))
	}
	inst, slots := s.Figures()
	if len(inst) != 1 || inst[0].ID != 7 || inst[0].Recent.PerSec <= 0 || inst[0].Recent.P50 <= 0 || inst[0].Recent.P99 < inst[0].Recent.P50 {
		t.Errorf("instance figures %+v", inst)
	}
	if len(slots) != 1 || slots[0].Slot != 3 || slots[0].ByClass != [5]uint64{0, 1, 0, 1, 0} {
		t.Errorf("slot figures %+v", slots)
	}
}

// The fine buckets bound every duration within about 6% from above.
func TestFineBuckets(t *testing.T) {
	prev := time.Duration(0)
	for i := 0; i < fineBuckets; i++ {
		up := fineUpper(i)
		if up <= prev {
			t.Fatalf("bucket %d: %v after %v", i, up, prev)
		}
		prev = up
	}
	for _, d := range []time.Duration{0, 999, time.Microsecond, 15 * time.Microsecond, 17 * time.Microsecond, 840 * time.Microsecond, 12 * time.Millisecond, 3 * time.Second, time.Hour} {
		i := fineIndex(int64(d))
		up := fineUpper(i)
		if i < fineBuckets-1 && (up < d || float64(up) > float64(d)*1.07+float64(time.Microsecond)) {
			t.Errorf("%v: bucket %d up to %v", d, i, up)
		}
	}
}

// An instance that sends part of an answer, or a malformed one, makes a 502
// and gets the request once: bytes of an answer came back, so it is not
// sent again, even a GET.
func TestCutAnswerIsNotRetried(t *testing.T) {
	for name, answer := range map[string]string{
		"cut head":    "HTTP/1.1 200 OK\r\nContent-Ty",
		"malformed":   "HTTP/1.1 2xx OK\r\n\r\n",
		"101 unasked": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var hits atomic.Int64
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					hits.Add(1)
					go func() {
						http.ReadRequest(bufio.NewReader(c))
						io.WriteString(c, answer)
						c.Close()
					}()
				}
			}()
			good := startBackend(t, hello("good"))
			s := startServer(t, Options{Balance: route.RoundRobin})
			s.SetBackends([]route.Backend{{ID: 1, Addr: ln.Addr().String(), App: "web"}, good.backend(2, 1)})
			got502 := false
			for i := 0; i < 4; i++ {
				resp, _ := mustGet(t, http.DefaultClient, s.url+"/")
				got502 = got502 || resp.StatusCode == 502
			}
			if !got502 || hits.Load() != 2 {
				t.Fatalf("502 seen %v, the broken instance got %d requests of 4 in turn: want 502s and 2, never a second try", got502, hits.Load())
			}
		})
	}
}

// When Close returns, every request's access log line has reached the
// sink; a second Close changes nothing.
func TestAccessLogCompleteAtClose(t *testing.T) {
	be := startBackend(t, hello("a"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	lines := 0
	s := New(ln, Options{AccessLog: func(_ string, _ int, _ uint64, b []byte) {
		mu.Lock()
		lines += bytes.Count(b, []byte("\n"))
		mu.Unlock()
	}})
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	c := client(t)
	const n = 50
	for range n {
		mustGet(t, c, "http://"+ln.Addr().String()+"/x")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := lines
	mu.Unlock()
	if got != n {
		t.Errorf("%d access log lines when Close returned, want %d", got, n)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second close: %v", err)
	}
	<-served
}

// A new connection that has sent nothing is idle: Close ends it at once,
// without waiting for its idle timeout.
func TestCloseEndsNewIdleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, Options{IdleTimeout: time.Hour})
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	rc := dialRaw(t, ln.Addr().String())
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	}, "the connection to be served")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	<-served
	if n, err := rc.r.ReadByte(); err != io.EOF {
		t.Errorf("idle new connection: read %v %v, want EOF", n, err)
	}
}

// Close ends every goroutine and closes every descriptor the server held:
// workers, pooled connections to instances, an upgraded connection, the
// access log's goroutine.
func TestCloseLeavesNothing(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, rw, _ := w.(http.Hijacker).Hijack()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			rw.Flush()
			io.Copy(c, rw)
			c.Close()
			return
		}
		io.WriteString(w, "ok")
	})
	goroutines, fds := runtime.NumGoroutine(), openNetFDs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, Options{StickyCookie: "s", AccessLog: func(string, int, uint64, []byte) {}})
	served := make(chan struct{})
	go func() { s.Serve(); close(served) }()
	s.SetBackends([]route.Backend{be.backend(1, 0)})
	url := "http://" + ln.Addr().String() + "/"
	keep := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 20; i++ {
		mustGet(t, keep, url)
		mustGet(t, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, url)
	}
	up := dialRaw(t, ln.Addr().String())
	up.send(t, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if resp, _ := up.read(t, "GET"); resp.StatusCode != 101 {
		t.Fatalf("upgrade: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s.Close(ctx) // the upgraded connection is cut at ctx's end
	<-served
	keep.CloseIdleConnections()
	up.c.Close()
	be.srv.Close()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines }, fmt.Sprintf("goroutines back to %d", goroutines))
	waitFor(t, func() bool { return openNetFDs(t) <= fds }, fmt.Sprintf("sockets and epoll instances back to %d", fds))
}

// openNetFDs counts the test process's open sockets and epoll instances
// (the runtime opens files of its own lazily, which a count of every
// descriptor would see; its own epoll instance is open before a test
// starts).
func openNetFDs(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	n := 0
	for _, e := range es {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "socket:") || l == "anon_inode:[eventpoll]" {
			n++
		}
	}
	return n
}
