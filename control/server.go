package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/status"
)

// Runner is what the server controls; *runner.Runner implements it.
type Runner interface {
	Snapshot(ctx context.Context) (status.Runner, error)
	Reload(ctx context.Context, app string) (status.ReloadResult, error)
	Restart(ctx context.Context, app string, instance int) (status.ReloadResult, error)
	Scale(ctx context.Context, app, spec string) (int, error)
	StopApp(ctx context.Context, app string) error
	StartApp(ctx context.Context, app string) error
}

// Server answers control requests for one runner.
type Server struct {
	ln   *net.UnixListener
	path string
	// allowed reports whether a peer uid may use the socket.
	allowed func(uid int) bool
	// logf reports the server's own trouble (nil: silent).
	logf func(format string, args ...any)

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
	done  chan struct{}
}

// maxConns bounds the connections served at once; a flood beyond it is
// refused rather than served, so it cannot take every descriptor.
const maxConns = 64

// ErrRunning says another runner already serves the same config file.
var ErrRunning = errors.New("a runner for this file is already running")

// Listen creates the control socket for configPath. It fails with
// ErrRunning when a live runner already owns it, and removes a stale one.
func Listen(configPath string) (*Server, error) {
	path := SocketPath(configPath)
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("cannot create the control socket directory: %w", err)
	}
	return listenAt(path)
}

func listenAt(path string) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w (control socket %s)", ErrRunning, path)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("cannot create the control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	me := os.Getuid()
	return &Server{
		ln:      ln,
		path:    path,
		allowed: func(uid int) bool { return uid == me || uid == 0 },
		conns:   make(map[net.Conn]bool),
		done:    make(chan struct{}),
	}, nil
}

// SetLogf sets where the server reports its own trouble (an accept loop
// backing off). Call it before Serve.
func (s *Server) SetLogf(logf func(format string, args ...any)) { s.logf = logf }

// Serve answers requests for r (with logs from mux) until Close.
func (s *Server) Serve(r Runner, mux *logmux.Mux) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop(r, mux)
	}()
}

// acceptLoop accepts until Close. An accept error other than the close
// (EMFILE in a flood of connections, ECONNABORTED) backs off, 5ms doubling
// to 1s, is reported once per burst, and the loop goes on: a control
// socket that stopped accepting would leave every command hanging.
func (s *Server) acceptLoop(r Runner, mux *logmux.Mux) {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if delay == 0 {
				delay = 5 * time.Millisecond
				if s.logf != nil {
					s.logf("control socket: cannot accept (%v); retrying", err)
				}
			} else {
				delay = min(2*delay, time.Second)
			}
			select {
			case <-time.After(delay):
			case <-s.done:
				return
			}
			continue
		}
		delay = 0
		if !s.track(c) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.handle(c, r, mux)
		}()
	}
}

// track registers c, or refuses it when the server is closing or busy.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	if len(s.conns) >= maxConns {
		writeJSON(c, Response{Error: fmt.Sprintf("busy: %d control connections are open; try again", maxConns)})
		return false
	}
	s.conns[c] = true
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// Close stops accepting, ends open connections (log streams) and removes
// the socket file.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
	}
	close(s.done)
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) handle(c net.Conn, r Runner, mux *logmux.Mux) {
	uid, err := peerUID(c)
	if err != nil || !s.allowed(uid) {
		msg := fmt.Sprintf("permission denied: uid %d does not own this runner", uid)
		if err != nil {
			msg = "permission denied: cannot identify the peer: " + err.Error()
		}
		writeJSON(c, Response{Error: msg})
		return
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := ReadRequest(bufio.NewReaderSize(c, 4096))
	if err != nil {
		writeJSON(c, Response{Error: err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if req.Cmd == "logs" {
		s.streamLogs(ctx, c, mux, req)
		return
	}
	writeJSON(c, s.do(ctx, r, req))
}

// ReadRequest reads and decodes one request line of at most MaxRequest
// bytes. Its errors are fit to send back to the client.
func ReadRequest(br *bufio.Reader) (Request, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxRequest {
			return Request{}, fmt.Errorf("request too large: more than %d bytes", MaxRequest)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && len(line) == 0 {
			return Request{}, fmt.Errorf("cannot read request: %w", err)
		}
		break
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("bad request: %w", err)
	}
	if req.Instance < -1 {
		return Request{}, fmt.Errorf("bad request: instance %d", req.Instance)
	}
	if req.Lines < 0 || req.Lines > 1<<20 {
		return Request{}, fmt.Errorf("bad request: lines %d", req.Lines)
	}
	return req, nil
}

func (s *Server) do(ctx context.Context, r Runner, req Request) Response {
	fail := func(err error) Response { return Response{Error: err.Error()} }
	switch req.Cmd {
	case "status":
		st, err := r.Snapshot(ctx)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Status: &st}
	case "reload", "restart":
		var res status.ReloadResult
		var err error
		if req.Cmd == "reload" {
			res, err = r.Reload(ctx, req.App)
		} else {
			res, err = r.Restart(ctx, req.App, req.Instance)
		}
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return Response{Error: err.Error(), Message: res.Summary, Apps: res.Apps}
		}
		return Response{OK: true, Message: res.Summary, Apps: res.Apps}
	case "scale":
		n, err := r.Scale(ctx, req.App, req.Scale)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Message: fmt.Sprintf("%s scaled to %d instances", req.App, n)}
	case "stop":
		if err := r.StopApp(ctx, req.App); err != nil {
			return fail(err)
		}
		return Response{OK: true, Message: "stopping " + req.App}
	case "start":
		if err := r.StartApp(ctx, req.App); err != nil {
			return fail(err)
		}
		return Response{OK: true, Message: "starting " + req.App}
	}
	return Response{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
}

// logBuffer is how many records a logs client may fall behind by before it
// loses lines; the runner itself never waits for a client.
const logBuffer = 4096

func (s *Server) streamLogs(ctx context.Context, c net.Conn, mux *logmux.Mux, req Request) {
	var filter func(*logmux.Record) bool
	if req.App != "" {
		app := req.App
		filter = func(r *logmux.Record) bool { return r.App == app || r.Stream == logmux.Runner }
	}
	history, recs, dropped, cancel := mux.Tail(filter, req.Lines, logBuffer)
	defer cancel()
	enc := json.NewEncoder(c)
	for i := range history {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if enc.Encode(toLogLine(&history[i])) != nil {
			return
		}
	}
	if req.NoFollow {
		return
	}
	// A client that vanished is noticed by its closed connection.
	go func() {
		buf := make([]byte, 1)
		c.Read(buf)
		cancel()
	}()
	var lost uint64
	for {
		select {
		case <-ctx.Done():
			return
		case rec, ok := <-recs:
			if !ok {
				return
			}
			if d := dropped(); d > lost {
				note := logmux.Record{Time: time.Now(), App: "clusterrun", Instance: -1, PID: os.Getpid(), Stream: logmux.Runner,
					Line: []byte(fmt.Sprintf("logs: %d lines dropped because this client did not keep up", d-lost))}
				lost = d
				if enc.Encode(toLogLine(&note)) != nil {
					return
				}
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := enc.Encode(toLogLine(&rec)); err != nil {
				return
			}
		}
	}
}

func writeJSON(c net.Conn, v any) {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	json.NewEncoder(c).Encode(v)
}
