package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/clusterrun/clusterrun/http1"
)

// Request is a request as a handler sees it.
type Request struct {
	Method string
	// Path is the decoded path, RawPath the path as sent (still escaped):
	// patterns are matched against RawPath's segments, as net/http does,
	// so that an escaped slash stays inside a segment.
	Path, RawPath string
	RawQuery      string
	// Proto is "HTTP/1.1" or "HTTP/1.0".
	Proto string
	// Host is the Host field (it is not in Header).
	Host   string
	Header http1.Header
	// Body reads the body; it is empty for a request without one. It
	// fails with ErrBodyTooLarge past Options.MaxBodyBytes.
	Body io.Reader
	// ContentLength is the body's length, -1 when chunked.
	ContentLength int64
	// RemoteAddr is the client's address, "" on a unix socket.
	RemoteAddr string

	ctx    context.Context
	names  []string
	values []string
	minor  int
	// expect: the client waits for 100 Continue before it sends the body.
	expect bool
	body   *body
}

// Context ends when the client goes away, when the handler returns, or
// when the server is closed.
func (r *Request) Context() context.Context {
	if r.ctx == nil {
		return context.Background()
	}
	return r.ctx
}

// WithContext returns a shallow copy of r with ctx.
func (r *Request) WithContext(ctx context.Context) *Request {
	r2 := *r
	r2.ctx = ctx
	return &r2
}

// Query parses RawQuery; malformed pairs are dropped, as net/http does.
func (r *Request) Query() url.Values {
	v, _ := url.ParseQuery(r.RawQuery)
	return v
}

// PathValue is the value of the wildcard {name} of the pattern that
// matched, decoded; "" when there is none.
func (r *Request) PathValue(name string) string {
	for i, n := range r.names {
		if n == name {
			return r.values[i]
		}
	}
	return ""
}

// SetPathValue sets what PathValue(name) returns.
func (r *Request) SetPathValue(name, value string) {
	for i, n := range r.names {
		if n == name {
			r.values[i] = value
			return
		}
	}
	r.names = append(r.names, name)
	r.values = append(r.values, value)
}

// ErrBodyTooLarge is a read past Options.MaxBodyBytes of a chunked body
// (a longer Content-Length is refused before the handler runs).
var ErrBodyTooLarge = errors.New("request body too large")

// requestError is a request the server refuses before any handler sees
// it, with the status that says why.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func refuse(code int, format string, args ...any) (*Request, error) {
	return nil, &requestError{code, fmt.Sprintf(format, args...)}
}

