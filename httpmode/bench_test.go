package httpmode

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/clusterrun/clusterrun/route"
)

// rawBackend answers every request it reads with a fixed small response,
// with as little work of its own as possible, so that a benchmark's
// allocations and time are the server's.
func rawBackend(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 51\r\n\r\n{\"lang\":\"go\",\"app\":\"hello\",\"instance\":1,\"pid\":1234}")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						have = copy(buf, buf[i+4:have])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkKeepAlive is one client sending GETs one after another over a
// keep-alive connection through the server to a raw backend: allocs/op
// are the server's per request.
func BenchmarkKeepAlive(b *testing.B) {
	s := startServer(b, Options{})
	s.SetBackends([]route.Backend{{ID: 1, Addr: rawBackend(b), App: "web"}})
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	read := func() {
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				b.Fatal(err)
			}
			have += n
			if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+4+51 {
				return
			}
		}
	}
	c.Write(req)
	read()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		read()
	}
}

var _ = io.EOF

// BenchmarkClose is a new client connection per request (Connection:
// close), one after another.
func BenchmarkClose(b *testing.B) {
	s := startServer(b, Options{})
	s.SetBackends([]route.Backend{{ID: 1, Addr: rawBackend(b), App: "web"}})
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	one := func() {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := c.Read(buf); err != nil {
				return // EOF: the server closed after its answer
			}
		}
	}
	one()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one()
	}
}
