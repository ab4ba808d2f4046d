package control

import (
	"bufio"
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
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/runner"
)

// Runner is what the server controls; *runner.Runner implements it.
type Runner interface {
	Snapshot(ctx context.Context) (runner.Status, error)
	Reload(ctx context.Context, app string) (string, error)
	Restart(ctx context.Context, app string, instance int) error
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

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
	done  chan struct{}
}

// ErrRunning says another runner already serves the same config file.
var ErrRunning = errors.New("a runner for this file is already running")

// Listen creates the control socket for configPath. It fails with
// ErrRunning when a live runner already owns it, and removes a stale one.
func Listen(configPath string) (*Server, error) {
	path := SocketPath(configPath)
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

// Serve answers requests for r (with logs from mux) until Close.
func (s *Server) Serve(r Runner, mux *logmux.Mux) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return // closed
			}
			if !s.track(c) {
				c.Close()
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer s.untrack(c)
				s.handle(c, r, mux)
			}()
		}
	}()
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
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
	line, err := bufio.NewReader(c).ReadSlice('\n')
	if err != nil {
		writeJSON(c, Response{Error: "cannot read request: " + err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeJSON(c, Response{Error: "bad request: " + err.Error()})
		return
	}
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
		s.streamLogs(ctx, c, mux, req.App)
		return
	}
	writeJSON(c, s.do(ctx, r, req))
}

func (s *Server) do(ctx context.Context, r Runner, req Request) Response {
	fail := func(err error) Response { return Response{Error: err.Error()} }
	switch req.Cmd {
	case "status":
		st, err := status(ctx, r)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Status: st}
	case "reload":
		msg, err := r.Reload(ctx, req.App)
		if err != nil {
			return Response{Error: err.Error(), Message: msg}
		}
		return Response{OK: true, Message: msg}
	case "restart":
		if err := r.Restart(ctx, req.App, req.Instance); err != nil {
			return fail(err)
		}
		return Response{OK: true, Message: "restarting " + req.App}
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

// cpuSample is how long status watches CPU use to compute a percentage.
const cpuSample = 200 * time.Millisecond

func status(ctx context.Context, r Runner) (*Status, error) {
	snap, err := r.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, a := range snap.Apps {
		for _, p := range a.Procs {
			if p.PID != 0 {
				pids = append(pids, p.PID)
			}
		}
	}
	u0, err0 := proc.GroupUsage(pids)
	t0 := time.Now()
	select {
	case <-time.After(cpuSample):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u1, err1 := proc.GroupUsage(pids)
	elapsed := time.Since(t0)
	now := time.Now()
	st := &Status{PID: snap.PID, Config: snap.Config, Goroutines: snap.Goroutines}
	for _, a := range snap.Apps {
		as := AppStatus{Name: a.Name, State: a.State, Instances: a.Instances, Listeners: a.Listeners, Procs: []Proc{}}
		for _, p := range a.Procs {
			pr := Proc{InstanceStatus: p, CPUPercent: -1, RSSBytes: -1}
			if p.PID != 0 {
				pr.UptimeSeconds = now.Sub(p.Started).Seconds()
				if err0 == nil && err1 == nil {
					if b, ok := u1[p.PID]; ok {
						pr.RSSBytes = b.RSS
						pr.CPUPercent = 100 * (b.CPU - u0[p.PID].CPU).Seconds() / elapsed.Seconds()
					}
				}
			}
			as.Procs = append(as.Procs, pr)
		}
		st.Apps = append(st.Apps, as)
	}
	return st, nil
}

// logBuffer is how many records a logs client may fall behind by before it
// loses lines; the runner itself never waits for a client.
const logBuffer = 4096

func (s *Server) streamLogs(ctx context.Context, c net.Conn, mux *logmux.Mux, app string) {
	var filter func(*logmux.Record) bool
	if app != "" {
		filter = func(r *logmux.Record) bool { return r.App == app || r.Stream == logmux.Runner }
	}
	recs, dropped, cancel := mux.Subscribe(filter, logBuffer)
	defer cancel()
	// A client that vanished is noticed by its closed connection.
	go func() {
		buf := make([]byte, 1)
		c.Read(buf)
		cancel()
	}()
	enc := json.NewEncoder(c)
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
