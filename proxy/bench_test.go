package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The benchmarks compare a trivial HTTP/1.1 exchange straight to the backend
// with the same exchange through a Proxy, so the difference is the cost of
// the proxy's accept, dial and splice. Run them as
//
//	go test -run '^$' -bench . -benchtime 5000x ./proxy
//
// A count (5000x) rather than a duration bounds the loop: each
// connection-per-request exchange leaves two sockets in TIME_WAIT, and a
// fixed count keeps that well inside the ephemeral port range.

const (
	benchRequest      = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
	benchRequestClose = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
	benchResponse     = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
	benchResponseEnd  = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok"
)

// benchLimit bounds every connection of a benchmark, which may run longer
// than waitLimit.
const benchLimit = 5 * time.Minute

// httpBackend answers every request on a connection with benchResponse, and
// closes after answering one that asks for it, as an HTTP/1.1 server does.
func httpBackend(s *server, c net.Conn) {
	c.SetDeadline(time.Now().Add(benchLimit))
	r := bufio.NewReaderSize(c, 4096)
	for {
		closeAfter := false
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // the blank line ending the headers
				break
			}
			if bytes.HasPrefix(bytes.ToLower(line), []byte("connection: close")) {
				closeAfter = true
			}
		}
		if closeAfter {
			io.WriteString(c, benchResponseEnd)
			return
		}
		if _, err := io.WriteString(c, benchResponse); err != nil {
			return
		}
	}
}

// benchTargets starts one HTTP backend and a proxy in front of it and returns
// both addresses by name.
func benchTargets(b *testing.B) map[string]string {
	s := startServer(b, "http", httpBackend)
	p := startProxy(b, Options{})
	p.SetBackends([]Backend{s.backend(1)})
	return map[string]string{"direct": s.ln.Addr().String(), "proxy": p.addr}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkKeepAlive: 4 clients (per GOMAXPROCS) each send requests one after
// another on one connection.
func BenchmarkKeepAlive(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"direct", "proxy"} {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(4)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", targets[name])
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(benchLimit))
				buf := make([]byte, len(benchResponse))
				for pb.Next() {
					if _, err := io.WriteString(c, benchRequest); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkConnPerRequest: 4 clients (per GOMAXPROCS) each open a connection,
// send one request with "Connection: close", read the answer to EOF.
func BenchmarkConnPerRequest(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"direct", "proxy"} {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(4)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, len(benchResponseEnd)+1)
				for pb.Next() {
					c, err := net.Dial("tcp", targets[name])
					if err != nil {
						b.Error(err)
						return
					}
					c.SetDeadline(time.Now().Add(benchLimit))
					io.WriteString(c, benchRequestClose)
					n, err := io.ReadFull(c, buf)
					c.Close()
					if err != io.ErrUnexpectedEOF || !strings.HasSuffix(string(buf[:n]), "ok") {
						b.Errorf("response %q, %v; want the whole answer, then EOF", buf[:n], err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}
