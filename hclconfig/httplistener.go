package hclconfig

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// HTTPOptions are the settings of an http-mode listener, defaults filled
// in.
type HTTPOptions struct {
	// StickyCookie names the cookie that keeps a client on one instance
	// slot; "" for none.
	StickyCookie string
	// TrustedProxies are the client addresses (canonical prefixes, such as
	// "10.0.0.0/8" or "192.0.2.7/32") whose X-Forwarded-* and Forwarded
	// headers are kept and appended to; from any other client they are
	// replaced.
	TrustedProxies []string
	// AccessLog writes one line per request into the app's log stream.
	AccessLog bool
	// MaxHeaderSize bounds a request's line and headers, in bytes.
	MaxHeaderSize int
	// HeaderTimeout bounds the reading of a request's line and headers
	// from its first byte; IdleTimeout how long a client's connection may
	// wait for its next request; Timeout how long a request may wait for
	// the first byte of its answer.
	HeaderTimeout, IdleTimeout, Timeout time.Duration
	// MaxRetryBody is the largest request body kept so that the request can
	// be sent to another instance when the first fails before answering.
	MaxRetryBody int
}

// Defaults of an http listener's settings.
const (
	DefaultMaxHeaderSize = 64 << 10
	DefaultHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultHTTPTimeout   = 60 * time.Second
	DefaultMaxRetryBody  = 64 << 10
)

// maxHeaderSizeLimit bounds max_header_size: each connection may hold a
// buffer that large.
const maxHeaderSizeLimit = 1 << 20

type rawSticky struct {
	DefRange hcl.Range      `hcl:",def_range"`
	Cookie   hcl.Expression `hcl:"cookie,optional"`
}

// httpAttrs are the attributes of http mode only, for the check that
// other modes do not set them.
func (r *rawListener) httpAttrs() []struct {
	expr hcl.Expression
	name string
} {
	return []struct {
		expr hcl.Expression
		name string
	}{
		{r.TrustedProxies, "trusted_proxies"}, {r.AccessLog, "access_log"},
		{r.MaxHeaderSize, "max_header_size"}, {r.HeaderTimeout, "header_timeout"},
		{r.IdleTimeout, "idle_timeout"}, {r.Timeout, "timeout"}, {r.MaxRetryBody, "max_retry_body"},
	}
}

// decodeHTTP resolves the attributes of http mode. In another mode (modeOK:
// the mode itself was valid) each one is an error.
func decodeHTTP(e *evaluator, r *rawListener, l *Listener, modeOK bool) {
	if l.Mode != HTTP {
		if !modeOK {
			return
		}
		for _, a := range r.httpAttrs() {
			if !absent(a.expr) {
				e.errorf(a.expr, "Option needs http mode",
					"Listener %q sets %s, but its mode is %q, where the runner does not read HTTP. Set mode = \"http\", or remove %s.", r.Name, a.name, l.Mode, a.name)
			}
		}
		if r.Sticky != nil {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Option needs http mode",
				Detail:   fmt.Sprintf("Listener %q has a sticky block, but its mode is %q, where the runner does not read HTTP and cannot see a cookie. Set mode = \"http\" (or balance = \"ip-hash\" in proxy mode, which keeps each client address on one instance), or remove the block.", r.Name, l.Mode),
				Subject:  r.Sticky.DefRange.Ptr(),
			})
		}
		return
	}
	h := &HTTPOptions{
		MaxHeaderSize: DefaultMaxHeaderSize, HeaderTimeout: DefaultHeaderTimeout, IdleTimeout: DefaultIdleTimeout,
		Timeout: DefaultHTTPTimeout, MaxRetryBody: DefaultMaxRetryBody,
	}
	l.HTTP = h
	if r.Sticky != nil {
		if absent(r.Sticky.Cookie) {
			e.diags = append(e.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing sticky cookie",
				Detail:   fmt.Sprintf("The sticky block of listener %q has no cookie. Set cookie to the name of the cookie the runner sets to keep a client on its instance, such as cookie = \"clusterrun\".", r.Name),
				Subject:  r.Sticky.DefRange.Ptr(),
			})
		} else if c, ok := e.str(r.Sticky.Cookie, "cookie"); ok {
			if !validToken(c) {
				e.errorf(r.Sticky.Cookie, "Invalid cookie name", "The cookie name %q cannot be used: a cookie name is one or more of the letters, digits and !#$%%&'*+-.^_`|~ (an HTTP token), such as \"clusterrun\".", c)
			} else {
				h.StickyCookie = c
			}
		}
	}
	if items, ok := e.stringList(r.TrustedProxies, "trusted_proxies"); ok {
		for _, it := range items {
			p, err := parsePrefix(it.val)
			if err != nil {
				e.diags = append(e.diags, it.errorf("Invalid trusted proxy",
					fmt.Sprintf("The trusted proxy %q is not an IP address or a network. Write an address such as \"10.0.0.7\" or \"::1\", or a network such as \"10.0.0.0/8\".", it.val)))
				continue
			}
			h.TrustedProxies = append(h.TrustedProxies, p.String())
		}
	}
	if b, ok := e.boolean(r.AccessLog, "access_log"); ok {
		h.AccessLog = b
	}
	if n, ok := e.size(r.MaxHeaderSize, "max_header_size"); ok {
		if n < 1024 || n > maxHeaderSizeLimit {
			e.errorf(r.MaxHeaderSize, "Invalid max_header_size", "The max_header_size is %d bytes, but it must be from 1KiB to 1MiB: a request line and headers above it are refused with 431, and every connection may hold a buffer that large.", n)
		} else {
			h.MaxHeaderSize = int(n)
		}
	}
	if n, ok := e.size(r.MaxRetryBody, "max_retry_body"); ok {
		if n > 64<<20 {
			e.errorf(r.MaxRetryBody, "Invalid max_retry_body", "The max_retry_body is %d bytes, but it may be at most 64MiB: each request in flight may hold a copy that large. Write 0 to retry only requests without a body.", n)
		} else {
			h.MaxRetryBody = int(n)
		}
	}
	for _, a := range []struct {
		expr hcl.Expression
		name string
		to   *time.Duration
	}{{r.HeaderTimeout, "header_timeout", &h.HeaderTimeout}, {r.IdleTimeout, "idle_timeout", &h.IdleTimeout}, {r.Timeout, "timeout", &h.Timeout}} {
		if d, ok := e.duration(a.expr, a.name, positive); ok {
			*a.to = d
		}
	}
}

// parsePrefix reads an address ("10.0.0.7", a prefix of its full length)
// or a network ("10.0.0.0/8"), host bits cleared; an IPv4-mapped IPv6
// address is its IPv4 address.
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zone")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// validToken reports whether s is an HTTP token (RFC 9110 5.6.2), which
// is what a cookie name must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}
