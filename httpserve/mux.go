package httpserve

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/clusterrun/clusterrun/http1"
)

// Mux routes requests by method and path, with the patterns of net/http's
// ServeMux that the runner uses: "GET /v1/apps/{app}" (a wildcard is one
// whole, non-empty segment), "GET /{$}" (exactly "/"), and a pattern with
// no method for every method. A GET pattern answers HEAD too (the server
// sends no body). A path that is not clean ("//x", "/a/../b") is
// redirected to its clean form when that has a route.
type Mux struct {
	routes []route
	// NotFound answers a request no route takes; allow lists the methods
	// of the routes of its path (HEAD with GET), sorted, empty when the
	// path has none. Nil: net/http's plain-text 404 and 405 answers.
	NotFound func(w ResponseWriter, r *Request, allow []string)
}

type route struct {
	method  string
	pattern string
	// segs are the path's segments; "{name}" is a wildcard.
	segs []string
	h    Handler
}

// Handle adds a route; a malformed pattern panics, as a programming error.
func (m *Mux) Handle(pattern string, h Handler) {
	method, p, ok := strings.Cut(pattern, " ")
	if !ok {
		method, p = "", pattern
	}
	if !strings.HasPrefix(p, "/") {
		panic(fmt.Sprintf("httpserve: pattern %q: the path must begin with /", pattern))
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "{$}" && i == len(segs)-1:
			segs[i] = ""
		case strings.HasPrefix(s, "{") && (!strings.HasSuffix(s, "}") || len(s) < 3 || strings.HasSuffix(s, "...}")):
			panic(fmt.Sprintf("httpserve: pattern %q: unsupported wildcard %q", pattern, s))
		}
	}
	m.routes = append(m.routes, route{method: method, pattern: pattern, segs: segs, h: h})
}

// HandleFunc adds a route to a function.
func (m *Mux) HandleFunc(pattern string, f func(ResponseWriter, *Request)) {
	m.Handle(pattern, HandlerFunc(f))
}

// match finds the route of method on the escaped path p and the values
// of its wildcards; without one, allow lists the methods p has routes for.
func (m *Mux) match(method, p string) (rt *route, values []string, allow []string) {
	if !strings.HasPrefix(p, "/") {
		return nil, nil, nil
	}
	segs := strings.Split(p[1:], "/")
	for i := range m.routes {
		r := &m.routes[i]
		vals, ok := r.matchPath(segs)
		if !ok {
			continue
		}
		if r.method == "" || r.method == method || r.method == "GET" && method == "HEAD" {
			return r, vals, nil
		}
		allow = append(allow, r.method)
		if r.method == "GET" {
			allow = append(allow, "HEAD")
		}
	}
	slices.Sort(allow)
	return nil, nil, slices.Compact(allow)
}

func (r *route) matchPath(segs []string) (values []string, ok bool) {
	if len(segs) != len(r.segs) {
		return nil, false
	}
	for i, s := range r.segs {
		if strings.HasPrefix(s, "{") {
			v, err := url.PathUnescape(segs[i])
			if segs[i] == "" || err != nil {
				return nil, false
			}
			values = append(values, v)
		} else if s != segs[i] {
			return nil, false
		}
	}
	return values, true
}

// Route returns the pattern that would serve a request of method to the
// escaped path p, "" when none would.
func (m *Mux) Route(method, p string) string {
	if rt, _, _ := m.match(method, p); rt != nil {
		return rt.pattern
	}
	return ""
}

func (m *Mux) ServeHTTP(w ResponseWriter, r *Request) {
	if clean := cleanPath(r.RawPath); clean != r.RawPath {
		if rt, _, _ := m.match(r.Method, clean); rt != nil {
			target := clean
			if r.RawQuery != "" {
				target += "?" + r.RawQuery
			}
			w.Header().Set("Location", target)
			WriteText(w, http1.StatusMovedPermanently, "Moved Permanently")
			return
		}
	}
	rt, values, allow := m.match(r.Method, r.RawPath)
	if rt == nil {
		if m.NotFound != nil {
			m.NotFound(w, r, allow)
		} else if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			WriteText(w, http1.StatusMethodNotAllowed, "Method Not Allowed")
		} else {
			WriteText(w, http1.StatusNotFound, "404 page not found")
		}
		return
	}
	r.names, r.values = r.names[:0], r.values[:0]
	for _, s := range rt.segs {
		if strings.HasPrefix(s, "{") {
			r.SetPathValue(s[1:len(s)-1], values[0])
			values = values[1:]
		}
	}
	rt.h.ServeHTTP(w, r)
}

// cleanPath is p without "//", "." and ".." segments, keeping a final
// slash, as net/http's ServeMux cleans it.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
