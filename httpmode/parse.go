package httpmode

import "errors"

// The parser reads an HTTP/1.1 message head (RFC 9112) in place: it never
// copies or allocates, and what it finds are offsets into the buffer. It is
// strict where a lenient reading could make the runner and the instance see
// different requests (request smuggling): one Content-Length or several
// equal ones, Transfer-Encoding only as "chunked" and never beside a
// Content-Length, no whitespace before a field's colon, no folded lines, no
// control bytes. Lines may end in CRLF or a bare LF (RFC 9112 2.2); a bare
// CR is refused. What goes on to the instance is a head the runner writes
// itself, from these offsets, with CRLF everywhere.

// span is a part of the buffer: buf[s:e].
type span struct{ s, e int32 }

func (p span) of(b []byte) []byte { return b[p.s:p.e] }
func (p span) empty() bool        { return p.s == p.e }

// field is one header field: its name and its value without the
// whitespace around it.
type field struct {
	name, value span
	// drop: not forwarded (hop-by-hop, or replaced by the runner).
	drop bool
}

// maxFields bounds the fields of one head; more get 431.
const maxFields = 128

// head is a parsed request or response head. Only what the forwarding
// needs is looked at; every field is kept in order for the rewrite.
type head struct {
	// Request: method and target. Response: status (its three digits) and
	// reason.
	method, target span
	status         int
	reason         span
	minor          int // HTTP/1.minor
	fields         []field
	// size is the length of the head, its empty line included.
	size int

	// From the fields:
	contentLength int64 // -1: none
	chunked       bool  // Transfer-Encoding: chunked
	teOther       bool  // a Transfer-Encoding that is not chunked alone
	connClose     bool  // Connection: close
	connKeepAlive bool  // Connection: keep-alive
	connUpgrade   bool  // Connection: upgrade
	upgrade       span  // the Upgrade field's value
	host          span
	hosts         int
	expect100     bool // Expect: 100-continue
	// connNames: a Connection field names other fields, which are then
	// hop-by-hop too (see dropConnectionNamed).
	connNames bool
}

// Parse errors; each maps to a status (see statusOf).
var (
	errIncomplete    = errors.New("incomplete head")
	errTooLarge      = errors.New("head too large")
	errTooMany       = errors.New("too many header fields")
	errBadLine       = errors.New("malformed request line")
	errBadVersion    = errors.New("unsupported HTTP version")
	errBadField      = errors.New("malformed header field")
	errBadLength     = errors.New("invalid Content-Length")
	errBadTE         = errors.New("unsupported Transfer-Encoding")
	errTEAndLength   = errors.New("both Transfer-Encoding and Content-Length")
	errBadHost       = errors.New("missing or repeated Host")
	errBadStatusLine = errors.New("malformed status line")
	errBadChunk      = errors.New("malformed chunked body")
)

// statusOf is the response a client gets for a head that failed to parse.
func statusOf(err error) int {
	switch err {
	case errTooLarge, errTooMany:
		return 431
	case errBadVersion:
		return 505
	case errBadTE:
		return 501
	}
	return 400
}

// tokenChar marks the bytes of a token (RFC 9110 5.6.2): method and field
// names.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// lineEnd returns the index of the LF that ends the line starting at i in
// b, and the index where the line's content ends (before a CR), or -1 when
// b holds no whole line. A CR anywhere but before the LF is an error.
func lineEnd(b []byte, i int) (lf, end int, err error) {
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '\n':
			if j > i && b[j-1] == '\r' {
				return j, j - 1, nil
			}
			return j, j, nil
		case '\r':
			if j+1 < len(b) && b[j+1] != '\n' {
				return 0, 0, errBadField
			}
		}
	}
	return -1, -1, nil
}

// parseRequest parses the request head at the start of b. It returns
// errIncomplete when b holds no whole head yet (the caller reads more, up to
// its limit), or the error that makes it malformed.
func parseRequest(b []byte, h *head) error {
	h.reset()
	lf, end, err := lineEnd(b, 0)
	if err != nil {
		return errBadLine
	}
	if lf < 0 {
		return errIncomplete
	}
	// method SP request-target SP HTTP-version, single spaces.
	line := b[:end]
	i := 0
	for i < len(line) && tokenChar[line[i]] {
		i++
	}
	if i == 0 || i >= len(line) || line[i] != ' ' {
		return errBadLine
	}
	h.method = span{0, int32(i)}
	i++
	t := i
	for i < len(line) && line[i] > ' ' && line[i] != 0x7f {
		i++
	}
	if i == t || i >= len(line) || line[i] != ' ' || (!validTarget(line[t:i]) && string(line[:h.method.e]) != "CONNECT") {
		return errBadLine
	}
	h.target = span{int32(t), int32(i)}
	i++
	v := line[i:]
	if len(v) != 8 || string(v[:7]) != "HTTP/1." {
		if len(v) >= 5 && string(v[:5]) == "HTTP/" && len(v) <= 8 {
			return errBadVersion
		}
		return errBadLine
	}
	switch v[7] {
	case '0':
		h.minor = 0
	case '1':
		h.minor = 1
	default:
		if v[7] >= '0' && v[7] <= '9' {
			return errBadVersion
		}
		return errBadLine
	}
	if err := h.parseFields(b, lf+1); err != nil {
		return err
	}
	h.dropConnectionNamed(b)
	if h.teOther {
		return errBadTE
	}
	if h.chunked && h.minor == 0 {
		// RFC 9112 6.1: a 1.0 message with Transfer-Encoding is faulty.
		return errBadTE
	}
	if h.chunked && h.contentLength >= 0 {
		return errTEAndLength
	}
	if h.hosts > 1 || (h.minor == 1 && h.hosts == 0) {
		return errBadHost
	}
	return nil
}

