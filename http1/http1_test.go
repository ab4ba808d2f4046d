package http1_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/http1"
)

// FuzzChunked: whatever the chunked reader accepts, net/http's decoder
// (httputil's is the same code) accepts too, with the same data. It may be
// stricter (it reads and bounds the trailer section), never laxer.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3;ext=1\r\nabc\r\n0\r\nX-T: v\r\n\r\n",
		"1\nx\r\n0\n\n", // bare LFs: refused
		"A \r\n0123456789\r\n0\r\n\r\n",
		"ffffffffffffffffff\r\n",
		"2\r\nab0\r\n\r\n",
		"0\r\n",
		// Long extensions for a byte of data a chunk: refused.
		strings.Repeat("1;"+strings.Repeat("e", 4000)+"\r\nX\r\n", 5) + "0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ours, err := io.ReadAll(http1.NewChunkedReader(bufio.NewReader(bytes.NewReader(in))))
		if err != nil {
			return
		}
		theirs, terr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if terr != nil || !bytes.Equal(ours, theirs) {
			t.Fatalf("%q: ours %q, net/http's %q (%v)", in, ours, theirs, terr)
		}
	})
}

// A chunked body's framing errors are errors, not a short body.
func TestChunkedErrors(t *testing.T) {
	for _, in := range []string{
		"5\r\nhel",                // the connection ends in the data
		"5\r\nhelloXY0\r\n\r\n",   // no CRLF after the data
		"zz\r\n",                  // not hex
		"0\r\n",                   // no end of the trailer section
		"0\r\n0\r\n\r\n",          // a trailer line with no colon
		"0\r\n: v\r\n\r\n",        // a trailer field with no name
		"0\r\nX: v\r\n w\r\n\r\n", // a folded trailer line
		"0\r\nX : v\r\n\r\n",      // a blank before the colon
		strings.Repeat("1", 17) + "\r\n",
		"0\r\n" + strings.Repeat("X-Long: "+strings.Repeat("a", 1000)+"\r\n", 20) + "\r\n",
		// Too much framing for the data (CVE-2023-39326): 4 KiB of
		// extensions a chunk for a byte of data.
		strings.Repeat("1;"+strings.Repeat("e", 4000)+"\r\nX\r\n", 5) + "0\r\n\r\n",
	} {
		if b, err := io.ReadAll(http1.NewChunkedReader(bufio.NewReader(strings.NewReader(in)))); err == nil {
			t.Errorf("%.40q: read %q and no error", in, b)
		}
	}
}

// Framing is bounded for its data as net/http bounds it: one byte a chunk
// passes, and so do short extensions; long ones a chunk for little data
// do not.
func TestChunkedFraming(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{strings.Repeat("1\r\nX\r\n", 100_000) + "0\r\n\r\n", true},
		{strings.Repeat("1;a=b\r\nX\r\n", 100_000) + "0\r\n\r\n", true},
		{strings.Repeat("400;"+strings.Repeat("e", 2000)+"\r\n"+strings.Repeat("X", 1024)+"\r\n", 100) + "0\r\n\r\n", true},
		{strings.Repeat("1;"+strings.Repeat("e", 4000)+"\r\nX\r\n", 5) + "0\r\n\r\n", false},
		{strings.Repeat("1;"+strings.Repeat("e", 100)+"\r\nX\r\n", 1000) + "0\r\n\r\n", false},
	} {
		_, err := io.ReadAll(http1.NewChunkedReader(bufio.NewReader(strings.NewReader(tc.in))))
		_, terr := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(tc.in)))
		if (err == nil) != tc.ok || (terr == nil) != tc.ok {
			t.Errorf("%.40q...: ours %v, net/http's %v; want ok=%v", tc.in, err, terr, tc.ok)
		}
	}
}

// ReadHead tells a connection that ends before a message (io.EOF) from
// one that ends in it.
func TestReadHeadEnds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", io.EOF},
		{"G", io.ErrUnexpectedEOF},
		{"GET / HT", io.ErrUnexpectedEOF},
		{"GET / HTTP/1.1\r\n", io.ErrUnexpectedEOF},
		{"GET / HTTP/1.1\r\nHost: x", io.ErrUnexpectedEOF},
		{"GET / HTTP/1.1\r\nHost: x\r\n", io.ErrUnexpectedEOF},
	} {
		if _, _, err := http1.NewReader(strings.NewReader(tc.in)).ReadHead(1 << 10); err != tc.want {
			t.Errorf("%q: %v, want %v", tc.in, err, tc.want)
		}
	}
}

