package http1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Request is a request as a client sends it.
type Request struct {
	Method string
	// Target is the path and query: "/v1/logs?n=10".
	Target string
	// Host is the Host field: "localhost", "127.0.0.1:8080".
	Host   string
	Header Header
	// Body is sent with a Content-Length (none for nil).
	Body []byte
}

// Write writes r to w, with Connection: close: every request of these
// clients has a connection of its own, so no answer can be mistaken for
// another's and an idle connection never lingers in the runner.
func (r *Request) Write(w *bufio.Writer) error {
	if err := r.check(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.Target, r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	if r.Body != nil || r.Method == "POST" || r.Method == "PUT" {
		fmt.Fprintf(w, "Content-Length: %d\r\n", len(r.Body))
	}
	w.WriteString("Connection: close\r\n\r\n")
	w.Write(r.Body)
	return w.Flush()
}

// check refuses a request that would not be read as the one meant.
func (r *Request) check() error {
	if !ValidToken(r.Method) || !strings.HasPrefix(r.Target, "/") || strings.ContainsAny(r.Target, " \r\n") ||
		strings.ContainsAny(r.Host, " \r\n") {
		return fmt.Errorf("cannot send a request %q %q to %q: not valid HTTP", r.Method, r.Target, r.Host)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if !ValidToken(k) || strings.ContainsAny(v, "\r\n") {
				return fmt.Errorf("cannot send the field %q: not a valid field", k)
			}
		}
	}
	return nil
}

// Response is an answer as a client reads it.
type Response struct {
	StatusCode int
	// Status is the status line's code and reason: "404 Not Found".
	Status string
	Header Header
	// Body reads the answer's body; closing it closes the connection.
	Body io.ReadCloser
}

// MaxResponseHead bounds the status line and header fields of an answer.
const MaxResponseHead = 1 << 20

// max1xx bounds the interim answers before the final one, as net/http
// bounds them: a server that sends them without end does not hold the
// client.
const max1xx = 5

// ReadResponse reads an answer to a request of method from rd. Interim
// answers (1xx but 101) are skipped, up to max1xx of them. The body is
// framed by the chunked coding, Content-Length or the end of the
// connection (RFC 9112 6.3); closing it does not close anything: Do's
// does.
func ReadResponse(rd *Reader, method string) (*Response, error) {
	for interim := 0; ; interim++ {
		line, h, err := rd.ReadHead(MaxResponseHead)
		if err != nil {
			return nil, err
		}
		proto, status, _ := strings.Cut(line, " ")
		code, _, _ := strings.Cut(status, " ")
		n, err := strconv.Atoi(code)
		if _, _, ok := ParseVersion(proto); !ok || err != nil || len(code) != 3 || n < 100 {
			return nil, malformed("bad status line %q", line)
		}
		if n < 200 && n != 101 {
			if interim == max1xx {
				return nil, malformed("more than %d interim (1xx) answers", max1xx)
			}
			continue
		}
		resp := &Response{StatusCode: n, Status: strings.TrimSpace(status), Header: h}
		body, err := responseBody(rd.Buffer(), method, n, h)
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(body)
		return resp, nil
	}
}

func responseBody(br *bufio.Reader, method string, code int, h Header) (io.Reader, error) {
	if method == "HEAD" || code < 200 || code == 204 || code == 304 {
		return strings.NewReader(""), nil
	}
	if chunked, others := Chunked(h); chunked {
		return NewChunkedReader(br), nil
	} else if len(others) > 0 {
		// A coding we cannot undo; its end is the connection's.
		return br, nil
	}
	n, err := ContentLength(h)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return br, nil
	}
	return LengthReader(br, n), nil
}

// LengthReader reads a body of n bytes (its Content-Length) from r: a
// connection that ends before n bytes is io.ErrUnexpectedEOF, not a short
// body.
func LengthReader(r io.Reader, n int64) io.Reader {
	return &exactReader{r: io.LimitReader(r, n), left: n}
}

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Do sends req on a connection from dial and reads the answer's head. The
// connection is the answer's: closing its body closes it. ctx bounds all
// of it, the body included: when ctx ends, the connection's deadline
// passes and a read in progress fails. Its errors say what failed, not
// which request: the caller, who knows what it asked, says that.
func Do(ctx context.Context, dial func(ctx context.Context) (net.Conn, error), req *Request) (*Response, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	fail := func(what string, err error) (*Response, error) {
		stop()
		c.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	// A server may answer and close before it reads the whole request
	// (a refusal): its answer says more than the write's error, so the
	// answer is read whatever the write did.
	werr := req.Write(bufio.NewWriterSize(c, 4<<10))
	resp, err := ReadResponse(NewReader(c), req.Method)
	if err != nil {
		if werr != nil {
			return fail("cannot send the request", werr)
		}
		return fail("no answer", err)
	}
	resp.Body = &connBody{Reader: resp.Body, c: c, stop: stop}
	return resp, nil
}

type connBody struct {
	io.Reader
	c    net.Conn
	stop func() bool
}

func (b *connBody) Close() error {
	b.stop()
	return b.c.Close()
}
