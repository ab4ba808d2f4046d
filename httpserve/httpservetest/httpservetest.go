// Package httpservetest runs httpserve handlers under net/http, for tests
// only (the runner itself does not link net/http): httptest's recorder and
// server then check what a handler answers with an implementation of HTTP
// independent of httpserve's.
package httpservetest

import (
	"net/http"
	"time"

	"github.com/clusterrun/clusterrun/http1"
	"github.com/clusterrun/clusterrun/httpserve"
)

// Handler serves h as a net/http handler. Path values are not set: route
// with an httpserve.Mux inside h for them.
func Handler(h httpserve.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &httpserve.Request{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			Proto: r.Proto, Host: r.Host, Header: http1.Header(r.Header), Body: r.Body,
			ContentLength: r.ContentLength, RemoteAddr: r.RemoteAddr,
		}
		h.ServeHTTP(Writer(w), req.WithContext(r.Context()))
	})
}

// Writer is w as an httpserve.ResponseWriter: httptest's recorder, say.
func Writer(w http.ResponseWriter) httpserve.ResponseWriter {
	return writer{w, http.NewResponseController(w)}
}

type writer struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w writer) Header() http1.Header               { return http1.Header(w.ResponseWriter.Header()) }
func (w writer) Flush() error                       { return w.rc.Flush() }
func (w writer) SetWriteDeadline(t time.Time) error { return w.rc.SetWriteDeadline(t) }
func (w writer) SetReadDeadline(t time.Time) error  { return w.rc.SetReadDeadline(t) }
