package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// maxTrailer bounds the trailer section of a chunked body; a chunk's size
// line is bounded by the reader's buffer (4 KiB).
const maxTrailer = 16 << 10

// maxExcess bounds the framing of a chunked body beyond what its data
// allows, as net/http's decoder bounds it.
const maxExcess = 16 << 10

// NewChunkedReader decodes a chunked body (RFC 9112 7.1) from br: the
// data of its chunks, then io.EOF once the last chunk and the trailer
// section (read and dropped) are over. Chunk extensions are skipped. It
// is as lenient as net/http's decoder and no more: every line ends in
// CRLF; blanks may end a size line (before its CRLF), not begin it. As
// net/http's, it fails a body with too much framing for its data: size
// lines that carry long extensions for a byte or two of data each.
func NewChunkedReader(br *bufio.Reader) io.Reader { return &chunkedReader{br: br} }

type chunkedReader struct {
	br *bufio.Reader
	// left is what remains of the current chunk's data.
	left int64
	// inChunk: a chunk's data was begun, so its CRLF comes next.
	inChunk bool
	// excess is the framing read beyond what the data read allows; see
	// nextChunk.
	excess int64
	err    error
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left == 0 {
		if c.err = c.nextChunk(); c.err != nil {
			return 0, c.err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	c.err = err
	return n, err
}

var errChunkEnd = malformed("no CRLF after a chunk's data")

// nextChunk ends the chunk before (its CRLF) and reads the next size line;
// after the last chunk it reads the trailer section and returns io.EOF.
func (c *chunkedReader) nextChunk() error {
	if c.inChunk {
		var crlf [2]byte
		if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
			return unexpected(err)
		}
		if crlf != [2]byte{'\r', '\n'} {
			return errChunkEnd
		}
	}
	line, size, err := c.line()
	if err != nil {
		return err
	}
	for i, b := range line {
		if b == ';' {
			line = line[:i]
			break
		}
	}
	if len(line) == 0 || len(line) > 16 {
		return malformed("bad chunk size %q", line)
	}
	var n uint64
	for _, b := range line {
		d := unhex(b)
		if d < 0 {
			return malformed("bad chunk size %q", line)
		}
		n = n<<4 | uint64(d)
	}
	if n >= 1<<62 {
		return malformed("chunk size %q too large", line)
	}
	// As net/http counts (CVE-2023-39326): a chunk may come with 16
	// bytes of framing (its size line, with extensions, and the CRLF
	// after its data) and twice its data's length; what is over that is
	// excess, which must stay under 16 KiB. One byte a chunk ("1\r\nX\r\n")
	// passes; 4 KiB of extensions a chunk for a byte of data does not.
	// (The allowance of a huge chunk is capped, not to overflow: any
	// allowance over maxExcess clears the excess anyway.)
	c.excess += int64(size)
	c.excess -= 16 + 2*int64(min(n, 1<<32))
	c.excess = max(c.excess, 0)
	if c.excess > maxExcess {
		return malformed("too much chunk framing for its data: over %d bytes more than it allows", maxExcess)
	}
	if n > 0 {
		c.left, c.inChunk = int64(n), true
		return nil
	}
	// The last chunk: trailer fields up to an empty line.
	budget := maxTrailer
	for {
		t, _, err := c.line()
		if err != nil {
			return err
		}
		if len(t) == 0 {
			return io.EOF
		}
		if budget -= len(t); budget < 0 {
			return malformed("trailer section over %d bytes", maxTrailer)
		}
		if !fieldLine(t) {
			return malformed("a trailer line that is no header field: %q", t)
		}
	}
}

// line reads one line of framing, without its line end and trailing
// blanks; size is the line's length as read, its CRLF included.
func (c *chunkedReader) line() (b []byte, size int, err error) {
	b, err = c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, 0, malformed("chunk framing line over %d bytes", c.br.Size())
	}
	if err != nil {
		return nil, 0, unexpected(err)
	}
	// Only CRLF ends a line of framing, and no other CR may come before
	// it (RFC 9112 erratum 7633), as net/http decides.
	if len(b) < 2 || bytes.IndexByte(b, '\r') != len(b)-2 {
		return nil, 0, malformed("a chunk framing line that does not end in CRLF")
	}
	size = len(b)
	b = b[:len(b)-2]
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b, size, nil
}

// fieldLine reports whether b is a header field line: a token, a colon
// and a value without control characters but tab. A folded line (one that
// starts with blanks) is none, as net/http decides for trailers.
func fieldLine(b []byte) bool {
	name, value, ok := bytes.Cut(b, []byte{':'})
	if !ok || !ValidToken(string(name)) {
		return false
	}
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// ChunkWriter writes a chunked body to w: each Write is one chunk, Close
// writes the last chunk (and no trailer).
type ChunkWriter struct{ W *bufio.Writer }

func (c ChunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		// A zero-size chunk would end the body.
		return 0, nil
	}
	var head [20]byte
	h := strconv.AppendUint(head[:0], uint64(len(p)), 16)
	h = append(h, '\r', '\n')
	if _, err := c.W.Write(h); err != nil {
		return 0, err
	}
	n, err := c.W.Write(p)
	if err != nil {
		return n, err
	}
	_, err = c.W.WriteString("\r\n")
	return n, err
}

// Close ends the body.
func (c ChunkWriter) Close() error {
	_, err := c.W.WriteString("0\r\n\r\n")
	return err
}