// The client reads whatever framing a net/http server chooses, as
// net/http's client does: a Content-Length, the chunked coding (with
// trailers), the end of the connection, interim 1xx answers, and no
// body for HEAD, 204 and 304.
func TestDoAgainstNetHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Mine")+" "+r.Host)
		switch r.URL.Path {
		case "/length":
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			for i := range 5 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("X-Sum", "5")
		case "/big":
			w.Write(bytes.Repeat([]byte("0123456789"), 100_000))
		case "/close":
			c, bw, _ := w.(http.Hijacker).Hijack()
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
			bw.Flush()
			c.Close()
		case "/early":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	for _, tc := range []struct{ method, target, body string }{
		{"GET", "/length", ""}, {"HEAD", "/length", ""}, {"GET", "/chunked", ""}, {"GET", "/big", ""},
		{"GET", "/close", ""}, {"GET", "/early", ""}, {"GET", "/none", ""}, {"GET", "/missing?x=1", ""},
		{"POST", "/echo", `{"instances": 3}`}, {"POST", "/echo", ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req := &http1.Request{Method: tc.method, Target: tc.target, Host: addr, Header: http1.Header{"X-Mine": {"yes"}}}
		if tc.body != "" {
			req.Body = []byte(tc.body)
		}
		resp, err := http1.Do(ctx, dial, req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.target, err)
		}
		ours, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: reading the body: %v", tc.method, tc.target, err)
		}

		nreq, _ := http.NewRequestWithContext(ctx, tc.method, srv.URL+tc.target, strings.NewReader(tc.body))
		nreq.Header.Set("X-Mine", "yes")
		nresp, err := http.DefaultClient.Do(nreq)
		if err != nil {
			t.Fatalf("net/http: %s %s: %v", tc.method, tc.target, err)
		}
		theirs, err := io.ReadAll(nresp.Body)
		nresp.Body.Close()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != nresp.StatusCode || resp.Status != nresp.Status || !bytes.Equal(ours, theirs) ||
			resp.Header.Get("X-Seen") != nresp.Header.Get("X-Seen") {
			t.Errorf("%s %s: ours %s %q %.40q; net/http's %s %q %.40q", tc.method, tc.target,
				resp.Status, resp.Header.Get("X-Seen"), ours, nresp.Status, nresp.Header.Get("X-Seen"), theirs)
		}
	}
}

// Servers that break the protocol or never answer give errors that say
// what happened, within the context's bound.
func TestDoErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	answers := map[string]string{
		"/short":   "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"/garbage": "SMTP ready\r\n\r\n",
		"/huge":    "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", http1.MaxResponseHead+10) + "\r\n\r\n",
		"/silent":  "",
		"/hints5":  strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 5) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/hints6":  strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				f := strings.Fields(line)
				if len(f) < 2 {
					return
				}
				if a := answers[f[1]]; a != "" {
					io.WriteString(c, a)
					return
				}
				io.Copy(io.Discard, c) // /silent: until the client goes
			}()
		}
	}()
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	get := func(target string, limit time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		resp, err := http1.Do(ctx, dial, &http1.Request{Method: "GET", Target: target, Host: "x"})
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if b, err := get("/short", 30*time.Second); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a body shorter than its Content-Length: %q, %v", b, err)
	}
	var pe *http1.ProtocolError
	// The caller names the request: Do's errors do not, not to say it
	// twice.
	if _, err := get("/garbage", 30*time.Second); !errors.As(err, &pe) || strings.Contains(err.Error(), "/garbage") {
		t.Errorf("not HTTP: %v", err)
	}
	// Interim answers are skipped, up to 5 as net/http skips them.
	if b, err := get("/hints5", 30*time.Second); err != nil || b != "ok" {
		t.Errorf("5 interim answers, then the answer: %q, %v", b, err)
	}
	if b, err := get("/hints6", 30*time.Second); !errors.As(err, &pe) {
		t.Errorf("6 interim answers: %q, %v; want an error", b, err)
	}
	if _, err := get("/huge", 30*time.Second); !errors.Is(err, http1.ErrHeaderTooLarge) {
		t.Errorf("headers over the bound: %v", err)
	}
	if _, err := get("/silent", 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a server that does not answer: %v, want the context's deadline", err)
	}
	if _, err := http1.Do(context.Background(), dial, &http1.Request{Method: "GET", Target: "/x y", Host: "x"}); err == nil {
		t.Errorf("a target with a space was sent")
	}
}
