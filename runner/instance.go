package runner

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/listeners"
	"github.com/clusterrun/clusterrun/logmux"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/clusterrun/clusterrun/sdnotify"
)

type procState int

const (
	procStarting procState = iota
	procReady
	procStopping
	procExited
)

func (s procState) String() string {
	return [...]string{"starting", "ready", "stopping", "exited"}[s]
}

// process is one running process of an app instance.
type process struct {
	id      uint64
	slot    *slot
	rel     *release
	pid     int
	state   procState
	started time.Time
	readyAt time.Time
	// status is the last STATUS= the instance sent.
	status string
	// expected: the runner stopped it on purpose, so its exit is no crash.
	expected bool
	// failedStart: stopped because it was not ready in time; a crash.
	failedStart bool
	// killed: it did not stop within its timeout and got SIGKILL.
	killed bool
	// dying: it announced STOPPING=1.
	dying bool
	// restartOnExit: a hard restart waits for the exit, then starts anew.
	restartOnExit bool
	// replacedBy is the pid of the process that took over its slot.
	replacedBy  int
	timers      []*time.Timer
	cancelProbe context.CancelFunc
	notify      *sdnotify.Socket
}

func (p *process) label() string { return p.slot.label() }

// after runs fn on the loop after d, as long as p's timers are not stopped.
func (r *Runner) after(p *process, d time.Duration, fn func()) {
	p.timers = append(p.timers, time.AfterFunc(d, func() { r.post(fn) }))
}

func (p *process) stopTimers() {
	for _, t := range p.timers {
		t.Stop()
	}
	p.timers = nil
	if p.cancelProbe != nil {
		p.cancelProbe()
		p.cancelProbe = nil
	}
}

// startSlot starts the slot's serving process from its release.
func (r *Runner) startSlot(s *slot) {
	r.cancelBackoff(s)
	p, err := r.spawn(s, s.rel)
	if err != nil {
		r.log.Printf("cannot start %s: %v", s.label(), err)
		r.crashed(s, nil, proc.Status{Code: 127})
		return
	}
	s.cur = p
	s.state = slotRunning
}

// spawn starts one process for slot s running rel. The process is not yet
// anybody's cur or next; the caller decides.
func (r *Runner) spawn(s *slot, rel *release) (*process, error) {
	a := rel.app
	r.nextID++
	p := &process{id: r.nextID, slot: s, rel: rel, state: procStarting}

	fds, err := r.lset.Fds(rel.listeners, s.index)
	if err != nil {
		return nil, err
	}
	notify, err := sdnotify.Listen(filepath.Join(r.opts.RuntimeDir, strconv.FormatUint(p.id, 10)))
	if err != nil {
		return nil, err
	}
	if rel.cred != nil {
		if err := notify.Chown(int(rel.cred.Uid), int(rel.cred.Gid)); err != nil {
			notify.Close()
			return nil, err
		}
	}
	readyFd := 3 + len(fds)
	env := r.env(rel, s.index, notify.Path(), readyFd)
	path, err := proc.LookPath(a.Command[0], env, a.Dir)
	if err != nil {
		notify.Close()
		return nil, err
	}
	args := a.Command
	if len(fds) > 0 {
		args = listeners.ShimArgs(r.opts.Exe, path, a.Command)
		path = r.opts.Exe
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
			return nil, err
		}
		pipes[i] = [2]*os.File{rd, wr}
	}
	outR, errR, readyR := pipes[0][0], pipes[1][0], pipes[2][0]
	files := append([]uintptr{r.devnull.Fd(), pipes[0][1].Fd(), pipes[1][1].Fd()}, fds...)
	files = append(files, pipes[2][1].Fd())
	pid, exited, err := r.opts.Reaper.Start(proc.Spec{
		Path:       path,
		Args:       args,
		Dir:        a.Dir,
		Env:        env,
		Files:      files,
		Credential: rel.cred,
	})
	for _, pp := range pipes {
		pp[1].Close()
	}
	if err != nil {
		closeAll()
		notify.Close()
		if rel.cred != nil {
			return nil, fmt.Errorf("cannot start %s in %s as uid %d gid %d: %w", path, a.Dir, rel.cred.Uid, rel.cred.Gid, err)
		}
		return nil, fmt.Errorf("cannot start %s in %s: %w", path, a.Dir, err)
	}
	p.pid = pid
	p.started = time.Now()
	p.notify = notify
	r.live[p] = true

	src := logmux.Source{App: s.app.name, Instance: s.index, PID: pid, Stream: logmux.Stdout}
	outDone := r.log.Attach(outR, src)
	src.Stream = logmux.Stderr
	errDone := r.log.Attach(errR, src)
	go notify.Serve(func(m sdnotify.Message) { r.post(func() { r.onNotify(p, m) }) })
	go readNotifyLines(readyR, func(m sdnotify.Message) { r.post(func() { r.onNotify(p, m) }) })
	go func() {
		st := <-exited
		// Let the output drain first so the exit line comes after the
		// instance's last words; an escaped grandchild holding the pipe
		// must not delay the restart for long.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for _, d := range []<-chan struct{}{outDone, errDone} {
			select {
			case <-d:
			case <-ctx.Done():
			}
		}
		cancel()
		outR.Close()
		errR.Close()
		readyR.Close()
		r.post(func() { r.onExit(p, st) })
	}()

	r.log.Printf("%s started (pid %d)", s.label(), pid)
	r.watchReady(p)
	return p, nil
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

