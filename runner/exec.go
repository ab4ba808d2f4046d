package runner

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/listeners"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/sdnotify"
)

// procs is the real process layer behind the Procs seam. Starting a
// process (sockets, pipes, fork) happens on its own goroutine, one at a
// time and in order, so that starting thousands of instances never keeps
// the supervisor from answering a signal or a status request.
type procs struct {
	r *Runner

	mu    sync.Mutex
	queue []StartRequest
	// cancelled are queued starts that are no longer wanted.
	cancelled map[InstanceID]bool
	tags      map[InstanceID]*logmux.Tag
	wake      chan struct{}
	done      chan struct{}
	exited    chan struct{}
}

func newProcs(r *Runner) *procs {
	return &procs{r: r, cancelled: map[InstanceID]bool{}, tags: map[InstanceID]*logmux.Tag{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
}

func (p *procs) Start(req StartRequest) {
	tag := &logmux.Tag{}
	tag.Set(req.Tag)
	p.mu.Lock()
	p.queue = append(p.queue, req)
	p.tags[req.ID] = tag
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // already woken
	}
}

func (p *procs) Cancel(id InstanceID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.ContainsFunc(p.queue, func(r StartRequest) bool { return r.ID == id }) {
		p.cancelled[id] = true
	}
}

func (p *procs) Signal(id InstanceID, pid int, sig syscall.Signal) error {
	return proc.KillGroup(pid, sig)
}

func (p *procs) Alive(id InstanceID, pid int) bool { return proc.Running(pid) }

func (p *procs) SetTag(id InstanceID, tag string) {
	p.mu.Lock()
	t := p.tags[id]
	p.mu.Unlock()
	if t != nil {
		t.Set(tag)
	}
}

// tagOf is the log tag of a started instance, nil if unknown.
func (p *procs) tagOf(id InstanceID) *logmux.Tag {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tags[id]
}

func (p *procs) forget(id InstanceID) {
	p.mu.Lock()
	delete(p.tags, id)
	p.mu.Unlock()
}

// run starts queued processes until stop.
func (p *procs) run() {
	defer close(p.exited)
	for {
		select {
		case <-p.wake:
		case <-p.done:
			return
		}
		for {
			p.mu.Lock()
			if len(p.queue) == 0 {
				p.mu.Unlock()
				break
			}
			req := p.queue[0]
			p.queue = p.queue[1:]
			cancelled := p.cancelled[req.ID]
			delete(p.cancelled, req.ID)
			p.mu.Unlock()
			if cancelled {
				p.forget(req.ID)
				p.r.post(SpawnFailed{ID: req.ID, Cancelled: true})
				continue
			}
			p.spawn(req)
			select {
			case <-p.done:
				return
			default:
			}
		}
	}
}

func (p *procs) stop() {
	close(p.done)
	<-p.exited
}

// spawn starts one process and reports it: Spawned, then its sd_notify
// messages, then Exited; or SpawnFailed.
func (p *procs) spawn(req StartRequest) {
	r := p.r
	rel, a := req.Rel, req.Rel.App
	fail := func(err error) {
		p.forget(req.ID)
		r.post(SpawnFailed{ID: req.ID, Err: err})
	}
	g, err := r.lset.Grant(a.Name, rel.Listeners, req.Index, req.Private)
	if err != nil {
		fail(err)
		return
	}
	defer g.Close()
	notify, err := sdnotify.Listen(filepath.Join(r.opts.RuntimeDir, strconv.FormatUint(uint64(req.ID), 10)))
	if err != nil {
		fail(err)
		return
	}
	if rel.Cred != nil {
		if err := notify.Chown(int(rel.Cred.Uid), int(rel.Cred.Gid)); err != nil {
			notify.Close()
			fail(err)
			return
		}
	}
	readyFd := 3 + len(g.Files)
	env := r.env(rel, req.Index, g, notify.Path(), readyFd)
	path, err := proc.LookPath(a.Command[0], env, a.Dir)
	if err != nil {
		notify.Close()
		fail(err)
		return
	}
	exe, args := path, a.Command
	if len(g.Files) > 0 {
		exe, args = r.opts.Exe, listeners.ShimArgs(r.opts.Exe, path, a.Command)
	}
	// Three pipes: stdout, stderr, and the ready pipe (CLUSTERRUN_READY_FD),
	// an sd_notify channel for programs that cannot send datagrams: a shell
	// script, or Node through the preload.
	var pipes [3][2]*os.File
	closeAll := func() {
		for _, pp := range pipes {
			for _, f := range pp {
				if f != nil {
					f.Close()
				}
			}
		}
	}
	for i := range pipes {
		rd, wr, err := os.Pipe()
		if err != nil {
			closeAll()
			notify.Close()
			fail(err)
			return
		}
		pipes[i] = [2]*os.File{rd, wr}
	}
	grown := growPipe(pipes[0][1]) + growPipe(pipes[1][1])
	outR, errR, readyR := pipes[0][0], pipes[1][0], pipes[2][0]
	files := append([]uintptr{r.devnull.Fd(), pipes[0][1].Fd(), pipes[1][1].Fd()}, g.Files...)
	files = append(files, pipes[2][1].Fd())
	pid, exited, err := r.opts.Reaper.Start(proc.Spec{Path: exe, Args: args, Dir: a.Dir, Env: env, Files: files, Credential: rel.Cred})
	for _, pp := range pipes {
		pp[1].Close()
	}
	if err != nil {
		closeAll()
		releasePipe(grown)
		notify.Close()
		// Name the app's program, not the exec shim that would have run it.
		if rel.Cred != nil {
			fail(fmt.Errorf("cannot start %s in %s as uid %d gid %d: %w", path, a.Dir, rel.Cred.Uid, rel.Cred.Gid, err))
		} else {
			fail(fmt.Errorf("cannot start %s in %s: %w", path, a.Dir, err))
		}
		return
	}
	r.guard.Add(pid)
	p.mu.Lock()
	tag := p.tags[req.ID]
	p.mu.Unlock()
	src := logmux.Source{App: a.Name, Instance: req.Index, PID: pid, Stream: logmux.Stdout, Tag: tag}
	outDone := r.log.Attach(outR, src)
	src.Stream = logmux.Stderr
	errDone := r.log.Attach(errR, src)

	// Spawned goes first: the machine must know the pid before it hears
	// from the process, and the exit is reported after both.
	r.post(Spawned{ID: req.ID, PID: pid, Addrs: g.Addrs, ProbeAddr: probeAddr(rel, req.Index, g)})
	post := func(m sdnotify.Message) { r.post(Notified{ID: req.ID, Msg: m}) }
	go notify.Serve(post)
	go readNotifyLines(readyR, post)
	go func() {
		st := <-exited
		r.guard.Remove(pid)
		// Let the output drain first so the exit line comes after the
		// instance's last words, but only for a moment: a process that
		// escaped the group (a daemon) may hold the pipes for ever, and
		// the exit must reach the supervisor before any stop timeout.
		ctx, cancel := context.WithTimeout(context.Background(), exitDrain)
		for _, d := range []<-chan struct{}{outDone, errDone} {
			select {
			case <-d:
			case <-ctx.Done():
			}
		}
		cancel()
		// Whoever still holds the pipes goes on being logged (closing our
		// ends would kill it with SIGPIPE); they close once it is gone.
		go func() {
			<-outDone
			<-errDone
			outR.Close()
			errR.Close()
			readyR.Close()
			releasePipe(grown)
		}()
		notify.Close()
		for _, l := range rel.Listeners {
			if l.Mode.Proxied() {
				r.lset.Unlisten(a.Name, l, req.Index, req.Private)
			}
		}
		p.forget(req.ID)
		r.post(Exited{ID: req.ID, Status: st})
	}()
}

// exitDrain bounds how long an exit waits for the process's last output.
const exitDrain = 250 * time.Millisecond

// probeAddr is where tcp and http checks knock: the instance's private
// address in proxy mode, or the PORT of an app without listeners (a
// Procfile line, or PORT in its env).
func probeAddr(rel *Release, index int, g *listeners.Grant) string {
	for _, l := range rel.Listeners {
		if addr := g.Addrs[l.Name]; addr != "" {
			return addr
		}
	}
	if len(rel.Listeners) > 0 {
		return ""
	}
	if port := rel.App.InstancePort(index); port != 0 {
		return "127.0.0.1:" + strconv.Itoa(port)
	}
	return ""
}

// readNotifyLines reads sd_notify assignments, one per line, from the ready
// pipe until it is closed. A line longer than the buffer is dropped whole.
func readNotifyLines(rd *os.File, fn func(sdnotify.Message)) {
	br := bufio.NewReaderSize(rd, 4096)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
		case len(line) > 0:
			fn(sdnotify.Parse(line))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
