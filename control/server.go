package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/httpserve"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/status"
)

// Runner is what the server controls; *runner.Runner implements it.
type Runner interface {
	Snapshot(ctx context.Context) (status.Runner, error)
	Peek(ctx context.Context) (status.Runner, error)
	Reload(ctx context.Context, app string) (status.ReloadResult, error)
	Restart(ctx context.Context, app string, instance int) (status.ReloadResult, error)
	Scale(ctx context.Context, app, spec string) (int, error)
	StopApp(ctx context.Context, app string) error
	StartApp(ctx context.Context, app string) error
}

// Limits of one server. Followers (log and event streams) hold their
// connection for as long as they like, so they have their own cap;
// commands are short, and the connection cap leaves them MaxCommands
// connections whatever the followers hold.
const (
	MaxFollowers = 1024
	MaxCommands  = 256
)

// Server serves the API of one runner on its unix socket and, with a
// control block, over TCP.
type Server struct {
	unix *httpserve.Limited
	path string
	tcp  *httpserve.Limited
	// tokens guard the TCP listener.
	tokens Tokens
	// allowed reports whether a peer uid may use the unix socket.
	allowed func(uid int) bool
	logf    func(format string, args ...any)
	// refused logs refused requests once per burst.
	refused *httpserve.Burst

	hub       *Hub
	followers chan struct{}
	// writeTimeout is the servers' Options.WriteTimeout (0: httpserve's
	// default); tests shorten it.
	writeTimeout time.Duration

	// ctx ends at Close: every handler, streams included, returns then.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	servers []*httpserve.Server
	closed  bool
}

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
	s, err := listenAt(path)
	var run *runningError
	if errors.As(err, &run) {
		run.file = configPath
	}
	return s, err
}

// runningError is ErrRunning with what a user needs to find the runner.
type runningError struct {
	pid        int // 0: unknown
	file, path string
}

func (e *runningError) Error() string {
	var b strings.Builder
	b.WriteString(ErrRunning.Error())
	if e.pid > 0 {
		fmt.Fprintf(&b, ": pid %d", e.pid)
	}
	if e.file != "" {
		fmt.Fprintf(&b, ", on %s", e.file)
	}
	fmt.Fprintf(&b, " (control socket %s). \"clusterrun status\" shows it; Ctrl-C in its terminal", e.path)
	if e.pid > 0 {
		fmt.Fprintf(&b, ", or kill %d,", e.pid)
	}
	b.WriteString(" stops it")
	return b.String()
}

func (e *runningError) Unwrap() error { return ErrRunning }

func listenAt(path string) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		// The listening socket's credentials are its creator's: the runner.
		pid, _ := peerPID(c)
		c.Close()
		return nil, &runningError{pid: pid, path: path}
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
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		path:      path,
		allowed:   func(uid int) bool { return uid == me || uid == 0 },
		logf:      func(string, ...any) {},
		hub:       NewHub(),
		followers: make(chan struct{}, MaxFollowers),
		ctx:       ctx,
		cancel:    cancel,
	}
	s.unix = httpserve.Listener(ln, s.options("control socket"))
	return s, nil
}

func (s *Server) options(name string) httpserve.Options {
	return httpserve.Options{Name: name, MaxConns: MaxFollowers + MaxCommands, MaxBodyBytes: maxBody,
		WriteTimeout: s.writeTimeout, Logf: func(f string, a ...any) { s.logf(f, a...) }}
}

// SetLogf sets where the server reports its own trouble (accept errors,
// refused requests). Call it before Serve.
func (s *Server) SetLogf(logf func(format string, args ...any)) {
	s.logf = logf
	s.refused = httpserve.NewBurst(logf, 10*time.Second)
}

// ListenTCP binds the API's TCP address, guarded by tokens (at least one
// must be set), and returns the address bound. Call it before Serve.
func (s *Server) ListenTCP(addr string, tokens Tokens) (string, error) {
	if !tokens.any() {
		return "", errors.New("cannot serve the API over TCP without a token")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("cannot serve the API on %s: %w", addr, err)
	}
	s.tokens = tokens
	s.tcp = httpserve.Listener(ln, s.options("control API on "+ln.Addr().String()))
	return ln.Addr().String(), nil
}

// Events is the hub that /v1/events streams from; the runner's lifecycle
// changes and reload outcomes are published into it.
func (s *Server) Events() *Hub { return s.hub }

// Serve answers requests for r (with logs from mux) until Close.
func (s *Server) Serve(r Runner, mux *logmux.Mux) {
	if s.refused == nil {
		s.refused = httpserve.NewBurst(s.logf, 10*time.Second)
	}
	a := &api{r: r, mux: mux, s: s}
	s.serve(s.unix, a.router(false))
	if s.tcp != nil {
		s.serve(s.tcp, a.router(true))
	}
}

func (s *Server) serve(ln *httpserve.Limited, h httpserve.Handler) {
	srv := httpserve.NewServer(h, s.options(""))
	srv.BaseContext = s.ctx
	srv.ConnContext = connContext
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		srv.Serve(ln)
	}()
}

// handler counts a request as in flight, so that Close waits for it.
func (s *Server) track() (done func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.wg.Add(1)
	return s.wg.Done, true
}

// Close stops accepting, ends every request (streams included), waits for
// their handlers and removes the socket file.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	s.cancel()
	s.hub.Close()
	for _, srv := range servers {
		srv.Close()
	}
	// Listeners of a server never started.
	s.unix.Close()
	if s.tcp != nil {
		s.tcp.Close()
	}
	s.wg.Wait()
	if s.refused != nil {
		s.refused.Stop()
	}
	os.Remove(s.path)
}

// peerKey carries a unix connection's peer uid (or the error getting it),
// read once when it is accepted, in its requests' contexts.
type peerKey struct{}

type peer struct {
	uid int
	err error
	tcp bool
}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if u, ok := c.(interface{ Unwrap() net.Conn }); ok {
		c = u.Unwrap()
	}
	if _, ok := c.(*net.UnixConn); !ok {
		return context.WithValue(ctx, peerKey{}, peer{tcp: true})
	}
	uid, err := peerUID(c)
	return context.WithValue(ctx, peerKey{}, peer{uid: uid, err: err})
}
