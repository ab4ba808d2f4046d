package httpmode

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// FuzzParseRequest checks the request parser against net/http's: whatever
// it accepts, net/http reads as the same request (method, target, host,
// body framing). It may refuse more (it is stricter where a lenient
// reading could be read two ways), never read differently what both take.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x?y=1 HTTP/1.0\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /p HTTP/1.1\nHost: a\nContent-Length: 1, 1\n\nx",
		"GET http://a/b HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Y\r\nX-Y: 1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h head
		err := parseRequest(b, &h)
		if err != nil {
			if err == errIncomplete && bytes.Contains(b, []byte("\n\n")) && bytes.Index(b, []byte("\n\n")) < 2 {
				t.Fatalf("an empty line yet incomplete: %q", b)
			}
			return
		}
		if h.size > len(b) || h.size <= 0 {
			t.Fatalf("head size %d of %d bytes", h.size, len(b))
		}
		req, gerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:h.size])))
		if gerr != nil {
			t.Fatalf("parsed %q, net/http refuses it: %v", b[:h.size], gerr)
		}
		if req.Method != string(h.method.of(b)) || req.RequestURI != string(h.target.of(b)) {
			t.Fatalf("%q: method %q target %q, net/http %q %q", b, h.method.of(b), h.target.of(b), req.Method, req.RequestURI)
		}
		if req.ProtoMinor != h.minor {
			t.Fatalf("%q: minor %d, net/http %d", b, h.minor, req.ProtoMinor)
		}
		if !h.host.empty() && !strings.EqualFold(req.Host, string(h.host.of(b))) && req.URL.Host == "" {
			t.Fatalf("%q: host %q, net/http %q", b, h.host.of(b), req.Host)
		}
		switch {
		case h.chunked:
			if len(req.TransferEncoding) != 1 || req.TransferEncoding[0] != "chunked" {
				t.Fatalf("%q: chunked, net/http %v", b, req.TransferEncoding)
			}
		case h.contentLength >= 0:
			if req.ContentLength != h.contentLength {
				t.Fatalf("%q: length %d, net/http %d", b, h.contentLength, req.ContentLength)
			}
		default:
			if req.ContentLength > 0 || len(req.TransferEncoding) > 0 {
				t.Fatalf("%q: no body, net/http %d %v", b, req.ContentLength, req.TransferEncoding)
			}
		}
	})
}

// FuzzChunked checks the chunked decoder against net/http/httputil's, fed
// in pieces of every size: whatever body it reads whole, httputil reads as
// the same data; it never goes past the body's end.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"1;ext=\"x\"\r\na\r\n0\r\nTrailer: v\r\n\r\n",
		"A\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\nNEXT",
		"0\r\n\r\n",
		"5\nhello\n0\n\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, piece uint8) {
		step := int(piece)%17 + 1
		var c chunked
		var data []byte
		used := 0
		for used < len(b) && !c.done() {
			end := min(used+step, len(b))
			n, d, err := c.next(b[used:end])
			if err != nil {
				return
			}
			if n < 0 || used+n > end {
				t.Fatalf("used %d of %d", n, end-used)
			}
			data = append(data, d...)
			used += n
		}
		if !c.done() {
			return
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(b[:used])))
		if err != nil {
			t.Fatalf("%q read whole as %q, httputil: %v", b[:used], data, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%q: %q, httputil %q", b[:used], data, got)
		}
	})
}
