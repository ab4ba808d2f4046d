package control

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/httpserve"
	"github.com/clusterrun/clusterrun/httpserve/httpservetest"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/status"
)

// idleRunner is a runner with no apps that nothing happens to.
type idleRunner struct{}

func (idleRunner) Snapshot(context.Context) (status.Runner, error) { return status.Runner{}, nil }
func (idleRunner) Peek(context.Context) (status.Runner, error)     { return status.Runner{}, nil }
func (idleRunner) Reload(context.Context, string) (status.ReloadResult, error) {
	return status.ReloadResult{}, nil
}
func (idleRunner) Restart(context.Context, string, int) (status.ReloadResult, error) {
	return status.ReloadResult{}, nil
}
func (idleRunner) Scale(context.Context, string, string) (int, error) { return 0, nil }
func (idleRunner) StopApp(context.Context, string) error              { return nil }
func (idleRunner) StartApp(context.Context, string) error             { return nil }

// A request whose connection carries no peer credentials is refused on
// the unix socket: a missing uid is not root's.
func TestAllowRefusesAnUnknownPeer(t *testing.T) {
	s := &Server{allowed: func(uid int) bool { return uid == 0 }, refused: httpserve.NewBurst(func(string, ...any) {}, time.Second)}
	defer s.refused.Stop()
	a := &api{s: s}
	rec := httptest.NewRecorder()
	r := &httpserve.Request{Method: "GET", Path: "/v1/status", RawPath: "/v1/status", Header: map[string][]string{}}
	if a.allow(httpservetest.Writer(rec), r, false) {
		t.Fatal("a request without peer credentials was allowed")
	}
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "cannot identify the peer") {
		t.Errorf("a request without peer credentials: %d %s", rec.Code, rec.Body)
	}
}

// The event and log streams stay open longer than the servers'
// WriteTimeout while they send keep-alives: they bound each write
// themselves.
func TestStreamsOutliveWriteTimeout(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	old := keepAlive
	keepAlive = writeTimeout / 5
	defer func() { keepAlive = old }()
	path := filepath.Join(t.TempDir(), "c.sock")
	s, err := listenAt(path)
	if err != nil {
		t.Fatal(err)
	}
	s.writeTimeout = writeTimeout
	s.Serve(idleRunner{}, logmux.New(logmux.Options{}))
	defer s.Close()
	for _, target := range []string{"/v1/events", "/v1/logs?follow=true"} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: clusterrun\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", target, resp, err)
		}
		// Nothing happens in the runner: what comes is keep-alives.
		br := bufio.NewReader(resp.Body)
		t0 := time.Now()
		for n := 0; time.Since(t0) < 5*writeTimeout; n++ {
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatalf("GET %s: the stream ended after %s and %d lines: %v", target, time.Since(t0), n, err)
			}
		}
		c.Close()
	}
}
