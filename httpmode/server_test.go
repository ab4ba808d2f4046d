package httpmode

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
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
		{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "501"},
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
	s := startServer(t, Options{HeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, Timeout: 200 * time.Millisecond})
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