// parseResponse parses the response head at the start of b.
func parseResponse(b []byte, h *head) error {
	h.reset()
	lf, end, err := lineEnd(b, 0)
	if err != nil {
		return errBadStatusLine
	}
	if lf < 0 {
		return errIncomplete
	}
	// HTTP-version SP 3DIGIT SP reason; the SP before an empty reason is
	// often left out, and that is accepted.
	line := b[:end]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return errBadStatusLine
	}
	h.minor = int(line[7] - '0')
	st := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errBadStatusLine
		}
		st = st*10 + int(c-'0')
	}
	if st < 100 {
		return errBadStatusLine
	}
	h.status = st
	switch {
	case len(line) == 12:
		h.reason = span{12, 12}
	case line[12] != ' ':
		return errBadStatusLine
	default:
		for _, c := range line[13:] {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errBadStatusLine
			}
		}
		h.reason = span{13, int32(len(line))}
	}
	if err := h.parseFields(b, lf+1); err != nil {
		return err
	}
	h.dropConnectionNamed(b)
	if h.teOther {
		// A coding the runner cannot frame: the body ends when the
		// instance closes the connection, and is passed on as it is, with
		// its Transfer-Encoding.
		h.chunked = false
		for i := range h.fields {
			if equalFold(h.fields[i].name.of(b), "transfer-encoding") {
				h.fields[i].drop = false
			}
		}
	}
	if h.chunked && h.contentLength >= 0 {
		// RFC 9112 6.3: Transfer-Encoding overrides; the length is not
		// forwarded.
		h.contentLength = -1
		for i := range h.fields {
			if equalFold(h.fields[i].name.of(b), "content-length") {
				h.fields[i].drop = true
			}
		}
	}
	return nil
}

// validTarget reports whether a request-target has one of the forms the
// runner forwards (RFC 9112 3.2): origin-form "/path?query", absolute-form
// "http://host/path", or "*"; and the path's %-escapes are whole (net/http
// refuses "/%zz", and an instance would read it some way of its own).
// Authority-form is CONNECT's, which is read (to answer 501) but not
// forwarded.
func validTarget(t []byte) bool {
	switch {
	case len(t) == 1 && t[0] == '*':
		return true
	case t[0] == '/':
	case len(t) > 7 && equalFold(t[:7], "http://"), len(t) > 8 && equalFold(t[:8], "https://"):
		i := 7
		if t[4] == 's' || t[4] == 'S' {
			i = 8
		}
		a := i
		for i < len(t) && t[i] != '/' && t[i] != '?' {
			i++
		}
		if !validAuthority(t[a:i]) {
			return false
		}
		t = t[i:]
	default:
		return false
	}
	// To the query, past a '#': a request-target has no fragment (RFC 9112
	// 3.2), and net/http reads a '#' as part of the path, whose escapes it
	// then refuses, as it does "/%zz".
	for i := 0; i < len(t) && t[i] != '?'; i++ {
		if t[i] == '%' && (i+2 >= len(t) || unhex(t[i+1]) < 0 || unhex(t[i+2]) < 0) {
			return false
		}
	}
	return true
}

// validAuthority reports whether a is host[:port] that every reader of
// the request takes the same way: a name of letters, digits, '-', '.', '_'
// and '~', or a bracketed IPv6 address, and a port of digits. Userinfo,
// percent-encoding and the other characters RFC 3986 allows in a reg-name
// are refused: readers disagree on them (net/http refuses some), and an
// instance that reads a different host than the runner is a smuggling risk.
func validAuthority(a []byte) bool {
	i := 0
	if len(a) > 0 && a[0] == '[' {
		for i = 1; i < len(a) && a[i] != ']'; i++ {
			if c := a[i]; c != ':' && c != '.' && unhex(c) < 0 {
				return false
			}
		}
		if i == len(a) || i == 1 {
			return false
		}
		i++
	} else {
		for i < len(a) && hostChar(a[i]) {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(a) {
		return true
	}
	if a[i] != ':' {
		return false
	}
	for i++; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return false
		}
	}
	return true
}

func hostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func (h *head) reset() {
	fs := h.fields[:0]
	*h = head{fields: fs, contentLength: -1}
}

// parseFields parses the header fields from i to the empty line, and reads
// the ones the forwarding needs.
func (h *head) parseFields(b []byte, i int) error {
	for {
		lf, end, err := lineEnd(b, i)
		if err != nil {
			return errBadField
		}
		if lf < 0 {
			return errIncomplete
		}
		if end == i {
			h.size = lf + 1
			return nil
		}
		if b[i] == ' ' || b[i] == '\t' {
			return errBadField // obs-fold
		}
		n := i
		for n < end && tokenChar[b[n]] {
			n++
		}
		if n == i || n == end || b[n] != ':' {
			return errBadField
		}
		vs := n + 1
		for vs < end && (b[vs] == ' ' || b[vs] == '\t') {
			vs++
		}
		ve := end
		for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
			ve--
		}
		for _, c := range b[vs:ve] {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errBadField
			}
		}
		if len(h.fields) == maxFields {
			return errTooMany
		}
		f := field{name: span{int32(i), int32(n)}, value: span{int32(vs), int32(ve)}}
		if err := h.note(b, &f); err != nil {
			return err
		}
		h.fields = append(h.fields, f)
		i = lf + 1
	}
}

// note reads the fields that matter to the forwarding, and marks the ones
// it must not forward as they are.
func (h *head) note(b []byte, f *field) error {
	name, v := f.name.of(b), f.value.of(b)
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			h.hosts++
			h.host = f.value
		}
	case 6:
		if equalFold(name, "expect") && equalFold(v, "100-continue") {
			h.expect100 = true
		}
	case 7:
		if equalFold(name, "upgrade") {
			h.upgrade = f.value
			f.drop = true
		}
	case 10:
		switch {
		case equalFold(name, "connection"):
			f.drop = true
			eachToken(v, func(t []byte) {
				switch {
				case equalFold(t, "close"):
					h.connClose = true
				case equalFold(t, "keep-alive"):
					h.connKeepAlive = true
				case equalFold(t, "upgrade"):
					h.connUpgrade = true
				default:
					h.connNames = true
				}
			})
		case equalFold(name, "keep-alive"):
			f.drop = true
		}
	case 14:
		if equalFold(name, "content-length") {
			n, ok := parseLength(v)
			if !ok || (h.contentLength >= 0 && n != h.contentLength) {
				return errBadLength
			}
			h.contentLength = n
		}
	case 16:
		if equalFold(name, "proxy-connection") {
			f.drop = true
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			f.drop = true
			// Only chunked, alone: a list of codings, or chunked twice,
			// is what smuggling attempts look like.
			if h.chunked || !equalFold(v, "chunked") {
				h.teOther = true
			}
			h.chunked = true
		}
	case 2:
		if equalFold(name, "te") {
			f.drop = true
		}
	case 19:
		if equalFold(name, "proxy-authorization") {
			f.drop = true
		}
	}
	return nil
}

// dropConnectionNamed marks the fields that a Connection field names as
// hop-by-hop (RFC 9110 7.6.1), except those that frame the message or name
// its host: dropping those would change what the next hop reads.
func (h *head) dropConnectionNamed(b []byte) {
	if !h.connNames {
		return
	}
	for i := range h.fields {
		f := &h.fields[i]
		if !equalFold(f.name.of(b), "connection") {
			continue
		}
		eachToken(f.value.of(b), func(t []byte) {
			for j := range h.fields {
				g := &h.fields[j]
				n := g.name.of(b)
				if len(n) != len(t) || equalFold(n, "content-length") || equalFold(n, "transfer-encoding") || equalFold(n, "host") {
					continue
				}
				if equalFoldBytes(n, t) {
					g.drop = true
				}
			}
		})
	}
}

// equalFoldBytes compares two ASCII strings in any case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseLength reads a Content-Length value: digits only. A list ("42, 42",
// which RFC 9110 8.6 lets a recipient accept) is refused, as net/http
// refuses it: what one hop refuses another must not take.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// eachToken calls fn with each comma-separated element of v, trimmed.
func eachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		t := v[:i]
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
		for len(t) > 0 && (t[len(t)-1] == ' ' || t[len(t)-1] == '\t') {
			t = t[:len(t)-1]
		}
		if len(t) > 0 {
			fn(t)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

// equalFold reports whether b is s in any case; s is lower-case ASCII.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// idempotent reports whether a request of this method may be sent again
// after it may have reached an instance (RFC 9110 9.2.2).
func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}
