// Package http1 reads and writes HTTP/1.x messages: the framing that the
// runner's own server (httpserve) and its clients (the CLI's control
// client, the http ready and health checks) share.
//
// It exists so that the runner does not link net/http, which with
// crypto/tls, x509 and HTTP/2 is about 5 MB of executable that every
// runner and guard process keeps resident. It does what those few
// servers and clients need and no more: no TLS, no HTTP/2, no proxies, no
// redirects, no compression, no connection pool. Start lines and header
// fields are read by net/textproto; bodies are framed by Content-Length,
// by the chunked coding, or (answers only) by the end of the connection.
package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net/textproto"
	"strconv"
	"strings"
)

// Header holds a message's fields by canonical name (textproto's).
type Header = textproto.MIMEHeader

// ErrHeaderTooLarge: a start line and header fields longer than allowed.
var ErrHeaderTooLarge = errors.New("headers too large")

// ProtocolError is a message that is not HTTP/1.x as RFC 9112 frames it.
type ProtocolError struct{ What string }

func (e *ProtocolError) Error() string { return "malformed HTTP message: " + e.What }

func malformed(format string, args ...any) error {
	return &ProtocolError{What: fmt.Sprintf(format, args...)}
}

// noLimit lifts the header bound while a body is read.
const noLimit = math.MaxInt64

// Reader reads messages from one connection: the head of each with a
// bound on its size, then its body from the same buffer.
type Reader struct {
	lr io.LimitedReader
	br *bufio.Reader
	tp textproto.Reader
}

// NewReader reads from r through a 4 KiB buffer.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{br: bufio.NewReaderSize(nil, 4<<10)}
	rd.Reset(r)
	return rd
}

// Reset makes rd read from r, as a new Reader would, keeping its buffer
// (what is buffered from the previous source is dropped).
func (rd *Reader) Reset(r io.Reader) {
	rd.lr = io.LimitedReader{R: r, N: noLimit}
	rd.br.Reset(&rd.lr)
	rd.tp = textproto.Reader{R: rd.br}
}

// Buffer is the buffered reader that bodies are read from.
func (r *Reader) Buffer() *bufio.Reader { return r.br }

// ReadHead reads a start line and the header fields after it, up to the
// empty line. At most max bytes are read from the connection for them
// (what is already buffered comes on top, at most the buffer's 4 KiB):
// past that the error is ErrHeaderTooLarge. A connection that ends before
// the first byte is io.EOF; one that ends after it, in the start line
// or in the fields, is io.ErrUnexpectedEOF.
func (r *Reader) ReadHead(max int64) (start string, h Header, err error) {
	r.lr.N = max
	defer func() { r.lr.N = noLimit }()
	// ReadLine fails with io.EOF only when nothing came: the part of a
	// start line that the end of the connection cuts is a line, and the
	// fields after it then meet the end.
	start, err = r.tp.ReadLine()
	if err == nil {
		h, err = r.tp.ReadMIMEHeader()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case err == nil:
		return start, h, nil
	case r.lr.N <= 0:
		return "", nil, ErrHeaderTooLarge
	}
	var pe textproto.ProtocolError
	if errors.As(err, &pe) {
		return "", nil, malformed("%s", string(pe))
	}
	return "", nil, err
}

// ParseVersion parses "HTTP/1.1" and its kin: HTTP/ and one digit, a dot
// and one digit (RFC 9112 2.3).
func ParseVersion(s string) (major, minor int, ok bool) {
	if len(s) != len("HTTP/1.1") || !strings.HasPrefix(s, "HTTP/") || s[6] != '.' ||
		!isDigit(s[5]) || !isDigit(s[7]) {
		return 0, 0, false
	}
	return int(s[5] - '0'), int(s[7] - '0'), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// ValidToken reports whether s is an RFC 9110 token: a method, a field
// name, a coding.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// ContentLength reads the Content-Length fields of h: -1 when there are
// none. Several fields must all say the same number; a list in one field
// is refused, as net/http refuses it.
func ContentLength(h Header) (int64, error) {
	vals := h["Content-Length"]
	if len(vals) == 0 {
		return -1, nil
	}
	s := strings.Trim(vals[0], " \t")
	for _, v := range vals[1:] {
		if strings.Trim(v, " \t") != s {
			return 0, malformed("Content-Length fields that differ: %q", vals)
		}
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || s[0] == '+' {
		return 0, malformed("bad Content-Length %q", vals[0])
	}
	return int64(n), nil
}

// Chunked reads the Transfer-Encoding fields of h: chunked is true when
// the last coding is chunked; others lists the codings besides it.
func Chunked(h Header) (chunked bool, others []string) {
	var codings []string
	for _, v := range h["Transfer-Encoding"] {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.Trim(s, " \t"); s != "" {
				codings = append(codings, strings.ToLower(s))
			}
		}
	}
	if n := len(codings); n > 0 && codings[n-1] == "chunked" {
		return true, codings[:n-1]
	}
	return false, codings
}

// HasToken reports whether a comma-separated field of h (Connection,
// Expect) lists tok, in any case.
func HasToken(h Header, name, tok string) bool {
	for _, v := range h[textproto.CanonicalMIMEHeaderKey(name)] {
		for s := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.Trim(s, " \t"), tok) {
				return true
			}
		}
	}
	return false
}

// KeepAlive reports whether a message of version 1.minor with fields h
// leaves its connection open for the next one (RFC 9112 9.3).
func KeepAlive(minor int, h Header) bool {
	if HasToken(h, "Connection", "close") {
		return false
	}
	return minor >= 1 || HasToken(h, "Connection", "keep-alive")
}