// watchReady arms whatever tells that p is ready, and its timeout.
func (r *Runner) watchReady(p *process) {
	rd := p.rel.app.Ready
	r.after(p, rd.Timeout, func() { r.onReadyTimeout(p) })
	switch rd.Check {
	case hclconfig.ReadyDelay:
		r.after(p, rd.Delay, func() { r.onReady(p, "") })
	case hclconfig.ReadyTCP, hclconfig.ReadyHTTP:
		ctx, cancel := context.WithCancel(context.Background())
		p.cancelProbe = cancel
		port := instancePort(p.rel.app, p.slot.index)
		go func() {
			if probe(ctx, rd, port) == nil {
				r.post(func() { r.onReady(p, "") })
			}
		}()
	case hclconfig.ReadyNotify:
		// onNotify acts on READY=1.
	}
}

func (r *Runner) onNotify(p *process, m sdnotify.Message) {
	if p.state == procExited {
		return // a late datagram from a process already gone
	}
	if m.HasStatus {
		p.status = m.Status
	}
	if m.Ready && p.rel.app.Ready.Check == hclconfig.ReadyNotify {
		r.onReady(p, " (READY=1)")
	}
	if m.Stopping {
		r.onDying(p)
	}
}

func (r *Runner) onReady(p *process, how string) {
	if p.state != procStarting {
		return // ready after it was told to stop, or twice: nothing to do
	}
	p.state = procReady
	p.readyAt = time.Now()
	p.stopTimers()
	s := p.slot
	r.log.Printf("%s ready after %s%s", s.label(), human(p.readyAt.Sub(p.started)), how)
	if p == s.next && !s.retired {
		r.promote(s)
	}
	if ro := s.app.rollout; ro != nil && ro.inflight[s] && s.cur == p {
		delete(ro.inflight, s)
		ro.replaced++
	}
}

// promote makes the ready replacement the slot's serving process and
// drains the one it replaces. Start new, wait ready, then stop old: the
// slot's capacity never drops.
func (r *Runner) promote(s *slot) {
	old := s.cur
	s.cur, s.next = s.next, nil
	s.rel = s.cur.rel
	s.state = slotRunning
	if old == nil || old.state == procStopping || old.state == procExited {
		return
	}
	old.replacedBy = s.cur.pid
	if old.dying {
		// It said it is on its way out, maybe finishing its requests: no
		// signal, but SIGKILL if it has not gone by stop.timeout.
		old.stopTimers()
		old.state = procStopping
		old.expected = true
		r.after(old, old.rel.app.Stop.Timeout, func() { r.onStopTimeout(old) })
		return
	}
	r.stopProc(old, true)
}

