package runner

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An http check GETs the path with the runner's User-Agent (so an app can
// keep probes out of its access log) and wants a status below 400; a
// redirect is an answer. A tcp check wants a connection.
func TestCheckOnce(t *testing.T) {
	got := make(chan *http.Request, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	if err := checkOnce(ctx, addr, "http", "/healthz", 5*time.Second); err != nil {
		t.Errorf("http check of a 200: %v", err)
	}
	r := <-got
	if ua := r.Header.Get("User-Agent"); ua != ProbeUserAgent || r.Method != http.MethodGet || r.URL.Path != "/healthz" {
		t.Errorf("the probe was %s %s with User-Agent %q; want GET /healthz with %q", r.Method, r.URL.Path, ua, ProbeUserAgent)
	}
	if err := checkOnce(ctx, addr, "http", "/fail", 5*time.Second); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("http check of a 503: %v, want status 503", err)
	}
	<-got
	if err := checkOnce(ctx, addr, "http", "/moved", 5*time.Second); err != nil {
		t.Errorf("http check of a redirect: %v", err)
	}
	<-got
	if err := checkOnce(ctx, addr, "tcp", "", 5*time.Second); err != nil {
		t.Errorf("tcp check of a listening port: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if err := checkOnce(ctx, closed, "tcp", "", 5*time.Second); err == nil {
		t.Errorf("tcp check of a closed port passed")
	}
}

// A failed http check names what it asked once: "GET http://ADDR/PATH:"
// and what went wrong.
func TestCheckOnceSaysThePathOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // no answer
		}
	}()
	err = checkOnce(context.Background(), ln.Addr().String(), "http", "/only-once", 30*time.Second)
	if err == nil || strings.Count(err.Error(), "/only-once") != 1 || !strings.HasPrefix(err.Error(), "GET http://"+ln.Addr().String()+"/only-once: ") {
		t.Errorf("a check without an answer: %v; want the request named once", err)
	}
}
