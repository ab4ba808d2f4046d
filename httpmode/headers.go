package httpmode

import "strconv"

// requestHead writes the head that goes to the instance into cc.out: the
// client's request line and fields less the hop-by-hop ones, the
// forwarding fields (X-Forwarded-For, -Proto, -Host and Forwarded: the
// client's own kept and appended to only when it is a trusted proxy), the
// framing of the body as we send it, and the upgrade the client asked for.
// Host is kept as the client sent it.
func (cc *clientConn) requestHead(rq *request, b []byte) []byte {
	h := &cc.req
	out := cc.out[:0]
	out = append(out, h.method.of(b)...)
	out = append(out, ' ')
	out = append(out, h.target.of(b)...)
	out = append(out, " HTTP/1.1\r\n"...)
	var xff, xfp, xfh, fwd span
	var nxff, nfwd int
	for _, f := range h.fields {
		if f.drop {
			continue
		}
		name := f.name.of(b)
		if len(name) >= 9 && isForwarding(name) {
			if !cc.trusted {
				continue
			}
			// Kept from a trusted proxy; the lists are written joined
			// below, with our hop appended.
			switch len(name) {
			case 15:
				xff = joinSpan(xff, f.value, &nxff)
				continue
			case 9:
				fwd = joinSpan(fwd, f.value, &nfwd)
				continue
			case 17:
				xfp = f.value
			case 16:
				xfh = f.value
			}
		}
		out = append(out, name...)
		out = append(out, ": "...)
		out = append(out, f.value.of(b)...)
		out = append(out, '\r', '\n')
	}
	if h.hosts == 0 {
		// An HTTP/1.0 request without Host goes on as 1.1, which needs
		// one: the address the client reached.
		out = append(out, "Host: "...)
		out = append(out, cc.conn().LocalAddr().String()...)
		out = append(out, '\r', '\n')
	}
	if len(cc.forFor) > 0 || nxff > 0 {
		out = append(out, "X-Forwarded-For: "...)
		out = appendJoined(out, b, h.fields, "x-forwarded-for", nxff)
		if len(cc.forFor) > 0 {
			if nxff > 0 {
				out = append(out, ", "...)
			}
			out = append(out, cc.forFor...)
		}
		out = append(out, '\r', '\n')
	}
	if xfp.empty() {
		out = append(out, "X-Forwarded-Proto: http\r\n"...)
	}
	if xfh.empty() && !h.host.empty() {
		out = append(out, "X-Forwarded-Host: "...)
		out = append(out, h.host.of(b)...)
		out = append(out, '\r', '\n')
	}
	out = append(out, "Forwarded: "...)
	if nfwd > 0 {
		out = appendJoined(out, b, h.fields, "forwarded", nfwd)
		out = append(out, ", "...)
	}
	sep := false
	if len(cc.forwardedFor) > 0 {
		out = append(out, "for="...)
		out = append(out, cc.forwardedFor...)
		sep = true
	}
	if !h.host.empty() {
		if sep {
			out = append(out, ';')
		}
		out = append(out, "host="...)
		out = appendQuoted(out, h.host.of(b))
		sep = true
	}
	if sep {
		out = append(out, ';')
	}
	out = append(out, "proto=http\r\n"...)
	switch {
	case rq.chunked && rq.replay == nil:
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	case rq.chunked:
		// Held whole: it goes on with a length.
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, int64(len(rq.replay)), 10)
		out = append(out, '\r', '\n')
	}
	if rq.upgrade {
		out = append(out, "Connection: Upgrade\r\nUpgrade: "...)
		out = append(out, h.upgrade.of(b)...)
		out = append(out, '\r', '\n')
	}
	return append(out, '\r', '\n')
}

// isForwarding reports whether a field name is one of the forwarding
// fields the runner writes.
func isForwarding(name []byte) bool {
	switch len(name) {
	case 15:
		return equalFold(name, "x-forwarded-for")
	case 17:
		return equalFold(name, "x-forwarded-proto")
	case 16:
		return equalFold(name, "x-forwarded-host")
	case 9:
		return equalFold(name, "forwarded")
	}
	return false
}

// joinSpan counts one more field of a list; the first one's value is kept
// to tell that there is one.
func joinSpan(first, v span, n *int) span {
	*n++
	if *n == 1 {
		return v
	}
	return first
}

// appendJoined appends the values of the n fields named name (lower case),
// joined with ", ": several fields of a list are one list (RFC 9110 5.3).
func appendJoined(out, b []byte, fields []field, name string, n int) []byte {
	if n == 0 {
		return out
	}
	first := true
	for _, f := range fields {
		if f.drop || !equalFold(f.name.of(b), name) {
			continue
		}
		if !first {
			out = append(out, ", "...)
		}
		first = false
		out = append(out, f.value.of(b)...)
	}
	return out
}

// appendQuoted appends v as a quoted-string (RFC 9110 5.6.4).
func appendQuoted(out, v []byte) []byte {
	out = append(out, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return append(out, '"')
}

// responseHead writes the head that goes to the client into cc.out (after
// whatever it holds): the instance's status and fields less the hop-by-hop
// ones, the framing we send (chunked), the sticky cookie when the client
// needs it, and Connection: close when the connection ends after it.
func (cc *clientConn) responseHead(rq *request, b []byte, chunked, closeAfter bool) []byte {
	r := &rq.resp
	out := cc.out
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(r.status), 10)
	out = append(out, ' ')
	out = append(out, r.reason.of(b)...)
	out = append(out, '\r', '\n')
	for _, f := range r.fields {
		if f.drop {
			continue
		}
		out = append(out, f.name.of(b)...)
		out = append(out, ": "...)
		out = append(out, f.value.of(b)...)
		out = append(out, '\r', '\n')
	}
	if r.status == 101 {
		out = append(out, "Connection: Upgrade\r\n"...)
		if !r.upgrade.empty() {
			out = append(out, "Upgrade: "...)
			out = append(out, r.upgrade.of(b)...)
			out = append(out, '\r', '\n')
		}
		return append(out, '\r', '\n')
	}
	if r.status < 200 {
		return append(out, '\r', '\n')
	}
	if rq.setCookie {
		out = append(out, rq.b.setCookie...)
	}
	if chunked {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case closeAfter:
		out = append(out, "Connection: close\r\n"...)
	case cc.req.minor == 0:
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	return append(out, '\r', '\n')
}