// readRequest reads the next request's head from rd and frames its body.
// An error is a *requestError when the client is to be told why, else the
// connection's (it ended, timed out).
func readRequest(rd *http1.Reader, o *Options) (*Request, error) {
	line, h, err := rd.ReadHead(o.MaxHeaderBytes)
	var pe *http1.ProtocolError
	switch {
	case errors.Is(err, http1.ErrHeaderTooLarge):
		return refuse(http1.StatusHeaderFieldsTooLarge, "request headers too large: more than %d bytes", o.MaxHeaderBytes)
	case errors.As(err, &pe):
		return refuse(http1.StatusBadRequest, "bad request: %v", err)
	case err != nil:
		return nil, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !http1.ValidToken(method) {
		return refuse(http1.StatusBadRequest, "bad request: malformed request line %q", line)
	}
	major, minor, ok := http1.ParseVersion(proto)
	switch {
	case !ok:
		return refuse(http1.StatusBadRequest, "bad request: malformed HTTP version %q", proto)
	case major != 1:
		return refuse(http1.StatusHTTPVersionNotSupported, "HTTP version %s is not supported; use HTTP/1.1", proto)
	}
	// A path ("/v1/status?sample=false"), "*" (OPTIONS), or an absolute
	// http URL with a path, as a proxy would send it.
	u, err := url.ParseRequestURI(target)
	if err != nil || !strings.HasPrefix(target, "/") && target != "*" &&
		!((u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.HasPrefix(u.Path, "/")) {
		return refuse(http1.StatusBadRequest, "bad request: malformed request target %q", target)
	}
	r := &Request{Method: method, Path: u.Path, RawPath: u.EscapedPath(), RawQuery: u.RawQuery,
		Proto: proto, Header: h, minor: minor}
	// As net/http's server: field names are tokens, values have no
	// control characters but tabs.
	for k, vs := range h {
		if !http1.ValidToken(k) {
			return refuse(http1.StatusBadRequest, "bad request: invalid field name %q", k)
		}
		for _, v := range vs {
			if strings.ContainsFunc(v, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) {
				return refuse(http1.StatusBadRequest, "bad request: invalid value of the field %s", k)
			}
		}
	}
	hosts := h["Host"]
	delete(h, "Host")
	switch {
	case len(hosts) > 1:
		return refuse(http1.StatusBadRequest, "bad request: %d Host fields", len(hosts))
	case len(hosts) == 0 && minor >= 1:
		return refuse(http1.StatusBadRequest, "bad request: no Host field")
	case len(hosts) == 1 && strings.ContainsFunc(hosts[0], func(c rune) bool { return c <= ' ' || c == 0x7f }):
		return refuse(http1.StatusBadRequest, "bad request: malformed Host %q", hosts[0])
	case len(hosts) == 1:
		r.Host = hosts[0]
	}
	if u.Host != "" {
		r.Host = u.Host
	}
	if err := frameBody(r, rd, o); err != nil {
		return nil, err
	}
	return r, nil
}

// frameBody sets r's Body from its Content-Length or chunked coding, and
// refuses a body over the bound before it is read when its length says so.
func frameBody(r *Request, rd *http1.Reader, o *Options) error {
	n, err := http1.ContentLength(r.Header)
	if err != nil {
		_, err = refuse(http1.StatusBadRequest, "bad request: %v", err)
		return err
	}
	// Transfer-Encoding: chunked and nothing else, as net/http takes it.
	te := r.Header["Transfer-Encoding"]
	chunked := len(te) > 0
	switch {
	case !chunked:
	case r.minor == 0:
		_, err = refuse(http1.StatusBadRequest, "bad request: Transfer-Encoding in an HTTP/1.0 request")
		return err
	case len(te) > 1 || !strings.EqualFold(te[0], "chunked"):
		_, err = refuse(http1.StatusNotImplemented, "unsupported transfer encoding %q: send chunked or a Content-Length", te)
		return err
	case n >= 0:
		_, err = refuse(http1.StatusBadRequest, "bad request: both Content-Length and Transfer-Encoding")
		return err
	}
	if ex := r.Header["Expect"]; len(ex) > 0 {
		if len(ex) > 1 || !strings.EqualFold(strings.TrimSpace(ex[0]), "100-continue") {
			_, err = refuse(http1.StatusExpectationFailed, "unsupported Expect %q", ex)
			return err
		}
		r.expect = r.minor >= 1
	}
	if n > o.MaxBodyBytes {
		_, err = refuse(http1.StatusRequestEntityTooLarge, "request body too large: more than %d bytes", o.MaxBodyBytes)
		return err
	}
	b := &body{max: o.MaxBodyBytes}
	switch {
	case chunked:
		b.r, r.ContentLength = http1.NewChunkedReader(rd.Buffer()), -1
	case n > 0:
		b.r, r.ContentLength = http1.LengthReader(rd.Buffer(), n), n
	default:
		b.eof = true
	}
	r.Body, r.body = b, b
	return nil
}

// body reads a request's body: it sends 100 Continue on the first read
// when the client waits for it, and stops a chunked body at the bound.
type body struct {
	r   io.Reader
	max int64
	n   int64
	eof bool
	err error
	// proceed writes 100 Continue; nil once done or not wanted.
	proceed func() error
}

func (b *body) Read(p []byte) (int, error) {
	switch {
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	if b.proceed != nil {
		err := b.proceed()
		b.proceed = nil
		if err != nil {
			b.err = err
			return 0, err
		}
	}
	// One byte past the bound is read, to tell a body of exactly max
	// bytes from a longer one. (b.n <= b.max here; max - n + 1 would
	// overflow for a max of math.MaxInt64.)
	if left := b.max - b.n; int64(len(p)) > left {
		p = p[:left+1]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > b.max:
		b.err = fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, b.max)
		return n - int(b.n-b.max), b.err
	case err == io.EOF:
		b.eof = true
	case errors.Is(err, io.ErrUnexpectedEOF):
		b.err = fmt.Errorf("the request body ended early: %w", err)
		return n, b.err
	case err != nil:
		b.err = err
	}
	return n, err
}