func (r *Runner) onReadyTimeout(p *process) {
	if p.state != procStarting {
		return
	}
	r.log.Printf("%s was not ready within %s (ready.check = %q); stopping it", p.label(), human(p.rel.app.Ready.Timeout), p.rel.app.Ready.Check)
	p.failedStart = true
	r.stopProc(p, false)
}

// onDying handles STOPPING=1: a worker that caught a fatal error says it is
// about to exit. Its replacement starts now, so capacity never drops.
func (r *Runner) onDying(p *process) {
	s := p.slot
	if p.dying || p.state == procStopping || p != s.cur || s.retired || !s.app.active {
		return
	}
	p.dying = true
	if s.rel.app.Restart.Policy == hclconfig.RestartNever || s.next != nil {
		r.log.Printf("%s announced STOPPING=1", p.label())
		return
	}
	np, err := r.spawn(s, s.rel)
	if err != nil {
		r.log.Printf("%s announced STOPPING=1; cannot start its replacement: %v", p.label(), err)
		return
	}
	s.next = np
	r.log.Printf("%s announced STOPPING=1; its replacement pid %d is starting", p.label(), np.pid)
}

// stopProc sends the app's stop signal to p's process group and arms the
// SIGKILL that follows after stop.timeout.
func (r *Runner) stopProc(p *process, expected bool) {
	if p.state == procStopping || p.state == procExited {
		return
	}
	p.stopTimers()
	p.state = procStopping
	p.expected = expected
	st := p.rel.app.Stop
	if err := proc.KillGroup(p.pid, st.Signal); err != nil {
		r.log.Printf("cannot signal %s (pid %d): %v", p.label(), p.pid, err)
	}
	r.after(p, st.Timeout, func() { r.onStopTimeout(p) })
}

func (r *Runner) onStopTimeout(p *process) {
	if p.state != procStopping || p.killed {
		return
	}
	p.killed = true
	if r.phase != running {
		r.killed = true // the drain was not clean
	}
	r.log.Printf("%s (pid %d) did not stop within %s; killing its process group", p.label(), p.pid, human(p.rel.app.Stop.Timeout))
	if err := proc.KillGroup(p.pid, 9); err != nil {
		r.log.Printf("cannot kill %s (pid %d): %v", p.label(), p.pid, err)
	}
}

// kill sends SIGKILL to p's group at once (a forced shutdown).
func (r *Runner) kill(p *process) {
	p.stopTimers()
	p.state = procStopping
	p.expected = true
	_ = proc.KillGroup(p.pid, 9)
}

func (r *Runner) onExit(p *process, st proc.Status) {
	p.stopTimers()
	p.state = procExited
	p.notify.Close()
	delete(r.live, p)
	s := p.slot
	a := s.app
	switch {
	case s.retired || (p != s.cur && p != s.next):
		// A drained process: replaced, scaled away or part of a stop.
		tail := ""
		if p.dying && p.replacedBy != 0 {
			tail = fmt.Sprintf(" after announcing STOPPING=1; pid %d replaced it", p.replacedBy)
		}
		r.logExit(p, st, tail)
		r.releaseSlotSockets(p)
	case p == s.next:
		s.next = nil
		if p.expected {
			r.logExit(p, st, "")
			return
		}
		r.logExit(p, st, " before it was ready")
		if a.rollout != nil && a.rollout.inflight[s] {
			r.abortRollout(a, "the new "+notReady(p, st))
		}
	case p == s.cur:
		s.cur = nil
		if s.next != nil {
			r.logExit(p, st, fmt.Sprintf("; its replacement pid %d takes over", s.next.pid))
			s.cur, s.next = s.next, nil
			s.rel = s.cur.rel
			return
		}
		if a.rollout != nil && a.rollout.inflight[s] && !p.expected {
			delete(a.rollout.inflight, s)
			if st.Success() && !restarts(s.rel.app.Restart.Policy, st) {
				// A run-once step (a build) re-run by the reload finished.
				a.rollout.replaced++
			} else {
				r.abortRollout(a, "the new "+notReady(p, st))
			}
		}
		switch {
		case p.restartOnExit:
			r.logExit(p, st, "; starting it again")
			r.startSlot(s)
		case p.expected:
			r.logExit(p, st, "")
			s.state = slotStopped
		default:
			r.crashed(s, p, st)
		}
	}
}

