package httpmode

// chunked decodes a chunked body (RFC 9112 7.1) as it arrives, a piece at
// a time, so that the runner knows where the body ends and passes on its
// data with framing of its own: what the instance (or the client) reads is
// chunk framing the runner wrote, never the sender's, so chunk extensions,
// odd whitespace and trailers cannot be read two ways. Trailer fields are
// checked and dropped (RFC 9112 7.1.2 lets a recipient that removes the
// chunked coding discard them). Every line must end in CRLF.
type chunked struct {
	state int
	// left is what remains of the current chunk's data.
	left int64
	// line counts the bytes of the size or trailer line being read, and
	// trailer those of the whole trailer section: both are bounded.
	line, trailer int
	digits        int
	sawCR         bool
	ext           bool
}

const (
	chSize        = iota // reading the size's hex digits
	chExt                // after the size: extensions up to the CRLF
	chData               // data
	chDataCR             // the CRLF after the data
	chDataLF             //
	chTrailer            // a trailer line, or the final empty line
	chTrailerName        // a trailer field's name, up to its colon
	chTrailerLine        // a trailer field's value
	chDone
)

// Bounds of the framing; past them the body is refused.
const (
	maxChunkLine   = 4 << 10
	maxTrailerSize = 16 << 10
)

// done reports whether the whole body, its last chunk and trailer section
// included, has been read.
func (c *chunked) done() bool { return c.state == chDone }

// next reads framing from b until it reaches data or the end of b or of the
// body. It returns how many bytes of b it used and the data among them (a
// part of b, possibly empty): the caller passes the data on and calls next
// again with what is left.
func (c *chunked) next(b []byte) (used int, data []byte, err error) {
	i := 0
	for i < len(b) {
		switch c.state {
		case chData:
			n := int64(len(b) - i)
			if n > c.left {
				n = c.left
			}
			data = b[i : i+int(n)]
			c.left -= n
			if c.left == 0 {
				c.state = chDataCR
			}
			return i + int(n), data, nil
		case chSize:
			x := b[i]
			v := unhex(x)
			switch {
			case v >= 0:
				if c.digits == 15 {
					return 0, nil, errBadChunk // over 2^60: no body is that large
				}
				c.left = c.left<<4 | int64(v)
				c.digits++
			case c.digits > 0 && x == ';':
				// An extension (no whitespace before it: net/http refuses
				// that, so nothing may take it here either).
				c.state = chExt
			case c.digits > 0 && x == '\r':
				c.state = chExt
				continue
			default:
				return 0, nil, errBadChunk
			}
			c.line++
			i++
		case chExt:
			x := b[i]
			i++
			c.line++
			if c.line > maxChunkLine {
				return 0, nil, errBadChunk
			}
			if c.sawCR {
				if x != '\n' {
					return 0, nil, errBadChunk
				}
				c.sawCR, c.line, c.digits = false, 0, 0
				if c.left == 0 {
					c.state = chTrailer
				} else {
					c.state = chData
				}
				continue
			}
			switch {
			case x == '\r':
				c.sawCR = true
			case x < ' ' && x != '\t', x == 0x7f:
				return 0, nil, errBadChunk
			}
		case chDataCR:
			if b[i] != '\r' {
				return 0, nil, errBadChunk
			}
			c.state = chDataLF
			i++
		case chDataLF:
			if b[i] != '\n' {
				return 0, nil, errBadChunk
			}
			c.state = chSize
			i++
		case chTrailer, chTrailerName, chTrailerLine:
			x := b[i]
			i++
			c.trailer++
			if c.trailer > maxTrailerSize {
				return 0, nil, errBadChunk
			}
			if c.sawCR {
				if x != '\n' {
					return 0, nil, errBadChunk
				}
				c.sawCR = false
				if c.state == chTrailer {
					c.state = chDone
					return i, nil, nil
				}
				c.state = chTrailer
				continue
			}
			// A field line is a token, a colon and a value: a line with no
			// colon, or a name that is no token (a folded line starts with
			// blanks), is refused as net/http refuses it.
			switch {
			case x == '\r':
				if c.state == chTrailerName {
					return 0, nil, errBadChunk
				}
				c.sawCR = true
			case x < ' ' && x != '\t', x == 0x7f:
				return 0, nil, errBadChunk
			case c.state == chTrailerLine:
			case x == ':' && c.state == chTrailerName:
				c.state = chTrailerLine
			case tokenChar[x]:
				c.state = chTrailerName
			default:
				return 0, nil, errBadChunk
			}
		case chDone:
			return i, nil, nil
		}
	}
	return i, nil, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// appendChunkHead appends the framing in front of n bytes of data.
func appendChunkHead(b []byte, n int) []byte {
	const digits = "0123456789abcdef"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	b = append(b, tmp[i:]...)
	return append(b, '\r', '\n')
}

// lastChunk ends a chunked body the runner writes.
const lastChunk = "0\r\n\r\n"