// notReady says why a new process never became ready, for an aborted
// rollout: "web.0 (pid 42) was not ready within 30s".
func notReady(p *process, st proc.Status) string {
	if p.failedStart {
		return fmt.Sprintf("%s (pid %d) was not ready within %s", p.label(), p.pid, human(p.rel.app.Ready.Timeout))
	}
	return fmt.Sprintf("%s (pid %d) %s before it was ready", p.label(), p.pid, st)
}

func (r *Runner) logExit(p *process, st proc.Status, tail string) {
	r.log.Printf("%s (pid %d) %s%s", p.label(), p.pid, st, tail)
}

// releaseSlotSockets gives back a reuseport socket of a slot that no longer
// exists, once its last process is gone.
func (r *Runner) releaseSlotSockets(p *process) {
	s := p.slot
	if !s.retired {
		return
	}
	a := s.app
	if s.index < len(a.slots) && !a.removed {
		return // the number is in use again
	}
	for q := range r.live {
		if q.slot.app == a && q.slot.index == s.index {
			return
		}
	}
	r.lset.ReleaseSlot(p.rel.listeners, s.index)
}

// crashed applies the restart policy after an exit nobody asked for. p is
// nil when the process could not even be started.
func (r *Runner) crashed(s *slot, p *process, st proc.Status) {
	now := time.Now()
	pol := s.rel.app.Restart
	label := s.label()
	what := st.String()
	if p != nil {
		label = fmt.Sprintf("%s (pid %d)", s.label(), p.pid)
		if now.Sub(p.started) >= pol.MinUptime {
			s.consecutive = 0
		}
		if p.failedStart {
			what = "was stopped because it was not ready in time"
		}
	}
	if s.retired || !s.app.active || r.phase != running {
		r.log.Printf("%s %s", label, what)
		s.state = slotStopped
		return
	}
	failedStart := p != nil && p.failedStart
	if !restarts(pol.Policy, st) || failedStart && pol.Policy == hclconfig.RestartNever {
		if st.Success() && !failedStart {
			s.state = slotDone
			r.log.Printf("%s %s; done", label, what)
		} else {
			s.state = slotFailed
			r.log.Printf("%s %s; restart policy %q: not restarting", label, what, pol.Policy)
		}
		return
	}
	s.crashes = append(pruneBefore(s.crashes, now.Add(-pol.Window)), now)
	s.consecutive++
	if len(s.crashes) > pol.MaxRestarts {
		s.state = slotFailed
		r.log.Printf("%s %s: %d crashes in %s, more than max_restarts = %d; giving up (failed)", label, what, len(s.crashes), human(pol.Window), pol.MaxRestarts)
		return
	}
	d := backoffDelay(pol.Backoff, pol.MaxBackoff, s.consecutive, jitter())
	s.state = slotBackoff
	s.restarts++
	s.backoffSeq++
	seq := s.backoffSeq
	s.backoff = time.AfterFunc(d, func() { r.post(func() { r.onBackoffElapsed(s, seq) }) })
	r.log.Printf("%s %s, restarting in %s (crash %d of %d in %s)", label, what, human(d), len(s.crashes), pol.MaxRestarts, human(pol.Window))
}

func (r *Runner) onBackoffElapsed(s *slot, seq int) {
	if seq != s.backoffSeq || s.state != slotBackoff {
		return // cancelled, or superseded by a reload or stop
	}
	s.backoff = nil
	r.startSlot(s)
}
